// RaftLog (log.ts), the core's view of the log: a snapshot, then the durable entries in
// Storage, then the unstable entries not yet reported durable. Each test builds such a log by
// hand over a MemoryStorage (compacting it where a snapshot is needed, appending unstable
// entries with RaftLog.append) and checks one operation: term lookup across the three parts,
// the conflict searches used by AppendEntries and fast backtracking, maybeAppend's truncation
// and commit rule (§5.3), slice's byte limit, and stableTo's refusal to mark replaced entries
// durable. A fast-check property compares findConflictByTerm with a linear scan.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RaftInvariantError } from "./assert.ts";
import { RaftLog } from "./log.ts";
import type { Entry, Snapshot } from "./messages.ts";
import { entryBytes } from "./messages.ts";
import { MemoryStorage } from "./storage.ts";

const everything = Number.MAX_SAFE_INTEGER;

function entry(index: number, term: number, data = ""): Entry {
  return { kind: "normal", index, term, data: new TextEncoder().encode(data) };
}

function run(from: number, terms: readonly number[]): Entry[] {
  return terms.map((term, offset) => entry(from + offset, term));
}

/** logOver makes a RaftLog whose storage holds `stableTerms` from index 1, compacted up to `snapshotIndex`, with `commitIndex` durable. */
function logOver(stableTerms: readonly number[], options: { snapshotIndex?: number; commitIndex?: number } = {}): RaftLog {
  const storage = new MemoryStorage();
  storage.append(run(1, stableTerms));
  const snapshotIndex = options.snapshotIndex ?? 0;
  if (snapshotIndex > 0) storage.createSnapshot(snapshotIndex, { voters: [], learners: [] }, new Uint8Array(0));
  storage.setHardState({ term: 0, votedFor: null, commitIndex: options.commitIndex ?? 0 });
  return new RaftLog(storage);
}

function termsOf(log: RaftLog, lo: number, hi: number): (number | undefined)[] {
  const terms: (number | undefined)[] = [];
  for (let index = lo; index <= hi; index++) terms.push(log.term(index));
  return terms;
}

function indexesOf(entries: readonly Entry[]): number[] {
  return entries.map((item) => item.index);
}

describe("RaftLog term lookup", () => {
  it("reads the snapshot's term, stable entries and unstable entries, and nothing outside them", () => {
    const log = logOver([1, 1, 2, 2, 2, 3, 3, 3], { snapshotIndex: 5 });
    log.append(run(9, [4, 4]));
    expect(log.firstIndex()).toBe(6);
    expect(log.lastIndex()).toBe(10);
    expect(log.unstableOffset).toBe(9);
    expect(termsOf(log, 4, 11)).toEqual([undefined, 2, 3, 3, 3, 4, 4, undefined]);
    expect(log.lastTerm()).toBe(4);
  });

  it("unstable entries that replace stable ones hide the stale stable suffix", () => {
    const log = logOver([1, 1, 1, 1, 1]);
    log.append(run(3, [2]));
    expect(log.lastIndex()).toBe(3);
    expect(termsOf(log, 1, 5)).toEqual([1, 1, 2, undefined, undefined]); // Storage still holds 4 and 5 until the host writes.
  });

  it("an unstable snapshot from the leader replaces the log: only its last index has a term", () => {
    const log = logOver([1, 1, 1]);
    const snapshot: Snapshot = { metadata: { index: 20, term: 6, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) };
    log.restore(snapshot);
    expect(log.firstIndex()).toBe(21);
    expect(log.lastIndex()).toBe(20);
    expect(log.commitIndex).toBe(20);
    expect(termsOf(log, 2, 21)).toEqual([...Array<undefined>(18).fill(undefined), 6, undefined]);
    expect(log.snapshot()).toBe(snapshot);
    log.append(run(21, [6]));
    expect(log.lastIndex()).toBe(21);
    expect(log.term(21)).toBe(6);
  });
});

describe("RaftLog.isUpToDate (§5.4.1)", () => {
  const log = logOver([1, 2, 3, 3, 3]);
  it.each<[string, number, number, boolean]>([
    ["same last term and index", 5, 3, true],
    ["same last term, longer", 9, 3, true],
    ["same last term, shorter", 4, 3, false],
    ["higher last term, much shorter", 1, 4, true],
    ["lower last term, much longer", 50, 2, false],
  ])("%s", (_name, lastIndex, lastTerm, expected) => {
    expect(log.isUpToDate(lastIndex, lastTerm)).toBe(expected);
  });
});

describe("RaftLog.findConflict", () => {
  const log = logOver([1, 1, 2, 2, 3]);
  it("is 0 when every entry is already held", () => {
    expect(log.findConflict([])).toBe(0);
    expect(log.findConflict(run(2, [1, 2, 2]))).toBe(0);
  });
  it("is the first new index when the entries only extend the log", () => {
    expect(log.findConflict(run(4, [2, 3, 3, 4]))).toBe(6);
  });
  it("is the first index whose term differs", () => {
    expect(log.findConflict(run(2, [1, 2, 4, 4]))).toBe(4);
    expect(log.findConflict(run(1, [5]))).toBe(1);
  });
});

describe("RaftLog.findConflictByTerm", () => {
  // Index: 1 2 3 4 5 6 7 8
  // Term:  1 1 2 2 2 4 4 5
  const terms = [1, 1, 2, 2, 2, 4, 4, 5];
  const log = logOver(terms);
  it.each<[number, number, number, number]>([
    [8, 5, 8, 5],
    [8, 4, 7, 4],
    [8, 3, 5, 2],
    [7, 2, 5, 2],
    [8, 1, 2, 1],
    [8, 0, 0, 0],
    [100, 4, 7, 4], // Past the end: starts from the last index.
    [4, 9, 4, 2],
  ])("(%i, term %i) -> index %i of term %i", (index, term, foundIndex, foundTerm) => {
    expect(log.findConflictByTerm(index, term)).toEqual({ index: foundIndex, term: foundTerm });
  });

  it("stops at the snapshot: the compacted prefix cannot be searched", () => {
    const compacted = logOver(terms, { snapshotIndex: 4 });
    expect(compacted.findConflictByTerm(8, 1)).toEqual({ index: 4, term: 2 });
    expect(compacted.findConflictByTerm(8, 3)).toEqual({ index: 5, term: 2 });
  });

  it("equals a linear scan for the largest index <= index whose term is <= term", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 2 }), { minLength: 1, maxLength: 12 }),
        fc.nat({ max: 14 }),
        fc.nat({ max: 6 }),
        (steps, index, term) => {
          // Terms in a log never decrease: each entry's term is the previous one plus 0, 1 or 2.
          const logTerms: number[] = [];
          let current = 1;
          for (const step of steps) {
            current += step;
            logTerms.push(current);
          }
          const subject = logOver(logTerms);
          let expected = Math.min(index, logTerms.length);
          while (expected > 0 && (logTerms[expected - 1] as number) > term) expected--;
          expect(subject.findConflictByTerm(index, term)).toEqual({ index: expected, term: expected === 0 ? 0 : logTerms[expected - 1] });
        },
      ),
    );
  });
});

describe("RaftLog.maybeAppend (§5.3)", () => {
  it("rejects when the log has no entry at prevLogIndex", () => {
    const log = logOver([1, 1, 1]);
    expect(log.maybeAppend(5, 1, 0, run(6, [1]), false)).toBeUndefined();
    expect(log.lastIndex()).toBe(3);
  });

  it("rejects when the entry at prevLogIndex has another term", () => {
    const log = logOver([1, 1, 1]);
    expect(log.maybeAppend(3, 2, 0, run(4, [2]), false)).toBeUndefined();
    expect(log.lastIndex()).toBe(3);
  });

  it("appends after a matching prevLogIndex and returns the last new index", () => {
    const log = logOver([1, 1, 1]);
    expect(log.maybeAppend(3, 1, 0, run(4, [1, 2]), false)).toBe(5);
    expect(termsOf(log, 1, 5)).toEqual([1, 1, 1, 1, 2]);
  });

  it("truncates the conflicting entry and everything after it", () => {
    const log = logOver([1, 1, 1, 1, 1], { commitIndex: 2 });
    expect(log.maybeAppend(2, 1, 2, run(3, [3]), false)).toBe(3);
    expect(log.lastIndex()).toBe(3);
    expect(termsOf(log, 1, 5)).toEqual([1, 1, 3, undefined, undefined]);
  });

  it("keeps a longer matching log when the entries are already held (a delayed append must not truncate)", () => {
    const log = logOver([1, 1, 2, 2, 2]);
    expect(log.maybeAppend(1, 1, 0, run(2, [1, 2]), false)).toBe(3);
    expect(log.lastIndex()).toBe(5);
    expect(log.unstableEntries).toEqual([]);
  });

  it("commits min(leaderCommit, last new index): never past what this append proved", () => {
    const log = logOver([1, 1, 1, 1, 1]);
    expect(log.maybeAppend(2, 1, 100, [], false)).toBe(2);
    expect(log.commitIndex).toBe(2); // Entries 3..5 may not match the leader's.
    expect(log.maybeAppend(3, 1, 4, run(4, [1]), false)).toBe(4);
    expect(log.commitIndex).toBe(4);
    expect(log.maybeAppend(1, 1, 1, [], false)).toBe(1);
    expect(log.commitIndex).toBe(4); // The commit index never goes back.
  });

  it("refuses to truncate a committed entry (that would be a safety violation)", () => {
    const log = logOver([1, 1, 1, 1], { commitIndex: 3 });
    expect(() => log.maybeAppend(2, 1, 3, run(3, [2]), false)).toThrow(RaftInvariantError);
  });
});

describe("RaftLog.append", () => {
  it("refuses to overwrite committed entries or to leave a gap", () => {
    const log = logOver([1, 1, 1], { commitIndex: 2 });
    expect(() => log.append(run(2, [2]))).toThrow(RaftInvariantError);
    expect(() => log.append(run(5, [2]))).toThrow(RaftInvariantError);
    expect(log.append(run(3, [2]))).toBe(3);
  });

  it("truncates an unstable suffix it overlaps", () => {
    const log = logOver([1]);
    log.append(run(2, [1, 1, 1]));
    log.append(run(3, [2]));
    expect(log.unstableOffset).toBe(2);
    expect(indexesOf(log.unstableEntries)).toEqual([2, 3]);
    expect(termsOf(log, 1, 4)).toEqual([1, 1, 2, undefined]);
  });
});

describe("RaftLog.slice", () => {
  // Entries 1..3 stable, 4..6 unstable; every entry is `size` bytes on the wire.
  function mixedLog(): RaftLog {
    const log = logOver([1, 1, 1]);
    log.append(run(4, [2, 2, 2]));
    return log;
  }
  const size = entryBytes(entry(1, 1));

  it("reads across the stable and unstable parts", () => {
    expect(indexesOf(mixedLog().slice(2, 6, everything))).toEqual([2, 3, 4, 5]);
    expect(indexesOf(mixedLog().slice(5, 7, everything))).toEqual([5, 6]);
    expect(mixedLog().slice(4, 4, everything)).toEqual([]);
  });

  it("stops at the byte limit in the stable part", () => {
    expect(indexesOf(mixedLog().slice(1, 7, size * 2))).toEqual([1, 2]);
  });

  it("counts the stable bytes against the limit when it continues into the unstable part", () => {
    expect(indexesOf(mixedLog().slice(3, 7, size * 2))).toEqual([3, 4]);
    expect(indexesOf(mixedLog().slice(2, 7, size * 3))).toEqual([2, 3, 4]);
  });

  it("returns at least one entry, however small the limit", () => {
    expect(indexesOf(mixedLog().slice(2, 7, 1))).toEqual([2]);
    expect(indexesOf(mixedLog().slice(5, 7, 1))).toEqual([5]);
    const big = logOver([]);
    big.append([entry(1, 1, "x".repeat(500)), entry(2, 1)]);
    expect(indexesOf(big.slice(1, 3, 100))).toEqual([1]);
  });

  it("refuses compacted and missing indexes", () => {
    const log = logOver([1, 1, 1, 1], { snapshotIndex: 2 });
    expect(() => log.slice(2, 4, everything)).toThrow(RaftInvariantError);
    expect(() => log.slice(3, 6, everything)).toThrow(RaftInvariantError);
    expect(indexesOf(log.slice(3, 5, everything))).toEqual([3, 4]);
  });
});

describe("RaftLog.stableTo", () => {
  it("marks unstable entries durable up to the given index", () => {
    const log = logOver([1]);
    log.append(run(2, [1, 1, 1]));
    log.stableTo(3, 1);
    expect(log.unstableOffset).toBe(4);
    expect(indexesOf(log.unstableEntries)).toEqual([4]);
  });

  it("ignores an index whose entry was replaced (other term) after the Ready was taken", () => {
    const log = logOver([1]);
    log.append(run(2, [1, 1, 1])); // Handed out in a Ready as 2@1, 3@1, 4@1 ...
    log.append(run(3, [2])); // ... and, before advance, replaced from 3 on by a new leader.
    log.stableTo(4, 1); // 4 no longer exists.
    log.stableTo(3, 1); // 3 is now of term 2.
    expect(log.unstableOffset).toBe(2);
    expect(indexesOf(log.unstableEntries)).toEqual([2, 3]);
    log.stableTo(2, 1); // Entry 2 is still the one that was written.
    expect(log.unstableOffset).toBe(3);
    expect(log.unstableEntries).toEqual([entry(3, 2)]);
  });

  it("ignores an index already stable", () => {
    const log = logOver([1, 1]);
    log.append(run(3, [1]));
    log.stableTo(2, 1);
    expect(log.unstableOffset).toBe(3);
    expect(log.unstableEntries.length).toBe(1);
  });
});

describe("RaftLog commit and apply", () => {
  it("maybeCommit commits only an index whose entry is of the given term (Figure 8)", () => {
    const log = logOver([1, 1, 2, 2]);
    expect(log.maybeCommit(3, 3, false)).toBe(false);
    expect(log.commitIndex).toBe(0);
    expect(log.maybeCommit(4, 2, false)).toBe(true);
    expect(log.commitIndex).toBe(4);
    expect(log.maybeCommit(3, 2, false)).toBe(false); // Never backwards.
  });

  it("commitTo refuses an index past the log", () => {
    const log = logOver([1]);
    expect(() => log.commitTo(2)).toThrow(RaftInvariantError);
  });

  it("committedToApply hands out committed, unapplied entries within the byte limit", () => {
    const log = logOver([1, 1, 1, 1, 1], { commitIndex: 4 });
    expect(log.hasCommittedToApply()).toBe(true);
    expect(indexesOf(log.committedToApply(everything))).toEqual([1, 2, 3, 4]);
    expect(indexesOf(log.committedToApply(1))).toEqual([1]);
    log.appliedTo(3);
    expect(indexesOf(log.committedToApply(everything))).toEqual([4]);
    log.appliedTo(4);
    expect(log.hasCommittedToApply()).toBe(false);
    expect(log.committedToApply(everything)).toEqual([]);
    expect(() => log.appliedTo(5)).toThrow(RaftInvariantError); // Not committed.
  });

  it("after a compaction, applying starts after the snapshot", () => {
    const log = logOver([1, 1, 1, 1], { snapshotIndex: 2, commitIndex: 4 });
    expect(log.appliedIndex).toBe(2);
    expect(indexesOf(log.committedToApply(everything))).toEqual([3, 4]);
  });
});
