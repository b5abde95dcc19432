// The fuzz loop: `concurrency` workers take request numbers in order, generate each request
// (a pure function of seed and number), send it, and check the answer. It stops at the request
// bound, the time bound, or when a watched process exits, whichever comes first. It counts every
// status per endpoint, and keeps every finding (the first few of each kind in full).

import { checkAnswer, codeOf, type Finding } from "./check.ts";
import { type FuzzRequest, generate } from "./generate.ts";
import { createSender, type FuzzAnswer } from "./send.ts";
import type { Fixtures } from "./targets.ts";

export interface RunOptions {
  readonly seed: number;
  readonly requests: number;
  readonly seconds: number;
  readonly concurrency: number;
  /** timeoutMs bounds each request; longer is a `no_answer` finding. */
  readonly timeoutMs: number;
  /** only: send these request numbers only (a replay), one after the other. */
  readonly only?: readonly number[];
  /** exited: the processes that are no longer running (polled every second; any stops the run). */
  readonly exited: () => readonly string[];
  readonly onProgress?: (progress: {
    sent: number;
    elapsedMs: number;
    findings: number;
    /** oldest: the request in flight the longest, if any (a stall shows here). */
    oldest: { index: number; endpoint: string; mutation: string; ageMs: number } | undefined;
  }) => void;
  readonly progressIntervalMs?: number;
  /** onAnswer hears of every request and its answer (replays print them). */
  readonly onAnswer?: (request: FuzzRequest, answer: FuzzAnswer, findings: readonly Finding[]) => void;
}

/** FindingRecord is one finding with what is needed to reproduce it. */
export interface FindingRecord extends Finding {
  readonly index: number;
  readonly endpoint: string;
  readonly mutation: string;
  readonly credentials: string;
  readonly status: number | undefined;
  readonly code: string;
  readonly request: FuzzRequest;
  readonly answerBody: string;
}

export interface RunResult {
  readonly sent: number;
  readonly elapsedMs: number;
  /** statuses: per endpoint, how many answers had each status ("none" when there was no answer). */
  readonly statuses: ReadonlyMap<string, ReadonlyMap<string, number>>;
  /** findings: the first examplesPerGroupMax of each group (endpoint, kind, status, code), in full. */
  readonly findings: readonly FindingRecord[];
  /** findingGroups: every group, with how many findings it had. */
  readonly findingGroups: ReadonlyMap<string, number>;
  readonly findingsTotal: number;
  /** exited: processes that exited during the run (empty when all stayed up). */
  readonly exited: readonly string[];
  readonly stoppedBy: "requests" | "time" | "exit";
}

const examplesPerGroupMax = 5;

export async function runFuzz(fixtures: Fixtures, options: RunOptions): Promise<RunResult> {
  const sender = createSender({ connections: options.concurrency, timeoutMs: options.timeoutMs });
  const startedMs = performance.now();
  const deadlineMs = startedMs + options.seconds * 1000;
  const statuses = new Map<string, Map<string, number>>();
  const findings: FindingRecord[] = [];
  const findingGroups = new Map<string, number>();
  let findingsTotal = 0;
  let next = 0;
  let sent = 0;
  let exited: readonly string[] = [];
  let stoppedBy: RunResult["stoppedBy"] = "requests";
  const numbers = options.only ?? undefined;
  const total = numbers?.length ?? options.requests;

  const watch = setInterval(() => {
    const gone = options.exited();
    if (gone.length > 0 && exited.length === 0) {
      exited = gone;
      stoppedBy = "exit";
    }
  }, 1000);
  const inflight = new Map<number, { request: FuzzRequest; startedMs: number }>();
  const progress = setInterval(() => {
    const nowMs = performance.now();
    const first = inflight.values().next().value;
    const oldest =
      first === undefined
        ? undefined
        : {
            index: first.request.index,
            endpoint: first.request.endpoint,
            mutation: first.request.mutation,
            ageMs: nowMs - first.startedMs,
          };
    options.onProgress?.({ sent, elapsedMs: nowMs - startedMs, findings: findingsTotal, oldest });
  }, options.progressIntervalMs ?? 5000);

  const record = (request: FuzzRequest, answer: FuzzAnswer, found: readonly Finding[]) => {
    const label = answer.status === undefined ? "none" : String(answer.status);
    const row = statuses.get(request.endpoint) ?? new Map<string, number>();
    row.set(label, (row.get(label) ?? 0) + 1);
    statuses.set(request.endpoint, row);
    for (const finding of found) {
      findingsTotal++;
      const code = codeOf(answer);
      const group = `${request.endpoint} | ${finding.kind} | ${label}${code === "" ? "" : ` ${code}`}`;
      const seen = findingGroups.get(group) ?? 0;
      findingGroups.set(group, seen + 1);
      if (seen < examplesPerGroupMax) {
        findings.push({
          ...finding,
          index: request.index,
          endpoint: request.endpoint,
          mutation: request.mutation,
          credentials: request.credentials,
          status: answer.status,
          code,
          request,
          answerBody: answer.body.slice(0, 2000),
        });
      }
    }
  };

  const worker = async (): Promise<void> => {
    for (;;) {
      if (exited.length > 0) return;
      if (performance.now() > deadlineMs) {
        if (next < total) stoppedBy = "time";
        return;
      }
      const position = next++;
      if (position >= total) return;
      const index = numbers === undefined ? position : (numbers[position] as number);
      const request = generate(options.seed, index, fixtures);
      inflight.set(index, { request, startedMs: performance.now() });
      const answer = await sender.send(request);
      inflight.delete(index);
      const found = checkAnswer(request, answer);
      sent++;
      record(request, answer, found);
      options.onAnswer?.(request, answer, found);
    }
  };

  try {
    await Promise.all(Array.from({ length: options.concurrency }, () => worker()));
  } finally {
    clearInterval(watch);
    clearInterval(progress);
    await sender.close();
  }
  const gone = options.exited();
  if (gone.length > 0 && exited.length === 0) exited = gone;
  return { sent, elapsedMs: performance.now() - startedMs, statuses, findings, findingGroups, findingsTotal, exited, stoppedBy };
}
