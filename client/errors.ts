// LockError: every failure LockClient reports, with a stable code. Branch on `error.code`, not on
// classes (two copies of a package make two classes).
//
// A node answers an error with a code from the wire contract's table (protocol/errors.ts).
// lockErrorCodeOf says what each of them becomes here, and must name every one: a code added to
// the contract fails the type check here until it is given a meaning. A code that is not in the
// table (a newer node's) becomes `unknown`, with the node's code kept in `nodeCode`: it is never
// passed off as another.

import { type ErrorAnswer, type ErrorCode, errorAnswerSchema, type Holder, isErrorCode } from "../protocol/errors.ts";

/**
 * lockErrorCodeOf maps each code a node may answer with to the LockError code it becomes. Most
 * keep their name. Two families are folded, because a caller acts on them alike: every 503 but
 * one ("the cluster cannot serve this right now": no leader, leadership moving, the node
 * stopping) is `unavailable`, as is a node that cannot be reached; and a request the node found
 * malformed (`invalid_command`, `payload_too_large`) is `invalid_request`. `overloaded` keeps its
 * name: it asks the caller to slow down (its `details.retryAfterMs`), not to look for another
 * node, and a service built on the client passes that on (the booking API's own 503 overloaded).
 * The node's own code is kept in `LockError.nodeCode`.
 */
export const lockErrorCodeOf = {
  conflict: "conflict",
  not_held: "not_held",
  stale_fencing_token: "stale_fencing_token",
  wait_timeout: "wait_timeout",
  stale_sequence: "stale_sequence",
  session_expired: "session_expired",
  too_many_waiters: "too_many_waiters",
  invalid_command: "invalid_request",
  unauthorized: "unauthorized",
  forbidden: "forbidden",
  credential_exists: "credential_exists",
  unknown_credential: "unknown_credential",
  too_many_credentials: "too_many_credentials",
  too_many_watchers: "too_many_watchers",
  events_compacted: "events_compacted",
  not_leader: "unavailable",
  proposal_dropped: "unavailable",
  leadership_lost: "unavailable",
  shutting_down: "unavailable",
  overloaded: "overloaded",
  disk_full: "unavailable",
  timeout: "timeout",
  invalid_request: "invalid_request",
  not_found: "not_found",
  payload_too_large: "invalid_request",
  unsupported_media_type: "unsupported_media_type",
  learner_not_caught_up: "learner_not_caught_up",
  no_leader: "unavailable",
  internal: "internal",
} as const satisfies Record<ErrorCode, string>;

/**
 * LockErrorCode: the stable codes every LockClient error carries. Branch on these, not on classes.
 * Those a node answers with are lockErrorCodeOf's; the others arise in the client itself.
 */
export type LockErrorCode =
  | (typeof lockErrorCodeOf)[ErrorCode]
  /** unavailable: no node could be reached (or every answer was a 503) within the retries. */
  | "unavailable"
  /** timeout: an attempt got no answer in time (or the call's deadline passed). */
  | "timeout"
  /** aborted: the caller's AbortSignal ended the call. */
  | "aborted"
  /** lease_expired: refused locally, nothing sent: the lease's local validity ended (or it was reported lost). */
  | "lease_expired"
  /** unknown: a node answered a code this client does not know (in `nodeCode`), or an error without a code. */
  | "unknown"
  /** invalid_answer: a node's success answer does not fit the wire contract; whether the request took effect is unknown. */
  | "invalid_answer";

/** lockErrorCodes lists every LockErrorCode once, for tables that must cover them all (tests, the booking API's map). */
export const lockErrorCodes: readonly LockErrorCode[] = [
  ...new Set<LockErrorCode>([
    ...Object.values(lockErrorCodeOf),
    "unavailable",
    "timeout",
    "aborted",
    "lease_expired",
    "unknown",
    "invalid_answer",
  ]),
];

export class LockError extends Error {
  readonly code: LockErrorCode;
  /** holder: for `conflict`, who holds the resource (its token is a decimal string). */
  readonly holder: Holder | undefined;
  /** details: the node's error details, e.g. `{ oldestIndex }` for `events_compacted`. */
  readonly details: Record<string, unknown> | undefined;
  /** nodeCode: the code the node answered with, verbatim (for `unknown`, one that is not in the contract); undefined when no node answered. */
  readonly nodeCode: string | undefined;
  /** status: the HTTP status of the node's answer; undefined when no node answered. */
  readonly status: number | undefined;
  constructor(
    code: LockErrorCode,
    message: string,
    options?: {
      cause?: unknown;
      holder?: Holder;
      details?: Record<string, unknown>;
      nodeCode?: string;
      status?: number;
    },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "LockError";
    this.code = code;
    this.holder = options?.holder;
    this.details = options?.details;
    this.nodeCode = options?.nodeCode;
    this.status = options?.status;
  }
}

/**
 * lockErrorFromAnswer turns a node's error answer (status ≥ 400) into a LockError: a contract code
 * by lockErrorCodeOf, any other code as `unknown`. An answer without the error shape is not the
 * contract's either; it is judged by its status alone (400 and 413 are the request's fault,
 * anything else `unknown`).
 */
export function lockErrorFromAnswer(status: number, body: unknown): LockError {
  const parsed = errorAnswerSchema.safeParse(body);
  if (!parsed.success) {
    const code = status === 400 || status === 413 ? "invalid_request" : "unknown";
    return new LockError(code, `HTTP ${status} without an error code`, { status });
  }
  const error: ErrorAnswer["error"] = parsed.data.error;
  const known = isErrorCode(error.code);
  const details = error.details;
  return new LockError(
    known ? lockErrorCodeOf[error.code as ErrorCode] : "unknown",
    known ? error.message : `${error.code}: ${error.message}`,
    {
      nodeCode: error.code,
      status,
      ...(error.holder === undefined ? {} : { holder: error.holder }),
      ...(details !== null && typeof details === "object" && !Array.isArray(details)
        ? { details: details as Record<string, unknown> }
        : {}),
    },
  );
}
