// `npm run chaos`: Jepsen-style histories of real node processes under a seeded nemesis (see
// chaos/README.md). It runs histories until the time budget or the count is used up, writes an
// HTML report per history and a summary, and exits 0 only if every history passed (and, with
// --require-all-kinds, every enabled fault kind ran). Ctrl-C or SIGTERM ends the current history
// cleanly (processes stopped, disks unmounted); a second one releases everything at once.

import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { join, relative, resolve } from "node:path";
import { type BuiltCommands, buildProcesses } from "./build.ts";
import { probeCapabilities } from "./environment.ts";
import { type HistoryResult, runHistory } from "./history.ts";
import { OptionsError, parseChaosOptions, usage } from "./options.ts";
import { describeFault, type FaultKind, makeHistoryPlan } from "./plan.ts";
import { renderHistoryReport } from "./report-html.ts";
import { Resources, releaseStale, runPrefix } from "./resources.ts";
import { electionStats, formatHistoryTable, formatKindTable, historyRow, kindRows } from "./summary.ts";

const startedMs = performance.now();
const say = (text: string) => process.stdout.write(`[${((performance.now() - startedMs) / 1000).toFixed(1).padStart(7)} s] ${text}\n`);

async function main(): Promise<number> {
  let options: ReturnType<typeof parseChaosOptions>;
  try {
    options = parseChaosOptions(process.argv.slice(2));
  } catch (error) {
    if (error instanceof OptionsError) {
      process.stderr.write(`${error.message}\n`);
      return 2;
    }
    throw error;
  }
  if (options === "help") {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  const resources = new Resources();
  installSignalHandlers(resources);
  for (const released of releaseStale()) say(`cleaned up after an earlier run that was killed: ${released}`);
  const runId = `${new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19)}-seed-${options.seed}`;
  const runDir = resolve(options.out, runId);
  mkdirSync(runDir, { recursive: true });
  const tmpRoot = mkdtempSync(runPrefix());
  resources.addDirectory(tmpRoot);
  resources.recordChildrenIn(join(tmpRoot, "children"));
  const capabilities = probeCapabilities(tmpRoot);
  const missing = missingCapabilities(options.kinds, capabilities);
  if (missing.length > 0) {
    process.stderr.write(`cannot run these faults on this machine:\n  ${missing.join("\n  ")}\n(leave them out with --faults)\n`);
    resources.releaseAllNow();
    return 2;
  }
  say(
    `chaos run: seed ${options.seed}, ${options.onlyHistory === undefined ? `up to ${options.minutes} min` : `history ${options.onlyHistory} only`}, faults ${options.kinds.join(",")}, ${cpus().length} CPUs, load ${loadavg()[0]?.toFixed(2)}`,
  );
  say(`reports: ${relative(process.cwd(), runDir) || "."}`);
  let commands: BuiltCommands | undefined;
  if (options.build) {
    const buildDir = join(runDir, "build");
    say("compiling the node and the scheduler (tsconfig.build.json), as the container image runs them …");
    try {
      commands = buildProcesses(buildDir);
      resources.addDirectory(buildDir);
    } catch (error) {
      process.stderr.write(`${(error as Error).message}\n(--no-build runs the sources through tsx)\n`);
      resources.releaseAllNow();
      return 2;
    }
  }
  const results = await runHistories(options, { resources, runDir, tmpRoot, capabilities, commands });
  const summary = summarize(options, results, runDir);
  writeFileSync(join(runDir, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
  resources.releaseAllNow();
  process.stdout.write(`\n${formatHistoryTable(summary.histories)}\n\n${formatKindTable(summary.byKind)}\n\n`);
  for (const line of summary.verdict) say(line);
  say(`summary: ${relative(process.cwd(), join(runDir, "summary.json"))}`);
  return summary.ok ? 0 : 1;
}

const stopping = new AbortController();

async function runHistories(
  options: Exclude<ReturnType<typeof parseChaosOptions>, "help">,
  shared: {
    resources: Resources;
    runDir: string;
    tmpRoot: string;
    capabilities: ReturnType<typeof probeCapabilities>;
    commands: BuiltCommands | undefined;
  },
): Promise<HistoryResult[]> {
  const results: HistoryResult[] = [];
  const budgetMs = options.minutes * 60_000;
  const first = options.onlyHistory ?? 0;
  const count = options.onlyHistory === undefined ? options.histories : 1;
  let expectedMs = options.historySeconds * 1000 + 20_000;
  for (let index = first; index < first + count && !stopping.signal.aborted; index++) {
    const elapsedMs = performance.now() - startedMs;
    if (options.onlyHistory === undefined && elapsedMs + expectedMs > budgetMs) {
      say(
        `time budget: ${((budgetMs - elapsedMs) / 1000).toFixed(0)} s left, a history takes about ${(expectedMs / 1000).toFixed(0)} s: done`,
      );
      break;
    }
    const plan = makeHistoryPlan(options.seed, index, {
      kinds: options.kinds,
      workloads: options.workloads,
      historyMs: options.historySeconds * 1000,
      faultsPerHistory: options.faultsPerHistory,
      leaseTtlMs: options.leaseTtlMs,
      unfenced: options.unfenced,
    });
    say(
      `history ${index} (seed 0x${plan.seed.toString(16)}, ${plan.workload}${plan.unfenced ? ", UNFENCED" : ""}): ${plan.faults.map(describeFault).join("; ")}`,
    );
    const result = await runHistory(plan, {
      ...shared,
      signal: stopping.signal,
      leaseTtlMs: options.leaseTtlMs,
      diskBytes: options.diskMiB * 1024 * 1024,
      keepLogs: options.keepLogs,
      log: say,
    });
    results.push(result);
    const reportPath = join(shared.runDir, `history-${String(index).padStart(3, "0")}.html`);
    writeFileSync(reportPath, renderHistoryReport(result, replayCommand(options, index)));
    const row = historyRow(result, reportPath);
    say(
      `history ${index}: ${result.ok ? "PASS" : "FAIL"} in ${row.wallSeconds.toFixed(0)} s (start ${(result.phasesMs.start / 1000).toFixed(0)}, play ${(result.phasesMs.play / 1000).toFixed(0)}, check ${(result.phasesMs.check / 1000).toFixed(0)}), load ${row.loadAverage.toFixed(1)}: ${row.operations} operations, ${row.unknown} unknown, ${row.fencedOff} writes fenced off${result.ok ? "" : `\n    ${row.failedChecks.join("\n    ")}\n    replay: ${replayCommand(options, index)}`}`,
    );
    expectedMs = Math.max(...results.map((each) => each.wallMs)) + 5000;
  }
  return results;
}

function summarize(options: Exclude<ReturnType<typeof parseChaosOptions>, "help">, results: readonly HistoryResult[], runDir: string) {
  const histories = results.map((result) => historyRow(result, join(runDir, `history-${String(result.plan.index).padStart(3, "0")}.html`)));
  const byKind = kindRows(results);
  const elections = electionStats(results);
  const missingKinds = byKind.filter((row) => options.kinds.includes(row.kind) && row.faults === 0).map((row) => row.kind);
  const failed = histories.filter((row) => !row.ok);
  const verdict = [
    `${histories.length} histories, ${histories.length - failed.length} passed, ${failed.length} failed${stopping.signal.aborted ? " (interrupted)" : ""}`,
    ...(missingKinds.length > 0 ? [`fault kinds that never took effect: ${missingKinds.join(", ")}`] : []),
    `new terms: ${elections.clockFaultElections} in ${elections.clockFaultSeconds.toFixed(0)} s of clock faults alone, ${elections.quietElections} in ${elections.quietSeconds.toFixed(0)} s without faults`,
  ];
  const ok =
    histories.length > 0 && failed.length === 0 && !stopping.signal.aborted && (!options.requireAllKinds || missingKinds.length === 0);
  return {
    command: `npm run chaos -- ${process.argv.slice(2).join(" ")}`.trim(),
    seed: options.seed,
    unfenced: options.unfenced,
    startedAtUtc: new Date(Date.now() - (performance.now() - startedMs)).toISOString(),
    endedAtUtc: new Date().toISOString(),
    machine: { cpus: cpus().length, model: cpus()[0]?.model ?? "", loadAverageAtEnd: loadavg() },
    ok,
    verdict,
    missingKinds,
    histories,
    byKind,
    elections,
  };
}

function replayCommand(options: Exclude<ReturnType<typeof parseChaosOptions>, "help">, index: number): string {
  const extra = [
    options.unfenced ? "--unfenced" : "",
    options.historySeconds !== 20 ? `--history-seconds ${options.historySeconds}` : "",
    options.kinds.length !== 7 ? `--faults ${options.kinds.join(",")}` : "",
    options.faultsPerHistory !== 3 ? `--faults-per-history ${options.faultsPerHistory}` : "",
    options.workloads.length !== 2 ? `--workload ${options.workloads[0]}` : "",
    options.leaseTtlMs !== 1000 ? `--ttl-ms ${options.leaseTtlMs}` : "",
    options.diskMiB !== 64 ? `--disk-mib ${options.diskMiB}` : "",
  ].filter((part) => part !== "");
  return `npm run chaos -- --seed ${options.seed} --history ${index}${extra.length > 0 ? ` ${extra.join(" ")}` : ""}`;
}

function missingCapabilities(kinds: readonly FaultKind[], capabilities: ReturnType<typeof probeCapabilities>): string[] {
  const missing: string[] = [];
  if (kinds.includes("disk") && capabilities.tmpfs !== true) missing.push(`disk (full): ${capabilities.tmpfs}`);
  if (kinds.includes("disk") && typeof capabilities.slowFsync === "string") missing.push(`disk (slow-fsync): ${capabilities.slowFsync}`);
  if (kinds.includes("clock") && capabilities.faketime !== true) missing.push(`clock: ${capabilities.faketime}`);
  return missing;
}

function installSignalHandlers(resources: Resources): void {
  let signals = 0;
  let firstSignalMs = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    // Ctrl-C reaches this process twice: from the terminal (to the whole process group) and
    // forwarded by npm, its parent. Only a second one at least a second later means "at once".
    // (The runner runs under `node --import tsx`, not the tsx command: that one relays a signal
    // and, unless its child acknowledges it within 30 ms, follows with SIGKILL, which on a loaded
    // machine killed the runner before it could unmount its disks.)
    if (signals === 1 && performance.now() - firstSignalMs < 1000) return;
    signals++;
    if (signals === 1) {
      firstSignalMs = performance.now();
      say(`${signal}: ending the current history and cleaning up (again to stop at once)`);
      stopping.abort();
      // Bounded: the orderly stop gets a minute; then everything goes at once.
      setTimeout(() => hardStop(resources, `${signal}: the orderly stop took too long`), 60_000).unref();
      return;
    }
    hardStop(resources, `${signal} again`);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("exit", () => resources.releaseAllNow());
  process.on("uncaughtException", (error) => {
    process.stderr.write(`chaos runner: uncaught exception: ${error.stack ?? String(error)}\n`);
    hardStop(resources, "uncaught exception", 1);
  });
  process.on("unhandledRejection", (reason) => {
    process.stderr.write(`chaos runner: unhandled rejection: ${(reason as Error)?.stack ?? String(reason)}\n`);
    hardStop(resources, "unhandled rejection", 1);
  });
}

function hardStop(resources: Resources, why: string, code = 130): never {
  const released = resources.releaseAllNow();
  process.stderr.write(
    `${why}: killed ${released.killed} processes, unmounted ${released.unmounted} disks${released.failed.length > 0 ? `; could not release ${released.failed.join(", ")}` : ""}\n`,
  );
  process.exit(code);
}

process.exitCode = await main();
