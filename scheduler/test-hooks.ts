// The booking API's test and demonstration modes, kept out of the booking flow. main.ts builds them
// from the SCHEDULER_* settings (config.ts) and hands them to Bookings (testHooks) and to every part
// that reads the time (the clock); the flow calls each hook at its fixed point and never asks which
// mode is on. `productionHooks` is the flow as it runs when no mode is set. scheduler/README.md
// lists the modes and their settings.

import { randomBytes } from "node:crypto";
import type { SchedulerLogger as Logger } from "./logging.ts";

/** BookingTestHooks: the points where a test or demonstration mode may change the booking flow. */
export interface BookingTestHooks {
  /**
   * leaseNames: the leases a booking or a cancellation takes, given its slots' own (sorted). In
   * production those; with locking off, one lease no other request asks for (see unlockedLeaseNames).
   */
  leaseNames(slotResources: readonly string[], bookingId: string, log: Logger): readonly string[];
  /** afterChecks runs between a flow's checks and its write, with the slots' leases held. */
  afterChecks(flow: "booking" | "cancellation", log: Logger): Promise<void>;
}

/** productionHooks: every slot's own lease, and nothing between the checks and the write. */
export const productionHooks: BookingTestHooks = {
  leaseNames: (slotResources) => slotResources,
  afterChecks: async () => undefined,
};

/** TestModeSettings: the configuration behind the modes (config.ts, SCHEDULER_*). */
export interface TestModeSettings {
  /** locking "off" reproduces the lab's delivery 2: no slot leases, so simultaneous requests race (SCHEDULER_LOCKING). */
  readonly locking: "on" | "off";
  /** pauseBeforeWriteMs blocks the whole process between the checks and the write (SCHEDULER_TEST_PAUSE_BEFORE_WRITE_MS). */
  readonly pauseBeforeWriteMs: number;
  /** unlockedWriteDelayMs: with locking off only, an asynchronous wait between a booking's check and its write (SCHEDULER_UNLOCKED_WRITE_DELAY_MS). */
  readonly unlockedWriteDelayMs: number;
  /** clockOffsetMs: how far this scheduler's clock runs from the machine's (SCHEDULER_TEST_CLOCK_OFFSET_MS). */
  readonly clockOffsetMs: number;
}

/** bookingTestHooks: the hooks the settings ask for; with every setting at its default, the production flow. */
export function bookingTestHooks(settings: TestModeSettings): BookingTestHooks {
  const unlocked = settings.locking === "off";
  const delayMs = unlocked ? settings.unlockedWriteDelayMs : 0;
  return {
    leaseNames: unlocked ? unlockedLeaseNames : productionHooks.leaseNames,
    async afterChecks(flow, log) {
      // Without locking, a booking's check and write are a read-then-write race; the delay widens
      // its window (demonstrations only) so the lab's delivery 2 shows it on a fast cluster too.
      if (flow === "booking" && delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (settings.pauseBeforeWriteMs > 0) pauseProcess(settings.pauseBeforeWriteMs, log);
    },
  };
}

/**
 * unlockedLeaseNames: with locking off (the lab's delivery 2) a write still needs a lease to act
 * under, so it gets one that no other request will ever ask for: it excludes nothing.
 */
export function unlockedLeaseNames(_slotResources: readonly string[], bookingId: string, log: Logger): readonly string[] {
  log.warn({ event: "locking_disabled" }, "LOCKING IS OFF: bookings race (lab delivery 2 demonstration only)");
  return [`unlocked_${bookingId}_${randomBytes(4).toString("hex")}`];
}

/** pauseProcess blocks the event loop itself for pauseMs, as a GC pause or a stopped VM would: no timer, no renewal runs. */
export function pauseProcess(pauseMs: number, log: Logger): void {
  log.warn({ event: "test_pause", pauseMs }, "test hook: pausing the whole process before the write");
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pauseMs);
}

/** schedulerClock: the scheduler's time in ms (GET /time, the slot rules, the records), clockOffsetMs from the machine's. */
export function schedulerClock(clockOffsetMs: number): () => number {
  return () => Date.now() + clockOffsetMs;
}

/** announceTestModes warns once, at startup, of a mode that changes what every request sees. */
export function announceTestModes(settings: TestModeSettings, log: Logger): void {
  if (settings.locking === "off") {
    log.warn({ event: "locking_disabled" }, "LOCKING IS OFF: bookings race (lab delivery 2 demonstration only)");
  }
  if (settings.clockOffsetMs !== 0) {
    log.warn(
      { event: "clock_offset", clockOffsetMs: settings.clockOffsetMs },
      `TEST HOOK: this scheduler's clock runs ${settings.clockOffsetMs} ms from the machine's`,
    );
  }
}
