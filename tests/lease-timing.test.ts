// A lease tells its holder the truth on time (client/lease.ts): `jeopardy` at the documented point,
// `safe` when a renewal then succeeds, `lost` at the local deadline whatever the network does, and
// no renewal attempt outliving the lease it renews. Shown on a fake clock (vitest's fake timers,
// Date included) with LockClient's transport replaced by a scripted cluster and network, so every
// time below is exact. The same scenarios then run against planted bugs (copies of client/ with
// one rule broken, tests/support/mutants.ts), each of which must fail at least one of them.
//
// The lease in every scenario: TTL 4000 ms, drift discount 0.1, no safety margin, granted at t=0
// (answered at once). So validUntil = 3600, the renewal is due at 1200 (halfway to the jeopardy
// point), jeopardy at 2400 (a third of the validity left) and the deadline at 3600. Backoff is
// zero (random = 0), so retries follow at once and each attempt's bound is visible: a third of what
// is left of the validity (800, 534, 356, …, at least 20 ms, then what is left).

import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { observeUnderLease, type Telescope } from "../client/example.ts";
import type { Lease, LockClient as LockClientType } from "../client/lock-client.ts";
import { LockClient } from "../client/lock-client.ts";
import { importMutant, removeMutants } from "./support/mutants.ts";
import { type NetworkFate, ScriptedLockCluster } from "./support/scripted-lock-cluster.ts";

type ClientClass = typeof LockClientType;

interface Run {
  readonly events: (readonly [string, number, string | undefined])[];
  readonly lease: Lease;
  readonly cluster: ScriptedLockCluster;
  readonly client: LockClientType;
}

interface Scenario {
  /** fateOf: the network's treatment of each request (the acquire at t=0 is always delivered). */
  readonly fateOf?: (request: { path: string; nowMs: number }) => NetworkFate;
  readonly autoRenew?: boolean;
  /** runMs: how long the fake clock runs after the grant. */
  readonly runMs: number;
  /** at: actions at given times (ms after the grant), run inside the fake clock. */
  readonly at?: readonly (readonly [number, (run: Run) => void])[];
}

const deliver: NetworkFate = { kind: "deliver" };

async function runScenario(scenario: Scenario, Client: ClientClass = LockClient): Promise<Run> {
  vi.useFakeTimers({ now: 0, toFake: ["setTimeout", "clearTimeout", "Date"] });
  const cluster = new ScriptedLockCluster({
    now: () => Date.now(),
    fateOf: (request) => (request.path === "/lock" ? deliver : (scenario.fateOf?.(request) ?? deliver)),
  });
  const client = new Client({
    nodes: ["http://n1.test", "http://n2.test", "http://n3.test"],
    apiToken: "t".repeat(20),
    transport: cluster,
    now: () => Date.now(),
    random: () => 0,
    clockDriftDiscount: 0.1,
    safetyMarginMs: 0,
  });
  const acquiring = client.acquire(["slot"], { ttlMs: 4000, autoRenew: scenario.autoRenew ?? true });
  await vi.advanceTimersByTimeAsync(0);
  const lease = await acquiring;
  const events: (readonly [string, number, string | undefined])[] = [];
  for (const event of ["renewed", "jeopardy", "safe", "lost"] as const) {
    lease.on(event, (error) => events.push([event, Date.now(), error?.code]));
  }
  const run: Run = { events, lease, cluster, client };
  for (const [atMs, action] of scenario.at ?? []) setTimeout(() => action(run), atMs);
  await vi.advanceTimersByTimeAsync(scenario.runMs);
  return run;
}

afterEach(() => {
  vi.useRealTimers();
});
afterAll(() => removeMutants());

const from =
  (startMs: number, fate: NetworkFate, untilMs = Number.POSITIVE_INFINITY) =>
  (request: { nowMs: number }) =>
    request.nowMs >= startMs && request.nowMs < untilMs ? fate : deliver;

/** renewals: the /renew requests, with when each was sent and ended. */
const renewals = (run: Run) => run.cluster.sent.filter((sent) => sent.path === "/renew");

/** The scenarios, each with the timeline it must produce; the mutation tests below reuse them. */
const scenarios = {
  "a blackholed network: jeopardy at the jeopardy point, lost at the deadline, no attempt beyond it": {
    scenario: { fateOf: from(500, { kind: "drop_request" }), runMs: 10_000 },
    check(run: Run) {
      expect(run.events).toEqual([
        ["jeopardy", 2400, "timeout"],
        ["lost", 3600, "lease_expired"],
      ]);
      expect(run.lease.isValid()).toBe(false);
      expect(run.lease.state).toBe("lost");
      // Attempts: each bounded by a third of what was left (at least 20 ms); after the first
      // renewal's nine attempts, the next renewal at half of what is left, ending at the deadline.
      expect(renewals(run).map((sent) => [sent.sentAtMs, sent.endedAtMs])).toEqual([
        [1200, 2000],
        [2000, 2534],
        [2534, 2890],
        [2890, 3127],
        [3127, 3285],
        [3285, 3390],
        [3390, 3460],
        [3460, 3507],
        [3507, 3538],
        [3569, 3589],
        [3589, 3600],
      ]);
      // Auto-renew stopped; after the loss the lease only asks the cluster to drop it, at once and
      // for one request timeout (5 s) at most.
      const after = run.cluster.sent.filter((sent) => sent.sentAtMs >= 3600);
      expect(after[0]).toMatchObject({ path: "/unlock", sentAtMs: 3600 });
      expect(after.every((sent) => sent.path === "/unlock" && (sent.endedAtMs ?? Number.POSITIVE_INFINITY) <= 8600)).toBe(true);
    },
  },
  "requests dropped (the cluster hears nothing): lost at the deadline, before the cluster's lease ends": {
    scenario: { fateOf: from(500, { kind: "drop_request" }), runMs: 6000 },
    check(run: Run) {
      expect(run.events.map(([event, atMs]) => [event, atMs])).toEqual([
        ["jeopardy", 2400],
        ["lost", 3600],
      ]);
      // The cluster's lease ends at 4000 (the grant at 0 plus the TTL): nobody else can hold the
      // lock before the holder was told.
      expect(run.cluster.expiresAt("slot")).toBe(4000);
    },
  },
  "answers dropped (the cluster renews, the holder never hears): lost at the deadline all the same": {
    scenario: { fateOf: from(500, { kind: "drop_answer" }), runMs: 6000 },
    check(run: Run) {
      expect(run.events.map(([event, atMs]) => [event, atMs])).toEqual([
        ["jeopardy", 2400],
        ["lost", 3600],
      ]);
      // The last attempt (3589) was applied and would have held the lock until 7589; the unlock the
      // lease sends when it is lost frees it at once.
      expect(run.cluster.expiresAt("slot")).toBe(3600);
      expect(renewals(run).every((sent) => (sent.endedAtMs ?? Number.POSITIVE_INFINITY) <= 3600)).toBe(true);
    },
  },
  "slow answers within the attempt bound: renewed each time, no jeopardy": {
    scenario: { fateOf: from(500, { kind: "slow", delayMs: 400 }), runMs: 4500 },
    check(run: Run) {
      // Sent at 1200 (answered 1600: valid until 1200 + 3600), then halfway to that validity's
      // jeopardy point, 2400 (answered 2800), then 3600 (answered 4000).
      expect(run.events).toEqual([
        ["renewed", 1600, undefined],
        ["renewed", 2800, undefined],
        ["renewed", 4000, undefined],
      ]);
      expect(run.lease.validUntil).toBe(3600 + 3600);
    },
  },
  "slow answers beyond the attempt bound: every attempt abandoned by the deadline, lost at it": {
    scenario: { fateOf: from(500, { kind: "slow", delayMs: 2500 }), runMs: 6000 },
    check(run: Run) {
      expect(run.events.map(([event, atMs]) => [event, atMs])).toEqual([
        ["jeopardy", 2400],
        ["lost", 3600],
      ]);
      expect(renewals(run).every((sent) => sent.outcome === "aborted" && (sent.endedAtMs ?? 0) <= 3600)).toBe(true);
    },
  },
  "a renewal that succeeds just before the deadline: jeopardy, then safe, never lost": {
    scenario: { fateOf: from(500, { kind: "drop_request" }, 3580), runMs: 4500 },
    check(run: Run) {
      // The attempt sent at 3569 was dropped; the next, at 3589, gets through, and the validity
      // counts from its own send time (a renewal goes without a session: each attempt stands alone).
      expect(run.events).toEqual([
        ["jeopardy", 2400, "timeout"],
        ["renewed", 3589, undefined],
        ["safe", 3589, undefined],
      ]);
      expect(run.lease.validUntil).toBe(3589 + 3600);
      expect(run.lease.isValid()).toBe(true);
      expect(run.lease.state).toBe("held");
    },
  },
  "a cluster without a leader for a while: a failed renewal is jeopardy at once, the next one brings safe": {
    scenario: { fateOf: from(500, { kind: "fail", status: 503, code: "no_leader" }, 1500), runMs: 2500 },
    check(run: Run) {
      // At 1200 all nine attempts fail at once (zero backoff); the next renewal, at half of what is
      // left (1200 ms), succeeds.
      expect(run.events).toEqual([
        ["jeopardy", 1200, "unavailable"],
        ["renewed", 2400, undefined],
        ["safe", 2400, undefined],
      ]);
    },
  },
  "the cluster no longer has the lease: lost at the first renewal, not at the deadline": {
    scenario: { runMs: 3000, at: [[1000, (run: Run) => run.cluster.releaseBehindTheHolder("slot")]] as const },
    check(run: Run) {
      expect(run.events).toEqual([["lost", 1200, "not_held"]]);
      expect(run.lease.isValid()).toBe(false);
    },
  },
  "a lease that is not renewed: lost exactly at its deadline": {
    scenario: { autoRenew: false, runMs: 5000 },
    check(run: Run) {
      expect(run.events).toEqual([
        ["jeopardy", 2400, "timeout"],
        ["lost", 3600, "lease_expired"],
      ]);
      expect(run.cluster.sent.map((sent) => [sent.path, sent.sentAtMs])).toEqual([
        ["/lock", 0],
        ["/unlock", 3600],
      ]);
    },
  },
  "a manual renew() while the automatic one is due: one renewal in flight, no false jeopardy, validity never shrinks": {
    scenario: {
      fateOf: from(100, { kind: "drop_request" }, 1150),
      runMs: 2000,
      at: [[100, (each: Run) => void each.lease.renew().catch(() => undefined)]] as const,
    },
    check(run: Run) {
      // Sent at 100 (dropped; its bound is a third of the 3500 ms left), joined by the automatic
      // renewal due at 1200; the retry at 1267 gets through.
      expect(run.events).toEqual([["renewed", 1267, undefined]]);
      expect(run.lease.validUntil).toBe(1267 + 3600);
      const spans = renewals(run).map((sent) => [sent.sentAtMs, sent.endedAtMs ?? Number.POSITIVE_INFINITY] as const);
      for (const [position, [, endedAtMs]] of spans.entries()) {
        expect(spans[position + 1]?.[0] ?? Number.POSITIVE_INFINITY).toBeGreaterThanOrEqual(endedAtMs);
      }
    },
  },
} satisfies Record<string, { scenario: Scenario; check(run: Run): void }>;

describe("a lease's signals, on a fake clock", () => {
  it.each(Object.entries(scenarios))("%s", async (_name, { scenario, check }) => {
    check(await runScenario(scenario));
  });

  it("put and txn refuse locally once the lease is not valid, sending nothing; a write just before the deadline goes out", async () => {
    const run = await runScenario({ autoRenew: false, runMs: 3599 });
    await expect(run.lease.put([{ key: "k", value: "before" }])).resolves.toMatchObject({ keys: [] });
    await vi.advanceTimersByTimeAsync(1);
    const refused = await run.lease.put([{ key: "k", value: "after" }]).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: "lease_expired" });
    expect(run.cluster.sent.map((sent) => [sent.path, sent.sentAtMs])).toEqual([
      ["/lock", 0],
      ["/txn", 3599],
      ["/unlock", 3600],
    ]);
    await expect(run.lease.renew()).rejects.toMatchObject({ code: "lease_expired" });
  });

  it("a deadline passed while the event loop was blocked: the next write says lost at once and refuses", async () => {
    const run = await runScenario({ autoRenew: false, runMs: 1000 });
    vi.setSystemTime(5000); // The clock moves on, no timer has run (a GC pause, a stopped VM).
    const refused = await run.lease.txn([{ op: "put", key: "k", value: "late" }]).catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: "lease_expired" });
    expect(run.events.map(([event, atMs]) => [event, atMs])).toEqual([["lost", 5000]]);
    expect(run.cluster.sent.map((sent) => sent.path)).toEqual(["/lock", "/unlock"]);
  });

  it("a released lease sends no more renewals and raises no signal", async () => {
    const run = await runScenario({ runMs: 5000, at: [[500, (each: Run) => void each.lease.release()]] });
    expect(run.events).toEqual([]);
    expect(run.cluster.sent.map((sent) => sent.path)).toEqual(["/lock", "/unlock"]);
    expect(run.lease.state).toBe("released");
  });
});

describe("renewals in flight, listeners that throw, and leases that arrive late", () => {
  it("release while a renewal is in flight: the renewal is abandoned, no signal, the lease stays released", async () => {
    // The automatic renewal sent at 1200 is dropped; at 1250 (the network back) the holder releases.
    const run = await runScenario({ fateOf: from(1000, { kind: "drop_request" }, 1240), runMs: 1250 });
    const renewing = run.lease.renew(); // Joins the renewal in flight.
    renewing.catch(() => undefined);
    await run.lease.release();
    await expect(renewing).rejects.toMatchObject({ code: "aborted" });
    await vi.advanceTimersByTimeAsync(5000);
    expect(run.events).toEqual([]);
    expect(run.lease.state).toBe("released");
    expect(renewals(run).every((sent) => (sent.endedAtMs ?? Number.POSITIVE_INFINITY) <= 1250)).toBe(true);
  });

  it("a listener that throws: the other listeners still hear, the state stays right, and the error is thrown again on its own", async () => {
    const rethrown: (() => void)[] = [];
    const spy = vi.spyOn(globalThis, "queueMicrotask").mockImplementation((callback) => void rethrown.push(callback));
    try {
      const run = await runScenario({ autoRenew: false, runMs: 1000 });
      const heard: string[] = [];
      run.lease.on("lost", () => {
        throw new Error("a bug in the application");
      });
      run.lease.on("lost", () => void heard.push("second listener"));
      await vi.advanceTimersByTimeAsync(3000);
      expect(heard).toEqual(["second listener"]);
      expect(run.lease.state).toBe("lost");
      expect(rethrown).toHaveLength(1);
      expect(() => rethrown[0]?.()).toThrow("a bug in the application");
    } finally {
      spy.mockRestore();
    }
  });

  async function acquireLate(lockDelayMs: number, fateOf: (request: { path: string; nowMs: number }) => NetworkFate) {
    vi.useFakeTimers({ now: 0, toFake: ["setTimeout", "clearTimeout", "Date"] });
    const cluster = new ScriptedLockCluster({
      now: () => Date.now(),
      fateOf: (request) => (request.path === "/lock" ? { kind: "slow", delayMs: lockDelayMs } : fateOf(request)),
    });
    const client = new LockClient({
      nodes: ["http://n1.test"],
      apiToken: "t".repeat(20),
      transport: cluster,
      now: () => Date.now(),
      random: () => 0,
      clockDriftDiscount: 0.1,
      safetyMarginMs: 0,
      requestTimeoutMs: 5000,
    });
    let settledAtMs = Number.NaN;
    const acquiring = client.acquire(["slot"], { ttlMs: 4000, autoRenew: false }).then(
      (lease) => {
        settledAtMs = Date.now();
        return { lease, state: lease.state, validUntil: lease.validUntil };
      },
      (error: unknown) => {
        settledAtMs = Date.now();
        return { error };
      },
    );
    await vi.advanceTimersByTimeAsync(15_000);
    return { outcome: await acquiring, settledAtMs, cluster };
  }

  it("a grant answered after its validity ran out is renewed before it is handed over", async () => {
    // Sent at 0, answered at 4000 (valid only until 3600): renewed at once, valid from 4000.
    const { outcome, settledAtMs } = await acquireLate(4000, () => deliver);
    expect(settledAtMs).toBe(4000);
    expect("lease" in outcome && [outcome.state, outcome.validUntil]).toEqual(["held", 4000 + 3600]);
  });

  it("a grant answered after its validity, whose renewal fails, fails the acquire within one request timeout and lets the lease go", async () => {
    const { outcome, settledAtMs, cluster } = await acquireLate(4000, (request) =>
      request.path === "/renew" ? { kind: "drop_request" } : deliver,
    );
    expect("error" in outcome && outcome.error).toMatchObject({ code: "timeout" });
    expect(settledAtMs).toBeGreaterThan(4000);
    expect(settledAtMs).toBeLessThanOrEqual(4000 + 5000);
    expect(cluster.sent.find((sent) => sent.path === "/unlock")?.sentAtMs).toBe(settledAtMs);
  });

  it("a grant answered past its jeopardy point is renewed at once", async () => {
    // Sent at 0, answered at 2600 (jeopardy point 2400, deadline 3600).
    const { outcome, settledAtMs } = await acquireLate(2600, () => deliver);
    expect(settledAtMs).toBe(2600);
    expect("lease" in outcome && [outcome.state, outcome.validUntil]).toEqual(["held", 2600 + 3600]);
  });
});

describe("the README's example (client/example.ts) acts on the signals", () => {
  /** recordingTelescope observes for `observeMs` unless its signal aborts first, and records what it was told when. */
  function recordingTelescope(observeMs: number) {
    const told: [string, number][] = [];
    const telescope: Telescope = {
      observe: (signal) =>
        new Promise((resolve) => {
          const timer = setTimeout(() => resolve("spectrum"), observeMs);
          signal.addEventListener("abort", () => {
            clearTimeout(timer);
            told.push(["stopped", Date.now()]);
            resolve("partial spectrum");
          });
        }),
      holdNewCommands: () => void told.push(["hold", Date.now()]),
      resumeCommands: () => void told.push(["resume", Date.now()]),
    };
    return { telescope, told };
  }

  async function runExample(fateOf: (request: { path: string; nowMs: number }) => NetworkFate, observeMs: number) {
    vi.useFakeTimers({ now: 0, toFake: ["setTimeout", "clearTimeout", "Date"] });
    const cluster = new ScriptedLockCluster({ now: () => Date.now(), fateOf });
    const client = new LockClient({
      nodes: ["http://n1.test"],
      apiToken: "t".repeat(20),
      transport: cluster,
      now: () => Date.now(),
      random: () => 0,
    });
    const { telescope, told } = recordingTelescope(observeMs);
    const outcome = observeUnderLease(client, telescope);
    await vi.advanceTimersByTimeAsync(observeMs + 1000);
    return { outcome: await outcome, told, sent: cluster.sent.map((sent) => sent.path) };
  }

  it("with a healthy network it observes, writes under the lease and releases", async () => {
    const run = await runExample(() => deliver, 20_000);
    expect(run.outcome).toBe("observed under fencing token 10");
    expect(run.told).toEqual([]);
    expect(run.sent.filter((path) => path !== "/renew")).toEqual(["/lock", "/txn", "/unlock"]);
  });

  it("cut off mid-observation, it holds new commands at jeopardy, stops at the deadline, and writes nothing", async () => {
    // TTL 10 s with the defaults (drift 0.1, margin 100 ms): valid until 8900, jeopardy at 5934.
    const run = await runExample(from(1000, { kind: "drop_request" }), 20_000);
    expect(run.told).toEqual([
      ["hold", 5934],
      ["stopped", 8900],
    ]);
    expect(run.outcome).toBe("lost the lease: observation abandoned");
    expect(run.sent).not.toContain("/txn");
  });
});

describe("the timing scenarios catch planted bugs", () => {
  const justBeforeTheDeadline = "a renewal that succeeds just before the deadline: jeopardy, then safe, never lost";
  const blackholed = "a blackholed network: jeopardy at the jeopardy point, lost at the deadline, no attempt beyond it";
  // name, file, original, replacement, the scenario that must (at least) fail
  const mutations: [string, string, string, string, string][] = [
    [
      "no deadline timer",
      "client/lease.ts",
      'if (this.currentState === "held" || this.currentState === "jeopardy") {\n      this.deadlineTimer',
      "if (false) {\n      this.deadlineTimer",
      "a lease that is not renewed: lost exactly at its deadline",
    ],
    [
      "renewal attempts not bounded by the lease's deadline",
      "client/lease.ts",
      "return await this.host.renewLease(this.resources, this.token, { signal: controller.signal, deadlineMs });",
      "return await this.host.renewLease(this.resources, this.token, { signal: controller.signal });",
      justBeforeTheDeadline,
    ],
    [
      "each attempt may use the whole request timeout, whatever is left of the deadline",
      "client/lock-client.ts",
      "return Math.ceil(Math.min(timeoutMs, Math.max(leftMs / 3, Math.min(leftMs, 20))));",
      "return leftMs > 0 ? timeoutMs : 0;",
      justBeforeTheDeadline,
    ],
    [
      "no jeopardy timer",
      "client/lease.ts",
      'if (this.currentState === "held") this.jeopardyTimer = this.timerAt(',
      "if (false) this.jeopardyTimer = this.timerAt(",
      blackholed,
    ],
    ["no safe after jeopardy", "client/lease.ts", '    if (wasInJeopardy) this.emit("safe");\n', "", justBeforeTheDeadline],
    [
      "a renewal counted from its first attempt (as a session's retry must be)",
      "client/lock-client.ts",
      'const answer = await this.send("POST", "/renew", renewal, options);\n    decode(writeEndpoints["/renew"].answer, answer, "/renew");\n    return answer.sentAtMs;',
      'const firstSentAtMs = this.options.now();\n    const answer = await this.send("POST", "/renew", renewal, options);\n    decode(writeEndpoints["/renew"].answer, answer, "/renew");\n    return firstSentAtMs;',
      justBeforeTheDeadline,
    ],
    [
      "renewals not single-flight (a manual renew() beside the automatic one)",
      "client/lease.ts",
      "if (this.renewal === undefined) {",
      "if (true) {",
      "a manual renew() while the automatic one is due: one renewal in flight, no false jeopardy, validity never shrinks",
    ],
    [
      "renewals scheduled by the TTL from the answer, as before",
      "client/lease.ts",
      "const delayMs = nowMs < renewAtMs ? renewAtMs - nowMs : Math.max(10, (this.validUntilMs - nowMs) / 2);",
      "const delayMs = Math.max(10, Math.min(this.ttlMs / 3, (this.validUntilMs - nowMs) / 2));",
      "slow answers within the attempt bound: renewed each time, no jeopardy",
    ],
  ];

  it.each(mutations)("planted bug: %s", async (_name, file, original, replacement, mustFail) => {
    const mutant = await importMutant<{ LockClient: ClientClass }>("client", "lock-client.ts", { file, original, replacement });
    const failed: string[] = [];
    for (const [name, { scenario, check }] of Object.entries(scenarios)) {
      try {
        check(await runScenario(scenario, mutant.LockClient));
      } catch {
        failed.push(name);
      }
      vi.useRealTimers();
    }
    expect(failed, "this scenario must fail against the planted bug").toContain(mustFail);
  });
});
