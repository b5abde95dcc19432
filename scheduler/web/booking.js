// The booking page's client logic, free of the DOM, so that the page (app.js) and the horizon rush
// benchmark (bench/rush.ts, which plays a thousand scientists with it) run the same code:
//
// - ServerClock: the server's clock by Cristian's algorithm (clock.js) over the `time` link;
// - newClick: one click's booking request, with its Idempotency-Key and the synchronised time;
// - sendBooking: sends it, and sends it again while its outcome is unknown or the slot is only
//   busy, always with the same key, so that it can never book twice; a request that arrived a
//   moment before its slots opened (beyond_horizon with details.opensAtUtc) waits for the opening
//   and asks again.

import { ApiError, follow, randomKey } from "./api.js";
import { serverTimeOf, synchronise } from "./clock.js";

export const CLOCK_SAMPLES = 8;
export const BOOK_ATTEMPTS_MAX = 3;
/** RETRY_WAIT_MAX_MS bounds one wait between attempts (Retry-After included). */
export const RETRY_WAIT_MAX_MS = 5_000;
/** EARLY_TOLERANCE_MS: a request refused as too early is sent again at the opening only if the opening is this close. */
export const EARLY_TOLERANCE_MS = 2_000;

/** The local clock, ms since the epoch: monotonic, so a jump of the computer's wall clock does not move it. */
export function monotonicNow() {
  return performance.timeOrigin + performance.now();
}

/**
 * ServerClock is the server's clock as Cristian's algorithm knows it: the local clock plus the
 * offset of the best of `samples` round trips to the `time` link (the local clock until the first
 * sync). `estimate` is { offsetMs, uncertaintyMs, rttMs, samples, syncedAtLocalMs }.
 */
export class ServerClock {
  /**
   * @param {object} options
   * @param {() => number} [options.localNow] the local clock in ms (default: monotonicNow)
   * @param {() => Promise<number>} options.fetchServerTimeMs one `GET /time`, resolving to the server's time in ms
   * @param {number} [options.samples]
   */
  constructor({ localNow = monotonicNow, fetchServerTimeMs, samples = CLOCK_SAMPLES }) {
    this.localNow = localNow;
    this.fetchServerTimeMs = fetchServerTimeMs;
    this.samples = samples;
    this.estimate = undefined;
  }

  /** ServerClock.overLink makes a clock that samples the API's `time` link. */
  static overLink(timeLink, options = {}) {
    return new ServerClock({ ...options, fetchServerTimeMs: async () => serverTimeOf(await follow(timeLink, { base: options.base })) });
  }

  async sync() {
    const result = await synchronise(this.fetchServerTimeMs, this.localNow, this.samples);
    this.estimate = { ...result, syncedAtLocalMs: this.localNow() };
    return this.estimate;
  }

  now() {
    return this.localNow() + (this.estimate?.offsetMs ?? 0);
  }
}

/**
 * newClick is one click's booking: the body for POST /bookings, stamped with the synchronised
 * time, and a new Idempotency-Key (128 random bits). Keep it while its outcome is unknown: sending
 * it again, even from a later click, cannot book twice.
 */
export function newClick({ telescopeId, startUtc, endUtc }, clock) {
  return {
    idempotencyKey: randomKey(),
    body: { telescopeId, startUtc, endUtc, requestedAtUtc: new Date(clock.now()).toISOString() },
  };
}

/**
 * mayNotBeDecided: an error after which the booking may exist without the client knowing: no
 * answer, a timeout, or a 503 (the cluster may have written before it stopped answering; an
 * earlier attempt with the key is still being decided). Such a click is kept, and sent again with
 * its key. A 409, 422 or 429 says nothing was booked: the next click may use a new key.
 */
export function mayNotBeDecided(error) {
  return error instanceof ApiError && (error.code === "network" || error.code === "timeout" || error.status === 503);
}

/**
 * sendBooking sends a click's booking to the `book` link and resolves to the booking, or rejects
 * with the last ApiError. Sent at most `attemptsMax` times, always with the click's key: again
 * after an error that leaves the outcome open or the slot only busy (backoff with jitter, or the
 * server's Retry-After, at most RETRY_WAIT_MAX_MS), and again at the opening when the server says
 * the range opens within EARLY_TOLERANCE_MS.
 *
 * Options: `link` (the `book` link), `click`, `apiKey`, `clock` (a ServerClock), `base` (for a
 * relative href outside a browser), `sleep(ms)`, `random()`, `attemptsMax`, `onAttempt({ attempt,
 * error })` (called after each failed attempt).
 */
export function sendBooking({ link, click, apiKey, base, ...retry }) {
  return withRetries(() => follow(link, { apiKey, body: click.body, idempotencyKey: click.idempotencyKey, base }), retry);
}

/**
 * withRetries runs `attempt` until it resolves, or rejects with an error that must not be sent
 * again (waitBeforeRetryMs), or `attemptsMax` attempts have failed. For any request whose repeat
 * is safe: a booking with its Idempotency-Key, a cancellation (a repeat answers already_cancelled).
 */
export async function withRetries(
  attempt,
  {
    clock,
    sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    random = Math.random,
    attemptsMax = BOOK_ATTEMPTS_MAX,
    onAttempt,
  } = {},
) {
  for (let count = 1; ; count += 1) {
    try {
      return await attempt();
    } catch (error) {
      onAttempt?.({ attempt: count, error });
      const wait = waitBeforeRetryMs(error, count, clock, random);
      if (wait === undefined || count >= attemptsMax) throw error;
      await sleep(wait);
    }
  }
}

/** waitBeforeRetryMs: how long to wait before sending a failed attempt again, or undefined when it must not be sent again. */
export function waitBeforeRetryMs(error, attempt, clock, random = Math.random) {
  if (!(error instanceof ApiError)) return undefined;
  if (error.code === "beyond_horizon") {
    const opensAtMs = Date.parse(error.details?.opensAtUtc ?? "");
    if (!Number.isFinite(opensAtMs) || clock === undefined) return undefined;
    const untilMs = opensAtMs - clock.now();
    if (untilMs > EARLY_TOLERANCE_MS) return undefined;
    // Arrive just after the opening: half the clock's uncertainty late, at least 1 ms.
    return Math.max(1, Math.ceil(untilMs + (clock.estimate?.uncertaintyMs ?? 0) / 2 + 1));
  }
  if (!error.retryable) return undefined;
  const backoff = 250 * 2 ** attempt * (0.5 + random() / 2);
  return Math.min(error.retryAfterMs ?? backoff, RETRY_WAIT_MAX_MS);
}
