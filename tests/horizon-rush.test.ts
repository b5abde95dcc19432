// The horizon rush (npm run bench:rush) at test size: 50 scientists, registered beforehand, fire at
// the instant a block of 60 one-minute slots opens, through three scheduler processes on a
// three-node cluster of real processes, each with the booking page's own client logic (its own
// clock synchronised by Cristian's algorithm, retries with the click's Idempotency-Key, the first
// offered alternative after a lost race). Every check of the benchmark must hold: no 5xx, no slot
// booked twice, every 201 stored with its audit record, the Raft log (read from each node's
// LevelDB) agreeing with the store, and each slot won by the first request to reach the cluster
// that could win it. The checks themselves are shown to fail on planted violations in
// rush-checks.test.ts. Nothing here depends on speed: a slow machine only gets a longer lead.

import { describe, expect, it } from "vitest";
import { runHorizonRush } from "../harness/horizon-rush.ts";

describe("the horizon rush, 50 scientists", () => {
  it("passes every check of the benchmark, with real contention", async () => {
    const report = await runHorizonRush({
      scientists: 50,
      telescopes: 1,
      seed: 18,
      clockSkewMaxMs: 2_000,
      slotsPerRangeMax: 6,
      progress: (message) => console.log(`horizon-rush: ${message}`),
    });
    console.log(
      `horizon-rush: ${report.requests.total} requests ${JSON.stringify(report.requests.byStatus)}, 409s ${JSON.stringify(report.requests.conflictsByCode)}; ` +
        `${report.clicks.firstWon} first choices and ${report.clicks.secondWon} of ${report.clicks.second} second choices won; ${report.slotsBookedInBlock} of the ${report.slotsOpened} slots that opened booked, and ${report.slotsBooked - report.slotsBookedInBlock} others offered as alternatives`,
    );
    for (const check of report.checks) console.log(`horizon-rush: ${check.ok ? "✓" : "✗"} ${check.name}: ${check.detail}`);
    expect(report.checks.filter((check) => !check.ok)).toEqual([]);
    expect(report.checks).toHaveLength(7);
    // A rush, not a queue: most first choices lost, to a 409 that offered alternatives.
    expect(report.clicks.first).toBe(50);
    expect(report.clicks.firstWon).toBeGreaterThan(0);
    expect((report.requests.conflictsByCode["slot_taken"] ?? 0) + (report.requests.conflictsByCode["slot_busy"] ?? 0)).toBeGreaterThan(10);
    expect(report.requests.serverErrors).toBe(0);
    expect(report.verdict.winners.length).toBe(report.slotsBooked);
    expect(report.slotsBookedInBlock).toBeGreaterThan(0);
    expect(report.slotsBookedInBlock).toBeLessThanOrEqual(report.slotsOpened);
  }, 300_000);
});
