// `npm run bench:bookings`: bookings per second and p50/p99 latency through one and through three
// scheduler processes on a local three-node cluster (real processes, LevelDB with fsync), for
// uncontended bookings (every request a different slot) and contended ones (16 clients racing for
// each slot). A benchmark, not a test: it reads the wall clock, prints a table, writes
// bench/results/bookings-<date>.json and updates docs/BENCHMARKS.md between its markers.
// Target (issue 4): at least 500 uncontended bookings/s with three schedulers on this machine.
//
//   npm run bench:bookings              about 2 minutes
//   npm run bench:bookings -- --quick   about 1 minute
//   npm run bench:bookings -- --snapshot-entries 1000000   the nodes compact their log that rarely
//     (SCTEC_SNAPSHOT_ENTRIES; default 10000, which a full run reaches near the end of its first row)

import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { type BookingSystem, startBookingSystem } from "../harness/booking-system.ts";
import { updateBenchmarksDoc } from "./benchmarks-doc.ts";
import { type BookingSystemPids, bookingSystemPids, percentile, processesCpuMs } from "./measure.ts";

const { values } = parseArgs({
  options: { quick: { type: "boolean" }, concurrency: { type: "string" }, "snapshot-entries": { type: "string" } },
});
const quick = values.quick === true;
const runSeconds = quick ? 5 : 15;
const concurrency = Number(values.concurrency ?? 64);
if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 1024) {
  console.error("bench:bookings: --concurrency must be an integer from 1 to 1024");
  process.exit(2);
}
const snapshotEntries = values["snapshot-entries"];
if (
  snapshotEntries !== undefined &&
  !(/^[0-9]+$/.test(snapshotEntries) && Number(snapshotEntries) >= 10 && Number(snapshotEntries) <= 10_000_000)
) {
  console.error("bench:bookings: --snapshot-entries must be an integer from 10 to 10000000 (entries between log compactions)");
  process.exit(2);
}

// One-minute slots bookable a year ahead: room for every uncontended booking of a run.
const telescopes = Array.from({ length: 5 }, (_, position) => ({
  id: `bench-${position + 1}`,
  name: `Bench ${position + 1}`,
  slotMinutes: 1,
  horizonDays: 366,
  slotsPerBookingMax: 1,
}));

interface Row {
  readonly workload: string;
  readonly bookingsPerSecond: number;
  readonly answersPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** cpuMsPerBooking: CPU time of every process of the system (nodes, schedulers, this client) per booking made. */
  readonly cpuMsPerBooking: number;
  /** cpuMsPerBookingByRole: the same, split by who spent it (all schedulers, all nodes, this load generator). */
  readonly cpuMsPerBookingByRole: CpuMs;
  readonly note: string;
}

/** CpuMs: CPU time by role: all scheduler processes, all lock nodes, and this load generator. */
interface CpuMs {
  readonly schedulers: number;
  readonly nodes: number;
  readonly loadGenerator: number;
}

/** systemCpuMs: CPU used so far by all the system's processes and this one, by role. On a shared
 * machine this is steadier than throughput: other load slows the run but does not add to it. */
function systemCpuMs(pids: BookingSystemPids): CpuMs {
  const own = process.cpuUsage();
  return {
    schedulers: processesCpuMs(pids.schedulers),
    nodes: processesCpuMs(pids.nodes),
    loadGenerator: (own.user + own.system) / 1000,
  };
}

/**
 * RaftMarks: the cluster's highest term and each node's snapshot index. Read at both ends of a row,
 * they tell whether an election or a log compaction fell inside it: either stalls bookings for a
 * while (a compaction holds the node's Raft loop while it writes the snapshot, and a leader held
 * past the election timeout is replaced), which moves a row's figures far more than code does.
 */
interface RaftMarks {
  readonly term: number;
  readonly snapshotIndexes: ReadonlyMap<string, number>;
}

/** raftMarks reads every node's /status (undefined if one does not answer: the row then says so). */
async function raftMarks(system: BookingSystem): Promise<RaftMarks | undefined> {
  const statuses = await Promise.all(system.cluster.ids().map(async (id) => [id, await system.cluster.status(id)] as const));
  if (statuses.some(([, status]) => status === undefined)) return undefined;
  return {
    term: Math.max(...statuses.map(([, status]) => status?.term ?? 0)),
    snapshotIndexes: new Map(statuses.map(([id, status]) => [id, status?.snapshotIndex ?? 0])),
  };
}

/** raftEvents says what happened to the cluster between two marks, for a row's note. */
function raftEvents(before: RaftMarks | undefined, after: RaftMarks | undefined): string {
  if (before === undefined || after === undefined) return "elections and compactions unknown (a /status did not answer)";
  const terms = after.term - before.term;
  const compacted = [...after.snapshotIndexes].filter(([id, index]) => index > (before.snapshotIndexes.get(id) ?? 0)).map(([id]) => id);
  return [
    terms === 0 ? "no new term" : `term +${terms} (an election)`,
    compacted.length === 0 ? "no log compaction" : `log compacted on ${compacted.join(", ")}`,
  ].join(", ");
}

function totalCpuMs(cpu: CpuMs): number {
  return cpu.schedulers + cpu.nodes + cpu.loadGenerator;
}

const progress = (message: string) => process.stdout.write(`  … ${message}\n`);
const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;

/** pools: a connection pool per scheduler, kept here: undici's `request(url)` parses the URL and looks its pool up on every call. */
const pools = new Map<string, Pool>();

async function post(url: string, path: string, body: unknown, key?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  let pool = pools.get(url);
  if (pool === undefined) {
    pool = new Pool(url);
    pools.set(url, pool);
  }
  const answer = await pool.request({
    path,
    method: "POST",
    headers: { "content-type": "application/json", ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) },
    body: JSON.stringify(body),
  });
  return { status: answer.statusCode, body: (await answer.body.json()) as Record<string, unknown> };
}

async function registerMany(urls: readonly string[], count: number): Promise<string[]> {
  const keys: string[] = [];
  for (let position = 0; position < count; position += 1) {
    const answer = await post(urls[position % urls.length] as string, "/scientists", {
      name: `Bench ${position}`,
      email: `bench-${position}-${Date.now()}@example.org`,
    });
    if (answer.status !== 201) throw new Error(`registration failed: ${answer.status} ${JSON.stringify(answer.body)}`);
    keys.push(answer.body["apiKey"] as string);
  }
  return keys;
}

/** book sends one booking request and records its latency and status. */
async function book(
  url: string,
  key: string,
  telescopeId: string,
  startMs: number,
  record: { latencies: number[]; statuses: Map<number, number> },
): Promise<number> {
  const sentAt = performance.now();
  const answer = await post(
    url,
    "/bookings",
    { telescopeId, startUtc: iso(startMs), endUtc: iso(startMs + 60_000), requestedAtUtc: new Date().toISOString() },
    key,
  ).catch(() => ({ status: 599, body: {} }));
  record.latencies.push(performance.now() - sentAt);
  record.statuses.set(answer.status, (record.statuses.get(answer.status) ?? 0) + 1);
  return answer.status;
}

/**
 * run drives the schedulers for `seconds`. Uncontended: `clients` workers each book their own
 * sequence of slots. Contended: rounds of 16 simultaneous requests for one slot (the lab's stress
 * test, repeated), the next round starting when every answer of the last one is in.
 */
async function run(
  system: BookingSystem,
  urls: readonly string[],
  keys: readonly string[],
  telescopeId: string,
  mode: "uncontended" | "contended",
  clients: number,
  seconds: number,
): Promise<Row> {
  const record = { latencies: [] as number[], statuses: new Map<number, number>() };
  const marksBefore = await raftMarks(system);
  const pids = bookingSystemPids(system);
  const cpuBefore = systemCpuMs(pids);
  const dayMs = 86_400_000;
  const base = Math.floor(Date.now() / dayMs) * dayMs + dayMs;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  if (mode === "uncontended") {
    await Promise.all(
      Array.from({ length: clients }, async (_, worker) => {
        for (let step = 0; performance.now() < deadline; step += 1) {
          await book(
            urls[worker % urls.length] as string,
            keys[worker % keys.length] as string,
            telescopeId,
            base + (step * clients + worker) * 60_000,
            record,
          );
        }
      }),
    );
  } else {
    for (let round = 0; performance.now() < deadline; round += 1) {
      await Promise.all(
        Array.from({ length: clients }, (_, worker) =>
          book(urls[worker % urls.length] as string, keys[worker % keys.length] as string, telescopeId, base + round * 60_000, record),
        ),
      );
    }
  }
  const elapsedSeconds = (performance.now() - started) / 1000;
  const cpuAfter = systemCpuMs(pids);
  const marksAfter = await raftMarks(system);
  const latencies = record.latencies.sort((a, b) => a - b);
  const created = record.statuses.get(201) ?? 0;
  const perBooking = (before: number, after: number) => (created === 0 ? Number.NaN : (after - before) / created);
  return {
    workload: `${mode}, ${clients} ${mode === "uncontended" ? "clients" : "clients per slot"}, ${urls.length} scheduler${urls.length > 1 ? "s" : ""}`,
    bookingsPerSecond: created / elapsedSeconds,
    answersPerSecond: latencies.length / elapsedSeconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    cpuMsPerBooking: perBooking(totalCpuMs(cpuBefore), totalCpuMs(cpuAfter)),
    cpuMsPerBookingByRole: {
      schedulers: perBooking(cpuBefore.schedulers, cpuAfter.schedulers),
      nodes: perBooking(cpuBefore.nodes, cpuAfter.nodes),
      loadGenerator: perBooking(cpuBefore.loadGenerator, cpuAfter.loadGenerator),
    },
    note: `${[...record.statuses]
      .sort()
      .map(([status, count]) => `${count} × ${status}`)
      .join(", ")}; ${raftEvents(marksBefore, marksAfter)}`,
  };
}

function table(rows: readonly Row[]): string {
  const lines = [
    "| workload | bookings/s | answers/s | p50 ms | p99 ms | CPU ms per booking, all processes | of which schedulers / nodes / load generator | 2-core capacity, bookings/s | answers |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const row of rows) {
    const { schedulers, nodes, loadGenerator } = row.cpuMsPerBookingByRole;
    lines.push(
      `| ${row.workload} | ${row.bookingsPerSecond.toFixed(0)} | ${row.answersPerSecond.toFixed(0)} | ${row.p50Ms.toFixed(1)} | ${row.p99Ms.toFixed(1)} | ${row.cpuMsPerBooking.toFixed(2)} | ${schedulers.toFixed(2)} / ${nodes.toFixed(2)} / ${loadGenerator.toFixed(2)} | ${(2000 / row.cpuMsPerBooking).toFixed(0)} | ${row.note} |`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  console.log(
    `bench:bookings${quick ? " --quick" : ""}: three lock nodes and three schedulers on loopback (fsync on); about ${quick ? 1 : 2} minutes`,
  );
  console.log(`machine: ${machine}${snapshotEntries === undefined ? "" : `; log compaction every ${snapshotEntries} entries`}`);
  const system: BookingSystem = await startBookingSystem({
    schedulers: 3,
    ...(snapshotEntries === undefined ? {} : { nodeEnv: { SCTEC_SNAPSHOT_ENTRIES: snapshotEntries } }),
    env: {
      SCHEDULER_TELESCOPES: JSON.stringify(telescopes),
      SCHEDULER_RATE_LIMIT_PER_MINUTE: "1000000",
      SCHEDULER_RATE_LIMIT_PER_ADDRESS_PER_MINUTE: "10000000",
    },
  });
  const rows: Row[] = [];
  try {
    const urls = system.schedulerUrls;
    const keys = await registerMany(urls, 16);
    progress(`warm-up (${quick ? 1 : 3} s)`);
    await run(system, urls, keys, "bench-5", "uncontended", 16, quick ? 1 : 3);
    progress(`uncontended through one scheduler, ${concurrency} clients, ${runSeconds} s`);
    rows.push(await run(system, urls.slice(0, 1), keys, "bench-1", "uncontended", concurrency, runSeconds));
    progress(`uncontended through three schedulers, ${concurrency} clients, ${runSeconds} s`);
    rows.push(await run(system, urls, keys, "bench-2", "uncontended", concurrency, runSeconds));
    progress(`contended (16 clients per slot) through one scheduler, ${runSeconds} s`);
    rows.push(await run(system, urls.slice(0, 1), keys, "bench-3", "contended", 16, runSeconds));
    progress(`contended (16 clients per slot) through three schedulers, ${runSeconds} s`);
    rows.push(await run(system, urls, keys, "bench-4", "contended", 16, runSeconds));
    const date = new Date().toISOString().slice(0, 10);
    const summary = table(rows);
    console.log(`\n${summary}\n`);
    mkdirSync("bench/results", { recursive: true });
    writeFileSync(
      `bench/results/bookings-${date}${quick ? "-quick" : ""}.json`,
      `${JSON.stringify({ date, machine, quick, concurrency, rows }, null, 2)}\n`,
    );
    updateBenchmarksDoc("bookings", `Measured ${date}${quick ? " (--quick)" : ""} on ${machine}.\n\n${summary}`);
  } finally {
    await system.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
