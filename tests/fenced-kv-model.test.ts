// The fenced key-value model (support/fenced-kv-model.ts) and the smallest failing window
// (support/failing-window.ts) must accept the histories a correct lease lock with fencing produces
// (expiries after the TTL, refused stale writes, unknown outcomes either way) and reject what
// Jepsen's lock workloads catch: two holders within a TTL, a write under a lease that was no
// longer current (the unfenced lost update), a lost acknowledged write, tokens that do not rise.
import { describe, expect, it } from "vitest";
import { smallestFailingWindow } from "../harness/failing-window.ts";
import { type FencedEntry, type FencedOperation, fencedKvModel } from "../harness/fenced-kv-model.ts";
import { searchLinearization } from "../harness/linearizability.ts";

const ttlMs = 1000;
const never = Number.POSITIVE_INFINITY;
const at = (client: string, invokedAtMs: number, returnedAtMs: number, operation: FencedOperation): FencedEntry => ({
  client,
  invokedAtMs,
  returnedAtMs,
  operation,
});
const resource = "lock/0";
const key = "set/0";
const granted = (token: number): FencedOperation => ({ kind: "acquire", resource, ttlMs, outcome: { status: "granted", token } });
const conflict = (holderToken: number | null): FencedOperation => ({
  kind: "acquire",
  resource,
  ttlMs,
  outcome: { status: "conflict", holderToken },
});
const unknownAcquire: FencedOperation = { kind: "acquire", resource, ttlMs, outcome: { status: "unknown" } };
const release = (token: number, status: "ok" | "not_held" | "unknown" = "ok"): FencedOperation => ({
  kind: "release",
  resource,
  token,
  outcome: { status },
});
const write = (token: number, value: string, status: "committed" | "stale" | "unknown" = "committed"): FencedOperation => ({
  kind: "write",
  resource,
  key,
  token,
  value,
  outcome: { status },
});
const read = (value: string | null): FencedOperation => ({ kind: "read", resource, key, outcome: { status: "read", value } });

function linearizable(history: readonly FencedEntry[]): boolean {
  return searchLinearization(history, fencedKvModel()).linearizable;
}

describe("fenced key-value model", () => {
  it("accepts lock cycles with conflicts, reads and fenced writes", () => {
    expect(
      linearizable([
        at("a", 0, 10, granted(5)),
        at("b", 12, 14, conflict(5)),
        at("a", 11, 20, read(null)),
        at("a", 21, 30, write(5, "x")),
        at("a", 31, 40, release(5)),
        at("b", 41, 50, granted(9)),
        at("b", 51, 60, read("x")),
      ]),
    ).toBe(true);
  });

  it("accepts a grant after the holder's TTL without a release, and refuses the old holder's write then", () => {
    const history = [at("a", 0, 10, granted(5)), at("b", 1000, 1010, granted(9)), at("a", 1020, 1030, write(5, "late", "stale"))];
    expect(linearizable(history)).toBe(true);
  });

  it("rejects two holders within a TTL", () => {
    expect(linearizable([at("a", 0, 10, granted(5)), at("b", 500, 510, granted(9))])).toBe(false);
  });

  it("rejects a write under a lease that was no longer current (the unfenced lost update)", () => {
    const history = [
      at("a", 0, 10, granted(5)),
      at("a", 11, 20, read(null)),
      at("b", 1100, 1110, granted(9)),
      at("b", 1111, 1120, read(null)),
      at("b", 1121, 1130, write(9, "b")),
      at("a", 1200, 1210, write(5, "a")), // a paused past its TTL and wrote anyway
    ];
    expect(linearizable(history)).toBe(false);
    expect(linearizable([...history.slice(0, 5), at("a", 1200, 1210, write(5, "a", "stale"))])).toBe(true);
  });

  it("rejects a lost acknowledged write and a token that does not rise", () => {
    expect(linearizable([at("a", 0, 10, granted(5)), at("a", 11, 20, write(5, "x")), at("r", 30, 40, read(null))])).toBe(false);
    expect(linearizable([at("a", 0, 10, granted(5)), at("a", 11, 20, release(5)), at("b", 30, 40, granted(4))])).toBe(false);
  });

  it("lets unknown outcomes take effect or not, whichever explains the history", () => {
    // A write that timed out and still landed; another that timed out and never did.
    expect(linearizable([at("a", 0, 10, granted(5)), at("a", 11, never, write(5, "x", "unknown")), at("r", 3000, 3010, read("x"))])).toBe(
      true,
    );
    expect(linearizable([at("a", 0, 10, granted(5)), at("a", 11, never, write(5, "x", "unknown")), at("r", 3000, 3010, read(null))])).toBe(
      true,
    );
    // An acquire that timed out took the lock: b's conflict names the token a never saw.
    expect(linearizable([at("a", 0, never, unknownAcquire), at("b", 100, 110, conflict(7)), at("b", 200, 210, conflict(7))])).toBe(true);
    // ... but that token is then fixed.
    expect(linearizable([at("a", 0, never, unknownAcquire), at("b", 100, 110, conflict(7)), at("b", 200, 210, conflict(8))])).toBe(false);
  });
});

describe("smallestFailingWindow", () => {
  /** cycles: `count` clean lock cycles of one client, each 100 ms, starting at `fromMs`, tokens from `token`. */
  function cycles(fromMs: number, count: number, token: number, value: { current: string | null }): FencedEntry[] {
    const history: FencedEntry[] = [];
    for (let cycle = 0; cycle < count; cycle++) {
      const startMs = fromMs + cycle * 100;
      const next = `${value.current ?? ""}${cycle % 10}`;
      history.push(
        at("c", startMs, startMs + 10, granted(token + cycle * 3)),
        at("c", startMs + 11, startMs + 20, read(value.current)),
        at("c", startMs + 21, startMs + 30, write(token + cycle * 3, next)),
        at("c", startMs + 31, startMs + 40, release(token + cycle * 3)),
      );
      value.current = next;
    }
    return history;
  }

  it("finds a few operations around a lost write in the middle of a long history, and none in a clean one", () => {
    const value = { current: null as string | null };
    const before = cycles(0, 30, 10, value);
    const lost = [at("x", 3000, 3010, granted(500)), at("x", 3011, 3020, write(500, "lost")), at("x", 3021, 3030, release(500))];
    const after = cycles(3100, 30, 1000, value); // reads the value from before the lost write: it was lost
    const history = [...before, ...lost, ...after];
    expect(linearizable(history)).toBe(false);
    const window = smallestFailingWindow(history, (anyStart) => fencedKvModel({ anyStart }));
    expect(window).toBeDefined();
    expect(window?.entries.length).toBeLessThanOrEqual(8);
    expect(window?.entries.some((entry) => entry.operation.kind === "write" && entry.operation.value === "lost")).toBe(true);
    expect(window?.fromMs).toBeGreaterThan(2000);
    expect(smallestFailingWindow([...before, ...after.slice(0, 0)], (anyStart) => fencedKvModel({ anyStart }))).toBeUndefined();
  });
});
