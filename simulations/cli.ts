// `npm run sim`: the simulator's command line. This file is the simulator's host, so it may read
// argv and the clock (for the default seed and the speed report); the simulation stays pure.
//
//   npm run sim -- --runs 2000                 run 2000 random schedules, print a summary
//   npm run sim -- --seed 42 --runs 500        the same, reproducibly
//   npm run sim -- --seed 42 --path 17:3:0     replay one (shrunk) failing schedule
//   npm run sim -- --options '{"seed":1,...}'  run one schedule given in full
//   --ticks N      longest faulty phase (default 10000)     --bug NAME   plant a bug (see raft/planted-bugs.ts)

import { parseArgs } from "node:util";
import { type PlantedBug, plantedBugs } from "../raft/planted-bugs.ts";
import { type LockPlantedBug, lockPlantedBugs } from "./lock-workload.ts";
import { defaultSimOptions, type SimOptions } from "./options.ts";
import { checkSimulations, SimulationFailure } from "./property.ts";
import { runSimulation, type SimResult } from "./sim.ts";

function usage(message: string): never {
  console.error(`sim: ${message}\nusage: npm run sim -- [--runs N] [--seed S [--path P]] [--ticks N] [--bug NAME] [--options JSON]`);
  process.exit(2);
}

function integerFlag(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) usage(`--${name} must be a non-negative integer, got "${value}"`);
  return parsed;
}

function main(): void {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      options: {
        runs: { type: "string" },
        seed: { type: "string" },
        path: { type: "string" },
        ticks: { type: "string" },
        bug: { type: "string" },
        options: { type: "string" },
        help: { type: "boolean" },
      },
      strict: true,
    });
  } catch (error) {
    usage((error as Error).message);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values["help"] === true) usage("help");
  const bug = values["bug"] as string | undefined;
  const knownBugs: readonly string[] = [...plantedBugs, ...lockPlantedBugs];
  if (bug !== undefined && !knownBugs.includes(bug)) usage(`--bug must be one of ${knownBugs.join(", ")}`);
  const isLockBug = bug !== undefined && (lockPlantedBugs as readonly string[]).includes(bug);
  if (typeof values["options"] === "string") {
    runOne(values["options"]);
    return;
  }
  const seedGiven = values["seed"] !== undefined;
  const seed = integerFlag(values["seed"] as string | undefined, "seed", Date.now() % 0x7fff_ffff);
  const path = values["path"] as string | undefined;
  const runs = integerFlag(values["runs"] as string | undefined, "runs", seedGiven && !values["runs"] ? 1 : 100);
  const safetyTicksMax = integerFlag(values["ticks"] as string | undefined, "ticks", 10_000);
  if (runs < 1) usage("--runs must be at least 1");
  if (safetyTicksMax < 100) usage("--ticks must be at least 100");

  console.log(
    `sim: ${runs} schedule(s), seed ${seed}${path === undefined ? "" : `, path ${path}`}, faulty phase up to ${safetyTicksMax} ticks${bug === undefined ? "" : `, planted bug ${bug}`}`,
  );
  const started = performance.now();
  const totals = {
    schedules: 0,
    ticks: 0,
    deliveries: 0,
    elections: 0,
    crashes: 0,
    crashesBeforePersist: 0,
    acknowledged: 0,
    snapshots: 0,
    livenessTicksMax: 0,
  };
  let lastReport = started;
  const details = checkSimulations({
    runs,
    seed,
    ...(path === undefined ? {} : { path }),
    safetyTicksMax,
    ...(bug === undefined || isLockBug ? {} : { plantedBug: bug as PlantedBug }),
    ...(bug === undefined || !isLockBug ? {} : { plantedLockBug: bug as LockPlantedBug }),
    onRun: (_options, result) => {
      totals.schedules++;
      totals.ticks += result.stats.ticks;
      totals.deliveries += result.stats.deliveries;
      totals.elections += result.stats.elections;
      totals.crashes += result.stats.crashes;
      totals.crashesBeforePersist += result.stats.crashesBeforePersist;
      totals.acknowledged += result.stats.commandsAcknowledged;
      totals.snapshots += result.stats.snapshotsInstalled;
      totals.livenessTicksMax = Math.max(totals.livenessTicksMax, result.stats.livenessTicks);
      const now = performance.now();
      if (now - lastReport > 5000) {
        lastReport = now;
        console.log(`  … ${totals.schedules} schedules in ${((now - started) / 1000).toFixed(0)} s`);
      }
    },
  });
  const seconds = (performance.now() - started) / 1000;
  const failed = details.failed;
  console.log("");
  console.log(`runs:                 ${details.numRuns}${failed ? ` (then ${details.numShrinks} shrink steps)` : ""}`);
  console.log(`violations:           ${failed ? 1 : 0}`);
  console.log(
    `schedules per minute: ${((totals.schedules / seconds) * 60).toFixed(0)} (${totals.schedules} schedules in ${seconds.toFixed(1)} s)`,
  );
  console.log(`simulated ticks:      ${totals.ticks}, deliveries ${totals.deliveries} (${(totals.deliveries / seconds).toFixed(0)}/s)`);
  console.log(
    `elections ${totals.elections}, crashes ${totals.crashes} (${totals.crashesBeforePersist} after early appends, before the write), writes acknowledged ${totals.acknowledged}, snapshots installed ${totals.snapshots}`,
  );
  console.log(`slowest convergence after heal: ${totals.livenessTicksMax} ticks`);
  if (failed) {
    const error = details.errorInstance;
    const counterexample = details.counterexample?.[0];
    console.log("");
    console.log(`FAILED: ${error instanceof SimulationFailure ? error.message : String(error)}`);
    if (counterexample !== undefined) console.log(`counterexample (shrunk): ${JSON.stringify(counterexample)}`);
    console.log(`replay:  npm run sim -- --seed ${details.seed} --path ${details.counterexamplePath}`);
    if (counterexample !== undefined) console.log(`or:      npm run sim -- --options '${JSON.stringify(counterexample)}'`);
    process.exit(1);
  }
}

function runOne(json: string): void {
  let options: SimOptions;
  try {
    options = { ...defaultSimOptions, ...(JSON.parse(json) as Partial<SimOptions>) };
  } catch (error) {
    usage(`--options is not valid JSON: ${(error as Error).message}`);
  }
  const result: SimResult = runSimulation(options);
  console.log(JSON.stringify({ options, ok: result.ok, violation: result.violation, stats: result.stats }, null, 2));
  process.exit(result.ok ? 0 : 1);
}

main();
