// my-bookings.js: filtering (upcoming / past / cancelled / all, by the synchronised clock), the
// three orders and paging, on made-up bookings with exact answers.

import { describe, expect, it } from "vitest";
import { type ListedBooking, pageOf } from "./my-bookings.js";

const now = Date.parse("2026-12-08T12:00:00Z");
const booking = (
  id: string,
  start: string,
  minutes: number,
  order: number,
  status: "confirmed" | "cancelled" = "confirmed",
): ListedBooking => ({
  id,
  status,
  startUtc: start,
  endUtc: new Date(Date.parse(start) + minutes * 60_000).toISOString().replace(".000", ""),
  order,
});

const all = [
  booking("a", "2026-12-07T10:00:00Z", 30, 5), // past
  booking("b", "2026-12-08T11:50:00Z", 20, 9), // running until 12:10: still upcoming (not over)
  booking("c", "2026-12-09T03:00:00Z", 5, 3),
  booking("d", "2026-12-10T03:00:00Z", 5, 12, "cancelled"),
  booking("e", "2026-12-11T08:00:00Z", 60, 7),
];

describe("my bookings", () => {
  it("filters by what has happened, on the synchronised clock", () => {
    const ids = (filter: "upcoming" | "past" | "cancelled" | "all") =>
      pageOf(all, { filter, sort: "start-asc", page: 0, nowMs: now }).items.map((item) => item.id);
    expect(ids("upcoming")).toEqual(["b", "c", "e"]);
    expect(ids("past")).toEqual(["a"]);
    expect(ids("cancelled")).toEqual(["d"]);
    expect(ids("all")).toEqual(["a", "b", "c", "d", "e"]);
  });

  it("sorts soonest or latest first, or most recently booked (highest order) first", () => {
    const ids = (sort: "start-asc" | "start-desc" | "booked-desc") =>
      pageOf(all, { filter: "all", sort, page: 0, nowMs: now }).items.map((item) => item.id);
    expect(ids("start-desc")).toEqual(["e", "d", "c", "b", "a"]);
    expect(ids("booked-desc")).toEqual(["d", "b", "e", "a", "c"]);
  });

  it("pages, and shows the last page when asked for one past the end", () => {
    const many = Array.from({ length: 23 }, (_, n) =>
      booking(`k${String(n).padStart(2, "0")}`, new Date(now + (n + 1) * 3_600_000).toISOString(), 5, n),
    );
    const second = pageOf(many, { filter: "upcoming", sort: "start-asc", page: 1, nowMs: now });
    expect([second.page, second.pages, second.total, second.items.length, second.items[0]?.id]).toEqual([1, 3, 23, 10, "k10"]);
    const beyond = pageOf(many, { filter: "upcoming", sort: "start-asc", page: 7, nowMs: now });
    expect([beyond.page, beyond.items.map((item) => item.id)]).toEqual([2, ["k20", "k21", "k22"]]);
    expect(pageOf([], { filter: "past", sort: "start-asc", page: 0, nowMs: now })).toEqual({ items: [], page: 0, pages: 1, total: 0 });
  });
});
