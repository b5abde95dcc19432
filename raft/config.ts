// The core's configuration, with every unit in its name and every queue bounded, validated
// before the core starts (etcd Config.validate()).

import type { NodeId } from "./messages.ts";
import type { PlantedBug } from "./planted-bugs.ts";
import type { RandomSource } from "./random.ts";

export interface RaftConfig {
  /** id is this server's identity; it must not change across restarts. */
  readonly id: NodeId;
  /** electionTimeoutTicks is the base election timeout; each wait is drawn from [e, 2e). */
  readonly electionTimeoutTicks: number;
  /** heartbeatIntervalTicks is how often a leader sends heartbeats; must be below the election timeout. */
  readonly heartbeatIntervalTicks: number;
  /** preVote makes a server ask whether it could win before it raises its term (thesis §9.6). */
  readonly preVote: boolean;
  /** checkQuorum makes a leader step down when it has not heard from a majority for an election timeout. */
  readonly checkQuorum: boolean;
  /** entriesPerAppendMax bounds the entries in one AppendEntries message (batching). */
  readonly entriesPerAppendMax: number;
  /** appendBytesMax bounds the entry bytes in one AppendEntries message. */
  readonly appendBytesMax: number;
  /** inflightAppendsMax bounds the unacknowledged appends to one follower (pipelining). */
  readonly inflightAppendsMax: number;
  /** inflightBytesMax bounds the unacknowledged entry bytes to one follower. */
  readonly inflightBytesMax: number;
  /** uncommittedEntriesMax bounds the leader's entries past its commit index; proposals beyond are dropped. */
  readonly uncommittedEntriesMax: number;
  /** readIndexPendingMax bounds the ReadIndex requests waiting for a quorum. */
  readonly readIndexPendingMax: number;
  /** applyBytesMax bounds the committed entry bytes handed to the host in one Ready. */
  readonly applyBytesMax: number;
  /** learnerCatchUpEntriesMax: a learner may be promoted once it lags the leader's log by at most this many entries. */
  readonly learnerCatchUpEntriesMax: number;
  /** random spreads election timeouts; pass a seeded source for reproducible runs. */
  readonly random: RandomSource;
  /** plantedBug turns on one deliberate bug; tests of the simulator only (see planted-bugs.ts). */
  readonly plantedBug?: PlantedBug;
}

/** RaftConfigDefaults are sensible values for everything but the id and the random source. */
export const raftConfigDefaults = {
  electionTimeoutTicks: 10,
  heartbeatIntervalTicks: 2,
  preVote: true,
  checkQuorum: true,
  entriesPerAppendMax: 256,
  appendBytesMax: 1024 * 1024,
  inflightAppendsMax: 64,
  inflightBytesMax: 8 * 1024 * 1024,
  uncommittedEntriesMax: 10_000,
  readIndexPendingMax: 10_000,
  applyBytesMax: 4 * 1024 * 1024,
  learnerCatchUpEntriesMax: 32,
} as const;

/** RaftConfigError lists every problem found in a configuration at once. */
export class RaftConfigError extends Error {
  readonly code = "invalid_raft_config";
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid raft config: ${problems.join("; ")}`);
    this.name = "RaftConfigError";
    this.problems = problems;
  }
}

/** validateConfig throws RaftConfigError unless every field is in range. */
export function validateConfig(config: RaftConfig): void {
  const problems: string[] = [];
  const positiveIntegers = [
    "electionTimeoutTicks",
    "heartbeatIntervalTicks",
    "entriesPerAppendMax",
    "appendBytesMax",
    "inflightAppendsMax",
    "inflightBytesMax",
    "uncommittedEntriesMax",
    "readIndexPendingMax",
    "applyBytesMax",
    "learnerCatchUpEntriesMax",
  ] as const;
  for (const name of positiveIntegers) {
    const value = config[name];
    if (!Number.isSafeInteger(value) || value < 1) problems.push(`${name} must be a positive integer, got ${value}`);
  }
  if (typeof config.id !== "string" || config.id.length === 0) problems.push("id must be a non-empty string");
  if (config.electionTimeoutTicks <= config.heartbeatIntervalTicks) {
    problems.push(
      `electionTimeoutTicks (${config.electionTimeoutTicks}) must exceed heartbeatIntervalTicks (${config.heartbeatIntervalTicks})`,
    );
  }
  if (problems.length > 0) throw new RaftConfigError(problems);
}
