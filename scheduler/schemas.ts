// The request schemas (zod) of the booking API. They validate every input, and the OpenAPI
// document (GET /openapi.json) is generated from these same objects, so the two cannot drift.

import { z } from "zod";

/**
 * An ISO 8601 UTC instant with a Z, milliseconds optional, that names a real instant. JavaScript's
 * Date.parse rolls some impossible times over (`…T24:00:00Z` is read as the next midnight, and
 * `2026-02-30` as 2 March in some engines), which would book a slot nobody asked for; so each
 * field is checked against the calendar instead.
 */
export const isoUtcInstant = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/, "must be an ISO 8601 UTC time like 2025-12-01T03:00:00Z")
  .superRefine((text, context) => {
    const problem = unrealInstant(text);
    if (problem !== undefined) context.addIssue({ code: "custom", message: `${text} is not a real time: ${problem}` });
  });

export const daySchema = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, "must be a day like 2025-12-01")
  .superRefine((text, context) => {
    const problem = unrealDate(text);
    if (problem !== undefined) context.addIssue({ code: "custom", message: `${text} is not a real day: ${problem}` });
  });

const monthNames = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

/** unrealDate says why `YYYY-MM-DD` names no day of the calendar, or undefined when it names one. */
export function unrealDate(text: string): string | undefined {
  const [year, month, day] = text.slice(0, 10).split("-").map(Number) as [number, number, number];
  if (month < 1 || month > 12) return `there is no month ${month}`;
  const lastOfMonth = new Date(0);
  lastOfMonth.setUTCFullYear(year, month, 0); // day 0 of the next month; setUTCFullYear keeps years below 100 as they are
  const daysInMonth = lastOfMonth.getUTCDate();
  if (day < 1 || day > daysInMonth) return `${monthNames[month - 1]} ${year} has days 1 to ${daysInMonth}`;
  return undefined;
}

/** unrealInstant says why an instant matching isoUtcInstant's pattern names no real time, or undefined when it names one. */
export function unrealInstant(text: string): string | undefined {
  const dateProblem = unrealDate(text);
  if (dateProblem !== undefined) return dateProblem;
  const [hour, minute, second] = text.slice(11, 19).split(":").map(Number) as [number, number, number];
  if (hour > 23) return `hours run from 00 to 23${hour === 24 ? " (write the next day's 00:00)" : ""}`;
  if (minute > 59) return "minutes run from 00 to 59";
  if (second > 59) return "seconds run from 00 to 59 (leap seconds are not accepted)";
  return undefined;
}

export const registerScientistBody = z
  .object({
    name: z.string().trim().min(1).max(120),
    email: z.email().max(254),
    institution: z.string().trim().max(120).optional(),
  })
  .strict();

export const createBookingBody = z
  .object({
    telescopeId: z.string().min(1).max(64),
    startUtc: isoUtcInstant,
    endUtc: isoUtcInstant,
    /** requestedAtUtc: the client's clock after Cristian's synchronisation, when the scientist asked. */
    requestedAtUtc: isoUtcInstant,
  })
  .strict();

export const listBookingsQuery = z
  .object({
    telescopeId: z.string().min(1).max(64).optional(),
    scientistId: z.string().min(1).max(64).optional(),
    day: daySchema.optional(),
    status: z.enum(["confirmed", "cancelled"]).optional(),
    limit: z.coerce.number().int().min(1).max(100).default(20),
    cursor: z.string().max(600).optional(),
  })
  .strict()
  .refine((query) => query.day === undefined || query.telescopeId !== undefined || query.scientistId !== undefined, {
    message: "day needs telescopeId or scientistId",
    path: ["day"],
  });

export const auditQuery = z
  .object({ limit: z.coerce.number().int().min(1).max(500).default(100), cursor: z.string().max(600).optional() })
  .strict();

export const idempotencyKeyHeader = z.string().min(1).max(128);

const error = z.object({ error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }) });

type Operation = {
  summary: string;
  auth?: boolean;
  body?: z.ZodType;
  query?: z.ZodType;
  responses: Record<string, string>;
};

const operations: Record<string, Record<string, Operation>> = {
  "/api": { get: { summary: "Entry point: links to everything", responses: { "200": "links" } } },
  "/time": { get: { summary: "The server's clock, for Cristian's algorithm", responses: { "200": "serverTimeUtc, serverTimeMs" } } },
  "/scientists": {
    post: {
      summary: "Register a scientist; returns the API key once",
      body: registerScientistBody,
      responses: { "201": "scientist and apiKey", "400": "invalid", "409": "email_taken" },
    },
  },
  "/scientists/{id}": { get: { summary: "One scientist", auth: true, responses: { "200": "scientist", "404": "not_found" } } },
  "/telescopes": { get: { summary: "The telescopes", responses: { "200": "items" } } },
  "/telescopes/{id}": { get: { summary: "One telescope", responses: { "200": "telescope", "404": "not_found" } } },
  "/telescopes/{id}/days/{day}": {
    get: { summary: "A telescope's day as a grid of slots", responses: { "200": "slots", "400": "invalid day", "404": "not_found" } },
  },
  "/bookings": {
    post: {
      summary: "Book slots (one fenced transaction under the slots' leases)",
      auth: true,
      body: createBookingBody,
      responses: {
        "201": "booking",
        "400": "invalid",
        "401": "unauthorized",
        "409": "slot_busy, slot_taken, lease_lost",
        "422": "rules",
        "429": "rate_limited",
        "503": "cluster_unavailable",
      },
    },
    get: { summary: "List bookings, filtered and paged", auth: true, query: listBookingsQuery, responses: { "200": "items and links" } },
  },
  "/bookings/{id}": {
    get: { summary: "One booking", auth: true, responses: { "200": "booking", "404": "not_found" } },
    delete: {
      summary: "Cancel a booking (owner only; the booking's cancel link)",
      auth: true,
      responses: {
        "200": "cancelled booking",
        "403": "forbidden",
        "404": "not_found",
        "409": "already_cancelled, slot_busy, lease_lost",
        "422": "already_started",
      },
    },
  },
  "/audit": {
    get: { summary: "The audit chain, verified", auth: true, query: auditQuery, responses: { "200": "chain status and records" } },
  },
  "/events": { get: { summary: "WebSocket: booking events from the committed log", responses: { "101": "upgrade" } } },
  "/healthz": { get: { summary: "Health: is the cluster reachable", responses: { "200": "ok", "503": "cluster unreachable" } } },
};

/** openApiDocument builds OpenAPI 3.1 from the schemas above. */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [path, methods] of Object.entries(operations)) {
    paths[path] = {};
    for (const [method, operation] of Object.entries(methods)) {
      const parameters: unknown[] = [...path.matchAll(/\{(\w+)\}/g)].map((match) => ({
        name: match[1],
        in: "path",
        required: true,
        schema: { type: "string" },
      }));
      if (operation.query !== undefined) {
        const schema = z.toJSONSchema(operation.query, { io: "input", unrepresentable: "any" }) as {
          properties?: Record<string, unknown>;
          required?: string[];
        };
        for (const [name, property] of Object.entries(schema.properties ?? {})) {
          parameters.push({ name, in: "query", required: schema.required?.includes(name) ?? false, schema: property });
        }
      }
      const responses = Object.fromEntries(
        Object.entries(operation.responses).map(([status, description]) => [
          status,
          Number(status) >= 400 ? { description, content: { "application/json": { schema: z.toJSONSchema(error) } } } : { description },
        ]),
      );
      paths[path][method] = {
        summary: operation.summary,
        parameters,
        ...(operation.auth === true ? { security: [{ apiKey: [] }] } : {}),
        ...(operation.body === undefined
          ? {}
          : {
              requestBody: {
                required: true,
                content: { "application/json": { schema: z.toJSONSchema(operation.body, { io: "input", unrepresentable: "any" }) } },
              },
            }),
        responses,
      };
    }
  }
  return {
    openapi: "3.1.0",
    info: { title: "SCTEC booking API", version: "1.0.0", description: "See docs/API.md" },
    paths,
    components: { securitySchemes: { apiKey: { type: "http", scheme: "bearer" } } },
  };
}
