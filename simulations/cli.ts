// `npm run sim`: the simulator's command line. This file is the simulator's host, so it may read
// argv and the clock (for the default seed, the soak's deadline and the speed report); the
// simulation stays pure.
//
//   npm run sim -- --runs 2000                 run 2000 random schedules, print a summary
//   npm run sim -- --seed 42 --runs 500        the same, reproducibly
//   npm run sim -- --seed 42 --path 17:3:0     replay one (shrunk) failing schedule, with its timeline
//   npm run sim -- --options '{"seed":1,...}'  run one schedule given in full, with its timeline
//   npm run sim -- --minutes 60                soak: new seeds until the time is up (no shrinking)
//   --ticks N      longest faulty phase (default 10000)     --bug NAME   plant a Raft or client bug

import { parseArgs } from "node:util";
import fc from "fast-check";
import { type PlantedBug, plantedBugs } from "../raft/planted-bugs.ts";
import { type ClientPlantedBug, defaultSimOptions, type SimOptions, simOptionsArbitrary } from "./options.ts";
import { checkSimulations, SimulationFailure } from "./property.ts";
import { type FaultKind, runSimulation, type SimResult } from "./sim.ts";
import { formatTimeline } from "./timeline.ts";

const clientBugs: readonly ClientPlantedBug[] = ["client_counts_from_reply"];

function usage(message: string): never {
  console.error(
    `sim: ${message}\nusage: npm run sim -- [--runs N] [--seed S [--path P]] [--minutes M] [--ticks N] [--bug NAME] [--options JSON] [--timeline-lines N]`,
  );
  process.exit(2);
}

function integerFlag(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < 0) usage(`--${name} must be a non-negative integer, got "${value}"`);
  return parsed;
}

/** Totals add up what the schedules did, for the summary. */
class Totals {
  schedules = 0;
  ticks = 0;
  events = 0;
  elections = 0;
  requests = 0;
  grants = 0;
  staleWritesRefused = 0;
  livenessTicksMax = 0;
  readonly faults = new Map<string, number>();

  add(result: SimResult): void {
    const stats = result.stats;
    this.schedules++;
    this.ticks += stats.ticks;
    this.events += stats.events;
    this.elections += stats.elections;
    this.requests += stats.requests;
    this.grants += stats.lockGrants;
    this.staleWritesRefused += stats.staleWritesRefused;
    this.livenessTicksMax = Math.max(this.livenessTicksMax, stats.livenessTicks);
    for (const [kind, count] of Object.entries(stats.faults) as [FaultKind, number][])
      this.faults.set(kind, (this.faults.get(kind) ?? 0) + count);
  }

  print(seconds: number): void {
    console.log(
      `schedules per minute: ${((this.schedules / seconds) * 60).toFixed(0)} (${this.schedules} schedules in ${seconds.toFixed(1)} s)`,
    );
    console.log(`simulated ticks:      ${this.ticks} (${this.events} events, ${(this.events / seconds).toFixed(0)}/s)`);
    console.log(
      `elections ${this.elections}, client requests ${this.requests}, grants ${this.grants}, stale fenced writes refused ${this.staleWritesRefused}`,
    );
    const faults = [...this.faults.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([kind, count]) => `${kind} ${count}`);
    console.log(`faults injected:      ${faults.join(", ")}`);
    console.log(`slowest convergence after heal: ${this.livenessTicksMax} ticks`);
  }
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
        minutes: { type: "string" },
        "timeline-lines": { type: "string" },
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
  const knownBugs: readonly string[] = [...plantedBugs, ...clientBugs];
  if (bug !== undefined && !knownBugs.includes(bug)) usage(`--bug must be one of ${knownBugs.join(", ")}`);
  const isClientBug = bug !== undefined && (clientBugs as readonly string[]).includes(bug);
  const bugs = {
    ...(bug === undefined || isClientBug ? {} : { plantedBug: bug as PlantedBug }),
    ...(bug === undefined || !isClientBug ? {} : { plantedClientBug: bug as ClientPlantedBug }),
  };
  const timelineLines = integerFlag(values["timeline-lines"] as string | undefined, "timeline-lines", 300);
  if (typeof values["options"] === "string") {
    runOne(values["options"], timelineLines);
    return;
  }
  const safetyTicksMax = integerFlag(values["ticks"] as string | undefined, "ticks", 10_000);
  if (safetyTicksMax < 100) usage("--ticks must be at least 100");
  const seedGiven = values["seed"] !== undefined;
  const seed = integerFlag(values["seed"] as string | undefined, "seed", Date.now() % 0x7fff_ffff);
  if (values["minutes"] !== undefined) {
    const minutes = Number(values["minutes"]);
    if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 24 * 60) usage("--minutes must be a number in (0, 1440]");
    soak(seed, minutes, safetyTicksMax, bugs, timelineLines);
    return;
  }
  const path = values["path"] as string | undefined;
  const runs = integerFlag(values["runs"] as string | undefined, "runs", seedGiven && !values["runs"] ? 1 : 100);
  if (runs < 1) usage("--runs must be at least 1");

  console.log(
    `sim: ${runs} schedule(s), seed ${seed}${path === undefined ? "" : `, path ${path}`}, faulty phase up to ${safetyTicksMax} ticks${bug === undefined ? "" : `, planted bug ${bug}`}`,
  );
  const started = performance.now();
  const totals = new Totals();
  let lastReport = started;
  const details = checkSimulations({
    runs,
    seed,
    ...(path === undefined ? {} : { path }),
    safetyTicksMax,
    ...bugs,
    onRun: (_options, result) => {
      totals.add(result);
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
  totals.print(seconds);
  if (failed) {
    const error = details.errorInstance;
    const counterexample = details.counterexample?.[0];
    console.log("");
    console.log(`FAILED: ${error instanceof SimulationFailure ? error.message : String(error)}`);
    if (counterexample !== undefined) {
      printTimeline(counterexample, timelineLines);
      console.log(`counterexample (shrunk): ${JSON.stringify(counterexample)}`);
    }
    // Every flag that shapes the generated schedules goes into the replay command, or the path
    // would lead through other schedules (--ticks bounds them, --bug is part of them).
    const shaping = `${safetyTicksMax === 10_000 ? "" : ` --ticks ${safetyTicksMax}`}${bug === undefined ? "" : ` --bug ${bug}`}`;
    console.log(`replay:  npm run sim -- --seed ${details.seed} --path ${details.counterexamplePath}${shaping}`);
    if (counterexample !== undefined) console.log(`or:      npm run sim -- --options '${JSON.stringify(counterexample)}'`);
    process.exit(1);
  }
}

/**
 * soak runs fresh schedules from the seed on until the time is up, one after another (each from
 * fast-check's generator with seed, seed + 1, ...), and stops at the first violation, which it
 * prints with its timeline and replay command. No shrinking: a soak is for finding.
 */
function soak(firstSeed: number, minutes: number, safetyTicksMax: number, bugs: object, timelineLines: number): void {
  console.log(`sim soak: ${minutes} min from seed ${firstSeed}, faulty phase up to ${safetyTicksMax} ticks`);
  const started = performance.now();
  const deadline = started + minutes * 60_000;
  const totals = new Totals();
  let lastReport = started;
  let seed = firstSeed;
  const arbitrary = simOptionsArbitrary({ safetyTicksMax, ...bugs });
  for (; performance.now() < deadline; seed++) {
    const [options] = fc.sample(arbitrary, { seed, numRuns: 1 }) as [SimOptions];
    const result = runSimulation(options);
    totals.add(result);
    if (!result.ok) {
      console.log(`\nFAILED at seed ${seed}: ${new SimulationFailure(result).message}`);
      printTimeline(options, timelineLines);
      console.log(`replay: npm run sim -- --options '${JSON.stringify(options)}'`);
      totals.print((performance.now() - started) / 1000);
      process.exit(1);
    }
    const now = performance.now();
    if (now - lastReport > 30_000) {
      lastReport = now;
      console.log(
        `  … ${totals.schedules} schedules (seeds ${firstSeed}..${seed}) in ${((now - started) / 60_000).toFixed(1)} min, no violation`,
      );
    }
  }
  console.log("");
  console.log(`seeds:                ${firstSeed}..${seed - 1} (fast-check sample seed per schedule)`);
  console.log(`violations:           0`);
  totals.print((performance.now() - started) / 1000);
}

function printTimeline(options: SimOptions, lines: number): void {
  const replayed = runSimulation(options, { timeline: true });
  console.log("");
  console.log(`timeline (the last ${lines} events that matter; columns are nodes):`);
  console.log(formatTimeline(replayed.timeline, lines));
  console.log("");
}

function runOne(json: string, timelineLines: number): void {
  let options: SimOptions;
  try {
    options = { ...defaultSimOptions, ...(JSON.parse(json) as Partial<SimOptions>) };
  } catch (error) {
    usage(`--options is not valid JSON: ${(error as Error).message}`);
  }
  const result: SimResult = runSimulation(options, { timeline: true });
  console.log(formatTimeline(result.timeline, timelineLines));
  console.log("");
  console.log(JSON.stringify({ options, ok: result.ok, violation: result.violation, stats: result.stats }, null, 2));
  process.exit(result.ok ? 0 : 1);
}

main();
