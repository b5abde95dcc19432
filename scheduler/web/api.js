// Talking to the booking API: follow a link ({ href, method }), send JSON, and turn the API's
// error body { error: { code, message, details } } into an ApiError. No URL is built here: every
// request goes to a link the API handed out (the entry point `/api` aside).

export const ENTRY_POINT = "/api";
const REQUEST_TIMEOUT_MS = 15_000;

export class ApiError extends Error {
  /**
   * @param {string} code the API's stable error code, or `network` / `timeout` / `bad_response`
   * @param {string} message
   * @param {number} status HTTP status, 0 when there was no answer
   */
  constructor(code, message, status, details, requestId, retryAfterMs) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.status = status;
    this.details = details;
    this.requestId = requestId;
    this.retryAfterMs = retryAfterMs;
  }

  /** Worth sending again (with the same Idempotency-Key): no answer, 503, 429, or the slot's lease busy right now. */
  get retryable() {
    return (
      this.code === "network" ||
      this.code === "timeout" ||
      this.status === 503 ||
      this.status === 429 ||
      this.code === "slot_busy" ||
      this.code === "lease_lost"
    );
  }
}

/**
 * Follows `link` and resolves to the parsed JSON answer (or null for an empty one).
 * Options: `apiKey` (Bearer), `body` (sent as JSON), `idempotencyKey`, `signal`, and `base`, the
 * URL a relative href is resolved against (the page's own address in a browser; outside one, the
 * API's address).
 */
export async function follow(link, { apiKey, body, idempotencyKey, signal, base } = {}) {
  if (!link || typeof link.href !== "string") throw new ApiError("no_link", "The API did not offer this action.", 0);
  const method = (link.method ?? "GET").toUpperCase();
  const headers = { accept: "application/json" };
  if (apiKey) headers.authorization = `Bearer ${apiKey}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  if (idempotencyKey) headers["idempotency-key"] = idempotencyKey;

  const timeout = new AbortController();
  const timer = setTimeout(() => timeout.abort(), REQUEST_TIMEOUT_MS);
  const onAbort = () => timeout.abort();
  signal?.addEventListener("abort", onAbort, { once: true });
  let response;
  try {
    const url = base === undefined ? link.href : new URL(link.href, base).toString();
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: timeout.signal,
      cache: "no-store",
    });
  } catch (error) {
    if (timeout.signal.aborted && !signal?.aborted) {
      throw new ApiError("timeout", `No answer from the server within ${REQUEST_TIMEOUT_MS / 1000} s.`, 0);
    }
    throw new ApiError("network", `Could not reach the server (${error?.message ?? error}).`, 0);
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }

  const requestId = response.headers.get("x-request-id") ?? undefined;
  const text = await response.text();
  let json = null;
  if (text !== "") {
    try {
      json = JSON.parse(text);
    } catch {
      if (response.ok)
        throw new ApiError("bad_response", `The server sent something that is not JSON (HTTP ${response.status}).`, response.status);
    }
  }
  if (!response.ok) {
    const error = json?.error;
    // Number(null) is 0: without the header there is no wait to obey (it used to mean "retry at once").
    const retryAfterHeader = response.headers.get("retry-after");
    const retryAfter = retryAfterHeader === null || retryAfterHeader.trim() === "" ? Number.NaN : Number(retryAfterHeader);
    throw new ApiError(
      typeof error?.code === "string" ? error.code : `http_${response.status}`,
      typeof error?.message === "string" ? error.message : `HTTP ${response.status} ${response.statusText}`.trim(),
      response.status,
      error?.details,
      requestId,
      Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter * 1000 : undefined,
    );
  }
  return json;
}

/** A random key for one click's Idempotency-Key (crypto.getRandomValues works on plain http too). */
export function randomKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** What to tell a person about an error: a heading by code, then the server's own message. */
export function describeError(error) {
  if (!(error instanceof ApiError)) return { title: "Something went wrong", message: String(error?.message ?? error) };
  const title = TITLES[error.code] ?? (error.status >= 500 ? "The server had a problem" : "The request was refused");
  const suffix = error.requestId ? ` (request ${error.requestId})` : "";
  return { title, message: `${error.message}${suffix}`, code: error.status > 0 ? error.code : undefined };
}

const TITLES = {
  invalid_request: "Some input is not valid",
  invalid_json: "The request was not valid JSON",
  unauthorized: "Your API key was not accepted",
  forbidden: "That is not yours",
  not_found: "Not found",
  slot_busy: "Someone else is booking this slot right now",
  slot_taken: "This slot is already booked",
  email_taken: "This email is already registered",
  already_cancelled: "Already cancelled",
  lease_lost: "The booking could not be completed in time; nothing was written",
  body_too_large: "The request is too large",
  unknown_telescope: "Unknown telescope",
  not_aligned: "Not on a slot boundary",
  empty_interval: "Empty interval",
  too_long: "Too many slots in one booking",
  in_the_past: "That slot has already started",
  beyond_horizon: "Too far ahead to book",
  already_started: "It has already started",
  rate_limited: "Too many requests; wait a moment",
  cluster_unavailable: "The booking cluster is not answering; try again",
  overloaded: "The booking service is busy; trying again shortly",
  network: "No connection to the server",
  timeout: "The server took too long",
  bad_response: "Unexpected answer from the server",
  no_link: "Not available",
  sign_in: "Sign in first",
};
