// The hash-chain verifier every reader uses (protocol/chain.ts, on @noble/hashes) against records
// that the real lock state machine wrote: its hashes are the documented format's, computed again
// here independently with node:crypto, and the verifier catches a changed record, a dropped one, a
// reordering, a forged link and a record of another chain, and continues from a known head page
// by page. (Until issue 15 the client kept its own copy of the verifier on node:crypto; this test
// compared the two. There is one verifier now; the reference below stands in for the copy.)

import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { LockStateMachine } from "../lock/lock-state-machine.ts";
import { type ChainRecord, chainGenesisHash, chainPrefix, chainRecordHash, verifyChain } from "../protocol/chain.ts";

/** referenceHash is the documented link hash, hex(sha256(`prevHash\nseq\nindex\nrecord`)) in UTF-8, on node:crypto. */
function referenceHash(prevHash: string, seq: number, index: number, record: string): string {
  return createHash("sha256").update(`${prevHash}\n${seq}\n${index}\n${record}`, "utf8").digest("hex");
}

/** writeChain appends `count` records to chain `chain` through fenced txns and reads them back. */
function writeChain(chain: string, count: number): ChainRecord[] {
  const machine = new LockStateMachine();
  machine.apply(1, { type: "acquire", resources: ["slot"], owner: "a", ttlMs: 5000, waitMs: 0 });
  for (let round = 1; round <= count; round++) {
    const value = JSON.stringify({ booking: round, note: "ünïcödé ✓" });
    machine.apply(1 + round, { type: "txn", guards: [{ resource: "slot", token: 1 }], operations: [{ op: "append", chain, value }] });
  }
  return machine.range(chainPrefix(chain), 1000).items.map((item) => JSON.parse(item.value.value) as ChainRecord);
}

describe("protocol/chain verifyChain", () => {
  const records = writeChain("audit", 5);

  it("accepts what the state machine wrote, and hashes exactly as the documented format says", () => {
    expect(verifyChain(records)).toEqual({ ok: true, count: 5, headHash: records[4]?.hash });
    for (const record of records) {
      expect(chainRecordHash(record.prevHash, record.seq, record.index, record.record)).toBe(
        referenceHash(record.prevHash, record.seq, record.index, record.record),
      );
    }
    expect(records[0]?.prevHash).toBe(chainGenesisHash);
    expect(verifyChain([])).toEqual({ ok: true, count: 0, headHash: chainGenesisHash });
  });

  it("detects a record whose value was changed", () => {
    const tampered = records.map((record) => (record.seq === 3 ? { ...record, record: record.record.replace("3", "4") } : record));
    expect(verifyChain(tampered)).toMatchObject({ ok: false, brokenAtSeq: 3 });
  });

  it("detects a changed record even when its own hash was recomputed: the next link breaks", () => {
    const [r1, r2, r3] = records as [ChainRecord, ChainRecord, ChainRecord];
    const forged = { ...r2, record: "forged", hash: chainRecordHash(r2.prevHash, r2.seq, r2.index, "forged") };
    expect(verifyChain([r1, forged, r3])).toMatchObject({ ok: false, brokenAtSeq: 3, reason: expect.stringContaining("prevHash") });
  });

  it("detects a dropped record and a reordering", () => {
    expect(verifyChain(records.filter((record) => record.seq !== 2))).toMatchObject({ ok: false, brokenAtSeq: 2 });
    const [r1, r2, r3, r4, r5] = records as [ChainRecord, ChainRecord, ChainRecord, ChainRecord, ChainRecord];
    expect(verifyChain([r1, r2, r4, r3, r5])).toMatchObject({ ok: false, brokenAtSeq: 3 });
    expect(verifyChain([r2, r3])).toMatchObject({ ok: false, brokenAtSeq: 1 });
  });

  it("refuses records of another chain and malformed records", () => {
    const other = writeChain("other", 2);
    expect(verifyChain([records[0] as ChainRecord, other[1] as ChainRecord])).toMatchObject({ ok: false, brokenAtSeq: 2 });
    expect(verifyChain([{ ...(records[0] as ChainRecord), seq: "1" as unknown as number }])).toMatchObject({ ok: false, brokenAtSeq: 1 });
  });

  it("verifies page by page, each page continuing from the last one's head", () => {
    const first = verifyChain(records.slice(0, 2));
    if (!first.ok) throw new Error(first.reason);
    expect(verifyChain(records.slice(2), { seq: 2, hash: first.headHash })).toEqual({ ok: true, count: 3, headHash: records[4]?.hash });
    expect(verifyChain(records.slice(2), { seq: 2, hash: chainGenesisHash })).toMatchObject({ ok: false, brokenAtSeq: 3 });
  });

  it("verifies alike with a native SHA-256 handed in, and uses the one it is given", () => {
    const native = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");
    expect(verifyChain(records, undefined, native)).toEqual(verifyChain(records));
    const tampered = records.map((record) => (record.seq === 4 ? { ...record, record: "altered" } : record));
    expect(verifyChain(tampered, undefined, native)).toEqual(verifyChain(tampered));
    expect(verifyChain(records, undefined, () => "0".repeat(64))).toMatchObject({ ok: false, brokenAtSeq: 1 });
  });
});
