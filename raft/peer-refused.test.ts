// RawNode.peerRefused: the host found nothing listening at a peer's address (a dial refused: the
// peer's process is gone). A follower whose leader that is forgets it at once: it grants the
// pre-votes the leader lease (thesis §4.2.3) would have had it ignore, and campaigns within a
// heartbeat interval plus the random part of its election timeout, instead of after a whole
// randomized election timeout of silence. Shown on a TestCluster (synchronous, seeded): the
// pre-vote answered, a dead leader replaced sooner over 20 seeds, a live leader kept although a
// follower was told it was gone (the other follower withholds its pre-vote), and reports that do
// not concern a follower's leader ignored.

import { describe, expect, it } from "vitest";
import { raftConfigDefaults } from "./config.ts";
import { nodeId, type RaftMessage } from "./messages.ts";
import { TestCluster } from "./testing/test-cluster.ts";

const electionTicks = raftConfigDefaults.electionTimeoutTicks;
const heartbeatTicks = raftConfigDefaults.heartbeatIntervalTicks;

/** electN1: a three-node cluster (seeded) whose leader is n1, its no-op applied everywhere. */
function electN1(seed = 1): TestCluster {
  const cluster = new TestCluster({ size: 3, seed });
  cluster.campaign("n1");
  cluster.stabilize();
  cluster.tick(["n1"], heartbeatTicks); // The followers learn the commit index.
  cluster.stabilize();
  expect(cluster.node("n1").rawNode.status().role).toBe("leader");
  return cluster;
}

function report(cluster: TestCluster, to: string, peer: string): void {
  const node = cluster.node(to);
  node.rawNode.peerRefused(nodeId(peer));
  cluster.processReady(node);
}

/** preVoteAnswers: n3 asks n2 alone for a pre-vote; n2's answers. */
function preVoteAnswers(cluster: TestCluster): RaftMessage[] {
  cluster.campaign("n3");
  const toN2 = cluster.inFlight.filter((message) => message.type === "request_vote" && message.to === "n2");
  cluster.inFlight = [];
  for (const message of toN2) cluster.deliver(message);
  const answers = cluster.inFlight.filter((message) => message.type === "request_vote_result" && message.from === "n2");
  cluster.inFlight = [];
  return answers;
}

/** ticksToNewLeader ticks n2 and n3 (n1 crashed) until one of them leads; bounded. */
function ticksToNewLeader(cluster: TestCluster): number {
  for (let ticks = 1; ticks <= 20 * electionTicks; ticks++) {
    cluster.tick(["n2", "n3"]);
    cluster.stabilize();
    if (cluster.leader() !== undefined) return ticks;
  }
  throw new Error("no new leader within 20 election timeouts");
}

describe("RawNode.peerRefused: a follower learns that its leader is gone", () => {
  it("grants a pre-vote at once that the leader lease made it ignore", () => {
    const cluster = electN1();
    expect(preVoteAnswers(cluster)).toEqual([]); // In the lease: ignored.
    report(cluster, "n2", "n1");
    expect(cluster.node("n2").rawNode.status()).toMatchObject({ role: "follower", leaderId: null, term: 2 });
    expect(preVoteAnswers(cluster)).toMatchObject([{ preVote: true, voteGranted: true }]);
  });

  it("replaces a dead leader within a heartbeat interval plus an election timeout, sooner than silence alone does", () => {
    for (let seed = 1; seed <= 20; seed++) {
      const runs: { ticks: number; term: number }[] = [];
      for (const told of [true, false]) {
        const cluster = electN1(seed);
        cluster.crash("n1");
        if (told) {
          report(cluster, "n2", "n1");
          report(cluster, "n3", "n1");
        }
        const ticks = ticksToNewLeader(cluster);
        runs.push({ ticks, term: cluster.leader()?.rawNode.status().term ?? 0 });
      }
      const [told, silence] = runs as [{ ticks: number; term: number }, { ticks: number; term: number }];
      // The same elections (split votes included: both timers firing in one tick), each sooner by
      // the base timeout less a heartbeat interval.
      expect(told.term).toBe(silence.term);
      expect(silence.ticks - told.ticks).toBe(electionTicks - heartbeatTicks);
      expect(silence.ticks).toBeGreaterThanOrEqual(electionTicks);
      if (told.term === 3) expect(told.ticks).toBeLessThanOrEqual(heartbeatTicks + electionTicks); // Won at the first try.
    }
  });

  it("cannot depose a live leader: the follower that still hears from it withholds its pre-vote", () => {
    const cluster = electN1();
    cluster.cutLink("n1", "n2"); // n2 hears nothing more from n1; n3 does.
    report(cluster, "n2", "n1"); // A false report, as if n1 had refused n2.
    for (let tick = 0; tick < 10 * electionTicks; tick++) {
      cluster.tick();
      cluster.stabilize();
    }
    expect(cluster.node("n1").rawNode.status()).toMatchObject({ role: "leader", term: 2 });
    expect(cluster.node("n3").rawNode.status()).toMatchObject({ role: "follower", term: 2, leaderId: "n1" });
    expect(cluster.node("n2").rawNode.status().term).toBe(2); // Its pre-votes failed: no term was raised.
  });

  it("is restored by its leader's next heartbeat after a stale report", () => {
    const cluster = electN1();
    report(cluster, "n2", "n1");
    cluster.tick(["n1"], heartbeatTicks);
    cluster.stabilize();
    expect(cluster.node("n2").rawNode.status()).toMatchObject({ role: "follower", term: 2, leaderId: "n1" });
  });

  it("ignores a report about a peer that is not the follower's leader, and a report to the leader", () => {
    const cluster = electN1();
    report(cluster, "n2", "n3");
    expect(cluster.node("n2").rawNode.status()).toMatchObject({ role: "follower", leaderId: "n1" });
    expect(preVoteAnswers(cluster)).toEqual([]); // Still in the lease.
    report(cluster, "n1", "n2");
    expect(cluster.node("n1").rawNode.status()).toMatchObject({ role: "leader", leaderId: "n1", term: 2 });
  });
});
