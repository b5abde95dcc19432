// The scheduler process: configuration from SCHEDULER_* (scheduler/config.ts), a LockClient for
// the cluster, the booking API and page on one port, booking events over WebSocket (/events).
// SIGTERM / SIGINT (or the end of npm start's IPC channel) stop it cleanly: stop accepting, finish
// what is in flight, close. Over HTTPS when SCHEDULER_TLS_CERT_FILE and SCHEDULER_TLS_KEY_FILE are
// set; SIGHUP reloads them.

import { readFileSync } from "node:fs";
import { createServer, type RequestListener, type Server } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { LockClient, LockError } from "../client/lock-client.ts";
import { readTlsMaterial, serverTlsOptions, TlsMaterialError, TlsReloader } from "../config/tls.ts";
import { roleIncludes } from "../protocol/roles.ts";
import { createApp } from "./app.ts";
import { Bookings } from "./bookings.ts";
import { lockClusterPort } from "./cluster.ts";
import { loadSchedulerConfig, SchedulerConfigError } from "./config.ts";
import { BookingEvents } from "./events.ts";
import { createSchedulerLogger } from "./logging.ts";
import { SchedulerMetrics } from "./metrics.ts";
import { RequestQueue } from "./middleware.ts";
import { Scientists } from "./scientists.ts";
import { ensureTelescopeGrids, TelescopeGridMismatch } from "./telescopes.ts";
import { announceTestModes, bookingTestHooks, schedulerClock } from "./test-hooks.ts";

let config: ReturnType<typeof loadSchedulerConfig>;
let tls: TlsReloader | undefined;
let nodesCa: string | undefined;
try {
  config = loadSchedulerConfig(process.env, process.argv.slice(2));
  ({ tls, nodesCa } = loadTls(config));
} catch (error) {
  if (error instanceof SchedulerConfigError || error instanceof TlsMaterialError) {
    console.error(error instanceof TlsMaterialError ? `invalid scheduler configuration:\n  TLS: ${error.message}` : error.message);
    process.exit(2);
  }
  throw error;
}

/** loadTls reads and checks the TLS files: the serving certificate and key (with their CA), or the CA alone (to check https:// nodes). */
function loadTls(settings: typeof config): { tls: TlsReloader | undefined; nodesCa: string | undefined } {
  const { tlsCertFile: certFile, tlsKeyFile: keyFile, tlsCaFile: caFile } = settings;
  if (certFile !== undefined && keyFile !== undefined && caFile !== undefined) {
    const files = { certFile, keyFile, caFile };
    const reloader = new TlsReloader(files, readTlsMaterial(files));
    return { tls: reloader, nodesCa: reloader.current().ca };
  }
  if (caFile === undefined) return { tls: undefined, nodesCa: undefined };
  try {
    return { tls: undefined, nodesCa: readFileSync(caFile, "utf8") };
  } catch (error) {
    throw new TlsMaterialError(
      `cannot read the CA certificate ${caFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

const { log, flush, logFile } = createSchedulerLogger({ logDir: config.logDir, pretty: config.logPretty, instanceId: config.instanceId });
// Until the server runs there is nothing to finish, and a stop request ends the process at once;
// from then on `stopRequested` stops it cleanly (see stop below). The end of the IPC channel of a
// supervisor that started this process (npm start) is such a request: the supervisor is gone,
// however it ended, and a scheduler left running would hold its port.
let stopRequested = (reason: string): void => {
  log.info({ event: "scheduler_stopping", signal: reason }, `stopping on ${reason} (before serving)`);
  flush();
  process.exit(0);
};
process.on("SIGTERM", () => stopRequested("SIGTERM"));
process.on("SIGINT", () => stopRequested("SIGINT"));
if (process.channel !== undefined) process.once("disconnect", () => stopRequested("supervisor gone"));
// Bounded: at most (retries + 1) attempts of clusterTimeoutMs each, plus backoff, before a 503.
const client = new LockClient({
  nodes: config.nodes,
  apiToken: config.apiToken,
  requestTimeoutMs: config.clusterTimeoutMs,
  retriesMax: config.clusterRetriesMax,
  ...(nodesCa === undefined ? {} : { tls: { ca: nodesCa } }),
});
const cluster = lockClusterPort(client);
const telescopes = new Map(config.telescopes.map((telescope) => [telescope.id, telescope]));
// The test and demonstration modes (test-hooks.ts) are chosen here, once: the flows only call the
// hooks and the clock they are given.
const nowMs = schedulerClock(config.clockOffsetMs);
const requestQueue = new RequestQueue({ requestQueueMax: config.requestQueueMax, retryAfterMs: config.overloadRetryAfterMs });
const metrics = new SchedulerMetrics({ instanceId: config.instanceId, processMetrics: true, requestQueue });
const bookings = new Bookings({
  cluster,
  telescopes,
  serviceName: "scheduler",
  leaseTtlMs: config.leaseTtlMs,
  nowMs,
  testHooks: bookingTestHooks(config),
  observer: metrics,
});
const scientists = new Scientists({ cluster, serviceName: "scheduler", leaseTtlMs: config.leaseTtlMs, nowMs, cachedMax: 10_000 });
const events = new BookingEvents({ cluster, telescopes, eventsKeptMax: config.eventsKeptMax, subscribersMax: 10_000, log });
const app = createApp({
  bookings,
  scientists,
  cluster,
  telescopes: config.telescopes,
  log,
  nowMs,
  bodyBytesMax: config.bodyBytesMax,
  rateLimitPerMinute: config.rateLimitPerMinute,
  rateLimitPerAddressPerMinute: config.rateLimitPerAddressPerMinute,
  registrationsPerAddressPerHour: config.registrationsPerAddressPerHour,
  auditVerifyRecordsMax: config.auditVerifyRecordsMax,
  onRequest: metrics.onRequest,
  metrics,
  requestQueue,
});

/**
 * checkClusterToken stops the process (exit 2) when the cluster refuses this scheduler's token or
 * gives it a role below `locker`: every booking would fail, and retrying cannot help.
 */
async function checkClusterToken(): Promise<void> {
  let problem: string | undefined;
  try {
    const identity = await client.whoami();
    if (!roleIncludes(identity.role, "locker")) {
      problem = `the lock cluster's token (SCTEC_API_TOKEN) is credential ${identity.name}, of role ${identity.role}: the booking API needs a locker token`;
    }
  } catch (error) {
    if (!(error instanceof LockError && error.code === "unauthorized")) throw error; // Unreachable for now: retried below.
    problem = "the lock cluster refuses this scheduler's token (SCTEC_API_TOKEN): unknown or revoked";
  }
  if (problem === undefined) return;
  log.fatal({ event: "cluster_token_refused" }, problem);
  flush();
  console.error(problem);
  process.exit(2);
}

// Record (or check) each telescope's slot grid before serving: bookings depend on it.
for (let attempt = 1; ; attempt += 1) {
  try {
    await checkClusterToken();
    await ensureTelescopeGrids(cluster, config.telescopes, config.leaseTtlMs);
    break;
  } catch (error) {
    if (error instanceof TelescopeGridMismatch) {
      log.fatal({ event: "telescope_grid_mismatch", err: error }, error.message);
      flush();
      console.error(error.message);
      process.exit(2);
    }
    // The cluster may still be electing a leader: keep trying for a while, then give up loudly.
    if (attempt >= 30) {
      log.fatal({ event: "cluster_unavailable", err: error }, "the lock cluster did not answer at startup");
      flush();
      process.exit(1);
    }
    log.warn({ event: "cluster_unavailable", err: error, attempt }, "waiting for the lock cluster");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

const server = createSchedulerServer(app);
server.keepAliveTimeout = 65_000;
server.on("upgrade", (request, socket, head) => events.handleUpgrade(request, socket, head));
server.listen(config.listen.port, config.listen.host, () => {
  const url = `${tls === undefined ? "http" : "https"}://${config.listen.host}:${config.listen.port}`;
  log.info({ event: "scheduler_started", url, nodes: config.nodes, logFile, locking: config.locking }, `scheduler listening on ${url}`);
  announceTestModes(config, log);
  events.start();
});

let stopping = false;
async function stop(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ event: "scheduler_stopping", signal }, `stopping on ${signal}`);
  const forced = setTimeout(() => process.exit(1), 10_000);
  forced.unref();
  await events.close();
  server.closeIdleConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  flush();
  process.exit(0);
}
stopRequested = (reason) => void stop(reason);
process.on("SIGHUP", () => reloadTls());

/** createSchedulerServer serves the booking API over HTTPS when its certificate is configured, else plain HTTP. */
function createSchedulerServer(listener: RequestListener): Server | HttpsServer {
  if (tls === undefined) return createServer(listener);
  return createHttpsServer(serverTlsOptions(tls.current(), { requestClientCertificates: false }), listener);
}

/**
 * reloadTls (SIGHUP) serves the certificate and key files anew without a restart; files that do
 * not pass the checks are refused and the old ones kept. The CA the nodes are checked against is
 * read at start only: a new CA for the nodes needs a restart (docs/SECURITY.md).
 */
function reloadTls(): void {
  if (tls === undefined) {
    log.info({ event: "sighup_ignored" }, "SIGHUP: no TLS files to reload");
    return;
  }
  try {
    const material = tls.reload(server as HttpsServer, { requestClientCertificates: false });
    log.info(
      { event: "tls_reloaded", subject: material.certificate.subject, validTo: material.certificate.validTo },
      "TLS certificate reloaded",
    );
  } catch (error) {
    if (!(error instanceof TlsMaterialError)) throw error;
    log.error({ event: "tls_reload_failed", err: error }, `TLS reload refused, still serving the old certificate: ${error.message}`);
  }
}
