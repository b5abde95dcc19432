// `npm run bench:sim`: how fast the simulator runs the production node on this machine. It runs
// five-node schedules of 10,000 ticks each (defaultSimOptions: every kind of network, crash, disk
// and clock fault on; a new seed per schedule), one process per core (schedules are independent),
// and reports schedules per minute, events per second and the machine's load. A benchmark, not a
// test: it reads the wall clock, and its figures go to docs/BENCHMARKS.md.
//
//   npm run bench:sim                          about 60 seconds, one worker per core
//   npm run bench:sim -- --seconds 30 --workers 1

import { fork } from "node:child_process";
import { availableParallelism, cpus, loadavg, totalmem } from "node:os";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { defaultSimOptions } from "./options.ts";
import { runSimulation } from "./sim.ts";

interface WorkerReport {
  schedules: number;
  ticks: number;
  events: number;
  violations: number;
  firstViolation: string | undefined;
  /** cpuSeconds: the CPU time the worker's schedules took (user + system), which load on a shared machine does not inflate much. */
  cpuSeconds: number;
}

const options = { ...defaultSimOptions, clusterSize: 5 as const, safetyTicks: 10_000 };

function usage(message: string): never {
  console.error(`bench:sim: ${message}\nusage: npm run bench:sim -- [--seconds S (1..600)] [--workers N (1..16)]`);
  process.exit(2);
}

/** worker runs schedules with seeds first, first + stride, ... until the time is up, and reports to the parent. */
function worker(seconds: number, first: number, stride: number): void {
  const report: WorkerReport = { schedules: 0, ticks: 0, events: 0, violations: 0, firstViolation: undefined, cpuSeconds: 0 };
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  for (let seed = first; performance.now() - started < seconds * 1000; seed += stride) {
    const result = runSimulation({ ...options, seed });
    report.schedules++;
    report.ticks += result.stats.ticks;
    report.events += result.stats.events;
    if (!result.ok) {
      report.violations++;
      report.firstViolation ??= `seed ${seed}: ${result.violation?.kind}: ${result.violation?.message}`;
    }
  }
  const cpu = process.cpuUsage(cpuBefore);
  report.cpuSeconds = (cpu.user + cpu.system) / 1e6;
  process.send?.(report);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { seconds: { type: "string" }, workers: { type: "string" }, worker: { type: "string" }, stride: { type: "string" } },
  });
  const seconds = Number(values.seconds ?? "60");
  if (!Number.isFinite(seconds) || seconds < 1 || seconds > 600) usage("--seconds must be a number in [1, 600]");
  if (values.worker !== undefined) {
    worker(seconds, Number(values.worker), Number(values.stride));
    return;
  }
  const workers = Number(values.workers ?? String(availableParallelism()));
  if (!Number.isSafeInteger(workers) || workers < 1 || workers > 16) usage("--workers must be an integer in [1, 16]");
  const loadBefore = loadavg();
  console.log(
    `bench:sim: 5-node schedules of ${options.safetyTicks} ticks (+ liveness phase), production driver and lock service, disk faults on; ${workers} worker(s) for ${seconds} s`,
  );
  const started = performance.now();
  const file = fileURLToPath(import.meta.url);
  const reports = await Promise.all(
    Array.from(
      { length: workers },
      (_, index) =>
        new Promise<WorkerReport>((resolve, reject) => {
          const child = fork(file, ["--seconds", String(seconds), "--worker", String(index + 1), "--stride", String(workers)], {
            execArgv: ["--import", "tsx"],
          });
          child.once("message", (message) => resolve(message as WorkerReport));
          child.once("error", reject);
          child.once("exit", (code) => {
            if (code !== 0) reject(new Error(`worker ${index + 1} exited with ${code}`));
          });
        }),
    ),
  );
  const elapsedSeconds = (performance.now() - started) / 1000;
  const total = reports.reduce(
    (sum, report) => ({
      schedules: sum.schedules + report.schedules,
      ticks: sum.ticks + report.ticks,
      events: sum.events + report.events,
      violations: sum.violations + report.violations,
      cpuSeconds: sum.cpuSeconds + report.cpuSeconds,
    }),
    { schedules: 0, ticks: 0, events: 0, violations: 0, cpuSeconds: 0 },
  );
  const cpu = cpus();
  const loadAfter = loadavg();
  console.log("");
  console.log(`date:                  ${new Date().toISOString()}`);
  console.log(
    `machine:               ${cpu.length} × ${cpu[0]?.model ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
  );
  console.log(
    `load average:          ${loadBefore.map((value) => value.toFixed(1)).join(" ")} before, ${loadAfter.map((value) => value.toFixed(1)).join(" ")} after (1, 5, 15 min)`,
  );
  console.log(`schedules:             ${total.schedules} in ${elapsedSeconds.toFixed(1)} s (violations: ${total.violations})`);
  console.log(`schedules per minute:  ${((total.schedules / elapsedSeconds) * 60).toFixed(0)} (target: at least 300)`);
  // On a shared machine the wall-clock rate shows the share of the CPU the bench got; the CPU time
  // per schedule shows what the machine does when it is ours (each core runs one worker).
  const cpuSecondsPerSchedule = total.cpuSeconds / Math.max(1, total.schedules);
  console.log(
    `CPU per schedule:      ${(cpuSecondsPerSchedule * 1000).toFixed(0)} ms, so ${((60 / cpuSecondsPerSchedule) * Math.min(workers, cpu.length)).toFixed(0)} schedules per minute on ${Math.min(workers, cpu.length)} idle core(s)`,
  );
  console.log(`ticks per second:      ${(total.ticks / elapsedSeconds).toFixed(0)} (each tick advances all 5 nodes)`);
  console.log(`events per second:     ${(total.events / elapsedSeconds).toFixed(0)} (timers, deliveries, disk completions)`);
  for (const report of reports) if (report.firstViolation !== undefined) console.log(`VIOLATION ${report.firstViolation}`);
  if (total.violations > 0) process.exit(1);
}

void main();
