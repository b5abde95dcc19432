// The simulator as a fast-check property: generate a schedule, run it, and fail with the
// violation if any. fast-check then shrinks the schedule to a small counterexample, and
// (seed, path) replays it exactly.

import fc from "fast-check";
import type { PlantedBug } from "../raft/planted-bugs.ts";
import { type ClientPlantedBug, type SimOptions, simOptionsArbitrary } from "./options.ts";
import { type NodeImplementation, runSimulation, type SimResult } from "./sim.ts";

/** SimulationFailure carries the violation and the whole result, so reporters can print both. */
export class SimulationFailure extends Error {
  readonly result: SimResult;
  constructor(result: SimResult) {
    const violation = result.violation;
    super(violation === undefined ? "simulation failed" : `${violation.kind} at tick ${violation.tick}: ${violation.message}`);
    this.name = "SimulationFailure";
    this.result = result;
  }
}

export interface CheckOptions {
  readonly runs: number;
  readonly seed: number;
  readonly path?: string;
  readonly safetyTicksMax: number;
  readonly plantedBug?: PlantedBug;
  readonly plantedClientBug?: ClientPlantedBug;
  /** implementation: the node code to run (a mutant with a planted bug, in tests); production by default. */
  readonly implementation?: NodeImplementation;
  /** hostile: draw schedules from the hostile end of every fault range (see simOptionsArbitrary). */
  readonly hostile?: boolean;
  /** peerRefusals: every schedule with SimOptions.peerRefusals on (a message to a down node is reported to its sender). */
  readonly peerRefusals?: boolean;
  /** shrink: let fast-check shrink a failure (default true); a bug hunt that only needs the first failure turns it off. */
  readonly shrink?: boolean;
  /** onRun is called after every schedule (shrinking runs included), for progress and totals. */
  readonly onRun?: (options: SimOptions, result: SimResult) => void;
}

/** checkSimulations runs `runs` generated schedules and returns fast-check's report. */
export function checkSimulations(options: CheckOptions): fc.RunDetails<[SimOptions]> {
  const generated = simOptionsArbitrary({
    safetyTicksMax: options.safetyTicksMax,
    ...(options.hostile === true ? { hostile: true } : {}),
    ...(options.plantedBug === undefined ? {} : { plantedBug: options.plantedBug }),
    ...(options.plantedClientBug === undefined ? {} : { plantedClientBug: options.plantedClientBug }),
  });
  const arbitrary = options.shrink === false ? fc.noShrink(generated) : generated;
  const implementation = options.implementation;
  const property = fc.property(arbitrary, (generatedOptions) => {
    const simOptions: SimOptions = options.peerRefusals === true ? { ...generatedOptions, peerRefusals: true } : generatedOptions;
    const result = runSimulation(simOptions, implementation === undefined ? {} : { implementation });
    options.onRun?.(simOptions, result);
    if (!result.ok) throw new SimulationFailure(result);
  });
  return fc.check(property, {
    numRuns: options.runs,
    seed: options.seed,
    ...(options.path === undefined ? {} : { path: options.path }),
    endOnFailure: options.shrink === false,
  });
}
