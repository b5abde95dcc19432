// NodeThreadProfiler CPU-profiles both threads of a running lock node, its HTTP (main) thread and
// its raft thread (a worker), over a window the caller chooses, through the node's V8 inspector
// (the Chrome DevTools Protocol; the node runs with `--inspect`, ProcessCluster's `inspect`).
//
// Why not `--cpu-prof`: it profiles a thread from its start to its exit, so the profile holds the
// start, the election and the stop (a leader's hand-over) beside the measured window; and it writes
// a worker's profile only if the worker ends cleanly, which an earlier attempt found it did not
// (issue 21: the raft thread was missing). Here the main thread is profiled through its own
// inspector session, and the raft thread through the main thread's NodeWorker domain (Node's
// protocol for attaching to workers): both start and stop on the caller's word, and the profiles
// come back over the socket, whatever the node does afterwards. Nothing in the node changes.

import { WebSocket } from "ws";

/** CpuProfile is V8's profile (Profiler.stop's result), as `--cpu-prof` writes it too. */
export interface CpuProfile {
  readonly nodes: readonly CpuProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  /** timeDeltas: µs from the previous sample to each sample (the first: from startTime). */
  readonly timeDeltas?: readonly number[];
}

export interface CpuProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber?: number };
  readonly children?: readonly number[];
  readonly hitCount?: number;
}

/** ThreadProfiles: one node's two profiles over the same window. */
export interface ThreadProfiles {
  readonly main: CpuProfile;
  readonly raft: CpuProfile;
}

interface Pending {
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: Error) => void;
}

interface ProtocolMessage {
  readonly id?: number;
  readonly method?: string;
  readonly params?: Record<string, unknown>;
  readonly result?: unknown;
  readonly error?: { readonly message?: string };
}

/** attachTimeoutMs bounds the wait for the inspector to report the raft thread. */
const attachTimeoutMs = 10_000;
/** commandTimeoutMs bounds every protocol command (Profiler.stop of a busy thread may take a while). */
const commandTimeoutMs = 30_000;

export class NodeThreadProfiler {
  private readonly socket: WebSocket;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private workerSessionId: string | undefined;
  /** workers: every worker the inspector reported, with what it said of it (its title and url name the raft thread). */
  private readonly workers: { readonly sessionId: string; readonly title: string; readonly url: string }[] = [];

  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on("message", (data) => this.receive(JSON.parse(String(data)) as ProtocolMessage));
    socket.on("close", () => this.failAll(new Error("the inspector connection closed")));
  }

  /**
   * attach connects to the node's inspector on `port`, attaches to its raft thread (the node's one
   * worker but for the module loader's) and readies the profiler of both threads with `samplingIntervalUs`.
   */
  static async attach(port: number, samplingIntervalUs: number): Promise<NodeThreadProfiler> {
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl?: string }[];
    const url = targets[0]?.webSocketDebuggerUrl;
    if (url === undefined) throw new Error(`no inspector target on port ${port}`);
    const socket = new WebSocket(url, { perMessageDeflate: false, maxPayload: 1024 * 1024 * 1024 });
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    const profiler = new NodeThreadProfiler(socket);
    await profiler.command("NodeWorker.enable", { waitForDebuggerOnStart: false });
    await profiler.waitForWorker();
    for (const thread of ["main", "raft"] as const) {
      await profiler.threadCommand(thread, "Profiler.enable");
      await profiler.threadCommand(thread, "Profiler.setSamplingInterval", { interval: samplingIntervalUs });
    }
    return profiler;
  }

  /** start starts both threads' profilers (one right after the other: a few µs apart). */
  async start(): Promise<void> {
    await Promise.all([this.threadCommand("main", "Profiler.start"), this.threadCommand("raft", "Profiler.start")]);
  }

  /** stop stops both profilers and answers their profiles. */
  async stop(): Promise<ThreadProfiles> {
    const [main, raft] = await Promise.all([this.threadCommand("main", "Profiler.stop"), this.threadCommand("raft", "Profiler.stop")]);
    return { main: (main as { profile: CpuProfile }).profile, raft: (raft as { profile: CpuProfile }).profile };
  }

  /** close disconnects (a node with a debugger attached may wait for it before it exits). */
  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      this.socket.once("close", () => resolve());
      this.socket.close();
    });
  }

  private async waitForWorker(): Promise<void> {
    const deadline = performance.now() + attachTimeoutMs;
    // Polled: the attach event comes right after NodeWorker.enable answers. Bounded by the deadline.
    const isLoader = (worker: { readonly url: string }) => worker.url === "node:internal/modules/esm/worker";
    while (this.workers.every(isLoader) && performance.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Under tsx, Node runs the module loader's hooks on workers of their own (one for the main
    // thread, one for the raft thread): those are not the raft thread.
    const raft = this.workers.filter((worker) => !isLoader(worker));
    if (raft.length !== 1) throw new Error(`cannot tell the raft thread among the node's workers: ${JSON.stringify(this.workers)}`);
    this.workerSessionId = raft[0]?.sessionId;
  }

  /** threadCommand sends a protocol command to one thread: the main thread's session, or the raft thread's through NodeWorker. */
  private threadCommand(thread: "main" | "raft", method: string, params: object = {}): Promise<unknown> {
    if (thread === "main") return this.command(method, params);
    const sessionId = this.workerSessionId;
    if (sessionId === undefined) return Promise.reject(new Error("not attached to the raft thread"));
    const id = this.nextId++;
    const answer = this.expect(id, method);
    // The outer command's own answer only says the message was passed on; the worker's answer carries `id`.
    void this.command("NodeWorker.sendMessageToWorker", { sessionId, message: JSON.stringify({ id, method, params }) }).catch(
      (error: unknown) => this.settle(id, { error: { message: String(error) } }),
    );
    return answer;
  }

  private command(method: string, params: object = {}): Promise<unknown> {
    const id = this.nextId++;
    const answer = this.expect(id, method);
    this.socket.send(JSON.stringify({ id, method, params }));
    return answer;
  }

  private expect(id: number, method: string): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no answer from the inspector within ${commandTimeoutMs} ms`));
      }, commandTimeoutMs);
      this.pending.set(id, {
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }

  private receive(message: ProtocolMessage): void {
    if (message.id !== undefined) {
      this.settle(message.id, message);
      return;
    }
    if (message.method === "NodeWorker.attachedToWorker") {
      const info = message.params?.["workerInfo"] as { title?: string; url?: string } | undefined;
      this.workers.push({ sessionId: String(message.params?.["sessionId"]), title: String(info?.title), url: String(info?.url) });
      return;
    }
    if (message.method === "NodeWorker.receivedMessageFromWorker") {
      const inner = JSON.parse(String(message.params?.["message"])) as ProtocolMessage;
      if (inner.id !== undefined) this.settle(inner.id, inner);
    }
  }

  private settle(id: number, message: Pick<ProtocolMessage, "result" | "error">): void {
    const pending = this.pending.get(id);
    if (pending === undefined) return;
    this.pending.delete(id);
    if (message.error !== undefined) pending.reject(new Error(`inspector: ${message.error.message ?? "error"}`));
    else pending.resolve(message.result);
  }

  private failAll(error: Error): void {
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }
}
