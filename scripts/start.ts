// `npm start`: the whole system on this machine, on embedded defaults. It starts three lock nodes
// as child processes on 127.0.0.1:7001-7003 (data under ./data/n1..n3) and the booking API with
// its page on 127.0.0.1:8080 (logs in ./data/app.log), prints where each listens, waits for a
// leader and for the scheduler, and prints the URLs of the booking page and of the nodes' status
// pages. Ctrl-C (or SIGTERM) stops everything cleanly.
// The cluster secret and the bootstrap admin token are generated on first start and kept in
// ./data/credentials.json, so a restart finds the same cluster. The booking API does not use the
// admin token: once the cluster has a leader, a `locker` credential named "scheduler" is made for
// it (and kept in the same file), and the scheduler starts with that token.
//
//   npm start                   until Ctrl-C
//   npm start -- --seconds 10   stop by itself after 10 seconds
//   npm start -- --data DIR     keep the data elsewhere
//   npm start -- --tls          everything over TLS: HTTPS for the nodes and the booking API,
//                               mutual TLS between the nodes, certificates of a local CA made
//                               (once) under ./data/tls (npm run certs; trust data/tls/ca.pem)

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { Agent, fetch as undiciFetch } from "undici";
import { makeCertificates } from "../harness/certificates.ts";

const { values } = parseArgs({ options: { seconds: { type: "string" }, data: { type: "string" }, tls: { type: "boolean" } } });
const secondsMax = values.seconds === undefined ? Number.POSITIVE_INFINITY : Number(values.seconds);
if (!(secondsMax > 0)) {
  console.error(`start: --seconds must be a positive number, got "${values.seconds}"`);
  process.exit(2);
}
const dataRoot = resolve(values.data ?? "data");
mkdirSync(dataRoot, { recursive: true });

interface Credentials {
  clusterSecret: string;
  /** apiToken: the bootstrap admin token (every node's SCTEC_API_TOKEN). */
  apiToken: string;
  /** schedulerToken: the booking API's own `locker` credential, made through the cluster once it runs. */
  schedulerToken?: string;
}
const credentialsPath = join(dataRoot, "credentials.json");
const credentials: Credentials = existsSync(credentialsPath)
  ? (JSON.parse(readFileSync(credentialsPath, "utf8")) as Credentials)
  : { clusterSecret: randomBytes(24).toString("hex"), apiToken: randomBytes(24).toString("hex") };
writeFileSync(credentialsPath, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });

const nodes = [1, 2, 3].map((position) => ({ id: `n${position}`, port: 7000 + position }));
const schedulerPort = 8080;
const log = (message: string): void => console.log(`${new Date().toISOString()} ${message}`);
const tls = values.tls === true ? await prepareTls() : undefined;
const scheme = tls === undefined ? "http" : "https";
const peers = nodes.map((node) => `${node.id}=${scheme}://127.0.0.1:${node.port}`).join(",");

/**
 * prepareTls makes (or keeps) the local CA and the certificates under data/tls, and returns what
 * each process needs: the nodes' and the scheduler's TLS settings, and a dispatcher that trusts the
 * CA for this script's own requests.
 */
async function prepareTls(): Promise<{ env: (name: string) => Record<string, string>; ca: string; dispatcher: Agent }> {
  const { ca, files } = await makeCertificates({
    out: join(dataRoot, "tls"),
    nodes: nodes.map((node) => node.id),
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

const children = new Map<string, ChildProcess>();
for (const node of nodes) {
  const child = spawn(process.execPath, ["--import", "tsx", "node/main.ts"], {
    env: {
      ...process.env,
      SCTEC_NODE_ID: node.id,
      SCTEC_LISTEN: `127.0.0.1:${node.port}`,
      SCTEC_PEERS: peers,
      SCTEC_DATA_DIR: join(dataRoot, node.id),
      SCTEC_CLUSTER_SECRET: credentials.clusterSecret,
      SCTEC_API_TOKEN: credentials.apiToken,
      SCTEC_LOG_FILE: join(dataRoot, `${node.id}.log`),
      SCTEC_BOOKING_URL: `${scheme}://127.0.0.1:${schedulerPort}/`,
      ...tls?.env(node.id),
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  child.on("exit", (code, signal) => {
    children.delete(node.id);
    if (!stopping) log(`node ${node.id} exited (${signal ?? `code ${code}`}); see ${join(dataRoot, `${node.id}.log`)}`);
  });
  children.set(node.id, child);
  log(`node ${node.id}: ${scheme}://127.0.0.1:${node.port} (status page: ${scheme}://127.0.0.1:${node.port}/, pid ${child.pid})`);
}
log(`data in ${dataRoot}; API token: ${credentials.apiToken}`);
log(
  tls === undefined
    ? `try: SCTEC_API_TOKEN=${credentials.apiToken} npm run cli -- lock slot-1`
    : `try: SCTEC_API_TOKEN=${credentials.apiToken} SCTEC_CA_FILE=${join(dataRoot, "tls", "ca.pem")} SCTEC_NODES=${nodes.map((node) => `https://127.0.0.1:${node.port}`).join(",")} npm run cli -- lock slot-1`,
);
if (tls !== undefined)
  log(`TLS: every process serves a certificate of the local CA ${join(dataRoot, "tls", "ca.pem")}; let your browser trust it`);

let stopping = false;
async function waitForLeader(): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!stopping && Date.now() < deadline) {
    for (const node of nodes) {
      try {
        const response = await fetchLocal(`${scheme}://127.0.0.1:${node.port}/status`);
        const status = (await response.json()) as { role: string; term: number; nodeId: string };
        if (status.role === "leader") {
          log(`cluster ready: leader ${status.nodeId} in term ${status.term}`);
          log(
            `status pages: ${nodes.map((each) => `${scheme}://127.0.0.1:${each.port}/`).join(" ")} (metrics: /metrics on each node and the scheduler)`,
          );
          await startBookingApi(deadline);
          return;
        }
      } catch {
        // Not listening yet.
      }
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 200));
  }
  if (!stopping) log("no leader within 30 s: check the node logs");
}

/**
 * ensureSchedulerCredential returns the booking API's `locker` token: the one kept from an earlier
 * start if the cluster still knows it, else a new credential "scheduler" (replacing one of that
 * name whose token was lost), made with the bootstrap admin token and kept in credentials.json.
 */
async function ensureSchedulerCredential(deadline: number): Promise<string> {
  const nodeUrl = `${scheme}://127.0.0.1:${nodes[0]?.port}`;
  const asAdmin = { authorization: `Bearer ${credentials.apiToken}`, "content-type": "application/json" };
  for (;;) {
    try {
      if (credentials.schedulerToken !== undefined) {
        const whoami = await fetchLocal(`${nodeUrl}/auth/whoami`, { headers: { authorization: `Bearer ${credentials.schedulerToken}` } });
        if (whoami.ok) return credentials.schedulerToken;
        if (whoami.status !== 401) throw new Error(`whoami answered ${whoami.status}`);
      }
      // A "scheduler" credential whose token this file does not hold (data copied, file lost) is replaced.
      await fetchLocal(`${nodeUrl}/admin/credentials/scheduler/revoke`, { method: "POST", headers: asAdmin });
      const created = await fetchLocal(`${nodeUrl}/admin/credentials`, {
        method: "POST",
        headers: asAdmin,
        body: JSON.stringify({ name: "scheduler", role: "locker" }),
      });
      if (created.status !== 201)
        throw new Error(`creating the scheduler's credential answered ${created.status}: ${await created.text()}`);
      credentials.schedulerToken = ((await created.json()) as { token: string }).token;
      writeFileSync(credentialsPath, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
      log(`made the booking API's own credential "scheduler" (role locker), kept in ${credentialsPath}`);
      return credentials.schedulerToken;
    } catch (error) {
      // The leader may have just changed: a few tries within the start's deadline.
      if (stopping || Date.now() > deadline) throw error;
      await new Promise((resolveWait) => setTimeout(resolveWait, 200));
    }
  }
}

/** startBookingApi makes (or finds) the booking API's credential, starts it, and waits until it answers. */
async function startBookingApi(deadline: number): Promise<void> {
  let token: string;
  try {
    token = await ensureSchedulerCredential(deadline);
  } catch (error) {
    if (!stopping) log(`cannot make the booking API's credential: ${(error as Error).message}; see the node logs`);
    return;
  }
  startScheduler(token);
  // A deadline of its own: the scheduler starts only once the cluster runs, and on a loaded machine
  // tsx alone takes 10-20 s to start it.
  await waitForScheduler(Date.now() + 60_000);
}

/** startScheduler starts the booking API with its own `locker` token. */
function startScheduler(token: string): void {
  const scheduler = spawn(process.execPath, ["--import", "tsx", "scheduler/main.ts"], {
    env: {
      ...process.env,
      SCHEDULER_LISTEN: `127.0.0.1:${schedulerPort}`,
      SCHEDULER_NODES: nodes.map((node) => `${scheme}://127.0.0.1:${node.port}`).join(","),
      SCTEC_API_TOKEN: token,
      SCHEDULER_LOG_DIR: dataRoot,
      ...tls?.env("scheduler"),
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  scheduler.on("exit", (code, signal) => {
    children.delete("scheduler");
    if (!stopping) log(`the scheduler exited (${signal ?? `code ${code}`}); see ${join(dataRoot, "app.log")}`);
  });
  children.set("scheduler", scheduler);
  log(`scheduler: ${scheme}://127.0.0.1:${schedulerPort} (pid ${scheduler.pid}, log ${join(dataRoot, "app.log")})`);
}

async function waitForScheduler(deadline: number): Promise<void> {
  while (!stopping && Date.now() < deadline) {
    try {
      const response = await fetchLocal(`${scheme}://127.0.0.1:${schedulerPort}/healthz`);
      if (response.ok) {
        log(`booking page: ${scheme}://127.0.0.1:${schedulerPort}/ (API: ${scheme}://127.0.0.1:${schedulerPort}/api)`);
        return;
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 200));
  }
  if (!stopping) log(`the scheduler did not become healthy in time: see ${join(dataRoot, "app.log")}`);
}

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  log("stopping the scheduler and the nodes");
  for (const child of children.values()) child.kill("SIGTERM");
  const deadline = Date.now() + 10_000;
  while (children.size > 0 && Date.now() < deadline) await new Promise((resolveWait) => setTimeout(resolveWait, 50));
  for (const child of children.values()) child.kill("SIGKILL");
  log("stopped");
  process.exit(0);
}
process.on("SIGINT", () => void stop());
process.on("SIGTERM", () => void stop());
void waitForLeader();
if (Number.isFinite(secondsMax)) setTimeout(() => void stop(), secondsMax * 1000);
