// The booking API's HTTP surface (docs/API.md): express 5, every input validated with zod,
// HATEOAS links on every answer, one error shape. This file only puts the pieces in order: the
// edge's middleware (middleware.ts), one router per resource (routes/*.ts), the booking page
// (web/), and the error handler. The flows live in bookings.ts and scientists.ts.

import { fileURLToPath } from "node:url";
import express from "express";
import { AuditTrail } from "./audit.ts";
import type { Bookings } from "./bookings.ts";
import type { ClusterPort } from "./cluster.ts";
import type { SchedulerLogger as Logger } from "./logging.ts";
import {
  addressRateLimit,
  errorHandler,
  hidePageInternals,
  jsonBodies,
  notFound,
  type RequestQueue,
  requestContext,
  requestIds,
} from "./middleware.ts";
import { apiRoutes } from "./routes/api.ts";
import { auditRoutes } from "./routes/audit.ts";
import { bookingRoutes } from "./routes/bookings.ts";
import { healthRoutes, type MetricsText } from "./routes/health.ts";
import { scientistRoutes } from "./routes/scientists.ts";
import { telescopeRoutes } from "./routes/telescopes.ts";
import { timeRoutes } from "./routes/time.ts";
import type { Scientists } from "./scientists.ts";
import type { Telescope } from "./slots.ts";

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
  /** webRoot: the directory of the booking page (scheduler/web). */
  readonly webRoot?: string;
  /** onRequest: observes every answered request (for metrics). */
  readonly onRequest?: (route: string, method: string, status: number, durationMs: number) => void;
  /** metrics: served at GET /metrics in the Prometheus text format (scheduler/metrics.ts), open like /healthz. */
  readonly metrics?: MetricsText;
  /** requestQueue bounds the requests served at once (503 overloaded beyond it); none: unbounded (tests). */
  readonly requestQueue?: RequestQueue;
}

const defaultWebRoot = fileURLToPath(new URL("./web/", import.meta.url));

export function createApp(options: AppOptions): express.Express {
  const app = express();
  const context = requestContext(options);
  const { bookings, nowMs, telescopes } = options;
  app.disable("x-powered-by");
  app.set("trust proxy", "loopback, uniquelocal");
  app.use(requestIds(options.onRequest));
  // First after the id: a request shed for overload costs as little as possible (no rate-limit
  // bookkeeping, no body parsing), and is still counted in the metrics and carries its id.
  if (options.requestQueue !== undefined) app.use(options.requestQueue.middleware());
  // Two limits: this one per address on everything, before any key is checked; the other per
  // scientist once a key has been verified (context.authenticate).
  app.use(addressRateLimit(options.rateLimitPerAddressPerMinute));
  app.use(jsonBodies(options.bodyBytesMax));
  // Each router is mounted at the root with its full paths, so express's route pattern (the
  // metrics' `route` label) reads `/bookings/:id` as before, not a path relative to a mount point.
  app.use(apiRoutes(context));
  app.use(timeRoutes(context, nowMs));
  app.use(healthRoutes(options.cluster, options.metrics));
  app.use(scientistRoutes(context, options));
  app.use(telescopeRoutes(context, { telescopes, bookings, nowMs }));
  app.use(bookingRoutes(context, { bookings, nowMs }));
  app.use(auditRoutes(context, new AuditTrail(options.cluster, options.auditVerifyRecordsMax)));
  // The booking page's assets only: not its tests, type declarations or README.
  app.use(hidePageInternals);
  app.use(express.static(options.webRoot ?? defaultWebRoot, { index: "index.html", maxAge: 0 }));
  app.use(notFound);
  app.use(errorHandler({ log: options.log, bodyBytesMax: options.bodyBytesMax, context }));
  return app;
}
