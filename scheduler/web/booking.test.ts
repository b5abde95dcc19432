// booking.js, the client logic the page and the rush benchmark share, against a scripted server
// (fetch replaced): one click's retries all carry its Idempotency-Key; what may not be decided is
// sent again, what is decided is not; Retry-After is obeyed within a bound; a request a moment too
// early waits for the opening by the synchronised clock. These checks failed with each bug planted
// in booking.js (then removed): a new key for each attempt; slot_taken sent again; Retry-After
// ignored; a too-early request sent again at once instead of at the opening. They also found a bug
// in api.js: an answer without Retry-After read as "retry after 0 s", so the page retried at once.

import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiError } from "./api.js";
import { mayNotBeDecided, newClick, RETRY_WAIT_MAX_MS, ServerClock, sendBooking, waitBeforeRetryMs } from "./booking.js";

interface Sent {
  url: string;
  headers: Record<string, string>;
  body: unknown;
}

/** script replaces fetch with answers given in order; it records what was sent. */
function script(answers: (Response | Error)[]): Sent[] {
  const sent: Sent[] = [];
  vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
    sent.push({ url, headers: init.headers as Record<string, string>, body: JSON.parse(String(init.body)) });
    const answer = answers.shift();
    if (answer === undefined) throw new Error("no more scripted answers");
    if (answer instanceof Error) throw answer;
    return answer;
  });
  return sent;
}

function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } });
}

const refused = (status: number, code: string, details?: unknown) => json(status, { error: { code, message: code, details } });
const booked = () => json(201, { id: "bk_1", startUtc: "2026-12-08T03:00:00Z" });
const link = { href: "/bookings", method: "POST" };
const range = { telescopeId: "hubble-acad", startUtc: "2026-12-08T03:00:00Z", endUtc: "2026-12-08T03:15:00Z" };
const fixedClock = (nowMs: number) => ({ now: () => nowMs }) as unknown as ServerClock;

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("sendBooking", () => {
  it("sends a click again after no answer, 503 and slot_busy, always with its one key, and stops at the first decided answer", async () => {
    const sent = script([new TypeError("socket hang up"), refused(503, "cluster_unavailable"), booked()]);
    const waits: number[] = [];
    const click = newClick(range, fixedClock(0));
    const booking = await sendBooking({
      link,
      click,
      apiKey: "sk",
      base: "http://127.0.0.1:1",
      attemptsMax: 5,
      sleep: async (ms) => waits.push(ms),
      random: () => 0,
    });
    expect(booking.id).toBe("bk_1");
    expect(sent).toHaveLength(3);
    expect(new Set(sent.map((request) => request.headers["idempotency-key"]))).toEqual(new Set([click.idempotencyKey]));
    expect(sent.every((request) => JSON.stringify(request.body) === JSON.stringify(click.body))).toBe(true);
    expect(sent[0]?.url).toBe("http://127.0.0.1:1/bookings");
    expect(waits).toEqual([250, 500]); // 250 ms × 2^attempt, jitter at its low end

    const busy = script([refused(409, "slot_busy"), refused(409, "slot_taken", { alternatives: [] })]);
    const error = await sendBooking({ link, click: newClick(range, fixedClock(0)), apiKey: "sk", sleep: async () => undefined }).catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe("slot_taken");
    expect(busy).toHaveLength(2);
  });

  it("gives up after attemptsMax, with the last error", async () => {
    const sent = script([refused(503, "cluster_unavailable"), refused(503, "cluster_unavailable"), refused(503, "cluster_unavailable")]);
    const error = await sendBooking({ link, click: newClick(range, fixedClock(0)), apiKey: "sk", sleep: async () => undefined }).catch(
      (caught: unknown) => caught,
    );
    expect((error as ApiError).code).toBe("cluster_unavailable");
    expect(sent).toHaveLength(3);
  });

  it("obeys Retry-After, but never waits longer than RETRY_WAIT_MAX_MS", async () => {
    script([
      json(429, { error: { code: "rate_limited", message: "slow down" } }, { "retry-after": "2" }),
      json(503, { error: { code: "booking_in_progress", message: "wait" } }, { "retry-after": "60" }),
      booked(),
    ]);
    const obeyed: number[] = [];
    await sendBooking({ link, click: newClick(range, fixedClock(0)), apiKey: "sk", sleep: async (ms) => obeyed.push(ms) });
    expect(obeyed).toEqual([2_000, RETRY_WAIT_MAX_MS]);
  });

  it("sends a request refused as a moment too early again at the opening, by the synchronised clock; not one refused days early", async () => {
    const opensAtMs = Date.parse("2026-11-08T12:00:00Z");
    const clock = fixedClock(opensAtMs - 40);
    (clock as unknown as { estimate: unknown }).estimate = { uncertaintyMs: 6 };
    const sent = script([refused(422, "beyond_horizon", { opensAtUtc: "2026-11-08T12:00:00Z" }), booked()]);
    const waits: number[] = [];
    await sendBooking({ link, click: newClick(range, clock), apiKey: "sk", clock, sleep: async (ms) => waits.push(ms) });
    expect(sent).toHaveLength(2);
    expect(waits).toEqual([40 + 3 + 1]); // until the opening, plus half the clock's uncertainty, plus 1 ms
    const far = fixedClock(opensAtMs - 3 * 86_400_000);
    const tooEarly = new ApiError("beyond_horizon", "later", 422, { opensAtUtc: "2026-11-08T12:00:00Z" });
    expect(waitBeforeRetryMs(tooEarly, 1, far)).toBeUndefined();
    expect(waitBeforeRetryMs(new ApiError("beyond_horizon", "later", 422, {}), 1, clock)).toBeUndefined();
  });
});

describe("mayNotBeDecided", () => {
  it("keeps a click whose booking may exist unknown to the page (no answer, 503), and only those", () => {
    const open = [
      new ApiError("network", "x", 0),
      new ApiError("timeout", "x", 0),
      new ApiError("cluster_unavailable", "x", 503),
      new ApiError("booking_in_progress", "x", 503),
    ];
    const decided = [
      new ApiError("slot_busy", "x", 409),
      new ApiError("slot_taken", "x", 409),
      new ApiError("lease_lost", "x", 409),
      new ApiError("rate_limited", "x", 429),
      new ApiError("beyond_horizon", "x", 422),
    ];
    expect(open.map(mayNotBeDecided)).toEqual([true, true, true, true]);
    expect(decided.map(mayNotBeDecided)).toEqual([false, false, false, false, false]);
  });
});

describe("ServerClock", () => {
  it("adds the best sample's offset to the local clock", async () => {
    let local = 1_000;
    const answers = [
      { delayMs: 30, serverMs: 50_000 },
      { delayMs: 10, serverMs: 60_000 }, // the best: rtt 10, so the server was at 60_005 when it arrived
      { delayMs: 20, serverMs: 70_000 },
    ];
    const clock = new ServerClock({
      localNow: () => local,
      samples: 3,
      fetchServerTimeMs: async () => {
        const answer = answers.shift() as { delayMs: number; serverMs: number };
        local += answer.delayMs;
        return answer.serverMs;
      },
    });
    expect(clock.now()).toBe(1_000); // the local clock until the first sync
    const estimate = await clock.sync();
    expect(estimate).toMatchObject({ offsetMs: 60_005 - 1_040, uncertaintyMs: 5, rttMs: 10, samples: 3, syncedAtLocalMs: 1_060 });
    expect(clock.now()).toBe(1_060 + 60_005 - 1_040);
  });
});
