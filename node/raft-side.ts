// startRaftSide builds a lock node's Raft side in the calling thread, from its configuration: the
// LevelDB log, the peer transport with its own server (SCTEC_RAFT_LISTEN), the LockService (and
// its RaftDriver), the Raft side's metrics, the status timeline and the status page's local part,
// and answers a LocalRaftHost over them. The raft thread (raft-thread.ts) calls it; nothing here
// knows of threads.

import { randomInt } from "node:crypto";
import { createServer, type RequestListener, type Server } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { Logger } from "pino";
import { serverTlsOptions } from "../config/tls.ts";
import { checkCommandBytes } from "../lock/codec.ts";
import { lockLimitsDefaults } from "../lock/lock-state-machine.ts";
import type { Credential } from "../lock/types.ts";
import { createSeededRandom, type NodeId, nodeId, type Ready, raftConfigDefaults } from "../raft/index.ts";
import type { NodeConfig } from "./config.ts";
import { DiskFullError } from "./contracts.ts";
import { systemClock } from "./driver/clock.ts";
import { combineObservers, type HostObserver } from "./host-observer.ts";
import { LockService } from "./lock-service.ts";
import type { LoopLag } from "./loop-lag.ts";
import { NodeMetrics } from "./metrics.ts";
import { LevelDurableLog } from "./persistence/level-durable-log.ts";
import { LocalRaftHost } from "./raft-host.ts";
import { StatusSource } from "./status/status-source.ts";
import { StatusTimeline } from "./status/status-timeline.ts";
import { type PeerTlsOptions, WebSocketTransport } from "./transport/websocket-transport.ts";

export interface RaftSideOptions {
  readonly config: NodeConfig;
  readonly logger: Logger;
  /** loopLag: this thread's event-loop lag (loop-lag.ts), for /metrics. */
  readonly loopLag: () => LoopLag;
  /** onLeaderChange hears every change of the leader this node knows (the raft thread mirrors it to the HTTP side). */
  readonly onLeaderChange: (leaderId: NodeId | null) => void;
  /**
   * onCredentialsChange hears the whole credential table whenever an applied entry or a snapshot
   * changed it (and once at start): the HTTP thread keeps a copy to let requests in without a
   * round trip (node/api-auth.ts; what makes a revocation hold is checked here, on this side).
   */
  readonly onCredentialsChange?: (credentials: readonly Credential[]) => void;
  /** tls: the peer link's certificate, key and CA (mutual TLS), read and checked by the HTTP thread; none: plain. */
  readonly tls?: PeerTlsOptions;
}

/**
 * startRaftSide opens the data directory (DataDirError when it cannot be used), starts the peer
 * server and the service, and answers once the node runs. Its host's stop() closes all of it.
 */
export async function startRaftSide(options: RaftSideOptions): Promise<LocalRaftHost> {
  const { config, logger } = options;
  const id = nodeId(config.nodeId);
  const durableLog = await openWaitingForSpace(config, logger);
  // The gauges read the service at scrape time; it exists by the time anyone can scrape.
  let serviceForMetrics: LockService | undefined;
  const metrics = new NodeMetrics({
    nodeId: config.nodeId,
    appendsTrackedMax: 100_000,
    source: {
      status: () => (serviceForMetrics as LockService).status(),
      leaseCounts: () => {
        const machine = (serviceForMetrics as LockService).localState();
        return { leases: machine.leases().length, waiters: machine.waitersNow().length };
      },
    },
  });
  /** peerTls: what the peer link serves and dials with now (useTls swaps it on a reload). */
  let peerTls = options.tls as PeerTlsOptions;
  const transport = new WebSocketTransport({
    nodeId: id,
    peers: new Map([...config.raftPeerUrls].map(([peer, url]) => [nodeId(peer), url])),
    clusterSecret: config.clusterSecret,
    frameBytesMax: config.frameBytesMax,
    queueMessagesMax: 10_000,
    reconnectBaseMs: 50,
    reconnectMaxMs: 1000,
    handshakeTimeoutMs: 2000,
    logger: logger.child({ component: "transport" }),
    // A follower never appends an entry it could not apply: it refuses the frame, and says so
    // (metric, error log, status page). docs/DESIGN.md, "An entry a node cannot decode".
    checkEntryData: checkCommandBytes,
    onFrameRejected: (peer, code) => metrics.frameRejected(peer, code),
    ...(options.tls === undefined ? {} : { tls: () => peerTls }),
  });
  const peerServer = await listenForPeers(config, transport, options.tls).catch(async (error: unknown) => {
    await transport.close();
    await durableLog.close();
    throw error;
  });
  const longestElectionMs = 2 * config.electionTimeoutTicks * config.tickIntervalMs;
  const timeline = new StatusTimeline({ eventsMax: config.statusTimelineEventsMax, wallNowMs: () => Date.now() });
  const service = await LockService.start({
    nodeId: id,
    raft: {
      ...raftConfigDefaults,
      electionTimeoutTicks: config.electionTimeoutTicks,
      heartbeatIntervalTicks: config.heartbeatIntervalTicks,
      random: createSeededRandom(randomInt(0x7fff_ffff)),
    },
    bootstrapVoters: config.join ? [] : (config.founders ?? [...config.peers.keys()]).map(nodeId),
    tickIntervalMs: config.tickIntervalMs,
    durableLog: metrics.instrumentDurableLog(durableLog),
    transport,
    // A lease must outlast the longest failover: TTLs start at 1.5 × the longest election timeout.
    lockLimits: { ...lockLimitsDefaults, ttlMsMin: Math.ceil(1.5 * longestElectionMs) },
    snapshotIntervalEntries: config.snapshotIntervalEntries,
    proposalTimeoutMs: 5000,
    pendingRequestsMax: 10_000,
    // Profiles of the raft thread under bench:overload (load average 40, profiler on) showed turns
    // of 256 entries taking about 100 ms of CPU, more than the 30 ms between heartbeats; 64 keeps
    // a turn a quarter of that, and group commit still puts up to 64 entries behind one fsync.
    inputsPerTurnMax: 64,
    watchEventsMax: config.watchEventsMax,
    watchBytesMax: config.watchBytesMax,
    watchersMax: config.watchersMax,
    logger,
    clock: systemClock,
    observer: combineObservers(
      metrics,
      timeline,
      leaderWatcher(options.onLeaderChange),
      credentialWatcher(() => (serviceForMetrics as LockService).localState().credentialList(), options.onCredentialsChange),
    ),
  });
  serviceForMetrics = service;
  options.onCredentialsChange?.(service.localState().credentialList());
  timeline.start(service.status());
  const statusSource = new StatusSource({ host: service, transport, timeline, nowMs: () => performance.now() });
  return new LocalRaftHost({
    service,
    transport,
    statusSource,
    metricsText: () => metrics.text(),
    loopLag: options.loopLag,
    ...(options.tls === undefined
      ? {}
      : {
          useTls: (material: PeerTlsOptions) => {
            // New inbound connections get the new certificate; the transport dials with it from the next dial on.
            (peerServer as HttpsServer).setSecureContext(serverTlsOptions(material, { requestClientCertificates: true }));
            peerTls = material;
            logger.info({ event: "peer_tls_reloaded" }, "the peer link's TLS certificate and key reloaded");
          },
        }),
    stopSide: async () => {
      peerServer.closeAllConnections();
      peerServer.close();
      await transport.close();
      await durableLog.close();
    },
  });
}

/**
 * openWaitingForSpace opens the durable log, and waits while the disk is too full to open it
 * (opening replays the write-ahead log into a new table file, so a node restarted on a full disk
 * cannot open at all): it tries again after 50 ms, doubling up to a second, as a running node
 * waits for space to write (node/driver/raft-driver.ts, write). Bounded by the process's life:
 * SIGTERM or SIGINT end the wait (main.ts: nothing is open yet). Found by npm run chaos: such a
 * node exited instead.
 */
async function openWaitingForSpace(config: NodeConfig, logger: Logger): Promise<LevelDurableLog> {
  let waitingSinceMs: number | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      const log = await LevelDurableLog.open({ dataDir: config.dataDir, clusterId: config.clusterId, nodeId: config.nodeId });
      if (waitingSinceMs !== undefined) {
        const waitedMs = Math.round(performance.now() - waitingSinceMs);
        logger.warn({ event: "disk_space_back", waitedMs }, `the disk has space again after ${waitedMs} ms; starting`);
      }
      return log;
    } catch (error) {
      if (!(error instanceof DiskFullError)) throw error;
      waitingSinceMs ??= performance.now();
      if (attempt % 20 === 0) {
        logger.error(
          { event: "disk_full", attempt, err: error },
          "the disk is full, so the data directory cannot be opened: waiting for space before starting",
        );
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(1000, 50 * 2 ** Math.min(attempt, 5))));
    }
  }
}

/**
 * listenForPeers starts the server that takes the peers' Raft connections (/raft), and only those:
 * over TLS an HTTPS server that asks every client for a certificate (the transport refuses an
 * upgrade without one from the CA, or one naming another member).
 */
async function listenForPeers(
  config: NodeConfig,
  transport: WebSocketTransport,
  tls: PeerTlsOptions | undefined,
): Promise<Server | HttpsServer> {
  const listener: RequestListener = (_request, response) => {
    // Plain HTTP is the API's port, not this one.
    response.writeHead(404, { "content-type": "text/plain; charset=utf-8", connection: "close" });
    response.end(
      `this is node ${config.nodeId}'s peer port (Raft over WebSocket at /raft); the API is on ${config.listen.host}:${config.listen.port}\n`,
    );
  };
  const server =
    tls === undefined ? createServer(listener) : createHttpsServer(serverTlsOptions(tls, { requestClientCertificates: true }), listener);
  transport.handleUpgrade(server, "/raft");
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.raftListen.port, config.raftListen.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server;
}

/**
 * credentialWatcher: a HostObserver that hands the credential table to `onChange` after a Ready
 * that changed it: an applied credential entry, or a snapshot restored.
 */
function credentialWatcher(
  credentials: () => readonly Credential[],
  onChange: ((credentials: readonly Credential[]) => void) | undefined,
): HostObserver {
  if (onChange === undefined) return {};
  let changed = false;
  return {
    applied: (_entry, applied) => {
      const status = applied?.result.status;
      if (status === "credential_issued" || status === "credential_revoked") changed = true;
    },
    readyHandled: (ready: Ready) => {
      if (!changed && ready.snapshot === undefined) return;
      changed = false;
      onChange(credentials());
    },
  };
}

/** leaderWatcher: a HostObserver that hears each change of the leader this node knows. */
function leaderWatcher(onLeaderChange: (leaderId: NodeId | null) => void): HostObserver {
  let known: NodeId | null = null;
  return {
    readyHandled: (ready: Ready) => {
      const leaderId = ready.softState?.leaderId;
      if (leaderId === undefined || leaderId === known) return;
      known = leaderId;
      onLeaderChange(leaderId);
    },
  };
}
