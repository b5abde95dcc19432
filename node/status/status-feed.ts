// StatusFeed pushes this node's view of the cluster (status-view.ts) to the status pages that
// watch it over a WebSocket (/status/live on the node's own HTTP server). The page never polls:
// the feed pushes a fresh view every pushIntervalMs, and sooner when the timeline moves. It runs
// on the HTTP thread; what only the Raft side knows (the core's status, the peer links, the lease
// rows, the timeline) it asks of the Raft side's StatusSource (status-source.ts), one question per
// push.
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
import { describeIssues } from "../../protocol/commands.ts";
import { nodeStatusSchema, peerProgressSchema } from "../../protocol/status.ts";
import type { NodeId } from "../../raft/index.ts";
import type { PeerLinkStatus } from "../contracts.ts";
import type { LocalStatusView } from "./status-source.ts";
import { buildStatusView, type LoadView, type PeerPoll, type PolledStatus, type StatusView } from "./status-view.ts";

/** StatusFeedSource is where the feed gets this node's own part of the view (a RaftHost fits it). */
export interface StatusFeedSource {
  readonly nodeId: NodeId;
  localView(leasesShownMax: number): Promise<LocalStatusView>;
  /** onTimelineChange: the timeline moved; returns the unsubscribe function. */
  onTimelineChange(listener: () => void): () => void;
}

export interface StatusFeedOptions {
  readonly source: StatusFeedSource;
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
  /** load: the admission gate's figures (node/admission.ts), shown on the page; none without a gate. */
  readonly load?: () => LoadView;
  /** dispatcher: what the peer polls go through; over TLS, one that trusts the cluster's CA. @default undici's global one */
  readonly dispatcher?: () => Dispatcher;
}

/** A page that cannot keep up is skipped until its socket drains, rather than buffered without end. */
const viewerBufferedBytesMax = 1024 * 1024;
/** A peer's /status answer larger than this is not believed (it is a few hundred bytes). */
const peerStatusBytesMax = 256 * 1024;
/** The feed looks whether a push or a poll is due this often. */
const tickIntervalMs = 250;

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
  /** memberUrls: the address book with the links a browser should follow (linkUrls over peerUrls). */
  private readonly memberUrls: ReadonlyMap<string, string>;
  private readonly ticker: NodeJS.Timeout;
  private readonly detachers: (() => void)[] = [];
  private wss: WebSocketServer | undefined;
  private lastPushMs = Number.NEGATIVE_INFINITY;
  private lastPollMs = Number.NEGATIVE_INFINITY;
  private dirty = false;
  /** pushing: a push is waiting for the Raft side's view; the next waits for it. */
  private pushing = false;
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
    for (const id of options.peerUrls.keys()) {
      if (id !== options.source.nodeId) this.polls.set(id, { status: undefined, atMs: undefined, error: undefined, inFlight: false });
    }
    this.detachers.push(options.source.onTimelineChange(() => (this.dirty = true)));
    this.ticker = setInterval(() => this.tick(), tickIntervalMs);
    this.ticker.unref();
  }

  /** view computes this node's view now (also served as JSON by GET /status/view). */
  async view(): Promise<StatusView> {
    const local = await this.options.source.localView(this.options.leasesShownMax);
    const nowMs = this.options.nowMs();
    const polls = new Map<string, PeerPoll>();
    for (const [id, poll] of this.polls) {
      polls.set(id, { status: poll.status, statusAgeMs: poll.atMs === undefined ? undefined : nowMs - poll.atMs, error: poll.error });
    }
    return buildStatusView({
      nodeId: this.options.source.nodeId,
      wallNowMs: this.options.wallNowMs(),
      status: local.status,
      peerUrls: this.memberUrls,
      bookingUrl: this.options.bookingUrl,
      links: new Map<string, PeerLinkStatus>(local.links),
      polls,
      // Two missed polls and a timeout: the answer we have is no longer evidence that the peer is up.
      pollFreshMs: 2 * this.options.peerPollIntervalMs + this.options.peerPollTimeoutMs,
      staleAfterMs: this.options.staleAfterMs,
      leases: local.leases,
      timeline: local.timeline,
      load: this.options.load?.(),
    });
  }

  /** viewerCount: pages watching now. */
  viewerCount(): number {
    return this.viewers.size;
  }

  /**
   * attach serves `path` (/status/live) on `server`'s WebSocket upgrades. Upgrades for
   * `otherPaths` are left to their own listeners; any other path is refused here (404), since with
   * two listeners neither would otherwise answer it.
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
    this.view().then(
      (view) => {
        if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(view));
      },
      (error: unknown) => this.options.logger.warn({ err: error }, "status view failed"),
    );
    if (this.viewers.size === 1) this.pollPeers();
  }

  private tick(): void {
    if (this.closed || this.viewers.size === 0) return;
    const nowMs = this.options.nowMs();
    if (nowMs - this.lastPollMs >= this.options.peerPollIntervalMs) this.pollPeers();
    if (this.dirty || nowMs - this.lastPushMs >= this.options.pushIntervalMs) this.push();
  }

  private push(): void {
    if (this.pushing) return;
    this.pushing = true;
    this.dirty = false;
    this.lastPushMs = this.options.nowMs();
    this.view().then(
      (view) => {
        this.pushing = false;
        const text = JSON.stringify(view);
        for (const viewer of this.viewers) {
          if (viewer.readyState === WebSocket.OPEN && viewer.bufferedAmount <= viewerBufferedBytesMax) viewer.send(text);
        }
      },
      (error: unknown) => {
        this.pushing = false;
        if (!this.closed) this.options.logger.warn({ err: error }, "status view failed");
      },
    );
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
