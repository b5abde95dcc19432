// The horizon rush's proofs (bench/rush.ts, tests/horizon-rush.test.ts), pure functions over what
// the run saw and what the cluster holds:
//
// - from the stored state: no slot is booked twice, every 201 is stored with its audit record in
//   the hash chain, and nothing is stored that its scientist was not told about;
// - from the cluster's Raft log: a replay of every lock command, by an independent model of
//   leases and slot claims (not the production state machine), agrees with the stored state, and
//   for every slot the first request to reach the cluster that could win it (none of its slots
//   held by another request or already booked at its place in the log) did win it.
//
// tests/rush-checks.test.ts shows each check failing on planted violations.

import { lockLimitsDefaults } from "../lock/lock-state-machine.ts";
import type { LoggedCommand } from "./raft-log.ts";

/** RushBooking: a stored booking of a rush telescope, as GET /bookings/{id} (or the `booking/` key) has it. */
export interface RushBooking {
  readonly id: string;
  readonly telescopeId: string;
  readonly scientistId: string;
  readonly slots: readonly string[];
  readonly status: "confirmed" | "cancelled";
  readonly fencingToken: string;
  readonly order: number;
}

/** RushAuditRecord: one record of the audit chain (`~chain/audit/…`), its `record` parsed. */
export interface RushAuditRecord {
  readonly seq: number;
  readonly index: number;
  readonly eventType: string;
  readonly bookingId: string | undefined;
  readonly fencingToken: string | undefined;
}

/** RushAnswer: the last answer one click (one Idempotency-Key) got. */
export interface RushAnswer {
  readonly scientistId: string;
  /** bookingId: the id the API derives from the scientist and the click's key (so known even for a 409). */
  readonly bookingId: string;
  readonly status: number;
  readonly code: string | undefined;
  readonly slots: readonly string[] | undefined;
  readonly order: number | undefined;
}

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** slotName: how the checks name a slot: `<telescope>_<start, ISO UTC>`, the slot's lease name. */
export const slotName = (telescopeId: string, startUtc: string) => `${telescopeId}_${startUtc}`;

// ---- the log replay -----------------------------------------------------------------------------

/** Attempt: one booking attempt as it reached the cluster: an acquire entry naming rush slots. */
export interface Attempt {
  readonly index: number;
  /** bookingId: from the attempt's Idempotency-Key lease (`!idempotency_<id>`), when it had one. */
  readonly bookingId: string | undefined;
  readonly slots: readonly string[];
  /** outcome: "duplicate" repeats an applied request (answered from the session); "refused" came too late for the session's window of results (stale_sequence) and did nothing. */
  readonly outcome: "granted" | "busy" | "duplicate" | "refused";
  /** busyOn: the first of its resources another request held, and that lease's token. */
  readonly busyOn: { readonly resource: string; readonly token: number } | undefined;
  /** takenAtIndex: its slots already booked when it reached the cluster. */
  readonly takenAtIndex: readonly string[];
  /** couldWin: nothing it asked for was held by another request or booked: the slots were its to take. */
  readonly couldWin: boolean;
}

/** Write: a txn entry that changed rush slot claims, under the lease granted at `token`. */
export interface Write {
  readonly index: number;
  readonly token: number;
  readonly claimed: readonly string[];
  readonly freed: readonly string[];
  readonly bookingId: string | undefined;
  readonly auditEvents: readonly string[];
}

export interface LogReplay {
  readonly attempts: readonly Attempt[];
  readonly writes: readonly Write[];
  /** claims: the slot claims after the last entry: slot name -> booking id. */
  readonly claims: ReadonlyMap<string, string>;
  /** refusedWrites: rush txns the model found stale (their lease no longer current): nothing written. */
  readonly refusedWrites: number;
  /** refusedBySession: commands refused for their session (stale_sequence, session_expired): nothing done. */
  readonly refusedBySession: number;
  /**
   * expiredGrants: the indexes (fencing tokens) of grants whose lease the cluster expired while
   * still held: the request was too slow to write before its TTL, and lost the range fairly.
   */
  readonly expiredGrants: ReadonlySet<number>;
}

/**
 * replayLog runs the committed lock commands through a small model of their meaning: leases
 * granted all-or-none (waitMs 0), released, expired, fencing-checked writes, and each client's
 * session (a repeated sequence is a retry, answered from the session; one older than the last
 * `resultsPerSessionMax` results is refused). Only rush slots (resources
 * `<telescope>_…` of `telescopeIds`, and the Idempotency-Key leases taken with them) are followed.
 */
export function replayLog(commands: readonly LoggedCommand[], telescopeIds: readonly string[]): LogReplay {
  const isSlot = (resource: string) => telescopeIds.some((id) => resource.startsWith(`${id}_`));
  const claimKeyToSlot = (key: string): string | undefined => {
    const match = /^slot\/([^/]+)\/(.+)$/.exec(key);
    return match !== null && telescopeIds.includes(match[1] as string) ? slotName(match[1] as string, match[2] as string) : undefined;
  };
  const held = new Map<string, number>();
  const claims = new Map<string, string>();
  const sessions = new Map<string, { results: Set<number>; evictedThrough: number }>();
  let refusedBySession = 0;
  const attempts: Attempt[] = [];
  const writes: Write[] = [];
  let refusedWrites = 0;
  const expiredGrants = new Set<number>();
  for (const { index, command } of commands) {
    if (command.type === "expire") {
      if (held.get(command.resource) === command.token) {
        held.delete(command.resource);
        expiredGrants.add(command.token);
      }
      continue;
    }
    // Credentials change who may act, not what is held; the rush runs under the bootstrap token, whose commands no revocation refuses.
    if (
      command.type === "cancel_wait" ||
      command.type === "credential_create" ||
      command.type === "credential_rotate" ||
      command.type === "credential_revoke"
    ) {
      continue;
    }
    let duplicate = false;
    let refused = false;
    if (command.session !== undefined) {
      const { clientId, sequence } = command.session;
      const session = sessions.get(clientId);
      if (session?.results.has(sequence) === true) duplicate = true;
      else if (session === undefined ? sequence !== 1 : sequence <= session.evictedThrough) refused = true;
      else {
        const known = session ?? { results: new Set<number>(), evictedThrough: 0 };
        sessions.set(clientId, known);
        known.results.add(sequence);
        while (known.results.size > lockLimitsDefaults.resultsPerSessionMax) {
          const lowest = Math.min(...known.results);
          known.results.delete(lowest);
          known.evictedThrough = Math.max(known.evictedThrough, lowest);
        }
      }
      if (refused) refusedBySession += 1;
    }
    switch (command.type) {
      case "acquire": {
        const slots = command.resources.filter(isSlot);
        if (slots.length === 0) break; // registrations, telescope grids: other resources
        if (command.waitMs !== 0)
          throw new Error(`index ${index}: an acquire that waits on rush slots (${slots.join(", ")}): not modelled`);
        const idempotency = command.resources.find((resource) => resource.startsWith("!idempotency_"));
        const bookingId = idempotency?.slice("!idempotency_".length);
        const takenAtIndex = slots.filter((slot) => claims.has(slot));
        if (duplicate || refused) {
          attempts.push({
            index,
            bookingId,
            slots,
            outcome: duplicate ? "duplicate" : "refused",
            busyOn: undefined,
            takenAtIndex,
            couldWin: false,
          });
          break;
        }
        const blocker = command.resources.find((resource) => held.has(resource));
        const busyOn = blocker === undefined ? undefined : { resource: blocker, token: held.get(blocker) as number };
        if (busyOn === undefined) for (const resource of command.resources) held.set(resource, index);
        attempts.push({
          index,
          bookingId,
          slots: [...slots].sort(),
          outcome: busyOn === undefined ? "granted" : "busy",
          busyOn,
          takenAtIndex,
          couldWin: busyOn === undefined && takenAtIndex.length === 0,
        });
        break;
      }
      case "release":
        if (duplicate || refused) break;
        for (const lease of command.leases) if (held.get(lease.resource) === lease.token) held.delete(lease.resource);
        break;
      case "renew":
        // A holder's client renews a lease it still holds when the booking takes longer than its
        // renewal point (a loaded machine). Expiry here is an explicit entry, not a clock, so a
        // renewal of a lease still held changes nothing in this model; one of a lease already gone
        // is refused by the cluster and takes nothing back either.
        break;
      case "txn": {
        const touched = command.operations.flatMap((operation) => {
          if (operation.op === "append") return [];
          const slot = claimKeyToSlot(operation.key);
          return slot === undefined ? [] : [{ slot, operation }];
        });
        if (touched.length === 0 || duplicate || refused) break;
        const current = command.guards.every((guard) => held.get(guard.resource) === guard.token);
        if (!current) {
          refusedWrites += 1;
          break;
        }
        const claimed: string[] = [];
        const freed: string[] = [];
        let bookingId: string | undefined;
        for (const { slot, operation } of touched) {
          if (operation.op === "put") {
            bookingId = (JSON.parse(operation.value) as { bookingId: string }).bookingId;
            claims.set(slot, bookingId);
            claimed.push(slot);
          } else {
            claims.delete(slot);
            freed.push(slot);
          }
        }
        const auditEvents = command.operations.flatMap((operation) => {
          if (operation.op !== "append" || operation.chain !== "audit") return [];
          const record = JSON.parse(operation.value) as { event_type: string; details: { booking_id?: string } };
          return [record.details.booking_id === bookingId ? record.event_type : `${record.event_type} of ${record.details.booking_id}`];
        });
        const token = command.guards[0]?.token ?? 0;
        writes.push({ index, token, claimed: claimed.sort(), freed: freed.sort(), bookingId, auditEvents });
        if (command.releaseGuards === true) for (const guard of command.guards) held.delete(guard.resource);
        break;
      }
    }
  }
  return { attempts, writes, claims, refusedWrites, refusedBySession, expiredGrants };
}

// ---- the checks -----------------------------------------------------------------------------------

export interface RushEvidence {
  readonly telescopeIds: readonly string[];
  readonly answers: readonly RushAnswer[];
  /** statuses: the status of every HTTP answer to a booking request (retries included). */
  readonly statuses: readonly number[];
  readonly stored: readonly RushBooking[];
  /** storedClaims: the `slot/` keys of the rush telescopes: slot name -> booking id. */
  readonly storedClaims: ReadonlyMap<string, string>;
  readonly audit: readonly RushAuditRecord[];
  readonly chainVerified: { readonly ok: boolean; readonly detail: string };
  readonly replay: LogReplay;
}

/** WinnerRow: who won one slot, and where in the log the contest for it stood. */
export interface WinnerRow {
  readonly slot: string;
  readonly bookingId: string;
  readonly scientistId: string;
  readonly fencingToken: number;
  readonly order: number;
  /** contenders: attempts that named this slot (retries of a click count again; session duplicates do not). */
  readonly contenders: number;
  /** winnerPosition: the winner's place among them, in log order (1: it was the first to reach the cluster). */
  readonly winnerPosition: number;
  /** lostBefore: why each earlier contender lost: "busy" (a slot of its range was held) or "taken" (one was booked). */
  readonly lostBefore: { readonly busy: number; readonly taken: number };
}

export interface RushVerdict {
  readonly checks: readonly Check[];
  readonly winners: readonly WinnerRow[];
}

const check = (name: string, problems: readonly string[], okDetail: string): Check => ({
  name,
  ok: problems.length === 0,
  detail:
    problems.length === 0
      ? okDetail
      : `${problems.length} problem(s): ${problems.slice(0, 5).join("; ")}${problems.length > 5 ? "; …" : ""}`,
});

/** checkRush runs every check over the evidence and lists who won each slot. */
export function checkRush(evidence: RushEvidence): RushVerdict {
  const confirmed = evidence.stored.filter((booking) => booking.status === "confirmed");
  const storedById = new Map(evidence.stored.map((booking) => [booking.id, booking]));
  const checks: Check[] = [];

  const serverErrors = evidence.statuses.filter((status) => status >= 500);
  checks.push(
    check(
      "no 5xx answers",
      serverErrors.length === 0 ? [] : [`${serverErrors.length} answers ${[...new Set(serverErrors)].join(", ")}`],
      `${evidence.statuses.length} answers, none 5xx`,
    ),
  );

  checks.push(noSlotTwice(confirmed, evidence.storedClaims));
  checks.push(everyCreatedStored(evidence, storedById));

  const told = new Set(evidence.answers.filter((answer) => answer.status === 201).map((answer) => answer.bookingId));
  checks.push(
    check(
      "nothing stored that its scientist was not told (201)",
      confirmed.filter((booking) => !told.has(booking.id)).map((booking) => `${booking.id} is stored, but its click ended without a 201`),
      `${confirmed.length} stored bookings, each answered 201`,
    ),
  );

  checks.push(logAgrees(evidence, confirmed));
  const { check: firstCheck, winners } = firstThatCouldWon(evidence.replay, storedById);
  checks.push(firstCheck);
  return { checks, winners };
}

function noSlotTwice(confirmed: readonly RushBooking[], storedClaims: ReadonlyMap<string, string>): Check {
  const problems: string[] = [];
  const owner = new Map<string, string>();
  for (const booking of confirmed) {
    for (const start of booking.slots) {
      const slot = slotName(booking.telescopeId, start);
      const earlier = owner.get(slot);
      if (earlier !== undefined) problems.push(`${slot} is in ${earlier} and ${booking.id}`);
      owner.set(slot, booking.id);
      if (storedClaims.get(slot) !== booking.id)
        problems.push(`${slot} of ${booking.id} is claimed by ${storedClaims.get(slot) ?? "nobody"}`);
    }
  }
  for (const [slot, bookingId] of storedClaims) {
    if (owner.get(slot) !== bookingId) problems.push(`the claim on ${slot} names ${bookingId}, which does not hold it`);
  }
  return check("no slot booked twice", problems, `${owner.size} slots booked, each by one booking, each claim matching`);
}

function everyCreatedStored(evidence: RushEvidence, storedById: ReadonlyMap<string, RushBooking>): Check {
  const problems: string[] = [];
  const created = new Map<string, RushAuditRecord[]>();
  for (const record of evidence.audit) {
    if (record.eventType !== "BOOKING_CREATED" || record.bookingId === undefined) continue;
    created.set(record.bookingId, [...(created.get(record.bookingId) ?? []), record]);
  }
  if (!evidence.chainVerified.ok) problems.push(`the audit chain does not verify: ${evidence.chainVerified.detail}`);
  const answered = new Map<string, RushAnswer>();
  for (const answer of evidence.answers) if (answer.status === 201) answered.set(answer.bookingId, answer);
  for (const [id, answer] of answered) {
    const booking = storedById.get(id);
    if (booking === undefined) {
      problems.push(`${id} was answered 201 but is not stored`);
      continue;
    }
    if (booking.status !== "confirmed") problems.push(`${id} is stored ${booking.status}`);
    if (JSON.stringify(booking.slots) !== JSON.stringify(answer.slots)) problems.push(`${id} is stored with other slots than answered`);
    if (booking.order !== answer.order) problems.push(`${id} is stored at order ${booking.order}, answered ${answer.order}`);
    const records = created.get(id) ?? [];
    if (records.length !== 1) {
      problems.push(`${id} has ${records.length} BOOKING_CREATED audit records`);
      continue;
    }
    const record = records[0] as RushAuditRecord;
    if (record.index !== booking.order) problems.push(`${id}'s audit record is at index ${record.index}, the booking at ${booking.order}`);
    if (record.fencingToken !== booking.fencingToken) problems.push(`${id}'s audit record names token ${record.fencingToken}`);
  }
  return check(
    "every 201 stored, with one audit record in the same entry",
    problems,
    `${answered.size} bookings answered 201: each stored as answered, each with one BOOKING_CREATED record at its own Raft index; audit chain verified (${evidence.chainVerified.detail})`,
  );
}

function logAgrees(evidence: RushEvidence, confirmed: readonly RushBooking[]): Check {
  const { replay } = evidence;
  const problems: string[] = [];
  const slotsOf = (booking: RushBooking) => booking.slots.map((start) => slotName(booking.telescopeId, start)).sort();
  for (const [slot, bookingId] of evidence.storedClaims) {
    if (replay.claims.get(slot) !== bookingId)
      problems.push(`the log leaves ${slot} to ${replay.claims.get(slot) ?? "nobody"}, the store to ${bookingId}`);
  }
  for (const slot of replay.claims.keys())
    if (!evidence.storedClaims.has(slot)) problems.push(`the log claims ${slot}, the store does not`);
  const grants = new Map(replay.attempts.filter((attempt) => attempt.outcome === "granted").map((attempt) => [attempt.index, attempt]));
  const writes = new Map(replay.writes.map((write) => [write.index, write]));
  for (const booking of confirmed) {
    const token = Number(booking.fencingToken);
    const grant = grants.get(token);
    if (grant === undefined || JSON.stringify(grant.slots) !== JSON.stringify(slotsOf(booking)) || grant.bookingId !== booking.id) {
      problems.push(`${booking.id}: no grant of exactly its slots at its fencing token ${token}`);
    }
    const write = writes.get(booking.order);
    if (write === undefined || write.token !== token || JSON.stringify(write.claimed) !== JSON.stringify(slotsOf(booking))) {
      problems.push(`${booking.id}: no write of its claims at its order ${booking.order} under token ${token}`);
    } else if (JSON.stringify(write.auditEvents) !== JSON.stringify(["BOOKING_CREATED"])) {
      problems.push(`${booking.id}: its write at ${booking.order} appended ${JSON.stringify(write.auditEvents)} to the audit chain`);
    }
  }
  return check(
    "the Raft log agrees with the stored state",
    problems,
    `${replay.attempts.length} booking attempts and ${replay.writes.length} writes replayed; each booking granted at its fencing token and written, with its audit record, at its order; ${replay.refusedWrites} stale writes refused; ${replay.refusedBySession} commands refused for their session`,
  );
}

function firstThatCouldWon(replay: LogReplay, storedById: ReadonlyMap<string, RushBooking>): { check: Check; winners: WinnerRow[] } {
  const problems: string[] = [];
  const bySlot = new Map<string, Attempt[]>();
  for (const attempt of replay.attempts) {
    if (attempt.outcome === "duplicate" || attempt.outcome === "refused") continue;
    for (const slot of attempt.slots) bySlot.set(slot, [...(bySlot.get(slot) ?? []), attempt]);
  }
  const winners: WinnerRow[] = [];
  let firstToAsk = 0;
  // A request that found its range free and held it past its TTL without writing (the cluster
  // expired its lease) lost the range fairly: it was too slow, and the next request that could win
  // it is then the first. One that gave up a free range any other way (released it unwritten) did
  // not, and is reported.
  let expiredBeforeTheWinner = 0;
  const couldStillWin = (attempt: Attempt) => attempt.couldWin && !replay.expiredGrants.has(attempt.index);
  for (const [slot, contenders] of [...bySlot].sort(([a], [b]) => (a < b ? -1 : 1))) {
    const bookingId = replay.claims.get(slot);
    if (bookingId === undefined) {
      const firstFree = contenders.find(couldStillWin);
      if (firstFree !== undefined) problems.push(`${slot}: the attempt at ${firstFree.index} found it free, yet nobody holds it`);
      continue;
    }
    const booking = storedById.get(bookingId);
    const token = booking === undefined ? Number.NaN : Number(booking.fencingToken);
    const position = contenders.findIndex((attempt) => attempt.index === token);
    const before = position < 0 ? contenders : contenders.slice(0, position);
    const firstFree = before.find(couldStillWin) ?? contenders[position];
    if (firstFree === undefined || firstFree.index !== token || !firstFree.couldWin) {
      problems.push(
        `${slot}: won at ${token}, but the first attempt that could win it reached the cluster at ${firstFree?.couldWin === true ? firstFree.index : "none"}`,
      );
    }
    expiredBeforeTheWinner += before.filter((attempt) => attempt.couldWin).length;
    if (position === 0) firstToAsk += 1;
    const earlier = contenders.slice(0, Math.max(0, position));
    winners.push({
      slot,
      bookingId,
      scientistId: booking?.scientistId ?? "?",
      fencingToken: token,
      order: booking?.order ?? Number.NaN,
      contenders: contenders.length,
      winnerPosition: position + 1,
      lostBefore: {
        busy: earlier.filter((attempt) => attempt.outcome === "busy").length,
        taken: earlier.filter((attempt) => attempt.outcome === "granted").length,
      },
    });
  }
  return {
    check: check(
      "each slot won by the first request to reach the cluster that could win it",
      problems,
      `${winners.length} slots won: ${firstToAsk} by the first request to ask for them; for the other ${winners.length - firstToAsk}, every earlier request asked for a range with a slot already held or booked by a still earlier one, or held it free past its TTL without writing (${expiredBeforeTheWinner} such expired grants before a winner)`,
    ),
    winners,
  };
}
