// Planted disk-layer bugs: each mutant is a copy of node/ with one text of the durable log replaced
// (tests/support/mutants.ts, under test-results/mutants/), and each must be caught by the scenario
// that guards its rule, while the production log passes every scenario. The simulator runs its
// own disk behind the same DurableLog seam (simulations/sim-disk.ts), so these rules of the real
// LevelDB log are proven here, against real LevelDB.

import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Level } from "level";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { type Entry, type HardState, nodeId, type Snapshot } from "../../raft/index.ts";
import { importMutant, removeMutants } from "../../tests/support/mutants.ts";
import { LevelDurableLog } from "./level-durable-log.ts";

type LogClass = typeof LevelDurableLog;
type Log = LevelDurableLog;

const owner = { clusterId: "cluster-m", nodeId: "n1" };
const temporaryDirs: string[] = [];

afterEach(() => {
  for (const dir of temporaryDirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});
afterAll(() => removeMutants());

function freshDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "level-durable-log-mutant-"));
  temporaryDirs.push(dir);
  return path.join(dir, "data");
}

function normals(from: number, to: number, term: number): Entry[] {
  const entries: Entry[] = [];
  for (let index = from; index <= to; index++) entries.push({ kind: "normal", index, term, data: new Uint8Array([index % 256, 0]) });
  return entries;
}

function hardState(term: number, commitIndex: number): HardState {
  return { term, votedFor: nodeId("n1"), commitIndex };
}

const snapshot: Snapshot = {
  metadata: { index: 7, term: 2, confState: { voters: [nodeId("n1")], learners: [] } },
  data: new Uint8Array([7]),
};

/** Each scenario answers whether the log kept its rule. */
const scenarios: Record<string, (Log: LogClass) => Promise<boolean>> = {
  /** A byte flipped at rest in a stored value: the directory must be refused. */
  async refusesDamageAtRest(Log) {
    const dataDir = freshDir();
    const log = await Log.open({ dataDir, ...owner });
    await log.save({ hardState: hardState(1, 2), entries: normals(1, 5, 1) });
    await log.close();
    const db = new Level<string, Uint8Array>(dataDir, { keyEncoding: "utf8", valueEncoding: "view" });
    await db.open();
    const value = new Uint8Array((await db.get("hard_state")) as Uint8Array);
    value[value.length - 1] = (value[value.length - 1] as number) ^ 0x01; // commitIndex 2 becomes 3: plausible, but damaged.
    await db.put("hard_state", value);
    await db.close();
    return Log.open({ dataDir, ...owner }).then(
      async (reopened) => {
        await reopened.close();
        return false;
      },
      (error: unknown) => (error as { code?: string }).code === "corrupt_data_dir",
    );
  },
  /** After a failed batch, a later write must fail too. */
  async failsStop(Log) {
    const dataDir = freshDir();
    const log: Log = await Log.open({ dataDir, ...owner });
    await log.save({ hardState: hardState(1, 1), entries: normals(1, 2, 1) });
    const db = (log as unknown as { db: { batch: (...args: unknown[]) => Promise<void> } }).db;
    const batch = db.batch;
    db.batch = () => {
      db.batch = batch;
      return Promise.reject(new Error("EIO"));
    };
    const first = await log.save({ entries: normals(3, 3, 1) }).then(
      () => "saved",
      () => "failed",
    );
    const second = await log.save({ entries: normals(3, 3, 1) }).then(
      () => "saved",
      () => "failed",
    );
    await log.close();
    return first === "failed" && second === "failed";
  },
  /** A snapshot from the leader replaces the whole log, stale entries past it included. */
  async snapshotReplacesLog(Log) {
    const dataDir = freshDir();
    const log = await Log.open({ dataDir, ...owner });
    await log.save({ hardState: hardState(1, 3), entries: normals(1, 10, 1) });
    await log.save({ hardState: hardState(2, 7), snapshot, entries: normals(8, 9, 2) });
    // The read-back verification refusing the result (a gap after the snapshot) also shows the rule broken.
    const loaded = await log.load().catch(() => undefined);
    await log.close();
    return loaded !== undefined && loaded.entries.length === 2 && loaded.entries[1]?.index === 9;
  },
  /** Entries that conflict from index 5 on replace the stored log from 5: a longer stale suffix goes too. */
  async truncatesConflictingSuffix(Log) {
    const dataDir = freshDir();
    const log = await Log.open({ dataDir, ...owner });
    await log.save({ hardState: hardState(1, 3), entries: normals(1, 10, 1) });
    await log.save({ hardState: hardState(2, 3), entries: normals(5, 6, 2) });
    await log.close();
    const reopened = await Log.open({ dataDir, ...owner }).catch(() => undefined);
    const loaded = await reopened?.load();
    await reopened?.close();
    return loaded !== undefined && loaded.entries.map((entry) => `${entry.index}@${entry.term}`).join(" ") === "1@1 2@1 3@1 4@1 5@2 6@2";
  },
  /** A compaction deletes exactly the entries its snapshot covers: the later ones stay. */
  async compactionKeepsLaterEntries(Log) {
    const dataDir = freshDir();
    const log = await Log.open({ dataDir, ...owner });
    await log.save({ hardState: hardState(2, 10), entries: normals(1, 10, 2) });
    await log.compact(snapshot);
    await log.close();
    const reopened = await Log.open({ dataDir, ...owner }).catch(() => undefined);
    const loaded = await reopened?.load();
    await reopened?.close();
    return loaded?.snapshot?.metadata.index === 7 && loaded.entries.map((entry) => entry.index).join(" ") === "8 9 10";
  },
  /**
   * A compaction stores its snapshot (synced), then clears the entries it covers: a crash between
   * the two leaves those entries, and the log must still open and load as compacted.
   */
  async compactionInterruptedBeforeClear(Log) {
    const dataDir = freshDir();
    const log: Log = await Log.open({ dataDir, ...owner });
    await log.save({ hardState: hardState(2, 10), entries: normals(1, 10, 2) });
    (log as unknown as { db: { clear: () => Promise<void> } }).db.clear = () => Promise.resolve(); // The crash came first.
    await log.compact(snapshot);
    await log.close();
    const reopened = await Log.open({ dataDir, ...owner }).catch(() => undefined);
    const loaded = await reopened?.load();
    await reopened?.close();
    return loaded?.snapshot?.metadata.index === 7 && loaded.entries.map((entry) => entry.index).join(" ") === "8 9 10";
  },
  /** A compaction whose snapshot never reaches the disk must leave the log as it was: nothing is cleared before the snapshot is stored. */
  async compactionClearsOnlyAfterItsSnapshot(Log) {
    const dataDir = freshDir();
    const log: Log = await Log.open({ dataDir, ...owner });
    await log.save({ hardState: hardState(2, 10), entries: normals(1, 10, 2) });
    (log as unknown as { db: { batch: () => Promise<void> } }).db.batch = () => Promise.reject(new Error("EIO"));
    await log.compact(snapshot).catch(() => undefined);
    await log.close();
    const reopened = await Log.open({ dataDir, ...owner }).catch(() => undefined);
    const loaded = await reopened?.load();
    await reopened?.close();
    return loaded?.snapshot === undefined && loaded?.entries.length === 10;
  },
  /** A snapshot's membership survives a restart (a node restarted from it must know its voters). */
  async snapshotKeepsMembership(Log) {
    const dataDir = freshDir();
    const log = await Log.open({ dataDir, ...owner });
    const withMembers: Snapshot = {
      metadata: { index: 7, term: 2, confState: { voters: [nodeId("n1"), nodeId("n2")], learners: [nodeId("n3")] } },
      data: new Uint8Array([7]),
    };
    await log.save({ hardState: hardState(2, 7), snapshot: withMembers, entries: [] });
    await log.close();
    const reopened = await Log.open({ dataDir, ...owner }).catch(() => undefined);
    const loaded = await reopened?.load();
    await reopened?.close();
    return JSON.stringify(loaded?.snapshot?.metadata.confState) === JSON.stringify(withMembers.metadata.confState);
  },
  /**
   * Every batch asks LevelDB to sync (fsync its write-ahead log) before the save resolves: a
   * machine that loses power must not lose what the node already promised. A process kill cannot
   * show a missing fsync (the page cache survives it), so the batches' options are watched.
   */
  async syncsEveryWrite(Log) {
    const dataDir = freshDir();
    const log: Log = await Log.open({ dataDir, ...owner });
    const db = (log as unknown as { db: { batch: (operations: unknown, options?: { sync?: boolean }) => Promise<void> } }).db;
    const batch = db.batch.bind(db);
    const syncs: (boolean | undefined)[] = [];
    db.batch = (operations, options) => {
      syncs.push(options?.sync);
      return batch(operations, options);
    };
    await log.save({ hardState: hardState(1, 0), entries: [] }); // A vote or a term alone.
    await log.save({ entries: normals(1, 10, 1) });
    await log.save({ hardState: hardState(2, 10), entries: normals(11, 11, 2) });
    await log.compact(snapshot);
    await log.close();
    return syncs.length === 4 && syncs.every((sync) => sync === true);
  },
  /**
   * A save is atomic: when the disk takes one batch and fails every later one, a reopened log
   * holds the state before the save or the state after it, never a mix (one batch per save).
   */
  async savesAtomically(Log) {
    const dataDir = freshDir();
    const log: Log = await Log.open({ dataDir, ...owner });
    await log.save({ hardState: hardState(1, 2), entries: normals(1, 2, 1) });
    const db = (log as unknown as { db: { batch: (...args: unknown[]) => Promise<void> } }).db;
    const batch = db.batch.bind(db);
    let allowed = 1;
    db.batch = (...args: unknown[]) => (allowed-- > 0 ? batch(...args) : Promise.reject(new Error("EIO")));
    await log.save({ hardState: hardState(2, 4), entries: normals(3, 4, 2) }).catch(() => undefined);
    await log.close();
    const reopened = await Log.open({ dataDir, ...owner }).catch(() => undefined);
    const loaded = await reopened?.load();
    await reopened?.close();
    if (loaded === undefined) return false;
    const state = `${loaded.hardState.term}/${loaded.hardState.commitIndex}: ${loaded.entries.map((entry) => `${entry.index}@${entry.term}`).join(" ")}`;
    return state === "1/2: 1@1 2@1" || state === "2/4: 1@1 2@1 3@2 4@2";
  },
};

const mutants: [name: string, file: string, original: string, replacement: string, guard: keyof typeof scenarios][] = [
  [
    "checksum not checked",
    "node/persistence/durable-codec.ts",
    "  if (stored !== computed) {",
    "  if (stored !== computed && false) {",
    "refusesDamageAtRest",
  ],
  [
    "a failed write forgotten (retry and carry on)",
    "node/persistence/level-durable-log.ts",
    "      this.failure ??= error instanceof Error ? error : new Error(String(error));\n",
    "\n",
    "failsStop",
  ],
  [
    "a received snapshot keeps the stored entries past it",
    "node/persistence/level-durable-log.ts",
    "        operations.push(...this.deleteEntries(this.tracked.snapshotIndex + 1, this.tracked.lastIndex));\n",
    "\n",
    "snapshotReplacesLog",
  ],
  [
    "a conflicting suffix longer than the new entries is kept",
    "node/persistence/level-durable-log.ts",
    "        operations.push(...this.deleteEntries(next.lastIndex + 1, this.tracked.lastIndex));\n",
    "\n",
    "truncatesConflictingSuffix",
  ],
  [
    "compaction deletes an entry its snapshot does not hold",
    "node/persistence/level-durable-log.ts",
    "await this.clearEntriesThrough(next.snapshotIndex);",
    "await this.clearEntriesThrough(next.snapshotIndex + 1);",
    "compactionKeepsLaterEntries",
  ],
  [
    "a snapshot's learners are not read back",
    "node/persistence/durable-codec.ts",
    'learners: nodeIdList(asFields(fieldOf(metadata, "confState"), "membership"), "learners"),',
    "learners: [],",
    "snapshotKeepsMembership",
  ],
  [
    "a write that changes only the hard state is not synced",
    "node/persistence/level-durable-log.ts",
    "      await this.db.batch(operations, { sync: true });",
    '      await this.db.batch(operations, { sync: operations.some((operation) => operation.key !== "hard_state") });',
    "syncsEveryWrite",
  ],
  [
    "a save written as one batch per record (a crash between them leaves a mix)",
    "node/persistence/level-durable-log.ts",
    "      await this.writeBatch(operations, next);\n      this.tracked = next;\n",
    "      for (const operation of operations) await this.writeBatch([operation], next);\n      this.tracked = next;\n",
    "savesAtomically",
  ],
  [
    "reading takes the entries a compaction left at or below its snapshot",
    "node/persistence/level-durable-log.ts",
    "    if (keyIndex <= snapshotIndex) continue;\n",
    "\n",
    "compactionInterruptedBeforeClear",
  ],
  [
    "a compaction clears its entries before its snapshot is stored",
    "node/persistence/level-durable-log.ts",
    '      await this.writeBatch([{ type: "put", key: snapshotKey, value }], next);\n      this.tracked = next;\n      await this.clearEntriesThrough(next.snapshotIndex);\n',
    '      await this.clearEntriesThrough(next.snapshotIndex);\n      await this.writeBatch([{ type: "put", key: snapshotKey, value }], next);\n      this.tracked = next;\n',
    "compactionClearsOnlyAfterItsSnapshot",
  ],
];

describe("the durable log's planted bugs are caught", () => {
  it("the production log keeps every rule", async () => {
    for (const [name, scenario] of Object.entries(scenarios)) expect(await scenario(LevelDurableLog), name).toBe(true);
  });

  it.each(mutants)("mutant: %s", async (_name, file, original, replacement, guard) => {
    const mutant = await importMutant<{ LevelDurableLog: LogClass }>("node", "persistence/level-durable-log.ts", {
      file,
      original,
      replacement,
    });
    expect(await scenarios[guard]?.(mutant.LevelDurableLog)).toBe(false);
  });
});
