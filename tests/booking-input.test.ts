// Hostile and careless input at the booking API's edge (issue 18, item 6), against a real
// in-process cluster. Each case was a bug: a time that does not exist booked another slot, a body
// in the wrong format was read as an empty object, `null` was called invalid JSON, `bearer` in
// lower case was refused, registration had no limit. Each answer must be a 4xx with a stable code
// that names the problem, and nothing may be stored.

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HttpCluster, startHttpCluster } from "../node/testing/http-cluster.ts";
import type { Telescope } from "../scheduler/slots.ts";
import { type CallOptions, callApi, type InProcessScheduler, type Json, startInProcessScheduler } from "./support/scheduler-in-process.ts";

const telescopes: Telescope[] = [{ id: "hubble-acad", name: "Hubble Acad", slotMinutes: 5, horizonDays: 30, slotsPerBookingMax: 12 }];

let cluster: HttpCluster;
let scheduler: InProcessScheduler;
let logDir: string;
let key: string;
let emailCounter = 0;

function call(method: string, path: string, options: CallOptions = {}) {
  return callApi(scheduler.url, method, path, options);
}

async function register(base = scheduler.url) {
  emailCounter += 1;
  return callApi(base, "POST", "/scientists", { body: { name: "Input Tester", email: `input-${emailCounter}@example.org` } });
}

/** tomorrow (UTC) as YYYY-MM-DD, and the day after. */
function days(): { tomorrow: string; dayAfter: string } {
  const midnight = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1);
  return {
    tomorrow: new Date(midnight).toISOString().slice(0, 10),
    dayAfter: new Date(midnight + 86_400_000).toISOString().slice(0, 10),
  };
}

beforeAll(async () => {
  logDir = mkdtempSync(join(tmpdir(), "sctec-input-"));
  cluster = await startHttpCluster();
  scheduler = await startInProcessScheduler({ cluster, telescopes, nowMs: () => Date.now(), logDir });
  key = (await register()).body.apiKey;
});
afterAll(async () => {
  await scheduler.close();
  await cluster.stop();
});

describe("times that do not exist", () => {
  it("answers 400 naming the field for 24:00, 30 February, 29 February of a common year, minute 60 and second 60; nothing is booked", async () => {
    const { tomorrow, dayAfter } = days();
    const year = Number(tomorrow.slice(0, 4)) + 1;
    const common = year % 4 === 0 ? year + 1 : year; // a year with no 29 February (until 2100)
    const cases: [field: string, body: Record<string, string>, says: RegExp][] = [
      ["startUtc", { startUtc: `${tomorrow}T24:00:00Z`, endUtc: `${dayAfter}T00:05:00Z` }, /hours run from 00 to 23/],
      [
        "endUtc",
        { startUtc: `${tomorrow}T03:00:00Z`, endUtc: `${tomorrow.slice(0, 4)}-02-30T00:00:00Z` },
        /February \d{4} has days 1 to 2[89]/,
      ],
      ["startUtc", { startUtc: `${common}-02-29T00:00:00Z`, endUtc: `${common}-03-01T00:05:00Z` }, /February \d{4} has days 1 to 28/],
      ["startUtc", { startUtc: `${tomorrow}T03:60:00Z`, endUtc: `${tomorrow}T04:05:00Z` }, /minutes run from 00 to 59/],
      ["requestedAtUtc", { requestedAtUtc: `${tomorrow}T00:00:60Z` }, /leap seconds/],
      ["startUtc", { startUtc: `${tomorrow.slice(0, 5)}13-01T00:00:00Z` }, /there is no month 13/],
    ];
    for (const [field, fields, says] of cases) {
      const answer = await call("POST", "/bookings", {
        key,
        body: {
          telescopeId: "hubble-acad",
          startUtc: `${tomorrow}T03:00:00Z`,
          endUtc: `${tomorrow}T03:05:00Z`,
          requestedAtUtc: new Date().toISOString(),
          ...fields,
        },
      });
      expect([answer.status, answer.body.error?.code], JSON.stringify(fields)).toEqual([400, "invalid_request"]);
      expect(answer.body.error.details.map((detail: Json) => detail.path)).toEqual([field]);
      expect(answer.body.error.message).toMatch(says);
    }
    // The first case used to book the next day's midnight slot: it is still free, and nothing of tomorrow's is taken.
    for (const day of [tomorrow, dayAfter]) {
      const grid = await call("GET", `/telescopes/hubble-acad/days/${day}`, { key });
      expect(grid.body.slots.filter((slot: Json) => slot.state !== "free" && slot.state !== "past")).toEqual([]);
    }
  });

  it("answers 400 for a day that does not exist, in the day grid and in the booking list", async () => {
    const grid = await call("GET", "/telescopes/hubble-acad/days/2026-02-30");
    expect([grid.status, grid.body.error.code]).toEqual([400, "invalid_request"]);
    expect(grid.body.error.message).toContain("February 2026 has days 1 to 28");
    const list = await call("GET", "/bookings?telescopeId=hubble-acad&day=2027-04-31", { key });
    expect([list.status, list.body.error.code]).toEqual([400, "invalid_request"]);
    expect(list.body.error.details.map((detail: Json) => detail.path)).toEqual(["day"]);
    // A leap day is a real day.
    expect((await call("GET", "/telescopes/hubble-acad/days/2028-02-29")).status).toBe(200);
  });
});

describe("bodies that are not a JSON object", () => {
  const registration = JSON.stringify({ name: "Form Filler", email: "form@example.org" });
  const wrongTypes: [what: string, headers: Record<string, string>, body: string | undefined][] = [
    ["text/plain", { "content-type": "text/plain" }, registration],
    ["a form", { "content-type": "application/x-www-form-urlencoded" }, "name=Form+Filler&email=form%40example.org"],
    [
      "multipart",
      { "content-type": "multipart/form-data; boundary=x" },
      '--x\r\nContent-Disposition: form-data; name="name"\r\n\r\nForm\r\n--x--\r\n',
    ],
    ["no content type", {}, undefined],
  ];

  it("answers 415 unsupported_media_type for text, a form, multipart and no body at all, on both POSTs", async () => {
    for (const path of ["/scientists", "/bookings"]) {
      for (const [what, headers, body] of wrongTypes) {
        const response = await fetch(`${scheduler.url}${path}`, {
          method: "POST",
          headers: { ...headers, authorization: `Bearer ${key}` },
          ...(body === undefined ? {} : { body }),
        });
        const answer = (await response.json()) as Json;
        expect([response.status, answer.error.code], `${path} with ${what}`).toEqual([415, "unsupported_media_type"]);
        expect(answer.error.message).toContain("Content-Type: application/json");
      }
    }
    // None of them registered anyone.
    const again = await call("POST", "/scientists", { body: { name: "Form Filler", email: "form@example.org" } });
    expect(again.status).toBe(201);
  });

  it("calls null, an array, a number and an empty JSON body what they are: not an object (400), not invalid JSON", async () => {
    const cases: [body: string, says: string][] = [
      ["null", "not null"],
      ["[]", "not an array"],
      ["42", "not a number"],
      ['"text"', "not a string"],
      ["", "not an empty body"],
    ];
    for (const [body, says] of cases) {
      const answer = await call("POST", "/scientists", { body, headers: { "content-type": "application/json" } });
      expect([answer.status, answer.body.error.code], body).toEqual([400, "invalid_request"]);
      expect(answer.body.error.message).toBe(`the body must be a JSON object, ${says}`);
    }
    const broken = await call("POST", "/scientists", { body: "{", headers: { "content-type": "application/json" } });
    expect([broken.status, broken.body.error.code]).toEqual([400, "invalid_json"]);
  });
});

describe("the Authorization header", () => {
  it("accepts the scheme in any case and with more than one space (RFC 9110), and still refuses other schemes", async () => {
    for (const scheme of ["Bearer ", "bearer ", "BEARER ", "bEaReR   "]) {
      const answer = await call("GET", "/api", { headers: { authorization: `${scheme}${key}` } });
      expect([answer.status, Object.keys(answer.body._links)], JSON.stringify(scheme)).toEqual([200, expect.arrayContaining(["me"])]);
    }
    for (const authorization of [`Basic ${key}`, `Bearer${key}`, key]) {
      expect((await call("GET", "/api", { headers: { authorization } })).status, authorization).toBe(401);
    }
  });
});

describe("registration", () => {
  it("is limited per address: past the hourly limit, 429 with Retry-After, and the rest of the API still answers", async () => {
    const limited = await startInProcessScheduler({
      cluster,
      telescopes,
      nowMs: () => Date.now(),
      logDir,
      registrationsPerAddressPerHour: 3,
    });
    try {
      const statuses: number[] = [];
      for (let n = 0; n < 5; n += 1) statuses.push((await register(limited.url)).status);
      expect(statuses).toEqual([201, 201, 201, 429, 429]);
      const refused = await register(limited.url);
      expect(refused.body.error.code).toBe("rate_limited");
      expect(refused.body.error.message).toContain("more than 3 registrations an hour from this address");
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(60);
      expect((await callApi(limited.url, "GET", "/api", { key })).status).toBe(200);
    } finally {
      await limited.close();
    }
  });
});
