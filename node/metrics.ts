// NodeMetrics: the Raft side's Prometheus metrics (GET /metrics, text format 0.0.4): the core, the
// leases, the disk and the peer frames, on a registry of its own, so that several nodes in one test
// process never share a counter. It lives with the driver (on the raft thread); the HTTP side's
// own metrics are FrontMetrics (front-metrics.ts), which renders both for GET /metrics.
//
// Hot-path cost is kept small on purpose: the Raft and lease gauges are read from the host only
// when someone scrapes (collect callbacks); the loop itself only bumps counters and observes
// histograms.

import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Applied } from "../lock/lock-state-machine.ts";
import type { Entry, Ready, Role, Status } from "../raft/index.ts";
import type { DurableLog } from "./contracts.ts";
import type { HostObserver, ProposalOutcomeKind } from "./host-observer.ts";

/** NodeMetricsSource is what the scrape-time gauges read: the core's status and the lease table's size. */
export interface NodeMetricsSource {
  status(): Status;
  leaseCounts(): { readonly leases: number; readonly waiters: number };
}

export interface NodeMetricsOptions {
  readonly nodeId: string;
  readonly source: NodeMetricsSource;
  /**
   * appendsTrackedMax bounds the leader's table of entries appended but not yet committed, which
   * sctec_raft_append_seconds is measured from. When it is full, newer entries are not timed (the
   * histogram then undercounts, which sctec_raft_appends_untimed_total shows) rather than grow.
   */
  readonly appendsTrackedMax: number;
}

const roles: readonly Role[] = ["follower", "pre_candidate", "candidate", "leader"];

/** Buckets in seconds, from a fast fsync (0.1 ms) to a stalled round trip (5 s). */
export const latencyBucketsSeconds = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

export class NodeMetrics implements HostObserver {
  readonly registry = new Registry();
  private readonly options: NodeMetricsOptions;
  private readonly electionsStarted: Counter<"kind">;
  private readonly electionsWon: Counter;
  private readonly leaderChanges: Counter;
  private readonly proposals: Counter<"outcome">;
  private readonly joinsHeld: Counter;
  private readonly appendSeconds: Histogram;
  private readonly appendsUntimed: Counter;
  private readonly fsyncSeconds: Histogram<"op">;
  private readonly leaseGrants: Counter;
  private readonly leaseConflicts: Counter;
  private readonly leaseExpiries: Counter;
  private readonly leaseReleases: Counter;
  private readonly waitTimeouts: Counter;
  private readonly peerFramesRejected: Counter<"peer" | "code">;
  private role: Role = "follower";
  private leaderId: string | null = null;
  /** appendedAtMs: [index, monotonic ms] of the leader's entries not yet committed, oldest first. */
  private appendedAtMs: [number, number][] = [];
  private appendedHead = 0;

  constructor(options: NodeMetricsOptions) {
    if (!(Number.isInteger(options.appendsTrackedMax) && options.appendsTrackedMax >= 1)) {
      throw new Error(`NodeMetrics: appendsTrackedMax must be a positive integer, got ${options.appendsTrackedMax}`);
    }
    this.options = options;
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node_id: options.nodeId });
    this.defineStatusGauges();
    this.electionsStarted = new Counter({
      name: "sctec_raft_elections_started_total",
      help: "Elections this node started: kind pre_vote (a pre-vote round) or vote (a real election, the term rises).",
      labelNames: ["kind"],
      registers,
    });
    this.electionsWon = new Counter({ name: "sctec_raft_elections_won_total", help: "Times this node became leader.", registers });
    this.leaderChanges = new Counter({
      name: "sctec_raft_leader_changes_total",
      help: "Times the leader this node knows changed (including to none).",
      registers,
    });
    this.proposals = new Counter({
      name: "sctec_raft_proposals_total",
      help: "Proposals (lock commands and membership steps) fed to the core, by its answer: accepted, not_leader, dropped.",
      labelNames: ["outcome"],
      registers,
    });
    this.joinsHeld = new Counter({
      name: "sctec_raft_queue_joins_held_total",
      help: "Leader only: acquires that would only join a lock's queue, held back to go out with the next write (about two ticks at most).",
      registers,
    });
    this.appendSeconds = new Histogram({
      name: "sctec_raft_append_seconds",
      help: "Leader only: from an entry's durable append to the local log until a quorum has it (committed).",
      buckets: latencyBucketsSeconds,
      registers,
    });
    this.appendsUntimed = new Counter({
      name: "sctec_raft_appends_untimed_total",
      help: "Leader entries not timed in sctec_raft_append_seconds because the tracking table was full.",
      registers,
    });
    this.fsyncSeconds = new Histogram({
      name: "sctec_storage_fsync_seconds",
      help: "Synced LevelDB writes: op save (one Ready: hard state, entries, snapshot; one fsync) or compact.",
      labelNames: ["op"],
      buckets: latencyBucketsSeconds,
      registers,
    });
    this.leaseGrants = new Counter({
      name: "sctec_lease_grants_total",
      help: "Acquires granted, at once or after waiting (as applied by this node; every node applies the same).",
      registers,
    });
    this.leaseConflicts = new Counter({
      name: "sctec_lease_conflicts_total",
      help: "Acquires refused because a resource was held (the lab's 409), as applied by this node.",
      registers,
    });
    this.leaseExpiries = new Counter({ name: "sctec_lease_expiries_total", help: "Leases ended by expiry, as applied.", registers });
    this.leaseReleases = new Counter({
      name: "sctec_lease_releases_total",
      help: "Leases released by their holder, as applied.",
      registers,
    });
    this.waitTimeouts = new Counter({
      name: "sctec_lease_wait_timeouts_total",
      help: "Queued acquires whose wait ran out, as applied.",
      registers,
    });
    this.peerFramesRejected = new Counter({
      name: "sctec_peer_frames_rejected_total",
      help:
        "Frames refused from an authenticated peer, by peer and code (invalid_entry: an entry this node could not apply; " +
        "the others: the frame did not decode, or named another sender or recipient). Any of them means a bug or incompatible versions.",
      labelNames: ["peer", "code"],
      registers,
    });
  }

  /** defineStatusGauges: gauges read from the core at scrape time only. */
  private defineStatusGauges(): void {
    const source = this.options.source;
    const registers = [this.registry];
    new Gauge({
      name: "sctec_raft_role",
      help: "This node's role: 1 for the current one, 0 for the others.",
      labelNames: ["role"],
      registers,
      collect() {
        const role = source.status().role;
        for (const candidate of roles) this.set({ role: candidate }, candidate === role ? 1 : 0);
      },
    });
    const statusGauge = (name: string, help: string, read: (status: Status) => number): void => {
      new Gauge({
        name,
        help,
        registers,
        collect() {
          this.set(read(source.status()));
        },
      });
    };
    statusGauge("sctec_raft_term", "The current term.", (status) => status.term);
    statusGauge("sctec_raft_commit_index", "The highest log index known committed.", (status) => status.commitIndex);
    statusGauge("sctec_raft_applied_index", "The highest log index applied to the lock state machine.", (status) => status.appliedIndex);
    statusGauge("sctec_raft_last_index", "The last index in this node's log.", (status) => status.lastIndex);
    statusGauge("sctec_raft_snapshot_index", "The index of this node's latest snapshot.", (status) => status.snapshotIndex);
    statusGauge("sctec_raft_voters", "Voting members in this node's configuration.", (status) => status.voters.length);
    new Gauge({
      name: "sctec_leases_held",
      help: "Leases held now, in this node's applied state.",
      registers,
      collect() {
        this.set(source.leaseCounts().leases);
      },
    });
    new Gauge({
      name: "sctec_lease_waiters",
      help: "Queued acquires waiting now, in this node's applied state.",
      registers,
      collect() {
        this.set(source.leaseCounts().waiters);
      },
    });
  }

  // -------------------------------------------------------------------------------------------
  // HostObserver.

  readyHandled(ready: Ready, nowMs: number): void {
    if (ready.softState !== undefined) this.roleChanged(ready.softState.role, ready.softState.leaderId);
    if (this.role !== "leader") return;
    for (const entry of ready.entries) {
      if (this.appendedAtMs.length - this.appendedHead >= this.options.appendsTrackedMax) {
        this.appendsUntimed.inc();
        continue;
      }
      this.appendedAtMs.push([entry.index, nowMs]);
    }
    const committed = ready.committedEntries.at(-1)?.index;
    if (committed !== undefined) this.settleAppends(committed, nowMs);
  }

  applied(_entry: Entry, applied: Applied | undefined): void {
    if (applied === undefined) return;
    const result = applied.result;
    if (result.status === "granted") this.leaseGrants.inc();
    else if (result.status === "rejected" && result.code === "conflict") this.leaseConflicts.inc();
    for (const resolved of applied.resolvedWaiters) if (resolved.result.status === "granted") this.leaseGrants.inc();
    for (const event of applied.events) {
      if (event.type === "expired") this.leaseExpiries.inc();
      else if (event.type === "released") this.leaseReleases.inc();
      else if (event.type === "wait_timeout") this.waitTimeouts.inc();
    }
  }

  /** frameRejected counts one frame refused from a peer (the transport's onFrameRejected). */
  frameRejected(peer: string, code: string): void {
    this.peerFramesRejected.inc({ peer, code });
  }

  joinHeld(): void {
    this.joinsHeld.inc();
  }

  proposed(outcome: ProposalOutcomeKind): void {
    this.proposals.inc({ outcome });
  }

  private roleChanged(role: Role, leaderId: string | null): void {
    if (role === "pre_candidate") this.electionsStarted.inc({ kind: "pre_vote" });
    else if (role === "candidate") this.electionsStarted.inc({ kind: "vote" });
    else if (role === "leader" && this.role !== "leader") this.electionsWon.inc();
    if (leaderId !== this.leaderId) this.leaderChanges.inc();
    // Entries appended in an earlier term may commit under a later leader, or never: not timed.
    if (role !== "leader") {
      this.appendedAtMs = [];
      this.appendedHead = 0;
    }
    this.role = role;
    this.leaderId = leaderId;
  }

  /** settleAppends observes every tracked entry at or below the commit index, oldest first. */
  private settleAppends(commitIndex: number, nowMs: number): void {
    while (this.appendedHead < this.appendedAtMs.length) {
      const [index, appendedMs] = this.appendedAtMs[this.appendedHead] as [number, number];
      if (index > commitIndex) break;
      this.appendSeconds.observe((nowMs - appendedMs) / 1000);
      this.appendedHead++;
    }
    // Drop the settled prefix now and then, not on every Ready (a shift per entry is O(n²)).
    if (this.appendedHead > 1024 || this.appendedHead === this.appendedAtMs.length) {
      this.appendedAtMs = this.appendedAtMs.slice(this.appendedHead);
      this.appendedHead = 0;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Storage.

  /** instrumentDurableLog wraps a DurableLog so that each synced write is timed; it changes nothing else. */
  instrumentDurableLog(log: DurableLog): DurableLog {
    const fsyncSeconds = this.fsyncSeconds;
    const timed = async <T>(op: "save" | "compact", write: () => Promise<T>): Promise<T> => {
      const end = fsyncSeconds.startTimer({ op });
      try {
        return await write();
      } finally {
        end();
      }
    };
    return {
      load: () => log.load(),
      save: (update) => timed("save", () => log.save(update)),
      compact: (snapshot) => timed("compact", () => log.compact(snapshot)),
      close: () => log.close(),
    };
  }

  /** text renders every metric in the Prometheus text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
