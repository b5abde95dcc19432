// Review tests: each one reproduces a bug found while reviewing the core against the Raft paper,
// Ongaro's thesis and etcd-io/raft. Each failed before its fix and now guards against its return.
import { describe, expect, it } from "vitest";
import type { RaftConfig } from "./config.ts";
import type { ConfChange, RaftMessage } from "./messages.ts";
import { nodeId } from "./messages.ts";
import { MemoryStorage } from "./storage.ts";
import { TestCluster } from "./testing/test-cluster.ts";

type ClusterConfig = Partial<Omit<RaftConfig, "id" | "random">>;

function makeCluster(size: number, config: ClusterConfig = {}): TestCluster {
  return new TestCluster({ size, config });
}

function status(cluster: TestCluster, id: string) {
  return cluster.node(id).rawNode.status();
}

/** settle delivers messages (oldest first) until the network is quiet, except those `drop` rejects. */
function settle(cluster: TestCluster, drop: (message: RaftMessage) => boolean = () => false): void {
  for (let taken = 0; cluster.inFlight.length > 0; taken++) {
    if (taken > 100_000) throw new Error("the network never went quiet");
    const message = cluster.inFlight.shift() as RaftMessage;
    if (!drop(message)) cluster.deliver(message);
  }
}

function elect(cluster: TestCluster, id: string): void {
  cluster.campaign(id);
  settle(cluster);
  expect(status(cluster, id).role).toBe("leader");
}

function proposeConfChange(cluster: TestCluster, id: string, change: ConfChange) {
  const node = cluster.node(id);
  const outcome = node.rawNode.proposeConfChange(change);
  cluster.processReady(node);
  return outcome;
}

describe("ReadIndex", () => {
  it("a read pending when the voters shrink to the leader alone is eventually served or dropped (liveness)", () => {
    // n1 leads {n1, n2}. A read starts; its heartbeat round is lost. Then n2 is removed: n1 is
    // now the only voter, so its own ack is a quorum, but ackReads only runs when a voter
    // answers a heartbeat, and no voter but n1 is left. The read waits forever.
    const cluster = makeCluster(2);
    elect(cluster, "n1");
    const n1 = cluster.node("n1");
    expect(n1.rawNode.readIndex(7)).toEqual({ kind: "queued" });
    cluster.processReady(n1);
    cluster.dropMatching((message) => message.type === "heartbeat");
    expect(proposeConfChange(cluster, "n1", { type: "remove_node", nodeId: nodeId("n2") }).kind).toBe("accepted");
    settle(cluster, (message) => message.type === "heartbeat");
    expect(status(cluster, "n1").voters).toEqual(["n1"]);
    expect(status(cluster, "n1").role).toBe("leader");
    for (let tick = 0; tick < 100; tick++) {
      cluster.tick(["n1"]);
      settle(cluster);
    }
    const answered = [...n1.readsServed.map((read) => read.requestId), ...n1.readsDropped];
    expect(answered).toContain(7);
  });
});

describe("RawNode.campaign", () => {
  it("campaign() on a leader is a no-op, as etcd ignores MsgHup on a leader (not a RaftInvariantError)", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    const n1 = cluster.node("n1");
    expect(() => n1.rawNode.campaign()).not.toThrow();
    cluster.processReady(n1);
    expect(status(cluster, "n1").role).toBe("leader");
  });

  it("campaign() on a leader without pre-vote is a no-op too", () => {
    const cluster = makeCluster(3, { preVote: false });
    elect(cluster, "n1");
    const n1 = cluster.node("n1");
    expect(() => n1.rawNode.campaign()).not.toThrow();
    cluster.processReady(n1);
    expect(status(cluster, "n1").role).toBe("leader");
  });
});

describe("membership: a leader that removes itself", () => {
  it("a two-voter cluster whose leader removed itself elects the survivor even if the commit notice is lost (liveness)", () => {
    // n1 leads {n1, n2} and proposes its own removal (R), then a command (X). n2 acks R, so R
    // commits; n1 applies R and steps down. The append that would tell n2 that R is committed is
    // lost, and so is X. n2 still sees {n1, n2} (membership takes effect on apply), so it needs
    // n1's vote; n1's log ends with X, so n2's log is not up to date and n1 refuses; n1 is not
    // a voter, so it never campaigns. No leader, ever. (The fuzz found it with a removed
    // promoted learner; thesis §4.2.2 has the survivors use C_new as soon as they hold it.)
    const cluster = makeCluster(2);
    elect(cluster, "n1");
    expect(proposeConfChange(cluster, "n1", { type: "remove_node", nodeId: nodeId("n1") }).kind).toBe("accepted");
    const removal = cluster.dropMatching(() => true);
    cluster.propose("n1", "x"); // Accepted today; a fix may refuse it while n1's removal is pending.
    cluster.dropMatching(() => true); // The append carrying X (if any) is lost.
    for (const message of removal) cluster.deliver(message); // n2 gets R and acks it.
    settle(cluster, (message) => message.to === nodeId("n2")); // R commits at n1; the news to n2 is lost.
    // n1 no longer counts itself, but stays leader (proposing nothing) until a quorum of the new
    // membership, n2, acknowledges a heartbeat carrying the commit index.
    expect(status(cluster, "n1").voters).toEqual(["n2"]);
    expect(cluster.propose("n1", "y")).toMatchObject({ kind: "dropped", reason: "leader_removal_pending" });
    for (let tick = 0; tick < 500 && status(cluster, "n2").role !== "leader"; tick++) {
      cluster.tick();
      settle(cluster);
    }
    expect(status(cluster, "n2").role).toBe("leader");
    expect(status(cluster, "n1").role).toBe("follower");
  });

  it("without pre-vote, the survivor's stale-term RequestVote gets no answer, so it never catches up (liveness)", () => {
    // Same shape with equal logs: n2 leads; n1 is cut off (and, without pre-vote, its term climbs);
    // n4 joins and is promoted, n1 and n3 are removed, then n2 removes itself and the commit
    // notice to n4 is lost. n4 sees {n2, n4} and needs n2's vote. n1 never learned it was removed:
    // it campaigns to n2 and n3 with ever higher terms, and n2 follows them. n4's requests carry a
    // lower term, and stepLowerTerm drops a stale RequestVote without answering, so n4 never
    // learns the term it must exceed (Figure 2: the reply carries currentTerm "for candidate to
    // update itself"). n1 and n4 climb at the same pace: no leader, ever.
    const cluster = makeCluster(3, { preVote: false });
    elect(cluster, "n2");
    cluster.isolate("n1");
    const step = (change: ConfChange): void => {
      expect(proposeConfChange(cluster, "n2", change).kind).toBe("accepted");
      settle(cluster);
      cluster.tick(["n2"], 2);
      settle(cluster);
    };
    step({ type: "add_learner", nodeId: nodeId("n4") });
    cluster.addNode(nodeId("n4"), new MemoryStorage());
    cluster.tick(["n2"], 2);
    settle(cluster);
    step({ type: "promote_learner", nodeId: nodeId("n4") });
    step({ type: "remove_node", nodeId: nodeId("n1") });
    step({ type: "remove_node", nodeId: nodeId("n3") });
    expect(status(cluster, "n4").voters).toEqual(["n2", "n4"]);
    expect(proposeConfChange(cluster, "n2", { type: "remove_node", nodeId: nodeId("n2") }).kind).toBe("accepted");
    const removalIndex = status(cluster, "n2").lastIndex;
    settle(cluster, (message) => message.type === "append_entries" && message.to === nodeId("n4") && message.leaderCommit >= removalIndex);
    expect(status(cluster, "n2").role).toBe("follower");
    expect(status(cluster, "n4").lastIndex).toBe(status(cluster, "n2").lastIndex); // Equal logs.
    cluster.tick(["n1"], 200); // Cut off, n1 campaigns again and again.
    cluster.dropMatching(() => true);
    cluster.heal();
    for (let tick = 0; tick < 2000 && cluster.leader() === undefined; tick++) {
      cluster.tick();
      settle(cluster);
    }
    expect(cluster.leader()?.id).toBe(nodeId("n4"));
  });
});
