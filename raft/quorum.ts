// Majority arithmetic, kept apart from the rest so it can be read (and tested) on its own
// (etcd quorum/). Only voters count; learners never do.

import type { LogIndex, NodeId } from "./messages.ts";

/** majority is the smallest number of voters that forms a quorum. */
export function majority(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * committedIndex returns the highest index that a majority of voters hold: sort the voters'
 * match indexes high to low and take the one at position majority - 1.
 */
export function committedIndex(voters: readonly NodeId[], matchIndexOf: (id: NodeId) => LogIndex): LogIndex {
  if (voters.length === 0) return 0;
  const matches = voters.map(matchIndexOf).sort((a, b) => b - a);
  return matches[majority(voters.length) - 1] as LogIndex;
}

export type VoteResult = "won" | "lost" | "pending";

/** voteResult tallies granted and refused votes among `voters`; votes from non-voters are ignored. */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  let granted = 0;
  let refused = 0;
  for (const id of voters) {
    const vote = votes.get(id);
    if (vote === true) granted++;
    else if (vote === false) refused++;
  }
  const needed = majority(voters.length);
  if (granted >= needed) return "won";
  if (refused > voters.length - needed) return "lost";
  return "pending";
}
