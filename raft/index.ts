// The public surface of the core. node/ and simulations/ import from here.

export { assert, assertNever, RaftInvariantError } from "./assert.ts";
export type { RaftConfig } from "./config.ts";
export { RaftConfigError, raftConfigDefaults, validateConfig } from "./config.ts";
export type {
  AppendEntries,
  AppendEntriesResult,
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Heartbeat,
  HeartbeatResult,
  InstallSnapshot,
  InstallSnapshotResult,
  LogIndex,
  NodeId,
  RaftMessage,
  RaftMessageType,
  RequestVote,
  RequestVoteResult,
  Snapshot,
  SnapshotMetadata,
  Term,
  TimeoutNow,
} from "./messages.ts";
export { entryBytes, nodeId } from "./messages.ts";
export type { PeerStatus, ReadOutcome, Ready, SoftState, Status, TransferOutcome } from "./node.ts";
export { mayLeaveBeforePersist, RawNode } from "./node.ts";
export type { DropReason, ProposeOutcome, ReadState, Refusal, Role } from "./raft.ts";
export type { RandomSource } from "./random.ts";
export { createSeededRandom } from "./random.ts";
export type { Storage } from "./storage.ts";
export { MemoryStorage } from "./storage.ts";
