// The lock node process: `tsx node/main.ts [flags]` (see config.ts for the settings). One port
// serves the HTTP API, /status, /healthz, the status page (`/`, live over /status/live), /metrics
// and the peer WebSocket (/raft). SIGTERM or SIGINT stop it gracefully (a leader hands its
// leadership over first, then the requests in flight finish: graceful-stop.ts), and so does the
// end of its supervisor's IPC channel (npm start); POST /admin/restart does the same and exits 75,
// for the supervisor to start it again. A broken Raft invariant crashes it loudly (exit 70), as the
// core's contract asks.

import { randomInt, randomUUID } from "node:crypto";
import { createServer } from "node:http";
import { destination, type Logger, multistream, pino, transport as pinoTransport } from "pino";
import { LockInvariantError } from "../lock/assert.ts";
import { checkCommandBytes } from "../lock/codec.ts";
import { lockLimitsDefaults } from "../lock/lock-state-machine.ts";
import { createSeededRandom, type NodeId, nodeId, RaftInvariantError, raftConfigDefaults } from "../raft/index.ts";
import { AdmissionGate, withAdmission } from "./admission.ts";
import { ConfigError, loadNodeConfig, type NodeConfig } from "./config.ts";
import { DataDirError, DiskFullError } from "./contracts.ts";
import { systemClock } from "./driver/clock.ts";
import { handOverLeadership, restartExitCode } from "./graceful-stop.ts";
import { combineObservers } from "./host-observer.ts";
import { createApi, createHotPath, withHotPath } from "./http-api.ts";
import { LockService } from "./lock-service.ts";
import { NodeMetrics } from "./metrics.ts";
import { LevelDurableLog } from "./persistence/level-durable-log.ts";
import { StatusFeed } from "./status/status-feed.ts";
import { createNodeFront } from "./status/status-server.ts";
import { StatusTimeline } from "./status/status-timeline.ts";
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

/**
 * openWaitingForSpace opens the durable log, and waits while the disk is too full to open it
 * (opening replays the write-ahead log into a new table file, so a node restarted on a full disk
 * cannot open at all): it tries again after 50 ms, doubling up to a second, as a running node
 * waits for space to write (node/driver/raft-driver.ts, write). Bounded by the process's life: SIGTERM or SIGINT
 * end the wait (nothing is open yet). Found by npm run chaos: such a node exited instead.
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

async function main(): Promise<void> {
  const stopRequests = new StopRequests();
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
  const id = nodeId(config.nodeId);
  let durableLog: LevelDurableLog;
  try {
    durableLog = await openWaitingForSpace(config, logger);
  } catch (error) {
    if (error instanceof DataDirError) {
      logger.fatal({ code: error.code }, error.message);
      process.stderr.write(`cannot use data directory ${config.dataDir}: ${error.message}\n`);
      // Not process.exit(): pino's exit hook flushes the log file synchronously, and throws if the
      // file is not open yet (on a loaded machine the refusal can come first), which turned this
      // exit 3 into an "unhandled rejection", exit 70. Nothing else runs yet: the process ends.
      process.exitCode = 3;
      // Nothing else may keep the process alive: a supervisor's IPC channel (npm start) would, and
      // the node then sat there with its exit code set (found by scripts/start.test.ts once the
      // two changes met).
      process.channel?.unref();
      return;
    }
    throw error;
  }
  // Client API requests in flight are bounded; beyond the bound they are shed at once (admission.ts).
  const gate = new AdmissionGate({
    requestQueueMax: config.requestQueueMax,
    retryAfterMs: config.overloadRetryAfterMs,
    clock: systemClock,
  });
  const bootId = randomUUID();
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
      requestQueue: () => gate.load(),
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
    load: () => gate.load(),
  });
  const apiOptions = {
    host,
    transport,
    apiToken: config.apiToken,
    clusterSecret: config.clusterSecret,
    peerUrls: config.peers,
    bodyBytesMax: config.bodyBytesMax,
    logger,
    overloadRetryAfterMs: config.overloadRetryAfterMs,
    bootId,
    restart: () => stopRequests.restart(),
  };
  const hotPath = createHotPath(apiOptions, (path, method, response) => metrics.observeRequest(path, method, response));
  const front = withHotPath(hotPath, createNodeFront({ api: createApi(apiOptions), metrics, feed, logger }));
  const server = createServer(
    withAdmission(gate, front, (path, method, verdict, response) => metrics.requestShed(path, method, verdict, response)),
  );
  transport.handleUpgrade(server, "/raft");
  feed.attach(server, "/status/live", ["/raft"]);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.listen.port, config.listen.host, resolve);
  });
  logger.info(
    { event: "listening", listen: config.listen, pid: process.pid, bootId },
    `node ${id} listening on http://${config.listen.host}:${config.listen.port}`,
  );

  let stopping = false;
  /**
   * stop stops the node gracefully (graceful-stop.ts): a leader hands its leadership to the most
   * caught-up voter first (bounded); then new client requests are refused (ask another node),
   * those in flight finish (bounded), and everything closes. `exitCode` 75 asks the supervisor
   * to start the node again (POST /admin/restart).
   */
  const stop = async (reason: string, exitCode: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const stopStartedMs = performance.now();
    logger.info({ event: "stopping", signal: reason }, `node ${id} stopping (${reason})`);
    // SCTEC_STOP_TRANSFER_MS=0 skips the hand-over: a leader then just stops, and a failover follows.
    const handOver =
      config.stopTransferMs > 0
        ? await handOverLeadership(host, {
            waitMs: config.stopTransferMs,
            retryAfterMs: longestElectionMs,
            pollMs: config.tickIntervalMs,
            clock: systemClock,
          })
        : undefined;
    if (handOver?.kind === "handed_over")
      logger.info(
        { event: "leadership_handed_over", ...handOver },
        `leadership handed to ${handOver.leaderId} in ${Math.round(handOver.ms)} ms`,
      );
    else if (handOver !== undefined && handOver.kind !== "not_leader")
      logger.warn({ event: "leadership_not_handed_over", ...handOver }, `stopping as the leader: ${handOver.kind}; a failover follows`);
    gate.close();
    server.close(); // Stops listening; the requests in flight go on.
    const drained = await gate.drained(config.stopDrainMs);
    const inFlight = gate.depth();
    if (!drained)
      logger.warn({ event: "stop_drain_timeout", inFlight }, `${inFlight} requests still in flight after ${config.stopDrainMs} ms`);
    feed.close();
    server.closeAllConnections();
    await host.stop();
    await transport.close();
    await durableLog.close();
    logger.info(
      { event: "stopped", exitCode, ms: Math.round(performance.now() - stopStartedMs) },
      `node ${id} stopped in ${Math.round(performance.now() - stopStartedMs)} ms${exitCode === restartExitCode ? ", to be restarted" : ""}`,
    );
    logger.flush();
    process.exit(exitCode);
  };
  stopRequests.handleWith((reason, exitCode) => void stop(reason, exitCode));
}

/**
 * StopRequests hears what asks this process to stop: SIGTERM, SIGINT, and, when a supervisor
 * started it with an IPC channel (npm start), the end of that channel: the supervisor is gone,
 * however it ended (SIGKILL included), and a node left running would hold its port and data
 * directory. Listening starts at once, so a request during startup is not missed: until
 * `handleWith` is called (the node serves), a request ends the process at once.
 */
class StopRequests {
  private handler: ((reason: string, exitCode: number) => void) | undefined;

  constructor() {
    process.on("SIGTERM", () => this.request("SIGTERM", 0));
    process.on("SIGINT", () => this.request("SIGINT", 0));
    if (process.channel !== undefined) process.once("disconnect", () => this.request("supervisor gone", 0));
  }

  handleWith(handler: (reason: string, exitCode: number) => void): void {
    this.handler = handler;
  }

  /** restart: POST /admin/restart: stop as on SIGTERM, and exit so that the supervisor starts the node again. */
  restart(): void {
    this.request("restart requested", restartExitCode);
  }

  private request(reason: string, exitCode: number): void {
    if (this.handler !== undefined) this.handler(reason, exitCode);
    else process.exit(exitCode); // Nothing is served yet; the data directory is as safe as after a crash.
  }
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
