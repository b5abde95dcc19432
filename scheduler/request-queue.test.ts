// The booking API bounds its own requests in flight (issue 17): with a limit of 2 and two requests
// held open, the next is answered at once 503 overloaded with Retry-After (whole seconds, at least
// 1) and details.retryAfterMs; /healthz and /metrics are not counted and still answer; a place
// freed is taken again; and the metrics show the queue and count what was shed. The app is the
// real one (createApp), its cluster a stand-in whose reads wait until the test lets them go.

import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../harness/process-cluster.ts";
import { parsePrometheusText } from "../harness/prometheus-text.ts";
import { createApp } from "./app.ts";
import type { Bookings } from "./bookings.ts";
import type { ClusterPort } from "./cluster.ts";
import type { SchedulerLogger } from "./logging.ts";
import { SchedulerMetrics } from "./metrics.ts";
import { RequestQueue } from "./middleware.ts";
import type { Scientists } from "./scientists.ts";

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

describe("RequestQueue", () => {
  it("sheds at once past its limit with Retry-After, leaves /healthz and /metrics alone, and is counted", async () => {
    let letGo: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      letGo = resolve;
    });
    // GET /healthz asks the cluster's applied index; GET /time does not touch the cluster, so the
    // requests held open are GET /audit, whose first read waits here.
    const cluster = {
      appliedIndex: async () => 1,
      range: async () => {
        await held;
        return { items: [], more: false };
      },
    } as unknown as ClusterPort;
    const scientists = {
      authenticate: async () => ({ id: "sci_1", name: "A", email: "a@example.org" }),
    } as unknown as Scientists;
    const requestQueue = new RequestQueue({ requestQueueMax: 2, retryAfterMs: 1500 });
    const metrics = new SchedulerMetrics({ instanceId: "test", processMetrics: false, requestQueue });
    const app = createApp({
      bookings: {} as Bookings,
      scientists,
      cluster,
      telescopes: [],
      log: pino({ level: "silent" }) as unknown as SchedulerLogger,
      nowMs: () => Date.now(),
      bodyBytesMax: 16_384,
      rateLimitPerMinute: 1000,
      rateLimitPerAddressPerMinute: 1000,
      registrationsPerAddressPerHour: 1000,
      auditVerifyRecordsMax: 1000,
      onRequest: metrics.onRequest,
      metrics,
      requestQueue,
    });
    const server = app.listen(0, "127.0.0.1");
    servers.push(server);
    await new Promise((resolve) => server.once("listening", resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const audit = () => fetch(`${base}/audit`, { headers: { authorization: "Bearer key" } });

    const first = audit();
    const second = audit();
    await waitFor(() => (requestQueue.depth() === 2 ? true : undefined), "two requests held open", 10_000);
    const shed = await audit();
    expect(shed.status).toBe(503);
    expect(shed.headers.get("retry-after")).toBe("2");
    expect(shed.headers.get("x-request-id")).not.toBeNull();
    expect(await shed.json()).toMatchObject({ error: { code: "overloaded", details: { retryAfterMs: 1500 } } });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const scraped = await fetch(`${base}/metrics`);
    expect(scraped.status).toBe(200);
    const text = parsePrometheusText(await scraped.text());
    expect(text.sum("sctec_scheduler_request_queue_depth")).toBe(2);
    expect(text.sum("sctec_scheduler_request_queue_max")).toBe(2);
    expect(text.sum("sctec_scheduler_requests_shed_total")).toBe(1);

    letGo();
    expect((await first).status).not.toBe(503);
    expect((await second).status).not.toBe(503);
    await waitFor(() => (requestQueue.depth() === 0 ? true : undefined), "the held requests to end", 10_000);
    expect((await audit()).status).not.toBe(503);
    expect(requestQueue.shed()).toBe(1);
  });

  it("refuses a limit that bounds nothing", () => {
    expect(() => new RequestQueue({ requestQueueMax: 0, retryAfterMs: 1000 })).toThrow(/requestQueueMax/);
  });
});
