// SimOptions describe one simulated schedule completely: cluster shape, fault rates, workload
// and the seed of the simulator's own random source. A run is a pure function of its options,
// and fast-check generates the options (and shrinks them when a run fails).

import fc from "fast-check";
import type { PlantedBug } from "../raft/planted-bugs.ts";
import type { LockPlantedBug } from "./lock-workload.ts";

export type PartitionMode = "none" | "symmetric" | "one_way" | "isolate_leader" | "mixed";

/** Workload: "commands" replicates opaque commands; "locks" runs the lock state machine with lease-holding clients. */
export type Workload = "commands" | "locks";

export interface SimOptions {
  /** seed drives every random choice the simulator makes (and each core's election jitter). */
  readonly seed: number;
  readonly clusterSize: 3 | 5 | 7;
  /** safetyTicks is the length of the faulty phase; then the faults heal and liveness is checked. */
  readonly safetyTicks: number;
  readonly electionTimeoutTicks: number;
  readonly heartbeatIntervalTicks: number;
  readonly entriesPerAppendMax: number;
  readonly inflightAppendsMax: number;
  /** Network faults, per message. */
  readonly dropProbability: number;
  readonly duplicateProbability: number;
  /**
   * delayTicksMax: in the faulty phase each message takes 0..delayTicksMax ticks (with reorder
   * they also overtake each other), even longer than an election timeout. The heal brings it
   * down to healedDelayTicksMax(options), because liveness needs the paper's timing requirement
   * (§5.6: broadcast time << election timeout); safety must hold whatever the timing.
   */
  readonly delayTicksMax: number;
  readonly reorder: boolean;
  /** longDelayProbability: the chance a message is held for up to 3 election timeouts (so stale messages arrive late). */
  readonly longDelayProbability: number;
  readonly partitionMode: PartitionMode;
  /** partitionStabilityTicks: how long a partition lasts before the network is drawn anew. */
  readonly partitionStabilityTicks: number;
  /** crashProbability: per tick, the chance that one live node crashes (losing what it had not persisted). */
  readonly crashProbability: number;
  readonly restartDelayTicksMax: number;
  /** clockDriftPercentMax: each node's clock runs at 100 ± this percent of real time. */
  readonly clockDriftPercentMax: number;
  /** Workload, per tick. */
  readonly proposalProbability: number;
  readonly readProbability: number;
  readonly confChangeProbability: number;
  /** snapshotIntervalEntries: a node compacts its log once this many entries are applied past its snapshot. */
  readonly snapshotIntervalEntries: number;
  readonly workload: Workload;
  /**
   * adminProbability: per tick, the chance of an operator's action: a leadership transfer to a
   * random voter, or a stray campaign() on a random node; with it on, membership changes may also
   * shrink the voters down to one. Drawn from a separate random stream.
   */
  readonly adminProbability: number;
  readonly plantedBug?: PlantedBug;
  /** plantedLockBug: a lease bug (lock workload only; tests of the simulator only). */
  readonly plantedLockBug?: LockPlantedBug;
}

/** healedDelayTicksMax is the message delay bound after the heal: at most 30% of the election timeout. */
export function healedDelayTicksMax(options: SimOptions): number {
  return Math.min(options.delayTicksMax, Math.floor(0.3 * options.electionTimeoutTicks));
}

/** defaultSimOptions is a moderate schedule, for the bench and for hand-written runs. */
export const defaultSimOptions: SimOptions = {
  seed: 1,
  clusterSize: 5,
  safetyTicks: 10_000,
  electionTimeoutTicks: 10,
  heartbeatIntervalTicks: 2,
  entriesPerAppendMax: 16,
  inflightAppendsMax: 8,
  dropProbability: 0.02,
  duplicateProbability: 0.01,
  delayTicksMax: 2,
  reorder: true,
  longDelayProbability: 0.001,
  partitionMode: "mixed",
  partitionStabilityTicks: 200,
  crashProbability: 0.002,
  restartDelayTicksMax: 50,
  clockDriftPercentMax: 10,
  proposalProbability: 0.2,
  readProbability: 0.05,
  confChangeProbability: 0.002,
  snapshotIntervalEntries: 50,
  workload: "commands",
  adminProbability: 0.002,
};

/** simOptionsArbitrary generates schedules; `safetyTicks` bounds the length of each. */
export function simOptionsArbitrary(limits: {
  safetyTicksMax: number;
  plantedBug?: PlantedBug;
  plantedLockBug?: LockPlantedBug;
}): fc.Arbitrary<SimOptions> {
  return fc
    .record({
      seed: fc.integer({ min: 0, max: 0x7fff_ffff }),
      clusterSize: fc.constantFrom<3 | 5 | 7>(3, 5, 7),
      safetyTicks: fc.integer({ min: 100, max: limits.safetyTicksMax }),
      electionTimeoutTicks: fc.integer({ min: 5, max: 20 }),
      heartbeatRatio: fc.integer({ min: 2, max: 5 }),
      // One entry per append is weighted up: it makes replication step through the log entry by
      // entry, which opens the windows the subtle rules guard (Figure 8 needs one).
      entriesPerAppendMax: fc.oneof({ arbitrary: fc.constant(1), weight: 4 }, { arbitrary: fc.constantFrom(2, 4, 16, 64), weight: 4 }),
      inflightAppendsMax: fc.integer({ min: 1, max: 16 }),
      dropProbability: fc.constantFrom(0, 0.01, 0.05, 0.1, 0.2),
      duplicateProbability: fc.constantFrom(0, 0.01, 0.05),
      delayTicksMax: fc.integer({ min: 0, max: 6 }),
      reorder: fc.boolean(),
      longDelayProbability: fc.constantFrom(0, 0.001, 0.01, 0.05, 0.1),
      partitionMode: fc.constantFrom<PartitionMode>("none", "symmetric", "one_way", "isolate_leader", "mixed"),
      partitionStabilityTicks: fc.integer({ min: 10, max: 400 }),
      crashProbability: fc.constantFrom(0, 0.001, 0.005, 0.02, 0.05),
      restartDelayTicksMax: fc.integer({ min: 0, max: 100 }),
      clockDriftPercentMax: fc.integer({ min: 0, max: 30 }),
      proposalProbability: fc.constantFrom(0.05, 0.2, 0.5),
      readProbability: fc.constantFrom(0, 0.05, 0.2),
      confChangeProbability: fc.constantFrom(0, 0.002, 0.01),
      snapshotIntervalEntries: fc.integer({ min: 3, max: 200 }),
      // Last, so adding it left every earlier field's values (for a given seed) unchanged.
      workload: fc.constantFrom<Workload>("commands", "locks"),
      adminProbability: fc.constantFrom(0, 0.002, 0.01),
    })
    .map(({ heartbeatRatio, ...rest }) => ({
      ...rest,
      heartbeatIntervalTicks: Math.max(1, Math.floor(rest.electionTimeoutTicks / heartbeatRatio)),
      // Planted Raft bugs run under the commands workload, where their measured figures were taken.
      ...(limits.plantedBug === undefined ? {} : { plantedBug: limits.plantedBug, workload: "commands" as const, adminProbability: 0 }),
      ...(limits.plantedLockBug === undefined ? {} : { plantedLockBug: limits.plantedLockBug, workload: "locks" as const }),
    }));
}
