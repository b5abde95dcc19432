// Planted bugs exist only to show that the simulator's checkers bite: each one breaks a single
// rule of the Raft paper, and simulations/planted-bugs.test.ts shows the simulator finds it.
//
// This module is for tests. The lint rules (biome.json) forbid importing it from node/,
// client/ and scheduler/, and node/'s configuration schema accepts no such field, so a
// production process cannot turn one on.

/** PlantedBug names one deliberate violation of the Raft rules. */
export type PlantedBug =
  /** §5.4.1 skipped: a vote is granted without checking that the candidate's log is up to date. */
  | "vote_without_log_check"
  /** §5.2 / Figure 2 broken: votedFor is never persisted, so a restarted server can vote twice in one term. */
  | "vote_not_persisted"
  /** §5.4.2 / Figure 8 broken: entries of earlier terms are committed by counting replicas. */
  | "commit_previous_term_by_count"
  /** §5.3 broken: a follower keeps its conflicting entries instead of truncating them. */
  | "keep_conflicting_suffix"
  /** §5.1 broken: AppendEntries from a stale term is accepted. */
  | "accept_stale_term_append"
  /** Figure 2 broken on the new path: while a write is in flight, every message (acknowledgements and votes too) may leave. */
  | "acknowledge_while_persisting";

export const plantedBugs: readonly PlantedBug[] = [
  "vote_without_log_check",
  "vote_not_persisted",
  "commit_previous_term_by_count",
  "keep_conflicting_suffix",
  "accept_stale_term_append",
  "acknowledge_while_persisting",
];
