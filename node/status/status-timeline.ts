// StatusTimeline: the node's recent history for its status page (elections, term changes, leader
// changes, membership changes, leader transfers, peers lost and found), as a bounded ring kept in
// memory. It is the node's own view: each node records what it saw, when it saw it.

import type { NodeId, Ready, Role } from "../../raft/index.ts";
import type { HostObserver, ProposalOutcomeKind } from "../host-observer.ts";

export type TimelineKind =
  | "started"
  | "pre_vote"
  | "election_started"
  | "election_won"
  | "stepped_down"
  | "leader_changed"
  | "no_leader"
  | "term_changed"
  | "membership_changed"
  | "leader_transfer"
  | "peer_unreachable"
  | "peer_reachable";

/** TimelineEvent is one line of the timeline; `count` > 1 when repeats of the same kind and term were folded into it. */
export interface TimelineEvent {
  readonly seq: number;
  /** atMs: wall-clock time (Date.now) of the latest occurrence. */
  atMs: number;
  readonly kind: TimelineKind;
  readonly term: number;
  readonly text: string;
  count: number;
}

export interface StatusTimelineOptions {
  /** eventsMax bounds the ring: the oldest event is dropped when a new one does not fit. */
  readonly eventsMax: number;
  readonly wallNowMs: () => number;
}

export class StatusTimeline implements HostObserver {
  private readonly options: StatusTimelineOptions;
  private events: TimelineEvent[] = [];
  private nextSeq = 1;
  private role: Role = "follower";
  private leaderId: NodeId | null = null;
  private term = 0;
  private readonly listeners = new Set<() => void>();
  private readySeen = false;

  constructor(options: StatusTimelineOptions) {
    if (!(Number.isInteger(options.eventsMax) && options.eventsMax >= 1)) {
      throw new Error(`StatusTimeline: eventsMax must be a positive integer, got ${options.eventsMax}`);
    }
    this.options = options;
    this.record("started", "node process started");
  }

  /**
   * start tells where the node began: its role and term as loaded from disk. The host may have
   * handled a Ready already (its loop starts at once); then the timeline knows better, and
   * keeps what it saw.
   */
  start(state: { readonly role: Role; readonly term: number; readonly leaderId: NodeId | null }): void {
    if (this.readySeen) return;
    this.role = state.role;
    this.term = state.term;
    this.leaderId = state.leaderId;
  }

  /** recent returns the events, newest first. */
  recent(): readonly TimelineEvent[] {
    return this.events.slice().reverse();
  }

  /** onChange subscribes to new events (the feed pushes at once); returns the unsubscribe function. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * record appends an event. A repeat of the newest event's kind in the same term is folded into
   * it (count, time): a partitioned node starts a pre-vote every election timeout, and those
   * repeats must not push the events that explain the outage out of the ring.
   */
  record(kind: TimelineKind, text: string, term: number = this.term): void {
    const newest = this.events.at(-1);
    const nowMs = this.options.wallNowMs();
    if (newest !== undefined && newest.kind === kind && newest.term === term && newest.text === text) {
      newest.count++;
      newest.atMs = nowMs;
    } else {
      this.events.push({ seq: this.nextSeq++, atMs: nowMs, kind, term, text, count: 1 });
      if (this.events.length > this.options.eventsMax) this.events = this.events.slice(-this.options.eventsMax);
    }
    for (const listener of this.listeners) listener();
  }

  readyHandled(ready: Ready): void {
    this.readySeen = true;
    if (ready.hardState !== undefined && ready.hardState.term !== this.term) {
      const previous = this.term;
      this.term = ready.hardState.term;
      // Before start() the term loaded from disk is not known here: say only where it went.
      this.record("term_changed", previous === 0 ? `term is now ${this.term}` : `term ${previous} → ${this.term}`);
    }
    if (ready.softState !== undefined) this.softStateChanged(ready.softState.role, ready.softState.leaderId);
    for (const entry of ready.committedEntries) {
      if (entry.kind !== "conf_change") continue;
      this.record("membership_changed", `membership: ${entry.change.type} ${entry.change.nodeId} (index ${entry.index})`);
    }
  }

  transferRequested(transferee: NodeId, outcome: "started" | ProposalOutcomeKind): void {
    const text =
      outcome === "started"
        ? `leader transfer to ${transferee} started`
        : `leader transfer to ${transferee} refused (${outcome === "not_leader" ? "not the leader" : "dropped"})`;
    this.record("leader_transfer", text);
  }

  private softStateChanged(role: Role, leaderId: NodeId | null): void {
    const wasRole = this.role;
    const wasLeader = this.leaderId;
    this.role = role;
    this.leaderId = leaderId;
    if (role !== wasRole) {
      if (role === "pre_candidate") this.record("pre_vote", "pre-vote started (asking whether an election could be won)");
      else if (role === "candidate") this.record("election_started", `election started for term ${this.term}`);
      else if (role === "leader") this.record("election_won", `won the election: leader for term ${this.term}`);
      else if (wasRole === "leader") this.record("stepped_down", `stepped down as leader in term ${this.term}`);
    }
    if (leaderId !== wasLeader && role !== "leader") {
      if (leaderId === null) this.record("no_leader", `no leader known in term ${this.term}`);
      else this.record("leader_changed", `leader is now ${leaderId} (term ${this.term})`);
    }
  }
}
