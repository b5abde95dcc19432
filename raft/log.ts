// RaftLog is the core's view of the log: the durable part in Storage, followed by the
// "unstable" part that the core has appended but the host has not yet reported durable
// (etcd log.go + log_unstable.go). Unstable entries go out in Ready.entries; advance() moves
// them to the stable side once the host has written them and appended them to its Storage.

import { assert } from "./assert.ts";
import type { Entry, LogIndex, Snapshot, Term } from "./messages.ts";
import { entryBytes } from "./messages.ts";
import type { Storage } from "./storage.ts";

export class RaftLog {
  readonly storage: Storage;
  /** commitIndex is the highest index known committed (§5.3). */
  commitIndex: LogIndex;
  /** appliedIndex is the highest index the host has applied (handed out in Ready and advanced). */
  appliedIndex: LogIndex;
  /** unstableSnapshot is a snapshot received from the leader and not yet made durable. */
  unstableSnapshot: Snapshot | undefined = undefined;
  /** unstableEntries hold indexes unstableOffset, unstableOffset + 1, … and are not yet durable. */
  unstableEntries: Entry[] = [];
  unstableOffset: LogIndex;

  constructor(storage: Storage) {
    this.storage = storage;
    const { hardState, snapshot } = storage.initialState();
    this.unstableOffset = storage.lastIndex() + 1;
    this.commitIndex = Math.max(hardState.commitIndex, snapshot.metadata.index);
    this.appliedIndex = snapshot.metadata.index;
    assert(this.commitIndex <= storage.lastIndex(), `durable commit ${this.commitIndex} is past the durable log ${storage.lastIndex()}`);
  }

  firstIndex(): LogIndex {
    if (this.unstableSnapshot !== undefined) return this.unstableSnapshot.metadata.index + 1;
    return this.storage.firstIndex();
  }

  lastIndex(): LogIndex {
    if (this.unstableEntries.length > 0) return this.unstableOffset + this.unstableEntries.length - 1;
    if (this.unstableSnapshot !== undefined) return this.unstableSnapshot.metadata.index;
    return this.storage.lastIndex();
  }

  /** term returns the term of entry `index`, or undefined when it is compacted away or past the end. */
  term(index: LogIndex): Term | undefined {
    if (index >= this.unstableOffset) {
      return this.unstableEntries[index - this.unstableOffset]?.term;
    }
    if (this.unstableSnapshot !== undefined) {
      const metadata = this.unstableSnapshot.metadata;
      if (index === metadata.index) return metadata.term;
      if (index < metadata.index) return undefined;
    }
    return this.storage.term(index);
  }

  lastTerm(): Term {
    const term = this.term(this.lastIndex());
    assert(term !== undefined, `no term for the last index ${this.lastIndex()}`);
    return term;
  }

  matchTerm(index: LogIndex, term: Term): boolean {
    return this.term(index) === term;
  }

  /** isUpToDate is §5.4.1: a log is at least as up to date if its last term is higher, or equal with an index at least as high. */
  isUpToDate(lastLogIndex: LogIndex, lastLogTerm: Term): boolean {
    const ourLastTerm = this.lastTerm();
    return lastLogTerm > ourLastTerm || (lastLogTerm === ourLastTerm && lastLogIndex >= this.lastIndex());
  }

  /**
   * findConflict returns the index of the first entry that is new or whose term differs from
   * ours, or 0 when every entry is already here.
   */
  findConflict(entries: readonly Entry[]): LogIndex {
    for (const entry of entries) {
      if (!this.matchTerm(entry.index, entry.term)) return entry.index;
    }
    return 0;
  }

  /**
   * findConflictByTerm returns the largest index <= `index` whose term is <= `term` (or the
   * first compacted position). Both sides use it for fast backtracking: every entry after it in
   * our log has a higher term than `term`, so none of them can match.
   */
  findConflictByTerm(index: LogIndex, term: Term): { index: LogIndex; term: Term } {
    const floor = this.firstIndex() - 1;
    let position = Math.min(index, this.lastIndex());
    for (; position > floor; position--) {
      const found = this.term(position);
      if (found === undefined || found <= term) break;
    }
    return { index: position, term: this.term(position) ?? 0 };
  }

  /**
   * maybeAppend is the follower's side of AppendEntries (§5.3): if our log matches at
   * (prevLogIndex, prevLogTerm), append the new entries, truncating any conflicting suffix, and
   * advance the commit index. Returns the last index now known to match, or undefined on mismatch.
   */
  maybeAppend(
    prevLogIndex: LogIndex,
    prevLogTerm: Term,
    leaderCommit: LogIndex,
    entries: readonly Entry[],
    keepConflictingSuffix: boolean,
  ): LogIndex | undefined {
    if (!this.matchTerm(prevLogIndex, prevLogTerm)) return undefined;
    const lastNewIndex = prevLogIndex + entries.length;
    const conflictIndex = this.findConflict(entries);
    if (conflictIndex !== 0) {
      assert(conflictIndex > this.commitIndex, `entry ${conflictIndex} conflicts with the committed log (commit ${this.commitIndex})`);
      const first = (entries[0] as Entry).index;
      // Planted bug (tests only): keep our conflicting entries and add only what lies beyond them.
      const from = keepConflictingSuffix ? Math.max(conflictIndex, this.lastIndex() + 1) : conflictIndex;
      if (from - first < entries.length) this.append(entries.slice(from - first));
    }
    this.commitTo(Math.min(leaderCommit, lastNewIndex));
    return lastNewIndex;
  }

  /** append adds entries at the end of the log, truncating the unstable suffix they overlap. Returns the new last index. */
  append(entries: readonly Entry[]): LogIndex {
    const first = entries[0];
    if (first === undefined) return this.lastIndex();
    assert(first.index - 1 >= this.commitIndex, `append at ${first.index} would overwrite committed entries (commit ${this.commitIndex})`);
    assert(first.index <= this.lastIndex() + 1, `append at ${first.index} leaves a gap after ${this.lastIndex()}`);
    const after = first.index;
    if (after === this.unstableOffset + this.unstableEntries.length) {
      for (const entry of entries) this.unstableEntries.push(entry);
    } else if (after <= this.unstableOffset) {
      // The new entries replace stable ones: the host truncates its Storage when it writes them.
      this.unstableOffset = after;
      this.unstableEntries = entries.slice();
    } else {
      this.unstableEntries = this.unstableEntries.slice(0, after - this.unstableOffset).concat(entries);
    }
    return this.lastIndex();
  }

  /** slice returns entries [lo, hi), at least one and then as many as fit in `bytesMax`. */
  slice(lo: LogIndex, hi: LogIndex, bytesMax: number): Entry[] {
    assert(lo >= this.firstIndex(), `slice(${lo}) reaches into compacted entries (first ${this.firstIndex()})`);
    assert(hi <= this.lastIndex() + 1, `slice(${hi}) is past the last index ${this.lastIndex()}`);
    if (lo >= hi) return [];
    let result: Entry[] = [];
    if (lo < this.unstableOffset) {
      result = this.storage.entries(lo, Math.min(hi, this.unstableOffset), bytesMax);
      const lastStable = result[result.length - 1] as Entry;
      if (lastStable.index + 1 < Math.min(hi, this.unstableOffset)) return result; // Byte limit reached.
    }
    if (hi > this.unstableOffset) {
      let bytes = sumBytes(result);
      for (let index = Math.max(lo, this.unstableOffset); index < hi; index++) {
        const entry = this.unstableEntries[index - this.unstableOffset] as Entry;
        bytes += entryBytes(entry);
        if (result.length > 0 && bytes > bytesMax) break;
        result.push(entry);
      }
    }
    return result;
  }

  commitTo(index: LogIndex): void {
    if (index <= this.commitIndex) return;
    assert(index <= this.lastIndex(), `commit ${index} is past the last index ${this.lastIndex()}`);
    this.commitIndex = index;
  }

  /** maybeCommit commits `index` if its entry is of `term` (the Figure 8 rule: count replicas only for current-term entries). */
  maybeCommit(index: LogIndex, term: Term, anyTerm: boolean): boolean {
    if (index > this.commitIndex && (anyTerm || this.term(index) === term)) {
      this.commitTo(index);
      return true;
    }
    return false;
  }

  /** restore replaces the log by a snapshot received from the leader. */
  restore(snapshot: Snapshot): void {
    this.commitIndex = snapshot.metadata.index;
    this.unstableSnapshot = snapshot;
    this.unstableEntries = [];
    this.unstableOffset = snapshot.metadata.index + 1;
  }

  /** committedToApply returns committed entries not yet applied, up to `bytesMax`. */
  committedToApply(bytesMax: number): Entry[] {
    const lo = Math.max(this.appliedIndex + 1, this.firstIndex());
    if (lo > this.commitIndex) return [];
    return this.slice(lo, this.commitIndex + 1, bytesMax);
  }

  hasCommittedToApply(): boolean {
    return this.commitIndex > Math.max(this.appliedIndex, this.firstIndex() - 1);
  }

  appliedTo(index: LogIndex): void {
    if (index === 0) return;
    assert(index <= this.commitIndex && index >= this.appliedIndex, `applied ${index} outside [${this.appliedIndex}, ${this.commitIndex}]`);
    this.appliedIndex = index;
  }

  /**
   * stableLastIndex is the last index of this log that is durable: the entries before the first
   * unstable one (those the host has not yet reported persisted). A leader counts only these
   * towards a majority (thesis §10.2.1), so it may send entries before its own disk write ends.
   */
  stableLastIndex(): LogIndex {
    return this.unstableEntries.length > 0 ? this.unstableOffset - 1 : this.lastIndex();
  }

  /** stableTo marks unstable entries up to (index, term) durable, unless they were replaced meanwhile. */
  stableTo(index: LogIndex, term: Term): void {
    if (index < this.unstableOffset) return;
    const position = index - this.unstableOffset;
    const entry = this.unstableEntries[position];
    if (entry === undefined || entry.term !== term) return;
    this.unstableEntries = this.unstableEntries.slice(position + 1);
    this.unstableOffset = index + 1;
  }

  stableSnapshotTo(index: LogIndex): void {
    if (this.unstableSnapshot !== undefined && this.unstableSnapshot.metadata.index === index) {
      this.unstableSnapshot = undefined;
    }
  }

  /** snapshot returns the newest snapshot, unstable first. */
  snapshot(): Snapshot {
    return this.unstableSnapshot ?? this.storage.snapshot();
  }
}

function sumBytes(entries: readonly Entry[]): number {
  let bytes = 0;
  for (const entry of entries) bytes += entryBytes(entry);
  return bytes;
}
