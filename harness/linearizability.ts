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

/** SearchAbortedError: the caller stopped the search (searchLinearizationAsync's signal); nothing was decided. */
export class SearchAbortedError extends Error {
  readonly code = "search_aborted";
  constructor(statesVisited: number) {
    super(`linearizability search stopped after ${statesVisited} states`);
    this.name = "SearchAbortedError";
  }
}

/** statesVisitedMaxDefault bounds the search; beyond it the checker gives up loudly rather than run forever. */
export const statesVisitedMaxDefault = 2_000_000;

/**
 * SearchNode is one point of the search: which required operations are linearized (every
 * position below `frontier` in the list of required operations, plus `extra`, sorted, all above
 * it), which optional ones took effect (`applied`, sorted positions), and the model's state. Real
 * time keeps the linearized required operations close to a prefix, and few optional ones take
 * effect, so both lists stay short where a bitmap would copy the whole history on every step.
 */
interface SearchNode<State> {
  readonly frontier: number;
  readonly extra: readonly number[];
  readonly applied: readonly number[];
  readonly state: State;
}

function withSorted(list: readonly number[], item: number): number[] {
  return [...list, item].sort((a, b) => a - b);
}

/**
 * LinearizationSearch looks for an order of the entries that respects real time and that the
 * model accepts: depth-first over SearchNodes, with an explicit stack (no recursion) and a memo of
 * visited nodes. `run(budget)` advances it by at most `budget` nodes, so a caller can search in
 * slices and stay responsive (searchLinearizationAsync); searchLinearization runs it to the end.
 */
export class LinearizationSearch<State, Operation> {
  private readonly operations: readonly TimedEntry<Operation>[];
  private readonly model: SequentialModel<State, Operation>;
  /** requiredPositions / optionalPositions: positions in `operations` (invocation order) of each kind. */
  private readonly requiredPositions: number[] = [];
  private readonly optionalPositions: number[] = [];
  private readonly statesVisitedMax: number;
  private readonly visited = new Set<string>();
  private readonly stack: SearchNode<State>[];
  private result: SearchResult | undefined;

  constructor(
    entries: readonly TimedEntry<Operation>[],
    model: SequentialModel<State, Operation>,
    options: { statesVisitedMax?: number; initial?: State; isOptional?: (entry: TimedEntry<Operation>) => boolean } = {},
  ) {
    this.model = model;
    this.statesVisitedMax = options.statesVisitedMax ?? statesVisitedMaxDefault;
    this.operations = [...entries].sort((a, b) => a.invokedAtMs - b.invokedAtMs);
    for (const [position, entry] of this.operations.entries()) {
      if (options.isOptional?.(entry) ?? model.optional(entry)) this.optionalPositions.push(position);
      else this.requiredPositions.push(position);
    }
    this.stack = [{ frontier: 0, extra: [], applied: [], state: options.initial ?? model.initial }];
  }

  get statesVisited(): number {
    return this.visited.size;
  }

  /** run searches at most `budget` more nodes; it returns the result once there is one, else undefined. Throws SearchLimitError. */
  run(budget: number): SearchResult | undefined {
    for (let visits = 0; visits < budget && this.result === undefined; visits++) {
      const node = this.stack.pop();
      if (node === undefined) this.result = { linearizable: false, statesVisited: this.visited.size };
      else this.visit(node);
    }
    return this.result;
  }

  private visit(node: SearchNode<State>): void {
    if (node.frontier === this.requiredPositions.length) {
      this.result = { linearizable: true, statesVisited: this.visited.size };
      return;
    }
    const stateKey = this.model.stateKey(node.state);
    const key = `${node.frontier}:${node.extra.join(",")}|${node.applied.join(",")}|${stateKey}`;
    if (this.visited.has(key)) return;
    this.visited.add(key);
    if (this.visited.size > this.statesVisitedMax) throw new SearchLimitError(this.statesVisitedMax);
    // The next operation must have been invoked before every pending required operation returned.
    // (An optional one may never take effect, so it orders nothing; unknown ones never returned.)
    let earliestReturn = Number.POSITIVE_INFINITY;
    for (let index = node.frontier; index < this.requiredPositions.length; index++) {
      if (node.extra.includes(index)) continue;
      const entry = this.operations[this.requiredPositions[index] as number] as TimedEntry<Operation>;
      earliestReturn = Math.min(earliestReturn, entry.returnedAtMs);
      if (entry.invokedAtMs > earliestReturn) break; // Later ones were invoked later still.
    }
    const children: SearchNode<State>[] = [];
    for (let index = node.frontier; index < this.requiredPositions.length; index++) {
      const entry = this.operations[this.requiredPositions[index] as number] as TimedEntry<Operation>;
      if (entry.invokedAtMs > earliestReturn) break;
      if (node.extra.includes(index)) continue;
      for (const next of this.model.next(node.state, entry)) children.push(this.requiredDone(node, index, next));
    }
    for (const position of this.optionalPositions) {
      const entry = this.operations[position] as TimedEntry<Operation>;
      if (entry.invokedAtMs > earliestReturn) break;
      if (node.applied.includes(position)) continue;
      for (const next of this.model.next(node.state, entry)) {
        // An optional operation that changes nothing here is left for later (see the header).
        if (this.model.stateKey(next) === stateKey) continue;
        children.push({ ...node, applied: withSorted(node.applied, position), state: next });
      }
    }
    // Pushed in reverse, so the earliest-invoked candidate is tried first.
    for (let child = children.length - 1; child >= 0; child--) this.stack.push(children[child] as SearchNode<State>);
  }

  private requiredDone(node: SearchNode<State>, index: number, state: State): SearchNode<State> {
    const extra = withSorted(node.extra, index);
    let frontier = node.frontier;
    while (extra[0] === frontier) {
      extra.shift();
      frontier++;
    }
    return { frontier, extra, applied: node.applied, state };
  }
}

/** searchLinearization runs a LinearizationSearch to the end (see there); throws SearchLimitError beyond `statesVisitedMax`. */
export function searchLinearization<State, Operation>(
  entries: readonly TimedEntry<Operation>[],
  model: SequentialModel<State, Operation>,
  options: { statesVisitedMax?: number; initial?: State; isOptional?: (entry: TimedEntry<Operation>) => boolean } = {},
): SearchResult {
  const search = new LinearizationSearch(entries, model, options);
  for (;;) {
    const result = search.run(1_000_000);
    if (result !== undefined) return result;
  }
}

/**
 * searchLinearizationAsync runs the search in slices, yielding to the event loop between them, so
 * that signals and timers are served during a long search; it gives up (SearchLimitError) when
 * `signal` aborts.
 */
export async function searchLinearizationAsync<State, Operation>(
  entries: readonly TimedEntry<Operation>[],
  model: SequentialModel<State, Operation>,
  options: { statesVisitedMax?: number; signal?: AbortSignal } = {},
): Promise<SearchResult> {
  const search = new LinearizationSearch(entries, model, options);
  for (;;) {
    const result = search.run(2000);
    if (result !== undefined) return result;
    await new Promise((resolve) => setImmediate(resolve));
    if (options.signal?.aborted === true) throw new SearchAbortedError(search.statesVisited);
  }
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
