// The vocabulary of the core: identifiers, log entries, hard state, snapshots and the
// RaftMessage union that travels between peers. Everything here is plain data (no classes),
// so the host can encode it with msgpackr and the simulator can copy it freely.

/** NodeId names one server of the cluster. It is branded so an owner or a resource name cannot be passed by mistake. */
export type NodeId = string & { readonly __brand: "NodeId" };

/** nodeId brands a string as a NodeId. Only edges (config parsing, tests) call it. */
export function nodeId(value: string): NodeId {
  return value as NodeId;
}

/**
 * Term is a Raft term. LogIndex is a position in the replicated log (1 is the first entry,
 * 0 means "none"). Both are plain numbers on purpose: the log code does index arithmetic on
 * every line, and a brand there would need a cast on each, which hides real mistakes instead
 * of catching them (a deviation from STYLE.md §3, written down in raft/README.md).
 */
export type Term = number;
export type LogIndex = number;

/** ConfState is the membership at some log index: the voters, and the learners that replicate but do not vote. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/**
 * ConfChange is one single-server membership step, carried in a `conf_change` log entry.
 * `add_voter` appears only in the founding entries that bootstrap a cluster; a running cluster
 * adds a server as a learner and promotes it once it has caught up.
 */
export type ConfChange =
  | { readonly type: "add_voter"; readonly nodeId: NodeId }
  | { readonly type: "add_learner"; readonly nodeId: NodeId }
  | { readonly type: "promote_learner"; readonly nodeId: NodeId }
  | { readonly type: "remove_node"; readonly nodeId: NodeId };

/**
 * Entry is one log entry. `noop` is what a new leader appends (§8: it lets the leader commit
 * entries of earlier terms); `conf_change` entries change membership when applied; `normal`
 * entries carry the host's command bytes, which the core never looks into.
 */
export type Entry =
  | { readonly kind: "normal"; readonly term: Term; readonly index: LogIndex; readonly data: Uint8Array }
  | { readonly kind: "noop"; readonly term: Term; readonly index: LogIndex }
  | { readonly kind: "conf_change"; readonly term: Term; readonly index: LogIndex; readonly change: ConfChange };

/** HardState is what must be durable before any message that depends on it is sent (Figure 2 "persistent state"). */
export interface HardState {
  readonly term: Term;
  readonly votedFor: NodeId | null;
  readonly commitIndex: LogIndex;
}

/** SnapshotMetadata says which prefix of the log a snapshot replaces and the membership at its end. */
export interface SnapshotMetadata {
  readonly index: LogIndex;
  readonly term: Term;
  readonly confState: ConfState;
}

/** Snapshot is the host's state machine image at `metadata.index`; the core treats `data` as opaque bytes. */
export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Messages. One interface per kind, a `type` literal in snake_case, and a *Result for each
// request, as etcd pairs MsgVote/MsgVoteResp.

interface MessageHeader {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
}

/** RequestVote asks for a vote (§5.2), or, with `preVote`, asks whether a vote would be granted (thesis §9.6). */
export interface RequestVote extends MessageHeader {
  readonly type: "request_vote";
  readonly lastLogIndex: LogIndex;
  readonly lastLogTerm: Term;
  readonly preVote: boolean;
  /** True when the election follows a leadership transfer: voters then ignore their leader lease. */
  readonly leadershipTransfer: boolean;
}

export interface RequestVoteResult extends MessageHeader {
  readonly type: "request_vote_result";
  readonly preVote: boolean;
  readonly voteGranted: boolean;
}

/** AppendEntries replicates entries after (prevLogIndex, prevLogTerm) and carries the leader's commit index (§5.3). */
export interface AppendEntries extends MessageHeader {
  readonly type: "append_entries";
  readonly prevLogIndex: LogIndex;
  readonly prevLogTerm: Term;
  readonly entries: readonly Entry[];
  readonly leaderCommit: LogIndex;
}

/**
 * AppendEntriesResult answers AppendEntries. On success `matchIndex` is the last index known
 * to match the leader. On rejection `rejectedIndex` is the prevLogIndex that did not match and
 * (`hintIndex`, `hintTerm`) let the leader skip a whole term of entries at once (fast
 * backtracking, §5.3 "the leader can decrement nextIndex ... bypass all conflicting entries in
 * that term").
 */
export interface AppendEntriesResult extends MessageHeader {
  readonly type: "append_entries_result";
  readonly success: boolean;
  readonly matchIndex: LogIndex;
  readonly rejectedIndex: LogIndex;
  readonly hintIndex: LogIndex;
  readonly hintTerm: Term;
}

/**
 * Heartbeat keeps followers from starting elections and carries a commit index no higher
 * than what the follower is known to hold. `readContext` is the newest ReadIndex request the
 * leader wants confirmed (0 when none).
 */
export interface Heartbeat extends MessageHeader {
  readonly type: "heartbeat";
  readonly commitIndex: LogIndex;
  readonly readContext: number;
}

export interface HeartbeatResult extends MessageHeader {
  readonly type: "heartbeat_result";
  readonly readContext: number;
}

/** InstallSnapshot sends a follower that is too far behind the leader's snapshot (§7). */
export interface InstallSnapshot extends MessageHeader {
  readonly type: "install_snapshot";
  readonly snapshot: Snapshot;
}

/** InstallSnapshotResult says up to which index the follower's log now matches the leader's. */
export interface InstallSnapshotResult extends MessageHeader {
  readonly type: "install_snapshot_result";
  readonly matchIndex: LogIndex;
}

/** TimeoutNow tells the transferee to start an election at once (thesis §3.10). */
export interface TimeoutNow extends MessageHeader {
  readonly type: "timeout_now";
}

/** RaftMessage is everything one core sends another. */
export type RaftMessage =
  | RequestVote
  | RequestVoteResult
  | AppendEntries
  | AppendEntriesResult
  | Heartbeat
  | HeartbeatResult
  | InstallSnapshot
  | InstallSnapshotResult
  | TimeoutNow;

export type RaftMessageType = RaftMessage["type"];

/** entryBytes estimates an entry's size on the wire, for the byte limits on appends. */
export function entryBytes(entry: Entry): number {
  const headerBytes = 24;
  switch (entry.kind) {
    case "normal":
      return headerBytes + entry.data.byteLength;
    case "noop":
      return headerBytes;
    case "conf_change":
      return headerBytes + 16 + entry.change.nodeId.length;
  }
}
