// The rules every DurableLog keeps, written once for the LevelDB log (persistence/) and the
// simulator's disk (simulations/sim-disk.ts), so the simulator runs the same checks the node does:
//
// - checkSave / checkCompact: what a node is about to write must keep its stored state a valid Raft
//   log (assertions: a failure is a bug in the node, RaftInvariantError);
// - durableStateProblem: what is read back at startup must be a log a node can start from (a
//   problem is reported as corrupt_data_dir: the disk is outside our control);
// - crc32c: the checksum each stored record carries, so damage at rest is caught when it is read.
//
// Pure: no I/O, no clock. The simulator imports it.

import { assert, type Entry, type HardState, type LogIndex, type Snapshot } from "../raft/index.ts";
import type { DurableLog, DurableState } from "./contracts.ts";

/** SaveUpdate is the durable part of one Ready (DurableLog.save's argument). */
export type SaveUpdate = Parameters<DurableLog["save"]>[0];

/**
 * Tracked is what a writer knows about its stored log, kept in memory only to assert each write
 * against it: the log must stay contiguous, terms and commit indexes never go back.
 */
export interface Tracked {
  readonly hardState: HardState;
  readonly snapshotIndex: LogIndex;
  readonly lastIndex: LogIndex;
}

export const emptyHardState: HardState = { term: 0, votedFor: null, commitIndex: 0 };

export function trackedFrom(state: DurableState): Tracked {
  const snapshotIndex = state.snapshot?.metadata.index ?? 0;
  const lastEntry = state.entries[state.entries.length - 1];
  return { hardState: state.hardState, snapshotIndex, lastIndex: lastEntry?.index ?? snapshotIndex };
}

/**
 * checkSave asserts that an update keeps the stored state a valid Raft log (the write half of the
 * paired assertions; durableStateProblem is the read half) and returns what will be stored after it.
 */
export function checkSave(tracked: Tracked, update: SaveUpdate): Tracked {
  let { snapshotIndex, lastIndex } = tracked;
  if (update.snapshot !== undefined) {
    const index = update.snapshot.metadata.index;
    assert(
      index > tracked.hardState.commitIndex,
      `received snapshot at ${index} is not past the commit index ${tracked.hardState.commitIndex}`,
    );
    assert(index > snapshotIndex, `received snapshot at ${index} is not newer than the stored snapshot ${snapshotIndex}`);
    snapshotIndex = index;
    lastIndex = index;
  }
  const first = update.entries[0];
  if (first !== undefined) {
    assertContiguous(update.entries);
    assert(first.index > snapshotIndex, `entries at ${first.index} reach into the snapshot at ${snapshotIndex}`);
    assert(first.index <= lastIndex + 1, `entries at ${first.index} leave a gap after the last stored entry ${lastIndex}`);
    assert(
      first.index > tracked.hardState.commitIndex,
      `entries at ${first.index} would overwrite committed entries (commit ${tracked.hardState.commitIndex})`,
    );
    lastIndex = first.index + update.entries.length - 1;
  }
  const hardState = update.hardState ?? tracked.hardState;
  if (update.hardState !== undefined) assertHardStateFollows(tracked.hardState, update.hardState);
  assert(hardState.commitIndex <= lastIndex, `commit index ${hardState.commitIndex} is past the last index ${lastIndex} after this save`);
  return { hardState, snapshotIndex, lastIndex };
}

/** checkCompact asserts that a snapshot this node took may replace the entries it covers, and returns what is stored after. */
export function checkCompact(tracked: Tracked, snapshot: Snapshot): Tracked {
  const index = snapshot.metadata.index;
  assert(index > tracked.snapshotIndex, `compact at ${index} is not newer than the stored snapshot ${tracked.snapshotIndex}`);
  assert(index <= tracked.lastIndex, `compact at ${index} is past the last stored entry ${tracked.lastIndex}`);
  assert(index <= tracked.hardState.commitIndex, `compact at ${index} is past the commit index ${tracked.hardState.commitIndex}`);
  return { ...tracked, snapshotIndex: index };
}

function assertContiguous(entries: readonly Entry[]): void {
  for (let position = 0; position < entries.length; position++) {
    const entry = entries[position] as Entry;
    assert(Number.isSafeInteger(entry.index) && entry.index >= 1, `entry index ${entry.index} is not a positive integer`);
    assert(Number.isSafeInteger(entry.term) && entry.term >= 1, `entry ${entry.index} has term ${entry.term}, not a positive integer`);
    const previous = entries[position - 1];
    if (previous === undefined) continue;
    assert(entry.index === previous.index + 1, `entries are not contiguous: ${entry.index} follows ${previous.index}`);
    assert(entry.term >= previous.term, `entry ${entry.index} has term ${entry.term}, below the previous entry's ${previous.term}`);
  }
}

/** assertHardStateFollows checks Figure 2's rules: the term never decreases, one vote per term, commit never goes back. */
function assertHardStateFollows(stored: HardState, next: HardState): void {
  assert(next.term >= stored.term, `term goes back from ${stored.term} to ${next.term}`);
  if (next.term === stored.term && stored.votedFor !== null) {
    assert(next.votedFor === stored.votedFor, `vote in term ${next.term} changes from ${stored.votedFor} to ${String(next.votedFor)}`);
  }
  assert(next.commitIndex >= stored.commitIndex, `commit index goes back from ${stored.commitIndex} to ${next.commitIndex}`);
}

/**
 * durableStateProblem is the read half of the paired assertions: it describes why a loaded state
 * is not a log a node can start from, or returns undefined.
 */
export function durableStateProblem(state: DurableState): string | undefined {
  const snapshotIndex = state.snapshot?.metadata.index ?? 0;
  let previousIndex = snapshotIndex;
  let previousTerm = state.snapshot?.metadata.term ?? 0;
  for (const entry of state.entries) {
    if (entry.index !== previousIndex + 1) {
      const after = previousIndex === snapshotIndex ? `the snapshot index ${snapshotIndex}` : `entry ${previousIndex}`;
      return `the log is not contiguous: entry ${entry.index} follows ${after}`;
    }
    if (entry.term < previousTerm) return `entry ${entry.index} has term ${entry.term}, below the previous term ${previousTerm}`;
    previousIndex = entry.index;
    previousTerm = entry.term;
  }
  if (state.hardState.commitIndex > previousIndex) {
    return `the commit index ${state.hardState.commitIndex} is past the last stored index ${previousIndex}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Checksums.

/**
 * crcTables: CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum LevelDB and ext4
 * use, as eight tables for slicing-by-8 (Intel's method): table k maps a byte to the CRC of that
 * byte followed by k zero bytes, so eight bytes are folded in per step instead of one. Table 0 is
 * the classic byte-at-a-time table. Signed (Int32Array): V8 keeps what it reads from them in 32-bit
 * registers, where entries of 2^31 and more read from a Uint32Array are doubles (3x slower here).
 */
const crcTables = (() => {
  const tables = Array.from({ length: 8 }, () => new Int32Array(256));
  const [first] = tables as [Int32Array];
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
    first[byte] = crc;
  }
  for (let table = 1; table < 8; table++) {
    const previous = tables[table - 1] as Int32Array;
    const current = tables[table] as Int32Array;
    for (let byte = 0; byte < 256; byte++) {
      const crc = previous[byte] as number;
      current[byte] = (crc >>> 8) ^ (first[crc & 0xff] as number);
    }
  }
  return tables as [Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array, Int32Array];
})();

/**
 * crc32c computes CRC-32C over `bytes`, continuing from `previous` (0 to start), so a long value
 * may be checksummed in slices. Written here rather than taken from node:zlib (whose crc32 is the
 * other polynomial) because the simulator, which may not touch node: modules, computes the same
 * checksum. Eight bytes a step (slicing-by-8): byte at a time, a 6 MB snapshot took 14–20 ms of
 * the Raft thread (docs/BENCHMARKS.md, issue 17).
 */
export function crc32c(bytes: Uint8Array, previous = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = crcTables;
  let crc = ~previous;
  const length = bytes.length;
  const wholeSteps = length - (length % 8);
  let position = 0;
  for (; position < wholeSteps; position += 8) {
    const low =
      crc ^
      ((bytes[position] as number) |
        ((bytes[position + 1] as number) << 8) |
        ((bytes[position + 2] as number) << 16) |
        ((bytes[position + 3] as number) << 24));
    crc =
      (t7[low & 0xff] as number) ^
      (t6[(low >>> 8) & 0xff] as number) ^
      (t5[(low >>> 16) & 0xff] as number) ^
      (t4[low >>> 24] as number) ^
      (t3[bytes[position + 4] as number] as number) ^
      (t2[bytes[position + 5] as number] as number) ^
      (t1[bytes[position + 6] as number] as number) ^
      (t0[bytes[position + 7] as number] as number);
  }
  for (; position < length; position++) crc = (t0[(crc ^ (bytes[position] as number)) & 0xff] as number) ^ (crc >>> 8);
  return ~crc >>> 0;
}
