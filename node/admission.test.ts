// Admission control (issue 17, item 2). The gate alone on a fake clock: it takes requests up to its
// limit, sheds the next at once (counted, timed), refuses everything once closed, and says when
// its requests in flight have drained, or that the bound ran out. Then on an in-process cluster
// over HTTP, with a limit of 3: three acquires that wait for a held lock fill the leader's queue;
// the next request is answered at once 503 overloaded with Retry-After and details.retryAfterMs,
// while the three still wait; /status and /watch still answer; the metrics count the shed request
// and show the queue; and a LockClient that is shed waits what the node asked (plus its jitter),
// tries again once a place is free, and succeeds. Nothing here waits for wall-clock speed: each
// wait is for a condition, bounded.

import { afterEach, describe, expect, it } from "vitest";
import { LockClient } from "../client/lock-client.ts";
import { waitFor } from "../harness/process-cluster.ts";
import { parsePrometheusText } from "../harness/prometheus-text.ts";
import type { NodeId } from "../raft/index.ts";
import { AdmissionGate, gateClassOf } from "./admission.ts";
import { FrontMetrics } from "./front-metrics.ts";
import { type HttpCluster, startHttpCluster } from "./testing/http-cluster.ts";
import { ManualClock } from "./testing/manual-clock.ts";

describe("AdmissionGate", () => {
  it("takes requests up to its limit and sheds the next at once, counted with when", () => {
    const clock = new ManualClock();
    const gate = new AdmissionGate({ requestQueueMax: 2, retryAfterMs: 300, clock });
    expect([gate.admit(), gate.admit()]).toEqual(["admitted", "admitted"]);
    clock.advance(40);
    expect(gate.admit()).toBe("overloaded");
    clock.advance(10);
    expect(gate.load()).toEqual({ depth: 2, requestQueueMax: 2, shedTotal: 1, lastShedAgoMs: 10 });
    gate.release();
    expect(gate.admit()).toBe("admitted");
    expect(gate.depth()).toBe(2);
  });

  it("refuses everything once closed, while the requests in flight go on; drained says when they are done", async () => {
    const clock = new ManualClock();
    const gate = new AdmissionGate({ requestQueueMax: 5, retryAfterMs: 0, clock });
    gate.admit();
    gate.admit();
    gate.close();
    expect(gate.admit()).toBe("shutting_down");
    const drained = gate.drained(1000);
    gate.release();
    clock.advance(500);
    gate.release();
    expect(await drained).toBe(true);
    expect(await gate.drained(1000)).toBe(true); // Nothing in flight: at once.
  });

  it("drained gives up when its bound runs out first", async () => {
    const clock = new ManualClock();
    const gate = new AdmissionGate({ requestQueueMax: 5, retryAfterMs: 0, clock });
    gate.admit();
    const drained = gate.drained(1000);
    clock.advance(999);
    clock.advance(1);
    expect(await drained).toBe(false);
    gate.release();
    expect(gate.depth()).toBe(0);
  });

  it("refuses a limit that bounds nothing, and a release without an admission", () => {
    const clock = new ManualClock();
    expect(() => new AdmissionGate({ requestQueueMax: 0, retryAfterMs: 0, clock })).toThrow(/requestQueueMax/);
    expect(() => new AdmissionGate({ requestQueueMax: 1, retryAfterMs: 0, clock }).release()).toThrow(/released more/);
  });

  it("sheds new work at its limit, and work on a lease held (release, renewal, fenced write) only at twice the limit", () => {
    const gate = new AdmissionGate({ requestQueueMax: 2, retryAfterMs: 300, clock: new ManualClock() });
    expect([gate.admit(), gate.admit(), gate.admit()]).toEqual(["admitted", "admitted", "overloaded"]);
    expect([gate.admit(true), gate.admit(true), gate.admit(true)]).toEqual(["admitted", "admitted", "overloaded"]);
    expect(gate.depth()).toBe(4);
  });

  it("gates the client API, not the open endpoints or the watch long polls", () => {
    for (const path of ["/lock", "/kv/a", "/kv?prefix=a", "/leases", "/admin/members", "/admin/restart"])
      expect(gateClassOf(path), path).toBe("new");
    for (const path of ["/unlock", "/renew", "/txn"]) expect(gateClassOf(path), path).toBe("finishing");
    for (const path of ["/status", "/healthz", "/metrics", "/", "/status/view", "/status-page/status.js", "/watch?after=1", "/locks"])
      expect(gateClassOf(path), path).toBe("open");
  });
});

describe("admission control on a cluster over HTTP", () => {
  let cluster: HttpCluster | undefined;
  afterEach(async () => {
    await cluster?.stop();
    cluster = undefined;
  });

  it("sheds at once with Retry-After when the leader's queue is full, counts it, and a LockClient backs off and succeeds", async () => {
    const metricsOf = new Map<string, FrontMetrics>();
    const started = await startHttpCluster({
      admission: {
        requestQueueMax: 3,
        retryAfterMs: 300,
        onShed: (id) => (path, method, verdict, response) => metricsOf.get(id)?.requestShed(path, method, verdict, response),
      },
    });
    cluster = started;
    for (const id of started.hosts.keys()) {
      const gate = started.gates.get(id) as AdmissionGate;
      // The HTTP side's metrics, where the gate lives (the Raft side's are not needed here).
      metricsOf.set(
        id,
        new FrontMetrics({
          nodeId: id,
          processMetrics: false,
          httpLoopLag: () => ({ p50Ms: 0, p99Ms: 0, maxMs: 0 }),
          raftLoopLag: async () => ({ p50Ms: 0, p99Ms: 0, maxMs: 0 }),
          raftMetricsText: async () => "",
          requestQueue: () => gate.load(),
        }),
      );
    }
    const leaderUrl = started.leaderUrl();
    const leaderId = [...started.urls].find(([, url]) => url === leaderUrl)?.[0] as string;
    const gate = started.gates.get(leaderId as NodeId) as AdmissionGate;
    const post = (path: string, body: object) =>
      fetch(`${leaderUrl}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${started.apiToken}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });

    const held = (await (await post("/lock", { resource: "busy", owner: "holder", ttlMs: 60_000 })).json()) as { token: string };
    const waitersAnswered: number[] = [];
    for (const n of [1, 2, 3]) {
      void post("/lock", { resource: "busy", owner: `waiter-${n}`, ttlMs: 60_000, waitMs: 20_000 }).then(
        (answer) => waitersAnswered.push(answer.status),
        () => undefined, // The last two still wait when the cluster stops.
      );
    }
    await waitFor(() => (gate.depth() === 3 ? true : undefined), "three waiting acquires in the leader's queue", 10_000);

    const shed = await post("/lock", { resource: "elsewhere", owner: "late", ttlMs: 60_000 });
    expect(shed.status).toBe(503);
    expect(shed.headers.get("retry-after")).toBe("1");
    const body = (await shed.json()) as { error: { code: string; details: { retryAfterMs: number } } };
    expect(body.error.code).toBe("overloaded");
    expect(body.error.details.retryAfterMs).toBe(300);
    expect(waitersAnswered).toEqual([]); // Shed at once: the queue was still full when it was answered.
    // The open endpoints and the watch long poll are not behind the gate.
    expect((await fetch(`${leaderUrl}/status`)).status).toBe(200);
    const watch = await fetch(`${leaderUrl}/watch?timeoutMs=0`, { headers: { authorization: `Bearer ${started.apiToken}` } });
    expect(watch.status).toBe(200);

    const metrics = metricsOf.get(leaderId) as FrontMetrics;
    let text = parsePrometheusText(await metrics.text());
    expect(text.sum("sctec_requests_shed_total", { route: "/lock", reason: "overloaded" })).toBe(1);
    expect(text.sum("sctec_request_queue_depth")).toBe(3);
    expect(text.sum("sctec_request_queue_max")).toBe(3);
    // Counted once its answer is out (the response's close), which may come a moment after the client has read it.
    await waitFor(
      async () =>
        parsePrometheusText(await metrics.text()).sum("sctec_http_requests_total", { route: "/lock", status: "503" }) === 1
          ? true
          : undefined,
      "the shed request among the HTTP requests",
      10_000,
    );

    // A client that is shed waits what the node asked plus its jitter, then finds a place.
    const sleeps: number[] = [];
    const client = new LockClient({
      nodes: [leaderUrl],
      apiToken: started.apiToken,
      random: () => 0.5,
      sleep: async (ms) => {
        sleeps.push(ms);
        // While it waits, the holder lets go (a release is taken although the queue is full: it
        // finishes work): the first waiter is granted and answered, which frees a place.
        if (sleeps.length === 1) expect((await post("/unlock", { resource: "busy", token: held.token })).status).toBe(200);
        await waitFor(() => (gate.depth() < 3 ? true : undefined), "a free place in the queue", 10_000);
      },
    });
    const lease = await client.acquire(["free"], { ttlMs: 60_000, autoRenew: false });
    expect(lease.token).toMatch(/^\d+$/);
    expect(sleeps).toEqual([300 + 25]); // 300 asked + full jitter of the first backoff step (0.5 × 50).
    text = parsePrometheusText(await metrics.text());
    expect(text.sum("sctec_requests_shed_total", { route: "/lock", reason: "overloaded" })).toBe(2);
    await lease.release();
    expect(waitersAnswered[0]).toBe(200); // The first waiter was granted when the holder let go.
  }, 60_000);
});
