// coalesceMessages merges the messages of one Ready that go to the same peer back to back, so
// that each peer gets about one frame (one socket write) per Ready instead of one per proposal.
//
// Why: the core answers every proposal with an AppendEntries to each follower (it does not know
// where a batch of proposals ends), and every commit with another one. Under load a Ready held
// dozens of them per follower, and each became a WebSocket frame, a socket write, a frame decode
// on the follower and an AppendEntriesResult back: socket writes were the leader's largest cost.
//
// Only merges that the core itself could have produced are made, so the receiver sees nothing new:
// - AppendEntries b right after a to the same peer in the same term, b continuing where a ends
//   (b.prevLogIndex = a.prevLogIndex + a.entries.length): one AppendEntries from a's start with
//   both sets of entries and b's commit index. That is what sendAppend would have sent for both at
//   once, and the follower's commit (min of leaderCommit and its last new index) ends the same.
//   The merged message stays within the core's own bounds per append (entriesPerAppendMax,
//   appendBytesMax).
// - A successful AppendEntriesResult b right after a successful a in the same term, with
//   b.matchIndex ≥ a.matchIndex: b alone. The leader only ever raises a match index, so a adds
//   nothing; dropping it is a lost message, which Raft tolerates.
// Everything else goes out unchanged and in order; the order among messages to one peer is kept.

import { type AppendEntries, type AppendEntriesResult, entryBytes, type RaftMessage } from "../../raft/index.ts";

export interface CoalesceLimits {
  /** entriesPerAppendMax and appendBytesMax bound one merged AppendEntries, as they bound the core's own. */
  readonly entriesPerAppendMax: number;
  readonly appendBytesMax: number;
}

export function coalesceMessages(messages: readonly RaftMessage[], limits: CoalesceLimits): RaftMessage[] {
  if (messages.length < 2) return messages.slice();
  const out: RaftMessage[] = [];
  /** lastTo: the position in `out` of the last message to each peer, the only one a new message may merge into. */
  const lastTo = new Map<string, number>();
  /** appendBytes: the entry bytes of each AppendEntries in `out`, by position (computed once). */
  const appendBytes = new Map<number, number>();
  for (const message of messages) {
    const position = lastTo.get(message.to);
    const previous = position === undefined ? undefined : out[position];
    if (position !== undefined && previous !== undefined) {
      if (previous.type === "append_entries" && message.type === "append_entries") {
        const previousBytes = appendBytes.get(position) ?? bytesOf(previous);
        const merged = mergeAppends(previous, previousBytes, message, limits);
        if (merged !== undefined) {
          out[position] = merged.message;
          appendBytes.set(position, merged.bytes);
          continue;
        }
      } else if (previous.type === "append_entries_result" && message.type === "append_entries_result") {
        if (supersedes(previous, message)) {
          out[position] = message;
          continue;
        }
      }
    }
    lastTo.set(message.to, out.length);
    out.push(message);
  }
  return out;
}

function mergeAppends(
  first: AppendEntries,
  firstBytes: number,
  second: AppendEntries,
  limits: CoalesceLimits,
): { message: AppendEntries; bytes: number } | undefined {
  if (second.term !== first.term || second.from !== first.from) return undefined;
  if (second.prevLogIndex !== first.prevLogIndex + first.entries.length) return undefined;
  if (first.entries.length + second.entries.length > limits.entriesPerAppendMax) return undefined;
  const bytes = firstBytes + bytesOf(second);
  // A single entry may exceed appendBytesMax (the core sends it alone); merging never makes that worse.
  if (bytes > limits.appendBytesMax && first.entries.length > 0 && second.entries.length > 0) return undefined;
  return {
    message: { ...first, entries: [...first.entries, ...second.entries], leaderCommit: Math.max(first.leaderCommit, second.leaderCommit) },
    bytes,
  };
}

function supersedes(first: AppendEntriesResult, second: AppendEntriesResult): boolean {
  return (
    first.success && second.success && second.term === first.term && second.from === first.from && second.matchIndex >= first.matchIndex
  );
}

function bytesOf(message: AppendEntries): number {
  let bytes = 0;
  for (const entry of message.entries) bytes += entryBytes(entry);
  return bytes;
}
