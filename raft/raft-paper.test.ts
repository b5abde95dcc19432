// Paper-anchored tests of the Raft core (after etcd's raft_paper_test.go): each test names one
// rule of the Raft paper (Ongaro & Ousterhout 2014, "§") or of Ongaro's thesis ("thesis §")
// and shows the core follows it. Most tests drive a TestCluster (synchronous, in-memory, with
// cuttable links and crashes), delivering messages one at a time where the order matters (the
// Figure 8 scenario is built step by step that way). Where a rule concerns one server's answer
// to one message, the message is written by hand, stepped into that server, and its reply is
// taken from the network. Where the simulator has a planted bug for a rule, the last block runs
// the same check with the bug on, to show the check would catch it.
import { describe, expect, it } from "vitest";
import type { RaftConfig } from "./config.ts";
import { RaftConfigError, raftConfigDefaults, validateConfig } from "./config.ts";
import type { AppendEntries, ConfChange, Entry, LogIndex, NodeId, RaftMessage, RequestVote, Term } from "./messages.ts";
import { entryBytes, nodeId } from "./messages.ts";
import { RawNode } from "./node.ts";
import type { PlantedBug } from "./planted-bugs.ts";
import { createSeededRandom } from "./random.ts";
import { MemoryStorage } from "./storage.ts";
import { TestCluster } from "./testing/test-cluster.ts";

// ---------------------------------------------------------------------------------------------
// Helpers.

type ClusterConfig = Partial<Omit<RaftConfig, "id" | "random">>;
type MessageOf<T extends RaftMessage["type"]> = Extract<RaftMessage, { type: T }>;

/** plain is Raft as in the paper: no pre-vote and no check-quorum (so no leader lease either). */
const plain: ClusterConfig = { preVote: false, checkQuorum: false };
const electionTicks = raftConfigDefaults.electionTimeoutTicks;
const heartbeatTicks = raftConfigDefaults.heartbeatIntervalTicks;

function makeCluster(size: number, config: ClusterConfig = {}, plantedBug?: PlantedBug): TestCluster {
  return new TestCluster({ size, config, ...(plantedBug === undefined ? {} : { plantedBug }) });
}

function status(cluster: TestCluster, id: string) {
  return cluster.node(id).rawNode.status();
}

function role(cluster: TestCluster, id: string): string {
  return status(cluster, id).role;
}

/**
 * settle delivers messages (oldest first) until the network is quiet and returns every message
 * taken off it, delivered or lost. Followers learn a new commit index from the leader's next append
 * or heartbeat (no message is sent for it alone), so when a follower's commit index lags its
 * leader's, the leader then sends one heartbeat round and that is delivered too.
 */
function settle(cluster: TestCluster): RaftMessage[] {
  const taken = deliverAll(cluster);
  const leader = cluster.leader();
  if (leader !== undefined && lagsCommit(cluster, leader.id)) {
    cluster.tick([leader.id], heartbeatTicks);
    taken.push(...deliverAll(cluster));
  }
  return taken;
}

function deliverAll(cluster: TestCluster): RaftMessage[] {
  const taken: RaftMessage[] = [];
  while (cluster.inFlight.length > 0) {
    if (taken.length > 100_000) throw new Error("the network never went quiet");
    const message = cluster.inFlight.shift() as RaftMessage;
    taken.push(message);
    cluster.deliver(message);
  }
  return taken;
}

/** lagsCommit: whether a reachable member's commit index is below what its leader could tell it. */
function lagsCommit(cluster: TestCluster, leader: string): boolean {
  const leaderStatus = status(cluster, leader);
  return leaderStatus.progress.some((peer) => {
    if (peer.id === leader || !cluster.nodes.has(peer.id) || cluster.isLinkCut(leader, peer.id)) return false;
    const follower = cluster.node(peer.id);
    if (follower.rawNode === undefined) return false;
    return follower.rawNode.status().commitIndex < Math.min(peer.matchIndex, leaderStatus.commitIndex);
  });
}

/** deliverWhile delivers messages one at a time, oldest first, while `keepGoing` holds and messages remain. */
function deliverWhile(cluster: TestCluster, keepGoing: () => boolean): void {
  while (cluster.inFlight.length > 0 && keepGoing()) cluster.deliver(cluster.inFlight.shift() as RaftMessage);
}

function ofType<T extends RaftMessage["type"]>(messages: readonly RaftMessage[], type: T): MessageOf<T>[] {
  return messages.filter((message): message is MessageOf<T> => message.type === type);
}

/** inject steps a hand-written message into its target and runs the target's Ready (so its replies go in flight). */
function inject(cluster: TestCluster, message: RaftMessage): void {
  const node = cluster.node(message.to);
  node.rawNode.step(message);
  cluster.processReady(node);
}

/** takeReplies removes from the network, and returns, the messages of `type` that `from` sent. */
function takeReplies<T extends RaftMessage["type"]>(cluster: TestCluster, from: string, type: T): MessageOf<T>[] {
  const replies = ofType(cluster.inFlight, type).filter((message) => message.from === from);
  cluster.inFlight = cluster.inFlight.filter((message) => !(replies as RaftMessage[]).includes(message));
  return replies;
}

/** elect makes `id` leader with every link up, and lets its no-op commit everywhere. */
function elect(cluster: TestCluster, id: string): void {
  cluster.campaign(id);
  settle(cluster);
  expect(role(cluster, id)).toBe("leader");
}

/** campaignUntilLeader campaigns again (a new term each time) until `id` wins, delivering only until it does. */
function campaignUntilLeader(cluster: TestCluster, id: string): void {
  for (let attempt = 0; attempt < 5 && role(cluster, id) !== "leader"; attempt++) {
    cluster.campaign(id);
    deliverWhile(cluster, () => role(cluster, id) !== "leader");
  }
  expect(role(cluster, id)).toBe("leader");
}

/** heartbeat lets `leader` send one round of heartbeats and the network settle. */
function heartbeat(cluster: TestCluster, leader: string): RaftMessage[] {
  cluster.tick([leader], heartbeatTicks);
  return settle(cluster);
}

/** tickUntil ticks `ids` one tick at a time, settling after each, until `done`; returns the ticks it took. */
function tickUntil(cluster: TestCluster, ids: readonly string[], done: () => boolean, ticksMax = 200): number {
  for (let ticks = 1; ticks <= ticksMax; ticks++) {
    cluster.tick(ids);
    settle(cluster);
    if (done()) return ticks;
  }
  throw new Error(`not done after ${ticksMax} ticks`);
}

function voteRequest(
  from: string,
  to: string,
  term: Term,
  lastLogIndex: LogIndex,
  lastLogTerm: Term,
  flags: { preVote?: boolean; leadershipTransfer?: boolean } = {},
): RequestVote {
  return {
    type: "request_vote",
    from: nodeId(from),
    to: nodeId(to),
    term,
    lastLogIndex,
    lastLogTerm,
    preVote: flags.preVote ?? false,
    leadershipTransfer: flags.leadershipTransfer ?? false,
  };
}

function append(
  from: string,
  to: string,
  term: Term,
  prev: { index: LogIndex; term: Term },
  entries: Entry[],
  leaderCommit: LogIndex,
): AppendEntries {
  return {
    type: "append_entries",
    from: nodeId(from),
    to: nodeId(to),
    term,
    prevLogIndex: prev.index,
    prevLogTerm: prev.term,
    entries,
    leaderCommit,
  };
}

function normal(index: LogIndex, term: Term, data: string): Entry {
  return { kind: "normal", index, term, data: new TextEncoder().encode(data) };
}

/** termsOf lists the terms of `id`'s log entries from `lo` to its last index. */
function termsOf(cluster: TestCluster, id: string, lo = 1): (Term | undefined)[] {
  const terms: (Term | undefined)[] = [];
  for (let index = lo; index <= status(cluster, id).lastIndex; index++) terms.push(cluster.node(id).rawNode.entryTerm(index));
  return terms;
}

/** votersHolding counts the voters that the leader knows hold `index` (itself included). */
function votersHolding(cluster: TestCluster, leader: string, index: LogIndex): number {
  return status(cluster, leader).progress.filter((peer) => !peer.isLearner && peer.matchIndex >= index).length;
}

function proposeAll(cluster: TestCluster, leader: string, data: readonly string[]): void {
  for (const item of data) expect(cluster.propose(leader, item).kind).toBe("accepted");
}

function appendsTo(messages: readonly RaftMessage[], to: string): AppendEntries[] {
  return ofType(messages, "append_entries").filter((message) => message.to === to);
}

function transfer(cluster: TestCluster, from: string, to: string) {
  const node = cluster.node(from);
  const outcome = node.rawNode.transferLeadership(nodeId(to));
  cluster.processReady(node);
  return outcome;
}

function read(cluster: TestCluster, id: string, requestId: number) {
  const node = cluster.node(id);
  const outcome = node.rawNode.readIndex(requestId);
  cluster.processReady(node);
  return outcome;
}

function proposeChange(cluster: TestCluster, leader: string, change: ConfChange) {
  const node = cluster.node(leader);
  const outcome = node.rawNode.proposeConfChange(change);
  cluster.processReady(node);
  return outcome;
}

// ---------------------------------------------------------------------------------------------
// Scenarios shared by the tests of a rule and by the planted-bug block at the end.

/** staleLeaderScenario: n1 leads term 2; n2 moves on to term 3 (it saw a vote request); then n1 sends n2 an append of term 2. */
function staleLeaderScenario(plantedBug?: PlantedBug): { cluster: TestCluster; sent: RaftMessage[] } {
  const cluster = makeCluster(3, plain, plantedBug);
  elect(cluster, "n1");
  inject(cluster, voteRequest("n3", "n2", 3, 1, 1)); // n3's log is behind: n2 moves to term 3 but refuses.
  cluster.inFlight = [];
  cluster.propose("n1", "stale");
  return { cluster, sent: settle(cluster) };
}

/** conflictScenario gives follower n2 entries 5..7 of term 2 (from leader n1), then an append of term 3 from n3 that conflicts at 6. */
function conflictScenario(plantedBug?: PlantedBug): TestCluster {
  const cluster = makeCluster(3, {}, plantedBug);
  elect(cluster, "n1");
  inject(cluster, append("n1", "n2", 2, { index: 4, term: 2 }, [normal(5, 2, "a"), normal(6, 2, "b"), normal(7, 2, "c")], 4));
  takeReplies(cluster, "n2", "append_entries_result");
  inject(cluster, append("n3", "n2", 3, { index: 5, term: 2 }, [normal(6, 3, "d")], 4));
  return cluster;
}

/** staleCandidateScenario: n3 misses a committed entry, then campaigns. */
function staleCandidateScenario(plantedBug?: PlantedBug): TestCluster {
  const cluster = makeCluster(3, plain, plantedBug);
  elect(cluster, "n1");
  cluster.isolate("n3");
  cluster.propose("n1", "committed");
  settle(cluster);
  expect(status(cluster, "n1").commitIndex).toBe(5);
  cluster.heal();
  cluster.campaign("n3");
  settle(cluster);
  return cluster;
}

// Five servers; entries 1..5 are the founding entries of term 1. One entry per append and one
// append in flight per follower, so the scenario can stop between two entries. The contested
// entries are 6@2 (n1's no-op) and 7@2 ("x").
const figure8Config: ClusterConfig = { ...plain, entriesPerAppendMax: 1, inflightAppendsMax: 1 };

/**
 * figure8UpToC plays Figure 8 (a) to (c) and stops at the moment n1, leader of term 4, knows
 * that a majority (n1, n2, n3) holds 7@2 while its own 8@4 is on n1 and n2 only.
 */
function figure8UpToC(plantedBug?: PlantedBug): TestCluster {
  const cluster = makeCluster(5, figure8Config, plantedBug);
  // (a) n1 leads term 2 and replicates 6@2 and 7@2 to n2 only.
  cluster.campaign("n1");
  deliverWhile(cluster, () => role(cluster, "n1") !== "leader");
  cluster.partition(["n1", "n2"], ["n3", "n4", "n5"]);
  settle(cluster);
  cluster.propose("n1", "x");
  settle(cluster);
  for (const id of ["n1", "n2"]) expect(termsOf(cluster, id, 6)).toEqual([2, 2]);
  for (const id of ["n3", "n4", "n5"]) expect(status(cluster, id).lastIndex).toBe(5);
  // (b) n1 crashes; n5 is elected for term 3 by n3, n4 and itself, appends 6@3 and crashes before sending it.
  cluster.crash("n1");
  cluster.heal();
  cluster.campaign("n5");
  deliverWhile(cluster, () => role(cluster, "n5") !== "leader");
  expect(status(cluster, "n5").term).toBe(3);
  cluster.crash("n5");
  expect(cluster.node("n5").storage.term(6)).toBe(3);
  // (c) n1 restarts, is elected for term 4 (by n2 and n3) and replicates 6@2 and 7@2 to n3.
  cluster.restart("n1");
  cluster.isolatePair("n1", "n4");
  campaignUntilLeader(cluster, "n1");
  expect(status(cluster, "n1").term).toBe(4);
  deliverWhile(cluster, () => votersHolding(cluster, "n1", 7) < 3);
  expect(votersHolding(cluster, "n1", 7)).toBe(3);
  expect(votersHolding(cluster, "n1", 8)).toBe(2);
  expect(termsOf(cluster, "n3", 6)).toEqual([2, 2]);
  return cluster;
}

/** voteTwiceCheck: n1 votes for n2 in term 5, restarts, then n3 asks for n1's vote in term 5. */
function voteTwiceCheck(plantedBug?: PlantedBug): { persisted: NodeId | null; grantedAgain: boolean } {
  const cluster = makeCluster(3, plain, plantedBug);
  inject(cluster, voteRequest("n2", "n1", 5, 3, 1));
  takeReplies(cluster, "n1", "request_vote_result");
  const persisted = cluster.node("n1").storage.hardStateNow().votedFor;
  cluster.crash("n1");
  cluster.restart("n1");
  inject(cluster, voteRequest("n3", "n1", 5, 3, 1));
  const grantedAgain = takeReplies(cluster, "n1", "request_vote_result").some((reply) => reply.voteGranted);
  return { persisted, grantedAgain };
}

// ---------------------------------------------------------------------------------------------
// §5.2 Leader election.

describe("§5.2 leader election", () => {
  it("§5.2 a server grants at most one vote per term, first come first served", () => {
    const cluster = makeCluster(3, plain);
    inject(cluster, voteRequest("n2", "n1", 2, 3, 1));
    expect(takeReplies(cluster, "n1", "request_vote_result")).toMatchObject([{ to: "n2", term: 2, voteGranted: true }]);
    inject(cluster, voteRequest("n3", "n1", 2, 3, 1)); // Just as up to date, but second.
    expect(takeReplies(cluster, "n1", "request_vote_result")).toMatchObject([{ to: "n3", term: 2, voteGranted: false }]);
    inject(cluster, voteRequest("n2", "n1", 2, 3, 1)); // A retransmitted request from the one it voted for.
    expect(takeReplies(cluster, "n1", "request_vote_result")).toMatchObject([{ to: "n2", voteGranted: true }]);
    expect(status(cluster, "n1").votedFor).toBe("n2");
  });

  it("§5.2 a vote binds one term only: in a later term the server may vote again", () => {
    const cluster = makeCluster(3, plain);
    inject(cluster, voteRequest("n2", "n1", 2, 3, 1));
    inject(cluster, voteRequest("n3", "n1", 3, 3, 1));
    expect(takeReplies(cluster, "n1", "request_vote_result")).toMatchObject([
      { to: "n2", term: 2, voteGranted: true },
      { to: "n3", term: 3, voteGranted: true },
    ]);
    expect(status(cluster, "n1").votedFor).toBe("n3");
  });

  it("§5.2 election timeouts are drawn at random from [e, 2e), so servers rarely time out together", () => {
    const timeouts = new Set<number>();
    for (let seed = 1; seed <= 200; seed++) {
      // A one-server cluster elects itself the moment its timeout fires: the ticks taken are its timeout.
      const cluster = new TestCluster({ size: 1, seed });
      timeouts.add(tickUntil(cluster, ["n1"], () => role(cluster, "n1") === "leader", 3 * electionTicks));
    }
    const spread = [...timeouts].sort((a, b) => a - b);
    expect(spread).toEqual(Array.from({ length: electionTicks }, (_, offset) => electionTicks + offset));
  });

  it("§5.2 a follower that hears from no leader for its election timeout starts an election in a new term", () => {
    const cluster = makeCluster(3, plain);
    cluster.isolate("n1");
    const ticks = tickUntil(cluster, ["n1"], () => role(cluster, "n1") === "candidate");
    expect(ticks).toBeGreaterThanOrEqual(electionTicks);
    expect(ticks).toBeLessThan(2 * electionTicks);
    expect(status(cluster, "n1")).toMatchObject({ term: 2, votedFor: "n1" });
  });

  it("§5.2 a candidate wins once a majority of the voters grant their vote, and not before", () => {
    const cluster = makeCluster(5, plain);
    cluster.partition(["n1", "n2"], ["n3", "n4", "n5"]);
    cluster.campaign("n1");
    settle(cluster);
    expect(role(cluster, "n1")).toBe("candidate"); // 2 of 5.
    cluster.partition(["n1", "n2", "n3"], ["n4", "n5"]);
    cluster.campaign("n1");
    settle(cluster);
    expect(role(cluster, "n1")).toBe("leader"); // 3 of 5.
    expect(status(cluster, "n1").term).toBe(3);
    expect(status(cluster, "n3").leaderId).toBe("n1");
  });

  it("§5.2 a candidate that hears from a leader of its own term steps down and follows it", () => {
    const cluster = makeCluster(3, plain);
    cluster.isolate("n1");
    cluster.campaign("n1");
    expect(status(cluster, "n1")).toMatchObject({ role: "candidate", term: 2 });
    inject(cluster, append("n2", "n1", 2, { index: 3, term: 1 }, [{ kind: "noop", index: 4, term: 2 }], 3));
    expect(status(cluster, "n1")).toMatchObject({ role: "follower", term: 2, leaderId: "n2", lastIndex: 4 });
  });

  it("§5.2 a candidate that sees a higher term steps down to follower in that term", () => {
    const cluster = makeCluster(3, plain);
    cluster.isolate("n1");
    cluster.campaign("n1");
    inject(cluster, {
      type: "request_vote_result",
      from: nodeId("n2"),
      to: nodeId("n1"),
      term: 7,
      preVote: false,
      voteGranted: false,
    });
    expect(status(cluster, "n1")).toMatchObject({ role: "follower", term: 7, votedFor: null });
  });

  it("§5.2 a split vote elects no one; a new election in a higher term follows", () => {
    const cluster = makeCluster(4, plain);
    // n1 and n2 campaign in the same term; n3 hears only n1 and n4 only n2: two votes each of four.
    cluster.cutLink("n1", "n4");
    cluster.cutLink("n2", "n3");
    cluster.campaign("n1");
    cluster.campaign("n2");
    settle(cluster);
    for (const id of ["n1", "n2"]) expect(status(cluster, id)).toMatchObject({ role: "candidate", term: 2 });
    expect(cluster.leader()).toBeUndefined();
    cluster.heal();
    tickUntil(cluster, cluster.ids(), () => cluster.leader() !== undefined);
    const leader = cluster.leader();
    expect(leader).toBeDefined();
    expect(leader?.rawNode.status().term).toBeGreaterThan(2);
  });
});

// ---------------------------------------------------------------------------------------------
// §5.1 Terms.

describe("§5.1 terms", () => {
  it("§5.1 a server rejects an AppendEntries from an older term and does not append its entries", () => {
    const { cluster, sent } = staleLeaderScenario();
    expect(cluster.node("n2").rawNode.entryTerm(5)).toBeUndefined();
    const answers = ofType(sent, "append_entries_result").filter((message) => message.from === "n2");
    expect(answers).toMatchObject([{ success: false, term: 3 }]);
  });

  it("§5.1 a leader that learns of a higher term from a reply becomes a follower in that term", () => {
    const { cluster } = staleLeaderScenario();
    expect(status(cluster, "n1")).toMatchObject({ role: "follower", term: 3, leaderId: null });
  });

  it("§5.1 a vote request from an older term is not granted", () => {
    const cluster = makeCluster(3, plain);
    inject(cluster, voteRequest("n2", "n1", 4, 3, 1));
    takeReplies(cluster, "n1", "request_vote_result");
    inject(cluster, voteRequest("n3", "n1", 3, 9, 1));
    expect(takeReplies(cluster, "n1", "request_vote_result").filter((reply) => reply.voteGranted)).toEqual([]);
    expect(status(cluster, "n1")).toMatchObject({ term: 4, votedFor: "n2" });
  });

  it("§5.1 a leader that receives a heartbeat of a higher term becomes a follower of its sender", () => {
    const cluster = makeCluster(3, plain);
    elect(cluster, "n1");
    inject(cluster, { type: "heartbeat", from: nodeId("n3"), to: nodeId("n1"), term: 9, commitIndex: 4, readContext: 0 });
    expect(status(cluster, "n1")).toMatchObject({ role: "follower", term: 9, leaderId: "n3" });
  });
});

// ---------------------------------------------------------------------------------------------
// §5.3 Log replication.

describe("§5.3 log replication", () => {
  it("§5.3 a follower rejects an append whose prevLogIndex it does not hold, and hints where its log ends", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    inject(cluster, append("n1", "n2", 2, { index: 6, term: 2 }, [normal(7, 2, "x")], 4));
    expect(takeReplies(cluster, "n2", "append_entries_result")).toMatchObject([
      { success: false, rejectedIndex: 6, hintIndex: 4, hintTerm: 2 },
    ]);
    expect(status(cluster, "n2").lastIndex).toBe(4);
  });

  it("§5.3 a follower rejects an append whose prevLogTerm differs from its entry at prevLogIndex", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    inject(cluster, append("n1", "n2", 2, { index: 4, term: 1 }, [normal(5, 2, "x")], 4));
    expect(takeReplies(cluster, "n2", "append_entries_result")).toMatchObject([
      { success: false, rejectedIndex: 4, hintIndex: 3, hintTerm: 1 },
    ]);
    expect(status(cluster, "n2").lastIndex).toBe(4);
  });

  it("§5.3 a conflicting entry and all that follow it are deleted, in the core and in durable storage", () => {
    const cluster = conflictScenario();
    expect(takeReplies(cluster, "n2", "append_entries_result")).toMatchObject([{ success: true, matchIndex: 6, term: 3 }]);
    expect(termsOf(cluster, "n2", 4)).toEqual([2, 2, 3]);
    const storage = cluster.node("n2").storage;
    expect(storage.lastIndex()).toBe(6);
    expect(storage.term(6)).toBe(3);
  });

  it("§5.3 a follower sets commitIndex = min(leaderCommit, index of the last new entry)", () => {
    const cluster = conflictScenario();
    // n2 now holds 5@2 and 6@3. An append that proves only up to 5 may not commit 6, whatever the leader's commit.
    inject(cluster, append("n3", "n2", 3, { index: 5, term: 2 }, [], 6));
    expect(status(cluster, "n2").commitIndex).toBe(5);
    inject(cluster, append("n3", "n2", 3, { index: 6, term: 3 }, [], 6));
    expect(status(cluster, "n2").commitIndex).toBe(6);
    expect(cluster.node("n2").appliedData).toEqual(["a", "d"]);
  });

  it("§5.3 the leader's commit index reaches the followers, which then apply the entry", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    cluster.propose("n1", "x");
    cluster.deliver(cluster.inFlight.shift() as RaftMessage); // The append to n2 ...
    cluster.deliver(cluster.inFlight.shift() as RaftMessage); // ... and to n3.
    expect(status(cluster, "n2")).toMatchObject({ lastIndex: 5, commitIndex: 4 });
    expect(cluster.node("n2").appliedData).toEqual([]);
    cluster.deliver(cluster.inFlight.shift() as RaftMessage); // n2's acknowledgement: a majority holds 5.
    expect(status(cluster, "n1").commitIndex).toBe(5);
    expect(cluster.node("n1").appliedData).toEqual(["x"]);
    expect(status(cluster, "n2").commitIndex).toBe(4);
    settle(cluster);
    for (const id of ["n2", "n3"]) {
      expect(status(cluster, id).commitIndex).toBe(5);
      expect(cluster.node(id).appliedData).toEqual(["x"]);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// §5.3 fast backtracking: the follower's hint skips a whole conflicting term per round trip.

describe("§5.3 fast backtracking", () => {
  /**
   * n1 leads term 2, is cut off and appends 25 entries of term 2 (5..29) that nobody else gets.
   * n2 leads term 3 and commits entries 5..24 of term 3 with n3; n3 then leads term 4 (noop
   * 25@4). When the partition heals, n3 probes n1 at 24@3, where n1 holds 24@2.
   */
  function divergedScenario(): { cluster: TestCluster; leaderTermsBefore: (Term | undefined)[]; sent: RaftMessage[] } {
    const cluster = makeCluster(3, plain);
    elect(cluster, "n1");
    cluster.isolate("n1");
    proposeAll(
      cluster,
      "n1",
      Array.from({ length: 25 }, (_, position) => `old${position}`),
    );
    settle(cluster);
    elect(cluster, "n2");
    proposeAll(
      cluster,
      "n2",
      Array.from({ length: 19 }, (_, position) => `new${position}`),
    );
    settle(cluster);
    elect(cluster, "n3");
    expect(status(cluster, "n3")).toMatchObject({ term: 4, lastIndex: 25, commitIndex: 25 });
    const leaderTermsBefore = termsOf(cluster, "n3");
    cluster.heal();
    const sent = heartbeat(cluster, "n3");
    return { cluster, leaderTermsBefore, sent };
  }

  it("§5.3 the leader skips all 20 conflicting entries of term 3 after a single rejection", () => {
    const { sent } = divergedScenario();
    const rejections = ofType(sent, "append_entries_result").filter((message) => message.from === "n1" && !message.success);
    expect(rejections).toHaveLength(1);
    expect(rejections[0]).toMatchObject({ rejectedIndex: 24, hintTerm: 2 });
    // The next append starts right after the last entry both logs share (4@2).
    const appends = appendsTo(sent, "n1");
    expect(appends.map((message) => message.prevLogIndex)).toContain(4);
  });

  it("§5.3 the follower's log ends up identical to the leader's", () => {
    const { cluster } = divergedScenario();
    expect(termsOf(cluster, "n1")).toEqual(termsOf(cluster, "n3"));
    heartbeat(cluster, "n3");
    expect(status(cluster, "n1").commitIndex).toBe(25);
    expect(cluster.node("n1").appliedData).toEqual(cluster.node("n3").appliedData);
    expect(cluster.node("n1").appliedData.some((data) => data.startsWith("old"))).toBe(false);
  });

  it("§5.3 Leader Append-Only: a leader never overwrites or deletes entries in its own log", () => {
    const { cluster, leaderTermsBefore } = divergedScenario();
    expect(role(cluster, "n3")).toBe("leader");
    expect(termsOf(cluster, "n3")).toEqual(leaderTermsBefore);
  });
});

// ---------------------------------------------------------------------------------------------
// §5.4.1 Election restriction.

describe("§5.4.1 election restriction", () => {
  // n2 holds entries 1..4, the last of term 2.
  it.each<[string, LogIndex, Term, boolean]>([
    ["a vote is denied to a candidate whose last term is lower, however long its log", 40, 1, false],
    ["a vote is denied to a candidate with the same last term and a shorter log", 3, 2, false],
    ["a vote is granted to a candidate whose log is exactly as up to date", 4, 2, true],
    ["a vote is granted to a candidate with the same last term and a longer log", 9, 2, true],
    ["a vote is granted to a candidate whose last term is higher, however short its log", 2, 3, true],
  ])("§5.4.1 %s", (_name, lastLogIndex, lastLogTerm, granted) => {
    const cluster = makeCluster(3, plain);
    elect(cluster, "n1");
    inject(cluster, voteRequest("n3", "n2", 5, lastLogIndex, lastLogTerm));
    expect(takeReplies(cluster, "n2", "request_vote_result")).toMatchObject([{ term: 5, voteGranted: granted }]);
    expect(status(cluster, "n2").votedFor).toBe(granted ? "n3" : null);
  });

  it("§5.4.1 a server that misses a committed entry cannot be elected", () => {
    const cluster = staleCandidateScenario();
    expect(role(cluster, "n3")).not.toBe("leader");
    tickUntil(cluster, cluster.ids(), () => cluster.leader() !== undefined);
    const leader = cluster.leader();
    expect(leader?.id).not.toBe("n3");
    expect(leader?.rawNode.entryTerm(5)).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------------
// §5.4.2 Committing entries from previous terms (Figure 8).

describe("§5.4.2 committing entries from previous terms (Figure 8)", () => {
  it("§5.4.2 a leader does not commit an entry of an earlier term because a majority holds it", () => {
    const cluster = figure8UpToC();
    expect(status(cluster, "n1").commitIndex).toBe(5);
    for (const id of ["n1", "n2", "n3"]) expect(cluster.node(id).appliedData).not.toContain("x");
  });

  it("§5.4.2 Figure 8 (d): such an entry can still be overwritten by a later leader, so committing it would have been unsafe", () => {
    const cluster = figure8UpToC();
    cluster.crash("n1");
    cluster.restart("n5");
    cluster.heal();
    campaignUntilLeader(cluster, "n5"); // Votes from n3 and n4: 6@3 is more up to date than 7@2.
    settle(cluster);
    expect(status(cluster, "n5")).toMatchObject({ term: 5, commitIndex: 7 });
    for (const id of ["n2", "n3", "n4"]) expect(termsOf(cluster, id, 6)).toEqual([3, 5]);
    for (const node of cluster.nodes.values()) expect(node.appliedData).not.toContain("x");
  });

  it("§5.4.2 Figure 8 (e): once an entry of the leader's own term commits, the earlier entries commit with it", () => {
    const cluster = figure8UpToC();
    settle(cluster); // 8@4 reaches n3.
    expect(status(cluster, "n1").commitIndex).toBe(8);
    for (const id of ["n1", "n2", "n3"]) {
      expect(status(cluster, id).commitIndex).toBe(8);
      expect(cluster.node(id).appliedData).toEqual(["x"]);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// §8 Client interaction: the new leader's no-op.

describe("§8 no-op on election", () => {
  it("§8 a new leader appends a no-op entry of its term at once, and commits it", () => {
    const cluster = makeCluster(3);
    cluster.campaign("n1");
    deliverWhile(cluster, () => role(cluster, "n1") !== "leader");
    expect(status(cluster, "n1")).toMatchObject({ lastIndex: 4, commitIndex: 3 });
    expect(cluster.node("n1").storage.entries(4, 5, Number.MAX_SAFE_INTEGER)).toEqual([{ kind: "noop", index: 4, term: 2 }]);
    settle(cluster);
    for (const id of cluster.ids()) expect(status(cluster, id).commitIndex).toBe(4);
  });
});

// ---------------------------------------------------------------------------------------------
// Flow control: batching, bounded pipelining and the bound on uncommitted entries.

describe("flow control", () => {
  /** catchUpAfterIsolation: n3 misses `data`, then comes back; returns the messages of its catching up. */
  function catchUpAfterIsolation(config: ClusterConfig, data: readonly string[]): { cluster: TestCluster; sent: RaftMessage[] } {
    const cluster = makeCluster(3, config);
    elect(cluster, "n1");
    cluster.isolate("n3");
    proposeAll(cluster, "n1", data);
    settle(cluster);
    cluster.heal();
    const sent = heartbeat(cluster, "n1");
    expect(cluster.node("n3").appliedData).toEqual(data);
    return { cluster, sent };
  }

  it("batching: no AppendEntries carries more than entriesPerAppendMax entries", () => {
    const data = Array.from({ length: 10 }, (_, position) => `e${position}`);
    const { sent } = catchUpAfterIsolation({ entriesPerAppendMax: 3 }, data);
    const sizes = appendsTo(sent, "n3").map((message) => message.entries.length);
    expect(Math.max(...sizes)).toBe(3);
    expect(sizes.filter((size) => size > 0).length).toBeGreaterThanOrEqual(4);
  });

  it("batching: no AppendEntries carries more than appendBytesMax of entries, except a single larger entry", () => {
    const small = "s".repeat(50); // 74 bytes on the wire: two fit in 200, three do not.
    const big = "b".repeat(500);
    const data = [small, small, small, big, small, small, small];
    const { sent } = catchUpAfterIsolation({ appendBytesMax: 200 }, data);
    const batches = appendsTo(sent, "n3").filter((message) => message.entries.length > 0);
    for (const message of batches) {
      const bytes = message.entries.reduce((sum, item) => sum + entryBytes(item), 0);
      if (message.entries.length > 1) expect(bytes).toBeLessThanOrEqual(200);
    }
    expect(Math.max(...batches.map((message) => message.entries.length))).toBe(2);
    const bigBatch = batches.find((message) => message.entries.some((item) => entryBytes(item) > 200));
    expect(bigBatch?.entries).toHaveLength(1);
  });

  it("pipelining: at most inflightAppendsMax unacknowledged appends go to a silent follower", () => {
    const cluster = makeCluster(3, { inflightAppendsMax: 4 });
    elect(cluster, "n1");
    cluster.isolate("n3");
    const sent: RaftMessage[] = [];
    for (let position = 0; position < 10; position++) {
      cluster.propose("n1", `p${position}`);
      sent.push(...settle(cluster));
    }
    expect(appendsTo(sent, "n3").filter((message) => message.entries.length > 0)).toHaveLength(4);
    expect(appendsTo(sent, "n2").filter((message) => message.entries.length > 0)).toHaveLength(10); // n2 answers, so it is not throttled.
    cluster.heal();
    heartbeat(cluster, "n1");
    heartbeat(cluster, "n1");
    expect(cluster.node("n3").appliedData).toHaveLength(10);
  });

  it("pipelining: appends to a silent follower stop once inflightBytesMax bytes are unacknowledged", () => {
    const cluster = makeCluster(3, { inflightBytesMax: 200 });
    elect(cluster, "n1");
    cluster.isolate("n3");
    const sent: RaftMessage[] = [];
    for (let position = 0; position < 6; position++) {
      cluster.propose("n1", "d".repeat(76)); // 100 bytes on the wire.
      sent.push(...settle(cluster));
    }
    // The first two appends bring the window to 200 bytes; it is then full.
    expect(appendsTo(sent, "n3").filter((message) => message.entries.length > 0)).toHaveLength(2);
  });

  it("uncommittedEntriesMax: a leader drops proposals beyond that many uncommitted entries", () => {
    const cluster = makeCluster(3, { uncommittedEntriesMax: 3 });
    elect(cluster, "n1");
    cluster.isolate("n1");
    expect(["a", "b", "c"].map((data) => cluster.propose("n1", data).kind)).toEqual(["accepted", "accepted", "accepted"]);
    expect(cluster.propose("n1", "d")).toEqual({ kind: "dropped", reason: "too_many_uncommitted_entries" });
    expect(status(cluster, "n1").lastIndex).toBe(7);
    cluster.heal();
    heartbeat(cluster, "n1");
    expect(status(cluster, "n1").commitIndex).toBe(7);
    expect(cluster.propose("n1", "e").kind).toBe("accepted");
    settle(cluster);
    expect(cluster.node("n2").appliedData).toEqual(["a", "b", "c", "e"]);
  });
});

// ---------------------------------------------------------------------------------------------
// thesis §9.6 Pre-vote and thesis §6.2 check-quorum.

describe("thesis §9.6 pre-vote", () => {
  /** partitionFollower cuts n3 off for 6 election timeouts while the others keep working. */
  function partitionFollower(config: ClusterConfig): TestCluster {
    const cluster = makeCluster(3, config);
    elect(cluster, "n1");
    cluster.isolate("n3");
    for (let tick = 0; tick < 6 * electionTicks; tick++) {
      cluster.tick();
      settle(cluster);
      if (tick === 5) cluster.propose("n1", "while-away");
    }
    return cluster;
  }

  it("thesis §9.6 a partitioned server does not raise its term: it cannot win a pre-vote", () => {
    const cluster = partitionFollower({});
    expect(status(cluster, "n3")).toMatchObject({ term: 2, role: "pre_candidate" });
  });

  it("thesis §9.6 without pre-vote the same partitioned server does raise its term (the disruption pre-vote prevents)", () => {
    const cluster = partitionFollower({ preVote: false });
    expect(status(cluster, "n3").term).toBeGreaterThan(2);
  });

  it("thesis §9.6 on rejoining, the server does not disrupt the leader and catches up", () => {
    const cluster = partitionFollower({});
    cluster.heal();
    for (let tick = 0; tick < 6 * electionTicks; tick++) {
      cluster.tick();
      settle(cluster);
    }
    expect(status(cluster, "n1")).toMatchObject({ role: "leader", term: 2 });
    expect(status(cluster, "n3")).toMatchObject({ role: "follower", term: 2, leaderId: "n1" });
    expect(cluster.node("n3").appliedData).toEqual(["while-away"]);
  });
});

describe("thesis §6.2 check-quorum", () => {
  it("thesis §6.2 a leader cut off from the majority steps down within two election timeouts", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    cluster.isolate("n1");
    const ticks = tickUntil(cluster, ["n1"], () => role(cluster, "n1") !== "leader");
    expect(ticks).toBeGreaterThan(electionTicks); // It heard from both followers just before the cut.
    expect(ticks).toBeLessThanOrEqual(2 * electionTicks);
    expect(status(cluster, "n1")).toMatchObject({ role: "follower", term: 2, leaderId: null });
  });

  it("thesis §6.2 a leader that hears from a majority stays leader", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    cluster.isolate("n3");
    for (let tick = 0; tick < 10 * electionTicks; tick++) {
      cluster.tick(["n1", "n2"]);
      settle(cluster);
    }
    expect(status(cluster, "n1")).toMatchObject({ role: "leader", term: 2 });
  });

  it("thesis §4.2.3 a follower that heard from its leader within the election timeout ignores vote requests (the lease)", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    inject(cluster, voteRequest("n3", "n2", 3, 4, 2));
    expect(takeReplies(cluster, "n2", "request_vote_result")).toEqual([]);
    expect(status(cluster, "n2")).toMatchObject({ term: 2, leaderId: "n1" });
    // Once the leader has been silent for an election timeout, the lease is over.
    cluster.isolate("n1");
    cluster.tick(["n2"], electionTicks);
    cluster.inFlight = [];
    inject(cluster, voteRequest("n3", "n2", 3, 4, 2));
    expect(takeReplies(cluster, "n2", "request_vote_result")).toMatchObject([{ term: 3, voteGranted: true }]);
  });

  it("thesis §4.2.3 a vote request for a leadership transfer overrides the lease", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    inject(cluster, voteRequest("n3", "n2", 3, 4, 2, { leadershipTransfer: true }));
    expect(takeReplies(cluster, "n2", "request_vote_result")).toMatchObject([{ term: 3, voteGranted: true }]);
  });
});

// ---------------------------------------------------------------------------------------------
// thesis §6.4 ReadIndex.

describe("thesis §6.4 ReadIndex", () => {
  it("thesis §6.4 a leader reports a ReadState only after a heartbeat round answered by a majority", () => {
    const cluster = makeCluster(5);
    elect(cluster, "n1");
    cluster.partition(["n1", "n2"], ["n3", "n4", "n5"]);
    expect(read(cluster, "n1", 1)).toEqual({ kind: "queued" });
    settle(cluster);
    heartbeat(cluster, "n1");
    expect(cluster.node("n1").readsServed).toEqual([]); // n1 and n2: two of five.
    cluster.partition(["n1", "n2", "n3"], ["n4", "n5"]);
    heartbeat(cluster, "n1");
    expect(cluster.node("n1").readsServed).toEqual([{ requestId: 1, index: 6 }]);
  });

  it("thesis §6.4 a read on a leader that is deposed is never served and is reported dropped", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    cluster.isolate("n1");
    expect(read(cluster, "n1", 7)).toEqual({ kind: "queued" });
    settle(cluster);
    tickUntil(cluster, ["n2", "n3"], () => cluster.leader()?.id !== "n1" && cluster.leader() !== undefined);
    const newLeader = cluster.leader()?.id as string;
    cluster.heal();
    heartbeat(cluster, newLeader);
    expect(role(cluster, "n1")).toBe("follower");
    expect(cluster.node("n1").readsServed).toEqual([]);
    expect(cluster.node("n1").readsDropped).toEqual([7]);
  });

  it("thesis §6.4 a read on a leader that steps down by check-quorum is reported dropped", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    cluster.isolate("n1");
    read(cluster, "n1", 8);
    tickUntil(cluster, ["n1"], () => role(cluster, "n1") !== "leader");
    expect(cluster.node("n1").readsServed).toEqual([]);
    expect(cluster.node("n1").readsDropped).toEqual([8]);
  });

  it("thesis §6.4 reads on a new leader wait until its no-op commits, then read at or after it", () => {
    const cluster = makeCluster(3);
    cluster.campaign("n1");
    deliverWhile(cluster, () => role(cluster, "n1") !== "leader");
    expect(status(cluster, "n1").commitIndex).toBe(3); // The no-op at 4 is not committed yet.
    expect(read(cluster, "n1", 3)).toEqual({ kind: "queued" });
    expect(cluster.node("n1").readsServed).toEqual([]);
    settle(cluster);
    expect(cluster.node("n1").readsServed).toEqual([{ requestId: 3, index: 4 }]);
  });

  it("thesis §6.4 a follower answers not_leader with the leader it knows", () => {
    const cluster = makeCluster(3);
    expect(read(cluster, "n2", 1)).toEqual({ kind: "not_leader", leaderHint: null });
    elect(cluster, "n1");
    expect(read(cluster, "n2", 1)).toEqual({ kind: "not_leader", leaderHint: "n1" });
    expect(cluster.propose("n2", "x")).toEqual({ kind: "not_leader", leaderHint: "n1" });
  });

  it("thesis §6.4 reads beyond readIndexPendingMax are dropped", () => {
    const cluster = makeCluster(3, { readIndexPendingMax: 2 });
    elect(cluster, "n1");
    cluster.isolate("n1");
    expect([read(cluster, "n1", 1), read(cluster, "n1", 2)]).toEqual([{ kind: "queued" }, { kind: "queued" }]);
    expect(read(cluster, "n1", 3)).toEqual({ kind: "dropped", reason: "too_many_pending_reads" });
  });
});

// ---------------------------------------------------------------------------------------------
// thesis §3.10 Leadership transfer.

describe("thesis §3.10 leadership transfer", () => {
  it("thesis §3.10 a leader sends timeout_now to an up-to-date transferee, which wins the next term at once", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    expect(transfer(cluster, "n1", "n2")).toEqual({ kind: "started" });
    expect(cluster.inFlight).toMatchObject([{ type: "timeout_now", from: "n1", to: "n2", term: 2 }]);
    settle(cluster);
    expect(status(cluster, "n2")).toMatchObject({ role: "leader", term: 3 });
    expect(status(cluster, "n1")).toMatchObject({ role: "follower", leaderId: "n2" });
  });

  it("thesis §3.10 a lagging transferee is caught up first; timeout_now follows its acknowledgement of the last entry", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    cluster.isolate("n3");
    proposeAll(cluster, "n1", ["a", "b", "c"]);
    settle(cluster);
    cluster.heal();
    expect(transfer(cluster, "n1", "n3")).toEqual({ kind: "started" });
    expect(ofType(cluster.inFlight, "timeout_now")).toEqual([]);
    const sent = settle(cluster);
    const timeoutAt = sent.findIndex((message) => message.type === "timeout_now");
    const caughtUpAt = sent.findIndex(
      (message) => message.type === "append_entries_result" && message.from === "n3" && message.matchIndex === 7,
    );
    expect(caughtUpAt).toBeGreaterThanOrEqual(0);
    expect(timeoutAt).toBeGreaterThan(caughtUpAt);
    expect(status(cluster, "n3")).toMatchObject({ role: "leader", term: 3 });
    settle(cluster);
    expect(cluster.node("n3").appliedData).toEqual(["a", "b", "c"]);
  });

  it("thesis §3.10 proposals are dropped while a transfer is in progress", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    cluster.isolate("n3");
    transfer(cluster, "n1", "n3");
    expect(cluster.propose("n1", "x")).toEqual({ kind: "dropped", reason: "leadership_transfer_in_progress" });
  });

  it("thesis §3.10 a transfer to an unreachable server is abandoned after one election timeout", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    cluster.isolate("n3");
    transfer(cluster, "n1", "n3");
    for (let tick = 1; tick < electionTicks; tick++) {
      cluster.tick(["n1", "n2"]);
      settle(cluster);
    }
    expect(cluster.propose("n1", "x")).toEqual({ kind: "dropped", reason: "leadership_transfer_in_progress" });
    cluster.tick(["n1", "n2"]);
    settle(cluster);
    expect(status(cluster, "n1")).toMatchObject({ role: "leader", term: 2 });
    expect(cluster.propose("n1", "x").kind).toBe("accepted");
  });

  it("thesis §3.10 only a leader transfers, and only to a voter", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    expect(transfer(cluster, "n2", "n3")).toEqual({ kind: "not_leader", leaderHint: "n1" });
    expect(transfer(cluster, "n1", "n9")).toEqual({ kind: "dropped", reason: "not_a_voter" });
  });
});

// ---------------------------------------------------------------------------------------------
// thesis §4 Membership changes (one server at a time; servers join as learners).

describe("thesis §4 membership changes", () => {
  /** withLearner adds an empty server n4 to a three-voter cluster led by n1, as a learner, and lets it catch up. */
  function withLearner(config: ClusterConfig = {}): TestCluster {
    const cluster = makeCluster(3, config);
    elect(cluster, "n1");
    cluster.addNode(nodeId("n4"));
    expect(proposeChange(cluster, "n1", { type: "add_learner", nodeId: nodeId("n4") }).kind).toBe("accepted");
    settle(cluster);
    heartbeat(cluster, "n1");
    return cluster;
  }

  it("thesis §4.2.1 a learner receives the log and learns the membership from it", () => {
    const cluster = withLearner();
    cluster.propose("n1", "y");
    settle(cluster);
    heartbeat(cluster, "n1");
    expect(status(cluster, "n1")).toMatchObject({ voters: ["n1", "n2", "n3"], learners: ["n4"] });
    expect(status(cluster, "n4")).toMatchObject({ voters: ["n1", "n2", "n3"], learners: ["n4"], commitIndex: 6 });
    expect(cluster.node("n4").appliedData).toEqual(["y"]);
  });

  it("thesis §4.2.1 a learner does not count toward the commit quorum", () => {
    const cluster = withLearner();
    cluster.crash("n2");
    cluster.crash("n3");
    const outcome = cluster.propose("n1", "y");
    settle(cluster);
    expect(outcome).toMatchObject({ kind: "accepted", index: 6 });
    expect(cluster.node("n4").rawNode.entryTerm(6)).toBe(2); // n1 and n4 hold it ...
    expect(status(cluster, "n1").commitIndex).toBe(5); // ... but only one of three voters does.
  });

  it("thesis §4.2.1 a learner never campaigns and is never asked for its vote", () => {
    const cluster = withLearner();
    cluster.isolate("n4");
    for (let tick = 0; tick < 5 * electionTicks; tick++) cluster.tick(["n4"]);
    expect(status(cluster, "n4")).toMatchObject({ role: "follower", term: 2 });
    cluster.heal();
    cluster.isolate("n1");
    tickUntil(cluster, ["n2", "n3", "n4"], () => cluster.leader() !== undefined && cluster.leader()?.id !== "n1");
    expect(cluster.leader()?.id).not.toBe("n4");
    // A candidate asks the voters only: replay an election and look at the requests.
    const survivor = cluster.leader()?.id as string;
    transfer(cluster, survivor, survivor === "n2" ? "n3" : "n2");
    const sent = settle(cluster);
    expect(ofType(sent, "request_vote").length).toBeGreaterThan(0);
    expect(ofType(sent, "request_vote").filter((message) => message.to === "n4")).toEqual([]);
  });

  it("thesis §4.2.1 promoting a lagging learner is refused with learner_not_caught_up; once caught up it is accepted", () => {
    const cluster = makeCluster(3, { learnerCatchUpEntriesMax: 2 });
    elect(cluster, "n1");
    cluster.addNode(nodeId("n4"));
    cluster.isolate("n4");
    proposeChange(cluster, "n1", { type: "add_learner", nodeId: nodeId("n4") });
    settle(cluster);
    proposeAll(cluster, "n1", ["a", "b", "c"]);
    settle(cluster);
    const promote = { type: "promote_learner", nodeId: nodeId("n4") } as const;
    expect(proposeChange(cluster, "n1", promote)).toEqual({ kind: "dropped", reason: "learner_not_caught_up" });
    expect(transfer(cluster, "n1", "n4")).toEqual({ kind: "dropped", reason: "not_a_voter" });
    cluster.heal();
    heartbeat(cluster, "n1");
    expect(proposeChange(cluster, "n1", promote).kind).toBe("accepted");
    settle(cluster);
    heartbeat(cluster, "n1");
    for (const id of ["n1", "n4"]) expect(status(cluster, id)).toMatchObject({ voters: ["n1", "n2", "n3", "n4"], learners: [] });
    // As a voter, n4 may now lead.
    expect(transfer(cluster, "n1", "n4")).toEqual({ kind: "started" });
    settle(cluster);
    expect(role(cluster, "n4")).toBe("leader");
  });

  it("thesis §4.1 only one membership change may be pending at a time", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    cluster.addNode(nodeId("n4"));
    cluster.addNode(nodeId("n5"));
    expect(proposeChange(cluster, "n1", { type: "add_learner", nodeId: nodeId("n4") }).kind).toBe("accepted");
    expect(proposeChange(cluster, "n1", { type: "add_learner", nodeId: nodeId("n5") })).toEqual({
      kind: "dropped",
      reason: "conf_change_pending",
    });
    settle(cluster); // Committed and applied by the leader.
    expect(proposeChange(cluster, "n1", { type: "add_learner", nodeId: nodeId("n5") }).kind).toBe("accepted");
  });

  it("thesis §4.1 a new leader cannot propose a membership change until its no-op is applied", () => {
    const cluster = makeCluster(3);
    cluster.campaign("n1");
    deliverWhile(cluster, () => role(cluster, "n1") !== "leader");
    expect(status(cluster, "n1").appliedIndex).toBe(3); // Its no-op (4) is not committed yet.
    cluster.addNode(nodeId("n4"));
    expect(proposeChange(cluster, "n1", { type: "add_learner", nodeId: nodeId("n4") })).toEqual({
      kind: "dropped",
      reason: "conf_change_pending",
    });
    settle(cluster);
    expect(status(cluster, "n1").appliedIndex).toBe(4);
    expect(proposeChange(cluster, "n1", { type: "add_learner", nodeId: nodeId("n4") }).kind).toBe("accepted");
  });

  it("thesis §4.1 removing a follower shrinks the quorum", () => {
    // Control: with four voters, two failures stop commitment.
    const control = makeCluster(4);
    elect(control, "n1");
    control.crash("n3");
    control.crash("n4");
    control.propose("n1", "z");
    settle(control);
    expect(status(control, "n1").commitIndex).toBe(5);

    const cluster = makeCluster(4);
    elect(cluster, "n1");
    cluster.crash("n4");
    expect(proposeChange(cluster, "n1", { type: "remove_node", nodeId: nodeId("n4") }).kind).toBe("accepted");
    settle(cluster);
    expect(status(cluster, "n1").voters).toEqual(["n1", "n2", "n3"]);
    expect(status(cluster, "n1").progress.map((peer) => peer.id)).not.toContain("n4");
    cluster.crash("n3");
    cluster.propose("n1", "z");
    settle(cluster);
    expect(status(cluster, "n1").commitIndex).toBe(7); // n1 and n2 are two of three.
    expect(cluster.node("n2").appliedData).toEqual(["z"]);
  });

  it("thesis §4.2.2 a leader that removes itself steps down once the new membership knows the removal committed; the others elect a leader", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    expect(proposeChange(cluster, "n1", { type: "remove_node", nodeId: nodeId("n1") }).kind).toBe("accepted");
    expect(role(cluster, "n1")).toBe("leader"); // Proposed, not yet applied.
    settle(cluster);
    expect(status(cluster, "n1")).toMatchObject({ role: "follower", voters: ["n2", "n3"] });
    tickUntil(cluster, cluster.ids(), () => cluster.leader() !== undefined);
    const leader = cluster.leader()?.id as string;
    expect(["n2", "n3"]).toContain(leader);
    expect(status(cluster, leader).voters).toEqual(["n2", "n3"]);
    expect(cluster.propose(leader, "after").kind).toBe("accepted");
    settle(cluster);
    for (const id of ["n2", "n3"]) expect(cluster.node(id).appliedData).toEqual(["after"]);
    expect(role(cluster, "n1")).toBe("follower");
  });

  it.each<[string, ConfChange]>([
    ["add_voter (servers join as learners)", { type: "add_voter", nodeId: nodeId("n4") }],
    ["add_learner of a voter", { type: "add_learner", nodeId: nodeId("n2") }],
    ["promote_learner of a server that is not a learner", { type: "promote_learner", nodeId: nodeId("n4") }],
    ["remove_node of a stranger", { type: "remove_node", nodeId: nodeId("n9") }],
  ])("thesis §4 %s is refused as invalid_conf_change", (_name, change) => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    expect(proposeChange(cluster, "n1", change)).toEqual({ kind: "dropped", reason: "invalid_conf_change" });
    expect(status(cluster, "n1").lastIndex).toBe(4);
  });

  it("thesis §4 the last voter cannot be removed", () => {
    const cluster = makeCluster(1);
    elect(cluster, "n1");
    expect(proposeChange(cluster, "n1", { type: "remove_node", nodeId: nodeId("n1") })).toEqual({
      kind: "dropped",
      reason: "invalid_conf_change",
    });
  });
});

// ---------------------------------------------------------------------------------------------
// §7 Log compaction and InstallSnapshot.

describe("§7 snapshots", () => {
  it("§7 a follower behind the leader's snapshot receives it, restores the state, then continues with appends", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    cluster.crash("n3");
    const data = Array.from({ length: 10 }, (_, position) => `s${position}`);
    proposeAll(cluster, "n1", data);
    settle(cluster);
    cluster.compact("n1");
    expect(status(cluster, "n1")).toMatchObject({ snapshotIndex: 14, firstIndex: 15 });
    cluster.restart("n3");
    const sent = heartbeat(cluster, "n1");
    expect(ofType(sent, "install_snapshot").filter((message) => message.to === "n3")).toHaveLength(1);
    expect(status(cluster, "n3")).toMatchObject({ snapshotIndex: 14, commitIndex: 14, lastIndex: 14 });
    expect(cluster.node("n3").appliedData).toEqual(data);
    expect(cluster.node("n3").storage.snapshot().metadata).toMatchObject({ index: 14, term: 2 });

    cluster.propose("n1", "after");
    const later = settle(cluster);
    expect(appendsTo(later, "n3").map((message) => message.entries.length)).toContain(1);
    expect(ofType(later, "install_snapshot")).toEqual([]);
    expect(cluster.node("n3").appliedData).toEqual([...data, "after"]);
  });

  it("§7 a learner that joins with an empty log is sent the snapshot", () => {
    const cluster = makeCluster(3);
    elect(cluster, "n1");
    proposeAll(cluster, "n1", ["a", "b", "c"]);
    settle(cluster);
    cluster.compact("n1");
    cluster.addNode(nodeId("n4"));
    proposeChange(cluster, "n1", { type: "add_learner", nodeId: nodeId("n4") });
    const sent = settle(cluster);
    sent.push(...heartbeat(cluster, "n1"));
    expect(ofType(sent, "install_snapshot").filter((message) => message.to === "n4")).toHaveLength(1);
    expect(status(cluster, "n4")).toMatchObject({ snapshotIndex: 7, learners: ["n4"], commitIndex: 8 });
    expect(cluster.node("n4").appliedData).toEqual(["a", "b", "c"]);
    cluster.propose("n1", "d");
    settle(cluster);
    expect(cluster.node("n4").appliedData).toEqual(["a", "b", "c", "d"]);
  });
});

// ---------------------------------------------------------------------------------------------
// Configuration and persistence.

describe("configuration validation", () => {
  function config(overrides: Partial<RaftConfig>): RaftConfig {
    return { ...raftConfigDefaults, id: nodeId("n1"), random: createSeededRandom(1), ...overrides };
  }

  it("the defaults are valid", () => {
    expect(() => validateConfig(config({}))).not.toThrow();
  });

  it("RaftConfigError lists every problem at once, and the core refuses to start", () => {
    const bad = config({
      id: nodeId(""),
      electionTimeoutTicks: 3,
      heartbeatIntervalTicks: 3,
      entriesPerAppendMax: 0,
      inflightBytesMax: -5,
      appendBytesMax: 1.5,
    });
    let error: unknown;
    try {
      new RawNode(bad, MemoryStorage.bootstrap([nodeId("n1")]));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(RaftConfigError);
    const problems = (error as RaftConfigError).problems;
    expect((error as RaftConfigError).code).toBe("invalid_raft_config");
    expect(problems).toHaveLength(5);
    for (const word of [
      "id",
      "electionTimeoutTicks (3) must exceed heartbeatIntervalTicks (3)",
      "entriesPerAppendMax",
      "inflightBytesMax",
      "appendBytesMax",
    ]) {
      expect(problems.some((problem) => problem.includes(word))).toBe(true);
    }
  });

  it.each([
    "electionTimeoutTicks",
    "heartbeatIntervalTicks",
    "entriesPerAppendMax",
    "appendBytesMax",
    "inflightAppendsMax",
    "inflightBytesMax",
    "uncommittedEntriesMax",
    "readIndexPendingMax",
    "applyBytesMax",
    "learnerCatchUpEntriesMax",
  ] as const)("%s must be a positive integer", (field) => {
    for (const value of [0, -1, 2.5, Number.NaN]) {
      const overrides: Partial<RaftConfig> = { [field]: value };
      if (field === "heartbeatIntervalTicks") Object.assign(overrides, { electionTimeoutTicks: 100 });
      expect(() => validateConfig(config(overrides))).toThrow(new RegExp(`${field} must be a positive integer`));
    }
  });

  it("electionTimeoutTicks must exceed heartbeatIntervalTicks", () => {
    expect(() => validateConfig(config({ electionTimeoutTicks: 4, heartbeatIntervalTicks: 5 }))).toThrow(RaftConfigError);
    expect(() => validateConfig(config({ electionTimeoutTicks: 6, heartbeatIntervalTicks: 5 }))).not.toThrow();
  });
});

describe("§5.2 / Figure 2 persistent state", () => {
  it("Figure 2 the Ready that carries a granted vote also carries the vote as hard state to persist first", () => {
    const storage = MemoryStorage.bootstrap([nodeId("n1"), nodeId("n2"), nodeId("n3")]);
    const node = new RawNode({ ...raftConfigDefaults, ...plain, id: nodeId("n1"), random: createSeededRandom(1) }, storage);
    node.step(voteRequest("n2", "n1", 2, 3, 1));
    const ready = node.ready();
    expect(ready?.messages).toMatchObject([{ type: "request_vote_result", voteGranted: true }]);
    expect(ready?.hardState).toEqual({ term: 2, votedFor: "n2", commitIndex: 3 });
  });

  it("Figure 2 a server restarted from its storage remembers its term, its vote and its log", () => {
    const cluster = makeCluster(3, plain);
    elect(cluster, "n1");
    proposeAll(cluster, "n1", ["a", "b"]);
    settle(cluster);
    heartbeat(cluster, "n1");
    const before = termsOf(cluster, "n2");
    cluster.crash("n2");
    cluster.restart("n2");
    expect(status(cluster, "n2")).toMatchObject({ term: 2, votedFor: "n1", lastIndex: 6, commitIndex: 6 });
    expect(termsOf(cluster, "n2")).toEqual(before);
    expect(cluster.node("n2").appliedData).toEqual(["a", "b"]);
  });

  // An acknowledgement leaves only once its Ready is written, so it must be true of what that
  // Ready writes. Within one batch of input a newer leader may replace the very entries an older
  // leader was just told are here (found by the simulator, soak seed 3000365; see
  // Raft.withdrawAcknowledgements). Without the withdrawal both tests fail: the answer to n2
  // promising 4@2 goes out beside the write of 4@3 (or of the snapshot).
  function followerOfThree(): RawNode {
    const storage = MemoryStorage.bootstrap([nodeId("n1"), nodeId("n2"), nodeId("n3")]);
    return new RawNode({ ...raftConfigDefaults, ...plain, id: nodeId("n1"), random: createSeededRandom(1) }, storage);
  }

  function successfulAcks(messages: readonly RaftMessage[]) {
    return ofType(messages, "append_entries_result")
      .filter((message) => message.success)
      .map((message) => ({ to: message.to, term: message.term, matchIndex: message.matchIndex }));
  }

  it("Figure 2 an acknowledgement is withdrawn when a newer leader's entries replace what it promised, before the Ready is written", () => {
    const node = followerOfThree();
    node.step(append("n2", "n1", 2, { index: 3, term: 1 }, [normal(4, 2, "a")], 3));
    node.step(append("n3", "n1", 3, { index: 3, term: 1 }, [normal(4, 3, "b")], 3));
    const ready = node.ready();
    expect(ready?.entries.map((entry) => `${entry.index}@${entry.term}`)).toEqual(["4@3"]);
    expect(successfulAcks(ready?.messages ?? [])).toEqual([{ to: "n3", term: 3, matchIndex: 4 }]);
  });

  it("Figure 2 an acknowledgement is withdrawn when a newer leader's snapshot replaces what it promised, before the Ready is written", () => {
    const node = followerOfThree();
    node.step(append("n2", "n1", 2, { index: 3, term: 1 }, [normal(4, 2, "a")], 3));
    const snapshot = { metadata: { index: 5, term: 3, confState: node.confState() }, data: new Uint8Array([5]) };
    node.step({ type: "install_snapshot", from: nodeId("n3"), to: nodeId("n1"), term: 3, snapshot });
    const ready = node.ready();
    expect(ready?.snapshot?.metadata.index).toBe(5);
    expect(successfulAcks(ready?.messages ?? [])).toEqual([]);
    expect(ofType(ready?.messages ?? [], "install_snapshot_result")).toMatchObject([{ to: "n3", matchIndex: 5 }]);
  });

  it("Figure 2 acknowledgements of entries a newer leader keeps stay (only the replaced suffix is withdrawn)", () => {
    const node = followerOfThree();
    node.step(append("n2", "n1", 2, { index: 3, term: 1 }, [normal(4, 2, "a")], 3));
    node.step(append("n2", "n1", 2, { index: 4, term: 2 }, [normal(5, 2, "b")], 3));
    node.step(append("n3", "n1", 3, { index: 4, term: 2 }, [normal(5, 3, "c")], 3));
    expect(successfulAcks(node.ready()?.messages ?? [])).toEqual([
      { to: "n2", term: 2, matchIndex: 4 },
      { to: "n3", term: 3, matchIndex: 5 },
    ]);
  });

  it("§5.2 a restarted server does not vote twice in one term: votedFor is durable", () => {
    expect(voteTwiceCheck()).toEqual({ persisted: "n2", grantedAgain: false });
  });
});

// ---------------------------------------------------------------------------------------------
// The checks above catch the planted bugs (planted-bugs.ts): each breaks one rule, and the
// check for that rule, run with the bug on, sees the violation.

describe("the checks catch the planted bugs", () => {
  it("vote_not_persisted: the vote is lost on restart and the server votes twice in one term", () => {
    expect(voteTwiceCheck("vote_not_persisted")).toEqual({ persisted: null, grantedAgain: true });
  });

  it("vote_without_log_check: a server that missed a committed entry is elected", () => {
    expect(role(staleCandidateScenario("vote_without_log_check"), "n3")).toBe("leader");
  });

  it("keep_conflicting_suffix: the follower keeps its conflicting entries", () => {
    expect(termsOf(conflictScenario("keep_conflicting_suffix"), "n2", 5)).toEqual([2, 2, 2]);
  });

  it("accept_stale_term_append: the follower appends entries from an older term", () => {
    const { cluster } = staleLeaderScenario("accept_stale_term_append");
    expect(cluster.node("n2").rawNode.entryTerm(5)).toBe(2);
  });

  it("commit_previous_term_by_count: the Figure 8 leader commits an earlier-term entry by counting replicas", () => {
    const cluster = figure8UpToC("commit_previous_term_by_count");
    expect(status(cluster, "n1").commitIndex).toBe(7);
  });
});

describe("thesis §10.2.1 the leader writes to its disk in parallel with replication", () => {
  /** threeNodes: n1 elected leader over raw nodes whose Readys the test handles by hand (persist, send, advance). */
  function threeNodes() {
    const ids = ["n1", "n2", "n3"].map(nodeId);
    const storages = new Map(ids.map((id) => [id, MemoryStorage.bootstrap(ids)]));
    const nodes = new Map(
      ids.map((id, seed) => [
        id,
        new RawNode({ ...raftConfigDefaults, ...plain, id, random: createSeededRandom(seed) }, storages.get(id) as MemoryStorage),
      ]),
    );
    const network: RaftMessage[] = [];
    const handle = (id: NodeId): void => {
      const node = nodes.get(id) as RawNode;
      for (let ready = node.ready(); ready !== undefined; ready = node.ready()) {
        const storage = storages.get(id) as MemoryStorage;
        storage.append(ready.entries);
        if (ready.hardState) storage.setHardState(ready.hardState);
        network.push(...ready.messages);
        node.advance(ready);
      }
    };
    const deliverAll = (): void => {
      for (const id of ids) handle(id);
      for (let message = network.shift(); message !== undefined; message = network.shift()) {
        (nodes.get(message.to) as RawNode).step(message);
        handle(message.to);
      }
    };
    (nodes.get(nodeId("n1")) as RawNode).campaign();
    deliverAll();
    const leader = nodes.get(nodeId("n1")) as RawNode;
    expect(leader.status()).toMatchObject({ role: "leader", commitIndex: 4 });
    return { nodes, storages, network, handle, leader };
  }

  it("thesis §10.2.1 a leader does not count entries it has not persisted towards a majority", () => {
    const { nodes, storages, network, handle, leader } = threeNodes();
    leader.propose(new TextEncoder().encode("x"));
    const ready = leader.ready();
    expect(ready?.entries.map((entry) => entry.index)).toEqual([5]);
    // The leader's disk write has not finished: its appends go out anyway, and n2 acknowledges.
    const toN2 = ready?.messages.find((message) => message.to === "n2" && message.type === "append_entries") as RaftMessage;
    (nodes.get(nodeId("n2")) as RawNode).step(toN2);
    handle(nodeId("n2"));
    const ack = network.splice(0).find((message) => message.type === "append_entries_result") as RaftMessage;
    leader.step(ack);
    // n2 alone is not a majority of three: the leader's own copy is not durable yet.
    expect(leader.status().commitIndex).toBe(4);
    // Once the host reports the leader's write done, its copy and n2's commit the entry.
    (storages.get(nodeId("n1")) as MemoryStorage).append(ready?.entries ?? []);
    leader.advance(ready as NonNullable<typeof ready>);
    expect(leader.status().commitIndex).toBe(5);
  });

  it("thesis §10.2.1 appends may precede the disk write only when the Ready changes neither term nor vote", () => {
    const { leader } = threeNodes();
    leader.propose(new TextEncoder().encode("x"));
    expect(leader.ready()?.appendsBeforePersist).toBe(true);
    // A lone voter wins its election in the Ready that raises its term: nothing may go out before that is durable.
    const lone = new RawNode(
      { ...raftConfigDefaults, ...plain, id: nodeId("n1"), random: createSeededRandom(1) },
      MemoryStorage.bootstrap([nodeId("n1")]),
    );
    lone.campaign();
    const ready = lone.ready();
    expect(ready?.softState?.role).toBe("leader");
    expect(ready?.appendsBeforePersist).toBe(false);
  });

  it("thesis §10.2.1 two followers' durable copies commit an entry the leader has not yet persisted", () => {
    const { nodes, storages, network, handle, leader } = threeNodes();
    leader.propose(new TextEncoder().encode("x"));
    const ready = leader.ready() as NonNullable<ReturnType<RawNode["ready"]>>;
    for (const message of ready.messages) {
      (nodes.get(message.to) as RawNode).step(message);
      handle(message.to);
    }
    for (const ack of network.splice(0)) leader.step(ack);
    expect(leader.status().commitIndex).toBe(5);
    (storages.get(nodeId("n1")) as MemoryStorage).append(ready.entries);
    leader.advance(ready);
  });

  it("Figure 2 while a write is in flight: a leader's heartbeats and appends may leave, a follower's acknowledgements may not", () => {
    const { nodes, storages, leader } = threeNodes();
    leader.propose(new TextEncoder().encode("x"));
    const ready = leader.ready() as NonNullable<ReturnType<RawNode["ready"]>>;
    // Entry 5 is being written. Meanwhile another proposal, and a heartbeat interval:
    leader.propose(new TextEncoder().encode("y"));
    for (let tick = 0; tick < raftConfigDefaults.heartbeatIntervalTicks; tick++) leader.tick();
    const early = leader.messagesWhilePersisting();
    expect(early.map((message) => `${message.type} to ${message.to}`).sort()).toEqual([
      "append_entries to n2",
      "append_entries to n3",
      "heartbeat to n2",
      "heartbeat to n3",
    ]);
    expect(early.flatMap((message) => (message.type === "append_entries" ? message.entries.map((entry) => entry.index) : []))).toEqual([
      6, 6,
    ]);
    // A follower whose write of entry 5 is in flight takes entry 6 and a heartbeat: the heartbeat
    // is answered at once, entry 6 is acknowledged only in its next Ready (after this write).
    const n2 = nodes.get(nodeId("n2")) as RawNode;
    n2.step(ready.messages.find((message) => message.to === "n2" && message.type === "append_entries") as RaftMessage);
    const followerReady = n2.ready() as NonNullable<ReturnType<RawNode["ready"]>>;
    expect(followerReady.messages).toMatchObject([{ type: "append_entries_result", success: true, matchIndex: 5 }]);
    for (const message of early) if (message.to === "n2") n2.step(message);
    expect(n2.messagesWhilePersisting().map((message) => message.type)).toEqual(["heartbeat_result"]);
    (storages.get(nodeId("n2")) as MemoryStorage).append(followerReady.entries);
    n2.advance(followerReady);
    expect(n2.ready()?.messages).toMatchObject([{ type: "append_entries_result", success: true, matchIndex: 6 }]);
  });

  it("Figure 2 while a write is in flight: nothing leaves in a term not yet durable, nor any vote", () => {
    const { nodes, leader } = threeNodes();
    const term = leader.status().term;
    const n2 = nodes.get(nodeId("n2")) as RawNode;
    // n2 hears a heartbeat of a newer term (n3 won an election n2 missed): the new term is being written.
    n2.step({ type: "heartbeat", from: nodeId("n3"), to: nodeId("n2"), term: term + 1, commitIndex: 0, readContext: 0 });
    const ready = n2.ready() as NonNullable<ReturnType<RawNode["ready"]>>;
    expect(ready.hardState?.term).toBe(term + 1);
    n2.step({ type: "heartbeat", from: nodeId("n3"), to: nodeId("n2"), term: term + 1, commitIndex: 0, readContext: 0 });
    expect(n2.messagesWhilePersisting()).toEqual([]);
    n2.advance(ready);
    expect(n2.ready()?.messages.map((message) => message.type)).toEqual(["heartbeat_result"]);
    // A vote answer never leaves early, even in a durable term (a pre-vote's neither).
    const n3 = nodes.get(nodeId("n3")) as RawNode;
    n3.step({
      type: "request_vote",
      from: nodeId("n1"),
      to: nodeId("n3"),
      term: term + 5,
      lastLogIndex: 99,
      lastLogTerm: term,
      preVote: true,
      leadershipTransfer: false,
    });
    expect(n3.messagesWhilePersisting()).toEqual([]);
  });
});
