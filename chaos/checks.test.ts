// The runner's final checks must flag what they are there to catch, on states broken on purpose:
// lost and resurrected elements of the lock-set; a slot booked twice, a lost or refused-but-stored
// booking, a wrong status, missing or duplicated audit records, a broken chain, copies or claims
// that disagree; different events at one index; diverging durable logs. A consistent state passes.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { encodeCommand } from "../lock/codec.ts";
import { LevelDurableLog } from "../node/persistence/level-durable-log.ts";
import { type ChainRecord, chainGenesisHash, chainRecordHash } from "../protocol/chain.ts";
import { type Entry, nodeId } from "../raft/index.ts";
import { compareAppliedEvents } from "./applied-events.ts";
import { compareDurableLogs } from "./durable-logs.ts";
import { clockChecks } from "./history.ts";
import type { FaultRecord, LeaseProbe } from "./nemesis.ts";
import { makeHistoryPlan } from "./plan.ts";
import { type BookingRequest, checkBookings } from "./workload-bookings.ts";
import { checkSets } from "./workload-lock-set.ts";

describe("clockChecks", () => {
  // A 1 s probe lease granted at 1.3 s (asked at 1 s: slack 2 s); samples put term 2 from 0 s and,
  // in one case, term 3 at 3 s.
  const plan = makeHistoryPlan(1, 0, {
    kinds: ["clock"],
    workloads: ["lock-set"],
    historyMs: 20_000,
    faultsPerHistory: 1,
    leaseTtlMs: 1000,
    unfenced: false,
  });
  const record = (probe: Partial<LeaseProbe>): FaultRecord => ({
    plan: plan.faults[0] as FaultRecord["plan"],
    label: "clock",
    targets: ["n1"],
    startedAtMs: 1000,
    endedAtMs: 5000,
    notes: [],
    effective: true,
    ranAs: "step-back",
    leaseProbe: {
      ttlMs: 1000,
      invokedAtMs: 1000,
      grantedAtMs: 1300,
      goneAtMs: undefined,
      lastSeenHeldAtMs: undefined,
      slackMs: 2000,
      ...probe,
    },
  });
  const sample = (atMs: number, term: number) => ({
    atMs,
    id: "n1",
    role: "leader" as const,
    term,
    leaderId: "n1",
    commitIndex: 1,
    appliedIndex: 1,
    voters: [],
    learners: [],
  });
  const quiet = [sample(0, 2), sample(6000, 2)];
  const check = (probe: Partial<LeaseProbe>, samples = quiet) => clockChecks([record(probe)], samples)[0]?.ok;
  it("passes a lease seen held within its TTL and slack, then gone after its TTL", () => {
    expect(check({ lastSeenHeldAtMs: 3000, goneAtMs: 3500 })).toBe(true);
  });
  it("flags a lease seen gone before its TTL, and one seen held past its TTL and slack", () => {
    expect(check({ lastSeenHeldAtMs: 1500, goneAtMs: 1800 })).toBe(false);
    expect(check({ lastSeenHeldAtMs: 4400 })).toBe(false);
  });
  it("allows a lease held longer when a new leader restarted its countdown, and takes no answer as no evidence", () => {
    expect(check({ lastSeenHeldAtMs: 4400 }, [sample(0, 2), sample(3000, 3)])).toBe(true);
    expect(check({})).toBe(true);
  });
});

describe("checkSets", () => {
  const elements = new Map([
    ["c1.1", { key: "set/0", fate: "committed" as const }],
    ["c2.1", { key: "set/0", fate: "stale" as const }],
    ["c3.1", { key: "set/0", fate: "unknown" as const }],
  ]);
  it("passes when every acknowledged add is there and no refused one", () => {
    expect(checkSets(elements, [{ key: "set/0", value: "c1.1,c3.1" }])).toMatchObject({ ok: true, unknownPresent: 1 });
  });
  it("flags a lost acknowledged add and a refused add that landed", () => {
    expect(checkSets(elements, [{ key: "set/0", value: "c2.1" }])).toMatchObject({
      ok: false,
      lost: ["c1.1"],
      refusedButPresent: ["c2.1"],
    });
  });
});

/** A consistent booking state: two bookings, one cancelled, with their claims, copies and audit chain. */
function bookingState() {
  const booking = (id: string, slots: string[], status: "confirmed" | "cancelled") => ({
    id,
    telescopeId: "hubble-acad",
    scientistId: "sci_1",
    startUtc: slots[0],
    slots,
    status,
  });
  const b1 = booking("bk_1", ["s1", "s2"], "confirmed");
  const b2 = booking("bk_2", ["s3"], "cancelled");
  const records: ChainRecord[] = [];
  let prevHash = chainGenesisHash;
  for (const [seq, [event, id]] of [
    ["BOOKING_CREATED", "bk_1"],
    ["BOOKING_CREATED", "bk_2"],
    ["BOOKING_CANCELLED", "bk_2"],
  ].entries()) {
    const record = JSON.stringify({ event_type: event, details: { booking_id: id } });
    const index = 10 + seq;
    const hash = chainRecordHash(prevHash, seq + 1, index, record);
    records.push({ chain: "audit", seq: seq + 1, index, prevHash, hash, record });
    prevHash = hash;
  }
  const request = (kind: "create" | "cancel", bookingId: string, outcome: BookingRequest["outcome"]): BookingRequest => ({
    client: "s0",
    kind,
    bookingId,
    slots: [],
    invokedAtMs: 0,
    returnedAtMs: 1,
    outcome,
    answer: "",
    attempts: 1,
  });
  return {
    requests: [request("create", "bk_1", "created"), request("create", "bk_2", "created"), request("cancel", "bk_2", "cancelled")],
    bookings: [b1, b2].map((item) => ({ key: `booking/${item.id}`, value: JSON.stringify(item) })),
    slotClaims: ["s1", "s2"].map((slot) => ({ key: `slot/hubble-acad/${slot}`, value: JSON.stringify({ bookingId: "bk_1" }) })),
    audit: records,
    copies: [b1, b1, b2, b2].map((item, position) => ({ key: `copy/${position}`, value: JSON.stringify(item) })),
  };
}

describe("checkBookings", () => {
  it("passes a consistent state", () => {
    expect(checkBookings(bookingState())).toMatchObject({ ok: true, stored: 2, cancelled: 1, acknowledged: 2, problems: [] });
  });

  const broken: [string, (state: ReturnType<typeof bookingState>) => void, RegExp][] = [
    [
      "a slot booked twice",
      (state) => {
        state.bookings.push({ key: "booking/bk_3", value: JSON.stringify({ id: "bk_3", slots: ["s2"], status: "confirmed" }) });
      },
      /slot s2 is booked twice/,
    ],
    ["an acknowledged booking lost", (state) => void state.bookings.splice(0, 1), /bk_1 was acknowledged \(201\) but is not stored/],
    [
      "a refused booking stored",
      (state) => {
        state.requests.push({ ...(state.requests[0] as BookingRequest), bookingId: "bk_1", outcome: "refused", answer: "409 slot_taken" });
      },
      /refused \(409 slot_taken\) but is stored/,
    ],
    [
      "an acknowledged cancellation not applied",
      (state) => {
        state.bookings[1] = { key: "booking/bk_2", value: (state.bookings[1]?.value ?? "").replace("cancelled", "confirmed") };
        state.slotClaims.push({ key: "slot/hubble-acad/s3", value: JSON.stringify({ bookingId: "bk_2" }) });
      },
      /cancellation was acknowledged, but it is confirmed/,
    ],
    ["an audit record missing", (state) => void state.audit.splice(2, 1), /\(cancelled\) has 0 BOOKING_CANCELLED|does not verify/],
    [
      "an audit record duplicated",
      (state) => {
        state.audit.push({ ...(state.audit[0] as ChainRecord) });
      },
      /does not verify|has 2 BOOKING_CREATED/,
    ],
    [
      "a chain record altered",
      (state) => {
        state.audit[1] = { ...(state.audit[1] as ChainRecord), record: (state.audit[1] as ChainRecord).record.replace("bk_2", "bk_9") };
      },
      /does not verify/,
    ],
    ["a claim missing", (state) => void state.slotClaims.splice(0, 1), /slot s1 is booked by bk_1 but claimed by nobody/],
    ["a copy missing", (state) => void state.copies.splice(0, 1), /bk_1: 1 day\/sci copies/],
  ];
  it.each(broken)("flags %s", (_name, breakIt, problem) => {
    const state = bookingState();
    breakIt(state);
    const result = checkBookings(state);
    expect(result.ok).toBe(false);
    expect(result.problems.join("\n")).toMatch(problem);
  });
});

describe("compareAppliedEvents", () => {
  it("compares the indexes two nodes cover, and flags different events at one", () => {
    const node = (id: string, fromIndex: number, events: [number, string][]) => ({ id, fromIndex, byIndex: new Map(events) });
    const same = compareAppliedEvents(
      [node("n1", 0, [[2, "granted"]]), node("n2", 0, [[2, "granted"]]), node("n3", 1, [[2, "granted"]])],
      3,
    );
    expect(same).toMatchObject({ ok: true, comparedIndexes: 3 });
    const different = compareAppliedEvents([node("n1", 0, [[2, "granted"]]), node("n2", 0, [[2, "released"]])], 3);
    expect(different.ok).toBe(false);
    expect(different.problems[0]).toMatch(/index 2: n1 applied granted, n2 applied released/);
  });
});

describe("compareDurableLogs", () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  async function writeLog(id: string, entries: Entry[]): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), "chaos-durable-"));
    dirs.push(dir);
    const log = await LevelDurableLog.open({ dataDir: join(dir, "db"), clusterId: "sctec-local", nodeId: id });
    await log.save({ hardState: { term: 2, votedFor: nodeId("n1"), commitIndex: entries.length }, entries });
    await log.close();
    return join(dir, "db");
  }

  const put = (index: number, term: number, value: string): Entry => ({
    kind: "normal",
    index,
    term,
    data: encodeCommand({ type: "acquire", resources: [`r${value}`], owner: "o", ttlMs: 1000, waitMs: 0 }),
  });

  it("passes equal logs with equal states, and flags an entry that differs", async () => {
    const entries = [put(1, 1, "a"), put(2, 1, "b"), put(3, 2, "c")];
    const equal = await compareDurableLogs(
      new Map([
        ["n1", await writeLog("n1", entries)],
        ["n2", await writeLog("n2", entries)],
      ]),
      { index: 3, ids: ["n1", "n2"] },
    );
    expect(equal).toMatchObject({ ok: true, comparedIndexes: 3 });
    expect(equal.nodes[0]?.stateDigest).toBe(equal.nodes[1]?.stateDigest);
    const diverged = await compareDurableLogs(
      new Map([
        ["n1", await writeLog("n1", entries)],
        ["n2", await writeLog("n2", [put(1, 1, "a"), put(2, 1, "x"), put(3, 2, "c")])],
      ]),
      { index: 3, ids: ["n1", "n2"] },
    );
    expect(diverged.ok).toBe(false);
    expect(diverged.problems.join("\n")).toMatch(/index 2: n1 has term 1 normal \w+, n2 has term 1 normal \w+/);
    expect(diverged.problems.join("\n")).toMatch(/state at index 3: n2 differs from n1/);
  });
});
