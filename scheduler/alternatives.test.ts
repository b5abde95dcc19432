// nearestFreeRanges: what a lost race offers instead. Examples with exact answers, then a property
// against a brute-force reading of the rules: every offered range is free, bookable and of the
// asked length, none overlaps another, and no free range nearer than an offered one was passed
// over unless it overlaps one already offered. The property caught each of these bugs when planted
// (then removed): checking only the first slot of a candidate for a claim; checking that the first
// slot is open instead of the last; offering ranges that overlap each other.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { alternativesMax, nearestFreeRanges } from "./alternatives.ts";
import { isoUtc, opensAtMs, type Telescope } from "./slots.ts";

const hubble: Telescope = { id: "hubble-acad", name: "Hubble Acad", slotMinutes: 5, horizonDays: 30, slotsPerBookingMax: 12 };
const at = (text: string) => Date.parse(text);
const slotMs = 300_000;
const now = at("2025-11-30T12:00:00Z");

function offered(options: { start: string; count: number; claimed: string[]; exclude?: boolean; telescope?: Telescope; nowMs?: number }) {
  const startMs = at(options.start);
  return nearestFreeRanges({
    telescope: options.telescope ?? hubble,
    startMs,
    count: options.count,
    nowMs: options.nowMs ?? now,
    claimedStartsMs: new Set(options.claimed.map(at)),
    fromMs: startMs - 12 * 3_600_000,
    toMs: startMs + 12 * 3_600_000 + options.count * slotMs,
    excludeRequested: options.exclude ?? false,
  }).map((range) => `${isoUtc(range.startMs).slice(11, 16)}-${isoUtc(range.endMs).slice(11, 16)}`);
}

describe("nearestFreeRanges", () => {
  it("offers the nearest free ranges of the same length, earlier first when as near, never overlapping each other", () => {
    // 03:00-03:15 asked; 03:05 is taken. Nearest free 3-slot ranges: 02:50 (10 min earlier) and 03:10 (10 min later).
    expect(offered({ start: "2025-12-01T03:00:00Z", count: 3, claimed: ["2025-12-01T03:05:00Z"] })).toEqual([
      "02:50-03:05",
      "03:10-03:25",
      "02:35-02:50",
    ]);
  });

  it("leaves out the requested range itself when its slots are busy (being decided right now)", () => {
    expect(offered({ start: "2025-12-01T03:00:00Z", count: 2, claimed: [], exclude: true })).toEqual([
      "02:50-03:00",
      "03:10-03:20",
      "02:40-02:50",
    ]);
  });

  it("offers only bookable ranges: nothing that has started, nothing past the horizon", () => {
    // Asked at the very first future slot: nothing earlier is bookable.
    expect(offered({ start: "2025-11-30T12:05:00Z", count: 1, claimed: ["2025-11-30T12:05:00Z"] })).toEqual([
      "12:10-12:15",
      "12:15-12:20",
      "12:20-12:25",
    ]);
    // Asked at the horizon's edge (the slot at now + 30 days): nothing later is bookable.
    expect(offered({ start: "2025-12-30T12:00:00Z", count: 2, claimed: ["2025-12-30T11:55:00Z"], exclude: true })).toEqual([
      "11:45-11:55",
      "11:35-11:45",
      "11:25-11:35",
    ]);
  });

  it("offers nothing when the window is full", () => {
    const claimed = Array.from({ length: 24 * 12 * 2 }, (_, n) => isoUtc(at("2025-11-30T16:00:00Z") + n * slotMs));
    expect(offered({ start: "2025-12-01T04:00:00Z", count: 1, claimed })).toEqual([]);
  });

  it("obeys the rules on any grid of claims (property, against a brute-force check)", () => {
    const telescope: Telescope = { ...hubble, horizonBlockMinutes: 60, horizonDays: 1 };
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 400 }), // where the refused range starts, in slots from now
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.integer({ min: -200, max: 600 }), { maxLength: 150 }), // claimed slots, relative to now
        fc.boolean(),
        (startSlot, count, claims, excludeRequested) => {
          const base = Math.floor(now / slotMs) * slotMs;
          const startMs = base + startSlot * slotMs;
          const claimed = new Set(claims.map((n) => base + n * slotMs));
          const query = {
            telescope,
            startMs,
            count,
            nowMs: now,
            claimedStartsMs: claimed,
            fromMs: startMs - 12 * 3_600_000,
            toMs: startMs + 12 * 3_600_000 + count * slotMs,
            excludeRequested,
          };
          const ranges = nearestFreeRanges(query);
          const lengthMs = count * slotMs;
          const overlaps = (a: number, b: number) => a < b + lengthMs && b < a + lengthMs;
          const allowed = (s: number) => {
            if (s <= now || s < query.fromMs || s + lengthMs > query.toMs || s % slotMs !== 0) return false;
            if (opensAtMs(telescope, s + lengthMs - slotMs) > now) return false;
            if (excludeRequested && overlaps(s, startMs)) return false;
            for (let slot = s; slot < s + lengthMs; slot += slotMs) if (claimed.has(slot)) return false;
            return true;
          };
          expect(ranges.length).toBeLessThanOrEqual(alternativesMax);
          for (const [position, range] of ranges.entries()) {
            expect(range.endMs - range.startMs).toBe(lengthMs);
            expect(allowed(range.startMs)).toBe(true);
            for (const other of ranges.slice(0, position)) expect(overlaps(range.startMs, other.startMs)).toBe(false);
          }
          // Greedy by distance: every allowed start nearer than (or as near as and earlier than) an
          // offered one overlaps a range offered before that one.
          const distance = (s: number) => Math.abs(s - startMs);
          for (let s = query.fromMs - (query.fromMs % slotMs); s <= query.toMs; s += slotMs) {
            if (!allowed(s) || ranges.some((range) => range.startMs === s)) continue;
            for (const [position, range] of ranges.entries()) {
              const before = distance(s) < distance(range.startMs) || (distance(s) === distance(range.startMs) && s < range.startMs);
              if (before) expect(ranges.slice(0, position).some((earlier) => overlaps(s, earlier.startMs))).toBe(true);
            }
            if (ranges.length < alternativesMax) expect(ranges.some((range) => overlaps(s, range.startMs))).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
