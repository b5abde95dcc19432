// The run's summary: one row per history (terminal and JSON), and the numbers by fault kind that
// docs/RELIABILITY.md quotes.

import type { HistoryResult } from "./history.ts";
import { type FaultKind, faultKinds } from "./plan.ts";

export interface HistoryRow {
  readonly index: number;
  readonly seed: number;
  readonly workload: string;
  readonly faults: string[];
  readonly ok: boolean;
  readonly failedChecks: string[];
  readonly operations: number;
  readonly unknown: number;
  readonly fencedOff: number;
  readonly wallSeconds: number;
  readonly loadAverage: number;
  readonly report: string;
}

export interface KindRow {
  readonly kind: FaultKind;
  /** variants: how many effective faults of each variant ran (as they turned out: `ranAs`). */
  readonly variants: Record<string, number>;
  /** faults: how many took effect (nemesis.ts, FaultRecord.effective). */
  readonly faults: number;
  /** noEffect: how many started but did nothing (for example, no leader to transfer). */
  readonly noEffect: number;
  /** histories: in how many histories one took effect; failedHistories: how many of those failed. */
  readonly histories: number;
  readonly failedHistories: number;
}

export function historyRow(result: HistoryResult, report: string): HistoryRow {
  const lock = result.lockHistory;
  return {
    index: result.plan.index,
    seed: result.plan.seed,
    workload: result.plan.unfenced ? "lock-set (unfenced)" : result.plan.workload,
    faults: result.faults
      .filter((fault) => fault.startedAtMs !== undefined)
      .map((fault) => `${fault.plan.kind} ${fault.ranAs}${fault.effective ? "" : " (no effect)"}`),
    ok: result.ok,
    failedChecks: result.checks.filter((check) => !check.ok).map((check) => `${check.name}: ${check.detail}`),
    operations: lock.length > 0 ? lock.length : result.bookingRequests.length,
    unknown:
      lock.length > 0
        ? lock.filter((entry) => entry.operation.outcome.status === "unknown").length
        : result.bookingRequests.filter((request) => request.outcome === "unknown").length,
    fencedOff: lock.filter((entry) => entry.operation.kind === "write" && entry.operation.outcome.status === "stale").length,
    wallSeconds: result.wallMs / 1000,
    loadAverage: (result.loadAverage.start + result.loadAverage.end) / 2,
    report,
  };
}

export function kindRows(results: readonly HistoryResult[]): KindRow[] {
  return faultKinds.map((kind) => {
    const variants: Record<string, number> = {};
    let faults = 0;
    let noEffect = 0;
    let histories = 0;
    let failedHistories = 0;
    for (const result of results) {
      const started = result.faults.filter((fault) => fault.plan.kind === kind && fault.startedAtMs !== undefined);
      const ran = started.filter((fault) => fault.effective);
      noEffect += started.length - ran.length;
      if (ran.length === 0) continue;
      histories++;
      if (!result.ok) failedHistories++;
      for (const fault of ran) {
        faults++;
        variants[fault.ranAs] = (variants[fault.ranAs] ?? 0) + 1;
      }
    }
    return { kind, variants, faults, noEffect, histories, failedHistories };
  });
}

/** formatHistoryTable renders the rows as a fixed-width table for the terminal. */
export function formatHistoryTable(rows: readonly HistoryRow[]): string {
  const header = ["#", "seed", "workload", "faults", "ops", "unknown", "fenced off", "s", "verdict"];
  const lines = rows.map((row) => [
    String(row.index),
    `0x${row.seed.toString(16).padStart(8, "0")}`,
    row.workload,
    row.faults.join("; "),
    String(row.operations),
    String(row.unknown),
    String(row.fencedOff),
    row.wallSeconds.toFixed(0),
    row.ok ? "pass" : "FAIL",
  ]);
  return table(header, lines);
}

export function formatKindTable(rows: readonly KindRow[]): string {
  const header = ["fault kind", "faults", "no effect", "variants", "histories", "failed"];
  const lines = rows.map((row) => [
    row.kind,
    String(row.faults),
    String(row.noEffect),
    Object.entries(row.variants)
      .map(([variant, count]) => `${variant} ${count}`)
      .join(", "),
    String(row.histories),
    String(row.failedHistories),
  ]);
  return table(header, lines);
}

function table(header: readonly string[], lines: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) => Math.min(70, Math.max(title.length, ...lines.map((line) => (line[column] ?? "").length))));
  const render = (cells: readonly string[]) =>
    cells
      .map((cell, column) =>
        cell.length > (widths[column] ?? 0) ? `${cell.slice(0, (widths[column] ?? 1) - 1)}…` : cell.padEnd(widths[column] ?? 0),
      )
      .join("  ");
  return [render(header), widths.map((width) => "-".repeat(width)).join("  "), ...lines.map(render)].join("\n");
}

/**
 * ElectionStats: how often the term changed during clock faults that ran alone, and during quiet
 * time (no fault on, and none in the 3 s before), over a run. A wall-clock fault may change nothing
 * but times of day, so the first rate should be no higher than the second (which on a loaded
 * machine is not zero: a node that misses heartbeats for 150-300 ms starts an election).
 */
export interface ElectionStats {
  readonly clockFaultSeconds: number;
  readonly clockFaultElections: number;
  readonly quietSeconds: number;
  readonly quietElections: number;
}

export function electionStats(results: readonly HistoryResult[]): ElectionStats {
  let clockFaultMs = 0;
  let clockFaultElections = 0;
  let quietMs = 0;
  let quietElections = 0;
  for (const result of results) {
    const elections = electionTimes(result);
    const faults = result.faults
      .filter((fault) => fault.startedAtMs !== undefined && fault.effective)
      .map((fault) => ({ kind: fault.plan.kind, fromMs: fault.startedAtMs as number, toMs: fault.endedAtMs ?? result.endedAtMs }));
    for (const fault of faults) {
      if (fault.kind !== "clock" || faults.some((other) => other !== fault && other.fromMs < fault.toMs && fault.fromMs < other.toMs))
        continue;
      clockFaultMs += fault.toMs - fault.fromMs;
      clockFaultElections += elections.filter((atMs) => atMs > fault.fromMs && atMs <= fault.toMs).length;
    }
    // Quiet: sampled in 100 ms steps, outside every fault and the 3 s after it.
    const quietAt = (atMs: number) => !faults.some((fault) => atMs >= fault.fromMs && atMs < fault.toMs + 3000);
    for (let atMs = 1000; atMs < result.endedAtMs; atMs += 100) if (quietAt(atMs)) quietMs += 100;
    quietElections += elections.filter((atMs) => atMs >= 1000 && quietAt(atMs)).length;
  }
  return { clockFaultSeconds: clockFaultMs / 1000, clockFaultElections, quietSeconds: quietMs / 1000, quietElections };
}

/** electionTimes: when the monitor first saw each new term (a node's answer with a term above every earlier one). */
function electionTimes(result: HistoryResult): number[] {
  const times: number[] = [];
  let highest = 0;
  for (const sample of [...result.samples].sort((a, b) => a.atMs - b.atMs)) {
    if (sample.term <= highest) continue;
    if (highest > 0) times.push(sample.atMs);
    highest = sample.term;
  }
  return times;
}
