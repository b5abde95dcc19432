// LockError: every failure LockClient reports, with a stable code. Branch on `error.code`, not on
// classes (two copies of a package make two classes).

/** LockErrorCode: the stable codes every LockClient error carries. Branch on these, not on classes. */
export type LockErrorCode =
  | "conflict"
  | "not_held"
  | "stale_fencing_token"
  | "wait_timeout"
  | "invalid_request"
  | "unauthorized"
  | "session_expired"
  | "stale_sequence"
  | "too_many_waiters"
  | "too_many_watchers"
  | "events_compacted"
  | "not_found"
  | "timeout"
  | "unavailable"
  | "aborted"
  /** lease_expired: refused locally, nothing sent: the lease's local validity ended (or it was reported lost). */
  | "lease_expired";

export class LockError extends Error {
  readonly code: LockErrorCode;
  /** holder: for `conflict`, who holds the resource (its token is a decimal string). */
  readonly holder: { resource: string; token: string; owner: string } | undefined;
  /** details: the node's error details, e.g. `{ oldestIndex }` for `events_compacted`. */
  readonly details: Record<string, unknown> | undefined;
  constructor(
    code: LockErrorCode,
    message: string,
    options?: { cause?: unknown; holder?: LockError["holder"]; details?: Record<string, unknown> },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "LockError";
    this.code = code;
    this.holder = options?.holder;
    this.details = options?.details;
  }
}
