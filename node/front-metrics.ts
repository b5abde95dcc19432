// FrontMetrics: the HTTP side's Prometheus metrics, and GET /metrics as a whole. It counts and
// times HTTP requests (labelled by route, a fixed small set, never by URL), carries prom-client's
// process metrics (one set per process), and the event-loop lag of both of the node's loops:
// `sctec_event_loop_lag_seconds{loop="http"}` for this thread, `{loop="raft"}` for the raft
// thread, which it asks at scrape time. Its text is followed by the Raft side's families
// (metrics.ts), so one scrape shows the node whole.

import type { ServerResponse } from "node:http";
import type { NextFunction, Request, Response } from "express";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { LoopLag } from "./loop-lag.ts";
import { latencyBucketsSeconds } from "./metrics.ts";

/** httpRoutes are the node's routes; any other path is counted as "other", so labels stay few. */
const httpRoutes = new Set([
  "/",
  "/metrics",
  "/status",
  "/status/view",
  "/status/live",
  "/healthz",
  "/lock",
  "/unlock",
  "/renew",
  "/txn",
  "/kv",
  "/watch",
  "/leases",
  "/admin/members",
  "/admin/transfer",
  "/admin/restart",
]);

/** routeOf names the route of a request path for metric labels. */
export function routeOf(path: string): string {
  if (httpRoutes.has(path)) return path;
  if (path.startsWith("/kv/")) return "/kv/:key";
  if (path.startsWith("/status-page/")) return "/status-page/*";
  return "other";
}

export interface FrontMetricsOptions {
  readonly nodeId: string;
  /** processMetrics adds prom-client's process metrics (one set per process). */
  readonly processMetrics: boolean;
  /** httpLoopLag: this thread's event-loop lag. */
  readonly httpLoopLag: () => LoopLag;
  /** raftLoopLag: the raft thread's, asked at scrape time. */
  readonly raftLoopLag: () => Promise<LoopLag>;
  /** raftMetricsText: the Raft side's families in the text format, asked at scrape time. */
  readonly raftMetricsText: () => Promise<string>;
  /** requestQueue: the admission gate's client requests in flight and its limit (admission.ts), if the node has one. */
  readonly requestQueue?: () => { readonly depth: number; readonly requestQueueMax: number };
}

export class FrontMetrics {
  readonly registry = new Registry();
  private readonly options: FrontMetricsOptions;
  private readonly httpRequests: Counter<"route" | "method" | "status">;
  private readonly httpSeconds: Histogram<"route" | "method">;
  private readonly requestsShed: Counter<"route" | "reason">;

  constructor(options: FrontMetricsOptions) {
    this.options = options;
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node_id: options.nodeId });
    if (options.processMetrics) collectDefaultMetrics({ register: this.registry });
    this.httpRequests = new Counter({
      name: "sctec_http_requests_total",
      help: "HTTP requests answered, by route (not URL), method and status.",
      labelNames: ["route", "method", "status"],
      registers,
    });
    this.httpSeconds = new Histogram({
      name: "sctec_http_request_duration_seconds",
      help: "HTTP request latency, from arrival to the last byte of the answer, by route and method.",
      labelNames: ["route", "method"],
      buckets: latencyBucketsSeconds,
      registers,
    });
    this.requestsShed = new Counter({
      name: "sctec_requests_shed_total",
      help: "Client requests answered 503 at once by the admission gate, by route: reason overloaded (the queue was full) or shutting_down (the node is stopping).",
      labelNames: ["route", "reason"],
      registers,
    });
    this.defineLoopLagGauges();
    this.defineRequestQueueGauges();
  }

  /** defineRequestQueueGauges: the admission gate's depth and limit, read at scrape time (when the node has a gate). */
  private defineRequestQueueGauges(): void {
    const requestQueue = this.options.requestQueue;
    if (requestQueue === undefined) return;
    const registers = [this.registry];
    new Gauge({
      name: "sctec_request_queue_depth",
      help: "Client requests in flight now, as the admission gate counts them (the API's calls; /watch and the open endpoints excepted).",
      registers,
      collect() {
        this.set(requestQueue().depth);
      },
    });
    new Gauge({
      name: "sctec_request_queue_max",
      help: "The admission gate's limit (SCTEC_REQUEST_QUEUE_MAX): one more request in flight is answered 503 overloaded.",
      registers,
      collect() {
        this.set(requestQueue().requestQueueMax);
      },
    });
  }

  /** defineLoopLagGauges: p99 and max of each loop's lag over the last window (loop-lag.ts), read at scrape time. */
  private defineLoopLagGauges(): void {
    const options = this.options;
    const registers = [this.registry];
    const lags = async (): Promise<[string, LoopLag][]> => [
      ["http", options.httpLoopLag()],
      ["raft", await options.raftLoopLag()],
    ];
    new Gauge({
      name: "sctec_event_loop_lag_seconds",
      help: "How late the loop ran its timers, p99 over the last few seconds: loop raft (driver, transport, disk) or http (the API).",
      labelNames: ["loop"],
      registers,
      async collect() {
        for (const [loop, lag] of await lags()) this.set({ loop }, lag.p99Ms / 1000);
      },
    });
    new Gauge({
      name: "sctec_event_loop_lag_max_seconds",
      help: "How late the loop ran its timers, at most, over the last few seconds: loop raft or http.",
      labelNames: ["loop"],
      registers,
      async collect() {
        for (const [loop, lag] of await lags()) this.set({ loop }, lag.maxMs / 1000);
      },
    });
  }

  /** httpMiddleware counts and times every request once its answer is sent (or the caller hung up). */
  httpMiddleware(): (request: Request, response: Response, next: NextFunction) => void {
    return (request, response, next) => {
      // Named now: mounted routers rewrite the path while they run.
      this.observeRequest(request.path, request.method, response);
      next();
    };
  }

  /** observeRequest counts and times one request once its answer is sent (the API's hot path calls it directly). */
  observeRequest(path: string, requestMethod: string, response: ServerResponse): void {
    const startedMs = performance.now();
    const route = routeOf(path);
    const method = requestMethod === "GET" || requestMethod === "POST" ? requestMethod : "other";
    response.once("close", () => {
      this.httpRequests.inc({ route, method, status: String(response.statusCode) });
      this.httpSeconds.observe({ route, method }, (performance.now() - startedMs) / 1000);
    });
  }

  /** requestShed counts a request the admission gate answered at once (admission.ts ShedObserver), and observes it like any other. */
  requestShed(path: string, method: string, reason: "overloaded" | "shutting_down", response: ServerResponse): void {
    this.requestsShed.inc({ route: routeOf(path.split("?")[0] ?? path), reason });
    this.observeRequest(path.split("?")[0] ?? path, method, response);
  }

  /** text renders this side's metrics and then the Raft side's, in the Prometheus text format. */
  async text(): Promise<string> {
    const [front, raft] = await Promise.all([this.registry.metrics(), this.options.raftMetricsText()]);
    return raft === "" ? front : `${front.endsWith("\n") ? front : `${front}\n`}${raft}`;
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
