// Planted bugs in the node's driver and lock service, to show that the simulator finds bugs in the
// production code it runs. Each is a source rewrite, applied to a copy of node/ under
// test-results/mutants/ (tests/support/mutants.ts), never a branch in production code: the
// simulator then runs the copy's LockService. planted-bugs.test.ts requires each to be found.
//
// Plain data: the test (and anyone replaying a failure by hand) applies them.

/** NodeMutation: one text in a file of node/ (a path from the repository root), replaced. */
export interface NodeMutation {
  readonly file: string;
  readonly original: string;
  readonly replacement: string;
}

export interface PlantedNodeBug {
  readonly name: string;
  /** what the bug breaks, in a sentence. */
  readonly breaks: string;
  readonly mutations: readonly NodeMutation[];
}

const driver = "node/driver/raft-driver.ts";
const lockService = "node/lock-service.ts";

export const plantedNodeBugs: readonly PlantedNodeBug[] = [
  {
    name: "vote_saved_only_on_term_change",
    breaks: "a vote cast in a term already on disk is never written, so a restarted node can vote twice in one term",
    mutations: [
      {
        file: driver,
        original: "return hardState.term !== this.savedHardState.term || hardState.votedFor !== this.savedHardState.votedFor;",
        replacement: "return hardState.term !== this.savedHardState.term;",
      },
    ],
  },
  {
    name: "message_sent_before_sync",
    breaks: "every message of a Ready (votes, append acknowledgements) goes out before its write is durable",
    mutations: [
      {
        file: driver,
        original: 'const early = ready.appendsBeforePersist ? ready.messages.filter((message) => message.type === "append_entries") : [];',
        replacement: "const early = ready.messages;",
      },
      {
        file: driver,
        original:
          'const late = ready.appendsBeforePersist ? ready.messages.filter((message) => message.type !== "append_entries") : ready.messages;',
        replacement: "const late: RaftMessage[] = [];",
      },
    ],
  },
  {
    name: "new_leader_keeps_countdowns",
    breaks: "a new leader does not restart each lease's countdown at the full TTL: it treats them as run out",
    mutations: [
      {
        file: lockService,
        original: "      dueCommandsMax: 256,\n    });",
        replacement: '      dueCommandsMax: 256,\n      plantedBug: "keep_countdown_on_new_leader",\n    });',
      },
    ],
  },
  {
    name: "fsync_error_ignored",
    breaks: "a failed write is treated as durable and the node carries on (PostgreSQL's fsync bug)",
    mutations: [
      {
        file: driver,
        original: "        if (!(error instanceof DiskFullError)) throw error;\n",
        replacement:
          "        if (!(error instanceof DiskFullError)) {\n          this.saving = false;\n          then();\n          return;\n        }\n",
      },
    ],
  },
  {
    name: "restart_forgets_hard_state",
    breaks: "a restarted node ignores its stored term and vote",
    mutations: [{ file: driver, original: "      this.storage.setHardState(durable.hardState);\n", replacement: "\n" }],
  },
  {
    name: "coalesce_ignores_gaps",
    breaks: "two appends to one peer are merged even when the second does not continue the first",
    mutations: [
      {
        file: "node/driver/coalesce-messages.ts",
        original: "  if (second.prevLogIndex !== first.prevLogIndex + first.entries.length) return undefined;\n",
        replacement: "\n",
      },
    ],
  },
  {
    name: "read_without_read_index",
    breaks: "a read is served from the node's own state without confirming leadership (ReadIndex)",
    mutations: [
      {
        file: lockService,
        original: "this.driver.read((error) => (error === undefined ? done({ value: read(this.machine) }) : done({ error })));",
        replacement: "done({ value: read(this.machine) });",
      },
    ],
  },
  {
    name: "compaction_past_applied",
    breaks: "compaction drops entries the snapshot does not hold: the snapshot is taken at the last index, past what was applied",
    mutations: [
      {
        file: driver,
        original: "this.storage.createSnapshot(applied, ",
        replacement: "this.storage.createSnapshot(this.storage.lastIndex(), ",
      },
    ],
  },
  {
    name: "leader_acknowledges_before_sync",
    breaks: "the leader does not wait for its own write: it counts its entries durable, commits and answers clients before its fsync",
    mutations: [
      {
        file: driver,
        original: "    this.write(\n      () =>\n        this.options.durableLog.save({",
        replacement:
          "    (this.role === 'leader' && ready.appendsBeforePersist ? (start: () => PromiseLike<void>, then: () => void) => { void start(); then(); } : this.write.bind(this))(\n      () =>\n        this.options.durableLog.save({",
      },
    ],
  },
  {
    name: "snapshot_without_membership",
    breaks: "a snapshot is written without its membership, so a node restarted from it knows no voters",
    mutations: [
      {
        file: driver,
        original: "const confStateAtApplied = this.rawNode.confState();",
        replacement: "const confStateAtApplied = { voters: [], learners: [] };",
      },
    ],
  },
  {
    name: "received_snapshot_not_saved",
    breaks: "a snapshot from the leader is not written (only entries count as a save), yet acknowledged",
    mutations: [
      {
        file: driver,
        original: "if (ready.entries.length > 0 || ready.snapshot !== undefined) return true;",
        replacement: "if (ready.entries.length > 0) return true;",
      },
    ],
  },
  {
    name: "received_snapshot_not_restored",
    breaks: "a snapshot from the leader replaces the log but not the lock state",
    mutations: [
      { file: driver, original: "    if (ready.snapshot !== undefined) this.installSnapshot(ready.snapshot);\n", replacement: "\n" },
    ],
  },
  {
    name: "restore_forgets_locks",
    breaks: "a node restarted from its snapshot starts from an empty lock state",
    mutations: [{ file: lockService, original: "      index === 0\n", replacement: "      index >= 0\n" }],
  },
  {
    name: "membership_commit_not_stored",
    breaks: "a membership change is applied before its commit index is on disk (the real bug the simulator found, planted back)",
    mutations: [
      {
        file: driver,
        original: "const membershipCommitted = this.commitsMembershipChange(ready);",
        replacement: "const membershipCommitted = false;",
      },
    ],
  },
  {
    name: "lease_countdown_on_wall_clock",
    breaks: "the leader counts leases down on the wall clock (Date.now), which steps, instead of the monotonic clock",
    mutations: [
      {
        file: lockService,
        original: "this.timekeeper.applied(this.clock.nowMs(), this.machine, applied);",
        replacement: "this.timekeeper.applied(Date.now(), this.machine, applied);",
      },
      { file: lockService, original: "this.timekeeper.due(this.clock.nowMs())", replacement: "this.timekeeper.due(Date.now())" },
      {
        file: lockService,
        original: "this.timekeeper.becomeLeader(this.clock.nowMs(), this.machine);",
        replacement: "this.timekeeper.becomeLeader(Date.now(), this.machine);",
      },
    ],
  },
  {
    name: "lease_expires_at_half_ttl",
    breaks: "the leader expires every lease after half its TTL",
    mutations: [
      {
        file: lockService,
        original: "      dueCommandsMax: 256,\n    });",
        replacement: '      dueCommandsMax: 256,\n      plantedBug: "expire_at_half_ttl",\n    });',
      },
    ],
  },
];
