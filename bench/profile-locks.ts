// `npx tsx bench/profile-locks.ts [--workload c1|c64|contended] [--seconds 8] [--warmup 0] [--warmup-clients N] [--idle 0] [--floor] [--tls] [--profile] [--sampling-us 500] [--dir DIR]`:
// where the time and the CPU go under one bench:locks workload (c1: one client, acquire+release of
// its own resource; c64: 64 such clients; contended: 16 clients on one resource).
//
// It always prints the CPU time each process (leader, followers, this client) spent per cycle,
// read from /proc (Linux): on a shared machine that figure is far steadier than throughput, which
// moves with whatever else runs. Beside it: the same by thread (a node's main thread is its HTTP
// thread; its busiest worker, the raft thread), each node's fsyncs per cycle and their mean
// duration (from its /metrics: how well writes were batched, and what one costs), where one
// commit's time goes (the client's round trip, the leader's HTTP time, its wait for a quorum after
// its own write, the fsyncs), and how many connections the clients opened. With --idle S it first
// measures the cluster idle for S seconds: the CPU a node uses per second with no load (ticks,
// heartbeats, timers), which a cycle pays its share of at low rates. With --floor it first measures
// the floor under a commit on this machine (floor.ts: a synced write, an HTTP and a WebSocket round trip).
//
// With --profile, each node runs with the V8 inspector, and both of its threads (the HTTP thread
// and the raft thread) are CPU-profiled over the measured window only (thread-profiler.ts; not
// with `--cpu-prof`, which missed the raft thread and profiled start and stop too). The profiles
// are split by stage of a lock operation (profile-stages.ts) and printed in ms per cycle, by role
// (leader, followers) and thread, with each thread's top functions by self time. They are written
// to DIR (default: a fresh directory under the system's temp dir) as `<node>-<role>-<thread>.cpuprofile`.
// Profiling slows everything down: its throughput is not comparable with `npm run bench:locks`,
// and its profile times are wall time while the thread runs JavaScript (a thread the OS preempts
// still counts), so the /proc CPU of the same thread is printed beside them.
//
// With --tls the cluster runs over TLS (HTTPS, mutual TLS between the nodes) and the clients trust
// its CA: the CPU per cycle of a plain run and of a --tls run, side by side, say what TLS costs and
// where. With --warmup S the clients run S seconds before the measured ones: what connecting costs
// (over TLS, the handshakes) is then left out, and the figures are the steady state's. With
// --warmup-clients N the warm-up runs N clients on distinct resources instead, and the workload
// starts after it: bench:compare's order (16 clients for 2 s, then concurrency 1). A node's code
// is compiled and optimized by V8 in its first seconds of work, at a cost in CPU the figures show.

import diagnostics from "node:diagnostics_channel";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { LockClient } from "../client/lock-client.ts";
import { ProcessCluster, waitFor } from "../harness/process-cluster.ts";
import { type Exposition, parsePrometheusText } from "../harness/prometheus-text.ts";
import { tlsOf } from "./failover.ts";
import { describeFloor, measureFloor } from "./floor.ts";
import { clockTicksPerSecond, percentile, processCpuMs } from "./measure.ts";
import { profileStages, type StageTimes } from "./profile-stages.ts";
import { NodeThreadProfiler, type ThreadProfiles } from "./thread-profiler.ts";

const { values } = parseArgs({
  options: {
    workload: { type: "string", default: "c64" },
    seconds: { type: "string", default: "8" },
    warmup: { type: "string", default: "0" },
    "warmup-clients": { type: "string" },
    idle: { type: "string", default: "0" },
    profile: { type: "boolean", default: false },
    floor: { type: "boolean", default: false },
    "sampling-us": { type: "string", default: "500" },
    tls: { type: "boolean", default: false },
    dir: { type: "string" },
  },
});

/** workloads: how many clients, and whether they share one resource (and wait for it). */
const workloads: Readonly<Record<string, { readonly clients: number; readonly contended: boolean }>> = {
  c1: { clients: 1, contended: false },
  c64: { clients: 64, contended: false },
  contended: { clients: 16, contended: true },
};
function workloadOf(name: string): { readonly clients: number; readonly contended: boolean } {
  const found = workloads[name];
  if (found === undefined) throw new Error(`--workload is one of ${Object.keys(workloads).join(", ")}, not ${name}`);
  return found;
}
const workload = workloadOf(values.workload);
const seconds = Number(values.seconds);
const warmupSeconds = Number(values.warmup);
/** warmupClients: with --warmup-clients N, the warm-up runs N clients on distinct resources before the workload starts (as bench:compare warms up with 16). */
const warmupClients = values["warmup-clients"] === undefined ? undefined : Number(values["warmup-clients"]);
if (warmupClients !== undefined && !(Number.isInteger(warmupClients) && warmupClients >= 1 && warmupClients <= 256)) {
  throw new Error(`--warmup-clients must be an integer from 1 to 256, not ${values["warmup-clients"]}`);
}
const idleSeconds = Number(values.idle);
const samplingIntervalUs = Number(values["sampling-us"]);
for (const [name, value, min] of [
  ["seconds", seconds, 1],
  ["warmup", warmupSeconds, 0],
  ["idle", idleSeconds, 0],
  ["sampling-us", samplingIntervalUs, 50],
] as const) {
  if (!(Number.isFinite(value) && value >= min)) throw new Error(`--${name} must be a number of at least ${min}, not ${value}`);
}
const dir = values.dir ?? mkdtempSync(join(tmpdir(), "sctec-profile-"));
mkdirSync(dir, { recursive: true });

/** fsyncCount: how many synced saves (one per persisted Ready) a node has made, from its /metrics. */
async function metricsOf(cluster: ProcessCluster, id: string): Promise<Exposition> {
  const text = await (await cluster.fetch(`${cluster.url(id)}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
  return parsePrometheusText(text);
}

/**
 * threadCpuMs: each thread of a process with the CPU it has used so far (ms), by thread id, from
 * /proc/<pid>/task (Linux). A node's main thread is its HTTP thread (its id is the pid); the raft
 * thread is the worker that runs the most after it (libuv's pool threads run LevelDB and fsync).
 */
function threadCpuMs(pid: number): Map<number, ThreadCounters> {
  const threads = new Map<number, ThreadCounters>();
  const dir = `/proc/${pid}/task`;
  if (!existsSync(dir)) return threads;
  for (const tid of readdirSync(dir).map(Number)) {
    try {
      const text = readFileSync(`${dir}/${tid}/stat`, "utf8");
      const name = text.slice(text.indexOf("(") + 1, text.lastIndexOf(")"));
      const fields = text.slice(text.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3, `state`.
      const status = readFileSync(`${dir}/${tid}/status`, "utf8");
      const switches = (field: string) => Number(new RegExp(`^${field}:\\s*(\\d+)`, "m").exec(status)?.[1] ?? Number.NaN);
      threads.set(tid, {
        name,
        cpuMs: ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSecond,
        voluntarySwitches: switches("voluntary_ctxt_switches"),
        involuntarySwitches: switches("nonvoluntary_ctxt_switches"),
      });
    } catch {
      // The thread ended meanwhile.
    }
  }
  return threads;
}

/**
 * ThreadCounters: a thread's name, CPU so far, and context switches so far: voluntary ones (it
 * slept, in epoll or on a lock, and something woke it: a wake-up each) and involuntary ones (the
 * OS preempted it: on a busy machine, often right after it woke another thread).
 */
interface ThreadCounters {
  readonly name: string;
  readonly cpuMs: number;
  readonly voluntarySwitches: number;
  readonly involuntarySwitches: number;
}

interface ThreadRow {
  readonly tid: number;
  readonly name: string;
  readonly msPerCycle: number;
  readonly wakeUpsPerCycle: number;
  readonly preemptionsPerCycle: number;
}

/** threadRows: per thread (the busiest first), the CPU ms and switches per cycle between two snapshots. */
function threadRows(before: Map<number, ThreadCounters>, after: Map<number, ThreadCounters>, cycles: number): ThreadRow[] {
  return [...after]
    .map(([tid, now]): ThreadRow => {
      const then = before.get(tid);
      return {
        tid,
        name: now.name,
        msPerCycle: (now.cpuMs - (then?.cpuMs ?? 0)) / cycles,
        wakeUpsPerCycle: (now.voluntarySwitches - (then?.voluntarySwitches ?? 0)) / cycles,
        preemptionsPerCycle: (now.involuntarySwitches - (then?.involuntarySwitches ?? 0)) / cycles,
      };
    })
    .sort((a, b) => b.msPerCycle - a.msPerCycle);
}

function threadBreakdown(pid: number, rows: readonly ThreadRow[]): string {
  return rows
    .filter((row) => row.msPerCycle >= 0.005)
    .map((row) => `${row.tid === pid ? "main" : `${row.name}:${row.tid}`} ${row.msPerCycle.toFixed(3)}`)
    .join(", ");
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

const loadText = () =>
  loadavg()
    .map((load) => load.toFixed(2))
    .join(" ");

/** Snapshot: what is read at each end of the measured window. */
interface Snapshot {
  readonly cpuMs: Map<string, number>;
  readonly threads: Map<string, Map<number, ThreadCounters>>;
  readonly metrics: Map<string, Exposition>;
  readonly operations: number;
  readonly connections: number;
}

/** Run: the cluster and what a measurement needs of it. */
interface Run {
  readonly cluster: ProcessCluster;
  readonly leader: string;
  /** pids: by name ("n1 (leader)", "n2", "client"). */
  readonly pids: Map<string, number>;
  readonly profilers: Map<string, NodeThreadProfiler>;
}

/** counters: the cycles done so far, and each operation's latency (ms) once `recording`. */
const counters = { operations: 0, recording: false, acquireMs: [] as number[], releaseMs: [] as number[] };

async function snapshot(run: Run): Promise<Snapshot> {
  const cpuMs = new Map([...run.pids].map(([name, pid]) => [name, cpuSeconds(pid, name) * 1000]));
  const threads = new Map([...run.pids].map(([name, pid]) => [name, threadCpuMs(pid)]));
  const metrics = new Map(await Promise.all(run.cluster.ids().map(async (id) => [id, await metricsOf(run.cluster, id)] as const)));
  return { cpuMs, threads, metrics, operations: counters.operations, connections: connectionsOpened };
}

/** measureIdle: each process's CPU per second with no load, over idleSeconds. */
async function measureIdle(run: Run): Promise<void> {
  if (idleSeconds === 0) return;
  const before = new Map([...run.pids].map(([name, pid]) => [name, cpuSeconds(pid, name)]));
  const threadsBefore = new Map([...run.pids].map(([name, pid]) => [name, threadCpuMs(pid)]));
  const startedMs = performance.now();
  await new Promise((resolve) => setTimeout(resolve, idleSeconds * 1000));
  const elapsedS = (performance.now() - startedMs) / 1000;
  const rows = [...run.pids].map(
    ([name, pid]) => `${name} ${((1000 * (cpuSeconds(pid, name) - (before.get(name) ?? 0))) / elapsedS).toFixed(1)}`,
  );
  console.log(`idle, CPU ms per second (${elapsedS.toFixed(1)} s, load ${loadText()}): ${rows.join(", ")}`);
  for (const [name, pid] of run.pids) {
    if (name === "client") continue;
    // Per second, not per cycle: threadRows divides by the count it is given.
    const rows = threadRows(threadsBefore.get(name) ?? new Map(), threadCpuMs(pid), elapsedS);
    const main = rows.find((row) => row.tid === pid);
    const raft = rows.find((row) => row.tid !== pid);
    const others = rows.filter((row) => row !== main && row !== raft).reduce((sum, row) => sum + row.msPerCycle, 0);
    const describe = (row: ThreadRow | undefined) =>
      row === undefined ? "?" : `${row.msPerCycle.toFixed(1)} ms, ${row.wakeUpsPerCycle.toFixed(0)} wake-ups`;
    console.log(
      `  ${name} per second: main thread ${describe(main)}; raft thread ${describe(raft)}; the other threads ${others.toFixed(1)} ms`,
    );
  }
}

/** drive runs the workload's clients until `deadline`, counting cycles and, once recording, their latencies. */
async function drive(
  run: Run,
  deadline: number,
  shape: { readonly clients: number; readonly contended: boolean } = workload,
): Promise<void> {
  await Promise.all(
    Array.from({ length: shape.clients }, async (_, worker) => {
      const client = new LockClient({
        nodes: run.cluster.urls(),
        apiToken: run.cluster.apiToken,
        retriesMax: 20,
        retryBaseMs: 5,
        ...tlsOf(run.cluster),
      });
      const contended = shape.contended;
      while (performance.now() < deadline) {
        const resource = contended ? "profile-contended" : `profile-${worker}`;
        const startedMs = performance.now();
        const lease = await client.acquire([resource], { ttlMs: 60_000, autoRenew: false, waitMs: contended ? 10_000 : 0 });
        const acquiredMs = performance.now();
        await lease.release();
        if (counters.recording) {
          counters.acquireMs.push(acquiredMs - startedMs);
          counters.releaseMs.push(performance.now() - acquiredMs);
        }
        counters.operations++;
      }
    }),
  );
}

async function main(): Promise<void> {
  // Before the cluster starts, so that nothing else of this run competes with it.
  if (values.floor) console.log(describeFloor(await measureFloor({ samples: 500 })));
  const cluster = await ProcessCluster.start({ tls: values.tls, inspect: values.profile });
  const profilers = new Map<string, NodeThreadProfiler>();
  let profiles: Map<string, ThreadProfiles> | undefined;
  let run: Run | undefined;
  let measuredRun: Measured | undefined;
  // Everything after the start is inside the try: a failure anywhere (no leader in time on a busy
  // machine, say) still stops the nodes instead of leaving them running.
  try {
    const leader = await cluster.waitForLeader(10_000);
    // A follower may vote (its raft thread runs) before its HTTP port listens: wait for every one.
    for (const id of cluster.ids()) await waitFor(() => cluster.status(id), `${id} to answer`, 60_000);
    const pids = new Map<string, number>();
    for (const id of cluster.ids()) pids.set(id === leader ? `${id} (leader)` : id, cluster.pid(id) ?? 0);
    pids.set("client", process.pid);
    if (values.profile) {
      for (const id of cluster.ids()) {
        profilers.set(id, await NodeThreadProfiler.attach(cluster.inspectorPorts.get(id) as number, samplingIntervalUs));
      }
    }
    run = { cluster, leader, pids, profilers };
    await measureIdle(run);
    const current = run;
    // The measured window starts after the warm-up (at once without one): everything is read then.
    const startWindow = async (): Promise<Snapshot> => {
      await Promise.all([...profilers.values()].map((profiler) => profiler.start()));
      counters.recording = true;
      return snapshot(current);
    };
    if (warmupClients !== undefined) {
      // A warm-up of its own shape, then the workload from a standing start (bench:compare's order).
      await drive(run, performance.now() + warmupSeconds * 1000, { clients: warmupClients, contended: false });
      counters.operations = 0;
    }
    const loadBefore = loadText();
    const inStream = warmupClients === undefined && warmupSeconds > 0;
    const measured: Promise<Snapshot> = inStream
      ? new Promise((resolve, reject) => setTimeout(() => startWindow().then(resolve, reject), warmupSeconds * 1000))
      : startWindow();
    if (!inStream) await measured;
    await drive(run, performance.now() + ((inStream ? warmupSeconds : 0) + seconds) * 1000);
    const before = await measured;
    const after = await snapshot(run);
    profiles = new Map(await Promise.all([...profilers].map(async ([id, profiler]) => [id, await profiler.stop()] as const)));
    const leaderNow = await cluster.waitForLeader(10_000);
    measuredRun = report(run, before, after, loadBefore);
    if (leaderNow !== leader) console.log(`NOTE: the leader changed during the run (${leader} → ${leaderNow}): the figures mix roles`);
  } finally {
    for (const profiler of profilers.values()) await profiler.close().catch(() => undefined);
    for (const id of cluster.ids()) await cluster.kill(id, "SIGTERM");
    await cluster.close();
  }
  if (values.profile && profiles !== undefined && run !== undefined && measuredRun !== undefined)
    reportProfiles(run, profiles, measuredRun);
}

/** Measured: the cycles of the window, and each node's HTTP and raft thread CPU per cycle (from /proc). */
interface Measured {
  readonly cycles: number;
  readonly threadMsPerCycle: Map<string, { readonly main: number; readonly raft: number }>;
}

/** report prints what /proc and /metrics say of the measured window. */
function report(run: Run, before: Snapshot, after: Snapshot, loadBefore: string): Measured {
  const cycles = after.operations - before.operations;
  const threadMsPerCycle = new Map<string, { main: number; raft: number }>();
  const cpu = [...run.pids].map(
    ([name]) => `${name} ${(((after.cpuMs.get(name) ?? 0) - (before.cpuMs.get(name) ?? 0)) / cycles).toFixed(3)}`,
  );
  console.log(
    `${values.workload}${values.tls ? " over TLS" : ""}${values.profile ? " (profiled)" : ""}: ${(cycles / seconds).toFixed(0)} cycles/s; load ${loadBefore} before, ${loadText()} after; ${new Date().toISOString()}`,
  );
  console.log(`CPU ms per cycle: ${cpu.join(", ")}`);
  const fsyncs = run.cluster.ids().map((id) => {
    const delta = (name: string) =>
      (after.metrics.get(id)?.sum(name, { op: "save" }) ?? Number.NaN) - (before.metrics.get(id)?.sum(name, { op: "save" }) ?? Number.NaN);
    const count = delta("sctec_storage_fsync_seconds_count");
    const meanMs = (1000 * delta("sctec_storage_fsync_seconds_sum")) / count;
    return `${id}${id === run.leader ? " (leader)" : ""} ${(count / cycles).toFixed(2)} (mean ${meanMs.toFixed(2)} ms)`;
  });
  console.log(`fsyncs per cycle: ${fsyncs.join(", ")}`);
  console.log("CPU ms per cycle by thread:");
  for (const [name, pid] of run.pids) {
    const rows = threadRows(before.threads.get(name) ?? new Map(), after.threads.get(name) ?? new Map(), cycles);
    console.log(`  ${name}: ${threadBreakdown(pid, rows)}`);
    // The raft thread is the busiest thread after the main one (see threadCpuMs).
    const id = name.split(" ")[0] as string;
    const main = rows.find((row) => row.tid === pid);
    const raft = rows.find((row) => row.tid !== pid);
    if (name !== "client") threadMsPerCycle.set(id, { main: main?.msPerCycle ?? Number.NaN, raft: raft?.msPerCycle ?? Number.NaN });
    const others = rows.filter((row) => row !== main && row !== raft).reduce((sum, row) => sum + row.msPerCycle, 0);
    const switches = (row: ThreadRow | undefined) =>
      row === undefined ? "" : `${row.wakeUpsPerCycle.toFixed(1)} wake-ups, ${row.preemptionsPerCycle.toFixed(1)} preemptions`;
    console.log(
      `    per cycle: main thread ${switches(main)}; ${name === "client" ? "busiest worker" : "raft thread"} ${switches(raft)}; the other threads ${others.toFixed(3)} ms CPU`,
    );
  }
  reportCommitTime(run, before, after);
  console.log(`connections opened by this process: ${after.connections - before.connections} (${cycles} cycles)`);
  return { cycles, threadMsPerCycle };
}

/**
 * reportCommitTime: where one operation's time goes, from the client's latencies and the leader's
 * /metrics over the window: its HTTP time per request (arrival to last byte), its wait for a
 * quorum after its own write (sctec_raft_append_seconds), and the fsyncs of leader and followers.
 */
function reportCommitTime(run: Run, before: Snapshot, after: Snapshot): void {
  const leaderBefore = before.metrics.get(run.leader);
  const leaderAfter = after.metrics.get(run.leader);
  if (leaderBefore === undefined || leaderAfter === undefined) return;
  const delta = (name: string, labels: Record<string, string> = {}) => leaderAfter.sum(name, labels) - leaderBefore.sum(name, labels);
  const meanMs = (name: string, labels: Record<string, string> = {}) =>
    (1000 * delta(`${name}_sum`, labels)) / delta(`${name}_count`, labels);
  const sorted = (list: number[]) => [...list].sort((a, b) => a - b);
  const acquire = sorted(counters.acquireMs);
  const release = sorted(counters.releaseMs);
  const mean = (list: number[]) => list.reduce((sum, value) => sum + value, 0) / list.length;
  console.log("one operation's time, ms (client: p50 / mean; leader: mean):");
  console.log(
    `  client round trip: acquire ${percentile(acquire, 0.5).toFixed(2)} / ${mean(acquire).toFixed(2)}, release ${percentile(release, 0.5).toFixed(2)} / ${mean(release).toFixed(2)}`,
  );
  console.log(
    `  leader HTTP (arrival to last byte): /lock ${meanMs("sctec_http_request_duration_seconds", { route: "/lock" }).toFixed(2)}, /unlock ${meanMs("sctec_http_request_duration_seconds", { route: "/unlock" }).toFixed(2)}`,
  );
  console.log(`  leader wait for a quorum after its own write (append → commit): ${meanMs("sctec_raft_append_seconds").toFixed(2)}`);
}

/** reportProfiles prints each role's and thread's time by stage per cycle, and each thread's top functions. */
function reportProfiles(run: Run, profiles: Map<string, ThreadProfiles>, measured: Measured): void {
  const cycles = measured.cycles;
  const columns: Column[] = [];
  const followers = run.cluster.ids().filter((id) => id !== run.leader);
  for (const thread of ["main", "raft"] as const) {
    const groups: [string, string[]][] = [
      ["leader", [run.leader]],
      ["follower", followers],
    ];
    for (const [role, ids] of groups) {
      const times = ids.flatMap((id) => {
        const profile = profiles.get(id)?.[thread];
        if (profile === undefined) return [];
        writeFileSync(join(dir, `${id}-${role}-${thread}.cpuprofile`), JSON.stringify(profile));
        return [profileStages(profile)];
      });
      const procMs = ids.map((id) => measured.threadMsPerCycle.get(id)?.[thread] ?? Number.NaN);
      columns.push({
        title: `${role} ${thread === "main" ? "HTTP" : "raft"}`,
        times,
        procMsPerCycle: procMs.reduce((a, b) => a + b, 0) / procMs.length,
      });
    }
  }
  console.log(
    `profiles (sampled every ${samplingIntervalUs} µs) in ${dir}; time by stage, ms per cycle (followers: mean of ${followers.length}):`,
  );
  printStageTable(columns, cycles);
  for (const column of columns) {
    const merged = new Map<string, number>();
    for (const times of column.times)
      for (const [key, ms] of times.byFunctionMs) merged.set(key, (merged.get(key) ?? 0) + ms / column.times.length);
    const top = [...merged].sort((a, b) => b[1] - a[1]).slice(0, 15);
    console.log(`top self time, ${column.title} (ms per cycle):`);
    for (const [key, ms] of top) console.log(`  ${(ms / cycles).toFixed(4).padStart(8)}  ${key}`);
  }
}

/** Column: one role's thread (its nodes' profiles, split by stage) and its CPU per cycle from /proc. */
interface Column {
  readonly title: string;
  readonly times: StageTimes[];
  readonly procMsPerCycle: number;
}

/** printStageTable prints a markdown table: stages as rows (the costliest first), role and thread as columns. */
function printStageTable(columns: readonly Column[], cycles: number): void {
  const meanOf = (times: StageTimes[], read: (one: StageTimes) => number) =>
    times.reduce((sum, one) => sum + read(one), 0) / Math.max(1, times.length);
  const stages = new Map<string, number>();
  for (const column of columns)
    for (const times of column.times) for (const [stage, ms] of times.byStageMs) stages.set(stage, (stages.get(stage) ?? 0) + ms);
  stages.delete("idle");
  const order = [...stages].sort((a, b) => b[1] - a[1]).map(([stage]) => stage);
  const cell = (ms: number) => (ms / cycles).toFixed(3);
  console.log(`| stage | ${columns.map((column) => column.title).join(" | ")} |`);
  console.log(`| --- | ${columns.map(() => "---").join(" | ")} |`);
  for (const stage of order) {
    console.log(
      `| ${stage} | ${columns.map((column) => cell(meanOf(column.times, (one) => one.byStageMs.get(stage) ?? 0))).join(" | ")} |`,
    );
  }
  console.log(
    `| **active (not idle), profile** | ${columns.map((column) => `**${cell(meanOf(column.times, (one) => one.activeMs))}**`).join(" | ")} |`,
  );
  console.log(`| **CPU of the thread, /proc** | ${columns.map((column) => `**${column.procMsPerCycle.toFixed(3)}**`).join(" | ")} |`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
