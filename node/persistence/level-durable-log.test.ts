// LevelDurableLog (level-durable-log.ts) against real LevelDB in temporary directories. The tests
// write through the DurableLog interface the node uses, close, reopen and load, and compare with
// what was written. Damaged directories are made by writing raw keys with `level` directly or by
// dropping garbage files; every one must be refused with a DataDirError code. Durability is shown
// with a child process (crash-writer.ts) killed by SIGKILL in the middle of its synced saves: every
// index it printed (printed only after the save resolved) must be on disk. Last, a fast-check
// property applies random save/compact/reopen sequences to the log and to a plain in-memory model
// of the same semantics (MemoryStorage's), and requires load() to equal the model after each step.

import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { Level } from "level";
import { Packr } from "msgpackr";
import { afterEach, describe, expect, it } from "vitest";
import type { ConfState, Entry, HardState, Snapshot } from "../../raft/index.ts";
import { nodeId } from "../../raft/index.ts";
import type { DataDirErrorCode } from "../contracts.ts";
import { crc32c } from "../durable-rules.ts";
import {
  decodeSnapshot,
  encodeValue,
  entryKey,
  frameValue,
  hardStateKey,
  metaKey,
  snapshotKey,
  snapshotValueLayout,
  valuePayload,
  writeChecksum,
} from "./durable-codec.ts";
import { LevelDurableLog, type LevelDurableLogOptions } from "./level-durable-log.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "../..");
const owner = { clusterId: "cluster-a", nodeId: "n1" };
const confState: ConfState = { voters: [nodeId("n1"), nodeId("n2"), nodeId("n3")], learners: [nodeId("n4")] };

const temporaryDirs: string[] = [];
const openLogs: LevelDurableLog[] = [];

afterEach(async () => {
  for (const log of openLogs.splice(0)) await log.close().catch(() => undefined);
  for (const dir of temporaryDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** freshDir returns a data directory path inside a new temporary directory (removed after the test). */
function freshDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "level-durable-log-"));
  temporaryDirs.push(dir);
  return path.join(dir, "data");
}

async function openLog(dataDir: string, who: Omit<LevelDurableLogOptions, "dataDir"> = owner): Promise<LevelDurableLog> {
  const log = await LevelDurableLog.open({ dataDir, ...who });
  openLogs.push(log);
  return log;
}

async function closeLog(log: LevelDurableLog): Promise<void> {
  openLogs.splice(openLogs.indexOf(log), 1);
  await log.close();
}

/** reopen closes a log and opens its directory again, as a restarted node does. */
async function reopen(log: LevelDurableLog, dataDir: string): Promise<LevelDurableLog> {
  await closeLog(log);
  return openLog(dataDir);
}

async function expectDataDirError(promise: Promise<unknown>, code: DataDirErrorCode): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toMatchObject({ name: "DataDirError", code });
  return error as Error;
}

function normal(index: number, term: number, bytes: readonly number[] = [index % 256, 0]): Entry {
  return { kind: "normal", index, term, data: new Uint8Array(bytes) };
}

function normals(from: number, to: number, term: number): Entry[] {
  const entries: Entry[] = [];
  for (let index = from; index <= to; index++) entries.push(normal(index, term));
  return entries;
}

function hardState(term: number, commitIndex: number, votedFor: string | null = "n1"): HardState {
  return { term, votedFor: votedFor === null ? null : nodeId(votedFor), commitIndex };
}

function snapshotAt(index: number, term: number, bytes: readonly number[] = [7, 0, 7]): Snapshot {
  return { metadata: { index, term, confState }, data: new Uint8Array(bytes) };
}

/** withRawDatabase writes to a data directory behind the log's back, the way damage would. */
async function withRawDatabase(dataDir: string, write: (db: Level<string, Uint8Array>) => Promise<void>): Promise<void> {
  const db = new Level<string, Uint8Array>(dataDir, { keyEncoding: "utf8", valueEncoding: "view" });
  await db.open();
  try {
    await write(db);
  } finally {
    await db.close();
  }
}

describe("LevelDurableLog round trips", () => {
  it("a new data directory loads as the empty state", async () => {
    const log = await openLog(freshDir());
    expect(await log.load()).toEqual({ hardState: { term: 0, votedFor: null, commitIndex: 0 }, snapshot: undefined, entries: [] });
  });

  it("hard state and entries of every kind survive close and reopen byte for byte", async () => {
    const dataDir = freshDir();
    const log = await openLog(dataDir);
    const entries: Entry[] = [
      { kind: "conf_change", index: 1, term: 1, change: { type: "add_voter", nodeId: nodeId("n1") } },
      { kind: "noop", index: 2, term: 2 },
      normal(3, 2, [0, 0, 255, 0, 1, 0]),
      normal(4, 2, []),
      { kind: "conf_change", index: 5, term: 3, change: { type: "add_learner", nodeId: nodeId("n4") } },
      normal(
        6,
        3,
        Array.from({ length: 300 }, (_, offset) => (offset * 37) % 256),
      ),
    ];
    await log.save({ hardState: hardState(3, 4, "n2"), entries });
    const loaded = await (await reopen(log, dataDir)).load();
    expect(loaded).toEqual({ hardState: hardState(3, 4, "n2"), snapshot: undefined, entries });
    const data = (loaded.entries[2] as Extract<Entry, { kind: "normal" }>).data;
    expect(data).toBeInstanceOf(Uint8Array);
    expect(Array.from(data)).toEqual([0, 0, 255, 0, 1, 0]);
  });

  it("a save of a conflicting suffix replaces the log from its first index, whether shorter or longer", async () => {
    const dataDir = freshDir();
    let log = await openLog(dataDir);
    await log.save({ hardState: hardState(1, 2), entries: normals(1, 8, 1) });
    // Shorter: entries 4..5 of term 2 replace 4..8; 6..8 must be gone, not left behind.
    await log.save({ hardState: hardState(2, 2, null), entries: normals(4, 5, 2) });
    log = await reopen(log, dataDir);
    expect((await log.load()).entries).toEqual([...normals(1, 3, 1), ...normals(4, 5, 2)]);
    // Longer: entries 3..10 of term 3 replace 3..5 and extend the log.
    await log.save({ hardState: hardState(3, 2, "n3"), entries: normals(3, 10, 3) });
    const loaded = await (await reopen(log, dataDir)).load();
    expect(loaded.entries).toEqual([...normals(1, 2, 1), ...normals(3, 10, 3)]);
    expect(loaded.hardState).toEqual(hardState(3, 2, "n3"));
  });
});

describe("LevelDurableLog snapshots and write checks", () => {
  it("a snapshot received from the leader replaces the whole log; the entries saved with it follow it", async () => {
    const dataDir = freshDir();
    const log = await openLog(dataDir);
    await log.save({ hardState: hardState(1, 3), entries: normals(1, 10, 1) });
    const snapshot = snapshotAt(7, 2);
    await log.save({ hardState: hardState(2, 7, null), snapshot, entries: normals(8, 9, 2) });
    // Entry 10 (term 1) was past the snapshot but is gone too: the core installs a snapshot only when
    // its log does not hold the snapshot's last entry, so such entries conflict with the leader's log.
    expect(await (await reopen(log, dataDir)).load()).toEqual({ hardState: hardState(2, 7, null), snapshot, entries: normals(8, 9, 2) });
  });

  it("compact (a snapshot taken locally) deletes the entries it covers and keeps the later ones", async () => {
    const dataDir = freshDir();
    let log = await openLog(dataDir);
    await log.save({ hardState: hardState(1, 8), entries: normals(1, 10, 1) });
    await log.compact(snapshotAt(6, 1));
    log = await reopen(log, dataDir);
    expect(await log.load()).toEqual({ hardState: hardState(1, 8), snapshot: snapshotAt(6, 1), entries: normals(7, 10, 1) });
    await log.compact(snapshotAt(8, 1, [1, 2]));
    await log.save({ entries: normals(11, 12, 1) });
    const loaded = await (await reopen(log, dataDir)).load();
    expect(loaded.snapshot).toEqual(snapshotAt(8, 1, [1, 2]));
    expect(loaded.entries).toEqual(normals(9, 12, 1));
  });

  it("writes that would break the log are refused by assertions before reaching the disk", async () => {
    const invariantBroken = { name: "RaftInvariantError" };
    const dataDir = freshDir();
    const log = await openLog(dataDir);
    await log.save({ hardState: hardState(2, 3), entries: normals(1, 5, 2) });
    await expect(log.save({ entries: normals(7, 8, 2) })).rejects.toMatchObject(invariantBroken); // A gap.
    await expect(log.save({ entries: normals(3, 4, 2) })).rejects.toMatchObject(invariantBroken); // Overwrites committed 3.
    await expect(log.save({ hardState: hardState(1, 3), entries: [] })).rejects.toMatchObject(invariantBroken); // Term goes back.
    await expect(log.save({ hardState: hardState(2, 3, "n2"), entries: [] })).rejects.toMatchObject(invariantBroken); // Second vote.
    await expect(log.save({ hardState: hardState(2, 6), entries: [] })).rejects.toMatchObject(invariantBroken); // Commit past the log.
    await expect(log.compact(snapshotAt(4, 2))).rejects.toMatchObject(invariantBroken); // Past the commit index.
    expect(await (await reopen(log, dataDir)).load()).toEqual({
      hardState: hardState(2, 3),
      snapshot: undefined,
      entries: normals(1, 5, 2),
    });
  });
});

describe("LevelDurableLog compaction holds the event loop briefly (issue 17)", () => {
  /** databaseOf: the log's own LevelDB handle, to watch what it writes. */
  function databaseOf(log: LevelDurableLog): Level<string, Uint8Array> {
    return (log as unknown as { db: Level<string, Uint8Array> }).db;
  }

  async function storedEntryIndexes(log: LevelDurableLog): Promise<number[]> {
    const keys = await databaseOf(log).keys({ gte: "entry/", lt: "entry0" }).all();
    return keys.map((key) => Number(key.slice("entry/".length)));
  }

  it("compact writes the snapshot in a batch of its own, with no delete per entry, then clears the entries it covers", async () => {
    const log = await openLog(freshDir());
    await log.save({ hardState: hardState(1, 900), entries: normals(1, 1000, 1) });
    const db = databaseOf(log);
    const batch = db.batch.bind(db);
    const batches: string[][] = [];
    db.batch = ((operations: { type: string; key: string }[], options: unknown) => {
      batches.push(operations.map((operation) => `${operation.type} ${operation.key}`));
      return batch(operations as never, options as never);
    }) as never;
    await log.compact(snapshotAt(900, 1));
    // Before: one batch of 900 deletes and the snapshot, built and handed to LevelDB on this thread.
    expect(batches).toEqual([["put snapshot"]]);
    expect(await storedEntryIndexes(log)).toEqual(Array.from({ length: 100 }, (_, position) => 901 + position));
  });

  it("a compaction whose clear never reached the disk leaves a log that opens: entries at or below its snapshot are ignored, and the next clear takes them", async () => {
    const dataDir = freshDir();
    let log = await openLog(dataDir);
    await log.save({ hardState: hardState(1, 8), entries: normals(1, 10, 1) });
    const db = databaseOf(log);
    const clear = db.clear.bind(db);
    db.clear = (() => Promise.resolve()) as never; // The process died after the snapshot's synced batch.
    await log.compact(snapshotAt(6, 1));
    db.clear = clear;
    log = await reopen(log, dataDir);
    expect(await log.load()).toEqual({ hardState: hardState(1, 8), snapshot: snapshotAt(6, 1), entries: normals(7, 10, 1) });
    expect(await storedEntryIndexes(log)).toEqual(Array.from({ length: 10 }, (_, position) => position + 1));
    await log.compact(snapshotAt(8, 1));
    expect(await storedEntryIndexes(log)).toEqual([9, 10]);
    expect(await (await reopen(log, dataDir)).load()).toEqual({
      hardState: hardState(1, 8),
      snapshot: snapshotAt(8, 1),
      entries: normals(9, 10, 1),
    });
  });

  it("a snapshot of megabytes is checksummed in slices, the event loop running between them, and reads back whole", async () => {
    const dataDir = freshDir();
    const log = await openLog(dataDir);
    await log.save({ hardState: hardState(1, 10), entries: normals(1, 10, 1) });
    const data = new Uint8Array(6 * 1024 * 1024);
    for (let position = 0; position < data.length; position++) data[position] = (position * 31 + (position >>> 11)) & 0xff;
    const snapshot: Snapshot = { metadata: { index: 9, term: 1, confState }, data };
    const db = databaseOf(log);
    const batch = db.batch.bind(db);
    let turns = 0;
    let turnsBeforeWrite: number | undefined;
    db.batch = ((operations: unknown, options: unknown) => {
      turnsBeforeWrite = turns;
      return batch(operations as never, options as never);
    }) as never;
    let compacting = true;
    const turn = () => {
      turns++;
      if (compacting) setImmediate(turn);
    };
    const compacted = log.compact(snapshot);
    setImmediate(turn);
    await compacted;
    compacting = false;
    // Before: the value was packed and checksummed in the turn that started the compaction (0 turns).
    expect(turnsBeforeWrite).toBeGreaterThanOrEqual(4);
    const loaded = await (await reopen(log, dataDir)).load();
    expect(loaded.snapshot?.metadata).toEqual(snapshot.metadata);
    expect(Buffer.compare(Buffer.from(loaded.snapshot?.data ?? []), Buffer.from(data))).toBe(0);
    expect(loaded.entries).toEqual([normal(10, 1)]);
  });

  it("a snapshot's value is laid out as encodeValue makes it, whatever the size of its data", () => {
    for (const length of [0, 1, 255, 256, 65_535, 65_536, 70_001]) {
      const snapshot: Snapshot = { metadata: { index: 5, term: 2, confState }, data: new Uint8Array(length).fill(length % 251) };
      const value = snapshotValueLayout(snapshot);
      writeChecksum(value, crc32c(valuePayload(value)));
      expect(Buffer.from(value).equals(Buffer.from(encodeValue(snapshot))), `data of ${length} bytes`).toBe(true);
      expect(decodeSnapshot(snapshotKey, value)).toEqual(snapshot);
    }
  });
});

describe("LevelDurableLog refuses data directories it must not use", () => {
  it("a directory of another cluster or another node is foreign_data_dir, and the message says whose it is", async () => {
    const dataDir = freshDir();
    await closeLog(await openLog(dataDir));
    const otherCluster = await expectDataDirError(openLog(dataDir, { clusterId: "cluster-b", nodeId: "n1" }), "foreign_data_dir");
    expect(otherCluster.message).toContain('belongs to node "n1" of cluster "cluster-a"');
    const otherNode = await expectDataDirError(openLog(dataDir, { clusterId: "cluster-a", nodeId: "n2" }), "foreign_data_dir");
    expect(otherNode.message).toContain('not to node "n2" of cluster "cluster-a"');
    await openLog(dataDir); // The refusals released the LOCK: the owner can still open it.
  });

  it("an unknown format version is unsupported_format", async () => {
    const dataDir = freshDir();
    await withRawDatabase(dataDir, (db) => db.put(metaKey, encodeValue({ formatVersion: 3, clusterId: "cluster-a", nodeId: "n1" })));
    await expectDataDirError(openLog(dataDir), "unsupported_format");
  });

  it("a directory of format 1 (values without checksums) is unsupported_format, not corrupt", async () => {
    const dataDir = freshDir();
    const unframed = new Packr({ useRecords: false }).pack({ formatVersion: 1, clusterId: "cluster-a", nodeId: "n1" });
    await withRawDatabase(dataDir, (db) => db.put(metaKey, unframed));
    const error = await expectDataDirError(openLog(dataDir), "unsupported_format");
    expect(error.message).toContain("format version 1");
  });

  it("a file, a directory of non-LevelDB files, broken LevelDB files or another program's LevelDB are corrupt_data_dir", async () => {
    const file = freshDir();
    fs.writeFileSync(file, "not a directory");
    await expectDataDirError(openLog(file), "corrupt_data_dir");

    const garbage = freshDir();
    fs.mkdirSync(garbage);
    fs.writeFileSync(path.join(garbage, "notes.txt"), "hello");
    await expectDataDirError(openLog(garbage), "corrupt_data_dir");

    const brokenLevel = freshDir();
    fs.mkdirSync(brokenLevel);
    fs.writeFileSync(path.join(brokenLevel, "CURRENT"), "MANIFEST-000001\n");
    fs.writeFileSync(path.join(brokenLevel, "MANIFEST-000001"), Buffer.alloc(100, 7));
    const broken = await expectDataDirError(openLog(brokenLevel), "corrupt_data_dir");
    expect(broken.cause).toBeInstanceOf(Error);

    const someoneElses = freshDir();
    await withRawDatabase(someoneElses, (db) => db.put("user/42", new Uint8Array([1])));
    await expectDataDirError(openLog(someoneElses), "corrupt_data_dir");
  });

  it("a gap, a misplaced entry, an undecodable value or a commit index past the log is corrupt_data_dir", async () => {
    const damages: Array<[string, (db: Level<string, Uint8Array>) => Promise<void>]> = [
      ["not contiguous", (db) => db.put(entryKey(7), encodeValue(normal(7, 1)))],
      ["says it is index 9", (db) => db.put(entryKey(4), encodeValue(normal(9, 1)))],
      ["not valid msgpack", (db) => db.put(entryKey(2), frameValue(new Uint8Array([0x92, 1])))],
      ["too short to hold a checksum", (db) => db.put(entryKey(2), new Uint8Array([0x92, 1]))],
      ['unknown entry kind "bogus"', (db) => db.put(entryKey(2), encodeValue({ ...normal(2, 1), kind: "bogus" } as unknown as Entry))],
      ["commit index 40", (db) => db.put(hardStateKey, encodeValue(hardState(1, 40)))],
    ];
    for (const [problem, damage] of damages) {
      const dataDir = freshDir();
      const log = await openLog(dataDir);
      await log.save({ hardState: hardState(1, 2), entries: normals(1, 5, 1) });
      await closeLog(log);
      await withRawDatabase(dataDir, damage);
      const error = await expectDataDirError(openLog(dataDir), "corrupt_data_dir");
      expect(error.message).toContain(problem);
    }
  });

  it("a directory already open in this process is data_dir_locked, and opens again once closed", async () => {
    const dataDir = freshDir();
    const log = await openLog(dataDir);
    await expectDataDirError(openLog(dataDir), "data_dir_locked");
    await closeLog(log);
    await openLog(dataDir);
    // The other-process case is checked in the crash test below, while crash-writer holds the directory.
  });
});

// ---------------------------------------------------------------------------------------------
// Crash durability.

const crashSavesMax = 20_000; // Far more than run before the kill: the kill lands mid-loop.
const crashKillAfterLines = 300;

/** LineWatcher collects a child's stdout lines and lets the test wait for the n-th one. */
class LineWatcher {
  readonly lines: string[] = [];
  private pending = "";
  private waiters: Array<{ count: number; resolve: () => void }> = [];

  constructor(child: ChildProcess) {
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      const parts = (this.pending + chunk).split("\n");
      this.pending = parts.pop() ?? "";
      this.lines.push(...parts);
      const ready = this.waiters.filter((waiter) => this.lines.length >= waiter.count);
      this.waiters = this.waiters.filter((waiter) => this.lines.length < waiter.count);
      for (const waiter of ready) waiter.resolve();
    });
  }

  waitFor(count: number, timeoutMs: number): Promise<void> {
    if (this.lines.length >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`child printed ${this.lines.length} of ${count} lines in ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.waiters.push({
        count,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }
}

/** onTmpfs runs `body` with a directory on a fresh tmpfs of `sizeBytes` (mounting needs root), unmounted afterwards. */
async function onTmpfs(sizeBytes: number, body: (mount: string) => Promise<void>): Promise<void> {
  const mount = fs.mkdtempSync(path.join(os.tmpdir(), "level-durable-log-tmpfs-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeBytes}`, "level-durable-log-test", mount]);
  try {
    await body(mount);
  } finally {
    for (const log of openLogs.splice(0)) await log.close().catch(() => undefined);
    execFileSync("umount", [mount]);
    fs.rmSync(mount, { recursive: true, force: true });
  }
}

/** fillDisk writes a file next to the database until the disk refuses (bounded by the disk's size). */
function fillDisk(file: string, sizeBytes: number): void {
  const descriptor = fs.openSync(file, "a");
  try {
    for (const chunkBytes of [64 * 1024, 512]) {
      for (let round = 0; round <= sizeBytes / chunkBytes + 1; round++) {
        try {
          fs.writeSync(descriptor, Buffer.alloc(chunkBytes));
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === "ENOSPC") break;
          throw error;
        }
      }
    }
  } finally {
    fs.closeSync(descriptor);
  }
}

describe("LevelDurableLog on a full disk", () => {
  // A tmpfs is the one disk a test can fill and empty at will; mounting one needs root (CI runs as root).
  it.skipIf(process.getuid?.() !== 0)(
    "a save that finds the disk full is refused (DiskFullError) and succeeds once there is space; every acknowledged save survives a reopen",
    async () => {
      const sizeBytes = 1024 * 1024;
      await onTmpfs(sizeBytes, async (mount) => {
        const dataDir = path.join(mount, "db");
        let log = await openLog(dataDir);
        await log.save({ hardState: hardState(1, 0), entries: normals(1, 10, 1) });
        fillDisk(path.join(mount, "filler"), sizeBytes);
        // Twenty 20 KiB entries: more than the disk has left, so LevelDB's log append is torn.
        const large = Array.from({ length: 20 }, (_, position) => normal(11 + position, 1, new Array(20_000).fill(position)));
        const refused = { hardState: hardState(1, 10), entries: large };
        await expect(log.save(refused)).rejects.toMatchObject({ name: "DiskFullError", code: "disk_full" });
        await expect(log.save(refused)).rejects.toMatchObject({ name: "DiskFullError", code: "disk_full" });
        fs.rmSync(path.join(mount, "filler"));
        await log.save(refused);
        // Acknowledged after the disk was full: without a reopen in between, LevelDB would append
        // these behind the torn record, and its replay at the next open would drop them.
        await log.save({ hardState: hardState(1, 30), entries: normals(31, 40, 1) });
        await log.save({ hardState: hardState(2, 40, "n2"), entries: normals(41, 45, 2) });
        log = await reopen(log, dataDir);
        const loaded = await log.load();
        expect(loaded.entries.map((entry) => entry.index)).toEqual(Array.from({ length: 45 }, (_, position) => position + 1));
        expect(loaded.entries[20]).toEqual(large[10]);
        expect(loaded.hardState).toEqual(hardState(2, 40, "n2"));
      });
    },
    30_000,
  );
});

describe("LevelDurableLog on a failed fsync", () => {
  // A failed fsync is not a full disk, though LevelDB reports one that fails with ENOSPC in the same
  // words ("No space left on device"): the save is refused as DiskFullError first (nothing tells
  // them apart yet), and the reopen before the retry finds the record written whole, so the sync
  // was what failed. That is fail-stop: the retry and every later save are refused with
  // DurableLogFailedError, even though fsync works again, and the node stops instead of waiting.
  // (Before, the retry took the record it found as the write having landed, and went on.)
  // The failure is made with chaos/slow-fsync.c preloaded into a child process (it needs cc).
  const compiler = spawnSync("cc", ["--version"]).status === 0;
  it.skipIf(!compiler)(
    "an fsync that fails with ENOSPC stops the log for good, though fsync works again",
    async () => {
      const work = freshDir();
      fs.mkdirSync(work, { recursive: true });
      const library = path.join(work, "slow-fsync.so");
      execFileSync("cc", ["-shared", "-fPIC", "-O2", "-o", library, path.join(repoRoot, "chaos", "slow-fsync.c"), "-ldl"]);
      const control = path.join(work, "fsync-control");
      const dataDir = path.join(work, "data");
      const run = spawnSync(process.execPath, ["--import", "tsx", path.join(here, "fsync-fail-writer.ts"), dataDir, control], {
        cwd: repoRoot,
        env: { ...process.env, LD_PRELOAD: library, SCTEC_SLOW_FSYNC_FILE: control },
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(run.status, run.stderr).toBe(0);
      const steps = run.stdout
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { step: string; ok: boolean; name?: string; code?: string });
      expect(steps.map((each) => [each.step, each.ok, each.name ?? ""])).toEqual([
        ["first five", true, ""],
        ["sixth, fsync failing", false, "DiskFullError"],
        ["sixth again, fsync working", false, "DurableLogFailedError"],
        ["seventh", false, "DurableLogFailedError"],
      ]);
      expect(steps[2]?.code).toBe("durable_log_failed");
    },
    90_000,
  );
});

describe("LevelDurableLog checksums and fail-stop", () => {
  it("a value damaged at rest fails its checksum: the directory is refused (corrupt_data_dir), naming the record", async () => {
    for (const key of [entryKey(3), hardStateKey]) {
      const dataDir = await damagedAtRest(key);
      const error = await expectDataDirError(openLog(dataDir), "corrupt_data_dir");
      expect(error.message).toContain(`value at key "${key}" fails its checksum`);
      expect(error.message).toContain("damaged at rest");
    }
  });

  it("after a failed write every later write fails too, never retried (fail-stop); a reopened log reads what is on disk", async () => {
    const dataDir = freshDir();
    const log = await openLog(dataDir);
    await log.save({ hardState: hardState(1, 1), entries: normals(1, 2, 1) });
    const failed = await failNextBatch(log, () => log.save({ hardState: hardState(1, 2), entries: normals(3, 3, 1) }));
    expect(failed).toMatchObject({ message: "EIO: fsync failed" });
    const refused = await log.save({ hardState: hardState(1, 2), entries: normals(3, 3, 1) }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toMatchObject({ name: "DurableLogFailedError", code: "durable_log_failed" });
    expect((refused as Error).message).toContain("EIO: fsync failed");
    await expect(log.compact(snapshotAt(1, 1))).rejects.toMatchObject({ code: "durable_log_failed" });
    const reopened = await reopen(log, dataDir);
    expect(await reopened.load()).toEqual({ hardState: hardState(1, 1), snapshot: undefined, entries: normals(1, 2, 1) });
  });
});

/** damagedAtRest writes a small log, then flips one byte of the stored value at `key` (behind the log's back, as bit rot would). */
async function damagedAtRest(key: string): Promise<string> {
  const dataDir = freshDir();
  const log = await openLog(dataDir);
  await log.save({ hardState: hardState(1, 2), entries: normals(1, 5, 1) });
  await closeLog(log);
  await withRawDatabase(dataDir, async (db) => {
    const value = (await db.get(key)) as Uint8Array;
    const damaged = new Uint8Array(value);
    damaged[damaged.length - 1] = (damaged[damaged.length - 1] as number) ^ 0x01;
    await db.put(key, damaged);
  });
  return dataDir;
}

/** failNextBatch makes the log's next LevelDB batch fail with EIO (as a failed fsync would) and returns what `write` rejected with. */
async function failNextBatch(log: LevelDurableLog, write: () => Promise<void>): Promise<unknown> {
  const db = (log as unknown as { db: { batch: (...args: unknown[]) => Promise<void> } }).db;
  const batch = db.batch;
  db.batch = () => {
    db.batch = batch;
    return Promise.reject(new Error("EIO: fsync failed"));
  };
  return write().then(
    () => undefined,
    (error: unknown) => error,
  );
}

describe("LevelDurableLog durability", () => {
  it("every save a SIGKILLed writer saw resolve is on disk, the log is contiguous, and the live writer locks out other processes", async () => {
    const dataDir = freshDir();
    const script = path.join(here, "crash-writer.ts");
    const child = spawn(process.execPath, ["--import", "tsx", script, dataDir, String(crashSavesMax)], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const watcher = new LineWatcher(child);
    try {
      await watcher.waitFor(1, 10_000);
      const locked = await expectDataDirError(LevelDurableLog.open({ dataDir, ...owner }), "data_dir_locked");
      expect(locked.message).toContain("in use");
      await watcher.waitFor(crashKillAfterLines, 10_000);
    } finally {
      child.kill("SIGKILL");
    }
    expect(await exited, stderr).toBe("SIGKILL");
    const printed = watcher.lines.map(Number);
    expect(printed.length).toBeGreaterThanOrEqual(crashKillAfterLines);
    expect(printed.length).toBeLessThan(crashSavesMax);

    const loaded = await (await openLog(dataDir, { clusterId: "crash-cluster", nodeId: "crash-node" })).load();
    const snapshotIndex = loaded.snapshot?.metadata.index ?? 0;
    const stored = new Map(loaded.entries.map((entry) => [entry.index, entry]));
    for (const index of printed) {
      if (index <= snapshotIndex) continue;
      const entry = stored.get(index);
      expect(entry, `entry ${index} was printed as saved but is missing`).toBeDefined();
      expect((entry as Extract<Entry, { kind: "normal" }>).data.every((byte) => byte === index % 256)).toBe(true);
    }
    expect(loaded.hardState.commitIndex).toBeGreaterThanOrEqual(Math.max(...printed));
    // load() verified contiguity; check it here too, as the point of the test.
    expect(loaded.entries.map((entry) => entry.index)).toEqual(loaded.entries.map((_, position) => snapshotIndex + 1 + position));
  });
});

// ---------------------------------------------------------------------------------------------
// Model-based property: LevelDurableLog behaves like a plain in-memory log with the same rules.

/** Model is the expected DurableState, with MemoryStorage's rules written out plainly. */
interface Model {
  readonly hardState: HardState;
  readonly snapshot: Snapshot | undefined;
  readonly entries: readonly Entry[];
}

type Operation =
  | { readonly type: "save"; readonly update: { hardState?: HardState; entries: Entry[]; snapshot?: Snapshot } }
  | { readonly type: "compact"; readonly snapshot: Snapshot }
  | { readonly type: "reopen" };

/** OperationSeed is what fast-check generates; planOperation turns it into an operation valid in the current model. */
type OperationSeed =
  | {
      kind: "append";
      start: number;
      count: number;
      newTerm: boolean;
      withHardState: boolean;
      vote: boolean;
      commit: number;
      payload: number[];
    }
  | { kind: "receive_snapshot"; ahead: number; count: number; payload: number[] }
  | { kind: "compact"; at: number; payload: number[] }
  | { kind: "reopen" };

const operationSeed: fc.Arbitrary<OperationSeed> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant("append" as const),
      start: fc.nat(20),
      count: fc.nat(4),
      newTerm: fc.boolean(),
      withHardState: fc.boolean(),
      vote: fc.boolean(),
      commit: fc.nat(20),
      payload: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 6 }),
    }),
    weight: 6,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("receive_snapshot" as const),
      ahead: fc.nat(5),
      count: fc.nat(3),
      payload: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 6 }),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("compact" as const),
      at: fc.nat(20),
      payload: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 6 }),
    }),
    weight: 2,
  },
  { arbitrary: fc.record({ kind: fc.constant("reopen" as const) }), weight: 1 },
);

function lastIndexOf(model: Model): number {
  return model.entries[model.entries.length - 1]?.index ?? model.snapshot?.metadata.index ?? 0;
}

function payloadEntries(from: number, count: number, term: number, payload: readonly number[]): Entry[] {
  return Array.from({ length: count }, (_, offset) =>
    offset % 3 === 2 ? { kind: "noop", index: from + offset, term } : normal(from + offset, term, [...payload, offset]),
  );
}

/** planOperation builds a write the core could issue: contiguous, never below the commit index, terms never going back. */
function planOperation(model: Model, seed: OperationSeed): Operation | undefined {
  const { term, votedFor, commitIndex } = model.hardState;
  const snapshotIndex = model.snapshot?.metadata.index ?? 0;
  const lastIndex = lastIndexOf(model);
  switch (seed.kind) {
    case "append": {
      const base = Math.max(commitIndex, snapshotIndex);
      const start = base + 1 + (seed.start % (lastIndex - base + 1));
      const nextTerm = seed.newTerm || term === 0 ? term + 1 : term;
      const entries = payloadEntries(start, seed.count, nextTerm, seed.payload);
      const newLast = seed.count > 0 ? start + seed.count - 1 : lastIndex;
      if (!seed.withHardState && nextTerm === term) return { type: "save", update: { entries } };
      const vote = nextTerm !== term || votedFor === null ? (seed.vote ? nodeId("n2") : null) : votedFor;
      const commit = commitIndex + (seed.commit % (newLast - commitIndex + 1));
      return { type: "save", update: { hardState: { term: nextTerm, votedFor: vote, commitIndex: commit }, entries } };
    }
    case "receive_snapshot": {
      const index = Math.max(commitIndex, snapshotIndex) + 1 + seed.ahead;
      const snapshotTerm = Math.max(term, 1);
      const snapshot: Snapshot = { metadata: { index, term: snapshotTerm, confState }, data: new Uint8Array(seed.payload) };
      const entries = payloadEntries(index + 1, seed.count, snapshotTerm, seed.payload);
      return { type: "save", update: { hardState: { term: snapshotTerm, votedFor, commitIndex: index }, snapshot, entries } };
    }
    case "compact": {
      if (commitIndex <= snapshotIndex) return undefined;
      const at = snapshotIndex + 1 + (seed.at % (commitIndex - snapshotIndex));
      const atTerm = model.entries.find((entry) => entry.index === at)?.term ?? 0;
      return { type: "compact", snapshot: { metadata: { index: at, term: atTerm, confState }, data: new Uint8Array(seed.payload) } };
    }
    case "reopen":
      return { type: "reopen" };
  }
}

function applyToModel(model: Model, operation: Operation): Model {
  switch (operation.type) {
    case "save": {
      const { hardState: nextHardState, snapshot, entries } = operation.update;
      const hardStateNow = nextHardState ?? model.hardState;
      if (snapshot !== undefined) return { hardState: hardStateNow, snapshot, entries }; // applySnapshot, then append.
      const first = entries[0];
      const kept = first === undefined ? model.entries : model.entries.filter((entry) => entry.index < first.index);
      return { hardState: hardStateNow, snapshot: model.snapshot, entries: [...kept, ...entries] };
    }
    case "compact": {
      const index = operation.snapshot.metadata.index;
      return { ...model, snapshot: operation.snapshot, entries: model.entries.filter((entry) => entry.index > index) };
    }
    case "reopen":
      return model;
  }
}

describe("LevelDurableLog against a model", () => {
  it("random save/compact/reopen sequences load exactly what the model holds", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(operationSeed, { minLength: 1, maxLength: 25 }), async (seeds) => {
        const dataDir = freshDir();
        let log = await openLog(dataDir);
        let model: Model = { hardState: { term: 0, votedFor: null, commitIndex: 0 }, snapshot: undefined, entries: [] };
        for (const seed of seeds) {
          const operation = planOperation(model, seed);
          if (operation === undefined) continue;
          if (operation.type === "save") await log.save(operation.update);
          if (operation.type === "compact") await log.compact(operation.snapshot);
          if (operation.type === "reopen") {
            await closeLog(log);
            log = await openLog(dataDir);
          }
          model = applyToModel(model, operation);
          expect(await log.load()).toEqual(model);
        }
        await closeLog(log);
      }),
      { numRuns: 30 },
    );
  });
});
