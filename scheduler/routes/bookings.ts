// Bookings: POST /bookings (book a range of slots; an Idempotency-Key makes a retry safe),
// GET /bookings (pages by telescope, day, scientist, status), GET /bookings/:id and
// DELETE /bookings/:id (cancel, owner only). The flows are in ../bookings.ts; this file translates.

import { type Request, Router } from "express";
import type { Bookings } from "../bookings.ts";
import { ApiError } from "../errors.ts";
import { jsonBody, type Links, parse, type RequestContext, requestIdOf } from "../middleware.ts";
import type { Booking, Scientist } from "../records.ts";
import { createBookingBody, idempotencyKeyHeader, listBookingsQuery } from "../schemas.ts";

export interface BookingRoutesOptions {
  readonly bookings: Bookings;
  readonly nowMs: () => number;
}

/** bookingRoutes serves booking, listing, reading and cancelling. */
export function bookingRoutes(context: RequestContext, options: BookingRoutesOptions): Router {
  const router = Router();
  const { bookings, nowMs } = options;

  router.post("/bookings", async (request, response) => {
    const scientist = await context.authenticate(request, response);
    const body = parse(createBookingBody, jsonBody(request));
    const keyHeader = request.header("idempotency-key");
    const idempotencyKey = keyHeader === undefined ? undefined : parse(idempotencyKeyHeader, keyHeader);
    const { booking, replayed } = await bookings.create(
      { ...body, idempotencyKey },
      scientist,
      context.logOf(response),
      requestIdOf(response),
    );
    if (replayed) response.setHeader("idempotent-replayed", "true");
    response
      .status(201)
      .location(`/bookings/${booking.id}`)
      .json(bookingView(booking, scientist, nowMs()));
  });

  router.get("/bookings", async (request, response) => {
    const scientist = await context.authenticate(request, response);
    const query = parse(listBookingsQuery, request.query);
    const { items, nextCursor } = await bookings.list(query, requestIdOf(response));
    const selfQuery = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) if (value !== undefined && name !== "cursor") selfQuery.set(name, String(value));
    const links: Links = { self: { href: `/bookings?${selfQuery}${query.cursor === undefined ? "" : `&cursor=${query.cursor}`}` } };
    if (nextCursor !== undefined) links["next"] = { href: `/bookings?${selfQuery}&cursor=${nextCursor}` };
    links["first"] = { href: `/bookings?${selfQuery}` };
    response.json({ items: items.map((booking) => bookingView(booking, scientist, nowMs())), _links: links });
  });

  router.get("/bookings/:id", async (request, response) => {
    const scientist = await context.authenticate(request, response);
    const booking = await bookings.get(bookingIdOf(request), requestIdOf(response));
    response.json(bookingView(booking, scientist, nowMs()));
  });

  router.delete("/bookings/:id", async (request, response) => {
    const scientist = await context.authenticate(request, response);
    const booking = await bookings.cancel(bookingIdOf(request), scientist, context.logOf(response), requestIdOf(response));
    response.json(bookingView(booking, scientist, nowMs()));
  });
  return router;
}

/** bookingIdOf: the path's booking id; one this API could not have made is a 404 at once, never a cluster read. */
function bookingIdOf(request: Request): string {
  const id = String(request.params["id"]);
  if (!/^bk_[0-9a-f]{24}$/.test(id)) throw new ApiError("not_found", `there is no booking ${id}`);
  return id;
}

/** bookingView is a booking with the links its caller may follow: `cancel` only for the owner, while it can be cancelled. */
export function bookingView(booking: Booking, caller: Scientist, nowMs: number): Record<string, unknown> {
  const links: Links = {
    self: { href: `/bookings/${booking.id}` },
    telescope: { href: `/telescopes/${booking.telescopeId}` },
    day: { href: `/telescopes/${booking.telescopeId}/days/${booking.startUtc.slice(0, 10)}` },
    scientist: { href: `/scientists/${booking.scientistId}` },
  };
  if (booking.scientistId === caller.id && booking.status === "confirmed" && Date.parse(booking.startUtc) > nowMs) {
    links["cancel"] = { href: `/bookings/${booking.id}`, method: "DELETE" };
  }
  return { ...booking, _links: links };
}
