// RaftHost is what the node's HTTP front (the API, the status feed, /metrics) asks of its Raft
// side: the LockService with its driver, the peer transport and the durable log. Every answer that
// depends on the Raft side's state is asynchronous, so the two sides may run on different threads:
//
// - LocalRaftHost (here) answers from objects in its own thread. The raft thread runs it
//   (raft-thread.ts), and in-process tests put it straight behind the API (testing/http-cluster.ts).
// - RaftThreadHost (raft-thread-host.ts) is the main thread's proxy to a LocalRaftHost on the raft
//   worker thread, over a MessagePort. docs/DESIGN.md, "Heartbeats on a thread of their own", says
//   why the node is split so.
//
// Everything crossing is plain data (structured clone): commands, results, events, statuses.
// Errors cross as DriverError or WatchError with their codes (raft-thread-protocol.ts).

import type { LockCommand, LockResult, StoredValue } from "../lock/types.ts";
import type { ConfChange, NodeId, Refusal, Status } from "../raft/index.ts";
import type { PeerLinkStatus, PeerTransport } from "./contracts.ts";
import { systemClock } from "./driver/clock.ts";
import type { StorageStatus } from "./driver/raft-driver.ts";
import { type HandOver, type HandOverOptions, handOverLeadership } from "./graceful-stop.ts";
import type { LockService } from "./lock-service.ts";
import type { LoopLag } from "./loop-lag.ts";
import type { LocalStatusView, StatusSource } from "./status/status-source.ts";
import type { WatchAnswer } from "./watch-hub.ts";

/** HostStatus is what GET /status shows of the Raft side: the core's status, the peer links, the watchers, the disk. */
export interface HostStatus {
  readonly status: Status;
  readonly peers: readonly (readonly [NodeId, PeerLinkStatus])[];
  readonly watch: { readonly watchers: number; readonly oldestIndex: number };
  readonly storage: StorageStatus;
}

/** StoredEntry is one key of a range read, with its stored value. */
export interface StoredEntry {
  readonly key: string;
  readonly value: StoredValue;
}

/** RangeAnswer is one page of a range read; `index` is the applied index it was read at. */
export interface RangeAnswer {
  readonly items: readonly StoredEntry[];
  readonly more: boolean;
  readonly index: number;
}

/** LeaseWithDeadline is a lease with the leader's own deadline for it (null on a follower, or unknown). */
export interface LeaseWithDeadline {
  readonly resource: string;
  readonly token: number;
  readonly owner: string;
  readonly clientId: string;
  readonly ttlMs: number;
  readonly version: number;
  readonly leaderDeadlineMs: number | null;
}

/** HostWatchQuery is a watch poll; without `after` it starts from the node's applied index. */
export interface HostWatchQuery {
  readonly prefix: string;
  readonly after: number | undefined;
  readonly limit: number;
  readonly timeoutMs: number;
  /** signal: the caller went away; the poll is dropped. */
  readonly signal?: AbortSignal;
}

/** ApiHost is what the HTTP API (http-api.ts) needs of the Raft side. */
export interface ApiHost {
  readonly nodeId: NodeId;
  /** leaderId: the leader this node knows (cheap and synchronous: every answer names it in a header). */
  leaderId(): NodeId | null;
  /** propose appends a lock command through the log and answers what applying it produced (DriverError otherwise). */
  propose(command: LockCommand, options?: { readonly awaitQueuedMs?: number }): Promise<{ readonly result: LockResult }>;
  proposeConfChange(change: ConfChange): Promise<void>;
  transferLeadership(transferee: NodeId): Promise<Refusal | { readonly kind: "started" }>;
  /** readKey, readRange and readLeases read after a ReadIndex round (linearizable). */
  readKey(key: string): Promise<StoredValue | undefined>;
  readRange(query: { readonly prefix: string; readonly limit: number; readonly after?: string | undefined }): Promise<RangeAnswer>;
  readLeases(): Promise<LeaseWithDeadline[]>;
  /** watch long-polls this node's applied events (no leader involved: they are committed data). */
  watch(query: HostWatchQuery): Promise<WatchAnswer>;
  hostStatus(): Promise<HostStatus>;
}

/** RaftHost is ApiHost plus what the rest of the front needs: the status page's local view, metrics, stop. */
export interface RaftHost extends ApiHost {
  /** localView: this node's part of its status page (status-source.ts), with at most leasesShownMax lease rows. */
  localView(leasesShownMax: number): Promise<LocalStatusView>;
  /** onTimelineChange: the status timeline moved (the page is pushed sooner); returns the unsubscribe function. */
  onTimelineChange(listener: () => void): () => void;
  /** raftMetricsText: the Raft side's Prometheus families (metrics.ts), in the text format. */
  raftMetricsText(): Promise<string>;
  /** raftLoopLag: the Raft side's event-loop lag (loop-lag.ts). */
  raftLoopLag(): Promise<LoopLag>;
  /**
   * handOverLeadership: a stopping leader hands its leadership to the most caught-up voter
   * (graceful-stop.ts), run where the core is, on the Raft side's clock.
   */
  handOverLeadership(options: Omit<HandOverOptions, "clock">): Promise<HandOver>;
  /** stop stops the Raft side: the service, the transport, the durable log. */
  stop(): Promise<void>;
}

export interface LocalRaftHostOptions {
  readonly service: LockService;
  readonly transport: PeerTransport;
  readonly statusSource?: StatusSource;
  readonly metricsText?: () => Promise<string>;
  readonly loopLag?: () => LoopLag;
  /** stopSide stops what the host does not own itself (transport, durable log, peer server), after the service. */
  readonly stopSide?: () => Promise<void>;
}

/** noLag: what a host without a lag monitor reports. */
const noLag: LoopLag = { p50Ms: 0, p99Ms: 0, maxMs: 0 };

/** LocalRaftHost answers the front from a LockService in its own thread. */
export class LocalRaftHost implements RaftHost {
  readonly nodeId: NodeId;
  private readonly options: LocalRaftHostOptions;
  private readonly service: LockService;

  constructor(options: LocalRaftHostOptions) {
    this.options = options;
    this.service = options.service;
    this.nodeId = options.service.nodeId;
  }

  leaderId(): NodeId | null {
    return this.service.leaderId();
  }

  async propose(command: LockCommand, options: { readonly awaitQueuedMs?: number } = {}): Promise<{ readonly result: LockResult }> {
    const applied = await this.service.propose(
      command,
      options.awaitQueuedMs === undefined ? {} : { awaitQueuedMs: options.awaitQueuedMs },
    );
    return { result: applied.result };
  }

  proposeConfChange(change: ConfChange): Promise<void> {
    return this.service.proposeConfChange(change);
  }

  transferLeadership(transferee: NodeId): Promise<Refusal | { readonly kind: "started" }> {
    return this.service.transferLeadership(transferee);
  }

  readKey(key: string): Promise<StoredValue | undefined> {
    return this.service.linearizableRead((machine) => machine.get(key));
  }

  readRange(query: { readonly prefix: string; readonly limit: number; readonly after?: string | undefined }): Promise<RangeAnswer> {
    return this.service.linearizableRead((machine) => ({
      ...machine.range(query.prefix, query.limit, query.after),
      index: machine.appliedIndex(),
    }));
  }

  readLeases(): Promise<LeaseWithDeadline[]> {
    return this.service.linearizableRead((machine) =>
      machine.leases().map((lease) => ({ ...lease, leaderDeadlineMs: this.service.leaseDeadlineMs(lease.resource) ?? null })),
    );
  }

  watch(query: HostWatchQuery): Promise<WatchAnswer> {
    return this.service.watch({
      prefix: query.prefix,
      after: query.after ?? this.service.localState().appliedIndex(),
      limit: query.limit,
      timeoutMs: query.timeoutMs,
      ...(query.signal === undefined ? {} : { signal: query.signal }),
    });
  }

  async hostStatus(): Promise<HostStatus> {
    return {
      status: this.service.status(),
      peers: [...this.options.transport.peerStatus()],
      watch: this.service.watchStatus(),
      storage: this.service.storageStatus(),
    };
  }

  async localView(leasesShownMax: number): Promise<LocalStatusView> {
    const source = this.options.statusSource;
    if (source === undefined) throw new Error("this host has no status source");
    return source.localView(leasesShownMax);
  }

  onTimelineChange(listener: () => void): () => void {
    return this.options.statusSource?.onTimelineChange(listener) ?? (() => undefined);
  }

  raftMetricsText(): Promise<string> {
    return this.options.metricsText?.() ?? Promise.resolve("");
  }

  async raftLoopLag(): Promise<LoopLag> {
    return this.options.loopLag?.() ?? noLag;
  }

  handOverLeadership(options: Omit<HandOverOptions, "clock">): Promise<HandOver> {
    return handOverLeadership(this.service, { ...options, clock: systemClock });
  }

  async stop(): Promise<void> {
    this.options.statusSource?.close();
    await this.service.stop();
    await this.options.stopSide?.();
  }
}
