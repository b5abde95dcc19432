// Watching the cluster's committed events through LockClient.watch, against in-process three-node
// clusters behind HTTP: events arrive in index order and exactly once, across long polls that time
// out in between, and with polls spaced by pollIntervalMinMs; a watch from before what the nodes still hold fails with events_compacted (410);
// and a watch goes on through another node when the leader it was polling is stopped.

import { request } from "undici";
import { afterEach, describe, expect, it } from "vitest";
import { LockClient, LockError, type WatchEvent } from "../client/lock-client.ts";
import { type HttpCluster, type HttpClusterOptions, startHttpCluster } from "../node/testing/http-cluster.ts";

const clusters: HttpCluster[] = [];
afterEach(async () => {
  for (const cluster of clusters.splice(0)) await cluster.stop();
});

async function cluster(options: HttpClusterOptions = {}): Promise<HttpCluster> {
  const started = await startHttpCluster(options);
  clusters.push(started);
  return started;
}

const clientOf = (cluster: HttpCluster) =>
  new LockClient({ nodes: [...cluster.urls.values()], apiToken: cluster.apiToken, retryBaseMs: 20, retryMaxMs: 200 });

/** take reads `count` events from a watch, then stops it. */
async function take(events: AsyncGenerator<WatchEvent>, count: number): Promise<WatchEvent[]> {
  const seen: WatchEvent[] = [];
  for await (const event of events) {
    seen.push(event);
    if (seen.length === count) break;
  }
  return seen;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** until waits (at most 5 s) for a condition on the cluster's hosts. */
async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 5000;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(5);
  }
}

describe("LockClient.watch", () => {
  it("yields events in index order, each once, across long polls that time out in between", async () => {
    const lab = await cluster();
    const writer = clientOf(lab);
    const lease = await writer.acquire(["slot-w"], { ttlMs: 10_000, autoRenew: false });
    await lease.put([{ key: "booking/before", value: "not watched: written before the range read" }]);
    const start = await writer.range("booking/");
    const watched = take(clientOf(lab).watch("booking/", { after: start.index, pollTimeoutMs: 150 }), 7);
    await lease.txn([
      { op: "put", key: "booking/1", value: "one" },
      { op: "put", key: "booking/2", value: "two" },
      { op: "put", key: "elsewhere/1", value: "not watched: another prefix" },
    ]);
    await sleep(400); // At least one poll times out empty here.
    await lease.txn([{ op: "delete", key: "booking/1" }]);
    await lease.put([{ key: "booking/3", value: "three" }]);
    await sleep(400);
    await lease.put([{ key: "booking/4", value: "four" }]);
    await lease.put([{ key: "booking/5", value: "five" }]);
    await lease.put([{ key: "booking/6", value: "six" }]);
    const events = await watched;
    expect(
      events.map((event) => (event.type === "key_changed" ? `${event.key}${event.deleted ? " deleted" : `=${event.value}`}` : "")),
    ).toEqual([
      "booking/1=one",
      "booking/2=two",
      "booking/1 deleted",
      "booking/3=three",
      "booking/4=four",
      "booking/5=five",
      "booking/6=six",
    ]);
    const indexes = events.map((event) => event.index);
    expect(indexes).toEqual([...indexes].sort((a, b) => a - b));
    expect(events[0]).toMatchObject({ token: lease.token });
    await lease.release();
  });

  it("with pollIntervalMinMs, a poll that brought events waits out the rest of the interval; the events still come in order, each once", async () => {
    const lab = await cluster();
    const writer = clientOf(lab);
    const lease = await writer.acquire(["slot-spaced"], { ttlMs: 10_000, autoRenew: false });
    const start = await writer.range("spaced/");
    const waits: number[] = [];
    const watcher = new LockClient({
      nodes: [...lab.urls.values()],
      apiToken: lab.apiToken,
      sleep: async (ms) => {
        waits.push(ms);
        await sleep(ms);
      },
    });
    const watched = take(watcher.watch("spaced/", { after: start.index, pollIntervalMinMs: 300 }), 6);
    for (let position = 1; position <= 6; position += 1) await lease.put([{ key: `spaced/${position}`, value: String(position) }]);
    const events = await watched;
    expect(events.map((event) => (event.type === "key_changed" ? event.key : ""))).toEqual(
      [1, 2, 3, 4, 5, 6].map((position) => `spaced/${position}`),
    );
    // The writes follow each other within the interval: the first answer is followed by a wait,
    // and no wait is longer than the interval.
    expect(waits.length).toBeGreaterThan(0);
    for (const ms of waits) expect(ms).toBeGreaterThan(0);
    for (const ms of waits) expect(ms).toBeLessThanOrEqual(300);
    await lease.release();
  });

  it("with no prefix yields every event (grants and releases too), and starts from now without `after`", async () => {
    const lab = await cluster();
    const writer = clientOf(lab);
    const early = await writer.acquire(["slot-early"], { ttlMs: 10_000, autoRenew: false });
    const watched = take(clientOf(lab).watch("", { pollTimeoutMs: 150 }), 2);
    await until(() => [...lab.hosts.values()].some((host) => host.watchStatus().watchers > 0), "the first poll waits (it fixed 'now')");
    const lease = await writer.acquire(["slot-x"], { ttlMs: 10_000, autoRenew: false });
    await lease.release();
    expect(await watched).toMatchObject([
      { type: "granted", resource: "slot-x", token: lease.token },
      { type: "released", resource: "slot-x", token: lease.token },
    ]);
    await early.release();
  });

  it("fails with events_compacted (410, with the oldest index) when the nodes no longer hold the events asked for", async () => {
    const lab = await cluster({ watchEventsMax: 5 });
    const writer = clientOf(lab);
    const lease = await writer.acquire(["slot-c"], { ttlMs: 10_000, autoRenew: false });
    for (let round = 0; round < 10; round++) await lease.put([{ key: `compacted/${round}`, value: String(round) }]);
    const raw = await request(`${lab.leaderUrl()}/watch?after=0&timeoutMs=0`, { headers: { authorization: `Bearer ${lab.apiToken}` } });
    const body = (await raw.body.json()) as { error: { code: string; details: { oldestIndex: number } } };
    expect(raw.statusCode).toBe(410);
    expect(body.error).toMatchObject({ code: "events_compacted", details: { oldestIndex: expect.any(Number) } });
    const error = await take(clientOf(lab).watch("compacted/", { after: 0 }), 1).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LockError);
    expect(error).toMatchObject({ code: "events_compacted", details: { oldestIndex: body.error.details.oldestIndex } });
    // From the oldest index on, the watch works.
    const recent = await take(clientOf(lab).watch("compacted/", { after: body.error.details.oldestIndex, pollTimeoutMs: 100 }), 1);
    expect(recent[0]?.index).toBeGreaterThan(body.error.details.oldestIndex);
    await lease.release();
  });

  it("goes on through another node when the leader it polls is stopped, missing nothing and repeating nothing", async () => {
    const lab = await cluster();
    const writer = clientOf(lab);
    const lease = await writer.acquire(["slot-f"], { ttlMs: 10_000, autoRenew: false });
    const start = await writer.range("failover/");
    const watcher = clientOf(lab);
    const watched = take(watcher.watch("failover/", { after: start.index, pollTimeoutMs: 5000 }), 6);
    for (let round = 1; round <= 3; round++) await lease.put([{ key: `failover/${round}`, value: String(round) }]);
    const leader = [...lab.hosts.values()].find((host) => host.status().role === "leader");
    const leaderId = leader?.nodeId as string;
    // The client follows the leader the nodes name: its poll waits there, and the stop cuts it off.
    await until(() => leader?.watchStatus().watchers === 1, "the watcher polls the leader");
    await lab.stopNode(leaderId);
    for (let round = 4; round <= 6; round++) await lease.put([{ key: `failover/${round}`, value: String(round) }]);
    const events = await watched;
    expect(events.map((event) => (event.type === "key_changed" ? event.key : ""))).toEqual(
      [1, 2, 3, 4, 5, 6].map((round) => `failover/${round}`),
    );
    const newLeader = [...lab.hosts.values()].find((host) => host.status().role === "leader" && host.nodeId !== leaderId);
    expect(newLeader).toBeDefined();
  });
});
