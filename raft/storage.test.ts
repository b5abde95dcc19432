// MemoryStorage (storage.ts), the durable log the core reads. Each test writes to it the way a
// host does (append, createSnapshot, applySnapshot, bootstrap) and reads it back through the
// Storage interface the core uses. A fast-check property drives append with random overlapping
// batches and compares the result with a plain array model of "truncate from the first
// index, then append".
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RaftInvariantError } from "./assert.ts";
import type { ConfState, Entry, Snapshot } from "./messages.ts";
import { entryBytes, nodeId } from "./messages.ts";
import { MemoryStorage } from "./storage.ts";

const noVoters: ConfState = { voters: [], learners: [] };
const everything = Number.MAX_SAFE_INTEGER;

function entry(index: number, term: number, data = ""): Entry {
  return { kind: "normal", index, term, data: new TextEncoder().encode(data) };
}

/** run builds entries [from, from + terms.length) with the given terms. */
function run(from: number, terms: readonly number[]): Entry[] {
  return terms.map((term, offset) => entry(from + offset, term));
}

function termsOf(storage: MemoryStorage): number[] {
  if (storage.lastIndex() < storage.firstIndex()) return [];
  return storage.entries(storage.firstIndex(), storage.lastIndex() + 1, everything).map((item) => item.term);
}

describe("MemoryStorage", () => {
  it("starts empty: first index 1, last index 0, term(0) = 0", () => {
    const storage = new MemoryStorage();
    expect(storage.firstIndex()).toBe(1);
    expect(storage.lastIndex()).toBe(0);
    expect(storage.term(0)).toBe(0);
    expect(storage.term(1)).toBeUndefined();
    expect(storage.initialState().hardState).toEqual({ term: 0, votedFor: null, commitIndex: 0 });
  });

  it("append extends the log at its end", () => {
    const storage = new MemoryStorage();
    storage.append(run(1, [1, 1, 2]));
    storage.append(run(4, [2]));
    expect(storage.lastIndex()).toBe(4);
    expect(termsOf(storage)).toEqual([1, 1, 2, 2]);
  });

  it("append overwrites from the first overlapping index and truncates what followed", () => {
    const storage = new MemoryStorage();
    storage.append(run(1, [1, 1, 1, 1, 1]));
    storage.append(run(3, [2]));
    expect(storage.lastIndex()).toBe(3);
    expect(termsOf(storage)).toEqual([1, 1, 2]);
    expect(storage.term(4)).toBeUndefined();
  });

  it("append refuses a gap after the last index", () => {
    const storage = new MemoryStorage();
    storage.append(run(1, [1]));
    expect(() => storage.append(run(3, [1]))).toThrow(RaftInvariantError);
  });

  it("append refuses entries that are not contiguous", () => {
    const storage = new MemoryStorage();
    expect(() => storage.append([entry(1, 1), entry(3, 1)])).toThrow(RaftInvariantError);
  });

  it("append of an empty batch changes nothing", () => {
    const storage = new MemoryStorage();
    storage.append(run(1, [1, 2]));
    storage.append([]);
    expect(termsOf(storage)).toEqual([1, 2]);
  });

  it("append ignores entries already covered by the snapshot and keeps the rest", () => {
    const storage = new MemoryStorage();
    storage.append(run(1, [1, 1, 1, 1]));
    storage.createSnapshot(3, noVoters, new Uint8Array(0));
    storage.append(run(1, [1, 1])); // Entirely inside the snapshot.
    expect(storage.lastIndex()).toBe(4);
    storage.append(run(2, [1, 1, 3, 3])); // Straddles it: only 4 and 5 land.
    expect(storage.firstIndex()).toBe(4);
    expect(storage.lastIndex()).toBe(5);
    expect(termsOf(storage)).toEqual([3, 3]);
  });

  it("entries honours [lo, hi) and the byte limit, but always returns at least one entry", () => {
    const storage = new MemoryStorage();
    storage.append([entry(1, 1, "a".repeat(100)), entry(2, 1, "b"), entry(3, 1, "c")]);
    expect(storage.entries(2, 4, everything).map((item) => item.index)).toEqual([2, 3]);
    expect(storage.entries(1, 4, 10).map((item) => item.index)).toEqual([1]); // Bigger than the limit, returned alone.
    const twoSmall = entryBytes(entry(2, 1, "b")) + entryBytes(entry(3, 1, "c"));
    expect(storage.entries(2, 4, twoSmall).map((item) => item.index)).toEqual([2, 3]);
    expect(storage.entries(2, 4, twoSmall - 1).map((item) => item.index)).toEqual([2]);
    expect(storage.entries(3, 3, everything)).toEqual([]);
  });

  it("entries refuses compacted or missing indexes", () => {
    const storage = new MemoryStorage();
    storage.append(run(1, [1, 1, 1]));
    storage.createSnapshot(2, noVoters, new Uint8Array(0));
    expect(() => storage.entries(2, 4, everything)).toThrow(RaftInvariantError);
    expect(() => storage.entries(3, 5, everything)).toThrow(RaftInvariantError);
  });

  it("createSnapshot drops the log up to its index and keeps the later entries", () => {
    const storage = new MemoryStorage();
    storage.append(run(1, [1, 1, 2, 2, 3, 3]));
    const data = new TextEncoder().encode("image");
    const confState: ConfState = { voters: [nodeId("n1")], learners: [nodeId("n2")] };
    const snapshot = storage.createSnapshot(4, confState, data);
    expect(snapshot.metadata).toEqual({ index: 4, term: 2, confState });
    expect(storage.snapshot()).toBe(snapshot);
    expect(storage.firstIndex()).toBe(5);
    expect(storage.lastIndex()).toBe(6);
    expect(storage.entryCount()).toBe(2);
    expect(storage.term(4)).toBe(2); // The snapshot's last entry keeps its term.
    expect(storage.term(3)).toBeUndefined();
    expect(termsOf(storage)).toEqual([3, 3]);
    expect(storage.initialState().snapshot).toBe(snapshot);
  });

  it("createSnapshot refuses an index that is not newer, or past the log", () => {
    const storage = new MemoryStorage();
    storage.append(run(1, [1, 1, 1]));
    storage.createSnapshot(2, noVoters, new Uint8Array(0));
    expect(() => storage.createSnapshot(2, noVoters, new Uint8Array(0))).toThrow(RaftInvariantError);
    expect(() => storage.createSnapshot(4, noVoters, new Uint8Array(0))).toThrow(RaftInvariantError);
  });

  it("a snapshot up to the last index leaves an empty log after it", () => {
    const storage = new MemoryStorage();
    storage.append(run(1, [1, 2]));
    storage.createSnapshot(2, noVoters, new Uint8Array(0));
    expect(storage.firstIndex()).toBe(3);
    expect(storage.lastIndex()).toBe(2);
    storage.append(run(3, [4]));
    expect(termsOf(storage)).toEqual([4]);
  });

  it("applySnapshot replaces the whole log, and an older snapshot is ignored", () => {
    const storage = new MemoryStorage();
    storage.append(run(1, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
    const incoming: Snapshot = { metadata: { index: 7, term: 3, confState: noVoters }, data: new Uint8Array([1]) };
    storage.applySnapshot(incoming);
    expect(storage.firstIndex()).toBe(8);
    expect(storage.lastIndex()).toBe(7); // Entries 8..10 of term 1 are gone: they need not match the leader's.
    expect(storage.term(7)).toBe(3);
    expect(storage.snapshot()).toBe(incoming);
    const older: Snapshot = { metadata: { index: 5, term: 2, confState: noVoters }, data: new Uint8Array([2]) };
    storage.applySnapshot(older);
    expect(storage.snapshot()).toBe(incoming);
    expect(storage.firstIndex()).toBe(8);
  });

  it("bootstrap writes one committed add_voter per founder at term 1", () => {
    const ids = [nodeId("a"), nodeId("b"), nodeId("c")];
    const storage = MemoryStorage.bootstrap(ids);
    expect(storage.lastIndex()).toBe(3);
    const entries = storage.entries(1, 4, everything);
    expect(entries).toEqual(
      ids.map((id, offset) => ({ kind: "conf_change", term: 1, index: offset + 1, change: { type: "add_voter", nodeId: id } })),
    );
    expect(storage.initialState().hardState).toEqual({ term: 1, votedFor: null, commitIndex: 3 });
  });

  it("bootstrap refuses no voters and duplicate voters", () => {
    expect(() => MemoryStorage.bootstrap([])).toThrow(RaftInvariantError);
    expect(() => MemoryStorage.bootstrap([nodeId("a"), nodeId("a")])).toThrow(RaftInvariantError);
  });

  it("setHardState is what initialState returns after a restart", () => {
    const storage = new MemoryStorage();
    storage.setHardState({ term: 4, votedFor: nodeId("n2"), commitIndex: 0 });
    expect(storage.initialState().hardState).toEqual({ term: 4, votedFor: "n2", commitIndex: 0 });
    expect(storage.hardStateNow()).toEqual({ term: 4, votedFor: "n2", commitIndex: 0 });
  });

  it("append matches an array model: truncate at the first new index, then append", () => {
    // Each batch starts anywhere from index 1 to just past the end, as a leader's appends do.
    const batch = fc.record({
      startBack: fc.nat({ max: 6 }),
      terms: fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 5 }),
    });
    fc.assert(
      fc.property(fc.array(batch, { maxLength: 25 }), (batches) => {
        const storage = new MemoryStorage();
        let model: number[] = []; // model[i] is the term of index i + 1.
        for (const { startBack, terms } of batches) {
          const from = Math.max(1, model.length + 1 - startBack);
          storage.append(run(from, terms));
          model = model.slice(0, from - 1).concat(terms);
          expect(storage.lastIndex()).toBe(model.length);
          expect(termsOf(storage)).toEqual(model);
        }
      }),
    );
  });
});
