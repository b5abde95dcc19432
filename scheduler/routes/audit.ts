// GET /audit: the audit trail, a page at a time, verified as a hash chain on every read
// (../audit.ts: the verified head is remembered, so a later page verifies only what is new).

import { Router } from "express";
import type { AuditTrail } from "../audit.ts";
import { type Links, parse, type RequestContext, requestIdOf } from "../middleware.ts";
import { auditQuery } from "../schemas.ts";

/** auditRoutes serves the audit trail to any registered scientist. */
export function auditRoutes(context: RequestContext, audit: AuditTrail): Router {
  const router = Router();
  router.get("/audit", async (request, response) => {
    await context.authenticate(request, response);
    const query = parse(auditQuery, request.query);
    const page = await audit.page(query, requestIdOf(response));
    const links: Links = { self: { href: `/audit?limit=${query.limit}${query.cursor === undefined ? "" : `&cursor=${query.cursor}`}` } };
    if (page.nextCursor !== undefined) links["next"] = { href: `/audit?limit=${query.limit}&cursor=${page.nextCursor}` };
    response.json({ chain: page.chain, items: page.items, _links: links });
  });
  return router;
}
