// The report of a history is one self-contained page (no script, nothing fetched from anywhere),
// escapes what it shows, states the verdict and every check, and, for a failed history, draws and
// lists its smallest failing window; the command line refuses bad options, listing them all.
import { describe, expect, it } from "vitest";
import type { FencedEntry } from "../harness/fenced-kv-model.ts";
import type { HistoryResult } from "./history.ts";
import { OptionsError, parseChaosOptions, usage } from "./options.ts";
import { makeHistoryPlan } from "./plan.ts";
import { renderHistoryReport } from "./report-html.ts";
import { electionStats, formatHistoryTable, formatKindTable, historyRow, kindRows } from "./summary.ts";

const entry = (client: string, invokedAtMs: number, returnedAtMs: number, operation: FencedEntry["operation"]): FencedEntry => ({
  client,
  invokedAtMs,
  returnedAtMs,
  operation,
});

function failedHistory(): HistoryResult {
  const plan = makeHistoryPlan(1, 0, {
    kinds: ["partition"],
    workloads: ["lock-set"],
    historyMs: 20_000,
    faultsPerHistory: 1,
    leaseTtlMs: 1000,
    unfenced: true,
  });
  const lockHistory = [
    entry("c<1>", 100, 200, { kind: "acquire", resource: "lock/0", ttlMs: 1000, outcome: { status: "granted", token: 5 } }),
    entry("c2", 1500, 1600, { kind: "acquire", resource: "lock/0", ttlMs: 1000, outcome: { status: "granted", token: 9 } }),
    entry("c<1>", 1700, 1800, { kind: "write", resource: "lock/0", key: "set/0", token: 5, value: "a", outcome: { status: "committed" } }),
    entry("c2", 1900, Number.POSITIVE_INFINITY, { kind: "release", resource: "lock/0", token: 9, outcome: { status: "unknown" } }),
  ];
  return {
    plan,
    startedAtUtc: "2026-01-01T00:00:00.000Z",
    wallMs: 30_000,
    phasesMs: { start: 5000, play: 21_000, check: 4000 },
    loadAverage: { start: 1, end: 2 },
    ok: false,
    checks: [
      { name: "a leader after healing", ok: true, detail: "n1" },
      { name: "linearizable (lease lock with fencing, fenced key-value)", ok: false, detail: "NOT linearizable: lock/0" },
    ],
    faults: [
      {
        plan: plan.faults[0] as HistoryResult["faults"][number]["plan"],
        label: "partition bridge",
        targets: ["n2"],
        startedAtMs: 2000,
        endedAtMs: 5000,
        notes: ["n1 | n3, bridged by n2"],
        effective: true,
        ranAs: "bridge",
      },
    ],
    healedAtMs: 16_000,
    endedAtMs: 20_000,
    samples: [
      {
        atMs: 0,
        id: "n1",
        role: "leader",
        term: 2,
        leaderId: "n1",
        commitIndex: 5,
        appliedIndex: 5,
        voters: ["n1", "n2", "n3"],
        learners: [],
      },
      {
        atMs: 0,
        id: "n2",
        role: "follower",
        term: 2,
        leaderId: "n1",
        commitIndex: 5,
        appliedIndex: 5,
        voters: ["n1", "n2", "n3"],
        learners: [],
      },
    ],
    lockHistory,
    pauses: [{ client: "c<1>", fromMs: 300, toMs: 1650 }],
    bookingRequests: [],
    failingWindows: [{ resource: "lock/0", fromMs: 1500, toMs: 1800, entries: lockHistory.slice(1, 3), optional: [false, false] }],
    unexpectedExits: [],
    logs: undefined,
    applied: undefined,
    setCheck: undefined,
    bookingCheck: undefined,
    workDir: "/tmp/none",
    error: undefined,
  };
}

describe("the history report", () => {
  const html = renderHistoryReport(failedHistory(), "npm run chaos -- --seed 1 --history 0 --unfenced");

  it("is one self-contained page: no script, no external stylesheet, image or link", () => {
    expect(html.startsWith("<!doctype html>")).toBe(true);
    expect(html).not.toMatch(/<script|<link|<img|<iframe|@import|url\(/i);
    // The only URL is the SVG namespace, which names a vocabulary and is never fetched.
    expect(html.match(/https?:\/\/[^"'\s<>]+/g)?.every((url) => url === "http://www.w3.org/2000/svg")).toBe(true);
  });

  it("states the verdict, every check, the replay command and the smallest failing window", () => {
    expect(html).toContain("History 0: FAIL");
    expect(html).toContain("NOT linearizable: lock/0");
    expect(html).toContain("npm run chaos -- --seed 1 --history 0 --unfenced");
    expect(html).toContain("Smallest failing window (lock/0)");
    expect(html).toContain("write set/0 under token 5");
    expect(html).toContain("partition bridge");
    expect(html).toMatch(/<text class="bar-label"[^>]*>n1 t2<\/text>/); // the leader and its term, written in its segment
  });

  it("escapes what it shows", () => {
    expect(html).not.toContain("c<1>");
    expect(html).toContain("c&lt;1&gt;");
  });
});

describe("the summary table", () => {
  it("has one row per history with its verdict", () => {
    const table = formatHistoryTable([historyRow(failedHistory(), "report.html")]);
    expect(table).toMatch(/lock-set \(unfenced\)/);
    expect(table).toMatch(/FAIL/);
  });
});

describe("the numbers by fault kind", () => {
  it("count only faults that took effect, under what they turned out to be, and the others as no effect", () => {
    const result = failedHistory();
    const bridge = result.faults[0] as HistoryResult["faults"][number];
    const transfer = { ...bridge, plan: { ...bridge.plan, kind: "transfer" as const, variant: "transfer" }, ranAs: "transfer" };
    const pause = { ...bridge, plan: { ...bridge.plan, kind: "pause" as const, variant: "leader" } };
    const rows = kindRows([
      {
        ...result,
        faults: [
          bridge,
          { ...transfer, effective: false }, // no leader to transfer from
          { ...pause, ranAs: "one" }, // no leader known: it paused one node
          { ...pause, startedAtMs: undefined, effective: false }, // never started
        ],
      },
    ]);
    const row = (kind: string) => rows.find((each) => each.kind === kind);
    expect(row("partition")).toMatchObject({ faults: 1, noEffect: 0, variants: { bridge: 1 }, histories: 1, failedHistories: 1 });
    expect(row("transfer")).toMatchObject({ faults: 0, noEffect: 1, variants: {}, histories: 0 });
    expect(row("pause")).toMatchObject({ faults: 1, noEffect: 0, variants: { one: 1 }, histories: 1 });
    expect(formatKindTable(rows)).toMatch(/transfer\s+0\s+1\s/);
    expect(historyRow({ ...result, faults: [{ ...transfer, effective: false }] }, "r.html").faults).toEqual([
      "transfer transfer (no effect)",
    ]);
  });
});

describe("electionStats", () => {
  it("counts new terms during clock faults that ran alone, and in quiet time away from faults", () => {
    const result = failedHistory();
    const sample = (atMs: number, term: number) => ({ ...(result.samples[0] as HistoryResult["samples"][number]), atMs, term });
    const clock = { ...(result.faults[0] as HistoryResult["faults"][number]), plan: { ...result.faults[0]?.plan, kind: "clock" as const } };
    const stats = electionStats([
      {
        ...result,
        faults: [{ ...clock, startedAtMs: 6000, endedAtMs: 8000 } as HistoryResult["faults"][number]],
        // Term 3 at 2 s (quiet), term 4 at 7 s (during the clock fault), term 5 at 9 s (just after it: neither).
        samples: [sample(0, 2), sample(2000, 3), sample(7000, 4), sample(9000, 5)],
      },
    ]);
    expect(stats).toMatchObject({ clockFaultSeconds: 2, clockFaultElections: 1, quietElections: 1 });
    expect(stats.quietSeconds).toBeCloseTo((20_000 - 1000 - 5000) / 1000, 0);
  });
});

describe("the command line", () => {
  it("has defaults, and refuses bad values listing every problem at once", () => {
    const options = parseChaosOptions([]);
    expect(options).toMatchObject({ minutes: 10, historySeconds: 20, faultsPerHistory: 3, unfenced: false });
    expect(() => parseChaosOptions(["--minutes", "0", "--faults", "kill,earthquake", "--workload", "dance"])).toThrow(OptionsError);
    try {
      parseChaosOptions(["--minutes", "0", "--faults", "kill,earthquake", "--workload", "dance"]);
    } catch (error) {
      expect((error as Error).message).toMatch(/--minutes must be a number/);
      expect((error as Error).message).toMatch(/unknown kind earthquake/);
      expect((error as Error).message).toMatch(/--workload must be/);
    }
    expect(() => parseChaosOptions(["--unfenced", "--workload", "bookings"])).toThrow(/--unfenced needs the lock-set workload/);
    expect(() => parseChaosOptions(["--nope"])).toThrow(OptionsError);
  });

  it("reads every option it documents", () => {
    const documented = [...usage.matchAll(/^ {2}(--[a-z-]+)/gm)].map((match) => match[1]);
    const given = [
      ["--minutes", "3"],
      ["--histories", "4"],
      ["--seed", "7"],
      ["--history", "2"],
      ["--history-seconds", "30"],
      ["--faults", "kill,clock"],
      ["--faults-per-history", "4"],
      ["--workload", "lock-set"],
      ["--unfenced"],
      ["--ttl-ms", "800"],
      ["--disk-mib", "32"],
      ["--out", "somewhere"],
      ["--keep-logs"],
      ["--require-all-kinds"],
      ["--no-build"],
    ];
    expect(documented.sort()).toEqual([...given.map((option) => option[0]), "--help"].sort());
    expect(parseChaosOptions(given.flat() as string[])).toEqual({
      minutes: 3,
      histories: 4,
      seed: 7,
      onlyHistory: 2,
      historySeconds: 30,
      kinds: ["kill", "clock"],
      faultsPerHistory: 4,
      workloads: ["lock-set"],
      unfenced: true,
      leaseTtlMs: 800,
      diskMiB: 32,
      out: "somewhere",
      keepLogs: true,
      requireAllKinds: true,
      build: false,
    });
    expect(parseChaosOptions(["--help"])).toBe("help");
  });
});
