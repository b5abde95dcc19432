// Types for my-bookings.js (plain JavaScript, served to the browser as is), for my-bookings.test.ts and tsc.

export const PAGE_SIZE: number;

export interface ListedBooking {
  id: string;
  status: "confirmed" | "cancelled";
  startUtc: string;
  endUtc: string;
  order?: number;
}

export type ListFilter = "upcoming" | "past" | "cancelled" | "all";
export type ListSort = "start-asc" | "start-desc" | "booked-desc";

export function matches(booking: ListedBooking, filter: ListFilter, nowMs: number): boolean;
export function pageOf<T extends ListedBooking>(
  bookings: readonly T[],
  options: { filter: ListFilter; sort: ListSort; page: number; nowMs: number; pageSize?: number },
): { items: T[]; page: number; pages: number; total: number };
