// The fuzz run's report: the table of statuses per endpoint, the findings grouped, the end checks,
// and the files under test-results/fuzz/<run>/ (report.txt, summary.json, and findings.jsonl with
// one finding a line, each with its one-line reproduction).

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type FuzzRequest, isPlainAscii } from "./generate.ts";
import type { FindingRecord, RunResult } from "./run.ts";
import type { CheckResult } from "./system.ts";

/** statusTable renders the statuses per endpoint as an aligned text table, with a total row. */
export function statusTable(statuses: RunResult["statuses"]): string {
  const columns = [...new Set([...statuses.values()].flatMap((row) => [...row.keys()]))].sort((a, b) =>
    a === "none" ? 1 : b === "none" ? -1 : Number(a) - Number(b),
  );
  const endpoints = [...statuses.keys()].sort();
  const totals = new Map<string, number>();
  const rows = endpoints.map((endpoint) => {
    const row = statuses.get(endpoint) as ReadonlyMap<string, number>;
    const cells = columns.map((column) => {
      const count = row.get(column) ?? 0;
      totals.set(column, (totals.get(column) ?? 0) + count);
      return count === 0 ? "" : String(count);
    });
    return [endpoint, ...cells, String([...row.values()].reduce((sum, count) => sum + count, 0))];
  });
  const all = [...totals.values()].reduce((sum, count) => sum + count, 0);
  const header = ["endpoint", ...columns, "total"];
  const footer = ["total", ...columns.map((column) => String(totals.get(column) ?? 0)), String(all)];
  const table = [header, ...rows, footer];
  const widths = header.map((_, column) => Math.max(...table.map((row) => (row[column] as string).length)));
  const render = (row: string[]) =>
    row.map((cell, column) => (column === 0 ? cell.padEnd(widths[0] as number) : cell.padStart(widths[column] as number))).join("  ");
  return [render(header), widths.map((width) => "-".repeat(width)).join("  "), ...rows.map(render), render(footer)].join("\n");
}

/** reproduction is the one-line command that sends this request alone to a fresh system. */
export function reproduction(seed: number, index: number): string {
  return `npm run fuzz -- --seed ${seed} --replay ${index}`;
}

/** curlLine is the request as a curl command against the run's system (while it runs), when curl can say it. */
export function curlLine(request: FuzzRequest): string | undefined {
  if (request.raw !== undefined) return undefined;
  const quote = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;
  // A tab may stay (curl sends it as it is); other control characters and non-ASCII cannot be quoted faithfully.
  const printable = (text: string) => text.length <= 4000 && isPlainAscii(text.replaceAll("\t", " "));
  const parts = ["curl", "-sS", "-i", "-X", quote(request.method), quote(`${request.baseUrl}${request.path}`)];
  for (const [name, value] of request.headers) {
    if (!printable(value)) return undefined;
    parts.push("-H", quote(`${name}: ${value}`));
  }
  if (request.body !== undefined) {
    if (typeof request.body !== "string" || !printable(request.body)) return undefined;
    parts.push("--data-binary", quote(request.body));
  }
  return parts.join(" ");
}

function serialisable(request: FuzzRequest): Record<string, unknown> {
  const bytes = (value: string | Uint8Array) =>
    typeof value === "string" ? { text: value } : { base64: Buffer.from(value).toString("base64") };
  return {
    baseUrl: request.baseUrl,
    method: request.method,
    path: request.path,
    headers: request.headers,
    ...(request.body === undefined ? {} : { body: bytes(request.body) }),
    ...(request.raw === undefined ? {} : { raw: { ...bytes(request.raw.bytes), halfClose: request.raw.halfClose } }),
  };
}

export function findingLines(seed: number, findings: readonly FindingRecord[]): string[] {
  return findings.map((finding) =>
    JSON.stringify({
      reproduce: reproduction(seed, finding.index),
      index: finding.index,
      endpoint: finding.endpoint,
      kind: finding.kind,
      status: finding.status ?? null,
      code: finding.code,
      detail: finding.detail,
      mutation: finding.mutation,
      credentials: finding.credentials,
      curl: curlLine(finding.request) ?? null,
      request: serialisable(finding.request),
      answerBody: finding.answerBody,
    }),
  );
}

export interface Report {
  readonly directory: string;
  readonly text: string;
}

/** writeReport renders the report and saves it under `root`/<run>/; it returns the text and where it went. */
export function writeReport(
  root: string,
  run: { seed: number; requests: number; concurrency: number; startedAt: Date },
  result: RunResult,
  checks: readonly CheckResult[],
): Report {
  const stamp = run.startedAt
    .toISOString()
    .replaceAll(":", "")
    .replace(/\.\d+Z$/, "Z");
  const directory = join(root, `${stamp}-seed-${run.seed}`);
  mkdirSync(directory, { recursive: true });
  const seconds = result.elapsedMs / 1000;
  const lines = [
    `seed ${run.seed}; ${result.sent} requests in ${seconds.toFixed(1)} s (${Math.round(result.sent / Math.max(seconds, 0.001))}/s), concurrency ${run.concurrency}; stopped by ${result.stoppedBy}`,
    "",
    statusTable(result.statuses),
    "",
    `findings: ${result.findingsTotal}`,
    ...[...result.findingGroups].sort(([, a], [, b]) => b - a).map(([group, count]) => `  ${String(count).padStart(6)} × ${group}`),
    ...result.findings
      .slice(0, 20)
      .map(
        (finding) =>
          `  e.g. #${finding.index} (${finding.mutation}, credentials ${finding.credentials}): ${finding.detail}\n       ${reproduction(run.seed, finding.index)}`,
      ),
    "",
    "checks after the run:",
    ...checks.map((check) => `  ${check.ok ? "✓" : "✗"} ${check.name}: ${check.detail}`),
  ];
  const text = lines.join("\n");
  writeFileSync(join(directory, "report.txt"), `${text}\n`);
  writeFileSync(
    join(directory, "findings.jsonl"),
    findingLines(run.seed, result.findings)
      .map((entry) => `${entry}\n`)
      .join(""),
  );
  writeFileSync(
    join(directory, "summary.json"),
    `${JSON.stringify(
      {
        seed: run.seed,
        requestsAsked: run.requests,
        sent: result.sent,
        elapsedMs: Math.round(result.elapsedMs),
        concurrency: run.concurrency,
        startedAt: run.startedAt.toISOString(),
        stoppedBy: result.stoppedBy,
        exited: result.exited,
        findingsTotal: result.findingsTotal,
        findingGroups: Object.fromEntries(result.findingGroups),
        statuses: Object.fromEntries([...result.statuses].map(([endpoint, row]) => [endpoint, Object.fromEntries(row)])),
        checks,
      },
      null,
      2,
    )}\n`,
  );
  return { directory, text };
}
