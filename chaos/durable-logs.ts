// After a history, with every node stopped: each node's durable Raft log, read back from its
// LevelDB directory with the node's own reader (node/persistence), compared index by index
// across the nodes over what each knows to be committed, and each node's state machine rebuilt
// from its snapshot and log up to the index they all converged on, then compared by digest.
// Equal logs must give equal states; a snapshot that lost or reordered anything would not.

import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { decodeCommand, decodeLockSnapshot, encodeLockSnapshot } from "../lock/codec.ts";
import { LockStateMachine, lockLimitsDefaults } from "../lock/lock-state-machine.ts";
import { LevelDurableLog } from "../node/persistence/level-durable-log.ts";
import type { Entry } from "../raft/index.ts";

export interface NodeLog {
  readonly id: string;
  readonly snapshotIndex: number;
  readonly lastIndex: number;
  /** committedIndex: up to here this node's entries are known committed (stored commit index, or the converged index). */
  readonly committedIndex: number;
  /** stateDigest: SHA-256 of the state machine rebuilt up to the converged index (when the node reached it). */
  readonly stateDigest: string | undefined;
}

export interface LogComparison {
  readonly ok: boolean;
  readonly nodes: NodeLog[];
  /** comparedIndexes: how many indexes were held by two or more nodes and compared. */
  readonly comparedIndexes: number;
  readonly problems: string[];
}

/**
 * The node's lock limits, as node/main.ts sets them with the default timing (ttlMsMin is 1.5 ×
 * the longest election timeout, 2 × 15 ticks × 10 ms): replaying with other limits could refuse
 * what the node accepted.
 */
const replayLimits = { ...lockLimitsDefaults, ttlMsMin: 450 };

/**
 * compareDurableLogs reads each node's directory (nodes that never started have none) and
 * compares them. `converged`: the index every node in `convergedIds` had applied before it was
 * stopped.
 */
export async function compareDurableLogs(
  dataDirs: ReadonlyMap<string, string>,
  converged: { index: number; ids: readonly string[] } | undefined,
): Promise<LogComparison> {
  const problems: string[] = [];
  const logs = new Map<string, { entries: Map<number, Entry>; node: NodeLog }>();
  for (const [id, dataDir] of dataDirs) {
    if (!existsSync(dataDir)) continue;
    let durable: LevelDurableLog | undefined;
    try {
      durable = await LevelDurableLog.open({ dataDir, clusterId: "sctec-local", nodeId: id });
      const state = await durable.load();
      const snapshotIndex = state.snapshot?.metadata.index ?? 0;
      const entries = new Map(state.entries.map((entry) => [entry.index, entry]));
      const lastIndex = state.entries.at(-1)?.index ?? snapshotIndex;
      const reached = converged?.ids.includes(id) === true;
      const committedIndex = Math.max(state.hardState.commitIndex, reached ? (converged?.index ?? 0) : 0);
      let stateDigest: string | undefined;
      // A node that compacted past the converged index cannot be rebuilt at it; the others still compare.
      if (reached && converged !== undefined && snapshotIndex <= converged.index) {
        stateDigest = digestAt(state.snapshot?.data, snapshotIndex, entries, converged.index, id, problems);
      }
      logs.set(id, { entries, node: { id, snapshotIndex, lastIndex, committedIndex, stateDigest } });
    } catch (error) {
      problems.push(`${id}: cannot read its data directory: ${(error as Error).message}`);
    } finally {
      await durable?.close();
    }
  }
  const comparedIndexes = compareEntries(logs, problems);
  const digests = [...logs.values()].map((log) => log.node).filter((node) => node.stateDigest !== undefined);
  const first = digests[0];
  for (const node of digests) {
    if (node.stateDigest !== first?.stateDigest) {
      problems.push(
        `state at index ${converged?.index}: ${node.id} differs from ${first?.id} (${node.stateDigest?.slice(0, 12)} vs ${first?.stateDigest?.slice(0, 12)})`,
      );
    }
  }
  return { ok: problems.length === 0, nodes: [...logs.values()].map((log) => log.node), comparedIndexes, problems };
}

/** compareEntries checks every index two or more nodes hold as committed: same term, same content. Returns how many it compared. */
function compareEntries(logs: ReadonlyMap<string, { entries: Map<number, Entry>; node: NodeLog }>, problems: string[]): number {
  const highest = Math.max(0, ...[...logs.values()].map((log) => log.node.committedIndex));
  let compared = 0;
  for (let index = 1; index <= highest && problems.length < 20; index++) {
    const holders = [...logs.values()].filter((log) => index <= log.node.committedIndex && log.entries.has(index));
    if (holders.length < 2) continue;
    compared++;
    const [reference, ...others] = holders as [(typeof holders)[number], ...(typeof holders)[number][]];
    const expected = entryFingerprint(reference.entries.get(index) as Entry);
    for (const other of others) {
      const actual = entryFingerprint(other.entries.get(index) as Entry);
      if (actual !== expected) problems.push(`index ${index}: ${reference.node.id} has ${expected}, ${other.node.id} has ${actual}`);
    }
  }
  return compared;
}

function entryFingerprint(entry: Entry): string {
  const content =
    entry.kind === "normal" ? Buffer.from(entry.data).toString("base64") : entry.kind === "conf_change" ? JSON.stringify(entry.change) : "";
  return `term ${entry.term} ${entry.kind} ${createHash("sha256").update(content).digest("hex").slice(0, 12)}`;
}

/** digestAt rebuilds the state machine from the snapshot and entries up to `index`, the way the node does, and hashes its snapshot. */
function digestAt(
  snapshotData: Uint8Array | undefined,
  snapshotIndex: number,
  entries: ReadonlyMap<number, Entry>,
  index: number,
  id: string,
  problems: string[],
): string | undefined {
  const machine =
    snapshotData === undefined
      ? new LockStateMachine(replayLimits)
      : LockStateMachine.restore(decodeLockSnapshot(snapshotData), replayLimits);
  machine.applyNoop(snapshotIndex);
  for (let position = snapshotIndex + 1; position <= index; position++) {
    const entry = entries.get(position);
    if (entry === undefined) {
      problems.push(`${id}: entry ${position} is missing below the converged index ${index}`);
      return undefined;
    }
    if (entry.kind === "normal") machine.apply(position, decodeCommand(entry.data));
    else machine.applyNoop(position);
  }
  return createHash("sha256").update(encodeLockSnapshot(machine.snapshot())).digest("hex");
}
