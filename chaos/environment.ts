// What the runner puts around each node process: a data directory on a small tmpfs of its own
// (so that one node's disk can fill up), a wall clock it can step (Debian's libfaketime, reading
// an offset from a file on every call), and an fsync it can slow down (slow-fsync.c, also
// preloaded). The node itself is unchanged: it only sees a full disk, a clock that jumps and a
// slow fsync, as it would on a bad machine.

import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, renameSync, rmSync, statfsSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { isMounted, type Resources } from "./resources.ts";

/** faketimeLibrary: Debian's libfaketime, the multi-threaded variant (node runs threads: libuv's pool, V8's). */
export const faketimeLibrary = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/** Capabilities: which environment faults this machine can produce, and why not. */
export interface Capabilities {
  readonly tmpfs: true | string;
  readonly faketime: true | string;
  /** slowFsync: the path of the built preload library, or why it cannot be built. */
  readonly slowFsync: { readonly library: string } | string;
}

/** probeCapabilities checks for root (mount), libfaketime and a C compiler, and builds slow-fsync.so into `workDir`. */
export function probeCapabilities(workDir: string): Capabilities {
  const tmpfs = process.getuid?.() === 0 ? true : "not root: mounting a tmpfs needs root";
  const faketime = existsSync(faketimeLibrary) ? true : `${faketimeLibrary} is missing (apt-get install -y faketime)`;
  const source = fileURLToPath(new URL("./slow-fsync.c", import.meta.url));
  const library = join(workDir, "slow-fsync.so");
  const built = spawnSync("cc", ["-shared", "-fPIC", "-O2", "-o", library, source, "-ldl"], { encoding: "utf8", timeout: 60_000 });
  const slowFsync =
    built.status === 0 ? { library } : `cannot build chaos/slow-fsync.c with cc: ${(built.stderr || built.error?.message || "").trim()}`;
  return { tmpfs, faketime, slowFsync };
}

/**
 * NodeDisks gives each node a tmpfs of `sizeBytes` at `<root>/<id>`; the node's LevelDB lives in
 * `<root>/<id>/db`, and a filler file beside it takes up the space when the disk is to be full.
 */
export class NodeDisks {
  private readonly root: string;
  private readonly sizeBytes: number;
  private readonly resources: Resources;
  private readonly mounted = new Set<string>();

  constructor(options: { root: string; sizeBytes: number; resources: Resources }) {
    this.root = options.root;
    this.sizeBytes = options.sizeBytes;
    this.resources = options.resources;
  }

  /** mount creates and mounts the node's tmpfs. */
  mount(id: string): void {
    const path = this.mountPath(id);
    mkdirSync(path, { recursive: true });
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${this.sizeBytes},mode=0700`, `sctec-chaos-${id}`, path], { timeout: 10_000 });
    this.resources.addMount(path);
    this.mounted.add(id);
  }

  mountPath(id: string): string {
    return join(this.root, id);
  }

  dataDir(id: string): string {
    return join(this.mountPath(id), "db");
  }

  /**
   * fill writes a filler file until the disk refuses (ENOSPC), in 1 MiB and then 4 KiB writes, so
   * that not even a small write fits; bounded by the disk's size. Returns the bytes written.
   */
  fill(id: string): number {
    const filler = join(this.mountPath(id), "filler");
    const descriptor = openSync(filler, "a");
    let written = 0;
    try {
      for (const chunkBytes of [1024 * 1024, 4096, 512]) {
        const chunk = Buffer.alloc(chunkBytes, 0x5a);
        for (let round = 0; round <= this.sizeBytes / chunkBytes + 1; round++) {
          try {
            written += writeSync(descriptor, chunk);
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code === "ENOSPC") break;
            throw error;
          }
        }
      }
    } finally {
      closeSync(descriptor);
    }
    return written;
  }

  /** free removes the filler: the space is back. */
  free(id: string): void {
    rmSync(join(this.mountPath(id), "filler"), { force: true });
  }

  /** freeBytes: what the node's disk has left. */
  freeBytes(id: string): number {
    const stats = statfsSync(this.mountPath(id));
    return stats.bavail * stats.bsize;
  }

  /** unmountAll unmounts every disk (the nodes must be stopped); returns the paths it could not unmount. */
  unmountAll(): string[] {
    const failed: string[] = [];
    for (const id of this.mounted) {
      const path = this.mountPath(id);
      if (!isMounted(path) || this.resources.unmount(path)) this.mounted.delete(id);
      else failed.push(path);
    }
    return failed;
  }
}

/**
 * NodeClocks steps each node's wall clock through libfaketime: FAKETIME_TIMESTAMP_FILE names a
 * file holding an offset ("+300", "-120.5", in seconds), read on every clock call
 * (FAKETIME_NO_CACHE). FAKETIME_DONT_FAKE_MONOTONIC leaves CLOCK_MONOTONIC alone: Linux never
 * steps it (only NTP's bounded slewing touches its rate), so a fault that moved it would test a
 * kernel that does not exist; leases, elections and timers run on it, and must not notice.
 */
export class NodeClocks {
  private readonly directory: string;
  private readonly offsets = new Map<string, number>();

  constructor(directory: string) {
    this.directory = directory;
    mkdirSync(directory, { recursive: true });
  }

  /** environment: what a node needs in its environment to run on its steppable clock. */
  environment(id: string): Record<string, string> {
    this.set(id, this.offsets.get(id) ?? 0);
    return {
      FAKETIME_TIMESTAMP_FILE: this.file(id),
      FAKETIME_NO_CACHE: "1",
      FAKETIME_DONT_FAKE_MONOTONIC: "1",
    };
  }

  /** set moves the node's wall clock to `offsetSeconds` from the real one (atomically: the file is replaced, never half-written). */
  set(id: string, offsetSeconds: number): void {
    const temporary = `${this.file(id)}.next`;
    writeFileSync(temporary, `${offsetSeconds >= 0 ? "+" : ""}${offsetSeconds.toFixed(3)}\n`);
    renameSync(temporary, this.file(id));
    this.offsets.set(id, offsetSeconds);
  }

  offset(id: string): number {
    return this.offsets.get(id) ?? 0;
  }

  private file(id: string): string {
    return join(this.directory, `${id}.faketime`);
  }
}

/** FsyncDelays sets, per node, how long each fsync waits (read by slow-fsync.so on every call). */
export class FsyncDelays {
  private readonly directory: string;

  constructor(directory: string) {
    this.directory = directory;
    mkdirSync(directory, { recursive: true });
  }

  environment(id: string): Record<string, string> {
    return { SCTEC_SLOW_FSYNC_FILE: this.file(id) };
  }

  set(id: string, delayMs: number): void {
    const temporary = `${this.file(id)}.next`;
    writeFileSync(temporary, `${Math.max(0, Math.round(delayMs))}\n`);
    renameSync(temporary, this.file(id));
  }

  clear(id: string): void {
    try {
      unlinkSync(this.file(id));
    } catch {
      // Never set: nothing to clear.
    }
  }

  private file(id: string): string {
    return join(this.directory, `${id}.fsync-delay-ms`);
  }
}
