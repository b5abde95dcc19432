// WebSocketTransport is the real PeerTransport: Raft messages travel as msgpack frames
// (frames.ts) over WebSockets that both ends authenticated with the cluster secret (auth.ts).
//
// Each node dials every peer and uses that connection for sending only; it receives on the
// connections its peers dialed. So between two nodes there are two connections, one per
// direction. This costs a socket, and buys simplicity: there is no tie-break when two nodes dial
// each other at once, each direction has its own send queue and backpressure, and a node's
// ability to send never depends on whether the peer happened to dial it.
//
// Delivery is best effort (Raft tolerates loss, duplication and reordering across reconnects):
// `send` never throws and never blocks. Messages wait in a bounded per-peer queue while the peer
// is unreachable or its socket has too much unsent data; when the queue is full the oldest
// message is dropped, because a newer message (a newer term, commit index or heartbeat) makes
// an older one stale sooner than the other way round.

import type { IncomingMessage, Server } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { Duplex } from "node:stream";
import { checkServerIdentity, type PeerCertificate, type TLSSocket } from "node:tls";
import type { Logger } from "pino";
import type { ClientOptions, RawData } from "ws";
import { WebSocket, WebSocketServer } from "ws";
import type { NodeId, RaftMessage } from "../../raft/index.ts";
import type { PeerTransport } from "../contracts.ts";
import type { HandshakeErrorCode, HandshakeOptions } from "./auth.ts";
import { acceptHandshake, dialHandshake, POLICY_VIOLATION, rawDataBytes } from "./auth.ts";
import type { FrameErrorCode, FrameLimits } from "./frames.ts";
import { decodeFrame, encodeFrame, frameLimitsDefaults } from "./frames.ts";

/**
 * FrameRejectionCode says why a frame from an authenticated peer was refused: it did not decode
 * (FrameErrorCode), it named another sender or recipient, or an entry in it holds data this node
 * could not apply (invalid_entry).
 */
export type FrameRejectionCode = FrameErrorCode | "wrong_sender" | "wrong_recipient" | "invalid_entry";

/** FrameRejection is the latest refused frame of a peer, for status pages. */
export interface FrameRejection {
  readonly code: FrameRejectionCode;
  readonly reason: string;
  /** atMs: wall-clock time (Date.now()) of the refusal. */
  readonly atMs: number;
}

/**
 * PeerTlsOptions: what a node dials its peers with over mutual TLS: the CA its peers' certificates
 * come from, and its own certificate and key (which the peer checks in turn).
 */
export interface PeerTlsOptions {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** WebSocketTransportOptions configure one node's transport. Every queue, window and wait has a bound. */
export interface WebSocketTransportOptions {
  readonly nodeId: NodeId;
  /** peers maps each node to its peer URL (`ws://host:port/raft`). An entry for this node itself is ignored. */
  readonly peers: ReadonlyMap<NodeId, string>;
  readonly clusterSecret: string;
  /** frameBytesMax bounds one frame both ways: larger outgoing messages are dropped, larger incoming frames close the socket (1009). */
  readonly frameBytesMax: number;
  /** queueMessagesMax bounds the messages waiting for one peer; beyond it the oldest is dropped. */
  readonly queueMessagesMax: number;
  readonly reconnectBaseMs: number;
  readonly reconnectMaxMs: number;
  /** handshakeTimeoutMs bounds the whole handshake: TCP connect, HTTP upgrade, challenge, hello and welcome. */
  readonly handshakeTimeoutMs: number;
  readonly logger: Logger;
  /** bufferedBytesMax: while a socket holds more unsent bytes than this, messages wait in the queue. @default 4 MiB or 2 frames */
  readonly bufferedBytesMax?: number;
  /** pingIntervalMs: how often an outbound connection is pinged; no pong by the next ping closes it. @default 5000 */
  readonly pingIntervalMs?: number;
  /** garbageFramesMax: more malformed frames than this within garbageWindowMs close an inbound connection. @default 10 */
  readonly garbageFramesMax?: number;
  /** @default 10000 */
  readonly garbageWindowMs?: number;
  /** pendingHandshakesMax bounds the inbound connections not yet authenticated; more are refused with 503. @default 16 */
  readonly pendingHandshakesMax?: number;
  /** entriesPerFrameMax bounds the entries of one incoming append_entries. @default frameLimitsDefaults.entriesPerFrameMax */
  readonly entriesPerFrameMax?: number;
  /** closeTimeoutMs: how long close() waits for a socket's closing handshake before cutting it. @default 1000 */
  readonly closeTimeoutMs?: number;
  /** random draws the reconnect jitter, in [0, 1). @default Math.random */
  readonly random?: () => number;
  /**
   * nowMs is a monotonic clock (performance.now): the garbage window, drop warnings and the time
   * since a peer's last contact run on it, so a wall-clock step changes none of them.
   * wallNowMs (Date.now) only turns that last contact into a time of day for peerStatus(), and
   * dates a refused frame.
   */
  readonly nowMs?: () => number;
  readonly wallNowMs?: () => number;
  /**
   * checkEntryData checks the data of every normal entry in an incoming append_entries: undefined
   * when this node can apply it, else why not. A frame holding one that fails is refused whole
   * (invalid_entry), so the node never appends an entry it cannot apply. @default every entry passes
   */
  readonly checkEntryData?: (data: Uint8Array) => string | undefined;
  /** onFrameRejected hears of every frame refused from an authenticated peer (the node counts them in its metrics). */
  readonly onFrameRejected?: (peer: NodeId, code: FrameRejectionCode) => void;
  /**
   * tls: the peer link is mutual TLS (peers are wss:// URLs, the server is an https.Server that
   * asks for client certificates). An inbound peer must show a certificate from the CA, naming the
   * member id it then claims; a dialled peer must show one naming the member dialled (and valid
   * for its host). Read at every dial, so a reloaded certificate is used from the next connection on.
   */
  readonly tls?: () => PeerTlsOptions;
}

/** TransportOptionsError is thrown by the constructor for options that cannot work (a configuration error). */
export class TransportOptionsError extends Error {
  readonly code = "invalid_transport_options";
  constructor(message: string) {
    super(message);
    this.name = "TransportOptionsError";
  }
}

/** WebSocketPeerStatus is one peer's entry in peerStatus(): the PeerTransport fields plus counters for status pages. */
export interface WebSocketPeerStatus {
  /** connected: the outbound connection is authenticated, so messages to this peer go out now. */
  readonly connected: boolean;
  /** inboundConnected: the peer's own connection to this node is authenticated, so its messages can arrive. */
  readonly inboundConnected: boolean;
  /**
   * lastContactMs: when the last frame, welcome or pong came from the peer, as a wall-clock time
   * (Date.now()); measured on the monotonic clock and read against the wall clock now, so that
   * `Date.now() - lastContactMs` is the real time since, whatever the wall clock did meanwhile.
   */
  readonly lastContactMs: number | undefined;
  readonly queuedMessages: number;
  readonly messagesSent: number;
  /** messagesDropped counts messages lost to a full queue, an oversized frame or a failed encoding. */
  readonly messagesDropped: number;
  readonly framesReceived: number;
  /** framesRejected counts frames from this (authenticated) peer that were malformed, spoofed, misaddressed or held an entry this node cannot apply. */
  readonly framesRejected: number;
  /** lastRejection: the latest of those, if any. */
  readonly lastRejection: FrameRejection | undefined;
}

/** TransportCounters are the totals that belong to no configured peer. */
export interface TransportCounters {
  readonly handshakesRefused: Readonly<Partial<Record<HandshakeErrorCode, number>>>;
  /** messagesToUnknownPeer counts send() calls whose `to` is not a configured peer. */
  readonly messagesToUnknownPeer: number;
  readonly upgradesRefused: number;
}

const defaults = {
  pingIntervalMs: 5000,
  garbageFramesMax: 10,
  garbageWindowMs: 10_000,
  pendingHandshakesMax: 16,
  closeTimeoutMs: 1000,
};
/** Warnings about drops repeat at most this often per peer, so a long outage does not flood the log. */
const dropWarningIntervalMs = 5000;
const GOING_AWAY = 1001;
/** REPLACED closes an older inbound connection when the same peer authenticates a new one (private range 4000–4999). */
const REPLACED = 4000;

/** Resolved are the options with every default filled in. */
type Resolved = Required<
  Omit<WebSocketTransportOptions, "entriesPerFrameMax" | "bufferedBytesMax" | "checkEntryData" | "onFrameRejected" | "tls">
> &
  Pick<WebSocketTransportOptions, "checkEntryData" | "onFrameRejected" | "tls"> & {
    readonly bufferedBytesMax: number;
    readonly limits: FrameLimits;
  };

/** OutboundPeer is the sending side of one peer: its dialed socket, queue, backoff and counters. */
interface OutboundPeer {
  readonly id: NodeId;
  readonly url: string;
  socket: WebSocket | undefined;
  /** ready: the socket finished the handshake and is open. */
  ready: boolean;
  queue: RaftMessage[];
  reconnectAttempt: number;
  reconnectTimer: NodeJS.Timeout | undefined;
  pingTimer: NodeJS.Timeout | undefined;
  awaitingPong: boolean;
  /** lastContactAtMs and lastDropWarningAtMs are on the monotonic clock (options.nowMs). */
  lastContactAtMs: number | undefined;
  lastDropWarningAtMs: number;
  messagesSent: number;
  messagesDropped: number;
  framesReceived: number;
  framesRejected: number;
  lastRejection: FrameRejection | undefined;
  /** lastRejectionLogMs and rejectionsUnlogged: refusals are logged at most once per dropWarningIntervalMs, with a count of the rest. */
  lastRejectionLogMs: number;
  rejectionsUnlogged: number;
  /** lastDialError: why the current dial failed, if it did (a refused certificate is warned about). */
  lastDialError: Error | undefined;
  /** readyAtMs: when the socket last became ready (monotonic), to redial a long-lived link at once when it breaks. */
  readyAtMs: number;
}

/** GarbageWindow counts malformed frames on one inbound connection within a fixed window. */
interface GarbageWindow {
  startMs: number;
  count: number;
}

/**
 * backoffDelayMs is the wait before reconnect attempt `attempt` (0-based): exponential backoff
 * with full jitter, drawn uniformly from [baseMs, min(maxMs, baseMs · 2^attempt)]. The floor is
 * baseMs rather than 0 so that a peer that refuses at once is never redialled in a busy loop.
 */
export function backoffDelayMs(attempt: number, bounds: { readonly baseMs: number; readonly maxMs: number }, random: () => number): number {
  const ceilingMs = Math.min(bounds.maxMs, bounds.baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(bounds.baseMs + random() * (ceilingMs - bounds.baseMs));
}

function resolveOptions(options: WebSocketTransportOptions): Resolved {
  const resolved: Resolved = {
    ...defaults,
    random: Math.random,
    nowMs: () => performance.now(),
    wallNowMs: () => Date.now(),
    ...options,
    bufferedBytesMax: options.bufferedBytesMax ?? Math.max(4 * 1024 * 1024, 2 * options.frameBytesMax),
    limits: {
      ...frameLimitsDefaults,
      frameBytesMax: options.frameBytesMax,
      entriesPerFrameMax: options.entriesPerFrameMax ?? frameLimitsDefaults.entriesPerFrameMax,
    },
  };
  const positive = [
    "frameBytesMax",
    "queueMessagesMax",
    "reconnectBaseMs",
    "reconnectMaxMs",
    "handshakeTimeoutMs",
    "bufferedBytesMax",
    "pingIntervalMs",
    "garbageFramesMax",
    "garbageWindowMs",
    "pendingHandshakesMax",
    "closeTimeoutMs",
  ] as const;
  for (const name of positive) {
    if (!Number.isSafeInteger(resolved[name]) || resolved[name] <= 0) throw new TransportOptionsError(`${name} must be a positive integer`);
  }
  if (resolved.reconnectBaseMs > resolved.reconnectMaxMs) throw new TransportOptionsError("reconnectBaseMs must not exceed reconnectMaxMs");
  if (resolved.clusterSecret.length === 0) throw new TransportOptionsError("clusterSecret must not be empty");
  for (const [id, url] of resolved.peers) {
    const scheme = resolved.tls === undefined ? "ws:" : "wss:";
    if (!URL.canParse(url) || new URL(url).protocol !== scheme) {
      throw new TransportOptionsError(
        `the URL of peer ${id} is not a ${scheme}// URL${resolved.tls === undefined ? "" : " (the link is TLS)"}: ${url}`,
      );
    }
  }
  return resolved;
}

/**
 * WebSocketTransport implements PeerTransport over WebSockets. It dials every peer as soon as it
 * is constructed; call `handleUpgrade(server)` to receive on the node's HTTP server, and `close()`
 * to stop. The handler registered with `onMessage` sees only messages from authenticated peers,
 * whose `from` is the authenticated peer and whose `to` is this node.
 */
export class WebSocketTransport implements PeerTransport {
  private readonly options: Resolved;
  private readonly logger: Logger;
  private readonly outbound = new Map<NodeId, OutboundPeer>();
  /** inbound holds the authenticated connection each peer dialed to this node (at most one per peer). */
  private readonly inbound = new Map<NodeId, WebSocket>();
  /** inboundSockets holds every accepted socket, authenticated or not, so that close() can close them all. */
  private readonly inboundSockets = new Set<WebSocket>();
  private pendingHandshakes = 0;
  private handler: ((message: RaftMessage) => void) | undefined;
  private refusedHandler: ((peer: NodeId) => void) | undefined;
  private server: WebSocketServer | undefined;
  private readonly detachers: (() => void)[] = [];
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly handshakesRefused: Partial<Record<HandshakeErrorCode, number>> = {};
  private messagesToUnknownPeer = 0;
  private upgradesRefused = 0;

  constructor(options: WebSocketTransportOptions) {
    this.options = resolveOptions(options);
    this.logger = options.logger.child({ component: "peer-transport", nodeId: options.nodeId });
    for (const [id, url] of options.peers) {
      if (id === options.nodeId) continue;
      this.outbound.set(id, newOutboundPeer(id, url));
    }
    for (const peer of this.outbound.values()) this.dial(peer);
  }

  /** send queues `message` for its `to` peer and writes what the socket can take now. It never throws. */
  send(message: RaftMessage): void {
    if (this.closed) return;
    const peer = this.outbound.get(message.to);
    if (peer === undefined) {
      this.messagesToUnknownPeer++;
      return;
    }
    peer.queue.push(message);
    if (peer.queue.length > this.options.queueMessagesMax) {
      peer.queue.shift();
      this.countDrop(peer, "queue_full");
    }
    this.flush(peer);
  }

  /** onMessage sets the handler for messages from authenticated peers (replacing any earlier one). */
  onMessage(handler: (message: RaftMessage) => void): void {
    this.handler = handler;
  }

  /** onPeerRefused sets the handler for a dial that found nothing listening at a peer's address (ECONNREFUSED). */
  onPeerRefused(handler: (peer: NodeId) => void): void {
    this.refusedHandler = handler;
  }

  /** peerStatus reports every configured peer (never this node itself), with counters since construction. */
  peerStatus(): ReadonlyMap<NodeId, WebSocketPeerStatus> {
    const status = new Map<NodeId, WebSocketPeerStatus>();
    const nowMs = this.options.nowMs();
    const wallNowMs = this.options.wallNowMs();
    for (const peer of this.outbound.values()) {
      status.set(peer.id, {
        connected: peer.ready,
        inboundConnected: this.inbound.has(peer.id),
        lastContactMs: peer.lastContactAtMs === undefined ? undefined : wallNowMs - (nowMs - peer.lastContactAtMs),
        queuedMessages: peer.queue.length,
        messagesSent: peer.messagesSent,
        messagesDropped: peer.messagesDropped,
        framesReceived: peer.framesReceived,
        framesRejected: peer.framesRejected,
        lastRejection: peer.lastRejection,
      });
    }
    return status;
  }

  /** counters reports what belongs to no configured peer: refused handshakes (either side), unknown recipients, refused upgrades. */
  counters(): TransportCounters {
    return {
      handshakesRefused: { ...this.handshakesRefused },
      messagesToUnknownPeer: this.messagesToUnknownPeer,
      upgradesRefused: this.upgradesRefused,
    };
  }

  /**
   * handleUpgrade accepts peer connections on `server`'s upgrade requests for `path`, so that
   * the node serves HTTP and its peers on one port. Upgrades for other paths are left to other
   * listeners, or answered 404 when there is none.
   */
  handleUpgrade(server: Server | HttpsServer, path = "/raft"): void {
    if (this.closed) throw new Error("handleUpgrade after close()");
    this.server ??= new WebSocketServer({
      noServer: true,
      maxPayload: this.options.frameBytesMax,
      perMessageDeflate: false,
      clientTracking: false,
    });
    const wss = this.server;
    const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
      if (requestPath(request) !== path) {
        if (server.listenerCount("upgrade") === 1) refuseUpgrade(socket, 404, "Not Found");
        return;
      }
      if (this.closed || this.pendingHandshakes >= this.options.pendingHandshakesMax) {
        this.upgradesRefused++;
        this.logger.warn({ remoteAddress: remoteAddressOf(request) }, "peer upgrade refused: too many pending handshakes or closing");
        refuseUpgrade(socket, 503, "Service Unavailable");
        return;
      }
      const certified = this.certifiedPeerOf(request);
      if (certified !== undefined && "refused" in certified) {
        this.countHandshakeRefusal("untrusted_certificate");
        this.logger.warn(
          { remoteAddress: remoteAddressOf(request), code: "untrusted_certificate", detail: certified.refused },
          "peer handshake refused",
        );
        refuseUpgrade(socket, 401, "Unauthorized");
        return;
      }
      wss.handleUpgrade(request, socket, head, (ws) => this.acceptInbound(ws, remoteAddressOf(request), certified?.peer));
    };
    server.on("upgrade", onUpgrade);
    this.detachers.push(() => server.off("upgrade", onUpgrade));
  }

  /** close stops reconnecting, closes every socket and resolves once all of them are closed. Calling it again returns the same promise. */
  close(): Promise<void> {
    if (this.closing === undefined) {
      // Set before any socket is touched, so a close event fired along the way does not redial.
      this.closed = true;
      this.closing = this.closeAll();
    }
    return this.closing;
  }

  private async closeAll(): Promise<void> {
    for (const detach of this.detachers) detach();
    const sockets: WebSocket[] = [...this.inboundSockets];
    for (const peer of this.outbound.values()) {
      clearTimeout(peer.reconnectTimer);
      clearInterval(peer.pingTimer);
      peer.queue = [];
      if (peer.socket !== undefined) sockets.push(peer.socket);
    }
    await Promise.all(sockets.map((socket) => closeSocket(socket, this.options.closeTimeoutMs)));
    this.server?.close();
  }

  // -------------------------------------------------------------------------------------------
  // Outbound: dial, handshake, send, ping, reconnect.

  /**
   * certifiedPeerOf: over TLS, the member id the client's verified certificate names, or why the
   * upgrade is refused (no certificate, one the CA did not issue, one without a name); undefined
   * without TLS.
   */
  private certifiedPeerOf(request: IncomingMessage): { readonly peer: string } | { readonly refused: string } | undefined {
    if (this.options.tls === undefined) return undefined;
    const socket = request.socket as TLSSocket;
    if (socket.encrypted !== true) return { refused: "a plaintext connection to a TLS peer link" };
    if (!socket.authorized)
      return { refused: `no client certificate from the cluster's CA (${String(socket.authorizationError ?? "none")})` };
    const name = commonNameOf(socket.getPeerCertificate());
    return name === undefined ? { refused: "the client certificate names no member (CN)" } : { peer: name };
  }

  private dial(peer: OutboundPeer): void {
    peer.reconnectTimer = undefined;
    if (this.closed) return;
    let socket: WebSocket;
    try {
      socket = new WebSocket(peer.url, {
        ...this.dialTlsOptions(peer),
        maxPayload: this.options.frameBytesMax,
        handshakeTimeout: this.options.handshakeTimeoutMs,
        perMessageDeflate: false,
        // A zero mask: masking (RFC 6455 §10.3) keeps scripts in browsers from shaping bytes that
        // a caching proxy could misread. A peer link has no browser and no proxy, and a zero mask
        // is a valid one that lets ws skip a random mask and a copy of every frame.
        generateMask: (mask: Buffer) => {
          mask.fill(0);
        },
      });
    } catch (error) {
      this.logger.error({ err: error, peer: peer.id, url: peer.url }, "cannot dial peer");
      this.scheduleReconnect(peer);
      return;
    }
    peer.socket = socket;
    peer.lastDialError = undefined;
    socket.on("error", (error) => {
      peer.lastDialError = error;
      this.logger.debug({ err: error, peer: peer.id }, "outbound peer socket error");
    });
    socket.on("close", (code, reason) => this.onOutboundClosed(peer, socket, code, reason.toString()));
    socket.on("pong", () => {
      peer.awaitingPong = false;
      peer.lastContactAtMs = this.options.nowMs();
    });
    dialHandshake(socket, { ...this.handshakeOptions(peer.url), peer: peer.id }, () => this.onOutboundReady(peer, socket));
  }

  private onOutboundReady(peer: OutboundPeer, socket: WebSocket): void {
    peer.ready = true;
    peer.readyAtMs = this.options.nowMs();
    peer.reconnectAttempt = 0;
    peer.lastContactAtMs = this.options.nowMs();
    peer.awaitingPong = false;
    this.logger.info({ peer: peer.id, url: peer.url }, "connected to peer");
    // The acceptor sends nothing after its welcome; anything else is a confused peer, not data.
    socket.on("message", () => peer.framesRejected++);
    peer.pingTimer = setInterval(() => {
      // A silent network (a partition, a dead host) keeps TCP open for minutes; the ping finds out.
      if (peer.awaitingPong) {
        this.logger.warn({ peer: peer.id }, "peer missed a pong; reconnecting");
        socket.terminate();
        return;
      }
      peer.awaitingPong = true;
      socket.ping();
    }, this.options.pingIntervalMs);
    peer.pingTimer.unref();
    this.flush(peer);
  }

  private onOutboundClosed(peer: OutboundPeer, socket: WebSocket, code: number, reason: string): void {
    if (peer.socket !== socket) return;
    const wasReady = peer.ready;
    peer.socket = undefined;
    peer.ready = false;
    clearInterval(peer.pingTimer);
    peer.pingTimer = undefined;
    if (this.closed) return;
    if (wasReady) this.logger.warn({ peer: peer.id, code, reason }, "connection to peer lost; reconnecting");
    // A peer that refuses our handshake (a different secret, or we are not in its peer list) will
    // refuse every retry: say so, but only on attempts 1, 2, 4, 8… so the log does not fill up.
    const attempt = peer.reconnectAttempt;
    if (!wasReady && code === POLICY_VIOLATION && (attempt & (attempt + 1)) === 0) {
      this.logger.warn(
        { peer: peer.id, url: peer.url, reason, attempt },
        "peer refused our handshake; check the cluster secret and its peer list",
      );
    }
    const certificateProblem = wasReady ? undefined : certificateProblemOf(peer.lastDialError);
    if (certificateProblem !== undefined) {
      this.countHandshakeRefusal(certificateProblem.code);
      if ((attempt & (attempt + 1)) === 0) {
        this.logger.warn(
          { peer: peer.id, url: peer.url, code: certificateProblem.code, detail: certificateProblem.detail, attempt },
          "peer TLS refused; check the certificates and the CA",
        );
      }
    }
    // Nothing listens at the peer's address: its process is gone. The core hears of it (a
    // follower whose leader that is campaigns without waiting out the election timeout).
    if (!wasReady && (peer.lastDialError as NodeJS.ErrnoException | undefined)?.code === "ECONNREFUSED") this.refusedHandler?.(peer.id);
    // A link that was up for a while and broke is redialled at once, not after the backoff's
    // floor: a peer whose process died refuses now, and says so a reconnectBaseMs sooner (a
    // leader's kill -9 to its followers' elections); a peer that is alive is back sooner. Only
    // after reconnectBaseMs of being up, so a link that breaks as soon as it is made is never
    // redialled in a loop.
    const wasUpLongMs = wasReady && this.options.nowMs() - peer.readyAtMs >= this.options.reconnectBaseMs;
    this.scheduleReconnect(peer, wasUpLongMs);
  }

  /**
   * dialTlsOptions: over TLS, this node's certificate and key and the CA, and a check that the
   * peer's certificate is valid for the host dialled and names the member dialled; else nothing.
   */
  private dialTlsOptions(peer: OutboundPeer): ClientOptions {
    if (this.options.tls === undefined) return {};
    const { ca, cert, key } = this.options.tls();
    const check = (host: string, certificate: PeerCertificate): Error | undefined => {
      const hostProblem = checkServerIdentity(host, certificate);
      if (hostProblem !== undefined) return hostProblem;
      const name = commonNameOf(certificate);
      if (name === peer.id) return undefined;
      return Object.assign(new Error(`the certificate at ${peer.url} names ${name ?? "no member"}, not ${peer.id}`), {
        code: peerCertificateMismatch,
      });
    };
    // ws hands these to tls.connect, whose checkServerIdentity answers an Error or undefined
    // (@types/ws declares a boolean, which tls.connect would not read).
    return { ca, cert, key, minVersion: "TLSv1.2", checkServerIdentity: check } as unknown as ClientOptions;
  }

  private countHandshakeRefusal(code: HandshakeErrorCode): void {
    this.handshakesRefused[code] = (this.handshakesRefused[code] ?? 0) + 1;
  }

  private scheduleReconnect(peer: OutboundPeer, atOnce = false): void {
    const bounds = { baseMs: this.options.reconnectBaseMs, maxMs: this.options.reconnectMaxMs };
    const delayMs = atOnce ? 0 : backoffDelayMs(peer.reconnectAttempt, bounds, this.options.random);
    if (!atOnce) peer.reconnectAttempt++;
    this.logger.debug({ peer: peer.id, attempt: peer.reconnectAttempt, delayMs }, "reconnecting to peer");
    peer.reconnectTimer = setTimeout(() => this.dial(peer), delayMs);
    peer.reconnectTimer.unref();
  }

  /**
   * flush writes queued messages while the socket is ready and not backed up. It runs again from
   * each write's callback, so a backed-up queue drains as the socket does. Bounded by the queue.
   */
  private flush(peer: OutboundPeer): void {
    const socket = peer.socket;
    if (!peer.ready || socket === undefined) return;
    while (peer.queue.length > 0 && socket.readyState === WebSocket.OPEN && socket.bufferedAmount < this.options.bufferedBytesMax) {
      const message = peer.queue.shift()!;
      let frame: Uint8Array;
      try {
        frame = encodeFrame(message);
      } catch (error) {
        this.logger.error({ err: error, peer: peer.id, type: message.type }, "cannot encode a Raft message; dropped");
        this.countDrop(peer, "encode_failed");
        continue;
      }
      if (frame.byteLength > this.options.frameBytesMax) {
        // The peer would close the connection on a frame over its maxPayload: drop this one message instead.
        this.logger.error(
          { peer: peer.id, type: message.type, frameBytes: frame.byteLength },
          "Raft message exceeds frameBytesMax; dropped",
        );
        this.countDrop(peer, "frame_too_large");
        continue;
      }
      peer.messagesSent++;
      socket.send(frame, (error) => {
        if (error === undefined || error === null) this.flush(peer);
      });
    }
  }

  private countDrop(peer: OutboundPeer, reason: "queue_full" | "encode_failed" | "frame_too_large"): void {
    peer.messagesDropped++;
    const nowMs = this.options.nowMs();
    if (reason === "queue_full" && nowMs - peer.lastDropWarningAtMs < dropWarningIntervalMs) return;
    peer.lastDropWarningAtMs = nowMs;
    this.logger.warn({ peer: peer.id, reason, messagesDropped: peer.messagesDropped }, "dropping messages for peer");
  }

  // -------------------------------------------------------------------------------------------
  // Inbound: handshake, then Raft frames to the handler.

  private acceptInbound(socket: WebSocket, remoteAddress: string, certifiedPeer: string | undefined): void {
    this.inboundSockets.add(socket);
    this.pendingHandshakes++;
    let pending = true;
    const settle = (): void => {
      if (pending) this.pendingHandshakes--;
      pending = false;
    };
    socket.on("error", (error) => this.logger.debug({ err: error, remoteAddress }, "inbound peer socket error"));
    socket.on("close", () => {
      settle();
      this.inboundSockets.delete(socket);
    });
    const isPeer = (id: NodeId): boolean => this.outbound.has(id);
    const certified = certifiedPeer === undefined ? {} : { certifiedPeer };
    acceptHandshake(socket, { ...this.handshakeOptions(remoteAddress), isPeer, ...certified }, (peer) => {
      settle();
      this.onInboundAccepted(socket, peer, remoteAddress);
    });
  }

  private onInboundAccepted(socket: WebSocket, peerId: NodeId, remoteAddress: string): void {
    const peer = this.outbound.get(peerId)!; // acceptHandshake admits configured peers only
    const previous = this.inbound.get(peerId);
    // A new connection from the same peer means the old one is dead or dying (the peer restarted
    // or reconnected); keeping one per peer bounds the inbound sockets by the peer count.
    if (previous !== undefined) previous.close(REPLACED, "replaced by a newer connection");
    this.inbound.set(peerId, socket);
    socket.on("close", () => {
      if (this.inbound.get(peerId) === socket) this.inbound.delete(peerId);
    });
    peer.lastContactAtMs = this.options.nowMs();
    this.logger.info({ peer: peerId, remoteAddress }, "peer connected to us");
    const garbage: GarbageWindow = { startMs: this.options.nowMs(), count: 0 };
    socket.on("message", (data: RawData, isBinary: boolean) => this.onInboundFrame(peer, socket, garbage, rawDataBytes(data, isBinary)));
  }

  private onInboundFrame(peer: OutboundPeer, socket: WebSocket, garbage: GarbageWindow, bytes: Uint8Array | undefined): void {
    if (this.closed) return;
    if (bytes === undefined) {
      this.rejectFrame(peer, socket, garbage, "malformed_frame", "a text frame");
      return;
    }
    const decoded = decodeFrame(bytes, this.options.limits);
    if (!decoded.ok) {
      this.rejectFrame(peer, socket, garbage, decoded.code, decoded.reason);
      return;
    }
    const message = decoded.message;
    // The handshake proved who is on this connection; a `from` that disagrees is spoofed or confused.
    if (message.from !== peer.id) {
      this.rejectFrame(peer, socket, garbage, "wrong_sender", `from ${message.from}`);
      return;
    }
    if (message.to !== this.options.nodeId) {
      this.rejectFrame(peer, socket, garbage, "wrong_recipient", `to ${message.to}`);
      return;
    }
    const badEntry = this.checkEntries(message);
    if (badEntry !== undefined) {
      this.rejectFrame(peer, socket, garbage, "invalid_entry", badEntry);
      return;
    }
    peer.framesReceived++;
    peer.lastContactAtMs = this.options.nowMs();
    // A handler that throws (a RaftInvariantError) is not caught here: a broken invariant must stop the node.
    this.handler?.(message);
  }

  /** checkEntries: why an append_entries holds an entry this node could not apply, or undefined. */
  private checkEntries(message: RaftMessage): string | undefined {
    const check = this.options.checkEntryData;
    if (check === undefined || message.type !== "append_entries") return undefined;
    for (const entry of message.entries) {
      if (entry.kind !== "normal") continue;
      const problem = check(entry.data);
      if (problem !== undefined) return `entry ${entry.index} (term ${entry.term}): ${problem}`;
    }
    return undefined;
  }

  /**
   * rejectFrame refuses one bad frame: counted, remembered for the status page, reported to
   * onFrameRejected, and logged at error (a peer that holds the cluster secret sent it, so it is a
   * bug or incompatible code, never noise), at most once per dropWarningIntervalMs per peer with a
   * count of the others. Too many within the window close the connection.
   */
  private rejectFrame(peer: OutboundPeer, socket: WebSocket, garbage: GarbageWindow, code: FrameRejectionCode, reason: string): void {
    peer.framesRejected++;
    const nowMs = this.options.nowMs();
    peer.lastRejection = { code, reason, atMs: this.options.wallNowMs() };
    this.options.onFrameRejected?.(peer.id, code);
    if (nowMs - garbage.startMs > this.options.garbageWindowMs) {
      garbage.startMs = nowMs;
      garbage.count = 0;
    }
    garbage.count++;
    if (nowMs - peer.lastRejectionLogMs >= dropWarningIntervalMs) {
      this.logger.error(
        {
          event: "peer_frame_refused",
          peer: peer.id,
          code,
          reason,
          framesRejected: peer.framesRejected,
          notLogged: peer.rejectionsUnlogged,
        },
        `refused a frame from peer ${peer.id}: ${code}: ${reason}`,
      );
      peer.lastRejectionLogMs = nowMs;
      peer.rejectionsUnlogged = 0;
    } else {
      peer.rejectionsUnlogged++;
    }
    if (garbage.count > this.options.garbageFramesMax && socket.readyState === WebSocket.OPEN) {
      this.logger.warn({ peer: peer.id, framesRejected: garbage.count }, "too many bad frames from peer; closing its connection");
      socket.close(POLICY_VIOLATION, "too many bad frames");
    }
  }

  private handshakeOptions(remoteAddress: string): HandshakeOptions {
    return {
      nodeId: this.options.nodeId,
      clusterSecret: this.options.clusterSecret,
      handshakeTimeoutMs: this.options.handshakeTimeoutMs,
      logger: this.logger,
      remoteAddress,
      onFailure: (code: HandshakeErrorCode) => this.countHandshakeRefusal(code),
    };
  }
}

function newOutboundPeer(id: NodeId, url: string): OutboundPeer {
  return {
    id,
    url,
    socket: undefined,
    ready: false,
    queue: [],
    reconnectAttempt: 0,
    reconnectTimer: undefined,
    pingTimer: undefined,
    awaitingPong: false,
    lastContactAtMs: undefined,
    lastDropWarningAtMs: Number.NEGATIVE_INFINITY,
    messagesSent: 0,
    messagesDropped: 0,
    framesReceived: 0,
    framesRejected: 0,
    lastRejection: undefined,
    lastRejectionLogMs: Number.NEGATIVE_INFINITY,
    rejectionsUnlogged: 0,
    lastDialError: undefined,
    readyAtMs: Number.NEGATIVE_INFINITY,
  };
}

/** peerCertificateMismatch: the error code of a dialled peer whose certificate names another member. */
const peerCertificateMismatch = "SCTEC_PEER_CERTIFICATE_MISMATCH";

/** commonNameOf: the subject's CN of a certificate, the member id it names (undefined if none, or several). */
function commonNameOf(certificate: PeerCertificate | undefined): string | undefined {
  const name = (certificate?.subject as Record<string, unknown> | undefined)?.["CN"];
  return typeof name === "string" && name.length > 0 ? name : undefined;
}

/** certificateErrorCodes: how a failed TLS verification of the peer's certificate shows in a dial's error. */
const certificateErrorCodes = new Set([
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "CERT_SIGNATURE_FAILURE",
  "CERT_UNTRUSTED",
]);

/**
 * certificateProblemOf: whether a failed dial was a certificate refused, by us (the peer's) or by
 * the peer (ours: it answers the upgrade 401), as a handshake error code; undefined for anything
 * else (a peer that is down is no news).
 */
function certificateProblemOf(error: Error | undefined): { code: HandshakeErrorCode; detail: string } | undefined {
  if (error === undefined) return undefined;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === peerCertificateMismatch) return { code: "certificate_mismatch", detail: error.message };
  if (code !== undefined && certificateErrorCodes.has(code)) return { code: "untrusted_certificate", detail: `${code}: ${error.message}` };
  if (/Unexpected server response: 401/.test(error.message)) {
    return { code: "untrusted_certificate", detail: "the peer refused our client certificate (401)" };
  }
  return undefined;
}

function requestPath(request: IncomingMessage): string | undefined {
  const url = request.url ?? "/";
  return URL.canParse(url, "http://localhost") ? new URL(url, "http://localhost").pathname : undefined;
}

function remoteAddressOf(request: IncomingMessage): string {
  return `${request.socket.remoteAddress ?? "unknown"}:${request.socket.remotePort ?? 0}`;
}

function refuseUpgrade(socket: Duplex, status: number, text: string): void {
  socket.on("error", () => {}); // A client that resets now must not crash the node; there is nothing left to do.
  socket.once("finish", () => socket.destroy());
  socket.end(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** closeSocket closes politely and cuts the socket if the other end does not finish the closing handshake in time. */
function closeSocket(socket: WebSocket, timeoutMs: number): Promise<void> {
  if (socket.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => socket.terminate(), timeoutMs);
    socket.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    if (socket.readyState === WebSocket.OPEN) socket.close(GOING_AWAY, "node shutting down");
    else if (socket.readyState === WebSocket.CONNECTING) socket.terminate();
  });
}
