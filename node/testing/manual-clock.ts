// ManualClock: a Clock whose time moves only when a test says so (advance), for deterministic
// tests of code that waits through the Clock seam (admission.ts, graceful-stop.ts). Tests only.

import type { Clock, TimerHandle } from "../driver/clock.ts";

export class ManualClock implements Clock {
  private now = 0;
  private timers: { atMs: number; callback: () => void; handle: object }[] = [];

  nowMs(): number {
    return this.now;
  }

  setTimer(callback: () => void, delayMs: number): TimerHandle {
    const handle = {};
    this.timers.push({ atMs: this.now + Math.max(0, delayMs), callback, handle });
    return handle;
  }

  clearTimer(timer: TimerHandle): void {
    this.timers = this.timers.filter((each) => each.handle !== timer);
  }

  repeat(): TimerHandle {
    throw new Error("ManualClock: repeat is not supported");
  }

  defer(callback: () => void): void {
    callback();
  }

  /** pendingTimers: timers set and not yet fired or cleared. */
  pendingTimers(): number {
    return this.timers.length;
  }

  /** advance moves time on by `ms` and fires, in time order, every timer due by then. */
  advance(ms: number): void {
    this.now += ms;
    for (;;) {
      const due = this.timers.filter((each) => each.atMs <= this.now).sort((a, b) => a.atMs - b.atMs)[0];
      if (due === undefined) return;
      this.timers = this.timers.filter((each) => each !== due);
      due.callback();
    }
  }
}
