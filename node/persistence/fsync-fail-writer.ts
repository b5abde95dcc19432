// fsync-fail-writer is the child process of the failed-fsync test (level-durable-log.test.ts). It
// runs with chaos/slow-fsync.so preloaded, which fails every fsync and fdatasync with ENOSPC while
// the control file says "enospc". It saves five entries, makes fsync fail, saves a sixth, makes
// fsync work again, and saves the sixth again, then once more a seventh. It prints one line per
// outcome as JSON ({ step, ok } or { step, name, code, message }) for the test to judge.
//
// Usage: node --import tsx node/persistence/fsync-fail-writer.ts <dataDir> <controlFile>

import { writeFileSync } from "node:fs";
import type { Entry, HardState } from "../../raft/index.ts";
import { LevelDurableLog } from "./level-durable-log.ts";

const entry = (index: number): Entry => ({ kind: "normal", term: 1, index, data: new Uint8Array([index]) });
const hardState = (commitIndex: number): HardState => ({ term: 1, votedFor: null, commitIndex });

async function step(name: string, save: () => Promise<void>): Promise<void> {
  try {
    await save();
    process.stdout.write(`${JSON.stringify({ step: name, ok: true })}\n`);
  } catch (error) {
    const { name: errorName, message } = error as Error;
    const code = (error as { code?: unknown }).code;
    process.stdout.write(`${JSON.stringify({ step: name, ok: false, name: errorName, code, message })}\n`);
  }
}

async function main(): Promise<void> {
  const [dataDir, controlFile] = process.argv.slice(2);
  if (dataDir === undefined || controlFile === undefined) throw new Error("usage: fsync-fail-writer <dataDir> <controlFile>");
  writeFileSync(controlFile, "0");
  const log = await LevelDurableLog.open({ dataDir, clusterId: "fsync-cluster", nodeId: "fsync-node" });
  await step("first five", () => log.save({ hardState: hardState(4), entries: [1, 2, 3, 4, 5].map(entry) }));
  writeFileSync(controlFile, "enospc");
  const sixth = { hardState: hardState(5), entries: [entry(6)] };
  await step("sixth, fsync failing", () => log.save(sixth));
  writeFileSync(controlFile, "0");
  await step("sixth again, fsync working", () => log.save(sixth));
  await step("seventh", () => log.save({ hardState: hardState(6), entries: [entry(7)] }));
  await log.close().catch(() => undefined);
}

main().catch((error: unknown) => {
  process.stderr.write(`fsync-fail-writer failed: ${String(error)}\n`);
  process.exit(1);
});
