// LevelDurableLog keeps a node's Raft state (hard state, snapshot, log entries) in one LevelDB
// database at the node's data directory. Every write is one LevelDB batch written with
// { sync: true }, so a save is atomic (a crash leaves the old state or the new one, never a mix)
// and durable (fsynced) before its promise resolves, as the Ready contract requires
// (raft/README.md, "The contract"). A compaction then also clears the entries its snapshot
// covers, unsynced; reading skips any it left (see compact).
//
// Key layout (utf8 string keys; values are msgpackr-encoded maps, see durable-codec.ts):
//   "meta"                     { formatVersion: 2, clusterId, nodeId }, written on first open
//   "hard_state"               { term, votedFor, commitIndex }
//   "snapshot"                 { metadata: { index, term, confState }, data }
//   "entry/0000000000000042"   the entry at index 42 (16-digit zero-padded index: key order = index order)
//
// Assertions come in pairs (STYLE.md §6): what this process is about to write is checked with
// assert() (a failure is a bug, RaftInvariantError, and kills the node), and what it reads back
// is checked again and reported as DataDirError("corrupt_data_dir") (the disk is outside our control).

import fs from "node:fs";
import path from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { Level } from "level";
import type { Entry, HardState, LogIndex, Snapshot } from "../../raft/index.ts";
import type { DurableLog, DurableState } from "../contracts.ts";
import { DataDirError, DiskFullError } from "../contracts.ts";
import {
  checkCompact,
  checkSave,
  crc32c,
  durableStateProblem,
  emptyHardState,
  type SaveUpdate,
  type Tracked,
  trackedFrom,
} from "../durable-rules.ts";
import {
  CorruptValueError,
  decodeEntry,
  decodeHardState,
  decodeMeta,
  decodeSnapshot,
  encodeValue,
  entryKey,
  entryKeysEnd,
  entryKeysStart,
  formatVersion,
  hardStateKey,
  indexOfEntryKey,
  metaKey,
  snapshotKey,
  snapshotValueLayout,
  valuePayload,
  writeChecksum,
} from "./durable-codec.ts";

type Database = Level<string, Uint8Array>;
type BatchOperation = { type: "put"; key: string; value: Uint8Array } | { type: "del"; key: string };

/** LevelDurableLogOptions names the directory and who owns it; the owner is checked against the meta record. */
export interface LevelDurableLogOptions {
  readonly dataDir: string;
  readonly clusterId: string;
  readonly nodeId: string;
}

/**
 * FailedWrite: a write that found the disk full, with what the log held before it and would hold
 * after it. The database is reopened before the next write, and what it then holds says which.
 */
interface FailedWrite {
  readonly before: Tracked;
  readonly after: Tracked;
  /** message: LevelDB's error. */
  readonly message: string;
}

/** LevelDurableLog is the LevelDB implementation of DurableLog. Writes are serialized: one batch at a time. */
export class LevelDurableLog implements DurableLog {
  private db: Database;
  private readonly dataDir: string;
  private tracked: Tracked;
  /**
   * failedWrite: set when a batch found the disk full (and only then: see writeBatch). LevelDB
   * does not stop writing after a failed append to its log (only after a failed sync), and a
   * record written after the torn one is lost when the log is replayed at the next open: an
   * acknowledged write, gone. So the database is closed and reopened before anything else is
   * written (the replay drops the torn record and starts a new log file); see reopen.
   */
  private failedWrite: FailedWrite | undefined;
  /**
   * writeQueue chains writes. The node saves one Ready at a time anyway, but classic-level runs
   * batches on a thread pool, so two batches issued together could land in either order; the
   * queue makes call order the disk order, which the delete ranges and `tracked` rely on.
   */
  private writeQueue: Promise<void> = Promise.resolve();
  /**
   * failure: the first write that failed, but for a full disk. The log is then fail-stop: every
   * later write fails with it, never retried. After a failed fsync the kernel may have dropped the
   * dirty pages and marked them clean (PostgreSQL's fsync bug, 2018): a retry that "succeeds"
   * proves nothing, and what the node told its peers may already be untrue. The node must die and
   * restart from what is on disk. A write that found the disk full is the one exception, kept
   * apart (failedWrite, reopen): unless the reopen shows that its sync is what failed.
   */
  private failure: Error | undefined;

  private constructor(db: Database, dataDir: string, tracked: Tracked) {
    this.db = db;
    this.dataDir = dataDir;
    this.tracked = tracked;
  }

  /**
   * open opens (or creates) the data directory, checks that it belongs to this cluster and node,
   * and reads and verifies everything in it, so a damaged directory stops the node at startup.
   * Throws DataDirError: foreign_data_dir, unsupported_format, corrupt_data_dir or data_dir_locked;
   * DiskFullError when the disk has no space for what opening writes (it may be tried again).
   */
  static async open(options: LevelDurableLogOptions): Promise<LevelDurableLog> {
    refuseNonDatabasePath(options.dataDir);
    const db = await openDatabase(options.dataDir);
    try {
      await checkOrWriteMeta(db, options);
      const state = await readDurableState(db, options.dataDir);
      return new LevelDurableLog(db, options.dataDir, trackedFrom(state));
    } catch (error) {
      await db.close(); // Release the LOCK: the caller may fix the directory and retry in-process.
      if (isDiskFull(error) && !(error instanceof DiskFullError)) {
        throw new DiskFullError(`cannot open data directory ${options.dataDir}: the disk is full (${errorMessage(error)})`, {
          cause: error,
        });
      }
      throw error;
    }
  }

  async load(): Promise<DurableState> {
    await this.writeQueue;
    const state = await readDurableState(this.db, this.dataDir);
    this.tracked = trackedFrom(state);
    return state;
  }

  save(update: SaveUpdate): Promise<void> {
    return this.enqueueWrite(async () => {
      if (this.failedWrite !== undefined) await this.reopen();
      const next = checkSave(this.tracked, update);
      const operations: BatchOperation[] = [];
      if (update.hardState !== undefined) operations.push(put(hardStateKey, update.hardState));
      const firstNew = update.entries[0];
      if (update.snapshot !== undefined) {
        // A snapshot from the leader replaces the whole log, as MemoryStorage.applySnapshot and
        // the core's restore() do: the core installs one only when its log does not hold the
        // snapshot's last entry, so every stored entry is either covered or conflicting.
        operations.push(...this.deleteEntries(this.tracked.snapshotIndex + 1, this.tracked.lastIndex));
        operations.push(put(snapshotKey, update.snapshot));
      } else if (firstNew !== undefined) {
        // Entries from firstNew on are replaced: the puts overwrite the overlap, and entries past
        // the new last index (a longer conflicting suffix) must go explicitly.
        operations.push(...this.deleteEntries(next.lastIndex + 1, this.tracked.lastIndex));
      }
      for (const entry of update.entries) operations.push(put(entryKey(entry.index), entry));
      if (operations.length === 0) return;
      await this.writeBatch(operations, next);
      this.tracked = next;
    });
  }

  /**
   * compact stores a snapshot this node took, then deletes the entries it covers: two steps, in
   * this order. The snapshot goes in a synced batch of its own; the entries go with one range
   * clear, which LevelDB runs on its own thread, unsynced (it only frees space). A crash between
   * the two, or before the clear reaches the disk, leaves entries at or below the snapshot, which
   * reading skips (decodeDurableState) and the next compaction's clear removes. Before (issue 17)
   * the deletes went into the snapshot's batch, one per entry: 10,000 at the default interval,
   * built and handed to LevelDB on the Raft thread, 50–100 ms of it at a load of 3–15
   * (bench/compaction-stall.ts). The snapshot's value is checksummed in slices, the event loop
   * running between them (encodeSnapshotValue).
   */
  compact(snapshot: Snapshot): Promise<void> {
    return this.enqueueWrite(async () => {
      if (this.failedWrite !== undefined) await this.reopen();
      const next = checkCompact(this.tracked, snapshot);
      const value = await encodeSnapshotValue(snapshot);
      await this.writeBatch([{ type: "put", key: snapshotKey, value }], next);
      this.tracked = next;
      await this.clearEntriesThrough(next.snapshotIndex);
    });
  }

  /**
   * reopen closes the database and opens it again after a write found the disk full, then reads
   * what it holds. The state from before the failed write means its log record was torn (the
   * append ran out of space) and dropped by the replay: the write may simply be made again. The
   * state from after it means the record was written whole and the error came from the sync
   * that followed (LevelDB reports a failed fsync the same way: "No space left on device"): that
   * is fail-stop (`failure`). Anything else means the disk lost something: the directory is
   * corrupt. While the disk is still full the open itself fails, with DiskFullError.
   */
  private async reopen(): Promise<void> {
    const failed = this.failedWrite as FailedWrite;
    await this.db.close().catch(() => undefined); // It is replaced either way.
    this.db = await openDatabase(this.dataDir); // DiskFullError while the disk is still full.
    const reread = trackedFrom(await readDurableState(this.db, this.dataDir));
    this.failedWrite = undefined;
    if (sameTracked(reread, failed.before)) {
      this.tracked = failed.before;
      return;
    }
    if (sameTracked(reread, failed.after)) {
      this.tracked = failed.after;
      this.failure = new Error(
        `a write failed with "${failed.message}" after its log record was written whole, so its fsync failed: what the disk holds is unknown`,
      );
      throw new DurableLogFailedError(this.dataDir, this.failure);
    }
    this.failure = corrupt(
      this.dataDir,
      "after the disk was full, it holds neither the state before the failed write nor the state after it",
    );
    throw this.failure;
  }

  async close(): Promise<void> {
    await this.writeQueue;
    await this.db.close();
  }

  private enqueueWrite(write: () => Promise<void>): Promise<void> {
    const result = this.writeQueue.then(() => {
      if (this.failure !== undefined) throw new DurableLogFailedError(this.dataDir, this.failure);
      return write();
    });
    // The queue goes on (every later write then fails at once); the caller sees the failure through `result`.
    this.writeQueue = result.catch(() => undefined);
    return result;
  }

  /**
   * writeBatch writes one synced batch (`after`: the state it makes). An I/O error fails the log
   * for good (see `failure`), but for a full disk: that is DiskFullError, and the database is
   * reopened before the next write (failedWrite, reopen). A write refused by an assertion before
   * reaching the disk fails nothing: the disk is as it was.
   */
  private async writeBatch(operations: BatchOperation[], after: Tracked): Promise<void> {
    try {
      await this.db.batch(operations, { sync: true });
    } catch (error) {
      if (isDiskFull(error)) {
        this.failedWrite = { before: this.tracked, after, message: errorMessage(error) };
        throw new DiskFullError(`the disk of ${this.dataDir} is full: ${errorMessage(error)}`, { cause: error });
      }
      this.failure ??= error instanceof Error ? error : new Error(String(error));
      throw error;
    }
  }

  /**
   * clearEntriesThrough deletes every stored entry at or below `index` (a snapshot there covers
   * them all, leftovers of an interrupted compaction included). Neither synced nor atomic: what a
   * crash leaves of them is skipped when read. A full disk leaves them too, and the compaction
   * still succeeds (its snapshot is durable), but LevelDB's log may now end in a torn record, so
   * the database is reopened before the next write (failedWrite). Any other error fails the log,
   * as a failed batch does.
   */
  private async clearEntriesThrough(index: LogIndex): Promise<void> {
    try {
      await this.db.clear({ gte: entryKeysStart, lte: entryKey(index) });
    } catch (error) {
      if (isDiskFull(error)) {
        this.failedWrite = { before: this.tracked, after: this.tracked, message: errorMessage(error) };
        return;
      }
      if (this.failure === undefined) this.failure = error instanceof Error ? error : new Error(String(error));
      throw error;
    }
  }

  /**
   * deleteEntries lists a delete for every entry key with index in [from, to]. The stored entries
   * are exactly (snapshotIndex, lastIndex], contiguous (load() checks it, and every write keeps
   * it so), so the keys are known without reading the database: the common append deletes nothing.
   */
  private deleteEntries(from: LogIndex, to: LogIndex): BatchOperation[] {
    const operations: BatchOperation[] = [];
    for (let index = Math.max(from, 1); index <= to; index++) operations.push({ type: "del", key: entryKey(index) });
    return operations;
  }
}

/**
 * DurableLogFailedError: a write was refused because an earlier one failed (fail-stop). `cause` is
 * the first failure. The node must stop; a restart reads back what really is on disk. It is not a
 * DiskFullError: a full disk is waited out, a failed fsync is not.
 */
export class DurableLogFailedError extends Error {
  readonly code = "durable_log_failed";
  constructor(dataDir: string, cause: Error) {
    super(`the durable log at ${dataDir} failed earlier (${cause.message}) and accepts no more writes: restart the node`, { cause });
    this.name = "DurableLogFailedError";
  }
}

/** isDiskFull: LevelDB's and Node's ways of saying ENOSPC or EDQUOT, along the cause chain. */
function isDiskFull(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current instanceof Error; depth++) {
    const code = (current as NodeJS.ErrnoException).code;
    if (code === "ENOSPC" || code === "EDQUOT" || /No space left on device|Disk quota exceeded/.test(current.message)) return true;
    current = current.cause;
  }
  return false;
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sameTracked(a: Tracked, b: Tracked): boolean {
  return (
    a.snapshotIndex === b.snapshotIndex &&
    a.lastIndex === b.lastIndex &&
    a.hardState.term === b.hardState.term &&
    a.hardState.votedFor === b.hardState.votedFor &&
    a.hardState.commitIndex === b.hardState.commitIndex
  );
}

function put(key: string, value: HardState | Snapshot | Entry): BatchOperation {
  return { type: "put", key, value: encodeValue(value) };
}

/**
 * checksumSliceBytes: how much of a snapshot's value is checksummed before the event loop may run
 * again (3–4 ms of the Raft thread at a load of 9, bench/compaction-stall.ts; a 6 MB state is six slices).
 */
const checksumSliceBytes = 1024 * 1024;

/**
 * encodeSnapshotValue makes a snapshot's stored value (the bytes encodeValue makes), checksumming
 * it a slice per turn of the event loop, so a state of megabytes does not hold the Raft thread
 * (ticks, heartbeats, peer frames wait behind it) for the whole of it. The data must not change
 * meanwhile: the state machine encodes a fresh copy for each snapshot, and nothing writes to it.
 */
async function encodeSnapshotValue(snapshot: Snapshot): Promise<Uint8Array> {
  const value = snapshotValueLayout(snapshot);
  const payload = valuePayload(value);
  let checksum = 0;
  // Bounded: one step per slice of the value.
  for (let offset = 0; offset < payload.length; offset += checksumSliceBytes) {
    if (offset > 0) await nextTurn();
    checksum = crc32c(payload.subarray(offset, offset + checksumSliceBytes), checksum);
  }
  writeChecksum(value, checksum);
  return value;
}

// ---------------------------------------------------------------------------------------------
// Opening: turn everything that can be wrong with a directory into a DataDirError with a clear code.

/**
 * levelFileName matches the files LevelDB itself creates, including those a crash during creation
 * leaves behind, and lost+found, which ext filesystems put at the root of a volume mounted as the data directory.
 */
const levelFileName = /^(CURRENT|LOCK|LOG|LOG\.old|MANIFEST-\d+|\d+\.(log|ldb|sst|dbtmp)|lost\+found)$/;

/**
 * refuseNonDatabasePath rejects a path that is a file, or a directory holding other files and no
 * LevelDB database. LevelDB itself would happily create a fresh database among foreign files,
 * which would hide an operator's mistake (a wrong --data-dir) behind an empty log.
 */
function refuseNonDatabasePath(dataDir: string): void {
  const names = listDirectory(dataDir);
  if (names === undefined) return; // A new node: LevelDB creates the directory.
  const foreign = names.filter((name) => !levelFileName.test(name));
  if (!names.includes("CURRENT") && foreign.length > 0) {
    throw new DataDirError(
      "corrupt_data_dir",
      `data directory ${dataDir} holds files that are not a LevelDB database (${foreign.slice(0, 5).join(", ")}): ` +
        "point the node at an empty directory or at its own data directory",
    );
  }
}

/** listDirectory returns the names in dataDir, or undefined when it does not exist yet. */
function listDirectory(dataDir: string): string[] | undefined {
  let stats: fs.Stats;
  try {
    stats = fs.statSync(dataDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new DataDirError("corrupt_data_dir", `cannot read data directory ${dataDir}: ${String(error)}`, { cause: error });
  }
  if (!stats.isDirectory()) {
    throw new DataDirError("corrupt_data_dir", `data directory ${dataDir} is a file, not a directory: point the node at a directory`);
  }
  try {
    return fs.readdirSync(dataDir);
  } catch (error) {
    throw new DataDirError("corrupt_data_dir", `cannot read data directory ${dataDir}: ${String(error)}`, { cause: error });
  }
}

async function openDatabase(dataDir: string): Promise<Database> {
  const db: Database = new Level<string, Uint8Array>(dataDir, { keyEncoding: "utf8", valueEncoding: "view" });
  try {
    await db.open();
    return db;
  } catch (error) {
    // abstract-level wraps the binding's error: LEVEL_DATABASE_NOT_OPEN, with the real code in `cause`.
    // Opening writes (the replay of the write-ahead log goes into a new table file), so a full
    // disk can refuse it: that is not a damaged directory, and it passes once there is space.
    if (isDiskFull(error)) {
      const reason = error instanceof Error && error.cause instanceof Error ? error.cause : error;
      throw new DiskFullError(`cannot open data directory ${dataDir}: the disk is full (${errorMessage(reason)})`, { cause: error });
    }
    if (hasErrorCode(error, "LEVEL_LOCKED")) {
      throw new DataDirError(
        "data_dir_locked",
        `data directory ${dataDir} is in use by another process or another open LevelDurableLog (LevelDB LOCK held): stop the other node first`,
        { cause: error },
      );
    }
    const reason = error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error);
    throw new DataDirError("corrupt_data_dir", `cannot open data directory ${dataDir} as a LevelDB database: ${reason}`, { cause: error });
  }
}

/** hasErrorCode looks for `code` on an error and along its `cause` chain (bounded: causes can be cyclic). */
function hasErrorCode(error: unknown, code: string): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 8 && current instanceof Error; depth++) {
    if ((current as NodeJS.ErrnoException).code === code) return true;
    current = current.cause;
  }
  return false;
}

async function checkOrWriteMeta(db: Database, options: LevelDurableLogOptions): Promise<void> {
  const bytes = await db.get(metaKey);
  if (bytes === undefined) {
    // No meta: a new directory, unless it already holds keys, which would make it someone else's database.
    for await (const key of db.keys({ limit: 1 })) {
      throw new DataDirError(
        "corrupt_data_dir",
        `data directory ${options.dataDir} holds a LevelDB database without a meta record (first key "${key}"): it was not written by a lock node`,
      );
    }
    const meta = { formatVersion, clusterId: options.clusterId, nodeId: options.nodeId };
    await db.batch([{ type: "put", key: metaKey, value: encodeValue(meta) }], { sync: true });
    return;
  }
  const meta = decodeOrCorrupt(options.dataDir, () => decodeMeta(metaKey, bytes));
  if (meta.formatVersion !== formatVersion) {
    throw new DataDirError(
      "unsupported_format",
      `data directory ${options.dataDir} has format version ${meta.formatVersion}; this build reads version ${formatVersion} only: run a matching build`,
    );
  }
  if (meta.clusterId !== options.clusterId || meta.nodeId !== options.nodeId) {
    throw new DataDirError(
      "foreign_data_dir",
      `data directory ${options.dataDir} belongs to node "${meta.nodeId}" of cluster "${meta.clusterId}", ` +
        `not to node "${options.nodeId}" of cluster "${options.clusterId}": point this node at its own data directory ` +
        "(or delete the directory if that node was removed from its cluster for good)",
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Reading: decode everything, then verify it is a log a Raft node can start from.

async function readDurableState(db: Database, dataDir: string): Promise<DurableState> {
  let state: DurableState;
  try {
    state = await decodeDurableState(db, dataDir);
  } catch (error) {
    // LevelDB reports damaged tables (bad checksums, missing files) only when they are read.
    if (hasErrorCode(error, "LEVEL_CORRUPTION") || hasErrorCode(error, "LEVEL_IO_ERROR")) {
      throw corrupt(dataDir, `LevelDB cannot read it (${error instanceof Error ? error.message : String(error)})`, error);
    }
    throw error;
  }
  verifyDurableState(dataDir, state);
  return state;
}

async function decodeDurableState(db: Database, dataDir: string): Promise<DurableState> {
  const [hardStateBytes, snapshotBytes] = await db.getMany([hardStateKey, snapshotKey]);
  const hardState =
    hardStateBytes === undefined ? emptyHardState : decodeOrCorrupt(dataDir, () => decodeHardState(hardStateKey, hardStateBytes));
  const snapshot = snapshotBytes === undefined ? undefined : decodeOrCorrupt(dataDir, () => decodeSnapshot(snapshotKey, snapshotBytes));
  const entries: Entry[] = [];
  const snapshotIndex = snapshot?.metadata.index ?? 0;
  for await (const [key, value] of db.iterator({ gte: entryKeysStart, lt: entryKeysEnd })) {
    const keyIndex = indexOfEntryKey(key);
    if (keyIndex === undefined) throw corrupt(dataDir, `malformed entry key "${key}"`);
    // Covered by the snapshot: left by a compaction whose clear did not reach the disk (compact).
    if (keyIndex <= snapshotIndex) continue;
    const entry = decodeOrCorrupt(dataDir, () => decodeEntry(key, value));
    if (entry.index !== keyIndex) throw corrupt(dataDir, `entry stored at key "${key}" says it is index ${entry.index}`);
    entries.push(entry);
  }
  return { hardState, snapshot, entries };
}

/** verifyDurableState is the read half of the paired assertions (durable-rules.ts): the log must be one a node can start from. */
function verifyDurableState(dataDir: string, state: DurableState): void {
  const problem = durableStateProblem(state);
  if (problem !== undefined) throw corrupt(dataDir, problem);
}

function decodeOrCorrupt<T>(dataDir: string, decode: () => T): T {
  try {
    return decode();
  } catch (error) {
    if (!(error instanceof CorruptValueError)) throw error;
    throw corrupt(dataDir, error.message, error);
  }
}

function corrupt(dataDir: string, problem: string, cause?: unknown): DataDirError {
  const message =
    `data directory ${path.resolve(dataDir)} is corrupt: ${problem}. ` +
    "Restore it from a backup. Do not simply empty it while this node is a voter (it would forget its votes and " +
    "acknowledged entries): remove the node from the cluster, then add it back with a fresh directory";
  return new DataDirError("corrupt_data_dir", message, cause === undefined ? undefined : { cause });
}
