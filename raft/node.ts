// RawNode is the only surface node/ and simulations/ use (etcd RawNode): feed it ticks,
// messages and proposals; take a Ready; do what it says, in order; call advance().

import { assert } from "./assert.ts";
import type { RaftConfig } from "./config.ts";
import type { ConfChange, ConfState, Entry, HardState, LogIndex, NodeId, RaftMessage, Snapshot, Term } from "./messages.ts";
import type { ProgressState } from "./progress.ts";
import type { ProposeOutcome, ReadState, Refusal, Role } from "./raft.ts";
import { Raft } from "./raft.ts";
import type { Storage } from "./storage.ts";

/** SoftState is volatile: it need not be persisted, but hosts like to know when it changes. */
export interface SoftState {
  readonly role: Role;
  readonly leaderId: NodeId | null;
  /**
   * term: the term this role is held in, as of the Ready. The core may step on while the Ready is
   * written (see messagesWhilePersisting), so its status() may already be of a later term: a
   * leader's Ready can be handled after the core has stepped down to a newer term.
   */
  readonly term: Term;
}

/**
 * Ready is the work the core hands to the host. The host must do it in this order:
 *
 *  1. Persist durably (fsync) `hardState`, `entries` and `snapshot`, then append `entries` to
 *     (and apply `snapshot` to) the Storage the core reads. `entries` may overwrite a suffix of
 *     the stored log: everything from the first entry's index on is replaced.
 *  2. Only then send `messages`: a vote or an append acknowledgement promises that the data
 *     behind it is durable (Figure 2: "update persistent state before responding to RPCs").
 *     The exception: when `appendsBeforePersist` is true, the `append_entries` messages may be
 *     sent before step 1 (thesis §10.2.1). They promise nothing about this server's disk: a
 *     leader counts its own entries towards commit only once advance() reports them persisted.
 *     It is false when the Ready changes the term or the vote, which must be durable before any
 *     message of the new term leaves (a lone voter wins its election within one Ready).
 *  3. Install `snapshot` into the state machine, then apply `committedEntries` in order. They
 *     are committed: applying them may be made visible to clients.
 *  4. Serve `readStates` once the state machine has applied up to their index; fail
 *     `droppedReads` (the leader lost leadership before confirming them).
 *  5. Call advance(ready).
 *
 * While a Ready's write is in flight the host may go on feeding the core (tick, step, propose,
 * readIndex, transferLeadership) and send what messagesWhilePersisting() hands out; it may not
 * call ready() again before advance(). Everything else the core produces meanwhile waits for the
 * next Ready, and so for the next write.
 */
export interface Ready {
  readonly softState: SoftState | undefined;
  readonly hardState: HardState | undefined;
  readonly entries: readonly Entry[];
  readonly snapshot: Snapshot | undefined;
  readonly messages: readonly RaftMessage[];
  /** appendsBeforePersist: the `append_entries` in `messages` may be sent before persisting (see above). */
  readonly appendsBeforePersist: boolean;
  readonly committedEntries: readonly Entry[];
  readonly readStates: readonly ReadState[];
  readonly droppedReads: readonly number[];
}

/** PeerStatus is the leader's view of one member, for status pages. */
export interface PeerStatus {
  readonly id: NodeId;
  readonly isLearner: boolean;
  readonly matchIndex: LogIndex;
  readonly nextIndex: LogIndex;
  readonly state: ProgressState;
  readonly recentActive: boolean;
}

/** Status is a read-only summary of the core. */
export interface Status {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: Term;
  readonly votedFor: NodeId | null;
  readonly leaderId: NodeId | null;
  readonly commitIndex: LogIndex;
  readonly appliedIndex: LogIndex;
  readonly firstIndex: LogIndex;
  readonly lastIndex: LogIndex;
  readonly snapshotIndex: LogIndex;
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  /** progress is filled on the leader only. */
  readonly progress: readonly PeerStatus[];
}

export type ReadOutcome = Refusal | { readonly kind: "queued" };
export type TransferOutcome = Refusal | { readonly kind: "started" };

export class RawNode {
  private readonly raft: Raft;
  private previousSoftState: SoftState;
  private previousHardState: HardState;
  private outstanding: Ready | undefined = undefined;

  constructor(config: RaftConfig, storage: Storage) {
    this.raft = new Raft(config, storage);
    this.previousSoftState = this.softState();
    this.previousHardState = storage.initialState().hardState;
  }

  /** tick advances logical time by one tick; the host calls it every tickIntervalMs. */
  tick(): void {
    this.raft.tick();
  }

  /** peerRefused tells the core that a connection to `peer` was refused: nothing listens there (see Raft.peerRefused). */
  peerRefused(peer: NodeId): void {
    this.raft.peerRefused(peer);
  }

  /** step hands the core one message from a peer. */
  step(message: RaftMessage): void {
    assert(message.to === this.raft.id, `message for ${message.to} delivered to ${this.raft.id}`);
    this.raft.step(message);
  }

  /** propose appends `data` as a normal entry (leader only). The host learns it committed when an entry with this index and term is applied. */
  propose(data: Uint8Array): ProposeOutcome {
    return this.raft.propose(data);
  }

  /** proposeConfChange proposes one membership step (leader only). */
  proposeConfChange(change: ConfChange): ProposeOutcome {
    return this.raft.proposeConfChange(change);
  }

  /** readIndex starts a linearizable read; its ReadState (or a drop) arrives in a later Ready. */
  readIndex(requestId: number): ReadOutcome {
    return this.raft.readIndex(requestId);
  }

  /** transferLeadership asks the leader to hand leadership to `transferee`. */
  transferLeadership(transferee: NodeId): TransferOutcome {
    return this.raft.transferLeadership(transferee);
  }

  /** campaign starts an election at once (subject to pre-vote). */
  campaign(): void {
    this.raft.campaign();
  }

  /** hasReady reports whether ready() would return work. */
  hasReady(): boolean {
    const raft = this.raft;
    if (raft.outbox.length > 0 || raft.readStates.length > 0 || raft.droppedReads.length > 0) return true;
    if (raft.log.unstableEntries.length > 0 || raft.log.unstableSnapshot !== undefined) return true;
    if (raft.log.hasCommittedToApply()) return true;
    if (!sameHardState(raft.hardState(), this.previousHardState)) return true;
    return !sameSoftState(this.softState(), this.previousSoftState);
  }

  /**
   * messagesWhilePersisting takes out of the outbox the messages that may leave before the host's
   * write in flight (if any) is durable, and leaves every other message for the next Ready. They
   * are the ones that promise nothing about this server's disk (mayLeaveBeforePersist): a
   * leader's heartbeats, appends and snapshots, and the answers to heartbeats, each of a term
   * already durable here. So a leader whose fsync is slow still heartbeats, replicates and hears
   * its followers, and a follower still answers heartbeats; append acknowledgements, votes, a new
   * term, and applying entries wait for the write (etcd's asynchronous storage writes, narrowed).
   */
  messagesWhilePersisting(): RaftMessage[] {
    const raft = this.raft;
    if (raft.outbox.length === 0) return [];
    // The term of the last Ready advanced: durable (a host writes every change of term before advance).
    const durableTerm = this.previousHardState.term;
    const early: RaftMessage[] = [];
    const held: RaftMessage[] = [];
    const anything = raft.config.plantedBug === "acknowledge_while_persisting";
    for (const message of raft.outbox) (anything || mayLeaveBeforePersist(message, durableTerm) ? early : held).push(message);
    raft.outbox = held;
    return early;
  }

  /** ready returns the next batch of work, or undefined when there is none. Call advance() before asking again. */
  ready(): Ready | undefined {
    assert(this.outstanding === undefined, "ready() called again before advance()");
    if (!this.hasReady()) return undefined;
    const raft = this.raft;
    const softState = this.softState();
    const hardState = raft.hardState();
    const previous = this.previousHardState;
    const ready: Ready = {
      softState: sameSoftState(softState, this.previousSoftState) ? undefined : softState,
      hardState: sameHardState(hardState, this.previousHardState) ? undefined : hardState,
      entries: raft.log.unstableEntries.slice(),
      snapshot: raft.log.unstableSnapshot,
      messages: raft.outbox,
      appendsBeforePersist: hardState.term === previous.term && hardState.votedFor === previous.votedFor,
      committedEntries: raft.log.committedToApply(raft.config.applyBytesMax),
      readStates: raft.readStates,
      droppedReads: raft.droppedReads,
    };
    raft.outbox = [];
    raft.readStates = [];
    raft.droppedReads = [];
    this.outstanding = ready;
    return ready;
  }

  /** advance tells the core the host has done everything `ready` asked. */
  advance(ready: Ready): void {
    assert(this.outstanding === ready, "advance() with a Ready that is not the outstanding one");
    this.outstanding = undefined;
    const raft = this.raft;
    if (ready.softState !== undefined) this.previousSoftState = ready.softState;
    if (ready.hardState !== undefined) this.previousHardState = ready.hardState;
    if (ready.snapshot !== undefined) {
      raft.log.stableSnapshotTo(ready.snapshot.metadata.index);
      raft.log.appliedIndex = Math.max(raft.log.appliedIndex, ready.snapshot.metadata.index);
    }
    const lastEntry = ready.entries[ready.entries.length - 1];
    if (lastEntry !== undefined) {
      raft.log.stableTo(lastEntry.index, lastEntry.term);
      raft.entriesStable();
    }
    raft.appliedTo(ready.committedEntries);
  }

  /** confState is the current membership; pass it to Storage.createSnapshot at the applied index. */
  confState(): ConfState {
    return this.raft.confState();
  }

  /** status summarises the core for status pages, metrics and tests. */
  status(): Status {
    const raft = this.raft;
    const progress: PeerStatus[] = [];
    if (raft.role === "leader") {
      for (const [id, peer] of raft.progress) {
        progress.push({
          id,
          isLearner: peer.isLearner,
          matchIndex: peer.matchIndex,
          nextIndex: peer.nextIndex,
          state: peer.state,
          recentActive: peer.recentActive,
        });
      }
    }
    return {
      id: raft.id,
      role: raft.role,
      term: raft.term,
      votedFor: raft.votedFor,
      leaderId: raft.leaderId,
      commitIndex: raft.log.commitIndex,
      appliedIndex: raft.log.appliedIndex,
      firstIndex: raft.log.firstIndex(),
      lastIndex: raft.log.lastIndex(),
      snapshotIndex: raft.log.snapshot().metadata.index,
      voters: raft.voters.slice(),
      learners: raft.learners.slice(),
      progress,
    };
  }

  /**
   * logEntries returns this core's log entries [lo, hi), clamped to what it holds (compacted
   * entries are gone). For checkers and status pages; it copies nothing the core would mutate.
   */
  logEntries(lo: LogIndex, hi: LogIndex): readonly Entry[] {
    const log = this.raft.log;
    const from = Math.max(lo, log.firstIndex());
    const to = Math.min(hi, log.lastIndex() + 1);
    return from < to ? log.slice(from, to, Number.MAX_SAFE_INTEGER) : [];
  }

  /** entryTerm returns the term of the entry at `index` in this core's log, if it holds it. */
  entryTerm(index: LogIndex): Term | undefined {
    return this.raft.log.term(index);
  }

  private softState(): SoftState {
    return { role: this.raft.role, leaderId: this.raft.leaderId, term: this.raft.term };
  }
}

/**
 * mayLeaveBeforePersist: whether `message` may be sent while a write of this server is in flight.
 * Only messages that promise nothing about the sender's disk, and only in a term already durable
 * on it: a leader's heartbeat, append and snapshot (thesis §10.2.1: the leader counts its own
 * entries only once advance() reports them durable), and a follower's answer to a heartbeat (it
 * says "I heard you in this term", which the term on disk backs). Never an append or snapshot
 * acknowledgement (it promises the acknowledged log is on disk), a vote answer (it promises the
 * vote is), nor anything of a term not yet on disk (a server that restarts in an older term must
 * not have spoken in a newer one). The host asserts the same rule on what it sends.
 */
export function mayLeaveBeforePersist(message: RaftMessage, durableTerm: Term): boolean {
  if (message.term !== durableTerm) return false;
  switch (message.type) {
    case "heartbeat":
    case "heartbeat_result":
    case "append_entries":
    case "install_snapshot":
      return true;
    default:
      return false;
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.votedFor === b.votedFor && a.commitIndex === b.commitIndex;
}

/** sameSoftState compares role and leader only: a change of term alone is reported by the hard state. */
function sameSoftState(a: SoftState, b: SoftState): boolean {
  return a.role === b.role && a.leaderId === b.leaderId;
}
