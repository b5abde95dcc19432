// The model of a lease lock with fencing tokens guarding one key, for the linearizability checker
// (linearizability.ts): what Jepsen's lock workloads check, with leases that expire. Per resource:
//
//   state = { holder: a token, none, an unseen token (an unknown acquire took effect), or anything
//             (the start of a window cut from the middle of a history);
//             highest: every token granted so far is at most this;
//             expiresNoEarlierThanMs: when the current lease may expire, at the earliest;
//             value: the guarded key's value (null: absent) }
//
//   acquire → granted(t)      legal iff free and t > highest; held by t, which cannot expire
//                             before the acquire's invocation + its TTL (the leader starts the
//                             countdown when it applies the grant, never earlier; a new leader
//                             restarts it; all processes share one machine's monotonic clock).
//   acquire → conflict(h)     legal iff held by h (an unseen token is h, if h > highest).
//   acquire → conflict()      (a free resource promised to a waiter), refused, wait_timeout: no effect.
//   release(t) → ok           legal iff held by t; then free.     → not_held: iff not held by t.
//   write(t, v) → committed   legal iff held by t (the fence); then value = v.   → stale: iff not held by t.
//   read → v                  legal iff value = v.
//
// A lease may expire (become free) before any lock operation, if that operation returned no
// earlier than the lease's expiresNoEarlierThanMs: that is the only way a grant can follow a grant
// without a release, so mutual exclusion is checked up to the TTL, and every write under a lease
// must fall inside it. Unknown outcomes are optional (linearizability.ts).

import type { SequentialModel, TimedEntry } from "./linearizability.ts";

export type FencedOperation =
  | {
      readonly kind: "acquire";
      readonly resource: string;
      readonly ttlMs: number;
      readonly outcome:
        | { readonly status: "granted"; readonly token: number }
        | { readonly status: "conflict"; readonly holderToken: number | null }
        | { readonly status: "refused" }
        | { readonly status: "unknown" };
    }
  | {
      readonly kind: "release";
      readonly resource: string;
      readonly token: number;
      readonly outcome: { readonly status: "ok" | "not_held" | "unknown" };
    }
  | {
      /** write: a put of the resource's key under the lease `token` (fenced: the txn's guard). */
      readonly kind: "write";
      readonly resource: string;
      readonly key: string;
      readonly token: number;
      readonly value: string;
      readonly outcome: { readonly status: "committed" | "stale" | "unknown" };
    }
  | {
      /** read: a linearizable read of the resource's key (value null: absent). */
      readonly kind: "read";
      readonly resource: string;
      readonly key: string;
      readonly outcome: { readonly status: "read"; readonly value: string | null };
    };

export type FencedEntry = TimedEntry<FencedOperation>;

/** Holder: a token, none, an unseen token, or anything (a window's start). */
type Holder = number | null | "unseen" | "any";

export interface FencedState {
  readonly holder: Holder;
  readonly highest: number;
  readonly expiresNoEarlierThanMs: number;
  /** value: an interned id: 0 absent, -1 anything (a window's start), else a value seen in the history. */
  readonly value: number;
}

const absent = 0;
const anyValue = -1;

/** isUnknown: the client never learned the outcome. */
export function isUnknown(entry: FencedEntry): boolean {
  return entry.operation.outcome.status === "unknown";
}

/**
 * fencedKvModel makes the model for one resource's history. `anyStart` begins from any state
 * (for a window cut from the middle of a history: see failing-window.ts).
 */
export function fencedKvModel(options: { anyStart?: boolean } = {}): SequentialModel<FencedState, FencedOperation> & {
  valueOf(id: number): string | null | undefined;
} {
  const ids = new Map<string, number>();
  const values: string[] = [];
  const intern = (value: string | null): number => {
    if (value === null) return absent;
    let id = ids.get(value);
    if (id === undefined) {
      values.push(value);
      id = values.length;
      ids.set(value, id);
    }
    return id;
  };
  const initial: FencedState =
    options.anyStart === true
      ? { holder: "any", highest: Number.NEGATIVE_INFINITY, expiresNoEarlierThanMs: Number.NEGATIVE_INFINITY, value: anyValue }
      : { holder: null, highest: 0, expiresNoEarlierThanMs: Number.NEGATIVE_INFINITY, value: absent };
  return {
    initial,
    optional: isUnknown,
    stateKey: (state) => `${state.holder}|${state.highest}|${state.expiresNoEarlierThanMs}|${state.value}`,
    valueOf: (id) => (id === absent ? null : id === anyValue ? undefined : values[id - 1]),
    next(state, entry) {
      const before = entry.operation.kind === "read" || !mayExpire(state, entry) ? [state] : [state, expired(state)];
      const after: FencedState[] = [];
      for (const from of before) {
        const next = step(from, entry, intern);
        if (next !== undefined) after.push(next);
      }
      return after;
    },
  };
}

/** mayExpire: the lease may have ended before this operation (see the header). A read needs no expiry: it commutes with one. */
function mayExpire(state: FencedState, entry: FencedEntry): boolean {
  return state.holder !== null && entry.returnedAtMs >= state.expiresNoEarlierThanMs;
}

function expired(state: FencedState): FencedState {
  return { ...state, holder: null, expiresNoEarlierThanMs: Number.NEGATIVE_INFINITY };
}

/** holds: whether `state` may be held by `token`, and the state that says so (an unseen or any holder is bound to it). */
function heldBy(state: FencedState, token: number): FencedState | undefined {
  if (state.holder === token) return state;
  if (state.holder === "any") return { ...state, holder: token, highest: Math.max(state.highest, token) };
  if (state.holder === "unseen" && token > state.highest) return { ...state, holder: token, highest: token };
  return undefined;
}

function step(state: FencedState, entry: FencedEntry, intern: (value: string | null) => number): FencedState | undefined {
  const operation = entry.operation;
  switch (operation.kind) {
    case "acquire":
      return stepAcquire(state, entry, operation);
    case "release": {
      const held = heldBy(state, operation.token);
      switch (operation.outcome.status) {
        case "ok":
        case "unknown":
          return held === undefined ? (operation.outcome.status === "ok" ? undefined : state) : expired(held);
        case "not_held":
          return state.holder === operation.token ? undefined : state;
      }
      return undefined;
    }
    case "write": {
      const held = heldBy(state, operation.token);
      switch (operation.outcome.status) {
        case "committed":
        case "unknown":
          if (held === undefined) return operation.outcome.status === "committed" ? undefined : state;
          return { ...held, value: intern(operation.value) };
        case "stale":
          return state.holder === operation.token ? undefined : state;
      }
      return undefined;
    }
    case "read": {
      const id = intern(operation.outcome.value);
      if (state.value === anyValue) return { ...state, value: id };
      return state.value === id ? state : undefined;
    }
  }
}

function stepAcquire(
  state: FencedState,
  entry: FencedEntry,
  operation: Extract<FencedOperation, { kind: "acquire" }>,
): FencedState | undefined {
  const free = state.holder === null || state.holder === "any";
  const leaseFloor = entry.invokedAtMs + operation.ttlMs;
  switch (operation.outcome.status) {
    case "granted": {
      const token = operation.outcome.token;
      return free && token > state.highest ? { ...state, holder: token, highest: token, expiresNoEarlierThanMs: leaseFloor } : undefined;
    }
    case "unknown":
      // If it took effect it was granted a token above every earlier one, which nobody saw.
      return free ? { ...state, holder: "unseen", expiresNoEarlierThanMs: leaseFloor } : state;
    case "conflict": {
      const holderToken = operation.outcome.holderToken;
      if (holderToken === null) return state; // promised to a waiter, which the model does not track
      return heldBy(state, holderToken);
    }
    case "refused":
      return state;
  }
}
