// Clock synchronisation by Cristian's algorithm: the pure math, with no DOM and no network of its
// own, so that `clock.test.ts` can check it with made-up numbers.
//
// One sample: the client notes its clock when it sends `GET /time` (sentAtMs) and when the answer
// arrives (receivedAtMs); the server put its clock in the answer (serverTimeMs). The answer took
// somewhere between 0 and rtt to come back, so the server's clock at receivedAtMs was
// serverTimeMs + rtt / 2, within ± rtt / 2. The sample with the smallest round trip is the most
// precise, so several are taken and the best is kept.

/** Round trip of one sample, in ms (never negative). */
export function roundTripMs(sample) {
  return Math.max(0, sample.receivedAtMs - sample.sentAtMs);
}

/** Server clock minus local clock, in ms, from one sample: serverTimeMs + rtt / 2 - receivedAtMs. */
export function offsetMs(sample) {
  return sample.serverTimeMs + roundTripMs(sample) / 2 - sample.receivedAtMs;
}

/**
 * The sample with the smallest round trip (the first of equals), or undefined when there is none.
 * Samples whose numbers are not finite, or whose answer came before the question, are ignored.
 */
export function bestSample(samples) {
  let best;
  for (const sample of samples) {
    if (!isUsable(sample)) continue;
    if (best === undefined || roundTripMs(sample) < roundTripMs(best)) best = sample;
  }
  return best;
}

function isUsable(sample) {
  return (
    sample !== null &&
    typeof sample === "object" &&
    Number.isFinite(sample.sentAtMs) &&
    Number.isFinite(sample.receivedAtMs) &&
    Number.isFinite(sample.serverTimeMs) &&
    sample.receivedAtMs >= sample.sentAtMs
  );
}

/**
 * The estimate from a set of samples: { offsetMs, uncertaintyMs, rttMs, samples (how many were
 * usable) }, or undefined when none was usable. The local clock plus offsetMs is the server's clock,
 * within ± uncertaintyMs (half the best round trip).
 */
export function estimate(samples) {
  const best = bestSample(samples);
  if (best === undefined) return undefined;
  const rtt = roundTripMs(best);
  return { offsetMs: offsetMs(best), uncertaintyMs: rtt / 2, rttMs: rtt, samples: samples.filter(isUsable).length };
}

/** The server's time in a `GET /time` answer, in ms since the epoch: serverTimeMs, else serverTimeUtc. */
export function serverTimeOf(body) {
  if (body !== null && typeof body === "object") {
    if (Number.isFinite(body.serverTimeMs)) return body.serverTimeMs;
    if (typeof body.serverTimeUtc === "string") {
      const parsed = Date.parse(body.serverTimeUtc);
      if (Number.isFinite(parsed)) return parsed;
    }
  }
  return Number.NaN;
}

/**
 * Takes `count` samples one after another and returns the estimate (see `estimate`).
 * `fetchServerTimeMs()` resolves to the server's time in ms; `now()` is the local clock in ms.
 * A sample that fails is skipped; if every one fails, the last error is thrown.
 */
export async function synchronise(fetchServerTimeMs, now, count = 8) {
  const samples = [];
  let lastError;
  for (let i = 0; i < count; i += 1) {
    const sentAtMs = now();
    try {
      const serverTimeMs = await fetchServerTimeMs();
      samples.push({ sentAtMs, receivedAtMs: now(), serverTimeMs });
    } catch (error) {
      lastError = error;
    }
  }
  const result = estimate(samples);
  if (result === undefined) throw lastError ?? new Error("no usable time sample");
  return result;
}

/** "+12.3 ms ± 0.4 ms": an offset and its uncertainty for people. */
export function formatOffset(offset, uncertainty) {
  const sign = offset < 0 ? "−" : "+";
  return `${sign}${formatMs(Math.abs(offset))} ± ${formatMs(uncertainty)}`;
}

function formatMs(ms) {
  if (ms >= 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms >= 100) return `${Math.round(ms)} ms`;
  return `${ms.toFixed(1)} ms`;
}
