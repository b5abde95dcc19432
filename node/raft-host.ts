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

import type { Credential, LockCommand, LockResult, StoredValue } from "../lock/types.ts";
import type { ConfChange, NodeId, Refusal, Status } from "../raft/index.ts";
import { type CallerCheck, type CredentialIdentity, type CredentialLookup, CredentialRefusedError } from "./api-auth.ts";
import type { PeerLinkStatus, PeerTransport } from "./contracts.ts";
import { systemClock } from "./driver/clock.ts";
import type { StorageStatus } from "./driver/raft-driver.ts";
import { type HandOver, type HandOverOptions, handOverLeadership } from "./graceful-stop.ts";
import type { LockService, LockStateView } from "./lock-service.ts";
import type { LoopLag } from "./loop-lag.ts";
import type { LocalStatusView, StatusSource } from "./status/status-source.ts";
import type { PeerTlsOptions } from "./transport/websocket-transport.ts";
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
  /**
   * caller: checked against this node's applied state once the poll has its events (they are
   * applied here, so a revocation before any of them is applied here too): CredentialRefusedError.
   */
  readonly caller?: CallerCheck;
}

/** CredentialInfo: a credential as the admin list shows it (never its token's hash). */
export type CredentialInfo = Omit<Credential, "tokenHash">;

/**
 * ApiHost is what the HTTP API (http-api.ts) needs of the Raft side. Reads name their caller
 * (CallerCheck): the caller's token is checked inside the read, as of the state it reads, and a
 * refusal is a CredentialRefusedError (docs/SECURITY.md: a revocation holds on every node).
 */
export interface ApiHost extends CredentialLookup {
  readonly nodeId: NodeId;
  /** leaderId: the leader this node knows (cheap and synchronous: every answer names it in a header). */
  leaderId(): NodeId | null;
  /** propose appends a lock command through the log and answers what applying it produced (DriverError otherwise). */
  propose(command: LockCommand, options?: { readonly awaitQueuedMs?: number }): Promise<{ readonly result: LockResult }>;
  proposeConfChange(change: ConfChange): Promise<void>;
  transferLeadership(transferee: NodeId): Promise<Refusal | { readonly kind: "started" }>;
  /** readKey, readRange and readLeases read after a ReadIndex round (linearizable), if the caller's token allows. */
  readKey(key: string, caller: CallerCheck): Promise<StoredValue | undefined>;
  readRange(
    query: { readonly prefix: string; readonly limit: number; readonly after?: string | undefined },
    caller: CallerCheck,
  ): Promise<RangeAnswer>;
  readLeases(caller: CallerCheck): Promise<LeaseWithDeadline[]>;
  /** confirmCaller: after a ReadIndex round, whether the caller's token still allows its role (CredentialRefusedError if not). */
  confirmCaller(caller: CallerCheck): Promise<void>;
  /** credentialList: every credential, by name, after a ReadIndex round, if the caller's token allows. */
  credentialList(caller: CallerCheck): Promise<CredentialInfo[]>;
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
  /**
   * useTls: the certificate, key and CA the peer link serves and dials with from now on (a SIGHUP
   * reload, checked by the HTTP thread): new connections use them, open ones keep theirs.
   */
  useTls(material: PeerTlsOptions): Promise<void>;
  /** stop stops the Raft side: the service, the transport, the durable log. */
  stop(): Promise<void>;
}

export interface LocalRaftHostOptions {
  readonly service: LockService;
  readonly transport: PeerTransport;
  readonly statusSource?: StatusSource;
  readonly metricsText?: () => Promise<string>;
  readonly loopLag?: () => LoopLag;
  /** useTls swaps the peer link's TLS material (raft-side.ts); without it, useTls refuses (the link is plain). */
  readonly useTls?: (material: PeerTlsOptions) => void;
  /** stopSide stops what the host does not own itself (transport, durable log, peer server), after the service. */
  readonly stopSide?: () => Promise<void>;
}

/** identityOf: what the API needs of a credential (its token's hash stays on the Raft side). */
function identityOf(credential: Credential | undefined): CredentialIdentity | undefined {
  return credential === undefined ? undefined : { name: credential.name, role: credential.role, issuedIndex: credential.issuedIndex };
}

/** throwIfRefused: CredentialRefusedError unless the caller's token allows its role in `machine`. */
function throwIfRefused(machine: LockStateView, caller: CallerCheck): void {
  const refusal = machine.credentialRefusal(caller.credentialIndex, caller.role);
  if (refusal !== undefined) throw new CredentialRefusedError(refusal.code, refusal.message, caller.role);
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

  readKey(key: string, caller: CallerCheck): Promise<StoredValue | undefined> {
    return this.readAs(caller, (machine) => machine.get(key));
  }

  readRange(
    query: { readonly prefix: string; readonly limit: number; readonly after?: string | undefined },
    caller: CallerCheck,
  ): Promise<RangeAnswer> {
    return this.readAs(caller, (machine) => ({
      ...machine.range(query.prefix, query.limit, query.after),
      index: machine.appliedIndex(),
    }));
  }

  readLeases(caller: CallerCheck): Promise<LeaseWithDeadline[]> {
    return this.readAs(caller, (machine) =>
      machine.leases().map((lease) => ({ ...lease, leaderDeadlineMs: this.service.leaseDeadlineMs(lease.resource) ?? null })),
    );
  }

  confirmCaller(caller: CallerCheck): Promise<void> {
    return this.readAs(caller, () => undefined);
  }

  credentialList(caller: CallerCheck): Promise<CredentialInfo[]> {
    return this.readAs(caller, (machine) =>
      machine.credentialList().map(({ name, role, createdIndex, issuedIndex }) => ({ name, role, createdIndex, issuedIndex })),
    );
  }

  credentialByTokenHash(tokenHash: string): CredentialIdentity | undefined {
    return identityOf(this.service.localState().credentialByTokenHash(tokenHash));
  }

  async findCredential(tokenHash: string): Promise<CredentialIdentity | undefined> {
    return identityOf(await this.service.linearizableRead((machine) => machine.credentialByTokenHash(tokenHash)));
  }

  async watch(query: HostWatchQuery): Promise<WatchAnswer> {
    const answer = await this.service.watch({
      prefix: query.prefix,
      after: query.after ?? this.service.localState().appliedIndex(),
      limit: query.limit,
      timeoutMs: query.timeoutMs,
      ...(query.signal === undefined ? {} : { signal: query.signal }),
    });
    if (query.caller !== undefined) throwIfRefused(this.service.localState(), query.caller);
    return answer;
  }

  /**
   * readAs runs `read` after a ReadIndex round, if the caller's token still allows its role as of
   * that state: a token revoked before the read began is refused on every node, a follower
   * included (its ReadIndex round waits until it has applied the revocation).
   */
  private async readAs<T>(caller: CallerCheck, read: (machine: LockStateView) => T): Promise<T> {
    const outcome = await this.service.linearizableRead((machine) => {
      const refusal = machine.credentialRefusal(caller.credentialIndex, caller.role);
      return refusal === undefined ? { value: read(machine) } : { refusal };
    });
    if ("refusal" in outcome) throw new CredentialRefusedError(outcome.refusal.code, outcome.refusal.message, caller.role);
    return outcome.value;
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

  async useTls(material: PeerTlsOptions): Promise<void> {
    if (this.options.useTls === undefined) throw new Error("this node's peer link is not TLS");
    this.options.useTls(material);
  }

  async stop(): Promise<void> {
    this.options.statusSource?.close();
    await this.service.stop();
    await this.options.stopSide?.();
  }
}
