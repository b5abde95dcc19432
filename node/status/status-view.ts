// buildStatusView: what a node's status page shows, computed from what this node knows right now
// (its core's status, its peer links, the peers' /status answers it polled, its applied lease
// table, its timeline). A pure function of its inputs, so the honesty rules are testable:
//
// - the leader marked is the one this node knows, never one a peer merely claims to be;
// - a member this node can reach by neither its peer link nor HTTP is "unreachable", and its last
//   known details are shown with their age, never as current;
// - a follower that has not heard from its leader lately, or knows none, says so (`view.warnings`).

import type { NodeStatus } from "../../protocol/status.ts";
import type { Status } from "../../raft/index.ts";
import type { TimelineEvent } from "./status-timeline.ts";

/**
 * PolledStatus is the part of a peer's GET /status (the wire contract's NodeStatus) this view uses;
 * progress is filled on leaders.
 */
export type PolledStatus = Pick<
  NodeStatus,
  "role" | "term" | "leaderId" | "commitIndex" | "appliedIndex" | "lastIndex" | "snapshotIndex"
> & {
  readonly progress: readonly Pick<NodeStatus["progress"][number], "id" | "matchIndex" | "state" | "recentActive">[];
};

export interface PeerPoll {
  /** status: the last good answer, if any. */
  readonly status: PolledStatus | undefined;
  /** statusAgeMs: how long ago that answer arrived. */
  readonly statusAgeMs: number | undefined;
  /** error: why the latest poll failed (undefined when it succeeded). */
  readonly error: string | undefined;
}

export interface LeaseRow {
  readonly resource: string;
  readonly owner: string;
  readonly token: string;
  readonly ttlMs: number;
  /** timeLeftMs: from the leader's own deadline, or estimated from when this node applied the grant or renewal. */
  readonly timeLeftMs: number | null;
  readonly timeLeftSource: "leader" | "estimate" | "unknown";
  readonly waiters: number;
}

export interface StatusViewInputs {
  readonly nodeId: string;
  readonly wallNowMs: number;
  readonly status: Status;
  readonly peerUrls: ReadonlyMap<string, string>;
  readonly bookingUrl: string;
  /**
   * links: per peer, whether the peer link is up, when (wall clock) the peer was last heard from,
   * and the frames refused from it.
   */
  readonly links: ReadonlyMap<
    string,
    {
      readonly connected: boolean;
      readonly lastContactMs: number | undefined;
      readonly framesRejected?: number;
      readonly lastRejection?: { readonly code: string; readonly reason: string; readonly atMs: number } | undefined;
    }
  >;
  readonly polls: ReadonlyMap<string, PeerPoll>;
  /** pollFreshMs: a poll answer younger than this counts as "reachable over HTTP". */
  readonly pollFreshMs: number;
  /** staleAfterMs: a follower that has not heard from its leader for this long says its view is stale. */
  readonly staleAfterMs: number;
  readonly leases: { readonly rows: readonly LeaseRow[]; readonly total: number; readonly waitersTotal: number };
  readonly timeline: readonly TimelineEvent[];
  /** load: the admission gate's figures (node/admission.ts), when the node has one. */
  readonly load?: LoadView | undefined;
}

/** LoadView: client requests in flight against the admission limit, and the requests shed. */
export interface LoadView {
  readonly depth: number;
  readonly requestQueueMax: number;
  readonly shedTotal: number;
  readonly lastShedAgoMs: number | null;
}

/** shedShownMs: a node that shed requests says so among the page's warnings for this long after the last one. */
export const shedShownMs = 60_000;

/**
 * refusalShownMs: a frame refused from a peer stays among the page's warnings this long. A leader
 * resends what a follower refused every heartbeat, so a refusal that persists stays shown.
 */
export const refusalShownMs = 60_000;

export type Reachability = "self" | "reachable" | "link_down" | "unreachable";

export interface MemberView {
  readonly id: string;
  readonly url: string | null;
  readonly membership: "voter" | "learner" | "not_a_member";
  readonly isSelf: boolean;
  readonly isLeader: boolean;
  readonly reachability: Reachability;
  readonly lastContactAgoMs: number | null;
  /** details: role, term and indexes, from this node itself or from the peer's last /status answer. */
  readonly details: {
    readonly role: string;
    readonly term: number;
    readonly commitIndex: number;
    readonly appliedIndex: number;
    readonly lastIndex: number;
    readonly snapshotIndex: number;
    /** logEntries: entries kept in the log after the snapshot. */
    readonly logEntries: number;
    readonly ageMs: number;
    /** current: false when the details are older than a fresh poll (the member is shown as last known). */
    readonly current: boolean;
  } | null;
  readonly pollError: string | null;
  /** matchIndex and progressState: the leader's replication progress for this member, when the leader's view is known. */
  readonly matchIndex: number | null;
  readonly progressState: string | null;
  /** lag: entries behind the leader's last index (or, without progress, its commit index minus this member's applied index). */
  readonly lag: number | null;
}

export interface StatusView {
  readonly v: 1;
  readonly nodeId: string;
  readonly generatedAtMs: number;
  readonly bookingUrl: string;
  readonly self: { readonly role: string; readonly term: number; readonly leaderId: string | null; readonly url: string | null };
  readonly view: {
    readonly leaderId: string | null;
    readonly leaderUrl: string | null;
    /** leaderContactAgoMs: for a follower, how long since it last heard from the leader (null if unknown). */
    readonly leaderContactAgoMs: number | null;
    /** stale: this node knows no leader, or has not heard from it lately: what it shows may be out of date. */
    readonly stale: boolean;
    readonly warnings: readonly string[];
  };
  readonly members: readonly MemberView[];
  /** replication: the leader's links to each member, as the leader reports them (this node, or its polled /status). */
  readonly replication: {
    readonly leaderId: string | null;
    readonly source: "self" | "polled" | "none";
    readonly links: readonly { readonly to: string; readonly state: string; readonly active: boolean }[];
  };
  readonly leases: StatusViewInputs["leases"] & { readonly appliedIndex: number };
  readonly timeline: readonly TimelineEvent[];
  /** load: requests in flight and shed (null when the node has no admission gate). */
  readonly load: LoadView | null;
}

/** buildStatusView computes the page's view; see the file comment for the rules. */
export function buildStatusView(inputs: StatusViewInputs): StatusView {
  const status = inputs.status;
  const leaderId = status.role === "leader" ? status.id : status.leaderId;
  const leaderStatus = leaderStatusOf(inputs, leaderId);
  const progress = new Map((leaderStatus?.status.progress ?? []).map((peer) => [peer.id as string, peer]));
  const ids = memberIds(inputs);
  const members = ids.map((id) => memberView(inputs, id, leaderId, progress, leaderStatus?.status));
  const leaderContactAgoMs = leaderId === null || leaderId === status.id ? null : contactAgoMs(inputs, leaderId);
  const { warnings, stale } = viewWarnings(inputs, leaderId, leaderContactAgoMs, members);
  return {
    v: 1,
    nodeId: inputs.nodeId,
    generatedAtMs: inputs.wallNowMs,
    bookingUrl: inputs.bookingUrl,
    self: { role: status.role, term: status.term, leaderId, url: inputs.peerUrls.get(status.id) ?? null },
    view: {
      leaderId,
      leaderUrl: leaderId === null ? null : (inputs.peerUrls.get(leaderId) ?? null),
      leaderContactAgoMs,
      stale,
      warnings,
    },
    members,
    replication: {
      leaderId,
      source: leaderStatus?.source ?? "none",
      links: [...progress.values()]
        .filter((peer) => peer.id !== leaderId)
        .map((peer) => ({ to: peer.id, state: peer.state, active: peer.recentActive })),
    },
    leases: { ...inputs.leases, appliedIndex: status.appliedIndex },
    timeline: inputs.timeline,
    load: inputs.load ?? null,
  };
}

/** leaderStatusOf: the leader's own status, when this node is the leader or polled it lately. */
function leaderStatusOf(
  inputs: StatusViewInputs,
  leaderId: string | null,
): { status: PolledStatus; source: "self" | "polled"; ageMs: number } | undefined {
  if (leaderId === null) return undefined;
  if (leaderId === inputs.status.id) return { status: inputs.status, source: "self", ageMs: 0 };
  const poll = inputs.polls.get(leaderId);
  if (poll?.status === undefined || poll.statusAgeMs === undefined || poll.statusAgeMs > inputs.pollFreshMs) return undefined;
  // A peer that no longer says it leads (it stepped down since) is not asked about progress.
  if (poll.status.role !== "leader") return undefined;
  return { status: poll.status, source: "polled", ageMs: poll.statusAgeMs };
}

/** memberIds: the configuration's members first (voters, learners), then address-book peers that are not members. */
function memberIds(inputs: StatusViewInputs): string[] {
  const ids = [...inputs.status.voters, ...inputs.status.learners] as string[];
  for (const id of inputs.peerUrls.keys()) if (!ids.includes(id)) ids.push(id);
  if (!ids.includes(inputs.status.id)) ids.push(inputs.status.id);
  return ids.sort();
}

function contactAgoMs(inputs: StatusViewInputs, id: string): number | null {
  const lastContactMs = inputs.links.get(id)?.lastContactMs;
  return lastContactMs === undefined ? null : Math.max(0, inputs.wallNowMs - lastContactMs);
}

function reachabilityOf(inputs: StatusViewInputs, id: string): Reachability {
  if (id === inputs.status.id) return "self";
  const linkUp = inputs.links.get(id)?.connected === true;
  const poll = inputs.polls.get(id);
  const httpUp = poll?.error === undefined && poll?.statusAgeMs !== undefined && poll.statusAgeMs <= inputs.pollFreshMs;
  if (linkUp) return "reachable";
  return httpUp ? "link_down" : "unreachable";
}

function memberView(
  inputs: StatusViewInputs,
  id: string,
  leaderId: string | null,
  progress: ReadonlyMap<string, PolledStatus["progress"][number]>,
  leader: PolledStatus | undefined,
): MemberView {
  const status = inputs.status;
  const isSelf = id === status.id;
  const reachability = reachabilityOf(inputs, id);
  const poll = inputs.polls.get(id);
  const source: PolledStatus | undefined = isSelf ? status : poll?.status;
  const ageMs = isSelf ? 0 : (poll?.statusAgeMs ?? 0);
  const details =
    source === undefined
      ? null
      : {
          role: source.role,
          term: source.term,
          commitIndex: source.commitIndex,
          appliedIndex: source.appliedIndex,
          lastIndex: source.lastIndex,
          snapshotIndex: source.snapshotIndex,
          logEntries: Math.max(0, source.lastIndex - source.snapshotIndex),
          ageMs,
          current: isSelf || (reachability !== "unreachable" && ageMs <= inputs.pollFreshMs),
        };
  const peerProgress = progress.get(id);
  const matchIndex = peerProgress?.matchIndex ?? null;
  let lag: number | null = null;
  if (leader !== undefined && matchIndex !== null) lag = Math.max(0, leader.lastIndex - matchIndex);
  else if (leader !== undefined && details?.current === true) lag = Math.max(0, leader.commitIndex - details.appliedIndex);
  return {
    id,
    url: inputs.peerUrls.get(id) ?? null,
    membership: status.voters.includes(id as Status["id"])
      ? "voter"
      : status.learners.includes(id as Status["id"])
        ? "learner"
        : "not_a_member",
    isSelf,
    isLeader: id === leaderId,
    reachability,
    lastContactAgoMs: isSelf ? null : contactAgoMs(inputs, id),
    details,
    pollError: isSelf ? null : (poll?.error ?? null),
    matchIndex,
    progressState: peerProgress?.state ?? null,
    lag,
  };
}

/** viewWarnings: the reasons this node's view may be wrong or incomplete, in words for the page. */
function viewWarnings(
  inputs: StatusViewInputs,
  leaderId: string | null,
  leaderContactAgoMs: number | null,
  members: readonly MemberView[],
): { warnings: string[]; stale: boolean } {
  const status = inputs.status;
  const warnings: string[] = [];
  if (leaderId === null) {
    const electing = status.role === "candidate" || status.role === "pre_candidate";
    warnings.push(`${status.id} sees no leader${electing ? ` (it is a ${status.role.replace("_", "-")} in term ${status.term})` : ""}.`);
  } else if (leaderId !== status.id) {
    const link = inputs.links.get(leaderId);
    if (link?.connected !== true) warnings.push(`${status.id} has no link to its leader ${leaderId}: its view may be stale.`);
    else if (leaderContactAgoMs === null || leaderContactAgoMs > inputs.staleAfterMs) {
      const ago = leaderContactAgoMs === null ? "never" : `${(leaderContactAgoMs / 1000).toFixed(1)} s ago`;
      warnings.push(`${status.id} last heard from its leader ${leaderId} ${ago}: its view may be stale.`);
    }
  } else {
    const voters = members.filter((member) => member.membership === "voter");
    const reachable = voters.filter((member) => member.reachability === "self" || member.reachability === "reachable").length;
    if (reachable <= voters.length / 2) {
      warnings.push(`${status.id} leads but reaches only ${reachable} of ${voters.length} voters: it will step down (check-quorum).`);
    }
  }
  const stale = warnings.length > 0;
  const unreachable = members.filter((member) => member.reachability === "unreachable" && member.membership !== "not_a_member");
  if (unreachable.length > 0) warnings.push(`unreachable from ${status.id}: ${unreachable.map((member) => member.id).join(", ")}.`);
  for (const [id, link] of [...inputs.links].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const refusal = link.lastRejection;
    if (refusal === undefined || inputs.wallNowMs - refusal.atMs > refusalShownMs) continue;
    const agoSeconds = (Math.max(0, inputs.wallNowMs - refusal.atMs) / 1000).toFixed(1);
    warnings.push(
      `${status.id} refuses frames from ${id} (${link.framesRejected ?? 1} so far, the last ${agoSeconds} s ago): ${refusal.code}: ${refusal.reason}`,
    );
  }
  const load = inputs.load;
  if (load !== undefined && load.lastShedAgoMs !== null && load.lastShedAgoMs <= shedShownMs) {
    warnings.push(
      `${status.id} is overloaded: it answered ${load.shedTotal} requests 503 overloaded so far (the last ${(load.lastShedAgoMs / 1000).toFixed(1)} s ago), ` +
        `its limit being ${load.requestQueueMax} requests in flight; clients retry after the wait it asks for.`,
    );
  }
  return { warnings, stale };
}
