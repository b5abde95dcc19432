// Progress is the leader's view of one follower (etcd tracker/): how much of the log it is
// known to hold (matchIndex), what to send next (nextIndex), and a flow-control state.
//
//   probe     — we do not know where the follower's log ends: send one append, wait for its answer.
//   replicate — the follower is in step: stream appends optimistically, bounded by Inflights.
//   snapshot  — a snapshot is on its way: send nothing until it is answered.

import { assert } from "./assert.ts";
import type { LogIndex } from "./messages.ts";

export type ProgressState = "probe" | "replicate" | "snapshot";

/**
 * Inflights bounds the appends in flight to one follower, by count and by bytes, so a slow
 * follower never makes the leader queue without limit (bounded pipelining).
 */
export class Inflights {
  private readonly lastIndexes: LogIndex[] = [];
  private readonly sizes: number[] = [];
  private bytes = 0;
  private readonly countMax: number;
  private readonly bytesMax: number;

  constructor(countMax: number, bytesMax: number) {
    this.countMax = countMax;
    this.bytesMax = bytesMax;
  }

  add(lastIndex: LogIndex, bytes: number): void {
    assert(!this.full(), "Inflights.add on a full window");
    this.lastIndexes.push(lastIndex);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  /** freeTo forgets every append whose last index is <= `index` (the follower has it). */
  freeTo(index: LogIndex): void {
    let count = 0;
    while (count < this.lastIndexes.length && (this.lastIndexes[count] as LogIndex) <= index) {
      this.bytes -= this.sizes[count] as number;
      count++;
    }
    if (count > 0) {
      this.lastIndexes.splice(0, count);
      this.sizes.splice(0, count);
    }
  }

  /** freeFirst forgets the oldest append; a heartbeat answer shows the follower is alive, so let one more out. */
  freeFirst(): void {
    const first = this.lastIndexes[0];
    if (first !== undefined) this.freeTo(first);
  }

  full(): boolean {
    return this.lastIndexes.length >= this.countMax || this.bytes >= this.bytesMax;
  }

  count(): number {
    return this.lastIndexes.length;
  }

  reset(): void {
    this.lastIndexes.length = 0;
    this.sizes.length = 0;
    this.bytes = 0;
  }
}

export class Progress {
  matchIndex: LogIndex = 0;
  nextIndex: LogIndex;
  state: ProgressState = "probe";
  /** pendingSnapshotIndex is the index of the snapshot being sent, while in state "snapshot". */
  pendingSnapshotIndex: LogIndex = 0;
  /** snapshotElapsedTicks counts ticks since the snapshot went out; an unanswered one is retried. */
  snapshotElapsedTicks = 0;
  /** recentActive is set by any answer from the follower and cleared every election timeout (check-quorum). */
  recentActive = false;
  /** probeSent pauses a probing follower until it answers the one append we sent. */
  probeSent = false;
  isLearner: boolean;
  readonly inflights: Inflights;
  /**
   * sentAtHeartbeat and sentAtPreviousHeartbeat: the last index sent to the follower when the last
   * two heartbeats went out. Entries sent before the previous heartbeat and still not acknowledged
   * by a heartbeat's answer were lost, or the follower is stuck (see Raft.handleHeartbeatResult).
   */
  sentAtHeartbeat: LogIndex = 0;
  sentAtPreviousHeartbeat: LogIndex = 0;

  constructor(options: { nextIndex: LogIndex; isLearner: boolean; inflightAppendsMax: number; inflightBytesMax: number }) {
    this.nextIndex = options.nextIndex;
    this.isLearner = options.isLearner;
    this.inflights = new Inflights(options.inflightAppendsMax, options.inflightBytesMax);
  }

  /** heartbeatSent records what had been sent when a heartbeat went out. */
  heartbeatSent(): void {
    this.sentAtPreviousHeartbeat = this.sentAtHeartbeat;
    this.sentAtHeartbeat = this.nextIndex - 1;
  }

  /**
   * appendsOverdue: in the replicate state, whether entries sent before the previous heartbeat are
   * still not acknowledged. Then an append (or its answer) was probably lost. Younger ones are
   * probably just on their way, so an answer to a heartbeat that overtook them is no reason to send again.
   */
  appendsOverdue(): boolean {
    return this.state !== "replicate" || this.matchIndex < this.sentAtPreviousHeartbeat;
  }

  becomeProbe(): void {
    // After a snapshot, the follower holds at least the snapshot: probe from just after it.
    if (this.state === "snapshot") {
      this.nextIndex = Math.max(this.matchIndex + 1, this.pendingSnapshotIndex + 1);
    } else {
      this.nextIndex = this.matchIndex + 1;
    }
    this.resetState("probe");
  }

  becomeReplicate(): void {
    this.nextIndex = this.matchIndex + 1;
    this.resetState("replicate");
  }

  becomeSnapshot(snapshotIndex: LogIndex): void {
    this.resetState("snapshot");
    this.pendingSnapshotIndex = snapshotIndex;
    this.snapshotElapsedTicks = 0;
  }

  /** maybeUpdate records that the follower holds everything up to `index`; false if that is old news. */
  maybeUpdate(index: LogIndex): boolean {
    let updated = false;
    if (this.matchIndex < index) {
      this.matchIndex = index;
      updated = true;
      this.probeSent = false;
    }
    this.nextIndex = Math.max(this.nextIndex, index + 1);
    return updated;
  }

  /**
   * maybeDecrTo handles a rejected append of prevLogIndex `rejectedIndex`. `hintIndex` is where
   * the follower's log may match. Returns false when the rejection is stale (an answer to an
   * append sent before a newer one).
   */
  maybeDecrTo(rejectedIndex: LogIndex, hintIndex: LogIndex): boolean {
    if (this.state === "replicate") {
      if (rejectedIndex <= this.matchIndex) return false;
      this.nextIndex = this.matchIndex + 1;
      return true;
    }
    if (this.nextIndex - 1 !== rejectedIndex) return false;
    this.nextIndex = Math.max(Math.min(rejectedIndex, hintIndex + 1), this.matchIndex + 1);
    this.probeSent = false;
    return true;
  }

  /** sentEntries updates the flow control after an append of `count` entries ending at `lastIndex` went out. */
  sentEntries(count: number, lastIndex: LogIndex, bytes: number): void {
    if (this.state === "replicate") {
      if (count > 0) {
        this.nextIndex = lastIndex + 1;
        this.inflights.add(lastIndex, bytes);
      }
    } else if (this.state === "probe") {
      this.probeSent = true;
    } else {
      assert(false, `sentEntries in state ${this.state}`);
    }
  }

  isPaused(): boolean {
    switch (this.state) {
      case "probe":
        return this.probeSent;
      case "replicate":
        return this.inflights.full();
      case "snapshot":
        return true;
    }
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshotIndex = 0;
    this.inflights.reset();
  }
}
