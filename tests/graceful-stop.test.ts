// Graceful stop and rolling restart on real node processes (issue 17, item 3).
//
// - SIGTERM to the leader: it hands its leadership over before it exits, so when its process is
//   gone a survivor leads already (after a kill -9 the survivors would still be waiting out an
//   election timeout then: they cannot even begin an election for 150 ms), and the next request
//   is answered; the old leader's log says to whom it handed over, and it exits 0. A follower's
//   SIGTERM changes nothing for the leader.
// - POST /admin/restart on every member in turn (rollingRestart, what `sctec rolling-restart`
//   runs), while a client takes and releases locks all along: every member comes back as a new
//   process and catches up, the followers first and the leader last, leadership moves, and not
//   one lock operation fails.
// Each wait is for a condition, bounded generously: nothing depends on the machine's speed.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { LockClient } from "../client/lock-client.ts";
import { rollingRestart } from "../client/rolling-restart.ts";
import { ProcessCluster, waitFor } from "../harness/process-cluster.ts";

let cluster: ProcessCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

/** logEvents: the JSON log records of a node with this `event`. */
function logEvents(target: ProcessCluster, id: string, event: string): Record<string, unknown>[] {
  return readFileSync(join(target.dataRoot, `${id}.log`), "utf8")
    .split("\n")
    .filter((line) => line.includes(`"event":"${event}"`))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe("graceful stop (real processes)", () => {
  it("a SIGTERM'd leader hands over first: when it exits another node leads already, and the next request is answered", async () => {
    cluster = await ProcessCluster.start();
    const target = cluster;
    const client = new LockClient({ nodes: target.urls(), apiToken: target.apiToken, retriesMax: 20 });
    for (let round = 0; round < 5; round++) await (await client.acquire([`warm-${round}`], { ttlMs: 60_000, autoRenew: false })).release();
    const leader = await target.waitForLeader(15_000);
    const before = await waitFor(() => target.status(leader), "the leader's status", 5000);
    const survivors = target.ids().filter((id) => id !== leader);

    await target.kill(leader, "SIGTERM"); // Answers once the process is gone.
    // Asked at once: a survivor that leads now was elected before the old leader exited.
    const seen = await Promise.all(survivors.map((id) => target.status(id)));
    const newLeader = seen.find((status) => status?.role === "leader");
    expect(newLeader, JSON.stringify(seen)).toBeDefined();
    expect(newLeader?.term).toBeGreaterThan(before.term);
    const lease = await client.acquire(["after-the-leader-stopped"], { ttlMs: 60_000, autoRenew: false });
    expect(lease.token).toMatch(/^\d+$/);

    const handedOver = logEvents(target, leader, "leadership_handed_over");
    expect(handedOver).toHaveLength(1);
    expect(handedOver[0]?.["leaderId"]).toBe(newLeader?.nodeId);
    expect(logEvents(target, leader, "stopped")[0]?.["exitCode"]).toBe(0);
  }, 120_000);

  it("a SIGTERM'd follower stops without disturbing the leader", async () => {
    cluster = await ProcessCluster.start();
    const target = cluster;
    const leader = await target.waitForLeader(15_000);
    const before = await waitFor(() => target.status(leader), "the leader's status", 5000);
    const follower = target.ids().find((id) => id !== leader) as string;
    await target.kill(follower, "SIGTERM");
    expect(logEvents(target, follower, "leadership_handed_over")).toEqual([]);
    expect(logEvents(target, follower, "stopped")[0]?.["exitCode"]).toBe(0);
    const after = await waitFor(() => target.status(leader), "the leader's status", 5000);
    expect([after.role, after.term]).toEqual(["leader", before.term]);
  }, 120_000);
});

describe("rolling restart (real processes)", () => {
  it("restarts every member in turn, the leader last, under load, with not one failed operation", async () => {
    cluster = await ProcessCluster.start();
    const target = cluster;
    const client = new LockClient({ nodes: target.urls(), apiToken: target.apiToken, retriesMax: 20 });
    await target.waitForLeader(15_000);
    let running = true;
    let done = 0;
    const failures: string[] = [];
    const load = (async () => {
      for (let round = 0; running && round < 100_000; round++) {
        try {
          const lease = await client.acquire([`rolling-${round % 50}`], { ttlMs: 60_000, autoRenew: false });
          await lease.release();
          done++;
        } catch (error) {
          failures.push(`${round}: ${(error as Error).message}`);
        }
      }
    })();
    const admin = new LockClient({ nodes: target.urls(), apiToken: target.apiToken, retriesMax: 4 });
    const progress: string[] = [];
    const report = await rollingRestart({
      client: admin,
      nodes: target.urls(),
      restartTimeoutMs: 90_000,
      catchUpTimeoutMs: 60_000,
      onProgress: (message) => progress.push(message),
    });
    const doneDuring = done;
    running = false;
    await load;
    expect(failures, progress.join("\n")).toEqual([]);
    expect(doneDuring).toBeGreaterThan(0);
    const leaderAtStart = report.leaders[0] as string; // The one it found (an election nobody asked for may have moved it since the warm-up).
    expect(report.restarted.map((each) => each.nodeId)).toEqual([
      ...target
        .ids()
        .filter((id) => id !== leaderAtStart)
        .sort(),
      leaderAtStart,
    ]);
    expect(report.restarted.map((each) => each.wasLeader)).toEqual([false, false, true]);
    expect(target.restarts).toEqual(report.restarted.map((each) => each.nodeId));
    // Leadership moved when the leader restarted. (How often it moved in all is bench:rolling's
    // figure: on a loaded machine an election nobody asked for may come on top, issue 17 item 1.)
    expect(report.leaders.length).toBeGreaterThanOrEqual(2);
    for (const id of target.ids()) expect(logEvents(target, id, "stopped")[0]?.["exitCode"]).toBe(75);
  }, 300_000);
});
