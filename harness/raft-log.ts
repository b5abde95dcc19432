// Reads a stopped lock node's Raft log from its LevelDB data directory, for checks that must look
// at what the cluster actually decided, in its order: each committed entry's lock command, by
// Raft index. The node must be stopped (LevelDB allows one process at a time), and must not have
// compacted its log (start it with SCTEC_SNAPSHOT_ENTRIES set high), or the early entries are gone.

import { join } from "node:path";
import { decodeCommand } from "../lock/codec.ts";
import type { LockCommand } from "../lock/types.ts";
import { LevelDurableLog } from "../node/persistence/level-durable-log.ts";

export interface LoggedCommand {
  readonly index: number;
  readonly term: number;
  readonly command: LockCommand;
}

export interface CommittedLog {
  readonly nodeId: string;
  readonly commitIndex: number;
  /** commands: every committed entry that carries a lock command, in index order (no-ops and membership changes left out). */
  readonly commands: readonly LoggedCommand[];
}

/**
 * readCommittedLog opens node `nodeId`'s data directory under `dataRoot` (ProcessCluster's layout)
 * and returns its committed lock commands. Throws if the log was compacted by a snapshot.
 */
export async function readCommittedLog(dataRoot: string, nodeId: string, clusterId = "sctec-local"): Promise<CommittedLog> {
  const log = await LevelDurableLog.open({ dataDir: join(dataRoot, nodeId), clusterId, nodeId });
  try {
    const state = await log.load();
    if (state.snapshot !== undefined && state.snapshot.metadata.index > 0) {
      throw new Error(
        `${nodeId}'s log was compacted up to index ${state.snapshot.metadata.index}: the early entries are gone (start the nodes with SCTEC_SNAPSHOT_ENTRIES set high)`,
      );
    }
    const commitIndex = state.hardState.commitIndex;
    const commands: LoggedCommand[] = [];
    for (const entry of state.entries) {
      if (entry.index > commitIndex) break;
      if (entry.kind === "normal") commands.push({ index: entry.index, term: entry.term, command: decodeCommand(entry.data) });
    }
    return { nodeId, commitIndex, commands };
  } finally {
    await log.close();
  }
}

/**
 * sameCommittedPrefix checks Raft's log matching on what the nodes kept: over the indexes two logs
 * both committed, they hold the same commands. Returns the first disagreement, or undefined.
 */
export function firstDisagreement(logs: readonly CommittedLog[]): string | undefined {
  const [first, ...others] = logs;
  if (first === undefined) return undefined;
  const byIndex = new Map(first.commands.map((logged) => [logged.index, JSON.stringify(logged.command)]));
  for (const other of others) {
    const shared = Math.min(first.commitIndex, other.commitIndex);
    for (const logged of other.commands) {
      if (logged.index > shared) break;
      if (byIndex.get(logged.index) !== JSON.stringify(logged.command)) {
        return `${first.nodeId} and ${other.nodeId} disagree at index ${logged.index}`;
      }
    }
  }
  return undefined;
}
