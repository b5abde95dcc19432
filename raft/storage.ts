// Storage is how the core reads the durable part of its log (etcd storage.go). The core only
// reads it; the host writes to it after it has made the data durable, as Ready's contract says.
// MemoryStorage is the in-memory implementation the node keeps in front of LevelDB and the
// simulator uses as each node's disk.

import { assert } from "./assert.ts";
import type { ConfState, Entry, HardState, LogIndex, NodeId, Snapshot, Term } from "./messages.ts";
import { entryBytes } from "./messages.ts";

/** Storage is the read side of the durable log that the core is built on. */
export interface Storage {
  /** initialState returns the durable hard state, and the snapshot's membership. */
  initialState(): { readonly hardState: HardState; readonly snapshot: Snapshot };
  /** entries returns entries [lo, hi), at least one, then more while under `bytesMax`. lo must be > firstIndex() - 1. */
  entries(lo: LogIndex, hi: LogIndex, bytesMax: number): Entry[];
  /** term returns the term of entry `index`, or undefined if it was compacted away or does not exist yet. */
  term(index: LogIndex): Term | undefined;
  /** firstIndex is the index of the first entry still available (snapshot index + 1). */
  firstIndex(): LogIndex;
  /** lastIndex is the index of the last durable entry (the snapshot index when there are none). */
  lastIndex(): LogIndex;
  /** snapshot returns the most recent snapshot. */
  snapshot(): Snapshot;
}

const emptyHardState: HardState = { term: 0, votedFor: null, commitIndex: 0 };

/**
 * MemoryStorage keeps the durable log in memory. `entries[0]` is a dummy standing for the
 * snapshot's last entry (its index and term), which keeps index arithmetic in one place, as in
 * etcd. Writers: the host, after persisting; readers: the core.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState;
  private currentSnapshot: Snapshot;
  private log: Entry[];

  constructor() {
    this.currentSnapshot = { metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) };
    this.log = [{ kind: "noop", term: 0, index: 0 }];
  }

  /**
   * bootstrap makes a storage for one of the founding members of a new cluster: the log holds one
   * committed `add_voter` entry per founding voter, at term 1, identical on every founder, so a
   * server that joins later learns the founding membership by replaying the log like everyone else.
   */
  static bootstrap(voters: readonly NodeId[]): MemoryStorage {
    assert(voters.length > 0, "bootstrap needs at least one voter");
    assert(new Set(voters).size === voters.length, "bootstrap voters must be distinct");
    const storage = new MemoryStorage();
    const entries: Entry[] = voters.map((id, offset) => ({
      kind: "conf_change",
      term: 1,
      index: offset + 1,
      change: { type: "add_voter", nodeId: id },
    }));
    storage.append(entries);
    storage.setHardState({ term: 1, votedFor: null, commitIndex: voters.length });
    return storage;
  }

  initialState(): { hardState: HardState; snapshot: Snapshot } {
    return { hardState: this.hardState, snapshot: this.currentSnapshot };
  }

  setHardState(hardState: HardState): void {
    this.hardState = hardState;
  }

  hardStateNow(): HardState {
    return this.hardState;
  }

  entries(lo: LogIndex, hi: LogIndex, bytesMax: number): Entry[] {
    const offset = this.offset();
    assert(lo > offset, `entries(${lo}) asks for compacted entries (first is ${offset + 1})`);
    assert(hi <= this.lastIndex() + 1, `entries(${hi}) is past the last index ${this.lastIndex()}`);
    assert(lo <= hi, `entries lo ${lo} > hi ${hi}`);
    return limitBytes(this.log, lo - offset, hi - offset, bytesMax);
  }

  term(index: LogIndex): Term | undefined {
    const offset = this.offset();
    if (index < offset) return undefined;
    return this.log[index - offset]?.term;
  }

  firstIndex(): LogIndex {
    return this.offset() + 1;
  }

  lastIndex(): LogIndex {
    return this.offset() + this.log.length - 1;
  }

  snapshot(): Snapshot {
    return this.currentSnapshot;
  }

  /** entryCount is the number of entries held (not counting the snapshot's dummy). */
  entryCount(): number {
    return this.log.length - 1;
  }

  /**
   * append stores entries that the host has made durable. Entries that overlap the stored log
   * replace it from the first overlapping index on (a conflicting suffix is truncated, §5.3).
   */
  append(entries: readonly Entry[]): void {
    const first = entries[0];
    if (first === undefined) return;
    const offset = this.offset();
    const last = entries[entries.length - 1] as Entry;
    if (last.index <= offset) return; // Entirely inside the snapshot already.
    assert(first.index <= this.lastIndex() + 1, `append at ${first.index} leaves a gap after ${this.lastIndex()}`);
    for (let position = 1; position < entries.length; position++) {
      assert((entries[position] as Entry).index === (entries[position - 1] as Entry).index + 1, "append entries must be contiguous");
    }
    const skip = Math.max(0, offset + 1 - first.index);
    const keep = first.index + skip - offset;
    this.log.length = keep;
    for (let position = skip; position < entries.length; position++) this.log.push(entries[position] as Entry);
  }

  /** applySnapshot replaces the whole log by a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    const index = snapshot.metadata.index;
    if (index <= this.currentSnapshot.metadata.index) return; // An older snapshot: nothing newer to learn.
    this.currentSnapshot = snapshot;
    this.log = [{ kind: "noop", term: snapshot.metadata.term, index }];
  }

  /**
   * createSnapshot records the host's state machine image at `index` (which must be applied) and
   * drops the log up to it. Compaction keeps the entries after `index`, so followers that are a
   * little behind can still be served from the log instead of a full snapshot.
   */
  createSnapshot(index: LogIndex, confState: ConfState, data: Uint8Array): Snapshot {
    const offset = this.offset();
    assert(index > this.currentSnapshot.metadata.index, `snapshot at ${index} is not newer than ${this.currentSnapshot.metadata.index}`);
    assert(index <= this.lastIndex(), `snapshot at ${index} is past the last index ${this.lastIndex()}`);
    const term = this.log[index - offset]?.term;
    assert(term !== undefined, `no term for snapshot index ${index}`);
    this.currentSnapshot = { metadata: { index, term, confState }, data };
    this.log = [{ kind: "noop", term, index }, ...this.log.slice(index - offset + 1)];
    return this.currentSnapshot;
  }

  private offset(): LogIndex {
    return (this.log[0] as Entry).index;
  }
}

/** limitBytes returns log[lo, hi), keeping at least one entry and then as many as fit in `bytesMax`. */
export function limitBytes(log: readonly Entry[], lo: number, hi: number, bytesMax: number): Entry[] {
  const result: Entry[] = [];
  let bytes = 0;
  for (let position = lo; position < hi; position++) {
    const entry = log[position] as Entry;
    bytes += entryBytes(entry);
    if (result.length > 0 && bytes > bytesMax) break;
    result.push(entry);
  }
  return result;
}
