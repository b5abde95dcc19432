// `npm run bench:rolling`: a rolling restart of all three lock nodes under booking load (issue 17).
// Real processes on loopback (three nodes, LevelDB with fsync, one scheduler); `workers` clients
// book distinct one-minute slots through the scheduler, one booking each at a time, and never
// retry: a booking that is not answered 201 counts as failed. While they book, rollingRestart
// (client/rolling-restart.ts, what `sctec rolling-restart` runs) restarts every node in turn,
// followers first and the leader last (POST /admin/restart; the harness starts a node again when
// it exits 75, as npm start or compose would). Each round reports the failed bookings (target
// zero), the longest gap between two answered bookings during the roll, the leader changes (at
// most one: the leader's own restart), and how long each node took to come back and catch up.
// A benchmark, not a test: it reads the wall clock, prints a table, writes
// bench/results/rolling-<date>.json and updates docs/BENCHMARKS.md between its markers.
//
//   npm run bench:rolling                  3 rounds (about 3 minutes)
//   npm run bench:rolling -- --quick       1 round
//   npm run bench:rolling -- --rounds 5 --workers 8

import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { LockClient } from "../client/lock-client.ts";
import { type RollingRestartReport, rollingRestart } from "../client/rolling-restart.ts";
import { type BookingSystem, startBookingSystem } from "../harness/booking-system.ts";
import { poolFetch } from "../harness/pool-fetch.ts";
import { updateBenchmarksDoc } from "./benchmarks-doc.ts";

const { values } = parseArgs({ options: { quick: { type: "boolean" }, rounds: { type: "string" }, workers: { type: "string" } } });
const quick = values.quick === true;
const rounds = Number(values.rounds ?? (quick ? 1 : 3));
const workers = Number(values.workers ?? 4);
if (!Number.isSafeInteger(rounds) || rounds < 1 || rounds > 20 || !Number.isSafeInteger(workers) || workers < 1 || workers > 64) {
  console.error("bench:rolling: --rounds must be 1 to 20 and --workers 1 to 64");
  process.exit(2);
}
/** settleMs: booking load before and after each roll, so each roll's window starts and ends in steady state. */
const settleMs = 3000;
/** bookingsMax bounds one worker's bookings in one round (about 150 a second at most for the whole load). */
const bookingsMax = 100_000;

const telescopes = [{ id: "rolling", name: "Rolling", slotMinutes: 1, horizonDays: 366, slotsPerBookingMax: 1 }];
const progress = (message: string) => process.stdout.write(`  … ${message}\n`);
const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;

interface Answer {
  readonly status: number;
  readonly code: string | undefined;
  readonly sentMs: number;
  readonly answeredMs: number;
}

interface Round {
  readonly bookings: number;
  readonly failed: number;
  readonly failures: string;
  readonly longestGapMs: number;
  /** longestGapWhen: which restart the longest gap fell in. */
  readonly longestGapWhen: string;
  readonly leaderChanges: number;
  readonly leaders: readonly string[];
  readonly rollMs: number;
  readonly nodes: RollingRestartReport["restarted"];
}

const pools = poolFetch();
async function post(url: string, path: string, body: unknown, key?: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const answer = await pools.fetch(`${url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key === undefined ? {} : { authorization: `Bearer ${key}` }) },
    body: JSON.stringify(body),
  });
  return { status: answer.status, body: (await answer.json()) as Record<string, unknown> };
}

/** bookingLoad runs `workers` clients booking distinct slots until `stop` is set; every answer is kept. */
function bookingLoad(url: string, keys: readonly string[], firstSlotMs: number): { stop: () => Promise<Answer[]> } {
  const answers: Answer[] = [];
  let running = true;
  const done = Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      for (let step = 0; running && step < bookingsMax; step++) {
        const startMs = firstSlotMs + (step * workers + worker) * 60_000;
        const sentMs = performance.now();
        const answer = await post(
          url,
          "/bookings",
          { telescopeId: "rolling", startUtc: iso(startMs), endUtc: iso(startMs + 60_000), requestedAtUtc: new Date().toISOString() },
          keys[worker % keys.length],
        ).catch((error: unknown) => ({ status: 0, body: { error: { code: (error as Error).message } } }));
        const code = (answer.body["error"] as { code?: string } | undefined)?.code;
        answers.push({ status: answer.status, code, sentMs, answeredMs: performance.now() });
      }
    }),
  );
  return {
    stop: async () => {
      running = false;
      await done;
      return answers;
    },
  };
}

/** longestGap: the longest time between two bookings answered 201 within [fromMs, toMs] (its ends count as answers), and where it began. */
function longestGap(answers: readonly Answer[], fromMs: number, toMs: number): { ms: number; fromMs: number } {
  const times = answers
    .filter((answer) => answer.status === 201 && answer.answeredMs >= fromMs && answer.answeredMs <= toMs)
    .map((answer) => answer.answeredMs)
    .sort((a, b) => a - b);
  let longest = { ms: 0, fromMs };
  let previous = fromMs;
  for (const time of [...times, toMs]) {
    if (time - previous > longest.ms) longest = { ms: time - previous, fromMs: previous };
    previous = time;
  }
  return longest;
}

/** duringWhose: which node's restart (from its request until it had caught up) a moment of the roll fell in. */
function duringWhose(nodes: RollingRestartReport["restarted"], sinceRollMs: number): string {
  const node = nodes.find((each) => sinceRollMs >= each.askedAtMs && sinceRollMs <= each.askedAtMs + each.backMs + each.caughtUpMs);
  return node === undefined ? "between restarts" : `while ${node.nodeId}${node.wasLeader ? " (the leader)" : ""} restarted`;
}

async function oneRound(system: BookingSystem, keys: readonly string[], round: number): Promise<Round> {
  const dayMs = 86_400_000;
  const firstSlotMs = Math.floor(Date.now() / dayMs) * dayMs + (round + 1) * 60 * dayMs;
  const load = bookingLoad(system.schedulerUrls[0] as string, keys, firstSlotMs);
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  const admin = new LockClient({ nodes: system.nodeUrls, apiToken: system.apiToken, retriesMax: 4 });
  const rollStartMs = performance.now();
  const report = await rollingRestart({
    client: admin,
    nodes: system.nodeUrls,
    restartTimeoutMs: 120_000,
    catchUpTimeoutMs: 60_000,
    onProgress: (message) => progress(message.trim()),
  });
  const rollEndMs = performance.now();
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  const answers = await load.stop();
  const during = answers.filter((answer) => answer.sentMs >= rollStartMs && answer.sentMs <= rollEndMs);
  const failed = answers.filter((answer) => answer.status !== 201);
  const counts = new Map<string, number>();
  for (const answer of failed)
    counts.set(`${answer.status} ${answer.code ?? ""}`.trim(), (counts.get(`${answer.status} ${answer.code ?? ""}`.trim()) ?? 0) + 1);
  const gap = longestGap(answers, rollStartMs, rollEndMs);
  return {
    bookings: during.length,
    failed: failed.length,
    failures: [...counts].map(([what, count]) => `${count} × ${what}`).join(", "),
    longestGapMs: gap.ms,
    longestGapWhen: duringWhose(report.restarted, gap.fromMs - rollStartMs),
    leaderChanges: report.leaders.length - 1,
    leaders: report.leaders,
    rollMs: rollEndMs - rollStartMs,
    nodes: report.restarted,
  };
}

function table(results: readonly Round[]): string {
  const lines = [
    "| round | roll took | bookings during the roll | failed bookings (whole round) | longest gap between answered bookings | leader changes | each node: back / caught up (leader last) |",
    "| --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const [position, result] of results.entries()) {
    const nodes = result.nodes
      .map(
        (node) =>
          `${node.nodeId}${node.wasLeader ? " (leader)" : ""} ${(node.backMs / 1000).toFixed(1)} s / ${node.caughtUpMs.toFixed(0)} ms`,
      )
      .join("; ");
    lines.push(
      `| ${position + 1} | ${(result.rollMs / 1000).toFixed(1)} s | ${result.bookings} | ${result.failed}${result.failed > 0 ? ` (${result.failures})` : ""} | ${result.longestGapMs.toFixed(0)} ms (${result.longestGapWhen}) | ${result.leaderChanges} (${result.leaders.join(" → ")}) | ${nodes} |`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const loadBefore = loadavg()[0] ?? 0;
  console.log(
    `bench:rolling: ${rounds} rolling restart${rounds > 1 ? "s" : ""} of three lock nodes under booking load (${workers} clients)`,
  );
  console.log(`machine: ${machine}; load average ${loadBefore.toFixed(1)}`);
  const system = await startBookingSystem({
    schedulers: 1,
    env: {
      SCHEDULER_TELESCOPES: JSON.stringify(telescopes),
      SCHEDULER_RATE_LIMIT_PER_MINUTE: "1000000",
      SCHEDULER_RATE_LIMIT_PER_ADDRESS_PER_MINUTE: "10000000",
    },
  });
  const results: Round[] = [];
  try {
    const keys: string[] = [];
    for (let position = 0; position < workers; position++) {
      const answer = await post(system.schedulerUrls[0] as string, "/scientists", {
        name: `Rolling ${position}`,
        email: `rolling-${position}-${Date.now()}@example.org`,
      });
      if (answer.status !== 201) throw new Error(`registration failed: ${answer.status} ${JSON.stringify(answer.body)}`);
      keys.push(answer.body["apiKey"] as string);
    }
    for (let round = 0; round < rounds; round++) {
      progress(`round ${round + 1} of ${rounds}`);
      results.push(await oneRound(system, keys, round));
    }
  } finally {
    await pools.close();
    await system.stop();
  }
  const loadAfter = loadavg()[0] ?? 0;
  const date = new Date().toISOString().slice(0, 16).replace("T", " ");
  const summary = table(results);
  console.log(`\n${summary}\n`);
  mkdirSync("bench/results", { recursive: true });
  writeFileSync(
    `bench/results/rolling-${date.slice(0, 10)}${quick ? "-quick" : ""}.json`,
    `${JSON.stringify({ date, machine, loadBefore, loadAfter, workers, results }, null, 2)}\n`,
  );
  const failedTotal = results.reduce((total, result) => total + result.failed, 0);
  updateBenchmarksDoc(
    "rolling",
    `Measured ${date} UTC${quick ? " (--quick)" : ""} on ${machine}; load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after; ${workers} booking clients, no retries by the clients.\n\n${summary}\n\nFailed bookings in all: **${failedTotal}** (target 0).`,
  );
  if (failedTotal > 0) process.exitCode = 1;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
