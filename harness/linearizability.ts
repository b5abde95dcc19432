// A linearizability checker for histories of lock operations (Wing & Gong's search with
// memoisation of visited states, as in Lowe's refinement and Porcupine), over the model of a
// mutex with fencing tokens. A history is linearizable if the operations can be put in one
// order that respects real time (an operation that returned before another was invoked comes
// first) and in which every answer is what the model gives.
//
// Model, per resource (resources are independent, so each is checked on its own: Herlihy &
// Wing's locality): state = { holder token or none, highest token granted }.
//   acquire → granted(t): legal iff free and t > highest; then held by t.
//   acquire → conflict:   legal iff held.
//   release(t) → ok:      legal iff held by t; then free.
//   release(t) → not_held: legal iff not held by t.
// An operation whose outcome is unknown (the client gave up) may have taken effect at any point
// after its invocation, or never; an unknown acquire that took effect grants some fresh token.
// Leases must not expire during a checked history (use TTLs longer than the test).

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

export interface HistoryEntry {
  readonly client: string;
  readonly invokedAtMs: number;
  /** returnedAtMs is Infinity when the outcome is unknown. */
  readonly returnedAtMs: number;
  readonly operation: LockOperation;
}

interface MutexState {
  readonly holder: number | null;
  readonly highest: number;
}

export interface CheckResult {
  readonly linearizable: boolean;
  /** resource: the first resource whose history is not linearizable. */
  readonly resource?: string;
  readonly operations: number;
  readonly statesVisited: number;
}

/** statesVisitedMax bounds the search; beyond it the checker gives up loudly rather than run forever. */
const statesVisitedMax = 2_000_000;

export function checkLinearizable(history: readonly HistoryEntry[]): CheckResult {
  const byResource = new Map<string, HistoryEntry[]>();
  for (const entry of history) {
    const list = byResource.get(entry.operation.resource) ?? [];
    list.push(entry);
    byResource.set(entry.operation.resource, list);
  }
  let statesVisited = 0;
  for (const [resource, entries] of byResource) {
    const result = checkResource(entries);
    statesVisited += result.statesVisited;
    if (!result.linearizable) return { linearizable: false, resource, operations: history.length, statesVisited };
  }
  return { linearizable: true, operations: history.length, statesVisited };
}

/** step returns the next state if `operation` may take effect in `state`, else undefined. An unknown acquire may grant a fresh token. */
function step(state: MutexState, operation: LockOperation): MutexState | undefined {
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

function checkResource(entries: readonly HistoryEntry[]): { linearizable: boolean; statesVisited: number } {
  const operations = [...entries].sort((a, b) => a.invokedAtMs - b.invokedAtMs);
  const count = operations.length;
  const known = operations.map((entry) => entry.operation.outcome.status !== "unknown");
  const visited = new Set<string>();
  // Depth-first search over (set of linearized operations, model state). An explicit stack keeps
  // the search free of recursion.
  const stack: { done: boolean[]; state: MutexState }[] = [{ done: new Array(count).fill(false), state: { holder: null, highest: 0 } }];
  while (stack.length > 0) {
    const { done, state } = stack.pop() as { done: boolean[]; state: MutexState };
    if (known.every((isKnown, position) => !isKnown || done[position])) return { linearizable: true, statesVisited: visited.size };
    const key = `${done.map((flag) => (flag ? "1" : "0")).join("")}|${state.holder}|${state.highest}`;
    if (visited.has(key)) continue;
    visited.add(key);
    if (visited.size > statesVisitedMax) throw new Error(`linearizability search exceeded ${statesVisitedMax} states`);
    // The next operation must be one that was invoked before every pending operation returned.
    let earliestReturn = Number.POSITIVE_INFINITY;
    for (let position = 0; position < count; position++) {
      if (!done[position]) earliestReturn = Math.min(earliestReturn, (operations[position] as HistoryEntry).returnedAtMs);
    }
    for (let position = 0; position < count; position++) {
      const entry = operations[position] as HistoryEntry;
      if (done[position] || entry.invokedAtMs > earliestReturn) continue;
      const next = step(state, entry.operation);
      if (next === undefined) continue;
      const nextDone = done.slice();
      nextDone[position] = true;
      stack.push({ done: nextDone, state: next });
    }
  }
  return { linearizable: false, statesVisited: visited.size };
}
