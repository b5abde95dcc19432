// `npm run bench:locks`: the lock cluster's speed on this machine, on real node processes in the
// `npm start` configuration (three nodes on loopback, LevelDB with fsync). A benchmark, not a
// test: it reads the wall clock, prints a table, writes bench/results/locks-<date>.json and
// updates docs/BENCHMARKS.md between its markers.
//
//   npm run bench:locks              about 3 minutes
//   npm run bench:locks -- --quick   about 1 minute (shorter runs, 5 kills)
//   npm run bench:locks -- --tls     also, in the same run, the acquire+release cycles on a second
//                                    cluster over TLS (HTTPS, mutual TLS between nodes), and the
//                                    ratio TLS / plain at concurrency 64 (docs/BENCHMARKS.md)

import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { LockClient, LockError } from "../client/lock-client.ts";
import { ProcessCluster } from "../harness/process-cluster.ts";
import { updateBenchmarksDoc } from "./benchmarks-doc.ts";
import { failovers, tlsOf } from "./failover.ts";
import { percentile } from "./measure.ts";

const { values } = parseArgs({ options: { quick: { type: "boolean" }, tls: { type: "boolean" } } });
const quick = values.quick === true;
const withTls = values.tls === true;
const runSeconds = quick ? 4 : 10;
const steadySeconds = quick ? 10 : 60;
const kills = quick ? 5 : 10;

interface Row {
  readonly workload: string;
  readonly throughputPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly note: string;
}

function progress(message: string): void {
  process.stdout.write(`  … ${message}\n`);
}

/**
 * tlsComparison runs the acquire+release cycles on a second cluster over TLS, and compares
 * concurrency 64 with the plain cluster's row of this same run.
 */
async function tlsComparison(plainRows: readonly Row[]): Promise<{ rows: Row[]; text: string }> {
  progress("a second cluster, over TLS (HTTPS and mutual TLS between the nodes)");
  const cluster = await ProcessCluster.start({ tls: true });
  const rows: Row[] = [];
  try {
    for (const concurrency of [1, 16, 64]) {
      progress(`over TLS: acquire+release at concurrency ${concurrency} for ${runSeconds} s`);
      const row = await cycles(cluster, concurrency, runSeconds);
      rows.push({ ...row, workload: `${row.workload}, over TLS` });
    }
  } finally {
    await cluster.close();
  }
  const plain64 = plainRows.find((row) => row.workload.startsWith("acquire+release, concurrency 64"));
  const tls64 = rows[rows.length - 1];
  const ratio = plain64 === undefined || tls64 === undefined ? Number.NaN : tls64.throughputPerSecond / plain64.throughputPerSecond;
  const text = `${table([...plainRows.filter((row) => row.workload.startsWith("acquire+release")), ...rows])}\n\nConcurrency 64 over TLS: ${(ratio * 100).toFixed(0)}% of plain (target: at least 80%).`;
  return { rows, text };
}

/** cycles runs `concurrency` workers doing acquire+release on distinct resources for `seconds`. */
async function cycles(cluster: ProcessCluster, concurrency: number, seconds: number): Promise<Row> {
  const latencies: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  let errors = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      const client = new LockClient({
        nodes: cluster.urls(),
        apiToken: cluster.apiToken,
        retriesMax: 20,
        retryBaseMs: 5,
        ...tlsOf(cluster),
      });
      while (performance.now() < deadline) {
        const started = performance.now();
        try {
          const lease = await client.acquire([`bench-${concurrency}-${worker}`], { ttlMs: 60_000, autoRenew: false });
          await lease.release();
          latencies.push(performance.now() - started);
        } catch {
          errors++;
        }
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return {
    workload: `acquire+release, concurrency ${concurrency}, distinct resources`,
    throughputPerSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    note: `${latencies.length} cycles${errors > 0 ? `, ${errors} errors` : ""}`,
  };
}

/** contended runs 16 clients handing one resource over through the FIFO wait queue. */
async function contended(cluster: ProcessCluster, seconds: number): Promise<Row> {
  const latencies: number[] = [];
  const deadline = performance.now() + seconds * 1000;
  let errors = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      const client = new LockClient({
        nodes: cluster.urls(),
        apiToken: cluster.apiToken,
        retriesMax: 20,
        retryBaseMs: 5,
        ...tlsOf(cluster),
      });
      while (performance.now() < deadline) {
        const started = performance.now();
        try {
          const lease = await client.acquire(["bench-contended"], { ttlMs: 60_000, waitMs: 10_000, autoRenew: false });
          latencies.push(performance.now() - started);
          await lease.release();
        } catch (error) {
          if (!(error instanceof LockError && error.code === "wait_timeout")) errors++;
        }
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return {
    workload: "16 clients, one resource (hand-offs through the FIFO queue)",
    throughputPerSecond: latencies.length / seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    note: `${latencies.length} hand-offs; latency is acquire (queueing included)${errors > 0 ? `, ${errors} errors` : ""}`,
  };
}

/** steady runs concurrency-64 load for `seconds` and reports whether leadership ever changed. */
async function steady(cluster: ProcessCluster, seconds: number): Promise<{ row: Row; leaderChanges: number; terms: string }> {
  const leaderBefore = await cluster.waitForLeader(5000);
  const termBefore = (await cluster.status(leaderBefore))?.term ?? 0;
  const row = await cycles(cluster, 64, seconds);
  const leaderAfter = await cluster.waitForLeader(5000);
  const termAfter = (await cluster.status(leaderAfter))?.term ?? 0;
  return {
    row: { ...row, workload: `full load for ${seconds} s (concurrency 64)` },
    leaderChanges: termAfter - termBefore,
    terms: `term ${termBefore} → ${termAfter}, leader ${leaderBefore} → ${leaderAfter}`,
  };
}

function table(rows: readonly Row[]): string {
  const lines = ["| workload | per second | p50 ms | p99 ms | note |", "| --- | --- | --- | --- | --- |"];
  for (const row of rows) {
    lines.push(
      `| ${row.workload} | ${row.throughputPerSecond.toFixed(0)} | ${row.p50Ms.toFixed(1)} | ${row.p99Ms.toFixed(1)} | ${row.note} |`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  console.log(`bench:locks${quick ? " --quick" : ""}: three real nodes on loopback (fsync on); about ${quick ? 1 : 3} minutes`);
  console.log(`machine: ${machine}`);
  const cluster = await ProcessCluster.start();
  const rows: Row[] = [];
  try {
    for (const concurrency of [1, 16, 64]) {
      progress(`acquire+release at concurrency ${concurrency} for ${runSeconds} s`);
      rows.push(await cycles(cluster, concurrency, runSeconds));
    }
    progress(`16 clients on one resource for ${runSeconds} s`);
    rows.push(await contended(cluster, runSeconds));
    progress(`full load for ${steadySeconds} s, watching for leader changes`);
    const steadyRun = await steady(cluster, steadySeconds);
    rows.push({
      ...steadyRun.row,
      note: `${steadyRun.row.note}; ${steadyRun.leaderChanges === 0 ? "no leader change" : `${steadyRun.leaderChanges} term changes`} (${steadyRun.terms})`,
    });
    progress(`${kills} leader kills (kill -9 → next successful acquire)`);
    const { samplesMs } = await failovers(cluster, kills, progress);
    const sorted = [...samplesMs].sort((a, b) => a - b);
    const failover = {
      minMs: sorted[0] ?? Number.NaN,
      medianMs: percentile(sorted, 0.5),
      maxMs: sorted[sorted.length - 1] ?? Number.NaN,
      samplesMs,
    };
    const date = new Date().toISOString().slice(0, 10);
    const summary = `${table(rows)}\n\nFailover (leader \`kill -9\` → next successful acquire), ${kills} kills: min ${failover.minMs.toFixed(0)} ms, median ${failover.medianMs.toFixed(0)} ms, max ${failover.maxMs.toFixed(0)} ms.`;
    console.log(`\n${summary}\n`);
    mkdirSync("bench/results", { recursive: true });
    writeFileSync(
      `bench/results/locks-${date}${quick ? "-quick" : ""}.json`,
      `${JSON.stringify({ date, machine, quick, rows, failover }, null, 2)}\n`,
    );
    updateBenchmarksDoc("locks", `Measured ${date}${quick ? " (--quick)" : ""} on ${machine}.\n\n${summary}`);
  } finally {
    await cluster.close();
  }
  // After the plain cluster is gone, so the two never share the machine.
  if (withTls) {
    const date = new Date().toISOString().slice(0, 10);
    const comparison = await tlsComparison(rows);
    console.log(`\n${comparison.text}\n`);
    writeFileSync(
      `bench/results/locks-tls-${date}${quick ? "-quick" : ""}.json`,
      `${JSON.stringify({ date, machine, quick, plain: rows, tls: comparison.rows }, null, 2)}\n`,
    );
    updateBenchmarksDoc(
      "locks-tls",
      `Measured ${date}${quick ? " (--quick)" : ""} on ${machine}, load average ${loadavg()[0]?.toFixed(1)} at the end.\n\n${comparison.text}`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
