// `npm run bench:rush`: the horizon rush (issue 18). 1,000 simulated scientists, registered
// beforehand, all try at the same instant to book ranges of the slots that have just become
// bookable, through three scheduler processes on a three-node cluster (real processes, LevelDB
// with fsync), each with the booking page's own client logic (scheduler/web/booking.js). The run and
// its proofs are in harness/horizon-rush.ts; tests/horizon-rush.test.ts runs the same with
// 50 scientists. A benchmark, not a test: it prints a report, writes bench/results/rush-<date>.json
// (every slot's winner included), updates docs/BENCHMARKS.md between its markers, and exits 1 if
// any check fails.
//
//   npm run bench:rush                                about 1 to 2 minutes
//   npm run bench:rush -- --scientists 200 --telescopes 1 --seed 7

import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { type HorizonRushReport, runHorizonRush } from "../harness/horizon-rush.ts";
import { updateBenchmarksDoc } from "./benchmarks-doc.ts";

const { values } = parseArgs({
  options: {
    scientists: { type: "string", default: "1000" },
    telescopes: { type: "string", default: "4" },
    seed: { type: "string", default: "18" },
    "skew-ms": { type: "string", default: "2000" },
    "slots-max": { type: "string", default: "6" },
  },
});

function integer(name: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    console.error(`bench:rush: --${name} must be an integer from ${min} to ${max}, got "${text}"`);
    process.exit(2);
  }
  return value;
}

const scientists = integer("scientists", values.scientists, 1, 5000);
const telescopes = integer("telescopes", values.telescopes, 1, 20);
const seed = integer("seed", values.seed, 0, 2 ** 31 - 1);
const clockSkewMaxMs = integer("skew-ms", values["skew-ms"], 0, 60_000);
const slotsPerRangeMax = integer("slots-max", values["slots-max"], 1, 12);

const ms = (value: number) => (value >= 100 ? value.toFixed(0) : value.toFixed(1));
const count = (value: number) => value.toLocaleString("en");

function reportText(report: HorizonRushReport, machine: string, date: string, load: string): string {
  const requests = report.requests;
  const conflicts = Object.entries(requests.conflictsByCode)
    .map(([code, n]) => `${code} ${count(n)}`)
    .join(", ");
  const statuses = Object.entries(requests.byStatus)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([status, n]) => `${status === "0" ? "no answer within 15 s" : status}: ${count(n)}`)
    .join(", ");
  const ended = Object.entries(report.clicks.endedWith)
    .map(([how, n]) => `${how} ${count(n)}`)
    .join(", ");
  const send = report.firstSendMs;
  const rows = [
    ["run", `${date} on ${machine}; load average before the run ${load}; seed ${seed}`],
    [
      "scientists",
      `${count(report.scientists)}, registered beforehand; each one's clock off by up to ±${clockSkewMaxMs} ms, then synchronised (Cristian, 8 samples): uncertainty p50 ${ms(report.clockUncertaintyMs.p50Ms)} ms, max ${ms(report.clockUncertaintyMs.maxMs)} ms`,
    ],
    [
      "slots that opened",
      `${count(report.slotsOpened)} (${report.telescopes.length} telescopes × 60 one-minute slots from ${report.blockUtc}), all at ${report.openingUtc} on the schedulers' clock; each scientist wants 1 to ${slotsPerRangeMax} consecutive slots`,
    ],
    ["schedulers", `${report.schedulers} processes, scientists spread evenly; three lock nodes, fsync on`],
    [
      "first requests sent",
      `from ${ms(send.minMs)} ms to ${ms(send.maxMs)} ms after the true opening (p50 ${ms(send.p50Ms)}, p99 ${ms(send.p99Ms)}); ${count(send.early)} early (answered beyond_horizon, sent again at the opening)`,
    ],
    ["booking requests", `${count(requests.total)}: ${statuses}`],
    ["409s by code", conflicts || "none"],
    ["5xx", `${requests.serverErrors}`],
    [
      "clicks",
      `${count(report.clicks.first)} first choices, ${count(report.clicks.firstWon)} won; ${count(report.clicks.second)} second choices (the first range a 409 offered), ${count(report.clicks.secondWon)} won; ${count(report.clicks.again)} clicks repeated with the same key after no answer or a 503. How each choice ended: ${ended}`,
    ],
    [
      "latency per request",
      `p50 ${ms(report.requestLatency.p50Ms)} ms, p99 ${ms(report.requestLatency.p99Ms)} ms, max ${ms(report.requestLatency.maxMs)} ms (${count(report.requestLatency.count)} requests)`,
    ],
    [
      "latency per click",
      `p50 ${ms(report.clickLatency.p50Ms)} ms, p99 ${ms(report.clickLatency.p99Ms)} ms (retries and their waits included)`,
    ],
    [
      "the rush",
      `${report.rushSeconds.toFixed(2)} s from the opening to the last answer; CPU meanwhile: schedulers ${report.cpuSeconds.schedulers.toFixed(1)} s, nodes ${report.cpuSeconds.nodes.toFixed(1)} s, load generator ${report.cpuSeconds.loadGenerator.toFixed(1)} s (${cpus().length} cores give ${(cpus().length * report.rushSeconds).toFixed(0)} s in that time); ${(report.requests.total / report.rushSeconds).toFixed(0)} answers/s`,
    ],
    [
      "slots booked",
      `${count(report.slotsBookedInBlock)} of the ${count(report.slotsOpened)} that opened; ${count(report.slotsBooked - report.slotsBookedInBlock)} more elsewhere, taken as offered alternatives`,
    ],
    ["Raft log", `${count(report.logEntries)} entries committed, read back from the nodes' LevelDB after the run`],
  ];
  const table = ["| | |", "| --- | --- |", ...rows.map(([what, value]) => `| ${what} | ${value} |`)].join("\n");
  const checks = report.checks.map((check) => `- ${check.ok ? "✓" : "✗ FAILED:"} **${check.name}**: ${check.detail}`).join("\n");
  const winners = report.verdict.winners;
  const positions = new Map<number, number>();
  for (const row of winners) positions.set(row.winnerPosition, (positions.get(row.winnerPosition) ?? 0) + 1);
  const positionText = [...positions]
    .sort(([a], [b]) => a - b)
    .map(([position, n]) => `${position === 1 ? "1st" : position === 2 ? "2nd" : position === 3 ? "3rd" : `${position}th`}: ${n}`)
    .join(", ");
  const contested = [...winners].sort((a, b) => b.contenders - a.contenders || (a.slot < b.slot ? -1 : 1)).slice(0, 8);
  const winnerTable = [
    "| slot | won by | fencing token (grant) | order (write) | attempts that asked for it | the winner's place | before it: busy / taken |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...contested.map(
      (row) =>
        `| ${row.slot} | ${row.scientistId} (${row.bookingId}) | ${row.fencingToken} | ${row.order} | ${row.contenders} | ${row.winnerPosition} | ${row.lostBefore.busy} / ${row.lostBefore.taken} |`,
    ),
  ].join("\n");
  return [
    table,
    "",
    "Checks (harness/rush-checks.ts; the stored state read back through the lock API, the Raft log from LevelDB):",
    "",
    checks,
    "",
    `Who won: ${winners.length} slots were won. The winner's place among the attempts that asked for its slot, in Raft log order: ${positionText}. ` +
      "A later place means every earlier attempt asked for a range in which some slot was, at that index, held by a still earlier attempt (busy) or already booked (taken). " +
      `The most contested slots (every winner is in bench/results/rush-${date}.json):`,
    "",
    winnerTable,
  ].join("\n");
}

async function main(): Promise<void> {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const load = loadavg()
    .map((value) => value.toFixed(2))
    .join(" / ");
  console.log(`bench:rush: ${scientists} scientists, ${telescopes} × 60 slots opening at once, three schedulers; about 1 to 2 minutes`);
  console.log(`machine: ${machine}; load average ${load}`);
  const report = await runHorizonRush({
    scientists,
    telescopes,
    seed,
    clockSkewMaxMs,
    slotsPerRangeMax,
    progress: (message) => process.stdout.write(`  … ${message}\n`),
  });
  const date = new Date().toISOString().slice(0, 10);
  const text = reportText(report, machine, date, load);
  console.log(`\n${text}\n`);
  mkdirSync("bench/results", { recursive: true });
  writeFileSync(
    `bench/results/rush-${date}.json`,
    `${JSON.stringify({ date, machine, load, seed, clockSkewMaxMs, slotsPerRangeMax, report }, null, 2)}\n`,
  );
  updateBenchmarksDoc("rush", text);
  const failed = report.checks.filter((check) => !check.ok);
  if (failed.length > 0) {
    console.error(`bench:rush: ${failed.length} check(s) FAILED`);
    process.exit(1);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
