// LoopLagMonitor measures how late one thread's event loop runs its timers (perf_hooks'
// monitorEventLoopDelay), in windows of a few seconds: a loop that is late by more than a tick
// sends its heartbeats late, and that is what this figure is for. Each thread measures its own
// loop; /metrics shows both (sctec_event_loop_lag_seconds{loop="raft"|"http"}).

import { type IntervalHistogram, monitorEventLoopDelay } from "node:perf_hooks";

/** LoopLag: one window's event-loop delays, in milliseconds. */
export interface LoopLag {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface LoopLagMonitorOptions {
  /** resolutionMs: how often the loop is sampled (the histogram's timer). */
  readonly resolutionMs: number;
  /** windowMs: the figures cover the last complete window of this length (the first is shown while it fills). */
  readonly windowMs: number;
}

const nsPerMs = 1e6;

export class LoopLagMonitor {
  private readonly resolutionMs: number;
  private readonly histogram: IntervalHistogram;
  private readonly timer: NodeJS.Timeout;
  private last: LoopLag | undefined;

  constructor(options: LoopLagMonitorOptions) {
    for (const key of ["resolutionMs", "windowMs"] as const) {
      if (!(Number.isInteger(options[key]) && options[key] >= 1)) throw new Error(`LoopLagMonitor: ${key} must be a positive integer`);
    }
    this.resolutionMs = options.resolutionMs;
    this.histogram = monitorEventLoopDelay({ resolution: options.resolutionMs });
    this.histogram.enable();
    this.timer = setInterval(() => {
      this.last = this.current();
      this.histogram.reset();
    }, options.windowMs);
    this.timer.unref();
  }

  /** lag: the last complete window's figures, or the first window's so far. */
  lag(): LoopLag {
    return this.last ?? this.current();
  }

  close(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }

  private current(): LoopLag {
    // An empty histogram (no sample yet) reports NaN and huge minima: show zeros instead.
    if (this.histogram.count === 0) return { p50Ms: 0, p99Ms: 0, maxMs: 0 };
    // The histogram holds the time between two runs of its timer, which is due every resolutionMs:
    // the lateness is what exceeds that.
    const lateMs = (nanoseconds: number) => Math.max(0, nanoseconds / nsPerMs - this.resolutionMs);
    return {
      p50Ms: lateMs(this.histogram.percentile(50)),
      p99Ms: lateMs(this.histogram.percentile(99)),
      maxMs: lateMs(this.histogram.max),
    };
  }
}
