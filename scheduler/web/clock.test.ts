import { describe, expect, it } from "vitest";
import { bestSample, estimate, formatOffset, offsetMs, roundTripMs, serverTimeOf, synchronise, type TimeSample } from "./clock.js";

// A server whose clock is 5 000 ms ahead of ours, answering after `toServer` ms and reaching us
// `back` ms later: the exact offset is known, so the estimate can be checked against it.
const TRUE_OFFSET = 5_000;
function exchange(sentAtMs: number, toServer: number, back: number): TimeSample {
  return { sentAtMs, serverTimeMs: sentAtMs + toServer + TRUE_OFFSET, receivedAtMs: sentAtMs + toServer + back };
}

// The checks of the offset math, written once so that they can be run against a planted bug too.
// Each returns the list of what is wrong with `offset` (empty when it is right).
function offsetProblems(offset: (sample: TimeSample) => number): string[] {
  const problems: string[] = [];
  const expectNear = (what: string, actual: number, expected: number) => {
    if (!(Math.abs(actual - expected) < 1e-9)) problems.push(`${what}: ${actual}, expected ${expected}`);
  };
  // Symmetric paths: Cristian's estimate is exact.
  expectNear("symmetric 40 ms round trip", offset(exchange(1_000, 20, 20)), TRUE_OFFSET);
  // serverTimeMs + rtt / 2 - receivedAtMs, by hand: 10 000 + 30 / 2 - 4 030 = 5 985.
  expectNear("by hand", offset({ sentAtMs: 4_000, receivedAtMs: 4_030, serverTimeMs: 10_000 }), 5_985);
  // Instant answer: the offset is the plain difference.
  expectNear("zero round trip", offset({ sentAtMs: 7, receivedAtMs: 7, serverTimeMs: 12 }), 5);
  // Server behind us: a negative offset.
  expectNear("server behind", offset({ sentAtMs: 10_000, receivedAtMs: 10_100, serverTimeMs: 8_050 }), -2_000);
  return problems;
}

describe("offset (Cristian)", () => {
  it("is serverTimeMs + rtt / 2 - receivedAtMs", () => {
    expect(offsetProblems(offsetMs)).toEqual([]);
  });

  it("catches a planted bug: the offset without the half round trip", () => {
    const withoutHalfRtt = (s: TimeSample) => s.serverTimeMs - s.receivedAtMs;
    expect(offsetProblems(withoutHalfRtt)).toEqual([
      "symmetric 40 ms round trip: 4980, expected 5000",
      "by hand: 5970, expected 5985",
      "server behind: -2050, expected -2000",
    ]);
  });

  it("catches a planted bug: the full round trip added instead of half", () => {
    const fullRtt = (s: TimeSample) => s.serverTimeMs + (s.receivedAtMs - s.sentAtMs) - s.receivedAtMs;
    expect(offsetProblems(fullRtt)).toHaveLength(3);
  });

  it("errs by at most rtt / 2 when the paths are asymmetric", () => {
    for (const [toServer, back] of [
      [0, 40],
      [40, 0],
      [5, 35],
    ] as const) {
      const sample = exchange(2_000, toServer, back);
      expect(roundTripMs(sample)).toBe(40);
      expect(Math.abs(offsetMs(sample) - TRUE_OFFSET)).toBeLessThanOrEqual(20);
    }
    // All the way out and none back: exactly rtt / 2 too low.
    expect(offsetMs(exchange(2_000, 0, 40))).toBe(TRUE_OFFSET - 20);
  });
});

// The checks of the best-sample choice, for the real one and planted bugs alike.
function choiceProblems(choose: (samples: readonly TimeSample[]) => TimeSample | undefined): string[] {
  const problems: string[] = [];
  const slow = exchange(0, 100, 300); // rtt 400
  const fastest = exchange(1_000, 2, 1); // rtt 3
  const fast = exchange(2_000, 4, 4); // rtt 8
  const late = exchange(3_000, 50, 50); // rtt 100, taken last
  if (choose([slow, fastest, fast, late]) !== fastest) problems.push("did not keep the smallest round trip");
  if (choose([late, fast, slow]) !== fast) problems.push("did not keep the smallest round trip (order changed)");
  const tie = exchange(4_000, 1, 2); // rtt 3 as well, but later
  if (choose([fastest, tie]) !== fastest) problems.push("did not keep the first of equal round trips");
  if (choose([]) !== undefined) problems.push("invented a sample");
  const broken = { sentAtMs: 10, receivedAtMs: 5, serverTimeMs: 1 }; // answered before asked
  const notANumber = { sentAtMs: 0, receivedAtMs: 1, serverTimeMs: Number.NaN };
  if (choose([broken, notANumber, slow]) !== slow) problems.push("kept an impossible sample");
  return problems;
}

describe("best sample", () => {
  it("is the one with the smallest round trip; broken samples are ignored", () => {
    expect(choiceProblems(bestSample)).toEqual([]);
  });

  it("catches planted bugs: the last sample, the largest round trip", () => {
    const last = (samples: readonly TimeSample[]) => samples.at(-1);
    expect(choiceProblems(last)).toContain("did not keep the smallest round trip");
    const largest = (samples: readonly TimeSample[]) => [...samples].sort((a, b) => roundTripMs(b) - roundTripMs(a))[0];
    expect(choiceProblems(largest)).toContain("did not keep the smallest round trip (order changed)");
  });

  it("estimate: offset of the best sample, uncertainty half its round trip", () => {
    const samples = [exchange(0, 100, 300), exchange(1_000, 2, 1), exchange(2_000, 4, 4)];
    expect(estimate(samples)).toEqual({ offsetMs: offsetMs(samples[1]!), uncertaintyMs: 1.5, rttMs: 3, samples: 3 });
    expect(estimate(samples)!.offsetMs).toBe(TRUE_OFFSET + 0.5); // 2 ms out, 1 back: the estimate is 0.5 high
    expect(estimate([])).toBeUndefined();
  });
});

describe("synchronise", () => {
  it("takes the samples one after another and keeps the one with the smallest round trip", async () => {
    // A scripted network: each request's (there, back) delays in turn; the local clock advances by them.
    const delays: Array<[number, number]> = [
      [30, 30],
      [10, 50],
      [2, 2],
      [20, 20],
    ];
    let local = 1_000_000;
    let call = 0;
    const fetchServerTimeMs = async () => {
      const [there, back] = delays[call]!;
      call += 1;
      local += there;
      const server = local + TRUE_OFFSET;
      local += back;
      return server;
    };
    const result = await synchronise(fetchServerTimeMs, () => local, delays.length);
    expect(call).toBe(4);
    expect(result).toEqual({ offsetMs: TRUE_OFFSET, uncertaintyMs: 2, rttMs: 4, samples: 4 });
  });

  it("skips failed samples, and fails only when every sample fails", async () => {
    let call = 0;
    let local = 0;
    const flaky = async () => {
      call += 1;
      local += 10;
      if (call % 2 === 1) throw new Error("network down");
      return local + 100;
    };
    const result = await synchronise(flaky, () => local, 4);
    expect(result.samples).toBe(2);
    // The server stamps its time just as the answer arrives: the estimate is rtt / 2 = 5 ms high.
    expect(result.offsetMs).toBe(105);
    await expect(
      synchronise(
        () => Promise.reject(new Error("offline")),
        () => 0,
        3,
      ),
    ).rejects.toThrow("offline");
  });
});

describe("helpers", () => {
  it("reads the server time from serverTimeMs, else serverTimeUtc", () => {
    expect(serverTimeOf({ serverTimeMs: 1761501604500, serverTimeUtc: "2000-01-01T00:00:00Z" })).toBe(1761501604500);
    expect(serverTimeOf({ serverTimeUtc: "2025-10-26T18:00:04.500Z" })).toBe(1761501604500);
    expect(serverTimeOf({})).toBeNaN();
    expect(serverTimeOf(null)).toBeNaN();
  });

  it("formats an offset with its uncertainty", () => {
    expect(formatOffset(12.34, 0.4)).toBe("+12.3 ms ± 0.4 ms");
    expect(formatOffset(-250.4, 3)).toBe("−250 ms ± 3.0 ms");
    expect(formatOffset(65_000, 120)).toBe("+65.0 s ± 120 ms");
  });
});
