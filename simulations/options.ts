// SimOptions describe one simulated schedule completely: cluster shape, fault rates (network, disk,
// clocks, crashes), workload and the seed of the simulator's own random source. A run is a pure
// function of its options, and fast-check generates the options (and shrinks them when a run fails).

import fc from "fast-check";
import type { PlantedBug } from "../raft/planted-bugs.ts";

export type PartitionMode = "none" | "symmetric" | "one_way" | "isolate_leader" | "mixed";

/**
 * ClientPlantedBug: a bug in the simulated client, which shows that the lease checks bite: it
 * counts its lease from the reply's arrival instead of from when it sent the request.
 */
export type ClientPlantedBug = "client_counts_from_reply";

/** tickMs: one tick of every node's driver (tickIntervalMs), in milliseconds of its own clock. */
export const tickMs = 10;

export interface SimOptions {
  /** seed drives every random choice the simulator makes (and each core's election jitter). */
  readonly seed: number;
  readonly clusterSize: 3 | 5 | 7;
  /** safetyTicks is the length of the faulty phase (in ticks of true time); then the faults heal and liveness is checked. */
  readonly safetyTicks: number;
  readonly electionTimeoutTicks: number;
  readonly heartbeatIntervalTicks: number;
  readonly entriesPerAppendMax: number;
  readonly inflightAppendsMax: number;
  /** Network faults, per message. */
  readonly dropProbability: number;
  readonly duplicateProbability: number;
  /**
   * delayTicksMax: in the faulty phase each message takes 1 ms .. delayTicksMax ticks (they overtake
   * each other with reorder on). The heal brings it down to healedDelayTicksMax(options): liveness
   * needs the paper's timing requirement (§5.6: broadcast time ≪ election timeout); safety must hold
   * whatever the timing.
   */
  readonly delayTicksMax: number;
  readonly reorder: boolean;
  /** longDelayProbability: the chance a message is held for up to 3 election timeouts (so stale messages arrive late). */
  readonly longDelayProbability: number;
  readonly partitionMode: PartitionMode;
  /** partitionStabilityTicks: how long a partition lasts before the network is drawn anew. */
  readonly partitionStabilityTicks: number;
  /** crashProbability: per tick, the chance that one live node crashes (losing every write not yet synced). */
  readonly crashProbability: number;
  readonly restartDelayTicksMax: number;
  /** Disk faults (sim-disk.ts). fsyncLatencyMsMax: a write takes 0.2 .. this many ms. */
  readonly fsyncLatencyMsMax: number;
  /** stallProbability: per write, the chance it stalls for 1 to 3 election timeouts. */
  readonly stallProbability: number;
  /** fsyncFailureProbability: per write, the chance its fsync fails (the node fails-stop). */
  readonly fsyncFailureProbability: number;
  /** tornWriteProbability: per crash, the chance the write being written is torn. */
  readonly tornWriteProbability: number;
  /** diskFullProbability: per tick, the chance one node's disk fills up for a while. */
  readonly diskFullProbability: number;
  /** corruptionProbability: per tick, the chance one record on one node's disk is damaged at rest. */
  readonly corruptionProbability: number;
  /** clockDriftPercentMax: each node's and client's clock runs at 100 ± this percent of true time (at most 5: the clients' lease discount covers that). */
  readonly clockDriftPercentMax: number;
  /** clockStepProbability: per tick, the chance one node's wall clock steps forward or back by 1 to 10 minutes. */
  readonly clockStepProbability: number;
  /**
   * peerRefusals: a message sent to a node that is down is refused, and the sender's transport
   * hears of it (PeerTransport.onPeerRefused: a follower whose leader is down then campaigns
   * without waiting out the election timeout). Off unless set: the saved seeds and the planted-bug
   * budgets were found without it; `sim.test.ts` runs schedules with it on. @default false
   */
  readonly peerRefusals?: boolean;
  /** clientCount: simulated clients; clientActProbability: per tick, the chance an idle client does something. */
  readonly clientCount: number;
  readonly clientActProbability: number;
  /** readProbability: per tick, the chance a client reads a key (linearizable read) besides. */
  readonly readProbability: number;
  readonly confChangeProbability: number;
  /** snapshotIntervalEntries: a node compacts its log once this many entries are applied past its snapshot. */
  readonly snapshotIntervalEntries: number;
  /** adminProbability: per tick, the chance of an operator's leadership transfer; with it on, membership changes may also shrink the voters. */
  readonly adminProbability: number;
  /**
   * slowWrites: in the faulty phase, every write of the disk of the leader (`of: "leader"`, while
   * it leads) or of every node (`of: "every"`, from the first election of a leader on: an election
   * whose votes each take an fsync longer than the election timeout cannot end, in any Raft;
   * etcd asks for an election timeout of 10 round trips and fsyncs) takes msMin .. msMax. Not drawn by the generator:
   * scenarios set it (a leader whose fsyncs outlast the election timeout must keep its
   * leadership, issue 17; simulations/slow-disk.test.ts).
   */
  readonly slowWrites?: { readonly msMin: number; readonly msMax: number; readonly of: "leader" | "every" };
  /** plantedBug: a Raft rule broken in the core (raft/planted-bugs.ts); tests of the simulator only. */
  readonly plantedBug?: PlantedBug;
  readonly plantedClientBug?: ClientPlantedBug;
}

/** healedDelayTicksMax is the message delay bound after the heal: at most 30% of the election timeout. */
export function healedDelayTicksMax(options: SimOptions): number {
  return Math.min(options.delayTicksMax, Math.floor(0.3 * options.electionTimeoutTicks));
}

/**
 * defaultSimOptions is a moderate schedule with every kind of fault on, for the bench and for
 * hand-written runs. Its timing is the node's default (node/config.ts: 15 election ticks, 3
 * heartbeat ticks of 10 ms).
 */
export const defaultSimOptions: SimOptions = {
  seed: 1,
  clusterSize: 5,
  safetyTicks: 10_000,
  electionTimeoutTicks: 15,
  heartbeatIntervalTicks: 3,
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
  fsyncLatencyMsMax: 2,
  stallProbability: 0.002,
  fsyncFailureProbability: 0.0005,
  tornWriteProbability: 0.5,
  diskFullProbability: 0.0002,
  corruptionProbability: 0.0002,
  clockDriftPercentMax: 5,
  clockStepProbability: 0.001,
  clientCount: 4,
  clientActProbability: 0.3,
  readProbability: 0.05,
  confChangeProbability: 0.002,
  snapshotIntervalEntries: 50,
  adminProbability: 0.002,
};

/** simOptionsArbitrary generates schedules; `safetyTicks` bounds the length of each. */
export function simOptionsArbitrary(limits: {
  safetyTicksMax: number;
  plantedBug?: PlantedBug;
  plantedClientBug?: ClientPlantedBug;
  /**
   * hostile narrows the draw to the hostile end of every range (frequent crashes and wall-clock
   * steps, busy clients, one entry per append half the time): a bug hunt within few schedules, as the planted-bug tests
   * run. The same faults, only more of them.
   */
  hostile?: boolean;
}): fc.Arbitrary<SimOptions> {
  const base = generalArbitrary(limits);
  if (limits.hostile !== true) return base;
  return fc
    .tuple(base, fc.constantFrom(0.02, 0.05), fc.integer({ min: 3, max: 6 }), fc.boolean(), fc.constantFrom(0.002, 0.01))
    .map(([options, crashProbability, clientCount, oneEntry, clockStepProbability]) => ({
      ...options,
      crashProbability,
      clockStepProbability,
      clientCount,
      clientActProbability: 0.8,
      restartDelayTicksMax: Math.min(options.restartDelayTicksMax, 3 * options.electionTimeoutTicks),
      ...(oneEntry ? { entriesPerAppendMax: 1 } : {}),
    }));
}

function generalArbitrary(limits: {
  safetyTicksMax: number;
  plantedBug?: PlantedBug;
  plantedClientBug?: ClientPlantedBug;
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
      longDelayProbability: fc.constantFrom(0, 0.001, 0.01, 0.05),
      partitionMode: fc.constantFrom<PartitionMode>("none", "symmetric", "one_way", "isolate_leader", "mixed"),
      partitionStabilityTicks: fc.integer({ min: 10, max: 400 }),
      crashProbability: fc.constantFrom(0, 0.001, 0.005, 0.02),
      restartDelayTicksMax: fc.integer({ min: 0, max: 100 }),
      fsyncLatencyMsMax: fc.constantFrom(0.5, 2, 8, 20),
      stallProbability: fc.constantFrom(0, 0.001, 0.01),
      fsyncFailureProbability: fc.constantFrom(0, 0.0005, 0.005),
      tornWriteProbability: fc.constantFrom(0, 0.5, 1),
      diskFullProbability: fc.constantFrom(0, 0.0005, 0.002),
      corruptionProbability: fc.constantFrom(0, 0.0005, 0.002),
      clockDriftPercentMax: fc.integer({ min: 0, max: 5 }),
      clockStepProbability: fc.constantFrom(0, 0.001, 0.01),
      clientCount: fc.integer({ min: 1, max: 6 }),
      clientActProbability: fc.constantFrom(0.05, 0.3, 0.8),
      readProbability: fc.constantFrom(0, 0.05, 0.2),
      confChangeProbability: fc.constantFrom(0, 0.002, 0.01),
      snapshotIntervalEntries: fc.integer({ min: 3, max: 200 }),
      adminProbability: fc.constantFrom(0, 0.002, 0.01),
    })
    .map(({ heartbeatRatio, ...rest }) => ({
      ...rest,
      heartbeatIntervalTicks: Math.max(1, Math.floor(rest.electionTimeoutTicks / heartbeatRatio)),
      ...(limits.plantedBug === undefined ? {} : { plantedBug: limits.plantedBug }),
      ...(limits.plantedClientBug === undefined ? {} : { plantedClientBug: limits.plantedClientBug }),
    }));
}
