// The lock node process: `tsx node/main.ts [flags]` (see config.ts for the settings). It runs on
// two threads. This one, the HTTP thread, serves the API, /status, /healthz, the status page (`/`,
// live over /status/live) and /metrics on SCTEC_LISTEN. The raft thread (raft-thread.ts, started
// by RaftThreadHost) runs the LockService, its RaftDriver, the LevelDB log and the peer transport,
// whose /raft WebSocket has a port of its own (SCTEC_RAFT_LISTEN), so that no HTTP load can delay
// a heartbeat (docs/DESIGN.md, "Heartbeats on a thread of their own"). SIGTERM or SIGINT stop it
// cleanly; a broken Raft invariant on either thread crashes it loudly (exit 70), as the core's
// contract asks.

import { createServer } from "node:http";
import { LockInvariantError } from "../lock/assert.ts";
import { RaftInvariantError } from "../raft/index.ts";
import { ConfigError, loadNodeConfig, type NodeConfig } from "./config.ts";
import { FrontMetrics } from "./front-metrics.ts";
import { createApi, createHotPath, withHotPath } from "./http-api.ts";
import { flushLogs, makeLogger } from "./logging.ts";
import { LoopLagMonitor } from "./loop-lag.ts";
import { RaftThreadHost, RaftThreadStartError } from "./raft-thread-host.ts";
import { StatusFeed } from "./status/status-feed.ts";
import { createNodeFront } from "./status/status-server.ts";

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
  let host: RaftThreadHost;
  try {
    host = await RaftThreadHost.start({
      config,
      // Each call is a request in flight on this node: the raft side bounds its own queue
      // (pendingRequestsMax, 10,000) and the watch polls (watchersMax); this bounds both together.
      callsInFlightMax: 10_000 + config.watchersMax + 1000,
      onExit: (exitCode) => {
        // The raft thread said why on stderr (a broken invariant): the node cannot go on without it.
        flushLogs(logger);
        process.exit(exitCode);
      },
    });
  } catch (error) {
    if (error instanceof RaftThreadStartError) {
      process.stderr.write(`${error.message}\n`);
      flushLogs(logger);
      process.exit(error.exitCode);
    }
    throw error;
  }
  const longestElectionMs = 2 * config.electionTimeoutTicks * config.tickIntervalMs;
  const httpLoopLag = new LoopLagMonitor({ resolutionMs: 10, windowMs: 5000 });
  const metrics = new FrontMetrics({
    nodeId: config.nodeId,
    processMetrics: true,
    httpLoopLag: () => httpLoopLag.lag(),
    raftLoopLag: () => host.raftLoopLag(),
    raftMetricsText: () => host.raftMetricsText(),
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
  });
  const apiOptions = {
    host,
    apiToken: config.apiToken,
    clusterSecret: config.clusterSecret,
    peerUrls: config.peers,
    bodyBytesMax: config.bodyBytesMax,
    logger,
  };
  const hotPath = createHotPath(apiOptions, (path, method, response) => metrics.observeRequest(path, method, response));
  const server = createServer(withHotPath(hotPath, createNodeFront({ api: createApi(apiOptions), metrics, feed, logger })));
  feed.attach(server, "/status/live", []);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.listen.port, config.listen.host, resolve);
  });
  logger.info(
    { event: "listening", listen: config.listen, raftListen: config.raftListen, pid: process.pid },
    `node ${config.nodeId} listening on http://${config.listen.host}:${config.listen.port} (peers: ${config.raftListen.host}:${config.raftListen.port})`,
  );

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    logger.info({ event: "stopping", signal }, `node ${config.nodeId} stopping (${signal})`);
    feed.close();
    server.closeAllConnections();
    server.close();
    await host.stop();
    httpLoopLag.close();
    flushLogs(logger);
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
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
