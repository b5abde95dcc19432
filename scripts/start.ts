// `npm start`: the whole system on this machine, on embedded defaults. It starts three lock nodes
// as child processes on 127.0.0.1:7001-7003 (data under ./data/n1..n3) and the booking API with
// its page on 127.0.0.1:8080 (logs in ./data/app.log), prints where each listens, waits for a
// leader and for the scheduler (its own: answers are matched to its children by pid), and prints
// the URLs of the booking page and of the nodes' status pages.
//
// It behaves (issue 17): a port already in use is an error before anything starts (exit 1); a
// child that exits unasked is reported with its last lines, the others are stopped, and npm start
// exits 1; SIGINT, SIGTERM or SIGHUP to npm start (or to npm: package.json runs this script with
// `exec`, so npm's signal reaches it, not a shell that would die alone) stop every child, the
// scheduler first, and npm start exits 0. The children also stop by themselves if npm start dies
// unannounced (scripts/start/supervisor.ts). A node that asks to be restarted (exit 75, after
// `POST /admin/restart`: `sctec rolling-restart`) is started again.
//
// The cluster secret and the bootstrap admin token are generated on first start and kept in
// ./data/credentials.json, so a restart finds the same cluster. The booking API does not use the
// admin token: once the cluster has a leader, a `locker` credential named "scheduler" is made for
// it (and kept in the same file), and the scheduler starts with that token.
//
//   npm start                                  until Ctrl-C
//   npm start -- --seconds 10                  stop by itself after 10 seconds
//   npm start -- --data DIR                    keep the data elsewhere
//   npm start -- --node-ports 7011,7012,7013 --scheduler-port 8180    other ports (each node's
//                                              peers talk on its port + 100: 7111-7113)
//   npm start -- --tls                         everything over TLS: HTTPS for the nodes and the
//                                              booking API, mutual TLS between the nodes,
//                                              certificates of a local CA made (once) under
//                                              ./data/tls (npm run certs; trust data/tls/ca.pem)

import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Agent, fetch as undiciFetch } from "undici";
import { makeCertificates } from "../harness/certificates.ts";
import { raftPortOffset } from "../node/config.ts";
import { restartExitCode } from "../node/graceful-stop.ts";
import { type HealthAnswer, type OwnNode, ownHealthyScheduler, ownLeader, type StatusAnswer } from "./start/readiness.ts";
import { type ChildExit, portsInUse, Supervisor } from "./start/supervisor.ts";

const log = (message: string): void => console.log(`${new Date().toISOString()} ${message}`);

function usageError(message: string): never {
  console.error(`start: ${message}`);
  process.exit(2);
}

function parsePorts(text: string, what: string, count: number): number[] {
  const ports = text.split(",").map((item) => Number(item.trim()));
  if (ports.length !== count || !ports.every((port) => Number.isInteger(port) && port >= 1 && port <= 65_535))
    usageError(`${what} must be ${count} port number${count > 1 ? "s" : ""} from 1 to 65535, separated by commas; got "${text}"`);
  return ports;
}

const { values } = parseArgs({
  options: {
    seconds: { type: "string" },
    data: { type: "string" },
    "node-ports": { type: "string", default: "7001,7002,7003" },
    "scheduler-port": { type: "string", default: "8080" },
    tls: { type: "boolean" },
  },
});
const secondsMax = values.seconds === undefined ? Number.POSITIVE_INFINITY : Number(values.seconds);
if (!(secondsMax > 0)) usageError(`--seconds must be a positive number, got "${values.seconds}"`);
const nodePorts = parsePorts(values["node-ports"], "--node-ports", 3);
const [schedulerPort] = parsePorts(values["scheduler-port"], "--scheduler-port", 1) as [number];
// Each node takes its peers' Raft connections on its port + 100 (node/config.ts): those must be free too.
const raftPorts = nodePorts.map((port) => port + raftPortOffset);
if (raftPorts.some((port) => port > 65_535))
  usageError(`--node-ports: each node also uses its port + ${raftPortOffset}, which must be 65535 at most`);
const allPorts = [...nodePorts, ...raftPorts, schedulerPort];
if (new Set(allPorts).size !== allPorts.length) usageError(`the ports must differ: ${allPorts.join(", ")}`);

// Before anything starts: a second npm start beside a running one must not start half a cluster.
const busy = await portsInUse(allPorts);
if (busy.length > 0) {
  console.error(
    `start: ${busy.map((port) => `127.0.0.1:${port}`).join(", ")} ${busy.length > 1 ? "are" : "is"} in use already ` +
      "(another npm start, or a compose cluster?). Stop it first, or choose other ports: " +
      "npm start -- --node-ports A,B,C --scheduler-port D. Nothing was started.",
  );
  process.exit(1);
}

const dataRoot = resolve(values.data ?? "data");
mkdirSync(dataRoot, { recursive: true });

interface Credentials {
  clusterSecret: string;
  /** apiToken: the bootstrap admin token. */
  apiToken: string;
  /** schedulerToken: the booking API's own `locker` token, once made. */
  schedulerToken?: string;
}
const credentialsPath = join(dataRoot, "credentials.json");
const credentials: Credentials = existsSync(credentialsPath)
  ? (JSON.parse(readFileSync(credentialsPath, "utf8")) as Credentials)
  : { clusterSecret: randomBytes(24).toString("hex"), apiToken: randomBytes(24).toString("hex") };
writeFileSync(credentialsPath, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });

const nodeIds = nodePorts.map((_port, position) => `n${position + 1}`);
const tls = values.tls === true ? await prepareTls() : undefined;
const scheme = tls === undefined ? "http" : "https";
const nodes = nodePorts.map((port, position) => ({ id: `n${position + 1}`, port, url: `${scheme}://127.0.0.1:${port}` }));
const peers = nodes.map((node) => `${node.id}=${node.url}`).join(",");
const schedulerUrl = `${scheme}://127.0.0.1:${schedulerPort}`;

/**
 * prepareTls makes (or keeps) the local CA and the certificates under data/tls, and returns what
 * each process needs: the nodes' and the scheduler's TLS settings, and a dispatcher that trusts the
 * CA for this script's own requests.
 */
async function prepareTls(): Promise<{ env: (name: string) => Record<string, string>; ca: string; dispatcher: Agent }> {
  const { ca, files } = await makeCertificates({
    out: join(dataRoot, "tls"),
    nodes: nodeIds,
    schedulers: ["scheduler"],
    hosts: [],
    renew: [],
    force: false,
    log: (line) => log(`tls: ${line}`),
  });
  const caPem = readFileSync(ca, "utf8");
  const env = (name: string): Record<string, string> => {
    const own = files.get(name) as { cert: string; key: string };
    return name === "scheduler"
      ? { SCHEDULER_TLS_CERT_FILE: own.cert, SCHEDULER_TLS_KEY_FILE: own.key, SCHEDULER_TLS_CA_FILE: ca }
      : { SCTEC_TLS_CERT_FILE: own.cert, SCTEC_TLS_KEY_FILE: own.key, SCTEC_TLS_CA_FILE: ca };
  };
  return { env, ca: caPem, dispatcher: new Agent({ connect: { ca: caPem } }) };
}

/** fetchLocal is fetch for this script's own requests to the processes it started (trusting the local CA over TLS). */
function fetchLocal(url: string, init: Parameters<typeof undiciFetch>[1] = {}): ReturnType<typeof undiciFetch> {
  return undiciFetch(url, { ...init, ...(tls === undefined ? {} : { dispatcher: tls.dispatcher }) });
}

let stopping = false;
const supervisor = new Supervisor({
  command: process.execPath,
  log,
  forwardStderr: (text) => process.stderr.write(text),
  stopTimeoutMs: 15_000,
  tailLinesMax: 12,
  restartsPerMinuteMax: 5,
  onExit: (exit) => void failed(exit),
});

for (const node of nodes) {
  const logFile = join(dataRoot, `${node.id}.log`);
  const pid = supervisor.start({
    key: node.id,
    name: `node ${node.id}`,
    args: ["--import", "tsx", "node/main.ts"],
    env: {
      ...process.env,
      SCTEC_NODE_ID: node.id,
      SCTEC_LISTEN: `127.0.0.1:${node.port}`,
      SCTEC_PEERS: peers,
      SCTEC_DATA_DIR: join(dataRoot, node.id),
      SCTEC_CLUSTER_SECRET: credentials.clusterSecret,
      SCTEC_API_TOKEN: credentials.apiToken,
      SCTEC_LOG_FILE: logFile,
      SCTEC_BOOKING_URL: `${schedulerUrl}/`,
      ...tls?.env(node.id),
    },
    logFile,
    restartExitCode,
  });
  log(`node ${node.id}: ${node.url} (status page: ${node.url}/, pid ${pid})`);
}
log(`data in ${dataRoot}; API token: ${credentials.apiToken} (the bootstrap admin token)`);
log(
  `try: SCTEC_API_TOKEN=${credentials.apiToken}${tls === undefined ? "" : ` SCTEC_CA_FILE=${join(dataRoot, "tls", "ca.pem")}`} npm run cli -- --nodes ${nodes.map((node) => node.url).join(",")} lock slot-1`,
);
if (tls !== undefined)
  log(`TLS: every process serves a certificate of the local CA ${join(dataRoot, "tls", "ca.pem")}; let your browser trust it`);

/**
 * ensureSchedulerCredential returns the booking API's `locker` token: the one kept from an earlier
 * start if the cluster still knows it, else a new credential "scheduler" (replacing one of that
 * name whose token was lost), made with the bootstrap admin token and kept in credentials.json.
 * Tried again (the leader may just have changed) until `deadlineMs` (performance.now()).
 */
async function ensureSchedulerCredential(nodeUrl: string, deadlineMs: number): Promise<string> {
  const asAdmin = { authorization: `Bearer ${credentials.apiToken}`, "content-type": "application/json" };
  for (;;) {
    try {
      if (credentials.schedulerToken !== undefined) {
        const whoami = await fetchLocal(`${nodeUrl}/auth/whoami`, {
          headers: { authorization: `Bearer ${credentials.schedulerToken}` },
          signal: AbortSignal.timeout(5000),
        });
        if (whoami.ok) return credentials.schedulerToken;
        if (whoami.status !== 401) throw new Error(`whoami answered ${whoami.status}`);
      }
      // A "scheduler" credential whose token this file does not hold (data copied, file lost) is replaced.
      await fetchLocal(`${nodeUrl}/admin/credentials/scheduler/revoke`, {
        method: "POST",
        headers: asAdmin,
        signal: AbortSignal.timeout(5000),
      });
      const created = await fetchLocal(`${nodeUrl}/admin/credentials`, {
        method: "POST",
        headers: asAdmin,
        body: JSON.stringify({ name: "scheduler", role: "locker" }),
        signal: AbortSignal.timeout(5000),
      });
      if (created.status !== 201)
        throw new Error(`creating the scheduler's credential answered ${created.status}: ${await created.text()}`);
      credentials.schedulerToken = ((await created.json()) as { token: string }).token;
      writeFileSync(credentialsPath, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
      log(`made the booking API's own credential "scheduler" (role locker), kept in ${credentialsPath}`);
      return credentials.schedulerToken;
    } catch (error) {
      if (stopping || performance.now() > deadlineMs) throw error;
      await pause(200);
    }
  }
}

/** startScheduler starts the booking API with its own `locker` token. */
function startScheduler(token: string): void {
  const schedulerPid = supervisor.start({
    key: "scheduler",
    name: "the scheduler",
    args: ["--import", "tsx", "scheduler/main.ts"],
    env: {
      ...process.env,
      SCHEDULER_LISTEN: `127.0.0.1:${schedulerPort}`,
      SCHEDULER_NODES: nodes.map((node) => node.url).join(","),
      SCTEC_API_TOKEN: token,
      SCHEDULER_LOG_DIR: dataRoot,
      ...tls?.env("scheduler"),
    },
    logFile: join(dataRoot, "app.log"),
  });
  log(`scheduler: ${schedulerUrl} (pid ${schedulerPid}, log ${join(dataRoot, "app.log")})`);
}

async function getJson<T>(url: string): Promise<{ status: number; body: T } | undefined> {
  try {
    const response = await fetchLocal(url, { signal: AbortSignal.timeout(2000) });
    return { status: response.status, body: (await response.json()) as T };
  } catch {
    return undefined; // Not listening yet.
  }
}

const pause = (ms: number): Promise<void> => new Promise((resolveWait) => setTimeout(resolveWait, ms));

/** readinessTimeoutMs: three tsx processes take 5 to 30 s to start on a loaded machine; past this npm start says so (and runs on). */
const readinessTimeoutMs = 60_000;

/** waitForLeader answers the URL of this npm start's leader, or undefined (stopping, or none in time). */
async function waitForLeader(): Promise<string | undefined> {
  const deadline = performance.now() + readinessTimeoutMs;
  const foreignSaid = new Set<string>();
  while (!stopping && performance.now() < deadline) {
    const own: OwnNode[] = nodes.map((node) => ({ id: node.id, url: node.url, pid: supervisor.pid(node.id) }));
    const answers = new Map(
      await Promise.all(nodes.map(async (node) => [node.id, (await getJson<StatusAnswer>(`${node.url}/status`))?.body] as const)),
    );
    const { leader, foreign } = ownLeader(own, answers);
    for (const other of foreign) {
      if (foreignSaid.has(other.id)) continue;
      foreignSaid.add(other.id);
      log(`${other.url} is answered by pid ${other.pid}, which is not this npm start's node ${other.id}: ignored`);
    }
    if (leader !== undefined) {
      log(`cluster ready: leader ${leader.nodeId} in term ${leader.term}`);
      log(`status pages: ${nodes.map((node) => `${node.url}/`).join(" ")} (metrics: /metrics on each node and the scheduler)`);
      return nodes.find((node) => node.id === leader.nodeId)?.url ?? nodes[0]?.url;
    }
    await pause(200);
  }
  if (!stopping) log(`no leader among this npm start's nodes within ${readinessTimeoutMs / 1000} s: see ${join(dataRoot, "n1.log")} …`);
  return undefined;
}

/**
 * startBookingApi makes (or finds) the booking API's credential, starts it, and waits until it
 * answers. A deadline of its own: the scheduler starts only once the cluster runs, and on a loaded
 * machine tsx alone takes 10-20 s to start it.
 */
async function startBookingApi(leaderUrl: string): Promise<void> {
  let token: string;
  try {
    token = await ensureSchedulerCredential(leaderUrl, performance.now() + readinessTimeoutMs);
  } catch (error) {
    if (!stopping) log(`cannot make the booking API's credential: ${(error as Error).message}; see the node logs`);
    return;
  }
  if (stopping) return;
  startScheduler(token);
  await waitForScheduler();
}

async function waitForScheduler(): Promise<void> {
  const deadline = performance.now() + readinessTimeoutMs;
  while (!stopping && performance.now() < deadline) {
    const answer = await getJson<HealthAnswer>(`${schedulerUrl}/healthz`);
    if (answer !== undefined && ownHealthyScheduler(supervisor.pid("scheduler"), answer.status, answer.body)) {
      log(`booking page: ${schedulerUrl}/ (API: ${schedulerUrl}/api)`);
      return;
    }
    await pause(200);
  }
  if (!stopping) log(`the scheduler did not become healthy within ${readinessTimeoutMs / 1000} s: see ${join(dataRoot, "app.log")}`);
}

/** stop stops every child, the scheduler first (it would only see the nodes go), and exits with `exitCode`. */
async function stop(exitCode: number, why: string): Promise<never> {
  if (!stopping) {
    stopping = true;
    log(`${why}: stopping the scheduler and the nodes`);
    const { killed } = await supervisor.stopAll(["scheduler"]);
    if (killed.length > 0) log(`had to kill ${killed.join(", ")}: ${killed.length > 1 ? "they" : "it"} did not stop within 15 s`);
    log("stopped");
    process.exit(exitCode);
  }
  return new Promise<never>(() => undefined); // The first stop exits.
}

/** failed reports a child that exited unasked, with its last lines, and stops the rest: npm start exits 1. */
async function failed(exit: ChildExit): Promise<void> {
  if (stopping) return;
  log(`${exit.name} exited unexpectedly (${exit.signal ?? `code ${exit.code}`}); its last lines:`);
  for (const line of exit.lastLines) console.log(`    ${line}`);
  if (exit.lastLines.length === 0) console.log("    (none)");
  await stop(1, `${exit.name} is gone`);
}

for (const name of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(name, () => void stop(0, name));
if (Number.isFinite(secondsMax)) setTimeout(() => void stop(0, `${secondsMax} s are up`), secondsMax * 1000);
const leaderUrl = await waitForLeader();
if (leaderUrl !== undefined) await startBookingApi(leaderUrl);
