// WatchHub serves GET /watch: a bounded ring of the lock events this node has applied, and the long
// polls waiting for new ones. Events are committed data, and every replica derives the same events
// at the same indexes from the same log, so any node can serve a watcher, and a watcher can move
// between nodes by carrying the index it has seen (`after`).
//
// The ring covers every event with an index above `coveredFrom`. Events older than that are gone:
// dropped to stay within eventsMax / bytesMax, or never seen here because this node started from
// (or installed) a snapshot. A watcher asking for them gets `events_compacted`, and must re-read
// the state (a range read says at which index it read) and watch on from there.

import type { LockEvent } from "../lock/types.ts";

export type WatchErrorCode = "events_compacted" | "too_many_watchers" | "shutting_down";

/** WatchError is why a poll cannot be answered with events; the HTTP layer maps each code to a status. */
export class WatchError extends Error {
  readonly code: WatchErrorCode;
  readonly details: { readonly oldestIndex: number } | undefined;
  constructor(code: WatchErrorCode, message: string, details?: { readonly oldestIndex: number }) {
    super(message);
    this.name = "WatchError";
    this.code = code;
    this.details = details;
  }
}

export interface WatchHubOptions {
  /** eventsMax bounds the events kept; the oldest are dropped beyond it. */
  readonly eventsMax: number;
  /** bytesMax bounds the events' estimated memory (values ride along), likewise. */
  readonly bytesMax: number;
  /** watchersMax bounds the polls waiting at once; one more is refused with too_many_watchers. */
  readonly watchersMax: number;
  /** appliedIndex is how far this node has applied the log. */
  readonly appliedIndex: () => number;
  /** coveredFrom: every event above this index will be recorded (the index the state machine starts from). */
  readonly coveredFrom: number;
}

export interface WatchQuery {
  /** prefix: only key_changed events of keys starting with it; every event when empty. */
  readonly prefix: string;
  /** after: answer events with a higher index. */
  readonly after: number;
  /** limit: about this many events at most (an index's events are never split, so a little more). */
  readonly limit: number;
  /** timeoutMs: how long to wait for a matching event; 0 answers at once. */
  readonly timeoutMs: number;
  /** signal: the caller went away (its connection closed); the poll is dropped. */
  readonly signal?: AbortSignal;
}

/**
 * WatchAnswer: the matching events in index order, and `lastIndex`, the index up to which the
 * answer is complete: poll again with `after = lastIndex`. It may be below `after` when this node
 * lags behind the one that answered before; keep the larger.
 */
export interface WatchAnswer {
  readonly events: readonly LockEvent[];
  readonly lastIndex: number;
}

interface Watcher {
  readonly query: WatchQuery;
  /** checkedThrough: nothing matched up to this index; later wakes scan only past it. */
  checkedThrough: number;
  readonly settle: (outcome: WatchAnswer | WatchError) => void;
}

/** Events carry values of up to 64 KiB; this estimate (UTF-16 strings plus object overhead) keeps the ring within bytesMax. */
function eventBytes(event: LockEvent): number {
  const overheadBytes = 160;
  if (event.type === "key_changed") return overheadBytes + 2 * (event.key.length + (event.value?.length ?? 0));
  if (event.type === "wait_timeout") return overheadBytes;
  return overheadBytes + 2 * (event.resource.length + (event.type === "granted" ? event.owner.length : 0));
}

export class WatchHub {
  private readonly options: WatchHubOptions;
  /** events[head..] is the ring, oldest first, in index order; the dead prefix is cut off now and then. */
  private events: LockEvent[] = [];
  private head = 0;
  private bytes = 0;
  private coveredFrom: number;
  private readonly watchers = new Set<Watcher>();
  private closed = false;

  constructor(options: WatchHubOptions) {
    this.options = options;
    this.coveredFrom = options.coveredFrom;
  }

  /** oldestIndex is the lowest `after` this node can answer: every event above it is held. */
  oldestIndex(): number {
    return this.coveredFrom;
  }

  watcherCount(): number {
    return this.watchers.size;
  }

  /** record keeps the events of one applied entry, dropping the oldest beyond the bounds. */
  record(events: readonly LockEvent[]): void {
    for (const event of events) {
      this.events.push(event);
      this.bytes += eventBytes(event);
    }
    while (
      this.events.length - this.head > this.options.eventsMax ||
      (this.bytes > this.options.bytesMax && this.head < this.events.length)
    ) {
      const dropped = this.events[this.head] as LockEvent;
      this.head++;
      this.bytes -= eventBytes(dropped);
      this.coveredFrom = Math.max(this.coveredFrom, dropped.index);
    }
    // Cut the dead prefix once it is as long as the live part: amortised O(1) per event.
    if (this.head > 1024 && this.head * 2 > this.events.length) {
      this.events = this.events.slice(this.head);
      this.head = 0;
    }
  }

  /** restart forgets every event: the state machine jumped to `index` (a snapshot was installed), and what came between was never seen here. */
  restart(index: number): void {
    this.events = [];
    this.head = 0;
    this.bytes = 0;
    this.coveredFrom = Math.max(this.coveredFrom, index);
    this.wake();
  }

  /** poll answers matching events above `after` at once, or waits for the first, or answers none after timeoutMs. */
  poll(query: WatchQuery): Promise<WatchAnswer> {
    if (this.closed) return Promise.reject(new WatchError("shutting_down", "the node is shutting down"));
    const answer = this.collect(query.after, query);
    if (answer instanceof WatchError || answer.events.length > 0 || query.timeoutMs === 0) {
      return answer instanceof WatchError ? Promise.reject(answer) : Promise.resolve(answer);
    }
    if (this.watchers.size >= this.options.watchersMax) {
      return Promise.reject(new WatchError("too_many_watchers", `${this.options.watchersMax} watchers are waiting already; retry shortly`));
    }
    return new Promise<WatchAnswer>((resolve, reject) => {
      const watcher: Watcher = {
        query,
        checkedThrough: Math.max(query.after, this.options.appliedIndex()),
        settle: (outcome) => {
          if (!this.watchers.delete(watcher)) return; // Settled already.
          clearTimeout(timer);
          query.signal?.removeEventListener("abort", onAbort);
          if (outcome instanceof WatchError) reject(outcome);
          else resolve(outcome);
        },
      };
      const timer = setTimeout(() => watcher.settle({ events: [], lastIndex: this.options.appliedIndex() }), query.timeoutMs);
      const onAbort = (): void => watcher.settle({ events: [], lastIndex: this.options.appliedIndex() });
      query.signal?.addEventListener("abort", onAbort, { once: true });
      this.watchers.add(watcher);
      if (query.signal?.aborted) onAbort();
    });
  }

  /** wake answers every waiting poll that now has a matching event (call it after applying a batch of entries). */
  wake(): void {
    for (const watcher of [...this.watchers]) {
      const answer = this.collect(watcher.checkedThrough, watcher.query);
      if (answer instanceof WatchError || answer.events.length > 0) watcher.settle(answer);
      else watcher.checkedThrough = Math.max(watcher.checkedThrough, answer.lastIndex);
    }
  }

  /** close answers every waiting poll with shutting_down and refuses new ones (the node is stopping). */
  close(): void {
    this.closed = true;
    const error = new WatchError("shutting_down", "the node is shutting down");
    for (const watcher of [...this.watchers]) watcher.settle(error);
  }

  /**
   * collect gathers the events above `from` that match the query, in index order. Past `limit` it
   * finishes the last index's events and stops, so that `lastIndex` never splits an index: a poll
   * from it misses nothing and repeats nothing.
   */
  private collect(from: number, query: WatchQuery): WatchAnswer | WatchError {
    if (from < this.coveredFrom) {
      return new WatchError(
        "events_compacted",
        `events after index ${from} are no longer all held here (the oldest 'after' this node can answer is ${this.coveredFrom}); re-read the state and watch on from there`,
        { oldestIndex: this.coveredFrom },
      );
    }
    const found: LockEvent[] = [];
    for (let position = this.firstAbove(from); position < this.events.length; position++) {
      const event = this.events[position] as LockEvent;
      if (!matches(event, query.prefix)) continue;
      const last = found[found.length - 1];
      if (found.length >= query.limit && last !== undefined && event.index !== last.index) {
        return { events: found, lastIndex: last.index };
      }
      found.push(event);
    }
    return { events: found, lastIndex: this.options.appliedIndex() };
  }

  /** firstAbove is the position of the first held event with an index above `index` (binary search: the ring is in index order). */
  private firstAbove(index: number): number {
    let low = this.head;
    let high = this.events.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if ((this.events[middle] as LockEvent).index <= index) low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

function matches(event: LockEvent, prefix: string): boolean {
  if (prefix === "") return true;
  return event.type === "key_changed" && event.key.startsWith(prefix);
}
