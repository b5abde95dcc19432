// Scientists: POST /scientists registers one (open, under a limit of its own per address, since
// each registration makes an account and a key in the cluster) and answers with its API key, once;
// GET /scientists/:id shows one (the email only to its owner).

import { Router } from "express";
import { ipKeyGenerator, rateLimit } from "express-rate-limit";
import { ApiError } from "../errors.ts";
import { jsonBody, type Links, parse, type RequestContext, rateLimited, requestIdOf } from "../middleware.ts";
import type { Scientist } from "../records.ts";
import { registerScientistBody } from "../schemas.ts";
import type { Scientists } from "../scientists.ts";

export interface ScientistRoutesOptions {
  readonly scientists: Scientists;
  /** registrationsPerAddressPerHour: POST /scientists per client address (each one makes an account). */
  readonly registrationsPerAddressPerHour: number;
}

/** scientistRoutes serves registration and a scientist's record. */
export function scientistRoutes(context: RequestContext, options: ScientistRoutesOptions): Router {
  const router = Router();
  // Registration is open, and each one makes an account and a key in the cluster: its own, much
  // lower limit per address keeps a script from filling the cluster with accounts.
  const registrationLimit = rateLimit({
    windowMs: 3_600_000,
    limit: options.registrationsPerAddressPerHour,
    standardHeaders: "draft-7",
    legacyHeaders: false,
    keyGenerator: (request) => `register:${ipKeyGenerator(request.ip ?? "unknown")}`,
    handler: (request, response, next) =>
      next(rateLimited(request, response, `more than ${options.registrationsPerAddressPerHour} registrations an hour from this address`)),
  });

  router.post("/scientists", registrationLimit, async (request, response) => {
    const body = parse(registerScientistBody, jsonBody(request));
    const { scientist, apiKey } = await options.scientists.register(body, context.logOf(response), requestIdOf(response));
    response
      .status(201)
      .location(`/scientists/${scientist.id}`)
      .json({
        scientist: scientistView(scientist, scientist),
        apiKey,
        _links: { ...scientistLinks(scientist), book: { href: "/bookings", method: "POST" } },
      });
  });

  router.get("/scientists/:id", async (request, response) => {
    const caller = await context.authenticate(request, response);
    const scientist = await options.scientists.find(String(request.params.id), requestIdOf(response));
    if (scientist === undefined) throw new ApiError("not_found", `there is no scientist ${request.params.id}`);
    response.json({ ...scientistView(scientist, caller), _links: scientistLinks(scientist) });
  });
  return router;
}

/** scientistView is a scientist as a caller may see them: never the key's hash, the email only to its owner. */
function scientistView(scientist: Scientist, caller: Scientist): Record<string, unknown> {
  const { keyHash: _hidden, email, ...rest } = scientist;
  return scientist.id === caller.id ? { ...rest, email } : rest;
}

function scientistLinks(scientist: Scientist): Links {
  return { self: { href: `/scientists/${scientist.id}` }, bookings: { href: `/bookings?scientistId=${scientist.id}` } };
}
