// `npm start`: the whole system on this machine, on embedded defaults. It starts three lock nodes
// as child processes on 127.0.0.1:7001-7003 (data under ./data/n1..n3) and the booking API with
// its page on 127.0.0.1:8080 (logs in ./data/app.log), prints where each listens, waits for a
// leader and for the scheduler, and prints the URLs of the booking page and of the nodes' status
// pages. Ctrl-C (or SIGTERM) stops everything cleanly.
// The cluster secret and API token are generated on first start and kept in
// ./data/credentials.json, so a restart finds the same cluster.
//
//   npm start                   until Ctrl-C
//   npm start -- --seconds 10   stop by itself after 10 seconds
//   npm start -- --data DIR     keep the data elsewhere

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values } = parseArgs({ options: { seconds: { type: "string" }, data: { type: "string" } } });
const secondsMax = values.seconds === undefined ? Number.POSITIVE_INFINITY : Number(values.seconds);
if (!(secondsMax > 0)) {
  console.error(`start: --seconds must be a positive number, got "${values.seconds}"`);
  process.exit(2);
}
const dataRoot = resolve(values.data ?? "data");
mkdirSync(dataRoot, { recursive: true });

interface Credentials {
  clusterSecret: string;
  apiToken: string;
}
const credentialsPath = join(dataRoot, "credentials.json");
const credentials: Credentials = existsSync(credentialsPath)
  ? (JSON.parse(readFileSync(credentialsPath, "utf8")) as Credentials)
  : { clusterSecret: randomBytes(24).toString("hex"), apiToken: randomBytes(24).toString("hex") };
writeFileSync(credentialsPath, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });

const nodes = [1, 2, 3].map((position) => ({ id: `n${position}`, port: 7000 + position }));
const schedulerPort = 8080;
const peers = nodes.map((node) => `${node.id}=http://127.0.0.1:${node.port}`).join(",");
const log = (message: string): void => console.log(`${new Date().toISOString()} ${message}`);

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
      SCTEC_BOOKING_URL: `http://127.0.0.1:${schedulerPort}/`,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
  child.on("exit", (code, signal) => {
    children.delete(node.id);
    if (!stopping) log(`node ${node.id} exited (${signal ?? `code ${code}`}); see ${join(dataRoot, `${node.id}.log`)}`);
  });
  children.set(node.id, child);
  log(`node ${node.id}: http://127.0.0.1:${node.port} (status page: http://127.0.0.1:${node.port}/, pid ${child.pid})`);
}
const scheduler = spawn(process.execPath, ["--import", "tsx", "scheduler/main.ts"], {
  env: {
    ...process.env,
    SCHEDULER_LISTEN: `127.0.0.1:${schedulerPort}`,
    SCHEDULER_NODES: nodes.map((node) => `http://127.0.0.1:${node.port}`).join(","),
    SCTEC_API_TOKEN: credentials.apiToken,
    SCHEDULER_LOG_DIR: dataRoot,
  },
  stdio: ["ignore", "ignore", "inherit"],
});
scheduler.on("exit", (code, signal) => {
  children.delete("scheduler");
  if (!stopping) log(`the scheduler exited (${signal ?? `code ${code}`}); see ${join(dataRoot, "app.log")}`);
});
children.set("scheduler", scheduler);
log(`scheduler: http://127.0.0.1:${schedulerPort} (pid ${scheduler.pid}, log ${join(dataRoot, "app.log")})`);
log(`data in ${dataRoot}; API token: ${credentials.apiToken}`);
log(`try: SCTEC_API_TOKEN=${credentials.apiToken} npm run cli -- lock slot-1`);

let stopping = false;
async function waitForLeader(): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!stopping && Date.now() < deadline) {
    for (const node of nodes) {
      try {
        const response = await fetch(`http://127.0.0.1:${node.port}/status`);
        const status = (await response.json()) as { role: string; term: number; nodeId: string };
        if (status.role === "leader") {
          log(`cluster ready: leader ${status.nodeId} in term ${status.term}`);
          log(
            `status pages: ${nodes.map((each) => `http://127.0.0.1:${each.port}/`).join(" ")} (metrics: /metrics on each node and the scheduler)`,
          );
          await waitForScheduler(deadline);
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

async function waitForScheduler(deadline: number): Promise<void> {
  while (!stopping && Date.now() < deadline) {
    try {
      const response = await fetch(`http://127.0.0.1:${schedulerPort}/healthz`);
      if (response.ok) {
        log(`booking page: http://127.0.0.1:${schedulerPort}/ (API: http://127.0.0.1:${schedulerPort}/api)`);
        return;
      }
    } catch {
      // Not listening yet.
    }
    await new Promise((resolveWait) => setTimeout(resolveWait, 200));
  }
  if (!stopping) log(`the scheduler did not become healthy within 30 s: see ${join(dataRoot, "app.log")}`);
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
