// The booking API's HTTP surface (docs/API.md): express 5, every input validated with zod,
// HATEOAS links on every answer, one error shape. The flows live in bookings.ts and
// scientists.ts; this file only translates between HTTP and them.

import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import express, { type NextFunction, type Request, type Response } from "express";
import { ipKeyGenerator, rateLimit } from "express-rate-limit";
import type { z } from "zod";
import { requestIdPattern } from "../protocol/limits.ts";
import { AuditTrail } from "./audit.ts";
import type { Bookings } from "./bookings.ts";
import type { ClusterPort } from "./cluster.ts";
import { ApiError, statusOfCode } from "./errors.ts";
import type { SchedulerLogger as Logger } from "./logging.ts";
import type { Booking, Scientist } from "./records.ts";
import {
  auditQuery,
  createBookingBody,
  daySchema,
  idempotencyKeyHeader,
  listBookingsQuery,
  openApiDocument,
  registerScientistBody,
} from "./schemas.ts";
import type { Scientists } from "./scientists.ts";
import { addDays, dayOf, isoUtc, opensAtMs, slotStartsOfDay, type Telescope } from "./slots.ts";

export interface AppOptions {
  readonly bookings: Bookings;
  readonly scientists: Scientists;
  readonly cluster: ClusterPort;
  readonly telescopes: readonly Telescope[];
  readonly log: Logger;
  readonly nowMs: () => number;
  readonly bodyBytesMax: number;
  /** rateLimitPerMinute: per verified scientist. */
  readonly rateLimitPerMinute: number;
  /** rateLimitPerAddressPerMinute: per client address, on every request. */
  readonly rateLimitPerAddressPerMinute: number;
  /** registrationsPerAddressPerHour: POST /scientists per client address (each one makes an account). */
  readonly registrationsPerAddressPerHour: number;
  readonly auditVerifyRecordsMax: number;
  /** webRoot: the directory of the booking page (client/web). */
  readonly webRoot?: string;
  /** onRequest: observes every answered request (for metrics). */
  readonly onRequest?: (route: string, method: string, status: number, durationMs: number) => void;
  /** metrics: served at GET /metrics in the Prometheus text format (scheduler/metrics.ts), open like /healthz. */
  readonly metrics?: { text(): Promise<string>; readonly contentType: string };
}

type Link = { href: string; method?: string; templated?: boolean };
type Links = Record<string, Link>;

const defaultWebRoot = fileURLToPath(new URL("../client/web/", import.meta.url));

export function createApp(options: AppOptions): express.Express {
  const app = express();
  const audit = new AuditTrail(options.cluster, options.auditVerifyRecordsMax);
  const perScientistLimit = rateLimit({
    windowMs: 60_000,
    limit: options.rateLimitPerMinute,
    standardHeaders: "draft-7",
    legacyHeaders: false,
    keyGenerator: (_request, response) => `scientist:${String(response.locals["scientistId"])}`,
    handler: (request, response, next) =>
      next(rateLimited(request, response, `more than ${options.rateLimitPerMinute} requests a minute with this API key`)),
  });
  // The request's logger is made on first use, with what is known by then (the request id, and the
  // scientist once authenticated): pino's child of a child costs about ten times a first child,
  // and many requests log nothing at all.
  const logOf = (response: Response): Logger => {
    let log = response.locals["log"] as Logger | undefined;
    if (log === undefined) {
      const requestId = requestIdOf(response);
      const scientistId = response.locals["scientistId"] as string | undefined;
      log = options.log.child(scientistId === undefined ? { requestId } : { requestId, scientistId });
      response.locals["log"] = log;
    }
    return log;
  };
  const authenticate = async (request: Request, response: Response): Promise<Scientist> => {
    const scientist = await options.scientists.authenticate(request.header("authorization"), requestIdOf(response));
    const known = response.locals["log"] as Logger | undefined;
    if (known !== undefined) response.locals["log"] = known.child({ scientistId: scientist.id });
    response.locals["scientistId"] = scientist.id;
    await new Promise<void>((resolve, reject) =>
      perScientistLimit(request, response, (error?: unknown) => (error === undefined ? resolve() : reject(error))),
    );
    return scientist;
  };
  app.disable("x-powered-by");
  app.set("trust proxy", "loopback, uniquelocal");
  app.use((request: Request, response: Response, next: NextFunction) => {
    const given = request.header("x-request-id");
    const requestId = given !== undefined && requestIdPattern.test(given) ? given : randomUUID();
    response.locals["requestId"] = requestId;
    response.setHeader("x-request-id", requestId);
    const startedAt = performance.now();
    response.on("finish", () => {
      const route = (request.route as { path?: string } | undefined)?.path ?? "unmatched";
      options.onRequest?.(route, request.method, response.statusCode, performance.now() - startedAt);
    });
    next();
  });
  // Two limits: per address on everything (before any key is checked, so made-up keys cannot
  // dodge it), and per scientist once a key has been verified (authenticate()).
  app.use(
    rateLimit({
      windowMs: 60_000,
      limit: options.rateLimitPerAddressPerMinute,
      standardHeaders: "draft-7",
      legacyHeaders: false,
      keyGenerator: (request) => `ip:${ipKeyGenerator(request.ip ?? "unknown")}`,
      handler: (request, response, next) =>
        next(rateLimited(request, response, `more than ${options.rateLimitPerAddressPerMinute} requests a minute from this address`)),
    }),
  );
  // Not strict: a body of `null` or `42` is valid JSON, and jsonBody() says it is not an object
  // (strict parsing would call it "not valid JSON", which it is).
  app.use(express.json({ limit: options.bodyBytesMax, strict: false }));

  app.get("/api", async (request, response) => {
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
      const scientist = await authenticate(request, response);
      links["me"] = { href: `/scientists/${scientist.id}` };
      links["my-bookings"] = { href: `/bookings?scientistId=${scientist.id}` };
      links["book"] = { href: "/bookings", method: "POST" };
    }
    response.json({ name: "SCTEC booking API", _links: links });
  });

  app.get("/time", (request, response) => {
    const nowMs = options.nowMs();
    logOf(response).info({ event: "time_requested", ip: request.ip }, `time requested by ${request.ip}`);
    response.json({ serverTimeUtc: new Date(nowMs).toISOString(), serverTimeMs: nowMs, _links: { self: { href: "/time" } } });
  });

  app.get("/healthz", async (_request, response) => {
    try {
      await options.cluster.appliedIndex();
      response.json({ ok: true, cluster: "reachable" });
    } catch {
      response.status(503).json({ ok: false, cluster: "unreachable" });
    }
  });

  app.get("/metrics", async (_request, response) => {
    if (options.metrics === undefined) throw new ApiError("not_found", "this scheduler keeps no metrics");
    const text = await options.metrics.text();
    response.setHeader("content-type", options.metrics.contentType);
    response.setHeader("cache-control", "no-store");
    response.send(text);
  });

  app.get("/openapi.json", (_request, response) => {
    response.json(openApiDocument());
  });

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

  app.post("/scientists", registrationLimit, async (request, response) => {
    const body = parse(registerScientistBody, jsonBody(request));
    const { scientist, apiKey } = await options.scientists.register(body, logOf(response), requestIdOf(response));
    response
      .status(201)
      .location(`/scientists/${scientist.id}`)
      .json({
        scientist: scientistView(scientist, scientist),
        apiKey,
        _links: { ...scientistLinks(scientist), book: { href: "/bookings", method: "POST" } },
      });
  });

  app.get("/scientists/:id", async (request, response) => {
    const caller = await authenticate(request, response);
    const scientist = await options.scientists.find(String(request.params.id), requestIdOf(response));
    if (scientist === undefined) throw new ApiError("not_found", `there is no scientist ${request.params.id}`);
    response.json({ ...scientistView(scientist, caller), _links: scientistLinks(scientist) });
  });

  app.get("/telescopes", (_request, response) => {
    response.json({
      items: options.telescopes.map((telescope) => telescopeView(telescope, options.nowMs())),
      _links: { self: { href: "/telescopes" } },
    });
  });

  app.get("/telescopes/:id", (request, response) => {
    response.json(telescopeView(telescopeOf(options, String(request.params.id)), options.nowMs()));
  });

  app.get("/telescopes/:id/days/:day", async (request, response) => {
    const telescope = telescopeOf(options, String(request.params.id));
    const day = parse(daySchema, request.params.day);
    const caller = request.header("authorization") === undefined ? undefined : await authenticate(request, response);
    const requestId = requestIdOf(response);
    const claims = await options.bookings.claimsOfDay(telescope.id, day, requestId);
    const nowMs = options.nowMs();
    const slotMs = telescope.slotMinutes * 60_000;
    const base = `/telescopes/${telescope.id}/days`;
    response.json({
      telescopeId: telescope.id,
      day,
      slotMinutes: telescope.slotMinutes,
      slots: slotStartsOfDay(telescope, day).map((startMs) => {
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
          endUtc: isoUtc(startMs + slotMs),
          state,
          ...(bookingId === undefined ? {} : { bookingId }),
          ...(state === "free" && opensAt > nowMs ? { opensAtUtc: isoUtc(opensAt) } : {}),
          _links: links,
        };
      }),
      _links: {
        self: { href: `${base}/${day}` },
        previous: { href: `${base}/${addDays(day, -1)}` },
        next: { href: `${base}/${addDays(day, 1)}` },
        today: { href: `${base}/${dayOf(nowMs)}` },
        telescope: { href: `/telescopes/${telescope.id}` },
      },
    });
  });

  app.post("/bookings", async (request, response) => {
    const scientist = await authenticate(request, response);
    const body = parse(createBookingBody, jsonBody(request));
    const keyHeader = request.header("idempotency-key");
    const idempotencyKey = keyHeader === undefined ? undefined : parse(idempotencyKeyHeader, keyHeader);
    const { booking, replayed } = await options.bookings.create(
      { ...body, idempotencyKey },
      scientist,
      logOf(response),
      requestIdOf(response),
    );
    if (replayed) response.setHeader("idempotent-replayed", "true");
    response
      .status(201)
      .location(`/bookings/${booking.id}`)
      .json(bookingView(booking, scientist, options.nowMs()));
  });

  app.get("/bookings", async (request, response) => {
    const scientist = await authenticate(request, response);
    const query = parse(listBookingsQuery, request.query);
    const { items, nextCursor } = await options.bookings.list(query, requestIdOf(response));
    const selfQuery = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) if (value !== undefined && name !== "cursor") selfQuery.set(name, String(value));
    const links: Links = { self: { href: `/bookings?${selfQuery}${query.cursor === undefined ? "" : `&cursor=${query.cursor}`}` } };
    if (nextCursor !== undefined) links["next"] = { href: `/bookings?${selfQuery}&cursor=${nextCursor}` };
    links["first"] = { href: `/bookings?${selfQuery}` };
    response.json({ items: items.map((booking) => bookingView(booking, scientist, options.nowMs())), _links: links });
  });

  app.get("/bookings/:id", async (request, response) => {
    const scientist = await authenticate(request, response);
    const booking = await options.bookings.get(bookingIdOf(request), requestIdOf(response));
    response.json(bookingView(booking, scientist, options.nowMs()));
  });

  app.delete("/bookings/:id", async (request, response) => {
    const scientist = await authenticate(request, response);
    const booking = await options.bookings.cancel(bookingIdOf(request), scientist, logOf(response), requestIdOf(response));
    response.json(bookingView(booking, scientist, options.nowMs()));
  });

  app.get("/audit", async (request, response) => {
    await authenticate(request, response);
    const query = parse(auditQuery, request.query);
    const page = await audit.page(query, requestIdOf(response));
    const links: Links = { self: { href: `/audit?limit=${query.limit}${query.cursor === undefined ? "" : `&cursor=${query.cursor}`}` } };
    if (page.nextCursor !== undefined) links["next"] = { href: `/audit?limit=${query.limit}&cursor=${page.nextCursor}` };
    response.json({ chain: page.chain, items: page.items, _links: links });
  });

  // Serve the page's assets only: not its tests, type declarations or README.
  app.use((request: Request, _response: Response, next: NextFunction) => {
    // HEAD too: express.static answers HEAD like GET, and a HEAD of a hidden file must not say it exists (issue 14).
    if ((request.method === "GET" || request.method === "HEAD") && /(\.test\.|\.d\.ts$|\.md$)/.test(request.path)) {
      next(new ApiError("not_found", "no such endpoint; start at GET /api"));
      return;
    }
    next();
  });
  app.use(express.static(options.webRoot ?? defaultWebRoot, { index: "index.html", maxAge: 0 }));
  app.use((_request: Request, response: Response) => sendError(response, new ApiError("not_found", "no such endpoint; start at GET /api")));
  app.use((error: unknown, _request: Request, response: Response, _next: NextFunction) => {
    const log = response.locals["requestId"] === undefined ? options.log : logOf(response);
    if (error instanceof ApiError) {
      if (error.status >= 500) log.error({ event: error.code, err: error }, error.message);
      else log.info({ event: "request_refused", code: error.code }, error.message);
      sendError(response, error);
      return;
    }
    const status = (error as { status?: number; type?: string }).status;
    const type = (error as { type?: string }).type;
    if (type === "entity.too.large" || status === 413) {
      sendError(response, new ApiError("body_too_large", `the body is larger than ${options.bodyBytesMax} bytes`));
      return;
    }
    if (type === "entity.parse.failed") {
      sendError(response, new ApiError("invalid_json", `the body is not valid JSON: ${(error as Error).message}`));
      return;
    }
    if (status === 415) {
      sendError(response, new ApiError("unsupported_media_type", `${(error as Error).message}; send JSON in UTF-8`));
      return;
    }
    // Anything else express or its body parser refused as the caller's fault (a malformed path,
    // an unsupported encoding…) is the caller's fault here too.
    if (status !== undefined && status >= 400 && status < 500) {
      sendError(response, new ApiError("invalid_request", `the request could not be read: ${(error as Error).message}`));
      return;
    }
    log.error({ event: "internal_error", err: error }, "unexpected error");
    sendError(response, new ApiError("internal", "unexpected error; it was logged"));
  });
  return app;
}

function sendError(response: Response, error: ApiError): void {
  if (error.code === "cluster_unavailable" || error.code === "booking_in_progress") response.setHeader("retry-after", "1");
  response.status(statusOfCode[error.code]).json({
    error: { code: error.code, message: error.message, ...(error.details === undefined ? {} : { details: error.details }) },
  });
}

function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const details = parsed.error.issues.map((issue) => ({ path: issue.path.join("."), message: issue.message }));
    throw new ApiError(
      "invalid_request",
      `invalid request: ${details.map((detail) => `${detail.path || "value"}: ${detail.message}`).join("; ")}`,
      details,
    );
  }
  return parsed.data;
}

/**
 * jsonBody is a request's body for a schema: 415 `unsupported_media_type` unless it was sent as
 * `application/json` (a form, text, multipart or no body at all never reaches the schema, where it
 * would read as an object with every field missing), and 400 unless it is a JSON object.
 */
function jsonBody(request: Request): Record<string, unknown> {
  const type = request.header("content-type");
  if (type === undefined || request.is("application/json") === false) {
    throw new ApiError(
      "unsupported_media_type",
      `the body must be JSON, sent with Content-Type: application/json (this request had ${type === undefined ? "no Content-Type" : `Content-Type: ${type}`})`,
    );
  }
  // The JSON parser reads an empty body as {}; an empty body is not an object the caller sent.
  const body: unknown = request.header("content-length") === "0" ? undefined : request.body;
  if (body === null || typeof body !== "object" || Array.isArray(body)) {
    const got = body === undefined ? "an empty body" : body === null ? "null" : Array.isArray(body) ? "an array" : `a ${typeof body}`;
    throw new ApiError("invalid_request", `the body must be a JSON object, not ${got}`, [
      { path: "", message: `expected an object, got ${got}` },
    ]);
  }
  return body as Record<string, unknown>;
}

function requestIdOf(response: Response): string {
  return String(response.locals["requestId"]);
}

function rateLimited(request: Request, response: Response, message: string): ApiError {
  const resetTime = (request as Request & { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
  const seconds = resetTime === undefined ? 60 : Math.max(1, Math.ceil((resetTime.getTime() - Date.now()) / 1000));
  response.setHeader("retry-after", String(seconds));
  return new ApiError("rate_limited", `${message}; retry in ${seconds} s`);
}

function bookingIdOf(request: Request): string {
  const id = String(request.params["id"]);
  if (!/^bk_[0-9a-f]{24}$/.test(id)) throw new ApiError("not_found", `there is no booking ${id}`);
  return id;
}

function telescopeOf(options: AppOptions, id: string): Telescope {
  const telescope = options.telescopes.find((candidate) => candidate.id === id);
  if (telescope === undefined) throw new ApiError("not_found", `there is no telescope ${id}`);
  return telescope;
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

function scientistView(scientist: Scientist, caller: Scientist): Record<string, unknown> {
  const { keyHash: _hidden, email, ...rest } = scientist;
  return scientist.id === caller.id ? { ...rest, email } : rest;
}

function scientistLinks(scientist: Scientist): Links {
  return { self: { href: `/scientists/${scientist.id}` }, bookings: { href: `/bookings?scientistId=${scientist.id}` } };
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
