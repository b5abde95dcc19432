// What the booking API tells a scientist who lost, or came early (issue 18, item 5), against a
// real in-process cluster: a 409 slot_taken or slot_busy offers the nearest free ranges of the same
// length with links to book them; beyond_horizon says when the range opens; a telescope that opens
// its slots in blocks shows, slot by slot, when each opens.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LockClient } from "../client/lock-client.ts";
import { type HttpCluster, startHttpCluster } from "../node/testing/http-cluster.ts";
import type { Telescope } from "../scheduler/slots.ts";
import { type CallOptions, callApi, type InProcessScheduler, type Json, startInProcessScheduler } from "./support/scheduler-in-process.ts";

const telescopes: Telescope[] = [
  { id: "hubble-acad", name: "Hubble Acad", slotMinutes: 5, horizonDays: 30, slotsPerBookingMax: 12 },
  // Opens a whole UTC day at once, one day ahead.
  { id: "daily", name: "Opens daily", slotMinutes: 10, horizonDays: 1, horizonBlockMinutes: 1440, slotsPerBookingMax: 12 },
];

let cluster: HttpCluster;
let scheduler: InProcessScheduler;
let emailCounter = 0;

function call(method: string, path: string, options: CallOptions = {}) {
  return callApi(scheduler.url, method, path, options);
}

async function register(): Promise<{ id: string; key: string }> {
  emailCounter += 1;
  const answer = await call("POST", "/scientists", { body: { name: "Racer", email: `racer-${emailCounter}@example.org` } });
  return { id: answer.body.scientist.id, key: answer.body.apiKey };
}

const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;
/** at: an instant of tomorrow (UTC), `minutes` after its midnight. */
function at(minutes: number): string {
  const midnight = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1);
  return iso(midnight + minutes * 60_000);
}

function book(key: string, startUtc: string, endUtc: string, telescopeId = "hubble-acad") {
  return call("POST", "/bookings", { key, body: { telescopeId, startUtc, endUtc, requestedAtUtc: new Date().toISOString() } });
}

beforeAll(async () => {
  cluster = await startHttpCluster();
  scheduler = await startInProcessScheduler({
    cluster,
    telescopes,
    nowMs: () => Date.now(),
    logDir: mkdtempSync(join(tmpdir(), "sctec-alt-")),
  });
});
afterAll(async () => {
  await scheduler.close();
  await cluster.stop();
});

describe("a lost race offers the nearest free ranges", () => {
  it("slot_taken: three ranges of the same length, nearest first, each with a book link that works", async () => {
    const first = await register();
    const second = await register();
    // 06:00-06:15 and 06:25-06:30 are booked; the second scientist asks for 06:05-06:20.
    expect((await book(first.key, at(360), at(375))).status).toBe(201);
    expect((await book(first.key, at(385), at(390))).status).toBe(201);
    const lost = await book(second.key, at(365), at(380));
    expect([lost.status, lost.body.error.code]).toEqual([409, "slot_taken"]);
    const offered = lost.body.error.details.alternatives as Json[];
    // Free 3-slot ranges nearest to 06:05: 05:45-06:00 (20 min earlier), 06:30-06:45 (25 min later), 05:30-05:45.
    expect(offered.map((range) => [range.startUtc, range.endUtc])).toEqual([
      [at(345), at(360)],
      [at(390), at(405)],
      [at(330), at(345)],
    ]);
    expect(offered[0]).toMatchObject({
      telescopeId: "hubble-acad",
      _links: { book: { href: "/bookings", method: "POST" }, day: { href: `/telescopes/hubble-acad/days/${at(0).slice(0, 10)}` } },
    });
    // The booking in the way is still named, slot by slot.
    expect(lost.body.error.details.bookings.map((claim: Json) => claim.slot)).toEqual([at(365), at(370)]);
    // Following the offer books it.
    const taken = offered[0];
    const answer = await call(taken._links.book.method, taken._links.book.href, {
      key: second.key,
      body: { telescopeId: taken.telescopeId, startUtc: taken.startUtc, endUtc: taken.endUtc, requestedAtUtc: new Date().toISOString() },
    });
    expect([answer.status, answer.body.startUtc, answer.body.slots.length]).toEqual([201, at(345), 3]);
  });

  it("slot_busy: the ranges leave out the slots being decided", async () => {
    const { key } = await register();
    // Stand in for a request deciding 08:00 right now: hold the slot's lease.
    const holder = await new LockClient({ nodes: [...cluster.urls.values()], apiToken: cluster.apiToken }).acquire(
      [`hubble-acad_${at(480)}`],
      { ttlMs: 10_000, autoRenew: false },
    );
    try {
      const busy = await book(key, at(480), at(490));
      expect([busy.status, busy.body.error.code]).toEqual([409, "slot_busy"]);
      expect(busy.body.error.details.alternatives.map((range: Json) => range.startUtc)).toEqual([at(470), at(490), at(460)]);
    } finally {
      await holder.release();
    }
  });
});

describe("the horizon", () => {
  it("beyond_horizon says when the range opens; a daily telescope shows each closed slot's opening time", async () => {
    const { key } = await register();
    const dayAfterTomorrow = at(1440).slice(0, 10);
    const early = await book(key, at(1440 + 60), at(1440 + 80), "daily");
    expect([early.status, early.body.error.code]).toEqual([422, "beyond_horizon"]);
    expect(early.body.error.details).toEqual({ opensAtUtc: at(0) }); // the whole day opens at midnight, one day ahead
    // Tomorrow is open (every slot has a book link); the day after is not, and says when it opens.
    const open = await call("GET", `/telescopes/daily/days/${at(0).slice(0, 10)}`);
    expect(open.body.slots.every((slot: Json) => slot._links.book !== undefined && slot.opensAtUtc === undefined)).toBe(true);
    const closed = await call("GET", `/telescopes/daily/days/${dayAfterTomorrow}`);
    expect(closed.body.slots).toHaveLength(144);
    expect(closed.body.slots.every((slot: Json) => slot._links.book === undefined && slot.opensAtUtc === at(0))).toBe(true);
    const telescope = await call("GET", "/telescopes/daily");
    expect(telescope.body).toMatchObject({ horizonDays: 1, horizonBlockMinutes: 1440 });
    // A range may not reach past the horizon: starting tomorrow at 23:50, ending the day after at 00:10.
    const across = await book(key, at(1430), at(1450), "daily");
    expect([across.status, across.body.error.code, across.body.error.details.opensAtUtc]).toEqual([422, "beyond_horizon", at(0)]);
  });
});
