// `npm run bench:overload`: the lock cluster on a machine it does not have to itself (issue 17).
// Three real node processes in the `npm start` configuration, one busy-loop process per core
// beside them, and a client offering fenced writes at twice the rate the cluster saturates at.
// It measures the leader changes (the target is none), the latency of the writes the cluster
// took and of those it refused, that no acknowledged write is lost (every one is read back at
// the end), the event-loop lag of each node's raft and HTTP loops, and failover (leader
// `kill -9` → next successful acquire) with and without the busy loops. A benchmark, not a test:
// it prints a report, writes bench/results/overload-<date>.json and updates docs/BENCHMARKS.md
// between its markers.
//
//   npm run bench:overload              about 13 minutes (10 minutes of overload, 10 + 10 kills)
//   npm run bench:overload -- --quick   about 2 minutes (45 s of overload, 5 + 5 kills)
//   … -- --realtime                     the nodes' raft threads under SCHED_RR (SCTEC_RAFT_REALTIME)
//   … -- --failovers-only [--kills N]   only the kills (N with the busy loops, N without; no doc update)
//   … -- --trace                        each kill taken apart: the client's attempts, the nodes' role changes
//
// The writes: `keys` (2,048) leases are taken first (10-minute TTL, renewed), then each write is a POST
// /txn that puts `overload/<k>` = its sequence number under lease k's fencing token. At most one
// write per key is in flight, so each key's writes are ordered: at the end, each key's value
// must be at least the last one acknowledged for it (a later write, sent but not acknowledged,
// may have landed too). Every loop is bounded in time; the busy loops end by themselves and are
// killed by PID at the end.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { ProcessCluster } from "../harness/process-cluster.ts";
import { parsePrometheusText } from "../harness/prometheus-text.ts";
import { updateBenchmarksDoc } from "./benchmarks-doc.ts";
import { failovers, summarizePhases } from "./failover.ts";
import { percentile } from "./measure.ts";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean" },
    realtime: { type: "boolean" },
    "failovers-only": { type: "boolean" },
    kills: { type: "string" },
    trace: { type: "boolean" },
  },
});
const quick = values.quick === true;
const realtime = values.realtime === true;
/** failoversOnly: only the leader kills, with and without the busy loops; no overload run, and docs/BENCHMARKS.md is left alone. */
const failoversOnly = values["failovers-only"] === true;
/** trace: take each kill apart (bench/failover.ts): the client's attempts and the survivors' role changes. */
const trace = values.trace === true;
const saturationSeconds = quick ? 8 : 20;
const overloadSeconds = quick ? 45 : 600;
const kills = values.kills === undefined ? (quick ? 5 : 10) : Number(values.kills);
if (!Number.isSafeInteger(kills) || kills < 1 || kills > 100)
  throw new Error(`--kills must be a whole number from 1 to 100, got ${values.kills}`);
/** keys: leases and keys written; more than the writes in flight, so a free key is always there. */
const keys = 2048;
/**
 * inFlightMax: the client's own bound on writes in flight (one per key at most). Above the
 * node's admission limit (SCTEC_REQUEST_QUEUE_MAX, 1,024 by default), so that the gate, not this
 * bound, decides what the leader takes.
 */
const inFlightMax = 2000;
const leaseTtlMs = 10 * 60 * 1000;
const renewEveryMs = 3 * 60 * 1000;

function progress(message: string): void {
  process.stdout.write(`  … ${message}\n`);
}

/** busyLoops starts `count` processes that spin for `seconds` and then end by themselves. */
function busyLoops(count: number, seconds: number): ChildProcess[] {
  const code = `const end = Date.now() + ${seconds * 1000}; let spins = 0; while (Date.now() < end) spins++;`;
  return Array.from({ length: count }, () => spawn(process.execPath, ["-e", code], { stdio: "ignore" }));
}

function stopBusyLoops(loops: readonly ChildProcess[]): void {
  for (const loop of loops) if (loop.exitCode === null && loop.signalCode === null) loop.kill("SIGKILL");
}

/** answerName: an answer's status, with its error code when it has one ("503 overloaded"). */
function answerName(answer: { status: number; body: unknown }): string {
  const code = (answer.body as { error?: { code?: unknown } } | null)?.error?.code;
  return typeof code === "string" ? `${answer.status} ${code}` : String(answer.status);
}

/** Writes is the client: the leases, the keys' in-flight state, and every answer's latency. */
class Writes {
  readonly tokens: string[] = [];
  readonly lastAcked = new Map<number, number>();
  readonly lastSent = new Map<number, number>();
  readonly admittedMs: number[] = [];
  readonly refusedMs: number[] = [];
  readonly statuses = new Map<string, number>();
  notSent = 0;
  private readonly free: number[] = Array.from({ length: keys }, (_, key) => key);
  private sequence = 0;
  inFlight = 0;
  private readonly pool: Pool;
  private readonly apiToken: string;

  constructor(pool: Pool, apiToken: string) {
    this.pool = pool;
    this.apiToken = apiToken;
  }

  async post(path: string, body: unknown): Promise<{ status: number; body: unknown }> {
    const answer = await this.pool.request({
      path,
      method: "POST",
      headers: { authorization: `Bearer ${this.apiToken}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      headersTimeout: 60_000,
      bodyTimeout: 60_000,
    });
    return { status: answer.statusCode, body: await answer.body.json() };
  }

  /** takeLeases acquires every key's lease (each retried for up to a minute while the cluster settles or is slow). */
  async takeLeases(): Promise<void> {
    for (let from = 0; from < keys; from += 32) {
      await Promise.all(
        Array.from({ length: Math.min(32, keys - from) }, async (_, offset) => {
          const key = from + offset;
          const deadline = performance.now() + 60_000;
          for (let attempt = 0; attempt < 1000 && performance.now() < deadline; attempt++) {
            const answer = await this.post("/lock", { resource: `overload-${key}`, owner: "bench-overload", ttlMs: leaseTtlMs }).catch(
              () => undefined,
            );
            if (answer?.status === 200) {
              this.tokens[key] = (answer.body as { token: string }).token;
              return;
            }
            // Held already: an earlier attempt was applied but its answer lost. The lease is ours; take its token.
            const holder = (answer?.body as { error?: { code?: string; holder?: { owner?: string; token?: string } } } | undefined)?.error;
            if (holder?.code === "conflict" && holder.holder?.owner === "bench-overload" && holder.holder.token !== undefined) {
              this.tokens[key] = holder.holder.token;
              return;
            }
            await new Promise((resolve) => setTimeout(resolve, 200));
          }
          throw new Error(`could not take the lease of key ${key} within a minute`);
        }),
      );
    }
  }

  /** renewLeases renews every lease, each retried a few times (a failed renewal shows later as refused writes). */
  async renewLeases(): Promise<void> {
    await Promise.all(
      this.tokens.map(async (token, key) => {
        for (let attempt = 0; attempt < 10; attempt++) {
          const answer = await this.post("/renew", { resource: `overload-${key}`, token }).catch(() => undefined);
          if (answer?.status === 200) return;
        }
      }),
    );
  }

  /** write sends one write on a free key, timed from `scheduledMs` (when it was due); undefined when no key is free. */
  write(scheduledMs: number): Promise<void> | undefined {
    const key = this.free.pop();
    if (key === undefined || this.inFlight >= inFlightMax) {
      if (key !== undefined) this.free.push(key);
      this.notSent++;
      return undefined;
    }
    const sequence = ++this.sequence;
    this.inFlight++;
    this.lastSent.set(key, sequence);
    const body = {
      guards: [{ resource: `overload-${key}`, token: this.tokens[key] }],
      operations: [{ op: "put", key: `overload/${key}`, value: String(sequence) }],
    };
    return this.post("/txn", body).then(
      (answer) => this.answered(key, sequence, scheduledMs, answerName(answer), answer.status === 200),
      (error: unknown) => this.answered(key, sequence, scheduledMs, `error ${(error as { code?: string }).code ?? "unknown"}`, false),
    );
  }

  /** resetStats forgets the latencies and counts so far (the saturation run's), keeping what was acknowledged. */
  resetStats(): void {
    this.admittedMs.length = 0;
    this.refusedMs.length = 0;
    this.statuses.clear();
    this.notSent = 0;
  }

  private answered(key: number, sequence: number, scheduledMs: number, status: string, admitted: boolean): void {
    const latencyMs = performance.now() - scheduledMs;
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
    if (admitted) {
      this.admittedMs.push(latencyMs);
      this.lastAcked.set(key, sequence);
    } else {
      this.refusedMs.push(latencyMs);
    }
    this.inFlight--;
    this.free.push(key);
  }

  /** settle waits for every write in flight to be answered (bounded). */
  async settle(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (this.inFlight > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * saturationWriters: closed-loop writers for the saturation run. Enough that the cluster, not the
 * writers' round trips, bounds the rate (64 were not: the cluster then took twice their rate).
 */
const saturationWriters = 512;

/** saturation runs saturationWriters closed-loop writers for `seconds` and answers the acknowledged writes per second. */
async function saturation(writes: Writes, seconds: number): Promise<number> {
  writes.resetStats();
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: saturationWriters }, async () => {
      for (let round = 0; round < 1_000_000 && performance.now() < deadline; round++) {
        const answered = writes.write(performance.now());
        if (answered === undefined) break;
        await answered;
      }
    }),
  );
  await writes.settle(30_000);
  return writes.admittedMs.length / seconds;
}

/**
 * overload offers `ratePerSecond` writes for `seconds`, on a schedule (open loop: a write is due
 * at its time whether or not earlier ones were answered; its latency counts from then), renewing
 * the leases now and then, and answers the writes it could not send (no free key, or inFlightMax).
 */
async function overload(writes: Writes, ratePerSecond: number, seconds: number, onSecond: (second: number) => void): Promise<void> {
  writes.resetStats();
  const startedMs = performance.now();
  const endMs = startedMs + seconds * 1000;
  let due = 0;
  let lastRenewMs = startedMs;
  let lastSecond = 0;
  for (let round = 0; round < 10_000_000; round++) {
    const nowMs = performance.now();
    if (nowMs >= endMs) break;
    const dueNow = Math.floor(((nowMs - startedMs) / 1000) * ratePerSecond);
    for (; due < dueNow; due++) writes.write(startedMs + (due / ratePerSecond) * 1000);
    if (nowMs - lastRenewMs >= renewEveryMs) {
      lastRenewMs = nowMs;
      void writes.renewLeases();
    }
    const second = Math.floor((nowMs - startedMs) / 1000);
    if (second !== lastSecond) {
      lastSecond = second;
      onSecond(second);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await writes.settle(60_000);
}

/** Watch samples every node's term and leader, and its loops' lag, now and then, during a run. */
class Watch {
  readonly terms = new Set<number>();
  readonly leaders: string[] = [];
  /** lagMaxMs: per loop (raft, http), the worst window's max lag any node reported. */
  readonly lagMaxMs = new Map<string, number>();
  readonly lagP99Ms = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;
  private busy = false;
  private round = 0;
  private readonly cluster: ProcessCluster;

  constructor(cluster: ProcessCluster) {
    this.cluster = cluster;
    this.timer = setInterval(() => void this.sample(), 1000);
  }

  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    this.round++;
    try {
      const statuses = await Promise.all(this.cluster.ids().map((id) => this.cluster.status(id)));
      for (const status of statuses) {
        if (status === undefined) continue;
        this.terms.add(status.term);
        if (status.leaderId !== null && this.leaders.at(-1) !== status.leaderId) this.leaders.push(status.leaderId);
      }
      if (this.round % 5 === 0) await Promise.all(this.cluster.urls().map((url) => this.sampleLag(url)));
    } finally {
      this.busy = false;
    }
  }

  private async sampleLag(url: string): Promise<void> {
    try {
      const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2000) });
      const metrics = parsePrometheusText(await response.text());
      for (const loop of ["raft", "http"]) {
        const maxMs = 1000 * metrics.sum("sctec_event_loop_lag_max_seconds", { loop });
        const p99Ms = 1000 * metrics.sum("sctec_event_loop_lag_seconds", { loop });
        this.lagMaxMs.set(loop, Math.max(this.lagMaxMs.get(loop) ?? 0, maxMs));
        this.lagP99Ms.set(loop, Math.max(this.lagP99Ms.get(loop) ?? 0, p99Ms));
      }
    } catch {
      // A node too busy to answer within 2 s shows in the next sample.
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** verify reads every key back (linearizable range reads) and counts acknowledged writes that are not there. */
async function verify(writes: Writes, url: string, apiToken: string): Promise<{ keysRead: number; lost: number; strange: number }> {
  const stored = new Map<number, number>();
  let after = "";
  for (let page = 0; page < 100; page++) {
    const query = new URLSearchParams({ prefix: "overload/", limit: "1000", ...(after === "" ? {} : { after }) });
    const response = await fetch(`${url}/kv?${query}`, {
      headers: { authorization: `Bearer ${apiToken}` },
      signal: AbortSignal.timeout(30_000),
    });
    if (!response.ok) throw new Error(`GET /kv answered ${response.status}: ${await response.text()}`);
    const body = (await response.json()) as { items: { key: string; value: string }[]; more: boolean };
    for (const item of body.items) stored.set(Number(item.key.slice("overload/".length)), Number(item.value));
    if (!body.more) break;
    after = body.items.at(-1)?.key ?? after;
  }
  let lost = 0;
  let strange = 0;
  for (const [key, acked] of writes.lastAcked) if ((stored.get(key) ?? 0) < acked) lost++;
  // A stored value no write for that key ever carried would be worse than a loss.
  for (const [key, value] of stored) if (value > (writes.lastSent.get(key) ?? 0)) strange++;
  return { keysRead: stored.size, lost, strange };
}

interface Figures {
  readonly saturationPerSecond: number;
  readonly offeredPerSecond: number;
  readonly admitted: number;
  readonly admittedP50Ms: number;
  readonly admittedP99Ms: number;
  readonly refused: number;
  readonly refusedP99Ms: number;
  readonly notSent: number;
  readonly statuses: Record<string, number>;
  readonly termChanges: number;
  readonly leaders: readonly string[];
  readonly lagMaxMs: Record<string, number>;
  readonly lagP99Ms: Record<string, number>;
  readonly verified: { keysRead: number; lost: number; strange: number };
}

/** overloadRun: the saturation rate, then twice that for `seconds`, watched, then every acknowledged write read back. */
async function overloadRun(cluster: ProcessCluster, seconds: number): Promise<Figures> {
  const leader = await cluster.waitForLeader(30_000);
  const pool = new Pool(cluster.url(leader), { connections: inFlightMax, pipelining: 1 });
  try {
    const writes = new Writes(pool, cluster.apiToken);
    progress(`taking ${keys} leases on ${leader}`);
    await writes.takeLeases();
    progress(`saturation: ${saturationWriters} closed-loop writers for ${saturationSeconds} s`);
    const saturationPerSecond = await saturation(writes, saturationSeconds);
    const offeredPerSecond = Math.ceil(2 * saturationPerSecond);
    progress(`saturated at ${saturationPerSecond.toFixed(0)} writes/s; offering ${offeredPerSecond}/s for ${seconds} s`);
    const watch = new Watch(cluster);
    const termBefore = (await cluster.status(leader))?.term ?? 0;
    watch.terms.add(termBefore);
    await overload(writes, offeredPerSecond, seconds, (second) => {
      if (second % 15 === 0)
        progress(
          `${second} s: ${writes.admittedMs.length} admitted, ${writes.refusedMs.length} refused, ${writes.notSent} not sent (load ${loadavg()[0]?.toFixed(1)})`,
        );
    });
    watch.stop();
    const admitted = [...writes.admittedMs].sort((a, b) => a - b);
    const refused = [...writes.refusedMs].sort((a, b) => a - b);
    const now = await cluster.waitForLeader(30_000);
    progress(`reading every key back from ${now}`);
    return {
      saturationPerSecond,
      offeredPerSecond,
      admitted: admitted.length,
      admittedP50Ms: percentile(admitted, 0.5),
      admittedP99Ms: percentile(admitted, 0.99),
      refused: refused.length,
      refusedP99Ms: percentile(refused, 0.99),
      notSent: writes.notSent,
      statuses: Object.fromEntries(writes.statuses),
      termChanges: Math.max(...watch.terms) - Math.min(...watch.terms),
      leaders: watch.leaders,
      lagMaxMs: Object.fromEntries(watch.lagMaxMs),
      lagP99Ms: Object.fromEntries(watch.lagP99Ms),
      verified: await verify(writes, cluster.url(now), cluster.apiToken),
    };
  } finally {
    await pool.close();
  }
}

function failoverSummary(samplesMs: readonly number[]): { minMs: number; medianMs: number; maxMs: number; samplesMs: readonly number[] } {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  return { minMs: sorted[0] ?? Number.NaN, medianMs: percentile(sorted, 0.5), maxMs: sorted.at(-1) ?? Number.NaN, samplesMs };
}

function report(
  figures: Figures,
  failover: { busy: ReturnType<typeof failoverSummary>; quiet: ReturnType<typeof failoverSummary> },
  busyLoopCount: number,
  seconds: number,
): string {
  const statuses = Object.entries(figures.statuses)
    .map(([status, count]) => `${count} × ${status}`)
    .join(", ");
  const fo = (summary: ReturnType<typeof failoverSummary>) =>
    `min ${summary.minMs.toFixed(0)} ms, median ${summary.medianMs.toFixed(0)} ms, max ${summary.maxMs.toFixed(0)} ms`;
  return [
    "| measure | result |",
    "| --- | --- |",
    `| raft threads | ${realtime ? "SCHED_RR, priority 1 (SCTEC_RAFT_REALTIME=true)" : "normal priority (SCHED_OTHER)"} |`,
    `| busy-loop processes beside the cluster | ${busyLoopCount} (one per core) |`,
    `| saturation (${saturationWriters} closed-loop writers) | ${figures.saturationPerSecond.toFixed(0)} writes/s |`,
    `| offered for ${seconds} s (open loop, 2 × saturation) | ${figures.offeredPerSecond} writes/s |`,
    `| leader changes | ${figures.leaders.length - 1} (terms seen: ${figures.termChanges + 1}; leaders: ${figures.leaders.join(" → ")}) |`,
    `| admitted (200) | ${figures.admitted}; p50 ${figures.admittedP50Ms.toFixed(0)} ms, p99 ${figures.admittedP99Ms.toFixed(0)} ms (from when each was due) |`,
    `| refused | ${figures.refused}; p99 ${Number.isNaN(figures.refusedP99Ms) ? "–" : `${figures.refusedP99Ms.toFixed(0)} ms`} |`,
    `| answers | ${statuses} |`,
    `| not sent (no free key: ${inFlightMax} in flight) | ${figures.notSent} |`,
    `| acknowledged writes lost | ${figures.verified.lost} (${figures.verified.keysRead} keys read back; values no write carried: ${figures.verified.strange}) |`,
    `| event-loop lag, worst 5 s window of any node | raft loop: p99 ${(figures.lagP99Ms["raft"] ?? Number.NaN).toFixed(0)} ms, max ${(figures.lagMaxMs["raft"] ?? Number.NaN).toFixed(0)} ms; HTTP loop: p99 ${(figures.lagP99Ms["http"] ?? Number.NaN).toFixed(0)} ms, max ${(figures.lagMaxMs["http"] ?? Number.NaN).toFixed(0)} ms |`,
    `| failover with the busy loops (${failover.busy.samplesMs.length} kills) | ${fo(failover.busy)} |`,
    `| failover without them (${failover.quiet.samplesMs.length} kills) | ${fo(failover.quiet)} |`,
  ].join("\n");
}

/**
 * failoversOnlyRun (`--failovers-only`): the kills alone, `kills` with the busy loops and `kills`
 * without, on a fresh cluster; it prints the figures (and with `--trace` each kill taken apart)
 * and writes bench/results/overload-failovers-<date>.json, but does not touch docs/BENCHMARKS.md.
 */
async function failoversOnlyRun(machine: string, loadBefore: number): Promise<void> {
  const busyLoopCount = cpus().length;
  const cluster = await ProcessCluster.start(realtime ? { env: { SCTEC_RAFT_REALTIME: "true" } } : {});
  // Generous: a round restarts a node through tsx (tens of seconds on a loaded machine); the loops end by themselves.
  const loops = busyLoops(busyLoopCount, kills * 90 + 120);
  process.once("exit", () => stopBusyLoops(loops));
  try {
    progress(`${kills} leader kills with ${busyLoopCount} busy loops (load ${loadavg()[0]?.toFixed(1)})`);
    const busyRun = await failovers(cluster, kills, progress, "failover-busy", { trace });
    stopBusyLoops(loops);
    progress(`${kills} leader kills without them (load ${loadavg()[0]?.toFixed(1)})`);
    const quietRun = await failovers(cluster, kills, progress, "failover-quiet", { trace });
    const loadAfter = loadavg()[0] ?? Number.NaN;
    const busy = failoverSummary(busyRun.samplesMs);
    const quiet = failoverSummary(quietRun.samplesMs);
    const fo = (summary: ReturnType<typeof failoverSummary>) =>
      `min ${summary.minMs.toFixed(0)} ms, median ${summary.medianMs.toFixed(0)} ms, max ${summary.maxMs.toFixed(0)} ms`;
    console.log(`\nfailover with the busy loops (${kills} kills): ${fo(busy)}`);
    if (trace) console.log(`  phases: ${summarizePhases(busyRun.traces)}`);
    console.log(`failover without them (${kills} kills): ${fo(quiet)}`);
    if (trace) console.log(`  phases: ${summarizePhases(quietRun.traces)}`);
    console.log(`load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after`);
    const date = new Date().toISOString().slice(0, 10);
    mkdirSync("bench/results", { recursive: true });
    writeFileSync(
      `bench/results/overload-failovers-${date}${realtime ? "-realtime" : ""}.json`,
      `${JSON.stringify({ date, machine, realtime, loadBefore, loadAfter, failover: { busy, quiet }, traces: { busy: busyRun.traces, quiet: quietRun.traces } }, null, 2)}\n`,
    );
  } finally {
    stopBusyLoops(loops);
    await cluster.close();
  }
}

async function main(): Promise<void> {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const loadBefore = loadavg()[0] ?? Number.NaN;
  console.log(
    `bench:overload${quick ? " --quick" : ""}: three real nodes on loopback (fsync on), busy loops beside them; about ${quick ? 2 : 13} minutes`,
  );
  console.log(`machine: ${machine}; load average ${loadBefore.toFixed(1)}`);
  if (failoversOnly) {
    await failoversOnlyRun(machine, loadBefore);
    return;
  }
  const busyLoopCount = cpus().length;
  const cluster = await ProcessCluster.start(realtime ? { env: { SCTEC_RAFT_REALTIME: "true" } } : {});
  // Generous: they end by themselves after the overload run and the kills with them.
  const loops = busyLoops(busyLoopCount, overloadSeconds + saturationSeconds + kills * 30 + 120);
  process.once("exit", () => stopBusyLoops(loops));
  try {
    const figures = await overloadRun(cluster, overloadSeconds);
    console.log(JSON.stringify(figures)); // Printed now: the kills below take a while.
    progress(`${kills} leader kills with the busy loops`);
    const busy = failoverSummary((await failovers(cluster, kills, progress, "failover-busy", { trace })).samplesMs);
    stopBusyLoops(loops);
    progress(`${kills} leader kills without them`);
    const quiet = failoverSummary((await failovers(cluster, kills, progress, "failover-quiet", { trace })).samplesMs);
    const loadAfter = loadavg()[0] ?? Number.NaN;
    const date = new Date().toISOString().slice(0, 10);
    const summary = report(figures, { busy, quiet }, busyLoopCount, overloadSeconds);
    console.log(`\n${summary}\n`);
    mkdirSync("bench/results", { recursive: true });
    writeFileSync(
      `bench/results/overload-${date}${quick ? "-quick" : ""}${realtime ? "-realtime" : ""}.json`,
      `${JSON.stringify({ date, machine, quick, realtime, loadBefore, loadAfter, figures, failover: { busy, quiet } }, null, 2)}\n`,
    );
    updateBenchmarksDoc(
      "overload",
      `Measured ${date}${quick ? " (--quick)" : ""} on ${machine}; load average ${loadBefore.toFixed(1)} before the run (the busy loops not yet started), ${loadAfter.toFixed(1)} after it.\n\n${summary}`,
    );
  } finally {
    stopBusyLoops(loops);
    await cluster.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
