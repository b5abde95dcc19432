// The linearizability checker must accept linearizable lock histories and reject the ones that
// break the mutex-with-fencing model: two overlapping holders, a token going down, a release by a
// non-holder that succeeds, a conflict with nobody holding, and a real-time order violation.
import { describe, expect, it } from "vitest";
import { checkLinearizable, type HistoryEntry, type LockOperation } from "../harness/linearizability.ts";

function op(client: string, invokedAtMs: number, returnedAtMs: number, operation: LockOperation): HistoryEntry {
  return { client, invokedAtMs, returnedAtMs, operation };
}
const granted = (token: number): LockOperation => ({ kind: "acquire", resource: "r", outcome: { status: "granted", token } });
const conflict: LockOperation = { kind: "acquire", resource: "r", outcome: { status: "conflict" } };
const release = (token: number, status: "ok" | "not_held" | "unknown" = "ok"): LockOperation => ({
  kind: "release",
  resource: "r",
  token,
  outcome: { status },
});

describe("checkLinearizable (mutex with fencing)", () => {
  it("accepts a sequential history and overlapping operations that can be ordered", () => {
    expect(
      checkLinearizable([op("a", 0, 1, granted(5)), op("b", 2, 3, conflict), op("a", 4, 5, release(5)), op("b", 6, 7, granted(9))])
        .linearizable,
    ).toBe(true);
    // b's acquire overlaps a's release: it may take effect after it.
    expect(checkLinearizable([op("a", 0, 1, granted(5)), op("a", 2, 6, release(5)), op("b", 3, 5, granted(7))]).linearizable).toBe(true);
  });

  it("rejects two holders at once", () => {
    const result = checkLinearizable([op("a", 0, 1, granted(5)), op("b", 2, 3, granted(7))]);
    expect(result).toMatchObject({ linearizable: false, resource: "r" });
  });

  it("rejects a token that does not rise", () => {
    expect(checkLinearizable([op("a", 0, 1, granted(5)), op("a", 2, 3, release(5)), op("b", 4, 5, granted(4))]).linearizable).toBe(false);
  });

  it("rejects a successful release by a non-holder and a conflict with nobody holding", () => {
    expect(checkLinearizable([op("a", 0, 1, granted(5)), op("b", 2, 3, release(6))]).linearizable).toBe(false);
    expect(checkLinearizable([op("b", 0, 1, conflict)]).linearizable).toBe(false);
  });

  it("respects real time: a conflict after a completed release with nobody else acquiring is illegal", () => {
    expect(checkLinearizable([op("a", 0, 1, granted(5)), op("a", 2, 3, release(5)), op("b", 4, 5, conflict)]).linearizable).toBe(false);
  });

  it("lets an unknown outcome take effect or not, whichever explains the history", () => {
    // a's release timed out: b's later grant shows it did take effect.
    expect(
      checkLinearizable([op("a", 0, 1, granted(5)), op("a", 2, Number.POSITIVE_INFINITY, release(5, "unknown")), op("b", 4, 5, granted(8))])
        .linearizable,
    ).toBe(true);
    // An unknown acquire may have taken the lock, explaining b's conflict.
    expect(
      checkLinearizable([
        op("a", 0, Number.POSITIVE_INFINITY, { kind: "acquire", resource: "r", outcome: { status: "unknown" } }),
        op("b", 4, 5, conflict),
      ]).linearizable,
    ).toBe(true);
  });

  it("checks resources independently", () => {
    const other = (operation: LockOperation): LockOperation => ({ ...operation, resource: "s" }) as LockOperation;
    expect(checkLinearizable([op("a", 0, 1, granted(5)), op("b", 0, 1, other(granted(6)))]).linearizable).toBe(true);
  });
});
