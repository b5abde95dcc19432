// coalesceMessages: merges back-to-back AppendEntries to one peer when they continue each other,
// keeps only the newest of back-to-back successful results, and leaves everything else alone and
// in order per peer. With real cores: a leader's Ready of many proposals becomes one frame per
// follower, and the followers end with the leader's log.

import { describe, expect, it } from "vitest";
import {
  type AppendEntries,
  type AppendEntriesResult,
  createSeededRandom,
  type Entry,
  entryBytes,
  MemoryStorage,
  type NodeId,
  nodeId,
  type RaftMessage,
  RawNode,
  raftConfigDefaults,
} from "../../raft/index.ts";
import { coalesceMessages } from "./coalesce-messages.ts";

const [n1, n2, n3] = ["n1", "n2", "n3"].map(nodeId) as [NodeId, NodeId, NodeId];
const limits = { entriesPerAppendMax: 256, appendBytesMax: 1024 * 1024 };

function entry(index: number, term = 2, bytes = 4): Entry {
  return { kind: "normal", term, index, data: new Uint8Array(bytes) };
}

function append(to: NodeId, prevLogIndex: number, count: number, leaderCommit: number, term = 2): AppendEntries {
  return {
    type: "append_entries",
    from: n1,
    to,
    term,
    prevLogIndex,
    prevLogTerm: term,
    entries: Array.from({ length: count }, (_, offset) => entry(prevLogIndex + 1 + offset, term)),
    leaderCommit,
  };
}

function result(to: NodeId, matchIndex: number, success = true, term = 2): AppendEntriesResult {
  return { type: "append_entries_result", from: n2, to, term, success, matchIndex, rejectedIndex: 0, hintIndex: 0, hintTerm: 0 };
}

describe("coalesceMessages", () => {
  it("merges AppendEntries that continue each other into one per peer, with the newest commit index", () => {
    const out = coalesceMessages(
      [append(n2, 10, 1, 9), append(n3, 10, 1, 9), append(n2, 11, 2, 9), append(n3, 11, 2, 10), append(n2, 13, 0, 11)],
      limits,
    );
    expect(out).toHaveLength(2);
    const [toN2, toN3] = out as [AppendEntries, AppendEntries];
    expect(toN2.to).toBe(n2);
    expect(toN2.prevLogIndex).toBe(10);
    expect(toN2.entries.map((e) => e.index)).toEqual([11, 12, 13]);
    expect(toN2.leaderCommit).toBe(11);
    expect(toN3.entries.map((e) => e.index)).toEqual([11, 12, 13]);
    expect(toN3.leaderCommit).toBe(10);
  });

  it("leaves AppendEntries that do not continue each other, or of another term, apart", () => {
    const gap = [append(n2, 10, 1, 9), append(n2, 12, 1, 9)];
    expect(coalesceMessages(gap, limits)).toEqual(gap);
    const overlap = [append(n2, 10, 2, 9), append(n2, 11, 1, 9)];
    expect(coalesceMessages(overlap, limits)).toEqual(overlap);
    const terms = [append(n2, 10, 1, 9, 2), append(n2, 11, 1, 9, 3)];
    expect(coalesceMessages(terms, limits)).toEqual(terms);
  });

  it("keeps a merged AppendEntries within entriesPerAppendMax and appendBytesMax", () => {
    const byCount = coalesceMessages([append(n2, 0, 3, 0), append(n2, 3, 3, 0), append(n2, 6, 3, 0)], {
      ...limits,
      entriesPerAppendMax: 6,
    });
    expect(byCount.map((m) => (m as AppendEntries).entries.length)).toEqual([6, 3]);
    const oneEntryBytes = entryBytes(entry(1));
    const byBytes = coalesceMessages([append(n2, 0, 1, 0), append(n2, 1, 1, 0), append(n2, 2, 1, 0)], {
      ...limits,
      appendBytesMax: 2 * oneEntryBytes,
    });
    expect(byBytes.map((m) => (m as AppendEntries).entries.length)).toEqual([2, 1]);
  });

  it("never passes other messages to the same peer, and keeps their order", () => {
    const heartbeat: RaftMessage = { type: "heartbeat", from: n1, to: n2, term: 2, commitIndex: 9, readContext: 0 };
    const messages = [append(n2, 10, 1, 9), heartbeat, append(n2, 11, 1, 9)];
    expect(coalesceMessages(messages, limits)).toEqual(messages);
  });

  it("keeps only the newest of back-to-back successful results, and every rejection", () => {
    expect(coalesceMessages([result(n1, 11), result(n1, 12), result(n1, 14)], limits)).toEqual([result(n1, 14)]);
    const rejection = result(n1, 0, false);
    expect(coalesceMessages([result(n1, 11), rejection, result(n1, 12)], limits)).toEqual([result(n1, 11), rejection, result(n1, 12)]);
    expect(coalesceMessages([result(n1, 12), result(n1, 11)], limits)).toEqual([result(n1, 12), result(n1, 11)]);
    expect(coalesceMessages([result(n1, 11, true, 2), result(n1, 12, true, 3)], limits)).toHaveLength(2);
  });

  it("turns a leader's Ready of many proposals into one frame per follower, and the followers end with the leader's log", () => {
    const ids = [n1, n2, n3];
    const storages = new Map(ids.map((id) => [id, MemoryStorage.bootstrap(ids)]));
    const nodes = new Map(
      ids.map((id, seed) => [
        id,
        new RawNode({ ...raftConfigDefaults, id, random: createSeededRandom(seed) }, storages.get(id) as MemoryStorage),
      ]),
    );
    const network: RaftMessage[] = [];
    let framesSent = 0;
    const drain = (): void => {
      for (const [id, node] of nodes) {
        for (let ready = node.ready(); ready !== undefined; ready = node.ready()) {
          const storage = storages.get(id) as MemoryStorage;
          storage.append(ready.entries);
          if (ready.hardState) storage.setHardState(ready.hardState);
          const frames = coalesceMessages(ready.messages, raftConfigDefaults);
          framesSent += frames.length;
          network.push(...frames);
          node.advance(ready);
        }
      }
    };
    const deliverAll = (): void => {
      drain();
      for (let message = network.shift(); message !== undefined; message = network.shift()) {
        nodes.get(message.to)?.step(message);
        drain();
      }
    };
    (nodes.get(n1) as RawNode).campaign();
    deliverAll();
    for (let tick = 0; tick < 4; tick++) {
      (nodes.get(n1) as RawNode).tick();
      deliverAll();
    }
    expect((nodes.get(n1) as RawNode).status().role).toBe("leader");

    const leader = nodes.get(n1) as RawNode;
    for (let proposal = 0; proposal < 50; proposal++) leader.propose(new Uint8Array([proposal]));
    const ready = leader.ready();
    expect(ready).toBeDefined();
    const raw = ready?.messages.filter((m) => m.type === "append_entries") ?? [];
    expect(raw.length).toBeGreaterThanOrEqual(2 * 50 - 2); // One per proposal per follower (the window allowing).
    const frames = coalesceMessages(ready?.messages ?? [], raftConfigDefaults);
    expect(frames.filter((m) => m.type === "append_entries")).toHaveLength(2);
    (storages.get(n1) as MemoryStorage).append(ready?.entries ?? []);
    if (ready?.hardState) (storages.get(n1) as MemoryStorage).setHardState(ready.hardState);
    network.push(...frames);
    leader.advance(ready as NonNullable<typeof ready>);
    framesSent = 0;
    deliverAll();
    expect(framesSent).toBeLessThanOrEqual(6); // One result per follower, then one commit notice each, and their results.
    for (let tick = 0; tick < 4; tick++) {
      leader.tick();
      deliverAll();
    }
    const leaderStorage = storages.get(n1) as MemoryStorage;
    const leaderLog = leaderStorage.entries(1, leaderStorage.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
    for (const id of [n2, n3]) {
      const storage = storages.get(id) as MemoryStorage;
      expect(storage.entries(1, storage.lastIndex() + 1, Number.MAX_SAFE_INTEGER)).toEqual(leaderLog);
      expect((nodes.get(id) as RawNode).status().commitIndex).toBe(leader.status().commitIndex);
    }
    expect(leader.status().commitIndex).toBe(leaderStorage.lastIndex());
  });
});
