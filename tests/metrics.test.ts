// GET /metrics on real processes: three lock nodes and a scheduler on loopback. Shown:
// - the strict reader (support/prometheus-text.ts) accepts good text and refuses broken text, so
//   "it parses" means something;
// - every node's /metrics parses as Prometheus text (the HTTP thread's families and the raft
//   thread's, each declared once), names its role (one leader), term and indexes, both loops'
//   event-loop lag, and its lease counters move when locks are taken, refused and released, on the
//   leader at once and on the followers as they apply the same entries;
// - the scheduler's /metrics parses, and counts bookings created, conflicts, lock waits and HTTP
//   requests by route pattern (the fencing rejection is shown in booking-system.test.ts).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BookingSystem, startBookingSystem } from "../harness/booking-system.ts";
import { waitFor } from "../harness/process-cluster.ts";
import { type Exposition, parsePrometheusText } from "../harness/prometheus-text.ts";

describe("the Prometheus text reader", () => {
  const good = [
    "# HELP jobs_total Jobs done.",
    "# TYPE jobs_total counter",
    'jobs_total{kind="a",note="say \\"hi\\"\\n"} 3',
    "# HELP wait_seconds Wait.",
    "# TYPE wait_seconds histogram",
    'wait_seconds_bucket{le="0.1"} 1',
    'wait_seconds_bucket{le="+Inf"} 2',
    "wait_seconds_sum 0.5",
    "wait_seconds_count 2",
    "",
  ].join("\n");

  it("reads samples, labels (with escapes) and histograms", () => {
    const parsed = parsePrometheusText(good);
    expect(parsed.sum("jobs_total", { kind: "a" })).toBe(3);
    expect(parsed.samples[0]?.labels["note"]).toBe('say "hi"\n');
    expect(parsed.sum("wait_seconds_count")).toBe(2);
  });

  it("refuses what a scraper would refuse", () => {
    expect(() => parsePrometheusText("undeclared 1\n")).toThrow(/without a declared TYPE/);
    expect(() => parsePrometheusText(good.replace('le="+Inf"} 2', 'le="+Inf"} 0'))).toThrow(/not cumulative/);
    expect(() => parsePrometheusText(good.replace("wait_seconds_count 2", "wait_seconds_count 3"))).toThrow(/differs from _count/);
    expect(() => parsePrometheusText(good.replace('{kind="a"', '{kind=a"'))).toThrow(/malformed/);
    expect(() => parsePrometheusText(good.replace("} 3", "} three"))).toThrow(/bad value/);
    expect(() => parsePrometheusText(good.trimEnd())).toThrow(/newline/);
  });
});

describe("/metrics on real processes", () => {
  let system: BookingSystem;

  beforeAll(async () => {
    system = await startBookingSystem({ schedulers: 1 });
  }, 120_000);

  afterAll(async () => {
    await system?.stop();
  }, 60_000);

  async function scrape(base: string): Promise<Exposition> {
    const response = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(5000) });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
    return parsePrometheusText(await response.text());
  }

  async function lockCall(base: string, path: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${base}${path}`, {
      method: "POST",
      headers: { authorization: `Bearer ${system.apiToken}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  it("every node's /metrics parses, and its lease counters move when locks are taken", async () => {
    const cluster = system.cluster;
    const leader = await cluster.waitForLeader(20_000);
    const leaderUrl = cluster.url(leader);
    const follower = cluster.ids().find((id) => id !== leader) as string;
    const before = new Map<string, Exposition>();
    for (const id of cluster.ids()) before.set(id, await scrape(cluster.url(id)));

    const leaderBefore = before.get(leader) as Exposition;
    expect(leaderBefore.sum("sctec_raft_role", { role: "leader" })).toBe(1);
    expect(leaderBefore.sum("sctec_raft_term")).toBeGreaterThan(0);
    expect(leaderBefore.sum("sctec_raft_elections_won_total")).toBeGreaterThanOrEqual(1);
    for (const id of cluster.ids()) {
      const metrics = before.get(id) as Exposition;
      expect(metrics.sum("sctec_raft_role")).toBe(1); // exactly one role is 1
      expect(metrics.sum("sctec_raft_role", { role: "leader" })).toBe(id === leader ? 1 : 0);
      expect(metrics.sum("sctec_raft_applied_index")).toBeGreaterThan(0);
      expect(metrics.types.get("sctec_storage_fsync_seconds")).toBe("histogram");
      expect(metrics.types.get("sctec_raft_append_seconds")).toBe("histogram");
      // Both of the node's loops report their lag (node/loop-lag.ts): the raft thread's and the HTTP thread's.
      for (const name of ["sctec_event_loop_lag_seconds", "sctec_event_loop_lag_max_seconds"]) {
        expect(metrics.types.get(name)).toBe("gauge");
        expect(metrics.samples.filter((sample) => sample.name === name).map((sample) => sample.labels["loop"])).toEqual(["http", "raft"]);
        for (const sample of metrics.samples.filter((candidate) => candidate.name === name)) expect(sample.value).toBeGreaterThanOrEqual(0);
      }
    }

    // A grant through a follower (forwarded), a conflict, a release.
    const resource = `metrics-${Date.now()}`;
    const granted = await lockCall(cluster.url(follower), "/lock", { resource, owner: "metrics-test", ttlMs: 10_000 });
    expect(granted.status).toBe(200);
    const refused = await lockCall(leaderUrl, "/lock", { resource, owner: "someone-else", ttlMs: 10_000 });
    expect(refused.status).toBe(409);
    const waiting = lockCall(leaderUrl, "/lock", { resource, owner: "patient", ttlMs: 10_000, waitMs: 5000 });
    await waitFor(
      async () => ((await scrape(leaderUrl)).sum("sctec_lease_waiters") === 1 ? true : undefined),
      "a waiter on the leader",
      10_000,
    );
    expect((await lockCall(leaderUrl, "/unlock", { resource, token: granted.body["token"] })).status).toBe(200);
    expect((await waiting).status).toBe(200);

    const leaderAfter = await scrape(leaderUrl);
    const delta = (name: string, labels?: Record<string, string>) => leaderAfter.sum(name, labels) - leaderBefore.sum(name, labels);
    expect(delta("sctec_lease_grants_total")).toBe(2); // the first acquire, then the waiter
    expect(delta("sctec_lease_conflicts_total")).toBe(1);
    expect(delta("sctec_lease_releases_total")).toBe(1);
    expect(delta("sctec_raft_queue_joins_held_total")).toBe(1); // the waiter's join, held for the next write or the second tick
    expect(delta("sctec_raft_proposals_total", { outcome: "accepted" })).toBeGreaterThanOrEqual(4);
    expect(delta("sctec_raft_append_seconds_count")).toBeGreaterThanOrEqual(4);
    expect(delta("sctec_storage_fsync_seconds_count", { op: "save" })).toBeGreaterThanOrEqual(4);
    expect(delta("sctec_raft_commit_index")).toBeGreaterThanOrEqual(4);
    expect(delta("sctec_http_requests_total", { route: "/lock", method: "POST", status: "409" })).toBe(1);
    expect(delta("sctec_http_request_duration_seconds_count", { route: "/lock", method: "POST" })).toBeGreaterThanOrEqual(2);
    expect(leaderAfter.sum("sctec_leases_held")).toBe(1); // the waiter holds it now

    // The follower forwarded the first acquire and applies the same entries a moment later.
    const followerBefore = before.get(follower) as Exposition;
    const followerAfter = await waitFor(
      async () => {
        const metrics = await scrape(cluster.url(follower));
        return metrics.sum("sctec_lease_grants_total") - followerBefore.sum("sctec_lease_grants_total") === 2 ? metrics : undefined;
      },
      "the follower's grants counter",
      10_000,
    );
    expect(followerAfter.sum("sctec_http_requests_total", { route: "/lock", method: "POST" })).toBeGreaterThan(
      followerBefore.sum("sctec_http_requests_total", { route: "/lock", method: "POST" }),
    );
  }, 90_000);

  it("the scheduler's /metrics parses and counts bookings, conflicts, lock waits and requests", async () => {
    const base = system.schedulerUrls[0] as string;
    const before = await scrape(base);
    const registered = await fetch(`${base}/scientists`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "Metra", email: `metra-${Date.now()}@example.org` }),
    });
    const apiKey = ((await registered.json()) as { apiKey: string }).apiKey;
    const start = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 5, 11, 0);
    const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;
    const book = () =>
      fetch(`${base}/bookings`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${apiKey}` },
        body: JSON.stringify({
          telescopeId: "hubble-acad",
          startUtc: iso(start),
          endUtc: iso(start + 300_000),
          requestedAtUtc: new Date().toISOString(),
        }),
      });
    const created = await book();
    expect(created.status).toBe(201);
    expect((await book()).status).toBe(409);
    // Labelled by route pattern, whatever router a route lives in: the booking's own path reads `/bookings/:id`.
    const shown = await fetch(`${base}${created.headers.get("location")}`, { headers: { authorization: `Bearer ${apiKey}` } });
    expect(shown.status).toBe(200);
    expect((await fetch(`${base}/no-such-endpoint`)).status).toBe(404);

    const after = await scrape(base);
    const delta = (name: string, labels?: Record<string, string>) => after.sum(name, labels) - before.sum(name, labels);
    expect(delta("sctec_scheduler_bookings_created_total")).toBe(1);
    expect(delta("sctec_scheduler_booking_conflicts_total", { reason: "slot_taken" })).toBe(1);
    expect(delta("sctec_scheduler_lock_wait_seconds_count", { outcome: "acquired" })).toBeGreaterThanOrEqual(2);
    expect(delta("sctec_scheduler_http_requests_total", { route: "/bookings", method: "POST", status: "201" })).toBe(1);
    expect(delta("sctec_scheduler_http_requests_total", { route: "/bookings", method: "POST", status: "409" })).toBe(1);
    expect(delta("sctec_scheduler_http_request_duration_seconds_count", { route: "/scientists", method: "POST" })).toBe(1);
    expect(delta("sctec_scheduler_http_requests_total", { route: "/bookings/:id", method: "GET", status: "200" })).toBe(1);
    expect(delta("sctec_scheduler_http_requests_total", { route: "unmatched", method: "GET", status: "404" })).toBeGreaterThanOrEqual(1);
    expect(after.types.get("sctec_scheduler_fencing_rejections_total")).toBe("counter");
  }, 60_000);
});
