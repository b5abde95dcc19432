// The per-history report: one self-contained HTML page (inline CSS and SVG, no script, nothing
// fetched) that a person reads: the verdict and every check, a timeline (faults as bands, the
// leader and each node's role over time, every client's operations), the faults as they ran,
// and, when the history is not linearizable, its smallest failing window drawn large and listed.

import type { FencedEntry } from "../harness/fenced-kv-model.ts";
import type { FailingWindowReport, HistoryResult } from "./history.ts";
import type { StatusSample } from "./monitor.ts";
import type { FaultRecord } from "./nemesis.ts";
import type { BookingRequest } from "./workload-bookings.ts";

const plotWidth = 1100;
const labelWidth = 92;
const laneHeight = 16;

/** Bar: one rectangle on a lane. */
interface Bar {
  readonly fromMs: number;
  readonly toMs: number;
  readonly css: string;
  readonly title: string;
  /** thin bars (reads) sit in the middle of the lane. */
  readonly thin?: boolean;
  /** label: written inside the bar when it is wide enough. */
  readonly label?: string;
}

interface Lane {
  readonly label: string;
  readonly bars: readonly Bar[];
}

export function renderHistoryReport(result: HistoryResult, replay: string): string {
  const plan = result.plan;
  const endMs = Math.max(result.endedAtMs, plan.durationMs, ...result.faults.map((fault) => fault.endedAtMs ?? 0)) + 500;
  const title = `History ${plan.index}: ${result.ok ? "PASS" : "FAIL"}`;
  const window = result.failingWindows[0];
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)} (seed 0x${plan.seed.toString(16)})</title>
<style>${css}</style></head><body>
<header class="${result.ok ? "pass" : "fail"}"><h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(plan.workload)}${plan.unfenced ? " <b>(unfenced: the negative control)</b>" : ""} · seed <code>0x${plan.seed.toString(16)}</code> (run seed ${plan.runSeed}, history ${plan.index}) · started ${escapeHtml(result.startedAtUtc)} · ${(result.wallMs / 1000).toFixed(1)} s (start ${(result.phasesMs.start / 1000).toFixed(1)}, play ${(result.phasesMs.play / 1000).toFixed(1)}, stop and check ${(result.phasesMs.check / 1000).toFixed(1)}) · load ${result.loadAverage.start.toFixed(1)} → ${result.loadAverage.end.toFixed(1)}</p>
<p>Replay: <code>${escapeHtml(replay)}</code></p></header>
<main>
<h2>Checks</h2>
${checksTable(result)}
${window === undefined ? "" : failingWindowSection(window, result.failingWindows.length)}
<h2>Timeline</h2>
<p class="legend">${legend(plan.workload)}</p>
${timeline(result, 0, endMs)}
<h2>Faults</h2>
${faultsTable(result.faults)}
${result.unexpectedExits.length === 0 ? "" : exitsSection(result)}
<h2>Numbers</h2>
${numbers(result)}
${result.error === undefined ? "" : `<h2>Error</h2><pre>${escapeHtml(result.error)}</pre>`}
</main></body></html>
`;
}

function checksTable(result: HistoryResult): string {
  const rows = result.checks
    .map(
      (check) =>
        `<tr class="${check.ok ? "ok" : "bad"}"><td>${check.ok ? "✓" : "✗"}</td><td>${escapeHtml(check.name)}</td><td>${escapeHtml(check.detail)}</td></tr>`,
    )
    .join("\n");
  return `<table class="checks"><tbody>${rows}</tbody></table>`;
}

function failingWindowSection(window: FailingWindowReport, count: number): string {
  const fromMs = Number.isFinite(window.fromMs) ? window.fromMs : Math.min(...window.entries.map((entry) => entry.invokedAtMs));
  const padMs = Math.max(50, (window.toMs - fromMs) * 0.05);
  const lanes = clientLanes(window.entries, window.toMs + padMs);
  const rows = window.entries
    .map((entry, position) => {
      const optional = window.optional[position] === true;
      return `<tr${optional ? ' class="optional"' : ""}><td>${escapeHtml(entry.client)}</td><td>${ms(entry.invokedAtMs)}</td><td>${Number.isFinite(entry.returnedAtMs) ? ms(entry.returnedAtMs) : "never"}</td><td>${escapeHtml(describeOperation(entry))}</td><td>${optional ? "may have taken effect outside the window" : ""}</td></tr>`;
    })
    .join("\n");
  return `<h2>Smallest failing window (${escapeHtml(window.resource)})</h2>
<p>These ${window.entries.length} operations, between ${ms(fromMs)} and ${ms(window.toMs)}, cannot be put in any order that respects real time and the model, whatever state they started from${count > 1 ? ` (${count - 1} more resources failed too; the first is shown)` : ""}.</p>
${svg(lanes, fromMs - padMs, window.toMs + padMs, [])}
<table class="ops"><thead><tr><th>client</th><th>invoked</th><th>returned</th><th>operation</th><th></th></tr></thead><tbody>${rows}</tbody></table>`;
}

function timeline(result: HistoryResult, fromMs: number, toMs: number): string {
  const lanes: Lane[] = [leaderLane(result.samples, toMs), ...nodeLanes(result.samples, toMs)];
  if (result.lockHistory.length > 0) lanes.push(...clientLanes(result.lockHistory, toMs, result.pauses));
  else lanes.push(...bookingLanes(result.bookingRequests, toMs));
  const bands = result.faults
    .filter((fault) => fault.startedAtMs !== undefined)
    .map((fault) => ({
      fromMs: fault.startedAtMs as number,
      toMs: fault.endedAtMs ?? toMs,
      label: `${fault.plan.kind} ${fault.ranAs}${fault.targets.length > 0 ? ` ${fault.targets.join(",")}` : ""}${fault.effective ? "" : " (no effect)"}`,
    }));
  bands.push({ fromMs: result.healedAtMs, toMs: result.healedAtMs, label: "healed" });
  return svg(lanes, fromMs, toMs, bands);
}

/** svg draws lanes of bars over time, with fault bands behind them and a time axis. */
function svg(
  lanes: readonly Lane[],
  fromMs: number,
  toMs: number,
  bands: readonly { fromMs: number; toMs: number; label: string }[],
): string {
  const bandRows = Math.min(4, bands.length);
  const top = 14 + bandRows * 13;
  const height = top + lanes.length * laneHeight + 24;
  const x = (atMs: number) => labelWidth + ((Math.min(Math.max(atMs, fromMs), toMs) - fromMs) / Math.max(1, toMs - fromMs)) * plotWidth;
  const parts: string[] = [];
  bands.forEach((band, position) => {
    const row = position % Math.max(1, bandRows);
    const left = x(band.fromMs);
    const width = Math.max(1.5, x(band.toMs) - left);
    parts.push(
      `<rect class="band${band.fromMs === band.toMs ? " mark" : ""}" x="${left.toFixed(1)}" y="${top}" width="${width.toFixed(1)}" height="${lanes.length * laneHeight}"><title>${escapeHtml(band.label)}</title></rect>`,
    );
    parts.push(`<text class="band-label" x="${left.toFixed(1)}" y="${11 + row * 13}">${escapeHtml(band.label)}</text>`);
  });
  lanes.forEach((lane, position) => {
    const y = top + position * laneHeight;
    parts.push(`<text class="lane-label" x="${labelWidth - 6}" y="${y + laneHeight - 4}">${escapeHtml(lane.label)}</text>`);
    parts.push(`<line class="lane-line" x1="${labelWidth}" x2="${labelWidth + plotWidth}" y1="${y + laneHeight}" y2="${y + laneHeight}"/>`);
    for (const bar of lane.bars) {
      if (bar.toMs < fromMs || bar.fromMs > toMs) continue;
      const left = x(bar.fromMs);
      const width = Math.max(1.2, x(bar.toMs) - left);
      const [barY, barHeight] = bar.thin === true ? [y + 6, 4] : [y + 2, laneHeight - 4];
      parts.push(
        `<rect class="${bar.css}" x="${left.toFixed(1)}" y="${barY}" width="${width.toFixed(1)}" height="${barHeight}"><title>${escapeHtml(bar.title)}</title></rect>`,
      );
      if (bar.label !== undefined && width > bar.label.length * 5.5 + 4) {
        parts.push(`<text class="bar-label" x="${(left + 3).toFixed(1)}" y="${y + laneHeight - 5}">${escapeHtml(bar.label)}</text>`);
      }
    }
  });
  const axisY = top + lanes.length * laneHeight;
  const stepMs = niceStep((toMs - fromMs) / 12);
  for (let tick = Math.ceil(fromMs / stepMs) * stepMs, count = 0; tick <= toMs && count < 100; tick += stepMs, count++) {
    parts.push(`<line class="tick" x1="${x(tick).toFixed(1)}" x2="${x(tick).toFixed(1)}" y1="${axisY}" y2="${axisY + 4}"/>`);
    parts.push(`<text class="tick-label" x="${x(tick).toFixed(1)}" y="${axisY + 15}">${formatTick(tick, stepMs)}</text>`);
  }
  return `<svg class="timeline" viewBox="0 0 ${labelWidth + plotWidth + 10} ${height}" width="${labelWidth + plotWidth + 10}" height="${height}" xmlns="http://www.w3.org/2000/svg">${parts.join("")}</svg>`;
}

/** leaderLane: who led, as the freshest answers said: one colour per node, the term in the tooltip. */
function leaderLane(samples: readonly StatusSample[], endMs: number): Lane {
  const bars: Bar[] = [];
  const latest = new Map<string, StatusSample>();
  let current: { id: string | undefined; term: number; fromMs: number } = { id: undefined, term: 0, fromMs: 0 };
  const sorted = [...samples].sort((a, b) => a.atMs - b.atMs);
  const flush = (atMs: number) => {
    if (current.id !== undefined) {
      const label = `${current.id} t${current.term}`;
      bars.push({
        fromMs: current.fromMs,
        toMs: atMs,
        css: `node-${current.id}`,
        title: `leader ${current.id}, term ${current.term}`,
        label,
      });
    } else if (atMs > current.fromMs) bars.push({ fromMs: current.fromMs, toMs: atMs, css: "no-leader", title: "no leader known" });
  };
  for (const sample of sorted) {
    latest.set(sample.id, sample);
    const fresh = [...latest.values()].filter((each) => sample.atMs - each.atMs <= 1000);
    const term = Math.max(...fresh.map((each) => each.term));
    const leader = fresh.find((each) => each.role === "leader" && each.term === term)?.id;
    if (leader !== current.id || term !== current.term) {
      flush(sample.atMs);
      current = { id: leader, term, fromMs: sample.atMs };
    }
  }
  flush(endMs);
  return { label: "leader", bars };
}

/** nodeLanes: each node's role over time; gaps are times it did not answer (down, paused, cut off from the monitor never happens). */
function nodeLanes(samples: readonly StatusSample[], endMs: number): Lane[] {
  const byNode = new Map<string, StatusSample[]>();
  for (const sample of samples) byNode.set(sample.id, [...(byNode.get(sample.id) ?? []), sample]);
  return [...byNode.keys()].sort().map((id) => {
    const own = (byNode.get(id) ?? []).sort((a, b) => a.atMs - b.atMs);
    const bars: Bar[] = own.map((sample, position) => {
      const next = own[position + 1]?.atMs ?? Math.min(endMs, sample.atMs + 300);
      return {
        fromMs: sample.atMs,
        toMs: Math.min(next, sample.atMs + 600),
        css: `role-${sample.role}`,
        title: `${id}: ${sample.role}, term ${sample.term}, commit ${sample.commitIndex}, applied ${sample.appliedIndex}`,
      };
    });
    return { label: id, bars };
  });
}

function clientLanes(
  history: readonly FencedEntry[],
  endMs: number,
  pauses: readonly { client: string; fromMs: number; toMs: number }[] = [],
): Lane[] {
  const clients = [...new Set(history.map((entry) => entry.client))].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
  return clients.map((client) => {
    const bars: Bar[] = history
      .filter((entry) => entry.client === client)
      .map((entry) => ({
        fromMs: entry.invokedAtMs,
        toMs: Number.isFinite(entry.returnedAtMs) ? entry.returnedAtMs : endMs,
        css: `op-${entry.operation.kind}-${entry.operation.outcome.status}`,
        title: `${client} ${ms(entry.invokedAtMs)}–${Number.isFinite(entry.returnedAtMs) ? ms(entry.returnedAtMs) : "never"}: ${describeOperation(entry)}`,
        thin: entry.operation.kind === "read",
      }));
    for (const pause of pauses.filter((each) => each.client === client)) {
      bars.push({
        fromMs: pause.fromMs,
        toMs: pause.toMs,
        css: "client-pause",
        title: `${client} paused ${(pause.toMs - pause.fromMs).toFixed(0)} ms between its read and its write`,
      });
    }
    return { label: client, bars };
  });
}

function bookingLanes(requests: readonly BookingRequest[], endMs: number): Lane[] {
  const clients = [...new Set(requests.map((request) => request.client))].sort();
  return clients.map((client) => ({
    label: client,
    bars: requests
      .filter((request) => request.client === client)
      .map((request) => ({
        fromMs: request.invokedAtMs,
        toMs: Number.isFinite(request.returnedAtMs) ? request.returnedAtMs : endMs,
        css: `booking-${request.kind}-${request.outcome}`,
        title: `${request.kind} ${request.bookingId} (${request.slots.length} slots): ${request.outcome}, last answer ${request.answer}, ${request.attempts} attempts`,
      })),
  }));
}

function faultsTable(faults: readonly FaultRecord[]): string {
  const rows = faults
    .map(
      (fault) =>
        `<tr><td>${escapeHtml(fault.label)}</td><td>${escapeHtml(fault.targets.join(", ") || "—")}</td><td>${fault.startedAtMs === undefined ? "not started" : ms(fault.startedAtMs)}</td><td>${fault.endedAtMs === undefined ? "" : ms(fault.endedAtMs)}</td><td>${fault.startedAtMs !== undefined && !fault.effective ? "<strong>no effect</strong>: " : ""}${escapeHtml(fault.notes.join("; "))}${fault.leaseProbe === undefined ? "" : escapeHtml(` lease probe: asked at ${ms(fault.leaseProbe.invokedAtMs)}, granted ${fault.leaseProbe.grantedAtMs === undefined ? "never" : ms(fault.leaseProbe.grantedAtMs)}, last seen held ${fault.leaseProbe.lastSeenHeldAtMs === undefined ? "never" : ms(fault.leaseProbe.lastSeenHeldAtMs)}, gone ${fault.leaseProbe.goneAtMs === undefined ? "not seen by the end" : ms(fault.leaseProbe.goneAtMs)}`)}</td></tr>`,
    )
    .join("\n");
  return `<table class="ops"><thead><tr><th>fault</th><th>targets</th><th>from</th><th>to</th><th>what happened</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function exitsSection(result: HistoryResult): string {
  return `<h2>Processes that died by themselves</h2>${result.unexpectedExits
    .map(
      (exit) =>
        `<h3>${escapeHtml(exit.id)} (pid ${exit.pid}) at ${ms(exit.atMs)}: exit ${exit.code ?? exit.signal}</h3><pre>${escapeHtml(exit.stderr)}</pre>`,
    )
    .join("\n")}`;
}

function numbers(result: HistoryResult): string {
  const counts = new Map<string, number>();
  const label = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
  for (const entry of result.lockHistory) label(`${entry.operation.kind} ${entry.operation.outcome.status}`);
  for (const request of result.bookingRequests) label(`${request.kind} ${request.outcome}`);
  const rows = [...counts].sort().map(([key, count]) => `<tr><td>${escapeHtml(key)}</td><td class="num">${count}</td></tr>`);
  if (result.logs !== undefined) {
    rows.push(`<tr><td>durable log indexes compared across nodes</td><td class="num">${result.logs.comparedIndexes}</td></tr>`);
    for (const node of result.logs.nodes) {
      rows.push(
        `<tr><td>${escapeHtml(node.id)}: snapshot at / last index / committed</td><td class="num">${node.snapshotIndex} / ${node.lastIndex} / ${node.committedIndex}</td></tr>`,
      );
    }
  }
  if (result.applied !== undefined) {
    rows.push(
      `<tr><td>indexes whose applied events were compared across nodes</td><td class="num">${result.applied.comparedIndexes}</td></tr>`,
    );
  }
  if (result.bookingCheck !== undefined && result.bookingCheck.problems.length > 0) {
    rows.push(`<tr><td>booking problems</td><td>${result.bookingCheck.problems.map(escapeHtml).join("<br>")}</td></tr>`);
  }
  return `<table class="ops"><tbody>${rows.join("\n")}</tbody></table>`;
}

function legend(workload: string): string {
  const items =
    workload === "bookings"
      ? [
          ["booking-create-created", "booked (201)"],
          ["booking-create-refused", "refused (409/422)"],
          ["booking-cancel-cancelled", "cancelled"],
          ["booking-create-unknown", "no clear answer"],
        ]
      : [
          ["op-acquire-granted", "granted"],
          ["op-acquire-conflict", "conflict / refused"],
          ["op-write-committed", "fenced write"],
          ["op-write-stale", "write fenced off"],
          ["op-read-read", "read"],
          ["op-release-ok", "release"],
          ["op-acquire-unknown", "unknown outcome"],
          ["client-pause", "client pause"],
        ];
  const roles = [
    ["role-leader", "leader"],
    ["role-follower", "follower"],
    ["role-candidate", "candidate"],
    ["band", "fault"],
  ];
  return [...items, ...roles]
    .map(
      ([css, text]) =>
        `<span class="key"><svg width="14" height="10"><rect class="${css}" width="14" height="10"/></svg>${escapeHtml(text as string)}</span>`,
    )
    .join(" ");
}

function describeOperation(entry: FencedEntry): string {
  const operation = entry.operation;
  switch (operation.kind) {
    case "acquire": {
      const outcome = operation.outcome;
      const detail =
        outcome.status === "granted"
          ? `granted token ${outcome.token}`
          : outcome.status === "conflict"
            ? `conflict (held under ${outcome.holderToken ?? "a waiter's promise"})`
            : outcome.status;
      return `acquire ${operation.resource} (ttl ${operation.ttlMs} ms): ${detail}`;
    }
    case "release":
      return `release ${operation.resource} token ${operation.token}: ${operation.outcome.status}`;
    case "write":
      return `write ${operation.key} under token ${operation.token} (${summarizeSet(operation.value)}): ${operation.outcome.status}`;
    case "read":
      return `read ${operation.key}: ${operation.outcome.value === null ? "absent" : summarizeSet(operation.outcome.value)}`;
  }
}

function summarizeSet(value: string): string {
  const elements = value.split(",");
  return `${elements.length} elements, last ${elements.slice(-3).join(",")}`;
}

function niceStep(roughMs: number): number {
  for (const step of [10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 60_000]) if (step >= roughMs) return step;
  return 120_000;
}

function formatTick(atMs: number, stepMs: number): string {
  return stepMs >= 1000 ? `${(atMs / 1000).toFixed(0)} s` : `${(atMs / 1000).toFixed(stepMs >= 100 ? 1 : 2)} s`;
}

function ms(atMs: number): string {
  return `${(atMs / 1000).toFixed(3)} s`;
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

const css = `
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1d232a; background: #fbfbfc; }
header { padding: 14px 24px; color: #fff; }
header.pass { background: #1f7a4d; } header.fail { background: #b3261e; }
header h1 { margin: 0 0 4px; font-size: 22px; } header p { margin: 2px 0; }
header code { background: rgba(255,255,255,.15); padding: 1px 5px; border-radius: 3px; }
main { padding: 8px 24px 40px; }
h2 { font-size: 17px; margin: 22px 0 8px; border-bottom: 1px solid #dde1e6; padding-bottom: 3px; }
table { border-collapse: collapse; font-size: 13px; }
td, th { padding: 3px 10px 3px 4px; text-align: left; vertical-align: top; border-bottom: 1px solid #eceef1; }
th { color: #56606b; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.checks tr.ok td:first-child { color: #1f7a4d; font-weight: 700; }
table.checks tr.bad td { background: #fdecea; } table.checks tr.bad td:first-child { color: #b3261e; font-weight: 700; }
tr.optional td { color: #7a828c; font-style: italic; }
pre { background: #f1f3f5; padding: 8px; overflow-x: auto; font-size: 12px; }
.legend { font-size: 12px; color: #3c4650; } .key { margin-right: 12px; white-space: nowrap; } .key svg { vertical-align: -1px; margin-right: 4px; }
svg.timeline { display: block; background: #fff; border: 1px solid #e3e6ea; margin: 6px 0; max-width: 100%; height: auto; }
.lane-label { font-size: 11px; text-anchor: end; fill: #3c4650; }
.lane-line { stroke: #f0f2f4; }
.tick { stroke: #9aa3ad; } .tick-label { font-size: 10px; text-anchor: middle; fill: #56606b; }
.band { fill: #f4b400; fill-opacity: .14; stroke: #e0a100; stroke-opacity: .5; }
.band.mark { fill: #1f7a4d; fill-opacity: .7; stroke: none; }
.band-label { font-size: 10px; fill: #7a5a00; }
.no-leader { fill: #e6e8eb; }
.node-n1 { fill: #2a9d8f; } .node-n2 { fill: #7b5ea7; } .node-n3 { fill: #c0803b; } .node-n4 { fill: #d1495b; } .node-n5 { fill: #6d7f1f; }
.bar-label { font-size: 9px; fill: #fff; pointer-events: none; }
.role-leader { fill: #2f4b7c; } .role-follower { fill: #a9bcd6; } .role-candidate, .role-pre_candidate { fill: #f28e2b; }
.op-acquire-granted { fill: #4e79a7; } .op-acquire-conflict, .op-acquire-refused { fill: #cfd4da; }
.op-write-committed { fill: #3a9a5b; } .op-write-stale { fill: #8e44ad; }
.op-read-read { fill: #17a2b8; } .op-release-ok, .op-release-not_held { fill: #9ec3e6; }
.op-acquire-unknown, .op-write-unknown, .op-release-unknown { fill: #f28e2b; fill-opacity: .35; stroke: #e07000; stroke-width: .5; }
.client-pause { fill: none; stroke: #b3261e; stroke-dasharray: 3 2; }
.booking-create-created { fill: #3a9a5b; } .booking-create-refused, .booking-cancel-refused { fill: #cfd4da; }
.booking-cancel-cancelled { fill: #4e79a7; } .booking-create-unknown, .booking-cancel-unknown { fill: #f28e2b; fill-opacity: .35; stroke: #e07000; stroke-width: .5; }
`;
