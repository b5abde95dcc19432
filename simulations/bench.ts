// `npm run bench:sim`: how fast the simulator runs on this machine. It runs five-node schedules
// of 10,000 ticks each (the moderate fault mix of defaultSimOptions, a new seed per schedule) and
// reports schedules per minute and message deliveries per second. A benchmark, not a test: it
// reads the wall clock, and its figures go to docs/BENCHMARKS.md.
//
//   npm run bench:sim                 about 30 seconds
//   npm run bench:sim -- --seconds 60

import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { defaultSimOptions } from "./options.ts";
import { runSimulation } from "./sim.ts";

const { values } = parseArgs({ options: { seconds: { type: "string" } } });
const seconds = Number(values.seconds ?? "30");
if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 600) {
  console.error("bench:sim: --seconds must be a number in (0, 600]");
  process.exit(2);
}

const options = { ...defaultSimOptions, clusterSize: 5 as const, safetyTicks: 10_000 };
console.log(`bench:sim: 5-node schedules of ${options.safetyTicks} ticks (+ liveness phase), for ${seconds} s`);
const started = performance.now();
let schedules = 0;
let ticks = 0;
let deliveries = 0;
let violations = 0;
let lastReport = started;
while (performance.now() - started < seconds * 1000) {
  const result = runSimulation({ ...options, seed: schedules + 1 });
  schedules++;
  ticks += result.stats.ticks;
  deliveries += result.stats.deliveries;
  if (!result.ok) violations++;
  if (performance.now() - lastReport > 5000) {
    lastReport = performance.now();
    console.log(`  … ${schedules} schedules`);
  }
}
const elapsedSeconds = (performance.now() - started) / 1000;
const cpu = cpus();
console.log("");
console.log(
  `machine:              ${cpu.length} × ${cpu[0]?.model ?? "unknown CPU"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
);
console.log(`schedules:            ${schedules} in ${elapsedSeconds.toFixed(1)} s (violations: ${violations})`);
console.log(`schedules per minute: ${((schedules / elapsedSeconds) * 60).toFixed(0)} (target: at least 300)`);
console.log(`ticks per second:     ${(ticks / elapsedSeconds).toFixed(0)} (each tick advances all 5 nodes)`);
console.log(`deliveries per second: ${(deliveries / elapsedSeconds).toFixed(0)}`);
if (violations > 0) process.exit(1);
