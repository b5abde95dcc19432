// The booking flow (DESIGN.md, "Bookings"): take the leases of every slot in one atomic acquire
// (sorted names, all or none, so no deadlock), read the slots linearizably, check the rules, write
// the booking, its slot claims and its audit record in ONE fenced transaction, release. The
// cluster checks the fencing token of every write, so a scheduler that paused past its lease
// writes nothing, and the caller gets `lease_lost` (never a blind retry, never half a booking).

import { nameLengthMax } from "../protocol/limits.ts";
import { alternativesWindowMs, alternativeView, nearestFreeRanges } from "./alternatives.ts";
import { type ClusterItem, type ClusterLease, type ClusterOperation, type ClusterPort, LockError, type RangeRead } from "./cluster.ts";
import { ApiError, clusterError } from "./errors.ts";
import type { SchedulerLogger as Logger } from "./logging.ts";
import {
  type AuditRecord,
  type Booking,
  bookingAudit,
  keys,
  parseStoredBooking,
  randomHex,
  resolveBooking,
  type Scientist,
  type StoredBooking,
  sha256Hex,
} from "./records.ts";
import { isoUtc, slotResource, slotsOf, type Telescope } from "./slots.ts";
import { type BookingTestHooks, productionHooks } from "./test-hooks.ts";

/** ClaimsNear: the slot starts claimed in [fromMs, toMs) of one telescope. */
interface ClaimsNear {
  readonly claimed: ReadonlySet<number>;
  readonly fromMs: number;
  readonly toMs: number;
}

/** alternativesClaimsKeptMs: how long one read of claims serves the offers of other lost races. */
const alternativesClaimsKeptMs = 250;
/** alternativesClaimsKeptMax bounds the windows kept at once. */
const alternativesClaimsKeptMax = 256;

/** alternativesClaimsReadMax bounds the one range read behind a 409's alternatives (the cluster answers at most 1000 keys a read). */
const alternativesClaimsReadMax = 1000;

export interface BookingsOptions {
  readonly cluster: ClusterPort;
  readonly telescopes: ReadonlyMap<string, Telescope>;
  readonly serviceName: string;
  readonly leaseTtlMs: number;
  readonly nowMs: () => number;
  /** testHooks: the test and demonstration modes (test-hooks.ts), chosen in main.ts; productionHooks when absent. */
  readonly testHooks?: BookingTestHooks;
  /** observer hears the flow's outcomes (for metrics); it must be cheap and must not throw. */
  readonly observer?: BookingObserver;
}

/** LockWaitOutcome: how taking a booking's leases ended. */
export type LockWaitOutcome = "acquired" | "busy" | "failed";

/** BookingObserver hears what the booking flow decided (scheduler/metrics.ts counts it). */
export interface BookingObserver {
  bookingCreated(): void;
  bookingCancelled(): void;
  /** bookingConflict: a create answered 409, because a slot's lease was held (slot_busy) or the slot was booked (slot_taken). */
  bookingConflict(reason: "slot_busy" | "slot_taken"): void;
  /**
   * fencingRejected: a write under a lease that was no longer current was refused (answered
   * lease_lost), by the client before sending (its local deadline had passed) or by the cluster's fence.
   */
  fencingRejected(refusedBy: "client" | "cluster"): void;
  lockWaited(durationMs: number, outcome: LockWaitOutcome): void;
}

export interface CreateBookingInput {
  readonly telescopeId: string;
  readonly startUtc: string;
  readonly endUtc: string;
  readonly requestedAtUtc: string;
  readonly idempotencyKey: string | undefined;
}

export interface ListQuery {
  readonly telescopeId?: string | undefined;
  readonly scientistId?: string | undefined;
  readonly day?: string | undefined;
  readonly status?: "confirmed" | "cancelled" | undefined;
  readonly limit: number;
  readonly cursor?: string | undefined;
}

/** SlotClaim is the value of a `slot/` key: which booking holds the slot, and whose it is. */
export interface SlotClaim {
  readonly bookingId: string;
  readonly scientistId: string;
}

function slotClaim(bookingId: string, scientistId: string): string {
  return JSON.stringify({ bookingId, scientistId });
}

function parseSlotClaim(value: string): SlotClaim {
  return JSON.parse(value) as SlotClaim;
}

/** cancelLeaseWaitMs: a cancellation waits a little for the slots' leases, since a booking attempt on them ends quickly. */
const cancelLeaseWaitMs = 2000;

/** BookingRequest: a create request that passed the slot rules, with what the later steps derive from it. */
interface BookingRequest {
  readonly input: CreateBookingInput;
  readonly scientist: Scientist;
  readonly telescope: Telescope;
  /** id: the booking's id, fixed by the Idempotency-Key when there is one, so that a retry finds it. */
  readonly id: string;
  /** slots: the starts of the requested slots (ISO UTC), in order. */
  readonly slots: readonly string[];
  /** resources: the slots' lease names, sorted. */
  readonly resources: readonly string[];
  /** named: the resources as one string, for messages. */
  readonly named: string;
  readonly receivedAtMs: number;
}

/** BookingReads: what the granting entry reads for a booking, by name (the acquire sends and answers them in a list). */
interface BookingReads {
  /** claims: the slot claims on the requested slots. */
  readonly claims: RangeRead;
  /** earlier: the booking an earlier attempt with the same Idempotency-Key made (only with a key). */
  readonly earlier: RangeRead | undefined;
}

/** RangeAnswer: one read's answer, as the grant returns it. */
type RangeAnswer = NonNullable<ClusterLease["reads"]>[number];

/** bookingReads names the reads a booking's grant makes. */
function bookingReads(request: BookingRequest): BookingReads {
  const [firstSlot] = request.slots as [string, ...string[]];
  const telescopeId = request.telescope.id;
  return {
    // One range read finds the claims on consecutive slots: `after` is the first slot's key without
    // its final "Z", which sorts just before it.
    claims: { prefix: keys.slotPrefix(telescopeId), after: keys.slot(telescopeId, firstSlot).slice(0, -1), limit: request.slots.length },
    earlier: request.input.idempotencyKey === undefined ? undefined : { prefix: keys.booking(request.id), limit: 1 },
  };
}

/** readsAsked: the named reads in the order the acquire sends them; answersOf names the answers back in that order. */
function readsAsked(reads: BookingReads): RangeRead[] {
  return reads.earlier === undefined ? [reads.claims] : [reads.claims, reads.earlier];
}

/** answersOf: the grant's answers by name (undefined when the cluster answered no reads with it). */
function answersOf(lease: ClusterLease): { readonly claims: RangeAnswer | undefined; readonly earlier: RangeAnswer | undefined } {
  const [claims, earlier] = lease.reads ?? [];
  return { claims, earlier };
}

/** bookingIdOf: a new random id, or with an Idempotency-Key one derived from it and the scientist, the same on every retry. */
function bookingIdOf(input: CreateBookingInput, scientist: Scientist): string {
  return input.idempotencyKey === undefined
    ? `bk_${randomHex(12)}`
    : `bk_${sha256Hex(`${scientist.id}\n${input.idempotencyKey}`).slice(0, 24)}`;
}

/** bookingOperations: one fenced txn's operations: the booking's three copies (by id, day, scientist), its slot claims, its audit record. */
function bookingOperations(
  stored: StoredBooking,
  value: string,
  claims: readonly ClusterOperation[],
  audit: AuditRecord,
): ClusterOperation[] {
  return [
    { op: "put", key: keys.booking(stored.id), value },
    { op: "put", key: keys.day(stored), value },
    { op: "put", key: keys.scientistBooking(stored), value },
    ...claims,
    { op: "append", chain: keys.auditChain, value: JSON.stringify(audit) },
  ];
}

/** HeldLease: the leases a flow holds, the slots they cover, and what the flow is (for messages). */
interface HeldLease {
  readonly lease: ClusterLease;
  readonly resources: readonly string[];
  readonly what: string;
}

/** WrittenBooking: what a flow's write stored, its audit record, and the write's Raft index. */
interface WrittenBooking {
  readonly stored: StoredBooking;
  readonly audit: AuditRecord;
  readonly index: number;
}

/** LeaseAsk: the leases a flow asks for. */
interface LeaseAsk {
  /** resources: the slots' own leases, sorted. */
  readonly resources: readonly string[];
  readonly bookingId: string;
  readonly waitMs: number;
  /** idempotencyResource: the Idempotency-Key's own lease, taken with the slots'. */
  readonly idempotencyResource?: string | undefined;
  /** reads: range reads the granting entry answers. */
  readonly reads?: readonly RangeRead[];
}

export class Bookings {
  private readonly options: BookingsOptions;
  private readonly hooks: BookingTestHooks;

  constructor(options: BookingsOptions) {
    this.options = options;
    this.hooks = options.testHooks ?? productionHooks;
  }

  telescope(id: string): Telescope | undefined {
    return this.options.telescopes.get(id);
  }

  /**
   * create books the input's slots for the scientist, or throws an ApiError. A 409 for slots taken
   * or busy carries `details.alternatives`: the nearest free ranges of the same length (issue 18).
   */
  async create(
    input: CreateBookingInput,
    scientist: Scientist,
    log: Logger,
    requestId: string,
  ): Promise<{ booking: Booking; replayed: boolean }> {
    try {
      return await this.decide(input, scientist, log, requestId);
    } catch (error) {
      if (!(error instanceof ApiError) || (error.code !== "slot_taken" && error.code !== "slot_busy")) throw error;
      // Looked up after the leases are released: the offer is a hint, read as of now, never held.
      const alternatives = await this.alternatives(input, error.code === "slot_busy", requestId).catch((lookupError: unknown) => {
        log.warn({ event: "alternatives_failed", err: lookupError }, "could not look up free ranges to offer");
        return [];
      });
      const details = { ...(error.details as Record<string, unknown> | undefined), alternatives };
      throw new ApiError(error.code, error.message, details);
    }
  }

  /**
   * alternatives picks the nearest free ranges of a refused range's length, from the slot claims
   * around it. Those are read once per telescope and hour-aligned window and kept for
   * alternativesClaimsKeptMs, shared by every request that needs them meanwhile: when a block
   * opens, hundreds of requests lose within milliseconds of each other, and one read serves them
   * all. An offer is a hint (booking it decides), so a read that old is good enough.
   */
  private async alternatives(input: CreateBookingInput, busy: boolean, requestId: string): Promise<Record<string, unknown>[]> {
    const telescope = this.options.telescopes.get(input.telescopeId);
    if (telescope === undefined) return [];
    const slotMs = telescope.slotMinutes * 60_000;
    const startMs = Date.parse(input.startUtc);
    const lengthMs = Date.parse(input.endUtc) - startMs;
    const near = await this.claimsNear(telescope.id, startMs, requestId);
    const ranges = nearestFreeRanges({
      telescope,
      startMs,
      count: lengthMs / slotMs,
      nowMs: this.options.nowMs(),
      claimedStartsMs: near.claimed,
      fromMs: Math.max(near.fromMs, startMs - alternativesWindowMs),
      toMs: Math.min(near.toMs, startMs + alternativesWindowMs + lengthMs),
      excludeRequested: busy,
    });
    return ranges.map((range) => alternativeView(telescope.id, range));
  }

  private readonly claimsNearKept = new Map<string, { readonly readAtMs: number; readonly claims: Promise<ClaimsNear> }>();

  /** claimsNear: the claimed slot starts of a telescope from an hour before startMs − the window to the window's far end, read or kept. */
  private claimsNear(telescopeId: string, startMs: number, requestId: string): Promise<ClaimsNear> {
    const fromMs = Math.floor((startMs - alternativesWindowMs) / 3_600_000) * 3_600_000;
    const key = `${telescopeId}|${fromMs}`;
    const nowMs = performance.now();
    const kept = this.claimsNearKept.get(key);
    if (kept !== undefined && nowMs - kept.readAtMs < alternativesClaimsKeptMs) return kept.claims;
    const claims = this.readClaimsNear(telescopeId, fromMs, fromMs + 2 * alternativesWindowMs + 2 * 3_600_000, requestId);
    this.claimsNearKept.delete(key);
    this.claimsNearKept.set(key, { readAtMs: nowMs, claims });
    claims.catch(() => this.claimsNearKept.delete(key));
    while (this.claimsNearKept.size > alternativesClaimsKeptMax)
      this.claimsNearKept.delete(this.claimsNearKept.keys().next().value as string);
    return claims;
  }

  private async readClaimsNear(telescopeId: string, fromMs: number, toMs: number, requestId: string): Promise<ClaimsNear> {
    const prefix = keys.slotPrefix(telescopeId);
    const page = await this.options.cluster.range(prefix, {
      after: keys.slot(telescopeId, isoUtc(fromMs)).slice(0, -1),
      limit: alternativesClaimsReadMax,
      requestId,
    });
    const claimed = new Set<number>();
    for (const item of page.items) {
      const slotStartMs = Date.parse(item.key.slice(prefix.length));
      if (slotStartMs >= toMs) break;
      claimed.add(slotStartMs);
    }
    // A page cut short ends the window at its last claim: beyond it nothing is known.
    const last = page.items.at(-1);
    const knownToMs = page.more && last !== undefined ? Math.min(toMs, Date.parse(last.key.slice(prefix.length))) : toMs;
    return { claimed, fromMs, toMs: knownToMs };
  }

  /**
   * decide is the booking flow, one named step at a time: check the rules, take the slots' leases
   * (their grant reads the slot claims), then under the leases: find an earlier attempt with the
   * same Idempotency-Key (and answer it again), refuse taken slots, write the booking with its
   * audit record in one fenced txn that also ends the leases, and answer.
   */
  private async decide(
    input: CreateBookingInput,
    scientist: Scientist,
    log: Logger,
    requestId: string,
  ): Promise<{ booking: Booking; replayed: boolean }> {
    const request = this.checkRules(input, scientist);
    const { id, resources, named } = request;
    log.info({ event: "booking_request_received", resources, bookingId: id }, `request received for POST /bookings for resource ${named}`);
    const reads = bookingReads(request);
    let lease: ClusterLease;
    try {
      lease = await this.takeBookingLeases(request, reads, log, requestId);
    } catch (error) {
      const earlier = await this.madeWhileBusy(request, error, requestId);
      if (earlier !== undefined) return this.replay(request, earlier, log);
      if (error instanceof ApiError && error.code === "slot_busy") this.options.observer?.bookingConflict("slot_busy");
      throw error;
    }
    const held: HeldLease = { lease, resources, what: `booking ${named}` };
    return this.underLease(held, log, requestId, async (leaseEnded) => {
      log.info({ event: "conflict_check", resources }, `checking conflicts for ${named}`);
      const earlier = await this.earlierAttempt(request, lease, requestId);
      if (earlier !== undefined) return this.replay(request, earlier, log);
      const claims = await this.claimsUnderLease(request, reads.claims, lease, requestId);
      this.refuseTaken(request, claims, log);
      await this.hooks.afterChecks("booking", log);
      const written = await this.writeBooking(request, lease, log, requestId);
      leaseEnded();
      return { booking: this.created(request, written, lease, log), replayed: false };
    }).catch((error: unknown) => {
      if (error instanceof ApiError && error.code === "slot_taken") this.options.observer?.bookingConflict("slot_taken");
      throw error;
    });
  }

  /** checkRules: the telescope exists and the range obeys its slot rules (slots.ts); what the later steps need of the request. */
  private checkRules(input: CreateBookingInput, scientist: Scientist): BookingRequest {
    const receivedAtMs = this.options.nowMs();
    const telescope = this.options.telescopes.get(input.telescopeId);
    if (telescope === undefined) {
      throw new ApiError("unknown_telescope", `there is no telescope ${input.telescopeId}`, {
        telescopes: [...this.options.telescopes.keys()],
      });
    }
    const checked = slotsOf(telescope, Date.parse(input.startUtc), Date.parse(input.endUtc), receivedAtMs);
    if ("violation" in checked) {
      // beyond_horizon says when the range opens, so a client a moment early can wait and ask again.
      const details = checked.opensAtMs === undefined ? undefined : { opensAtUtc: isoUtc(checked.opensAtMs) };
      throw new ApiError(checked.violation, checked.message, details);
    }
    // Sorted, so every request asks for its leases in one global order.
    const resources = checked.slots.map((slot) => slotResource(telescope.id, slot)).sort();
    return {
      input,
      scientist,
      telescope,
      id: bookingIdOf(input, scientist),
      slots: checked.slots.map(isoUtc),
      resources,
      named: resources.join(", "),
      receivedAtMs,
    };
  }

  /**
   * takeBookingLeases takes every slot's lease in one atomic acquire that does not wait (a busy
   * slot is the lab's 409), with the reads the granting entry answers.
   */
  private async takeBookingLeases(request: BookingRequest, reads: BookingReads, log: Logger, requestId: string): Promise<ClusterLease> {
    // With an Idempotency-Key the booking's id is fixed, so two requests with one key must not
    // both pass the checks: the key gets a lease of its own, taken with the slots'. Its name sorts
    // before every slot's ("!" < letters), so when an earlier attempt with this key still holds its
    // leases, the conflict names this one: the retry is told "still in progress", not "busy", and
    // asks again instead of taking a 409 for a booking that may yet be stored.
    const idempotencyResource = request.input.idempotencyKey === undefined ? undefined : `!idempotency_${request.id}`;
    const asked = { resources: request.resources, bookingId: request.id, waitMs: 0, idempotencyResource, reads: readsAsked(reads) };
    return this.takeLeases(asked, log, requestId);
  }

  /**
   * madeWhileBusy: for a request with an Idempotency-Key refused as slot_busy, the booking an
   * earlier attempt with the key already made, if any. A retry whose first attempt made the
   * booking (its answer lost) finds the slot busy whenever some other request holds the slot's
   * lease at that moment, deciding it, to be told it is taken. The booking answers that retry, not
   * the other request: 409 would tell the client that nothing was booked. (Found by npm run chaos:
   * "refused (409 slot_busy) but stored"; tests/booking-api.test.ts.)
   */
  private async madeWhileBusy(request: BookingRequest, error: unknown, requestId: string): Promise<Booking | undefined> {
    if (request.input.idempotencyKey === undefined || !(error instanceof ApiError) || error.code !== "slot_busy") return undefined;
    return this.read(request.id, requestId);
  }

  /** earlierAttempt: the booking an earlier request with this Idempotency-Key stored, as the grant read it. */
  private async earlierAttempt(request: BookingRequest, lease: ClusterLease, requestId: string): Promise<Booking | undefined> {
    if (request.input.idempotencyKey === undefined) return undefined;
    const answered = answersOf(lease).earlier;
    // A cluster that answered no reads with the grant is asked now (still under the lease).
    if (answered === undefined) return this.read(request.id, requestId);
    const [found] = answered.items;
    return found === undefined ? undefined : resolveBooking(parseStoredBooking(found.value), found.modIndex);
  }

  /** replay answers a retry with the booking its key already made, if it is the same booking; another one is a 422. */
  private replay(request: BookingRequest, earlier: Booking, log: Logger): { booking: Booking; replayed: boolean } {
    const [firstSlot] = request.slots;
    const same =
      earlier.telescopeId === request.telescope.id &&
      earlier.startUtc === firstSlot &&
      earlier.endUtc === isoUtc(Date.parse(request.input.endUtc));
    if (!same) {
      throw new ApiError(
        "idempotency_key_reused",
        `this Idempotency-Key was already used for another booking (${earlier.telescopeId} ${earlier.startUtc}–${earlier.endUtc}); use a new key for a new booking`,
        { booking: { href: `/bookings/${earlier.id}` } },
      );
    }
    log.info({ event: "booking_replayed", bookingId: request.id }, `booking ${request.id} already made under this Idempotency-Key`);
    return { booking: earlier, replayed: true };
  }

  /** claimsUnderLease: the claims on the requested slots as of the grant, read linearizably under the leases. */
  private async claimsUnderLease(
    request: BookingRequest,
    claimsRead: RangeRead,
    lease: ClusterLease,
    requestId: string,
  ): Promise<{ slot: string; bookingId: string }[]> {
    const answered = answersOf(lease).claims;
    // An answer cut short for size (more, with fewer items than asked) is read again in full.
    const complete = answered !== undefined && (!answered.more || answered.items.length === claimsRead.limit);
    const items = complete ? answered.items : (await this.options.cluster.range(claimsRead.prefix, { ...claimsRead, requestId })).items;
    return this.claimsIn(request.telescope.id, request.slots, items);
  }

  /** refuseTaken: a slot already booked is the lab's 409 `slot_taken`, naming each booking that holds one. */
  private refuseTaken(request: BookingRequest, claims: readonly { slot: string; bookingId: string }[], log: Logger): void {
    if (claims.length === 0) return;
    log.info({ event: "booking_conflict", resources: request.resources, bookings: claims }, `${request.named} is already booked`);
    throw new ApiError("slot_taken", `${request.telescope.id} ${claims.map((claim) => claim.slot).join(", ")} is already booked`, {
      bookings: claims.map((claim) => ({ slot: claim.slot, href: `/bookings/${claim.bookingId}` })),
    });
  }

  /**
   * writeBooking stores the booking (three copies: by id, by day, by scientist), its slot claims and
   * its audit record in ONE txn fenced by the leases, which also ends them: all of it or none.
   */
  private async writeBooking(request: BookingRequest, lease: ClusterLease, log: Logger, requestId: string): Promise<WrittenBooking> {
    const { id, telescope, scientist, input } = request;
    const nowUtc = new Date(this.options.nowMs()).toISOString();
    const stored: StoredBooking = {
      id,
      telescopeId: telescope.id,
      scientistId: scientist.id,
      startUtc: isoUtc(Date.parse(input.startUtc)),
      endUtc: isoUtc(Date.parse(input.endUtc)),
      slots: request.slots,
      status: "confirmed",
      requestedAtUtc: input.requestedAtUtc,
      receivedAtUtc: new Date(request.receivedAtMs).toISOString(),
      createdAtUtc: nowUtc,
      fencingToken: lease.token,
    };
    const audit = this.auditOf("BOOKING_CREATED", stored, nowUtc, requestId, lease);
    log.info({ event: "booking_saving", bookingId: id }, `saving booking ${id}`);
    const claims = request.slots.map(
      (slot): ClusterOperation => ({ op: "put", key: keys.slot(telescope.id, slot), value: slotClaim(id, scientist.id) }),
    );
    const operations = bookingOperations(stored, JSON.stringify(stored), claims, audit);
    const { index } = await this.write(lease, operations, log, requestId, `booking ${request.named}`);
    return { stored, audit, index };
  }

  /** created: the stored booking as answered (its place in the global order is the write's Raft index), logged and counted. */
  private created(request: BookingRequest, { stored, audit, index }: WrittenBooking, lease: ClusterLease, log: Logger): Booking {
    const { resources, named } = request;
    log.info({ event: "lock_releasing", resources }, `releasing lock for ${named} (in the same transaction as the write)`);
    const booking = resolveBooking(stored, index);
    log.info({ event: "booking_created", bookingId: stored.id, order: index, fencingToken: lease.token }, `booking ${stored.id} created`);
    this.options.observer?.bookingCreated();
    log.audit({ ...audit, audit: true, order: index }, "audit");
    return booking;
  }

  /**
   * cancel marks a booking cancelled, frees its slots and appends BOOKING_CANCELLED, in one fenced
   * txn under the slots' leases; only its scientist may, and only before it starts.
   */
  async cancel(id: string, scientist: Scientist, log: Logger, requestId: string): Promise<Booking> {
    const booking = await this.get(id, requestId);
    this.checkCancellable(booking, scientist);
    const telescope = this.options.telescopes.get(booking.telescopeId);
    if (telescope === undefined) throw new ApiError("internal", `booking ${id} names an unknown telescope ${booking.telescopeId}`);
    const resources = booking.slots.map((slot) => slotResource(booking.telescopeId, Date.parse(slot))).sort();
    const lease = await this.takeLeases({ resources, bookingId: id, waitMs: cancelLeaseWaitMs }, log, requestId);
    return this.underLease({ lease, resources, what: `cancelling ${id}` }, log, requestId, async (leaseEnded) => {
      // Read again under the leases: another request may have cancelled it meanwhile.
      const current = await this.get(id, requestId);
      this.checkCancellable(current, scientist);
      await this.hooks.afterChecks("cancellation", log);
      const { stored, audit, index } = await this.writeCancellation(current, lease, log, requestId);
      leaseEnded();
      log.info({ event: "lock_releasing", resources }, `releasing lock for ${resources.join(", ")} (in the same transaction as the write)`);
      log.info({ event: "booking_cancelled", bookingId: id, order: index }, `booking ${id} cancelled`);
      this.options.observer?.bookingCancelled();
      log.audit({ ...audit, audit: true, order: index }, "audit");
      return resolveBooking(stored, index);
    });
  }

  /** writeCancellation stores the cancelled booking's three copies, deletes its slot claims and appends its audit record, in one fenced txn. */
  private async writeCancellation(current: Booking, lease: ClusterLease, log: Logger, requestId: string): Promise<WrittenBooking> {
    const nowUtc = new Date(this.options.nowMs()).toISOString();
    const stored: StoredBooking = { ...current, status: "cancelled", cancelledAtUtc: nowUtc, order: current.order };
    const { cancelOrder: _dropped, ...withoutCancelOrder } = stored as Booking;
    const audit = this.auditOf("BOOKING_CANCELLED", stored, nowUtc, requestId, lease);
    log.info({ event: "booking_cancelling", bookingId: current.id }, `cancelling booking ${current.id}`);
    const freed = current.slots.map((slot): ClusterOperation => ({ op: "delete", key: keys.slot(current.telescopeId, slot) }));
    const operations = bookingOperations(stored, JSON.stringify(withoutCancelOrder), freed, audit);
    const { index } = await this.write(lease, operations, log, requestId, `cancelling ${current.id}`);
    return { stored, audit, index };
  }

  private auditOf(
    eventType: "BOOKING_CREATED" | "BOOKING_CANCELLED",
    stored: StoredBooking,
    nowUtc: string,
    requestId: string,
    lease: ClusterLease,
  ): AuditRecord {
    return bookingAudit(eventType, stored, { nowUtc, service: this.options.serviceName, requestId, fencingToken: lease.token });
  }

  /**
   * underLease runs a flow's checks and write while it holds the slots' leases, and answers with
   * API errors (clusterError). The write ends the leases in its own entry, and the flow says so
   * (leaseEnded); a flow that ends without writing (a refusal, a failure) releases them here. A
   * failed release costs only time: the leases expire.
   */
  private async underLease<T>(held: HeldLease, log: Logger, requestId: string, flow: (leaseEnded: () => void) => Promise<T>): Promise<T> {
    let releasedByWrite = false;
    try {
      return await flow(() => {
        releasedByWrite = true;
      });
    } catch (error) {
      throw clusterError(error, held.what);
    } finally {
      if (!releasedByWrite) await this.release(held.lease, held.resources, log, requestId);
    }
  }

  async get(id: string, requestId: string): Promise<Booking> {
    const booking = await this.read(id, requestId);
    if (booking === undefined) throw new ApiError("not_found", `there is no booking ${id}`);
    return booking;
  }

  /** list pages through bookings by telescope (and day) or by scientist (and day), in start order. */
  async list(query: ListQuery, requestId: string): Promise<{ items: Booking[]; nextCursor: string | undefined }> {
    let prefix: string;
    if (query.scientistId !== undefined) prefix = keys.scientistPrefix(query.scientistId, query.day);
    else if (query.telescopeId !== undefined) prefix = keys.dayPrefix(query.telescopeId, query.day);
    else prefix = "day/";
    let after: string | undefined;
    if (query.cursor !== undefined) {
      after = Buffer.from(query.cursor, "base64url").toString("utf8");
      // A cursor this API made is a key, within the cluster's key limit; anything else is refused here, not passed on.
      if (after.length > nameLengthMax || !after.startsWith(prefix))
        throw new ApiError("invalid_cursor", "the cursor does not belong to this query; follow the next link");
    }
    const items: Booking[] = [];
    // Filters the prefix cannot express (telescope within a scientist's list, status) are applied
    // here; scan a bounded number of pages so one request stays cheap.
    for (let pages = 0; pages < 10; pages += 1) {
      let page: { items: ClusterItem[]; more: boolean };
      try {
        page = await this.options.cluster.range(prefix, { limit: query.limit, requestId, ...(after === undefined ? {} : { after }) });
      } catch (error) {
        throw clusterError(error, "listing bookings");
      }
      for (const [position, item] of page.items.entries()) {
        after = item.key;
        const booking = resolveBooking(parseStoredBooking(item.value), item.modIndex);
        if (query.telescopeId !== undefined && booking.telescopeId !== query.telescopeId) continue;
        if (query.status !== undefined && booking.status !== query.status) continue;
        items.push(booking);
        if (items.length === query.limit) {
          const more = page.more || position < page.items.length - 1;
          return { items, nextCursor: more ? Buffer.from(after).toString("base64url") : undefined };
        }
      }
      if (!page.more) return { items, nextCursor: undefined };
    }
    return { items, nextCursor: after === undefined ? undefined : Buffer.from(after).toString("base64url") };
  }

  /** claimsOfDay reads which slots of a telescope's day are taken, by which booking and whose. */
  async claimsOfDay(telescopeId: string, day: string, requestId: string): Promise<Map<string, SlotClaim>> {
    const claims = new Map<string, SlotClaim>();
    let after: string | undefined;
    for (let pages = 0; pages < 4; pages += 1) {
      let page: { items: ClusterItem[]; more: boolean };
      try {
        page = await this.options.cluster.range(`${keys.slotPrefix(telescopeId)}${day}`, {
          limit: 500,
          requestId,
          ...(after === undefined ? {} : { after }),
        });
      } catch (error) {
        throw clusterError(error, "reading the day's slots");
      }
      for (const item of page.items) claims.set(item.key.slice(keys.slotPrefix(telescopeId).length), parseSlotClaim(item.value));
      if (!page.more) break;
      after = page.items.at(-1)?.key;
    }
    return claims;
  }

  private async read(id: string, requestId: string): Promise<Booking | undefined> {
    let item: ClusterItem | undefined;
    try {
      item = await this.options.cluster.get(keys.booking(id), requestId);
    } catch (error) {
      throw clusterError(error, `reading booking ${id}`);
    }
    return item === undefined ? undefined : resolveBooking(parseStoredBooking(item.value), item.modIndex);
  }

  /** claimsIn: the claims among a read's items that fall on the requested slots (the read may run past the last). */
  private claimsIn(telescopeId: string, slots: readonly string[], items: readonly ClusterItem[]): { slot: string; bookingId: string }[] {
    const [firstSlot] = slots as [string, ...string[]];
    const first = keys.slot(telescopeId, firstSlot);
    const end = keys.slot(telescopeId, slots.at(-1) as string);
    return items
      .filter((item) => item.key >= first && item.key <= end)
      .map((item) => ({ slot: item.key.slice(keys.slotPrefix(telescopeId).length), bookingId: parseSlotClaim(item.value).bookingId }));
  }

  private checkCancellable(booking: Booking, scientist: Scientist): void {
    if (booking.scientistId !== scientist.id) throw new ApiError("forbidden", "only the scientist who made a booking may cancel it");
    if (booking.status === "cancelled") throw new ApiError("already_cancelled", `booking ${booking.id} is already cancelled`);
    if (Date.parse(booking.startUtc) <= this.options.nowMs()) {
      throw new ApiError("already_started", `booking ${booking.id} started at ${booking.startUtc}; it can no longer be cancelled`);
    }
  }

  /**
   * takeLeases takes a flow's leases in one atomic acquire (all or none), with any reads the
   * granting entry should answer, and reports how long it took (observer.lockWaited).
   */
  private async takeLeases(ask: LeaseAsk, log: Logger, requestId: string): Promise<ClusterLease> {
    const { resources, idempotencyResource, reads } = ask;
    const named = resources.join(", ");
    const slotLeases = this.hooks.leaseNames(resources, ask.bookingId, log);
    const asked = idempotencyResource === undefined ? slotLeases : [...slotLeases, idempotencyResource];
    log.info({ event: "lock_trying", resources }, `trying to acquire lock for ${named}`);
    const startedMs = performance.now();
    try {
      const lease = await this.options.cluster.acquire(asked, {
        ttlMs: this.options.leaseTtlMs,
        waitMs: ask.waitMs,
        requestId,
        ...(reads === undefined ? {} : { reads }),
      });
      this.options.observer?.lockWaited(performance.now() - startedMs, "acquired");
      log.info(
        { event: "lock_acquired", resources, fencingToken: lease.token },
        `lock acquired for ${named} (fencing token ${lease.token})`,
      );
      return lease;
    } catch (error) {
      throw this.leaseRefused(error, ask, performance.now() - startedMs, log);
    }
  }

  /**
   * leaseRefused: the API error for an acquire that failed. A conflict on the Idempotency-Key's own
   * lease means an earlier attempt with the key is still being decided (retry with the same key);
   * a conflict on a slot's is `slot_busy`.
   */
  private leaseRefused(error: unknown, ask: LeaseAsk, waitedMs: number, log: Logger): ApiError {
    const { resources, idempotencyResource } = ask;
    const named = resources.join(", ");
    if (
      idempotencyResource !== undefined &&
      error instanceof LockError &&
      error.code === "conflict" &&
      error.holder?.resource === idempotencyResource
    ) {
      log.info({ event: "booking_in_progress", resources }, `an earlier attempt with this Idempotency-Key still holds ${named}`);
      return new ApiError(
        "booking_in_progress",
        "an earlier attempt with this Idempotency-Key is still being decided; retry with the same key shortly",
      );
    }
    const mapped = clusterError(error, named);
    this.options.observer?.lockWaited(waitedMs, mapped.code === "slot_busy" ? "busy" : "failed");
    if (mapped.code === "slot_busy") log.info({ event: "lock_busy", resources }, `failed to acquire lock for ${named}: resource busy`);
    return mapped;
  }

  private async write(
    lease: ClusterLease,
    operations: readonly ClusterOperation[],
    log: Logger,
    requestId: string,
    what: string,
  ): Promise<{ index: number }> {
    try {
      // The write also ends the leases: once it is applied nothing more needs them.
      return await lease.txn(operations, requestId, { release: true });
    } catch (error) {
      const mapped = clusterError(error, what);
      if (mapped.code === "lease_lost") {
        const refusedBy = error instanceof LockError && error.code === "lease_expired" ? "client" : "cluster";
        this.options.observer?.fencingRejected(refusedBy);
        log.warn(
          { event: "lease_lost", fencingToken: lease.token, refusedBy },
          refusedBy === "client"
            ? `the lease (fencing token ${lease.token}) ran out before the write; nothing was sent: ${mapped.message}`
            : `the cluster refused the write under fencing token ${lease.token}: ${mapped.message}`,
        );
      }
      throw mapped;
    }
  }

  private async release(lease: ClusterLease, resources: readonly string[], log: Logger, requestId: string): Promise<void> {
    log.info({ event: "lock_releasing", resources }, `releasing lock for ${resources.join(", ")}`);
    try {
      await lease.release(requestId);
    } catch (error) {
      // The lease runs out by itself; a failed release costs only time.
      log.warn({ event: "lock_release_failed", err: error }, `releasing lock for ${resources.join(", ")} failed; the lease will expire`);
    }
  }
}
