// The leader's flow control for one follower (progress.ts). Inflights is shown to bound the
// window by count and by bytes and to free it in order; Progress is driven through its three
// states (probe, replicate, snapshot) by hand, checking nextIndex/matchIndex after each step and
// that stale rejections are recognised and ignored. A fast-check property compares Inflights
// with a plain array model.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RaftInvariantError } from "./assert.ts";
import { Inflights, Progress } from "./progress.ts";

function progressAt(nextIndex: number, options: { count?: number; bytes?: number } = {}): Progress {
  return new Progress({ nextIndex, isLearner: false, inflightAppendsMax: options.count ?? 4, inflightBytesMax: options.bytes ?? 1000 });
}

describe("Inflights", () => {
  it("is full once it holds countMax appends", () => {
    const inflights = new Inflights(3, 1_000_000);
    inflights.add(1, 10);
    inflights.add(2, 10);
    expect(inflights.full()).toBe(false);
    inflights.add(3, 10);
    expect(inflights.full()).toBe(true);
    expect(inflights.count()).toBe(3);
  });

  it("is full once the bytes in flight reach bytesMax, whatever the count", () => {
    const inflights = new Inflights(100, 250);
    inflights.add(1, 100);
    inflights.add(2, 100);
    expect(inflights.full()).toBe(false);
    inflights.add(3, 50);
    expect(inflights.full()).toBe(true);
    expect(inflights.count()).toBe(3);
  });

  it("refuses an add on a full window", () => {
    const inflights = new Inflights(1, 1000);
    inflights.add(5, 1);
    expect(() => inflights.add(6, 1)).toThrow(RaftInvariantError);
  });

  it("freeTo forgets every append whose last index is at or below the acknowledged index, and their bytes", () => {
    const inflights = new Inflights(10, 300);
    inflights.add(3, 100);
    inflights.add(6, 100);
    inflights.add(9, 100);
    expect(inflights.full()).toBe(true);
    inflights.freeTo(7);
    expect(inflights.count()).toBe(1);
    expect(inflights.full()).toBe(false);
    inflights.freeTo(2); // Older than anything in flight: nothing to free.
    expect(inflights.count()).toBe(1);
    inflights.freeTo(9);
    expect(inflights.count()).toBe(0);
  });

  it("freeFirst lets exactly one more append out", () => {
    const inflights = new Inflights(2, 1000);
    inflights.add(4, 1);
    inflights.add(8, 1);
    inflights.freeFirst();
    expect(inflights.count()).toBe(1);
    expect(inflights.full()).toBe(false);
    inflights.freeFirst();
    inflights.freeFirst(); // On an empty window: no effect.
    expect(inflights.count()).toBe(0);
  });

  it("reset empties the window", () => {
    const inflights = new Inflights(2, 10);
    inflights.add(1, 10);
    inflights.reset();
    expect(inflights.count()).toBe(0);
    expect(inflights.full()).toBe(false);
  });

  it("matches an array model under any sequence of adds and frees", () => {
    const operation = fc.oneof(
      fc.record({ kind: fc.constant("add" as const), bytes: fc.integer({ min: 0, max: 60 }) }),
      fc.record({ kind: fc.constant("freeTo" as const), back: fc.nat({ max: 5 }) }),
      fc.record({ kind: fc.constant("freeFirst" as const) }),
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 200 }),
        fc.array(operation, { maxLength: 60 }),
        (countMax, bytesMax, operations) => {
          const inflights = new Inflights(countMax, bytesMax);
          let model: { lastIndex: number; bytes: number }[] = [];
          let lastIndex = 0;
          for (const op of operations) {
            if (op.kind === "add") {
              const modelFull = model.length >= countMax || model.reduce((sum, item) => sum + item.bytes, 0) >= bytesMax;
              expect(inflights.full()).toBe(modelFull);
              if (modelFull) continue;
              lastIndex += 1 + (op.bytes % 3);
              inflights.add(lastIndex, op.bytes);
              model.push({ lastIndex, bytes: op.bytes });
            } else if (op.kind === "freeTo") {
              const to = lastIndex - op.back;
              inflights.freeTo(to);
              model = model.filter((item) => item.lastIndex > to);
            } else {
              inflights.freeFirst();
              model = model.slice(1);
            }
            expect(inflights.count()).toBe(model.length);
          }
        },
      ),
    );
  });
});

describe("Progress", () => {
  it("starts in probe, not paused, with matchIndex 0", () => {
    const progress = progressAt(11);
    expect(progress.state).toBe("probe");
    expect(progress.matchIndex).toBe(0);
    expect(progress.nextIndex).toBe(11);
    expect(progress.isPaused()).toBe(false);
  });

  it("probe: one append goes out, then it is paused until the follower answers", () => {
    const progress = progressAt(11);
    progress.sentEntries(3, 13, 72);
    expect(progress.isPaused()).toBe(true);
    expect(progress.nextIndex).toBe(11); // Probing does not move nextIndex optimistically.
    expect(progress.maybeUpdate(13)).toBe(true);
    expect(progress.isPaused()).toBe(false);
    expect(progress.matchIndex).toBe(13);
    expect(progress.nextIndex).toBe(14);
  });

  it("replicate: appends stream optimistically until the window is full", () => {
    const progress = progressAt(1, { count: 2 });
    progress.maybeUpdate(5);
    progress.becomeReplicate();
    expect(progress.nextIndex).toBe(6);
    progress.sentEntries(2, 7, 48);
    expect(progress.nextIndex).toBe(8);
    expect(progress.isPaused()).toBe(false);
    progress.sentEntries(1, 8, 24);
    expect(progress.isPaused()).toBe(true);
    progress.maybeUpdate(7);
    progress.inflights.freeTo(7);
    expect(progress.isPaused()).toBe(false);
    expect(progress.matchIndex).toBe(7);
    expect(progress.nextIndex).toBe(9); // An ack does not move nextIndex backwards.
  });

  it("replicate: an empty append (heartbeat-like) takes no room in the window", () => {
    const progress = progressAt(1, { count: 1 });
    progress.becomeReplicate();
    progress.sentEntries(0, 0, 0);
    expect(progress.isPaused()).toBe(false);
    expect(progress.inflights.count()).toBe(0);
  });

  it("maybeUpdate reports old news as false and never lowers matchIndex", () => {
    const progress = progressAt(1);
    expect(progress.maybeUpdate(9)).toBe(true);
    expect(progress.maybeUpdate(4)).toBe(false);
    expect(progress.matchIndex).toBe(9);
  });

  it("replicate: a rejection at or below matchIndex is stale and ignored", () => {
    const progress = progressAt(1);
    progress.maybeUpdate(10);
    progress.becomeReplicate();
    progress.sentEntries(5, 15, 120);
    expect(progress.maybeDecrTo(10, 3)).toBe(false);
    expect(progress.maybeDecrTo(7, 3)).toBe(false);
    expect(progress.nextIndex).toBe(16);
  });

  it("replicate: a fresh rejection falls back to matchIndex + 1", () => {
    const progress = progressAt(1);
    progress.maybeUpdate(10);
    progress.becomeReplicate();
    progress.sentEntries(5, 15, 120);
    expect(progress.maybeDecrTo(15, 12)).toBe(true);
    expect(progress.nextIndex).toBe(11);
  });

  it("probe: a rejection of anything but the last probe is stale", () => {
    const progress = progressAt(20);
    progress.sentEntries(1, 20, 24);
    expect(progress.maybeDecrTo(18, 5)).toBe(false);
    expect(progress.nextIndex).toBe(20);
    expect(progress.isPaused()).toBe(true);
  });

  it("probe: a fresh rejection jumps to the hint and unpauses", () => {
    const progress = progressAt(20);
    progress.sentEntries(1, 20, 24);
    expect(progress.maybeDecrTo(19, 5)).toBe(true);
    expect(progress.nextIndex).toBe(6);
    expect(progress.isPaused()).toBe(false);
  });

  it("probe: a hint beyond the rejected index is capped at the rejected index", () => {
    const progress = progressAt(20);
    expect(progress.maybeDecrTo(19, 40)).toBe(true);
    expect(progress.nextIndex).toBe(19);
  });

  it("probe: nextIndex never drops to or below matchIndex", () => {
    const progress = progressAt(1);
    progress.maybeUpdate(8);
    progress.becomeProbe();
    progress.nextIndex = 15;
    expect(progress.maybeDecrTo(14, 2)).toBe(true);
    expect(progress.nextIndex).toBe(9);
  });

  it("snapshot: paused until answered, then probes from just after the snapshot", () => {
    const progress = progressAt(3);
    progress.becomeSnapshot(50);
    expect(progress.state).toBe("snapshot");
    expect(progress.isPaused()).toBe(true);
    expect(() => progress.sentEntries(1, 51, 24)).toThrow(RaftInvariantError);
    progress.becomeProbe();
    expect(progress.state).toBe("probe");
    expect(progress.nextIndex).toBe(51);
    expect(progress.pendingSnapshotIndex).toBe(0);
  });

  it("snapshot: a follower that acknowledged past the snapshot probes from its matchIndex", () => {
    const progress = progressAt(3);
    progress.becomeSnapshot(50);
    progress.maybeUpdate(60);
    progress.becomeProbe();
    expect(progress.nextIndex).toBe(61);
  });

  it("every state change empties the window", () => {
    const progress = progressAt(1, { count: 1 });
    progress.becomeReplicate();
    progress.sentEntries(1, 1, 24);
    expect(progress.isPaused()).toBe(true);
    progress.becomeProbe();
    expect(progress.inflights.count()).toBe(0);
    expect(progress.isPaused()).toBe(false);
  });
});
