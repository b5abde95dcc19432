// runSimulation runs one whole cluster — the real raft/ core, with a simulated network, disks
// and clocks — through a faulty phase and then a healed phase, and checks the Raft safety
// properties continuously and liveness at the end. It is a pure function of its options: no
// clock, no Math.random, no I/O, so any failing run replays exactly from its options.

import { decodeCommand, encodeCommand } from "../lock/codec.ts";
import type { LockStateSnapshot } from "../lock/lock-state-machine.ts";
import type { LockCommand } from "../lock/types.ts";
import { RaftInvariantError } from "../raft/assert.ts";
import { raftConfigDefaults } from "../raft/config.ts";
import type { ConfChange, Entry, LogIndex, NodeId, RaftMessage, Term } from "../raft/messages.ts";
import { nodeId } from "../raft/messages.ts";
import type { Ready } from "../raft/node.ts";
import { RawNode } from "../raft/node.ts";
import type { Role } from "../raft/raft.ts";
import { createSeededRandom } from "../raft/random.ts";
import { MemoryStorage } from "../raft/storage.ts";
import { SafetyChecker, type Violation } from "./checker.ts";
import { LockReplica, LockWorkload, locksDriftPercentMax, tickMs } from "./lock-workload.ts";
import { nodesMax, SimNetwork } from "./network.ts";
import { healedDelayTicksMax, type SimOptions } from "./options.ts";

/**
 * livenessTicksBound is the stated liveness bound: after the heal, a leader must be elected,
 * every command ever proposed must be acknowledged, and every member must have applied the
 * leader's whole log within this many ticks. It is a fixed allowance for elections and retries,
 * plus the time to stream the backlog to the slowest member: each round trip (at most
 * 2 × the healed delay + 2 ticks) carries at least entriesPerAppendMax × inflightAppendsMax entries,
 * and a reordered append can cost a second round trip (the follower rejects it and the leader
 * probes again).
 */
export function livenessTicksBound(options: SimOptions, backlogEntries: number): number {
  const delayTicksMax = healedDelayTicksMax(options);
  const roundTripTicks = 2 * delayTicksMax + 2;
  const entriesPerRoundTrip = options.entriesPerAppendMax * options.inflightAppendsMax;
  const catchUpTicks = Math.ceil((2 * backlogEntries * roundTripTicks) / entriesPerRoundTrip);
  return 40 * options.electionTimeoutTicks + 20 * delayTicksMax + 200 + catchUpTicks;
}

export interface SimStats {
  ticks: number;
  deliveries: number;
  dropped: number;
  elections: number;
  crashes: number;
  /** crashesBeforePersist: of those, crashes between a Ready's early AppendEntries and its disk write. */
  crashesBeforePersist: number;
  commandsProposed: number;
  commandsAcknowledged: number;
  readsServed: number;
  snapshotsTaken: number;
  snapshotsInstalled: number;
  confChangesApplied: number;
  /** livenessTicks is how long the cluster took to converge after the heal (-1 if it did not). */
  livenessTicks: number;
  /** Lock workload only: leases granted, and writes refused for a stale fencing token. */
  lockGrants: number;
  staleWritesRefused: number;
}

export interface SimResult {
  readonly ok: boolean;
  readonly violation: Violation | undefined;
  readonly stats: SimStats;
}

interface SimNode {
  readonly id: NodeId;
  readonly slot: number;
  rawNode: RawNode | undefined;
  /** storage is the node's disk: it holds exactly what was reported durable, and survives crashes. */
  readonly storage: MemoryStorage;
  readonly clockRate: number;
  clockAccumulator: number;
  restartAtTick: number;
  retired: boolean;
  role: Role;
  /** term is the node's current term as of its last Ready. */
  term: Term;
  appliedIndex: LogIndex;
  stateHash: number;
  /** pendingProposals: index → the command this node's client proposed there (lost on crash). */
  pendingProposals: Map<LogIndex, { commandId: number; term: Term }>;
  pendingReads: Map<number, { minIndex: LogIndex }>;
  /** replica is the node's lock state (lock workload only), rebuilt from its snapshot on restart. */
  replica: LockReplica | undefined;
  servableReads: { requestId: number; index: LogIndex; minIndex: LogIndex }[];
}

const roundsPerTickMax = 10_000;

/** runSimulation runs one schedule to the end (or to its first violation). */
export function runSimulation(options: SimOptions): SimResult {
  return new Simulation(options).run();
}

class Simulation {
  private readonly options: SimOptions;
  private readonly random;
  private readonly nodes: SimNode[] = [];
  private readonly byId = new Map<string, SimNode>();
  private readonly network: SimNetwork;
  private readonly checker = new SafetyChecker();
  private readonly stats: SimStats = {
    ticks: 0,
    deliveries: 0,
    dropped: 0,
    elections: 0,
    crashes: 0,
    crashesBeforePersist: 0,
    commandsProposed: 0,
    commandsAcknowledged: 0,
    readsServed: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    confChangesApplied: 0,
    livenessTicks: -1,
    lockGrants: 0,
    staleWritesRefused: 0,
  };
  private tickNow = 0;
  private healed = false;
  /** livenessBoundTicks is fixed at the heal, from the backlog then (see livenessTicksBound). */
  private livenessBoundTicks = Number.MAX_SAFE_INTEGER;
  private nextCommandId = 1;
  private nextRequestId = 1;
  /** unacknowledged commands (the client will retry them after the heal). */
  private readonly unacknowledged = new Set<number>();
  private joins = 0;
  private pendingRetirements: { nodeId: NodeId; index: LogIndex; voters: NodeId[] }[] = [];
  private readonly textEncoder = new TextEncoder();
  private readonly textDecoder = new TextDecoder();
  private readonly locks: LockWorkload | undefined;
  /** adminRandom drives operator actions, apart from the main stream, so enabling them leaves other choices unchanged. */
  private readonly adminRandom;
  /** crashBeforePersistRandom draws which crashes strike between a Ready's early sends and its disk write, apart from the main stream. */
  private readonly crashBeforePersistRandom;

  constructor(options: SimOptions) {
    this.options = options;
    this.random = createSeededRandom(options.seed);
    this.adminRandom = createSeededRandom(options.seed ^ 0x2545f491);
    this.crashBeforePersistRandom = createSeededRandom(options.seed ^ 0x5bd1e995);
    this.network = new SimNetwork({
      faults: {
        dropProbability: options.dropProbability,
        duplicateProbability: options.duplicateProbability,
        delayTicksMax: options.delayTicksMax,
        reorder: options.reorder,
        longDelayProbability: options.longDelayProbability,
        longDelayTicksMax: 3 * options.electionTimeoutTicks,
      },
      delayTicksMaxLimit: Math.max(options.delayTicksMax, 3 * options.electionTimeoutTicks),
      slotOf: (id) => (this.byId.get(id) as SimNode).slot,
      random: this.random,
    });
    this.locks =
      options.workload === "locks"
        ? new LockWorkload(options, {
            random: this.random,
            tickNow: () => this.tickNow,
            healed: () => this.healed,
            propose: (id, command) => this.proposeLock(id, command),
            liveNodeIds: () => this.nodes.filter((node) => node.rawNode !== undefined).map((node) => node.id),
            fail: (kind, message) => this.checker.fail(kind, this.tickNow, message),
            replyDropProbability: () => this.network.faults.dropProbability,
          })
        : undefined;
    const founders = Array.from({ length: options.clusterSize }, (_, position) => nodeId(`n${position + 1}`));
    for (const id of founders) this.addNode(id, MemoryStorage.bootstrap(founders));
  }

  run(): SimResult {
    try {
      for (this.tickNow = 0; this.tickNow < this.options.safetyTicks + this.livenessBoundTicks; this.tickNow++) {
        if (this.tickNow === this.options.safetyTicks) this.heal();
        this.step();
        this.stats.ticks++;
        if (this.checker.violation !== undefined) break;
        if (this.healed && this.converged()) {
          this.stats.livenessTicks = this.tickNow - this.options.safetyTicks;
          break;
        }
      }
      if (this.checker.violation === undefined) this.finalChecks();
    } catch (error) {
      if (!(error instanceof RaftInvariantError)) throw error;
      this.checker.fail("invariant", this.tickNow, error.message);
    }
    this.stats.deliveries = this.network.delivered;
    this.stats.lockGrants = this.locks?.grants ?? 0;
    this.stats.staleWritesRefused = this.locks?.staleWritesRefused ?? 0;
    this.stats.dropped = this.network.dropped;
    const violation = this.checker.violation;
    return { ok: violation === undefined, violation, stats: this.stats };
  }

  // -------------------------------------------------------------------------------------------
  // One tick.

  private step(): void {
    if (!this.healed) {
      if (this.tickNow % this.options.partitionStabilityTicks === 0) this.drawPartition();
    }
    for (const node of this.nodes) {
      if (node.rawNode === undefined && !node.retired && node.restartAtTick <= this.tickNow) this.restart(node);
    }
    this.workload();
    for (const node of this.nodes) {
      const rawNode = node.rawNode;
      if (rawNode === undefined) continue;
      node.clockAccumulator += node.clockRate;
      while (node.clockAccumulator >= 1) {
        node.clockAccumulator -= 1;
        rawNode.tick();
        if (node.replica !== undefined) node.replica.clockMs += tickMs;
      }
    }
    // A crash strikes after the nodes moved on but before they persisted: what they had not
    // yet made durable (a vote, new entries) is lost with them.
    const crashRound = !this.healed && this.random.nextFloat() < this.options.crashProbability ? this.random.nextInt(3) : -1;
    for (let round = 0; ; round++) {
      if (round === crashRound) this.crashRandomNode();
      let worked = false;
      for (const node of this.nodes) if (this.processReady(node)) worked = true;
      let message = this.network.takeNow();
      while (message !== undefined) {
        this.deliver(message);
        worked = true;
        message = this.network.takeNow();
      }
      if (!worked && round >= crashRound) break;
      if (round >= roundsPerTickMax) throw new RaftInvariantError(`tick ${this.tickNow} did not settle after ${roundsPerTickMax} rounds`);
    }
    this.network.advance();
    this.retireRemovedNodes();
  }

  private deliver(message: RaftMessage): void {
    if (this.network.isBlocked(message.from, message.to)) return;
    const target = this.byId.get(message.to);
    if (target === undefined || target.rawNode === undefined) return;
    this.network.delivered++;
    target.rawNode.step(message);
  }

  /** processReady follows Ready's contract: persist, send, apply, advance. Returns whether there was work. */
  private processReady(node: SimNode): boolean {
    const rawNode = node.rawNode;
    if (rawNode === undefined) return false;
    const ready = rawNode.ready();
    if (ready === undefined) return false;
    // 1. Persist to the node's disk.
    if (ready.snapshot !== undefined) node.storage.applySnapshot(ready.snapshot);
    node.storage.append(ready.entries);
    if (ready.hardState !== undefined) {
      node.storage.setHardState(ready.hardState);
      node.term = ready.hardState.term;
    }
    // 2. Send. (The node sends a leader's AppendEntries before persisting, thesis §10.2.1. Here a
    // Ready is handled at once, so that order shows only when a crash strikes in between, which
    // crashRandomNode models; sending in the core's order keeps the schedules as they were.)
    for (const message of ready.messages) this.network.send(message);
    // 3. Apply.
    if (ready.softState !== undefined) this.roleChanged(node, rawNode, ready.softState.role);
    if (ready.snapshot !== undefined) this.installSnapshot(node, ready);
    for (const entry of ready.committedEntries) this.apply(node, entry);
    for (const read of ready.readStates) {
      const pending = node.pendingReads.get(read.requestId);
      if (pending === undefined) continue;
      node.pendingReads.delete(read.requestId);
      node.servableReads.push({ requestId: read.requestId, index: read.index, minIndex: pending.minIndex });
    }
    for (const requestId of ready.droppedReads) node.pendingReads.delete(requestId);
    rawNode.advance(ready);
    this.serveReads(node);
    this.maybeSnapshot(node, rawNode);
    return true;
  }

  private roleChanged(node: SimNode, rawNode: RawNode, role: Role): void {
    node.role = role;
    if (node.replica !== undefined) {
      if (role === "leader") node.replica.timekeeper.becomeLeader(node.replica.clockMs, node.replica.machine);
      else node.replica.timekeeper.stepDown();
    }
    if (role !== "leader") return;
    this.stats.elections++;
    const status = rawNode.status();
    this.checker.leaderElected(this.tickNow, node.id, status.term);
    this.checker.checkLeaderCompleteness(this.tickNow, node.id, status.term, status.snapshotIndex, status.lastIndex, (index) =>
      rawNode.entryTerm(index),
    );
  }

  private installSnapshot(node: SimNode, ready: Ready): void {
    const snapshot = ready.snapshot;
    if (snapshot === undefined) return;
    this.stats.snapshotsInstalled++;
    this.restoreState(node, snapshot.metadata.index, snapshot.data);
    this.checker.checkSnapshot(this.tickNow, node.id, snapshot.metadata.index, node.stateHash);
  }

  private apply(node: SimNode, entry: Entry): void {
    if (entry.index <= node.appliedIndex) return; // Already inside an installed snapshot.
    this.checker.assertNextApply(this.tickNow, node.id, node.appliedIndex, entry.index);
    const key = entryKey(entry, this.textDecoder);
    const firstApply = !this.checker.hasApplied(entry.index);
    node.stateHash = mixHash(node.stateHash, key);
    node.appliedIndex = entry.index;
    this.checker.applied(this.tickNow, node.id, entry.index, entry.term, key, node.stateHash, node.term);
    if (entry.kind === "conf_change") this.confChangeApplied(node, entry.index, entry.change);
    if (node.replica !== undefined && this.locks !== undefined) {
      if (entry.kind === "normal") {
        const applied = node.replica.machine.apply(entry.index, decodeCommand(entry.data));
        node.replica.timekeeper.applied(node.replica.clockMs, node.replica.machine, applied);
        this.locks.applied(node.id, node.replica, entry.index, entry.term, applied, firstApply);
      } else {
        node.replica.machine.applyNoop(entry.index);
      }
      return;
    }
    const pending = node.pendingProposals.get(entry.index);
    if (pending !== undefined) {
      node.pendingProposals.delete(entry.index);
      if (pending.term === entry.term) this.acknowledge(pending.commandId, entry, key);
    }
  }

  private acknowledge(commandId: number, entry: Entry, key: string): void {
    this.checker.assertTrue(key === `c${commandId}`, this.tickNow, "wrong_apply", `proposal of c${commandId} applied as ${key}`);
    if (!this.unacknowledged.delete(commandId)) return; // A retried duplicate: the first answer stands.
    this.stats.commandsAcknowledged++;
    this.checker.acknowledged(entry.index);
  }

  private serveReads(node: SimNode): void {
    if (node.servableReads.length === 0) return;
    const remaining: typeof node.servableReads = [];
    for (const read of node.servableReads) {
      if (node.appliedIndex < read.index) {
        remaining.push(read);
        continue;
      }
      this.stats.readsServed++;
      // Linearizability of reads: a read must see every write acknowledged before it began.
      this.checker.assertTrue(
        read.index >= read.minIndex,
        this.tickNow,
        "stale_read",
        `${node.id} served read ${read.requestId} at index ${read.index}, but index ${read.minIndex} was acknowledged before the read began`,
      );
    }
    node.servableReads = remaining;
  }

  private maybeSnapshot(node: SimNode, rawNode: RawNode): void {
    const snapshotIndex = node.storage.snapshot().metadata.index;
    if (node.appliedIndex - snapshotIndex < this.options.snapshotIntervalEntries) return;
    if (node.appliedIndex > node.storage.lastIndex()) return;
    const state = { hash: node.stateHash, locks: node.replica?.machine.snapshot() };
    node.storage.createSnapshot(node.appliedIndex, rawNode.confState(), this.textEncoder.encode(JSON.stringify(state)));
    this.stats.snapshotsTaken++;
  }

  // -------------------------------------------------------------------------------------------
  // Nodes: start, crash, restart, retire.

  private addNode(id: NodeId, storage: MemoryStorage): SimNode {
    // The lock workload keeps drift within what the client library's lease discount covers.
    const drift =
      this.locks === undefined ? this.options.clockDriftPercentMax : Math.min(this.options.clockDriftPercentMax, locksDriftPercentMax);
    const node: SimNode = {
      id,
      slot: this.nodes.length,
      rawNode: undefined,
      storage,
      clockRate: 1 + (drift === 0 ? 0 : (this.random.nextInt(2 * drift + 1) - drift) / 100),
      clockAccumulator: 0,
      restartAtTick: 0,
      retired: false,
      role: "follower",
      term: 0,
      appliedIndex: 0,
      stateHash: 0,
      pendingProposals: new Map(),
      pendingReads: new Map(),
      replica: undefined,
      servableReads: [],
    };
    this.nodes.push(node);
    this.byId.set(id, node);
    this.restart(node);
    return node;
  }

  private restart(node: SimNode): void {
    const snapshot = node.storage.snapshot();
    this.restoreState(node, snapshot.metadata.index, snapshot.data);
    node.role = "follower";
    node.term = node.storage.hardStateNow().term;
    node.rawNode = new RawNode(
      {
        ...raftConfigDefaults,
        id: node.id,
        electionTimeoutTicks: this.options.electionTimeoutTicks,
        heartbeatIntervalTicks: this.options.heartbeatIntervalTicks,
        entriesPerAppendMax: this.options.entriesPerAppendMax,
        inflightAppendsMax: this.options.inflightAppendsMax,
        random: createSeededRandom(this.random.nextInt(0x7fff_ffff)),
        ...(this.options.plantedBug === undefined ? {} : { plantedBug: this.options.plantedBug }),
      },
      node.storage,
    );
  }

  private crashRandomNode(): void {
    const live = this.nodes.filter((node) => node.rawNode !== undefined);
    if (live.length === 0) return;
    // Half the crashes hit the leader: leader changes at awkward moments are where Raft's
    // subtle rules (Figure 8, leader completeness) are tested.
    const leader = this.random.nextInt(2) === 0 ? this.currentLeader() : undefined;
    const node = leader ?? (live[this.random.nextInt(live.length)] as SimNode);
    // Half the crashes strike between a Ready's early AppendEntries and its disk write (the node
    // sends those first, thesis §10.2.1): the followers may then hold entries the crashed node
    // never persisted. The other half strike before the Ready, as before; either way nothing of
    // it is persisted. (A stream of its own, so the main stream's choices stay as they were.)
    if (this.crashBeforePersistRandom.nextInt(2) === 0) this.sendEarlyThenLose(node);
    this.crash(node);
    node.restartAtTick = this.tickNow + 1 + this.random.nextInt(this.options.restartDelayTicksMax + 1);
  }

  /** sendEarlyThenLose takes the node's next Ready and sends its AppendEntries only: the crash that follows loses the rest. */
  private sendEarlyThenLose(node: SimNode): void {
    const ready = node.rawNode?.ready();
    if (ready === undefined || !ready.appendsBeforePersist) return;
    const early = ready.messages.filter((message) => message.type === "append_entries");
    for (const message of early) this.network.send(message);
    if (early.length > 0 && ready.entries.length > 0) this.stats.crashesBeforePersist++;
  }

  private crash(node: SimNode): void {
    this.stats.crashes++;
    node.rawNode = undefined;
    node.role = "follower";
    node.pendingProposals.clear();
    node.pendingReads.clear();
    node.servableReads = [];
  }

  private confChangeApplied(node: SimNode, index: LogIndex, change: ConfChange): void {
    this.stats.confChangesApplied++;
    if (change.type !== "remove_node" || this.pendingRetirements.some((pending) => pending.nodeId === change.nodeId)) return;
    // An operator stops a removed server once the remaining voters have applied its removal (it
    // never comes back under this identity). Stopping it earlier could strand a survivor that
    // holds the removal but has not learned that it committed.
    const voters = (node.rawNode as RawNode).status().voters.filter((id) => id !== change.nodeId);
    this.pendingRetirements.push({ nodeId: change.nodeId, index, voters });
  }

  /** retireRemovedNodes stops the removed servers whose removal every remaining voter has applied. */
  private retireRemovedNodes(): void {
    this.pendingRetirements = this.pendingRetirements.filter((pending) => {
      const applied = pending.voters.every((id) => {
        const voter = this.byId.get(id);
        return voter === undefined || voter.retired || voter.appliedIndex >= pending.index;
      });
      if (!applied) return true;
      const node = this.byId.get(pending.nodeId);
      if (node !== undefined && !node.retired) {
        node.retired = true;
        if (node.rawNode !== undefined) this.crash(node);
      }
      return false;
    });
  }

  // -------------------------------------------------------------------------------------------
  // Faults.

  private drawPartition(): void {
    this.network.heal();
    const modes = ["none", "symmetric", "one_way", "isolate_leader"] as const;
    const mode = this.options.partitionMode === "mixed" ? modes[this.random.nextInt(modes.length)] : this.options.partitionMode;
    // Even a hostile network has calm spells, or nothing would ever commit.
    if (mode === "none" || this.random.nextInt(4) === 0) return;
    const ids = this.nodes.map((node) => node.id);
    if (mode === "symmetric") {
      const side = ids.map(() => this.random.nextInt(2));
      for (const [a, idA] of ids.entries()) {
        for (const [b, idB] of ids.entries()) if (side[a] !== side[b]) this.network.cut(idA, idB);
      }
    } else if (mode === "one_way") {
      const cuts = 1 + this.random.nextInt(ids.length);
      for (let cut = 0; cut < cuts; cut++) {
        const from = ids[this.random.nextInt(ids.length)] as NodeId;
        const to = ids[this.random.nextInt(ids.length)] as NodeId;
        if (from !== to) this.network.cut(from, to);
      }
    } else {
      const leader = this.currentLeader();
      if (leader === undefined) return;
      for (const id of ids) {
        if (id === leader.id) continue;
        this.network.cut(leader.id, id);
        this.network.cut(id, leader.id);
      }
    }
  }

  /** heal ends the faulty phase: a reliable network, every node up, and clients retry what was never acknowledged. */
  private heal(): void {
    this.healed = true;
    this.network.heal();
    this.network.faults = {
      ...this.network.faults,
      dropProbability: 0,
      duplicateProbability: 0,
      longDelayProbability: 0,
      delayTicksMax: healedDelayTicksMax(this.options),
    };
    for (const node of this.nodes) {
      if (node.rawNode === undefined && !node.retired) this.restart(node);
    }
    let lastIndexMax = 0;
    let appliedIndexMin = Number.MAX_SAFE_INTEGER;
    for (const node of this.nodes) {
      if (node.retired) continue;
      lastIndexMax = Math.max(lastIndexMax, node.storage.lastIndex());
      appliedIndexMin = Math.min(appliedIndexMin, node.appliedIndex);
    }
    const backlogEntries = Math.max(0, lastIndexMax - appliedIndexMin) + this.unacknowledged.size;
    this.livenessBoundTicks = livenessTicksBound(this.options, backlogEntries);
  }

  // -------------------------------------------------------------------------------------------
  // Workload: clients propose commands, read, and change membership.

  private workload(): void {
    if (!this.healed && this.options.adminProbability > 0 && this.adminRandom.nextFloat() < this.options.adminProbability)
      this.adminAction();
    if (this.locks !== undefined) {
      this.lockWorkloadTick(this.locks);
      return;
    }
    if (this.healed) {
      this.retryUnacknowledged();
      return;
    }
    if (this.random.nextFloat() < this.options.proposalProbability) this.proposeNewCommand();
    if (this.random.nextFloat() < this.options.readProbability) this.startRead();
    if (this.random.nextFloat() < this.options.confChangeProbability) this.changeMembership();
  }

  private proposeNewCommand(): void {
    const commandId = this.nextCommandId++;
    this.unacknowledged.add(commandId);
    this.stats.commandsProposed++;
    const target = this.randomLiveNode();
    if (target !== undefined) this.propose(target, commandId, true);
  }

  /** propose sends a command to `node`, following its leader hint once. */
  private propose(node: SimNode, commandId: number, followHint: boolean): void {
    const rawNode = node.rawNode;
    if (rawNode === undefined) return;
    const outcome = rawNode.propose(this.textEncoder.encode(`c${commandId}`));
    if (outcome.kind === "accepted") {
      node.pendingProposals.set(outcome.index, { commandId, term: outcome.term });
    } else if (outcome.kind === "not_leader" && followHint && outcome.leaderHint !== null) {
      const leader = this.byId.get(outcome.leaderHint);
      if (leader !== undefined) this.propose(leader, commandId, false);
    }
  }

  private retryUnacknowledged(): void {
    const retryIntervalTicks = 2 * this.options.electionTimeoutTicks;
    if ((this.tickNow - this.options.safetyTicks) % retryIntervalTicks !== 0) return;
    const leader = this.currentLeader();
    if (leader === undefined) return;
    // A proposal from an earlier term may sit at an index this leader will never reach: only
    // this term's proposals are still on their way.
    const term = (leader.rawNode as RawNode).status().term;
    const pendingHere = new Set<number>();
    for (const pending of leader.pendingProposals.values()) if (pending.term === term) pendingHere.add(pending.commandId);
    for (const commandId of this.unacknowledged) {
      if (!pendingHere.has(commandId)) this.propose(leader, commandId, false);
    }
  }

  private startRead(): void {
    const node = this.randomLiveNode();
    if (node?.rawNode === undefined) return;
    const requestId = this.nextRequestId++;
    const outcome = node.rawNode.readIndex(requestId);
    if (outcome.kind === "queued") node.pendingReads.set(requestId, { minIndex: this.checker.acknowledgedIndexMax });
  }

  private changeMembership(): void {
    const leader = this.currentLeader();
    if (leader?.rawNode === undefined) return;
    const status = leader.rawNode.status();
    let change: ConfChange;
    if (status.learners.length > 0) {
      change = { type: "promote_learner", nodeId: status.learners[0] as NodeId };
    } else if (
      status.voters.length > this.options.clusterSize ||
      (status.voters.length > 1 && this.options.adminProbability > 0 && this.adminRandom.nextInt(3) === 0)
    ) {
      change = { type: "remove_node", nodeId: status.voters[this.random.nextInt(status.voters.length)] as NodeId };
    } else if (this.joins < 4 && this.nodes.length < nodesMax) {
      change = { type: "add_learner", nodeId: nodeId(`n${this.nodes.length + 1}`) };
    } else {
      return;
    }
    const outcome = leader.rawNode.proposeConfChange(change);
    if (outcome.kind === "accepted" && change.type === "add_learner") {
      this.joins++;
      this.addNode(change.nodeId, new MemoryStorage());
    }
  }

  /** adminAction: an operator transfers leadership to a random voter, or pokes a random node to campaign. */
  private adminAction(): void {
    const live = this.nodes.filter((node) => node.rawNode !== undefined);
    const node = live[this.adminRandom.nextInt(Math.max(1, live.length))];
    if (node?.rawNode === undefined) return;
    if (this.adminRandom.nextInt(2) === 0) {
      node.rawNode.campaign();
      return;
    }
    const leader = this.currentLeader();
    if (leader?.rawNode === undefined) return;
    const voters = leader.rawNode.status().voters;
    leader.rawNode.transferLeadership(voters[this.adminRandom.nextInt(voters.length)] as NodeId);
  }

  // -------------------------------------------------------------------------------------------
  // Liveness and the final checks.

  private converged(): boolean {
    if (this.unacknowledged.size > 0) return false;
    // Every read a client started must have been served or dropped.
    for (const node of this.nodes) if (node.pendingReads.size > 0 || node.servableReads.length > 0) return false;
    if (this.locks !== undefined && this.locks.outstanding() > 0) return false;
    const leader = this.currentLeader();
    if (leader?.rawNode === undefined) return false;
    const status = leader.rawNode.status();
    if (status.commitIndex !== status.lastIndex || status.appliedIndex !== status.commitIndex) return false;
    for (const id of [...status.voters, ...status.learners]) {
      const node = this.byId.get(id);
      if (node === undefined || node.retired) continue;
      if (node.rawNode === undefined || node.appliedIndex !== status.commitIndex) return false;
    }
    return true;
  }

  private finalChecks(): void {
    if (this.stats.livenessTicks < 0) {
      this.checker.fail(
        "liveness",
        this.tickNow,
        `no convergence within ${this.livenessBoundTicks} ticks after the heal (unacknowledged commands: ${this.unacknowledged.size}, leader: ${this.currentLeader()?.id ?? "none"})`,
      );
      return;
    }
    const live = this.nodes.filter((node) => node.rawNode !== undefined);
    this.checker.checkLogMatching(
      this.tickNow,
      live.map((node) => ({ id: node.id, entries: (node.rawNode as RawNode).logEntries(0, Number.MAX_SAFE_INTEGER) })),
    );
  }

  /** restoreState rebuilds a node's state machine from a snapshot (its own on restart, or the leader's). */
  private restoreState(node: SimNode, index: LogIndex, data: Uint8Array): void {
    const state: { hash: number; locks?: LockStateSnapshot } = index === 0 ? { hash: 0 } : JSON.parse(this.textDecoder.decode(data));
    node.appliedIndex = index;
    node.stateHash = state.hash;
    if (this.locks !== undefined) node.replica = new LockReplica(this.locks.limits, state.locks, this.locks.plantedBug);
  }

  /** lockWorkloadTick: clients act, and each leader proposes the expiries its clock says are due. */
  private lockWorkloadTick(locks: LockWorkload): void {
    locks.tick();
    for (const node of this.nodes) {
      const replica = node.replica;
      if (node.rawNode === undefined || replica === undefined || !replica.timekeeper.isLeading()) continue;
      for (const command of replica.timekeeper.due(replica.clockMs)) node.rawNode.propose(encodeCommand(command));
    }
  }

  /** proposeLock hands a client's command to a node, following its leader hint once. */
  private proposeLock(id: string, command: LockCommand): { nodeId: string; index: number; term: number } | undefined {
    const data = encodeCommand(command);
    let node = this.byId.get(id);
    for (let hop = 0; hop < 2 && node?.rawNode !== undefined; hop++) {
      const outcome = node.rawNode.propose(data);
      if (outcome.kind === "accepted") {
        const replica = node.replica as LockReplica;
        (this.locks as LockWorkload).accepted(replica, outcome.index, outcome.term, command);
        return { nodeId: node.id, index: outcome.index, term: outcome.term };
      }
      if (outcome.kind !== "not_leader" || outcome.leaderHint === null) return undefined;
      node = this.byId.get(outcome.leaderHint);
    }
    return undefined;
  }

  private currentLeader(): SimNode | undefined {
    let leader: SimNode | undefined;
    let leaderTerm = -1;
    for (const node of this.nodes) {
      if (node.role !== "leader" || node.rawNode === undefined) continue;
      const term = node.rawNode.status().term;
      if (term > leaderTerm) {
        leader = node;
        leaderTerm = term;
      }
    }
    return leader;
  }

  private randomLiveNode(): SimNode | undefined {
    const live = this.nodes.filter((node) => node.rawNode !== undefined);
    return live.length === 0 ? undefined : live[this.random.nextInt(live.length)];
  }
}

/** entryKey is what the state machine sees of an entry: a command, a no-op or a membership change. */
function entryKey(entry: Entry, decoder: { decode(data: Uint8Array): string }): string {
  switch (entry.kind) {
    case "normal":
      return decoder.decode(entry.data);
    case "noop":
      return "noop";
    case "conf_change":
      return `${entry.change.type}:${entry.change.nodeId}`;
  }
}

/** mixHash folds one applied entry into the state machine's running FNV-1a hash. */
function mixHash(hash: number, key: string): number {
  let mixed = (hash ^ 0x811c9dc5) >>> 0;
  for (let position = 0; position < key.length; position++) {
    mixed ^= key.charCodeAt(position);
    mixed = Math.imul(mixed, 0x01000193) >>> 0;
  }
  return mixed;
}
