// StatusSource is the Raft side's part of the status page: what only the thread that runs the
// LockService and the peer transport knows. It keeps the lease table's apply times (for a
// follower's estimates), samples the peer links to put lost and found peers on the timeline, and
// answers the front's StatusFeed with a LocalStatusView: the core's status, the links, the lease
// rows and the timeline. The feed (status-feed.ts, on the HTTP thread) adds the peers' polled
// /status and builds the page's view (status-view.ts).

import type { Lease, LockEvent, Waiter } from "../../lock/types.ts";
import type { NodeId, Status } from "../../raft/index.ts";
import type { PeerLinkStatus, PeerTransport } from "../contracts.ts";
import type { StatusTimeline, TimelineEvent } from "./status-timeline.ts";
import type { LeaseRow } from "./status-view.ts";

/** StatusSourceHost is what the source reads from the node (LockService fits it). */
export interface StatusSourceHost {
  readonly nodeId: NodeId;
  status(): Status;
  /** localState: this node's applied lock state (no ReadIndex round: a status page shows what the node knows). */
  localState(): { leases(): Lease[]; waitersNow(): Waiter[] };
  leaseDeadlineMs(resource: string): number | undefined;
  onEvent(listener: (event: LockEvent) => void): () => void;
}

export interface StatusSourceOptions {
  readonly host: StatusSourceHost;
  readonly transport: PeerTransport;
  readonly timeline: StatusTimeline;
  /** nowMs: a monotonic clock (performance.now). */
  readonly nowMs: () => number;
}

/** LocalStatusView: this node's own part of its status page, as plain data. */
export interface LocalStatusView {
  readonly status: Status;
  readonly links: readonly (readonly [NodeId, PeerLinkStatus])[];
  readonly leases: { readonly rows: readonly LeaseRow[]; readonly total: number; readonly waitersTotal: number };
  readonly timeline: readonly TimelineEvent[];
}

/** The source samples its peer links this often, to put lost and found peers on the timeline. */
const sampleIntervalMs = 250;
/** A peer never reached since start is put on the timeline as unreachable after this long. */
const startupGraceMs = 5000;
/** Apply times kept for lease estimates; past this (a snapshot skipped the releases), they are dropped. */
const leaseAppliedTrackedMax = 100_000;

export class StatusSource {
  private readonly options: StatusSourceOptions;
  /** linkUp: per peer, the link state last sampled (undefined: never connected yet). */
  private readonly linkUp = new Map<string, boolean>();
  /** leaseAppliedAtMs: monotonic time this node applied each lease's grant or last renewal (for followers' estimates). */
  private readonly leaseAppliedAtMs = new Map<string, number>();
  private readonly startedMs: number;
  private readonly ticker: NodeJS.Timeout;
  private readonly detachers: (() => void)[] = [];
  private closed = false;

  constructor(options: StatusSourceOptions) {
    this.options = options;
    this.startedMs = options.nowMs();
    this.detachers.push(options.host.onEvent((event) => this.leaseEvent(event)));
    this.ticker = setInterval(() => this.sampleLinks(), sampleIntervalMs);
    this.ticker.unref();
  }

  /** localView: the core's status, the peer links, at most leasesShownMax lease rows, and the timeline. */
  localView(leasesShownMax: number): LocalStatusView {
    const status = this.options.host.status();
    return {
      status,
      links: [...this.options.transport.peerStatus()],
      leases: this.leaseRows(status.role === "leader", this.options.nowMs(), leasesShownMax),
      timeline: this.options.timeline.recent(),
    };
  }

  /** onTimelineChange: the timeline moved; returns the unsubscribe function. */
  onTimelineChange(listener: () => void): () => void {
    return this.options.timeline.onChange(listener);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    for (const detach of this.detachers) detach();
  }

  /** sampleLinks puts peers lost and found on the timeline. */
  private sampleLinks(): void {
    const sinceStartMs = this.options.nowMs() - this.startedMs;
    for (const [id, link] of this.options.transport.peerStatus()) {
      const was = this.linkUp.get(id);
      if (link.connected && was !== true) {
        this.options.timeline.record("peer_reachable", `${id} reachable (peer link up)`);
      } else if (!link.connected && was === true) {
        this.options.timeline.record("peer_unreachable", `${id} unreachable (peer link lost)`);
      } else if (!link.connected && was === undefined && sinceStartMs > startupGraceMs) {
        this.options.timeline.record("peer_unreachable", `${id} not reached since this node started`);
      } else if (was === undefined && !link.connected) {
        continue; // Still within the grace period: not yet a fact worth recording.
      }
      this.linkUp.set(id, link.connected);
    }
  }

  private leaseEvent(event: LockEvent): void {
    if (event.type === "granted" || event.type === "renewed") {
      if (this.leaseAppliedAtMs.size >= leaseAppliedTrackedMax) this.leaseAppliedAtMs.clear();
      this.leaseAppliedAtMs.set(event.resource, this.options.nowMs());
    } else if (event.type === "released" || event.type === "expired") {
      this.leaseAppliedAtMs.delete(event.resource);
    }
  }

  /**
   * leaseRows: the lease table as this node has applied it, sorted by resource, at most
   * leasesShownMax rows. The leader knows each lease's deadline; a follower estimates it from when
   * it applied the grant or renewal (a new leader restarts every countdown, so it may be longer).
   */
  private leaseRows(isLeader: boolean, nowMs: number, leasesShownMax: number): { rows: LeaseRow[]; total: number; waitersTotal: number } {
    const leases = this.options.host
      .localState()
      .leases()
      .sort((a, b) => (a.resource < b.resource ? -1 : a.resource > b.resource ? 1 : 0));
    const waiters = this.options.host.localState().waitersNow();
    const waitersOf = new Map<string, number>();
    for (const waiter of waiters) for (const resource of waiter.resources) waitersOf.set(resource, (waitersOf.get(resource) ?? 0) + 1);
    const rows = leases.slice(0, leasesShownMax).map((lease): LeaseRow => {
      const deadlineMs = isLeader ? this.options.host.leaseDeadlineMs(lease.resource) : undefined;
      const appliedAtMs = this.leaseAppliedAtMs.get(lease.resource);
      const [timeLeftMs, timeLeftSource] =
        deadlineMs !== undefined
          ? [Math.max(0, deadlineMs - nowMs), "leader" as const]
          : appliedAtMs !== undefined
            ? [Math.max(0, appliedAtMs + lease.ttlMs - nowMs), "estimate" as const]
            : [null, "unknown" as const];
      return {
        resource: lease.resource,
        owner: lease.owner,
        token: String(lease.token),
        ttlMs: lease.ttlMs,
        timeLeftMs: timeLeftMs === null ? null : Math.round(timeLeftMs),
        timeLeftSource,
        waiters: waitersOf.get(lease.resource) ?? 0,
      };
    });
    return { rows, total: leases.length, waitersTotal: waiters.length };
  }
}
