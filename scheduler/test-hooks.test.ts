// The booking API's test modes, as main.ts builds them from the settings: with every setting at its
// default they are the production flow (the slots' own leases, nothing between the checks and the
// write, the machine's clock); each mode changes exactly its own point. The end-to-end effects are
// shown on real processes: locking off by `npm run stress` both ways and the pause by the fencing
// test (tests/booking-system.test.ts), the clock offset by the horizon rush (tests/horizon-rush.test.ts).
// Planted and caught here (then removed): the unlocked delay applied to cancellations too, the pause
// applied only with locking off, the offset subtracted.

import { Writable } from "node:stream";
import pino from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { SchedulerLogger } from "./logging.ts";
import { announceTestModes, bookingTestHooks, productionHooks, schedulerClock, type TestModeSettings } from "./test-hooks.ts";

afterEach(() => vi.useRealTimers());

const defaults: TestModeSettings = { locking: "on", pauseBeforeWriteMs: 0, unlockedWriteDelayMs: 0, clockOffsetMs: 0 };
const slots = ["hubble-acad_2026-12-11T10:00:00Z", "hubble-acad_2026-12-11T10:05:00Z"];

/** capture: a logger of the scheduler's kind whose lines are kept; warnings() lists the events logged at warn. */
function capture(): { log: SchedulerLogger; warnings: () => string[] } {
  const lines: { level: number; event?: string }[] = [];
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      lines.push(JSON.parse(String(chunk)) as { level: number; event?: string });
      callback();
    },
  });
  const log = pino({ customLevels: { audit: 35 } }, stream);
  return { log, warnings: () => lines.filter((line) => line.level === 40).map((line) => String(line.event)) };
}

/** settlesAfter: whether the promise had settled 1 ms before the fake clock advanced by ms, and whether it had at ms. */
async function settlesAfter(promise: Promise<void>, ms: number): Promise<{ before: boolean; after: boolean }> {
  let settled = false;
  void promise.then(() => {
    settled = true;
  });
  await vi.advanceTimersByTimeAsync(ms - 1);
  const before = settled;
  await vi.advanceTimersByTimeAsync(1);
  return { before, after: settled };
}

describe("test modes", () => {
  it("at their defaults are the production flow: the slots' own leases, nothing before the write, no warning", async () => {
    for (const hooks of [productionHooks, bookingTestHooks(defaults)]) {
      const { log, warnings } = capture();
      expect(hooks.leaseNames(slots, "bk_1", log)).toEqual(slots);
      vi.useFakeTimers();
      expect(await settlesAfter(hooks.afterChecks("booking", log), 1)).toEqual({ before: true, after: true });
      vi.useRealTimers();
      expect(warnings()).toEqual([]);
    }
  });

  it("locking off takes one lease per request that no other asks for, and warns each time", () => {
    const { log, warnings } = capture();
    const hooks = bookingTestHooks({ ...defaults, locking: "off" });
    const first = hooks.leaseNames(slots, "bk_1", log);
    const second = hooks.leaseNames(slots, "bk_1", log);
    expect(first).toHaveLength(1);
    expect(first[0]).toMatch(/^unlocked_bk_1_[0-9a-f]{8}$/);
    expect(second[0]).not.toBe(first[0]);
    expect(warnings()).toEqual(["locking_disabled", "locking_disabled"]);
  });

  it("the unlocked write delay holds a booking (not a cancellation) that long, and only with locking off", async () => {
    const { log } = capture();
    vi.useFakeTimers();
    const unlocked = bookingTestHooks({ ...defaults, locking: "off", unlockedWriteDelayMs: 300 });
    expect(await settlesAfter(unlocked.afterChecks("booking", log), 300)).toEqual({ before: false, after: true });
    expect(await settlesAfter(unlocked.afterChecks("cancellation", log), 1)).toEqual({ before: true, after: true });
    const locked = bookingTestHooks({ ...defaults, unlockedWriteDelayMs: 300 });
    expect(await settlesAfter(locked.afterChecks("booking", log), 1)).toEqual({ before: true, after: true });
  });

  it("the pause blocks the whole process (timers included) before either write, and says so", async () => {
    const { log, warnings } = capture();
    for (const locking of ["on", "off"] as const) {
      const hooks = bookingTestHooks({ ...defaults, locking, pauseBeforeWriteMs: 100 });
      for (const flow of ["booking", "cancellation"] as const) {
        let timerRan = false;
        setTimeout(() => {
          timerRan = true;
        }, 0);
        const startedMs = performance.now();
        const paused = hooks.afterChecks(flow, log);
        // Blocked synchronously: no timer could run while it waited.
        expect(performance.now() - startedMs, `${locking} ${flow}`).toBeGreaterThanOrEqual(95);
        expect(timerRan).toBe(false);
        await paused;
      }
    }
    expect(warnings().filter((event) => event === "test_pause")).toHaveLength(4);
  });

  it("the clock offset moves the scheduler's clock from the machine's, and is announced with locking off", () => {
    const offsetMs = 3 * 86_400_000;
    const clock = schedulerClock(offsetMs);
    const before = Date.now();
    const shown = clock();
    expect(shown - before).toBeGreaterThanOrEqual(offsetMs);
    expect(shown - Date.now()).toBeLessThanOrEqual(offsetMs);
    const quiet = capture();
    announceTestModes(defaults, quiet.log);
    expect(quiet.warnings()).toEqual([]);
    const loud = capture();
    announceTestModes({ ...defaults, locking: "off", clockOffsetMs: offsetMs }, loud.log);
    expect(loud.warnings()).toEqual(["locking_disabled", "clock_offset"]);
  });
});
