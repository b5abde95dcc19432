// ProcessCluster runs real lock node processes (node/main.ts) on free loopback ports, with data in
// a temporary directory, for fault tests: kill -9, SIGTERM, SIGSTOP/SIGCONT, restart. Every wait
// is bounded; close() kills what it started (by PID) and removes the data. With `tls: true` the
// nodes serve HTTPS and link over mutual TLS, with certificates of a CA made for the run.

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent, fetch } from "undici";
import { restartExitCode } from "../node/graceful-stop.ts";
import { makeCertificates } from "./certificates.ts";

export interface NodeStatus {
  readonly nodeId: string;
  readonly pid: number;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly snapshotIndex: number;
  readonly lastIndex: number;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * freePortIn returns a port in [low, high) that nothing listens on now, tried at random (bounded).
 * A range below the kernel's ephemeral ports (32768 and up on Linux by default) matters for a node
 * that is killed and restarted on its port: an ephemeral port can meanwhile become the local port
 * of some outgoing connection, and the restart then fails with EADDRINUSE. `taken` are ports
 * already handed out and not listened on yet: nothing listens on them, so only this list keeps
 * two nodes of one cluster from getting the same port.
 */
export async function freePortIn(low: number, high: number, taken: ReadonlySet<number> = new Set()): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (taken.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free port in [${low}, ${high}) after 200 tries`);
}

export async function waitFor<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * ProcessClusterOptions. The per-node hooks let a caller (the chaos runner) put each node behind
 * its own proxies, preload libraries into it, keep its data elsewhere and read its output.
 */
export interface ProcessClusterOptions {
  readonly size?: number;
  /** founders: how many of the nodes found the cluster (the rest are in the address book, not started). */
  readonly founders?: number;
  readonly env?: Record<string, string>;
  /** nodeArgs: extra arguments for each node's `node` (for example --cpu-prof). */
  readonly nodeArgs?: readonly string[];
  /** nodeCommand: what `node` runs, after nodeArgs (a compiled build's main.js). @default ["--import", "tsx", "node/main.ts"] */
  readonly nodeCommand?: readonly string[];
  /** peersFor: the SCTEC_PEERS a node is started with (default: every node's own address). */
  readonly peersFor?: (id: string) => string;
  /** raftPeersFor: the SCTEC_RAFT_PEERS a node is started with (default: every node's own peer port, raftPorts). */
  readonly raftPeersFor?: (id: string) => string;
  /** inspect starts each node with the V8 inspector on a free loopback port (inspectorPorts). */
  readonly inspect?: boolean;
  /** envFor: extra environment for one node, over `env`. */
  readonly envFor?: (id: string) => Record<string, string>;
  /** dataDirFor: a node's data directory (default: under dataRoot). */
  readonly dataDirFor?: (id: string) => string;
  /** onStderr: where a node's stderr goes (default: this process's stderr, prefixed). */
  readonly onStderr?: (id: string, chunk: Buffer) => void;
  /** onSpawn hears of every node process started (a supervisor may signal it by PID if this process must exit at once). */
  readonly onSpawn?: (id: string, child: ChildProcess) => void;
  /** onExit hears of every node process that ends, however it ended. */
  readonly onExit?: (id: string, pid: number | undefined, code: number | null, signal: NodeJS.Signals | null) => void;
  /** beforeStart runs once the ports are chosen and before any node starts (to set up what peersFor needs). */
  readonly beforeStart?: (cluster: ProcessCluster) => Promise<void>;
  /** leaderTimeoutMs bounds the wait for the first leader. @default 15000 */
  readonly leaderTimeoutMs?: number;
  /** portRange: choose the nodes' ports in [low, high) (see freePortIn); by default any free port. */
  readonly portRange?: readonly [number, number];
  /** tls: HTTPS and mutual TLS between the nodes, with certificates of a CA made for this run. */
  readonly tls?: boolean;
}

/**
 * liveChildren: every node process started here and not yet gone. If the test process exits
 * without closing its clusters (a failed hook, a timeout), they are killed with it instead of
 * living on as orphans that hold ports and CPU.
 */
const liveChildren = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of liveChildren) child.kill("SIGKILL");
});

export class ProcessCluster {
  readonly apiToken = randomBytes(16).toString("hex");
  readonly clusterSecret = randomBytes(16).toString("hex");
  readonly dataRoot: string;
  readonly ports = new Map<string, number>();
  /** raftPorts: each node's peer (Raft) port (SCTEC_RAFT_LISTEN), chosen like `ports` (the default, HTTP port + 100, may be taken). */
  readonly raftPorts = new Map<string, number>();
  /** inspectorPorts: each node's V8 inspector port, when started with `inspect` (tests that pause a node's HTTP thread). */
  readonly inspectorPorts = new Map<string, number>();
  private readonly processes = new Map<string, ChildProcess>();
  private readonly options: ProcessClusterOptions;
  /** tlsFiles: with TLS, the CA and each node's certificate and key (PEM files under dataRoot/tls). */
  private tlsFiles: { ca: string; files: Map<string, { cert: string; key: string }> } | undefined;
  /** dispatcher: what this harness's own requests go through (trusting the run's CA, with TLS). */
  private dispatcher: Agent = new Agent();

  private constructor(ids: readonly string[], options: ProcessClusterOptions) {
    this.dataRoot = mkdtempSync(join(tmpdir(), "sctec-cluster-"));
    this.options = options;
    for (const id of ids) this.ports.set(id, 0);
  }

  /** founders: the founding voters (default: all); the other nodes are in the address book but not started. */
  private founders: readonly string[] = [];

  static async start(options: ProcessClusterOptions = {}): Promise<ProcessCluster> {
    const ids = Array.from({ length: options.size ?? 3 }, (_, position) => `n${position + 1}`);
    const cluster = new ProcessCluster(ids, options);
    if (options.tls === true) await cluster.makeTls();
    cluster.founders = ids.slice(0, options.founders ?? ids.length);
    const range = options.portRange;
    // Every port is chosen before any node listens, so each must differ from those chosen already
    // (found by npm run chaos: two nodes on one port, the second died with EADDRINUSE).
    const taken = new Set<number>();
    const choose = async (id: string): Promise<number> => {
      let port = range === undefined ? await freePort() : await freePortIn(range[0], range[1], taken);
      for (let attempt = 0; range === undefined && taken.has(port) && attempt < 100; attempt++) port = await freePort();
      if (taken.has(port)) throw new Error(`no port found for ${id} that no other node of this cluster has`);
      taken.add(port);
      return port;
    };
    for (const id of ids) {
      cluster.ports.set(id, await choose(id));
      cluster.raftPorts.set(id, await choose(id));
      if (options.inspect === true) cluster.inspectorPorts.set(id, await choose(id));
    }
    await options.beforeStart?.(cluster);
    for (const id of cluster.founders) cluster.startNode(id);
    try {
      // Generous: three node processes start through tsx, and on a loaded machine (the whole suite
      // runs beside other engineers' work) that alone has taken longer than 15 s.
      await cluster.waitForLeader(options.leaderTimeoutMs ?? 45_000);
    } catch (error) {
      await cluster.close(); // Nothing it started may outlive a failed start.
      throw error;
    }
    return cluster;
  }

  /** makeTls makes a CA and each node's certificate under dataRoot/tls. */
  private async makeTls(): Promise<void> {
    this.tlsFiles = await makeCertificates({
      out: join(this.dataRoot, "tls"),
      nodes: this.ids(),
      schedulers: ["scheduler"],
      hosts: [],
      renew: [],
      force: false,
      log: () => undefined,
    });
    this.dispatcher = new Agent({ connect: { ca: this.caPem() } });
  }

  /** caPem: with TLS, the CA the nodes' certificates come from (for a LockClient's `tls.ca`); undefined without. */
  caPem(): string | undefined {
    return this.tlsFiles === undefined ? undefined : readFileSync(this.tlsFiles.ca, "utf8");
  }

  /** tlsFilesOf: with TLS, the CA file and the certificate and key files of `name` (a node id or "scheduler"). */
  tlsFilesOf(name: string): { ca: string; cert: string; key: string } | undefined {
    const files = this.tlsFiles?.files.get(name);
    return this.tlsFiles === undefined || files === undefined ? undefined : { ca: this.tlsFiles.ca, ...files };
  }

  /** fetch is undici's fetch through this cluster's dispatcher (which trusts its CA, with TLS). */
  fetch(url: string, init: Parameters<typeof fetch>[1] = {}): ReturnType<typeof fetch> {
    return fetch(url, { ...init, dispatcher: this.dispatcher });
  }

  /** foundingIds: the nodes that founded the cluster. */
  foundingIds(): string[] {
    return [...this.founders];
  }

  /** pid of a node's running process, or undefined when it is not running. */
  pid(id: string): number | undefined {
    const child = this.processes.get(id);
    return child === undefined || child.exitCode !== null || child.signalCode !== null ? undefined : child.pid;
  }

  /** runningIds: the nodes whose process is running (paused ones included). */
  runningIds(): string[] {
    return this.ids().filter((id) => this.pid(id) !== undefined);
  }

  ids(): string[] {
    return [...this.ports.keys()];
  }

  url(id: string): string {
    return `${this.tlsFiles === undefined ? "http" : "https"}://127.0.0.1:${this.ports.get(id)}`;
  }

  urls(): string[] {
    return this.ids().map((id) => this.url(id));
  }

  /** startNode (re)starts a node on its port and data directory. */
  startNode(id: string): void {
    const peers =
      this.options.peersFor?.(id) ??
      this.ids()
        .map((peer) => `${peer}=${this.url(peer)}`)
        .join(",");
    const raftPeers =
      this.options.raftPeersFor?.(id) ??
      this.ids()
        .map((peer) => `${peer}=127.0.0.1:${this.raftPorts.get(peer)}`)
        .join(",");
    const inspectorPort = this.inspectorPorts.get(id);
    const inspect = inspectorPort === undefined ? [] : [`--inspect=127.0.0.1:${inspectorPort}`];
    const command = this.options.nodeCommand ?? ["--import", "tsx", "node/main.ts"];
    const child = spawn(process.execPath, [...(this.options.nodeArgs ?? []), ...inspect, ...command], {
      env: {
        ...process.env,
        SCTEC_NODE_ID: id,
        SCTEC_LISTEN: `127.0.0.1:${this.ports.get(id)}`,
        SCTEC_PEERS: peers,
        SCTEC_RAFT_LISTEN: `127.0.0.1:${this.raftPorts.get(id)}`,
        SCTEC_RAFT_PEERS: raftPeers,
        SCTEC_DATA_DIR: this.options.dataDirFor?.(id) ?? join(this.dataRoot, id),
        SCTEC_CLUSTER_SECRET: this.clusterSecret,
        SCTEC_API_TOKEN: this.apiToken,
        SCTEC_LOG_FILE: join(this.dataRoot, `${id}.log`),
        SCTEC_FOUNDERS: this.founders.join(","),
        SCTEC_JOIN: this.founders.includes(id) ? "false" : "true",
        ...this.tlsEnvOf(id),
        ...this.options.env,
        ...this.options.envFor?.(id),
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const onStderr = this.options.onStderr ?? ((from: string, chunk: Buffer) => process.stderr.write(`[${from}] ${chunk}`));
    child.stderr?.on("data", (chunk: Buffer) => onStderr(id, chunk));
    child.once("exit", (code, signal) => this.options.onExit?.(id, child.pid, code, signal));
    this.processes.set(id, child);
    this.options.onSpawn?.(id, child);
    liveChildren.add(child);
    child.once("exit", (code) => {
      liveChildren.delete(child);
      // A node that stopped to be restarted (POST /admin/restart) is started again, as a supervisor would.
      if (code === restartExitCode && this.processes.get(id) === child && !this.closing) {
        this.restarts.push(id);
        this.startNode(id);
      }
    });
  }

  private tlsEnvOf(id: string): Record<string, string> {
    const files = this.tlsFilesOf(id);
    if (files === undefined) return {};
    return { SCTEC_TLS_CERT_FILE: files.cert, SCTEC_TLS_KEY_FILE: files.key, SCTEC_TLS_CA_FILE: files.ca };
  }

  /** restarts: the nodes started again after they asked to be (exit 75), in order. */
  readonly restarts: string[] = [];

  /** exitedNodes: the nodes whose process this cluster started and which have exited since (a crash, unless a test killed it). */
  exitedNodes(): string[] {
    return [...this.processes].filter(([, child]) => child.exitCode !== null || child.signalCode !== null).map(([id]) => id);
  }

  /** signal sends a signal to a node's process (SIGKILL, SIGSTOP, SIGCONT, SIGTERM). */
  signal(id: string, signal: NodeJS.Signals): void {
    this.processes.get(id)?.kill(signal);
  }

  /** kill sends SIGKILL and waits for the process to be gone. */
  async kill(id: string, signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.processes.get(id);
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    // A graceful stop (SIGTERM: hand leadership over, drain, close the raft thread and LevelDB) may
    // take longer than 10 s on a loaded machine: the full npm test at load 10 found a SIGTERM'd
    // node's "stopped" line missing when this returned after 10 s. Still bounded.
    const waitMs = signal === "SIGKILL" ? 10_000 : 60_000;
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, waitMs))]);
    this.processes.delete(id);
  }

  async status(id: string): Promise<NodeStatus | undefined> {
    try {
      const response = await this.fetch(`${this.url(id)}/status`, { signal: AbortSignal.timeout(1000) });
      return (await response.json()) as NodeStatus;
    } catch {
      return undefined;
    }
  }

  /** leader returns the id of a node that says it leads and whose term no other live node exceeds. */
  async leader(): Promise<string | undefined> {
    const statuses = (await Promise.all(this.ids().map((id) => this.status(id)))).filter((status) => status !== undefined);
    const highestTerm = Math.max(...statuses.map((status) => status.term));
    return statuses.find((status) => status.role === "leader" && status.term === highestTerm)?.nodeId;
  }

  waitForLeader(timeoutMs: number, except?: string): Promise<string> {
    return waitFor(
      async () => {
        const leader = await this.leader();
        return leader !== undefined && leader !== except ? leader : undefined;
      },
      "a leader",
      timeoutMs,
    );
  }

  private closing = false;

  async close(): Promise<void> {
    this.closing = true;
    for (const id of [...this.processes.keys()]) {
      this.signal(id, "SIGCONT");
      await this.kill(id);
    }
    rmSync(this.dataRoot, { recursive: true, force: true });
    await this.dispatcher.close();
  }
}
