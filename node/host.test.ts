// LockNodeHost end to end in one process: three hosts over the in-memory transport and durable
// log, with real (short) timers. It shows the host drives the core correctly: a leader is elected;
// leases are granted with the entry index as token, conflicts name the holder; followers answer
// not_leader with a hint; the leader expires leases through the log; queued acquires are granted
// in order; a stopped leader is replaced without losing a lease; a restarted node recovers its
// state from its durable log and snapshot, and its watchers get every event after the snapshot
// (events_compacted before it).

import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { createSeededRandom, type NodeId, nodeId, raftConfigDefaults } from "../raft/index.ts";
import { LockNodeHost, NodeError } from "./host.ts";
import { lockLimitsDefaults } from "./state/lock-state-machine.ts";
import type { LockCommand } from "./state/types.ts";
import { MemoryDurableLog, MemoryTransportHub } from "./testing/memory-doubles.ts";

const ids = ["n1", "n2", "n3"].map(nodeId);
const logger = pino({ level: "silent" });

interface TestCluster {
  hub: MemoryTransportHub;
  logs: Map<NodeId, MemoryDurableLog>;
  hosts: Map<NodeId, LockNodeHost>;
}

const clusters: TestCluster[] = [];

async function startHost(cluster: TestCluster, id: NodeId, seed: number): Promise<LockNodeHost> {
  const host = await LockNodeHost.start({
    nodeId: id,
    raft: { ...raftConfigDefaults, electionTimeoutTicks: 10, heartbeatIntervalTicks: 2, random: createSeededRandom(seed) },
    bootstrapVoters: ids,
    tickIntervalMs: 10,
    durableLog: cluster.logs.get(id) as MemoryDurableLog,
    transport: cluster.hub.transport(id),
    lockLimits: { ...lockLimitsDefaults, ttlMsMin: 300 },
    snapshotIntervalEntries: 20,
    proposalTimeoutMs: 2000,
    pendingRequestsMax: 1000,
    watchEventsMax: 10_000,
    watchBytesMax: 64 * 1024 * 1024,
    watchersMax: 1000,
    logger,
    nowMs: () => performance.now(),
  });
  cluster.hosts.set(id, host);
  return host;
}

async function startCluster(): Promise<TestCluster> {
  const cluster: TestCluster = {
    hub: new MemoryTransportHub(),
    logs: new Map(ids.map((id) => [id, new MemoryDurableLog()])),
    hosts: new Map(),
  };
  clusters.push(cluster);
  for (const [position, id] of ids.entries()) await startHost(cluster, id, position + 1);
  return cluster;
}

async function stopHost(cluster: TestCluster, id: NodeId): Promise<void> {
  const host = cluster.hosts.get(id);
  if (host === undefined) return;
  cluster.hosts.delete(id);
  await host.stop();
}

afterEach(async () => {
  for (const cluster of clusters.splice(0)) for (const id of [...cluster.hosts.keys()]) await stopHost(cluster, id);
});

async function waitFor<T>(probe: () => T | undefined, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const leaderOf = (cluster: TestCluster) =>
  waitFor(() => [...cluster.hosts.values()].find((host) => host.status().role === "leader"), "a leader");

let sequence = 0;
function acquire(clientId: string, resources: string[], options: { ttlMs?: number; waitMs?: number } = {}): LockCommand {
  sequence++;
  return {
    type: "acquire",
    session: { clientId, sequence: 1 },
    resources,
    owner: clientId,
    ttlMs: options.ttlMs ?? 5000,
    waitMs: options.waitMs ?? 0,
  };
}

describe("LockNodeHost", () => {
  it("elects a leader and grants a lease with the entry index as fencing token; a second acquire conflicts", async () => {
    const cluster = await startCluster();
    const leader = await leaderOf(cluster);
    const granted = await leader.propose(acquire(`alice-${sequence}`, ["slot-1"]));
    expect(granted.result.status).toBe("granted");
    const token = (granted.result as { token: number }).token;
    expect(leader.status().commitIndex).toBeGreaterThanOrEqual(token);
    const conflict = await leader.propose(acquire(`bob-${sequence}`, ["slot-1"]));
    expect(conflict.result).toMatchObject({ status: "rejected", code: "conflict", holder: { token } });
    // Every replica applies the same grant.
    for (const host of cluster.hosts.values())
      await waitFor(() => (host.machine.lease("slot-1")?.token === token ? true : undefined), "replication");
  });

  it("a follower answers not_leader with the leader's id", async () => {
    const cluster = await startCluster();
    const leader = await leaderOf(cluster);
    const follower = [...cluster.hosts.values()].find((host) => host !== leader) as LockNodeHost;
    await waitFor(() => follower.status().leaderId ?? undefined, "the follower to learn the leader");
    const error = await follower.propose(acquire("carol", ["slot-2"])).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(NodeError);
    expect(error).toMatchObject({ code: "not_leader", leaderHint: leader.nodeId });
    await expect(follower.linearizableRead((machine) => machine.lease("slot-2"))).rejects.toMatchObject({ code: "not_leader" });
  });

  it("the leader expires a lease through the log once its TTL has run", async () => {
    const cluster = await startCluster();
    const leader = await leaderOf(cluster);
    const granted = await leader.propose(acquire("dave", ["slot-3"], { ttlMs: 300 }));
    expect(granted.result.status).toBe("granted");
    expect(await leader.linearizableRead((machine) => machine.lease("slot-3")?.owner)).toBe("dave");
    await waitFor(() => (leader.machine.lease("slot-3") === undefined ? true : undefined), "the lease to expire", 3000);
    for (const host of cluster.hosts.values())
      await waitFor(() => (host.machine.lease("slot-3") === undefined ? true : undefined), "expiry everywhere");
  });

  it("grants a queued acquire when the holder releases", async () => {
    const cluster = await startCluster();
    const leader = await leaderOf(cluster);
    const held = await leader.propose(acquire("erin", ["slot-4"]));
    const token = (held.result as { token: number }).token;
    const outcome = leader.propose(acquire("frank", ["slot-4"], { waitMs: 2000 }), { awaitQueuedMs: 3000 });
    await new Promise((resolve) => setTimeout(resolve, 50)); // Let the acquire queue first.
    await leader.propose({ type: "release", session: { clientId: "erin", sequence: 2 }, leases: [{ resource: "slot-4", token }] });
    expect((await outcome).result).toMatchObject({ status: "granted", owner: "frank" });
  });

  it("a stopped leader is replaced, and its leases survive with their tokens", async () => {
    const cluster = await startCluster();
    const leader = await leaderOf(cluster);
    const granted = await leader.propose(acquire("gina", ["slot-5"]));
    const token = (granted.result as { token: number }).token;
    await stopHost(cluster, leader.nodeId);
    await cluster.hub.transport(leader.nodeId).close();
    const next = await leaderOf(cluster);
    expect(next.nodeId).not.toBe(leader.nodeId);
    expect(await next.linearizableRead((machine) => machine.lease("slot-5")?.token)).toBe(token);
  });

  it("a restarted node recovers its log, snapshot and state from its durable log", async () => {
    const cluster = await startCluster();
    const leader = await leaderOf(cluster);
    for (let round = 0; round < 30; round++) await leader.propose(acquire(`client-${round}`, [`r-${round}`]));
    const follower = [...cluster.hosts.values()].find((host) => host !== leader) as LockNodeHost;
    await waitFor(() => (follower.machine.lease("r-29") !== undefined ? true : undefined), "replication");
    const id = follower.nodeId;
    await stopHost(cluster, id);
    const restarted = await startHost(cluster, id, 99);
    await waitFor(() => (restarted.machine.lease("r-29") !== undefined ? true : undefined), "the restarted node to catch up");
    expect(restarted.machine.leases()).toHaveLength(30);
    expect(restarted.status().snapshotIndex).toBeGreaterThan(0);
  });

  it("a node restarted from a snapshot serves watchers the events after it, and events_compacted before it", async () => {
    const cluster = await startCluster();
    const leader = await leaderOf(cluster);
    for (let round = 0; round < 30; round++) await leader.propose(acquire(`watched-${round}`, [`w-${round}`]));
    const follower = [...cluster.hosts.values()].find((host) => host !== leader) as LockNodeHost;
    await waitFor(() => (follower.machine.lease("w-29") !== undefined ? true : undefined), "replication");
    const id = follower.nodeId;
    await stopHost(cluster, id);
    const restarted = await startHost(cluster, id, 98);
    await waitFor(() => (restarted.machine.lease("w-29") !== undefined ? true : undefined), "the restarted node to catch up");
    const snapshotIndex = restarted.status().snapshotIndex;
    expect(snapshotIndex).toBeGreaterThan(0);
    expect(restarted.watchStatus()).toEqual({ watchers: 0, oldestIndex: snapshotIndex });
    await expect(restarted.watch({ prefix: "", after: 0, limit: 1000, timeoutMs: 0 })).rejects.toMatchObject({
      code: "events_compacted",
      details: { oldestIndex: snapshotIndex },
    });
    const replayed = await restarted.watch({ prefix: "", after: snapshotIndex, limit: 1000, timeoutMs: 0 });
    const fromLeader = await leader.watch({ prefix: "", after: snapshotIndex, limit: 1000, timeoutMs: 0 });
    expect(replayed.events.length).toBeGreaterThan(0);
    expect(replayed.events).toEqual(fromLeader.events.filter((event) => event.index <= replayed.lastIndex));
  });
});
