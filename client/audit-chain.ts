// Verifying the cluster's hash chains from outside it (client/ may import nothing of the node).
// A txn's `append` operation adds a record to a chain; the cluster stores it under
// `~chain/<chain>/<index, 16 digits>` as the JSON string
// `{"chain","seq","index","prevHash","hash","record"}`, where
//   hash = hex(sha256(`${prevHash}\n${seq}\n${index}\n${record}`))   (UTF-8)
// seq counts from 1 per chain, and the first record's prevHash is 64 zeros. Each record thus
// vouches for every one before it: a changed, dropped or reordered record breaks the links after it.
//
// This is the client's copy of node/state/chain.ts, on node:crypto; tests/audit-chain.test.ts
// checks that the two agree on records the state machine wrote.

import { createHash } from "node:crypto";

/** chainGenesisHash is the prevHash of a chain's first record. */
export const chainGenesisHash = "0".repeat(64);

/** ChainRecord is one stored record of a hash chain (the parsed value of its `~chain/…` key). */
export interface ChainRecord {
  readonly chain: string;
  readonly seq: number;
  /** index: the Raft index of the txn that appended it (also the last part of its key). */
  readonly index: number;
  readonly prevHash: string;
  readonly hash: string;
  /** record: the value the txn appended, verbatim. */
  readonly record: string;
}

export type ChainVerdict =
  | { readonly ok: true; readonly count: number; readonly headHash: string }
  | { readonly ok: false; readonly brokenAtSeq: number; readonly reason: string };

/** chainPrefix is the key prefix under which chain `chain`'s records are stored, in order: range-read it to get them. */
export function chainPrefix(chain: string): string {
  return `~chain/${chain}/`;
}

/** chainRecordHash is the hex SHA-256 that links a record to its predecessor. */
export function chainRecordHash(prevHash: string, seq: number, index: number, record: string): string {
  return createHash("sha256").update(`${prevHash}\n${seq}\n${index}\n${record}`, "utf8").digest("hex");
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
 * the seq expected where the chain first breaks.
 *
 * **Example**:
 * ```ts
 * const records = page.items.map((item) => JSON.parse(item.value) as ChainRecord);
 * const verdict = verifyChain(records); // { ok: true, count, headHash } | { ok: false, brokenAtSeq, reason }
 * ```
 */
export function verifyChain(
  records: readonly ChainRecord[],
  from: { readonly seq: number; readonly hash: string } = { seq: 0, hash: chainGenesisHash },
): ChainVerdict {
  let seq = from.seq;
  let hash = from.hash;
  let index = 0;
  const chain = records[0]?.chain;
  for (const record of records) {
    const expectedSeq = seq + 1;
    const broken = (reason: string): ChainVerdict => ({ ok: false, brokenAtSeq: expectedSeq, reason });
    if (!isChainRecord(record)) return broken("malformed record");
    if (record.chain !== chain) return broken(`record of chain ${record.chain} among records of ${chain}`);
    if (record.seq !== expectedSeq) return broken(`expected seq ${expectedSeq}, found ${record.seq} (a record is missing or out of order)`);
    if (record.index <= index) return broken(`index ${record.index} does not rise (previous ${index})`);
    if (record.prevHash !== hash) return broken("prevHash does not match the previous record's hash");
    if (chainRecordHash(record.prevHash, record.seq, record.index, record.record) !== record.hash) {
      return broken("hash does not match the record's content (it was altered)");
    }
    seq = record.seq;
    hash = record.hash;
    index = record.index;
  }
  return { ok: true, count: records.length, headHash: hash };
}

function isChainRecord(value: unknown): value is ChainRecord {
  const record = value as Partial<ChainRecord> | null;
  return (
    typeof record === "object" &&
    record !== null &&
    typeof record.chain === "string" &&
    Number.isSafeInteger(record.seq) &&
    Number.isSafeInteger(record.index) &&
    typeof record.prevHash === "string" &&
    typeof record.hash === "string" &&
    typeof record.record === "string"
  );
}
