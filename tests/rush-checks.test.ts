// The horizon rush's proofs (harness/rush-checks.ts) on a small hand-written history, then
// with one violation planted at a time: each check must pass on the true history and fail on the
// violation it is there to catch (a check that cannot fail proves nothing).
//
// The history: A asks for s1-s2 and is granted (index 10); B asks for s2-s3 while A holds s2 (busy,
// 11); A writes its booking (12); B asks again (13): granted, but s2 is booked now, so it releases
// (14); C asks for s3 (15) and writes (16).

import { describe, expect, it } from "vitest";
import type { LoggedCommand } from "../harness/raft-log.ts";
import { checkRush, type RushBooking, type RushEvidence, replayLog } from "../harness/rush-checks.ts";
import type { LockCommand } from "../lock/types.ts";

const tel = "rush-1";
const s1 = "2030-01-01T10:00:00Z";
const s2 = "2030-01-01T10:01:00Z";
const s3 = "2030-01-01T10:02:00Z";
const lease = (start: string) => `${tel}_${start}`;
let sequence = 0;
const session = () => ({ clientId: "scheduler-1", sequence: ++sequence });

function acquire(index: number, bookingId: string, starts: string[]): LoggedCommand {
  const command: LockCommand = {
    type: "acquire",
    session: session(),
    resources: [...starts.map(lease), `!idempotency_${bookingId}`],
    owner: "scheduler-1",
    ttlMs: 10_000,
    waitMs: 0,
  };
  return { index, term: 2, command };
}

function write(index: number, token: number, bookingId: string, starts: string[]): LoggedCommand {
  const command: LockCommand = {
    type: "txn",
    session: session(),
    guards: [...starts.map(lease), `!idempotency_${bookingId}`].map((resource) => ({ resource, token })),
    operations: [
      { op: "put", key: `booking/${bookingId}`, value: "{}" },
      ...starts.map((start) => ({
        op: "put" as const,
        key: `slot/${tel}/${start}`,
        value: JSON.stringify({ bookingId, scientistId: "sci" }),
      })),
      { op: "append", chain: "audit", value: JSON.stringify({ event_type: "BOOKING_CREATED", details: { booking_id: bookingId } }) },
    ],
    releaseGuards: true,
  };
  return { index, term: 2, command };
}

function release(index: number, token: number, bookingId: string, starts: string[]): LoggedCommand {
  const leases = [...starts.map(lease), `!idempotency_${bookingId}`].map((resource) => ({ resource, token }));
  return { index, term: 2, command: { type: "release", session: session(), leases } };
}

/** history builds a log with the scheduler's session starting afresh (sequence 1 first, as the cluster requires). */
function history(build: () => LoggedCommand[]): LoggedCommand[] {
  sequence = 0;
  return build();
}

const trueLog = (): LoggedCommand[] =>
  history(() => [
    acquire(10, "bk_a", [s1, s2]),
    acquire(11, "bk_b", [s2, s3]),
    write(12, 10, "bk_a", [s1, s2]),
    acquire(13, "bk_b", [s2, s3]),
    release(14, 13, "bk_b", [s2, s3]),
    acquire(15, "bk_c", [s3]),
    write(16, 15, "bk_c", [s3]),
  ]);

const booking = (id: string, slots: string[], token: number, order: number): RushBooking => ({
  id,
  telescopeId: tel,
  scientistId: `sci_${id}`,
  slots,
  status: "confirmed",
  fencingToken: String(token),
  order,
});

function evidence(log: LoggedCommand[] = trueLog()): RushEvidence {
  const stored = [booking("bk_a", [s1, s2], 10, 12), booking("bk_c", [s3], 15, 16)];
  return {
    telescopeIds: [tel],
    answers: [
      { scientistId: "sci_bk_a", bookingId: "bk_a", status: 201, code: undefined, slots: [s1, s2], order: 12 },
      { scientistId: "sci_bk_b", bookingId: "bk_b", status: 409, code: "slot_taken", slots: undefined, order: undefined },
      { scientistId: "sci_bk_c", bookingId: "bk_c", status: 201, code: undefined, slots: [s3], order: 16 },
    ],
    statuses: [201, 409, 409, 201],
    stored,
    storedClaims: new Map([
      [lease(s1), "bk_a"],
      [lease(s2), "bk_a"],
      [lease(s3), "bk_c"],
    ]),
    audit: [
      { seq: 1, index: 12, eventType: "BOOKING_CREATED", bookingId: "bk_a", fencingToken: "10" },
      { seq: 2, index: 16, eventType: "BOOKING_CREATED", bookingId: "bk_c", fencingToken: "15" },
    ],
    chainVerified: { ok: true, detail: "2 records" },
    replay: replayLog(log, [tel]),
  };
}

const failing = (verdict: ReturnType<typeof checkRush>) => verdict.checks.filter((one) => !one.ok).map((one) => one.name);

describe("the rush checks", () => {
  it("pass on the true history, and say who won each slot and who lost before the winner", () => {
    const verdict = checkRush(evidence());
    expect(failing(verdict)).toEqual([]);
    expect(verdict.checks).toHaveLength(6);
    expect(verdict.winners.map((row) => [row.slot, row.bookingId, row.winnerPosition, row.lostBefore])).toEqual([
      [lease(s1), "bk_a", 1, { busy: 0, taken: 0 }],
      [lease(s2), "bk_a", 1, { busy: 0, taken: 0 }],
      // B reached the cluster first for s3 twice: once while A held s2, once after s2 was booked.
      [lease(s3), "bk_c", 3, { busy: 1, taken: 1 }],
    ]);
  });

  it("catch a 5xx answer", () => {
    expect(failing(checkRush({ ...evidence(), statuses: [201, 503] }))).toEqual(["no 5xx answers"]);
  });

  it("catch a slot booked twice", () => {
    const twice = evidence();
    const stored = [...twice.stored, booking("bk_b", [s2, s3], 13, 14)];
    const answers = [
      ...twice.answers,
      { scientistId: "sci_bk_b", bookingId: "bk_b", status: 201, code: undefined, slots: [s2, s3], order: 14 },
    ];
    expect(failing(checkRush({ ...twice, stored, answers }))).toContain("no slot booked twice");
  });

  it("catch a 201 that is not stored, and one stored without its audit record", () => {
    const lost = evidence();
    expect(failing(checkRush({ ...lost, stored: lost.stored.filter((one) => one.id !== "bk_c") }))).toContain(
      "every 201 stored, with one audit record in the same entry",
    );
    expect(failing(checkRush({ ...lost, audit: lost.audit.slice(0, 1) }))).toEqual([
      "every 201 stored, with one audit record in the same entry",
    ]);
    expect(failing(checkRush({ ...lost, chainVerified: { ok: false, detail: "hash mismatch at 2" } }))).toEqual([
      "every 201 stored, with one audit record in the same entry",
    ]);
  });

  it("catch a booking stored although its click ended in an error", () => {
    const unseen = evidence();
    const answers = unseen.answers.map((answer) =>
      answer.bookingId === "bk_c" ? { ...answer, status: 503, code: "cluster_unavailable" } : answer,
    );
    expect(failing(checkRush({ ...unseen, answers }))).toContain("nothing stored that its scientist was not told (201)");
  });

  it("catch a log that disagrees with the store: a write under a stale lease, a claim the log never made", () => {
    // C's write names token 14 (no lease of C's was granted there): the model refuses it.
    const stale = history(() => [...trueLog().slice(0, 6), write(16, 14, "bk_c", [s3])]);
    expect(failing(checkRush(evidence(stale)))).toContain("the Raft log agrees with the stored state");
  });

  it("catch a request that found its range free and lost it to a later one", () => {
    // B asks for s3 alone at 11 and is granted (s3 free); its scheduler releases without writing,
    // and C, later, takes s3: the first request that could win s3 did not.
    const unfair = history(() => [
      acquire(10, "bk_a", [s1, s2]),
      acquire(11, "bk_b", [s3]),
      write(12, 10, "bk_a", [s1, s2]),
      release(13, 11, "bk_b", [s3]),
      acquire(15, "bk_c", [s3]),
      write(16, 15, "bk_c", [s3]),
    ]);
    expect(failing(checkRush(evidence(unfair)))).toEqual(["each slot won by the first request to reach the cluster that could win it"]);
  });

  it("let a request that found its range free but held it past its TTL unwritten lose it to a later one", () => {
    // B asks for s3 alone at 11 and is granted; its scheduler is too slow: the cluster expires the
    // lease (13, 14), B's late write is refused as stale (15), and C takes s3 (16, 17). B lost
    // fairly. The same history with B's lease released instead of expired is the unfair one above.
    const expire = (index: number, resource: string, token: number): LoggedCommand => ({
      index,
      term: 2,
      command: { type: "expire", resource, token, version: 1 },
    });
    const slow = history(() => [
      acquire(10, "bk_a", [s1, s2]),
      acquire(11, "bk_b", [s3]),
      write(12, 10, "bk_a", [s1, s2]),
      expire(13, lease(s3), 11),
      expire(14, "!idempotency_bk_b", 11),
      write(15, 11, "bk_b", [s3]),
      acquire(16, "bk_c", [s3]),
      write(17, 16, "bk_c", [s3]),
    ]);
    const replay = replayLog(slow, [tel]);
    expect([...replay.expiredGrants]).toEqual([11]);
    expect(replay.refusedWrites).toBe(1);
    const base = evidence(slow);
    const fair: RushEvidence = {
      ...base,
      stored: [booking("bk_a", [s1, s2], 10, 12), booking("bk_c", [s3], 16, 17)],
      answers: base.answers.map((answer) => (answer.bookingId === "bk_c" ? { ...answer, order: 17 } : answer)),
      audit: [
        { seq: 1, index: 12, eventType: "BOOKING_CREATED", bookingId: "bk_a", fencingToken: "10" },
        { seq: 2, index: 17, eventType: "BOOKING_CREATED", bookingId: "bk_c", fencingToken: "16" },
      ],
    };
    const verdict = checkRush(fair);
    expect(failing(verdict)).toEqual([]);
    const firstCheck = verdict.checks.find((one) => one.name.startsWith("each slot won by the first"));
    expect(firstCheck?.detail).toContain("1 such expired grants before a winner");
  });

  it("read a renewal of a slot's lease (a slow booking's client keeps it) as changing nothing", () => {
    const renew = (index: number, token: number, bookingId: string, starts: string[]): LoggedCommand => ({
      index,
      term: 2,
      command: {
        type: "renew",
        session: session(),
        leases: [...starts.map(lease), `!idempotency_${bookingId}`].map((resource) => ({ resource, token })),
      },
    });
    // A renews before it writes; B renews a lease it never got (refused by the cluster: nothing).
    const renewed = history(() => [
      acquire(10, "bk_a", [s1, s2]),
      acquire(11, "bk_b", [s2, s3]),
      renew(12, 10, "bk_a", [s1, s2]),
      renew(13, 11, "bk_b", [s2, s3]),
      write(14, 10, "bk_a", [s1, s2]),
      acquire(15, "bk_b", [s2, s3]),
      release(16, 15, "bk_b", [s2, s3]),
      acquire(17, "bk_c", [s3]),
      write(18, 17, "bk_c", [s3]),
    ]);
    const replay = replayLog(renewed, [tel]);
    expect(replay.attempts.map((attempt) => [attempt.index, attempt.outcome])).toEqual([
      [10, "granted"],
      [11, "busy"],
      [15, "granted"],
      [17, "granted"],
    ]);
    expect(replay.writes.map((write) => [write.index, write.token, write.claimed.length])).toEqual([
      [14, 10, 2],
      [18, 17, 1],
    ]);
    expect(replay.refusedWrites).toBe(0);
  });

  it("refuse, as the cluster does, a request older than its session's last 64 results (stale_sequence): it takes nothing", () => {
    const own = (sequence: number) => ({ clientId: "late-client", sequence });
    const log: LoggedCommand[] = [{ index: 1, term: 2, command: { type: "release", session: own(1), leases: [] } }];
    for (let sequence = 3; sequence <= 70; sequence += 1) {
      log.push({ index: sequence, term: 2, command: { type: "release", session: own(sequence), leases: [] } });
    }
    log.push({ index: 71, term: 2, command: { ...(acquire(71, "bk_late", [s1]).command as object), session: own(2) } as LockCommand });
    log.push({ index: 72, term: 2, command: { ...(acquire(72, "bk_next", [s1]).command as object), session: own(71) } as LockCommand });
    const replay = replayLog(log, [tel]);
    expect(replay.attempts.map((attempt) => [attempt.index, attempt.outcome])).toEqual([
      [71, "refused"],
      [72, "granted"],
    ]);
    expect(replay.refusedBySession).toBe(1);
  });

  it("treat a repeated session sequence as a retry of the same entry, applied once", () => {
    const log = trueLog();
    const retried = { ...(log[5] as LoggedCommand), index: 17 }; // C's acquire, delivered again after its write
    const replay = replayLog([...log, retried], [tel]);
    expect(replay.attempts.at(-1)?.outcome).toBe("duplicate");
    expect(failing(checkRush({ ...evidence(), replay }))).toEqual([]);
  });
});
