// `npm run stress`: the lab's proof. Ten simultaneous POST /bookings for one slot against the
// running system; prints the status counts, the bookings stored for the slot and the audit records
// for it, and exits non-zero unless it is exactly 1 × 201, 9 × 409, 1 booking, 1 audit record.
// With SCHEDULER_LOCKING=off on the scheduler the same command shows the race.
//
//   npm run stress                                  10 requests to http://127.0.0.1:8080
//   npm run stress -- --url URL[,URL…] --requests N
//   npm run stress -- --large [--requests 400 --slots 40]
//       several hundred requests over many slots, spread over every URL given; 5xx and lease_lost answers
//       are retried with the same Idempotency-Key until they get a clear answer (bounded)

import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    url: { type: "string", default: "http://127.0.0.1:8080" },
    requests: { type: "string" },
    slots: { type: "string" },
    large: { type: "boolean", default: false },
    telescope: { type: "string", default: "hubble-acad" },
    "retries-max": { type: "string", default: "20" },
    json: { type: "boolean", default: false },
  },
});

const urls = (values.url as string).split(",").map((url) => url.trim().replace(/\/+$/, ""));
const large = values.large === true;
const requestsTotal = Number(values.requests ?? (large ? 400 : 10));
const slotCount = Number(values.slots ?? (large ? 40 : 1));
const retriesMax = Number(values["retries-max"]);
for (const [name, value] of [
  ["requests", requestsTotal],
  ["slots", slotCount],
  ["retries-max", retriesMax],
] as const) {
  if (!Number.isSafeInteger(value) || value < 1 || value > 100_000) {
    console.error(`stress: --${name} must be an integer from 1 to 100000`);
    process.exit(2);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field at run time
type Json = any;
const say = (text: string) => console.log(text);

async function call(base: string, method: string, path: string, key?: string, body?: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...(key === undefined ? {} : { authorization: `Bearer ${key}` }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await response.text();
  return { status: response.status, body: (text === "" ? {} : JSON.parse(text)) as Json };
}

async function main(): Promise<number> {
  for (const url of urls) {
    try {
      await call(url, "GET", "/time");
    } catch (error) {
      console.error(`stress: cannot reach ${url} (${(error as Error).message}). Start the system first: npm start`);
      return 2;
    }
  }
  const telescopes = (await call(urls[0] as string, "GET", "/telescopes")).body.items as Json[];
  const telescope = telescopes.find((item) => item.id === values.telescope);
  if (telescope === undefined) {
    console.error(`stress: no telescope ${values.telescope} (have ${telescopes.map((item) => item.id).join(", ")})`);
    return 2;
  }
  const slotMs = telescope.slotMinutes * 60_000;
  // A random day a week or more ahead and random slots in it, so repeated runs do not collide.
  const dayMs = 86_400_000;
  const day0 = Math.floor(Date.now() / dayMs) * dayMs + (7 + Math.floor(Math.random() * 20)) * dayMs;
  const slotsPerDay = dayMs / slotMs;
  const first = Math.floor(Math.random() * (slotsPerDay - slotCount));
  const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;
  const slots = Array.from({ length: slotCount }, (_, position) => day0 + (first + position) * slotMs);
  const scientistsCount = Math.min(requestsTotal, large ? 50 : requestsTotal);
  say(`registering ${scientistsCount} scientists …`);
  const keys: string[] = [];
  for (let position = 0; position < scientistsCount; position += 1) {
    const answer = await call(urls[position % urls.length] as string, "POST", "/scientists", undefined, {
      name: `Stress ${position}`,
      email: `stress-${randomUUID()}@example.org`,
    });
    if (answer.status !== 201) {
      console.error(`stress: registration failed: ${answer.status} ${JSON.stringify(answer.body)}`);
      return 1;
    }
    keys.push(answer.body.apiKey);
  }
  say(
    `sending ${requestsTotal} simultaneous POST /bookings for ${slotCount} slot(s) of ${telescope.id} from ${iso(slots[0] as number)} through ${urls.length} scheduler(s) …`,
  );
  const counts = new Map<number, number>();
  const created: Json[] = [];
  let retried = 0;
  let unresolved = 0;
  const unexpected: string[] = [];
  let done = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: requestsTotal }, async (_, position) => {
      const startMs = slots[position % slotCount] as number;
      const body = {
        telescopeId: telescope.id,
        startUtc: iso(startMs),
        endUtc: iso(startMs + slotMs),
        requestedAtUtc: new Date().toISOString(),
      };
      const idempotencyKey = randomUUID();
      let answer: { status: number; body: Json } | undefined;
      for (let attempt = 0; attempt <= retriesMax; attempt += 1) {
        const url = urls[(position + attempt) % urls.length] as string;
        try {
          answer = await call(url, "POST", "/bookings", keys[position % keys.length], body, { "idempotency-key": idempotencyKey });
        } catch (error) {
          answer = { status: 599, body: { error: { code: "unreachable", message: (error as Error).message } } };
        }
        // A 5xx, or lease_lost (the scheduler's lease ran out before its write: nothing was
        // written), leaves the booking undecided: ask again with the same Idempotency-Key.
        if (answer.status < 500 && answer.body?.error?.code !== "lease_lost") break;
        retried += 1;
        await new Promise((resolve) => setTimeout(resolve, Math.min(2000, 100 * 2 ** attempt)));
      }
      const status = (answer as { status: number }).status;
      if (status >= 500) unresolved += 1;
      counts.set(status, (counts.get(status) ?? 0) + 1);
      // A 409 must be a lost race for the lease or a slot already booked: anything else is a failure.
      const code = (answer as { body: Json }).body?.error?.code;
      if (status === 409 && code !== "slot_busy" && code !== "slot_taken") unexpected.push(`409 ${code}`);
      if (status === 201) created.push((answer as { body: Json }).body);
      done += 1;
      if (large && done % 50 === 0) say(`  ${done}/${requestsTotal} answered`);
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  say(
    `answers in ${seconds.toFixed(2)} s: ${[...counts]
      .sort()
      .map(([status, count]) => `${count} × ${status}`)
      .join(", ")}${retried > 0 ? ` (${retried} retries after 5xx)` : ""}`,
  );

  // Check from the cluster's own data, through the API.
  const key = keys[0] as string;
  const stored: Json[] = [];
  let href: string | undefined = `/bookings?telescopeId=${telescope.id}&day=${iso(day0).slice(0, 10)}&status=confirmed&limit=100`;
  while (href !== undefined) {
    const page = await call(urls[0] as string, "GET", href, key);
    stored.push(...(page.body.items as Json[]));
    href = page.body._links?.next?.href;
  }
  const audit: Json[] = [];
  let auditHref: string | undefined = "/audit?limit=500";
  let chain: Json = {};
  while (auditHref !== undefined) {
    const page = await call(urls[0] as string, "GET", auditHref, key);
    chain = page.body.chain;
    audit.push(...(page.body.items as Json[]));
    auditHref = page.body._links?.next?.href;
  }
  const problems: string[] = [];
  const slotIsos = new Set(slots.map(iso));
  let storedForSlots = 0;
  let auditForSlots = 0;
  for (const startUtc of slotIsos) {
    const bookings = stored.filter((booking) => booking.slots.includes(startUtc));
    const records = audit.filter(
      (item) =>
        item.record.event_type === "BOOKING_CREATED" &&
        item.record.details.telescope_id === telescope.id &&
        item.record.details.start_utc === startUtc,
    );
    storedForSlots += bookings.length;
    auditForSlots += records.length;
    if (bookings.length !== 1) problems.push(`${startUtc}: ${bookings.length} bookings stored (want 1)`);
    if (records.length !== 1) problems.push(`${startUtc}: ${records.length} BOOKING_CREATED audit records (want 1)`);
  }
  const storedIds = new Set(stored.map((booking) => booking.id));
  const lost = created.filter((booking) => !storedIds.has(booking.id));
  if (lost.length > 0)
    problems.push(`${lost.length} bookings answered 201 but not stored: ${lost.map((booking) => booking.id).join(", ")}`);
  const created201 = counts.get(201) ?? 0;
  if (created201 !== slotCount) problems.push(`${created201} × 201 (want ${slotCount}, one per slot)`);
  const conflicts = counts.get(409) ?? 0;
  if (conflicts !== requestsTotal - slotCount) problems.push(`${conflicts} × 409 (want ${requestsTotal - slotCount})`);
  if (unexpected.length > 0) problems.push(`${unexpected.length} unexpected conflict answers: ${[...new Set(unexpected)].join(", ")}`);
  if (unresolved > 0) problems.push(`${unresolved} requests still failed with 5xx after ${retriesMax} retries`);
  if (chain.verified !== true) problems.push(`the audit chain does not verify: ${JSON.stringify(chain)}`);
  say(
    `stored bookings for the slot${slotCount > 1 ? "s" : ""}: ${storedForSlots}; BOOKING_CREATED audit records: ${auditForSlots}; audit chain verified: ${chain.verified}`,
  );
  if (values.json === true) {
    say(JSON.stringify({ counts: Object.fromEntries(counts), storedForSlots, auditForSlots, retried, unresolved, chain, problems }));
  }
  if (problems.length === 0) {
    say(`OK: exactly one booking per slot, every 201 stored, the audit chain verifies`);
    return 0;
  }
  say(`RACE OR LOSS DETECTED:\n  ${problems.join("\n  ")}`);
  return 1;
}

process.exitCode = await main();
