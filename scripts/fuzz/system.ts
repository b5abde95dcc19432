// The system under fuzz and what must hold after the run: a real three-node lock cluster and a
// real booking API (harness/booking-system.ts, free loopback ports), seeded with data whose
// every byte is recorded, and the end checks: every process still up, one leader that every node
// agrees on, the membership unchanged, writes still commit (a lock cycle and a booking), the seeded data unchanged, and the
// audit chain verifying (read from the cluster and checked here, and as the booking API reports it).

import { LockClient } from "../../client/lock-client.ts";
import { type BookingSystem, startBookingSystem } from "../../harness/booking-system.ts";
import { waitFor } from "../../harness/process-cluster.ts";
import { type ChainRecord, verifyChain } from "../../protocol/chain.ts";
import type { Fixtures } from "./targets.ts";

/** Seeded is what the run wrote before fuzzing, as it was read back then. */
interface Seeded {
  readonly seedKey: string;
  /** kv: each seeded key of the cluster with its value, token and modIndex as read after seeding. */
  readonly kv: ReadonlyMap<string, string>;
  /** bookings: each seeded booking as the booking API showed it. */
  readonly bookings: ReadonlyMap<string, string>;
}

export interface FuzzSystem {
  readonly system: BookingSystem;
  readonly fixtures: Fixtures;
  readonly seeded: Seeded;
  readonly client: LockClient;
  stop(): Promise<void>;
}

export interface CheckResult {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field where they are used
type Json = any;

async function call(
  base: string,
  method: string,
  path: string,
  options: { key?: string; body?: unknown } = {},
): Promise<{ status: number; body: Json; text: string }> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(options.body === undefined ? {} : { "content-type": "application/json" }),
      ...(options.key === undefined ? {} : { authorization: `Bearer ${options.key}` }),
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? {} : JSON.parse(text), text };
}

function slotAhead(daysAhead: number, minute: number, slotMinutes: number): { startUtc: string; endUtc: string } {
  const dayMs = 86_400_000;
  const start = Math.floor(Date.now() / dayMs) * dayMs + daysAhead * dayMs + minute * 60_000;
  const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;
  return { startUtc: iso(start), endUtc: iso(start + slotMinutes * 60_000) };
}

async function register(base: string, name: string): Promise<{ id: string; key: string }> {
  const answer = await call(base, "POST", "/scientists", {
    body: { name, email: `${name.toLowerCase().replaceAll(" ", ".")}.${Date.now()}@example.org` },
  });
  if (answer.status !== 201) throw new Error(`registering ${name}: ${answer.status} ${answer.text}`);
  return { id: answer.body.scientist.id, key: answer.body.apiKey };
}

async function book(
  base: string,
  key: string,
  telescope: { id: string; slotMinutes: number },
  daysAhead: number,
  minute: number,
): Promise<string> {
  const answer = await call(base, "POST", "/bookings", {
    key,
    body: { telescopeId: telescope.id, ...slotAhead(daysAhead, minute, telescope.slotMinutes), requestedAtUtc: new Date().toISOString() },
  });
  if (answer.status !== 201) throw new Error(`seeding a booking: ${answer.status} ${answer.text}`);
  return answer.body.id;
}

/** startFuzzSystem starts the system on free loopback ports and seeds it. */
export async function startFuzzSystem(): Promise<FuzzSystem> {
  const system = await startBookingSystem({
    schedulers: 1,
    // A shared, busy machine can take a while to start four processes; the fuzz run is long anyway.
    leaderTimeoutMs: 60_000,
    // The fuzzer comes from one address: limits at these rates would only turn its requests into 429s.
    env: { SCHEDULER_RATE_LIMIT_PER_MINUTE: "1000000", SCHEDULER_RATE_LIMIT_PER_ADDRESS_PER_MINUTE: "10000000" },
  });
  try {
    const schedulerUrl = system.schedulerUrls[0] as string;
    const client = new LockClient({ nodes: system.nodeUrls, apiToken: system.apiToken, retriesMax: 20 });
    const telescopes = (await call(schedulerUrl, "GET", "/telescopes")).body.items as {
      id: string;
      slotMinutes: number;
      horizonDays: number;
    }[];
    const seedScientist = await register(schedulerUrl, "Seed Scientist");
    const fuzzScientist = await register(schedulerUrl, "Fuzz Scientist");
    const otherBookingIds: string[] = [];
    const ownBookingIds: string[] = [];
    for (const [position, telescope] of telescopes.entries()) {
      for (const daysAhead of [2, 3])
        otherBookingIds.push(await book(schedulerUrl, seedScientist.key, telescope, daysAhead, 60 * (position + 1)));
      ownBookingIds.push(await book(schedulerUrl, fuzzScientist.key, telescope, 4, 60 * (position + 1)));
    }
    const seedLease = await client.acquire(["seed-lease"], { ttlMs: 10_000, autoRenew: false });
    await seedLease.txn([
      { op: "put", key: "seed/a", value: "seeded value a" },
      { op: "put", key: "seed/b", value: JSON.stringify({ nested: ["seeded", 2] }) },
    ]);
    await seedLease.release();
    // A lease for the fuzzer's fenced writes, kept alive by this client for the whole run.
    const held = await client.acquire(["fuzz-held"], { ttlMs: 60_000, autoRenew: true });
    const kv = new Map<string, string>();
    for (const key of ["seed/a", "seed/b", `scientist/${seedScientist.id}`, ...otherBookingIds.map((id) => `booking/${id}`)]) {
      kv.set(key, JSON.stringify(await client.get(key)));
    }
    const bookings = new Map<string, string>();
    for (const id of otherBookingIds)
      bookings.set(id, (await call(schedulerUrl, "GET", `/bookings/${id}`, { key: seedScientist.key })).text);
    const fixtures: Fixtures = {
      nodes: system.cluster.ids().map((id) => ({ id, url: system.cluster.url(id) })),
      schedulerUrl,
      nodeToken: system.apiToken,
      scientist: fuzzScientist,
      otherScientistId: seedScientist.id,
      ownBookingIds,
      otherBookingIds,
      heldLease: { resource: "fuzz-held", token: held.token },
      telescopes: telescopes.map((telescope) => ({
        id: telescope.id,
        slotMinutes: telescope.slotMinutes,
        horizonDays: telescope.horizonDays,
      })),
      startedAtMs: Date.now(),
    };
    return {
      system,
      fixtures,
      seeded: { seedKey: seedScientist.key, kv, bookings },
      client,
      stop: async () => {
        await held.release().catch(() => undefined);
        await system.stop();
      },
    };
  } catch (error) {
    await system.stop();
    throw error;
  }
}

/** endChecks: what must hold after the run (see the file comment). */
export async function endChecks(fuzz: FuzzSystem): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  const check = async (name: string, run: () => Promise<string>) => {
    try {
      results.push({ name, ok: true, detail: await run() });
    } catch (error) {
      results.push({ name, ok: false, detail: (error as Error).message });
    }
  };
  const { system, fixtures, seeded, client } = fuzz;
  await check("every process is still running", async () => {
    const exited = system.exited();
    if (exited.length > 0) throw new Error(`exited: ${exited.join(", ")}`);
    return `${system.cluster.ids().length} nodes and ${system.schedulerUrls.length} scheduler`;
  });
  await check("one leader, and every node agrees on it", async () => {
    const leader = await waitFor(
      async () => {
        const statuses = await Promise.all(system.cluster.ids().map((id) => system.cluster.status(id)));
        const leaders = statuses.filter((status) => status?.role === "leader");
        const agreed = leaders.length === 1 && statuses.every((status) => status !== undefined && status.leaderId === leaders[0]?.nodeId);
        return agreed ? `${leaders[0]?.nodeId} in term ${leaders[0]?.term}` : undefined;
      },
      "one leader that every node names",
      15_000,
    );
    return leader;
  });
  await check("the membership is as it started (the admin API changed nothing)", async () => {
    const leader = await system.cluster.waitForLeader(15_000);
    const status = (await system.cluster.status(leader)) as unknown as { voters: string[]; learners: string[] } | undefined;
    const expected = system.cluster.ids().sort();
    const shown = { voters: [...(status?.voters ?? [])].sort(), learners: status?.learners ?? [] };
    if (JSON.stringify(shown) !== JSON.stringify({ voters: expected, learners: [] }))
      throw new Error(`membership is ${JSON.stringify(shown)}`);
    return `voters ${expected.join(", ")}, no learners`;
  });
  await check("writes still commit (a lock cycle with a fenced write, and a booking)", async () => {
    const lease = await client.acquire([`after-fuzz-${Date.now()}`], { ttlMs: 10_000, autoRenew: false });
    const written = await lease.txn([{ op: "put", key: "fuzz-check/after", value: "committed" }]);
    await lease.release();
    const read = await client.get("fuzz-check/after");
    if (read?.value !== "committed") throw new Error(`read back ${JSON.stringify(read)}`);
    const telescope = fixtures.telescopes[0] as Fixtures["telescopes"][number];
    const id = await book(fixtures.schedulerUrl, seeded.seedKey, telescope, 5, 7 * telescope.slotMinutes);
    const shown = await call(fixtures.schedulerUrl, "GET", `/bookings/${id}`, { key: seeded.seedKey });
    if (shown.status !== 200 || shown.body.status !== "confirmed")
      throw new Error(`the new booking reads back as ${shown.status} ${shown.text.slice(0, 200)}`);
    return `txn at index ${written.index}, booking ${id}`;
  });
  await check("the seeded data is unchanged", async () => {
    const changed: string[] = [];
    for (const [key, before] of seeded.kv) if (JSON.stringify(await client.get(key)) !== before) changed.push(key);
    for (const [id, before] of seeded.bookings) {
      if ((await call(fixtures.schedulerUrl, "GET", `/bookings/${id}`, { key: seeded.seedKey })).text !== before)
        changed.push(`GET /bookings/${id}`);
    }
    if (changed.length > 0) throw new Error(`changed: ${changed.join(", ")}`);
    return `${seeded.kv.size} keys and ${seeded.bookings.size} bookings as seeded`;
  });
  await check("the audit chain verifies (read from the cluster, and as GET /audit reports it)", async () => {
    const records: ChainRecord[] = [];
    let after: string | undefined;
    for (let pages = 0; pages < 1000; pages++) {
      const page = await client.range("~chain/audit/", { limit: 1000, ...(after === undefined ? {} : { after }) });
      records.push(...page.items.map((item) => JSON.parse(item.value) as ChainRecord));
      after = page.items.at(-1)?.key;
      if (!page.more) break;
    }
    const verdict = verifyChain(records);
    if (!verdict.ok) throw new Error(`broken at seq ${verdict.brokenAtSeq}: ${verdict.reason}`);
    const bookingIdOf = (record: ChainRecord): string | undefined => {
      try {
        return (JSON.parse(record.record) as { details?: { booking_id?: string } }).details?.booking_id;
      } catch {
        return undefined;
      }
    };
    const created = new Set(records.map(bookingIdOf));
    const missing = fixtures.otherBookingIds.filter((id) => !created.has(id));
    if (missing.length > 0) throw new Error(`no audit record for seeded bookings ${missing.join(", ")}`);
    const reported = await call(fixtures.schedulerUrl, "GET", "/audit?limit=1", { key: seeded.seedKey });
    if (reported.body.chain?.verified !== true) throw new Error(`GET /audit says ${JSON.stringify(reported.body.chain)}`);
    return `${records.length} records`;
  });
  return results;
}
