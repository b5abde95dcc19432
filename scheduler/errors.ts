// Every error the booking API answers with has a stable code; this is the one table that maps
// codes to HTTP statuses (docs/API.md lists the same). Handlers throw ApiError; the error
// middleware turns it into `{ "error": { "code", "message", "details" } }`.

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
