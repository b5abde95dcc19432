// The hash chain's format, and its verifier: append-only, tamper-evident logs kept in the fenced
// key-value store (the booking API's audit trail). Each record links to the one before it by hash,
// so changing, dropping or reordering any stored record breaks every link after it, and a reader
// can tell.
//
// A record of chain C created by the txn at Raft index I is stored under
// `~chain/C/<I zero-padded to 16 digits>` (so key order is record order) as the JSON string
// `{"chain","seq","index","prevHash","hash","record"}`, with
//   hash = hex(sha256(`${prevHash}\n${seq}\n${index}\n${record}`))   (UTF-8)
// where seq counts from 1 per chain and the first record's prevHash is 64 zeros.
//
// Written once, here: the lock state machine writes records with it (lock/chain.ts) and every
// reader verifies them with it (client/, the booking API, the harness). It is pure, so the state
// machine can run it: SHA-256 comes from @noble/hashes, not node:crypto. A reader that verifies
// many records may hand verifyChain a native SHA-256 instead (the booking API does: node:crypto
// hashed a 20,000-record chain about 25 times faster than the pure one on this project's machine,
// where the pure one held the event loop for 2 to 3 s).

import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { z } from "zod";

/** chainKeyPrefix starts every chain record's key; the state machine lets only `append` write under it. */
export const chainKeyPrefix = "~chain/";

/** chainGenesisHash is the prevHash of a chain's first record. */
export const chainGenesisHash = "0".repeat(64);

/** chainRecordSchema is one stored record (the parsed value of its `~chain/…` key). */
export const chainRecordSchema = z.object({
  chain: z.string(),
  /** seq counts the chain's records from 1. */
  seq: z.int(),
  /** index: the Raft index of the txn that appended it (also the last part of its key). */
  index: z.int(),
  prevHash: z.string(),
  hash: z.string(),
  /** record: the value the txn appended, verbatim. */
  record: z.string(),
});

/** ChainRecord is one stored record of a hash chain. */
export type ChainRecord = Readonly<z.output<typeof chainRecordSchema>>;

/** ChainHead is the last record of a chain, as far as it is known: what the next record links to. */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

/** ChainVerdict is what verifyChain found: an unbroken chain (its count and head), or where it first breaks. */
export type ChainVerdict =
  | { readonly ok: true; readonly count: number; readonly headHash: string }
  | { readonly ok: false; readonly brokenAtSeq: number; readonly reason: string };

/** chainPrefix is the key prefix under which chain `chain`'s records are stored, in order: range-read it to get them. */
export function chainPrefix(chain: string): string {
  return `${chainKeyPrefix}${chain}/`;
}

/** chainKeyOf is the key of chain `chain`'s record created at Raft index `index`. */
export function chainKeyOf(chain: string, index: number): string {
  return `${chainPrefix(chain)}${String(index).padStart(16, "0")}`;
}

/** Sha256Hex is a SHA-256 of a text's UTF-8 bytes, in lower-case hex. */
export type Sha256Hex = (text: string) => string;

/** pureSha256Hex is SHA-256 in plain JavaScript (@noble/hashes): what the state machine, which may not use node:crypto, hashes with. */
export const pureSha256Hex: Sha256Hex = (text) => bytesToHex(sha256(utf8ToBytes(text)));

/** chainRecordHash is the hex SHA-256 that links a record to its predecessor: of `${prevHash}\n${seq}\n${index}\n${record}`. */
export function chainRecordHash(
  prevHash: string,
  seq: number,
  index: number,
  record: string,
  sha256Hex: Sha256Hex = pureSha256Hex,
): string {
  return sha256Hex(`${prevHash}\n${seq}\n${index}\n${record}`);
}

/** encodeChainRecord is the stored value: JSON with the fields in a fixed order, so every replica stores the same string. */
export function encodeChainRecord(record: ChainRecord): string {
  return JSON.stringify({
    chain: record.chain,
    seq: record.seq,
    index: record.index,
    prevHash: record.prevHash,
    hash: record.hash,
    record: record.record,
  });
}

/**
 * verifyChain checks the records of one chain, in the order given (key order is record order),
 * starting after `from` (by default the chain's beginning, so the first record must have seq 1).
 * Each record must have the next seq, a higher index, the previous record's hash as its prevHash,
 * and a hash that matches its content.
 *
 * **When to use**: to audit a chain read with `LockClient.range(chainPrefix(chain), …)` (each
 * item's `value` parsed with JSON.parse). Verify page by page by passing the last page's head as
 * `from`: `{ seq: last.seq, hash: verdict.headHash }`.
 *
 * **Gotchas**: it proves the records given are an unbroken chain; that nothing was cut off the
 * *end* needs the head from elsewhere (a later record, or a head noted earlier). `brokenAtSeq` is
 * the seq expected where the chain first breaks. It hashes in plain JavaScript unless given
 * `sha256Hex`; outside the state machine, pass a native one for long chains, e.g.
 * `(text) => hash("sha256", text, "hex")` from node:crypto.
 *
 * **Example**:
 * ```ts
 * const records = page.items.map((item) => JSON.parse(item.value) as ChainRecord);
 * const verdict = verifyChain(records); // { ok: true, count, headHash } | { ok: false, brokenAtSeq, reason }
 * ```
 */
export function verifyChain(
  records: readonly ChainRecord[],
  from: ChainHead = { seq: 0, hash: chainGenesisHash },
  sha256Hex: Sha256Hex = pureSha256Hex,
): ChainVerdict {
  let seq = from.seq;
  let hash = from.hash;
  let index = 0;
  const chain = records[0]?.chain;
  for (const record of records) {
    const expectedSeq = seq + 1;
    const broken = (reason: string): ChainVerdict => ({ ok: false, brokenAtSeq: expectedSeq, reason });
    if (!chainRecordSchema.safeParse(record).success) return broken("malformed record");
    if (record.chain !== chain) return broken(`record of chain ${record.chain} among records of ${chain}`);
    if (record.seq !== expectedSeq) return broken(`expected seq ${expectedSeq}, found ${record.seq} (a record is missing or out of order)`);
    if (record.index <= index) return broken(`index ${record.index} does not rise (previous ${index})`);
    if (record.prevHash !== hash) return broken("prevHash does not match the previous record's hash");
    if (chainRecordHash(record.prevHash, record.seq, record.index, record.record, sha256Hex) !== record.hash) {
      return broken("hash does not match the record's content (it was altered)");
    }
    seq = record.seq;
    hash = record.hash;
    index = record.index;
  }
  return { ok: true, count: records.length, headHash: hash };
}
