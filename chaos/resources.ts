// Resources are what the runner creates outside its own memory: child processes, tmpfs mounts and
// temporary directories. Each is registered when it is made and forgotten when it is released in
// order, so that whatever is still registered can be released at once, synchronously, when the
// runner must exit (a second Ctrl-C, an uncaught exception, process exit): children are killed by
// PID through their ChildProcess (never by name), mounts unmounted, directories removed.
//
// A runner killed with SIGKILL cannot clean up. Its mounts carry its PID in their path
// (`sctec-chaos-<pid>-…` under the temporary directory); the next run unmounts those whose PID is
// no longer alive (releaseStaleMounts).

import { type ChildProcess, spawnSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";

export class Resources {
  private readonly children = new Set<ChildProcess>();
  /** mounts, in mount order; released in reverse. */
  private readonly mounts: string[] = [];
  private readonly directories = new Set<string>();

  addChild(child: ChildProcess): void {
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
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

/** releaseStaleMounts unmounts and removes what runs whose runner is gone (killed with SIGKILL) left behind; returns what it released. */
export function releaseStaleMounts(): string[] {
  const released: string[] = [];
  const pattern = new RegExp(`^${escapeRegExp(tmpdir())}/sctec-chaos-(\\d+)-[^/]+`);
  const stale = new Set<string>();
  for (const mount of mountPoints()) {
    const match = pattern.exec(mount);
    if (match === null || isAlive(Number(match[1]))) continue;
    if (unmountNow(mount)) released.push(mount);
    stale.add(match[0]);
  }
  for (const root of stale) rmSync(root, { recursive: true, force: true });
  return released;
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
