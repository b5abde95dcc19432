// selection.js: the page's range selection rules on a made-up day. A range is a run of bookable
// slots, at most maxSlots long; an extension past a slot that is not bookable (or past the limit)
// stops before it and says why; a range that stops being bookable while selected is reported with
// the first slot that is not. Each check was shown to fail with a bug planted in selection.js
// (then removed): the limit checked with `>=`; an extension that skips over a taken slot.

import { describe, expect, it } from "vitest";
import { bounds, extendTo, problemOf, resize, size } from "./selection.js";

// . free, x taken; indexes 0..11
const day = (pattern: string) => [...pattern].map((mark) => ({ free: mark === "." }));
const rules = { isBookable: (slot: { free: boolean }) => slot.free, maxSlots: 4 };

describe("selection", () => {
  it("covers from the smaller to the larger index, whichever way it was made", () => {
    expect(bounds({ anchor: 5, end: 2 })).toEqual({ first: 2, last: 5 });
    expect(size({ anchor: 5, end: 2 })).toBe(4);
  });

  it("extends up to the slot asked for, or stops before a slot that is not bookable, or at the limit", () => {
    const slots = day("....x.......");
    expect(extendTo({ anchor: 1, end: 1 }, 3, slots, rules)).toEqual({ selection: { anchor: 1, end: 3 }, stoppedBy: undefined });
    expect(extendTo({ anchor: 1, end: 1 }, 6, slots, rules)).toEqual({
      selection: { anchor: 1, end: 3 },
      stoppedBy: { reason: "not_bookable", index: 4 },
    });
    expect(extendTo({ anchor: 5, end: 5 }, 11, slots, rules)).toEqual({
      selection: { anchor: 5, end: 8 },
      stoppedBy: { reason: "too_long", maxSlots: 4 },
    });
    // Backwards from the anchor (shift-click before it).
    expect(extendTo({ anchor: 7, end: 7 }, 2, slots, rules)).toEqual({
      selection: { anchor: 7, end: 5 },
      stoppedBy: { reason: "not_bookable", index: 4 },
    });
  });

  it("reports a range that stopped being bookable, naming the first slot that is not", () => {
    expect(problemOf({ anchor: 0, end: 3 }, day("............"), rules)).toBeUndefined();
    expect(problemOf({ anchor: 0, end: 3 }, day("..xx........"), rules)).toEqual({ reason: "not_bookable", index: 2 });
    expect(problemOf({ anchor: 0, end: 4 }, day("............"), rules)).toEqual({ reason: "too_long", maxSlots: 4 });
  });

  it("grows and shrinks from its first slot (the +/− buttons), never below one slot", () => {
    const slots = day("......x.....");
    expect(resize({ anchor: 3, end: 2 }, 1, slots, rules).selection).toEqual({ anchor: 2, end: 4 });
    expect(resize({ anchor: 2, end: 4 }, 1, slots, rules)).toEqual({ selection: { anchor: 2, end: 5 }, stoppedBy: undefined });
    expect(resize({ anchor: 3, end: 5 }, 1, slots, rules).stoppedBy).toEqual({ reason: "not_bookable", index: 6 });
    expect(resize({ anchor: 2, end: 3 }, -5, slots, rules).selection).toEqual({ anchor: 2, end: 2 });
  });
});
