// SimScheduler is the simulator's event loop: one virtual timeline ("true time", in milliseconds)
// on which every node's timers, deferrals, disk completions and message deliveries are events,
// run one at a time in (time, sequence) order. Nothing runs concurrently and nothing reads a real
// clock, so a run is a pure function of its seed.
//
// Each simulated process (one incarnation of a node) gets a SimClock: the driver's Clock seam,
// running at the node's own drift rate, starting at 0 when the process starts (as
// performance.now does). When a process crashes its events are dropped as they come due: a dead
// process hears nothing more, not even the completion of a write it started.

import type { Clock, TimerHandle } from "../node/driver/clock.ts";
import { assert } from "../raft/assert.ts";

/** SimProcess is one incarnation of a node: its events run only while it is alive. */
export interface SimProcess {
  alive: boolean;
  /** machine is the node's slot (clock drift and wall clock outlive incarnations). */
  readonly machine: number;
}

/** SimEvent is one thing due at a virtual time; cancelling it (a cleared timer) leaves it in the heap, skipped when due. */
export interface SimEvent {
  readonly time: number;
  readonly sequence: number;
  readonly owner: SimProcess | undefined;
  run: (() => void) | undefined;
}

/** Series is the handle of a repeating timer: the event due next, and whether it was cleared. */
interface Series {
  cleared: boolean;
  event: SimEvent | undefined;
}

/** ErrorHandler hears an exception thrown out of a process's event (the process died of it). */
export type ErrorHandler = (owner: SimProcess | undefined, error: unknown) => void;

export class SimScheduler {
  /** nowMs is the true time of the event running (or of the last one run). */
  nowMs = 0;
  /** eventsRun counts the events run (skipped ones excluded). */
  eventsRun = 0;
  /** current is the process whose event is running (undefined for the world's own events). */
  current: SimProcess | undefined = undefined;
  private readonly heap: SimEvent[] = [];
  /**
   * soon: events due at the current time (deferrals, zero delays), in order. They run before the
   * heap's next event, which cannot be earlier; a queue costs less than the heap for the most
   * frequent kind of event.
   */
  private soon: SimEvent[] = [];
  private soonHead = 0;
  private sequence = 0;
  /** running: inside runUntil, where an event due now joins `soon` (outside it, the world's tick schedules into the heap). */
  private running = false;
  private readonly onError: ErrorHandler;

  constructor(onError: ErrorHandler) {
    this.onError = onError;
  }

  /** at schedules `run` at true time `timeMs` (not before now), for `owner` (skipped if it has died by then). */
  at(timeMs: number, owner: SimProcess | undefined, run: () => void): SimEvent {
    const event: SimEvent = { time: Math.max(timeMs, this.nowMs), sequence: this.sequence++, owner, run };
    if (event.time === this.nowMs && this.running) this.soon.push(event);
    else this.push(event);
    return event;
  }

  cancel(event: SimEvent): void {
    event.run = undefined;
  }

  /** runUntil runs every event due up to `endMs`, in order, then sets the time to `endMs`. */
  runUntil(endMs: number): void {
    const heap = this.heap;
    this.running = true;
    for (;;) {
      let top: SimEvent | undefined;
      if (this.soonHead < this.soon.length) {
        top = this.soon[this.soonHead++] as SimEvent;
      } else {
        if (this.soonHead > 0) {
          this.soon = [];
          this.soonHead = 0;
        }
        top = heap[0];
        if (top === undefined || top.time > endMs) break;
        this.pop();
      }
      const run = top.run;
      if (run === undefined) continue;
      const owner = top.owner;
      if (owner !== undefined && !owner.alive) continue;
      this.nowMs = top.time;
      this.current = owner;
      this.eventsRun++;
      try {
        run();
      } catch (error) {
        this.onError(owner, error);
      }
      this.current = undefined;
    }
    this.running = false;
    this.nowMs = endMs;
  }

  pending(): number {
    return this.heap.length;
  }

  private push(event: SimEvent): void {
    const heap = this.heap;
    heap.push(event);
    let position = heap.length - 1;
    while (position > 0) {
      const parent = (position - 1) >> 1;
      const above = heap[parent] as SimEvent;
      if (!earlier(event, above)) break;
      heap[position] = above;
      position = parent;
    }
    heap[position] = event;
  }

  private pop(): void {
    const heap = this.heap;
    const last = heap.pop() as SimEvent;
    if (heap.length === 0) return;
    let position = 0;
    const length = heap.length;
    for (;;) {
      const left = 2 * position + 1;
      if (left >= length) break;
      const right = left + 1;
      let child = left;
      if (right < length && earlier(heap[right] as SimEvent, heap[left] as SimEvent)) child = right;
      const below = heap[child] as SimEvent;
      if (!earlier(below, last)) break;
      heap[position] = below;
      position = child;
    }
    heap[position] = last;
  }
}

function earlier(a: SimEvent, b: SimEvent): boolean {
  return a.time < b.time || (a.time === b.time && a.sequence < b.sequence);
}

/**
 * SimClock is the Clock one process sees: monotonic time from 0 at the process's start, running at
 * `rate` (1.02 runs 2% fast) against true time. A timer of d ms fires when this clock has moved d
 * ms, which is d / rate ms of true time.
 */
export class SimClock implements Clock {
  private readonly scheduler: SimScheduler;
  private readonly process: SimProcess;
  private readonly rate: number;
  private readonly startMs: number;

  constructor(scheduler: SimScheduler, process: SimProcess, rate: number) {
    assert(rate > 0, "a clock runs forwards");
    this.scheduler = scheduler;
    this.process = process;
    this.rate = rate;
    this.startMs = scheduler.nowMs;
  }

  nowMs(): number {
    return (this.scheduler.nowMs - this.startMs) * this.rate;
  }

  setTimer(callback: () => void, delayMs: number): TimerHandle {
    return this.scheduler.at(this.scheduler.nowMs + Math.max(0, delayMs) / this.rate, this.process, callback);
  }

  clearTimer(timer: TimerHandle): void {
    const handle = timer as SimEvent | Series;
    if ("cleared" in handle) {
      handle.cleared = true;
      if (handle.event !== undefined) this.scheduler.cancel(handle.event);
      return;
    }
    this.scheduler.cancel(handle);
  }

  repeat(callback: () => void, intervalMs: number): TimerHandle {
    // One handle for the whole series: each firing schedules the next at the next multiple of the
    // interval on this clock (no drift accumulates from rounding), unless the handle was cleared.
    const series: Series = { cleared: false, event: undefined };
    let dueLocalMs = this.nowMs() + intervalMs;
    const fire = () => {
      if (series.cleared) return;
      dueLocalMs += intervalMs;
      series.event = this.scheduler.at(this.startMs + dueLocalMs / this.rate, this.process, fire);
      callback();
    };
    series.event = this.scheduler.at(this.startMs + dueLocalMs / this.rate, this.process, fire);
    return series;
  }

  defer(callback: () => void): void {
    this.scheduler.at(this.scheduler.nowMs, this.process, callback);
  }
}
