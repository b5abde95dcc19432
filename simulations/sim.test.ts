// The partition simulator in `npm test`: 300 randomized schedules (3, 5 and 7 nodes; drops,
// duplicates, delays, reordering, symmetric and one-way partitions that change over time,
// crashes that lose unpersisted state, restarts, clock drift, snapshots, membership changes)
// must all keep every safety property and converge after the heal. The seed is fixed so CI is
// reproducible; `npm run sim -- --runs N` explores new seeds.

import { describe, expect, it } from "vitest";
import { defaultSimOptions } from "./options.ts";
import { checkSimulations } from "./property.ts";
import { runSimulation } from "./sim.ts";

describe("the partition simulator", () => {
  it("keeps safety and liveness over 300 randomized schedules", () => {
    const sizes = new Set<number>();
    let elections = 0;
    let crashes = 0;
    let snapshotsInstalled = 0;
    let confChangesApplied = 0;
    let lockGrants = 0;
    let staleWritesRefused = 0;
    const workloads = new Set<string>();
    const details = checkSimulations({
      runs: 300,
      seed: 20_261_122,
      safetyTicksMax: 4000,
      onRun: (options, result) => {
        sizes.add(options.clusterSize);
        elections += result.stats.elections;
        crashes += result.stats.crashes;
        snapshotsInstalled += result.stats.snapshotsInstalled;
        confChangesApplied += result.stats.confChangesApplied;
        lockGrants += result.stats.lockGrants;
        staleWritesRefused += result.stats.staleWritesRefused;
        workloads.add(options.workload);
      },
    });
    if (details.failed) {
      throw new Error(
        `simulation failed: ${String(details.errorInstance)}\nreplay: npm run sim -- --seed ${details.seed} --path ${details.counterexamplePath}\n` +
          `counterexample: ${JSON.stringify(details.counterexample?.[0])}`,
      );
    }
    expect(details.numRuns).toBe(300);
    // The schedules really exercised the faults and features they claim to.
    expect([...sizes].sort()).toEqual([3, 5, 7]);
    expect(elections).toBeGreaterThan(300);
    expect(crashes).toBeGreaterThan(100);
    expect(snapshotsInstalled).toBeGreaterThan(50);
    expect(confChangesApplied).toBeGreaterThan(50);
    // Half the schedules run the lock state machine with lease-holding clients: leases were
    // granted, and paused clients' late writes were refused by fencing.
    expect([...workloads].sort()).toEqual(["commands", "locks"]);
    expect(lockGrants).toBeGreaterThan(1000);
    expect(staleWritesRefused).toBeGreaterThan(10);
  });

  it("is a pure function of its options: the same schedule replays identically", () => {
    const options = { ...defaultSimOptions, safetyTicks: 2000, seed: 99 };
    const first = runSimulation(options);
    const second = runSimulation(options);
    expect(first.ok).toBe(true);
    expect(second.stats).toEqual(first.stats);
    const other = runSimulation({ ...options, seed: 100 });
    expect(other.stats).not.toEqual(first.stats);
  });

  it("converges after a fault-free schedule of each cluster size", () => {
    for (const clusterSize of [3, 5, 7] as const) {
      const result = runSimulation({
        ...defaultSimOptions,
        clusterSize,
        safetyTicks: 1000,
        dropProbability: 0,
        duplicateProbability: 0,
        longDelayProbability: 0,
        partitionMode: "none",
        crashProbability: 0,
      });
      expect(result.violation).toBeUndefined();
      expect(result.stats.commandsAcknowledged).toBe(result.stats.commandsProposed);
      expect(result.stats.livenessTicks).toBeGreaterThanOrEqual(0);
    }
  });
});
