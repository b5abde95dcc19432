// `npm run bench:compare`: this project's lock cluster side by side with etcd and with the lab's
// single coordinator, in one run on this machine (issue 7). One after another, each on loopback:
//   1. SCTEC: three real node processes in the `npm start` configuration (LevelDB with fsync),
//      through LockClient;
//   2. etcd: three members from Debian's `etcd-server` package (installed here when `etcd` is
//      missing), once with default settings and once tuned (`--heartbeat-interval 50
//      --election-timeout 300`), through the `etcd3` npm client and its lock recipe;
//   3. the single coordinator (bench/single-coordinator.ts): one in-memory Express process.
// The same driver runs the same workloads on each: acquire+release cycles at concurrency 1, 16 and
// 64 on distinct resources, 16 clients on one resource, and failover (kill -9 of the leader, or of
// the coordinator, which is restarted at once, to the next successful acquire). A benchmark, not a
// test: it reads the wall clock, prints a table, writes bench/results/compare-<date>.json and
// updates docs/BENCHMARKS.md between its markers.
//
//   npm run bench:compare              about 7 minutes (3 rounds of 5 s runs, 10 kills per system)
//   npm run bench:compare -- --quick   under 2 minutes (2 rounds of 1.5 s runs, 3 kills per system)
//   npm run bench:compare -- --systems sctec,single   only these (the doc is then left alone)
//   BENCH_COMPARE_DEBUG=1 npm run bench:compare …    also print each failed attempt during a failover

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { noop } from "cockatiel";
import { Etcd3, type Lease as EtcdLease } from "etcd3";
import { request } from "undici";
import { LockClient, LockError, type Lease as SctecLease } from "../client/lock-client.ts";
import { freePort, ProcessCluster, waitFor } from "../harness/process-cluster.ts";
import { updateBenchmarksDoc } from "./benchmarks-doc.ts";
import { describeFloor, type Floor, measureFloor } from "./floor.ts";
import { percentile, readProcStat } from "./measure.ts";

const { values } = parseArgs({ options: { quick: { type: "boolean" }, systems: { type: "string" } } });
const quick = values.quick === true;
const settings = {
  repetitions: quick ? 2 : 3,
  runSeconds: quick ? 1.5 : 5,
  warmupSeconds: quick ? 0.5 : 2,
  kills: quick ? 3 : 10,
  heldPerKill: 8,
  settleMs: quick ? 500 : 1000,
  leaseTtlMs: 60_000,
};
const systemKeys = ["sctec", "etcd-default", "etcd-tuned", "single"] as const;
type SystemKey = (typeof systemKeys)[number];
const chosen = (values.systems ?? systemKeys.join(","))
  .split(",")
  .filter((key): key is SystemKey => (systemKeys as readonly string[]).includes(key));

const progress = (message: string) => process.stdout.write(`  … ${(performance.now() / 1000).toFixed(0).padStart(3)} s  ${message}\n`);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
/** deadlineAfter is a timer for Promise.race that does not keep the process alive. */
const deadlineAfter = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());

// ---------------------------------------------------------------------------------------------
// Cleanup: every process this script starts is stopped by its PID at the end, on an error, and on
// Ctrl-C or SIGTERM.

const cleanups = new Set<() => Promise<void>>();

/** onCleanup registers `stop` to run at the end or on a signal; the returned function unregisters it. */
function onCleanup(stop: () => Promise<void>): () => void {
  cleanups.add(stop);
  return () => cleanups.delete(stop);
}

/** stopping: set once cleanup has begun; nothing is started or restarted after it. */
let stopping = false;
/** pendingStarts: cluster starts in flight, whose processes cleanup must wait for before it can stop them. */
const pendingStarts = new Set<Promise<unknown>>();

async function cleanupAll(): Promise<void> {
  stopping = true;
  await Promise.race([Promise.allSettled([...pendingStarts]), deadlineAfter(30_000)]);
  await new Promise((resolve) => setImmediate(resolve)); // Let the starter register what it started.
  for (const stop of [...cleanups].reverse()) {
    cleanups.delete(stop);
    await Promise.race([stop().catch((error: unknown) => console.error("cleanup failed:", error)), deadlineAfter(15_000)]);
  }
}

/** children: the etcd members and coordinators alive now; SIGKILLed by PID if the script exits before cleaning up. */
const children = new Set<ChildProcess>();

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

function stopAndExit(reason: string, code: number): void {
  console.error(`\n${reason}: stopping every process this benchmark started`);
  void cleanupAll().finally(() => process.exit(code));
}

for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => stopAndExit(signal, 130));
process.stdout.on("error", () => stopAndExit("stdout closed", 1)); // EPIPE: `| head` closed the pipe.
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

// ---------------------------------------------------------------------------------------------
// CPU: servers from /proc/<pid>/stat (the process and its descendants), the client from
// process.cpuUsage().

/** treeCpuMs sums the CPU of `roots` and of all their descendants alive now. */
function treeCpuMs(roots: readonly number[]): number {
  const children = new Map<number, number[]>();
  const cpu = new Map<number, number>();
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isSafeInteger(pid)) continue;
    const stat = readProcStat(pid);
    if (stat === undefined) continue;
    cpu.set(pid, stat.cpuMs);
    children.set(stat.parent, [...(children.get(stat.parent) ?? []), pid]);
  }
  let total = 0;
  const queue = [...roots];
  for (let visited = 0; queue.length > 0 && visited < 10_000; visited++) {
    const pid = queue.pop() as number;
    total += cpu.get(pid) ?? 0;
    queue.push(...(children.get(pid) ?? []));
  }
  return total;
}

const clientCpuMs = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

// ---------------------------------------------------------------------------------------------
// The systems under test, behind one interface, so the driver below is the same for all.

/** Grant is a lock held by a session: its fencing token and how to give it back. */
interface Grant {
  readonly token: string;
  release(): Promise<void>;
}

/** Session is one client of a system. acquire answers "conflict" when the resource is held. */
interface Session {
  acquire(resource: string, options: { waitMs: number }): Promise<Grant | "conflict">;
  close(): Promise<void>;
}

interface System {
  readonly key: SystemKey;
  /** waitsInServer: the server queues waiters itself (SCTEC's FIFO); otherwise the driver retries on conflict. */
  readonly waitsInServer: boolean;
  /** session opens a client; `failover` ones give up each attempt after 300 ms and are retried by the driver. */
  session(options: { failover: boolean }): Promise<Session>;
  serverPids(): Promise<number[]>;
  /**
   * prepareCrash finds the victim: the leader (or the coordinator). `kill` sends it SIGKILL (and
   * restarts the coordinator at once); `restore` brings a killed member back.
   */
  prepareCrash(): Promise<Crash>;
  close(): Promise<void>;
}

interface Crash {
  readonly victim: string;
  kill(): Promise<void>;
  restore(): Promise<void>;
}

const attemptTimeoutMs = 300;

/** startSctec starts three real nodes in the `npm start` configuration (ProcessCluster). */
async function startSctec(): Promise<System> {
  const start = ProcessCluster.start();
  pendingStarts.add(start);
  const cluster = await start.finally(() => pendingStarts.delete(start));
  const unregister = onCleanup(() => cluster.close());
  return {
    key: "sctec",
    waitsInServer: true,
    async session({ failover }) {
      const client = new LockClient({
        nodes: cluster.urls(),
        apiToken: cluster.apiToken,
        ...(failover
          ? { requestTimeoutMs: attemptTimeoutMs, retriesMax: 200, retryBaseMs: 2, retryMaxMs: 20 }
          : { retriesMax: 20, retryBaseMs: 5 }),
      });
      return {
        async acquire(resource, { waitMs }) {
          let lease: SctecLease;
          try {
            lease = await client.acquire([resource], { ttlMs: settings.leaseTtlMs, waitMs, autoRenew: false });
          } catch (error) {
            if (error instanceof LockError && (error.code === "conflict" || error.code === "wait_timeout")) return "conflict";
            throw error;
          }
          return { token: lease.token, release: () => lease.release() };
        },
        close: async () => undefined,
      };
    },
    async serverPids() {
      const statuses = await Promise.all(cluster.ids().map((id) => cluster.status(id)));
      return statuses.flatMap((status) => (status === undefined ? [] : [status.pid]));
    },
    async prepareCrash() {
      const leader = await cluster.waitForLeader(10_000);
      return {
        victim: leader,
        kill: () => cluster.kill(leader),
        restore: async () => {
          if (stopping) return;
          cluster.startNode(leader);
          await waitFor(() => cluster.status(leader), `${leader} to come back`, 15_000);
        },
      };
    },
    async close() {
      unregister();
      await cluster.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// etcd: three members on loopback, data in a temporary directory.

/** ensureEtcd installs Debian's etcd-server when `etcd` is missing, and returns `etcd --version`'s first line. */
function ensureEtcd(): string {
  const version = () => spawnSync("etcd", ["--version"], { encoding: "utf8" });
  let found = version();
  if (found.error !== undefined || found.status !== 0) {
    if (process.getuid?.() !== 0) throw new Error("etcd is missing: install it with `apt-get install -y etcd-server` (as root)");
    progress("etcd is missing: apt-get update && apt-get install -y etcd-server");
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    for (const args of [["update"], ["install", "-y", "etcd-server"]]) {
      const result = spawnSync("apt-get", args, { stdio: "inherit", env, timeout: 600_000 });
      if (result.status !== 0) throw new Error(`apt-get ${args.join(" ")} failed (${result.status ?? result.signal})`);
    }
    found = version();
    if (found.status !== 0) throw new Error("etcd still does not run after installing etcd-server");
  }
  return found.stdout.split("\n")[0]?.trim() ?? "etcd";
}

interface EtcdMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  child: ChildProcess | undefined;
}

/** EtcdCluster starts, kills and restarts three etcd members by PID. */
class EtcdCluster {
  readonly members: EtcdMember[] = [];
  readonly dataRoot = mkdtempSync(join(tmpdir(), "sctec-etcd-"));
  private readonly token = `bench-${randomBytes(4).toString("hex")}`;
  private readonly extraArgs: readonly string[];

  constructor(extraArgs: readonly string[]) {
    this.extraArgs = extraArgs;
  }

  async start(): Promise<void> {
    for (const name of ["e1", "e2", "e3"])
      this.members.push({ name, clientPort: await freePort(), peerPort: await freePort(), child: undefined });
    for (const member of this.members) this.startMember(member);
    await this.waitForLeader(20_000);
  }

  clientUrls(): string[] {
    return this.members.map((member) => `http://127.0.0.1:${member.clientPort}`);
  }

  startMember(member: EtcdMember): void {
    const peer = (other: EtcdMember) => `http://127.0.0.1:${other.peerPort}`;
    const client = `http://127.0.0.1:${member.clientPort}`;
    const args = [
      ...["--name", member.name, "--data-dir", join(this.dataRoot, member.name)],
      ...["--listen-client-urls", client, "--advertise-client-urls", client],
      ...["--listen-peer-urls", peer(member), "--initial-advertise-peer-urls", peer(member)],
      ...["--initial-cluster", this.members.map((other) => `${other.name}=${peer(other)}`).join(",")],
      ...["--initial-cluster-token", this.token, "--initial-cluster-state", "new"],
      ...this.extraArgs,
    ];
    const log = openSync(join(this.dataRoot, `${member.name}.log`), "a");
    try {
      const child = track(spawn("etcd", args, { stdio: ["ignore", log, log] }));
      member.child = child;
      child.once("exit", (code, signal) => {
        if (member.child !== child) return; // Killed on purpose.
        member.child = undefined;
        const tail = readFileSync(join(this.dataRoot, `${member.name}.log`), "utf8")
          .split("\n")
          .slice(-5)
          .join("\n");
        progress(`etcd ${member.name} exited by itself (${code ?? signal}); its log ends:\n${tail}`);
      });
    } finally {
      closeSync(log);
    }
  }

  async kill(member: EtcdMember): Promise<void> {
    const child = member.child;
    member.child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await Promise.race([exited, deadlineAfter(10_000)]);
  }

  /** status asks one member for its id and the leader it knows (undefined if it does not answer). */
  async status(member: EtcdMember): Promise<{ memberId: string; leaderId: string } | undefined> {
    const client = new Etcd3({ hosts: `http://127.0.0.1:${member.clientPort}`, dialTimeout: 1000 });
    try {
      const status = await client.maintenance.status({ deadline: Date.now() + 1000 });
      return { memberId: status.header.member_id, leaderId: status.leader };
    } catch {
      return undefined;
    } finally {
      client.close();
    }
  }

  /** leader returns the member that says it leads, as every live member agrees. */
  async leader(): Promise<EtcdMember | undefined> {
    const statuses = await Promise.all(this.members.map(async (member) => ({ member, status: await this.status(member) })));
    const live = statuses.filter((entry) => entry.status !== undefined && entry.member.child !== undefined);
    const leading = live.find((entry) => entry.status?.memberId === entry.status?.leaderId);
    if (leading === undefined || !live.every((entry) => entry.status?.leaderId === leading.status?.memberId)) return undefined;
    return leading.member;
  }

  waitForLeader(timeoutMs: number): Promise<EtcdMember> {
    return waitFor(() => this.leader(), "an etcd leader", timeoutMs);
  }

  async close(): Promise<void> {
    for (const member of this.members) await this.kill(member);
    rmSync(this.dataRoot, { recursive: true, force: true });
  }
}

/**
 * etcdSession takes locks with etcd3's lock recipe: `Lock.acquire()` step for step (etcd3
 * lib/lock.js): grant a lease, then one txn that puts the key under the lease if its create
 * revision is 0, and revoke the lease if the txn failed; release revokes the lease. It is written
 * out through etcd3's public API only to keep the txn's revision, the key's create revision, as
 * the fencing token (`Lock.acquire()` drops it, and reading it back would cost etcd a round trip).
 */
function etcdSession(client: Etcd3, failover: boolean): Session {
  const deadline = () => (failover ? { deadline: Date.now() + attemptTimeoutMs } : {});
  return {
    async acquire(resource) {
      const lease: EtcdLease = client.lease(settings.leaseTtlMs / 1000, deadline());
      const leaseId = await lease.grant();
      const result = await client
        .if(resource, "Create", "==", 0)
        .then(client.put(resource).value("").lease(leaseId))
        .options(deadline())
        .commit()
        .catch(async (error: unknown) => {
          await lease.revoke().catch(() => undefined);
          throw error;
        });
      if (!result.succeeded) {
        await lease.revoke().catch(() => undefined);
        return "conflict";
      }
      return { token: result.header.revision, release: async () => void (await lease.revoke(deadline())) };
    },
    close: async () => (failover ? client.close() : undefined),
  };
}

async function startEtcd(tuned: boolean): Promise<System> {
  const cluster = new EtcdCluster(tuned ? ["--heartbeat-interval", "50", "--election-timeout", "300"] : []);
  const unregister = onCleanup(() => cluster.close());
  await cluster.start();
  const shared = new Etcd3({ hosts: cluster.clientUrls() });
  return {
    key: tuned ? "etcd-tuned" : "etcd-default",
    waitsInServer: false,
    async session({ failover }) {
      if (!failover) return etcdSession(shared, false);
      // etcd3's default fault handling retries 3 times and opens a 5 s circuit breaker per host
      // after 3 failures in a row, which on a failover mostly measures the breaker. The failover
      // client turns it off as etcd3's README shows, and the driver retries, as for the others.
      const client = new Etcd3({ hosts: cluster.clientUrls(), faultHandling: { host: () => noop, global: noop } });
      await retrying(() => client.get("warm-up").string()); // Connect before the clock starts, as a long-lived client would be.
      return etcdSession(client, true);
    },
    serverPids: async () => cluster.members.flatMap((member) => (member.child?.pid === undefined ? [] : [member.child.pid])),
    async prepareCrash() {
      const leader = await cluster.waitForLeader(15_000);
      return {
        victim: leader.name,
        kill: () => cluster.kill(leader),
        restore: async () => {
          if (stopping) return;
          cluster.startMember(leader);
          await waitFor(() => cluster.status(leader), `etcd ${leader.name} to come back`, 15_000);
        },
      };
    },
    async close() {
      shared.close();
      unregister();
      await cluster.close();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The single coordinator: one process, restarted at once after each kill.

async function startSingle(): Promise<System> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logDir = mkdtempSync(join(tmpdir(), "sctec-single-"));
  let child: ChildProcess | undefined;
  const spawnCoordinator = () => {
    const log = openSync(join(logDir, "coordinator.log"), "a");
    try {
      child = track(
        spawn(process.execPath, ["--import", "tsx", "bench/single-coordinator.ts"], {
          env: { ...process.env, SINGLE_COORDINATOR_LISTEN: `127.0.0.1:${port}` },
          stdio: ["ignore", log, log],
        }),
      );
    } finally {
      closeSync(log);
    }
  };
  const ready = () => waitFor(() => coordinatorStatus(url), "the single coordinator", 15_000);
  const kill = async () => {
    const current = child;
    child = undefined;
    if (current === undefined || current.exitCode !== null || current.signalCode !== null) return;
    const exited = new Promise((resolve) => current.once("exit", resolve));
    current.kill("SIGKILL");
    await Promise.race([exited, deadlineAfter(10_000)]);
  };
  const stop = async () => {
    await kill();
    rmSync(logDir, { recursive: true, force: true });
  };
  const unregister = onCleanup(stop);
  spawnCoordinator();
  await ready();
  return {
    key: "single",
    waitsInServer: false,
    session: async ({ failover }) => coordinatorSession(url, failover ? attemptTimeoutMs : 5000),
    serverPids: async () => (child?.pid === undefined ? [] : [child.pid]),
    prepareCrash: async () => ({
      victim: "coordinator",
      async kill() {
        await kill();
        if (!stopping) spawnCoordinator(); // Restarted at once, as a supervisor would: what it held is gone.
      },
      restore: async () => void (await ready()),
    }),
    async close() {
      unregister();
      await stop();
    },
  };
}

async function coordinatorStatus(url: string): Promise<{ pid: number; locks: number } | undefined> {
  try {
    const answer = await request(`${url}/status`, { signal: AbortSignal.timeout(1000) });
    return answer.statusCode === 200 ? ((await answer.body.json()) as { pid: number; locks: number }) : undefined;
  } catch {
    return undefined;
  }
}

/** coordinatorSession speaks the lab's protocol: POST /lock and /unlock with `{ resource, owner }`. */
function coordinatorSession(url: string, timeoutMs: number): Session {
  const owner = `client-${randomBytes(8).toString("hex")}`;
  const post = async (path: string, resource: string) => {
    const answer = await request(`${url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ resource, owner }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    return { status: answer.statusCode, body: (await answer.body.json()) as Record<string, unknown> };
  };
  return {
    async acquire(resource) {
      const answer = await post("/lock", resource);
      if (answer.status === 409) return "conflict";
      if (answer.status !== 200) throw new Error(`POST /lock answered ${answer.status}`);
      return {
        token: String(answer.body["token"]),
        release: async () => {
          const released = await post("/unlock", resource);
          if (released.status !== 200) throw new Error(`POST /unlock answered ${released.status}`);
        },
      };
    },
    close: async () => undefined,
  };
}

// ---------------------------------------------------------------------------------------------
// The driver: the same workloads, timing and CPU accounting for every system.

interface RunSample {
  readonly opsPerSecond: number;
  readonly latenciesMs: number[];
  readonly serverCpuPercent: number;
  readonly clientCpuPercent: number;
  readonly serverCpuMsPerOp: number;
  readonly errors: number;
  readonly conflictRetries: number;
}

interface WorkloadResult {
  readonly workload: string;
  readonly system: SystemKey;
  readonly opsPerSecond: { readonly min: number; readonly median: number; readonly max: number; readonly runs: number[] };
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly serverCpuPercent: number;
  readonly clientCpuPercent: number;
  readonly serverCpuMsPerOp: number;
  readonly errors: number;
  readonly conflictRetries: number;
}

/** median of the runs (the mean of the middle two for an even count). */
function median(numbers: readonly number[]): number {
  const sorted = [...numbers].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/**
 * acquireWaiting takes `resource` for a session, waiting for it: in the server's queue where there
 * is one, else by retrying on conflict with full-jitter backoff from 5 ms up to 50 ms. It returns
 * undefined if the deadline passes first.
 */
async function acquireWaiting(
  system: System,
  session: Session,
  resource: string,
  deadline: number,
  counters: { conflictRetries: number },
): Promise<Grant | undefined> {
  for (let attempt = 0; attempt < 100_000 && performance.now() < deadline; attempt++) {
    const grant = await session.acquire(resource, { waitMs: system.waitsInServer ? 10_000 : 0 });
    if (grant !== "conflict") return grant;
    if (system.waitsInServer) continue;
    counters.conflictRetries++;
    await sleep(Math.random() * Math.min(50, 5 * 2 ** Math.min(attempt, 4)));
  }
  return undefined;
}

/**
 * measure runs `concurrency` workers for `seconds`. Distinct: each worker does acquire+release on
 * its own resource (latency is the cycle). Contended: all share one resource (latency is the
 * acquire, waiting included; the figure is hand-offs per second).
 */
async function measure(
  system: System,
  mode: "distinct" | "contended",
  concurrency: number,
  seconds: number,
  label: string,
): Promise<RunSample> {
  const sessions = await Promise.all(Array.from({ length: concurrency }, () => system.session({ failover: false })));
  const latenciesMs: number[] = [];
  const counters = { conflictRetries: 0, errors: 0 };
  const pids = await system.serverPids();
  const serverBefore = treeCpuMs(pids);
  const clientBefore = clientCpuMs();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    sessions.map(async (session, worker) => {
      const resource = mode === "distinct" ? `${label}-${worker}` : `${label}-contended`;
      for (let round = 0; round < 1_000_000 && performance.now() < deadline; round++) {
        const sentAt = performance.now();
        try {
          const grant =
            mode === "distinct"
              ? await session.acquire(resource, { waitMs: 0 })
              : await acquireWaiting(system, session, resource, deadline, counters);
          if (grant === undefined) break;
          if (grant === "conflict") throw new Error(`${resource} held by another: distinct resources must never conflict`);
          if (mode === "contended") latenciesMs.push(performance.now() - sentAt);
          await grant.release();
          if (mode === "distinct") latenciesMs.push(performance.now() - sentAt);
        } catch {
          counters.errors++;
        }
      }
    }),
  );
  const elapsedMs = performance.now() - started;
  const serverMs = treeCpuMs(pids) - serverBefore;
  const clientMs = clientCpuMs() - clientBefore;
  await Promise.all(sessions.map((session) => session.close()));
  return {
    opsPerSecond: (latenciesMs.length * 1000) / elapsedMs,
    latenciesMs,
    serverCpuPercent: (serverMs / elapsedMs) * 100,
    clientCpuPercent: (clientMs / elapsedMs) * 100,
    serverCpuMsPerOp: latenciesMs.length === 0 ? Number.NaN : serverMs / latenciesMs.length,
    errors: counters.errors,
    conflictRetries: counters.conflictRetries,
  };
}

/** summarise turns the runs of one workload on one system into its figures (latency percentiles over all runs). */
function summarise(system: SystemKey, workload: string, samples: readonly RunSample[]): WorkloadResult {
  const runs = samples.map((sample) => sample.opsPerSecond);
  const latencies = samples.flatMap((sample) => sample.latenciesMs).sort((a, b) => a - b);
  return {
    workload,
    system,
    opsPerSecond: { min: Math.min(...runs), median: median(runs), max: Math.max(...runs), runs },
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    serverCpuPercent: median(samples.map((sample) => sample.serverCpuPercent)),
    clientCpuPercent: median(samples.map((sample) => sample.clientCpuPercent)),
    serverCpuMsPerOp: median(samples.map((sample) => sample.serverCpuMsPerOp)),
    errors: samples.reduce((sum, sample) => sum + sample.errors, 0),
    conflictRetries: samples.reduce((sum, sample) => sum + sample.conflictRetries, 0),
  };
}

// ---------------------------------------------------------------------------------------------
// Failover: kill -9 the leader (or the coordinator) → the next successful acquire; and whether
// the locks held at the kill survived it.

interface FailoverResult {
  readonly system: SystemKey;
  readonly kills: number;
  readonly samplesMs: number[];
  readonly minMs: number;
  readonly medianMs: number;
  readonly maxMs: number;
  readonly held: number;
  /** forgotten: held locks that a second client could take right after the failover. */
  readonly forgotten: number;
  /** tokenWentBack: rounds where the first token after the failover was not above every token before it. */
  readonly tokenWentBack: number;
  readonly victims: string[];
}

/** retrying runs `attempt` until it succeeds, at most 20 times over 10 s. */
async function retrying<T>(attempt: () => Promise<T>): Promise<T> {
  const deadline = performance.now() + 10_000;
  for (let count = 1; ; count++) {
    try {
      return await attempt();
    } catch (error) {
      if (count >= 20 || performance.now() > deadline) throw error;
      await sleep(50);
    }
  }
}

/** holdLocks takes `settings.heldPerKill` locks through one session (closed by the caller). */
async function holdLocks(system: System, prefix: string): Promise<{ resources: string[]; grants: Grant[]; holder: Session }> {
  const holder = await system.session({ failover: true });
  const resources = Array.from({ length: settings.heldPerKill }, (_, position) => `${prefix}-${position}`);
  const grants: Grant[] = [];
  for (const resource of resources) {
    const grant = await retrying(() => holder.acquire(resource, { waitMs: 0 }));
    if (grant === "conflict") throw new Error(`${resource} is held before the kill: the benchmark's resources must be fresh`);
    grants.push(grant);
  }
  return { resources, grants, holder };
}

/** countForgotten tries to take each held resource from a second client: every success is a lock forgotten. */
async function countForgotten(system: System, resources: readonly string[]): Promise<number> {
  const checker = await system.session({ failover: true });
  let forgotten = 0;
  for (const resource of resources) {
    const grant = await retrying(() => checker.acquire(resource, { waitMs: 0 }));
    if (grant === "conflict") continue;
    forgotten++;
    await grant.release().catch(() => undefined);
  }
  await checker.close();
  return forgotten;
}

/** failoverRound: hold locks, kill the victim, time the next successful acquire, count what was forgotten, restore. */
async function failoverRound(
  system: System,
  round: number,
): Promise<{ sampleMs: number; forgotten: number; tokenWentBack: boolean; victim: string }> {
  const held = await holdLocks(system, `held-${system.key}-${round}`);
  const highestBefore = held.grants.reduce((highest, grant) => (BigInt(grant.token) > highest ? BigInt(grant.token) : highest), 0n);
  const client = await system.session({ failover: true });
  const crash = await system.prepareCrash();
  const killedAt = performance.now();
  await crash.kill();
  let grant: Grant | undefined;
  for (let attempt = 0; attempt < 5000 && grant === undefined && performance.now() - killedAt < 60_000; attempt++) {
    try {
      const answer = await client.acquire(`failover-${system.key}-${round}`, { waitMs: 0 });
      if (answer !== "conflict") grant = answer;
    } catch (error) {
      if (process.env["BENCH_COMPARE_DEBUG"] !== undefined)
        progress(`${(performance.now() - killedAt).toFixed(0)} ms: ${String(error).slice(0, 160)}`);
      await sleep(2 + Math.random() * 18);
    }
  }
  const sampleMs = performance.now() - killedAt;
  if (grant === undefined) throw new Error(`${system.key}: no acquire succeeded within 60 s of killing ${crash.victim}`);
  const tokenWentBack = BigInt(grant.token) <= highestBefore;
  const forgotten = await countForgotten(system, held.resources);
  await grant.release().catch(() => undefined);
  await Promise.all(held.grants.map((heldGrant) => heldGrant.release().catch(() => undefined)));
  await held.holder.close();
  await client.close();
  await crash.restore();
  await sleep(settings.settleMs); // Let the restarted member catch up before the next kill.
  return { sampleMs, forgotten, tokenWentBack, victim: crash.victim };
}

interface FailoverSample {
  readonly sampleMs: number;
  readonly forgotten: number;
  readonly tokenWentBack: boolean;
  readonly victim: string;
}

/** summariseFailovers turns one system's kills into its failover figures. */
function summariseFailovers(system: SystemKey, samples: readonly FailoverSample[]): FailoverResult {
  const samplesMs = samples.map((sample) => sample.sampleMs);
  return {
    system,
    kills: samples.length,
    samplesMs,
    minMs: Math.min(...samplesMs),
    medianMs: median(samplesMs),
    maxMs: Math.max(...samplesMs),
    held: samples.length * settings.heldPerKill,
    forgotten: samples.reduce((sum, sample) => sum + sample.forgotten, 0),
    tokenWentBack: samples.filter((sample) => sample.tokenWentBack).length,
    victims: samples.map((sample) => sample.victim),
  };
}

// ---------------------------------------------------------------------------------------------
// Output: the terminal table, the JSON file, and docs/BENCHMARKS.md between its markers.

const workloads = [
  { workload: "acquire+release, concurrency 1, distinct resources", mode: "distinct", concurrency: 1 },
  { workload: "acquire+release, concurrency 16, distinct resources", mode: "distinct", concurrency: 16 },
  { workload: "acquire+release, concurrency 64, distinct resources", mode: "distinct", concurrency: 64 },
  { workload: "16 clients, one resource (hand-offs)", mode: "contended", concurrency: 16 },
] as const;

const systemNames: Record<SystemKey, string> = {
  sctec: "SCTEC",
  "etcd-default": "etcd default",
  "etcd-tuned": "etcd tuned",
  single: "single coordinator",
};

const whole = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "–");
const ratio = (value: number) => (Number.isFinite(value) ? `${value.toFixed(2)}×` : "–");

function throughputTable(results: readonly WorkloadResult[]): string {
  const lines = [
    "| workload | system | per second: min · **median** · max | p50 ms | p99 ms | servers CPU | client CPU | server CPU ms/op | SCTEC ÷ this |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const { workload } of workloads) {
    const sctec = results.find((result) => result.workload === workload && result.system === "sctec");
    for (const result of results.filter((entry) => entry.workload === workload)) {
      const { min, median: mid, max } = result.opsPerSecond;
      const notes = [
        result.errors > 0 ? `${result.errors} errors` : "",
        result.conflictRetries > 0 ? `${whole(result.conflictRetries)} retries on 409` : "",
      ]
        .filter((note) => note !== "")
        .join(", ");
      lines.push(
        `| ${workload} | ${systemNames[result.system]}${notes === "" ? "" : ` (${notes})`} | ${whole(min)} · **${whole(mid)}** · ${whole(max)} | ${result.p50Ms.toFixed(1)} | ${result.p99Ms.toFixed(1)} | ${result.serverCpuPercent.toFixed(0)}% | ${result.clientCpuPercent.toFixed(0)}% | ${result.serverCpuMsPerOp.toFixed(2)} | ${result.system === "sctec" || sctec === undefined ? "–" : ratio(sctec.opsPerSecond.median / mid)} |`,
      );
    }
  }
  return lines.join("\n");
}

function failoverTable(results: readonly FailoverResult[]): string {
  const lines = [
    "| system | kills | kill -9 → next acquire ms: min · **median** · max | locks held at the kills | forgotten | token went back | SCTEC ÷ this (median) |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ];
  const sctec = results.find((result) => result.system === "sctec");
  for (const result of results) {
    lines.push(
      `| ${systemNames[result.system]}${result.system === "single" ? " (restarted at once)" : ""} | ${result.kills} | ${whole(result.minMs)} · **${whole(result.medianMs)}** · ${whole(result.maxMs)} | ${result.held} | ${result.forgotten} | ${result.tokenWentBack} of ${result.kills} | ${result.system === "sctec" || sctec === undefined ? "–" : ratio(sctec.medianMs / result.medianMs)} |`,
    );
  }
  return lines.join("\n");
}

/** targets checks issue 7's targets against one run; each line says met or missed, with the figures. */
function targets(results: readonly WorkloadResult[], failoverResults: readonly FailoverResult[]): string[] {
  const lines: string[] = [];
  const find = (workload: string, system: SystemKey) => results.find((result) => result.workload === workload && result.system === system);
  const against = (workload: string, factor: number, what: string) => {
    const sctec = find(workload, "sctec");
    for (const peer of ["etcd-default", "etcd-tuned"] as const) {
      const other = find(workload, peer);
      if (sctec === undefined || other === undefined) continue;
      const times = sctec.opsPerSecond.median / other.opsPerSecond.median;
      lines.push(
        `- ${what} at least ${factor} × ${systemNames[peer]}: **${times >= factor ? "met" : "missed"}** (${whole(sctec.opsPerSecond.median)} against ${whole(other.opsPerSecond.median)}/s, ${ratio(times)})`,
      );
    }
  };
  against(workloads[2].workload, 2, "cycles/s at concurrency 64");
  against(workloads[3].workload, 3, "hand-offs/s on one resource, 16 clients");
  const failover = (system: SystemKey) => failoverResults.find((result) => result.system === system);
  const sctec = failover("sctec");
  if (sctec !== undefined) {
    lines.push(`- failover median at most 300 ms: **${sctec.medianMs <= 300 ? "met" : "missed"}** (${whole(sctec.medianMs)} ms)`);
    for (const peer of ["etcd-default", "etcd-tuned"] as const) {
      const other = failover(peer);
      if (other === undefined) continue;
      lines.push(
        `- failover median below ${systemNames[peer]}'s: **${sctec.medianMs < other.medianMs ? "met" : "missed"}** (${whole(sctec.medianMs)} against ${whole(other.medianMs)} ms)`,
      );
    }
  }
  const single = failover("single");
  const replicated = failoverResults.filter((result) => result.system !== "single");
  if (single !== undefined) {
    lines.push(
      `- what replication buys: the single coordinator forgot ${single.forgotten} of ${single.held} held locks over ${single.kills} restarts, was down ${whole(single.medianMs)} ms (median) each time although restarted at once, and its fencing token went back ${single.tokenWentBack} times${replicated.length === 0 ? "" : `; the replicated systems forgot ${replicated.reduce((sum, result) => sum + result.forgotten, 0)} of ${replicated.reduce((sum, result) => sum + result.held, 0)}`}`,
    );
  }
  return lines;
}

/**
 * closeToTheFloor checks issue 21's targets against one run: ratios to etcd default and to the
 * single coordinator, and concurrency 1's p50 against the floor measured in the same run.
 */
function closeToTheFloor(results: readonly WorkloadResult[], failoverResults: readonly FailoverResult[], floor: Floor): string[] {
  const find = (workload: string, system: SystemKey) => results.find((result) => result.workload === workload && result.system === system);
  const verdict = (met: boolean) => `**${met ? "met" : "missed"}**`;
  const lines: string[] = [];
  const timesEtcd = (workload: string, factor: number, what: string) => {
    const sctec = find(workload, "sctec");
    const etcd = find(workload, "etcd-default");
    if (sctec === undefined || etcd === undefined) return;
    const times = sctec.opsPerSecond.median / etcd.opsPerSecond.median;
    lines.push(`- ${what} at least ${factor} × etcd default: ${verdict(times >= factor)} (${ratio(times)})`);
  };
  const single = workloads[0].workload;
  timesEtcd(single, 2, "concurrency 1, cycles/s");
  const alone = find(single, "sctec");
  if (alone !== undefined) {
    const overFloor = alone.p50Ms / floor.cycleP50Ms;
    lines.push(
      `- concurrency 1, p50 at most 2 × the floor (${floor.cycleP50Ms.toFixed(2)} ms a cycle): ${verdict(overFloor <= 2)} (${alone.p50Ms.toFixed(2)} ms, ${ratio(overFloor)} the floor)`,
    );
    const etcd = find(single, "etcd-default");
    if (etcd !== undefined) {
      lines.push(
        `- concurrency 1, server CPU per cycle below etcd default's: ${verdict(alone.serverCpuMsPerOp < etcd.serverCpuMsPerOp)} (${alone.serverCpuMsPerOp.toFixed(2)} against ${etcd.serverCpuMsPerOp.toFixed(2)} ms)`,
      );
    }
  }
  timesEtcd(workloads[2].workload, 3, "concurrency 64, cycles/s");
  const many = find(workloads[2].workload, "sctec");
  const coordinator = find(workloads[2].workload, "single");
  if (many !== undefined && coordinator !== undefined) {
    const times = many.opsPerSecond.median / coordinator.opsPerSecond.median;
    lines.push(`- concurrency 64, at least 0.8 × the single in-memory coordinator: ${verdict(times >= 0.8)} (${ratio(times)})`);
  }
  timesEtcd(workloads[3].workload, 6, "one contended resource, hand-offs/s");
  const failover = failoverResults.find((result) => result.system === "sctec");
  if (failover !== undefined)
    lines.push(`- failover median at most 250 ms: ${verdict(failover.medianMs <= 250)} (${whole(failover.medianMs)} ms)`);
  return lines;
}

// ---------------------------------------------------------------------------------------------

const starters: Record<SystemKey, () => Promise<System>> = {
  sctec: startSctec,
  "etcd-default": () => startEtcd(false),
  "etcd-tuned": () => startEtcd(true),
  single: startSingle,
};

/** Samples collects every run and kill, per system and workload, across the rounds. */
class Samples {
  readonly runs = new Map<string, RunSample[]>();
  readonly kills = new Map<SystemKey, FailoverSample[]>();

  addRun(system: SystemKey, workload: string, sample: RunSample): void {
    const key = `${system}|${workload}`;
    this.runs.set(key, [...(this.runs.get(key) ?? []), sample]);
  }

  addKill(system: SystemKey, sample: FailoverSample): number {
    const kills = [...(this.kills.get(system) ?? []), sample];
    this.kills.set(system, kills);
    return kills.length;
  }

  results(): { workloads: WorkloadResult[]; failovers: FailoverResult[] } {
    const results: WorkloadResult[] = [];
    for (const { workload } of workloads) {
      for (const system of chosen) {
        const samples = this.runs.get(`${system}|${workload}`);
        if (samples !== undefined) results.push(summarise(system, workload, samples));
      }
    }
    const failoverResults = chosen.flatMap((system) => {
      const kills = this.kills.get(system);
      return kills === undefined ? [] : [summariseFailovers(system, kills)];
    });
    return { workloads: results, failovers: failoverResults };
  }
}

/** killsInRound spreads `settings.kills` over the rounds (10 over 3: 3, 3, 4). */
const killsInRound = (round: number) =>
  Math.floor((settings.kills * (round + 1)) / settings.repetitions) - Math.floor((settings.kills * round) / settings.repetitions);

/**
 * runRound starts one system, runs each workload once and this round's share of the kills, and
 * stops it. Rounds go through all systems in turn, so that load from elsewhere on the machine
 * falls on all of them alike rather than on whichever ran while it lasted.
 */
async function runRound(key: SystemKey, round: number, samples: Samples): Promise<void> {
  const tag = `${systemNames[key]}, round ${round + 1}/${settings.repetitions}`;
  if (stopping) return;
  progress(`${tag}: starting`);
  const system = await starters[key]();
  try {
    await measure(system, "distinct", 16, settings.warmupSeconds, `${key}-${round}-warmup`);
    for (const { workload, mode, concurrency } of workloads) {
      const sample = await measure(system, mode, concurrency, settings.runSeconds, `${key}-${round}-${mode}-${concurrency}`);
      samples.addRun(key, workload, sample);
      const sorted = [...sample.latenciesMs].sort((a, b) => a - b);
      progress(
        `${tag}: ${workload}: ${sample.opsPerSecond.toFixed(0)}/s, p50 ${percentile(sorted, 0.5).toFixed(1)} ms, servers ${sample.serverCpuPercent.toFixed(0)}% CPU, client ${sample.clientCpuPercent.toFixed(0)}%${sample.errors > 0 ? `, ${sample.errors} errors` : ""}`,
      );
    }
    for (let kill = 0; kill < killsInRound(round); kill++) {
      const result = await failoverRound(system, round * 1000 + kill);
      const count = samples.addKill(key, result);
      progress(
        `${tag}: kill ${count}/${settings.kills} (${result.victim}): next acquire after ${result.sampleMs.toFixed(0)} ms; ${result.forgotten} of ${settings.heldPerKill} held locks forgotten${result.tokenWentBack ? "; fencing token went back" : ""}`,
      );
    }
  } finally {
    await system.close();
  }
}

async function main(): Promise<void> {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const loadBefore = loadavg().map((load) => load.toFixed(2));
  console.log(
    `bench:compare${quick ? " --quick" : ""}: ${chosen.map((key) => systemNames[key]).join(", ")}, one after another on loopback; ${quick ? "under 2 minutes" : "this takes about 7 minutes"}`,
  );
  console.log(`machine: ${machine}; load average before: ${loadBefore.join(" ")}`);
  progress("measuring the floor: synced writes, HTTP and WebSocket round trips on loopback");
  const floor = await measureFloor({ samples: quick ? 200 : 1000 });
  console.log(describeFloor(floor));
  const etcdVersion = chosen.some((key) => key.startsWith("etcd")) ? ensureEtcd() : undefined;
  if (etcdVersion !== undefined) console.log(`${etcdVersion}, client etcd3 (lock recipe: lease + txn, fencing token = the key's revision)`);
  const samples = new Samples();
  try {
    for (let round = 0; round < settings.repetitions; round++) {
      for (const key of chosen) await runRound(key, round, samples);
    }
  } finally {
    await cleanupAll();
  }
  const { workloads: results, failovers: failoverResults } = samples.results();
  const loadAfter = loadavg().map((load) => load.toFixed(2));
  const date = new Date().toISOString().slice(0, 10);
  const summary = [
    throughputTable(results),
    `Failover: ${settings.kills} kills per system; at each, ${settings.heldPerKill} locks were held, and a second client tried to take them right after.`,
    failoverTable(failoverResults),
    `Against issue 7's targets (this run):\n\n${targets(results, failoverResults).join("\n")}`,
    describeFloor(floor),
    `Against issue 21's targets (this run):\n\n${closeToTheFloor(results, failoverResults, floor).join("\n")}`,
  ].join("\n\n");
  console.log(`\n${summary}\n`);
  console.log(`took ${(performance.now() / 1000).toFixed(0)} s; load average after: ${loadAfter.join(" ")}`);
  mkdirSync("bench/results", { recursive: true });
  const file = `bench/results/compare-${date}${quick ? "-quick" : ""}.json`;
  writeFileSync(
    file,
    `${JSON.stringify({ date, machine, quick, settings, etcdVersion, loadBefore, loadAfter, floor, workloads: results, failovers: failoverResults }, null, 2)}\n`,
  );
  console.log(`wrote ${file}`);
  if (chosen.length !== systemKeys.length) {
    console.log("(not every system ran: docs/BENCHMARKS.md left alone)");
    return;
  }
  updateBenchmarksDoc(
    "compare",
    `Measured ${date}${quick ? " (--quick)" : ""} on ${machine}; ${etcdVersion ?? "etcd"}; ${settings.repetitions} runs of ${settings.runSeconds} s per figure; load average ${loadBefore.join(" ")} before, ${loadAfter.join(" ")} after.\n\n${summary}`,
  );
}

// Every process this script started is stopped by now; grpc channels and keep-alive sockets of
// the clients need not hold the exit up.
main()
  .then(() => process.exit(0))
  .catch(async (error: unknown) => {
    console.error(error);
    await cleanupAll();
    process.exit(1);
  });
