// Slot arithmetic for telescopes: slots start at midnight UTC and follow each other every
// `slotMinutes`. Pure functions over epoch milliseconds, so the rules are testable without a clock.

export interface Telescope {
  readonly id: string;
  readonly name: string;
  readonly slotMinutes: number;
  readonly horizonDays: number;
  /**
   * horizonBlockMinutes: slots open for booking in blocks this long, aligned on midnight UTC; a
   * block opens all at once, horizonDays before it starts (1440 opens a whole day at midnight).
   * Absent, the block is one slot: the horizon rolls forward slot by slot.
   */
  readonly horizonBlockMinutes?: number;
  readonly slotsPerBookingMax: number;
}

const minuteMs = 60_000;
const dayMs = 24 * 60 * minuteMs;

/** isoUtc formats a slot time without milliseconds: `2025-12-01T03:00:00Z`. */
export function isoUtc(epochMs: number): string {
  return `${new Date(epochMs).toISOString().slice(0, 19)}Z`;
}

/** dayOf is the UTC day (`YYYY-MM-DD`) an instant falls on. */
export function dayOf(epochMs: number): string {
  return new Date(epochMs).toISOString().slice(0, 10);
}

/** parseDay turns `YYYY-MM-DD` into the epoch ms of its midnight UTC, or undefined when it is no real day. */
export function parseDay(day: string): number | undefined {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) return undefined;
  const epochMs = Date.parse(`${day}T00:00:00Z`);
  return Number.isNaN(epochMs) || dayOf(epochMs) !== day ? undefined : epochMs;
}

export function addDays(day: string, days: number): string {
  return dayOf((parseDay(day) ?? 0) + days * dayMs);
}

/** slotStartsOfDay lists every slot start of a day. */
export function slotStartsOfDay(telescope: Telescope, day: string): number[] {
  const midnight = parseDay(day);
  if (midnight === undefined) return [];
  const slotMs = telescope.slotMinutes * minuteMs;
  return Array.from({ length: dayMs / slotMs }, (_, position) => midnight + position * slotMs);
}

/**
 * opensAtMs is when a slot becomes bookable: horizonDays before the start of its horizon block.
 * For every slot of one block it is the same instant, which is when the horizon rush happens.
 */
export function opensAtMs(telescope: Telescope, slotStartMs: number): number {
  const blockMs = (telescope.horizonBlockMinutes ?? telescope.slotMinutes) * minuteMs;
  return Math.floor(slotStartMs / blockMs) * blockMs - telescope.horizonDays * dayMs;
}

/** SlotRuleViolation is a stable code for a booking interval the rules refuse (HTTP 422). */
export type SlotRuleViolation = "not_aligned" | "empty_interval" | "too_long" | "in_the_past" | "beyond_horizon";

/**
 * slotsOf checks a requested interval against the telescope's rules at `nowMs` and returns the
 * start of every slot it covers, or the rule it breaks with a message for people.
 */
export function slotsOf(
  telescope: Telescope,
  startMs: number,
  endMs: number,
  nowMs: number,
): { slots: number[] } | { violation: SlotRuleViolation; message: string; opensAtMs?: number } {
  const slotMs = telescope.slotMinutes * minuteMs;
  if (startMs % slotMs !== 0 || endMs % slotMs !== 0) {
    return { violation: "not_aligned", message: `start and end must fall on ${telescope.slotMinutes}-minute slot boundaries (UTC)` };
  }
  if (endMs <= startMs) return { violation: "empty_interval", message: "endUtc must be after startUtc" };
  const count = (endMs - startMs) / slotMs;
  if (count > telescope.slotsPerBookingMax) {
    return { violation: "too_long", message: `a booking covers at most ${telescope.slotsPerBookingMax} slots; this one covers ${count}` };
  }
  if (startMs <= nowMs) return { violation: "in_the_past", message: `the slot at ${isoUtc(startMs)} has already started` };
  // Every slot must be open, not just the first: a range reaching past the horizon would take
  // slots before they open to everyone else (the last slot opens last).
  const lastOpensAtMs = opensAtMs(telescope, endMs - slotMs);
  if (lastOpensAtMs > nowMs) {
    return {
      violation: "beyond_horizon",
      message: `${telescope.id} can be booked at most ${telescope.horizonDays} days ahead; ${isoUtc(endMs - slotMs)} opens for booking at ${isoUtc(lastOpensAtMs)}`,
      opensAtMs: lastOpensAtMs,
    };
  }
  return { slots: Array.from({ length: count }, (_, position) => startMs + position * slotMs) };
}

/** slotResource is the lease name of a slot (DESIGN.md): `<telescope>_<slot start, ISO UTC>`. */
export function slotResource(telescopeId: string, slotStartMs: number): string {
  return `${telescopeId}_${isoUtc(slotStartMs)}`;
}
