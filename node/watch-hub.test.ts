// WatchHub, the node's ring of applied events for GET /watch, driven by hand (no Raft): matching
// events are answered at once or wake a waiting poll; a poll times out with lastIndex = the applied
// index; a page never splits one index's events; the ring is bounded by count and by bytes, and a
// poll from before what it still holds (or from before a snapshot) is events_compacted; waiting
// polls are bounded, dropped when their caller hangs up, and answered when the node stops.

import { afterEach, describe, expect, it, vi } from "vitest";
import type { LockEvent } from "../lock/types.ts";
import { WatchError, WatchHub, type WatchHubOptions } from "./watch-hub.ts";

class Harness {
  applied = 0;
  readonly hub: WatchHub;
  constructor(options: Partial<WatchHubOptions> = {}) {
    this.hub = new WatchHub({
      eventsMax: 100,
      bytesMax: 1024 * 1024,
      watchersMax: 10,
      appliedIndex: () => this.applied,
      coveredFrom: 0,
      ...options,
    });
  }
  /** put applies one entry at the next index that writes `keys`, as the host does. */
  put(keys: string[], value = "v"): number {
    this.applied++;
    this.hub.record(keys.map((key): LockEvent => ({ type: "key_changed", index: this.applied, key, deleted: false, token: 1, value })));
    this.hub.wake();
    return this.applied;
  }
  noop(): void {
    this.applied++;
    this.hub.wake();
  }
}

const keysOf = (events: readonly LockEvent[]) => events.map((event) => (event.type === "key_changed" ? `${event.index}:${event.key}` : ""));

afterEach(() => {
  vi.useRealTimers();
});

describe("WatchHub", () => {
  it("answers matching events above `after` at once, filtered by key prefix (all events without one)", async () => {
    const h = new Harness();
    h.put(["booking/1", "audit/1"]);
    h.hub.record([{ type: "granted", index: 2, resource: "slot", token: 2, owner: "a" }]);
    h.applied = 2;
    h.put(["booking/2"]);
    const bookings = await h.hub.poll({ prefix: "booking/", after: 0, limit: 100, timeoutMs: 1000 });
    expect(keysOf(bookings.events)).toEqual(["1:booking/1", "3:booking/2"]);
    expect(bookings.lastIndex).toBe(3);
    const all = await h.hub.poll({ prefix: "", after: 1, limit: 100, timeoutMs: 1000 });
    expect(all.events.map((event) => event.type)).toEqual(["granted", "key_changed"]);
  });

  it("a waiting poll is woken by the first matching event, not by others", async () => {
    const h = new Harness();
    const poll = h.hub.poll({ prefix: "booking/", after: 0, limit: 100, timeoutMs: 10_000 });
    h.put(["other/1"]);
    h.noop();
    expect(h.hub.watcherCount()).toBe(1);
    h.put(["booking/7"]);
    const answer = await poll;
    expect(keysOf(answer.events)).toEqual(["3:booking/7"]);
    expect(answer.lastIndex).toBe(3);
    expect(h.hub.watcherCount()).toBe(0);
  });

  it("times out with no events and lastIndex = the applied index, so the caller can move on", async () => {
    vi.useFakeTimers();
    const h = new Harness();
    h.put(["other/1"]);
    const poll = h.hub.poll({ prefix: "booking/", after: 0, limit: 100, timeoutMs: 25_000 });
    h.put(["other/2"]);
    await vi.advanceTimersByTimeAsync(25_000);
    expect(await poll).toEqual({ events: [], lastIndex: 2 });
    expect(await h.hub.poll({ prefix: "booking/", after: 2, limit: 100, timeoutMs: 0 })).toEqual({ events: [], lastIndex: 2 });
  });

  it("never splits one index's events across answers: lastIndex is where the next poll starts", async () => {
    const h = new Harness();
    h.put(["k/1", "k/2", "k/3"]);
    h.put(["k/4"]);
    h.put(["k/5"]);
    const first = await h.hub.poll({ prefix: "k/", after: 0, limit: 2, timeoutMs: 0 });
    expect(keysOf(first.events)).toEqual(["1:k/1", "1:k/2", "1:k/3"]);
    expect(first.lastIndex).toBe(1);
    const second = await h.hub.poll({ prefix: "k/", after: first.lastIndex, limit: 1, timeoutMs: 0 });
    expect(keysOf(second.events)).toEqual(["2:k/4"]);
    const third = await h.hub.poll({ prefix: "k/", after: second.lastIndex, limit: 1, timeoutMs: 0 });
    expect(keysOf(third.events)).toEqual(["3:k/5"]);
    expect(third.lastIndex).toBe(3);
  });

  it("keeps at most eventsMax events; a poll from before them is events_compacted with the oldest index it can answer", async () => {
    const h = new Harness({ eventsMax: 3 });
    for (let round = 0; round < 5; round++) h.put([`k/${round}`]);
    expect(h.hub.oldestIndex()).toBe(2);
    const refused = await h.hub.poll({ prefix: "", after: 1, limit: 100, timeoutMs: 0 }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(WatchError);
    expect(refused).toMatchObject({ code: "events_compacted", details: { oldestIndex: 2 } });
    expect(keysOf((await h.hub.poll({ prefix: "", after: 2, limit: 100, timeoutMs: 0 })).events)).toEqual(["3:k/2", "4:k/3", "5:k/4"]);
  });

  it("bounds the ring's bytes too, since events carry values", () => {
    const h = new Harness({ bytesMax: 10_000 });
    for (let round = 0; round < 5; round++) h.put([`k/${round}`], "x".repeat(3000));
    expect(h.hub.oldestIndex()).toBe(4);
  });

  it("a waiting poll whose events are dropped before it sees them is answered events_compacted", async () => {
    const h = new Harness({ eventsMax: 2 });
    const poll = h.hub.poll({ prefix: "booking/", after: 0, limit: 100, timeoutMs: 10_000 });
    h.applied += 3;
    h.hub.record([1, 2, 3].map((index): LockEvent => ({ type: "key_changed", index, key: "booking/x", deleted: false, token: 1 })));
    h.hub.wake();
    await expect(poll).rejects.toMatchObject({ code: "events_compacted", details: { oldestIndex: 1 } });
  });

  it("starts covering from the snapshot it starts from, and from a snapshot installed later", async () => {
    const h = new Harness({ coveredFrom: 50 });
    h.applied = 50;
    await expect(h.hub.poll({ prefix: "", after: 10, limit: 100, timeoutMs: 0 })).rejects.toMatchObject({ code: "events_compacted" });
    h.put(["k/51"]);
    const waiting = h.hub.poll({ prefix: "none/", after: 51, limit: 100, timeoutMs: 10_000 });
    h.applied = 80;
    h.hub.restart(80);
    await expect(waiting).rejects.toMatchObject({ code: "events_compacted", details: { oldestIndex: 80 } });
    expect(await h.hub.poll({ prefix: "", after: 80, limit: 100, timeoutMs: 0 })).toEqual({ events: [], lastIndex: 80 });
  });

  it("bounds waiting polls, drops one whose caller hung up, and answers the rest shutting_down on close", async () => {
    const h = new Harness({ watchersMax: 2 });
    const hangUp = new AbortController();
    const first = h.hub.poll({ prefix: "x/", after: 0, limit: 100, timeoutMs: 10_000, signal: hangUp.signal });
    const second = h.hub.poll({ prefix: "x/", after: 0, limit: 100, timeoutMs: 10_000 });
    await expect(h.hub.poll({ prefix: "x/", after: 0, limit: 100, timeoutMs: 10_000 })).rejects.toMatchObject({
      code: "too_many_watchers",
    });
    hangUp.abort();
    expect(await first).toEqual({ events: [], lastIndex: 0 });
    expect(h.hub.watcherCount()).toBe(1);
    h.hub.close();
    await expect(second).rejects.toMatchObject({ code: "shutting_down" });
    await expect(h.hub.poll({ prefix: "x/", after: 0, limit: 100, timeoutMs: 0 })).rejects.toMatchObject({ code: "shutting_down" });
  });

  it("on a node behind the caller's `after`, waits for events above it and never answers older ones", async () => {
    const h = new Harness();
    h.put(["k/1"]);
    const poll = h.hub.poll({ prefix: "k/", after: 2, limit: 100, timeoutMs: 10_000 });
    h.put(["k/2"]);
    h.put(["k/3"]);
    expect(keysOf((await poll).events)).toEqual(["3:k/3"]);
  });
});
