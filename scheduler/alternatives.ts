// When a booking loses a race (409 slot_taken or slot_busy), its answer offers the nearest free
// ranges of the same length on the same telescope, so the scientist (or the page) can take one
// with a click instead of searching the grid. Pure: the caller reads the slot claims around the
// request and passes them in; this picks the ranges.

import { isoUtc, opensAtMs, type Telescope } from "./slots.ts";

/** alternativesMax: how many ranges a 409 offers. */
export const alternativesMax = 3;

/** alternativesWindowMs: how far before and after the requested start the search looks. */
export const alternativesWindowMs = 12 * 3_600_000;

export interface FreeRangeQuery {
  readonly telescope: Telescope;
  /** startMs, count: the range that was refused (its first slot, and how many slots). */
  readonly startMs: number;
  readonly count: number;
  readonly nowMs: number;
  /** claimedStartsMs: the starts of every booked slot in [fromMs, toMs) (others in the window are free). */
  readonly claimedStartsMs: ReadonlySet<number>;
  /** fromMs, toMs: the part of the window whose claims were read: no range may leave it. */
  readonly fromMs: number;
  readonly toMs: number;
  /** excludeRequested: offer nothing that overlaps the refused range (its slots are being decided right now). */
  readonly excludeRequested: boolean;
}

/**
 * nearestFreeRanges returns up to alternativesMax ranges of `count` consecutive free slots that are
 * bookable at `nowMs` (started in the future, every slot open), nearest to the refused start first
 * (an earlier one first when two are as near), none overlapping another.
 *
 * It walks outwards from the refused start, a slot at a time, earlier side first, so the ranges
 * come in the order of their distance and the walk stops at the third: at a horizon's opening
 * hundreds of races are lost within milliseconds, and sorting every start of a 24-hour window of
 * one-minute slots for each was a measurable part of the scheduler's CPU (bench:rush).
 */
export function nearestFreeRanges(query: FreeRangeQuery): { startMs: number; endMs: number }[] {
  const slotMs = query.telescope.slotMinutes * 60_000;
  const lengthMs = query.count * slotMs;
  const firstMs = Math.max(query.fromMs, Math.floor(query.nowMs / slotMs) * slotMs + slotMs);
  const lastMs = query.toMs - lengthMs; // the latest start whose range stays in the window
  const chosen: { startMs: number; endMs: number }[] = [];
  const overlapsChosen = (startMs: number) => chosen.some((range) => startMs < range.endMs && range.startMs < startMs + lengthMs);
  const isFree = (startMs: number) => {
    if (query.excludeRequested && startMs < query.startMs + lengthMs && query.startMs < startMs + lengthMs) return false;
    for (let slot = startMs; slot < startMs + lengthMs; slot += slotMs) if (query.claimedStartsMs.has(slot)) return false;
    return true;
  };
  // Later starts open later still: past the first that is not open, nothing on that side is.
  let laterOpen = true;
  // Bounded: the window is alternativesWindowMs on each side, so at most 2 × 1440 one-minute slots.
  for (let distanceMs = 0; chosen.length < alternativesMax; distanceMs += slotMs) {
    const earlier = query.startMs - distanceMs;
    const later = query.startMs + distanceMs;
    if (earlier < firstMs && (later > lastMs || !laterOpen)) break;
    for (const startMs of distanceMs === 0 ? [earlier] : [earlier, later]) {
      if (startMs < firstMs || startMs > lastMs || chosen.length === alternativesMax) continue;
      if (opensAtMs(query.telescope, startMs + lengthMs - slotMs) > query.nowMs) {
        if (startMs >= query.startMs) laterOpen = false;
        continue;
      }
      if (startMs > query.startMs && !laterOpen) continue;
      if (isFree(startMs) && !overlapsChosen(startMs)) chosen.push({ startMs, endMs: startMs + lengthMs });
    }
  }
  return chosen;
}

/** alternativeView is one offered range as the API answers it, with the links to book it and to see its day. */
export function alternativeView(telescopeId: string, range: { startMs: number; endMs: number }): Record<string, unknown> {
  const startUtc = isoUtc(range.startMs);
  return {
    telescopeId,
    startUtc,
    endUtc: isoUtc(range.endMs),
    _links: {
      book: { href: "/bookings", method: "POST" },
      day: { href: `/telescopes/${telescopeId}/days/${startUtc.slice(0, 10)}` },
    },
  };
}
