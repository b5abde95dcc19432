// LockService is the lock node's policy on top of a generic RaftDriver: it is the driver's state
// machine (the lock state machine, its codec, the watch ring and event listeners), and it owns what
// only a lock service knows: lease expiry by the leader (the timekeeper), acquires that wait in a
// queue, and holding back acquires that would only join a queue. It knows nothing of sockets or
// LevelDB: the node process and the simulator run the same object over different seams.
//
// One kind of proposal is not urgent: an acquire that may wait, on a resource another owner holds,
// only joins the queue. The leader holds such joins back until the next write goes out anyway (or
// about two ticks at most), and proposes them first, ahead of that write (see `hold` and
// `turnStarting`). The log still decides every outcome; holding only changes when a join is logged.

import type { Logger } from "pino";
import {
  decodeCommand,
  decodeLockSnapshot,
  encodeCheckedCommand,
  encodeLockSnapshot,
  encodeLockSnapshotInSlices,
  snapshotSliceChars,
} from "../lock/codec.ts";
import { LeaseTimekeeper } from "../lock/lease-timekeeper.ts";
import { type Applied, type LockLimits, LockStateMachine } from "../lock/lock-state-machine.ts";
import type { Lease, LockCommand, LockEvent, Waiter } from "../lock/types.ts";
import { confChangeSchema, describeIssues } from "../protocol/commands.ts";
import { assert, type ConfChange, type Entry, type NodeId, type Refusal, type Snapshot, type Status } from "../raft/index.ts";
import type { DurableState } from "./contracts.ts";
import type { Clock, TimerHandle } from "./driver/clock.ts";
import {
  DriverError,
  type DriverListener,
  type DriverOptions,
  RaftDriver,
  type StateMachine,
  type StorageStatus,
} from "./driver/raft-driver.ts";
import type { HostObserver } from "./host-observer.ts";
import { type WatchAnswer, WatchHub, type WatchQuery } from "./watch-hub.ts";

/**
 * LockServiceOptions: the driver's options (the lock service supplies the state machine and the
 * listener itself), and the lock policy's own limits. `pendingRequestsMax` counts held joins too.
 */
export interface LockServiceOptions extends Omit<DriverOptions<Applied>, "stateMachine" | "listener" | "observer"> {
  readonly lockLimits: LockLimits;
  /** watchEventsMax and watchBytesMax bound the ring of applied events that watchers read (GET /watch). */
  readonly watchEventsMax: number;
  readonly watchBytesMax: number;
  /** watchersMax bounds the watch polls waiting at once. */
  readonly watchersMax: number;
  readonly logger: Logger;
  /** observer watches the loop for metrics and the status page (host-observer.ts); its hooks must be cheap. */
  readonly observer?: HostObserver;
}

/** LockStateView: what a read may look at in the lock state (linearizableRead, status pages). */
export type LockStateView = Pick<
  LockStateMachine,
  | "appliedIndex"
  | "lease"
  | "leases"
  | "waiter"
  | "waitersNow"
  | "get"
  | "range"
  | "chainHead"
  | "credentialByTokenHash"
  | "credentialRefusal"
  | "credentialList"
>;

/** SubmitOutcome answers a lock command: what applying it produced, or why it was not applied. */
export type SubmitOutcome = { readonly applied: Applied } | { readonly error: DriverError };

/** A held join: an acquire that would only join a lock's queue, waiting for the next write (see hold). */
interface HeldJoin {
  readonly data: Uint8Array;
  readonly resources: readonly string[];
  readonly owner: string;
  readonly done: (outcome: SubmitOutcome) => void;
  readonly awaitQueuedMs: number | undefined;
}

interface QueuedWaiter {
  readonly done: (outcome: SubmitOutcome) => void;
  readonly timer: TimerHandle;
}

export class LockService implements StateMachine<Applied>, DriverListener {
  readonly nodeId: NodeId;
  private readonly options: LockServiceOptions;
  private readonly clock: Clock;
  private machine: LockStateMachine;
  private readonly timekeeper: LeaseTimekeeper;
  private readonly watchHub: WatchHub;
  private readonly driver: RaftDriver<Applied>;
  /** heldJoins: proposals that would only join a lock's queue, held back for the next write. */
  private heldJoins: HeldJoin[] = [];
  /** ticksFed counts ticks fed to the core; heldSinceTick is its value when the oldest held join was held. */
  private ticksFed = 0;
  private heldSinceTick = 0;
  private leading = false;
  private stopped = false;
  private readonly eventListeners = new Set<(event: LockEvent) => void>();
  /** queuedWaiters: acquires the log queued, by waiter id, whose callers wait for the grant or timeout. */
  private readonly queuedWaiters = new Map<number, QueuedWaiter>();

  constructor(options: LockServiceOptions, durable: DurableState) {
    this.options = options;
    this.nodeId = options.nodeId;
    this.clock = options.clock;
    this.machine = new LockStateMachine(options.lockLimits);
    this.timekeeper = new LeaseTimekeeper({
      reproposeAfterMs: 10 * options.tickIntervalMs * options.raft.electionTimeoutTicks,
      dueCommandsMax: 256,
    });
    this.watchHub = new WatchHub({
      eventsMax: options.watchEventsMax,
      bytesMax: options.watchBytesMax,
      watchersMax: options.watchersMax,
      appliedIndex: () => this.machine.appliedIndex(),
      coveredFrom: 0,
    });
    // The driver restores this machine from the snapshot on disk; entries after it are applied
    // again from the log, so their events are recorded (the watch ring covers them).
    // The driver reads only its own options; the lock policy's ride along unread.
    this.driver = new RaftDriver<Applied>({ ...options, stateMachine: this, listener: this }, durable);
  }

  /** start loads the durable state (or bootstraps an empty directory), then starts the driver. */
  static async start(options: LockServiceOptions): Promise<LockService> {
    const service = new LockService(options, await options.durableLog.load());
    await new Promise<void>((resolve, reject) => service.begin((error) => (error === undefined ? resolve() : reject(error))));
    return service;
  }

  /**
   * begin starts the driver of a service built over a loaded state (the constructor): a founding
   * node writes its bootstrap entries first; `onStarted` hears once it runs, or why it could not.
   * The callback form of start(), for the simulator.
   */
  begin(onStarted: (error?: Error) => void): void {
    this.driver.start(onStarted);
  }

  // -------------------------------------------------------------------------------------------
  // Operations (callback forms for the simulator, promise forms for the HTTP API).

  /**
   * submit appends a lock command through the log; `done` hears what applying it produced. With
   * `awaitQueuedMs`, an acquire the log queued keeps its caller waiting that long for the grant.
   */
  submit(command: LockCommand, options: { awaitQueuedMs?: number }, done: (outcome: SubmitOutcome) => void): void {
    // Checked before anything else, on any node: what no follower could decode never enters the log.
    const encoded = encodeCheckedCommand(command);
    if (!encoded.ok) {
      done({ error: new DriverError("invalid_command", `invalid ${command.type} command: ${encoded.reason}`) });
      return;
    }
    if (!this.admit(done)) return;
    const data = encoded.data;
    // A wait no longer than two ticks is not held back: holding may delay the join that long.
    const mayWait = command.type === "acquire" && command.waitMs > 2 * this.options.tickIntervalMs;
    if (mayWait && this.onlyJoinsQueue(command.resources, command.owner)) {
      this.hold({ data, resources: command.resources, owner: command.owner, done, awaitQueuedMs: options.awaitQueuedMs });
      return;
    }
    this.releaseHeldJoins();
    this.proposeData(data, options.awaitQueuedMs, done);
  }

  /** propose is submit as a promise (rejected with a DriverError). */
  propose(command: LockCommand, options: { awaitQueuedMs?: number } = {}): Promise<Applied> {
    return new Promise((resolve, reject) =>
      this.submit(command, options, (outcome) => ("error" in outcome ? reject(outcome.error) : resolve(outcome.applied))),
    );
  }

  /** changeMembership proposes one membership step (held joins go first); `done` hears once it is applied, or why not. */
  changeMembership(change: ConfChange, done: (error: DriverError | undefined) => void): void {
    // Checked before anything else: what no follower could decode never enters the log.
    const checked = confChangeSchema.safeParse(change);
    if (!checked.success) {
      done(new DriverError("invalid_command", `invalid membership change: ${describeIssues(checked.error)}`));
      return;
    }
    this.releaseHeldJoins();
    this.driver.proposeConfChange(change, (outcome) => done("error" in outcome ? outcome.error : undefined));
  }

  /** proposeConfChange is changeMembership as a promise. */
  proposeConfChange(change: ConfChange): Promise<void> {
    return new Promise((resolve, reject) => this.changeMembership(change, (error) => (error === undefined ? resolve() : reject(error))));
  }

  /** readState runs `read` on the lock state after a ReadIndex round (thesis §6.4). */
  readState<T>(read: (state: LockStateView) => T, done: (outcome: { value: T } | { error: DriverError }) => void): void {
    this.driver.read((error) => (error === undefined ? done({ value: read(this.machine) }) : done({ error })));
  }

  /** linearizableRead is readState as a promise. */
  linearizableRead<T>(read: (state: LockStateView) => T): Promise<T> {
    return new Promise((resolve, reject) =>
      this.readState(read, (outcome) => ("error" in outcome ? reject(outcome.error) : resolve(outcome.value))),
    );
  }

  /** transfer hands leadership to `transferee`; held joins go first (a transfer refuses proposals while it runs). */
  transfer(transferee: NodeId, done: (outcome: Refusal | { kind: "started" }) => void): void {
    this.releaseHeldJoins();
    this.driver.transferLeadership(transferee, done);
  }

  /** transferLeadership is transfer as a promise. */
  transferLeadership(transferee: NodeId): Promise<Refusal | { kind: "started" }> {
    return new Promise((resolve) => this.transfer(transferee, resolve));
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
    return this.driver.status();
  }

  /** storageStatus: whether this node's writes reach its disk (for /status: `storage`). */
  storageStatus(): StorageStatus {
    return this.driver.storageStatus();
  }

  /** leaderId: the leader this node knows, as of the last Ready handled. */
  leaderId(): NodeId | null {
    return this.driver.leaderId();
  }

  /** currentTerm, entryTerm and logEntries read the core's term and log (for checkers: the simulator's). */
  currentTerm(): number {
    return this.driver.currentTerm();
  }

  entryTerm(index: number): number | undefined {
    return this.driver.entryTerm(index);
  }

  logEntries(lo: number, hi: number): readonly Entry[] {
    return this.driver.logEntries(lo, hi);
  }

  /** localState: this node's applied lock state, read without a ReadIndex round (status pages, metrics; may be stale on a follower). */
  localState(): LockStateView {
    return this.machine;
  }

  leaseDeadlineMs(resource: string): number | undefined {
    return this.timekeeper.leaseDeadlineMs(resource);
  }

  /** stop stops the driver, answers held joins and queued acquires `shutting_down`, and closes the watchers. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.watchHub.close();
    const error = new DriverError("shutting_down", "the node is shutting down");
    const held = this.heldJoins;
    this.heldJoins = [];
    for (const join of held) join.done({ error });
    await new Promise<void>((resolve) => this.driver.stop(resolve));
    // A queued acquire's caller hears too: its wait is in the log, and a retry with the same session finds it.
    for (const queued of this.queuedWaiters.values()) {
      this.clock.clearTimer(queued.timer);
      queued.done({ error });
    }
    this.queuedWaiters.clear();
  }

  // -------------------------------------------------------------------------------------------
  // The driver's state machine.

  appliedIndex(): number {
    return this.machine.appliedIndex();
  }

  apply(entry: Entry): Applied | undefined {
    if (entry.kind !== "normal") {
      this.machine.applyNoop(entry.index);
      if (entry.kind === "conf_change") {
        this.options.logger.info(
          { event: "membership_changed", change: entry.change, index: entry.index },
          `membership: ${entry.change.type} ${entry.change.nodeId}`,
        );
      }
      return undefined;
    }
    const applied = this.machine.apply(entry.index, decodeCommand(entry.data, entry.index));
    this.timekeeper.applied(this.clock.nowMs(), this.machine, applied);
    this.watchHub.record(applied.events);
    for (const event of applied.events) for (const listener of this.eventListeners) listener(event);
    for (const resolved of applied.resolvedWaiters) {
      const queued = this.queuedWaiters.get(resolved.waiterId);
      if (queued === undefined) continue;
      this.queuedWaiters.delete(resolved.waiterId);
      this.clock.clearTimer(queued.timer);
      queued.done({ applied: { result: resolved.result, events: [], resolvedWaiters: [] } });
    }
    return applied;
  }

  snapshot(): Uint8Array {
    return encodeLockSnapshot(this.machine.snapshot());
  }

  /** snapshotInSlices: the driver encodes a compaction's snapshot about half a megabyte of keys per turn (issue 17). */
  snapshotInSlices(): Iterator<void, Uint8Array, void> {
    return encodeLockSnapshotInSlices(this.machine.snapshot(), snapshotSliceChars);
  }

  restore(snapshot: Snapshot): void {
    const index = snapshot.metadata.index;
    this.machine =
      index === 0
        ? new LockStateMachine(this.options.lockLimits)
        : LockStateMachine.restore(decodeLockSnapshot(snapshot.data), this.options.lockLimits);
    this.machine.applyNoop(index);
    this.watchHub.restart(index); // The events before it were never seen here.
  }

  // -------------------------------------------------------------------------------------------
  // The driver's listener: the lock policy.

  turnStarting(ticks: number): void {
    this.ticksFed += ticks;
    const due = ticks > 0 ? this.timekeeper.due(this.clock.nowMs()) : [];
    // Held joins go out (first, in arrival order, so the queue stays FIFO) with the next write:
    // another proposal, a membership step or transfer (see submit, proposeConfChange,
    // transferLeadership), the leader's own expiries; or when one of them no longer only joins a
    // queue (the resource was released, or this node is no longer the leader); or on the second
    // tick fed after the oldest was held: under two tick intervals, plus the loop turn that is
    // running then. (Not on the first tick: at 500 hand-offs a second a tick falls between a join
    // and the next release one time in five, and the join then took an fsync of its own.)
    // Unheld, a join would take an fsync of its own on every node, and under contention the
    // holder's release would often wait behind it. In `bench/profile-locks.ts --workload
    // contended` (two runs each) a hand-off took 1.67-1.71 fsyncs on each node before, 1.13-1.14
    // when held joins went out on the first tick, and 1.00 now; hand-offs went from 348-361 to
    // 409-422 to 427-429 a second.
    const flush =
      due.length > 0 ||
      (this.heldJoins.length > 0 && this.ticksFed - this.heldSinceTick >= 2) ||
      this.heldJoins.some((join) => !this.onlyJoinsQueue(join.resources, join.owner));
    if (flush) this.releaseHeldJoins();
    for (const command of due) {
      const encoded = encodeCheckedCommand(command);
      assert(encoded.ok, `the leader's own ${command.type} command is invalid: ${encoded.ok ? "" : encoded.reason}`);
      this.driver.propose(encoded.data, () => undefined); // Proposed again later if it is lost.
      this.options.logger.info({ event: "lease_expiry_proposed", ...command }, `proposing ${command.type}`);
    }
  }

  roleChanged(role: Status["role"], leaderId: NodeId | null, term: number): void {
    const was = this.leading;
    this.leading = role === "leader";
    this.options.logger.info({ event: "role_changed", role, leaderId, term }, `${this.nodeId} is now ${role}`);
    if (this.leading) this.timekeeper.becomeLeader(this.clock.nowMs(), this.machine);
    else if (was) this.timekeeper.stepDown();
  }

  entriesApplied(): void {
    this.watchHub.wake();
  }

  snapshotRestored(index: number): void {
    this.options.logger.info({ event: "snapshot_installed", index }, "installed a snapshot from the leader");
  }

  diskFull(message: string, attempt: number): void {
    if (attempt === 0) {
      this.options.logger.error(
        { event: "disk_full", message },
        "the disk is full: writes are refused, and the node waits for space before it goes on",
      );
    } else {
      this.options.logger.warn({ event: "disk_full", attempt, message }, "the disk is still full");
    }
  }

  spaceBack(waitedMs: number): void {
    this.options.logger.warn({ event: "disk_space_back", waitedMs }, `the disk has space again after ${waitedMs} ms; resuming`);
  }

  compactionSkipped(message: string): void {
    this.options.logger.warn({ event: "compaction_skipped", message }, "no space to compact the log; trying again later");
  }

  // -------------------------------------------------------------------------------------------
  // Held joins and queued acquires.

  private admit(done: (outcome: SubmitOutcome) => void): boolean {
    if (this.stopped) {
      done({ error: new DriverError("shutting_down", "the node is shutting down") });
      return false;
    }
    if (this.driver.pendingRequests() + this.heldJoins.length >= this.options.pendingRequestsMax) {
      done({ error: new DriverError("overloaded", `more than ${this.options.pendingRequestsMax} requests are pending`) });
      return false;
    }
    return true;
  }

  /**
   * onlyJoinsQueue: whether applying an acquire now would only queue it, as far as the leader's
   * applied state shows: another owner holds one of its resources. It is a guess about timing
   * only: the log decides every outcome, whenever the join goes in.
   */
  private onlyJoinsQueue(resources: readonly string[], owner: string): boolean {
    if (!this.leading) return false;
    return resources.some((resource) => {
      const lease = this.machine.lease(resource);
      return lease !== undefined && lease.owner !== owner;
    });
  }

  private hold(join: HeldJoin): void {
    if (this.heldJoins.length === 0) this.heldSinceTick = this.ticksFed;
    this.heldJoins.push(join);
    this.options.observer?.joinHeld?.();
  }

  /** releaseHeldJoins proposes every held join, in arrival order, ahead of whatever comes next. */
  private releaseHeldJoins(): void {
    if (this.heldJoins.length === 0) return;
    const held = this.heldJoins;
    this.heldJoins = [];
    for (const join of held) this.proposeData(join.data, join.awaitQueuedMs, join.done);
  }

  private proposeData(data: Uint8Array, awaitQueuedMs: number | undefined, done: (outcome: SubmitOutcome) => void): void {
    this.driver.propose(data, (outcome) => {
      if ("error" in outcome) {
        done(outcome);
        return;
      }
      const applied = outcome.result ?? { result: { status: "no_op", reason: "applied" }, events: [], resolvedWaiters: [] };
      // Registered now, inside the apply, before any later entry (perhaps in the same Ready) can grant it.
      if (applied.result.status === "queued" && awaitQueuedMs !== undefined)
        this.awaitQueued(applied.result.waiterId, awaitQueuedMs, applied, done);
      else done({ applied });
    });
  }

  /** awaitQueued keeps a queued acquire's caller waiting for its grant or timeout; it is answered "queued" if neither comes in time. */
  private awaitQueued(waiterId: number, awaitQueuedMs: number, queued: Applied, done: (outcome: SubmitOutcome) => void): void {
    const timer = this.clock.setTimer(() => {
      this.queuedWaiters.delete(waiterId);
      done({ applied: queued });
    }, awaitQueuedMs);
    this.queuedWaiters.set(waiterId, { done, timer });
  }
}

export type { Lease, Waiter };
