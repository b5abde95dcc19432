// runSimulation runs one whole lock cluster — the production LockService and RaftDriver objects
// that node/main.ts builds, unchanged — on a virtual timeline where only time (SimClock), the disk
// (SimDisk) and the network (SimNetwork) are simulated, through a faulty phase and a healed phase.
// Safety is checked on every event (checker.ts, lock-checker.ts, clients.ts), liveness after the
// heal. It is a pure function of its options: no real clock, no Math.random, no I/O, so a failing
// run replays exactly from its options.
//
// A node "process" is one incarnation: LockService built over what its disk loads, started with
// begin(). A crash ends the process (its pending events are dropped, its unsynced writes lost); a
// restart builds a new LockService from the disk, as a supervisor restarting node/main.ts would.
// An exception out of a process's event is how a node dies: an I/O error from its disk is the
// fail-stop the driver promises (the process crashes and restarts); anything else is a bug.

import type { Applied } from "../lock/lock-state-machine.ts";
import { lockLimitsDefaults } from "../lock/lock-state-machine.ts";
import type { LockCommand, StoredValue } from "../lock/types.ts";
import { crc32c } from "../node/durable-rules.ts";
import type { HostObserver } from "../node/host-observer.ts";
import { LockService, type LockServiceOptions } from "../node/lock-service.ts";
import { raftConfigDefaults } from "../raft/config.ts";
import type { ConfChange, Entry, NodeId, RaftMessage } from "../raft/messages.ts";
import { nodeId } from "../raft/messages.ts";
import type { Role } from "../raft/raft.ts";
import { createSeededRandom } from "../raft/random.ts";
import { SafetyChecker, type Violation, type ViolationKind } from "./checker.ts";
import { type ClientOutcome, SimClients } from "./clients.ts";
import { LockChecker } from "./lock-checker.ts";
import { type Endpoint, nodesMax, SimNetwork } from "./network.ts";
import { healedDelayTicksMax, type SimOptions, tickMs } from "./options.ts";
import { SimClock, type SimProcess, SimScheduler } from "./scheduler.ts";
import { entryChecksum, SimDisk } from "./sim-disk.ts";
import { Timeline, type TimelineEvent } from "./timeline.ts";

/** NodeImplementation: the node code a simulation runs. Production by default; a test may pass a mutant (a copy with a planted bug). */
export interface NodeImplementation {
  readonly LockService: typeof LockService;
}

export const productionNode: NodeImplementation = { LockService };

/**
 * livenessTicksBound is the stated liveness bound: after the heal, a leader must be elected,
 * every client request answered, and every member must have applied the leader's whole log within
 * this many ticks. A fixed allowance for elections, restarts and retries, plus the time to stream
 * the backlog to the slowest member: each round trip (at most 2 × the healed delay + 2 ticks)
 * carries at least entriesPerAppendMax × inflightAppendsMax entries.
 */
export function livenessTicksBound(options: SimOptions, backlogEntries: number): number {
  const delayTicksMax = healedDelayTicksMax(options);
  const roundTripTicks = 2 * delayTicksMax + 2;
  const entriesPerRoundTrip = options.entriesPerAppendMax * options.inflightAppendsMax;
  const catchUpTicks = Math.ceil((2 * backlogEntries * roundTripTicks) / entriesPerRoundTrip);
  return 60 * options.electionTimeoutTicks + 20 * delayTicksMax + options.restartDelayTicksMax + 300 + catchUpTicks;
}

/** FaultKind: every fault the simulator injects, counted by kind (the soak reports them). */
export type FaultKind =
  | "crash"
  | "fail_stop"
  | "partition"
  | "lost_writes"
  | "torn_write"
  | "stall"
  | "fsync_failure"
  | "disk_full"
  | "corruption"
  | "corrupt_start_refused"
  | "clock_step"
  | "leadership_transfer";

export interface SimStats {
  ticks: number;
  events: number;
  elections: number;
  crashes: number;
  faults: Record<FaultKind, number>;
  messagesSent: number;
  /** appendMessages: AppendEntries and their answers sent (for the message economy bound). */
  appendMessages: number;
  deliveries: number;
  dropped: number;
  /** peerRefusals: reports handed to a sender that the peer it sent to was down (PeerTransport.onPeerRefused). */
  peerRefusals: number;
  entriesCommitted: number;
  requests: number;
  answers: number;
  lockGrants: number;
  staleWritesAttempted: number;
  staleWritesRefused: number;
  duplicatesAnswered: number;
  readsServed: number;
  snapshotsWritten: number;
  confChangesApplied: number;
  /** livenessTicks is how long the cluster took to converge after the heal (-1 if it did not). */
  livenessTicks: number;
}

export interface SimResult {
  readonly ok: boolean;
  readonly violation: Violation | undefined;
  readonly stats: SimStats;
  /** timeline: the events that matter, per node (recorded when asked: runSimulation's `timeline`). */
  readonly timeline: readonly TimelineEvent[];
}

export interface RunOptions {
  readonly implementation?: NodeImplementation;
  /** timeline: record the events that matter (elections, crashes, disk faults, grants, fenced writes) for printing. */
  readonly timeline?: boolean;
}

interface SimNode {
  readonly id: NodeId;
  readonly slot: number;
  readonly founder: boolean;
  readonly disk: SimDisk;
  readonly clockRate: number;
  /** wallOffsetMs: the node's wall clock is true time × rate + this; clock steps move it. */
  wallOffsetMs: number;
  readonly endpoint: Endpoint;
  service: LockService | undefined;
  incarnation: number;
  restartAtMs: number;
  diskFullUntilMs: number;
  retired: boolean;
  /** failed: why the node refused to start (a corrupt disk); it stays down until the operator removes it. */
  failed: string | undefined;
  role: Role;
}

const silentLogger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
  fatal: () => undefined,
  trace: () => undefined,
  child: () => silentLogger,
} as unknown as LockServiceOptions["logger"];

/** wallEpochMs: where the simulated wall clocks start (any fixed date will do). */
const wallEpochMs = 1_800_000_000_000;

/** runSimulation runs one schedule to the end (or to its first violation). */
export function runSimulation(options: SimOptions, run: RunOptions = {}): SimResult {
  return new Simulation(options, run).run();
}

class Simulation {
  private readonly options: SimOptions;
  private readonly implementation: NodeImplementation;
  private readonly random;
  private readonly adminRandom;
  private readonly scheduler: SimScheduler;
  private readonly network: SimNetwork;
  private readonly nodes: SimNode[] = [];
  private readonly byId = new Map<string, SimNode>();
  private readonly founders: NodeId[];
  private readonly checker = new SafetyChecker();
  private readonly lockChecker: LockChecker;
  private readonly clients: SimClients;
  private readonly timeline: Timeline;
  private readonly faults = {} as Record<FaultKind, number>;
  private readonly indexOfApplied = new WeakMap<Applied, number>();
  /**
   * promisedTerms: for each append acknowledgement handed out in a Ready, the term its node's log
   * held at the acknowledged index then. The core keeps stepping while the Ready is written, and a
   * newer leader may replace that entry in the core's log before the acknowledgement leaves (after
   * the write, which holds what it promised): the promise is judged by what it said.
   */
  private readonly promisedTerms = new WeakMap<RaftMessage, number | undefined>();
  private readonly ttlMsMin: number;
  private tickNow = 0;
  private healed = false;
  private livenessBoundTicks = Number.MAX_SAFE_INTEGER;
  private livenessTicks = -1;
  private elections = 0;
  private crashes = 0;
  private snapshotsWritten = 0;
  private confChangesApplied = 0;
  private joins = 0;
  private membershipPending = false;
  private pendingRetirements: { nodeId: NodeId; index: number; voters: readonly NodeId[] }[] = [];

  constructor(options: SimOptions, run: RunOptions) {
    this.options = options;
    this.implementation = run.implementation ?? productionNode;
    this.random = createSeededRandom(options.seed);
    this.adminRandom = createSeededRandom(options.seed ^ 0x2545f491);
    this.timeline = new Timeline(run.timeline === true);
    this.scheduler = new SimScheduler((owner, error) => this.processFailed(owner, error));
    const longestElectionMs = 2 * options.electionTimeoutTicks * tickMs;
    // As node/main.ts: a lease must outlast the longest failover.
    this.ttlMsMin = Math.ceil(1.5 * longestElectionMs);
    this.network = new SimNetwork({
      peerRefusals: options.peerRefusals === true,
      faults: {
        dropProbability: options.dropProbability,
        duplicateProbability: options.duplicateProbability,
        delayMsMax: options.delayTicksMax * tickMs,
        reorder: options.reorder,
        longDelayProbability: options.longDelayProbability,
        longDelayMsMax: 3 * options.electionTimeoutTicks * tickMs,
      },
      scheduler: this.scheduler,
      random: createSeededRandom(options.seed ^ 0x68e31da4),
      slotOf: (id) => (this.byId.get(id) as SimNode).slot,
      endpointOf: (slot) => this.nodes[slot]?.endpoint,
      onSend: (message) => this.checkPromise(message),
    });
    this.lockChecker = new LockChecker((kind, message) => this.fail(kind, message));
    this.clients = new SimClients(
      {
        clientCount: options.clientCount,
        ttlMs: 2 * this.ttlMsMin,
        retryMs: 4 * options.electionTimeoutTicks * tickMs,
        actProbability: options.clientActProbability,
        readProbability: options.readProbability,
        clockDriftPercentMax: Math.min(5, options.clockDriftPercentMax),
        plantedBug: options.plantedClientBug,
      },
      {
        random: createSeededRandom(options.seed ^ 0x1b873593),
        nowMs: () => this.scheduler.nowMs,
        healed: () => this.healed,
        liveNodeIds: () => this.liveNodes().map((node) => node.id),
        submit: (id, command, awaitQueuedMs, reply) => this.clientSubmit(id, command, awaitQueuedMs, reply),
        read: (id, key, reply) => this.clientRead(id, key, reply),
        indexOf: (applied) => this.indexOfApplied.get(applied),
        acknowledged: (index) => this.checker.acknowledged(index),
        fail: (kind, message) => this.fail(kind, message),
        note: (clientId, text) => this.timeline.record(this.scheduler.nowMs, clientId, text),
      },
    );
    this.founders = Array.from({ length: options.clusterSize }, (_, position) => nodeId(`n${position + 1}`));
    for (const id of this.founders) this.addNode(id, true);
  }

  run(): SimResult {
    // Nothing in the driver or the lock service may read the wall clock: leases and elections run
    // on the monotonic Clock seam. To make that a checked property, Date.now answers each node's
    // own wall clock here, which steps by minutes (clock steps); code that used it would misbehave.
    // biome-ignore lint/style/noRestrictedGlobals: the simulator replaces the wall clock with each node's simulated one.
    const realDateNow = Date.now;
    // Errors are values on hot paths of the driver (not_leader answers are DriverErrors); their
    // stack traces are a large share of a simulation's time and nobody reads them. A replay with a
    // timeline keeps them, for a failure's report.
    const realStackTraceLimit = Error.stackTraceLimit;
    if (!this.timeline.enabled) Error.stackTraceLimit = 0;
    // biome-ignore lint/style/noRestrictedGlobals: the simulator replaces the wall clock with each node's simulated one.
    Date.now = () => this.wallNowMs();
    try {
      const safetyTicks = this.options.safetyTicks;
      for (this.tickNow = 0; this.tickNow < safetyTicks + this.livenessBoundTicks; this.tickNow++) {
        if (this.tickNow === safetyTicks) this.heal();
        this.worldTick();
        this.scheduler.runUntil((this.tickNow + 1) * tickMs);
        if (this.checker.violation !== undefined) break;
        if (this.healed && this.converged()) {
          this.livenessTicks = this.tickNow - safetyTicks;
          break;
        }
      }
      if (this.checker.violation === undefined) this.finalChecks();
    } finally {
      // biome-ignore lint/style/noRestrictedGlobals: restoring the real wall clock.
      Date.now = realDateNow;
      Error.stackTraceLimit = realStackTraceLimit;
    }
    const violation = this.checker.violation;
    if (violation !== undefined) this.timeline.record(this.scheduler.nowMs, "checker", `VIOLATION ${violation.kind}: ${violation.message}`);
    return { ok: violation === undefined, violation, stats: this.stats(), timeline: this.timeline.events() };
  }

  private stats(): SimStats {
    const sent = this.network.sentByType;
    const disk = { lost_writes: 0, torn_write: 0, stall: 0, fsync_failure: 0, disk_full: 0, corruption: 0 };
    for (const node of this.nodes) {
      disk.lost_writes += node.disk.stats.lostWrites;
      disk.torn_write += node.disk.stats.tornWrites;
      disk.stall += node.disk.stats.stalls;
      disk.fsync_failure += node.disk.stats.fsyncFailures;
      disk.disk_full += node.disk.stats.fullDiskFailures;
      disk.corruption += node.disk.stats.corruptions;
    }
    const leader = this.currentLeader();
    return {
      ticks: this.tickNow + 1,
      events: this.scheduler.eventsRun,
      elections: this.elections,
      crashes: this.crashes,
      faults: { ...this.faults, ...disk },
      messagesSent: this.network.messagesSent(),
      appendMessages: (sent.get("append_entries") ?? 0) + (sent.get("append_entries_result") ?? 0),
      deliveries: this.network.delivered,
      dropped: this.network.dropped,
      peerRefusals: this.network.refusals,
      entriesCommitted: leader?.service?.status().commitIndex ?? 0,
      requests: this.clients.stats.requests,
      answers: this.clients.stats.answers,
      lockGrants: this.lockChecker.grants,
      staleWritesAttempted: this.lockChecker.staleWritesAttempted,
      staleWritesRefused: this.lockChecker.staleWritesRefused,
      duplicatesAnswered: this.lockChecker.duplicatesAnswered,
      readsServed: this.clients.stats.readsServed,
      snapshotsWritten: this.snapshotsWritten,
      confChangesApplied: this.confChangesApplied,
      livenessTicks: this.livenessTicks,
    };
  }

  private fail(kind: ViolationKind, message: string): void {
    this.checker.fail(kind, this.tickNow, message);
  }

  private count(kind: FaultKind): void {
    this.faults[kind] = (this.faults[kind] ?? 0) + 1;
  }

  private wallNowMs(): number {
    const process = this.scheduler.current;
    const node = process === undefined ? undefined : this.nodes[process.machine];
    if (node === undefined) return wallEpochMs + this.scheduler.nowMs;
    return wallEpochMs + this.scheduler.nowMs * node.clockRate + node.wallOffsetMs;
  }

  // -------------------------------------------------------------------------------------------
  // Nodes: start, crash, die.

  private addNode(id: NodeId, founder: boolean): SimNode {
    const slot = this.nodes.length;
    const drift = Math.min(5, this.options.clockDriftPercentMax);
    const clockRate = 1 + (drift === 0 ? 0 : (this.random.nextInt(2 * drift + 1) - drift) / 100);
    const node: SimNode = {
      id,
      slot,
      founder,
      disk: new SimDisk({
        scheduler: this.scheduler,
        random: createSeededRandom((this.options.seed ^ 0x5bd1e995) + slot * 7919),
        faults: {
          fsyncLatencyMsMax: this.options.fsyncLatencyMsMax,
          stallProbability: this.options.stallProbability,
          stallMsMin: this.options.electionTimeoutTicks * tickMs,
          stallMsMax: 3 * this.options.electionTimeoutTicks * tickMs,
          fsyncFailureProbability: this.options.fsyncFailureProbability,
          tornWriteProbability: this.options.tornWriteProbability,
        },
        observer: {
          snapshotWritten: (index, _term, data) => {
            this.snapshotsWritten++;
            this.checker.snapshotWritten(this.tickNow, id, index, crc32c(data));
          },
          fault: (kind, detail) => this.timeline.record(this.scheduler.nowMs, id, `disk: ${detail}`, kind),
        },
      }),
      clockRate,
      wallOffsetMs: 0,
      endpoint: { process: undefined, handler: undefined },
      service: undefined,
      incarnation: 0,
      restartAtMs: 0,
      diskFullUntilMs: 0,
      retired: false,
      failed: undefined,
      role: "follower",
    };
    this.nodes.push(node);
    this.byId.set(id, node);
    this.start(node);
    return node;
  }

  /** start builds a new process for `node` from its disk, as a supervisor restarting node/main.ts would. */
  private start(node: SimNode): void {
    let durable: ReturnType<SimDisk["loadNow"]>;
    try {
      durable = node.disk.loadNow();
    } catch (error) {
      if ((error as { code?: unknown }).code !== "corrupt_data_dir") throw error;
      // The node refuses to serve from a damaged disk: it stays down, and the operator replaces it.
      node.failed = (error as Error).message;
      this.count("corrupt_start_refused");
      this.timeline.record(this.scheduler.nowMs, node.id, `refuses to start: ${node.failed}`, "corrupt_start_refused");
      return;
    }
    node.incarnation++;
    const process: SimProcess = { alive: true, machine: node.slot };
    node.endpoint.process = process;
    node.endpoint.handler = undefined;
    node.disk.attach(process);
    node.role = "follower";
    const previous = this.scheduler.current;
    this.scheduler.current = process;
    try {
      const service = new this.implementation.LockService(this.serviceOptions(node, process), durable);
      node.service = service;
      service.begin((error) => {
        if (error !== undefined) this.processFailed(process, error);
      });
    } catch (error) {
      this.processFailed(process, error);
    } finally {
      this.scheduler.current = previous;
    }
  }

  private serviceOptions(node: SimNode, process: SimProcess): LockServiceOptions {
    const options = this.options;
    return {
      nodeId: node.id,
      raft: {
        ...raftConfigDefaults,
        electionTimeoutTicks: options.electionTimeoutTicks,
        heartbeatIntervalTicks: options.heartbeatIntervalTicks,
        entriesPerAppendMax: options.entriesPerAppendMax,
        inflightAppendsMax: options.inflightAppendsMax,
        random: createSeededRandom((options.seed ^ 0x3c6ef372) + node.slot * 104_729 + node.incarnation * 7),
        ...(options.plantedBug === undefined ? {} : { plantedBug: options.plantedBug }),
      },
      bootstrapVoters: node.founder ? this.founders : [],
      tickIntervalMs: tickMs,
      clock: new SimClock(this.scheduler, process, node.clockRate),
      durableLog: node.disk,
      transport: this.network.transport(node.endpoint),
      lockLimits: { ...lockLimitsDefaults, ttlMsMin: this.ttlMsMin },
      snapshotIntervalEntries: options.snapshotIntervalEntries,
      proposalTimeoutMs: 20 * options.electionTimeoutTicks * tickMs,
      pendingRequestsMax: 1000,
      inputsPerTurnMax: 256,
      watchEventsMax: 100,
      watchBytesMax: 1024 * 1024,
      watchersMax: 10,
      logger: silentLogger,
      observer: this.observerFor(node),
    };
  }

  private observerFor(node: SimNode): HostObserver {
    return {
      applied: (entry, applied) => this.entryApplied(node, entry, applied),
      readyTaken: (ready) => {
        for (const message of ready.messages) {
          if (message.type === "append_entries_result" && message.success)
            this.promisedTerms.set(message, node.service?.entryTerm(message.matchIndex));
          else if (message.type === "install_snapshot_result") this.promisedTerms.set(message, node.service?.entryTerm(message.matchIndex));
        }
      },
      readyHandled: (ready) => {
        if (ready.softState !== undefined) this.roleChanged(node, ready.softState.role, ready.softState.term);
      },
    };
  }

  /** processFailed: an exception came out of a process's event. A disk error is the driver's fail-stop; anything else is a bug. */
  private processFailed(owner: SimProcess | undefined, error: unknown): void {
    const node = owner === undefined ? undefined : this.nodes[owner.machine];
    const name = (error as { name?: unknown })?.name;
    const message = error instanceof Error ? error.message : String(error);
    if (node === undefined || node.endpoint.process !== owner) {
      this.fail("node_error", `the simulator's own event threw: ${error instanceof Error ? (error.stack ?? message) : message}`);
      return;
    }
    if (name === "SimDiskError") {
      this.count("fail_stop");
      this.timeline.record(this.scheduler.nowMs, node.id, `fail-stop on a disk error: ${message}`, "fail_stop");
      this.crash(node);
      return;
    }
    if (name === "RaftInvariantError" || name === "LockInvariantError") {
      this.fail("invariant", `${node.id}: ${name}: ${message}`);
      return;
    }
    this.fail(
      "node_error",
      `${node.id} died of an unexpected ${String(name)}: ${error instanceof Error ? (error.stack ?? message) : message}`,
    );
  }

  private crash(node: SimNode): void {
    const process = node.endpoint.process;
    if (process === undefined) return;
    this.crashes++;
    process.alive = false;
    node.endpoint.process = undefined;
    node.endpoint.handler = undefined;
    node.service = undefined;
    node.role = "follower";
    node.disk.crash();
    if (this.options.slowWrites?.of === "leader") node.disk.faults = { ...node.disk.faults, slowWrites: undefined }; // It leads no more (see roleChanged).
    node.restartAtMs = this.scheduler.nowMs + tickMs * (1 + this.random.nextInt(this.options.restartDelayTicksMax + 1));
    this.timeline.record(this.scheduler.nowMs, node.id, "crashed");
  }

  private liveNodes(): SimNode[] {
    return this.nodes.filter((node) => node.service !== undefined);
  }

  // -------------------------------------------------------------------------------------------
  // What the nodes report.

  /**
   * checkPromise holds a node to what its message promises about its disk (the Ready contract,
   * Figure 2: "update persistent state before responding to RPCs"). A granted vote promises that
   * the vote is on disk; a successful append or snapshot answer promises that the log up to its
   * match index is on disk. Checked against the disk's synced image as the message leaves, so a
   * node that answers before its write is durable is caught at once, crash or not. A leader's own
   * appends promise nothing (they may go out before its write, thesis §10.2.1).
   */
  private checkPromise(message: RaftMessage): void {
    const node = this.byId.get(message.from);
    if (node === undefined) return;
    const disk = node.disk;
    if (message.type === "request_vote_result") {
      // A hard state damaged at rest is judged when the node next starts (see below).
      if (message.preVote || !message.voteGranted || disk.isDamaged()) return;
      const stored = disk.durableHardState();
      if (stored.term < message.term || (stored.term === message.term && stored.votedFor !== message.to)) {
        this.fail(
          "durability",
          `${node.id} granted its vote in term ${message.term} to ${message.to}, but its disk holds term ${stored.term}, vote ${String(stored.votedFor)}`,
        );
      }
      return;
    }
    let matchIndex: number;
    if (message.type === "append_entries_result" && message.success) matchIndex = message.matchIndex;
    else if (message.type === "install_snapshot_result") matchIndex = message.matchIndex;
    else return;
    const durableLast = disk.durableLastIndex();
    const term = this.promisedTerms.has(message) ? this.promisedTerms.get(message) : node.service?.entryTerm(matchIndex);
    // A record damaged at rest (corruptAtRest) is found when the node next starts; until then the
    // running node's promises are judged by what it wrote, so the damaged term is not compared.
    const durableTerm = disk.isDamaged() ? undefined : disk.durableTermAt(matchIndex);
    if (durableLast < matchIndex || (term !== undefined && durableTerm !== undefined && durableTerm !== term)) {
      this.fail(
        "durability",
        `${node.id} acknowledged its log up to ${matchIndex}${term === undefined ? "" : `@${term}`} to ${message.to}, but its disk holds up to ${durableLast}${durableTerm === undefined ? "" : ` (${matchIndex}@${durableTerm})`}`,
      );
    }
  }

  private entryApplied(node: SimNode, entry: Entry, applied: Applied | undefined): void {
    const service = node.service;
    if (service === undefined) return;
    const key = entryChecksum(entry);
    const first = this.checker.applied(this.tickNow, node.id, entry.index, entry.term, key, service.currentTerm());
    if (applied !== undefined) {
      this.indexOfApplied.set(applied, entry.index);
      if (first && entry.kind === "normal") {
        this.lockChecker.firstApplied(entry.index, entry.data, applied);
        if (this.timeline.enabled) this.noteApplied(node, entry.index, applied);
      }
    }
    if (entry.kind === "conf_change") this.confChangeApplied(service, entry.index, entry.change);
  }

  private noteApplied(node: SimNode, index: number, applied: Applied): void {
    for (const event of applied.events) {
      if (event.type === "granted")
        this.timeline.record(this.scheduler.nowMs, node.id, `${index}: grant ${event.resource} to ${event.owner} (token ${event.token})`);
      else if (event.type === "expired")
        this.timeline.record(this.scheduler.nowMs, node.id, `${index}: ${event.resource} token ${event.token} expired`);
      else if (event.type === "released")
        this.timeline.record(this.scheduler.nowMs, node.id, `${index}: ${event.resource} token ${event.token} released`);
    }
    const result = applied.result;
    if (result.status === "rejected" && result.code === "stale_fencing_token") {
      this.timeline.record(this.scheduler.nowMs, node.id, `${index}: fenced write refused (${result.message})`);
    } else if (result.status === "committed") {
      this.timeline.record(this.scheduler.nowMs, node.id, `${index}: fenced write committed (${result.keys.join(", ")})`);
    }
  }

  /** roleChanged: a Ready of `node` reported `role`, held in `term` (its core may have stepped past it while the Ready was written). */
  private roleChanged(node: SimNode, role: Role, term: number): void {
    node.role = role;
    const slow = this.options.slowWrites;
    if (slow?.of === "leader" && !this.healed) node.disk.faults = { ...node.disk.faults, slowWrites: role === "leader" ? slow : undefined };
    if (slow?.of === "every" && role === "leader" && !this.healed) {
      for (const each of this.nodes) each.disk.faults = { ...each.disk.faults, slowWrites: slow };
    }
    const service = node.service;
    if (role !== "leader" || service === undefined) return;
    this.elections++;
    const status = service.status();
    this.timeline.record(this.scheduler.nowMs, node.id, `leader of term ${term} (log ${status.snapshotIndex}..${status.lastIndex})`);
    this.checker.leaderElected(this.tickNow, node.id, term);
    this.checker.checkLeaderCompleteness(this.tickNow, node.id, term, status.snapshotIndex, status.lastIndex, (index) =>
      service.entryTerm(index),
    );
  }

  private confChangeApplied(service: LockService, index: number, change: ConfChange): void {
    this.confChangesApplied++;
    if (change.type !== "remove_node" || this.pendingRetirements.some((pending) => pending.nodeId === change.nodeId)) return;
    // An operator stops a removed server once the remaining voters have applied its removal (it
    // never comes back under this identity). Stopping it earlier could strand a survivor that
    // holds the removal but has not learned that it committed.
    const voters = service.status().voters.filter((id) => id !== change.nodeId);
    this.pendingRetirements.push({ nodeId: change.nodeId, index, voters });
  }

  /** retireRemovedNodes stops the removed servers whose removal every remaining voter has applied. */
  private retireRemovedNodes(): void {
    if (this.pendingRetirements.length === 0) return;
    this.pendingRetirements = this.pendingRetirements.filter((pending) => {
      const applied = pending.voters.every((id) => {
        const voter = this.byId.get(id);
        return voter === undefined || voter.retired || voter.failed !== undefined || (voter.service?.appliedIndex() ?? 0) >= pending.index;
      });
      if (!applied) return true;
      const node = this.byId.get(pending.nodeId);
      if (node !== undefined && !node.retired) {
        node.retired = true;
        if (node.service !== undefined) this.crash(node);
        this.timeline.record(this.scheduler.nowMs, node.id, "retired (removed from the cluster)");
      }
      return false;
    });
  }

  // -------------------------------------------------------------------------------------------
  // Clients reach the nodes through the lossy network too.

  private clientLinkDelayMs(): number | undefined {
    const faults = this.network.faults;
    if (faults.dropProbability > 0 && this.random.nextFloat() < faults.dropProbability) return undefined;
    return 1 + this.random.nextFloat() * faults.delayMsMax;
  }

  private clientSubmit(id: string, command: LockCommand, awaitQueuedMs: number | undefined, reply: (outcome: ClientOutcome) => void): void {
    const node = this.byId.get(id);
    const process = node?.endpoint.process;
    const delayMs = this.clientLinkDelayMs();
    if (node === undefined || process === undefined || delayMs === undefined) return;
    this.scheduler.at(this.scheduler.nowMs + delayMs, process, () => {
      const service = node.service;
      if (service === undefined) return;
      service.submit(command, awaitQueuedMs === undefined ? {} : { awaitQueuedMs }, (outcome) => {
        const back = this.clientLinkDelayMs();
        if (back === undefined) return;
        const answer: ClientOutcome =
          "error" in outcome ? { error: { code: outcome.error.code, leaderHint: outcome.error.leaderHint } } : { applied: outcome.applied };
        this.scheduler.at(this.scheduler.nowMs + back, undefined, () => reply(answer));
      });
    });
  }

  private clientRead(id: string, key: string, reply: (outcome: { value: StoredValue | undefined } | { error: string }) => void): void {
    const node = this.byId.get(id);
    const process = node?.endpoint.process;
    const delayMs = this.clientLinkDelayMs();
    if (node === undefined || process === undefined || delayMs === undefined) return;
    this.scheduler.at(this.scheduler.nowMs + delayMs, process, () => {
      node.service?.readState(
        (state) => state.get(key),
        (outcome) => {
          const back = this.clientLinkDelayMs();
          if (back === undefined) return;
          const answer = "error" in outcome ? { error: outcome.error.code } : { value: outcome.value };
          this.scheduler.at(this.scheduler.nowMs + back, undefined, () => reply(answer));
        },
      );
    });
  }

  // -------------------------------------------------------------------------------------------
  // One tick of the world: faults, restarts, clients, operators.

  private worldTick(): void {
    const options = this.options;
    if (!this.healed) {
      if (this.tickNow % options.partitionStabilityTicks === 0) this.drawPartition();
      if (options.crashProbability > 0 && this.random.nextFloat() < options.crashProbability) this.crashRandomNode();
      if (options.corruptionProbability > 0 && this.random.nextFloat() < options.corruptionProbability) this.corruptRandomDisk();
      if (options.diskFullProbability > 0 && this.random.nextFloat() < options.diskFullProbability) this.fillRandomDisk();
      if (options.clockStepProbability > 0 && this.random.nextFloat() < options.clockStepProbability) this.stepRandomClock();
    }
    const now = this.scheduler.nowMs;
    for (const node of this.nodes) {
      if (node.disk.full && node.diskFullUntilMs <= now) {
        node.disk.full = false;
        this.timeline.record(now, node.id, "disk: space freed");
      }
      if (node.service === undefined && !node.retired && node.failed === undefined && node.restartAtMs <= now) {
        this.timeline.record(now, node.id, "restarts");
        this.start(node);
      }
    }
    this.clients.tick();
    if (this.hasFailedMember()) this.removeFailedMember();
    else if (!this.healed && this.random.nextFloat() < options.confChangeProbability) this.changeMembership();
    if (!this.healed && options.adminProbability > 0 && this.adminRandom.nextFloat() < options.adminProbability) this.transferLeadership();
    this.retireRemovedNodes();
  }

  private crashRandomNode(): void {
    const live = this.liveNodes();
    if (live.length === 0) return;
    // Half the crashes hit the leader: leader changes at awkward moments are where Raft's subtle
    // rules (Figure 8, leader completeness) and the lease handover are tested.
    const leader = this.random.nextInt(2) === 0 ? this.currentLeader() : undefined;
    const node = leader ?? (live[this.random.nextInt(live.length)] as SimNode);
    this.count("crash");
    this.crash(node);
  }

  /**
   * corruptRandomDisk damages a record on one node's disk, found when it next starts (half the
   * time it crashes at once). Only one node at a time, and only while every membership a live
   * node uses or will use as its log applies has three voters or more (votersOnceLogsApplyMin): a
   * node with a damaged disk stays down until the operator removes it, and the rest must still
   * form a quorum to do so. (Counting only the applied voters was a false alarm: a removal already
   * in the log took {n1, n2, n3} to {n2, n3} just after n3's disk was damaged, and n2 alone could
   * never remove n3.)
   */
  private corruptRandomDisk(): void {
    if (this.hasDamagedDisk()) return;
    if (this.currentLeader() === undefined || this.votersOnceLogsApplyMin() < 3) return;
    const candidates = this.nodes.filter((node) => !node.retired);
    const node = candidates[this.random.nextInt(candidates.length)] as SimNode;
    if (node.disk.corruptAtRest() === undefined) return;
    if (this.random.nextInt(2) === 0) this.crash(node);
  }

  private fillRandomDisk(): void {
    const candidates = this.nodes.filter((node) => !node.retired && !node.disk.full);
    const node = candidates[this.random.nextInt(Math.max(1, candidates.length))];
    if (node === undefined) return;
    node.disk.full = true;
    node.diskFullUntilMs = this.scheduler.nowMs + tickMs * this.options.electionTimeoutTicks * (1 + this.random.nextInt(5));
    this.count("disk_full");
    this.timeline.record(this.scheduler.nowMs, node.id, `disk: full until ${node.diskFullUntilMs.toFixed(0)} ms`);
  }

  private stepRandomClock(): void {
    const node = this.nodes[this.random.nextInt(this.nodes.length)] as SimNode;
    const stepMs = (this.random.nextInt(2) === 0 ? -1 : 1) * 60_000 * (1 + this.random.nextInt(10));
    node.wallOffsetMs += stepMs;
    this.count("clock_step");
    this.timeline.record(
      this.scheduler.nowMs,
      node.id,
      `wall clock steps ${stepMs > 0 ? "forward" : "back"} ${Math.abs(stepMs / 60_000)} min`,
      "clock_step",
    );
  }

  private drawPartition(): void {
    this.network.heal();
    const modes = ["none", "symmetric", "one_way", "isolate_leader"] as const;
    const mode = this.options.partitionMode === "mixed" ? modes[this.random.nextInt(modes.length)] : this.options.partitionMode;
    // Even a hostile network has calm spells, or nothing would ever commit.
    if (mode === "none" || this.random.nextInt(4) === 0) return;
    const ids = this.nodes.map((node) => node.id);
    this.count("partition");
    if (mode === "symmetric") {
      const side = ids.map(() => this.random.nextInt(2));
      for (const [a, idA] of ids.entries()) {
        for (const [b, idB] of ids.entries()) if (side[a] !== side[b]) this.network.cut(idA, idB);
      }
      this.timeline.record(
        this.scheduler.nowMs,
        "network",
        `partition ${ids.filter((_, index) => side[index] === 0).join(",")} | ${ids.filter((_, index) => side[index] === 1).join(",")}`,
      );
    } else if (mode === "one_way") {
      const cuts = 1 + this.random.nextInt(ids.length);
      const cut: string[] = [];
      for (let count = 0; count < cuts; count++) {
        const from = ids[this.random.nextInt(ids.length)] as NodeId;
        const to = ids[this.random.nextInt(ids.length)] as NodeId;
        if (from === to) continue;
        this.network.cut(from, to);
        cut.push(`${from}→${to}`);
      }
      this.timeline.record(this.scheduler.nowMs, "network", `one-way cuts ${cut.join(" ")}`);
    } else {
      const leader = this.currentLeader();
      if (leader === undefined) return;
      for (const id of ids) {
        if (id === leader.id) continue;
        this.network.cut(leader.id, id);
        this.network.cut(id, leader.id);
      }
      this.timeline.record(this.scheduler.nowMs, "network", `leader ${leader.id} cut off`);
    }
  }

  /** heal ends the faulty phase: a reliable network, sane disks, every node up; clients finish what they started. */
  private heal(): void {
    this.healed = true;
    this.network.heal();
    this.network.faults = {
      ...this.network.faults,
      dropProbability: 0,
      duplicateProbability: 0,
      longDelayProbability: 0,
      delayMsMax: healedDelayTicksMax(this.options) * tickMs,
    };
    this.timeline.record(this.scheduler.nowMs, "world", "heal: reliable network, sane disks, every node restarted");
    let lastIndexMax = 0;
    let appliedIndexMin = Number.MAX_SAFE_INTEGER;
    for (const node of this.nodes) {
      node.disk.full = false;
      node.disk.faults = { ...node.disk.faults, stallProbability: 0, fsyncFailureProbability: 0, slowWrites: undefined };
      if (node.retired || node.failed !== undefined) continue;
      if (node.service === undefined) this.start(node);
      const status = node.service?.status();
      lastIndexMax = Math.max(lastIndexMax, status?.lastIndex ?? 0);
      appliedIndexMin = Math.min(appliedIndexMin, status?.appliedIndex ?? 0);
    }
    const backlogEntries = Math.max(0, lastIndexMax - Math.min(appliedIndexMin, lastIndexMax)) + 4 * this.options.clientCount;
    this.livenessBoundTicks = livenessTicksBound(this.options, backlogEntries);
  }

  // -------------------------------------------------------------------------------------------
  // Operators: membership changes, leadership transfers, replacing a node whose disk is damaged.

  private hasDamagedDisk(): boolean {
    return this.nodes.some((node) => (node.disk.isDamaged() || node.failed !== undefined) && !node.retired);
  }

  /**
   * votersOnceLogsApplyMin: the fewest voters of any membership a live node uses now or will use as
   * the membership changes in its log apply: its applied voters (which it elects with until it
   * learns a change committed), then each step of the log's changes past its applied index. A
   * damaged disk takes its node down for good, and the survivors keep a quorum of every one of
   * these only if each has three voters or more. (Counting only the end of the log was a false
   * alarm: {n3, n4} with n6's promotion in every log but not yet known to be committed lost n4,
   * and n3 and n6, still electing with {n3, n4}, could never elect a leader.)
   */
  private votersOnceLogsApplyMin(): number {
    let fewest = Number.MAX_SAFE_INTEGER;
    for (const node of this.liveNodes()) {
      const service = node.service as LockService;
      const status = service.status();
      const voters = new Set<NodeId>(status.voters);
      fewest = Math.min(fewest, voters.size);
      for (const entry of service.logEntries(status.appliedIndex + 1, status.lastIndex + 1)) {
        if (entry.kind !== "conf_change") continue;
        const change = entry.change;
        if (change.type === "remove_node") voters.delete(change.nodeId);
        else if (change.type === "add_voter" || change.type === "promote_learner") voters.add(change.nodeId);
        fewest = Math.min(fewest, voters.size);
      }
    }
    return fewest;
  }

  private hasFailedMember(): boolean {
    for (const node of this.nodes) if (node.failed !== undefined && !node.retired) return true;
    return false;
  }

  /** removeFailedMember: the operator removes a node that refused its damaged disk (it never comes back under this identity). */
  private removeFailedMember(): void {
    if (this.membershipPending || this.tickNow % this.options.electionTimeoutTicks !== 0) return;
    const leader = this.currentLeader()?.service;
    if (leader === undefined) return;
    const status = leader.status();
    for (const node of this.nodes) {
      if (node.failed === undefined || node.retired) continue;
      if (!status.voters.includes(node.id) && !status.learners.includes(node.id)) {
        if (!this.pendingRetirements.some((pending) => pending.nodeId === node.id)) node.retired = true;
        continue;
      }
      this.proposeMembership(leader, { type: "remove_node", nodeId: node.id });
      return;
    }
  }

  private changeMembership(): void {
    if (this.membershipPending) return;
    const leader = this.currentLeader()?.service;
    if (leader === undefined) return;
    const status = leader.status();
    let change: ConfChange;
    if (status.learners.length > 0) {
      change = { type: "promote_learner", nodeId: status.learners[0] as NodeId };
    } else if (
      status.voters.length > this.options.clusterSize ||
      (status.voters.length > 1 && this.options.adminProbability > 0 && this.adminRandom.nextInt(3) === 0)
    ) {
      const removed = status.voters[this.random.nextInt(status.voters.length)] as NodeId;
      // A damaged disk not yet found (its node still runs) will take its node down for good: the
      // rest must keep a quorum without it, to remove it then.
      const damaged = this.nodes.find((node) => node.disk.isDamaged() && !node.retired);
      if (damaged !== undefined && damaged.id !== removed && this.votersOnceLogsApplyMin() <= 3) return;
      change = { type: "remove_node", nodeId: removed };
    } else if (this.joins < 4 && this.nodes.length < nodesMax) {
      const id = nodeId(`n${this.nodes.length + 1}`);
      change = { type: "add_learner", nodeId: id };
      this.joins++;
      this.addNode(id, false); // An empty node that waits to be contacted (as `--join` does).
    } else {
      return;
    }
    this.proposeMembership(leader, change);
  }

  private proposeMembership(leader: LockService, change: ConfChange): void {
    this.membershipPending = true;
    this.timeline.record(this.scheduler.nowMs, leader.nodeId, `proposes ${change.type} ${change.nodeId}`);
    leader.changeMembership(change, () => {
      this.membershipPending = false;
    });
    // A proposal lost with its leader never answers: give up waiting after a while.
    this.scheduler.at(this.scheduler.nowMs + 40 * this.options.electionTimeoutTicks * tickMs, undefined, () => {
      this.membershipPending = false;
    });
  }

  private transferLeadership(): void {
    const leader = this.currentLeader()?.service;
    if (leader === undefined) return;
    const voters = leader.status().voters;
    const transferee = voters[this.adminRandom.nextInt(voters.length)] as NodeId;
    this.count("leadership_transfer");
    this.timeline.record(this.scheduler.nowMs, leader.nodeId, `asked to transfer leadership to ${transferee}`);
    leader.transfer(transferee, () => undefined);
  }

  // -------------------------------------------------------------------------------------------
  // Liveness and the final checks.

  private currentLeader(): SimNode | undefined {
    let leader: SimNode | undefined;
    let leaderTerm = -1;
    for (const node of this.nodes) {
      if (node.role !== "leader" || node.service === undefined) continue;
      const term = node.service.currentTerm();
      if (term > leaderTerm) {
        leader = node;
        leaderTerm = term;
      }
    }
    return leader;
  }

  private converged(): boolean {
    if (this.clients.outstanding() > 0) return false;
    const leader = this.currentLeader()?.service;
    if (leader === undefined) return false;
    const status = leader.status();
    if (status.commitIndex !== status.lastIndex || status.appliedIndex !== status.commitIndex) return false;
    for (const id of [...status.voters, ...status.learners]) {
      const node = this.byId.get(id);
      if (node === undefined || node.retired) continue;
      if (node.service === undefined || node.service.appliedIndex() !== status.commitIndex) return false;
    }
    return true;
  }

  private finalChecks(): void {
    if (this.livenessTicks < 0) {
      const leader = this.currentLeader();
      this.fail(
        "liveness",
        `no convergence within ${this.livenessBoundTicks} ticks after the heal (requests unanswered: ${this.clients.outstanding()}, leader: ${leader?.id ?? "none"}, down: ${this.nodes
          .filter((node) => node.service === undefined && !node.retired)
          .map((node) => `${node.id}${node.failed === undefined ? "" : " (disk refused)"}`)
          .join(", ")})`,
      );
      return;
    }
    const live = this.liveNodes();
    this.checker.checkLogMatching(
      this.tickNow,
      live.map((node) => ({ id: node.id, entries: (node.service as LockService).logEntries(0, Number.MAX_SAFE_INTEGER) })),
    );
    // Durability: the newest write acknowledged to a client is committed in the final log, as applied.
    const leader = this.currentLeader()?.service;
    const acknowledged = this.checker.acknowledgedIndexMax;
    if (leader !== undefined && acknowledged > 0) {
      const status = leader.status();
      const term = leader.entryTerm(acknowledged);
      if (status.commitIndex < acknowledged)
        this.fail("durability", `acknowledged index ${acknowledged} is past the final commit index ${status.commitIndex}`);
      else if (term !== undefined && term !== this.checker.termApplied(acknowledged)) {
        this.fail(
          "durability",
          `acknowledged entry ${acknowledged}@${this.checker.termApplied(acknowledged)} is ${acknowledged}@${term} in the final log`,
        );
      }
    }
  }
}
