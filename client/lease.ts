// A held lease, as its holder must see it: the truth on time. The cluster decides when a lease
// ends (the leader's expiry, through the log), but a holder cut off from the cluster cannot hear
// that, so it keeps a pessimistic local deadline of its own and acts on it:
//
//   held ──(no renewal by the jeopardy point, or a renewal failed)──► jeopardy
//   jeopardy ──(a renewal succeeds before the deadline)──► held   (emits `safe`)
//   held | jeopardy ──(the local deadline passes, or the cluster says not_held)──► lost
//   held | jeopardy ──(release, or a txn with release)──► released
//
// `lost` and `released` are final. The deadline is a timer: `lost` fires at `validUntil` whatever
// the network does, and every renewal attempt ends by then (Chubby's jeopardy and expiry, Curator's
// SUSPENDED and LOST). Fencing stays the real guard of the data; these signals keep the holder
// from doing work that no store can fence (telescope commands, emails) after it stopped holding.

import { strict as assertStrict } from "node:assert";
import type { RangeResult, TxnOperation, WriteAnswer, WritePath, WriteRequest } from "../protocol/api.ts";
import { LockError } from "./errors.ts";
import type { RequestOptions } from "./lock-client.ts";

/** LeaseEvent: what a lease tells its holder; see Lease. */
export type LeaseEvent = "renewed" | "jeopardy" | "safe" | "lost";

/** LeaseState: `held` and `jeopardy` are valid (until `validUntil`); `lost` and `released` are final. */
export type LeaseState = "held" | "jeopardy" | "lost" | "released";

/** MutateOptions: how LockClient sends one mutating request (see LockClient.mutate). */
export interface MutateOptions extends RequestOptions {
  /** deadlineMs: every attempt and retry of this request ends by then (monotonic ms, the client's clock). */
  readonly deadlineMs?: number;
}

/** WriteBody is a write's body as its caller gives it: LockClient.mutate adds the session (clientId and sequence). */
export type WriteBody<Path extends WritePath> = Omit<WriteRequest<Path>, "clientId" | "sequence">;

/** LeaseHost is what a Lease needs of its LockClient. */
export interface LeaseHost {
  /** now is the client's monotonic clock, in ms. */
  now(): number;
  /** validUntil is the pessimistic local end of a lease whose request was first sent at `sentAt`. */
  validUntil(sentAt: number, ttlMs: number): number;
  /** jeopardyFractionLeft: the share of a lease's local validity left when, unrenewed, it is in jeopardy. */
  readonly jeopardyFractionLeft: number;
  /** requestTimeoutMs bounds the renewal of a lease that arrived out of date (see activate). */
  readonly requestTimeoutMs: number;
  /** mutate sends a write in the client's session (clientId and sequence are its to add). */
  mutate<Path extends WritePath>(path: Path, body: WriteBody<Path>, options?: MutateOptions): Promise<{ readonly body: WriteAnswer<Path> }>;
  /** renewLease renews; it answers the send time of the attempt that was answered (see LockClient.renewLease). */
  renewLease(resources: readonly string[], token: string, options?: MutateOptions): Promise<number>;
  /** unlockLease ends a lease without a session, within the deadline (see LockClient.unlockLease). */
  unlockLease(resources: readonly string[], token: string, options?: MutateOptions): Promise<void>;
}

type Listener = (error?: LockError) => void;

/** assert: a broken invariant of the lease's own logic (a programmer error) crashes loudly. */
function assert(condition: boolean, message: string): asserts condition {
  assertStrict(condition, message);
}

/** timeToleranceMs: how far from a computed point in time a timer may fire and count as on time. */
const timeToleranceMs = 0.001;
type Timer = ReturnType<typeof setTimeout>;

/**
 * Lease is a held lease: its fencing token (a decimal string), a pessimistic local deadline
 * (`validUntil`), renewal, release and fenced writes, and the signals a holder acts on.
 *
 * **Signals** (`lease.on(event, listener)`):
 * - `lost`: stop acting as the holder, now. Fires once, at the latest at `validUntil` when no
 *   renewal succeeded by then (a timer, whatever the network does), or as soon as the cluster
 *   answers that it no longer has the lease (`not_held`). `isValid()` is false from then on.
 * - `jeopardy`: the lease is still valid but in doubt: no renewal has succeeded by the time a third
 *   of its local validity is left (`jeopardyFractionLeft`), or a renewal failed. Finish or pause
 *   what cannot be fenced. Fires once per episode.
 * - `safe`: a renewal succeeded after `jeopardy`; the lease is held again.
 * - `renewed`: every successful renewal.
 *
 * **Gotchas**: `put` and `txn` refuse locally (`lease_expired`, nothing sent) once the lease is not
 * valid; `release` always asks the cluster (it frees the resource sooner). A renewal that arrives
 * after `validUntil` does not bring a lost lease back: validity never returns once it ended.
 */
export class Lease {
  readonly resources: readonly string[];
  readonly token: string;
  readonly ttlMs: number;
  /** reads: the answers to the acquire's `reads`, as of the grant (undefined if none were asked or the grant came after a wait). */
  readonly reads: readonly RangeResult[] | undefined;

  private readonly host: LeaseHost;
  /** validFromMs is when the request behind the current validity (grant or renewal) was first sent. */
  private validFromMs: number;
  private validUntilMs: number;
  private currentState: LeaseState = "held";
  /** armed: the deadline and jeopardy timers run (from `activate`, once the lease is handed to its holder). */
  private armed = false;
  private autoRenewing = false;
  private renewTimer: Timer | undefined;
  private jeopardyTimer: Timer | undefined;
  private deadlineTimer: Timer | undefined;
  /** renewal: the renewal in flight, which every renew() joins (renewals are single-flight). */
  private renewal: Promise<void> | undefined;
  /** renewalAbort ends the renewal in flight when the lease is lost or released. */
  private renewalAbort: AbortController | undefined;
  /** autoUnlock: the unlock sent by itself when the lease was lost at its deadline (see markLost). */
  private autoUnlock: Promise<void> | undefined;
  private readonly listeners = new Map<LeaseEvent, Set<Listener>>();
  /** lostBecause: why the lease was lost (what `lost` carried), for the errors of later calls. */
  private lostBecause: LockError | undefined;

  constructor(
    host: LeaseHost,
    grant: { resources: readonly string[]; token: string; ttlMs: number; sentAt: number; reads?: readonly RangeResult[] | undefined },
  ) {
    this.host = host;
    this.reads = grant.reads;
    this.resources = grant.resources;
    this.token = grant.token;
    this.ttlMs = grant.ttlMs;
    this.validFromMs = grant.sentAt;
    this.validUntilMs = host.validUntil(grant.sentAt, grant.ttlMs);
  }

  /** validUntil is the monotonic time (ms) from which this lease must not be relied upon. */
  get validUntil(): number {
    return this.validUntilMs;
  }

  /** jeopardyAt is the monotonic time (ms) at which, unrenewed, the lease enters jeopardy. */
  get jeopardyAt(): number {
    return this.validUntilMs - this.host.jeopardyFractionLeft * (this.validUntilMs - this.validFromMs);
  }

  get state(): LeaseState {
    return this.currentState;
  }

  isValid(): boolean {
    return (this.currentState === "held" || this.currentState === "jeopardy") && this.host.now() < this.validUntilMs;
  }

  /** on adds a listener; it returns a function that removes it. */
  on(event: LeaseEvent, listener: Listener): () => void {
    const set = this.listeners.get(event) ?? new Set();
    set.add(listener);
    this.listeners.set(event, set);
    return () => set.delete(listener);
  }

  /**
   * activate hands the lease to its holder (LockClient.acquire calls it, once): a lease that is no
   * longer valid on arrival (granted after a long wait, or answered late) is renewed first, within
   * one request timeout and the caller's `signal`; if that fails, nobody can use the lease, so it
   * is released (best effort) and the error thrown. Then the deadline and jeopardy timers start,
   * and a lease already past its jeopardy point is renewed at once.
   */
  async activate(options: { readonly signal?: AbortSignal } = {}): Promise<void> {
    assert(!this.armed && this.currentState === "held", "a lease is activated once, before anything else");
    if (!this.isValid()) {
      try {
        this.adopt(await this.renewCall(this.host.now() + this.host.requestTimeoutMs, options.signal));
      } catch (error) {
        this.end("released", new LockError("not_held", "the lease could not be renewed on arrival"));
        this.unlockQuietly();
        throw error;
      }
    }
    this.armed = true;
    this.armTimers();
    if (this.reached(this.jeopardyAt)) await this.renew().catch(() => undefined); // Its outcome moves the lease as usual.
  }

  /**
   * renew extends the lease; the new validity counts from the send time of the attempt that was
   * answered. Its attempts all end by the current `validUntil`. A renew() while another is in
   * flight (automatic or not) joins it. It refuses with `lease_expired` once the lease was lost,
   * and `not_held` once released.
   */
  renew(): Promise<void> {
    try {
      this.refuseUnlessLive("renew");
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.renewal === undefined) {
      this.renewal = this.renewReported().finally(() => {
        this.renewal = undefined;
      });
    }
    return this.renewal;
  }

  /** put writes keys under this lease's fencing token, in one transaction. */
  async put(entries: readonly { key: string; value: string }[], options: RequestOptions = {}): Promise<{ index: number; keys: string[] }> {
    return this.txn(
      entries.map((entry) => ({ op: "put", key: entry.key, value: entry.value })),
      options,
    );
  }

  /**
   * txn applies `operations` (put, delete, append) atomically under this lease's fencing token:
   * all of them or, if the lease is no longer current (`stale_fencing_token`), none. It refuses
   * locally, sending nothing, once the lease is not valid here (`lease_expired`, or `not_held`
   * once released); the cluster's fence stays the real guard.
   *
   * **When to use**: to write a record together with its audit entry, e.g.
   * `lease.txn([{ op: "put", key: "booking/42", value }, { op: "append", chain: "audit", value: entry }])`.
   *
   * **Gotchas**: `keys` lists the keys written, in the order of `operations`; an append's key is
   * named by the txn's index, so it is known only from this answer (or by reading the chain).
   * A txn writes each key and appends to each chain at most once. With `release: true` the same
   * entry ends the lease once the writes are applied (one round instead of two); the lease stops
   * being valid here at once, whatever the answer.
   */
  async txn(
    operations: readonly TxnOperation[],
    options: RequestOptions & { readonly release?: boolean } = {},
  ): Promise<{ index: number; keys: string[] }> {
    this.refuseUnlessValid("write");
    const guards = this.resources.map((resource) => ({ resource, token: this.token }));
    if (options.release === true) this.end("released", new LockError("not_held", "the lease was released"));
    const answer = await this.host.mutate(
      "/txn",
      { guards, operations: [...operations], ...(options.release === true ? { releaseGuards: true } : {}) },
      options,
    );
    return { index: answer.body.index, keys: [...answer.body.keys] };
  }

  /**
   * release ends the lease; it stops being valid at once, whatever the answer. After `lost` it
   * stays lost, and the cluster is asked to drop the lease all the same (it may still hold it),
   * unless the lease already asked by itself when it was lost.
   */
  async release(options: RequestOptions = {}): Promise<void> {
    if (this.currentState === "lost" && this.autoUnlock !== undefined) return this.autoUnlock;
    this.end(this.currentState === "lost" ? "lost" : "released", new LockError("not_held", "the lease was released"));
    await this.host.mutate("/unlock", { resources: [...this.resources], token: this.token }, options);
  }

  /**
   * startAutoRenew keeps the lease alive: a renewal halfway to the jeopardy point (a third of the
   * local validity, by default), and after a failed one, another at half of what is left.
   */
  startAutoRenew(): void {
    this.stopAutoRenew();
    if (this.currentState === "lost" || this.currentState === "released") return;
    this.autoRenewing = true;
    this.scheduleRenew();
  }

  stopAutoRenew(): void {
    this.autoRenewing = false;
    if (this.renewTimer !== undefined) clearTimeout(this.renewTimer);
    this.renewTimer = undefined;
  }

  /**
   * renewReported sends one renewal (with the client's retries, all ending by the deadline) and
   * moves the lease by its outcome: success to `held` (with `safe` after jeopardy), `not_held` to
   * `lost`, another failure to `jeopardy`.
   */
  private async renewReported(): Promise<void> {
    const deadlineMs = this.validUntilMs;
    let sentAt: number;
    try {
      sentAt = await this.renewCall(deadlineMs, undefined);
    } catch (error) {
      throw this.renewalFailed(error);
    }
    if (this.currentState === "released") throw new LockError("not_held", "the lease was released while it was being renewed");
    if (this.currentState === "lost" || this.host.now() >= deadlineMs) {
      // Answered after the deadline: the holder was (or is now) told `lost`, and validity never returns.
      this.markLost(this.expiredError());
      throw this.expiredError();
    }
    this.adopt(sentAt);
  }

  /** renewCall is the request itself; it answers the send time of the attempt that was answered. */
  private async renewCall(deadlineMs: number, signal: AbortSignal | undefined): Promise<number> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    this.renewalAbort = controller;
    try {
      return await this.host.renewLease(this.resources, this.token, { signal: controller.signal, deadlineMs });
    } finally {
      signal?.removeEventListener("abort", onAbort);
      if (this.renewalAbort === controller) this.renewalAbort = undefined;
    }
  }

  /** adopt takes a successful renewal's validity, from its attempt's send time, if it is newer than the current one. */
  private adopt(sentAt: number): void {
    const wasInJeopardy = this.currentState === "jeopardy";
    this.currentState = "held";
    if (sentAt > this.validFromMs) {
      this.validFromMs = sentAt;
      this.validUntilMs = this.host.validUntil(sentAt, this.ttlMs);
    }
    if (this.armed) this.armTimers();
    this.emit("renewed");
    if (wasInJeopardy) this.emit("safe");
  }

  /** renewalFailed moves the lease on a failed renewal and returns the error to throw. */
  private renewalFailed(error: unknown): LockError {
    const lockError = error instanceof LockError ? error : new LockError("unavailable", String(error), { cause: error });
    if (this.currentState === "released") return lockError;
    if (this.currentState === "lost") return new LockError("lease_expired", this.lostMessage(), { cause: lockError });
    if (lockError.code === "not_held" || !this.isValid()) {
      this.markLost(lockError.code === "not_held" ? lockError : this.expiredError());
      return lockError;
    }
    this.enterJeopardy(lockError);
    return lockError;
  }

  /**
   * scheduleRenew plans the next automatic renewal: halfway to the jeopardy point (with the
   * default third, when a third of the local validity has passed, so a renewal has another third
   * to succeed before jeopardy), or, once that time is gone (a renewal failed), at half of what is
   * left, at least 10 ms apart.
   */
  private scheduleRenew(): void {
    if (this.renewTimer !== undefined) clearTimeout(this.renewTimer); // At most one timer, whoever schedules.
    this.renewTimer = undefined;
    if (!this.autoRenewing || !(this.currentState === "held" || this.currentState === "jeopardy")) return;
    const nowMs = this.host.now();
    const renewAtMs = (this.validFromMs + this.jeopardyAt) / 2;
    const delayMs = nowMs < renewAtMs ? renewAtMs - nowMs : Math.max(10, (this.validUntilMs - nowMs) / 2);
    this.renewTimer = setTimeout(() => {
      this.renewTimer = undefined;
      void this.renew()
        .catch(() => undefined) // Reported through the lease's events.
        .finally(() => this.scheduleRenew());
    }, Math.ceil(delayMs));
    this.renewTimer.unref?.();
  }

  /** armTimers (re)starts the jeopardy and deadline timers from the current validity. */
  private armTimers(): void {
    this.clearTimer("jeopardy");
    this.clearTimer("deadline");
    if (this.currentState === "held") this.jeopardyTimer = this.timerAt(this.jeopardyAt, () => this.onJeopardyPoint());
    if (this.currentState === "held" || this.currentState === "jeopardy") {
      this.deadlineTimer = this.timerAt(this.validUntilMs, () => this.onDeadline());
    }
  }

  private onJeopardyPoint(): void {
    this.jeopardyTimer = undefined;
    if (!this.reached(this.jeopardyAt)) {
      this.jeopardyTimer = this.timerAt(this.jeopardyAt, () => this.onJeopardyPoint()); // A timer may fire a little early.
      return;
    }
    this.enterJeopardy(
      new LockError("timeout", `no renewal of the lease on ${this.resources.join(", ")} (token ${this.token}) has succeeded in time`),
    );
  }

  private onDeadline(): void {
    this.deadlineTimer = undefined;
    if (!this.reached(this.validUntilMs)) {
      this.deadlineTimer = this.timerAt(this.validUntilMs, () => this.onDeadline());
      return;
    }
    this.markLost(this.expiredError());
  }

  /**
   * unlockQuietly asks the cluster to drop a lease lost at its deadline (or one that could not be
   * renewed on arrival), within one request timeout. The cluster may
   * still hold it (the local view is pessimistic), and a renewal attempt that reached it late may
   * even have extended it: without this, waiters would wait for a holder that gave up. It names
   * the token, so it can never end anyone else's lease.
   */
  private unlockQuietly(): void {
    this.autoUnlock = this.host
      .unlockLease(this.resources, this.token, { deadlineMs: this.host.now() + this.host.requestTimeoutMs })
      .catch(() => undefined); // Best effort, within one request timeout: the cluster expires the lease by itself anyway.
  }

  private enterJeopardy(error: LockError): void {
    if (this.currentState !== "held") return;
    this.currentState = "jeopardy";
    this.clearTimer("jeopardy");
    this.emit("jeopardy", error);
  }

  private markLost(error: LockError): void {
    if (this.currentState === "lost" || this.currentState === "released") return;
    this.end("lost", error);
    this.lostBecause = error;
    this.validUntilMs = Math.min(this.validUntilMs, this.host.now());
    if (error.code === "lease_expired") this.unlockQuietly(); // A not_held lease is gone already.
    this.emit("lost", error);
  }

  /** end moves the lease to a final state (lost stays lost): timers stop, the renewal in flight is aborted. */
  private end(state: "lost" | "released", reason: LockError): void {
    if (this.currentState !== "lost") this.currentState = state;
    this.stopAutoRenew();
    this.clearTimer("jeopardy");
    this.clearTimer("deadline");
    this.renewalAbort?.abort(reason);
  }

  private refuseUnlessLive(what: string): void {
    if (this.currentState === "released") throw new LockError("not_held", `cannot ${what}: this lease was released; nothing was sent`);
    if (this.currentState === "lost") throw new LockError("lease_expired", `cannot ${what}: ${this.lostMessage()}; nothing was sent`);
  }

  private refuseUnlessValid(what: string): void {
    this.refuseUnlessLive(what);
    if (this.isValid()) return;
    // The deadline passed while the event loop was busy (its timer has not run yet): say so now.
    this.markLost(this.expiredError());
    throw new LockError("lease_expired", `cannot ${what}: ${this.expiredError().message}; nothing was sent`);
  }

  private lostMessage(): string {
    return `the lease on ${this.resources.join(", ")} (token ${this.token}) was lost: ${this.lostBecause?.message ?? "it ran out"}`;
  }

  private expiredError(): LockError {
    return new LockError(
      "lease_expired",
      `the lease on ${this.resources.join(", ")} (token ${this.token}) is no longer valid here: it ran out at its local deadline without a successful renewal`,
    );
  }

  /**
   * reached: `atMs` has come, give or take a microsecond (the points are computed in floating
   * point: 2/3 of 3600 may come out a hair above 2400, which must not cost a whole extra timer).
   */
  private reached(atMs: number): boolean {
    return this.host.now() >= atMs - timeToleranceMs;
  }

  private timerAt(atMs: number, fire: () => void): Timer {
    const timer = setTimeout(fire, Math.max(0, Math.ceil(atMs - timeToleranceMs - this.host.now())));
    timer.unref?.();
    return timer;
  }

  private clearTimer(which: "jeopardy" | "deadline"): void {
    const timer = which === "jeopardy" ? this.jeopardyTimer : this.deadlineTimer;
    if (timer !== undefined) clearTimeout(timer);
    if (which === "jeopardy") this.jeopardyTimer = undefined;
    else this.deadlineTimer = undefined;
  }

  /**
   * emit calls every listener of `event`. A listener that throws does not stop the others or
   * break the lease's state: its error is thrown again on its own (an uncaught exception, as an
   * EventEmitter's listener called from a timer would be).
   */
  private emit(event: LeaseEvent, error?: LockError): void {
    for (const listener of this.listeners.get(event) ?? []) {
      try {
        listener(error);
      } catch (thrown) {
        queueMicrotask(() => {
          throw thrown;
        });
      }
    }
  }
}
