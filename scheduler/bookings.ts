// The booking flow (DESIGN.md, "Bookings"): take the leases of every slot in one atomic acquire
// (sorted names, all or none, so no deadlock), read the slots linearizably, check the rules, write
// the booking, its slot claims and its audit record in ONE fenced transaction, release. The
// cluster checks the fencing token of every write, so a scheduler that paused past its lease
// writes nothing, and the caller gets `lease_lost` (never a blind retry, never half a booking).

import { randomBytes } from "node:crypto";
import { nameLengthMax } from "../protocol/limits.ts";
import { alternativesWindowMs, alternativeView, nearestFreeRanges } from "./alternatives.ts";
import { type ClusterItem, type ClusterLease, type ClusterOperation, type ClusterPort, LockError, type RangeRead } from "./cluster.ts";
import { ApiError } from "./errors.ts";
import type { SchedulerLogger as Logger } from "./logging.ts";
import {
  type Booking,
  bookingAudit,
  clusterError,
  keys,
  parseStoredBooking,
  randomHex,
  resolveBooking,
  type Scientist,
  type StoredBooking,
  sha256Hex,
} from "./records.ts";
import { isoUtc, slotResource, slotsOf, type Telescope } from "./slots.ts";

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
  /** locking false is the lab's delivery 2: no slot leases, so simultaneous requests race. */
  readonly locking: boolean;
  readonly nowMs: () => number;
  /** pauseBeforeWrite blocks the whole process between the checks and the write (a test hook). */
  readonly pauseBeforeWriteMs: number;
  /** unlockedWriteDelayMs: with locking off only, wait this long between the check and the write (widens the race). */
  readonly unlockedWriteDelayMs: number;
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

export class Bookings {
  private readonly options: BookingsOptions;

  constructor(options: BookingsOptions) {
    this.options = options;
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

  private async decide(
    input: CreateBookingInput,
    scientist: Scientist,
    log: Logger,
    requestId: string,
  ): Promise<{ booking: Booking; replayed: boolean }> {
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
    const slots = checked.slots.map(isoUtc);
    const resources = checked.slots.map((slot) => slotResource(telescope.id, slot)).sort();
    const id =
      input.idempotencyKey === undefined
        ? `bk_${randomHex(12)}`
        : `bk_${sha256Hex(`${scientist.id}\n${input.idempotencyKey}`).slice(0, 24)}`;
    const named = resources.join(", ");
    log.info({ event: "booking_request_received", resources, bookingId: id }, `request received for POST /bookings for resource ${named}`);

    // With an Idempotency-Key the booking's id is fixed, so two requests with one key must not
    // both pass the check below: the key gets a lease of its own, taken with the slots'.
    // Its name sorts before every slot's ("!" < letters), so when an earlier attempt with this key
    // still holds its leases, the conflict names this one: the retry is told "still in progress",
    // not "busy", and asks again instead of taking a 409 for a booking that may yet be stored.
    const idempotencyResource = input.idempotencyKey === undefined ? undefined : `!idempotency_${id}`;
    // The granting entry itself reads the slot claims (and the booking an earlier attempt with this
    // key may have made): a linearizable read as of the grant, with no further round.
    const claimsRead = this.claimsRead(telescope.id, slots);
    const reads: RangeRead[] = [claimsRead, ...(input.idempotencyKey === undefined ? [] : [{ prefix: keys.booking(id), limit: 1 }])];
    let lease: ClusterLease;
    try {
      lease = await this.takeLeases(resources, id, log, requestId, 0, idempotencyResource, reads);
    } catch (error) {
      if (error instanceof ApiError && error.code === "slot_busy" && input.idempotencyKey !== undefined) {
        // A retry whose booking an earlier attempt already made finds the slot busy whenever some
        // other request holds the slot's lease at that moment (deciding it, to be told it is
        // taken). The booking answers that retry, not the other request: 409 would tell the client
        // that nothing was booked. (Found by npm run chaos: "refused (409 slot_busy) but stored".)
        const earlier = await this.read(id, requestId);
        if (earlier !== undefined) return this.replay(earlier, telescope.id, checked.slots[0] as number, input, log);
      }
      if (error instanceof ApiError && error.code === "slot_busy") this.options.observer?.bookingConflict("slot_busy");
      throw error;
    }
    let releasedByWrite = false;
    try {
      log.info({ event: "conflict_check", resources }, `checking conflicts for ${named}`);
      if (input.idempotencyKey !== undefined) {
        const found = lease.reads?.[1];
        const earlier =
          found === undefined
            ? await this.read(id, requestId)
            : found.items[0] === undefined
              ? undefined
              : resolveBooking(parseStoredBooking(found.items[0].value), found.items[0].modIndex);
        if (earlier !== undefined) return this.replay(earlier, telescope.id, checked.slots[0] as number, input, log);
      }
      // An answer cut short for size (more, with fewer items than asked) is read again in full.
      const answered = lease.reads?.[0];
      const complete = answered !== undefined && (!answered.more || answered.items.length === claimsRead.limit);
      const claimItems = complete
        ? answered.items
        : (await this.options.cluster.range(claimsRead.prefix, { ...claimsRead, requestId })).items;
      const claims = this.claimsIn(telescope.id, slots, claimItems);
      if (claims.length > 0) {
        log.info({ event: "booking_conflict", resources, bookings: claims }, `${named} is already booked`);
        throw new ApiError("slot_taken", `${telescope.id} ${claims.map((claim) => claim.slot).join(", ")} is already booked`, {
          bookings: claims.map((claim) => ({ slot: claim.slot, href: `/bookings/${claim.bookingId}` })),
        });
      }
      if (!this.options.locking && this.options.unlockedWriteDelayMs > 0) {
        // Without locking, the check and the write are a read-then-write race; this widens its
        // window (demonstrations only) so the lab's delivery 2 shows it on a fast cluster too.
        await new Promise((resolve) => setTimeout(resolve, this.options.unlockedWriteDelayMs));
      }
      this.pauseIfAsked(log);
      const nowUtc = new Date(this.options.nowMs()).toISOString();
      const stored: StoredBooking = {
        id,
        telescopeId: telescope.id,
        scientistId: scientist.id,
        startUtc: isoUtc(Date.parse(input.startUtc)),
        endUtc: isoUtc(Date.parse(input.endUtc)),
        slots,
        status: "confirmed",
        requestedAtUtc: input.requestedAtUtc,
        receivedAtUtc: new Date(receivedAtMs).toISOString(),
        createdAtUtc: nowUtc,
        fencingToken: lease.token,
      };
      const audit = bookingAudit("BOOKING_CREATED", stored, {
        nowUtc,
        service: this.options.serviceName,
        requestId,
        fencingToken: lease.token,
      });
      log.info({ event: "booking_saving", bookingId: id }, `saving booking ${id}`);
      const value = JSON.stringify(stored);
      const operations: ClusterOperation[] = [
        { op: "put", key: keys.booking(id), value },
        { op: "put", key: keys.day(stored), value },
        { op: "put", key: keys.scientistBooking(stored), value },
        ...slots.map((slot): ClusterOperation => ({ op: "put", key: keys.slot(telescope.id, slot), value: slotClaim(id, scientist.id) })),
        { op: "append", chain: keys.auditChain, value: JSON.stringify(audit) },
      ];
      const { index } = await this.write(lease, operations, log, requestId, `booking ${named}`);
      releasedByWrite = true;
      log.info({ event: "lock_releasing", resources }, `releasing lock for ${named} (in the same transaction as the write)`);
      const booking = resolveBooking(stored, index);
      log.info({ event: "booking_created", bookingId: id, order: index, fencingToken: lease.token }, `booking ${id} created`);
      this.options.observer?.bookingCreated();
      log.audit({ ...audit, audit: true, order: index }, "audit");
      return { booking, replayed: false };
    } catch (error) {
      const mapped = clusterError(error, `booking ${named}`);
      if (mapped.code === "slot_taken") this.options.observer?.bookingConflict("slot_taken");
      throw mapped;
    } finally {
      if (!releasedByWrite) await this.release(lease, resources, log, requestId);
    }
  }

  async cancel(id: string, scientist: Scientist, log: Logger, requestId: string): Promise<Booking> {
    const booking = await this.get(id, requestId);
    this.checkCancellable(booking, scientist);
    const telescope = this.options.telescopes.get(booking.telescopeId);
    if (telescope === undefined) throw new ApiError("internal", `booking ${id} names an unknown telescope ${booking.telescopeId}`);
    const resources = booking.slots.map((slot) => slotResource(booking.telescopeId, Date.parse(slot))).sort();
    // A cancellation waits a little for the slots' leases: a booking attempt on them ends quickly.
    const lease = await this.takeLeases(resources, id, log, requestId, 2000);
    let releasedByWrite = false;
    try {
      const current = await this.get(id, requestId);
      this.checkCancellable(current, scientist);
      this.pauseIfAsked(log);
      const nowUtc = new Date(this.options.nowMs()).toISOString();
      const stored: StoredBooking = { ...current, status: "cancelled", cancelledAtUtc: nowUtc, order: current.order };
      const { cancelOrder: _dropped, ...withoutCancelOrder } = stored as Booking;
      const value = JSON.stringify(withoutCancelOrder);
      const audit = bookingAudit("BOOKING_CANCELLED", stored, {
        nowUtc,
        service: this.options.serviceName,
        requestId,
        fencingToken: lease.token,
      });
      log.info({ event: "booking_cancelling", bookingId: id }, `cancelling booking ${id}`);
      const { index } = await this.write(
        lease,
        [
          { op: "put", key: keys.booking(id), value },
          { op: "put", key: keys.day(stored), value },
          { op: "put", key: keys.scientistBooking(stored), value },
          ...current.slots.map((slot): ClusterOperation => ({ op: "delete", key: keys.slot(current.telescopeId, slot) })),
          { op: "append", chain: keys.auditChain, value: JSON.stringify(audit) },
        ],
        log,
        requestId,
        `cancelling ${id}`,
      );
      releasedByWrite = true;
      log.info({ event: "lock_releasing", resources }, `releasing lock for ${resources.join(", ")} (in the same transaction as the write)`);
      log.info({ event: "booking_cancelled", bookingId: id, order: index }, `booking ${id} cancelled`);
      this.options.observer?.bookingCancelled();
      log.audit({ ...audit, audit: true, order: index }, "audit");
      return resolveBooking(stored, index);
    } catch (error) {
      throw clusterError(error, `cancelling ${id}`);
    } finally {
      if (!releasedByWrite) await this.release(lease, resources, log, requestId);
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

  /**
   * replay answers a request whose Idempotency-Key already made `earlier`: that booking again if it
   * is the one asked for, else idempotency_key_reused (the key was used for another booking).
   */
  private replay(
    earlier: Booking,
    telescopeId: string,
    firstSlotMs: number,
    input: CreateBookingInput,
    log: Logger,
  ): { booking: Booking; replayed: boolean } {
    const same =
      earlier.telescopeId === telescopeId &&
      earlier.startUtc === isoUtc(firstSlotMs) &&
      earlier.endUtc === isoUtc(Date.parse(input.endUtc));
    if (!same) {
      throw new ApiError(
        "idempotency_key_reused",
        `this Idempotency-Key was already used for another booking (${earlier.telescopeId} ${earlier.startUtc}–${earlier.endUtc}); use a new key for a new booking`,
        { booking: { href: `/bookings/${earlier.id}` } },
      );
    }
    log.info({ event: "booking_replayed", bookingId: earlier.id }, `booking ${earlier.id} already made under this Idempotency-Key`);
    return { booking: earlier, replayed: true };
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

  /**
   * claimsRead is the one range read that finds the claims on consecutive slots: the `after` key is
   * the first slot's key without its final "Z", which sorts just before it.
   */
  private claimsRead(telescopeId: string, slots: readonly string[]): RangeRead {
    return { prefix: keys.slotPrefix(telescopeId), after: keys.slot(telescopeId, slots[0] as string).slice(0, -1), limit: slots.length };
  }

  private claimsIn(telescopeId: string, slots: readonly string[], items: readonly ClusterItem[]): { slot: string; bookingId: string }[] {
    const first = keys.slot(telescopeId, slots[0] as string);
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

  private async takeLeases(
    resources: readonly string[],
    id: string,
    log: Logger,
    requestId: string,
    waitMs: number,
    extraResource?: string,
    reads?: readonly RangeRead[],
  ): Promise<ClusterLease> {
    const named = resources.join(", ");
    // Without locking (the lab's delivery 2), the write still needs a lease to act under: one no
    // other request will ever ask for, so it excludes nothing.
    const locked = this.options.locking ? resources : [`unlocked_${id}_${randomBytes(4).toString("hex")}`];
    const asked = extraResource === undefined ? locked : [...locked, extraResource];
    if (!this.options.locking) {
      log.warn({ event: "locking_disabled" }, "LOCKING IS OFF: bookings race (lab delivery 2 demonstration only)");
    }
    log.info({ event: "lock_trying", resources }, `trying to acquire lock for ${named}`);
    const startedMs = performance.now();
    try {
      const lease = await this.options.cluster.acquire(asked, {
        ttlMs: this.options.leaseTtlMs,
        waitMs,
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
      if (
        extraResource !== undefined &&
        error instanceof LockError &&
        error.code === "conflict" &&
        error.holder?.resource === extraResource
      ) {
        log.info({ event: "booking_in_progress", resources }, `an earlier attempt with this Idempotency-Key still holds ${named}`);
        throw new ApiError(
          "booking_in_progress",
          "an earlier attempt with this Idempotency-Key is still being decided; retry with the same key shortly",
        );
      }
      const mapped = clusterError(error, named);
      this.options.observer?.lockWaited(performance.now() - startedMs, mapped.code === "slot_busy" ? "busy" : "failed");
      if (mapped.code === "slot_busy") log.info({ event: "lock_busy", resources }, `failed to acquire lock for ${named}: resource busy`);
      throw mapped;
    }
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

  private pauseIfAsked(log: Logger): void {
    if (this.options.pauseBeforeWriteMs === 0) return;
    log.warn({ event: "test_pause", pauseMs: this.options.pauseBeforeWriteMs }, "test hook: pausing the whole process before the write");
    // Block the event loop itself, as a GC pause or a stopped VM would: no timer, no renewal runs.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, this.options.pauseBeforeWriteMs);
  }
}
