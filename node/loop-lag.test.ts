// LoopLagMonitor: a loop kept busy shows as lag of at least that long (a lower bound holds on a
// loaded machine too: a busier machine only adds lateness), and its options are validated.

import { describe, expect, it } from "vitest";
import { LoopLagMonitor } from "./loop-lag.ts";

describe("LoopLagMonitor", () => {
  it("shows a loop blocked for 200 ms as at least 150 ms of lag, the timer's own interval not counted", async () => {
    const monitor = new LoopLagMonitor({ resolutionMs: 10, windowMs: 60_000 });
    try {
      await new Promise((resolve) => setTimeout(resolve, 50)); // Some samples first.
      const end = performance.now() + 200;
      while (performance.now() < end) {
        // Busy: the monitor's timer cannot run.
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
      const lag = monitor.lag();
      expect(lag.maxMs).toBeGreaterThanOrEqual(150);
      expect(lag.maxMs).toBeLessThan(60_000);
      expect(lag.p50Ms).toBeLessThanOrEqual(lag.maxMs);
    } finally {
      monitor.close();
    }
  });

  it("refuses options that cannot work", () => {
    expect(() => new LoopLagMonitor({ resolutionMs: 0, windowMs: 1000 })).toThrow(/resolutionMs/);
    expect(() => new LoopLagMonitor({ resolutionMs: 10, windowMs: 1.5 })).toThrow(/windowMs/);
  });
});
