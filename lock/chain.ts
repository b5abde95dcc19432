// Hash chains inside the state machine: building the record that an `append` adds. The format
// (keys, the stored JSON, the hash that links records) and its verifier are the wire contract's,
// in protocol/chain.ts, so the writer here and every reader outside agree by construction.

import { type ChainHead, type ChainRecord, chainGenesisHash, chainRecordHash } from "../protocol/chain.ts";

/** chainRecordOf builds the record that follows `head` (undefined: the chain's first). */
export function chainRecordOf(chain: string, head: ChainHead | undefined, index: number, record: string): ChainRecord {
  const seq = (head?.seq ?? 0) + 1;
  const prevHash = head?.hash ?? chainGenesisHash;
  return { chain, seq, index, prevHash, hash: chainRecordHash(prevHash, seq, index, record), record };
}
