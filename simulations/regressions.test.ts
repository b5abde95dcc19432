// Schedules on which the simulator once found a real bug in the production node, kept so the bug
// stays fixed. Each runs in well under a second; each fails without its fix (shown when the fix
// was made, by running the schedule on the unfixed code).

import { describe, expect, it } from "vitest";
import type { SimOptions } from "./options.ts";
import { runSimulation } from "./sim.ts";

describe("regression schedules found by the simulator", () => {
  // The driver wrote the commit index only along with something else (needsSave). n3 applied the
  // removal of n4 from {n3, n4}; the operator stopped n4; n3 crashed before any other write and
  // restarted with a stored commit index below the removal, so its membership was {n3, n4} again
  // and it waited for n4's vote forever (liveness: no leader after the heal). The fix writes the
  // commit index before a membership change is applied (RaftDriver.commitsMembershipChange).
  it("a node that applied a removal still knows it after a restart (commit index written with membership changes)", () => {
    const options: SimOptions = {
      seed: 161372015,
      clusterSize: 3,
      safetyTicks: 565,
      electionTimeoutTicks: 14,
      entriesPerAppendMax: 4,
      inflightAppendsMax: 1,
      dropProbability: 0,
      duplicateProbability: 0.05,
      delayTicksMax: 1,
      reorder: false,
      longDelayProbability: 0.001,
      partitionMode: "none",
      partitionStabilityTicks: 10,
      crashProbability: 0.005,
      restartDelayTicksMax: 81,
      fsyncLatencyMsMax: 8,
      stallProbability: 0.01,
      fsyncFailureProbability: 0,
      tornWriteProbability: 0,
      diskFullProbability: 0,
      corruptionProbability: 0,
      clockDriftPercentMax: 5,
      clockStepProbability: 0,
      clientCount: 4,
      clientActProbability: 0.8,
      readProbability: 0,
      confChangeProbability: 0.01,
      snapshotIntervalEntries: 15,
      adminProbability: 0.01,
      heartbeatIntervalTicks: 7,
    };
    const result = runSimulation(options);
    expect(result.violation).toBeUndefined();
    expect(result.stats.livenessTicks).toBeGreaterThanOrEqual(0);
  });
});
