// Issue 14, item 1, on real processes: one admin request used to stop every write for good. The
// admin API took a node id of up to 256 characters, the leader appended the membership entry,
// every follower refused the frame that carried it (its decoder took ids of up to 128), so the
// entry never committed and nothing after it could either. Now the id rule is one rule
// (protocol/limits.ts) for the API, the leader and the followers: the request is refused with a
// 400 before anything reaches the log, and the cluster keeps committing on every node.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LockClient } from "../client/lock-client.ts";
import { ProcessCluster, waitFor } from "../harness/process-cluster.ts";

let cluster: ProcessCluster;

beforeAll(async () => {
  cluster = await ProcessCluster.start();
}, 60_000);

afterAll(async () => {
  await cluster?.close();
}, 60_000);

async function admin(path: string, body: unknown): Promise<{ status: number; code: string | undefined }> {
  const leader = await cluster.waitForLeader(10_000);
  const response = await fetch(`${cluster.url(leader)}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${cluster.apiToken}`, "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const answer = (await response.json()) as { error?: { code?: string } };
  return { status: response.status, code: answer.error?.code };
}

describe("hostile admin input on real processes (issue 14)", () => {
  it("refuses a membership change with a bad node id (400), and the cluster keeps committing on every node", async () => {
    const client = new LockClient({ nodes: cluster.urls(), apiToken: cluster.apiToken, retriesMax: 20 });
    for (const bad of ["a".repeat(200), "X=vts}1;>(", "n".repeat(33)]) {
      for (const action of ["add_learner", "promote_learner", "remove_node"]) {
        expect(await admin("/admin/members", { action, nodeId: bad }), `${action} ${bad.slice(0, 12)}`).toEqual({
          status: 400,
          code: "invalid_request",
        });
      }
      expect(await admin("/admin/transfer", { to: bad })).toEqual({ status: 400, code: "invalid_request" });
    }
    // Writes still commit, and every node (followers included) applies them.
    for (let round = 0; round < 3; round++) {
      const lease = await client.acquire([`after-bad-admin-${round}`], { ttlMs: 60_000, autoRenew: false });
      const token = Number(lease.token);
      for (const id of cluster.ids()) {
        await waitFor(
          async () => {
            const status = await cluster.status(id);
            return status !== undefined && status.appliedIndex >= token ? true : undefined;
          },
          `${id} to apply index ${token}`,
          10_000,
        );
      }
      await lease.release();
    }
    const leader = await cluster.waitForLeader(5000);
    const status = (await cluster.status(leader)) as unknown as { voters: string[]; learners: string[] };
    expect([status.voters.sort(), status.learners]).toEqual([["n1", "n2", "n3"], []]);
  });
});
