// Graceful stop (issue 17, item 3). A leader that is about to stop hands its leadership to the most
// caught-up voter first (Raft's leadership transfer, thesis §3.10: the transferee is brought up to
// the leader's last index, then told to campaign at once), so the cluster has a leader again
// within a round trip or two instead of after a failover: followers would otherwise wait out an
// election timeout (150-300 ms with the defaults, more under load) before they even begin an
// election. Then the node lets the requests in flight finish (bounded), and stops. A follower has
// nothing to hand over: it lets its requests in flight finish and stops.
//
// The order, in node/main.ts: hand over (bounded by SCTEC_STOP_TRANSFER_MS), close the admission
// gate (new requests: 503 shutting_down, ask another node) and the listening socket, wait for the
// requests in flight (bounded by SCTEC_STOP_DRAIN_MS), then stop the lock service, the transport
// and the log. The proposals the leader made before the transfer commit before it steps down: the
// core tells the transferee to campaign only once it holds the leader's whole log, and refuses new
// proposals meanwhile (503 proposal_dropped: the client retries, and finds the new leader).

import type { NodeId, Refusal, Status } from "../raft/index.ts";
import type { Clock } from "./driver/clock.ts";

/**
 * restartExitCode: the exit code of a node that stopped because it was asked to restart (POST
 * /admin/restart). A supervisor starts such a node again: npm start does (scripts/start.ts),
 * compose's `restart: unless-stopped` does for any exit, and systemd's `Restart=on-failure` does
 * for this code (75 is EX_TEMPFAIL: "try again later").
 */
export const restartExitCode = 75;

/** HandOverHost is what a hand-over needs of the node (LockService fits it). */
export interface HandOverHost {
  readonly nodeId: NodeId;
  status(): Status;
  /** leaderId: the leader this node knows now. */
  leaderId(): NodeId | null;
  transferLeadership(transferee: NodeId): Promise<Refusal | { kind: "started" }>;
}

/** HandOver: what a leader's hand-over came to. */
export type HandOver =
  /** not_leader: this node did not lead; nothing to hand over. */
  | { readonly kind: "not_leader" }
  /** no_voter: no other voter is in reach (a single-voter cluster, or every other one silent): the node just stops. */
  | { readonly kind: "no_voter" }
  /** handed_over: another node leads now (normally `to`), `ms` after the hand-over began. */
  | { readonly kind: "handed_over"; readonly to: NodeId; readonly leaderId: NodeId; readonly ms: number }
  /** timed_out: still leading when the wait ran out (the transferee could not catch up in time): a normal failover follows. */
  | { readonly kind: "timed_out"; readonly to: NodeId; readonly ms: number };

export interface HandOverOptions {
  /** waitMs bounds the whole hand-over. */
  readonly waitMs: number;
  /**
   * retryAfterMs: a transfer not finished by then was abandoned by the core (it gives up after
   * one election timeout); the hand-over then starts another, to the voter most caught up by
   * then. Use the longest election timeout.
   */
  readonly retryAfterMs: number;
  /** pollMs: how often the leader this node knows is looked at. */
  readonly pollMs: number;
  readonly clock: Clock;
}

/**
 * mostCaughtUpVoter: the voter other than the leader that a transfer should go to: one the leader
 * heard from lately (recentActive), with the highest match index, replicating rather than probing
 * or receiving a snapshot; ties go to the lowest id, so the choice is deterministic. Undefined
 * when no other voter is in reach, or the status is not a leader's (only a leader has progress).
 */
export function mostCaughtUpVoter(status: Status): NodeId | undefined {
  const candidates = status.progress.filter(
    (peer) => peer.id !== status.id && !peer.isLearner && status.voters.includes(peer.id) && peer.recentActive,
  );
  const stateRank = (state: string): number => (state === "replicate" ? 0 : state === "probe" ? 1 : 2);
  candidates.sort(
    (a, b) => b.matchIndex - a.matchIndex || stateRank(a.state) - stateRank(b.state) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
  );
  return candidates[0]?.id;
}

/**
 * handOverLeadership hands leadership to the most caught-up voter and waits (at most
 * `options.waitMs`) until another node leads. It returns at once on a node that does not lead.
 */
export async function handOverLeadership(host: HandOverHost, options: HandOverOptions): Promise<HandOver> {
  const clock = options.clock;
  const startedMs = clock.nowMs();
  const deadlineMs = startedMs + options.waitMs;
  let transferee: NodeId | undefined;
  let lastAttemptMs = Number.NEGATIVE_INFINITY;
  for (;;) {
    const leaderId = host.leaderId();
    const status = host.status();
    if (status.role !== "leader") {
      if (transferee === undefined) return { kind: "not_leader" };
      if (leaderId !== null && leaderId !== host.nodeId)
        return { kind: "handed_over", to: transferee, leaderId, ms: clock.nowMs() - startedMs };
    } else if (transferee === undefined || clock.nowMs() - lastAttemptMs >= options.retryAfterMs) {
      const next = mostCaughtUpVoter(status);
      if (next === undefined)
        return transferee === undefined ? { kind: "no_voter" } : { kind: "timed_out", to: transferee, ms: clock.nowMs() - startedMs };
      transferee = next;
      lastAttemptMs = clock.nowMs();
      const outcome = await host.transferLeadership(next);
      // Lost the lead in the meantime: the loop sees who leads now. A refusal (not a voter any
      // more: a membership change raced) picks another voter at the next poll.
      if (outcome.kind === "dropped") lastAttemptMs = Number.NEGATIVE_INFINITY;
    }
    if (clock.nowMs() >= deadlineMs) return { kind: "timed_out", to: transferee as NodeId, ms: clock.nowMs() - startedMs };
    await new Promise<void>((resolve) => clock.setTimer(resolve, Math.min(options.pollMs, Math.max(0, deadlineMs - clock.nowMs()))));
  }
}
