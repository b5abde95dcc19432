// Graceful stop (issue 17, item 3), in two layers.
//
// Deterministic, on a fake clock and a scripted host: the voter a leader hands over to is the most
// caught-up one it heard from lately (learners and silent voters never); the hand-over waits
// until another node leads and says who and how long; a transfer the core abandoned is started
// again after `retryAfterMs`, to the voter most caught up by then; the whole wait is bounded; a
// follower has nothing to hand over, and a lone voter no one to hand it to.
//
// On an in-process cluster (the real LockService and driver over the in-memory transport, real
// short timers, bounded waits): the leader hands over to the follower that has its log, not to
// one cut off from it, and another node leads at once; and proposals in flight when the hand-over
// starts are all granted: the core tells the transferee to campaign only once it holds the
// leader's whole log, so they commit before the leader steps down. Planted bug, seen failing 3
// times in 3: the core sends TimeoutNow at once (raft.ts transferLeadership), and the proposals
// come back leadership_lost.

import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../harness/process-cluster.ts";
import type { LockCommand } from "../lock/types.ts";
import { type NodeId, nodeId, type PeerStatus, type Refusal, type Status } from "../raft/index.ts";
import { systemClock as systemClockForTests } from "./driver/clock.ts";
import { DriverError } from "./driver/raft-driver.ts";
import { type HandOverHost, handOverLeadership, mostCaughtUpVoter } from "./graceful-stop.ts";
import type { LockService } from "./lock-service.ts";
import { type HttpCluster, startHttpCluster } from "./testing/http-cluster.ts";
import { ManualClock } from "./testing/manual-clock.ts";

const [n1, n2, n3, n4] = ["n1", "n2", "n3", "n4"].map(nodeId) as [NodeId, NodeId, NodeId, NodeId];

function peer(id: NodeId, matchIndex: number, extra: Partial<PeerStatus> = {}): PeerStatus {
  return { id, isLearner: false, matchIndex, nextIndex: matchIndex + 1, state: "replicate", recentActive: true, ...extra };
}

function leaderStatus(progress: PeerStatus[], voters: NodeId[] = [n1, n2, n3]): Status {
  return {
    id: n1,
    role: "leader",
    term: 4,
    votedFor: n1,
    leaderId: n1,
    commitIndex: 100,
    appliedIndex: 100,
    firstIndex: 1,
    lastIndex: 100,
    snapshotIndex: 0,
    voters,
    learners: [],
    progress: [peer(n1, 100), ...progress],
  };
}

describe("mostCaughtUpVoter", () => {
  it("picks the voter with the highest match index among those heard from lately", () => {
    expect(mostCaughtUpVoter(leaderStatus([peer(n2, 90), peer(n3, 99)]))).toBe(n3);
    expect(mostCaughtUpVoter(leaderStatus([peer(n2, 90), peer(n3, 100, { recentActive: false })]))).toBe(n2);
  });

  it("prefers a replicating voter on a tie, then the lower id; never a learner or a non-voter", () => {
    expect(mostCaughtUpVoter(leaderStatus([peer(n2, 99, { state: "probe" }), peer(n3, 99)]))).toBe(n3);
    expect(mostCaughtUpVoter(leaderStatus([peer(n3, 99), peer(n2, 99)]))).toBe(n2);
    expect(mostCaughtUpVoter(leaderStatus([peer(n2, 50), peer(n4, 100, { isLearner: true })]))).toBe(n2);
    expect(mostCaughtUpVoter(leaderStatus([peer(n2, 50), peer(n4, 100)]))).toBe(n2); // n4 is not in the voters.
  });

  it("knows no one when no other voter is in reach, or on a follower (no progress)", () => {
    expect(mostCaughtUpVoter(leaderStatus([peer(n2, 90, { recentActive: false })]))).toBeUndefined();
    expect(mostCaughtUpVoter(leaderStatus([], [n1]))).toBeUndefined();
    expect(mostCaughtUpVoter({ ...leaderStatus([]), role: "follower", progress: [] })).toBeUndefined();
  });
});

/** ScriptedHost leads until `handOverAfter` transfers have been asked, then `to` leads (after the clock moves). */
class ScriptedHost implements HandOverHost {
  readonly nodeId = n1;
  readonly transfers: NodeId[] = [];
  private readonly clock: ManualClock;
  private progress: PeerStatus[];
  private readonly handOverAfter: number;
  private leading: boolean;
  private newLeader: NodeId | null = null;
  constructor(clock: ManualClock, progress: PeerStatus[], handOverAfter: number, leading = true) {
    this.clock = clock;
    this.progress = progress;
    this.handOverAfter = handOverAfter;
    this.leading = leading;
  }
  status(): Status {
    return this.leading ? leaderStatus(this.progress) : { ...leaderStatus([]), role: "follower", leaderId: this.newLeader, progress: [] };
  }
  leaderId(): NodeId | null {
    return this.leading ? n1 : this.newLeader;
  }
  setProgress(progress: PeerStatus[]): void {
    this.progress = progress;
  }
  async transferLeadership(transferee: NodeId): Promise<Refusal | { kind: "started" }> {
    this.transfers.push(transferee);
    if (this.transfers.length >= this.handOverAfter) {
      // The transferee wins 30 ms later: first the old leader steps down (no leader known), then it hears of the new one.
      this.clock.setTimer(() => {
        this.leading = false;
      }, 20);
      this.clock.setTimer(() => {
        this.newLeader = transferee;
      }, 30);
    }
    return { kind: "started" };
  }
}

/** run drives a hand-over on the fake clock, 10 ms at a time, until it settles (bounded). */
async function run(clock: ManualClock, handOver: Promise<unknown>): Promise<void> {
  let settled = false;
  void handOver.then(() => {
    settled = true;
  });
  for (let step = 0; step < 10_000 && !settled; step++) {
    for (let turn = 0; turn < 10; turn++) await Promise.resolve();
    clock.advance(10);
  }
  for (let turn = 0; turn < 10; turn++) await Promise.resolve();
}

describe("handOverLeadership on a fake clock", () => {
  const options = (clock: ManualClock) => ({ waitMs: 2000, retryAfterMs: 300, pollMs: 10, clock });

  it("hands over to the most caught-up voter and waits until it leads", async () => {
    const clock = new ManualClock();
    const host = new ScriptedHost(clock, [peer(n2, 80), peer(n3, 100)], 1);
    const handOver = handOverLeadership(host, options(clock));
    await run(clock, handOver);
    expect(await handOver).toEqual({ kind: "handed_over", to: n3, leaderId: n3, ms: 30 });
    expect(host.transfers).toEqual([n3]);
  });

  it("starts the transfer again after retryAfterMs when the core abandoned it, to the voter most caught up by then", async () => {
    const clock = new ManualClock();
    const host = new ScriptedHost(clock, [peer(n2, 80), peer(n3, 100)], 2);
    const handOver = handOverLeadership(host, options(clock));
    // n3 falls behind while the first transfer runs (say, it was slow to persist): the second goes to n2.
    host.setProgress([peer(n2, 100), peer(n3, 60)]);
    await run(clock, handOver);
    expect(host.transfers).toEqual([n3, n2]);
    expect(await handOver).toEqual({ kind: "handed_over", to: n2, leaderId: n2, ms: 300 + 30 });
  });

  it("gives up when waitMs runs out, still leading: a normal failover follows", async () => {
    const clock = new ManualClock();
    const host = new ScriptedHost(clock, [peer(n2, 100), peer(n3, 100)], Number.POSITIVE_INFINITY);
    const handOver = handOverLeadership(host, options(clock));
    await run(clock, handOver);
    expect(await handOver).toEqual({ kind: "timed_out", to: n2, ms: 2000 });
    expect(host.transfers).toHaveLength(7); // At 0, 300, …, 1800 ms.
  });

  it("has nothing to hand over on a follower, and no one to hand it to without another voter in reach", async () => {
    const clock = new ManualClock();
    expect(await handOverLeadership(new ScriptedHost(clock, [], 1, false), options(clock))).toEqual({ kind: "not_leader" });
    const alone = new ScriptedHost(clock, [peer(n2, 100, { recentActive: false })], 1);
    expect(await handOverLeadership(alone, options(clock))).toEqual({ kind: "no_voter" });
    expect(alone.transfers).toEqual([]);
  });
});

describe("handing over on an in-process cluster", () => {
  let cluster: HttpCluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  const leaderOf = (hosts: Map<NodeId, LockService>): LockService | undefined =>
    [...hosts.values()].find((host) => host.status().role === "leader");

  it("hands over to the follower that has the log, never to one cut off, and another node leads at once", async () => {
    cluster = await startHttpCluster();
    const leader = leaderOf(cluster.hosts) as LockService;
    const [cutOff, reachable] = [...cluster.hosts.keys()].filter((id) => id !== leader.nodeId) as [NodeId, NodeId];
    cluster.hub.isolate(
      cutOff,
      [...cluster.hosts.keys()].filter((id) => id !== cutOff),
    );
    // The leader must see the cut-off follower fall silent (recentActive is reset every election timeout).
    await waitFor(
      () => (leader.status().progress.find((each) => each.id === cutOff)?.recentActive === false ? true : undefined),
      "the leader to notice that a follower is silent",
      10_000,
    );
    for (let n = 0; n < 5; n++) await leader.propose({ type: "acquire", resources: [`r${n}`], owner: "o", ttlMs: 60_000, waitMs: 0 });
    const handOver = await handOverLeadership(leader, { waitMs: 5000, retryAfterMs: 200, pollMs: 5, clock: systemClockForTests });
    expect(handOver).toMatchObject({ kind: "handed_over", to: reachable, leaderId: reachable });
    expect(leader.status().role).not.toBe("leader");
    expect(cluster.hosts.get(reachable)?.status().role).toBe("leader");
  });

  it("every proposal in flight when the hand-over starts is granted, none lost to the change of leader", async () => {
    cluster = await startHttpCluster();
    const leader = leaderOf(cluster.hosts) as LockService;
    const commands: LockCommand[] = Array.from({ length: 40 }, (_, n) => ({
      type: "acquire",
      resources: [`inflight-${n}`],
      owner: "o",
      ttlMs: 60_000,
      waitMs: 0,
    }));
    const outcomes = commands.map((command) =>
      leader.propose(command).then(
        (applied) => applied.result.status,
        (error: unknown) => (error instanceof DriverError ? error.code : String(error)),
      ),
    );
    const handOver = await handOverLeadership(leader, { waitMs: 5000, retryAfterMs: 200, pollMs: 5, clock: systemClockForTests });
    expect(handOver.kind).toBe("handed_over");
    expect(await Promise.all(outcomes)).toEqual(commands.map(() => "granted"));
  });
});
