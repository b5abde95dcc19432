// RaftDriver runs one Raft core (raft/'s RawNode) over four seams: a Clock, a DurableLog, a
// PeerTransport, and a StateMachine that committed entries are applied to. It knows nothing of
// locks, sockets or LevelDB; the node process and the simulator run the same object, with real or
// simulated seams.
//
// One drive loop does all the work, in the order raft/README.md prescribes. Inputs wait in two
// queues: peer messages and ticks in the order they arrived, and requests (proposals, reads,
// transfers). Each turn of the loop first feeds a bounded batch of each to the core, then takes one
// Ready: persist it (one fsync), send its messages, apply its committed entries, and advance.
// While a Ready is being persisted the core keeps stepping (side turns, one per tick): peer
// messages and ticks are fed in the order they came, and the messages that promise nothing about this node's disk (heartbeats
// and their answers, a leader's appends: raft/node.ts mayLeaveBeforePersist) go out at once;
// everything else the core produces meanwhile (acknowledgements, votes, a new term, entries to
// apply) waits for the next Ready and its write. Requests wait for the next turn, as before, so
// what arrives during a write still goes out as one batch (group commit). So a slow fsync no
// longer silences a leader.
//
// The loop is written with callbacks, not promises: a save's completion is a callback from the
// DurableLog, and every "later" goes through the Clock. So a simulator can run the loop on a
// virtual timeline, deterministically, with no microtask queue to drain.

import {
  assert,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  MemoryStorage,
  mayLeaveBeforePersist,
  type NodeId,
  type RaftConfig,
  type RaftMessage,
  RawNode,
  type Ready,
  type Refusal,
  type Snapshot,
  type Status,
} from "../../raft/index.ts";
import { DiskFullError, type DurableLog, type DurableState, type PeerTransport } from "../contracts.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import { coalesceMessages } from "./coalesce-messages.ts";

/** DriverErrorCode: why the driver could not serve a proposal or read. The HTTP layer maps each to a status. */
export type DriverErrorCode =
  | "not_leader"
  | "proposal_dropped"
  | "leadership_lost"
  | "timeout"
  | "shutting_down"
  | "overloaded"
  /** disk_full: this node's disk is full, so it can write nothing; it waits for space (see write). */
  | "disk_full"
  /** invalid_command: the command does not fit its schema (protocol/commands.ts), so it never enters the log. */
  | "invalid_command";

/** StorageStatus: whether this node's writes reach its disk (GET /status `storage`). */
export type StorageStatus =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly reason: "disk_full";
      readonly message: string;
      readonly failingForMs: number;
      readonly peerMessagesDropped: number;
    };

export class DriverError extends Error {
  readonly code: DriverErrorCode;
  readonly leaderHint: NodeId | null;
  /** dropReason: for proposal_dropped, why the core refused it (some reasons are the caller's fault). */
  readonly dropReason: string | undefined;
  constructor(code: DriverErrorCode, message: string, leaderHint: NodeId | null = null, dropReason?: string) {
    super(message);
    this.name = "DriverError";
    this.code = code;
    this.leaderHint = leaderHint;
    this.dropReason = dropReason;
  }
}

/**
 * StateMachine is what committed entries are applied to (hashicorp/raft's FSM). The driver calls
 * it from its loop only, in log order, each entry once.
 */
export interface StateMachine<TResult> {
  /** appliedIndex: the index of the last entry applied (or of the snapshot restored). */
  appliedIndex(): number;
  /** apply applies one committed entry (normal, no-op or membership); what it returns answers the entry's proposer. */
  apply(entry: Entry): TResult | undefined;
  /** snapshot encodes the whole state as of appliedIndex(), for compaction. */
  snapshot(): Uint8Array;
  /**
   * snapshotInSlices, when given, is snapshot() a bounded piece at a time: the driver calls next()
   * once a turn of its event loop until it returns the bytes, and the loop runs side turns (ticks,
   * heartbeats, peer messages) in between, as during a write. The state does not change meanwhile:
   * the driver applies nothing while a compaction is in flight.
   */
  snapshotInSlices?(): Iterator<void, Uint8Array, void>;
  /** restore replaces the state by a snapshot's (one from disk at start, or one the leader sent). */
  restore(snapshot: Snapshot): void;
}

/**
 * DriverListener hears the loop's turning points; what sits on top of the driver (the lock
 * service) keeps its policy here. Each hook runs inside the loop: it must be cheap, and may call
 * the driver's propose methods (inside `turnStarting`, those proposals are fed at once, ahead of
 * everything queued).
 */
export interface DriverListener {
  /** turnStarting: a drive turn (or a side turn, during a write) begins, after `ticks` ticks were fed to the core (often 0). */
  turnStarting?(ticks: number): void;
  /** roleChanged: this node's role or known leader changed. */
  roleChanged?(role: Status["role"], leaderId: NodeId | null, term: number): void;
  /** entriesApplied: one Ready's committed entries were applied (after the last one). */
  entriesApplied?(): void;
  /** snapshotRestored: a snapshot from the leader replaced the state. */
  snapshotRestored?(index: number): void;
  /** diskFull: a write found the disk full and waits for space (attempt 0, then every 20th attempt). */
  diskFull?(message: string, attempt: number): void;
  /** spaceBack: the write that waited went through, after `waitedMs`. */
  spaceBack?(waitedMs: number): void;
  /** compactionSkipped: a compaction found no space; the next one tries again. */
  compactionSkipped?(message: string): void;
}

/** ProposalOutcomeKind: what the core answered a proposal (a command or a membership step). */
export type ProposalOutcomeKind = "accepted" | "not_leader" | "dropped";

/** DriverObserver watches the loop for metrics and the status page; its hooks must be cheap and must not throw. */
export interface DriverObserver<TResult> {
  /** readyTaken: the core handed out a Ready; its write has not started (the simulator notes what each acknowledgement promises). */
  readyTaken?(ready: Ready): void;
  /** readyHandled: one Ready was persisted, sent, applied and advanced; `nowMs` is the driver's clock. */
  readyHandled?(ready: Ready, nowMs: number): void;
  /** applied: a committed entry was applied, with what the state machine returned. */
  applied?(entry: Entry, result: TResult | undefined): void;
  /** proposed: the core's answer to a proposal fed to it. */
  proposed?(outcome: ProposalOutcomeKind): void;
  /** transferRequested: a leadership transfer was asked of this node, and what the core answered. */
  transferRequested?(transferee: NodeId, outcome: "started" | ProposalOutcomeKind): void;
}

export interface DriverOptions<TResult> {
  readonly raft: Omit<RaftConfig, "id">;
  readonly nodeId: NodeId;
  /** bootstrapVoters: the founding members, used only when the durable state is empty. */
  readonly bootstrapVoters: readonly NodeId[];
  readonly tickIntervalMs: number;
  readonly clock: Clock;
  readonly durableLog: DurableLog;
  readonly transport: PeerTransport;
  readonly stateMachine: StateMachine<TResult>;
  readonly listener?: DriverListener;
  readonly observer?: DriverObserver<TResult>;
  /** snapshotIntervalEntries: compact the log once this many entries are applied past the last snapshot. */
  readonly snapshotIntervalEntries: number;
  /** proposalTimeoutMs bounds how long a proposal or read may wait for its outcome. */
  readonly proposalTimeoutMs: number;
  /** pendingRequestsMax bounds proposals and reads waiting for their outcome (with what the caller holds back, `heldElsewhere`). */
  readonly pendingRequestsMax: number;
  /**
   * inputsPerTurnMax bounds the inputs fed to the core in one turn: at most this many peer
   * messages (with the ticks between them) and this many requests (proposals, reads, transfers);
   * the rest wait, in order, for the next turn. One turn's work is then bounded whatever the
   * load, and so is how long a tick (a heartbeat) waits behind it.
   */
  readonly inputsPerTurnMax: number;
}

/** ProposalCallback answers a proposal: the state machine's result once applied, or why not. */
export type ProposalCallback<TResult> = (outcome: { result: TResult | undefined } | { error: DriverError }) => void;

/** PeerInput: what the peer queue holds, in arrival order: a peer's message, or one tick of time. */
type PeerInput = { readonly kind: "message"; readonly message: RaftMessage } | { readonly kind: "tick" };

/** Input: anything the driver feeds the core (requests wait in a queue of their own). */
type Input<TResult> =
  | PeerInput
  | { readonly kind: "propose"; readonly data: Uint8Array; readonly done: ProposalCallback<TResult> }
  | { readonly kind: "conf_change"; readonly change: ConfChange; readonly done: ProposalCallback<TResult> }
  | { readonly kind: "read"; readonly done: (error: DriverError | undefined) => void }
  | { readonly kind: "transfer"; readonly transferee: NodeId; readonly done: (outcome: Refusal | { kind: "started" }) => void };

interface ProposalWaiter<TResult> {
  readonly done: ProposalCallback<TResult>;
  readonly term: number;
  readonly timer: TimerHandle;
}

interface ReadWaiter {
  readonly done: (error: DriverError | undefined) => void;
  index: number;
  readonly timer: TimerHandle;
}

/**
 * Completion: a write's outcome, reported once: a Promise (the durable log's), or a thenable the
 * driver completes by callbacks (snapshotThenCompact), as the simulator's disk does (see write).
 */
interface Completion {
  then(done: () => void, failed: (error: unknown) => void): unknown;
}

/** turnsBetweenYields: a busy loop lets timers and sockets run after this many Readies in a row. */
const turnsBetweenYields = 16;

export class RaftDriver<TResult> {
  readonly nodeId: NodeId;
  private readonly options: DriverOptions<TResult>;
  private readonly clock: Clock;
  private readonly storage: MemoryStorage;
  private readonly rawNode: RawNode;
  private readonly stateMachine: StateMachine<TResult>;
  /** peerInputs: peer messages and ticks, in the order they arrived (see feedInputs). */
  private readonly peerInputs: PeerInput[] = [];
  /** ticksQueued: the ticks in peerInputs (at most one election timeout's worth). */
  private ticksQueued = 0;
  /** requests: proposals, reads and transfers not yet fed, in arrival order. */
  private readonly requests: Input<TResult>[] = [];
  /** sideTurnDue: a side turn (feeding the core while a write is in flight) is deferred and not yet run. */
  private sideTurnDue = false;
  /** durableTerm: the term of the newest hard state known to be on disk (what messages sent during a write may carry). */
  private durableTerm: number;
  private driving = false;
  /** feeding: inside a turn's feed step, where proposals from `turnStarting` go straight to the core. */
  private feeding = false;
  /** saving: a write is in flight; only side turns touch the core until it completes (sideTurn). */
  private saving = false;
  private started = false;
  /** bootstrapping: this node founds a cluster, and its first entries are not on disk yet (start writes them). */
  private bootstrapping: boolean;
  private stopped = false;
  private ticker: TimerHandle | undefined;
  private readonly proposals = new Map<number, ProposalWaiter<TResult>>();
  private readonly reads = new Map<number, ReadWaiter>();
  /** readsAwaitingApply: confirmed reads waiting for the state machine to reach their index. */
  private readsAwaitingApply: ReadWaiter[] = [];
  private nextReadId = 1;
  private role: Status["role"] = "follower";
  private knownLeaderId: NodeId | null = null;
  /** savedHardState is the hard state last handed to the durable log. */
  private savedHardState: HardState;
  /** stopWaiters: stop() callers waiting for the loop to come to rest. */
  private stopWaiters: (() => void)[] = [];
  /** diskFull: since when (clock ms) writes find the disk full, and the last error; undefined while they succeed (see write). */
  private diskFull: { sinceMs: number; message: string; peerMessagesDropped: number } | undefined;
  /** diskRetry: the wait before the next attempt of a write that found the disk full, and how to end it early (stop). */
  private diskRetry: { timer: TimerHandle; now: () => void } | undefined;

  /**
   * constructor builds the driver over what `durable` holds (an empty state with bootstrapVoters
   * founds a cluster) and restores the state machine from its snapshot. Nothing runs until start().
   */
  constructor(options: DriverOptions<TResult>, durable: DurableState) {
    for (const key of ["pendingRequestsMax", "inputsPerTurnMax", "proposalTimeoutMs", "tickIntervalMs"] as const) {
      assert(
        Number.isSafeInteger(options[key]) && options[key] >= 1,
        `the driver's ${key} must be a positive integer, not ${options[key]}`,
      );
    }
    this.options = options;
    this.nodeId = options.nodeId;
    this.clock = options.clock;
    this.stateMachine = options.stateMachine;
    const isEmpty = durable.snapshot === undefined && durable.entries.length === 0 && durable.hardState.term === 0;
    if (isEmpty && options.bootstrapVoters.length > 0) {
      this.storage = MemoryStorage.bootstrap(options.bootstrapVoters);
    } else {
      this.storage = new MemoryStorage();
      if (durable.snapshot !== undefined) this.storage.applySnapshot(durable.snapshot);
      this.storage.append(durable.entries);
      this.storage.setHardState(durable.hardState);
    }
    // A bootstrapped state is not on disk yet: start() writes it first, so it is "saved" only then.
    this.bootstrapping = isEmpty && options.bootstrapVoters.length > 0;
    this.savedHardState = this.bootstrapping ? durable.hardState : this.storage.hardStateNow();
    this.durableTerm = this.storage.hardStateNow().term; // A bootstrapped state is on disk before the loop runs (start).
    this.stateMachine.restore(this.storage.snapshot());
    this.rawNode = new RawNode({ ...options.raft, id: options.nodeId }, this.storage);
  }

  /**
   * start begins ticking and listening. A founding node writes its bootstrap entries first;
   * `onStarted` is called once the node runs (after that write).
   */
  start(onStarted: (error?: Error) => void = () => undefined): void {
    assert(!this.started, "a driver starts once");
    this.started = true;
    const begin = () => {
      this.options.transport.onMessage((message) => this.enqueue({ kind: "message", message }));
      this.ticker = this.clock.repeat(() => this.onTick(), this.options.tickIntervalMs);
      this.kick();
      onStarted();
    };
    if (this.bootstrapping) {
      const bootstrap = this.storage.entries(1, this.storage.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
      const hardState = this.storage.hardStateNow();
      this.options.durableLog.save({ hardState, entries: bootstrap }).then(
        () => {
          this.savedHardState = hardState;
          this.bootstrapping = false;
          begin();
        },
        (error: unknown) => onStarted(error instanceof Error ? error : new Error(String(error))),
      );
      return;
    }
    begin();
  }

  // -------------------------------------------------------------------------------------------
  // Operations.

  /** propose appends `data` through the log; `done` hears the state machine's result once applied. */
  propose(data: Uint8Array, done: ProposalCallback<TResult>): void {
    if (!this.admit((error) => done({ error }))) return;
    this.enqueueOrFeed({ kind: "propose", data, done });
  }

  /** proposeConfChange proposes one membership step; `done` hears once it is applied. */
  proposeConfChange(change: ConfChange, done: ProposalCallback<TResult>): void {
    if (!this.admit((error) => done({ error }))) return;
    this.enqueueOrFeed({ kind: "conf_change", change, done });
  }

  /** read confirms leadership (ReadIndex, thesis §6.4) and calls `done` once the state machine has applied that far. */
  read(done: (error: DriverError | undefined) => void): void {
    if (!this.admit(done)) return;
    this.enqueueOrFeed({ kind: "read", done });
  }

  /** transferLeadership asks the core to hand leadership to `transferee`. */
  transferLeadership(transferee: NodeId, done: (outcome: Refusal | { kind: "started" }) => void): void {
    if (this.stopped) {
      done({ kind: "not_leader", leaderHint: null });
      return;
    }
    this.enqueueOrFeed({ kind: "transfer", transferee, done });
  }

  /** storageStatus: whether writes reach the disk; for /status. */
  storageStatus(): StorageStatus {
    if (this.diskFull === undefined) return { ok: true };
    const { sinceMs, message, peerMessagesDropped } = this.diskFull;
    return { ok: false, reason: "disk_full", message, failingForMs: Math.round(this.clock.nowMs() - sinceMs), peerMessagesDropped };
  }

  status(): Status {
    return this.rawNode.status();
  }

  /** leaderId: the leader this node knows, as of the last Ready handled (cheap: no status object is built). */
  leaderId(): NodeId | null {
    return this.knownLeaderId;
  }

  /** currentTerm: the term of the newest hard state handed to the log (cheap; the simulator reads it on every apply). */
  currentTerm(): number {
    return this.storage.hardStateNow().term;
  }

  /** entryTerm: the term of this core's entry at `index`, if its log holds it (checkers and status pages). */
  entryTerm(index: number): number | undefined {
    return this.rawNode.entryTerm(index);
  }

  /** logEntries: this core's entries [lo, hi), clamped to what it holds (checkers and status pages). */
  logEntries(lo: number, hi: number): readonly Entry[] {
    return this.rawNode.logEntries(lo, hi);
  }

  /** isLeader: whether this node led as of the last Ready handled. */
  isLeader(): boolean {
    return this.role === "leader";
  }

  /** pendingRequests: proposals and reads waiting for an outcome, and inputs not yet fed. */
  pendingRequests(): number {
    return this.proposals.size + this.reads.size + this.requests.length + this.readsAwaitingApply.length;
  }

  /**
   * stop stops ticking and taking input, lets a write in flight finish, then fails everything
   * pending with `shutting_down`; `done` is called once the loop has come to rest. The caller
   * closes the durable log and the transport.
   */
  stop(done: () => void = () => undefined): void {
    if (this.stopped) {
      if (this.driving) this.stopWaiters.push(done);
      else done();
      return;
    }
    this.stopped = true;
    if (this.ticker !== undefined) this.clock.clearTimer(this.ticker);
    this.stopWaiters.push(done);
    if (!this.driving) this.comeToRest();
    else this.diskRetry?.now(); // A write waiting for space is not tried again: the loop comes to rest.
  }

  // -------------------------------------------------------------------------------------------
  // The drive loop.

  private admit(reject: (error: DriverError) => void): boolean {
    if (this.stopped) {
      reject(new DriverError("shutting_down", "the node is shutting down"));
      return false;
    }
    if (this.diskFull !== undefined) {
      // The loop waits for space (write): nothing queued now would be served soon. A follower
      // sends the caller on to the leader it knows; the leader, or a node that knows none, refuses.
      const leader = this.knownLeaderId;
      reject(
        leader !== null && leader !== this.nodeId
          ? new DriverError("not_leader", "this node's disk is full; ask the leader", leader)
          : new DriverError("disk_full", `this node's disk is full, so it cannot write: ${this.diskFull.message}; another node may serve`),
      );
      return false;
    }
    if (this.pendingRequests() >= this.options.pendingRequestsMax) {
      reject(new DriverError("overloaded", `more than ${this.options.pendingRequestsMax} requests are pending`));
      return false;
    }
    return true;
  }

  private enqueue(input: Input<TResult>): void {
    if (this.stopped) return;
    if (this.diskFull !== undefined && input.kind === "message") {
      // The loop is held until the disk has space: a peer message would only pile up (Raft
      // tolerates loss, and the peers send newer ones).
      this.diskFull.peerMessagesDropped++;
      return;
    }
    if (input.kind === "message") this.peerInputs.push(input);
    else this.requests.push(input);
    this.wake();
  }

  /** enqueueOrFeed queues an input, or feeds it at once when called from `turnStarting` (ahead of what is queued). */
  private enqueueOrFeed(input: Input<TResult>): void {
    if (this.feeding) this.feed(input);
    else this.enqueue(input);
  }

  private onTick(): void {
    if (this.stopped) return;
    // A node that was held (a full disk) catches up on time, but never more than one election's worth.
    if (this.ticksQueued >= this.options.raft.electionTimeoutTicks) return;
    this.ticksQueued++;
    this.peerInputs.push({ kind: "tick" });
    this.wake(true);
  }

  /** wake: an input arrived. While a write is in flight it waits for the next tick's side turn; otherwise the loop starts. */
  private wake(tick = false): void {
    if (!this.saving) this.kick();
    else if (tick) this.scheduleSideTurn(); // Peer messages wait for the next tick, requests for the write (see sideTurn).
  }

  private scheduleSideTurn(): void {
    if (this.sideTurnDue || this.stopped) return;
    this.sideTurnDue = true;
    this.clock.defer(() => this.sideTurn());
  }

  /**
   * sideTurn feeds the core the peer messages and ticks that arrived while a write is in flight,
   * and sends at once what the core lets go before the write is durable
   * (RawNode.messagesWhilePersisting): heartbeats, the answers to them, a leader's appends and
   * snapshots. Before this, nothing touched the core during a write, and a leader whose fsync
   * outlasted the election timeout (15 of 631 took over 100 ms in one bench:overload run) sent no
   * heartbeat meanwhile: its followers elected another leader. Everything else the core produces
   * waits for the next Ready, which is taken, as before, only once this write is done.
   *
   * A side turn runs on each tick during a write and feeds everything queued since, in order: a
   * peer's message waits at most a tick (10 ms in the node, against 30 ms between heartbeats and
   * 150 ms of election timeout), the work is one bounded batch a tick rather than a turn per
   * message, and what the batch sends to one peer is coalesced into one frame. (With a turn per
   * message, the simulator no longer found the planted bug coalesce_ignores_gaps in 600
   * schedules: a leader's appends went out one at a time during its writes, so no batch held two
   * to one peer. With a turn per tick it is found at run 12.)
   *
   * Requests (proposals, reads, transfers) are not fed here: what a side turn proposed would go
   * into the next write all the same (and be applied and answered only after it), so feeding them
   * early would gain nothing but a stream of small appends, one per side turn, where the next
   * Ready sends the whole batch as one append per follower. The lock service's own proposals
   * (lease expiries, held joins: `turnStarting`, which hears the ticks fed here) are the
   * exception, and few. A node whose disk is full feeds nothing (the loop is held, see write): a
   * leader that cannot write must fall silent, so that the others elect one that can.
   */
  private sideTurn(): void {
    this.sideTurnDue = false;
    if (!this.saving || this.stopped || this.diskFull !== undefined) return; // The loop takes the inputs itself.
    this.feedInputs(false);
    const early = this.rawNode.messagesWhilePersisting();
    for (const message of early) {
      // The rule, checked where messages leave: nothing that promises durability before the write is done.
      assert(
        mayLeaveBeforePersist(message, this.durableTerm),
        `${message.type} of term ${message.term} to ${message.to} sent while a write is in flight (durable term ${this.durableTerm})`,
      );
    }
    this.sendMessages(early);
  }

  /**
   * kick starts the drive loop unless it is running; a running loop picks up new inputs itself.
   * An idle loop starts on the clock's next deferral (setImmediate), not at once: requests and
   * peer frames that arrived in the same poll as this one are queued by then, and go into the same
   * Ready and the same fsync instead of one each.
   */
  private kick(): void {
    if (this.driving || this.stopped) return;
    this.driving = true;
    this.clock.defer(() => this.drive(0));
  }

  /** drive runs turns until there is no work, a write is in flight, or it is time to yield. */
  private drive(turnsDone: number): void {
    let turns = turnsDone;
    for (;;) {
      if (this.stopped) {
        this.comeToRest();
        return;
      }
      this.feedInputs();
      const ready = this.rawNode.ready();
      if (ready === undefined) {
        if (this.peerInputs.length === 0 && this.requests.length === 0) {
          this.loopIdle();
          return;
        }
        continue;
      }
      turns++;
      this.options.observer?.readyTaken?.(ready);
      if (this.persist(ready, () => this.afterPersist(ready, turns))) return; // Continues when the write is done.
      if (!this.finishReady(ready, turns)) return;
    }
  }

  /** loopIdle ends a drive; something may have arrived between the loop's last look and now. */
  private loopIdle(): void {
    this.driving = false;
    if (this.peerInputs.length > 0 || this.requests.length > 0) this.kick();
  }

  private afterPersist(ready: Ready, turns: number): void {
    if (this.finishReady(ready, turns)) this.drive(turns);
  }

  /**
   * finishReady handles what follows a Ready's write; it answers whether the loop may go straight
   * on (false: it continues later, after a compaction's write or a yield to timers and sockets).
   */
  private finishReady(ready: Ready, turns: number): boolean {
    this.sendAppliedAndAdvance(ready);
    if (this.compactIfDue(() => this.afterCompaction(turns))) return false;
    if (turns % turnsBetweenYields === 0) {
      // Let timers and sockets run between turns, so a busy node still ticks and receives.
      this.clock.defer(() => this.drive(turns));
      return false;
    }
    return true;
  }

  private afterCompaction(turns: number): void {
    if (turns % turnsBetweenYields === 0) this.clock.defer(() => this.drive(turns));
    else this.drive(turns);
  }

  /** comeToRest fails everything pending once the loop has stopped, and answers stop()'s callers. */
  private comeToRest(): void {
    this.driving = false;
    const error = new DriverError("shutting_down", "the node is shutting down");
    // Inputs still queued behind the last save were never fed to the core: answer them too.
    this.peerInputs.length = 0;
    this.ticksQueued = 0;
    for (const input of this.requests.splice(0, this.requests.length)) {
      if (input.kind === "propose" || input.kind === "conf_change") input.done({ error });
      else if (input.kind === "read") input.done(error);
      else if (input.kind === "transfer") input.done({ kind: "not_leader", leaderHint: null });
    }
    this.failPending(error);
    const waiters = this.stopWaiters;
    this.stopWaiters = [];
    for (const waiter of waiters) waiter();
  }

  /**
   * feedInputs feeds one turn's inputs: peer messages and ticks in the order they arrived, then
   * (unless `requests` is false: a side turn) requests. Each queue gives at most inputsPerTurnMax
   * inputs a turn (ticks are not counted).
   *
   * Time and messages are fed interleaved, as they arrived. Ticks used to go first: after a long
   * write, a leader counted up to an election timeout of ticks, and ran check-quorum, before
   * reading the followers' answers that were waiting in the queue, and stepped down; a follower
   * counted its election timeout before the heartbeat that was waiting. A message that arrived
   * before a tick is older than that tick: the peer was alive by then, whatever this node was
   * doing. (Side turns now feed inputs during a write, so a backlog rarely forms; the order still
   * matters after a full disk, at the per-turn bound, and wherever time and messages queue up.)
   *
   * Peer inputs go before requests: under a flood of requests, heartbeats and their answers do not
   * wait behind them. Requests are fed a bounded batch per turn: under overload a turn that took
   * everything queued grew with the queue (10,000 proposals, seconds of work on a starved thread),
   * and the next tick, with its heartbeats, waited for all of it (bench:overload).
   */
  private feedInputs(requests = true): void {
    let ticks = 0;
    let messages = 0;
    let taken = 0;
    for (const input of this.peerInputs) {
      if (input.kind === "tick") {
        this.rawNode.tick();
        ticks++;
      } else {
        if (messages === this.options.inputsPerTurnMax) break;
        this.rawNode.step(input.message);
        messages++;
      }
      taken++;
    }
    this.peerInputs.splice(0, taken);
    this.ticksQueued -= ticks;
    this.feeding = true;
    try {
      this.options.listener?.turnStarting?.(ticks);
    } finally {
      this.feeding = false;
    }
    if (!requests || this.requests.length === 0) return;
    const count = Math.min(this.requests.length, this.options.inputsPerTurnMax);
    for (const input of this.requests.splice(0, count)) this.feed(input);
  }

  private feed(input: Input<TResult>): void {
    switch (input.kind) {
      case "message":
        this.rawNode.step(input.message);
        return;
      case "tick":
        this.rawNode.tick();
        return;
      case "propose":
        this.trackProposal(this.rawNode.propose(input.data), input.done);
        return;
      case "conf_change":
        this.trackProposal(this.rawNode.proposeConfChange(input.change), input.done);
        return;
      case "read":
        this.startRead(input.done);
        return;
      case "transfer": {
        const outcome = this.rawNode.transferLeadership(input.transferee);
        this.options.observer?.transferRequested?.(input.transferee, outcome.kind);
        input.done(outcome);
        return;
      }
    }
  }

  private trackProposal(outcome: ReturnType<RawNode["propose"]>, done: ProposalCallback<TResult>): void {
    this.options.observer?.proposed?.(outcome.kind);
    if (outcome.kind === "not_leader") {
      done({ error: new DriverError("not_leader", "this node is not the leader", outcome.leaderHint) });
      return;
    }
    if (outcome.kind === "dropped") {
      done({
        error: new DriverError("proposal_dropped", `the leader dropped the proposal: ${outcome.reason}`, this.nodeId, outcome.reason),
      });
      return;
    }
    const timer = this.clock.setTimer(() => {
      this.proposals.delete(outcome.index);
      done({
        error: new DriverError("timeout", `proposal at index ${outcome.index} not applied within ${this.options.proposalTimeoutMs} ms`),
      });
    }, this.options.proposalTimeoutMs);
    this.proposals.set(outcome.index, { done, term: outcome.term, timer });
  }

  private startRead(done: (error: DriverError | undefined) => void): void {
    const requestId = this.nextReadId++;
    const outcome = this.rawNode.readIndex(requestId);
    if (outcome.kind === "not_leader") {
      done(new DriverError("not_leader", "this node is not the leader", outcome.leaderHint));
      return;
    }
    if (outcome.kind === "dropped") {
      done(new DriverError("proposal_dropped", `the leader dropped the read: ${outcome.reason}`, this.nodeId));
      return;
    }
    const waiter: ReadWaiter = {
      done,
      index: 0,
      timer: this.clock.setTimer(() => {
        this.reads.delete(requestId);
        this.readsAwaitingApply = this.readsAwaitingApply.filter((pending) => pending !== waiter);
        done(new DriverError("timeout", `read not confirmed within ${this.options.proposalTimeoutMs} ms`));
      }, this.options.proposalTimeoutMs),
    };
    this.reads.set(requestId, waiter);
  }

  /**
   * persist starts a Ready's write, if it has anything durable, and answers whether one is in
   * flight (`then` runs when it is done). A leader's AppendEntries go out before the write (thesis
   * §10.2.1, allowed by the contract): they promise nothing about this node's disk, and the core
   * counts the leader's own entries only once advance() reports them durable. The followers' disk
   * writes then overlap the leader's, which takes one fsync off the latency of every commit.
   */
  private persist(ready: Ready, then: () => void): boolean {
    const early = ready.appendsBeforePersist ? ready.messages.filter((message) => message.type === "append_entries") : [];
    this.sendMessages(early);
    const membershipCommitted = this.commitsMembershipChange(ready);
    if (!this.needsSave(ready) && !membershipCommitted) return false;
    // A committed membership change is applied only once its commit index is on disk (see commitsMembershipChange).
    const hardState = ready.hardState ?? (membershipCommitted ? this.storage.hardStateNow() : undefined);
    if (hardState !== undefined) {
      assert(hardState.term >= this.savedHardState.term, `term went back from ${this.savedHardState.term} to ${hardState.term}`);
      this.savedHardState = hardState;
    }
    const durable = () => {
      if (hardState !== undefined) this.durableTerm = hardState.term;
      then();
    };
    this.write(
      () =>
        this.options.durableLog.save({
          ...(hardState === undefined ? {} : { hardState }),
          entries: ready.entries,
          ...(ready.snapshot === undefined ? {} : { snapshot: ready.snapshot }),
        }),
      durable,
    );
    return true;
  }

  /** sendAppliedAndAdvance is the rest of a Ready once it is durable: send, apply, settle reads, advance. */
  private sendAppliedAndAdvance(ready: Ready): void {
    assert(!this.saving, "a Ready's messages are sent only after its write is durable");
    if (ready.snapshot !== undefined) this.storage.applySnapshot(ready.snapshot);
    this.storage.append(ready.entries);
    if (ready.hardState !== undefined) this.storage.setHardState(ready.hardState);
    const late = ready.appendsBeforePersist ? ready.messages.filter((message) => message.type !== "append_entries") : ready.messages;
    this.sendMessages(late);
    if (ready.softState !== undefined) this.roleChanged(ready.softState.role, ready.softState.leaderId, ready.softState.term);
    if (ready.snapshot !== undefined) this.installSnapshot(ready.snapshot);
    for (const entry of ready.committedEntries) this.apply(entry);
    if (ready.committedEntries.length > 0) {
      const committed = this.storage.hardStateNow().commitIndex;
      const applied = this.stateMachine.appliedIndex();
      assert(applied <= committed, `applied index ${applied} passed the commit index ${committed}`);
      this.options.listener?.entriesApplied?.();
    }
    this.settleReads(ready);
    this.rawNode.advance(ready);
    this.options.observer?.readyHandled?.(ready, this.clock.nowMs());
  }

  /**
   * sendMessages sends one frame per peer where the core produced many (see coalesce-messages.ts).
   * (An AppendEntries carrying only a new commit index was once held back here for a tick; the
   * core no longer sends one: the commit index rides on the next append or heartbeat.)
   */
  private sendMessages(messages: readonly RaftMessage[]): void {
    if (messages.length === 0) return;
    const frames = messages.length === 1 ? messages : coalesceMessages(messages, this.options.raft);
    for (const message of frames) this.options.transport.send(message);
  }

  /**
   * needsSave: a Ready that changes nothing but the commit index is not written (no fsync). The
   * commit index is volatile state in the paper (Figure 2): after a restart it is learned again
   * from the leader, and the next real save carries the newest hard state anyway. Term and vote
   * changes, entries and snapshots are always written before anything is sent.
   */
  private needsSave(ready: Ready): boolean {
    if (ready.entries.length > 0 || ready.snapshot !== undefined) return true;
    const hardState = ready.hardState;
    if (hardState === undefined) return false;
    return hardState.term !== this.savedHardState.term || hardState.votedFor !== this.savedHardState.votedFor;
  }

  /**
   * commitsMembershipChange: the Ready applies a membership change whose commit is not on disk yet.
   * Then the commit index is written before the change is applied (the exception to needsSave).
   * A node rebuilds its membership at restart from the entries up to its stored commit index; with
   * the commit index stale, a removal it had applied is undone, and the node counts the removed
   * server's vote again. The operator stops a removed server once the others have applied its
   * removal, so that vote never comes: a cluster of {n3, n4} that removed n4, whose n3 restarted,
   * waited for n4 forever (found by the simulator; the regression schedule is in
   * simulations/regressions.test.ts).
   */
  private commitsMembershipChange(ready: Ready): boolean {
    for (const entry of ready.committedEntries) {
      if (entry.kind === "conf_change" && entry.index > this.savedHardState.commitIndex) return true;
    }
    return false;
  }

  /** roleChanged: a Ready reports a new role or leader, held in `term` (the core may be past it: see SoftState). */
  private roleChanged(role: Status["role"], leaderId: NodeId | null, term: number): void {
    const was = this.role;
    this.role = role;
    this.knownLeaderId = leaderId;
    if (was === "leader" && role !== "leader") {
      // Proposals still in flight may or may not commit: their clients retry with the same session.
      for (const [index, waiter] of this.proposals) {
        this.clock.clearTimer(waiter.timer);
        waiter.done({ error: new DriverError("leadership_lost", `leadership lost before index ${index} was applied; retry`, leaderId) });
      }
      this.proposals.clear();
    }
    this.options.listener?.roleChanged?.(role, leaderId, term);
  }

  private installSnapshot(snapshot: Snapshot): void {
    this.stateMachine.restore(snapshot);
    this.options.listener?.snapshotRestored?.(snapshot.metadata.index);
  }

  private apply(entry: Entry): void {
    if (entry.index <= this.stateMachine.appliedIndex()) return;
    const result = this.stateMachine.apply(entry);
    assert(this.stateMachine.appliedIndex() === entry.index, `the state machine did not apply entry ${entry.index}`);
    this.options.observer?.applied?.(entry, result);
    const waiter = this.proposals.get(entry.index);
    if (waiter === undefined) return;
    this.proposals.delete(entry.index);
    this.clock.clearTimer(waiter.timer);
    // Another term's entry at the proposal's index means the proposal was overwritten.
    if (entry.term === waiter.term) waiter.done({ result });
    else waiter.done({ error: new DriverError("leadership_lost", "the proposal was overwritten by a new leader") });
  }

  private settleReads(ready: Ready): void {
    for (const read of ready.readStates) {
      const waiter = this.reads.get(read.requestId);
      if (waiter === undefined) continue;
      this.reads.delete(read.requestId);
      waiter.index = read.index;
      this.readsAwaitingApply.push(waiter);
    }
    for (const requestId of ready.droppedReads) {
      const waiter = this.reads.get(requestId);
      if (waiter === undefined) continue;
      this.reads.delete(requestId);
      this.clock.clearTimer(waiter.timer);
      waiter.done(new DriverError("leadership_lost", "leadership was lost before the read was confirmed; retry"));
    }
    const applied = this.stateMachine.appliedIndex();
    const still: ReadWaiter[] = [];
    for (const waiter of this.readsAwaitingApply) {
      if (waiter.index > applied) {
        still.push(waiter);
        continue;
      }
      this.clock.clearTimer(waiter.timer);
      waiter.done(undefined);
    }
    this.readsAwaitingApply = still;
  }

  /**
   * compactIfDue takes a snapshot once enough entries are applied past the last one, and answers
   * whether a write is in flight (`then` runs when it is done).
   */
  private compactIfDue(then: () => void): boolean {
    const applied = this.stateMachine.appliedIndex();
    const snapshotIndex = this.storage.snapshot().metadata.index;
    if (applied - snapshotIndex < this.options.snapshotIntervalEntries || applied > this.storage.lastIndex()) return false;
    // A compaction only saves space: without room for it, the log stays longer, and the next one
    // tries again (the loop goes on).
    const skipped = (error: DiskFullError) => {
      this.options.listener?.compactionSkipped?.(error.message);
      then();
    };
    const compact = () => {
      // Taken now: a snapshot the leader sends may replace the core's membership while the state is encoded.
      const confStateAtApplied = this.rawNode.confState();
      this.write(() => this.snapshotThenCompact(applied, confStateAtApplied), then, skipped);
    };
    // The stored commit index may lag (see needsSave); compaction may not pass it, so store it first.
    const hardState = this.storage.hardStateNow();
    if (hardState.commitIndex <= this.savedHardState.commitIndex) {
      compact();
      return true;
    }
    this.write(
      () => this.options.durableLog.save({ hardState, entries: [] }),
      () => {
        this.savedHardState = hardState;
        compact();
      },
      skipped,
    );
    return true;
  }

  /**
   * snapshotThenCompact takes the state machine's snapshot and has the durable log compact with
   * it, as the compaction's write: `saving` is set from the start, so no Ready is taken and side
   * turns keep ticks, heartbeats and peer messages going throughout. A state machine that offers
   * slices (snapshotInSlices) is encoded one slice per deferred turn: in one piece, the JSON and
   * UTF-8 of a state of megabytes held the Raft thread past the election timeout under load
   * (issue 17). Completed by callbacks, as write() expects (no microtask in between: the simulator).
   */
  private snapshotThenCompact(applied: number, confState: ConfState): Completion {
    return {
      // biome-ignore lint/suspicious/noThenProperty: a thenable is the point: write() waits with .then(done, failed), never await.
      then: (done, failed) => {
        const compact = (data: Uint8Array) => {
          const snapshot = this.storage.createSnapshot(applied, confState, data);
          this.options.durableLog.compact(snapshot).then(done, failed);
        };
        const slices = this.stateMachine.snapshotInSlices?.();
        if (slices === undefined) {
          compact(this.stateMachine.snapshot());
          return;
        }
        const step = () => {
          const next = slices.next();
          if (next.done === true) compact(next.value);
          else this.clock.defer(step);
        };
        step();
      },
    };
  }

  /**
   * write makes one durable write (`start` starts it), then runs `then`. Only `.then` is used,
   * never `await`: a simulated disk completes a write by calling back at a virtual time, with no
   * microtask between. A failed write is fail-stop: the error is thrown out of the loop and the
   * node dies (a node that cannot tell what is on its disk must not go on: PostgreSQL's fsync
   * lesson; the durable log refuses every later write too).
   *
   * A full disk is the one exception (DiskFullError: the write was not acknowledged, and the
   * durable log is ready for the same write again). The same write is tried again after 50 ms,
   * doubling up to a second, on the clock, until it goes through or the node stops: the bound is
   * the node's life, each wait at most a second. Meanwhile the loop is held here, so nothing that
   * depends on this write is sent or applied: the node neither acknowledges nor votes, and the
   * others go on without it; requests are refused or sent on to the leader (admit), peer messages
   * dropped (enqueue). With `skip` (a compaction), a full disk skips the write instead.
   */
  private write(start: () => Completion, then: () => void, skip?: (error: DiskFullError) => void, attempt = 0): void {
    this.saving = true;
    start().then(
      () => {
        this.saving = false;
        if (this.diskFull !== undefined) {
          const waitedMs = Math.round(this.clock.nowMs() - this.diskFull.sinceMs);
          this.diskFull = undefined;
          this.options.listener?.spaceBack?.(waitedMs);
        }
        then();
      },
      (error: unknown) => {
        if (!(error instanceof DiskFullError)) throw error;
        if (skip !== undefined) {
          this.saving = false;
          skip(error);
          return;
        }
        if (this.diskFull === undefined) this.diskFull = { sinceMs: this.clock.nowMs(), message: error.message, peerMessagesDropped: 0 };
        else this.diskFull.message = error.message;
        if (attempt % 20 === 0) this.options.listener?.diskFull?.(error.message, attempt);
        const again = () => {
          this.diskRetry = undefined;
          if (!this.stopped) {
            this.write(start, then, skip, attempt + 1);
            return;
          }
          this.saving = false; // Stopped while the disk was full: nothing of this write goes out.
          this.comeToRest();
        };
        const timer = this.clock.setTimer(again, Math.min(1000, 50 * 2 ** Math.min(attempt, 5)));
        this.diskRetry = {
          timer,
          now: () => {
            this.clock.clearTimer(timer);
            again();
          },
        };
      },
    );
  }

  private failPending(error: DriverError): void {
    for (const waiter of this.proposals.values()) {
      this.clock.clearTimer(waiter.timer);
      waiter.done({ error });
    }
    this.proposals.clear();
    for (const waiter of [...this.reads.values(), ...this.readsAwaitingApply]) {
      this.clock.clearTimer(waiter.timer);
      waiter.done(error);
    }
    this.reads.clear();
    this.readsAwaitingApply = [];
  }
}
