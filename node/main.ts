// The lock node process: `tsx node/main.ts [flags]` (see config.ts for the settings). It runs on
// two threads. This one, the HTTP thread, serves the API, /status, /healthz, the status page (`/`,
// live over /status/live) and /metrics on SCTEC_LISTEN, behind the admission gate. The raft
// thread (raft-thread.ts, started by RaftThreadHost) runs the LockService, its RaftDriver, the
// LevelDB log and the peer transport, whose /raft WebSocket has a port of its own
// (SCTEC_RAFT_LISTEN), so that no HTTP load can delay a heartbeat (docs/DESIGN.md, "Heartbeats on
// a thread of their own"). SIGTERM or SIGINT stop it gracefully (a leader hands its leadership
// over first, then the requests in flight finish: graceful-stop.ts), and so does the end of its
// supervisor's IPC channel (npm start); POST /admin/restart does the same and exits 75, for the
// supervisor to start it again. A broken Raft invariant on either thread crashes it loudly (exit
// 70), as the core's contract asks.
//
// With TLS configured (tls-host.ts), the API port serves HTTPS and the peer port mutual TLS (the
// raft thread checks each peer's certificate against its member id). SIGHUP rereads and checks
// the TLS files here, serves them on the API port, and hands them to the raft thread for the peer
// port and its dials; open connections keep theirs, so the cluster is not dropped.

import { randomUUID } from "node:crypto";
import { createServer, type RequestListener, type Server } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { Logger } from "pino";
import { TlsMaterialError } from "../config/tls.ts";
import { LockInvariantError } from "../lock/assert.ts";
import { RaftInvariantError } from "../raft/index.ts";
import { AdmissionGate, withAdmission } from "./admission.ts";
import { ConfigError, loadNodeConfig, type NodeConfig } from "./config.ts";
import { systemClock } from "./driver/clock.ts";
import { FrontMetrics } from "./front-metrics.ts";
import { restartExitCode } from "./graceful-stop.ts";
import { createApi, createHotPath, withHotPath } from "./http-api.ts";
import { flushLogs, makeLogger } from "./logging.ts";
import { LoopLagMonitor } from "./loop-lag.ts";
import { RaftThreadHost, RaftThreadStartError } from "./raft-thread-host.ts";
import { StatusFeed } from "./status/status-feed.ts";
import { createNodeFront } from "./status/status-server.ts";
import { NodeTls } from "./tls-host.ts";

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
  const tls = loadTls(config, logger);
  if (tls === null) return;
  let host: RaftThreadHost;
  try {
    host = await RaftThreadHost.start({
      config,
      ...(tls === undefined ? {} : { tls: tls.peerTls() }),
      // Each call is a request in flight on this node: the admission gate bounds the API's, the
      // raft side its own queue (pendingRequestsMax, 10,000) and the watch polls (watchersMax).
      callsInFlightMax: 10_000 + config.watchersMax + 1000,
      onExit: (exitCode) => {
        // The raft thread said why on stderr (a broken invariant): the node cannot go on without it.
        flushLogs(logger);
        process.exit(exitCode);
      },
    });
  } catch (error) {
    if (error instanceof RaftThreadStartError) {
      // An unusable data directory (exit 3), a refused SCTEC_RAFT_REALTIME (2), …: the raft
      // thread logged why. Not process.exit(): pino's exit hook flushes the log file
      // synchronously, and throws if the file is not open yet, which turned an exit 3 into an
      // exit 70 (issue 19). Nothing else may keep the process alive: a supervisor's IPC channel
      // would (npm start), and the node then sat there with its exit code set.
      process.stderr.write(`${error.message}\n`);
      process.exitCode = error.exitCode;
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
  const longestElectionMs = 2 * config.electionTimeoutTicks * config.tickIntervalMs;
  const httpLoopLag = new LoopLagMonitor({ resolutionMs: 10, windowMs: 5000 });
  const metrics = new FrontMetrics({
    nodeId: config.nodeId,
    processMetrics: true,
    httpLoopLag: () => httpLoopLag.lag(),
    raftLoopLag: () => host.raftLoopLag(),
    raftMetricsText: () => host.raftMetricsText(),
    requestQueue: () => gate.load(),
  });
  const feed = new StatusFeed({
    source: host,
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
    ...(tls === undefined ? {} : { dispatcher: () => tls.dispatcher() }),
  });
  const apiOptions = {
    host,
    apiToken: config.apiToken,
    clusterSecret: config.clusterSecret,
    peerUrls: config.peers,
    bodyBytesMax: config.bodyBytesMax,
    logger,
    overloadRetryAfterMs: config.overloadRetryAfterMs,
    bootId,
    restart: () => stopRequests.restart(),
    ...(tls === undefined ? {} : { dispatcher: () => tls.dispatcher() }),
  };
  const hotPath = createHotPath(apiOptions, (path, method, response) => metrics.observeRequest(path, method, response));
  const front = withHotPath(hotPath, createNodeFront({ api: createApi(apiOptions), metrics, feed, logger }));
  const server = createNodeServer(
    withAdmission(gate, front, (path, method, verdict, response) => metrics.requestShed(path, method, verdict, response)),
    tls,
  );
  feed.attach(server, "/status/live", []);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.listen.port, config.listen.host, resolve);
  });
  const scheme = tls === undefined ? "http" : "https";
  logger.info(
    {
      event: "listening",
      listen: config.listen,
      raftListen: config.raftListen,
      pid: process.pid,
      bootId,
      ...(tls === undefined ? {} : { certificate: tls.describe() }),
    },
    `node ${config.nodeId} listening on ${scheme}://${config.listen.host}:${config.listen.port} (peers: ${tls === undefined ? "" : "mutual TLS, "}${config.raftListen.host}:${config.raftListen.port})`,
  );
  onReloadSignal(server, tls, host, logger);

  let stopping = false;
  /**
   * stop stops the node gracefully (graceful-stop.ts): a leader hands its leadership to the most
   * caught-up voter first (bounded; on the raft thread, where the core is); then new client
   * requests are refused (ask another node), those in flight finish (bounded), and everything
   * closes. `exitCode` 75 asks the supervisor to start the node again (POST /admin/restart).
   */
  const stop = async (reason: string, exitCode: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    const stopStartedMs = performance.now();
    logger.info({ event: "stopping", signal: reason }, `node ${config.nodeId} stopping (${reason})`);
    // SCTEC_STOP_TRANSFER_MS=0 skips the hand-over: a leader then just stops, and a failover follows.
    const handOver =
      config.stopTransferMs > 0
        ? await host
            .handOverLeadership({ waitMs: config.stopTransferMs, retryAfterMs: longestElectionMs, pollMs: config.tickIntervalMs })
            .catch((error: unknown) => ({ kind: "failed" as const, reason: String(error) }))
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
    httpLoopLag.close();
    logger.info(
      { event: "stopped", exitCode, ms: Math.round(performance.now() - stopStartedMs) },
      `node ${config.nodeId} stopped in ${Math.round(performance.now() - stopStartedMs)} ms${exitCode === restartExitCode ? ", to be restarted" : ""}`,
    );
    flushLogs(logger);
    process.exit(exitCode);
  };
  stopRequests.handleWith((reason, exitCode) => void stop(reason, exitCode));
}

/**
 * loadTls reads and checks the TLS files when configured (undefined: none); a bad file is a
 * configuration error: it is said on stderr, the exit code is 2, and the answer is null.
 */
function loadTls(config: NodeConfig, logger: Logger): NodeTls | undefined | null {
  if (config.tls === undefined) return undefined;
  try {
    return NodeTls.load(config.tls, logger.child({ component: "tls" }));
  } catch (error) {
    if (!(error instanceof TlsMaterialError)) throw error;
    process.stderr.write(`invalid node configuration:\n  TLS: ${error.message}\n`);
    // Not process.exit (see RaftThreadStartError below): nothing else runs yet, so the process ends.
    process.exitCode = 2;
    process.channel?.unref();
    return null;
  }
}

/** createNodeServer serves `listener` over HTTPS with the node's TLS, or plain HTTP without. */
function createNodeServer(listener: RequestListener, tls: NodeTls | undefined): Server | HttpsServer {
  return tls === undefined ? createServer(listener) : tls.createServer(listener);
}

/**
 * onReloadSignal: SIGHUP rereads the TLS files without a restart: the API port serves them, and
 * the raft thread gets them for its peer port and its dials (a message over its port). Open
 * connections, the peer links among them, keep going. Files that fail the checks are refused and
 * the old ones kept, on both threads. Without TLS there is nothing to reload, and SIGHUP is
 * ignored rather than left to end the process.
 */
function onReloadSignal(server: Server | HttpsServer, tls: NodeTls | undefined, host: RaftThreadHost, logger: Logger): void {
  process.on("SIGHUP", () => {
    if (tls === undefined) {
      logger.info({ event: "sighup_ignored" }, "SIGHUP: no TLS files to reload");
      return;
    }
    if (!tls.reload(server as HttpsServer)) return;
    host.useTls(tls.peerTls()).then(
      () => logger.info({ event: "tls_reloaded_peers" }, "the raft thread serves and dials with the reloaded certificate"),
      (error: unknown) => logger.error({ event: "tls_reload_failed", err: error }, "the raft thread did not take the reloaded certificate"),
    );
  });
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
