// LockNodeHost drives one Raft core with a real clock, persists through a DurableLog, talks to
// its peers through a PeerTransport, and applies committed entries to the lock state machine.
//
// One drive loop does all the work, in the order raft/README.md prescribes. Inputs (peer
// messages, ticks, proposals, reads) wait in a queue. Each turn of the loop first feeds every
// queued input to the core, then takes one Ready: persist it (one fsync), send its messages,
// apply its committed entries, and advance. Nothing touches the core while a Ready is being
// persisted, and everything that arrives meanwhile is batched into the next Ready (group commit).
//
// One kind of proposal is not urgent: an acquire that may wait, on a resource another owner
// holds, only joins the queue. The leader holds such joins back until the next write goes out
// anyway (or about two ticks at most), and proposes them first, ahead of that write (see
// feedInputs). The log still decides every outcome; holding only changes when a join is logged.

import type { Logger } from "pino";
import { confChangeSchema, describeIssues } from "../protocol/commands.ts";
import {
  assert,
  type ConfChange,
  type Entry,
  MemoryStorage,
  type NodeId,
  type RaftConfig,
  type RaftMessage,
  RawNode,
  type Ready,
  type Refusal,
  type Snapshot,
  type Status,
} from "../raft/index.ts";
import { coalesceMessages } from "./coalesce-messages.ts";
import { DiskFullError, type DurableLog, type PeerTransport } from "./contracts.ts";
import type { HostObserver } from "./host-observer.ts";
import { decodeCommand, decodeLockSnapshot, encodeCheckedCommand, encodeLockSnapshot } from "./state/codec.ts";
import { LeaseTimekeeper } from "./state/lease-timekeeper.ts";
import { type Applied, type LockLimits, LockStateMachine } from "./state/lock-state-machine.ts";
import type { LockCommand, LockEvent } from "./state/types.ts";
import { type WatchAnswer, WatchHub, type WatchQuery } from "./watch-hub.ts";

/** NodeErrorCode: why the node could not serve a request. The HTTP layer maps each to a status. */
export type NodeErrorCode =
  | "not_leader"
  | "proposal_dropped"
  | "leadership_lost"
  | "timeout"
  | "shutting_down"
  | "overloaded"
  /** disk_full: this node's disk is full, so it can write nothing (it waits for space; see persist). */
  | "disk_full"
  /** invalid_command: the command does not fit its schema (protocol/commands.ts), so it never enters the log. */
  | "invalid_command";

export class NodeError extends Error {
  readonly code: NodeErrorCode;
  readonly leaderHint: NodeId | null;
  /** dropReason: for proposal_dropped, why the core refused it (some reasons are the caller's fault). */
  readonly dropReason: string | undefined;
  constructor(code: NodeErrorCode, message: string, leaderHint: NodeId | null = null, dropReason?: string) {
    super(message);
    this.name = "NodeError";
    this.code = code;
    this.leaderHint = leaderHint;
    this.dropReason = dropReason;
  }
}

export interface HostOptions {
  readonly raft: Omit<RaftConfig, "id">;
  readonly nodeId: NodeId;
  /** bootstrapVoters: the founding members, used only when the data directory is empty. */
  readonly bootstrapVoters: readonly NodeId[];
  readonly tickIntervalMs: number;
  readonly durableLog: DurableLog;
  readonly transport: PeerTransport;
  readonly lockLimits: LockLimits;
  /** snapshotIntervalEntries: compact the log once this many entries are applied past the last snapshot. */
  readonly snapshotIntervalEntries: number;
  /** proposalTimeoutMs bounds how long a proposal or read may wait for its outcome. */
  readonly proposalTimeoutMs: number;
  /** pendingRequestsMax bounds proposals and reads waiting for their outcome. */
  readonly pendingRequestsMax: number;
  /** watchEventsMax and watchBytesMax bound the ring of applied events that watchers read (GET /watch). */
  readonly watchEventsMax: number;
  readonly watchBytesMax: number;
  /** watchersMax bounds the watch polls waiting at once. */
  readonly watchersMax: number;
  readonly logger: Logger;
  /** nowMs is a monotonic clock in milliseconds (performance.now in production). */
  readonly nowMs: () => number;
  /** observer watches the loop for metrics and the status page (host-observer.ts); its hooks must be cheap. */
  readonly observer?: HostObserver;
}

type Input =
  | { readonly kind: "message"; readonly message: Parameters<RawNode["step"]>[0] }
  | { readonly kind: "propose"; readonly data: Uint8Array; readonly waiter: ProposalWaiter; readonly queueJoin?: QueueJoin }
  | { readonly kind: "conf_change"; readonly change: ConfChange; readonly waiter: ProposalWaiter }
  | { readonly kind: "read"; readonly waiter: ReadWaiter }
  | { readonly kind: "transfer"; readonly transferee: NodeId; readonly done: (outcome: Refusal | { kind: "started" }) => void };

/** QueueJoin: what an acquire that may wait asks for, to tell whether it would only join a queue (see feedInputs). */
interface QueueJoin {
  readonly resources: readonly string[];
  readonly owner: string;
}

interface ProposalWaiter {
  resolve: (applied: Applied | undefined) => void;
  reject: (error: NodeError) => void;
  term: number;
  timer: NodeJS.Timeout | undefined;
  /** awaitQueuedMs: when the result is "queued", keep waiting this long for the grant or timeout. */
  awaitQueuedMs?: number;
}

interface ReadWaiter {
  resolve: () => void;
  reject: (error: NodeError) => void;
  index: number;
  timer: NodeJS.Timeout | undefined;
}

export class LockNodeHost {
  readonly nodeId: NodeId;
  machine: LockStateMachine;
  private readonly options: HostOptions;
  private readonly storage: MemoryStorage;
  private readonly rawNode: RawNode;
  private readonly timekeeper: LeaseTimekeeper;
  private readonly watchHub: WatchHub;
  private readonly inputs: Input[] = [];
  /** heldJoins: proposals that would only join a lock's queue, held back for the next write (feedInputs). */
  private heldJoins: Input[] = [];
  /**
   * heldAppends: per peer, an AppendEntries without entries held back for up to one tick (see
   * sendMessages). Such a message only carries a new commit index or probes; the next append to
   * the peer usually follows within a millisecond and carries the same news, so holding it saves
   * the frame, the follower's answer and both ends' work, which was a third of a hand-off's cost.
   */
  private readonly heldAppends = new Map<NodeId, RaftMessage>();
  private pendingTicks = 0;
  /** ticksFed counts ticks fed to the core; heldSinceTick is its value when the oldest held join was held. */
  private ticksFed = 0;
  private heldSinceTick = 0;
  private driving = false;
  private stopped = false;
  private ticker: NodeJS.Timeout | undefined;
  private readonly proposals = new Map<number, ProposalWaiter>();
  private readonly reads = new Map<number, ReadWaiter>();
  /** readsAwaitingApply: confirmed reads waiting for the state machine to reach their index. */
  private readsAwaitingApply: ReadWaiter[] = [];
  private nextReadId = 1;
  private role: Status["role"] = "follower";
  private knownLeaderId: NodeId | null = null;
  private readonly eventListeners = new Set<(event: LockEvent) => void>();
  /** queuedWaiters: proposals whose acquire was queued, by waiter id, waiting for their final answer. */
  private readonly queuedWaiters = new Map<
    number,
    { resolve: (applied: Applied) => void; reject: (error: NodeError) => void; timer: NodeJS.Timeout }
  >();
  private drivePromise: Promise<void> = Promise.resolve();
  /** savedHardState is the hard state last handed to the durable log. */
  private savedHardState: { term: number; votedFor: NodeId | null; commitIndex: number };
  /** diskFull: since when (nowMs) writes find the disk full, and the last error; undefined while they succeed (see persist). */
  private diskFull: { sinceMs: number; message: string; peerMessagesDropped: number } | undefined;
  /** wakeFromDiskWait ends persist's wait between attempts early (stop() calls it). */
  private wakeFromDiskWait: (() => void) | undefined;

  private constructor(options: HostOptions, storage: MemoryStorage, machine: LockStateMachine) {
    this.options = options;
    this.nodeId = options.nodeId;
    this.storage = storage;
    this.machine = machine;
    this.rawNode = new RawNode({ ...options.raft, id: options.nodeId }, storage);
    this.savedHardState = storage.hardStateNow();
    this.timekeeper = new LeaseTimekeeper({
      reproposeAfterMs: 10 * options.tickIntervalMs * options.raft.electionTimeoutTicks,
      dueCommandsMax: 256,
    });
    this.watchHub = new WatchHub({
      eventsMax: options.watchEventsMax,
      bytesMax: options.watchBytesMax,
      watchersMax: options.watchersMax,
      appliedIndex: () => this.machine.appliedIndex(),
      // Entries after the snapshot are applied again from the log, so their events are recorded.
      coveredFrom: machine.appliedIndex(),
    });
  }

  /** start loads the durable state (or bootstraps an empty directory), then starts ticking and listening. */
  static async start(options: HostOptions): Promise<LockNodeHost> {
    const durable = await options.durableLog.load();
    const isEmpty = durable.snapshot === undefined && durable.entries.length === 0 && durable.hardState.term === 0;
    let storage: MemoryStorage;
    if (isEmpty && options.bootstrapVoters.length > 0) {
      storage = MemoryStorage.bootstrap(options.bootstrapVoters);
      const entries = storage.entries(1, storage.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
      await options.durableLog.save({ hardState: storage.hardStateNow(), entries });
    } else {
      storage = new MemoryStorage();
      if (durable.snapshot !== undefined) storage.applySnapshot(durable.snapshot);
      storage.append(durable.entries);
      storage.setHardState(durable.hardState);
    }
    const snapshot = storage.snapshot();
    const machine =
      snapshot.metadata.index === 0
        ? new LockStateMachine(options.lockLimits)
        : LockStateMachine.restore(decodeLockSnapshot(snapshot.data), options.lockLimits);
    machine.applyNoop(snapshot.metadata.index);
    const host = new LockNodeHost(options, storage, machine);
    options.transport.onMessage((message) => host.enqueue({ kind: "message", message }));
    host.ticker = setInterval(() => host.onTick(), options.tickIntervalMs);
    host.kick();
    return host;
  }

  // -------------------------------------------------------------------------------------------
  // Public operations.

  /**
   * propose appends a lock command through the log and resolves with what applying it produced.
   * Only the leader accepts proposals; others answer not_leader with a hint.
   */
  propose(command: LockCommand, options: { awaitQueuedMs?: number } = {}): Promise<Applied> {
    return new Promise<Applied>((resolve, reject) => {
      // Checked before anything else, on any node: what no follower could decode never enters the log.
      const encoded = encodeCheckedCommand(command);
      if (!encoded.ok) {
        reject(new NodeError("invalid_command", `invalid ${command.type} command: ${encoded.reason}`));
        return;
      }
      if (!this.admit(reject)) return;
      const waiter: ProposalWaiter = {
        resolve: (applied) =>
          applied === undefined
            ? reject(new NodeError("leadership_lost", "the proposal was overwritten by a new leader"))
            : resolve(applied),
        reject,
        term: 0,
        timer: undefined,
        ...(options.awaitQueuedMs === undefined ? {} : { awaitQueuedMs: options.awaitQueuedMs }),
      };
      // A wait no longer than two ticks is not held back: holding may delay the join that long.
      const mayWait = command.type === "acquire" && command.waitMs > 2 * this.options.tickIntervalMs;
      const queueJoin = mayWait ? { resources: command.resources, owner: command.owner } : undefined;
      this.enqueue({ kind: "propose", data: encoded.data, waiter, ...(queueJoin === undefined ? {} : { queueJoin }) });
    });
  }

  /** proposeConfChange proposes one membership step and resolves once it is applied. */
  proposeConfChange(change: ConfChange): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const checked = confChangeSchema.safeParse(change);
      if (!checked.success) {
        reject(new NodeError("invalid_command", `invalid membership change: ${describeIssues(checked.error)}`));
        return;
      }
      if (!this.admit(reject)) return;
      this.enqueue({ kind: "conf_change", change, waiter: { resolve: () => resolve(), reject, term: 0, timer: undefined } });
    });
  }

  /** linearizableRead runs `read` on the state machine after a ReadIndex round (thesis §6.4). */
  linearizableRead<T>(read: (machine: LockStateMachine) => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (!this.admit(reject)) return;
      const waiter: ReadWaiter = { resolve: () => resolve(read(this.machine)), reject, index: 0, timer: undefined };
      this.enqueue({ kind: "read", waiter });
    });
  }

  transferLeadership(transferee: NodeId): Promise<Refusal | { kind: "started" }> {
    if (this.stopped) return Promise.resolve({ kind: "not_leader", leaderHint: null });
    return new Promise((done) => this.enqueue({ kind: "transfer", transferee, done }));
  }

  /**
   * watch answers the lock events this node has applied above `query.after`, waiting up to
   * `query.timeoutMs` for the first (see WatchHub). It reads this node's own applied state: no
   * leader is involved, since the events are committed data.
   */
  watch(query: WatchQuery): Promise<WatchAnswer> {
    return this.watchHub.poll(query);
  }

  /** watchStatus: polls waiting now, and the lowest `after` this node can answer (for /status). */
  watchStatus(): { watchers: number; oldestIndex: number } {
    return { watchers: this.watchHub.watcherCount(), oldestIndex: this.watchHub.oldestIndex() };
  }

  /** onEvent subscribes to lock events as this node applies them; returns the unsubscribe function. */
  onEvent(listener: (event: LockEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  status(): Status {
    return this.rawNode.status();
  }

  /** leaderId: the leader this node knows, as of the last Ready handled (cheap: no status object is built). */
  leaderId(): NodeId | null {
    return this.knownLeaderId;
  }

  leaseDeadlineMs(resource: string): number | undefined {
    return this.timekeeper.leaseDeadlineMs(resource);
  }

  /** storageStatus: whether writes reach the disk; for /status. */
  storageStatus(): { ok: true } | { ok: false; reason: "disk_full"; message: string; failingForMs: number; peerMessagesDropped: number } {
    if (this.diskFull === undefined) return { ok: true };
    const { sinceMs, message, peerMessagesDropped } = this.diskFull;
    return { ok: false, reason: "disk_full", message, failingForMs: Math.round(this.options.nowMs() - sinceMs), peerMessagesDropped };
  }

  /** stop stops ticking, fails what is pending, and waits for the drive loop; the caller closes the log and transport. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeFromDiskWait?.();
    if (this.ticker !== undefined) clearInterval(this.ticker);
    this.heldAppends.clear();
    this.watchHub.close();
    await this.drivePromise;
    const error = new NodeError("shutting_down", "the node is shutting down");
    // Inputs still queued behind the last save, and held joins, were never fed to the core: answer them too.
    const unfed = [...this.heldJoins, ...this.inputs.splice(0, this.inputs.length)];
    this.heldJoins = [];
    for (const input of unfed) {
      if (input.kind === "propose" || input.kind === "conf_change" || input.kind === "read") input.waiter.reject(error);
      else if (input.kind === "transfer") input.done({ kind: "not_leader", leaderHint: null });
    }
    this.failPending(error);
  }

  // -------------------------------------------------------------------------------------------
  // The drive loop.

  private admit(reject: (error: NodeError) => void): boolean {
    if (this.stopped) {
      reject(new NodeError("shutting_down", "the node is shutting down"));
      return false;
    }
    if (this.diskFull !== undefined) {
      // The loop waits for space (persist): nothing queued now would be served soon. A follower
      // sends the caller on to the leader it knows; the leader, or a node that knows none, refuses.
      const leader = this.knownLeaderId;
      reject(
        leader !== null && leader !== this.nodeId
          ? new NodeError("not_leader", "this node's disk is full; ask the leader", leader)
          : new NodeError("disk_full", `this node's disk is full, so it cannot write: ${this.diskFull.message}; another node may serve`),
      );
      return false;
    }
    const pending = this.proposals.size + this.reads.size + this.inputs.length + this.heldJoins.length;
    if (pending >= this.options.pendingRequestsMax) {
      reject(new NodeError("overloaded", `more than ${this.options.pendingRequestsMax} requests are pending`));
      return false;
    }
    return true;
  }

  private enqueue(input: Input): void {
    if (this.stopped) return;
    if (this.diskFull !== undefined && input.kind === "message") {
      // The loop is held until the disk has space: a peer message would only pile up (Raft
      // tolerates loss, and the peers send newer ones).
      this.diskFull.peerMessagesDropped++;
      return;
    }
    this.inputs.push(input);
    this.kick();
  }

  private onTick(): void {
    // A held AppendEntries waits one tick at most: followers learn the commit index (and probes
    // go out) within a tick even when no other append follows.
    for (const message of this.heldAppends.values()) this.options.transport.send(message);
    this.heldAppends.clear();
    this.pendingTicks++;
    this.kick();
  }

  /**
   * kick starts the drive loop unless it is running; a running loop picks up new inputs itself.
   * An idle loop starts on the next turn of the event loop (setImmediate), not at once: requests
   * and peer frames that arrived in the same poll as this one are queued by then, and go into
   * the same Ready and the same fsync instead of one each.
   */
  private kick(): void {
    if (this.driving || this.stopped) return;
    this.driving = true;
    this.drivePromise = new Promise((resolve) => setImmediate(resolve))
      .then(() => this.drive())
      .finally(() => {
        this.driving = false;
        // Something may have arrived between the loop's last look and now.
        if (this.inputs.length > 0 || this.pendingTicks > 0) this.kick();
      });
  }

  private async drive(): Promise<void> {
    for (let turn = 0; !this.stopped; turn++) {
      this.feedInputs();
      const ready = this.rawNode.ready();
      if (ready === undefined) {
        if (this.inputs.length === 0 && this.pendingTicks === 0) return;
        continue;
      }
      await this.handleReady(ready);
      // Let timers and sockets run between turns, so a busy node still ticks and receives.
      if (turn % 16 === 15) await new Promise((resolve) => setImmediate(resolve));
    }
  }

  private feedInputs(): void {
    // Ticks first: a node that was busy catches up on time, but never more than one election's worth.
    const ticks = Math.min(this.pendingTicks, this.options.raft.electionTimeoutTicks);
    this.pendingTicks = 0;
    this.ticksFed += ticks;
    for (let tick = 0; tick < ticks; tick++) this.rawNode.tick();
    const inputs = this.inputs.splice(0, this.inputs.length);
    const due = ticks > 0 ? this.timekeeper.due(this.options.nowMs()) : [];
    // Held joins go out (first, in arrival order, so the queue stays FIFO) with the next write:
    // another proposal, a membership step, the leader's own expiries; or before a leadership
    // transfer, which refuses proposals while it runs; or when one of them no longer only joins
    // a queue (the resource was released, or this node is no longer the leader); or on the
    // second tick fed after the oldest was held: under two tick intervals, plus the loop turn
    // that is running then. (Not on the first tick: at 500 hand-offs a second a tick falls
    // between a join and the next release one time in five, and the join then took an fsync of
    // its own.) Unheld, a join would take an fsync of its own on every node, and under
    // contention the holder's release would often wait behind it. In
    // `bench/profile-locks.ts --workload contended` (two runs each) a hand-off took 1.67-1.71
    // fsyncs on each node before, 1.13-1.14 when held joins went out on the first tick, and 1.00
    // now; hand-offs went from 348-361 to 409-422 to 427-429 a second.
    const flush =
      due.length > 0 ||
      (this.heldJoins.length > 0 && this.ticksFed - this.heldSinceTick >= 2) ||
      inputs.some(
        (input) => input.kind === "conf_change" || input.kind === "transfer" || (input.kind === "propose" && !this.onlyJoinsQueue(input)),
      ) ||
      this.heldJoins.some((input) => !this.onlyJoinsQueue(input));
    if (flush && this.heldJoins.length > 0) {
      const held = this.heldJoins;
      this.heldJoins = [];
      for (const input of held) this.feed(input);
    }
    this.proposeExpiries(due);
    for (const input of inputs) {
      if (!flush && this.onlyJoinsQueue(input)) {
        if (this.heldJoins.length === 0) this.heldSinceTick = this.ticksFed;
        this.heldJoins.push(input);
        this.options.observer?.joinHeld?.();
      } else {
        this.feed(input);
      }
    }
  }

  /**
   * onlyJoinsQueue: whether applying this proposal now would only queue it, as far as the
   * leader's applied state shows: an acquire that may wait, for a resource another owner holds.
   * It is a guess about timing only: the log decides every outcome, whenever the join goes in.
   */
  private onlyJoinsQueue(input: Input): boolean {
    if (input.kind !== "propose" || input.queueJoin === undefined || this.role !== "leader") return false;
    const { resources, owner } = input.queueJoin;
    return resources.some((resource) => {
      const lease = this.machine.lease(resource);
      return lease !== undefined && lease.owner !== owner;
    });
  }

  private feed(input: Input): void {
    switch (input.kind) {
      case "message":
        this.rawNode.step(input.message);
        return;
      case "propose":
        this.trackProposal(this.rawNode.propose(input.data), input.waiter);
        return;
      case "conf_change":
        this.trackProposal(this.rawNode.proposeConfChange(input.change), input.waiter);
        return;
      case "read":
        this.startRead(input.waiter);
        return;
      case "transfer": {
        const outcome = this.rawNode.transferLeadership(input.transferee);
        this.options.observer?.transferRequested?.(input.transferee, outcome.kind);
        input.done(outcome);
        return;
      }
    }
  }

  private trackProposal(outcome: ReturnType<RawNode["propose"]>, waiter: ProposalWaiter): void {
    this.options.observer?.proposed?.(outcome.kind);
    if (outcome.kind === "not_leader") {
      waiter.reject(new NodeError("not_leader", "this node is not the leader", outcome.leaderHint));
    } else if (outcome.kind === "dropped") {
      waiter.reject(new NodeError("proposal_dropped", `the leader dropped the proposal: ${outcome.reason}`, this.nodeId, outcome.reason));
    } else {
      waiter.term = outcome.term;
      waiter.timer = setTimeout(() => {
        this.proposals.delete(outcome.index);
        waiter.reject(
          new NodeError("timeout", `proposal at index ${outcome.index} not applied within ${this.options.proposalTimeoutMs} ms`),
        );
      }, this.options.proposalTimeoutMs);
      this.proposals.set(outcome.index, waiter);
    }
  }

  private startRead(waiter: ReadWaiter): void {
    const requestId = this.nextReadId++;
    const outcome = this.rawNode.readIndex(requestId);
    if (outcome.kind === "not_leader") {
      waiter.reject(new NodeError("not_leader", "this node is not the leader", outcome.leaderHint));
      return;
    }
    if (outcome.kind === "dropped") {
      waiter.reject(new NodeError("proposal_dropped", `the leader dropped the read: ${outcome.reason}`, this.nodeId));
      return;
    }
    waiter.timer = setTimeout(() => {
      this.reads.delete(requestId);
      this.readsAwaitingApply = this.readsAwaitingApply.filter((pending) => pending !== waiter);
      waiter.reject(new NodeError("timeout", `read not confirmed within ${this.options.proposalTimeoutMs} ms`));
    }, this.options.proposalTimeoutMs);
    this.reads.set(requestId, waiter);
  }

  /**
   * handleReady follows the contract: persist, then send, then apply, then advance. A leader's
   * AppendEntries go out before the write (thesis §10.2.1, allowed by the contract): they promise
   * nothing about this node's disk, and the core counts the leader's own entries only once
   * advance() reports them durable. The followers' disk writes then overlap the leader's, which
   * takes one fsync off the latency of every commit.
   */
  private async handleReady(ready: Ready): Promise<void> {
    const early = ready.appendsBeforePersist ? ready.messages.filter((message) => message.type === "append_entries") : [];
    const late = early.length === 0 ? ready.messages : ready.messages.filter((message) => message.type !== "append_entries");
    this.sendMessages(early);
    if (this.needsSave(ready)) {
      if (ready.hardState !== undefined) this.savedHardState = ready.hardState;
      const saved = await this.persist({
        ...(ready.hardState === undefined ? {} : { hardState: ready.hardState }),
        entries: ready.entries,
        ...(ready.snapshot === undefined ? {} : { snapshot: ready.snapshot }),
      });
      if (!saved) return; // Stopped while the disk was full: nothing of this Ready goes out.
    }
    if (ready.snapshot !== undefined) this.storage.applySnapshot(ready.snapshot);
    this.storage.append(ready.entries);
    if (ready.hardState !== undefined) this.storage.setHardState(ready.hardState);
    this.sendMessages(late);
    if (ready.softState !== undefined) this.roleChanged(ready.softState.role, ready.softState.leaderId);
    if (ready.snapshot !== undefined) this.installSnapshot(ready.snapshot);
    for (const entry of ready.committedEntries) this.apply(entry);
    if (ready.committedEntries.length > 0) this.watchHub.wake();
    this.settleReads(ready);
    this.rawNode.advance(ready);
    this.options.observer?.readyHandled?.(ready, this.options.nowMs());
    await this.maybeCompact();
  }

  /**
   * persist saves one Ready, and waits for space while the disk is full: the same write is tried
   * again (the durable log reopens its database first, see LevelDurableLog) after 50 ms, doubling
   * up to a second, until it succeeds or the node stops; the bound is the node's life, each wait
   * at most a second. Meanwhile the loop is held here, so nothing that depends on this write is
   * sent or applied: the node neither acknowledges nor votes, and the others go on without it.
   * Requests are refused or sent on to the leader (admit), peer messages dropped (enqueue).
   * Returns false if the node stopped first. Any other storage error propagates and stops the
   * node: a disk that fails in other ways cannot be trusted with what it says it wrote.
   */
  private async persist(update: Parameters<DurableLog["save"]>[0]): Promise<boolean> {
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await this.options.durableLog.save(update);
        if (this.diskFull !== undefined) {
          const waitedMs = Math.round(this.options.nowMs() - this.diskFull.sinceMs);
          this.options.logger.warn({ event: "disk_space_back", waitedMs }, `the disk has space again after ${waitedMs} ms; resuming`);
          this.diskFull = undefined;
        }
        return true;
      } catch (error) {
        if (!(error instanceof DiskFullError)) throw error;
        if (this.diskFull === undefined) {
          this.diskFull = { sinceMs: this.options.nowMs(), message: error.message, peerMessagesDropped: 0 };
          this.options.logger.error(
            { event: "disk_full", err: error },
            "the disk is full: writes are refused, and the node waits for space before it goes on",
          );
        } else {
          this.diskFull.message = error.message;
          if (attempt % 20 === 0) this.options.logger.warn({ event: "disk_full", attempt }, "the disk is still full");
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(1000, 50 * 2 ** Math.min(attempt, 5)));
          this.wakeFromDiskWait = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wakeFromDiskWait = undefined;
      }
    }
    return false;
  }

  /**
   * sendMessages sends one frame per peer where the core produced many (see coalesce-messages.ts).
   * An AppendEntries without entries that would be the last frame to its peer is held until the
   * next send to that peer, where it merges into the next append, or the next tick (heldAppends).
   */
  private sendMessages(messages: readonly RaftMessage[]): void {
    if (messages.length === 0) return;
    let batch = messages;
    if (this.heldAppends.size > 0) {
      const held = [...this.heldAppends.values()];
      this.heldAppends.clear();
      batch = [...held, ...messages];
    }
    const frames = coalesceMessages(batch, this.options.raft);
    const lastTo = new Map<NodeId, number>();
    for (const [position, message] of frames.entries()) lastTo.set(message.to, position);
    for (const [position, message] of frames.entries()) {
      if (message.type === "append_entries" && message.entries.length === 0 && lastTo.get(message.to) === position) {
        this.heldAppends.set(message.to, message);
      } else {
        this.options.transport.send(message);
      }
    }
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

  private roleChanged(role: Status["role"], leaderId: NodeId | null): void {
    const was = this.role;
    this.role = role;
    this.knownLeaderId = leaderId;
    this.options.logger.info({ event: "role_changed", role, leaderId, term: this.rawNode.status().term }, `${this.nodeId} is now ${role}`);
    if (role === "leader") {
      this.timekeeper.becomeLeader(this.options.nowMs(), this.machine);
    } else if (was === "leader") {
      this.timekeeper.stepDown();
      // Proposals still in flight may or may not commit: their clients retry with the same session.
      for (const [index, waiter] of this.proposals) {
        if (waiter.timer !== undefined) clearTimeout(waiter.timer);
        waiter.reject(new NodeError("leadership_lost", `leadership lost before index ${index} was applied; retry`, leaderId));
      }
      this.proposals.clear();
    }
  }

  private installSnapshot(snapshot: Snapshot): void {
    this.machine = LockStateMachine.restore(decodeLockSnapshot(snapshot.data), this.options.lockLimits);
    this.machine.applyNoop(snapshot.metadata.index);
    this.watchHub.restart(snapshot.metadata.index); // The events it skipped were never seen here.
    this.options.logger.info({ event: "snapshot_installed", index: snapshot.metadata.index }, "installed a snapshot from the leader");
  }

  private apply(entry: Entry): void {
    if (entry.index <= this.machine.appliedIndex()) return;
    let applied: Applied | undefined;
    if (entry.kind === "normal") {
      applied = this.machine.apply(entry.index, decodeCommand(entry.data, entry.index));
      this.timekeeper.applied(this.options.nowMs(), this.machine, applied);
      this.watchHub.record(applied.events);
      for (const event of applied.events) for (const listener of this.eventListeners) listener(event);
      for (const resolved of applied.resolvedWaiters) {
        const queued = this.queuedWaiters.get(resolved.waiterId);
        if (queued === undefined) continue;
        this.queuedWaiters.delete(resolved.waiterId);
        clearTimeout(queued.timer);
        queued.resolve({ result: resolved.result, events: [], resolvedWaiters: [] });
      }
    } else {
      this.machine.applyNoop(entry.index);
      if (entry.kind === "conf_change") {
        this.options.logger.info(
          { event: "membership_changed", change: entry.change, index: entry.index },
          `membership: ${entry.change.type} ${entry.change.nodeId}`,
        );
      }
    }
    this.options.observer?.applied?.(entry, applied);
    const waiter = this.proposals.get(entry.index);
    if (waiter === undefined) return;
    this.proposals.delete(entry.index);
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    if (entry.term === waiter.term && applied?.result.status === "queued" && waiter.awaitQueuedMs !== undefined) {
      // Registered now, before any later entry (perhaps in this same Ready) can grant it.
      this.awaitQueued(applied.result.waiterId, waiter, applied);
      return;
    }
    waiter.resolve(
      entry.term === waiter.term
        ? (applied ?? { result: { status: "no_op", reason: "applied" }, events: [], resolvedWaiters: [] })
        : undefined,
    );
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
      if (waiter.timer !== undefined) clearTimeout(waiter.timer);
      waiter.reject(new NodeError("leadership_lost", "leadership was lost before the read was confirmed; retry"));
    }
    const applied = this.machine.appliedIndex();
    const still: ReadWaiter[] = [];
    for (const waiter of this.readsAwaitingApply) {
      if (waiter.index > applied) {
        still.push(waiter);
        continue;
      }
      if (waiter.timer !== undefined) clearTimeout(waiter.timer);
      waiter.resolve();
    }
    this.readsAwaitingApply = still;
  }

  private proposeExpiries(due: readonly LockCommand[]): void {
    for (const command of due) {
      const encoded = encodeCheckedCommand(command);
      assert(encoded.ok, `the leader's own ${command.type} command is invalid: ${encoded.ok ? "" : encoded.reason}`);
      const outcome = this.rawNode.propose(encoded.data);
      if (outcome.kind !== "accepted") break;
      this.options.logger.info({ event: "lease_expiry_proposed", ...command }, `proposing ${command.type}`);
    }
  }

  private async maybeCompact(): Promise<void> {
    const applied = this.machine.appliedIndex();
    const snapshotIndex = this.storage.snapshot().metadata.index;
    if (applied - snapshotIndex < this.options.snapshotIntervalEntries || applied > this.storage.lastIndex()) return;
    // The stored commit index may lag (see needsSave); compaction may not pass it, so store it first.
    const hardState = this.storage.hardStateNow();
    try {
      if (hardState.commitIndex > this.savedHardState.commitIndex) {
        await this.options.durableLog.save({ hardState, entries: [] });
        this.savedHardState = hardState;
      }
      const snapshot = this.storage.createSnapshot(applied, this.rawNode.confState(), encodeLockSnapshot(this.machine.snapshot()));
      await this.options.durableLog.compact(snapshot);
    } catch (error) {
      // A compaction only saves space: without room for it, the log stays longer; the next one tries again.
      if (!(error instanceof DiskFullError)) throw error;
      this.options.logger.warn({ event: "compaction_skipped", err: error }, "no space to compact the log; trying again later");
    }
  }

  /** awaitQueued keeps a queued acquire's caller waiting for its grant or timeout; it is answered "queued" if neither comes in time. */
  private awaitQueued(waiterId: number, waiter: ProposalWaiter, queued: Applied): void {
    const timer = setTimeout(() => {
      this.queuedWaiters.delete(waiterId);
      waiter.resolve(queued);
    }, waiter.awaitQueuedMs);
    this.queuedWaiters.set(waiterId, { resolve: (final) => waiter.resolve(final), reject: (error) => waiter.reject(error), timer });
  }

  private failPending(error: NodeError): void {
    // A queued acquire's caller hears too: its wait is in the log, and a retry with the same session finds it.
    for (const queued of this.queuedWaiters.values()) {
      clearTimeout(queued.timer);
      queued.reject(error);
    }
    this.queuedWaiters.clear();
    for (const waiter of this.proposals.values()) {
      if (waiter.timer !== undefined) clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.proposals.clear();
    for (const waiter of [...this.reads.values(), ...this.readsAwaitingApply]) {
      if (waiter.timer !== undefined) clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.reads.clear();
    this.readsAwaitingApply = [];
  }
}
