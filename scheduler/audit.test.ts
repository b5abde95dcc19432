// AuditTrail verifies the chain incrementally and must say so when it does not verify. Driven by
// a fake cluster that serves chain records from memory, so a record can be tampered with.
import { describe, expect, it } from "vitest";
import { type ChainRecord, chainGenesisHash, chainRecordHash } from "../protocol/chain.ts";
import { AuditTrail } from "./audit.ts";
import type { ClusterItem, ClusterPort } from "./cluster.ts";

function chainOf(count: number): { key: string; record: ChainRecord }[] {
  const out: { key: string; record: ChainRecord }[] = [];
  let prevHash = chainGenesisHash;
  for (let seq = 1; seq <= count; seq += 1) {
    const index = seq * 10;
    const record = JSON.stringify({ event_type: "BOOKING_CREATED", level: "AUDIT", details: { n: seq } });
    const hash = chainRecordHash(prevHash, seq, index, record);
    out.push({ key: `~chain/audit/${String(index).padStart(16, "0")}`, record: { chain: "audit", seq, index, prevHash, hash, record } });
    prevHash = hash;
  }
  return out;
}

function fakeCluster(items: { key: string; record: ChainRecord }[], delayMs = 0): ClusterPort & { reads: number } {
  const port = {
    reads: 0,
    async range(_prefix: string, options: { limit: number; after?: string }) {
      port.reads += 1;
      // A delay lets concurrent verifications interleave, as they do against the real cluster.
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      const after = options.after ?? "";
      const matching = items.filter((item) => item.key > after);
      const page: ClusterItem[] = matching
        .slice(0, options.limit)
        .map((item) => ({ key: item.key, value: JSON.stringify(item.record), modIndex: item.record.index }));
      return { items: page, more: matching.length > options.limit };
    },
  };
  return port as unknown as ClusterPort & { reads: number };
}

describe("AuditTrail", () => {
  it("verifies the chain, pages through it, and verifies only what is new on later requests", async () => {
    const items = chainOf(2500);
    const cluster = fakeCluster(items);
    const trail = new AuditTrail(cluster, 100_000);
    const first = await trail.page({ limit: 2 }, "r");
    expect(first.chain).toMatchObject({ verified: true, records: 2500 });
    expect(first.items.map((item) => item.seq)).toEqual([1, 2]);
    const second = await trail.page({ limit: 2, cursor: first.nextCursor }, "r");
    expect(second.items.map((item) => item.seq)).toEqual([3, 4]);
    cluster.reads = 0;
    await trail.verify("r");
    expect(cluster.reads).toBe(1);
  });

  it("says verified: false, and where, when a record was changed", async () => {
    const items = chainOf(30);
    const victim = items[11] as { key: string; record: ChainRecord };
    victim.record = { ...victim.record, record: victim.record.record.replace('"n":12', '"n":99') };
    const status = await new AuditTrail(fakeCluster(items), 100_000).verify("r");
    expect(status).toMatchObject({ verified: false, brokenAtSeq: 12 });
  });

  it("verifies correctly under concurrency: eight requests at once on a fresh trail all say verified, and so do later ones (issue 14)", async () => {
    // Before, the second of two concurrent runs checked records 1… against the head the first had
    // moved to, said "expected seq 3, found 1", and the trail stayed "broken" for good.
    const items = chainOf(2);
    const cluster = fakeCluster(items, 5);
    const trail = new AuditTrail(cluster, 100_000);
    const statuses = await Promise.all(Array.from({ length: 8 }, () => trail.page({ limit: 1 }, "r")));
    for (const page of statuses) expect(page.chain).toEqual({ verified: true, records: 2, headHash: items[1]?.record.hash });
    items.push(
      ...chainOf(3)
        .slice(2)
        .map((item) => item),
    ); // a third record, appended later
    const later = await Promise.all(Array.from({ length: 8 }, () => trail.verify("r")));
    for (const status of later) expect(status).toMatchObject({ verified: true, records: 3 });
    expect(await trail.verify("r")).toMatchObject({ verified: true, records: 3 });
  });

  it("runs one verification at a time, with one more queued for everything that arrives meanwhile", async () => {
    const cluster = fakeCluster(chainOf(5), 5);
    const trail = new AuditTrail(cluster, 100_000);
    await Promise.all(Array.from({ length: 20 }, () => trail.verify("r")));
    // The first run reads from the genesis (one page, the chain is short); the queued run reads what is new (nothing, one page).
    expect(cluster.reads).toBe(2);
  });

  it("says partial when one request may not verify it all, and goes on from there", async () => {
    const trail = new AuditTrail(fakeCluster(chainOf(2500)), 1000);
    expect(await trail.verify("r")).toMatchObject({ verified: "partial", verifiedThroughSeq: 1000 });
    expect(await trail.verify("r")).toMatchObject({ verified: "partial", verifiedThroughSeq: 2000 });
    expect(await trail.verify("r")).toMatchObject({ verified: true, records: 2500 });
  });
});
