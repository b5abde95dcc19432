// time-format.js: times in UTC and in a time zone, checked against exact answers around the
// changes to and from summer time (Europe/Berlin, America/New_York), a half-hour zone
// (Asia/Kolkata), and intervals across midnight. A fixed offset would pass none of the DST cases:
// the check was shown to catch one by planting Etc/GMT-1 (UTC+1 all year) for Berlin (then removed).

import { describe, expect, it } from "vitest";
import { clockOf, dateOf, durationText, offsetChangeIn, offsetOf, rangeText, timeOf, UTC } from "./time-format.js";

const at = (text: string) => Date.parse(text);

describe("time-format", () => {
  it("shows UTC as it is", () => {
    expect(timeOf(at("2026-12-08T03:05:00Z"), UTC)).toBe("03:05");
    expect(clockOf(at("2026-12-08T00:00:07Z"), UTC)).toBe("00:00:07");
    expect(dateOf(at("2026-12-08T23:59:00Z"), UTC)).toBe("2026-12-08");
    expect(offsetOf(at("2026-12-08T23:59:00Z"), UTC)).toBe("UTC");
  });

  it("converts each instant on its own across the spring change in Berlin (no 02:xx that night)", () => {
    const zone = "Europe/Berlin";
    // 2026-03-29 01:00 UTC: clocks go from 02:00 CET to 03:00 CEST.
    expect(timeOf(at("2026-03-29T00:55:00Z"), zone)).toBe("01:55");
    expect(offsetOf(at("2026-03-29T00:55:00Z"), zone)).toBe("UTC+1");
    expect(timeOf(at("2026-03-29T01:00:00Z"), zone)).toBe("03:00");
    expect(offsetOf(at("2026-03-29T01:00:00Z"), zone)).toBe("UTC+2");
    expect(rangeText(at("2026-03-29T00:50:00Z"), at("2026-03-29T01:10:00Z"), zone)).toBe("2026-03-29 01:50 UTC+1 – 2026-03-29 03:10 UTC+2");
    expect(rangeText(at("2026-03-28T23:00:00Z"), at("2026-03-29T00:30:00Z"), zone)).toBe("2026-03-29 00:00–01:30 UTC+1");
    expect(offsetChangeIn(at("2026-03-29T00:00:00Z"), at("2026-03-30T00:00:00Z"), zone)).toEqual({
      atMs: at("2026-03-29T01:00:00Z"),
      from: "UTC+1",
      to: "UTC+2",
    });
  });

  it("tells the two 01:30s of the autumn change in New York apart by their offset", () => {
    const zone = "America/New_York";
    // 2026-11-01 06:00 UTC: clocks go from 02:00 EDT back to 01:00 EST.
    const first = at("2026-11-01T05:30:00Z");
    const second = at("2026-11-01T06:30:00Z");
    expect([timeOf(first, zone), offsetOf(first, zone)]).toEqual(["01:30", "UTC-4"]);
    expect([timeOf(second, zone), offsetOf(second, zone)]).toEqual(["01:30", "UTC-5"]);
    expect(offsetChangeIn(at("2026-10-31T12:00:00Z"), at("2026-11-01T12:00:00Z"), zone)?.atMs).toBe(at("2026-11-01T06:00:00Z"));
    expect(offsetChangeIn(at("2026-12-01T00:00:00Z"), at("2026-12-08T00:00:00Z"), zone)).toBeUndefined();
  });

  it("handles half-hour zones and intervals across midnight in the zone", () => {
    const zone = "Asia/Kolkata";
    expect(timeOf(at("2026-12-08T03:00:00Z"), zone)).toBe("08:30");
    expect(offsetOf(at("2026-12-08T03:00:00Z"), zone)).toBe("UTC+5:30");
    expect(rangeText(at("2026-12-08T18:25:00Z"), at("2026-12-08T18:40:00Z"), zone)).toBe("2026-12-08 23:55 – 2026-12-09 00:10 UTC+5:30");
    // An interval ending at midnight in the zone stays on its day.
    expect(rangeText(at("2026-12-08T23:50:00Z"), at("2026-12-09T00:00:00Z"), UTC)).toBe("2026-12-08 23:50–00:00 UTC");
  });

  it("says how long", () => {
    expect([durationText(300_000), durationText(3_600_000), durationText(5_100_000)]).toEqual(["5 min", "1 h", "1 h 25 min"]);
  });
});
