// How long one log compaction holds the Raft thread, by stage (issue 17: a leader held past the
// election timeout, 150–300 ms, is replaced by its followers).
//
// The driver compacts every snapshotIntervalEntries applied entries (raft-driver.ts compactIfDue):
// the lock state machine's snapshot (the state captured, JSON, UTF-8), MemoryStorage.createSnapshot,
// then LevelDurableLog.compact (the stored value: msgpack and its CRC-32C frame; the write). What of
// that runs without a return to the event loop delays the thread's ticks, heartbeats and peer
// frames. This tool builds a lock state of about --state-mb MB (booking-like keys: JSON values, as
// the scheduler stores them), a durable log of --entries entries in a temporary directory, and
// measures, --repeats times:
//   - each encoding stage alone, on this thread (wall time of a synchronous call: CPU time here);
//   - the whole compaction as the driver runs it, with a setImmediate probe beside it: the longest
//     stretch the event loop did not run ("block"), the figure to hold against the election
//     timeout, and the time until the compaction's promise resolved ("total").
// It writes nothing but its temporary directory, which it removes. Not a test: it reads the clock.
//
// Usage: npx tsx bench/compaction-stall.ts [--state-mb 6] [--entries 10000] [--repeats 5]

import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Level } from "level";
import { Packr } from "msgpackr";
import * as lockCodec from "../lock/codec.ts";
import { LockStateMachine, type LockStateSnapshot } from "../lock/lock-state-machine.ts";
import { crc32c } from "../node/durable-rules.ts";
import { encodeValue, entryKey } from "../node/persistence/durable-codec.ts";
import { LevelDurableLog } from "../node/persistence/level-durable-log.ts";
import { type Entry, MemoryStorage, nodeId, type Snapshot } from "../raft/index.ts";

const { values } = parseArgs({
  options: { "state-mb": { type: "string" }, entries: { type: "string" }, repeats: { type: "string" } },
});
const stateBytesTarget = Number(values["state-mb"] ?? "6") * 1024 * 1024;
const entriesPerCompaction = Number(values.entries ?? "10000");
const repeats = Number(values.repeats ?? "5");
for (const [name, value, max] of [
  ["--state-mb", stateBytesTarget, 256 * 1024 * 1024],
  ["--entries", entriesPerCompaction, 1_000_000],
  ["--repeats", repeats, 100],
] as const) {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    console.error(`compaction-stall: ${name} must be a positive number (at most ${max})`);
    process.exit(2);
  }
}

const confState = { voters: [nodeId("n1"), nodeId("n2"), nodeId("n3")], learners: [] };

/** bookingState builds a lock state of about `bytesTarget` bytes of JSON, shaped like a bookings run's. */
function bookingState(bytesTarget: number): LockStateSnapshot {
  const keys: [string, { value: string; token: number; modIndex: number; deleted: boolean }][] = [];
  let bytes = 0;
  for (let booking = 0; bytes < bytesTarget; booking++) {
    const id = `b-${booking.toString(16).padStart(8, "0")}-4f1c-9a7e-${(booking * 7919).toString(16).padStart(12, "0")}`;
    const start = new Date(Date.UTC(2026, 0, 1) + booking * 3_600_000).toISOString();
    const value = JSON.stringify({
      id,
      telescopeId: `telescope-${booking % 7}`,
      scientistId: `scientist-${booking % 97}`,
      slots: [start],
      start,
      end: start,
      title: `Observation ${booking} of the outer belt, second pass`,
      createdAt: start,
      clientTimestampUtc: start,
    });
    const token = 2 * booking + 1;
    for (const key of [`booking/${id}`, `day/telescope-${booking % 7}/${start.slice(0, 10)}/${id}`, `scientist/${booking % 97}/${id}`]) {
      keys.push([key, { value, token, modIndex: token + 1, deleted: false }]);
      bytes += key.length + value.length * 1.15 + 60;
    }
    const audit = JSON.stringify({ level: "AUDIT", event_type: "booking_created", service: "scheduler", details: { id, start } });
    keys.push([`~chain/audit/${String(token + 1).padStart(16, "0")}`, { value: audit, token, modIndex: token + 1, deleted: false }]);
    bytes += audit.length * 1.15 + 80;
  }
  keys.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return { version: 1, appliedIndex: 1, leases: [], waiters: [], keys, sessions: [], chains: [], credentials: [] };
}

interface Stats {
  readonly medianMs: number;
  readonly maxMs: number;
}

function stats(samples: readonly number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  return { medianMs: sorted[Math.floor(sorted.length / 2)] ?? Number.NaN, maxMs: sorted[sorted.length - 1] ?? Number.NaN };
}

function timed<T>(samples: number[], run: () => T): T {
  const started = performance.now();
  const result = run();
  samples.push(performance.now() - started);
  return result;
}

/**
 * EventLoopBlock: the longest stretch between two turns of the probe, in wall time, and the CPU
 * time the process spent in it (this thread's work, plus whatever LevelDB's and the collector's
 * threads did meanwhile: on a loaded machine the wall time also counts the time the thread waited
 * for a core, the CPU time does not).
 */
interface EventLoopBlock {
  readonly wallMs: number;
  readonly cpuMs: number;
}

/** eventLoopProbe runs a setImmediate chain and keeps its longest gap between two turns. */
function eventLoopProbe(): { stop(): EventLoopBlock } {
  let lastMs = performance.now();
  let lastCpu = process.cpuUsage();
  let longest: EventLoopBlock = { wallMs: 0, cpuMs: 0 };
  let running = true;
  const measure = () => {
    const nowMs = performance.now();
    const cpu = process.cpuUsage(lastCpu);
    if (nowMs - lastMs > longest.wallMs) longest = { wallMs: nowMs - lastMs, cpuMs: (cpu.user + cpu.system) / 1000 };
    lastMs = nowMs;
    lastCpu = process.cpuUsage();
  };
  const turn = () => {
    measure();
    if (running) setImmediate(turn);
  };
  setImmediate(turn);
  return {
    stop() {
      running = false;
      measure();
      return longest;
    },
  };
}

/**
 * encodeState encodes the state as the lock service does for the driver: in slices, one per turn
 * of the event loop, where this build has them (lock/codec.ts encodeLockSnapshotInSlices), else in
 * one piece. Looked up by name, so the tool runs on builds before and after the change.
 */
async function encodeState(machine: LockStateMachine): Promise<Uint8Array> {
  const codec = lockCodec as Record<string, unknown>;
  const inSlices = codec["encodeLockSnapshotInSlices"] as
    | ((snapshot: LockStateSnapshot, sliceChars: number) => Iterator<void, Uint8Array, void>)
    | undefined;
  const sliceChars = codec["snapshotSliceChars"] as number | undefined;
  if (inSlices === undefined || sliceChars === undefined) return lockCodec.encodeLockSnapshot(machine.snapshot());
  const slices = inSlices(machine.snapshot(), sliceChars);
  // Bounded: one step per slice of the state's keys.
  for (let next = slices.next(); ; next = slices.next()) {
    if (next.done === true) return next.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

async function main(): Promise<void> {
  const machine = LockStateMachine.restore(bookingState(stateBytesTarget));
  const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: "number" });
  const stageSamples: Record<string, number[]> = {
    "capture (machine.snapshot)": [],
    "JSON.stringify": [],
    "UTF-8 (TextEncoder)": [],
    "msgpackr pack": [],
    "CRC-32C of the packed bytes": [],
    "encodeValue (pack + frame)": [],
    "delete batch, synchronous part": [],
    "JSON + UTF-8 of 2,000 keys": [],
    "CRC-32C of 1 MiB": [],
  };
  let stateBytes = 0;
  for (let repeat = 0; repeat < repeats; repeat++) {
    const stage = (name: string) => stageSamples[name] as number[];
    const captured = timed(stage("capture (machine.snapshot)"), () => machine.snapshot());
    const json = timed(stage("JSON.stringify"), () => JSON.stringify(captured));
    const data = timed(stage("UTF-8 (TextEncoder)"), () => new TextEncoder().encode(json));
    stateBytes = data.length;
    const snapshot: Snapshot = { metadata: { index: 10, term: 1, confState }, data };
    const packed = timed(stage("msgpackr pack"), () => packr.pack(snapshot));
    timed(stage("CRC-32C of the packed bytes"), () => crc32c(packed));
    timed(stage("encodeValue (pack + frame)"), () => encodeValue(snapshot));
    // What the change does in one turn: a slice of the state's keys, a slice of the checksum.
    timed(stage("JSON + UTF-8 of 2,000 keys"), () => new TextEncoder().encode(JSON.stringify(captured.keys.slice(0, 2000))));
    timed(stage("CRC-32C of 1 MiB"), () => crc32c(packed.subarray(0, 1024 * 1024)));
  }
  // The old compaction's batch: a delete per entry (LevelDurableLog.deleteEntries) in one synced
  // batch. What of it runs on this thread: building the operations, and classic-level turning
  // them into a LevelDB WriteBatch before its promise is returned.
  const rawDirectory = mkdtempSync(join(tmpdir(), "compaction-stall-raw-"));
  try {
    const db = new Level<string, Uint8Array>(rawDirectory, { keyEncoding: "utf8", valueEncoding: "view" });
    await db.open();
    for (let repeat = 0; repeat < repeats; repeat++) {
      const started = performance.now();
      const operations: { type: "del"; key: string }[] = [];
      for (let index = 1; index <= entriesPerCompaction; index++)
        operations.push({ type: "del", key: entryKey(repeat * entriesPerCompaction + index) });
      const written = db.batch(operations, { sync: true });
      stageSamples["delete batch, synchronous part"]?.push(performance.now() - started);
      await written;
    }
    await db.close();
  } finally {
    rmSync(rawDirectory, { recursive: true, force: true });
  }

  const directory = mkdtempSync(join(tmpdir(), "compaction-stall-"));
  const blocks: EventLoopBlock[] = [];
  const totals: number[] = [];
  try {
    const log = await LevelDurableLog.open({ dataDir: join(directory, "data"), clusterId: "stall", nodeId: "n1" });
    const storage = new MemoryStorage();
    let lastIndex = 0;
    const command = new TextEncoder().encode(JSON.stringify({ type: "txn", clientId: "c", seq: 1, pad: "x".repeat(160) }));
    for (let repeat = 0; repeat < repeats; repeat++) {
      for (let batch = 0; batch < entriesPerCompaction; batch += 1000) {
        const entries: Entry[] = [];
        for (let count = 0; count < Math.min(1000, entriesPerCompaction - batch); count++) {
          entries.push({ kind: "normal", term: 1, index: ++lastIndex, data: command });
        }
        storage.append(entries);
        await log.save({ hardState: { term: 1, votedFor: null, commitIndex: lastIndex }, entries });
      }
      // The driver's compaction, in one turn as compactIfDue runs it; the probe measures the block.
      const probe = eventLoopProbe();
      await new Promise<void>((resolve) => setImmediate(resolve));
      const started = performance.now();
      const snapshot = storage.createSnapshot(lastIndex, confState, await encodeState(machine));
      await log.compact(snapshot);
      totals.push(performance.now() - started);
      blocks.push(probe.stop());
    }
    await log.close();
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }

  const format = (name: string, figure: Stats) =>
    `  ${name.padEnd(28)} ${figure.medianMs.toFixed(1).padStart(7)} ms median ${figure.maxMs.toFixed(1).padStart(7)} ms max`;
  console.log(
    `compaction-stall: state ${(stateBytes / 1024 / 1024).toFixed(2)} MB, ${entriesPerCompaction} entries per compaction, ${repeats} repeats`,
  );
  console.log(
    `machine: ${cpus().length} cores, load average ${loadavg()
      .map((load) => load.toFixed(2))
      .join(" ")}`,
  );
  console.log("each stage alone (synchronous, this thread):");
  for (const [name, samples] of Object.entries(stageSamples)) console.log(format(name, stats(samples)));
  console.log("the whole compaction as the driver runs it:");
  console.log(format("longest event-loop block", stats(blocks.map((block) => block.wallMs))));
  console.log(format("  process CPU during it", stats(blocks.map((block) => block.cpuMs))));
  console.log(format("until compact() resolved", stats(totals)));
}

await main();
