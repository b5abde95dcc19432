// Clock: the driver's only source of time and of "later". Production uses the process's monotonic
// clock and Node's timers (systemClock); the simulator gives every node a clock of its own on a
// virtual timeline, so the same driver runs under a seed.

/** TimerHandle is whatever a Clock hands out to cancel a timer with. */
export type TimerHandle = { readonly __timer: unique symbol } | object;

export interface Clock {
  /** nowMs is monotonic time in milliseconds: it never goes back, and wall-clock steps do not move it. */
  nowMs(): number;
  /** setTimer calls `callback` once, `delayMs` from now (never before). */
  setTimer(callback: () => void, delayMs: number): TimerHandle;
  clearTimer(timer: TimerHandle): void;
  /** repeat calls `callback` every `intervalMs` until the timer is cleared (the driver's ticker). */
  repeat(callback: () => void, intervalMs: number): TimerHandle;
  /**
   * defer calls `callback` soon, after the input already waiting has been taken in (setImmediate:
   * requests and peer frames that arrived in the same poll are queued by then, and share a Ready).
   */
  defer(callback: () => void): void;
}

/** systemClock is the production clock: performance.now (monotonic) and Node's timers. */
export const systemClock: Clock = {
  nowMs: () => performance.now(),
  setTimer: (callback, delayMs) => setTimeout(callback, delayMs),
  clearTimer: (timer) => {
    clearTimeout(timer as NodeJS.Timeout); // Clears an interval too: Node's timers share one kind.
  },
  repeat: (callback, intervalMs) => setInterval(callback, intervalMs),
  defer: (callback) => {
    setImmediate(callback);
  },
};
