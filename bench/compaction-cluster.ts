// Does a leader keep its term while it compacts a large state? (issue 17, on real processes)
//
// Three lock nodes (the harness's ProcessCluster: ports of their own, LevelDB with fsync), each
// compacting its log every --snapshot-entries applied entries. The tool fills the lock state with
// about --state-mb MB of booking-sized keys (300-byte values, 64 to a txn, under one lease), then
// for --seconds has --clients clients write one new key each at a time, so every compaction
// encodes the whole state. Meanwhile it reads every node's /status each second (term, snapshot
// index, leader) and /metrics every two (the Raft thread's worst event-loop lag of the window).
// It prints the compactions, the new terms, the leaders seen, the Raft threads' worst lag, and the
// writes' answers and latency. bench/compaction-stall.ts measures the same block in-process.
//
// Usage: npx tsx bench/compaction-cluster.ts [--state-mb 6] [--seconds 30] [--snapshot-entries 500] [--clients 16]

import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { ProcessCluster } from "../harness/process-cluster.ts";
import { parsePrometheusText } from "../harness/prometheus-text.ts";
import { percentile } from "./measure.ts";

const { values } = parseArgs({
  options: {
    "state-mb": { type: "string" },
    seconds: { type: "string" },
    "snapshot-entries": { type: "string" },
    clients: { type: "string" },
  },
});
const stateBytes = Number(values["state-mb"] ?? "6") * 1024 * 1024;
const seconds = Number(values.seconds ?? "30");
const snapshotEntries = Number(values["snapshot-entries"] ?? "500");
const clients = Number(values.clients ?? "16");
for (const [name, value, max] of [
  ["--state-mb", stateBytes, 64 * 1024 * 1024],
  ["--seconds", seconds, 600],
  ["--snapshot-entries", snapshotEntries, 10_000_000],
  ["--clients", clients, 256],
] as const) {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    console.error(`compaction-cluster: ${name} must be a positive number (at most ${max})`);
    process.exit(2);
  }
}

const valueText = "v".repeat(300);
const keysPerTxn = 64;
const lease = "bench-compaction";

/** Leader: where writes go; found again after an answer that says it moved. */
class Writer {
  private pool: Pool | undefined;
  private url = "";
  private readonly cluster: ProcessCluster;
  token = "";

  constructor(cluster: ProcessCluster) {
    this.cluster = cluster;
  }

  async post(path: string, body: unknown): Promise<number> {
    if (this.pool === undefined) {
      this.url = this.cluster.url(await this.cluster.waitForLeader(30_000));
      this.pool = new Pool(this.url, { connections: clients });
    }
    const answer = await this.pool
      .request({
        path,
        method: "POST",
        headers: { authorization: `Bearer ${this.cluster.apiToken}`, "content-type": "application/json" },
        body: JSON.stringify(body),
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      })
      .catch(() => undefined);
    if (answer === undefined) return 0;
    const text = await answer.body.text();
    if (path === "/lock" && answer.statusCode === 200) this.token = (JSON.parse(text) as { token: string }).token;
    if (answer.statusCode !== 200 && answer.statusCode !== 409) await this.forgetLeader();
    return answer.statusCode;
  }

  async forgetLeader(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await pool?.close().catch(() => undefined);
  }
}

/** Watch samples the cluster while the load runs. */
class Watch {
  readonly terms = new Set<number>();
  readonly leaders: string[] = [];
  raftLagMaxMs = 0;
  private readonly cluster: ProcessCluster;
  private readonly timer: NodeJS.Timeout;
  private busy = false;
  private round = 0;

  constructor(cluster: ProcessCluster) {
    this.cluster = cluster;
    this.timer = setInterval(() => void this.sample(), 1000);
  }

  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    this.round++;
    try {
      for (const status of await Promise.all(this.cluster.ids().map((id) => this.cluster.status(id)))) {
        if (status === undefined) continue;
        this.terms.add(status.term);
        if (status.leaderId !== null && this.leaders.at(-1) !== status.leaderId) this.leaders.push(status.leaderId);
      }
      if (this.round % 2 === 0) await Promise.all(this.cluster.urls().map((url) => this.sampleLag(url)));
    } finally {
      this.busy = false;
    }
  }

  private async sampleLag(url: string): Promise<void> {
    try {
      const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2000) });
      const metrics = parsePrometheusText(await response.text());
      this.raftLagMaxMs = Math.max(this.raftLagMaxMs, 1000 * metrics.sum("sctec_event_loop_lag_max_seconds", { loop: "raft" }));
    } catch {
      // A node too busy to answer within 2 s shows in the next sample.
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

async function snapshotIndexes(cluster: ProcessCluster): Promise<number[]> {
  return Promise.all(cluster.ids().map(async (id) => (await cluster.status(id))?.snapshotIndex ?? -1));
}

async function main(): Promise<void> {
  const loadBefore = loadavg()[0]?.toFixed(1);
  const cluster = await ProcessCluster.start({ env: { SCTEC_SNAPSHOT_ENTRIES: String(snapshotEntries) } });
  try {
    await cluster.waitForLeader(30_000);
    const writer = new Writer(cluster);
    // Bounded: a minute of attempts for the lease, then the fill's txns, each tried 20 times.
    for (let attempt = 0; attempt < 60 && writer.token === ""; attempt++) {
      if ((await writer.post("/lock", { resource: lease, owner: "bench", ttlMs: 600_000 })) !== 200) await sleep(1000);
    }
    if (writer.token === "") throw new Error("could not take the lease");
    const txnsToFill = Math.ceil(stateBytes / (keysPerTxn * (valueText.length + 40)));
    for (let txn = 0; txn < txnsToFill; txn++) {
      const operations = Array.from({ length: keysPerTxn }, (_, key) => ({ op: "put", key: `fill/${txn}/${key}`, value: valueText }));
      let status = 0;
      for (let attempt = 0; attempt < 20 && status !== 200; attempt++) {
        status = await writer.post("/txn", { guards: [{ resource: lease, token: writer.token }], operations });
      }
      if (status !== 200) throw new Error(`fill txn ${txn} answered ${status}`);
    }
    const before = await snapshotIndexes(cluster);
    const watch = new Watch(cluster);
    const latenciesMs: number[] = [];
    const answers = new Map<number, number>();
    const endMs = performance.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: clients }, async (_, client) => {
        // Bounded by the run's length.
        for (let write = 0; performance.now() < endMs; write++) {
          const startedMs = performance.now();
          const operations = [{ op: "put", key: `load/${client}/${write}`, value: valueText }];
          const status = await writer.post("/txn", { guards: [{ resource: lease, token: writer.token }], operations });
          latenciesMs.push(performance.now() - startedMs);
          answers.set(status, (answers.get(status) ?? 0) + 1);
          if (status !== 200) await sleep(50);
        }
      }),
    );
    watch.stop();
    const after = await snapshotIndexes(cluster);
    latenciesMs.sort((a, b) => a - b);
    console.log(
      `compaction-cluster: ${(stateBytes / 1024 / 1024).toFixed(1)} MB of state in ${txnsToFill * keysPerTxn} keys, ` +
        `compaction every ${snapshotEntries} entries, ${clients} clients for ${seconds} s; load average ${loadBefore} before, ${loadavg()[0]?.toFixed(1)} after`,
    );
    console.log(`  snapshot index per node: before ${before.join(" / ")}, after ${after.join(" / ")}`);
    console.log(
      `  terms seen: ${[...watch.terms].sort((a, b) => a - b).join(", ")} (${watch.terms.size - 1} new); leaders in order: ${watch.leaders.join(" → ")}`,
    );
    console.log(`  worst Raft-thread event-loop lag on any node: ${watch.raftLagMaxMs.toFixed(0)} ms`);
    console.log(
      `  writes: ${latenciesMs.length}, answers ${[...answers].map(([status, count]) => `${count} × ${status}`).join(", ")}; ` +
        `p50 ${percentile(latenciesMs, 0.5).toFixed(0)} ms, p99 ${percentile(latenciesMs, 0.99).toFixed(0)} ms, max ${(latenciesMs.at(-1) ?? 0).toFixed(0)} ms`,
    );
    await writer.forgetLeader();
  } finally {
    await cluster.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

await main();
