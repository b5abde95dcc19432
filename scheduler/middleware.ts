// The booking API's HTTP edge, in one place: request ids, the two request rate limits, the
// request's logger, authentication, reading input (zod, JSON bodies), the one error shape and the
// error handler that maps every failure to it. The routes (routes/*.ts) use these; app.ts puts the
// middleware in order around them. The codes and their HTTP statuses are one table, in errors.ts.

import { randomUUID } from "node:crypto";
import express, { type NextFunction, type Request, type RequestHandler, type Response } from "express";
import { ipKeyGenerator, rateLimit } from "express-rate-limit";
import type { z } from "zod";
import { invalidRequestOf } from "../protocol/issues.ts";
import { requestIdPattern } from "../protocol/limits.ts";
import { ApiError, statusOfCode } from "./errors.ts";
import type { SchedulerLogger as Logger } from "./logging.ts";
import type { Scientist } from "./records.ts";
import type { Scientists } from "./scientists.ts";

/** Link is one HATEOAS link of an answer; `templated` marks an RFC 6570 URI template. */
export type Link = { href: string; method?: string; templated?: boolean };
export type Links = Record<string, Link>;

/** RequestContext: what every route needs of the request beyond express: who is asking, and a logger that says so. */
export interface RequestContext {
  /** authenticate checks the bearer key (401 otherwise), then the per-scientist rate limit (429). */
  authenticate(request: Request, response: Response): Promise<Scientist>;
  /** logOf is the request's logger, carrying its request id and, once known, its scientist. */
  logOf(response: Response): Logger;
}

/** requestIds gives every request an id (the caller's `x-request-id` if well formed) and reports it when answered. */
export function requestIds(
  onRequest: ((route: string, method: string, status: number, durationMs: number) => void) | undefined,
): RequestHandler {
  return (request, response, next) => {
    const given = request.header("x-request-id");
    const requestId = given !== undefined && requestIdPattern.test(given) ? given : randomUUID();
    response.locals["requestId"] = requestId;
    response.setHeader("x-request-id", requestId);
    const startedAt = performance.now();
    response.on("finish", () => {
      // Labelled by express's route pattern (`/bookings/:id`), never by URL; static files and 404s are `unmatched`.
      const route = (request.route as { path?: string } | undefined)?.path ?? "unmatched";
      onRequest?.(route, request.method, response.statusCode, performance.now() - startedAt);
    });
    next();
  };
}

/**
 * RequestQueue bounds the requests this scheduler serves at once (issue 17): each counts from its
 * arrival until its answer is sent or its caller hangs up. Beyond `requestQueueMax`, a request is
 * answered at once `503 overloaded` with Retry-After, before anything else is done for it: a
 * scheduler that takes more than it can serve makes every request wait until all time out (and its
 * LockClient queues them without bound). `/healthz` and `/metrics` are not counted: the load
 * balancer and an operator must still reach an overloaded scheduler.
 */
export class RequestQueue {
  readonly requestQueueMax: number;
  readonly retryAfterMs: number;
  private inFlight = 0;
  private shedCount = 0;

  constructor(options: { readonly requestQueueMax: number; readonly retryAfterMs: number }) {
    if (!(Number.isSafeInteger(options.requestQueueMax) && options.requestQueueMax >= 1))
      throw new Error(`RequestQueue: requestQueueMax must be a positive integer, got ${options.requestQueueMax}`);
    this.requestQueueMax = options.requestQueueMax;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** depth: requests being served now. */
  depth(): number {
    return this.inFlight;
  }

  /** shed: requests refused so far. */
  shed(): number {
    return this.shedCount;
  }

  /** middleware admits a request or answers it 503 overloaded (no error log: shedding is the plan, and must stay cheap). */
  middleware(): RequestHandler {
    return (request, response, next) => {
      if (request.path === "/healthz" || request.path === "/metrics") {
        next();
        return;
      }
      if (this.inFlight >= this.requestQueueMax) {
        this.shedCount++;
        const seconds = Math.max(1, Math.ceil(this.retryAfterMs / 1000));
        sendError(
          response,
          new ApiError("overloaded", `this scheduler serves ${this.requestQueueMax} requests at once, its limit; retry in ${seconds} s`, {
            retryAfterMs: this.retryAfterMs,
          }),
        );
        return;
      }
      this.inFlight++;
      response.once("close", () => {
        this.inFlight--;
      });
      next();
    };
  }
}

/**
 * addressRateLimit limits every request per client address, before any key is checked, so made-up
 * keys cannot dodge it (the per-scientist limit comes after authentication).
 */
export function addressRateLimit(perMinute: number): RequestHandler {
  return rateLimit({
    windowMs: 60_000,
    limit: perMinute,
    standardHeaders: "draft-7",
    legacyHeaders: false,
    keyGenerator: (request) => `ip:${ipKeyGenerator(request.ip ?? "unknown")}`,
    handler: (request, response, next) =>
      next(rateLimited(request, response, `more than ${perMinute} requests a minute from this address`)),
  });
}

/** jsonBodies parses JSON bodies up to bodyBytesMax. */
export function jsonBodies(bodyBytesMax: number): RequestHandler {
  // Not strict: a body of `null` or `42` is valid JSON, and jsonBody() says it is not an object
  // (strict parsing would call it "not valid JSON", which it is).
  return express.json({ limit: bodyBytesMax, strict: false });
}

/** requestContext makes the authentication and logging that the routes share. */
export function requestContext(options: {
  readonly scientists: Scientists;
  readonly log: Logger;
  readonly rateLimitPerMinute: number;
}): RequestContext {
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
  return { authenticate, logOf };
}

/** hidePageInternals keeps the page folder's tests, type declarations and README from being served. */
export const hidePageInternals: RequestHandler = (request, _response, next) => {
  // HEAD too: express.static answers HEAD like GET, and a HEAD of a hidden file must not say it exists (issue 14).
  if ((request.method === "GET" || request.method === "HEAD") && /(\.test\.|\.d\.ts$|\.md$)/.test(request.path)) {
    next(new ApiError("not_found", "no such endpoint; start at GET /api"));
    return;
  }
  next();
};

/** notFound answers whatever no route and no page file took. */
export const notFound: RequestHandler = (_request, response) =>
  sendError(response, new ApiError("not_found", "no such endpoint; start at GET /api"));

/** errorHandler turns every failure into the one error shape: an ApiError as it is, express's own refusals by their kind, the rest as a logged 500. */
export function errorHandler(options: { readonly log: Logger; readonly bodyBytesMax: number; readonly context: RequestContext }) {
  return (error: unknown, _request: Request, response: Response, _next: NextFunction): void => {
    const log = response.locals["requestId"] === undefined ? options.log : options.context.logOf(response);
    if (error instanceof ApiError) {
      if (error.status >= 500) log.error({ event: error.code, err: error }, error.message);
      else log.info({ event: "request_refused", code: error.code }, error.message);
      sendError(response, error);
      return;
    }
    const refused = refusalByExpress(error, options.bodyBytesMax);
    if (refused !== undefined) {
      sendError(response, refused);
      return;
    }
    log.error({ event: "internal_error", err: error }, "unexpected error");
    sendError(response, new ApiError("internal", "unexpected error; it was logged"));
  };
}

/** refusalByExpress: the API error for what express or its body parser refused, undefined for anything else. */
function refusalByExpress(error: unknown, bodyBytesMax: number): ApiError | undefined {
  const status = (error as { status?: number }).status;
  const type = (error as { type?: string }).type;
  const message = (error as Error).message;
  if (type === "entity.too.large" || status === 413) return new ApiError("body_too_large", `the body is larger than ${bodyBytesMax} bytes`);
  if (type === "entity.parse.failed") return new ApiError("invalid_json", `the body is not valid JSON: ${message}`);
  if (status === 415) return new ApiError("unsupported_media_type", `${message}; send JSON in UTF-8`);
  // Anything else express or its body parser refused as the caller's fault (a malformed path,
  // an unsupported encoding…) is the caller's fault here too.
  if (status !== undefined && status >= 400 && status < 500)
    return new ApiError("invalid_request", `the request could not be read: ${message}`);
  return undefined;
}

function sendError(response: Response, error: ApiError): void {
  if (error.code === "cluster_unavailable" || error.code === "booking_in_progress") response.setHeader("retry-after", "1");
  if (error.code === "overloaded") {
    // Whole seconds, as HTTP has it, at least 1 (0 would read as "at once"); details say it exactly.
    const asked = (error.details as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
    const retryAfterMs = typeof asked === "number" ? asked : 1000;
    response.setHeader("retry-after", String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
  }
  response.status(statusOfCode[error.code]).json({
    error: { code: error.code, message: error.message, ...(error.details === undefined ? {} : { details: error.details }) },
  });
}

/** parse checks a value against a schema: its output, or 400 `invalid_request` naming every field that is wrong. */
export function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const { message, details } = invalidRequestOf(parsed.error, "value"); // As the lock node names them (protocol/issues.ts).
    throw new ApiError("invalid_request", message, details);
  }
  return parsed.data;
}

/**
 * jsonBody is a request's body for a schema: 415 `unsupported_media_type` unless it was sent as
 * `application/json` (a form, text, multipart or no body at all never reaches the schema, where it
 * would read as an object with every field missing), and 400 unless it is a JSON object.
 */
export function jsonBody(request: Request): Record<string, unknown> {
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

/** requestIdOf is the request's id (set by requestIds()). */
export function requestIdOf(response: Response): string {
  return String(response.locals["requestId"]);
}

/** rateLimited is the 429 for a limit, with Retry-After set to when its window resets. */
export function rateLimited(request: Request, response: Response, message: string): ApiError {
  const resetTime = (request as Request & { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
  const seconds = resetTime === undefined ? 60 : Math.max(1, Math.ceil((resetTime.getTime() - Date.now()) / 1000));
  response.setHeader("retry-after", String(seconds));
  return new ApiError("rate_limited", `${message}; retry in ${seconds} s`);
}
