// "My bookings" as the person asks to see them: upcoming, past, cancelled or all; soonest or
// latest first, or most recently booked; ten to a page. Pure, so my-bookings.test.ts can check it;
// the page draws the result.

export const PAGE_SIZE = 10;

/**
 * upcoming: confirmed and not over yet; past: confirmed and over; cancelled. `nowMs` is the
 * synchronised clock.
 */
export function matches(booking, filter, nowMs) {
  if (filter === "all") return true;
  if (filter === "cancelled") return booking.status === "cancelled";
  if (booking.status !== "confirmed") return false;
  const over = Date.parse(booking.endUtc) <= nowMs;
  return filter === "past" ? over : !over;
}

const orders = {
  "start-asc": (a, b) => Date.parse(a.startUtc) - Date.parse(b.startUtc) || a.id.localeCompare(b.id),
  "start-desc": (a, b) => Date.parse(b.startUtc) - Date.parse(a.startUtc) || a.id.localeCompare(b.id),
  // `order` is the booking's place in the cluster's one global order: later bookings have higher ones.
  "booked-desc": (a, b) => (b.order ?? 0) - (a.order ?? 0) || a.id.localeCompare(b.id),
};

/**
 * pageOf: the bookings to show and where the page stands: { items, page, pages, total }. A page
 * past the end (the list shrank) shows the last one.
 */
export function pageOf(bookings, { filter, sort, page, nowMs, pageSize = PAGE_SIZE }) {
  const chosen = bookings.filter((booking) => matches(booking, filter, nowMs)).sort(orders[sort] ?? orders["start-asc"]);
  const pages = Math.max(1, Math.ceil(chosen.length / pageSize));
  const shown = Math.min(Math.max(0, page), pages - 1);
  return { items: chosen.slice(shown * pageSize, (shown + 1) * pageSize), page: shown, pages, total: chosen.length };
}
