// Every error the booking API answers with has a stable code; this is the one table that maps
// codes to HTTP statuses (docs/API.md lists the same). Handlers throw ApiError; the error
// middleware turns it into `{ "error": { "code", "message", "details" } }`.
//
// The lock cluster's errors reach the booking API as LockErrors (client/errors.ts, whose codes
// are derived from the wire contract's table); clusterError maps each to one of these codes, in a
// switch the type checker holds exhaustive: a code added to the contract (or to the client) fails
// the type check here until it is given a meaning for the booking API's callers.

import { LockError } from "../client/lock-client.ts";

export const statusOfCode = {
  invalid_request: 400,
  invalid_json: 400,
  invalid_cursor: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  slot_busy: 409,
  slot_taken: 409,
  email_taken: 409,
  email_busy: 409,
  already_cancelled: 409,
  lease_lost: 409,
  body_too_large: 413,
  unsupported_media_type: 415,
  unknown_telescope: 422,
  not_aligned: 422,
  empty_interval: 422,
  too_long: 422,
  in_the_past: 422,
  beyond_horizon: 422,
  already_started: 422,
  idempotency_key_reused: 422,
  rate_limited: 429,
  internal: 500,
  cluster_unavailable: 503,
  booking_in_progress: 503,
  overloaded: 503,
} as const satisfies Record<string, number>;

export type ApiErrorCode = keyof typeof statusOfCode;

export class ApiError extends Error {
  readonly code: ApiErrorCode;
  readonly details: unknown;
  constructor(code: ApiErrorCode, message: string, details?: unknown) {
    super(message);
    this.name = "ApiError";
    this.code = code;
    this.details = details;
  }

  get status(): number {
    return statusOfCode[this.code];
  }
}

/**
 * clusterError maps a LockClient failure to the API's codes, one case per LockErrorCode (a new
 * code fails to compile here). A stale fencing token means the lease ran out before the write:
 * nothing was written, and the caller must decide again (no blind retry). The booking API checks
 * every input against the cluster's limits before passing it on (protocol/limits.ts), so a
 * cluster `invalid_request` is not expected; if one comes, it was still caused by what the caller
 * sent, and is the caller's 400, never a 500 (issue 14).
 */
export function clusterError(error: unknown, what: string): ApiError {
  if (error instanceof ApiError) return error;
  if (!(error instanceof LockError)) return new ApiError("internal", `${what}: ${(error as Error).message ?? String(error)}`);
  const code = error.code;
  switch (code) {
    case "conflict":
    case "wait_timeout":
      return new ApiError("slot_busy", `${what}: another request holds the lease right now; try again`);
    case "stale_fencing_token":
    case "not_held":
    case "lease_expired": // Refused by the client before sending: the lease's local deadline passed.
      return new ApiError(
        "lease_lost",
        `${what}: the lease ran out before the write (the scheduler paused or the cluster failed over); nothing was written`,
      );
    case "invalid_request":
      return new ApiError("invalid_request", `${what}: the lock cluster refused the request as invalid (${error.message})`);
    // The cluster shed the request (its admission limit) even after the client's retries, each
    // after the wait the node asked for: the caller is asked to wait as long in turn.
    case "overloaded": {
      const asked = error.details?.["retryAfterMs"];
      const retryAfterMs = typeof asked === "number" && Number.isFinite(asked) && asked >= 0 ? asked : 1000;
      return new ApiError("overloaded", `${what}: the lock cluster is overloaded; retry in ${retryAfterMs} ms`, { retryAfterMs });
    }
    case "too_many_waiters":
    case "too_many_watchers":
    case "events_compacted":
    case "timeout":
    case "unavailable":
    case "aborted":
    case "session_expired":
    case "stale_sequence":
      return new ApiError("cluster_unavailable", `${what}: the lock cluster did not answer in time (${error.message}); retry`);
    // A node's own failure, a refusal the booking API never provokes (it changes no membership,
    // and always sends JSON), or a code this scheduler does not know (a newer node's): the cluster
    // could not serve the request now, and another attempt may meet a node that can. The node's
    // code is named in the message, never passed off as another.
    case "internal":
    case "unsupported_media_type":
    case "learner_not_caught_up":
    case "credential_exists":
    case "unknown_credential":
    case "too_many_credentials":
    case "unknown":
      return new ApiError("cluster_unavailable", `${what}: the lock cluster could not serve the request (${clusterCodeOf(error)}); retry`);
    // The scheduler's own setup is wrong (its cluster token, revoked or of a role below locker, a
    // node that lacks an endpoint, or a node that answers outside the wire contract: another
    // version): nothing the caller can fix or retry, so it is the server's error.
    case "unauthorized":
    case "forbidden":
    case "not_found":
    case "invalid_answer":
      return new ApiError("internal", `${what}: the lock cluster refused the scheduler (${code}: ${error.message})`);
    default: {
      const unknown: never = code;
      return new ApiError("internal", `${what}: unexpected lock cluster error ${String(unknown)}`);
    }
  }
}

/** clusterCodeOf names a LockError for a message: its code, and the node's own code where that differs. */
function clusterCodeOf(error: LockError): string {
  const nodeCode = error.nodeCode;
  return nodeCode === undefined || nodeCode === error.code ? error.code : `${error.code}, node code ${nodeCode}`;
}
