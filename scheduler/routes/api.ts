// The API's entry point and its description: GET /api (the links a client starts from; more of them
// once it shows a key) and GET /openapi.json (generated from the zod schemas in schemas.ts).

import { Router } from "express";
import type { Links, RequestContext } from "../middleware.ts";
import { openApiDocument } from "../schemas.ts";

/** apiRoutes serves the entry point's links and the OpenAPI document. */
export function apiRoutes(context: RequestContext): Router {
  const router = Router();
  router.get("/api", async (request, response) => {
    const links: Links = {
      self: { href: "/api" },
      time: { href: "/time" },
      telescopes: { href: "/telescopes" },
      register: { href: "/scientists", method: "POST" },
      bookings: { href: "/bookings" },
      audit: { href: "/audit" },
      events: { href: "/events", method: "WEBSOCKET" },
      openapi: { href: "/openapi.json" },
    };
    if (request.header("authorization") !== undefined) {
      const scientist = await context.authenticate(request, response);
      links["me"] = { href: `/scientists/${scientist.id}` };
      links["my-bookings"] = { href: `/bookings?scientistId=${scientist.id}` };
      links["book"] = { href: "/bookings", method: "POST" };
    }
    response.json({ name: "SCTEC booking API", _links: links });
  });

  router.get("/openapi.json", (_request, response) => {
    response.json(openApiDocument());
  });
  return router;
}
