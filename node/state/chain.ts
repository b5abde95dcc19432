// Hash chains: append-only, tamper-evident logs kept in the fenced key-value store (the booking
// API's audit trail). Each record links to the one before it by hash, so changing, dropping or
// reordering any stored record breaks every link after it, and a reader can tell.
//
// A record of chain C created by the txn at Raft index I is stored under
// `~chain/C/<I zero-padded to 16 digits>` (so key order is record order) as the JSON string
// `{"chain","seq","index","prevHash","hash","record"}`, with
//   hash = hex(sha256(`${prevHash}\n${seq}\n${index}\n${record}`))   (UTF-8)
// where seq counts from 1 per chain and the first record's prevHash is 64 zeros.
//
// This module is pure (it runs inside the state machine); client/audit-chain.ts verifies the same
// format with node:crypto, for callers that may import nothing of the node.

import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import type { ChainHead } from "./types.ts";

/** chainKeyPrefix starts every chain record's key; the state machine lets only `append` write under it. */
export const chainKeyPrefix = "~chain/";

/** chainGenesisHash is the prevHash of a chain's first record. */
export const chainGenesisHash = "0".repeat(64);

/** ChainRecord is one stored record, as parsed from its key's value. */
export interface ChainRecord {
  readonly chain: string;
  readonly seq: number;
  readonly index: number;
  readonly prevHash: string;
  readonly hash: string;
  readonly record: string;
}

export type ChainVerdict =
  | { readonly ok: true; readonly count: number; readonly headHash: string }
  | { readonly ok: false; readonly brokenAtSeq: number; readonly reason: string };

/** chainKeyOf is the key of chain `chain`'s record created at Raft index `index`. */
export function chainKeyOf(chain: string, index: number): string {
  return `${chainKeyPrefix}${chain}/${String(index).padStart(16, "0")}`;
}

/** chainRecordHash is the hex SHA-256 that links a record to its predecessor. */
export function chainRecordHash(prevHash: string, seq: number, index: number, record: string): string {
  return bytesToHex(sha256(utf8ToBytes(`${prevHash}\n${seq}\n${index}\n${record}`)));
}

/** chainRecordOf builds the record that follows `head` (undefined: the chain's first). */
export function chainRecordOf(chain: string, head: ChainHead | undefined, index: number, record: string): ChainRecord {
  const seq = (head?.seq ?? 0) + 1;
  const prevHash = head?.hash ?? chainGenesisHash;
  return { chain, seq, index, prevHash, hash: chainRecordHash(prevHash, seq, index, record), record };
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
 * verifyChain checks records of one chain, in order, starting after `from` (by default the
 * chain's beginning): each has the next seq, a higher index, links to the previous hash, and its
 * hash matches its content. It returns the count and the last hash, or the seq expected where
 * the chain first breaks. Keep client/audit-chain.ts's copy in step with this one.
 */
export function verifyChain(records: readonly ChainRecord[], from: ChainHead = { seq: 0, hash: chainGenesisHash }): ChainVerdict {
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
    if (record.prevHash !== hash) return broken(`prevHash does not match the previous record's hash`);
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
