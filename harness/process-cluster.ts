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
  private readonly processes = new Map<string, ChildProcess>();
  private readonly extraEnv: Record<string, string>;
  /** tlsFiles: with TLS, the CA and each node's certificate and key (PEM files under dataRoot/tls). */
  private tlsFiles: { ca: string; files: Map<string, { cert: string; key: string }> } | undefined;
  /** dispatcher: what this harness's own requests go through (trusting the run's CA, with TLS). */
  private dispatcher: Agent = new Agent();

  private constructor(ids: readonly string[], extraEnv: Record<string, string>) {
    this.dataRoot = mkdtempSync(join(tmpdir(), "sctec-cluster-"));
    this.extraEnv = extraEnv;
    for (const id of ids) this.ports.set(id, 0);
  }

  /** founders: the founding voters (default: all); the other nodes are in the address book but not started. */
  private founders: readonly string[] = [];

  /** nodeArgs: extra arguments for each node's `node` (for example --cpu-prof). */
  private nodeArgs: readonly string[] = [];

  static async start(
    options: {
      size?: number;
      founders?: number;
      env?: Record<string, string>;
      nodeArgs?: readonly string[];
      /** leaderTimeoutMs bounds the wait for the first leader. @default 15000 */
      leaderTimeoutMs?: number;
      /** tls: HTTPS and mutual TLS between the nodes, with certificates of a CA made for this run. */
      tls?: boolean;
    } = {},
  ): Promise<ProcessCluster> {
    const ids = Array.from({ length: options.size ?? 3 }, (_, position) => `n${position + 1}`);
    const cluster = new ProcessCluster(ids, options.env ?? {});
    if (options.tls === true) await cluster.makeTls();
    cluster.nodeArgs = options.nodeArgs ?? [];
    cluster.founders = ids.slice(0, options.founders ?? ids.length);
    for (const id of ids) cluster.ports.set(id, await freePort());
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
    const peers = this.ids()
      .map((peer) => `${peer}=${this.url(peer)}`)
      .join(",");
    const child = spawn(process.execPath, [...this.nodeArgs, "--import", "tsx", "node/main.ts"], {
      env: {
        ...process.env,
        SCTEC_NODE_ID: id,
        SCTEC_LISTEN: `127.0.0.1:${this.ports.get(id)}`,
        SCTEC_PEERS: peers,
        SCTEC_DATA_DIR: join(this.dataRoot, id),
        SCTEC_CLUSTER_SECRET: this.clusterSecret,
        SCTEC_API_TOKEN: this.apiToken,
        SCTEC_LOG_FILE: join(this.dataRoot, `${id}.log`),
        SCTEC_FOUNDERS: this.founders.join(","),
        SCTEC_JOIN: this.founders.includes(id) ? "false" : "true",
        ...this.tlsEnvOf(id),
        ...this.extraEnv,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    child.stderr?.on("data", (chunk: Buffer) => process.stderr.write(`[${id}] ${chunk}`));
    this.processes.set(id, child);
    liveChildren.add(child);
    child.once("exit", () => liveChildren.delete(child));
  }

  private tlsEnvOf(id: string): Record<string, string> {
    const files = this.tlsFilesOf(id);
    if (files === undefined) return {};
    return { SCTEC_TLS_CERT_FILE: files.cert, SCTEC_TLS_KEY_FILE: files.key, SCTEC_TLS_CA_FILE: files.ca };
  }

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
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
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

  async close(): Promise<void> {
    for (const id of [...this.processes.keys()]) {
      this.signal(id, "SIGCONT");
      await this.kill(id);
    }
    rmSync(this.dataRoot, { recursive: true, force: true });
    await this.dispatcher.close();
  }
}
