// Resources are what the runner creates outside its own memory: child processes, tmpfs mounts and
// temporary directories. Each is registered when it is made and forgotten when it is released in
// order, so that whatever is still registered can be released at once, synchronously, when the
// runner must exit (a second Ctrl-C, an uncaught exception, process exit): children are killed by
// PID through their ChildProcess (never by name), mounts unmounted, directories removed.
//
// A runner killed with SIGKILL cannot clean up. Its directory carries its PID in its name
// (`sctec-chaos-<pid>-…` under the temporary directory) and lists its children's PIDs with their
// start times; the next run kills those children that still run (the same PID and start time:
// never a recycled PID) and unmounts the disks, once that runner's PID is gone (releaseStale).

import { type ChildProcess, spawnSync } from "node:child_process";
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export class Resources {
  private readonly children = new Set<ChildProcess>();
  /** mounts, in mount order; released in reverse. */
  private readonly mounts: string[] = [];
  private readonly directories = new Set<string>();
  /** childrenFile: where each child's PID and start time are written, for a later run to clean up after a SIGKILL. */
  private childrenFile: string | undefined;

  /** recordChildrenIn names the file (in the run's directory) that lists the children for releaseStale. */
  recordChildrenIn(file: string): void {
    this.childrenFile = file;
  }

  addChild(child: ChildProcess): void {
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
    const startTime = child.pid === undefined ? undefined : processStartTime(child.pid);
    if (this.childrenFile !== undefined && startTime !== undefined) appendFileSync(this.childrenFile, `${child.pid} ${startTime}\n`);
  }

  addMount(path: string): void {
    this.mounts.push(path);
  }

  addDirectory(path: string): void {
    this.directories.add(path);
  }

  runningChildren(): number {
    return [...this.children].filter((child) => child.exitCode === null && child.signalCode === null).length;
  }

  /** unmount unmounts one registered mount (lazily, if it is busy) and forgets it; true when it is gone. */
  unmount(path: string): boolean {
    const gone = unmountNow(path);
    if (gone) this.mounts.splice(this.mounts.indexOf(path), 1);
    return gone;
  }

  /**
   * releaseUnder unmounts every registered mount under `root` (the last mounted first), then removes
   * `root`; returns what it could not release, and never throws. A history's cleanup runs it: a
   * history whose cluster failed to start has no ChaosCluster to unmount its disks, and removing a
   * directory with a tmpfs still on it throws EBUSY (which ended a long run at a load of 20).
   */
  releaseUnder(root: string): string[] {
    const failed: string[] = [];
    const prefix = `${root}/`;
    for (const path of [...this.mounts].reverse()) {
      if (path.startsWith(prefix) && !this.unmount(path)) failed.push(`mount ${path}`);
    }
    try {
      rmSync(root, { recursive: true, force: true });
      this.directories.delete(root);
    } catch (error) {
      failed.push(`directory ${root} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
    }
    return failed;
  }

  /** removeDirectory removes a registered directory and forgets it. */
  removeDirectory(path: string): void {
    rmSync(path, { recursive: true, force: true });
    this.directories.delete(path);
  }

  /**
   * releaseAllNow releases everything still registered, synchronously: it may run in an exit
   * handler, where nothing asynchronous runs any more. A paused child gets SIGCONT first, so that
   * it does not linger stopped if SIGKILL is delayed.
   */
  releaseAllNow(): { killed: number; unmounted: number; failed: string[] } {
    let killed = 0;
    const failed: string[] = [];
    for (const child of this.children) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      child.kill("SIGCONT");
      if (child.kill("SIGKILL")) killed++;
      else failed.push(`process ${child.pid}`);
    }
    this.children.clear();
    let unmounted = 0;
    for (const path of [...this.mounts].reverse()) {
      if (unmountNow(path)) unmounted++;
      else failed.push(`mount ${path}`);
    }
    this.mounts.length = 0;
    for (const path of this.directories) {
      try {
        rmSync(path, { recursive: true, force: true });
      } catch {
        failed.push(`directory ${path}`);
      }
    }
    this.directories.clear();
    return { killed, unmounted, failed };
  }
}

/** unmountNow unmounts `path` (or detaches it lazily if busy); true when it is no longer mounted. */
export function unmountNow(path: string): boolean {
  if (!isMounted(path)) return true;
  spawnSync("umount", [path], { stdio: "ignore", timeout: 10_000 });
  if (!isMounted(path)) return true;
  spawnSync("umount", ["-l", path], { stdio: "ignore", timeout: 10_000 });
  return !isMounted(path);
}

/** mountPoints lists the mount points of this machine (from /proc/self/mounts, octal escapes decoded). */
export function mountPoints(): string[] {
  const text = readFileSync("/proc/self/mounts", "utf8");
  return text
    .split("\n")
    .map((line) => line.split(" ")[1])
    .filter((field): field is string => field !== undefined && field !== "")
    .map((field) => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8))));
}

export function isMounted(path: string): boolean {
  return mountPoints().includes(path);
}

/** runPrefix is the start of every directory a run creates under the temporary directory: it names the runner's PID. */
export function runPrefix(pid = process.pid): string {
  return `${tmpdir()}/sctec-chaos-${pid}-`;
}

/**
 * releaseStale cleans up after runs whose runner is gone (killed with SIGKILL): it kills their
 * children that still run, unmounts their disks and removes their directories. Returns what it did.
 */
export function releaseStale(): string[] {
  const released: string[] = [];
  const pattern = new RegExp(`^${escapeRegExp(tmpdir())}/sctec-chaos-(\\d+)-[^/]+`);
  const roots = new Set<string>();
  for (const mount of mountPoints()) {
    const match = pattern.exec(mount);
    if (match !== null && !isAlive(Number(match[1]))) roots.add(match[0]);
  }
  for (const name of listTmp()) {
    const match = pattern.exec(join(tmpdir(), name));
    if (match !== null && !isAlive(Number(match[1]))) roots.add(match[0]);
  }
  for (const root of roots) {
    released.push(...killRecordedChildren(join(root, "children")));
    for (const mount of mountPoints().filter((path) => path.startsWith(`${root}/`))) {
      if (unmountNow(mount)) released.push(`unmounted ${mount}`);
    }
    rmSync(root, { recursive: true, force: true });
  }
  return released;
}

function listTmp(): string[] {
  try {
    return readdirSync(tmpdir()).filter((name) => name.startsWith("sctec-chaos-"));
  } catch {
    return [];
  }
}

/** killRecordedChildren kills the listed processes that still run with the recorded start time. */
function killRecordedChildren(file: string): string[] {
  if (!existsSync(file)) return [];
  const killed: string[] = [];
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const [pidText, startText] = line.split(" ");
    const pid = Number(pidText);
    if (!Number.isSafeInteger(pid) || pid <= 1 || processStartTime(pid) !== startText) continue;
    try {
      process.kill(pid, "SIGCONT");
      process.kill(pid, "SIGKILL");
      killed.push(`killed process ${pid} of an earlier run`);
    } catch {
      // Gone meanwhile.
    }
  }
  return killed;
}

/** processStartTime: field 22 of /proc/<pid>/stat (clock ticks since boot), or undefined if the process is gone. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
