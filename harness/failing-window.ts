// The smallest failing window of a history that is not linearizable: a stretch of time [from, to]
// whose operations alone cannot be linearized, whatever state they started from. It is what a
// person reads to find the bug, instead of thousands of operations.
//
// A window's sub-history is every operation that overlaps it (invoked by `to`, returned at or
// after `from`). The search starts from any state (the model's `anyStart`), and an operation that
// straddles an edge of the window is optional: it may have taken effect outside the window (its
// effect is then part of the "any" start, or after the end). Operations entirely outside are
// left out. This over-approximates every behaviour the full history allows inside the window,
// so a window that fails here proves the whole history is not linearizable.
//
// The search shrinks the end first (the earliest `to` whose prefix fails, from the true initial
// state), then the start (the latest `from` that still fails). It assumes that shrinking a
// failing window can only make it pass once (a binary search), and then checks the window it
// found again: only a window that was checked and failed is ever reported.

import { type SearchResult, type SequentialModel, searchLinearization, type TimedEntry } from "./linearizability.ts";

export interface FailingWindow<Operation> {
  readonly fromMs: number;
  readonly toMs: number;
  /** entries: the window's sub-history, in invocation order. */
  readonly entries: readonly TimedEntry<Operation>[];
  /** optional: for each entry, whether it straddles the window's edge or never returned (may not have taken effect inside). */
  readonly optional: readonly boolean[];
}

/** WindowModels makes a fresh model: from the initial state, or from any state. */
export type WindowModels<State, Operation> = (anyStart: boolean) => SequentialModel<State, Operation>;

/** windowOf cuts the sub-history of [fromMs, toMs] (fromMs -Infinity: from the start, in the true initial state). */
export function windowOf<Operation>(
  entries: readonly TimedEntry<Operation>[],
  fromMs: number,
  toMs: number,
): { entries: TimedEntry<Operation>[]; optional: boolean[] } {
  const inside = entries
    .filter((entry) => entry.invokedAtMs <= toMs && entry.returnedAtMs >= fromMs)
    .sort((a, b) => a.invokedAtMs - b.invokedAtMs);
  return {
    entries: inside,
    optional: inside.map((entry) => entry.invokedAtMs < fromMs || entry.returnedAtMs > toMs),
  };
}

/** failsInWindow: whether the window [fromMs, toMs] alone cannot be linearized. */
export function failsInWindow<State, Operation>(
  entries: readonly TimedEntry<Operation>[],
  models: WindowModels<State, Operation>,
  fromMs: number,
  toMs: number,
  statesVisitedMax: number,
): boolean {
  const window = windowOf(entries, fromMs, toMs);
  const optional = new Map(window.entries.map((entry, position) => [entry, window.optional[position] === true]));
  const model = models(fromMs !== Number.NEGATIVE_INFINITY);
  const result: SearchResult = searchLinearization(window.entries, model, {
    statesVisitedMax,
    isOptional: (entry) => optional.get(entry) === true,
  });
  return !result.linearizable;
}

/**
 * smallestFailingWindow finds a small window of `entries` (one resource's history, not
 * linearizable) that fails on its own; undefined if even the whole history passes the windowed
 * check (it cannot, if the full check failed, short of a search limit).
 */
export function smallestFailingWindow<State, Operation>(
  entries: readonly TimedEntry<Operation>[],
  models: WindowModels<State, Operation>,
  statesVisitedMax = 200_000,
): FailingWindow<Operation> | undefined {
  const returns = [...new Set(entries.map((entry) => entry.returnedAtMs).filter(Number.isFinite))].sort((a, b) => a - b);
  const last = Math.max(...entries.map((entry) => entry.invokedAtMs), ...returns);
  const ends = [...returns.filter((time) => time < last), last];
  const fails = (fromMs: number, toMs: number): boolean => {
    try {
      return failsInWindow(entries, models, fromMs, toMs, statesVisitedMax);
    } catch {
      return false; // Too large to decide: not a window we can show.
    }
  };
  if (!fails(Number.NEGATIVE_INFINITY, last)) return undefined;
  // The earliest end that fails (a failing prefix stays failing as it grows).
  let low = 0;
  let high = ends.length - 1;
  while (low < high) {
    const middle = Math.floor((low + high) / 2);
    if (fails(Number.NEGATIVE_INFINITY, ends[middle] as number)) high = middle;
    else low = middle + 1;
  }
  let toMs = ends[low] as number;
  if (!fails(Number.NEGATIVE_INFINITY, toMs)) toMs = last;
  // The latest start that still fails.
  const starts = [...new Set(entries.map((entry) => entry.invokedAtMs).filter((time) => time <= toMs))].sort((a, b) => a - b);
  let fromMs = Number.NEGATIVE_INFINITY;
  low = 0;
  high = starts.length - 1;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (fails(starts[middle] as number, toMs)) low = middle;
    else high = middle - 1;
  }
  if (starts.length > 0 && fails(starts[low] as number, toMs)) fromMs = starts[low] as number;
  const window = windowOf(entries, fromMs, toMs);
  return { fromMs, toMs, entries: window.entries, optional: window.optional };
}
