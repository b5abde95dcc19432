// BookingSystem runs the whole system on loopback for tests: a three-node lock cluster
// (ProcessCluster, real node processes) and N scheduler processes (scheduler/main.ts), each on a
// free port with its own log directory. Every wait is bounded; stop() kills what it started, by PID.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, ProcessCluster, type ProcessClusterOptions, waitFor } from "./process-cluster.ts";

export interface BookingSystem {
  readonly schedulerUrls: string[];
  readonly nodeUrls: string[];
  readonly apiToken: string;
  readonly cluster: ProcessCluster;
  /** logDir of scheduler i (its app.log is inside). */
  schedulerLogDir(position: number): string;
  schedulerLog(position: number): string;
  nodeLog(id: string): string;
  /** startScheduler starts one more scheduler (with extra environment) and returns its URL. */
  startScheduler(env?: Record<string, string>): Promise<string>;
  killScheduler(position: number, signal?: NodeJS.Signals): void;
  /** stopScheduler stops scheduler i as an operator would (SIGTERM), and waits for it to exit (SIGKILL after 10 s). */
  stopScheduler(position: number): Promise<void>;
  /** schedulerPids: the PIDs of the running scheduler processes (for CPU accounting). */
  schedulerPids(): number[];
  /** exited: the processes (nodes by id, schedulers by URL) that have exited since they were started. */
  exited(): string[];
  stop(): Promise<void>;
}

export async function startBookingSystem(
  options: {
    schedulers?: number;
    env?: Record<string, string>;
    nodeEnv?: Record<string, string>;
    /** schedulerArgs: extra arguments for each scheduler's `node` (for example --cpu-prof). */
    schedulerArgs?: readonly string[];
    /** schedulerCommand: what `node` runs, after schedulerArgs. @default ["--import", "tsx", "scheduler/main.ts"] */
    schedulerCommand?: readonly string[];
    /** clusterOptions: for the lock cluster (ProcessCluster.start), over the defaults here. */
    clusterOptions?: ProcessClusterOptions;
    /** onStderr: where a scheduler's stderr goes (default: this process's stderr, prefixed). */
    onStderr?: (schedulerId: string, chunk: Buffer) => void;
    /** onSpawn hears of every scheduler process started. */
    onSpawn?: (schedulerId: string, child: ChildProcess) => void;
    /** leaderTimeoutMs bounds the wait for the cluster's first leader. @default 15000 */
    leaderTimeoutMs?: number;
  } = {},
): Promise<BookingSystem> {
  const cluster = await ProcessCluster.start({
    size: 3,
    ...(options.nodeEnv === undefined ? {} : { env: options.nodeEnv }),
    ...options.clusterOptions,
    ...(options.leaderTimeoutMs === undefined ? {} : { leaderTimeoutMs: options.leaderTimeoutMs }),
  });
  const schedulers: { url: string; logDir: string; child: ChildProcess }[] = [];

  let started = 0;
  async function startScheduler(env: Record<string, string> = {}): Promise<string> {
    // Numbered before the first await, so that schedulers started together get a directory each.
    started += 1;
    const number = started;
    const port = await freePort();
    const logDir = join(cluster.dataRoot, `scheduler-${number}`);
    mkdirSync(logDir, { recursive: true });
    const command = options.schedulerCommand ?? ["--import", "tsx", "scheduler/main.ts"];
    const child = spawn(process.execPath, [...(options.schedulerArgs ?? []), ...command], {
      env: {
        ...process.env,
        SCHEDULER_LISTEN: `127.0.0.1:${port}`,
        SCHEDULER_NODES: cluster.urls().join(","),
        SCTEC_API_TOKEN: cluster.apiToken,
        SCHEDULER_LOG_DIR: logDir,
        SCHEDULER_INSTANCE_ID: `scheduler-${number}`,
        ...options.env,
        ...env,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const schedulerId = `scheduler-${schedulers.length + 1}`;
    child.stderr?.on("data", (chunk: Buffer) =>
      options.onStderr === undefined ? process.stderr.write(`[scheduler ${port}] ${chunk}`) : options.onStderr(schedulerId, chunk),
    );
    options.onSpawn?.(schedulerId, child);
    const url = `http://127.0.0.1:${port}`;
    schedulers.push({ url, logDir, child });
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`scheduler on ${port} exited with code ${child.exitCode}`);
        try {
          const response = await fetch(`${url}/healthz`);
          return response.ok ? true : undefined;
        } catch {
          return undefined;
        }
      },
      `scheduler on ${url}`,
      60_000, // generous: a scheduler starts through tsx, and schedulers started together on a loaded machine take their time
    );
    return url;
  }

  const stop = async () => {
    for (const scheduler of schedulers) {
      if (scheduler.child.exitCode === null && scheduler.child.signalCode === null) {
        const exited = new Promise((resolve) => scheduler.child.once("exit", resolve));
        scheduler.child.kill("SIGKILL");
        await exited;
      }
    }
    await cluster.close();
  };
  try {
    for (let position = 0; position < (options.schedulers ?? 1); position += 1) await startScheduler();
  } catch (error) {
    await stop(); // never leave processes running behind a failed start
    throw error;
  }

  return {
    get schedulerUrls() {
      return schedulers.map((scheduler) => scheduler.url);
    },
    nodeUrls: cluster.urls(),
    apiToken: cluster.apiToken,
    cluster,
    schedulerLogDir: (position) => (schedulers[position] as { logDir: string }).logDir,
    schedulerLog: (position) => readFileSync(join((schedulers[position] as { logDir: string }).logDir, "app.log"), "utf8"),
    nodeLog: (id) => readFileSync(join(cluster.dataRoot, `${id}.log`), "utf8"),
    startScheduler,
    schedulerPids() {
      return schedulers.flatMap((scheduler) =>
        scheduler.child.pid === undefined || scheduler.child.exitCode !== null ? [] : [scheduler.child.pid],
      );
    },
    exited() {
      const schedulersGone = schedulers.filter((scheduler) => scheduler.child.exitCode !== null || scheduler.child.signalCode !== null);
      return [...cluster.exitedNodes(), ...schedulersGone.map((scheduler) => `scheduler ${scheduler.url}`)];
    },
    killScheduler(position, signal = "SIGKILL") {
      schedulers[position]?.child.kill(signal);
    },
    async stopScheduler(position) {
      const child = schedulers[position]?.child;
      if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      const forced = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(forced);
    },
    stop,
  };
}
