// `npx tsx bench/profile-locks.ts [--workload c64|contended] [--seconds 8] [--warmup 0] [--tls] [--profile] [--dir DIR]`:
// where the CPU goes under one bench:locks workload. It always prints the CPU time each process
// (leader, followers, this client) spent per cycle, read from /proc (Linux): on a shared machine
// that figure is far steadier than throughput, which moves with whatever else runs. It also
// prints each node's fsyncs per cycle (from its /metrics): how well writes were batched. With
// --profile, each node also runs with `--cpu-prof`, and the profiles are summarized by self time
// per module (profiling slows everything down, so its throughput is not comparable with
// `npm run bench:locks`). The profiles are written when the nodes stop on SIGTERM (a SIGKILL
// would lose them), to DIR (default: a fresh directory under the system's temp dir); a node writes
// one per thread (the HTTP thread and the raft thread). With --tls the cluster runs over TLS (HTTPS,
// mutual TLS between the nodes) and the clients trust its CA: the CPU per cycle of a plain run and
// of a --tls run, side by side, say what TLS costs and where. With --warmup S the clients run S
// seconds before the measured ones: what connecting costs (over TLS, the handshakes) is then left
// out, and the figures are the steady state's. It also prints each process's CPU per cycle by
// thread (a node's main thread is its HTTP thread; its busiest worker, the raft thread) and how
// many connections the clients opened.

import diagnostics from "node:diagnostics_channel";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LockClient } from "../client/lock-client.ts";
import { ProcessCluster, waitFor } from "../harness/process-cluster.ts";
import { parsePrometheusText } from "../harness/prometheus-text.ts";
import { tlsOf } from "./failover.ts";
import { clockTicksPerSecond, processCpuMs } from "./measure.ts";

const { values } = parseArgs({
  options: {
    workload: { type: "string", default: "c64" },
    seconds: { type: "string", default: "8" },
    warmup: { type: "string", default: "0" },
    profile: { type: "boolean", default: false },
    tls: { type: "boolean", default: false },
    dir: { type: "string" },
  },
});
const seconds = Number(values.seconds);
const warmupSeconds = Number(values.warmup);
const dir = values.dir ?? mkdtempSync(join(tmpdir(), "sctec-profile-"));

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string };
  readonly hitCount?: number;
}
interface Profile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples: readonly number[];
}

/** moduleOf names where a sampled function lives: a package, a Node internal, one of our folders, or the native function. */
function moduleOf(frame: ProfileNode["callFrame"]): string {
  const { url, functionName } = frame;
  if (url === "") return `(${functionName || "native"})`;
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (packageMatch !== null) return packageMatch[1] as string;
  if (url.startsWith("node:")) return url;
  const ours = /\/(raft|node|client|tests|bench)\/(.*)$/.exec(url);
  return ours === null ? url : `${ours[1]}/${ours[2]}`;
}

function summarize(file: string): string {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byModule = new Map<string, number>();
  let total = 0;
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    total += hits;
    const module = moduleOf(node.callFrame);
    byModule.set(module, (byModule.get(module) ?? 0) + hits);
  }
  const seconds = (profile.endTime - profile.startTime) / 1e6;
  const rows = [...byModule]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 25)
    .map(([module, hits]) => `  ${((100 * hits) / total).toFixed(1).padStart(5)}%  ${module}`);
  return `${file} (${seconds.toFixed(1)} s, ${total} samples)\n${rows.join("\n")}`;
}

/** fsyncCount: how many synced saves (one per persisted Ready) a node has made, from its /metrics. */
async function fsyncCount(cluster: ProcessCluster, url: string): Promise<number> {
  const text = await (await cluster.fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  return parsePrometheusText(text).sum("sctec_storage_fsync_seconds_count", { op: "save" });
}

/**
 * threadCpuMs: each thread of a process with the CPU it has used so far (ms), by thread id, from
 * /proc/<pid>/task (Linux). A node's main thread is its HTTP thread (its id is the pid); the raft
 * thread is the worker that runs the most after it (libuv's pool threads run LevelDB and fsync).
 */
function threadCpuMs(pid: number): Map<number, { name: string; cpuMs: number }> {
  const threads = new Map<number, { name: string; cpuMs: number }>();
  const dir = `/proc/${pid}/task`;
  if (!existsSync(dir)) return threads;
  for (const tid of readdirSync(dir).map(Number)) {
    try {
      const text = readFileSync(`${dir}/${tid}/stat`, "utf8");
      const name = text.slice(text.indexOf("(") + 1, text.lastIndexOf(")"));
      const fields = text.slice(text.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3, `state`.
      threads.set(tid, { name, cpuMs: ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSecond });
    } catch {
      // The thread ended meanwhile.
    }
  }
  return threads;
}

/** threadBreakdown: per thread (the busiest first), the CPU ms per cycle it used between two snapshots. */
function threadBreakdown(
  pid: number,
  before: Map<number, { name: string; cpuMs: number }>,
  after: Map<number, { name: string; cpuMs: number }>,
  cycles: number,
): string {
  const rows = [...after]
    .map(([tid, { name, cpuMs }]) => ({ tid, name, msPerCycle: (cpuMs - (before.get(tid)?.cpuMs ?? 0)) / cycles }))
    .filter((row) => row.msPerCycle >= 0.005)
    .sort((a, b) => b.msPerCycle - a.msPerCycle);
  return rows.map((row) => `${row.tid === pid ? "main" : `${row.name}:${row.tid}`} ${row.msPerCycle.toFixed(3)}`).join(", ");
}

/** cpuSeconds: user + system CPU time a process has used so far (it throws once the process is gone: processCpuMs). */
function cpuSeconds(pid: number, what: string): number {
  return processCpuMs(pid, what) / 1000;
}

/**
 * connectionsOpened counts the connections this process's undici clients open (the LockClients',
 * and the harness's own status reads): with kept-alive connections it stays near one per client
 * and node, and a count that grows with the cycles means connections are cut and opened again
 * (over TLS, each with a handshake).
 */
let connectionsOpened = 0;
diagnostics.channel("undici:client:connected").subscribe(() => {
  connectionsOpened++;
});

async function main(): Promise<void> {
  const cluster = await ProcessCluster.start({
    ...(values.profile ? { nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${dir}`] } : {}),
    tls: values.tls,
  });
  let leader = "";
  let leaderPid: number | undefined;
  // Everything after the start is inside the try: a failure anywhere (no leader in time on a busy
  // machine, say) still stops the nodes instead of leaving them running.
  try {
    leader = await cluster.waitForLeader(10_000);
    // A follower may vote (its raft thread runs) before its HTTP port listens: wait for every one.
    for (const id of cluster.ids()) await waitFor(() => cluster.status(id), `${id} to answer`, 60_000);
    leaderPid = cluster.pid(leader);
    const pids = new Map<string, number>();
    for (const id of cluster.ids()) pids.set(id === leader ? `${id} (leader)` : id, cluster.pid(id) ?? 0);
    pids.set("client", process.pid);
    let operations = 0;
    // The measured window starts after the warm-up (at once without one): everything is read then.
    const snapshot = async () => {
      const operationsBefore = operations;
      const connectionsBefore = connectionsOpened;
      const cpuBefore = new Map([...pids].map(([name, pid]) => [name, cpuSeconds(pid, name)]));
      const threadsBefore = new Map([...pids].map(([name, pid]) => [name, threadCpuMs(pid)]));
      const fsyncsBefore = await Promise.all(cluster.ids().map((id) => fsyncCount(cluster, cluster.url(id))));
      return { cpuBefore, threadsBefore, fsyncsBefore, operationsBefore, connectionsBefore };
    };
    const measured: ReturnType<typeof snapshot> =
      warmupSeconds > 0
        ? new Promise((resolve, reject) => setTimeout(() => snapshot().then(resolve, reject), warmupSeconds * 1000))
        : snapshot();
    if (warmupSeconds === 0) await measured;
    const deadline = performance.now() + (warmupSeconds + seconds) * 1000;
    const contended = values.workload === "contended";
    await Promise.all(
      Array.from({ length: contended ? 16 : 64 }, async (_, worker) => {
        const client = new LockClient({
          nodes: cluster.urls(),
          apiToken: cluster.apiToken,
          retriesMax: 20,
          retryBaseMs: 5,
          ...tlsOf(cluster),
        });
        while (performance.now() < deadline) {
          const resource = contended ? "profile-contended" : `profile-${worker}`;
          const lease = await client.acquire([resource], { ttlMs: 60_000, autoRenew: false, waitMs: contended ? 10_000 : 0 });
          await lease.release();
          operations++;
        }
      }),
    );
    const { cpuBefore, threadsBefore, fsyncsBefore, operationsBefore, connectionsBefore } = await measured;
    operations -= operationsBefore;
    const threadsAfter = new Map([...pids].map(([name, pid]) => [name, threadCpuMs(pid)]));
    const cpu = [...pids].map(
      ([name, pid]) => `${name} ${((1000 * (cpuSeconds(pid, name) - (cpuBefore.get(name) ?? 0))) / operations).toFixed(3)}`,
    );
    const fsyncsAfter = await Promise.all(cluster.ids().map((id) => fsyncCount(cluster, cluster.url(id))));
    const fsyncs = cluster.ids().map((id, position) => {
      const count = (fsyncsAfter[position] ?? Number.NaN) - (fsyncsBefore[position] ?? Number.NaN);
      return `${id}${id === leader ? " (leader)" : ""} ${(count / operations).toFixed(2)}`;
    });
    console.log(
      `${values.workload}${values.tls ? " over TLS" : ""}: ${(operations / seconds).toFixed(0)} cycles/s; CPU ms per cycle: ${cpu.join(", ")}`,
    );
    console.log(`fsyncs per cycle: ${fsyncs.join(", ")}`);
    console.log("CPU ms per cycle by thread:");
    for (const [name, pid] of pids) {
      const before = threadsBefore.get(name) ?? new Map();
      console.log(`  ${name}: ${threadBreakdown(pid, before, threadsAfter.get(name) ?? new Map(), operations)}`);
    }
    console.log(`connections opened by this process: ${connectionsOpened - connectionsBefore} (${operations} cycles)`);
  } finally {
    for (const id of cluster.ids()) await cluster.kill(id, "SIGTERM");
    await cluster.close();
  }
  if (!values.profile) return;
  console.log(`leader ${leader} (pid ${leaderPid}, in the file name); profiles in ${dir}`);
  for (const file of readdirSync(dir).filter((name) => name.endsWith(".cpuprofile"))) console.log(summarize(join(dir, file)));
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
