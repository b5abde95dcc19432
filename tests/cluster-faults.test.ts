// Fault tests on real lock node processes (loopback, temporary data): kill -9 of the leader
// under load, a restart of a node that missed many entries (caught up by snapshot), SIGSTOP of
// the leader past the election timeout, and kill -9 of all three at once. Each run's history of
// lock operations is checked for linearizability (mutex with fencing tokens), so no two holders
// overlap, tokens rise and no acknowledged grant is lost; the final lease table must match it.

import { afterEach, describe, expect, it } from "vitest";
import { LockClient, LockError } from "../client/lock-client.ts";
import { checkLinearizable, type HistoryEntry, type LockOperation } from "../harness/linearizability.ts";
import { ProcessCluster, waitFor } from "../harness/process-cluster.ts";

let cluster: ProcessCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

const resources = ["r1", "r2", "r3"];

/** runClients loops acquire/release from several clients until `stopAt`, recording the history. */
async function runClients(
  target: ProcessCluster,
  options: { clients: number; stopAt: () => boolean; history: HistoryEntry[] },
): Promise<void> {
  const loops = Array.from({ length: options.clients }, async (_, position) => {
    const client = new LockClient({
      nodes: target.urls(),
      apiToken: target.apiToken,
      requestTimeoutMs: 1500,
      retriesMax: 12,
      retryBaseMs: 20,
      retryMaxMs: 300,
    });
    for (let round = 0; round < 10_000 && !options.stopAt(); round++) {
      const resource = resources[(position + round) % resources.length] as string;
      const invokedAtMs = performance.now();
      try {
        const lease = await client.acquire([resource], { ttlMs: 120_000, autoRenew: false });
        const token = Number(lease.token);
        options.history.push({
          client: client.clientId,
          invokedAtMs,
          returnedAtMs: performance.now(),
          operation: { kind: "acquire", resource, outcome: { status: "granted", token } },
        });
        const releasedAtMs = performance.now();
        try {
          await client.mutate("/unlock", { resources: [resource], token: lease.token });
          options.history.push({
            client: client.clientId,
            invokedAtMs: releasedAtMs,
            returnedAtMs: performance.now(),
            operation: { kind: "release", resource, token, outcome: { status: "ok" } },
          });
        } catch (error) {
          const status = error instanceof LockError && error.code === "not_held" ? "not_held" : "unknown";
          options.history.push({
            client: client.clientId,
            invokedAtMs: releasedAtMs,
            returnedAtMs: status === "unknown" ? Number.POSITIVE_INFINITY : performance.now(),
            operation: { kind: "release", resource, token, outcome: { status } },
          });
        }
      } catch (error) {
        const conflict = error instanceof LockError && error.code === "conflict";
        const operation: LockOperation = { kind: "acquire", resource, outcome: { status: conflict ? "conflict" : "unknown" } };
        options.history.push({
          client: client.clientId,
          invokedAtMs,
          returnedAtMs: conflict ? performance.now() : Number.POSITIVE_INFINITY,
          operation,
        });
      }
    }
  });
  await Promise.all(loops);
}

/** finalReads appends a linearizable read of every resource's holder, taken after the run. */
async function finalReads(target: ProcessCluster, history: HistoryEntry[]): Promise<void> {
  const client = new LockClient({ nodes: target.urls(), apiToken: target.apiToken, retriesMax: 20, retryBaseMs: 50 });
  const invokedAtMs = performance.now();
  const leases = await client.leases();
  const returnedAtMs = performance.now();
  for (const resource of resources) {
    const lease = leases.find((item) => item.resource === resource);
    history.push({
      client: "reader",
      invokedAtMs,
      returnedAtMs,
      operation: { kind: "holder", resource, outcome: { status: "read", token: lease === undefined ? null : Number(lease.token) } },
    });
  }
}

function expectLinearizable(history: readonly HistoryEntry[]): void {
  const granted = history.filter((entry) => entry.operation.kind === "acquire" && entry.operation.outcome.status === "granted").length;
  expect(granted, "the workload made progress").toBeGreaterThan(10);
  const result = checkLinearizable(history);
  expect(result, `history of ${history.length} operations`).toMatchObject({ linearizable: true });
}

describe("the lock cluster under faults (real processes)", () => {
  it("kill -9 of the leader under load: a new leader serves, and the history stays linearizable", async () => {
    cluster = await ProcessCluster.start();
    const target = cluster;
    const history: HistoryEntry[] = [];
    let stop = false;
    const load = runClients(target, { clients: 4, stopAt: () => stop, history });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const leader = await target.waitForLeader(5000);
    const killedAt = performance.now();
    await target.kill(leader);
    const next = await target.waitForLeader(10_000, leader);
    const firstGrantAfter = await waitFor(
      () => history.find((entry) => entry.invokedAtMs >= killedAt && entry.operation.outcome.status === "granted")?.returnedAtMs,
      "a grant after the kill",
      10_000,
    );
    target.startNode(leader);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    stop = true;
    await load;
    await finalReads(target, history);
    expect(next).not.toBe(leader);
    expect(firstGrantAfter - killedAt, "failover (kill to next grant), generous bound").toBeLessThan(5000);
    expectLinearizable(history);
  });

  it("a node that missed many entries catches up by snapshot after a restart", async () => {
    cluster = await ProcessCluster.start({ env: { SCTEC_SNAPSHOT_ENTRIES: "10" } });
    const target = cluster;
    const leader = await target.waitForLeader(5000);
    const lagging = target.ids().find((id) => id !== leader) as string;
    await target.kill(lagging, "SIGTERM");
    const client = new LockClient({ nodes: [target.url(leader)], apiToken: target.apiToken });
    for (let round = 0; round < 40; round++)
      await (await client.acquire([`slot-${round}`], { ttlMs: 120_000, autoRenew: false })).release();
    target.startNode(lagging);
    const leaderStatus = await waitFor(() => target.status(leader), "the leader's status", 5000);
    const caughtUp = await waitFor(
      async () => {
        const status = await target.status(lagging);
        return status !== undefined && status.appliedIndex >= leaderStatus.commitIndex ? status : undefined;
      },
      "the restarted node to catch up",
      15_000,
    );
    expect(caughtUp.snapshotIndex).toBeGreaterThan(0);
    expect(caughtUp.snapshotIndex).toBeGreaterThan(20);
  });

  it("SIGSTOP of the leader past the election timeout: a new leader takes over, the old one steps down on SIGCONT", async () => {
    cluster = await ProcessCluster.start();
    const target = cluster;
    const history: HistoryEntry[] = [];
    let stop = false;
    const load = runClients(target, { clients: 3, stopAt: () => stop, history });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const leader = await target.waitForLeader(5000);
    const before = (await target.status(leader))?.term ?? 0;
    target.signal(leader, "SIGSTOP");
    const next = await target.waitForLeader(10_000, leader);
    await new Promise((resolve) => setTimeout(resolve, 500));
    target.signal(leader, "SIGCONT");
    const resumed = await waitFor(
      async () => {
        const status = await target.status(leader);
        return status !== undefined && status.role !== "leader" && status.term > before ? status : undefined;
      },
      "the old leader to step down",
      10_000,
    );
    stop = true;
    await load;
    await finalReads(target, history);
    expect(next).not.toBe(leader);
    expect(resumed.leaderId).not.toBe(leader);
    expectLinearizable(history);
  });

  it("kill -9 of all three at once loses nothing acknowledged", async () => {
    cluster = await ProcessCluster.start();
    const target = cluster;
    const client = new LockClient({ nodes: target.urls(), apiToken: target.apiToken });
    const acknowledged: { resource: string; token: string }[] = [];
    for (let round = 0; round < 20; round++) {
      const lease = await client.acquire([`keep-${round}`], { ttlMs: 600_000, autoRenew: false });
      acknowledged.push({ resource: `keep-${round}`, token: lease.token });
    }
    await Promise.all(target.ids().map((id) => target.kill(id)));
    for (const id of target.ids()) target.startNode(id);
    await target.waitForLeader(15_000);
    const leases = await new LockClient({ nodes: target.urls(), apiToken: target.apiToken, retriesMax: 20 }).leases();
    for (const { resource, token } of acknowledged)
      expect(leases.find((lease) => lease.resource === resource)?.token, resource).toBe(token);
  });
});
