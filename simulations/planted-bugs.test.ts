// The simulator must find bugs in the code it runs. Each planted bug breaks one rule, and for each
// the simulator — the same generator (its hostile end: the same faults, more of them) and checkers
// as the main property — must find a violation within the stated number of schedules from seed 1.
// Runs are deterministic, so the run at which each is found is reproducible (simulations/README.md
// lists the measured figures). The bug, not the schedule, must be to blame: the failing schedule
// passes on the production code.
//
// - Driver and lock-service bugs (planted-node-bugs.ts) are source rewrites: node/ is copied under
//   test-results/mutants/ with the text replaced (tests/support/mutants.ts), and the simulator runs
//   the copy's LockService. No production code path has a branch for them.
// - Raft core bugs (raft/planted-bugs.ts) are switched on in the core's config, behind the lint
//   guard that keeps node/ from importing them.
// - One client bug (counting the lease from the reply) shows the lease checks bite.

import { afterAll, describe, expect, it } from "vitest";
import { type PlantedBug, plantedBugs } from "../raft/planted-bugs.ts";
import { importMutant, removeMutants } from "../tests/support/mutants.ts";
import { type PlantedNodeBug, plantedNodeBugs } from "./planted-node-bugs.ts";
import { type CheckOptions, checkSimulations, SimulationFailure } from "./property.ts";
import { type NodeImplementation, runSimulation } from "./sim.ts";

/** runsMax is the stated bound: every planted bug is found within this many schedules from seed 1. */
const runsMax = 150;
const hunt = { runs: runsMax, seed: 1, safetyTicksMax: 2000, hostile: true, shrink: false } as const;
/**
 * runsMaxRare: the budget of the bug whose failing schedules are rare. membership_commit_not_stored
 * needs a crash between applying a membership change and the node's next write: 2 of 400 other
 * hostile schedules (fast-check seed 7) found it with the driver before issue 17's side turns, 1
 * of 400 after. From seed 1 it was found at run 34 before the side turns moved every schedule's
 * timing, at run 219 since: the luck of the draw, so its budget is 300.
 */
const runsMaxRare = 300;
const rareBugs: readonly string[] = ["membership_commit_not_stored"];

afterAll(() => removeMutants());

function expectFound(details: ReturnType<typeof checkSimulations>, bug: string, runs = runsMax): SimulationFailure {
  expect(details.failed, `${bug} was not found in ${runs} schedules`).toBe(true);
  expect(details.numRuns).toBeLessThanOrEqual(runs);
  expect(details.errorInstance).toBeInstanceOf(SimulationFailure);
  return details.errorInstance as SimulationFailure;
}

/** expectBugToBlame: the failing schedule, run on the production code, passes. */
function expectBugToBlame(details: ReturnType<typeof checkSimulations>): void {
  const counterexample = details.counterexample?.[0];
  expect(counterexample).toBeDefined();
  if (counterexample === undefined) return;
  const { plantedBug: _core, plantedClientBug: _client, ...withoutBug } = counterexample;
  expect(runSimulation(withoutBug).violation).toBeUndefined();
}

describe("planted driver and lock-service bugs are found by the simulator", () => {
  it.each(plantedNodeBugs.map((bug) => [bug.name, bug] as const))(
    "finds %s",
    { timeout: 600_000 },
    async (_name: string, bug: PlantedNodeBug) => {
      const implementation = await importMutant<NodeImplementation>("node", "lock-service.ts", bug.mutations);
      const runs = rareBugs.includes(bug.name) ? runsMaxRare : runsMax;
      const details = checkSimulations({ ...hunt, runs, implementation } satisfies CheckOptions);
      expectFound(details, bug.name, runs);
      expectBugToBlame(details);
    },
  );
});

describe("planted Raft core bugs are found by the simulator running the production node", () => {
  // CPU-bound and deterministic: some hunts take a minute at a load of 10.
  it.each(plantedBugs.map((bug) => [bug]))("finds %s", { timeout: 600_000 }, (bug: PlantedBug) => {
    const runs = rareBugs.includes(bug) ? runsMaxRare : runsMax;
    const details = checkSimulations({ ...hunt, runs, plantedBug: bug });
    expectFound(details, bug, runs);
    expect(details.counterexample?.[0].plantedBug).toBe(bug);
    expectBugToBlame(details);
  });

  // The driver asserts the rule of raft/node.ts mayLeaveBeforePersist on every message it sends
  // while a write is in flight, so the core bug above is found by that assertion (an invariant).
  // With the assertion taken out as well, the simulator's own check must still find it: an
  // acknowledgement or a vote that leaves before its write is durable (durability of promises).
  it("finds acknowledge_while_persisting by the durability of promises alone (the driver's assertion removed too)", async () => {
    const implementation = await importMutant<NodeImplementation>("node", "lock-service.ts", [
      { file: "node/driver/raft-driver.ts", original: "mayLeaveBeforePersist(message, this.durableTerm),", replacement: "true," },
    ]);
    const details = checkSimulations({ ...hunt, implementation, plantedBug: "acknowledge_while_persisting" });
    expect(expectFound(details, "acknowledge_while_persisting").result.violation?.kind).toBe("durability");
    expectBugToBlame(details);
  });

  it("finds the client bug client_counts_from_reply as a double holder", () => {
    const details = checkSimulations({ ...hunt, plantedClientBug: "client_counts_from_reply" });
    expect(expectFound(details, "client_counts_from_reply").result.violation?.kind).toBe("double_holder");
    expectBugToBlame(details);
  });
});

describe("with no bug planted", () => {
  it("finds nothing over the same hostile schedules (the whole budget)", () => {
    const details = checkSimulations(hunt);
    expect(details.failed ? String(details.errorInstance) : "ok").toBe("ok");
  });
});
