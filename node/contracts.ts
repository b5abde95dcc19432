// The seams of the node process: how it persists the Raft log and how it talks to its peers.
// Each has a real implementation (LevelDB, WebSockets) and can have in-memory doubles in tests.

import type { Entry, HardState, NodeId, RaftMessage, Snapshot } from "../raft/index.ts";

/** DurableState is what a node finds on disk when it starts. */
export interface DurableState {
  readonly hardState: HardState;
  /** snapshot is the newest snapshot, if the node ever took or received one. */
  readonly snapshot: Snapshot | undefined;
  /** entries follow the snapshot (or start at index 1), contiguous, in order. */
  readonly entries: readonly Entry[];
}

/**
 * DurableLog persists a node's Raft state. Every write is fsynced before its promise resolves:
 * the node sends the messages of a Ready only after save() resolves (raft/README.md, the contract).
 */
export interface DurableLog {
  /** load returns everything on disk (empty state for a new data directory). */
  load(): Promise<DurableState>;
  /**
   * save makes one Ready's durable part durable, atomically (one write batch, sync): the hard
   * state, the entries (which replace any stored entries from the first one's index on), and a
   * snapshot received from the leader (which replaces every entry up to its index).
   */
  save(update: { readonly hardState?: HardState; readonly entries: readonly Entry[]; readonly snapshot?: Snapshot }): Promise<void>;
  // save and compact reject with DiskFullError when the disk is full: the write may or may not
  // have reached the disk, and the same write may be tried again (it succeeds once there is
  // space). Any other rejection is a storage failure the node must not survive.
  /** compact records a snapshot this node took at an applied index and deletes the entries it covers. */
  compact(snapshot: Snapshot): Promise<void>;
  close(): Promise<void>;
}

/** DataDirErrorCode: why a data directory cannot be used. Startup fails with a clear message. */
export type DataDirErrorCode = "foreign_data_dir" | "corrupt_data_dir" | "unsupported_format" | "data_dir_locked";

export class DataDirError extends Error {
  readonly code: DataDirErrorCode;
  constructor(code: DataDirErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DataDirError";
    this.code = code;
  }
}

/** PeerLinkStatus is one peer's entry in PeerTransport.peerStatus(). */
export interface PeerLinkStatus {
  readonly connected: boolean;
  /** lastContactMs: wall-clock time (Date.now()) the peer was last heard from. */
  readonly lastContactMs: number | undefined;
  readonly framesRejected?: number;
  /** lastRejection: the latest frame refused from this peer (atMs on the wall clock). */
  readonly lastRejection?: { readonly code: string; readonly reason: string; readonly atMs: number } | undefined;
}

/** PeerTransport carries Raft messages between nodes. Delivery is best effort: Raft tolerates loss. */
export interface PeerTransport {
  /** send queues a message for its `to` peer; it never blocks, and drops the message when the peer's queue is full. */
  send(message: RaftMessage): void;
  /** onMessage registers the handler for messages from authenticated peers. */
  onMessage(handler: (message: RaftMessage) => void): void;
  /**
   * onPeerRefused registers the handler for a refused connection to a peer: nothing listens at its
   * address, so its process is gone (a transport that cannot tell leaves this out). The driver
   * hands it to the core, where a follower that loses its leader so campaigns without waiting out
   * the election timeout (RawNode.peerRefused).
   */
  onPeerRefused?(handler: (peer: NodeId) => void): void;
  /**
   * peerStatus tells, per peer, whether a connection is up, and (transports that check frames)
   * how many frames from it were refused and the latest refusal, for status pages.
   */
  peerStatus(): ReadonlyMap<NodeId, PeerLinkStatus>;
  close(): Promise<void>;
}

/**
 * DiskFullError: a write of the durable log found no space on its disk (ENOSPC, EDQUOT). It was
 * not acknowledged, and the log is ready for the same write again; the node waits for space
 * rather than die, and refuses requests meanwhile.
 */
export class DiskFullError extends Error {
  readonly code = "disk_full";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "DiskFullError";
  }
}
