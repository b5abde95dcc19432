// GET /time: the scheduler's clock, for Cristian's algorithm (the page synchronises with it).

import { Router } from "express";
import type { RequestContext } from "../middleware.ts";

/** timeRoutes serves this scheduler's clock (nowMs: the clock main.ts chose, test offset included). */
export function timeRoutes(context: RequestContext, nowMs: () => number): Router {
  const router = Router();
  router.get("/time", (request, response) => {
    const now = nowMs();
    context.logOf(response).info({ event: "time_requested", ip: request.ip }, `time requested by ${request.ip}`);
    response.json({ serverTimeUtc: new Date(now).toISOString(), serverTimeMs: now, _links: { self: { href: "/time" } } });
  });
  return router;
}
