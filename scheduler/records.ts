// The stored shapes (docs/MODELS.md) and their keys in the cluster's key-value store, plus the
// audit record in the lab's JSON shape (docs/LOGGING.md). One place, so keys never drift.

import { hash, randomFillSync } from "node:crypto";
import { LockError } from "./cluster.ts";
import { ApiError } from "./errors.ts";

export interface Scientist {
  readonly id: string;
  readonly name: string;
  readonly email: string;
  readonly institution?: string;
  readonly keyHash: string;
  readonly createdAtUtc: string;
}

export type BookingStatus = "confirmed" | "cancelled";

export interface StoredBooking {
  readonly id: string;
  readonly telescopeId: string;
  readonly scientistId: string;
  readonly startUtc: string;
  readonly endUtc: string;
  readonly slots: readonly string[];
  readonly status: BookingStatus;
  readonly requestedAtUtc: string;
  readonly receivedAtUtc: string;
  readonly createdAtUtc: string;
  readonly fencingToken: string;
  /** order is copied in when the booking is rewritten (cancelled); until then it is the key's modIndex. */
  readonly order?: number;
  readonly cancelledAtUtc?: string;
}

/** Booking is a stored booking with its place in the global order resolved. */
export interface Booking extends StoredBooking {
  readonly order: number;
  readonly cancelOrder?: number;
}

export const keys = {
  scientist: (id: string) => `scientist/${id}`,
  scientistEmail: (email: string) => `scientist-email/${sha256Hex(email.toLowerCase())}`,
  booking: (id: string) => `booking/${id}`,
  dayPrefix: (telescopeId: string, day?: string) => `day/${telescopeId}/${day === undefined ? "" : `${day}/`}`,
  day: (booking: StoredBooking) => `day/${booking.telescopeId}/${booking.startUtc.slice(0, 10)}/${booking.startUtc}/${booking.id}`,
  scientistPrefix: (scientistId: string, day?: string) => `sci/${scientistId}/${day ?? ""}`,
  scientistBooking: (booking: StoredBooking) => `sci/${booking.scientistId}/${booking.startUtc}/${booking.id}`,
  slotPrefix: (telescopeId: string) => `slot/${telescopeId}/`,
  slot: (telescopeId: string, slotStartUtc: string) => `slot/${telescopeId}/${slotStartUtc}`,
  auditChain: "audit",
  auditPrefix: "~chain/audit/",
};

/** resolveBooking turns a stored booking and its key's modIndex into the booking with its order. */
export function resolveBooking(stored: StoredBooking, modIndex: number): Booking {
  if (stored.status === "cancelled") return { ...stored, order: stored.order ?? modIndex, cancelOrder: modIndex };
  return { ...stored, order: stored.order ?? modIndex };
}

export function parseStoredBooking(value: string): StoredBooking {
  return JSON.parse(value) as StoredBooking;
}

export type AuditEventType = "BOOKING_CREATED" | "BOOKING_CANCELLED" | "SCIENTIST_REGISTERED";

/** AuditRecord is the lab's audit shape (docs/LOGGING.md). */
export interface AuditRecord {
  readonly timestamp_utc: string;
  readonly level: "AUDIT";
  readonly event_type: AuditEventType;
  readonly service: string;
  readonly request_id: string;
  readonly details: Record<string, unknown>;
}

export function bookingAudit(
  eventType: "BOOKING_CREATED" | "BOOKING_CANCELLED",
  booking: StoredBooking,
  context: { nowUtc: string; service: string; requestId: string; fencingToken: string },
): AuditRecord {
  return {
    timestamp_utc: context.nowUtc,
    level: "AUDIT",
    event_type: eventType,
    service: context.service,
    request_id: context.requestId,
    details: {
      booking_id: booking.id,
      scientist_id: booking.scientistId,
      telescope_id: booking.telescopeId,
      start_utc: booking.startUtc,
      end_utc: booking.endUtc,
      ...(eventType === "BOOKING_CREATED" ? { requested_at_utc: booking.requestedAtUtc } : {}),
      fencing_token: context.fencingToken,
    },
  };
}

/** sha256Hex: crypto.hash is the one-shot form, cheaper than a Hash object for short texts (one per authenticated request). */
export function sha256Hex(text: string): string {
  return hash("sha256", text, "hex");
}

/** randomPool holds CSPRNG bytes handed out once each: one randomFillSync per 4 KiB costs less than a randomBytes per id. */
const randomPool = Buffer.alloc(4096);
let randomPoolOffset = randomPool.length;

/** randomHex is `bytes` (at most 4096) fresh random bytes as hex, for ids (never for secrets: those are not pooled). */
export function randomHex(bytes: number): string {
  if (randomPoolOffset + bytes > randomPool.length) {
    randomFillSync(randomPool);
    randomPoolOffset = 0;
  }
  const text = randomPool.toString("hex", randomPoolOffset, randomPoolOffset + bytes);
  randomPoolOffset += bytes;
  return text;
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
    case "too_many_waiters":
    case "too_many_watchers":
    case "events_compacted":
    case "timeout":
    case "unavailable":
    case "aborted":
    case "session_expired":
    case "stale_sequence":
      return new ApiError("cluster_unavailable", `${what}: the lock cluster did not answer in time (${error.message}); retry`);
    // The scheduler's own setup is wrong (its cluster token, or a node that lacks an endpoint):
    // nothing the caller can fix or retry, so it is the server's error.
    case "unauthorized":
    case "not_found":
      return new ApiError("internal", `${what}: the lock cluster refused the scheduler (${code}: ${error.message})`);
    default: {
      const unknown: never = code;
      return new ApiError("internal", `${what}: unexpected lock cluster error ${String(unknown)}`);
    }
  }
}
