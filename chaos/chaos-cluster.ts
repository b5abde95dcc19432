// ChaosCluster is one history's system under test: real lock node processes (three founders and
// two spares in the address book, for membership changes), each behind its own peer proxies
// (network.ts), with its data on a tmpfs of its own, a steppable wall clock and a slowable fsync
// when the history needs them (environment.ts), plus two scheduler processes for the booking
// workload. Every process is started and stopped by PID (ProcessCluster, BookingSystem) and
// registered with Resources, so nothing outlives the runner.

import { copyFileSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import { appendFile } from "node:fs/promises";
import { join } from "node:path";
import { type BookingSystem, startBookingSystem } from "../harness/booking-system.ts";
import { ProcessCluster, type ProcessClusterOptions, waitFor } from "../harness/process-cluster.ts";
import type { BuiltCommands } from "./build.ts";
import { type Capabilities, FsyncDelays, faketimeLibrary, NodeClocks, NodeDisks } from "./environment.ts";
import { Monitor } from "./monitor.ts";
import { PeerNetwork } from "./network.ts";
import type { Resources } from "./resources.ts";

export const nodeIds = ["n1", "n2", "n3", "n4", "n5"] as const;
export const foundersCount = 3;

export interface ChaosClusterOptions {
  /** workDir: this history's directory (node logs, clock and fsync control files). */
  readonly workDir: string;
  /** mountRoot: where the nodes' tmpfs disks are mounted. */
  readonly mountRoot: string;
  readonly resources: Resources;
  readonly capabilities: Capabilities;
  readonly diskBytes: number;
  readonly snapshotEntries: number;
  /** clocks / slowFsync: preload libfaketime / slow-fsync.so into every node (the plan has such a fault). */
  readonly clocks: boolean;
  readonly slowFsync: boolean;
  /** schedulers: how many scheduler processes to start (0: none). */
  readonly schedulers: number;
  readonly schedulerLeaseTtlMs: number;
  /** commands: the compiled build's processes (undefined: the sources through tsx). */
  readonly commands: BuiltCommands | undefined;
  /** nowMs: the history's clock. */
  readonly nowMs: () => number;
  readonly log: (text: string) => void;
}

/** UnexpectedExit: a process that ended without the nemesis or the runner ending it. */
export interface UnexpectedExit {
  readonly id: string;
  readonly pid: number | undefined;
  readonly code: number | null;
  readonly signal: string | null;
  readonly atMs: number;
  /** stderr: the last lines the process wrote to stderr. */
  readonly stderr: string;
}

export class ChaosCluster {
  readonly cluster: ProcessCluster;
  readonly system: BookingSystem | undefined;
  readonly network: PeerNetwork;
  readonly disks: NodeDisks | undefined;
  readonly clocks: NodeClocks | undefined;
  readonly fsync: FsyncDelays | undefined;
  readonly monitor: Monitor;
  readonly unexpectedExits: UnexpectedExit[] = [];
  /** paused: nodes stopped with SIGSTOP and not yet continued. */
  readonly paused = new Set<string>();
  private closed = false;
  private readonly options: ChaosClusterOptions;
  /** expectingExit: nodes the nemesis or the runner is ending; their exit is no surprise. */
  private readonly expectingExit = new Set<string>();
  private readonly stderrTails: Map<string, string>;

  private constructor(
    options: ChaosClusterOptions,
    parts: { cluster: ProcessCluster; system: BookingSystem | undefined; network: PeerNetwork; disks: NodeDisks | undefined },
    clocks: NodeClocks | undefined,
    fsync: FsyncDelays | undefined,
    stderrTails: Map<string, string>,
  ) {
    this.stderrTails = stderrTails;
    this.options = options;
    this.cluster = parts.cluster;
    this.system = parts.system;
    this.network = parts.network;
    this.disks = parts.disks;
    this.clocks = clocks;
    this.fsync = fsync;
    this.monitor = new Monitor({
      urlOf: (id) => this.cluster.url(id),
      runningIds: () => this.cluster.runningIds().filter((id) => !this.paused.has(id)),
      nowMs: options.nowMs,
      intervalMs: 250,
      timeoutMs: 800,
      samplesMax: 100_000,
    });
  }

  static async start(options: ChaosClusterOptions): Promise<ChaosCluster> {
    mkdirSync(options.workDir, { recursive: true });
    const disks =
      options.capabilities.tmpfs === true
        ? new NodeDisks({ root: options.mountRoot, sizeBytes: options.diskBytes, resources: options.resources })
        : undefined;
    const clocks = options.clocks ? new NodeClocks(join(options.workDir, "clocks")) : undefined;
    const fsync = options.slowFsync ? new FsyncDelays(join(options.workDir, "fsync")) : undefined;
    const slowFsyncLibrary = typeof options.capabilities.slowFsync === "object" ? options.capabilities.slowFsync.library : undefined;
    // Filled in as the cluster starts: the proxies need the nodes' ports, which ProcessCluster
    // chooses and hands to beforeStart before any node starts.
    let network: PeerNetwork | undefined;
    let starting: ProcessCluster | undefined;
    const early: { exits: Parameters<ChaosCluster["onNodeExit"]>[]; chaos: ChaosCluster | undefined } = { exits: [], chaos: undefined };
    const stderrTails = new Map<string, string>();
    const clusterOptions: ProcessClusterOptions = {
      size: nodeIds.length,
      founders: foundersCount,
      ...(options.commands === undefined ? {} : { nodeCommand: options.commands.node }),
      leaderTimeoutMs: 60_000,
      // Below the ephemeral ports: a node restarted on its port must find it free (freePortIn).
      portRange: [20_000, 32_000],
      env: { SCTEC_SNAPSHOT_ENTRIES: String(options.snapshotEntries) },
      beforeStart: async (cluster) => {
        starting = cluster;
        network = await PeerNetwork.start(
          cluster.ids(),
          (id) => cluster.ports.get(id) as number,
          (id) => cluster.raftPorts.get(id) as number,
        );
        if (disks !== undefined) for (const id of cluster.ids()) disks.mount(id);
      },
      peersFor: (id) => (network as PeerNetwork).peersFor(id, (peer) => (starting as ProcessCluster).url(peer)),
      raftPeersFor: (id) =>
        (network as PeerNetwork).raftPeersFor(id, (peer) => `127.0.0.1:${(starting as ProcessCluster).raftPorts.get(peer)}`),
      dataDirFor: (id) => (disks === undefined ? join(options.workDir, "data", id) : disks.dataDir(id)),
      envFor: (id) => {
        const preload: string[] = [];
        const env: Record<string, string> = { SCTEC_LOG_FILE: join(options.workDir, `${id}.log`) };
        if (clocks !== undefined) {
          preload.push(faketimeLibrary);
          Object.assign(env, clocks.environment(id));
        }
        if (fsync !== undefined && slowFsyncLibrary !== undefined) {
          preload.push(slowFsyncLibrary);
          Object.assign(env, fsync.environment(id));
        }
        if (preload.length > 0) env["LD_PRELOAD"] = preload.join(":");
        return env;
      },
      onStderr: (id, chunk) => {
        stderrTails.set(id, `${stderrTails.get(id) ?? ""}${chunk.toString("utf8")}`.slice(-4000));
        void appendFile(join(options.workDir, `${id}.stderr`), chunk).catch(() => undefined);
      },
      onSpawn: (_id, child) => options.resources.addChild(child),
      onExit: (...exit) => (early.chaos === undefined ? early.exits.push(exit) : early.chaos.onNodeExit(...exit)),
    };
    let system: BookingSystem | undefined;
    let cluster: ProcessCluster;
    try {
      if (options.schedulers > 0) {
        system = await startBookingSystem({
          schedulers: options.schedulers,
          clusterOptions,
          ...(options.commands === undefined ? {} : { schedulerCommand: options.commands.scheduler }),
          env: { SCHEDULER_LEASE_TTL_MS: String(options.schedulerLeaseTtlMs), SCHEDULER_CLUSTER_TIMEOUT_MS: "1500" },
          onStderr: (id, chunk) => void appendFile(join(options.workDir, `${id}.stderr`), chunk).catch(() => undefined),
          onSpawn: (_id, child) => options.resources.addChild(child),
        });
        cluster = system.cluster;
      } else {
        cluster = await ProcessCluster.start(clusterOptions);
      }
    } catch (error) {
      // Whatever started is registered with Resources; the proxies are ours to close.
      await network?.close();
      throw error;
    }
    const chaos = new ChaosCluster(options, { cluster, system, network: network as PeerNetwork, disks }, clocks, fsync, stderrTails);
    early.chaos = chaos;
    for (const exit of early.exits) chaos.onNodeExit(...exit);
    chaos.monitor.start();
    return chaos;
  }

  /** nodeUrls: every node's own address (clients talk to nodes directly, never through the proxies). */
  nodeUrls(): string[] {
    return this.cluster.urls();
  }

  running(id: string): boolean {
    return this.cluster.pid(id) !== undefined;
  }

  async kill(id: string): Promise<void> {
    this.expectingExit.add(id);
    this.paused.delete(id);
    this.cluster.signal(id, "SIGCONT");
    await this.cluster.kill(id, "SIGKILL");
  }

  /** stopGracefully ends a node with SIGTERM (it closes its database), and SIGKILL if it does not exit in time. */
  async stopGracefully(id: string): Promise<void> {
    if (!this.running(id)) return;
    this.expectingExit.add(id);
    this.cluster.signal(id, "SIGCONT");
    this.paused.delete(id);
    await this.cluster.kill(id, "SIGTERM");
    if (this.running(id)) await this.cluster.kill(id, "SIGKILL");
  }

  restart(id: string): void {
    // After close(), a fault still winding down must not start anything again.
    if (this.closed || this.running(id)) return;
    this.expectingExit.delete(id);
    this.cluster.startNode(id);
  }

  pause(id: string): void {
    if (!this.running(id)) return;
    this.cluster.signal(id, "SIGSTOP");
    this.paused.add(id);
  }

  resume(id: string): void {
    this.cluster.signal(id, "SIGCONT");
    this.paused.delete(id);
  }

  /** waitForLeader waits (bounded) until the monitor sees a leader, and returns it. */
  waitForLeader(timeoutMs: number): Promise<string> {
    return waitFor(
      async () => {
        await this.monitor.pollNow();
        return this.monitor.leader();
      },
      "a leader",
      timeoutMs,
    );
  }

  stderrTail(id: string): string {
    return this.stderrTails.get(id) ?? "";
  }

  /** keepSchedulerLogs copies the schedulers' app.log files into the history's directory (for a failed history). */
  keepSchedulerLogs(): void {
    if (this.system === undefined) return;
    for (const entry of readdirSync(this.cluster.dataRoot)) {
      const log = join(this.cluster.dataRoot, entry, "app.log");
      if (entry.startsWith("scheduler-") && existsSync(log)) copyFileSync(log, join(this.options.workDir, `${entry}.log`));
    }
  }

  /**
   * close stops everything this history started, in order: schedulers, nodes (SIGKILL), proxies,
   * disks (unmounted), data. The caller stops the nodes gracefully first when it wants to read
   * their logs from disk.
   */
  async close(): Promise<string[]> {
    this.closed = true;
    this.monitor.stop();
    for (const id of this.cluster.ids()) {
      this.expectingExit.add(id);
      this.cluster.signal(id, "SIGCONT");
    }
    this.paused.clear();
    if (this.system !== undefined) await this.system.stop();
    else await this.cluster.close();
    await this.network.close();
    return this.disks?.unmountAll() ?? [];
  }

  onNodeExit(id: string, pid: number | undefined, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.expectingExit.has(id)) return;
    const stderr = this.stderrTail(id).split("\n").slice(-12).join("\n");
    this.unexpectedExits.push({ id, pid, code, signal, atMs: this.options.nowMs(), stderr });
    this.options.log(`node ${id} (pid ${pid}) exited by itself: code ${code}, signal ${signal}`);
  }
}
