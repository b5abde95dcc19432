// LeaseTimekeeper is the leader's side of lease expiry. Only the leader counts leases down, on
// its own monotonic clock; when a lease (or a waiter's patience) runs out it proposes `expire`
// (or `cancel_wait`) through the log, and the state machine applies it on every replica alike.
// It is pure: the host passes the time in (the node its monotonic clock, the simulator its
// simulated one), so the node and the simulator run the same expiry logic.
//
// A new leader restarts every countdown from the full TTL: it cannot know how much of a lease had
// run on the old leader's clock, and a failover may only lengthen a lease, never shorten it.

import type { Applied, LockStateMachine } from "./lock-state-machine.ts";
import type { LeasePlantedBug } from "./planted-bugs.ts";
import type { FencingToken, Lease, LockCommand } from "./types.ts";

export interface TimekeeperOptions {
  /** reproposeAfterMs: an expiry proposed this long ago and still not applied is proposed again (it may have been lost). */
  readonly reproposeAfterMs: number;
  /** dueCommandsMax bounds the commands returned by one due() call. */
  readonly dueCommandsMax: number;
  /** plantedBug turns on one deliberate bug; simulator tests only (see planted-bugs.ts). */
  readonly plantedBug?: LeasePlantedBug;
}

interface Deadline {
  readonly token: FencingToken;
  readonly version: number;
  readonly deadlineMs: number;
  proposedAtMs: number | undefined;
}

interface WaitDeadline {
  readonly deadlineMs: number;
  proposedAtMs: number | undefined;
}

export class LeaseTimekeeper {
  private readonly options: TimekeeperOptions;
  private leading = false;
  private readonly leaseDeadlines = new Map<string, Deadline>();
  private readonly waitDeadlines = new Map<number, WaitDeadline>();

  constructor(options: TimekeeperOptions) {
    this.options = options;
  }

  isLeading(): boolean {
    return this.leading;
  }

  /** becomeLeader starts every countdown afresh, from the full TTL (or wait) of each lease and waiter. */
  becomeLeader(nowMs: number, machine: LockStateMachine): void {
    this.leading = true;
    this.leaseDeadlines.clear();
    this.waitDeadlines.clear();
    this.sync(nowMs, machine);
    if (this.options.plantedBug === "keep_countdown_on_new_leader") {
      for (const [resource, deadline] of this.leaseDeadlines) this.leaseDeadlines.set(resource, { ...deadline, deadlineMs: nowMs });
    }
  }

  /** stepDown forgets every countdown: a follower never expires anything. */
  stepDown(): void {
    this.leading = false;
    this.leaseDeadlines.clear();
    this.waitDeadlines.clear();
  }

  /**
   * applied updates the countdowns for what one applied entry changed, from its events and result:
   * a grant or renewal starts a full countdown now; a released or expired lease, and a granted or
   * cancelled waiter, lose theirs; a queued acquire starts its wait. The cost is in proportion to
   * the change, not to the number of leases: it runs for every entry the leader applies.
   */
  applied(nowMs: number, machine: LockStateMachine, applied: Applied): void {
    if (!this.leading) return;
    for (const event of applied.events) {
      if (event.type === "granted" || event.type === "renewed") {
        const lease = machine.lease(event.resource);
        if (lease !== undefined && lease.token === event.token) this.leaseDeadlines.set(event.resource, this.freshDeadline(nowMs, lease));
      } else if (event.type === "released" || event.type === "expired") {
        if (this.leaseDeadlines.get(event.resource)?.token === event.token) this.leaseDeadlines.delete(event.resource);
      } else if (event.type === "wait_timeout") {
        this.waitDeadlines.delete(event.waiterId);
      }
    }
    for (const resolved of applied.resolvedWaiters) this.waitDeadlines.delete(resolved.waiterId);
    if (applied.result.status === "queued" && !this.waitDeadlines.has(applied.result.waiterId)) {
      const waiter = machine.waiter(applied.result.waiterId);
      if (waiter !== undefined) this.waitDeadlines.set(waiter.waiterId, { deadlineMs: nowMs + waiter.waitMs, proposedAtMs: undefined });
    }
  }

  /**
   * sync matches the countdowns to the whole state machine: a new grant or a renewal (a new token
   * or version) starts a full countdown now; a lease or waiter that is gone loses its countdown.
   * One pass over the leases and waiters: used when this node becomes leader.
   */
  sync(nowMs: number, machine: LockStateMachine): void {
    if (!this.leading) return;
    const present = new Set<string>();
    for (const lease of machine.leases()) {
      present.add(lease.resource);
      const deadline = this.leaseDeadlines.get(lease.resource);
      if (deadline === undefined || deadline.token !== lease.token || deadline.version !== lease.version) {
        this.leaseDeadlines.set(lease.resource, this.freshDeadline(nowMs, lease));
      }
    }
    for (const resource of this.leaseDeadlines.keys()) if (!present.has(resource)) this.leaseDeadlines.delete(resource);
    const waiting = new Set<number>();
    for (const waiter of machine.waitersNow()) {
      waiting.add(waiter.waiterId);
      if (!this.waitDeadlines.has(waiter.waiterId)) {
        this.waitDeadlines.set(waiter.waiterId, { deadlineMs: nowMs + waiter.waitMs, proposedAtMs: undefined });
      }
    }
    for (const waiterId of this.waitDeadlines.keys()) if (!waiting.has(waiterId)) this.waitDeadlines.delete(waiterId);
  }

  /** due returns the expire and cancel_wait commands to propose now (at most dueCommandsMax). */
  due(nowMs: number): LockCommand[] {
    if (!this.leading) return [];
    const commands: LockCommand[] = [];
    for (const [resource, deadline] of this.leaseDeadlines) {
      if (commands.length >= this.options.dueCommandsMax) return commands;
      if (!this.isDue(nowMs, deadline)) continue;
      deadline.proposedAtMs = nowMs;
      commands.push({ type: "expire", resource, token: deadline.token, version: deadline.version });
    }
    for (const [waiterId, deadline] of this.waitDeadlines) {
      if (commands.length >= this.options.dueCommandsMax) return commands;
      if (!this.isDue(nowMs, deadline)) continue;
      deadline.proposedAtMs = nowMs;
      commands.push({ type: "cancel_wait", waiterId });
    }
    return commands;
  }

  /** nextDeadlineMs is when due() will next have something (for the node's timer), or undefined. */
  nextDeadlineMs(): number | undefined {
    let next: number | undefined;
    const consider = (deadline: { deadlineMs: number; proposedAtMs: number | undefined }): void => {
      const at = deadline.proposedAtMs === undefined ? deadline.deadlineMs : deadline.proposedAtMs + this.options.reproposeAfterMs;
      if (next === undefined || at < next) next = at;
    };
    for (const deadline of this.leaseDeadlines.values()) consider(deadline);
    for (const deadline of this.waitDeadlines.values()) consider(deadline);
    return next;
  }

  /** leaseDeadlineMs is the leader's deadline for a resource's lease (for status pages). */
  leaseDeadlineMs(resource: string): number | undefined {
    return this.leaseDeadlines.get(resource)?.deadlineMs;
  }

  private freshDeadline(nowMs: number, lease: Lease): Deadline {
    const ttlMs = this.options.plantedBug === "expire_at_half_ttl" ? lease.ttlMs / 2 : lease.ttlMs;
    return { token: lease.token, version: lease.version, deadlineMs: nowMs + ttlMs, proposedAtMs: undefined };
  }

  private isDue(nowMs: number, deadline: { deadlineMs: number; proposedAtMs: number | undefined }): boolean {
    if (nowMs < deadline.deadlineMs) return false;
    return deadline.proposedAtMs === undefined || nowMs - deadline.proposedAtMs >= this.options.reproposeAfterMs;
  }
}
