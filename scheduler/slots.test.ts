import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { addDays, dayOf, isoUtc, opensAtMs, parseDay, slotResource, slotStartsOfDay, slotsOf, type Telescope } from "./slots.ts";

const hubble: Telescope = { id: "hubble-acad", name: "Hubble Acad", slotMinutes: 5, horizonDays: 30, slotsPerBookingMax: 12 };
const at = (text: string) => Date.parse(text);
const now = at("2025-11-30T12:00:00Z");

describe("slots", () => {
  it("names a slot's lease as DESIGN.md says", () => {
    expect(slotResource("hubble-acad", at("2025-12-01T03:00:00Z"))).toBe("hubble-acad_2025-12-01T03:00:00Z");
    expect(isoUtc(at("2025-12-01T03:00:00.000Z"))).toBe("2025-12-01T03:00:00Z");
  });

  it("lists a day's slots from midnight UTC", () => {
    const slots = slotStartsOfDay(hubble, "2025-12-01");
    expect(slots).toHaveLength(288);
    expect(isoUtc(slots[0] as number)).toBe("2025-12-01T00:00:00Z");
    expect(isoUtc(slots.at(-1) as number)).toBe("2025-12-01T23:55:00Z");
    expect(parseDay("2025-02-30")).toBeUndefined();
    expect(parseDay("2025-2-3")).toBeUndefined();
    expect(addDays("2025-12-31", 1)).toBe("2026-01-01");
    expect(dayOf(at("2025-12-01T23:59:59Z"))).toBe("2025-12-01");
  });

  it("accepts aligned future intervals within the horizon and names each rule it refuses", () => {
    expect(slotsOf(hubble, at("2025-12-01T03:00:00Z"), at("2025-12-01T03:10:00Z"), now)).toEqual({
      slots: [at("2025-12-01T03:00:00Z"), at("2025-12-01T03:05:00Z")],
    });
    const violation = (start: string, end: string) => {
      const result = slotsOf(hubble, at(start), at(end), now);
      return "violation" in result ? result.violation : "ok";
    };
    expect(violation("2025-12-01T03:01:00Z", "2025-12-01T03:06:00Z")).toBe("not_aligned");
    expect(violation("2025-12-01T03:05:00Z", "2025-12-01T03:05:00Z")).toBe("empty_interval");
    expect(violation("2025-12-01T03:05:00Z", "2025-12-01T03:00:00Z")).toBe("empty_interval");
    expect(violation("2025-12-01T03:00:00Z", "2025-12-01T04:05:00Z")).toBe("too_long");
    expect(violation("2025-11-30T12:00:00Z", "2025-11-30T12:05:00Z")).toBe("in_the_past");
    expect(violation("2025-12-31T12:05:00Z", "2025-12-31T12:10:00Z")).toBe("beyond_horizon");
    expect(violation("2025-12-30T12:00:00Z", "2025-12-30T12:05:00Z")).toBe("ok");
    // The last slot must be open too: a range may not reach past the horizon.
    expect(violation("2025-12-30T12:00:00Z", "2025-12-30T12:10:00Z")).toBe("beyond_horizon");
  });

  it("opens slots block by block: every slot of a block at the same instant, horizonDays before the block starts", () => {
    const byHour: Telescope = { ...hubble, horizonBlockMinutes: 60 };
    const opens = (slot: string) => isoUtc(opensAtMs(byHour, at(slot)));
    expect(opens("2025-12-30T13:00:00Z")).toBe("2025-11-30T13:00:00Z");
    expect(opens("2025-12-30T13:55:00Z")).toBe("2025-11-30T13:00:00Z");
    expect(opens("2025-12-30T14:00:00Z")).toBe("2025-11-30T14:00:00Z");
    // Without a block, each slot opens on its own (the rolling horizon).
    expect(isoUtc(opensAtMs(hubble, at("2025-12-30T13:55:00Z")))).toBe("2025-11-30T13:55:00Z");
    // At 12:59:59 nothing of the 13:00 block is bookable; at 13:00 all of it is, and nothing later.
    const refused = slotsOf(byHour, at("2025-12-30T13:00:00Z"), at("2025-12-30T13:05:00Z"), at("2025-11-30T12:59:59Z"));
    expect(refused).toMatchObject({ violation: "beyond_horizon", opensAtMs: at("2025-11-30T13:00:00Z") });
    expect(slotsOf(byHour, at("2025-12-30T13:00:00Z"), at("2025-12-30T14:00:00Z"), at("2025-11-30T13:00:00Z"))).toHaveProperty("slots");
    expect(slotsOf(byHour, at("2025-12-30T13:55:00Z"), at("2025-12-30T14:05:00Z"), at("2025-11-30T13:00:00Z"))).toMatchObject({
      violation: "beyond_horizon",
      opensAtMs: at("2025-11-30T14:00:00Z"),
    });
  });

  it("returns consecutive aligned slots covering exactly the interval (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 8000 }), fc.integer({ min: 1, max: 12 }), (offset, count) => {
        const start = Math.ceil(now / 300_000) * 300_000 + offset * 300_000;
        const result = slotsOf(hubble, start, start + count * 300_000, now);
        if (!("slots" in result)) return start + (count - 1) * 300_000 > now + 30 * 86_400_000;
        return (
          result.slots.length === count &&
          result.slots.every((slot, position) => slot === start + position * 300_000 && slot % 300_000 === 0)
        );
      }),
    );
  });
});
