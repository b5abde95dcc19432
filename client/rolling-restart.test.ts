// rollingRestart against a scripted three-node cluster behind LockClient's transport seam, on a
// virtual clock (its sleep moves time; nothing here takes time). A node asked to restart is down
// for a few polls, then answers with a new bootId; a leader asked to restart hands leadership to
// another node first. Shown: followers first and the leader last, each back and caught up before
// the next, one leader change; a member still starting is waited for (regression: the rolling
// restart refused with unknown_member when a cluster's third node had not answered yet, found by
// the whole suite at load 94); a member that stays down, or is not replicating, fails it with
// nothing restarted; a token below admin fails it with nothing restarted; a node that never comes
// back fails it with restart_timeout.

import { describe, expect, it } from "vitest";
import type { NodeStatus } from "../protocol/status.ts";
import { LockClient } from "./lock-client.ts";
import { RollingRestartError, rollingRestart } from "./rolling-restart.ts";
import type { LockTransport, TransportAnswer, TransportRequest } from "./transport.ts";

const ids = ["n1", "n2", "n3"] as const;
const urlOf = (id: string) => `http://${id}.test:7000`;

interface ScriptedNode {
  bootId: number;
  /** downPolls: status polls left that find it down (a restart, or a node still starting). */
  downPolls: number;
  /** staysDown: never comes back. */
  staysDown: boolean;
  progressState: "replicate" | "probe";
}

/** ScriptedCluster: leader, commit index and the members' processes, as the transport answers them. */
class ScriptedCluster implements LockTransport {
  leader = "n1";
  term = 2;
  commitIndex = 100;
  restartPolls = 3;
  /** tokenRole: the role GET /auth/whoami names for the client's token. */
  tokenRole: "reader" | "locker" | "admin" = "admin";
  readonly restartsAsked: string[] = [];
  readonly nodes = new Map<string, ScriptedNode>(
    ids.map((id) => [id, { bootId: 1, downPolls: 0, staysDown: false, progressState: "replicate" as const }]),
  );

  async send(request: TransportRequest): Promise<TransportAnswer> {
    const id = new URL(request.node).hostname.split(".")[0] as string;
    const node = this.nodes.get(id) as ScriptedNode;
    if (node.staysDown || node.downPolls > 0) {
      node.downPolls = Math.max(0, node.downPolls - 1);
      throw new Error("connect ECONNREFUSED");
    }
    this.commitIndex += 5; // Bookings go on.
    if (request.path === "/auth/whoami") return json(200, { name: "ops", role: this.tokenRole });
    if (request.method === "POST" && request.path === "/admin/restart") {
      this.restartsAsked.push(id);
      if (this.leader === id) {
        this.leader = ids.find((other) => other !== id) as string; // The hand-over.
        this.term++;
      }
      node.bootId++;
      node.downPolls = this.restartPolls;
      return json(202, { nodeId: id, restarting: true, bootId: `boot-${node.bootId - 1}` });
    }
    return json(200, this.status(id, node));
  }

  private status(id: string, node: ScriptedNode): NodeStatus {
    const leads = this.leader === id;
    return {
      nodeId: id,
      pid: 1000 + node.bootId,
      bootId: `boot-${node.bootId}`,
      id,
      role: leads ? "leader" : "follower",
      term: this.term,
      votedFor: this.leader,
      leaderId: this.leader,
      commitIndex: this.commitIndex,
      appliedIndex: this.commitIndex,
      firstIndex: 1,
      lastIndex: this.commitIndex,
      snapshotIndex: 0,
      voters: [...ids],
      learners: [],
      progress: leads
        ? ids.map((peer) => ({
            id: peer,
            isLearner: false,
            matchIndex: this.commitIndex,
            nextIndex: this.commitIndex + 1,
            state: peer === id ? "replicate" : (this.nodes.get(peer) as ScriptedNode).progressState,
            recentActive: true,
          }))
        : [],
      peers: {},
      watch: { watchers: 0, oldestIndex: 0 },
      storage: { ok: true },
    };
  }
}

function json(status: number, body: unknown): TransportAnswer {
  return { status, body: JSON.stringify(body), leaderUrl: undefined };
}

function roll(cluster: ScriptedCluster, timeoutMs = 10_000) {
  let nowMs = 0;
  const progress: string[] = [];
  const client = new LockClient({
    nodes: ids.map(urlOf),
    apiToken: "t".repeat(16),
    transport: cluster,
    retriesMax: 0,
    now: () => nowMs,
    sleep: async (ms) => {
      nowMs += ms;
    },
  });
  const report = rollingRestart({
    client,
    nodes: ids.map(urlOf),
    restartTimeoutMs: timeoutMs,
    catchUpTimeoutMs: timeoutMs,
    pollMs: 100,
    onProgress: (message) => progress.push(message),
    now: () => nowMs,
    sleep: async (ms) => {
      nowMs += ms;
    },
  });
  return { report, progress };
}

describe("rollingRestart (scripted cluster, virtual clock)", () => {
  it("restarts the followers first and the leader last, each back and caught up before the next", async () => {
    const cluster = new ScriptedCluster();
    const { report } = roll(cluster);
    const done = await report;
    expect(cluster.restartsAsked).toEqual(["n2", "n3", "n1"]);
    expect(done.restarted.map((each) => [each.nodeId, each.wasLeader])).toEqual([
      ["n2", false],
      ["n3", false],
      ["n1", true],
    ]);
    expect(done.leaders).toEqual(["n1", "n2"]);
    for (const each of done.restarted) expect(each.backMs).toBeGreaterThan(0);
    expect(done.restarted.at(-1)?.leaderAfter).toBe("n2");
  });

  it("waits for a member that is still starting, then rolls (regression: it refused with unknown_member)", async () => {
    const cluster = new ScriptedCluster();
    (cluster.nodes.get("n3") as ScriptedNode).downPolls = 4;
    const { report, progress } = roll(cluster);
    expect((await report).restarted.map((each) => each.nodeId)).toEqual(["n2", "n3", "n1"]);
    expect(progress[0]).toMatch(/^waiting for the cluster: n3 is a member, but none of .* answered as it/);
  });

  it("fails without restarting anything when a member stays down, or is not replicating", async () => {
    const down = new ScriptedCluster();
    (down.nodes.get("n3") as ScriptedNode).staysDown = true;
    await expect(roll(down).report).rejects.toMatchObject({ name: "RollingRestartError", code: "unknown_member" });
    expect(down.restartsAsked).toEqual([]);
    const lagging = new ScriptedCluster();
    (lagging.nodes.get("n2") as ScriptedNode).progressState = "probe";
    const error = await roll(lagging).report.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RollingRestartError);
    expect(error).toMatchObject({ code: "not_ready", message: expect.stringContaining("n2 is not caught up") });
    expect(lagging.restartsAsked).toEqual([]);
  });

  it("refuses a token below admin before restarting anything (every node would answer 403)", async () => {
    const cluster = new ScriptedCluster();
    cluster.tokenRole = "locker";
    const error = await roll(cluster).report.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RollingRestartError);
    expect(error).toMatchObject({ code: "forbidden", message: expect.stringContaining("credential ops, of role locker") });
    expect(cluster.restartsAsked).toEqual([]);
  });

  it("fails with restart_timeout when a node asked to restart does not come back, and restarts no other", async () => {
    const cluster = new ScriptedCluster();
    cluster.restartPolls = 1_000_000;
    await expect(roll(cluster, 5000).report).rejects.toMatchObject({ code: "restart_timeout" });
    expect(cluster.restartsAsked).toEqual(["n2"]);
  });
});
