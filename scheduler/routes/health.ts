// The operator's endpoints, open like a load balancer needs them: GET /healthz (can this scheduler
// reach the cluster?) and GET /metrics (Prometheus text, scheduler/metrics.ts).

import { Router } from "express";
import type { ClusterPort } from "../cluster.ts";
import { ApiError } from "../errors.ts";

/** MetricsText: what GET /metrics serves. */
export interface MetricsText {
  text(): Promise<string>;
  readonly contentType: string;
}

/**
 * healthRoutes serves /healthz (503 when the cluster does not answer; `pid` says which process
 * answered, for npm start's readiness check) and /metrics (404 without a registry).
 */
export function healthRoutes(cluster: ClusterPort, metrics: MetricsText | undefined): Router {
  const router = Router();
  router.get("/healthz", async (_request, response) => {
    try {
      await cluster.appliedIndex();
      response.json({ ok: true, cluster: "reachable", pid: process.pid });
    } catch {
      response.status(503).json({ ok: false, cluster: "unreachable", pid: process.pid });
    }
  });

  router.get("/metrics", async (_request, response) => {
    if (metrics === undefined) throw new ApiError("not_found", "this scheduler keeps no metrics");
    const text = await metrics.text();
    response.setHeader("content-type", metrics.contentType);
    response.setHeader("cache-control", "no-store");
    response.send(text);
  });
  return router;
}
