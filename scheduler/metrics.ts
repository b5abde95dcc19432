// SchedulerMetrics: the scheduler's Prometheus metrics (GET /metrics), on a registry of its own so
// that several schedulers in one test process never share a counter. The booking flow reports to
// it through the BookingObserver hooks; HTTP requests through the app's onRequest hook, labelled
// by route pattern (never by URL), so the label sets stay few.

import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { BookingObserver, LockWaitOutcome } from "./bookings.ts";

export interface SchedulerMetricsOptions {
  readonly instanceId: string;
  /** processMetrics adds prom-client's process and event-loop metrics (one set per process: main.ts only). */
  readonly processMetrics: boolean;
  /** requestQueue: the admission bound's queue (middleware.ts), read at scrape time. */
  readonly requestQueue?: { depth(): number; shed(): number; readonly requestQueueMax: number };
}

/** Buckets in seconds: a lock round trip on loopback is a few milliseconds; a queued wait or a failover, seconds. */
const latencyBucketsSeconds = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class SchedulerMetrics implements BookingObserver {
  readonly registry = new Registry();
  private readonly bookingsCreated: Counter;
  private readonly bookingsCancelled: Counter;
  private readonly conflicts: Counter<"reason">;
  private readonly fencingRejections: Counter<"refused_by">;
  private readonly lockWaitSeconds: Histogram<"outcome">;
  private readonly httpRequests: Counter<"route" | "method" | "status">;
  private readonly httpSeconds: Histogram<"route" | "method">;

  constructor(options: SchedulerMetricsOptions) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ instance_id: options.instanceId });
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
    const queue = options.requestQueue;
    if (queue !== undefined) {
      new Gauge({
        name: "sctec_scheduler_request_queue_depth",
        help: "Requests being served now (the admission bound counts them; /healthz and /metrics excepted).",
        registers,
        collect() {
          this.set(queue.depth());
        },
      });
      new Gauge({
        name: "sctec_scheduler_request_queue_max",
        help: "The admission bound: requests served at once before one more is answered 503 overloaded.",
        registers,
        collect() {
          this.set(queue.requestQueueMax);
        },
      });
      // A counter read at scrape time: the queue counts, so the shedding path touches no metric.
      new Counter({
        name: "sctec_scheduler_requests_shed_total",
        help: "Requests answered 503 overloaded at once because the admission bound was reached.",
        registers,
        collect() {
          this.reset();
          this.inc(queue.shed());
        },
      });
    }
    this.bookingsCreated = new Counter({
      name: "sctec_scheduler_bookings_created_total",
      help: "Bookings stored (201), not counting replays of an Idempotency-Key.",
      registers,
    });
    this.bookingsCancelled = new Counter({ name: "sctec_scheduler_bookings_cancelled_total", help: "Bookings cancelled.", registers });
    this.conflicts = new Counter({
      name: "sctec_scheduler_booking_conflicts_total",
      help: "Booking requests refused with 409: reason slot_busy (another request held a slot's lease) or slot_taken (already booked).",
      labelNames: ["reason"],
      registers,
    });
    this.fencingRejections = new Counter({
      name: "sctec_scheduler_fencing_rejections_total",
      help: "Writes refused because their lease was no longer current, answered lease_lost: refused_by client (the lease's local deadline passed, nothing was sent) or cluster (stale fencing token).",
      labelNames: ["refused_by"],
      registers,
    });
    this.lockWaitSeconds = new Histogram({
      name: "sctec_scheduler_lock_wait_seconds",
      help: "Time to take a booking's slot leases, by outcome: acquired, busy (409) or failed (the cluster did not answer).",
      labelNames: ["outcome"],
      buckets: latencyBucketsSeconds,
      registers,
    });
    this.httpRequests = new Counter({
      name: "sctec_scheduler_http_requests_total",
      help: "HTTP requests answered, by route pattern (not URL), method and status.",
      labelNames: ["route", "method", "status"],
      registers,
    });
    this.httpSeconds = new Histogram({
      name: "sctec_scheduler_http_request_duration_seconds",
      help: "HTTP request latency, from arrival to the answer, by route pattern and method.",
      labelNames: ["route", "method"],
      buckets: latencyBucketsSeconds,
      registers,
    });
  }

  bookingCreated(): void {
    this.bookingsCreated.inc();
  }

  bookingCancelled(): void {
    this.bookingsCancelled.inc();
  }

  bookingConflict(reason: "slot_busy" | "slot_taken"): void {
    this.conflicts.inc({ reason });
  }

  fencingRejected(refusedBy: "client" | "cluster"): void {
    this.fencingRejections.inc({ refused_by: refusedBy });
  }

  lockWaited(durationMs: number, outcome: LockWaitOutcome): void {
    this.lockWaitSeconds.observe({ outcome }, durationMs / 1000);
  }

  /** onRequest fits AppOptions.onRequest: `route` is express's route pattern ("unmatched" for static files and 404s). */
  readonly onRequest = (route: string, method: string, status: number, durationMs: number): void => {
    const knownMethod = ["GET", "POST", "DELETE"].includes(method) ? method : "other";
    this.httpRequests.inc({ route, method: knownMethod, status: String(status) });
    this.httpSeconds.observe({ route, method: knownMethod }, durationMs / 1000);
  };

  /** text renders every metric in the Prometheus text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
