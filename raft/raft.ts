// Raft is the consensus state machine (etcd raft.go): roles, terms, votes, replication,
// commitment, ReadIndex, leadership transfer and single-server membership change. It is
// synchronous and pure: inputs are tick(), step(message) and the propose* calls; outputs
// accumulate in `outbox`, `readStates` and the log's unstable part, and RawNode (node.ts) hands
// them to the host as a Ready. Section numbers refer to the Raft paper (Ongaro & Ousterhout
// 2014) and, where marked "thesis", to Ongaro's dissertation.

import { assert, assertNever } from "./assert.ts";
import type { RaftConfig } from "./config.ts";
import { validateConfig } from "./config.ts";
import { RaftLog } from "./log.ts";
import type {
  AppendEntries,
  AppendEntriesResult,
  ConfChange,
  ConfState,
  Entry,
  Heartbeat,
  HeartbeatResult,
  InstallSnapshot,
  LogIndex,
  NodeId,
  RaftMessage,
  RequestVote,
  RequestVoteResult,
  Term,
} from "./messages.ts";
import { entryBytes } from "./messages.ts";
import { Progress } from "./progress.ts";
import { committedIndex, majority, voteResult } from "./quorum.ts";
import type { Storage } from "./storage.ts";

export type Role = "follower" | "pre_candidate" | "candidate" | "leader";

/** ProposeOutcome is what a proposal returns: expected outcomes are values, not exceptions. */
export type ProposeOutcome =
  | { readonly kind: "accepted"; readonly index: LogIndex; readonly term: Term }
  | { readonly kind: "not_leader"; readonly leaderHint: NodeId | null }
  | { readonly kind: "dropped"; readonly reason: DropReason };

export type DropReason =
  | "leadership_transfer_in_progress"
  | "too_many_uncommitted_entries"
  | "too_many_pending_reads"
  | "conf_change_pending"
  | "invalid_conf_change"
  | "learner_not_caught_up"
  | "leader_removal_pending"
  | "not_a_voter";

/** Refusal is a ProposeOutcome that did not append anything. */
export type Refusal = Exclude<ProposeOutcome, { kind: "accepted" }>;

/** ReadState says a ReadIndex request may be served once the host has applied up to `index`. */
export interface ReadState {
  readonly requestId: number;
  readonly index: LogIndex;
}

interface PendingRead {
  readonly requestId: number;
  readonly index: LogIndex;
  readonly context: number;
  readonly acks: Set<NodeId>;
}

/** NoLeaderReads are reads queued before the new leader has committed an entry of its term. */
interface QueuedRead {
  readonly requestId: number;
}

/** stepDownReadId marks the internal "read" a removed leader waits for before it steps down (see applyConfChange). */
const stepDownReadId = -1;

export class Raft {
  readonly id: NodeId;
  readonly config: RaftConfig;
  readonly log: RaftLog;
  role: Role = "follower";
  term: Term;
  votedFor: NodeId | null;
  leaderId: NodeId | null = null;
  /** voters and learners are the membership as of the last applied conf_change (or snapshot). */
  voters: NodeId[] = [];
  learners: NodeId[] = [];
  readonly progress = new Map<NodeId, Progress>();
  /** outbox holds messages to send once the Ready they belong to has been persisted. */
  outbox: RaftMessage[] = [];
  readStates: ReadState[] = [];
  droppedReads: number[] = [];

  private readonly votes = new Map<NodeId, boolean>();
  private electionElapsedTicks = 0;
  private heartbeatElapsedTicks = 0;
  private randomizedElectionTimeoutTicks = 0;
  private leadTransferee: NodeId | null = null;
  /** pendingConfIndex: a new conf change may be proposed only once this index is applied. */
  private pendingConfIndex: LogIndex = 0;
  /** selfRemovalIndex: the index of a pending conf change that removes this leader (0 when none). */
  private selfRemovalIndex: LogIndex = 0;
  /** confAppliedIndex is the last index whose conf_change the membership already reflects. */
  private confAppliedIndex: LogIndex = 0;
  private pendingReads: PendingRead[] = [];
  private queuedReads: QueuedRead[] = [];
  private readContextSequence = 0;

  constructor(config: RaftConfig, storage: Storage) {
    validateConfig(config);
    this.id = config.id;
    this.config = config;
    this.log = new RaftLog(storage);
    const { hardState, snapshot } = storage.initialState();
    this.term = hardState.term;
    this.votedFor = hardState.votedFor;
    this.setMembership(snapshot.metadata.confState);
    this.confAppliedIndex = snapshot.metadata.index;
    // Membership follows the log up to the commit index, so a restarted server knows the
    // voters before the host has replayed its entries (the founding add_voter entries included).
    this.applyCommittedConfChanges();
    this.becomeFollower(this.term, null);
  }

  // -------------------------------------------------------------------------------------------
  // Inputs.

  /** tick advances logical time by one tick. */
  tick(): void {
    if (this.role === "leader") this.tickHeartbeat();
    else this.tickElection();
  }

  /**
   * peerRefused: the host found nothing listening at `peer`'s address (a connection to it was
   * refused, so its process is gone). A follower whose leader that is forgets it, at once rather
   * than after an election timeout of silence: it no longer keeps the leader lease of §4.2.3 (so
   * it grants pre-votes and votes), and its election timer is moved on to a heartbeat interval
   * short of the election timeout, so it campaigns within heartbeatIntervalTicks plus the random
   * part of its timeout (0 to electionTimeoutTicks), as it would have had it heard nothing for
   * that long. The other follower, which saw the same refusal, grants its pre-vote; the interval
   * leaves it the time to see it. It cannot start an election against a live leader: a live
   * leader listens, and an election still needs a majority's pre-votes, which a follower that
   * heard from its leader within the election timeout (and saw no refusal) withholds. A stale
   * report (the peer is back, and leads again) costs at most a pre-vote that fails: the leader's
   * next heartbeat restores the follower. Anything else (not a follower, another peer) is ignored.
   */
  peerRefused(peer: NodeId): void {
    if (this.role !== "follower" || this.leaderId !== peer) return;
    this.leaderId = null;
    const elapsedTicks = this.config.electionTimeoutTicks - this.config.heartbeatIntervalTicks;
    this.electionElapsedTicks = Math.max(this.electionElapsedTicks, elapsedTicks);
  }

  /** step handles one message from a peer. */
  step(message: RaftMessage): void {
    if (message.term > this.term) {
      if (!this.stepHigherTerm(message)) return;
    } else if (message.term < this.term) {
      this.stepLowerTerm(message);
      return;
    }
    if (message.type === "request_vote") {
      this.handleRequestVote(message);
      return;
    }
    switch (this.role) {
      case "leader":
        this.stepLeader(message);
        return;
      case "pre_candidate":
      case "candidate":
        this.stepCandidate(message);
        return;
      case "follower":
        this.stepFollower(message);
        return;
      default:
        assertNever(this.role);
    }
  }

  /** propose appends a command to the leader's log; followers answer with the leader they know. */
  propose(data: Uint8Array): ProposeOutcome {
    const refusal = this.refuseProposal();
    if (refusal !== undefined) return refusal;
    return this.appendAndBroadcast({ kind: "normal", term: this.term, index: 0, data });
  }

  /**
   * proposeConfChange proposes one membership step. Only one may be pending: a new one is
   * refused until the previous one is applied (single-server changes, thesis §4.1), and a new
   * leader may not propose one before its no-op is applied (which avoids the single-server
   * change bug found in 2015: the leader must commit an entry of its own term first).
   */
  proposeConfChange(change: ConfChange): ProposeOutcome {
    const refusal = this.refuseProposal();
    if (refusal !== undefined) return refusal;
    if (this.pendingConfIndex > this.log.appliedIndex) return { kind: "dropped", reason: "conf_change_pending" };
    const invalid = this.checkConfChange(change);
    if (invalid !== undefined) return { kind: "dropped", reason: invalid };
    const outcome = this.appendAndBroadcast({ kind: "conf_change", term: this.term, index: 0, change });
    if (outcome.kind === "accepted") {
      this.pendingConfIndex = outcome.index;
      if (change.type === "remove_node" && change.nodeId === this.id) this.selfRemovalIndex = outcome.index;
    }
    return outcome;
  }

  /**
   * readIndex starts a linearizable read (thesis §6.4): the leader records its commit index,
   * confirms with a heartbeat round that it is still leader, and then reports a ReadState; the
   * host serves the read once it has applied up to that index.
   */
  readIndex(requestId: number): Refusal | { readonly kind: "queued" } {
    if (this.role !== "leader") return { kind: "not_leader", leaderHint: this.leaderId };
    if (!this.voters.includes(this.id)) return { kind: "dropped", reason: "leader_removal_pending" };
    if (this.pendingReads.length + this.queuedReads.length >= this.config.readIndexPendingMax) {
      return { kind: "dropped", reason: "too_many_pending_reads" };
    }
    if (!this.committedInCurrentTerm()) {
      // The leader does not yet know the full commit index (§8): wait for its no-op to commit.
      this.queuedReads.push({ requestId });
      return { kind: "queued" };
    }
    this.startRead(requestId);
    return { kind: "queued" };
  }

  /** transferLeadership hands leadership to `transferee` (thesis §3.10). */
  transferLeadership(transferee: NodeId): Refusal | { readonly kind: "started" } {
    if (this.role !== "leader") return { kind: "not_leader", leaderHint: this.leaderId };
    if (transferee === this.id) return { kind: "started" };
    if (!this.voters.includes(transferee)) return { kind: "dropped", reason: "not_a_voter" };
    this.leadTransferee = transferee;
    // The transfer must finish within one election timeout, or it is abandoned (see tickHeartbeat).
    this.electionElapsedTicks = 0;
    const progress = this.progress.get(transferee) as Progress;
    if (progress.matchIndex === this.log.lastIndex()) this.send({ type: "timeout_now", from: this.id, to: transferee, term: this.term });
    else this.sendAppend(transferee, true);
    return { kind: "started" };
  }

  /** campaign starts an election now (tests and hosts that want one); it respects pre-vote. A leader ignores it, as etcd does. */
  campaign(): void {
    if (this.role === "leader") return;
    this.startCampaign(this.config.preVote ? "pre_election" : "election", false);
  }

  // -------------------------------------------------------------------------------------------
  // Called by RawNode.advance once the host has applied entries.

  /** appliedTo records that the host applied up to `index`; conf changes take effect here. */
  appliedTo(appliedEntries: readonly Entry[]): void {
    const last = appliedEntries[appliedEntries.length - 1];
    if (last === undefined) return;
    this.log.appliedTo(last.index);
    for (const entry of appliedEntries) {
      if (entry.kind === "conf_change" && entry.index > this.confAppliedIndex) {
        this.confAppliedIndex = entry.index;
        this.applyConfChange(entry.change);
      }
    }
    this.releaseQueuedReads();
  }

  /** confState is the current membership, for the host's snapshots. */
  confState(): ConfState {
    return { voters: this.voters.slice(), learners: this.learners.slice() };
  }

  /** hardState is what the host must persist before sending this Ready's messages. */
  hardState(): { term: Term; votedFor: NodeId | null; commitIndex: LogIndex } {
    const votedFor = this.config.plantedBug === "vote_not_persisted" ? null : this.votedFor;
    return { term: this.term, votedFor, commitIndex: this.log.commitIndex };
  }

  // -------------------------------------------------------------------------------------------
  // Role changes.

  private becomeFollower(term: Term, leaderId: NodeId | null): void {
    this.reset(term);
    this.role = "follower";
    this.leaderId = leaderId;
  }

  private becomePreCandidate(): void {
    assert(this.role !== "leader", "a leader cannot become a pre-candidate");
    // Pre-vote changes neither the term nor the vote: a lost pre-election leaves no trace.
    this.votes.clear();
    this.role = "pre_candidate";
    this.leaderId = null;
  }

  private becomeCandidate(): void {
    assert(this.role !== "leader", "a leader cannot become a candidate");
    this.reset(this.term + 1);
    this.votedFor = this.id;
    this.role = "candidate";
  }

  private becomeLeader(): void {
    assert(this.role === "candidate", `becomeLeader from ${this.role}`);
    this.reset(this.term);
    this.role = "leader";
    this.leaderId = this.id;
    const self = this.progress.get(this.id);
    if (self !== undefined) {
      self.becomeReplicate();
      self.recentActive = true;
    }
    // §8: a no-op of the new term lets the leader commit (and learn) everything before it.
    this.appendAndBroadcast({ kind: "noop", term: this.term, index: 0 });
    // No membership change may be proposed until everything up to and including the no-op is
    // applied: earlier conf changes may still be unapplied, and the leader must have committed
    // an entry of its own term first (the 2015 single-server change bug).
    this.pendingConfIndex = this.log.lastIndex();
    this.selfRemovalIndex = this.findPendingSelfRemoval();
  }

  /** findPendingSelfRemoval returns the index of an unapplied entry that removes this server (0 if none), whoever proposed it. */
  private findPendingSelfRemoval(): LogIndex {
    let found = 0;
    for (const entry of this.unappliedEntries(this.log.lastIndex())) {
      if (entry.kind === "conf_change" && entry.change.type === "remove_node" && entry.change.nodeId === this.id) found = entry.index;
    }
    return found;
  }

  private reset(term: Term): void {
    if (term !== this.term) {
      assert(term > this.term, `term going backwards: ${this.term} -> ${term}`);
      this.term = term;
      this.votedFor = null;
    }
    this.leaderId = null;
    this.electionElapsedTicks = 0;
    this.heartbeatElapsedTicks = 0;
    this.randomizedElectionTimeoutTicks = this.config.electionTimeoutTicks + this.config.random.nextInt(this.config.electionTimeoutTicks);
    this.leadTransferee = null;
    this.selfRemovalIndex = 0;
    this.votes.clear();
    for (const read of this.pendingReads) if (read.requestId !== stepDownReadId) this.droppedReads.push(read.requestId);
    for (const read of this.queuedReads) this.droppedReads.push(read.requestId);
    this.pendingReads = [];
    this.queuedReads = [];
    this.resetProgress();
  }

  private resetProgress(): void {
    const lastIndex = this.log.lastIndex();
    for (const [id, progress] of this.progress) {
      const fresh = this.newProgress(lastIndex + 1, progress.isLearner);
      // Its own entries count once durable only (see entriesStable).
      if (id === this.id) fresh.matchIndex = this.log.stableLastIndex();
      this.progress.set(id, fresh);
    }
  }

  private newProgress(nextIndex: LogIndex, isLearner: boolean): Progress {
    return new Progress({
      nextIndex,
      isLearner,
      inflightAppendsMax: this.config.inflightAppendsMax,
      inflightBytesMax: this.config.inflightBytesMax,
    });
  }

  // -------------------------------------------------------------------------------------------
  // Ticks.

  private tickElection(): void {
    this.electionElapsedTicks++;
    // The cheap check first: promotable() looks through the unapplied log, so not on every tick.
    if (this.electionElapsedTicks >= this.randomizedElectionTimeoutTicks && this.promotable()) {
      this.electionElapsedTicks = 0;
      this.campaign();
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsedTicks++;
    this.electionElapsedTicks++;
    this.retryLostSnapshots();
    if (this.electionElapsedTicks >= this.config.electionTimeoutTicks) {
      this.electionElapsedTicks = 0;
      if (this.config.checkQuorum && !this.checkQuorumActive()) {
        // Check-quorum (thesis §6.2): a leader cut off from a majority steps down, so clients
        // stop waiting on it and its ReadIndex lease cannot outlive its leadership.
        this.becomeFollower(this.term, null);
        return;
      }
      if (this.leadTransferee !== null) this.leadTransferee = null; // Abandoned: took too long.
    }
    if (this.heartbeatElapsedTicks >= this.config.heartbeatIntervalTicks) {
      this.heartbeatElapsedTicks = 0;
      this.broadcastHeartbeat();
    }
  }

  /**
   * retryLostSnapshots: an InstallSnapshot (or its answer) can be lost, and nothing else would
   * ever take the follower out of the snapshot state. After an election timeout without an
   * answer, probe again; if the follower still lacks the snapshot, the probe's rejection leads to
   * a new one.
   */
  private retryLostSnapshots(): void {
    for (const [id, progress] of this.progress) {
      if (progress.state !== "snapshot") continue;
      progress.snapshotElapsedTicks++;
      if (progress.snapshotElapsedTicks >= this.config.electionTimeoutTicks) {
        progress.becomeProbe();
        this.sendAppend(id, true);
      }
    }
  }

  /** checkQuorumActive reports whether a majority of voters answered since the last check, then clears the marks. */
  private checkQuorumActive(): boolean {
    let active = 0;
    for (const id of this.voters) {
      const progress = this.progress.get(id) as Progress;
      if (id === this.id || progress.recentActive) active++;
    }
    for (const [id, progress] of this.progress) progress.recentActive = id === this.id;
    return active >= majority(this.voters.length);
  }

  // -------------------------------------------------------------------------------------------
  // Elections.

  /** promotable: only a voter with no unapplied membership change or snapshot may campaign. */
  private promotable(): boolean {
    if (!this.voters.includes(this.id)) return false;
    if (this.log.unstableSnapshot !== undefined) return false;
    return !this.hasUnappliedConfChange();
  }

  private hasUnappliedConfChange(): boolean {
    return this.unappliedEntries(this.log.commitIndex).some((entry) => entry.kind === "conf_change");
  }

  /** unappliedEntries returns the entries up to `hi` whose membership change (if any) is not yet reflected. */
  private unappliedEntries(hi: LogIndex): Entry[] {
    const lo = Math.max(this.log.appliedIndex, this.confAppliedIndex, this.log.firstIndex() - 1) + 1;
    return lo > hi ? [] : this.log.slice(lo, hi + 1, Number.MAX_SAFE_INTEGER);
  }

  private startCampaign(kind: "pre_election" | "election", leadershipTransfer: boolean): void {
    if (!this.promotable()) return;
    let voteTerm: Term;
    if (kind === "pre_election") {
      this.becomePreCandidate();
      voteTerm = this.term + 1;
    } else {
      this.becomeCandidate();
      voteTerm = this.term;
    }
    this.votes.set(this.id, true);
    if (voteResult(this.voters, this.votes) === "won") {
      this.winElection(kind);
      return;
    }
    const lastLogIndex = this.log.lastIndex();
    const lastLogTerm = this.log.lastTerm();
    for (const voter of this.voters) {
      if (voter === this.id) continue;
      this.send({
        type: "request_vote",
        from: this.id,
        to: voter,
        term: voteTerm,
        lastLogIndex,
        lastLogTerm,
        preVote: kind === "pre_election",
        leadershipTransfer,
      });
    }
  }

  private winElection(kind: "pre_election" | "election"): void {
    if (kind === "pre_election") this.startCampaign("election", false);
    else this.becomeLeader();
  }

  private handleRequestVote(message: RequestVote): void {
    // §5.2: at most one vote per term, first come first served; a pre-vote binds nothing.
    const canVote =
      this.votedFor === message.from || (this.votedFor === null && this.leaderId === null) || (message.preVote && message.term > this.term);
    const upToDate = this.config.plantedBug === "vote_without_log_check" || this.log.isUpToDate(message.lastLogIndex, message.lastLogTerm);
    const granted = canVote && upToDate;
    this.send({
      type: "request_vote_result",
      from: this.id,
      to: message.from,
      // A granted pre-vote answers in the candidate's future term, so the candidate does not take it for a newer term.
      term: granted ? message.term : this.term,
      preVote: message.preVote,
      voteGranted: granted,
    });
    if (granted && !message.preVote) {
      this.electionElapsedTicks = 0;
      this.votedFor = message.from;
    }
  }

  private handleVoteResult(message: RequestVoteResult): void {
    const expectPreVote = this.role === "pre_candidate";
    if (message.preVote !== expectPreVote) return;
    this.votes.set(message.from, message.voteGranted);
    const result = voteResult(this.voters, this.votes);
    if (result === "won") this.winElection(expectPreVote ? "pre_election" : "election");
    else if (result === "lost") this.becomeFollower(this.term, null);
  }

  // -------------------------------------------------------------------------------------------
  // Term rules for incoming messages.

  /** stepHigherTerm applies §5.1 ("if RPC term > currentTerm, convert to follower"), with the pre-vote and lease exceptions. Returns false to drop the message. */
  private stepHigherTerm(message: RaftMessage): boolean {
    if (message.type === "request_vote") {
      // A server that heard from its leader within the election timeout ignores votes, so a
      // partitioned server rejoining with a high term cannot depose a healthy leader (thesis §4.2.3).
      const inLease = this.config.checkQuorum && this.leaderId !== null && this.electionElapsedTicks < this.config.electionTimeoutTicks;
      if (inLease && !message.leadershipTransfer) return false;
      if (message.preVote) return true; // Never change our term for a pre-vote.
      this.becomeFollower(message.term, null);
      return true;
    }
    if (message.type === "request_vote_result" && message.preVote && message.voteGranted) {
      return true; // Granted pre-votes carry the term we would campaign in, not a newer one.
    }
    const fromLeader = message.type === "append_entries" || message.type === "heartbeat" || message.type === "install_snapshot";
    this.becomeFollower(message.term, fromLeader ? message.from : null);
    return true;
  }

  private stepLowerTerm(message: RaftMessage): void {
    if (message.type === "append_entries" && this.config.plantedBug === "accept_stale_term_append") {
      this.handleAppendEntries(message);
      return;
    }
    if (message.type === "append_entries" || message.type === "heartbeat") {
      // Tell a stale leader about the newer term, so it steps down (with pre-vote and check-quorum
      // it might otherwise never learn of it).
      this.send(this.appendResult(message.from, { success: false, matchIndex: 0, rejectedIndex: 0, hintIndex: 0, hintTerm: 0 }));
    } else if (message.type === "request_vote") {
      // Refuse with our term (Figure 2: the reply carries currentTerm "for candidate to update
      // itself"), or a lagging candidate would never learn the term it must beat.
      this.send({
        type: "request_vote_result",
        from: this.id,
        to: message.from,
        term: this.term,
        preVote: message.preVote,
        voteGranted: false,
      });
    }
    // Anything else from an older term is simply ignored.
  }

  // -------------------------------------------------------------------------------------------
  // Per-role handlers.

  private stepLeader(message: RaftMessage): void {
    switch (message.type) {
      case "append_entries_result":
        this.handleAppendResult(message);
        return;
      case "heartbeat_result":
        this.handleHeartbeatResult(message);
        return;
      case "install_snapshot_result": {
        const progress = this.progress.get(message.from);
        if (progress === undefined) return;
        progress.recentActive = true;
        progress.maybeUpdate(message.matchIndex);
        progress.becomeProbe();
        this.sendAppend(message.from, false);
        return;
      }
      case "append_entries":
      case "heartbeat":
      case "install_snapshot":
        // Two leaders in one term would break election safety (§5.2).
        assert(false, `leader ${this.id} got ${message.type} from ${message.from} in its own term ${this.term}`);
        return;
      case "request_vote":
      case "request_vote_result":
      case "timeout_now":
        return;
      default:
        assertNever(message);
    }
  }

  private stepCandidate(message: RaftMessage): void {
    switch (message.type) {
      case "append_entries":
        this.becomeFollower(message.term, message.from);
        this.handleAppendEntries(message);
        return;
      case "heartbeat":
        this.becomeFollower(message.term, message.from);
        this.handleHeartbeat(message);
        return;
      case "install_snapshot":
        this.becomeFollower(message.term, message.from);
        this.handleInstallSnapshot(message);
        return;
      case "request_vote_result":
        this.handleVoteResult(message);
        return;
      case "append_entries_result":
      case "heartbeat_result":
      case "install_snapshot_result":
      case "request_vote":
      case "timeout_now":
        return;
      default:
        assertNever(message);
    }
  }

  private stepFollower(message: RaftMessage): void {
    switch (message.type) {
      case "append_entries":
        this.electionElapsedTicks = 0;
        this.leaderId = message.from;
        this.handleAppendEntries(message);
        return;
      case "heartbeat":
        this.electionElapsedTicks = 0;
        this.leaderId = message.from;
        this.handleHeartbeat(message);
        return;
      case "install_snapshot":
        this.electionElapsedTicks = 0;
        this.leaderId = message.from;
        this.handleInstallSnapshot(message);
        return;
      case "timeout_now":
        // The leader chose us: campaign at once, skipping pre-vote, and ask voters to ignore their lease.
        this.startCampaign("election", true);
        return;
      case "append_entries_result":
      case "heartbeat_result":
      case "install_snapshot_result":
      case "request_vote":
      case "request_vote_result":
        return;
      default:
        assertNever(message);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Follower side of replication.

  private handleAppendEntries(message: AppendEntries): void {
    if (message.prevLogIndex < this.log.commitIndex) {
      // Old news: everything up to our commit index matches the leader already (§5.4.3).
      this.send(
        this.appendResult(message.from, { success: true, matchIndex: this.log.commitIndex, rejectedIndex: 0, hintIndex: 0, hintTerm: 0 }),
      );
      return;
    }
    const keepSuffix = this.config.plantedBug === "keep_conflicting_suffix";
    // Entries that overlap our log may replace a suffix of it (from the first conflict on).
    const first = message.entries[0];
    const lastIndexBefore = this.log.lastIndex();
    const conflictIndex = first !== undefined && first.index <= lastIndexBefore ? this.log.findConflict(message.entries) : 0;
    const lastNewIndex = this.log.maybeAppend(message.prevLogIndex, message.prevLogTerm, message.leaderCommit, message.entries, keepSuffix);
    if (lastNewIndex !== undefined) {
      if (conflictIndex !== 0 && conflictIndex <= lastIndexBefore) this.withdrawAcknowledgements(conflictIndex);
      this.send(this.appendResult(message.from, { success: true, matchIndex: lastNewIndex, rejectedIndex: 0, hintIndex: 0, hintTerm: 0 }));
      return;
    }
    // Fast backtracking: point the leader at the last entry that could match, skipping every
    // entry of ours whose term is above the leader's prevLogTerm.
    const hint = this.log.findConflictByTerm(Math.min(message.prevLogIndex, this.log.lastIndex()), message.prevLogTerm);
    this.send(
      this.appendResult(message.from, {
        success: false,
        matchIndex: 0,
        rejectedIndex: message.prevLogIndex,
        hintIndex: hint.index,
        hintTerm: hint.term,
      }),
    );
  }

  private handleHeartbeat(message: Heartbeat): void {
    this.log.commitTo(message.commitIndex);
    this.send({ type: "heartbeat_result", from: this.id, to: message.from, term: this.term, readContext: message.readContext });
  }

  private handleInstallSnapshot(message: InstallSnapshot): void {
    const metadata = message.snapshot.metadata;
    if (metadata.index <= this.log.commitIndex) {
      this.send({ type: "install_snapshot_result", from: this.id, to: message.from, term: this.term, matchIndex: this.log.commitIndex });
      return;
    }
    if (this.log.matchTerm(metadata.index, metadata.term)) {
      // We already hold the snapshot's last entry: just learn that it is committed.
      this.log.commitTo(metadata.index);
    } else {
      // Everything past the commit index may differ in the snapshot: no answer may promise it.
      this.withdrawAcknowledgements(this.log.commitIndex + 1);
      this.log.restore(message.snapshot);
      this.setMembership(metadata.confState);
      this.confAppliedIndex = metadata.index;
    }
    this.send({ type: "install_snapshot_result", from: this.id, to: message.from, term: this.term, matchIndex: metadata.index });
  }

  /**
   * withdrawAcknowledgements takes back the successful AppendEntries answers still in the outbox
   * that promise our log from `index` on: the log has just lost those entries (a newer leader's
   * conflicting entries or snapshot replaced them), so the promise would be false once this Ready
   * is written, and the answers leave only then. An older leader counting such an answer could
   * commit an entry that no longer exists here. Each of them answered an older term's leader (a
   * leader never rewrites its own entries), so dropping it is a lost message, which Raft
   * tolerates. Found by the simulator (soak seed 3000365): in one batch n1 acknowledged 270@141
   * to n7, then n2's term-142 append replaced 269 and 270, and the answer to n7 still went out.
   */
  private withdrawAcknowledgements(index: LogIndex): void {
    if (this.outbox.length === 0) return;
    this.outbox = this.outbox.filter(
      (message) => message.type !== "append_entries_result" || !message.success || message.matchIndex < index,
    );
  }

  private appendResult(
    to: NodeId,
    fields: { success: boolean; matchIndex: LogIndex; rejectedIndex: LogIndex; hintIndex: LogIndex; hintTerm: Term },
  ): AppendEntriesResult {
    return { type: "append_entries_result", from: this.id, to, term: this.term, ...fields };
  }

  // -------------------------------------------------------------------------------------------
  // Leader side of replication.

  private handleAppendResult(message: AppendEntriesResult): void {
    const progress = this.progress.get(message.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    if (!message.success) {
      let hintIndex = message.hintIndex;
      if (message.hintTerm > 0) hintIndex = this.log.findConflictByTerm(message.hintIndex, message.hintTerm).index;
      if (progress.maybeDecrTo(message.rejectedIndex, hintIndex)) {
        if (progress.state === "replicate") progress.becomeProbe();
        this.sendAppend(message.from, true);
      }
      return;
    }
    if (!progress.maybeUpdate(message.matchIndex)) return;
    if (progress.state === "probe") progress.becomeReplicate();
    else if (progress.state === "snapshot" && progress.matchIndex + 1 >= this.log.firstIndex()) progress.becomeReplicate();
    else if (progress.state === "replicate") progress.inflights.freeTo(message.matchIndex);

    // A follower that was paused (probing) is sent what it lacks by the streaming loop below; an
    // empty append would only carry the commit index, which the next heartbeat carries too.
    if (this.maybeCommit()) this.broadcastCommit();
    // Keep streaming while there is more to send and room in the window.
    for (let sent = 0; sent < this.config.inflightAppendsMax && this.sendAppend(message.from, false); sent++);
    if (message.from === this.leadTransferee && progress.matchIndex === this.log.lastIndex()) {
      this.send({ type: "timeout_now", from: this.id, to: message.from, term: this.term });
    }
  }

  private handleHeartbeatResult(message: HeartbeatResult): void {
    const progress = this.progress.get(message.from);
    if (progress === undefined) return;
    progress.recentActive = true;
    progress.probeSent = false;
    if (progress.state === "replicate" && progress.inflights.full()) progress.inflights.freeFirst();
    // A follower behind the log gets the next append now: at once in the probe and snapshot states,
    // and in the replicate state only when appends sent a heartbeat ago are still unacknowledged
    // (lost: the append reveals the gap). Appends in flight are not sent again for every answer to
    // a heartbeat that overtook them, which cost an empty append and its answer per commit.
    if (progress.matchIndex < this.log.lastIndex() && progress.appendsOverdue()) this.sendAppend(message.from, true);
    if (message.readContext > 0 && this.voters.includes(message.from)) this.ackReads(message.from, message.readContext);
  }

  /** maybeCommit advances the commit index to what a majority holds, for entries of this term only (§5.4.2). */
  private maybeCommit(): boolean {
    const index = committedIndex(this.voters, (id) => this.progress.get(id)?.matchIndex ?? 0);
    const anyTerm = this.config.plantedBug === "commit_previous_term_by_count";
    const committed = this.log.maybeCommit(index, this.term, anyTerm);
    if (committed) this.releaseQueuedReads();
    return committed;
  }

  private broadcastAppend(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id, true);
  }

  /**
   * broadcastCommit follows a commit advance: each follower with entries still to send gets them
   * now, and the new commit index rides along; the others learn it from the next append or
   * heartbeat (both carry it). An empty append of its own per commit would cost every follower an
   * extra message and answer per committed batch, for news no one waits on: the leader answers
   * clients once it applies, and a follower's commit index is only a hint until then.
   */
  private broadcastCommit(): void {
    for (const id of this.progress.keys()) if (id !== this.id) this.sendAppend(id, false);
  }

  private broadcastHeartbeat(): void {
    const newestRead = this.pendingReads[this.pendingReads.length - 1];
    const readContext = newestRead === undefined ? 0 : newestRead.context;
    for (const [id, progress] of this.progress) {
      if (id === this.id) continue;
      progress.heartbeatSent();
      this.send({
        type: "heartbeat",
        from: this.id,
        to: id,
        term: this.term,
        // Never more than the follower is known to hold: it may not have the entries yet.
        commitIndex: Math.min(progress.matchIndex, this.log.commitIndex),
        readContext,
      });
    }
  }

  /** sendAppend sends `to` the next entries (or a snapshot). Returns false if nothing was sent. */
  private sendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const progress = this.progress.get(to);
    if (progress === undefined || progress.isPaused()) return false;
    const prevLogIndex = progress.nextIndex - 1;
    const prevLogTerm = this.log.term(prevLogIndex);
    if (prevLogTerm === undefined || progress.nextIndex < this.log.firstIndex()) {
      return this.sendSnapshot(to, progress);
    }
    const lastIndex = this.log.lastIndex();
    const hi = Math.min(lastIndex + 1, progress.nextIndex + this.config.entriesPerAppendMax);
    const entries = this.log.slice(progress.nextIndex, hi, this.config.appendBytesMax);
    if (entries.length === 0 && !sendIfEmpty) return false;
    let bytes = 0;
    for (const entry of entries) bytes += entryBytes(entry);
    this.send({
      type: "append_entries",
      from: this.id,
      to,
      term: this.term,
      prevLogIndex,
      prevLogTerm,
      entries,
      leaderCommit: this.log.commitIndex,
    });
    progress.sentEntries(entries.length, prevLogIndex + entries.length, bytes);
    return true;
  }

  private sendSnapshot(to: NodeId, progress: Progress): boolean {
    // A follower that has not answered lately may be down: do not push a whole snapshot at it.
    if (!progress.recentActive) return false;
    const snapshot = this.log.snapshot();
    assert(snapshot.metadata.index > 0, `follower ${to} needs entries before the first index, but there is no snapshot`);
    progress.becomeSnapshot(snapshot.metadata.index);
    this.send({ type: "install_snapshot", from: this.id, to, term: this.term, snapshot });
    return true;
  }

  private appendAndBroadcast(entry: Entry): ProposeOutcome {
    const index = this.log.lastIndex() + 1;
    const placed: Entry = { ...entry, term: this.term, index };
    this.log.append([placed]);
    // The leader's own copy counts towards commit only once the host reports it durable
    // (entriesStable), not now: so its appends may go out while its own disk write runs.
    this.broadcastAppend();
    return { kind: "accepted", index, term: this.term };
  }

  /**
   * entriesStable is called by RawNode.advance once the host has persisted entries: a leader now
   * counts them as its own match (thesis §10.2.1: the leader may write to its disk in parallel
   * with replicating, counting itself only once its entries are durable), which may commit them.
   */
  entriesStable(): void {
    if (this.role !== "leader") return;
    const self = this.progress.get(this.id);
    if (self === undefined || !self.maybeUpdate(this.log.stableLastIndex())) return;
    if (this.maybeCommit()) this.broadcastCommit();
  }

  private refuseProposal(): ProposeOutcome | undefined {
    if (this.role !== "leader") return { kind: "not_leader", leaderHint: this.leaderId };
    if (this.leadTransferee !== null) return { kind: "dropped", reason: "leadership_transfer_in_progress" };
    // While its own removal is pending, the leader appends nothing more: its log must not get
    // ahead of the survivors', or none of them could win the election that follows.
    if (this.selfRemovalIndex > this.log.appliedIndex || !this.voters.includes(this.id))
      return { kind: "dropped", reason: "leader_removal_pending" };
    if (this.log.lastIndex() - this.log.commitIndex >= this.config.uncommittedEntriesMax) {
      return { kind: "dropped", reason: "too_many_uncommitted_entries" };
    }
    return undefined;
  }

  // -------------------------------------------------------------------------------------------
  // ReadIndex.

  private committedInCurrentTerm(): boolean {
    return this.log.term(this.log.commitIndex) === this.term;
  }

  private startRead(requestId: number): void {
    if (this.voters.length === 1) {
      this.readStates.push({ requestId, index: this.log.commitIndex });
      return;
    }
    this.readContextSequence++;
    this.pendingReads.push({ requestId, index: this.log.commitIndex, context: this.readContextSequence, acks: new Set([this.id]) });
    this.broadcastHeartbeat();
  }

  private releaseQueuedReads(): void {
    if (this.role !== "leader" || this.queuedReads.length === 0 || !this.committedInCurrentTerm()) return;
    const queued = this.queuedReads;
    this.queuedReads = [];
    for (const read of queued) this.startRead(read.requestId);
  }

  /** ackReads: a heartbeat answered for context c confirms leadership for every read registered up to c. */
  private ackReads(from: NodeId, readContext: number): void {
    for (const read of this.pendingReads) {
      if (read.context > readContext) break;
      read.acks.add(from);
    }
    this.releaseConfirmedReads();
  }

  /** releaseConfirmedReads serves, in order, the pending reads that a majority of the current voters confirmed. */
  private releaseConfirmedReads(): void {
    const needed = majority(this.voters.length);
    let released = 0;
    for (const read of this.pendingReads) {
      let voterAcks = 0;
      for (const id of read.acks) if (this.voters.includes(id)) voterAcks++;
      if (voterAcks < needed) break;
      if (read.requestId === stepDownReadId) {
        // The new membership knows the removal committed: the removed leader can go.
        this.pendingReads.splice(0, released + 1);
        this.becomeFollower(this.term, null);
        return;
      }
      this.readStates.push({ requestId: read.requestId, index: read.index });
      released++;
    }
    if (released > 0) this.pendingReads.splice(0, released);
  }

  // -------------------------------------------------------------------------------------------
  // Membership.

  private checkConfChange(change: ConfChange): DropReason | undefined {
    const isVoter = this.voters.includes(change.nodeId);
    const isLearner = this.learners.includes(change.nodeId);
    switch (change.type) {
      case "add_voter":
        return "invalid_conf_change"; // Founding entries only; a running cluster adds learners.
      case "add_learner":
        return isVoter || isLearner ? "invalid_conf_change" : undefined;
      case "promote_learner": {
        if (!isLearner) return "invalid_conf_change";
        const progress = this.progress.get(change.nodeId) as Progress;
        const lag = this.log.lastIndex() - progress.matchIndex;
        return lag > this.config.learnerCatchUpEntriesMax ? "learner_not_caught_up" : undefined;
      }
      case "remove_node":
        if (!isVoter && !isLearner) return "invalid_conf_change";
        if (isVoter && this.voters.length === 1) return "invalid_conf_change"; // Would leave no voter.
        return undefined;
      default:
        return assertNever(change);
    }
  }

  private applyConfChange(change: ConfChange): void {
    const id = change.nodeId;
    switch (change.type) {
      case "add_voter":
        if (!this.voters.includes(id)) this.voters.push(id);
        this.learners = this.learners.filter((learner) => learner !== id);
        break;
      case "add_learner":
        if (!this.voters.includes(id) && !this.learners.includes(id)) this.learners.push(id);
        break;
      case "promote_learner":
        if (this.learners.includes(id)) {
          this.learners = this.learners.filter((learner) => learner !== id);
          this.voters.push(id);
        }
        break;
      case "remove_node":
        this.voters = this.voters.filter((voter) => voter !== id);
        this.learners = this.learners.filter((learner) => learner !== id);
        break;
      default:
        assertNever(change);
    }
    this.syncProgress();
    if (this.role !== "leader") return;
    if (!this.voters.includes(this.id)) {
      // A leader that removed itself steps down (thesis §4.2.2), but only once a quorum of the new
      // membership has acknowledged a heartbeat carrying the commit index: until the survivors
      // learn that the removal is committed they still count this server, and if its log is
      // longer than theirs it would refuse them its vote and leave them leaderless forever (the
      // simulator found exactly that). It proposes nothing meanwhile, and check-quorum still
      // deposes it after an election timeout if the survivors do not answer.
      this.readContextSequence++;
      this.pendingReads.push({
        requestId: stepDownReadId,
        index: this.log.commitIndex,
        context: this.readContextSequence,
        acks: new Set([this.id]),
      });
      this.broadcastHeartbeat();
      return;
    }
    if (this.leadTransferee !== null && !this.voters.includes(this.leadTransferee)) this.leadTransferee = null;
    // The quorum changed: entries may be committed now, reads may be confirmed, and new members need the log.
    this.maybeCommit();
    this.releaseConfirmedReads();
    this.broadcastAppend();
  }

  private setMembership(confState: ConfState): void {
    this.voters = confState.voters.slice();
    this.learners = confState.learners.slice();
    this.syncProgress();
  }

  /** syncProgress adds a Progress for each new member and drops those of removed ones. */
  private syncProgress(): void {
    const members = new Set([...this.voters, ...this.learners]);
    for (const id of this.progress.keys()) if (!members.has(id)) this.progress.delete(id);
    for (const id of members) {
      const isLearner = this.learners.includes(id);
      const existing = this.progress.get(id);
      if (existing !== undefined) {
        existing.isLearner = isLearner;
        continue;
      }
      const progress = this.newProgress(this.log.lastIndex() + 1, isLearner);
      if (id === this.id) progress.matchIndex = this.log.stableLastIndex();
      this.progress.set(id, progress);
    }
  }

  private applyCommittedConfChanges(): void {
    const lo = this.log.firstIndex();
    const hi = this.log.commitIndex;
    if (lo > hi) return;
    for (const entry of this.log.slice(lo, hi + 1, Number.MAX_SAFE_INTEGER)) {
      if (entry.kind === "conf_change") this.applyConfChange(entry.change);
    }
    this.confAppliedIndex = hi;
  }

  private send(message: RaftMessage): void {
    this.outbox.push(message);
  }
}
