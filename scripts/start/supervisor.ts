// The child processes of `npm start`, kept on a short leash: each is started in a process group of
// its own with an IPC channel, its stderr is shown (prefixed) and its last lines kept, and an exit
// that nobody asked for is reported with the last lines of its stderr and its log file. Stopping
// sends SIGTERM to each, waits a bounded time for all, then SIGKILLs what is left.
//
// Why a process group of its own (`detached`): Ctrl-C in a terminal signals the whole foreground
// group at once, so the nodes and the scheduler would stop by themselves while npm start still
// waits for them, and one that exits first would look like a crash. In their own groups only npm
// start signals them, in the order it chooses. Why an IPC channel: a child whose channel closes
// knows that npm start is gone, however it ended (SIGKILL included), and stops itself
// (node/main.ts, scheduler/main.ts), so nothing is left holding the ports.

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { createServer } from "node:net";

/** ChildSpec: one process npm start runs. */
export interface ChildSpec {
  /** key names the child in maps and prefixes (`n1`, `scheduler`). */
  readonly key: string;
  /** name names it in messages (`node n1`, `the scheduler`). */
  readonly name: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** logFile: where the child writes its log, shown in part when it exits unasked. */
  readonly logFile: string;
  /**
   * restartExitCode: an exit with this code asks to be started again (a node's `POST
   * /admin/restart`, for rolling restarts); any other exit nobody asked for is a failure.
   */
  readonly restartExitCode?: number;
}

/** ChildExit: a child ended without being asked to, with what it last said. */
export interface ChildExit {
  readonly key: string;
  readonly name: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** lastLines: its last stderr lines, then its log file's last lines (each marked with where it comes from). */
  readonly lastLines: readonly string[];
}

export interface SupervisorOptions {
  /** command runs every child (the Node binary). */
  readonly command: string;
  readonly cwd?: string;
  /** log prints one line of npm start's own narration. */
  readonly log: (message: string) => void;
  /** forwardStderr shows a child's stderr text as it comes (prefixed with its key). */
  readonly forwardStderr: (text: string) => void;
  /** stopTimeoutMs bounds how long stopAll waits after SIGTERM before it sends SIGKILL. */
  readonly stopTimeoutMs: number;
  /** tailLinesMax bounds the lines kept and shown of a child's stderr and of its log file. */
  readonly tailLinesMax: number;
  /** restartsPerMinuteMax bounds the restarts asked for by one child within a minute; one more is a failure. */
  readonly restartsPerMinuteMax: number;
  /** onExit hears of a child that ended without being asked to (or asked to restart too often). */
  readonly onExit: (exit: ChildExit) => void;
  /** nowMs is a monotonic clock. @default performance.now */
  readonly nowMs?: () => number;
}

interface Running {
  readonly spec: ChildSpec;
  readonly child: ChildProcess;
  readonly stderrTail: string[];
  /** exited settles when the process is gone. */
  readonly exited: Promise<void>;
}

export class Supervisor {
  private readonly options: SupervisorOptions;
  private readonly running = new Map<string, Running>();
  private readonly restartTimesMs = new Map<string, number[]>();
  private stopping = false;

  constructor(options: SupervisorOptions) {
    this.options = options;
  }

  /** start runs a child; its pid is known at once (undefined only if it could not be spawned, which is reported as an exit). */
  start(spec: ChildSpec): number | undefined {
    const child = spawn(this.options.command, spec.args, {
      env: spec.env,
      ...(this.options.cwd === undefined ? {} : { cwd: this.options.cwd }),
      stdio: ["ignore", "ignore", "pipe", "ipc"],
      detached: true,
    });
    const stderrTail: string[] = [];
    let partial = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      const text = partial + chunk.toString("utf8");
      const lines = text.split("\n");
      partial = lines.pop() ?? "";
      for (const line of lines) {
        this.options.forwardStderr(`[${spec.key}] ${line}\n`);
        pushBounded(stderrTail, line, this.options.tailLinesMax);
      }
    });
    // A child that cannot be spawned at all (no such binary) says so here; it is then reported as it exits.
    child.on("error", (error) => pushBounded(stderrTail, `could not run: ${error.message}`, this.options.tailLinesMax));
    const exited = new Promise<void>((resolve) => {
      child.once("close", (code, signal) => {
        if (partial !== "") pushBounded(stderrTail, partial, this.options.tailLinesMax);
        if (this.running.get(spec.key)?.child === child) this.running.delete(spec.key);
        resolve();
        this.childEnded(spec, code, signal, stderrTail);
      });
    });
    this.running.set(spec.key, { spec, child, stderrTail, exited });
    return child.pid;
  }

  /** pid: the process id of the child running under `key` now, if any. */
  pid(key: string): number | undefined {
    return this.running.get(key)?.child.pid;
  }

  /** isRunning: whether a child runs under `key`. */
  isRunning(key: string): boolean {
    return this.running.has(key);
  }

  /**
   * stopAll stops every child: SIGTERM to the groups named in `first` (in that order, each waited
   * for), then to all the others at once, then SIGKILL to whatever is left after stopTimeoutMs.
   * From here on no exit is reported and no child is restarted.
   */
  async stopAll(first: readonly string[] = []): Promise<{ killed: string[] }> {
    this.stopping = true;
    const deadlineMs = this.nowMs() + this.options.stopTimeoutMs;
    for (const key of first) {
      const running = this.running.get(key);
      if (running === undefined) continue;
      signal(running.child, "SIGTERM");
      await withinMs(running.exited, deadlineMs - this.nowMs());
    }
    const rest = [...this.running.values()];
    for (const running of rest) signal(running.child, "SIGTERM");
    await withinMs(Promise.all(rest.map((running) => running.exited)), deadlineMs - this.nowMs());
    const killed: string[] = [];
    for (const running of [...this.running.values()]) {
      killed.push(running.spec.key);
      signal(running.child, "SIGKILL");
    }
    // A SIGKILLed process is gone at once; its close event follows within the same few turns.
    await withinMs(Promise.all([...this.running.values()].map((running) => running.exited)), 5000);
    return { killed };
  }

  private childEnded(spec: ChildSpec, code: number | null, signalName: NodeJS.Signals | null, stderrTail: readonly string[]): void {
    if (this.stopping) return;
    if (spec.restartExitCode !== undefined && code === spec.restartExitCode && this.mayRestart(spec.key)) {
      this.options.log(`${spec.name} stopped to be restarted (exit ${code}); starting it again`);
      const pid = this.start(spec);
      this.options.log(`${spec.name} started again (pid ${pid})`);
      return;
    }
    const lastLines = [
      ...stderrTail.map((line) => `stderr | ${line}`),
      ...tailOfFile(spec.logFile, this.options.tailLinesMax).map((line) => `${spec.logFile} | ${line}`),
    ];
    this.options.onExit({ key: spec.key, name: spec.name, code, signal: signalName, lastLines });
  }

  /** mayRestart records a restart asked for by `key`, unless it asked more than restartsPerMinuteMax times in the last minute. */
  private mayRestart(key: string): boolean {
    const nowMs = this.nowMs();
    const recent = (this.restartTimesMs.get(key) ?? []).filter((atMs) => nowMs - atMs < 60_000);
    if (recent.length >= this.options.restartsPerMinuteMax) return false;
    recent.push(nowMs);
    this.restartTimesMs.set(key, recent);
    return true;
  }

  private nowMs(): number {
    return (this.options.nowMs ?? (() => performance.now()))();
  }
}

/** signal signals a child's whole process group (it leads one: detached), or the child alone if the group is gone. */
function signal(child: ChildProcess, name: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, name);
  } catch {
    child.kill(name);
  }
}

function withinMs(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.then(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, ms));
    }),
  ]).finally(() => clearTimeout(timer));
}

function pushBounded(lines: string[], line: string, linesMax: number): void {
  lines.push(line);
  if (lines.length > linesMax) lines.splice(0, lines.length - linesMax);
}

/** tailBytesMax: how much of a log file's end is read for its last lines. */
const tailBytesMax = 64 * 1024;

/** tailOfFile: the last `linesMax` lines of a file (each at most 400 characters), none if it does not exist. */
export function tailOfFile(path: string, linesMax: number): string[] {
  if (!existsSync(path)) return [];
  const size = statSync(path).size;
  const length = Math.min(size, tailBytesMax);
  const buffer = Buffer.alloc(length);
  const descriptor = openSync(path, "r");
  try {
    readSync(descriptor, buffer, 0, length, size - length);
  } finally {
    closeSync(descriptor);
  }
  const lines = buffer.toString("utf8").split("\n");
  if (size > length) lines.shift(); // Cut mid-line.
  return lines
    .filter((line) => line.trim() !== "")
    .slice(-linesMax)
    .map((line) => (line.length > 400 ? `${line.slice(0, 399)}…` : line));
}

/** portsInUse: which of these loopback ports something listens on already (each tried by listening on it, then let go). */
export async function portsInUse(ports: readonly number[], host = "127.0.0.1"): Promise<number[]> {
  const busy: number[] = [];
  for (const port of ports) {
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(false));
      server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
    });
    if (!free) busy.push(port);
  }
  return busy;
}
