// Telescopes and their days: GET /telescopes, GET /telescopes/:id, and GET
// /telescopes/:id/days/:day, a day's slots with the state of each as the caller sees it
// (past, free, yours, taken) and the links it may follow (a free slot's `book` once its horizon
// block has opened; until then, when it opens).

import { Router } from "express";
import type { Bookings, SlotClaim } from "../bookings.ts";
import { ApiError } from "../errors.ts";
import { type Links, parse, type RequestContext, requestIdOf } from "../middleware.ts";
import type { Scientist } from "../records.ts";
import { daySchema } from "../schemas.ts";
import { addDays, dayOf, isoUtc, opensAtMs, slotStartsOfDay, type Telescope } from "../slots.ts";

export interface TelescopeRoutesOptions {
  readonly telescopes: readonly Telescope[];
  readonly bookings: Bookings;
  readonly nowMs: () => number;
}

/** telescopeRoutes serves the configured telescopes and their days of slots. */
export function telescopeRoutes(context: RequestContext, options: TelescopeRoutesOptions): Router {
  const router = Router();
  const telescopeOf = (id: string): Telescope => {
    const telescope = options.telescopes.find((candidate) => candidate.id === id);
    if (telescope === undefined) throw new ApiError("not_found", `there is no telescope ${id}`);
    return telescope;
  };

  router.get("/telescopes", (_request, response) => {
    response.json({
      items: options.telescopes.map((telescope) => telescopeView(telescope, options.nowMs())),
      _links: { self: { href: "/telescopes" } },
    });
  });

  router.get("/telescopes/:id", (request, response) => {
    response.json(telescopeView(telescopeOf(String(request.params.id)), options.nowMs()));
  });

  router.get("/telescopes/:id/days/:day", async (request, response) => {
    const telescope = telescopeOf(String(request.params.id));
    const day = parse(daySchema, request.params.day);
    // The key is optional here: with one, the caller's own slots read as `yours`.
    const caller = request.header("authorization") === undefined ? undefined : await context.authenticate(request, response);
    const claims = await options.bookings.claimsOfDay(telescope.id, day, requestIdOf(response));
    response.json(dayView({ telescope, day, claims, caller, nowMs: options.nowMs() }));
  });
  return router;
}

function telescopeView(telescope: Telescope, nowMs: number): Record<string, unknown> {
  return {
    ...telescope,
    _links: {
      self: { href: `/telescopes/${telescope.id}` },
      today: { href: `/telescopes/${telescope.id}/days/${dayOf(nowMs)}` },
      // A URI template (RFC 6570): the client fills in {day}, it does not build the URL itself.
      day: { href: `/telescopes/${telescope.id}/days/{day}`, templated: true },
      bookings: { href: `/bookings?telescopeId=${telescope.id}` },
    },
  };
}

interface DayOfSlots {
  readonly telescope: Telescope;
  readonly day: string;
  readonly claims: ReadonlyMap<string, SlotClaim>;
  readonly caller: Scientist | undefined;
  readonly nowMs: number;
}

function dayView(shown: DayOfSlots): Record<string, unknown> {
  const { telescope, day, nowMs } = shown;
  const base = `/telescopes/${telescope.id}/days`;
  return {
    telescopeId: telescope.id,
    day,
    slotMinutes: telescope.slotMinutes,
    slots: slotStartsOfDay(telescope, day).map((startMs) => slotView(shown, startMs)),
    _links: {
      self: { href: `${base}/${day}` },
      previous: { href: `${base}/${addDays(day, -1)}` },
      next: { href: `${base}/${addDays(day, 1)}` },
      today: { href: `${base}/${dayOf(nowMs)}` },
      telescope: { href: `/telescopes/${telescope.id}` },
    },
  };
}

function slotView(shown: DayOfSlots, startMs: number): Record<string, unknown> {
  const { telescope, claims, caller, nowMs } = shown;
  const startUtc = isoUtc(startMs);
  const claim = claims.get(startUtc);
  const bookingId = claim?.bookingId;
  const state = startMs <= nowMs ? "past" : claim === undefined ? "free" : claim.scientistId === caller?.id ? "yours" : "taken";
  const links: Links = {};
  if (bookingId !== undefined) links["booking"] = { href: `/bookings/${bookingId}` };
  // A free slot is bookable once its horizon block has opened; until then it says when it opens.
  const opensAt = opensAtMs(telescope, startMs);
  if (state === "free" && opensAt <= nowMs) links["book"] = { href: "/bookings", method: "POST" };
  return {
    startUtc,
    endUtc: isoUtc(startMs + telescope.slotMinutes * 60_000),
    state,
    ...(bookingId === undefined ? {} : { bookingId }),
    ...(state === "free" && opensAt > nowMs ? { opensAtUtc: isoUtc(opensAt) } : {}),
    _links: links,
  };
}
