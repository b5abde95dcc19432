// The booking API in one process against a real in-process three-node cluster: registration and
// keys, the rules, exactly one winner among simultaneous requests, idempotent retries, owner-only
// cancellation through the link, HATEOAS links, paging, the verified audit chain, live events over
// WebSocket (each id once, resumable), rate limits and input errors.

import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { LockClient } from "../client/lock-client.ts";
import { authorizedGet, rawHttp } from "../harness/raw-http.ts";
import { type HttpCluster, startHttpCluster } from "../node/testing/http-cluster.ts";
import { lockClusterPort } from "../scheduler/cluster.ts";
import type { Telescope } from "../scheduler/slots.ts";
import { type CallOptions, callApi, type InProcessScheduler, type Json, startInProcessScheduler } from "./support/scheduler-in-process.ts";

const telescopes: Telescope[] = [
  { id: "hubble-acad", name: "Hubble Acad", slotMinutes: 5, horizonDays: 30, slotsPerBookingMax: 12 },
  { id: "webb-acad", name: "Webb Acad", slotMinutes: 10, horizonDays: 30, slotsPerBookingMax: 12 },
];

type Scheduler = InProcessScheduler;

let cluster: HttpCluster;
/** clockOffsetMs moves the schedulers' clock (to make bookings start without waiting). */
let clockOffsetMs = 0;
let scheduler: Scheduler;
let otherScheduler: Scheduler;
let tmpLogDir: string;

function startScheduler(options: { rateLimitPerMinute?: number; rateLimitPerAddressPerMinute?: number } = {}): Promise<Scheduler> {
  return startInProcessScheduler({ cluster, telescopes, nowMs: () => Date.now() + clockOffsetMs, logDir: tmpLogDir, ...options });
}

beforeAll(async () => {
  const { mkdtempSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  tmpLogDir = mkdtempSync(join(tmpdir(), "sctec-scheduler-"));
  cluster = await startHttpCluster();
  scheduler = await startScheduler();
  otherScheduler = await startScheduler();
});
afterAll(async () => {
  for (const running of [scheduler, otherScheduler]) await running.close();
  await cluster.stop();
});

function call(method: string, path: string, options: CallOptions & { base?: string } = {}) {
  return callApi(options.base ?? scheduler.url, method, path, options);
}

let emailCounter = 0;
async function register(name = "Marie Curie"): Promise<{ id: string; key: string }> {
  emailCounter += 1;
  const answer = await call("POST", "/scientists", {
    body: { name, email: `scientist${emailCounter}@example.org`, institution: "Sorbonne" },
  });
  expect(answer.status).toBe(201);
  return { id: answer.body.scientist.id, key: answer.body.apiKey };
}

/** slot returns the start and end of the n-th 5-minute slot of tomorrow (UTC), always in the future. */
function slot(n: number, slots = 1): { startUtc: string; endUtc: string; day: string } {
  const midnight = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1);
  const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;
  return { startUtc: iso(midnight + n * 300_000), endUtc: iso(midnight + (n + slots) * 300_000), day: iso(midnight).slice(0, 10) };
}

function book(key: string, n: number, options: { slots?: number; idempotencyKey?: string; telescopeId?: string } = {}, base?: string) {
  const { startUtc, endUtc } = slot(n, options.slots);
  return call("POST", "/bookings", {
    ...(base === undefined ? {} : { base }),
    key,
    body: { telescopeId: options.telescopeId ?? "hubble-acad", startUtc, endUtc, requestedAtUtc: new Date().toISOString() },
    ...(options.idempotencyKey === undefined ? {} : { headers: { "idempotency-key": options.idempotencyKey } }),
  });
}

describe("scientists and keys", () => {
  it("registers a scientist, returns the key once, refuses a second registration of the email in any case", async () => {
    const answer = await call("POST", "/scientists", { body: { name: "Ada", email: "Ada@Example.org" } });
    expect(answer.status).toBe(201);
    expect(answer.headers.get("location")).toBe(`/scientists/${answer.body.scientist.id}`);
    expect(answer.body.apiKey).toMatch(/^sk_sci_[0-9a-f]{12}_/);
    expect(answer.body.scientist).not.toHaveProperty("keyHash");
    expect(answer.body._links.bookings.href).toBe(`/bookings?scientistId=${answer.body.scientist.id}`);
    const again = await call("POST", "/scientists", { body: { name: "Ada 2", email: "ada@example.ORG" } });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("email_taken");
    const me = await call("GET", `/scientists/${answer.body.scientist.id}`, { key: answer.body.apiKey });
    expect(me.status).toBe(200);
    expect(me.body.email).toBe("ada@example.org");
    expect(me.body).not.toHaveProperty("keyHash");
  });

  it("refuses bad input with the field named, and requests without a valid key", async () => {
    const bad = await call("POST", "/scientists", { body: { name: "", email: "not-an-email", extra: 1 } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("invalid_request");
    expect(bad.body.error.details.map((detail: Json) => detail.path)).toEqual(expect.arrayContaining(["name", "email"]));
    expect((await call("GET", "/bookings")).body.error.code).toBe("unauthorized");
    const { id } = await register();
    const forged = `sk_${id}_${"A".repeat(43)}`;
    expect((await call("GET", "/bookings", { key: forged })).status).toBe(401);
    expect(
      (await call("POST", "/scientists", { body: "{not json", headers: { "content-type": "application/json" } })).body.error.code,
    ).toBe("invalid_json");
    const huge = await call("POST", "/scientists", { body: { name: "x".repeat(5000), email: "a@b.org" } });
    expect(huge.status).toBe(413);
    expect(huge.body.error.code).toBe("body_too_large");
  });
});

describe("time and discovery", () => {
  it("serves the server clock and an entry point with links, more of them with a key", async () => {
    const before = Date.now();
    const time = await call("GET", "/time");
    expect(time.body.serverTimeMs).toBeGreaterThanOrEqual(before);
    expect(Date.parse(time.body.serverTimeUtc)).toBe(time.body.serverTimeMs);
    expect(scheduler.logLines.some((line) => line.includes('"event":"time_requested"'))).toBe(true);
    const open = await call("GET", "/api");
    expect(Object.keys(open.body._links)).toEqual(expect.arrayContaining(["time", "telescopes", "register", "bookings", "events"]));
    expect(open.body._links).not.toHaveProperty("my-bookings");
    const { id, key } = await register();
    const withKey = await call("GET", "/api", { key });
    expect(withKey.body._links["my-bookings"].href).toBe(`/bookings?scientistId=${id}`);
    const openapi = await call("GET", "/openapi.json");
    expect(openapi.body.openapi).toBe("3.1.0");
    expect(openapi.body.paths["/bookings"].post.requestBody.content["application/json"].schema.required).toEqual(
      expect.arrayContaining(["telescopeId", "startUtc", "endUtc", "requestedAtUtc"]),
    );
  });
});

describe("bookings", () => {
  it("books a slot with links, shows it in the day grid and the lists, and enforces the rules", async () => {
    const marie = await register();
    const pierre = await register("Pierre Curie");
    const answer = await book(marie.key, 10, { slots: 2 });
    expect(answer.status).toBe(201);
    const booking = answer.body;
    expect(booking).toMatchObject({ telescopeId: "hubble-acad", scientistId: marie.id, status: "confirmed" });
    expect(booking.slots).toHaveLength(2);
    expect(booking.order).toBeGreaterThan(0);
    expect(booking.fencingToken).toMatch(/^\d+$/);
    expect(booking._links.cancel).toEqual({ href: `/bookings/${booking.id}`, method: "DELETE" });
    // Another scientist sees it without a cancel link.
    const seen = await call("GET", booking._links.self.href, { key: pierre.key });
    expect(seen.body._links).not.toHaveProperty("cancel");
    // The day grid: yours for the owner, taken for the other, book links only on free slots.
    const day = slot(10).day;
    const forMarie = await call("GET", `/telescopes/hubble-acad/days/${day}`, { key: marie.key });
    const forPierre = await call("GET", `/telescopes/hubble-acad/days/${day}`, { key: pierre.key });
    expect(forMarie.body.slots).toHaveLength(288);
    expect(forMarie.body.slots[10]).toMatchObject({ state: "yours", bookingId: booking.id });
    expect(forMarie.body.slots[11].state).toBe("yours");
    expect(forPierre.body.slots[10].state).toBe("taken");
    expect(forPierre.body.slots[10]._links).not.toHaveProperty("book");
    expect(forPierre.body.slots[12]).toMatchObject({ state: "free", _links: { book: { href: "/bookings", method: "POST" } } });
    // Overlapping booking: 409 slot_taken naming the booking in the way.
    const overlap = await book(pierre.key, 11, { slots: 3 });
    expect(overlap.status).toBe(409);
    expect(overlap.body.error).toMatchObject({ code: "slot_taken", details: { bookings: [{ href: `/bookings/${booking.id}` }] } });
    // Lists.
    const mine = await call("GET", `/bookings?scientistId=${marie.id}`, { key: marie.key });
    expect(mine.body.items.map((item: Json) => item.id)).toEqual([booking.id]);
    const ofDay = await call("GET", `/bookings?telescopeId=hubble-acad&day=${day}`, { key: pierre.key });
    expect(ofDay.body.items.map((item: Json) => item.id)).toContain(booking.id);
  });

  it("refuses what breaks the rules with 422 and a stable code", async () => {
    const { key } = await register();
    const now = Date.now();
    const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;
    const aligned = Math.ceil(now / 300_000) * 300_000 + 3_600_000;
    const cases: [unknown, number, string][] = [
      [{ startUtc: iso(aligned + 60_000), endUtc: iso(aligned + 360_000) }, 422, "not_aligned"],
      [{ startUtc: iso(aligned), endUtc: iso(aligned) }, 422, "empty_interval"],
      [{ startUtc: iso(aligned), endUtc: iso(aligned + 13 * 300_000) }, 422, "too_long"],
      [{ startUtc: iso(aligned - 2 * 86_400_000), endUtc: iso(aligned - 2 * 86_400_000 + 300_000) }, 422, "in_the_past"],
      [{ startUtc: iso(aligned + 31 * 86_400_000), endUtc: iso(aligned + 31 * 86_400_000 + 300_000) }, 422, "beyond_horizon"],
      [{ telescopeId: "nope", startUtc: iso(aligned), endUtc: iso(aligned + 300_000) }, 422, "unknown_telescope"],
      [{ startUtc: "tomorrow", endUtc: iso(aligned + 300_000) }, 400, "invalid_request"],
    ];
    for (const [fields, status, code] of cases) {
      const answer = await call("POST", "/bookings", {
        key,
        body: { telescopeId: "hubble-acad", requestedAtUtc: new Date().toISOString(), ...(fields as object) },
      });
      expect([answer.status, answer.body.error?.code]).toEqual([status, code]);
    }
  });

  it("gives exactly one of ten simultaneous requests for a slot a 201, the rest 409, and stores one booking and one audit record", async () => {
    const scientists = await Promise.all(Array.from({ length: 10 }, (_, n) => register(`Racer ${n}`)));
    const answers = await Promise.all(scientists.map((scientist) => book(scientist.key, 40)));
    const statuses = answers.map((answer) => answer.status).sort();
    expect(statuses).toEqual([201, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
    // Each loser lost the race for the lease or found the slot booked; nothing else is acceptable.
    for (const answer of answers.filter((candidate) => candidate.status === 409)) {
      expect(["slot_busy", "slot_taken"]).toContain(answer.body["error"].code);
    }
    const winner = answers.find((answer) => answer.status === 201)?.body as Json;
    const stored = await call("GET", `/bookings?telescopeId=hubble-acad&day=${slot(40).day}`, { key: scientists[0]?.key as string });
    expect(stored.body.items.filter((item: Json) => item.startUtc === slot(40).startUtc).map((item: Json) => item.id)).toEqual([winner.id]);
    const audit = await call("GET", "/audit?limit=500", { key: scientists[0]?.key as string });
    const records = audit.body.items.filter(
      (item: Json) => item.record.event_type === "BOOKING_CREATED" && item.record.details.start_utc === slot(40).startUtc,
    );
    expect(records).toHaveLength(1);
    expect(records[0].record.details.booking_id).toBe(winner.id);
  });

  it("replays a retry with the same Idempotency-Key instead of answering 409", async () => {
    const { key } = await register();
    const first = await book(key, 60, { idempotencyKey: "click-1" });
    const retry = await book(key, 60, { idempotencyKey: "click-1" });
    expect(first.status).toBe(201);
    expect(retry.status).toBe(201);
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    expect(retry.body.id).toBe(first.body.id);
    const other = await book(key, 60, { idempotencyKey: "click-2" });
    expect(other.body.error.code).toBe("slot_taken");
  });

  it("refuses an Idempotency-Key reused for another booking, one after the other and at once, and never stores two", async () => {
    const { key } = await register();
    expect((await book(key, 80, { idempotencyKey: "reused" })).status).toBe(201);
    const later = await book(key, 81, { idempotencyKey: "reused" });
    expect([later.status, later.body["error"]?.code]).toEqual([422, "idempotency_key_reused"]);
    const [first, second] = await Promise.all([book(key, 82, { idempotencyKey: "twice" }), book(key, 83, { idempotencyKey: "twice" })]);
    const statuses = [first.status, second.status].sort();
    expect(statuses[0]).toBe(201);
    const loser = first.status === 201 ? second : first;
    // The loser either ran second (reused key) or met the winner still at work (in progress).
    expect(["booking_in_progress", "idempotency_key_reused"]).toContain(loser.body.error.code);
    const winner = first.status === 201 ? first : second;
    const stored = await call("GET", `/bookings/${winner.body["id"]}`, { key });
    expect(stored.body["startUtc"]).toBe(winner.body["startUtc"]);
    const day = await call("GET", `/telescopes/hubble-acad/days/${slot(82).day}`, { key });
    const claimed = day.body["slots"].filter((candidate: Json) => candidate.bookingId === winner.body["id"]);
    expect(claimed.map((candidate: Json) => candidate.startUtc)).toEqual([winner.body["startUtc"]]);
  });

  it("tells a retry whose earlier attempt still holds the leases to ask again (503), not that the slot is busy", async () => {
    const { id: scientistId, key } = await register();
    const { createHash } = await import("node:crypto");
    const bookingId = `bk_${createHash("sha256").update(`${scientistId}\nstill-going`).digest("hex").slice(0, 24)}`;
    // Stand in for the earlier attempt: hold its key's lease and the slot's.
    const earlier = await new LockClient({ nodes: [...cluster.urls.values()], apiToken: cluster.apiToken }).acquire(
      [`!idempotency_${bookingId}`, `hubble-acad_${slot(95).startUtc}`],
      { ttlMs: 5000, autoRenew: false },
    );
    const retry = await book(key, 95, { idempotencyKey: "still-going" });
    expect([retry.status, retry.body.error.code]).toEqual([503, "booking_in_progress"]);
    expect(retry.headers.get("retry-after")).toBe("1");
    // Someone else's request for the slot is simply busy.
    const other = await register();
    expect((await book(other.key, 95, { idempotencyKey: "another" })).body.error.code).toBe("slot_busy");
    await earlier.release();
    expect((await book(key, 95, { idempotencyKey: "still-going" })).status).toBe(201);
  });

  it("replays a retry whose booking is made while another request holds the slot's lease, rather than 409 slot_busy", async () => {
    // Regression (npm run chaos, a booking history under a full disk): the first attempt made the
    // booking but its answer was lost; the retry, with the same key, met another scientist's
    // request holding the slot's lease (to be told the slot is taken) and was answered 409
    // slot_busy, so the client took the booking it had for refused.
    const { key } = await register();
    const first = await book(key, 97, { idempotencyKey: "answer-lost" });
    expect(first.status).toBe(201);
    const deciding = await new LockClient({ nodes: [...cluster.urls.values()], apiToken: cluster.apiToken }).acquire(
      [`hubble-acad_${slot(97).startUtc}`],
      { ttlMs: 5000, autoRenew: false },
    );
    try {
      const retry = await book(key, 97, { idempotencyKey: "answer-lost" }, otherScheduler.url);
      expect([retry.status, retry.body.id, retry.headers.get("idempotent-replayed")]).toEqual([201, first.body.id, "true"]);
      // The same key for another booking is still refused as reused; a new key is simply busy.
      const reused = await book(key, 97, { idempotencyKey: "answer-lost", slots: 2 });
      expect([reused.status, reused.body.error?.code]).toEqual([422, "idempotency_key_reused"]);
      expect((await book(key, 97, { idempotencyKey: "fresh" })).body.error?.code).toBe("slot_busy");
    } finally {
      await deciding.release();
    }
  });

  it("refuses to cancel a booking that has started", async () => {
    const { key } = await register();
    const made = (await book(key, 90)).body;
    clockOffsetMs = 3 * 86_400_000;
    try {
      const late = await call("DELETE", made["_links"]["cancel"].href, { key });
      expect([late.status, late.body["error"].code]).toEqual([422, "already_started"]);
      expect((await call("GET", made["_links"]["self"].href, { key })).body["_links"]).not.toHaveProperty("cancel");
    } finally {
      clockOffsetMs = 0;
    }
  });

  it("lets only the owner cancel, through the link; the slot is free again; a second cancel is refused", async () => {
    const owner = await register();
    const stranger = await register();
    const made = (await book(owner.key, 70)).body;
    const cancel = made._links.cancel;
    const refused = await call(cancel.method, cancel.href, { key: stranger.key });
    expect([refused.status, refused.body.error.code]).toEqual([403, "forbidden"]);
    const cancelled = await call(cancel.method, cancel.href, { key: owner.key });
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ status: "cancelled", order: made.order });
    expect(cancelled.body.cancelOrder).toBeGreaterThan(made.order);
    expect(cancelled.body._links).not.toHaveProperty("cancel");
    const again = await call(cancel.method, cancel.href, { key: owner.key });
    expect([again.status, again.body.error.code]).toEqual([409, "already_cancelled"]);
    const rebooked = await book(stranger.key, 70);
    expect(rebooked.status).toBe(201);
    expect((await call("GET", "/bookings/bk_000000000000000000000000", { key: owner.key })).status).toBe(404);
    const audit = await call("GET", "/audit?limit=500", { key: owner.key });
    expect(audit.body.chain).toMatchObject({ verified: true });
    const types = audit.body.items
      .filter((item: Json) => item.record.details.booking_id === made.id)
      .map((item: Json) => item.record.event_type);
    expect(types).toEqual(["BOOKING_CREATED", "BOOKING_CANCELLED"]);
  });

  it("pages through a list with next links, each booking once", async () => {
    const { id, key } = await register();
    const made = [];
    for (let n = 100; n < 105; n += 1) made.push((await book(key, n)).body.id);
    const seen: string[] = [];
    let href: string | undefined = `/bookings?scientistId=${id}&limit=2`;
    while (href !== undefined) {
      const page = await call("GET", href, { key });
      expect(page.status).toBe(200);
      seen.push(...page.body.items.map((item: Json) => item.id));
      href = page.body._links.next?.href;
    }
    expect(seen).toEqual(made);
    expect((await call("GET", `/bookings?scientistId=${id}&cursor=bm9wZQ`, { key })).body.error.code).toBe("invalid_cursor");
  });
});

describe("audit and events", () => {
  it("pushes each booking event once over WebSocket, and resumes after a reconnect without duplicates", async () => {
    const { key } = await register();
    const wsUrl = `${scheduler.url.replace("http", "ws")}/events`;
    const received: Json[] = [];
    const socket = new WebSocket(wsUrl);
    socket.on("message", (data) => received.push(JSON.parse(String(data))));
    await once(socket, "open");
    const first = (await book(key, 150)).body;
    const until = async (predicate: () => boolean, what: string) => {
      const deadline = Date.now() + 10_000;
      while (!predicate()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(received)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    await until(() => received.some((message) => message.booking?.id === first.id), "the first event");
    expect(received[0]?.type).toBe("hello");
    const event = received.find((message) => message.booking?.id === first.id) as Json;
    expect(event).toMatchObject({
      type: "BOOKING_CREATED",
      order: first.order,
      booking: { startUtc: first.startUtc, status: "confirmed" },
    });
    socket.close();
    // While the page is away, two more things happen; on resume it gets exactly those.
    const second = (await book(key, 151)).body;
    await call("DELETE", first._links.cancel.href, { key });
    const resumed: Json[] = [];
    const again = new WebSocket(`${wsUrl}?after=${event.id}`);
    again.on("message", (data) => resumed.push(JSON.parse(String(data))));
    await once(again, "open");
    await until(() => resumed.filter((message) => message.id !== undefined).length >= 2, "the resumed events");
    await new Promise((resolve) => setTimeout(resolve, 200));
    const bookingEvents = resumed.filter((message) => message.id !== undefined);
    expect(bookingEvents.map((message) => [message.type, message.booking.id])).toEqual([
      ["BOOKING_CREATED", second.id],
      ["BOOKING_CANCELLED", first.id],
    ]);
    expect(new Set(bookingEvents.map((message) => message.id)).size).toBe(2);
    const firstIds = received.filter((message) => message.id !== undefined).map((message) => message.id);
    expect(new Set(firstIds).size).toBe(firstIds.length);
    again.close();
    // The same position resumes on another scheduler: ids are the chain's, the same everywhere.
    const elsewhere: Json[] = [];
    const other = new WebSocket(`${otherScheduler.url.replace("http", "ws")}/events?after=${event["id"]}`);
    other.on("message", (data) => elsewhere.push(JSON.parse(String(data))));
    await once(other, "open");
    await until(() => elsewhere.filter((message) => message.id !== undefined).length >= 2, "the events resumed on the other scheduler");
    expect(elsewhere.filter((message) => message.id !== undefined).map((message) => message.id)).toEqual(
      bookingEvents.map((message) => message.id),
    );
    other.close();
  });

  it("survives malformed and reset WebSocket upgrades", async () => {
    const { connect } = await import("node:net");
    const port = Number(new URL(scheduler.url).port);
    const answerTo = (requestText: string) =>
      new Promise<string>((resolve) => {
        const socket = connect(port, "127.0.0.1", () => socket.write(requestText));
        let text = "";
        socket.on("data", (chunk) => {
          text += String(chunk);
        });
        socket.on("close", () => resolve(text));
        socket.on("error", () => resolve(text));
      });
    const upgrade =
      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    expect(await answerTo(`GET http://[ HTTP/1.1\r\nHost: x\r\n${upgrade}`)).toMatch(/^HTTP\/1\.1 400/);
    expect(await answerTo(`GET /nope HTTP/1.1\r\nHost: x\r\n${upgrade}`)).toMatch(/^HTTP\/1\.1 404/);
    // A client that resets the connection as soon as it has asked.
    for (let attempt = 0; attempt < 5; attempt += 1) {
      await new Promise<void>((resolve) => {
        const socket = connect(port, "127.0.0.1", () => {
          socket.write(`GET /nope HTTP/1.1\r\nHost: x\r\n${upgrade}`);
          socket.resetAndDestroy();
          resolve();
        });
        socket.on("error", () => resolve());
      });
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await call("GET", "/time")).status).toBe(200);
  });

  it("detects a tampered chain: the verifier fails on a changed record", async () => {
    const { key } = await register();
    await book(key, 160);
    const audit = await call("GET", "/audit?limit=500", { key });
    expect(audit.body.chain.verified).toBe(true);
    expect(audit.body.chain.records).toBe(audit.body.items.length);
    const { verifyChain } = await import("../protocol/chain.ts");
    const raw = audit.body.items.map((item: Json) => ({ ...item, record: JSON.stringify(item.record) }));
    expect(verifyChain(raw).ok).toBe(true);
    const victim = raw.findIndex((item: Json) => item.record.includes("hubble-acad"));
    expect(victim).toBeGreaterThanOrEqual(0);
    const tampered = raw.map((item: Json, position: number) =>
      position === victim ? { ...item, record: item.record.replace("hubble-acad", "webb-acad") } : item,
    );
    expect(verifyChain(tampered)).toMatchObject({ ok: false, brokenAtSeq: raw[victim].seq });
    expect(verifyChain(raw.filter((_: Json, position: number) => position !== victim))).toMatchObject({ ok: false });
  });
});

describe("hostile input (issue 14)", () => {
  it("verifies the audit chain under concurrent requests: eight at once on a fresh scheduler, and every call after", async () => {
    const fresh = await startScheduler();
    try {
      const { key } = await register();
      const answers = await Promise.all(Array.from({ length: 8 }, () => call("GET", "/audit?limit=1", { key, base: fresh.url })));
      for (const answer of answers)
        expect([answer.status, answer.body.chain.verified], JSON.stringify(answer.body.chain)).toEqual([200, true]);
      const later = await call("GET", "/audit?limit=1", { key, base: fresh.url });
      expect(later.body.chain.verified).toBe(true);
    } finally {
      await fresh.events.close();
      fresh.server.closeAllConnections();
      fresh.server.close();
    }
  });

  it("checks ids and cursors against the cluster's limits before passing them on: 4xx, never 500", async () => {
    const { key } = await register();
    for (const length of [246, 247, 300, 2000]) {
      const answer = await call("GET", `/scientists/${"s".repeat(length)}`, { key });
      expect([answer.status, answer.body.error.code], `id of ${length}`).toEqual([404, "not_found"]);
    }
    const longKey = (prefix: string) => Buffer.from(`${prefix}${"x".repeat(300)}`).toString("base64url");
    const cursors = [
      ["/bookings?scientistId=sci_000000000000&cursor=", longKey("sci/sci_000000000000/")],
      ["/bookings?cursor=", longKey("day/")],
      ["/bookings?cursor=", "A".repeat(600)],
      ["/audit?cursor=", longKey("~chain/audit/")],
      ["/audit?cursor=", "A".repeat(600)],
    ];
    for (const [path, cursor] of cursors) {
      const answer = await call("GET", `${path}${cursor}`, { key });
      expect([answer.status, answer.body.error.code], `${path}…`).toEqual([400, "invalid_cursor"]);
    }
  });

  it("answers HEAD of a file it hides as GET does (404), and HEAD of the page as 200", async () => {
    for (const path of ["/README.md", "/events.test.js", "/clock.d.ts"]) {
      expect((await fetch(`${scheduler.url}${path}`)).status, `GET ${path}`).toBe(404);
      expect((await fetch(`${scheduler.url}${path}`, { method: "HEAD" })).status, `HEAD ${path}`).toBe(404);
    }
    expect((await fetch(`${scheduler.url}/`, { method: "HEAD" })).status).toBe(200);
    expect((await fetch(`${scheduler.url}/app.js`, { method: "HEAD" })).status).toBe(200);
  });

  it("takes an API key with trailing whitespace (not part of the header, RFC 9110 §5.5), never one with whitespace inside", async () => {
    // Node's HTTP parser strips a header value's surrounding spaces and tabs before any code of
    // ours runs (RFC 9110 §5.5), so `Bearer <key><TAB>` is the key itself; inside, whitespace stays and is refused.
    const { id, key } = await register();
    const raw = async (authorization: string) => (await rawHttp(scheduler.url, authorizedGet(`/scientists/${id}`, authorization))).status;
    expect(await raw(`Bearer ${key}`)).toBe(200);
    expect(await raw(`Bearer ${key}\t`)).toBe(200);
    expect(await raw(`Bearer ${key}\tx`)).toBe(401);
    expect(await raw(`Bearer\t${key}`)).toBe(401);
    expect(await raw(`Bearer ${key.slice(0, 20)}\t${key.slice(20)}`)).toBe(401);
  });
});

describe("limits", () => {
  it("answers 429 with Retry-After above the per-address limit, which made-up keys do not escape", async () => {
    const limited = await startScheduler({ rateLimitPerAddressPerMinute: 5 });
    try {
      const statuses: number[] = [];
      for (let n = 0; n < 5; n += 1) {
        statuses.push((await call("GET", "/time", { base: limited.url, headers: { authorization: `junk${n}` } })).status);
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200]);
      const refused = await call("GET", "/time", { base: limited.url, headers: { authorization: "junk-new" } });
      expect([refused.status, refused.body.error.code]).toEqual([429, "rate_limited"]);
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    } finally {
      await limited.close();
    }
  });
});

describe("per-key limit, input errors, telescope grids", () => {
  it("limits each verified key separately", async () => {
    const limited = await startScheduler({ rateLimitPerMinute: 3 });
    try {
      const alice = await register();
      const bob = await register();
      const statuses: number[] = [];
      for (let n = 0; n < 4; n += 1)
        statuses.push((await call("GET", `/bookings?scientistId=${alice.id}`, { base: limited.url, key: alice.key })).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
      expect((await call("GET", `/bookings?scientistId=${bob.id}`, { base: limited.url, key: bob.key })).status).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it("answers malformed paths and unsupported encodings with 4xx, not 500", async () => {
    expect((await call("GET", "/telescopes/%E0/days/2025-12-01")).status).toBe(400);
    const latin = await call("POST", "/scientists", {
      body: '{"name":"x","email":"x@y.org"}',
      headers: { "content-type": "application/json; charset=latin1" },
    });
    expect([latin.status, latin.body["error"].code]).toEqual([415, "unsupported_media_type"]);
  });

  it("records each telescope's slot grid and refuses a scheduler configured with another one", async () => {
    const { ensureTelescopeGrids, TelescopeGridMismatch } = await import("../scheduler/telescopes.ts");
    const port = lockClusterPort(new LockClient({ nodes: [...cluster.urls.values()], apiToken: cluster.apiToken }));
    const grid: Telescope = { id: "grid-test", name: "Grid", slotMinutes: 10, horizonDays: 30, slotsPerBookingMax: 12 };
    await ensureTelescopeGrids(port, [grid], 5000);
    await ensureTelescopeGrids(port, [grid], 5000);
    await expect(ensureTelescopeGrids(port, [{ ...grid, slotMinutes: 5 }], 5000)).rejects.toBeInstanceOf(TelescopeGridMismatch);
  });
});
