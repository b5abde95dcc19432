// The status page's honesty rules, on buildStatusView (pure) and StatusTimeline (a bounded ring):
// the leader marked is the one this node knows, never one a peer merely claims to be; a member
// reached neither by its peer link nor by HTTP is unreachable, its last known details shown as
// such; a follower without a leader, or not hearing from it, says its view may be stale; a leader
// without a majority says it will step down; the timeline keeps its bound and folds repeats.
import { describe, expect, it } from "vitest";
import { type NodeId, nodeId, type Ready, type Status } from "../../raft/index.ts";
import { StatusTimeline } from "./status-timeline.ts";
import { buildStatusView, type PeerPoll, type PolledStatus, refusalShownMs, type StatusViewInputs, shedShownMs } from "./status-view.ts";

const ids = ["n1", "n2", "n3"].map(nodeId);
const urls = new Map(ids.map((id, position) => [id as string, `http://127.0.0.1:700${position + 1}`]));

function status(overrides: Partial<Status> = {}): Status {
  return {
    id: nodeId("n1"),
    role: "follower",
    term: 4,
    votedFor: null,
    leaderId: nodeId("n2"),
    commitIndex: 10,
    appliedIndex: 10,
    firstIndex: 1,
    lastIndex: 10,
    snapshotIndex: 0,
    voters: ids,
    learners: [],
    progress: [],
    ...overrides,
  };
}

function polled(overrides: Partial<PolledStatus> = {}): PeerPoll {
  return {
    status: {
      role: "follower",
      term: 4,
      leaderId: "n2",
      commitIndex: 10,
      appliedIndex: 10,
      lastIndex: 10,
      snapshotIndex: 0,
      progress: [],
      ...overrides,
    },
    statusAgeMs: 100,
    error: undefined,
  };
}

function inputs(overrides: Partial<StatusViewInputs> = {}): StatusViewInputs {
  return {
    nodeId: "n1",
    wallNowMs: 1_000_000,
    status: status(),
    peerUrls: urls,
    bookingUrl: "http://127.0.0.1:8080/",
    links: new Map([
      ["n2", { connected: true, lastContactMs: 999_990 }],
      ["n3", { connected: true, lastContactMs: 999_990 }],
    ]),
    polls: new Map([
      ["n2", polled({ role: "leader", lastIndex: 12, progress: [{ id: "n1", matchIndex: 10, state: "replicate", recentActive: true }] })],
      ["n3", polled()],
    ]),
    pollFreshMs: 2800,
    staleAfterMs: 1000,
    leases: { rows: [], total: 0, waitersTotal: 0 },
    timeline: [],
    ...overrides,
  };
}

describe("buildStatusView", () => {
  it("says so when this node refuses frames from a peer (an entry it could not apply), until a minute has passed (issue 14)", () => {
    const refusing = (atMs: number) =>
      inputs({
        links: new Map([
          [
            "n2",
            {
              connected: true,
              lastContactMs: 999_990,
              framesRejected: 41,
              lastRejection: { code: "invalid_entry", reason: "entry 17 (term 4): resources.0: Too big", atMs },
            },
          ],
          ["n3", { connected: true, lastContactMs: 999_990 }],
        ]),
      });
    const view = buildStatusView(refusing(999_500));
    expect(view.view.warnings).toEqual([
      "n1 refuses frames from n2 (41 so far, the last 0.5 s ago): invalid_entry: entry 17 (term 4): resources.0: Too big",
    ]);
    expect(buildStatusView(refusing(1_000_000 - refusalShownMs - 1)).view.warnings).toEqual([]);
  });

  it("shows the requests in flight and those shed, and warns of overload until a minute after the last one shed (issue 17)", () => {
    const load = (lastShedAgoMs: number | null) => ({ depth: 1024, requestQueueMax: 1024, shedTotal: 37, lastShedAgoMs });
    const view = buildStatusView(inputs({ load: load(2500) }));
    expect(view.load).toEqual(load(2500));
    expect(view.view.warnings).toEqual([
      "n1 is overloaded: it answered 37 requests 503 overloaded so far (the last 2.5 s ago), its limit being 1024 requests in flight; clients retry after the wait it asks for.",
    ]);
    expect(view.view.stale).toBe(false); // Overloaded is not out of date.
    expect(buildStatusView(inputs({ load: load(shedShownMs + 1) })).view.warnings).toEqual([]);
    expect(buildStatusView(inputs({ load: load(null) })).view.warnings).toEqual([]);
    expect(buildStatusView(inputs()).load).toBeNull(); // A node without an admission gate.
  });

  it("a healthy follower: the leader it knows is marked, lag from the leader's progress, no warning", () => {
    const view = buildStatusView(inputs());
    expect(view.view).toMatchObject({ leaderId: "n2", stale: false, warnings: [] });
    expect(view.members.filter((member) => member.isLeader).map((member) => member.id)).toEqual(["n2"]);
    expect(view.members.find((member) => member.id === "n1")).toMatchObject({ reachability: "self", matchIndex: 10, lag: 2 });
    expect(view.replication).toMatchObject({ source: "polled", leaderId: "n2" });
  });

  it("a dead peer that last said it led is unreachable, not the leader, and its details are last known", () => {
    const view = buildStatusView(
      inputs({
        status: status({ leaderId: nodeId("n3"), term: 5 }),
        links: new Map([
          ["n2", { connected: false, lastContactMs: 990_000 }],
          ["n3", { connected: true, lastContactMs: 999_990 }],
        ]),
        polls: new Map([
          ["n2", { ...polled({ role: "leader", term: 4 }), statusAgeMs: 10_000, error: "connection refused" }],
          ["n3", polled({ role: "leader", term: 5 })],
        ]),
      }),
    );
    const dead = view.members.find((member) => member.id === "n2");
    expect(dead).toMatchObject({ reachability: "unreachable", isLeader: false, pollError: "connection refused" });
    expect(dead?.details).toMatchObject({ role: "leader", current: false });
    expect(view.view.leaderId).toBe("n3");
    expect(view.view.stale).toBe(false);
    expect(view.view.warnings).toEqual(["unreachable from n1: n2."]);
  });

  it("a follower without a leader, or not hearing from it, says its view may be stale", () => {
    const noLeader = buildStatusView(inputs({ status: status({ leaderId: null, role: "pre_candidate" }) }));
    expect(noLeader.view.stale).toBe(true);
    expect(noLeader.view.warnings[0]).toMatch(/n1 sees no leader \(it is a pre-candidate in term 4\)/);
    const silent = buildStatusView(inputs({ links: new Map([["n2", { connected: true, lastContactMs: 995_000 }]]) }));
    expect(silent.view.stale).toBe(true);
    expect(silent.view.warnings[0]).toMatch(/last heard from its leader n2 5\.0 s ago/);
    const cut = buildStatusView(inputs({ links: new Map([["n2", { connected: false, lastContactMs: 999_999 }]]) }));
    expect(cut.view.warnings[0]).toMatch(/no link to its leader n2/);
  });

  it("a leader that reaches no majority says it will step down; its own progress feeds the picture", () => {
    const view = buildStatusView(
      inputs({
        status: status({
          role: "leader",
          leaderId: nodeId("n1"),
          progress: [
            { id: nodeId("n1"), isLearner: false, matchIndex: 10, nextIndex: 11, state: "replicate", recentActive: true },
            { id: nodeId("n2"), isLearner: false, matchIndex: 3, nextIndex: 4, state: "probe", recentActive: false },
            { id: nodeId("n3"), isLearner: false, matchIndex: 3, nextIndex: 4, state: "probe", recentActive: false },
          ],
        }),
        links: new Map([
          ["n2", { connected: false, lastContactMs: undefined }],
          ["n3", { connected: false, lastContactMs: undefined }],
        ]),
        polls: new Map(),
      }),
    );
    expect(view.view.warnings[0]).toMatch(/n1 leads but reaches only 1 of 3 voters/);
    expect(view.replication.source).toBe("self");
    expect(view.replication.links).toEqual([
      { to: "n2", state: "probe", active: false },
      { to: "n3", state: "probe", active: false },
    ]);
    expect(view.members.find((member) => member.id === "n2")).toMatchObject({ reachability: "unreachable", lag: 7, details: null });
  });

  it("a peer answering over HTTP whose peer link is down is link_down, not unreachable", () => {
    const view = buildStatusView(
      inputs({
        links: new Map([
          ["n2", { connected: true, lastContactMs: 999_990 }],
          ["n3", { connected: false, lastContactMs: undefined }],
        ]),
      }),
    );
    expect(view.members.find((member) => member.id === "n3")?.reachability).toBe("link_down");
  });
});

describe("StatusTimeline", () => {
  const softReady = (role: Status["role"], leaderId: NodeId | null, term: number): Ready => ({
    softState: { role, leaderId, term },
    hardState: { term, votedFor: null, commitIndex: 0 },
    entries: [],
    snapshot: undefined,
    messages: [],
    appendsBeforePersist: false,
    committedEntries: [],
    readStates: [],
    droppedReads: [],
  });

  it("records elections, terms and leaders; folds repeats; keeps its bound", () => {
    let nowMs = 0;
    const timeline = new StatusTimeline({ eventsMax: 5, wallNowMs: () => ++nowMs });
    timeline.start({ role: "follower", term: 1, leaderId: null });
    timeline.readyHandled(softReady("pre_candidate", null, 1));
    timeline.readyHandled(softReady("candidate", null, 2));
    timeline.readyHandled(softReady("leader", nodeId("n1"), 2));
    expect(timeline.recent().map((event) => event.kind)).toEqual([
      "election_won",
      "election_started",
      "term_changed",
      "pre_vote",
      "started",
    ]);
    timeline.record("peer_unreachable", "n2 unreachable");
    timeline.record("peer_unreachable", "n2 unreachable");
    expect(timeline.recent()).toHaveLength(5);
    expect(timeline.recent()[0]).toMatchObject({ kind: "peer_unreachable", count: 2 });
    expect(timeline.recent().at(-1)?.kind).toBe("pre_vote"); // the oldest ("started") was dropped
    expect(() => new StatusTimeline({ eventsMax: 0, wallNowMs: () => 0 })).toThrow(/eventsMax/);
  });
});
