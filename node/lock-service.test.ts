// LockService end to end in one process: three hosts over the in-memory transport and durable
// log, with real (short) timers. It shows the host drives the core correctly: a leader is elected;
// leases are granted with the entry index as token, conflicts name the holder; followers answer
// not_leader with a hint; the leader expires leases through the log; queued acquires are granted
// in order; a stopped leader is replaced without losing a lease; a restarted node recovers its
// state from its durable log and snapshot, and its watchers get every event after the snapshot
// (events_compacted before it). An acquire that would only join a queue is held back for the
// next write, release, or second tick (with ticks under the test's control).

import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { decodeCommand } from "../lock/codec.ts";
import { lockLimitsDefaults } from "../lock/lock-state-machine.ts";
import type { LockCommand } from "../lock/types.ts";
import { createSeededRandom, type NodeId, nodeId, raftConfigDefaults } from "../raft/index.ts";
import { DiskFullError, type DurableLog } from "./contracts.ts";
import { systemClock } from "./driver/clock.ts";
import { DriverError } from "./driver/raft-driver.ts";
import { LockService } from "./lock-service.ts";
import { MemoryDurableLog, MemoryTransportHub } from "./testing/memory-doubles.ts";

const ids = ["n1", "n2", "n3"].map(nodeId);
const logger = pino({ level: "silent" });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * GatedDurableLog holds every save while `gate` is set, to keep a node from acknowledging entries,
 * and refuses every write with DiskFullError while `full` is set (storing nothing), as
 * LevelDurableLog does on a full disk.
 */
class GatedDurableLog extends MemoryDurableLog {
  gate: Promise<void> | undefined = undefined;
  full = false;
  refusedWrites = 0;
  /** entriesPerSave: how many entries each save carried (one save per Ready). */
  readonly entriesPerSave: number[] = [];
  override async save(update: Parameters<DurableLog["save"]>[0]): Promise<void> {
    this.entriesPerSave.push(update.entries.length);
    if (this.gate !== undefined) await this.gate;
    if (this.full) {
      this.refusedWrites++;
      throw new DiskFullError("test: no space left on device");
    }
    return super.save(update);
  }
  override async compact(snapshot: Parameters<DurableLog["compact"]>[0]): Promise<void> {
    if (this.full) throw new DiskFullError("test: no space left on device");
    return super.compact(snapshot);
  }
}

interface TestCluster {
  hub: MemoryTransportHub;
  logs: Map<NodeId, GatedDurableLog>;
  hosts: Map<NodeId, LockService>;
}

const clusters: TestCluster[] = [];

async function startHost(cluster: TestCluster, id: NodeId, seed: number, inputsPerTurnMax = 256): Promise<LockService> {
  const host = await LockService.start({
    nodeId: id,
    raft: { ...raftConfigDefaults, electionTimeoutTicks: 10, heartbeatIntervalTicks: 2, random: createSeededRandom(seed) },
    bootstrapVoters: ids,
    tickIntervalMs: 10,
    durableLog: cluster.logs.get(id) as GatedDurableLog,
    transport: cluster.hub.transport(id),
    lockLimits: { ...lockLimitsDefaults, ttlMsMin: 300 },
    snapshotIntervalEntries: 20,
    proposalTimeoutMs: 2000,
    pendingRequestsMax: 1000,
    inputsPerTurnMax,
    watchEventsMax: 10_000,
    watchBytesMax: 64 * 1024 * 1024,
    watchersMax: 1000,
    logger,
    clock: systemClock,
  });
  cluster.hosts.set(id, host);
  return host;
}

async function startCluster(inputsPerTurnMax?: number): Promise<TestCluster> {
  const cluster: TestCluster = {
    hub: new MemoryTransportHub(),
    logs: new Map(ids.map((id) => [id, new GatedDurableLog()])),
    hosts: new Map(),
  };
  clusters.push(cluster);
  for (const [position, id] of ids.entries()) await startHost(cluster, id, position + 1, inputsPerTurnMax);
  return cluster;
}

async function stopHost(cluster: TestCluster, id: NodeId): Promise<void> {
  const host = cluster.hosts.get(id);
  if (host === undefined) return;
  cluster.hosts.delete(id);
  await host.stop();
}

afterEach(async () => {
  vi.useRealTimers();
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

describe("LockService", () => {
  it("feeds a flood of proposals to the core at most inputsPerTurnMax a turn, so a tick never waits behind all of them", async () => {
    const cluster = await startCluster(16);
    const leader = await leaderOf(cluster);
    const log = cluster.logs.get(leader.nodeId) as GatedDurableLog;
    // Hold the leader's disk: 200 proposals queue up behind the write in flight.
    let open = () => {};
    log.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const first = leader.propose(acquire(`flood-first-${sequence}`, ["flood-first"]));
    await sleep(30); // The first proposal's write is in flight (held).
    const flood = Array.from({ length: 200 }, (_, position) =>
      leader.propose(acquire(`flood-${sequence}-${position}`, [`flood-${position}`])),
    );
    await sleep(30);
    const savesBefore = log.entriesPerSave.length;
    log.gate = undefined;
    open();
    const results = await Promise.all([first, ...flood]);
    expect(results.every((applied) => applied.result.status === "granted")).toBe(true);
    const batches = log.entriesPerSave.slice(savesBefore).filter((count) => count > 0);
    // Bug (planted and seen to fail: every queued input fed in one turn): one Ready, one save of 200 entries.
    expect(Math.max(...batches)).toBeLessThanOrEqual(16);
    expect(batches.reduce((sum, count) => sum + count, 0)).toBeGreaterThanOrEqual(200);
  });

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
      await waitFor(() => (host.localState().lease("slot-1")?.token === token ? true : undefined), "replication");
  });

  it("a follower answers not_leader with the leader's id", async () => {
    const cluster = await startCluster();
    const leader = await leaderOf(cluster);
    const follower = [...cluster.hosts.values()].find((host) => host !== leader) as LockService;
    await waitFor(() => follower.status().leaderId ?? undefined, "the follower to learn the leader");
    const error = await follower.propose(acquire("carol", ["slot-2"])).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(DriverError);
    expect(error).toMatchObject({ code: "not_leader", leaderHint: leader.nodeId });
    await expect(follower.linearizableRead((machine) => machine.lease("slot-2"))).rejects.toMatchObject({ code: "not_leader" });
  });

  it("the leader proposes nothing a follower could not decode: a command or membership change off its schema is invalid_command (issue 14)", async () => {
    const cluster = await startCluster();
    const leader = await leaderOf(cluster);
    const lastIndex = leader.status().lastIndex;
    const tooLong = { ...acquire("erin", ["r".repeat(257)]) };
    await expect(leader.propose(tooLong)).rejects.toMatchObject({ code: "invalid_command" });
    const junk = { type: "acquire", resources: ["a"], owner: "o", ttlMs: 5000, waitMs: 0, color: "red" } as unknown as LockCommand;
    await expect(leader.propose(junk)).rejects.toMatchObject({ code: "invalid_command" });
    for (const id of ["a".repeat(200), "X=vts}1;>("]) {
      await expect(leader.proposeConfChange({ type: "add_learner", nodeId: nodeId(id) })).rejects.toMatchObject({
        code: "invalid_command",
      });
    }
    expect(leader.status().lastIndex).toBe(lastIndex);
    expect((await leader.propose(acquire("erin", ["fine"]))).result.status).toBe("granted");
  });

  it("the leader expires a lease through the log once its TTL has run", async () => {
    const cluster = await startCluster();
    const leader = await leaderOf(cluster);
    const granted = await leader.propose(acquire("dave", ["slot-3"], { ttlMs: 300 }));
    expect(granted.result.status).toBe("granted");
    expect(await leader.linearizableRead((machine) => machine.lease("slot-3")?.owner)).toBe("dave");
    await waitFor(() => (leader.localState().lease("slot-3") === undefined ? true : undefined), "the lease to expire", 3000);
    for (const host of cluster.hosts.values())
      await waitFor(() => (host.localState().lease("slot-3") === undefined ? true : undefined), "expiry everywhere");
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
    const follower = [...cluster.hosts.values()].find((host) => host !== leader) as LockService;
    await waitFor(() => (follower.localState().lease("r-29") !== undefined ? true : undefined), "replication");
    const id = follower.nodeId;
    await stopHost(cluster, id);
    const restarted = await startHost(cluster, id, 99);
    await waitFor(() => (restarted.localState().lease("r-29") !== undefined ? true : undefined), "the restarted node to catch up");
    expect(restarted.localState().leases()).toHaveLength(30);
    expect(restarted.status().snapshotIndex).toBeGreaterThan(0);
  });

  it("a node restarted from a snapshot serves watchers the events after it, and events_compacted before it", async () => {
    const cluster = await startCluster();
    const leader = await leaderOf(cluster);
    for (let round = 0; round < 30; round++) await leader.propose(acquire(`watched-${round}`, [`w-${round}`]));
    const follower = [...cluster.hosts.values()].find((host) => host !== leader) as LockService;
    await waitFor(() => (follower.localState().lease("w-29") !== undefined ? true : undefined), "replication");
    const id = follower.nodeId;
    await stopHost(cluster, id);
    const restarted = await startHost(cluster, id, 98);
    await waitFor(() => (restarted.localState().lease("w-29") !== undefined ? true : undefined), "the restarted node to catch up");
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

describe("LockService on a full disk", () => {
  it("a leader whose disk is full stops, refuses requests (disk_full), is replaced, and catches up once there is space", async () => {
    const cluster = await startCluster();
    const leader = await leaderOf(cluster);
    expect((await leader.propose(acquire(`before-${sequence}`, ["before"]))).result.status).toBe("granted");
    const log = cluster.logs.get(leader.nodeId) as GatedDurableLog;
    log.full = true;
    // The next write finds the disk full: its caller gets no answer in time (it may still commit
    // through the others), and the node holds its loop until there is space.
    const stuck = leader.propose(acquire(`stuck-${sequence}`, ["stuck"])).catch((error: unknown) => error);
    await waitFor(() => (leader.storageStatus().ok ? undefined : true), "the leader to notice the full disk");
    await expect(leader.propose(acquire(`refused-${sequence}`, ["refused"]))).rejects.toMatchObject({ code: "disk_full" });
    expect(leader.storageStatus()).toMatchObject({ ok: false, reason: "disk_full" });
    // The others stop hearing from it and elect another leader, which serves.
    const others = [...cluster.hosts.values()].filter((host) => host !== leader);
    const next = await waitFor(() => others.find((host) => host.status().role === "leader"), "a new leader", 10_000);
    const during = await next.propose(acquire(`during-${sequence}`, ["during"]));
    expect(during.result.status).toBe("granted");
    expect(log.refusedWrites).toBeGreaterThan(0);
    log.full = false;
    await waitFor(() => (leader.storageStatus().ok ? true : undefined), "the old leader to write again", 10_000);
    await waitFor(() => (leader.localState().lease("during") !== undefined ? true : undefined), "the old leader to catch up", 10_000);
    expect(leader.status().role).not.toBe("leader");
    expect(await stuck).toMatchObject({ code: expect.stringMatching(/^(timeout|leadership_lost)$/) });
  });

  it("a follower whose disk is full sends requests on to the leader, and stopping it does not wait for space", async () => {
    const cluster = await startCluster();
    const leader = await leaderOf(cluster);
    const follower = [...cluster.hosts.values()].find((host) => host !== leader) as LockService;
    await waitFor(() => follower.status().leaderId ?? undefined, "the follower to learn the leader");
    (cluster.logs.get(follower.nodeId) as GatedDurableLog).full = true;
    await leader.propose(acquire(`write-${sequence}`, ["write"])); // The follower's next save finds the disk full.
    await waitFor(() => (follower.storageStatus().ok ? undefined : true), "the follower to notice the full disk");
    await expect(follower.propose(acquire(`via-${sequence}`, ["via"]))).rejects.toMatchObject({
      code: "not_leader",
      leaderHint: leader.nodeId,
    });
    const stoppedMs = performance.now();
    await stopHost(cluster, follower.nodeId);
    expect(performance.now() - stoppedMs).toBeLessThan(1500);
  });
});
describe("LockService holds back acquires that would only join a queue", () => {
  // Ticks come only when the test says so: setInterval (the host's ticker) is faked, everything else is real.
  async function startTickless(): Promise<{ cluster: TestCluster; leader: LockService; tick: () => Promise<void> }> {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const cluster = await startCluster();
    const tick = async () => {
      vi.advanceTimersByTime(10);
      await new Promise((resolve) => setTimeout(resolve, 5));
    };
    const deadline = performance.now() + 10_000;
    let leader: LockService | undefined;
    while (leader === undefined) {
      if (performance.now() > deadline) throw new Error("no leader within 10 s of ticks");
      await tick();
      leader = [...cluster.hosts.values()].find((host) => host.status().role === "leader");
    }
    // The leader's first entry (its no-op) commits once a follower has it; proposals wait for nothing else.
    const found = leader;
    await waitFor(() => (found.status().commitIndex === found.status().lastIndex ? true : undefined), "the no-op to commit");
    return { cluster, leader, tick };
  }

  const settle = () => new Promise((resolve) => setTimeout(resolve, 50));

  it("holds a join until the holder's release, proposes it just ahead of the release, and saves both at once", async () => {
    const { cluster, leader } = await startTickless();
    const held = await leader.propose(acquire("hana", ["slot-h1"]));
    const token = (held.result as { token: number }).token;
    const lastIndexBefore = leader.status().lastIndex;
    const outcome = leader.propose(acquire("ivan", ["slot-h1"], { waitMs: 2000 }), { awaitQueuedMs: 3000 });
    await settle();
    expect(leader.status().lastIndex).toBe(lastIndexBefore); // held: nothing was appended
    const leaderLog = cluster.logs.get(leader.nodeId) as GatedDurableLog;
    const savesBefore = leaderLog.saves;
    const released = await leader.propose({
      type: "release",
      session: { clientId: "hana", sequence: 2 },
      leases: [{ resource: "slot-h1", token }],
    });
    expect(released.result.status).toBe("released");
    expect((await outcome).result).toMatchObject({ status: "granted", owner: "ivan" });
    // The join went into the log first (FIFO: it arrived first), in the same Ready and save as the release.
    const joined = leader.status().lastIndex - 1;
    const entries = (await leaderLog.load()).entries.filter((entry) => entry.index > lastIndexBefore);
    expect(entries.map((entry) => (entry.kind === "normal" ? decodeCommand(entry.data).type : entry.kind))).toEqual(["acquire", "release"]);
    expect(entries[0]?.index).toBe(joined);
    expect(leaderLog.saves - savesBefore).toBe(1);
  });

  it("a held join goes out on the second tick when no other write comes", async () => {
    const { leader, tick } = await startTickless();
    await leader.propose(acquire("jana", ["slot-h2"]));
    const lastIndexBefore = leader.status().lastIndex;
    const outcome = leader.propose(acquire("karl", ["slot-h2"], { waitMs: 300 }), { awaitQueuedMs: 3000 });
    await settle();
    expect(leader.status().lastIndex).toBe(lastIndexBefore);
    await tick(); // The first tick may come at once: a join is held until the second, less than two intervals.
    // A later join does not push the oldest one's deadline back.
    const later = leader.propose(acquire("lara", ["slot-h2"], { waitMs: 300 }), { awaitQueuedMs: 3000 });
    await settle();
    expect(leader.status().lastIndex).toBe(lastIndexBefore);
    await tick();
    await waitFor(
      () =>
        leader
          .localState()
          .waitersNow()
          .some((waiter) => waiter.owner === "karl")
          ? true
          : undefined,
      "karl to queue",
    );
    expect(
      leader
        .localState()
        .waitersNow()
        .map((waiter) => waiter.owner),
    ).toEqual(["karl", "lara"]);
    expect(leader.status().lastIndex).toBe(lastIndexBefore + 2);
    // Its wait then runs out on the leader's clock, through the log, as any queued acquire's does.
    const until = performance.now() + 5000;
    while (leader.localState().waitersNow().length > 0 && performance.now() < until) await tick();
    expect((await outcome).result).toMatchObject({ status: "rejected", code: "wait_timeout" });
    expect((await later).result).toMatchObject({ status: "rejected", code: "wait_timeout" });
  });

  it("a join held while the holder's release was in flight goes out once the release applies, without a tick", async () => {
    const { cluster, leader } = await startTickless();
    const held = await leader.propose(acquire("lena", ["slot-h3"]));
    const token = (held.result as { token: number }).token;
    // Followers cannot acknowledge: the release is appended on the leader but not committed.
    let open = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    for (const [id, log] of cluster.logs) if (id !== leader.nodeId) log.gate = gate;
    const releaseIndex = leader.status().lastIndex + 1;
    const released = leader.propose({
      type: "release",
      session: { clientId: "lena", sequence: 2 },
      leases: [{ resource: "slot-h3", token }],
    });
    await waitFor(() => (leader.status().lastIndex === releaseIndex ? true : undefined), "the release to be appended");
    const outcome = leader.propose(acquire("milo", ["slot-h3"], { waitMs: 2000 }), { awaitQueuedMs: 3000 });
    await settle();
    expect(leader.status().lastIndex).toBe(releaseIndex); // held: lena still holds slot-h3 as far as the leader has applied
    open();
    expect((await released).result.status).toBe("released");
    // No tick can come (the ticker is faked): only the applied release can let the join out.
    const granted = await Promise.race([outcome, sleep(3000).then(() => "no grant within 3 s")]);
    expect(granted).toMatchObject({ result: { status: "granted", owner: "milo" } });
  });

  it("a node that stops answers its held joins shutting_down", async () => {
    const { cluster, leader } = await startTickless();
    await leader.propose(acquire("nina", ["slot-h4"]));
    const outcome = leader
      .propose(acquire("otto", ["slot-h4"], { waitMs: 2000 }), { awaitQueuedMs: 3000 })
      .catch((caught: unknown) => caught);
    const lastIndexBefore = leader.status().lastIndex;
    await settle();
    expect(leader.status().lastIndex).toBe(lastIndexBefore); // held
    await stopHost(cluster, leader.nodeId);
    expect(await Promise.race([outcome, sleep(3000).then(() => "no answer within 3 s")])).toMatchObject({ code: "shutting_down" });
  });

  it("a node that stops answers a queued acquire's caller shutting_down", async () => {
    const { cluster, leader, tick } = await startTickless();
    await leader.propose(acquire("pia", ["slot-h5"]));
    const outcome = leader
      .propose(acquire("quinn", ["slot-h5"], { waitMs: 2000 }), { awaitQueuedMs: 3000 })
      .catch((caught: unknown) => caught);
    await settle();
    await tick();
    await tick();
    await waitFor(
      () =>
        leader
          .localState()
          .waitersNow()
          .some((waiter) => waiter.owner === "quinn")
          ? true
          : undefined,
      "quinn to queue",
    );
    await stopHost(cluster, leader.nodeId);
    expect(await Promise.race([outcome, sleep(3000).then(() => "no answer within 3 s")])).toMatchObject({ code: "shutting_down" });
  });

  it("the leader's own expiry lets held joins out first, in the same save", async () => {
    const { cluster, leader, tick } = await startTickless();
    await leader.propose(acquire("rosa", ["slot-h6"], { ttlMs: 300 }));
    await sleep(400); // The lease's time is up, but no tick has come to propose its expiry.
    const lastIndexBefore = leader.status().lastIndex;
    const outcome = leader.propose(acquire("sven", ["slot-h6"], { waitMs: 2000 }), { awaitQueuedMs: 3000 });
    await settle();
    expect(leader.status().lastIndex).toBe(lastIndexBefore); // held: rosa still holds slot-h6 as far as the log says
    const leaderLog = cluster.logs.get(leader.nodeId) as GatedDurableLog;
    const savesBefore = leaderLog.saves;
    await tick(); // The first tick since the join was held: only the expiry can let it out now.
    expect((await Promise.race([outcome, sleep(3000).then(() => undefined)]))?.result).toMatchObject({ status: "granted", owner: "sven" });
    const entries = (await leaderLog.load()).entries.filter((entry) => entry.index > lastIndexBefore);
    expect(entries.map((entry) => (entry.kind === "normal" ? decodeCommand(entry.data).type : entry.kind))).toEqual(["acquire", "expire"]);
    expect(leaderLog.saves - savesBefore).toBe(1);
  });

  it("a leadership transfer lets held joins out first, so they are not refused while it runs", async () => {
    const { cluster, leader } = await startTickless();
    await leader.propose(acquire("tara", ["slot-h7"]));
    const lastIndexBefore = leader.status().lastIndex;
    // Its caller's answer is not the point here (the leader it asked steps down); the log is.
    void leader.propose(acquire("ugo", ["slot-h7"], { waitMs: 2000 }), { awaitQueuedMs: 3000 }).catch(() => undefined);
    await settle();
    expect(leader.status().lastIndex).toBe(lastIndexBefore); // held
    const transferee = ids.find((id) => id !== leader.nodeId) as NodeId;
    expect(await leader.transferLeadership(transferee)).toEqual({ kind: "started" });
    // The join went into the log before the transfer began, and the cluster keeps it.
    const next = cluster.hosts.get(transferee) as LockService;
    await waitFor(
      () =>
        next
          .localState()
          .waitersNow()
          .some((waiter) => waiter.owner === "ugo")
          ? true
          : undefined,
      "ugo's join on the transferee",
    );
  });
});
