// SimDisk is one node's disk behind the DurableLog seam, with the fault model of issue 16 under the
// simulator's seed. It keeps the semantics of LevelDurableLog (one atomic, synced batch per write;
// a received snapshot replaces the whole log; a compaction drops the entries it covers) and runs
// the same write checks and read verification (node/durable-rules.ts).
//
// Faults:
// - Writes take time (fsync latency, drawn per write) and complete in order. A write is durable
//   only when it completes; a crash loses every write still in flight. The one being written may be
//   torn: part of its batch reached the write-ahead log, which recovery finds by its record
//   checksum and drops (as LevelDB does). Either way the node never heard that write complete.
// - Stalls: now and then a write takes longer than an election timeout.
// - A failed fsync fails the write, and the batch is gone (the kernel may drop the dirty pages
//   and mark them clean). The disk then refuses every later write of this process: fail-stop.
// - A full disk fails every write until space is freed; nothing already written is touched.
// - Corruption at rest: a stored record (hard state, snapshot or entry) is damaged. Each record
//   carries a CRC-32C; load() checks every one and refuses a damaged state with
//   DataDirError("corrupt_data_dir"), as LevelDurableLog does.
//
// The write's completion is a callback at a virtual time (a thenable the driver waits on with
// `.then(ok, fail)`), never a promise: there is no microtask queue to drain.

import { DataDirError, type DurableLog, type DurableState } from "../node/contracts.ts";
import {
  checkCompact,
  checkSave,
  crc32c,
  durableStateProblem,
  emptyHardState,
  type SaveUpdate,
  type Tracked,
  trackedFrom,
} from "../node/durable-rules.ts";
import type { Entry, HardState, Snapshot } from "../raft/messages.ts";
import type { RandomSource } from "../raft/random.ts";
import type { SimProcess, SimScheduler } from "./scheduler.ts";

/** DiskFaults: the disk's fault rates (per write unless said otherwise). */
export interface DiskFaults {
  /** fsyncLatencyMsMax: a write takes 0.2 .. this many ms. */
  fsyncLatencyMsMax: number;
  /** stallProbability: the chance a write stalls for stallMsMin .. stallMsMax (longer than an election timeout). */
  stallProbability: number;
  stallMsMin: number;
  stallMsMax: number;
  /** fsyncFailureProbability: the chance a write's fsync fails (the process then fails-stop). */
  fsyncFailureProbability: number;
  /** tornWriteProbability: the chance a crash tears the write being written (rather than losing it whole). */
  tornWriteProbability: number;
  /** slowWrites: when set, every write takes msMin .. msMax (a slow disk, beside the stalls above). */
  slowWrites?: { readonly msMin: number; readonly msMax: number } | undefined;
}

/** SimDiskError is an I/O error from the simulated disk (EIO on fsync, ENOSPC): the process must stop. */
export class SimDiskError extends Error {
  readonly code: "EIO" | "ENOSPC" | "EFAILED";
  constructor(code: "EIO" | "ENOSPC" | "EFAILED", message: string) {
    super(message);
    this.name = "SimDiskError";
    this.code = code;
  }
}

/** DiskStats counts what the disk did and what struck it. */
export interface DiskStats {
  writes: number;
  stalls: number;
  fsyncFailures: number;
  fullDiskFailures: number;
  lostWrites: number;
  tornWrites: number;
  corruptions: number;
}

/** DiskObserver hears what the checker wants to see: every snapshot written (its index and data), and faults. */
export interface DiskObserver {
  snapshotWritten(index: number, term: number, data: Uint8Array): void;
  fault(kind: "stall" | "fsync_failure" | "disk_full" | "lost_writes" | "torn_write" | "corruption", detail: string): void;
}

/** SimWrite is the thenable a write returns: `then(ok, fail)` registers the callbacks, which the disk calls at a virtual time. */
class SimWrite implements PromiseLike<void> {
  ok: (() => void) | undefined;
  fail: ((error: unknown) => void) | undefined;
  // biome-ignore lint/suspicious/noThenProperty: a thenable is the point: the driver waits with .then(ok, fail).
  then<TResult1 = void, TResult2 = never>(
    // biome-ignore lint/suspicious/noConfusingVoidType: PromiseLike<void>'s own signature.
    onFulfilled?: ((value: void) => TResult1 | PromiseLike<TResult1>) | null,
    onRejected?: ((reason: unknown) => TResult2 | PromiseLike<TResult2>) | null,
  ): PromiseLike<TResult1 | TResult2> {
    this.ok = onFulfilled === null || onFulfilled === undefined ? undefined : () => void onFulfilled();
    this.fail = onRejected === null || onRejected === undefined ? undefined : (error) => void onRejected(error);
    return this as unknown as PromiseLike<TResult1 | TResult2>;
  }
}

interface InFlight {
  readonly apply: () => void;
  readonly write: SimWrite;
}

interface Image {
  hardState: HardState;
  hardStateCrc: number;
  snapshot: Snapshot | undefined;
  snapshotCrc: number;
  /** entries: the stored entries, contiguous after the snapshot; entryCrcs in parallel. */
  entries: Entry[];
  entryCrcs: number[];
}

export class SimDisk implements DurableLog {
  readonly stats: DiskStats = {
    writes: 0,
    stalls: 0,
    fsyncFailures: 0,
    fullDiskFailures: 0,
    lostWrites: 0,
    tornWrites: 0,
    corruptions: 0,
  };
  faults: DiskFaults;
  /** full: the disk has no space left; every write fails until it is cleared. */
  full = false;
  private readonly scheduler: SimScheduler;
  private readonly random: RandomSource & { nextFloat(): number };
  private readonly observer: DiskObserver;
  private readonly image: Image = {
    hardState: emptyHardState,
    hardStateCrc: hardStateChecksum(emptyHardState),
    snapshot: undefined,
    snapshotCrc: 0,
    entries: [],
    entryCrcs: [],
  };
  /** tracked: what the stored state will be once every write in flight is done (the writer's view, for checkSave). */
  private tracked: Tracked = { hardState: emptyHardState, snapshotIndex: 0, lastIndex: 0 };
  private inFlight: InFlight[] = [];
  /** lastCompletionMs: writes complete in order, so each is done no earlier than the one before. */
  private lastCompletionMs = 0;
  /** failure: the first failed write of this process; every later write fails (fail-stop). */
  private failure: SimDiskError | undefined;
  private process: SimProcess | undefined;
  /** damaged: corruptAtRest struck and no check has found the damage gone since (see isDamaged). */
  private damaged = false;

  constructor(options: {
    scheduler: SimScheduler;
    random: RandomSource & { nextFloat(): number };
    faults: DiskFaults;
    observer: DiskObserver;
  }) {
    this.scheduler = options.scheduler;
    this.random = options.random;
    this.faults = options.faults;
    this.observer = options.observer;
  }

  /** attach hands the disk to a new process (a restart): writes complete as that process's events. */
  attach(process: SimProcess): void {
    this.process = process;
    this.failure = undefined;
  }

  /** crash: the process died. Writes in flight are lost (the one being written perhaps torn). */
  crash(): void {
    if (this.inFlight.length > 0) {
      this.stats.lostWrites += this.inFlight.length;
      this.observer.fault("lost_writes", `${this.inFlight.length} write(s) in flight lost`);
      if (this.random.nextFloat() < this.faults.tornWriteProbability) {
        // Part of the batch reached the write-ahead log; its record checksum fails at recovery and
        // it is dropped, as LevelDB drops a torn tail. The node never heard that write complete.
        this.stats.tornWrites++;
        this.observer.fault("torn_write", "the write being written was torn (dropped at recovery by its checksum)");
      }
    }
    this.inFlight = [];
    this.process = undefined;
  }

  /** loadNow reads and verifies the whole disk, as load() does, but at once (the simulator starts processes synchronously). */
  loadNow(): DurableState {
    const image = this.image;
    const problem = this.checksumProblem();
    if (problem !== undefined) {
      throw new DataDirError("corrupt_data_dir", `simulated data directory is corrupt: ${problem}; restore it or replace the node`);
    }
    const state: DurableState = { hardState: image.hardState, snapshot: image.snapshot, entries: image.entries.slice() };
    const stateProblem = durableStateProblem(state);
    if (stateProblem !== undefined) throw new DataDirError("corrupt_data_dir", `simulated data directory is corrupt: ${stateProblem}`);
    this.tracked = trackedFrom(state);
    return state;
  }

  load(): Promise<DurableState> {
    try {
      return Promise.resolve(this.loadNow());
    } catch (error) {
      return Promise.reject(error);
    }
  }

  save(update: SaveUpdate): Promise<void> {
    const next = checkSave(this.tracked, update);
    this.tracked = next;
    return this.enqueue(() => this.applySave(update)) as unknown as Promise<void>;
  }

  compact(snapshot: Snapshot): Promise<void> {
    this.tracked = checkCompact(this.tracked, snapshot);
    return this.enqueue(() => this.applyCompact(snapshot)) as unknown as Promise<void>;
  }

  async close(): Promise<void> {}

  /**
   * corruptAtRest damages one stored record without fixing its checksum, as bit rot or a
   * misdirected write would; load() must find it. Returns what it damaged, or undefined if the disk holds nothing.
   */
  corruptAtRest(): string | undefined {
    const image = this.image;
    const choices: string[] = [];
    if (image.hardState.term > 0) choices.push("hard_state");
    if (image.snapshot !== undefined) choices.push("snapshot");
    if (image.entries.length > 0) choices.push("entry");
    if (choices.length === 0) return undefined;
    const choice = choices[this.random.nextInt(choices.length)];
    let what: string;
    if (choice === "hard_state") {
      const hardState = image.hardState;
      image.hardState = hardState.votedFor === null ? { ...hardState, term: hardState.term + 1 } : { ...hardState, votedFor: null };
      what = `the hard state (term ${hardState.term})`;
    } else if (choice === "snapshot") {
      const snapshot = image.snapshot as Snapshot;
      image.snapshot = { ...snapshot, data: flipByte(snapshot.data, this.random) };
      what = `the snapshot at ${snapshot.metadata.index}`;
    } else {
      const position = this.random.nextInt(image.entries.length);
      const entry = image.entries[position] as Entry;
      image.entries[position] =
        entry.kind === "normal" && entry.data.length > 0
          ? { ...entry, data: flipByte(entry.data, this.random) }
          : { ...entry, term: entry.term + 1 };
      what = `entry ${entry.index}`;
    }
    this.stats.corruptions++;
    this.damaged = true;
    this.observer.fault("corruption", `${what} damaged at rest`);
    return what;
  }

  /** isDamaged: whether a record on disk fails its checksum (damage at rest not yet overwritten by a later write). */
  isDamaged(): boolean {
    if (!this.damaged) return false;
    this.damaged = this.checksumProblem() !== undefined;
    return this.damaged;
  }

  /** durableHardState: the hard state on disk now (synced; for the checker's promise check). */
  durableHardState(): HardState {
    return this.image.hardState;
  }

  /** durableLastIndex: the last index on disk now (synced), entries or snapshot. */
  durableLastIndex(): number {
    const image = this.image;
    return (image.snapshot?.metadata.index ?? 0) + image.entries.length;
  }

  /** durableTermAt: the term of the entry at `index` on disk now, if it holds that entry (undefined inside the snapshot). */
  durableTermAt(index: number): number | undefined {
    const image = this.image;
    const snapshotIndex = image.snapshot?.metadata.index ?? 0;
    if (index === snapshotIndex) return image.snapshot?.metadata.term;
    return image.entries[index - snapshotIndex - 1]?.term;
  }

  // -------------------------------------------------------------------------------------------

  private enqueue(apply: () => void): SimWrite {
    const write = new SimWrite();
    const faults = this.faults;
    this.stats.writes++;
    let latencyMs = 0.2 + this.random.nextFloat() * Math.max(0, faults.fsyncLatencyMsMax - 0.2);
    const slow = faults.slowWrites;
    if (slow !== undefined) latencyMs = slow.msMin + this.random.nextFloat() * (slow.msMax - slow.msMin);
    if (faults.stallProbability > 0 && this.random.nextFloat() < faults.stallProbability) {
      latencyMs = faults.stallMsMin + this.random.nextFloat() * (faults.stallMsMax - faults.stallMsMin);
      this.stats.stalls++;
      this.observer.fault("stall", `a write stalls for ${latencyMs.toFixed(0)} ms`);
    }
    const fsyncFails = faults.fsyncFailureProbability > 0 && this.random.nextFloat() < faults.fsyncFailureProbability;
    const completesMs = Math.max(this.scheduler.nowMs, this.lastCompletionMs) + latencyMs;
    this.lastCompletionMs = completesMs;
    const inFlight: InFlight = { apply, write };
    this.inFlight.push(inFlight);
    this.scheduler.at(completesMs, this.process, () => this.complete(inFlight, fsyncFails));
    return write;
  }

  private complete(inFlight: InFlight, fsyncFails: boolean): void {
    const position = this.inFlight.indexOf(inFlight);
    if (position < 0) return; // Lost in a crash.
    this.inFlight.splice(position, 1);
    let error: SimDiskError | undefined =
      this.failure === undefined ? undefined : new SimDiskError("EFAILED", `an earlier write failed (${this.failure.message})`);
    if (error === undefined && this.full) {
      this.stats.fullDiskFailures++;
      this.observer.fault("disk_full", "a write failed: no space left on the device");
      error = new SimDiskError("ENOSPC", "no space left on the device");
    }
    if (error === undefined && fsyncFails) {
      this.stats.fsyncFailures++;
      this.observer.fault("fsync_failure", "fsync failed (EIO): the batch is gone");
      error = new SimDiskError("EIO", "fsync failed (EIO)");
    }
    if (error !== undefined) {
      this.failure ??= error;
      const fail = inFlight.write.fail;
      if (fail === undefined) throw error; // Nobody waits for it: the process dies of it all the same.
      fail(error);
      return;
    }
    inFlight.apply();
    inFlight.write.ok?.();
  }

  private applySave(update: SaveUpdate): void {
    const image = this.image;
    if (update.hardState !== undefined) {
      image.hardState = update.hardState;
      image.hardStateCrc = hardStateChecksum(update.hardState);
    }
    if (update.snapshot !== undefined) {
      // A snapshot from the leader replaces the whole log (see LevelDurableLog.save).
      image.snapshot = update.snapshot;
      image.snapshotCrc = snapshotChecksum(update.snapshot);
      image.entries = [];
      image.entryCrcs = [];
      this.observer.snapshotWritten(update.snapshot.metadata.index, update.snapshot.metadata.term, update.snapshot.data);
    }
    const first = update.entries[0];
    if (first !== undefined) {
      const offset = (image.snapshot?.metadata.index ?? 0) + 1;
      const keep = first.index - offset;
      image.entries.length = keep;
      image.entryCrcs.length = keep;
      for (const entry of update.entries) {
        image.entries.push(entry);
        image.entryCrcs.push(entryChecksum(entry));
      }
    }
  }

  private applyCompact(snapshot: Snapshot): void {
    const image = this.image;
    const dropped = snapshot.metadata.index - (image.snapshot?.metadata.index ?? 0);
    image.snapshot = snapshot;
    image.snapshotCrc = snapshotChecksum(snapshot);
    image.entries.splice(0, dropped);
    image.entryCrcs.splice(0, dropped);
    this.observer.snapshotWritten(snapshot.metadata.index, snapshot.metadata.term, snapshot.data);
  }

  /** checksumProblem checks every stored record's checksum, as a restart reads them all. */
  private checksumProblem(): string | undefined {
    const image = this.image;
    if (hardStateChecksum(image.hardState) !== image.hardStateCrc) return "the hard state fails its checksum";
    if (image.snapshot !== undefined && snapshotChecksum(image.snapshot) !== image.snapshotCrc) {
      return `the snapshot at ${image.snapshot.metadata.index} fails its checksum`;
    }
    for (let position = 0; position < image.entries.length; position++) {
      const entry = image.entries[position] as Entry;
      if (entryChecksum(entry) !== image.entryCrcs[position]) return `entry ${entry.index} fails its checksum`;
    }
    return undefined;
  }
}

// Checksums over each record's fields: the simulator stores records as objects, not bytes, so it
// checksums what a byte encoding would hold (node/durable-rules.ts's CRC-32C over the data, seeded
// with the numbers and names).

const textEncoder = new TextEncoder();

function mix(...values: readonly number[]): number {
  let seed = 0x9e3779b9;
  for (const value of values) seed = Math.imul(seed ^ (value >>> 0), 0x85ebca6b) ^ Math.floor(value / 0x1_0000_0000);
  return seed >>> 0;
}

/**
 * entryChecksums caches each entry object's checksum: one entry object travels to every node and
 * disk, and checksumming it again each time was a large share of a simulation's time. A damaged
 * entry is a new object (corruptAtRest copies), so its checksum is computed afresh.
 */
const entryChecksums = new WeakMap<Entry, number>();

/** entryChecksum: CRC-32C over an entry's content (the simulator also uses it as the entry's fingerprint). */
export function entryChecksum(entry: Entry): number {
  const cached = entryChecksums.get(entry);
  if (cached !== undefined) return cached;
  const checksum = computeEntryChecksum(entry);
  entryChecksums.set(entry, checksum);
  return checksum;
}

function computeEntryChecksum(entry: Entry): number {
  const kind = entry.kind === "normal" ? 1 : entry.kind === "noop" ? 2 : 3;
  const seed = mix(entry.index, entry.term, kind);
  if (entry.kind === "normal") return crc32c(entry.data, seed);
  if (entry.kind === "conf_change") return crc32c(textEncoder.encode(`${entry.change.type}:${entry.change.nodeId}`), seed);
  return seed;
}

function hardStateChecksum(hardState: HardState): number {
  return crc32c(textEncoder.encode(hardState.votedFor ?? ""), mix(hardState.term, hardState.commitIndex));
}

function snapshotChecksum(snapshot: Snapshot): number {
  const metadata = snapshot.metadata;
  const members = textEncoder.encode(`${metadata.confState.voters.join(",")}|${metadata.confState.learners.join(",")}`);
  return crc32c(snapshot.data, crc32c(members, mix(metadata.index, metadata.term)));
}

function flipByte(data: Uint8Array, random: RandomSource): Uint8Array {
  const copy = new Uint8Array(data);
  const position = random.nextInt(copy.length);
  copy[position] = (copy[position] as number) ^ (1 << random.nextInt(8));
  return copy;
}
