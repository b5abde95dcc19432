// StatusFeed pushes this node's view of the cluster (status-view.ts) to the status pages that
// watch it over a WebSocket (/status/live on the node's own HTTP server). The page never polls:
// the feed pushes a fresh view every pushIntervalMs, and sooner when the timeline moves.
//
// To show the other members' role, term and indexes, the feed asks each peer's open GET /status
// itself, server-side, once per peerPollIntervalMs, with a short timeout and at most one request
// in flight per peer, and only while at least one page is watching (an unwatched node asks
// nothing). Everything is bounded: viewers (viewersMax), their send buffers
// (viewerBufferedBytesMax), the leases shown (leasesShownMax), the timeline (its own eventsMax).

import type { IncomingMessage, Server } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import { type Dispatcher, fetch } from "undici";
import { WebSocket, WebSocketServer } from "ws";
import { z } from "zod";
import type { Lease, LockEvent, Waiter } from "../../lock/types.ts";
import { describeIssues } from "../../protocol/commands.ts";
import { nodeStatusSchema, peerProgressSchema } from "../../protocol/status.ts";
import type { NodeId, Status } from "../../raft/index.ts";
import type { PeerLinkStatus, PeerTransport } from "../contracts.ts";
import type { StatusTimeline } from "./status-timeline.ts";
import { buildStatusView, type LeaseRow, type PeerPoll, type PolledStatus, type StatusView } from "./status-view.ts";

/** StatusFeedHost is what the feed reads from the node (LockService fits it). */
export interface StatusFeedHost {
  readonly nodeId: NodeId;
  status(): Status;
  /** localState: this node's applied lock state (no ReadIndex round: a status page shows what the node knows). */
  localState(): { leases(): Lease[]; waitersNow(): Waiter[] };
  leaseDeadlineMs(resource: string): number | undefined;
  onEvent(listener: (event: LockEvent) => void): () => void;
}

export interface StatusFeedOptions {
  readonly host: StatusFeedHost;
  readonly transport: PeerTransport;
  readonly timeline: StatusTimeline;
  /** peerUrls: every member's base HTTP URL (the address book), this node's included. */
  readonly peerUrls: ReadonlyMap<string, string>;
  /** linkUrls: where the page links to a member, when a browser reaches it elsewhere than its peers do (default: peerUrls). */
  readonly linkUrls?: ReadonlyMap<string, string>;
  readonly bookingUrl: string;
  /** viewersMax bounds the pages watching at once; one more is refused (503). */
  readonly viewersMax: number;
  /** leasesShownMax bounds the lease rows in one view (the total is always shown). */
  readonly leasesShownMax: number;
  readonly pushIntervalMs: number;
  readonly peerPollIntervalMs: number;
  readonly peerPollTimeoutMs: number;
  /** staleAfterMs: a follower that has not heard from its leader for this long says its view may be stale. */
  readonly staleAfterMs: number;
  /** nowMs: a monotonic clock (performance.now); wallNowMs: the wall clock (Date.now) for times shown. */
  readonly nowMs: () => number;
  readonly wallNowMs: () => number;
  readonly logger: Logger;
  /** dispatcher: what the peer polls go through; over TLS, one that trusts the cluster's CA. @default undici's global one */
  readonly dispatcher?: () => Dispatcher;
}

/** A page that cannot keep up is skipped until its socket drains, rather than buffered without end. */
const viewerBufferedBytesMax = 1024 * 1024;
/** A peer's /status answer larger than this is not believed (it is a few hundred bytes). */
const peerStatusBytesMax = 256 * 1024;
/** The feed samples its peer links this often, to put lost and found peers on the timeline. */
const sampleIntervalMs = 250;
/** A peer never reached since start is put on the timeline as unreachable after this long. */
const startupGraceMs = 5000;
/** Apply times kept for lease estimates; past this (a snapshot skipped the releases), they are dropped. */
const leaseAppliedTrackedMax = 100_000;

interface PollState {
  status: PolledStatus | undefined;
  atMs: number | undefined;
  error: string | undefined;
  inFlight: boolean;
}

export class StatusFeed {
  private readonly options: StatusFeedOptions;
  private readonly viewers = new Set<WebSocket>();
  private readonly polls = new Map<string, PollState>();
  /** linkUp: per peer, the link state last sampled (undefined: never connected yet). */
  private readonly linkUp = new Map<string, boolean>();
  /** leaseAppliedAtMs: monotonic time this node applied each lease's grant or last renewal (for followers' estimates). */
  private readonly leaseAppliedAtMs = new Map<string, number>();
  private readonly startedMs: number;
  /** memberUrls: the address book with the links a browser should follow (linkUrls over peerUrls). */
  private readonly memberUrls: ReadonlyMap<string, string>;
  private readonly ticker: NodeJS.Timeout;
  private readonly detachers: (() => void)[] = [];
  private wss: WebSocketServer | undefined;
  private lastPushMs = Number.NEGATIVE_INFINITY;
  private lastPollMs = Number.NEGATIVE_INFINITY;
  private dirty = false;
  private closed = false;

  constructor(options: StatusFeedOptions) {
    for (const key of [
      "viewersMax",
      "leasesShownMax",
      "pushIntervalMs",
      "peerPollIntervalMs",
      "peerPollTimeoutMs",
      "staleAfterMs",
    ] as const) {
      if (!(Number.isInteger(options[key]) && options[key] >= 1)) throw new Error(`StatusFeed: ${key} must be a positive integer`);
    }
    this.options = options;
    this.memberUrls = new Map([...options.peerUrls].map(([id, url]) => [id, options.linkUrls?.get(id) ?? url]));
    this.startedMs = options.nowMs();
    for (const id of options.peerUrls.keys()) {
      if (id !== options.host.nodeId) this.polls.set(id, { status: undefined, atMs: undefined, error: undefined, inFlight: false });
    }
    this.detachers.push(options.host.onEvent((event) => this.leaseEvent(event)));
    this.detachers.push(options.timeline.onChange(() => (this.dirty = true)));
    this.ticker = setInterval(() => this.tick(), sampleIntervalMs);
    this.ticker.unref();
  }

  /** view computes this node's view now (also served as JSON by GET /status/view). */
  view(): StatusView {
    const status = this.options.host.status();
    const nowMs = this.options.nowMs();
    const polls = new Map<string, PeerPoll>();
    for (const [id, poll] of this.polls) {
      polls.set(id, { status: poll.status, statusAgeMs: poll.atMs === undefined ? undefined : nowMs - poll.atMs, error: poll.error });
    }
    const links = new Map<string, PeerLinkStatus>();
    for (const [id, link] of this.options.transport.peerStatus()) links.set(id, link);
    return buildStatusView({
      nodeId: this.options.host.nodeId,
      wallNowMs: this.options.wallNowMs(),
      status,
      peerUrls: this.memberUrls,
      bookingUrl: this.options.bookingUrl,
      links,
      polls,
      // Two missed polls and a timeout: the answer we have is no longer evidence that the peer is up.
      pollFreshMs: 2 * this.options.peerPollIntervalMs + this.options.peerPollTimeoutMs,
      staleAfterMs: this.options.staleAfterMs,
      leases: this.leaseRows(status.role === "leader", nowMs),
      timeline: this.options.timeline.recent(),
    });
  }

  /** viewerCount: pages watching now. */
  viewerCount(): number {
    return this.viewers.size;
  }

  /**
   * attach serves `path` (/status/live) on `server`'s WebSocket upgrades, beside the peer
   * transport's. Upgrades for `otherPaths` are left to their own listeners; any other path is
   * refused here (404), since with two listeners neither would otherwise answer it.
   */
  attach(server: Server | HttpsServer, path: string, otherPaths: readonly string[]): void {
    this.wss ??= new WebSocketServer({ noServer: true, maxPayload: 1024, perMessageDeflate: false, clientTracking: false });
    const wss = this.wss;
    const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
      const requested = new URL(request.url ?? "/", "http://localhost").pathname;
      if (requested !== path) {
        if (!otherPaths.includes(requested)) refuse(socket, 404, "Not Found");
        return;
      }
      if (this.closed || this.viewers.size >= this.options.viewersMax) {
        refuse(socket, 503, "Service Unavailable");
        return;
      }
      wss.handleUpgrade(request, socket, head, (ws) => this.addViewer(ws));
    };
    server.on("upgrade", onUpgrade);
    this.detachers.push(() => server.off("upgrade", onUpgrade));
  }

  /** close stops the ticker and closes every page's socket. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.ticker);
    for (const detach of this.detachers) detach();
    for (const viewer of this.viewers) viewer.close(1001, "node stopping");
    this.viewers.clear();
    this.wss?.close();
  }

  private addViewer(ws: WebSocket): void {
    this.viewers.add(ws);
    ws.on("close", () => this.viewers.delete(ws));
    ws.on("error", (error) => this.options.logger.debug({ err: error }, "status page socket error"));
    // The page only listens; whatever it sends is ignored (maxPayload keeps it small).
    ws.on("message", () => {});
    ws.send(JSON.stringify(this.view()));
    if (this.viewers.size === 1) this.pollPeers();
  }

  private tick(): void {
    if (this.closed) return;
    this.sampleLinks();
    if (this.viewers.size === 0) return;
    const nowMs = this.options.nowMs();
    if (nowMs - this.lastPollMs >= this.options.peerPollIntervalMs) this.pollPeers();
    if (this.dirty || nowMs - this.lastPushMs >= this.options.pushIntervalMs) this.push();
  }

  private push(): void {
    this.dirty = false;
    this.lastPushMs = this.options.nowMs();
    const text = JSON.stringify(this.view());
    for (const viewer of this.viewers) {
      if (viewer.readyState === WebSocket.OPEN && viewer.bufferedAmount <= viewerBufferedBytesMax) viewer.send(text);
    }
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

  private pollPeers(): void {
    this.lastPollMs = this.options.nowMs();
    for (const [id, poll] of this.polls) {
      const url = this.options.peerUrls.get(id);
      if (poll.inFlight || url === undefined) continue;
      poll.inFlight = true;
      void this.pollPeer(url, poll);
    }
  }

  private async pollPeer(url: string, poll: PollState): Promise<void> {
    const timeoutMs = this.options.peerPollTimeoutMs;
    try {
      const dispatcher = this.options.dispatcher?.();
      const response = await fetch(`${url}/status`, {
        signal: AbortSignal.timeout(timeoutMs),
        ...(dispatcher === undefined ? {} : { dispatcher }),
      });
      const text = await response.text();
      if (!response.ok) throw new Error(`answered ${response.status}`);
      if (text.length > peerStatusBytesMax) throw new Error(`answered ${text.length} characters, more than ${peerStatusBytesMax}`);
      poll.status = polledStatus(JSON.parse(text));
      poll.atMs = this.options.nowMs();
      poll.error = undefined;
    } catch (error) {
      poll.error = describeFetchError(error, timeoutMs);
    } finally {
      poll.inFlight = false;
      this.dirty = true;
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
  private leaseRows(isLeader: boolean, nowMs: number): { rows: LeaseRow[]; total: number; waitersTotal: number } {
    const leases = this.options.host
      .localState()
      .leases()
      .sort((a, b) => (a.resource < b.resource ? -1 : a.resource > b.resource ? 1 : 0));
    const waiters = this.options.host.localState().waitersNow();
    const waitersOf = new Map<string, number>();
    for (const waiter of waiters) for (const resource of waiter.resources) waitersOf.set(resource, (waitersOf.get(resource) ?? 0) + 1);
    const rows = leases.slice(0, this.options.leasesShownMax).map((lease): LeaseRow => {
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

/** polledStatusSchema: the fields of a peer's /status (protocol/status.ts) that the view uses. */
const polledStatusSchema = nodeStatusSchema
  .pick({ role: true, term: true, leaderId: true, commitIndex: true, appliedIndex: true, lastIndex: true, snapshotIndex: true })
  .extend({ progress: z.array(peerProgressSchema.pick({ id: true, matchIndex: true, state: true, recentActive: true })) });

/** polledStatus checks the fields the view uses; a peer that answers something else is treated as failing. */
function polledStatus(body: unknown): PolledStatus {
  const parsed = polledStatusSchema.safeParse(body);
  if (!parsed.success) throw new Error(`answered an unexpected body (${describeIssues(parsed.error)})`);
  return { ...parsed.data, progress: parsed.data.progress.slice(0, 64) };
}

function describeFetchError(error: unknown, timeoutMs: number): string {
  const name = (error as { name?: string }).name;
  if (name === "TimeoutError" || name === "AbortError") return `no answer within ${timeoutMs} ms`;
  const code = (error as { cause?: { code?: string } }).cause?.code;
  if (code === "ECONNREFUSED") return "connection refused";
  if (code !== undefined) return code;
  return (error as Error).message ?? String(error);
}

function refuse(socket: Duplex, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}
