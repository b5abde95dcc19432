// The lock node process: `tsx node/main.ts [flags]` (see config.ts for the settings). One port
// serves the HTTP API, /status, /healthz, the status page (`/`, live over /status/live), /metrics
// and the peer WebSocket (/raft), over HTTPS and mutual TLS when configured (tls-host.ts). SIGTERM
// or SIGINT stop it cleanly; SIGHUP reloads the TLS files; a broken Raft invariant crashes it
// loudly (exit 70), as the core's contract asks.

import { randomInt } from "node:crypto";
import { createServer, type RequestListener, type Server } from "node:http";
import type { Server as HttpsServer } from "node:https";
import { destination, type Logger, multistream, pino, transport as pinoTransport } from "pino";
import { TlsMaterialError } from "../config/tls.ts";
import { LockInvariantError } from "../lock/assert.ts";
import { checkCommandBytes } from "../lock/codec.ts";
import { lockLimitsDefaults } from "../lock/lock-state-machine.ts";
import { createSeededRandom, type NodeId, nodeId, RaftInvariantError, raftConfigDefaults } from "../raft/index.ts";
import { ConfigError, loadNodeConfig, type NodeConfig } from "./config.ts";
import { DataDirError } from "./contracts.ts";
import { systemClock } from "./driver/clock.ts";
import { combineObservers } from "./host-observer.ts";
import { createApi, createHotPath, withHotPath } from "./http-api.ts";
import { LockService } from "./lock-service.ts";
import { NodeMetrics } from "./metrics.ts";
import { LevelDurableLog } from "./persistence/level-durable-log.ts";
import { StatusFeed } from "./status/status-feed.ts";
import { createNodeFront } from "./status/status-server.ts";
import { StatusTimeline } from "./status/status-timeline.ts";
import { NodeTls } from "./tls-host.ts";
import { WebSocketTransport } from "./transport/websocket-transport.ts";

/**
 * logBuffering: lines are written in chunks of at least 32 KiB (about 120 lines), so a busy leader
 * makes one write where 4 KiB chunks made eight; the flush below still bounds how long a line waits.
 * sonic-boom requires minLength below maxWrite.
 */
const logBuffering = { sync: false, minLength: 32 * 1024, maxWrite: 64 * 1024 } as const;

function makeLogger(config: NodeConfig): Logger {
  const streams: { stream: NodeJS.WritableStream | ReturnType<typeof destination> }[] = [];
  const buffered: ReturnType<typeof destination>[] = [];
  if (config.logPretty) {
    // pino-pretty is loaded only when asked for: production logs stay JSON.
    streams.push({ stream: pinoTransport({ target: "pino-pretty", options: { colorize: true } }) });
  } else {
    // Buffered, asynchronous writes: a synchronous write per line cost ~15% of a busy leader's CPU.
    buffered.push(destination({ dest: 1, ...logBuffering }));
  }
  if (config.logFile !== undefined) buffered.push(destination({ dest: config.logFile, ...logBuffering, mkdir: true }));
  for (const stream of buffered) streams.push({ stream });
  // A quiet node must not sit on its last lines: whatever is buffered goes out within half a second.
  setInterval(() => {
    for (const stream of buffered) stream.flush();
  }, 500).unref();
  return pino({ base: { service: "lock-node", nodeId: config.nodeId }, timestamp: pino.stdTimeFunctions.isoTime }, multistream(streams));
}

async function main(): Promise<void> {
  let config: NodeConfig;
  try {
    config = loadNodeConfig(process.argv.slice(2), process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = makeLogger(config);
  const tls = loadTls(config, logger);
  const id = nodeId(config.nodeId);
  let durableLog: LevelDurableLog;
  try {
    durableLog = await LevelDurableLog.open({ dataDir: config.dataDir, clusterId: config.clusterId, nodeId: config.nodeId });
  } catch (error) {
    if (error instanceof DataDirError) {
      logger.fatal({ code: error.code }, error.message);
      process.stderr.write(`cannot use data directory ${config.dataDir}: ${error.message}\n`);
      process.exit(3);
    }
    throw error;
  }
  // The gauges read the host at scrape time; it exists by the time anyone can scrape.
  let hostForMetrics: LockService | undefined;
  const metrics = new NodeMetrics({
    nodeId: config.nodeId,
    processMetrics: true,
    appendsTrackedMax: 100_000,
    source: {
      status: () => (hostForMetrics as LockService).status(),
      leaseCounts: () => {
        const machine = (hostForMetrics as LockService).localState();
        return { leases: machine.leases().length, waiters: machine.waitersNow().length };
      },
    },
  });
  const peerWebSocketUrls = new Map<NodeId, string>(
    [...config.peers].map(([peer, url]) => [nodeId(peer), `${url.replace(/^http/, "ws")}/raft`]),
  );
  const transport = new WebSocketTransport({
    nodeId: id,
    peers: peerWebSocketUrls,
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
    ...(tls === undefined ? {} : { tls: () => tls.peerTls() }),
  });
  const longestElectionMs = 2 * config.electionTimeoutTicks * config.tickIntervalMs;
  const timeline = new StatusTimeline({ eventsMax: config.statusTimelineEventsMax, wallNowMs: () => Date.now() });
  const host = await LockService.start({
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
    watchEventsMax: config.watchEventsMax,
    watchBytesMax: config.watchBytesMax,
    watchersMax: config.watchersMax,
    logger,
    clock: systemClock,
    observer: combineObservers(metrics, timeline),
  });
  hostForMetrics = host;
  timeline.start(host.status());
  const feed = new StatusFeed({
    host,
    transport,
    timeline,
    peerUrls: config.peers,
    ...(config.statusLinks === undefined ? {} : { linkUrls: config.statusLinks }),
    bookingUrl: config.bookingUrl,
    viewersMax: config.statusViewersMax,
    leasesShownMax: config.statusLeasesMax,
    pushIntervalMs: config.statusPushMs,
    peerPollIntervalMs: config.statusPeerPollMs,
    peerPollTimeoutMs: Math.min(800, config.statusPeerPollMs),
    // A follower hears from its leader every heartbeat; twice the longest election timeout of silence means trouble.
    staleAfterMs: Math.max(1000, 2 * longestElectionMs),
    nowMs: () => performance.now(),
    wallNowMs: () => Date.now(),
    logger: logger.child({ component: "status-feed" }),
    ...(tls === undefined ? {} : { dispatcher: () => tls.dispatcher() }),
  });
  const apiOptions = {
    host,
    transport,
    apiToken: config.apiToken,
    clusterSecret: config.clusterSecret,
    peerUrls: config.peers,
    bodyBytesMax: config.bodyBytesMax,
    logger,
    ...(tls === undefined ? {} : { dispatcher: () => tls.dispatcher() }),
  };
  const hotPath = createHotPath(apiOptions, (path, method, response) => metrics.observeRequest(path, method, response));
  const server = createNodeServer(withHotPath(hotPath, createNodeFront({ api: createApi(apiOptions), metrics, feed, logger })), tls);
  transport.handleUpgrade(server, "/raft");
  feed.attach(server, "/status/live", ["/raft"]);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.listen.port, config.listen.host, resolve);
  });
  logger.info(
    { event: "listening", listen: config.listen, pid: process.pid, ...(tls === undefined ? {} : { certificate: tls.describe() }) },
    `node ${id} listening on ${tls === undefined ? "http" : "https"}://${config.listen.host}:${config.listen.port}`,
  );
  onReloadSignal(server, tls, logger);

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ event: "stopping", signal }, `node ${id} stopping (${signal})`);
    feed.close();
    server.closeAllConnections();
    server.close();
    await host.stop();
    await transport.close();
    await durableLog.close();
    logger.flush();
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
}

/** loadTls reads and checks the TLS files when configured; a bad file is a configuration error (exit 2). */
function loadTls(config: NodeConfig, logger: Logger): NodeTls | undefined {
  if (config.tls === undefined) return undefined;
  try {
    return NodeTls.load(config.tls, logger.child({ component: "tls" }));
  } catch (error) {
    if (!(error instanceof TlsMaterialError)) throw error;
    process.stderr.write(`invalid node configuration:\n  TLS: ${error.message}\n`);
    process.exit(2);
  }
}

/** createNodeServer serves `listener` over HTTPS with the node's TLS, or plain HTTP without. */
function createNodeServer(listener: RequestListener, tls: NodeTls | undefined): Server | HttpsServer {
  return tls === undefined ? createServer(listener) : tls.createServer(listener);
}

/**
 * onReloadSignal: SIGHUP reloads the TLS files without a restart (open connections, the peer
 * links among them, keep going). Without TLS there is nothing to reload, and SIGHUP is ignored
 * rather than left to end the process.
 */
function onReloadSignal(server: Server | HttpsServer, tls: NodeTls | undefined, logger: Logger): void {
  process.on("SIGHUP", () => {
    if (tls === undefined) logger.info({ event: "sighup_ignored" }, "SIGHUP: no TLS files to reload");
    else tls.reload(server as HttpsServer);
  });
}

/** invariantName names a broken invariant of the core or of the lock state machine (a bug, never an outcome). */
function invariantName(error: unknown): string | undefined {
  if (error instanceof RaftInvariantError) return "RAFT INVARIANT BROKEN";
  if (error instanceof LockInvariantError) return "LOCK INVARIANT BROKEN";
  return undefined;
}

process.on("uncaughtException", (error) => {
  // A broken invariant is a bug: crash loudly rather than serve from a corrupt state.
  process.stderr.write(`${invariantName(error) ?? "uncaught exception"}: ${error.stack ?? String(error)}\n`);
  process.exit(70);
});
process.on("unhandledRejection", (reason) => {
  process.stderr.write(`unhandled rejection: ${(reason as Error)?.stack ?? String(reason)}\n`);
  process.exit(70);
});

void main();
