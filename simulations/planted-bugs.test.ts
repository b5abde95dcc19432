// The checkers must bite. Each planted bug (raft/planted-bugs.ts) breaks one rule of the Raft
// paper; for each, the simulator — the same generator and checkers as the main property — must
// find a violation within the stated number of schedules. Runs are deterministic, so the run at
// which each bug is found is reproducible (docs/SIMULATION.md lists the measured figures).

import { describe, expect, it } from "vitest";
import { type PlantedBug, plantedBugs } from "../raft/planted-bugs.ts";
import { type LockPlantedBug, lockPlantedBugs } from "./lock-workload.ts";
import { checkSimulations, SimulationFailure } from "./property.ts";
import { runSimulation } from "./sim.ts";

/** runsMax is the stated bound: every planted bug is found within this many schedules from seed 1. */
const runsMax = 1000;

describe("planted bugs are found by the simulator", () => {
  it.each(plantedBugs.map((bug) => [bug]))("finds %s within the stated number of schedules", (bug: PlantedBug) => {
    const details = checkSimulations({ runs: runsMax, seed: 1, safetyTicksMax: 3000, plantedBug: bug });
    expect(details.failed, `${bug} was not found in ${runsMax} schedules`).toBe(true);
    expect(details.numRuns).toBeLessThanOrEqual(runsMax);
    expect(details.errorInstance).toBeInstanceOf(SimulationFailure);
    // The bug, not the schedule, is to blame: the shrunk counterexample passes once the bug is removed.
    const counterexample = details.counterexample?.[0];
    expect(counterexample?.plantedBug).toBe(bug);
    if (counterexample === undefined) return;
    const { plantedBug: _removed, ...withoutBug } = counterexample;
    expect(runSimulation(withoutBug).violation).toBeUndefined();
  });

  /** lockRunsMax is the stated bound for the lease bugs (lock workload): found within this many schedules from seed 1. */
  const lockRunsMax = 100;
  it.each(lockPlantedBugs.map((bug) => [bug]))("finds the lease bug %s within the stated number of schedules", (bug: LockPlantedBug) => {
    const details = checkSimulations({ runs: lockRunsMax, seed: 1, safetyTicksMax: 3000, plantedLockBug: bug });
    expect(details.failed, `${bug} was not found in ${lockRunsMax} schedules`).toBe(true);
    const failure = details.errorInstance as SimulationFailure;
    expect(failure.result.violation?.kind).toBe("double_holder");
    const counterexample = details.counterexample?.[0];
    expect(counterexample?.plantedLockBug).toBe(bug);
    if (counterexample === undefined) return;
    const { plantedLockBug: _removed, ...withoutBug } = counterexample;
    expect(runSimulation(withoutBug).violation).toBeUndefined();
  });

  it("finds nothing with no bug planted, over the same schedules", () => {
    const details = checkSimulations({ runs: 200, seed: 1, safetyTicksMax: 3000 });
    expect(details.failed ? String(details.errorInstance) : "ok").toBe("ok");
  });
});
