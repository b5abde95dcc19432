// A linearizability checker (Wing & Gong's search with memoisation of visited states, as in
// Lowe's refinement and Porcupine), generic over a sequential model, plus the model of a mutex
// with fencing tokens. A history is linearizable if the operations can be put in one order that
// respects real time (an operation that returned before another was invoked comes first) and in
// which every answer is what the model gives.
//
// Operations whose outcome is unknown (the client gave up: returnedAtMs is Infinity) are
// optional: each may take effect at any point after its invocation, or never. The search applies
// one only where it changes the model's state; where it changes nothing it is left for later,
// which loses no linearization and keeps the search small.
//
// Mutex model, per resource (resources are independent, so each is checked on its own: Herlihy &
// Wing's locality): state = { holder token or none, highest token granted }.
//   acquire → granted(t): legal iff free and t > highest; then held by t.
//   acquire → conflict:   legal iff held.
//   release(t) → ok:      legal iff held by t; then free.
//   release(t) → not_held: legal iff not held by t.
// An unknown acquire that took effect grants some fresh token. Leases must not expire during a
// history checked with this model (use TTLs longer than the test); chaos/ uses a model with expiry
// (fenced-kv-model.ts).

export type LockOperation =
  | {
      readonly kind: "acquire";
      readonly resource: string;
      readonly outcome:
        | { readonly status: "granted"; readonly token: number }
        | { readonly status: "conflict" }
        | { readonly status: "unknown" };
    }
  | {
      readonly kind: "release";
      readonly resource: string;
      readonly token: number;
      readonly outcome: { readonly status: "ok" | "not_held" | "unknown" };
    }
  /** holder: a linearizable read of who holds the resource (null when free). */
  | { readonly kind: "holder"; readonly resource: string; readonly outcome: { readonly status: "read"; readonly token: number | null } };

/** TimedEntry is one operation of a history: who ran it, when it was invoked and when it returned. */
export interface TimedEntry<Operation> {
  readonly client: string;
  readonly invokedAtMs: number;
  /** returnedAtMs is Infinity when the outcome is unknown. */
  readonly returnedAtMs: number;
  readonly operation: Operation;
}

export type HistoryEntry = TimedEntry<LockOperation>;

/**
 * SequentialModel is what the search checks a history against. `next` lists every state the
 * operation may lead to from `state` (none: it cannot take effect there with the answer it got);
 * a model with internal transitions (a lease expiring) folds them in there. `optional` says
 * whether the operation may also never take effect.
 */
export interface SequentialModel<State, Operation> {
  readonly initial: State;
  next(state: State, entry: TimedEntry<Operation>): readonly State[];
  optional(entry: TimedEntry<Operation>): boolean;
  /** stateKey identifies a state for memoisation: equal keys, equal futures. */
  stateKey(state: State): string;
}

export interface SearchResult {
  readonly linearizable: boolean;
  readonly statesVisited: number;
}

/** SearchLimitError: the search visited more states than allowed; the history is neither accepted nor rejected. */
export class SearchLimitError extends Error {
  readonly code = "search_limit";
  constructor(statesVisitedMax: number) {
    super(`linearizability search exceeded ${statesVisitedMax} states`);
    this.name = "SearchLimitError";
  }
}

/** statesVisitedMaxDefault bounds the search; beyond it the checker gives up loudly rather than run forever. */
export const statesVisitedMaxDefault = 2_000_000;

/**
 * DoneSet is the set of linearized operations, by position in invocation order: every position
 * below `frontier`, plus `extra` (sorted, all above it). Real time keeps the linearized set close
 * to a prefix, so this stays small where a bitmap would copy the whole history on every step.
 */
interface DoneSet {
  readonly frontier: number;
  readonly extra: readonly number[];
}

function isDone(done: DoneSet, position: number): boolean {
  return position < done.frontier || done.extra.includes(position);
}

function markDone(done: DoneSet, position: number): DoneSet {
  const extra = [...done.extra, position].sort((a, b) => a - b);
  let frontier = done.frontier;
  while (extra[0] === frontier) {
    extra.shift();
    frontier++;
  }
  return { frontier, extra };
}

/**
 * searchLinearization looks for an order of `entries` that respects real time and that `model`
 * accepts. Depth-first over (linearized set, model state), with an explicit stack (no recursion)
 * and a memo of visited pairs; throws SearchLimitError beyond `statesVisitedMax`.
 */
export function searchLinearization<State, Operation>(
  entries: readonly TimedEntry<Operation>[],
  model: SequentialModel<State, Operation>,
  options: { statesVisitedMax?: number; initial?: State; isOptional?: (entry: TimedEntry<Operation>) => boolean } = {},
): SearchResult {
  const statesVisitedMax = options.statesVisitedMax ?? statesVisitedMaxDefault;
  const operations = [...entries].sort((a, b) => a.invokedAtMs - b.invokedAtMs);
  const count = operations.length;
  const optional = operations.map((entry) => options.isOptional?.(entry) ?? model.optional(entry));
  const required = optional.reduce((total, isOptional) => total + (isOptional ? 0 : 1), 0);
  const visited = new Set<string>();
  const stack: { done: DoneSet; requiredDone: number; state: State }[] = [
    { done: { frontier: 0, extra: [] }, requiredDone: 0, state: options.initial ?? model.initial },
  ];
  while (stack.length > 0) {
    const { done, requiredDone, state } = stack.pop() as { done: DoneSet; requiredDone: number; state: State };
    if (requiredDone === required) return { linearizable: true, statesVisited: visited.size };
    const stateKey = model.stateKey(state);
    const key = `${done.frontier}:${done.extra.join(",")}|${stateKey}`;
    if (visited.has(key)) continue;
    visited.add(key);
    if (visited.size > statesVisitedMax) throw new SearchLimitError(statesVisitedMax);
    // The next operation must have been invoked before every pending required operation returned.
    // (An optional one may never take effect, so it orders nothing; unknown ones never returned.)
    let earliestReturn = Number.POSITIVE_INFINITY;
    for (let position = done.frontier; position < count; position++) {
      if (optional[position] !== true && !isDone(done, position)) {
        earliestReturn = Math.min(earliestReturn, (operations[position] as TimedEntry<Operation>).returnedAtMs);
      }
    }
    const children: { done: DoneSet; requiredDone: number; state: State }[] = [];
    for (let position = done.frontier; position < count; position++) {
      const entry = operations[position] as TimedEntry<Operation>;
      if (entry.invokedAtMs > earliestReturn) break;
      if (isDone(done, position)) continue;
      for (const next of model.next(state, entry)) {
        // An optional operation that changes nothing here is left for later (see the header).
        if (optional[position] === true && model.stateKey(next) === stateKey) continue;
        children.push({ done: markDone(done, position), requiredDone: requiredDone + (optional[position] === true ? 0 : 1), state: next });
      }
    }
    // Pushed in reverse, so the earliest-invoked candidate is tried first.
    for (let child = children.length - 1; child >= 0; child--) stack.push(children[child] as (typeof children)[number]);
  }
  return { linearizable: false, statesVisited: visited.size };
}

export interface CheckResult {
  readonly linearizable: boolean;
  /** resource: the first resource whose history is not linearizable. */
  readonly resource?: string;
  readonly operations: number;
  readonly statesVisited: number;
}

/** groupBy splits a history by a key (a resource), keeping each group in the history's order. */
export function groupBy<Entry>(history: readonly Entry[], keyOf: (entry: Entry) => string): Map<string, Entry[]> {
  const groups = new Map<string, Entry[]>();
  for (const entry of history) {
    const key = keyOf(entry);
    const list = groups.get(key) ?? [];
    list.push(entry);
    groups.set(key, list);
  }
  return groups;
}

export function checkLinearizable(history: readonly HistoryEntry[]): CheckResult {
  let statesVisited = 0;
  for (const [resource, entries] of groupBy(history, (entry) => entry.operation.resource)) {
    const result = searchLinearization(entries, mutexModel);
    statesVisited += result.statesVisited;
    if (!result.linearizable) return { linearizable: false, resource, operations: history.length, statesVisited };
  }
  return { linearizable: true, operations: history.length, statesVisited };
}

interface MutexState {
  readonly holder: number | null;
  readonly highest: number;
}

/** mutexModel is the mutex with fencing tokens described in the header. */
const mutexModel: SequentialModel<MutexState, LockOperation> = {
  initial: { holder: null, highest: 0 },
  optional: (entry) => entry.operation.outcome.status === "unknown",
  stateKey: (state) => `${state.holder}|${state.highest}`,
  next(state, entry) {
    const next = mutexStep(state, entry.operation);
    return next === undefined ? [] : [next];
  },
};

/** mutexStep returns the next state if `operation` may take effect in `state`, else undefined. An unknown acquire may grant a fresh token. */
function mutexStep(state: MutexState, operation: LockOperation): MutexState | undefined {
  if (operation.kind === "holder") return state.holder === operation.outcome.token ? state : undefined;
  if (operation.kind === "acquire") {
    switch (operation.outcome.status) {
      case "granted":
        return state.holder === null && operation.outcome.token > state.highest
          ? { holder: operation.outcome.token, highest: operation.outcome.token }
          : undefined;
      case "conflict":
        return state.holder !== null ? state : undefined;
      case "unknown":
        // If it took effect it was granted with a token nobody saw; model it as a fresh one.
        return state.holder === null ? { holder: state.highest + 0.5, highest: state.highest + 0.5 } : state;
    }
  }
  switch (operation.outcome.status) {
    case "ok":
      return state.holder === operation.token ? { holder: null, highest: state.highest } : undefined;
    case "not_held":
      return state.holder !== operation.token ? state : undefined;
    case "unknown":
      return state.holder === operation.token ? { holder: null, highest: state.highest } : state;
  }
}
