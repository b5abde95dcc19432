// The stored shapes (docs/MODELS.md) and their keys in the cluster's key-value store, plus the
// audit record in the lab's JSON shape (docs/LOGGING.md). One place, so keys never drift.

import { hash, randomFillSync } from "node:crypto";

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
