// crash-writer is the child process of the crash-durability test (level-durable-log.test.ts): it
// appends one entry per synced save to a LevelDurableLog, compacting now and then, and prints each
// index on its own line only after that save has resolved. The test kills it with SIGKILL mid-loop
// and checks that every printed index survived: a resolved save is durable.
//
// Usage: tsx node/persistence/crash-writer.ts <dataDir> <savesMax>

import type { Entry } from "../../raft/index.ts";
import { nodeId } from "../../raft/index.ts";
import { LevelDurableLog } from "./level-durable-log.ts";

const compactEveryEntries = 25;
const entriesKeptAfterCompact = 10;

async function main(): Promise<void> {
  const [dataDir, savesMaxText] = process.argv.slice(2);
  const savesMax = Number(savesMaxText);
  if (dataDir === undefined || !Number.isSafeInteger(savesMax) || savesMax < 1) {
    throw new Error("usage: crash-writer <dataDir> <savesMax>");
  }
  const log = await LevelDurableLog.open({ dataDir, clusterId: "crash-cluster", nodeId: "crash-node" });
  const confState = { voters: [nodeId("crash-node")], learners: [] };
  for (let index = 1; index <= savesMax; index++) {
    // Payloads of varying size, with zero bytes, so the batch sizes differ from save to save.
    const data = new Uint8Array(1 + (index % 97) * 7).fill(index % 256);
    const entry: Entry = { kind: "normal", term: 1, index, data };
    await log.save({ hardState: { term: 1, votedFor: null, commitIndex: index }, entries: [entry] });
    process.stdout.write(`${index}\n`); // Synchronous for pipes on Linux: printed means saved.
    if (index % compactEveryEntries === 0) {
      const snapshotIndex = index - entriesKeptAfterCompact;
      await log.compact({ metadata: { index: snapshotIndex, term: 1, confState }, data: new Uint8Array([snapshotIndex % 256, 0]) });
    }
  }
  await log.close();
}

main().catch((error: unknown) => {
  process.stderr.write(`crash-writer failed: ${String(error)}\n`);
  process.exit(1);
});
