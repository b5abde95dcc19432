// Membership changes and leadership transfer through the admin API, on real processes: a fourth
// node (in the address book, started with --join) is added as a learner, catches up, is promoted
// to voter, keeps the cluster available when a founder dies, and is removed again; leadership is
// handed to a chosen node. The nodes' status page timelines (GET /status/view) record both.

import { afterEach, describe, expect, it } from "vitest";
import { LockClient } from "../client/lock-client.ts";
import { transferLeadership } from "../client/transfer-leadership.ts";
import { ProcessCluster, waitFor } from "../harness/process-cluster.ts";

let cluster: ProcessCluster | undefined;

/** timelineOf: the texts of a node's status page timeline, oldest first. */
async function timelineOf(target: ProcessCluster, id: string): Promise<string[]> {
  const view = (await (await fetch(`${target.url(id)}/status/view`)).json()) as { timeline: { kind: string; text: string }[] };
  return view.timeline.map((event) => `${event.kind}: ${event.text}`).reverse();
}
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

describe("membership and leadership transfer (real processes)", () => {
  it("adds a learner, promotes it once caught up, survives a founder's death, and removes it", async () => {
    cluster = await ProcessCluster.start({ size: 4, founders: 3 });
    const target = cluster;
    const client = new LockClient({ nodes: target.urls().slice(0, 3), apiToken: target.apiToken, retriesMax: 20 });
    for (let round = 0; round < 10; round++) await client.acquire([`before-${round}`], { ttlMs: 600_000, autoRenew: false });
    target.startNode("n4");
    await client.admin("/admin/members", { action: "add_learner", nodeId: "n4" });
    const leader = await target.waitForLeader(30_000);
    const leaderStatus = await waitFor(() => target.status(leader), "leader status", 5000);
    await waitFor(
      async () => {
        const status = await target.status("n4");
        return status !== undefined && status.appliedIndex >= leaderStatus.commitIndex ? status : undefined;
      },
      "n4 to catch up",
      15_000,
    );
    await waitFor(
      async () => {
        try {
          return await client.admin("/admin/members", { action: "promote_learner", nodeId: "n4" });
        } catch {
          return undefined; // Not caught up enough yet: retry.
        }
      },
      "n4's promotion",
      15_000,
    );
    const promoted = await waitFor(() => target.status(leader), "status", 5000);
    expect((promoted as unknown as { voters: string[] }).voters.sort()).toEqual(["n1", "n2", "n3", "n4"]);
    // Four voters: any one may die and three still form a majority.
    const victim = target.ids().find((id) => id !== leader && id !== "n4") as string;
    await target.kill(victim);
    const during = await client.acquire(["during"], { ttlMs: 600_000, autoRenew: false });
    expect(during.token).toMatch(/^\d+$/);
    target.startNode(victim);
    await client.admin("/admin/members", { action: "remove_node", nodeId: "n4" });
    const after = await waitFor(
      async () => {
        const status = (await target.status(leader)) as unknown as { voters: string[] } | undefined;
        return status !== undefined && !status.voters.includes("n4") ? status : undefined;
      },
      "n4's removal",
      10_000,
    );
    expect(after.voters.sort()).toEqual(["n1", "n2", "n3"]);
    const changes = (await timelineOf(target, leader)).filter((line) => line.startsWith("membership_changed") && line.includes("n4"));
    expect(changes.map((line) => line.replace(/ \(index \d+\)$/, ""))).toEqual([
      "membership_changed: membership: add_learner n4",
      "membership_changed: membership: promote_learner n4",
      "membership_changed: membership: remove_node n4",
    ]);
    expect((await client.leases()).map((lease) => lease.resource)).toContain("before-9");
  });

  it("hands leadership to the chosen node", async () => {
    cluster = await ProcessCluster.start();
    const target = cluster;
    const leader = await target.waitForLeader(30_000);
    const chosen = target.ids().find((id) => id !== leader) as string;
    const client = new LockClient({ nodes: target.urls(), apiToken: target.apiToken, retriesMax: 20 });
    await client.acquire(["held"], { ttlMs: 600_000, autoRenew: false });
    // The core abandons a transfer that does not finish within one election timeout (150-300 ms;
    // thesis §3.10), as the graceful stop knows (it asks again): a transferee that is still
    // catching up then, as a loaded machine makes it (the full `npm test` at load 10 saw the
    // transfer abandoned and the old leader kept for 30 s), is asked again. So the test waits for
    // the chosen node to hold the leader's log, then asks, and asks again each second for at most
    // 30 s (client/transfer-leadership.ts, what `sctec transfer` runs): what it checks is that a
    // transfer to a caught-up node hands leadership over.
    const leaderLast = (await target.status(leader))?.lastIndex ?? Number.POSITIVE_INFINITY;
    await waitFor(
      async () => {
        const status = await target.status(chosen);
        return status !== undefined && status.leaderId === leader && status.appliedIndex >= leaderLast ? status : undefined;
      },
      `${chosen} to hold ${leader}'s log`,
      30_000,
    );
    const report = await transferLeadership({ client, nodes: target.urls(), to: chosen, timeoutMs: 30_000 });
    console.log(`transfer: ${chosen} leads after ${report.requests} request(s), ${report.ms} ms`);
    expect(report.leader).toBe(chosen);
    expect(await target.leader()).toBe(chosen);
    expect(await timelineOf(target, leader)).toContain(`leader_transfer: leader transfer to ${chosen} started`);
    expect((await timelineOf(target, chosen)).some((line) => line.startsWith("election_won"))).toBe(true);
    expect((await client.leases()).map((lease) => lease.resource)).toContain("held");
  });
});
