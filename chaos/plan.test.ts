// The nemesis's plans (plan.ts) are a pure function of (run seed, history number, options), cover
// every enabled fault kind in a run's first three histories (and any five in a row), run membership changes and transfers during
// another fault, end every fault before healing, and pause nodes past the lease TTL.
import { describe, expect, it } from "vitest";
import { dealKinds, describeFault, type FaultKind, faultKinds, makeHistoryPlan, type PlanOptions } from "./plan.ts";

const options: PlanOptions = {
  kinds: faultKinds,
  workloads: ["lock-set", "bookings"],
  historyMs: 20_000,
  faultsPerHistory: 3,
  leaseTtlMs: 1000,
  unfenced: false,
};

describe("history plans", () => {
  it("are a pure function of the run seed and the history number", () => {
    expect(makeHistoryPlan(42, 5, options)).toEqual(makeHistoryPlan(42, 5, options));
    expect(makeHistoryPlan(42, 5, options).seed).not.toBe(makeHistoryPlan(42, 6, options).seed);
    expect(makeHistoryPlan(42, 5, options).seed).not.toBe(makeHistoryPlan(43, 5, options).seed);
  });

  it("cover every kind in the first three histories of a run, and in any five consecutive ones", () => {
    const kindsOf = (seed: number, first: number, count: number): string[] => {
      const kinds = new Set<FaultKind>();
      for (let index = first; index < first + count; index++)
        for (const fault of makeHistoryPlan(seed, index, options).faults) kinds.add(fault.kind);
      return [...kinds].sort();
    };
    for (let seed = 0; seed < 50; seed++) {
      expect(kindsOf(seed, 0, 3), `seed ${seed}`).toEqual([...faultKinds].sort());
      for (let first = 0; first < 10; first++)
        expect(kindsOf(seed, first, 5), `seed ${seed} from ${first}`).toEqual([...faultKinds].sort());
    }
  });

  it("deal a shuffled deck: every kind once per round", () => {
    const dealt = dealKinds(7, faultKinds, 0, faultKinds.length * 4);
    for (let round = 0; round < 4; round++) {
      expect(new Set(dealt.slice(round * 7, round * 7 + 7)).size).toBe(7);
    }
    expect(dealKinds(7, faultKinds, 9, 5)).toEqual(dealt.slice(9, 14));
  });

  it("run membership changes and transfers during another fault, end everything before healing, and pause past the TTL", () => {
    for (let seed = 0; seed < 30; seed++) {
      for (let index = 0; index < 10; index++) {
        const plan = makeHistoryPlan(seed, index, options);
        for (const fault of plan.faults) {
          expect(fault.durationMs).toBeGreaterThan(0);
          expect(fault.startMs + fault.durationMs, describeFault(fault)).toBeLessThanOrEqual(plan.healAtMs);
          if (fault.kind === "pause") expect(fault.durationMs).toBeGreaterThan(options.leaseTtlMs);
          if (fault.kind === "membership" || fault.kind === "transfer") {
            const others = plan.faults.filter(
              (other) =>
                other.kind !== "membership" &&
                other.kind !== "transfer" &&
                other.startMs < fault.startMs + fault.durationMs &&
                fault.startMs < other.startMs + other.durationMs,
            );
            expect(others.length, `${describeFault(fault)} in seed ${seed}, history ${index}`).toBeGreaterThan(0);
          }
        }
      }
    }
  });

  it("keep to the kinds asked for, book every third history, and run the unfenced control on the lock-set only", () => {
    const only = { ...options, kinds: ["partition", "clock"] as FaultKind[] };
    for (let index = 0; index < 12; index++) {
      for (const fault of makeHistoryPlan(3, index, only).faults) expect(["partition", "clock"]).toContain(fault.kind);
    }
    expect([0, 1, 2, 3, 4, 5].map((index) => makeHistoryPlan(3, index, options).workload)).toEqual([
      "lock-set",
      "lock-set",
      "bookings",
      "lock-set",
      "lock-set",
      "bookings",
    ]);
    expect(makeHistoryPlan(3, 2, { ...options, unfenced: true }).workload).toBe("lock-set");
    expect(makeHistoryPlan(3, 0, { ...options, workloads: ["bookings"] }).workload).toBe("bookings");
  });
});
