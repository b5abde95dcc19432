// The booking workload: scientists book and cancel slots of one telescope through two scheduler
// processes (each request to one of them, a retry to the other), on a small pool of slots so that
// requests collide. Each create carries an Idempotency-Key and is retried with it until it gets a
// clear answer or its deadline passes; its booking id is known in advance (the scheduler derives
// it from the scientist and the key), so even an unanswered request can be traced in the store.
//
// After healing, the final state is read from the cluster itself (linearizable range reads, that
// is, from a majority) and checked: no slot booked twice, every acknowledged booking present with
// the status its owner was told, nothing stored that was refused, the slot claims and the three
// copies of each booking agree, the audit chain verifies, and every booking's audit record is
// there exactly once (created, and cancelled when it was).

import { createHash, randomUUID } from "node:crypto";
import { LockClient } from "../client/lock-client.ts";
import { type ChainRecord, chainPrefix, verifyChain } from "../protocol/chain.ts";
import { createSeededRandom } from "../raft/index.ts";
import { sleep } from "./sleep.ts";

export interface BookingsOptions {
  readonly schedulerUrls: readonly string[];
  readonly nodeUrls: readonly string[];
  readonly apiToken: string;
  readonly seed: number;
  readonly nowMs: () => number;
  readonly scientists: number;
  readonly slots: number;
  readonly operationDeadlineMs: number;
  readonly cyclesMax: number;
}

/** BookingRequest is one create or cancel as its scientist saw it. */
export interface BookingRequest {
  readonly client: string;
  readonly kind: "create" | "cancel";
  readonly bookingId: string;
  readonly slots: readonly string[];
  readonly invokedAtMs: number;
  returnedAtMs: number;
  /** outcome: created / cancelled (acknowledged), refused (a clear no), unknown (no clear answer by the deadline). */
  outcome: "created" | "cancelled" | "refused" | "unknown";
  /** answer: the last HTTP status and error code seen. */
  answer: string;
  attempts: number;
}

const telescopeId = "hubble-acad";
const slotMs = 5 * 60_000;

interface Scientist {
  readonly id: string;
  readonly apiKey: string;
}

export class BookingsWorkload {
  readonly requests: BookingRequest[] = [];
  private readonly options: BookingsOptions;
  private readonly stopping = new AbortController();
  /** aborting ends the requests in flight (an interrupted run). */
  private readonly aborting = new AbortController();
  private loops: Promise<void>[] = [];
  private scientists: Scientist[] = [];
  /** slotStarts: the pool of slots, a week or more ahead (ISO UTC). */
  readonly slotStarts: string[];

  constructor(options: BookingsOptions) {
    this.options = options;
    const random = createSeededRandom(options.seed ^ 0x0b00_c1e5);
    const dayMs = 86_400_000;
    const day = Math.floor(Date.now() / dayMs) * dayMs + (7 + random.nextInt(14)) * dayMs;
    const first = random.nextInt(288 - options.slots);
    this.slotStarts = Array.from({ length: options.slots }, (_, position) => iso(day + (first + position) * slotMs));
  }

  /** setUp registers the scientists (before any fault: registration has no idempotency key). */
  async setUp(): Promise<void> {
    for (let position = 0; position < this.options.scientists; position++) {
      const deadlineMs = performance.now() + 20_000;
      for (let attempt = 0; ; attempt++) {
        const answer = await call(this.scheduler(attempt), "POST", "/scientists", undefined, {
          name: `Chaos ${position}`,
          email: `chaos-${randomUUID()}@example.org`,
        });
        if (answer.status === 201) {
          this.scientists.push({ id: answer.body.scientist.id, apiKey: answer.body.apiKey });
          break;
        }
        if (performance.now() > deadlineMs) throw new Error(`cannot register scientists: ${answer.status} ${JSON.stringify(answer.body)}`);
        await sleep(200);
      }
    }
  }

  start(): void {
    this.loops = this.scientists.map((scientist, position) => this.clientLoop(scientist, position));
  }

  /** stop ends the loops after their current request (each bounded by its deadline), or at once with `abort`. */
  async stop(options: { abort?: boolean } = {}): Promise<void> {
    this.stopping.abort();
    if (options.abort === true) this.aborting.abort();
    await Promise.all(this.loops);
  }

  createdSince(atMs: number): number {
    return this.requests.filter((request) => request.outcome === "created" && request.returnedAtMs >= atMs).length;
  }

  private scheduler(attempt: number): string {
    return this.options.schedulerUrls[attempt % this.options.schedulerUrls.length] as string;
  }

  private async clientLoop(scientist: Scientist, position: number): Promise<void> {
    const random = createSeededRandom((this.options.seed ^ Math.imul(position + 7, 0x2545_f491)) >>> 0);
    const name = `s${position}`;
    const mine: string[] = [];
    for (let cycle = 0; cycle < this.options.cyclesMax && !this.stopping.signal.aborted; cycle++) {
      if (mine.length > 0 && random.nextFloat() < 0.2) {
        const bookingId = mine.splice(random.nextInt(mine.length), 1)[0] as string;
        await this.request(scientist, name, { kind: "cancel", bookingId, slots: [] }, position + cycle);
      } else {
        const start = random.nextInt(this.options.slots);
        const length = Math.min(1 + random.nextInt(3), this.options.slots - start);
        const slots = this.slotStarts.slice(start, start + length);
        const key = randomUUID();
        const bookingId = `bk_${createHash("sha256").update(`${scientist.id}\n${key}`).digest("hex").slice(0, 24)}`;
        const request = await this.request(scientist, name, { kind: "create", bookingId, slots, key }, position + cycle);
        if (request.outcome === "created") mine.push(bookingId);
      }
      await sleep(random.nextInt(50), this.stopping.signal);
    }
  }

  /** request sends a create or cancel, retrying it unchanged (same key) until a clear answer or the deadline. */
  private async request(
    scientist: Scientist,
    name: string,
    what: { kind: "create" | "cancel"; bookingId: string; slots: readonly string[]; key?: string },
    firstScheduler: number,
  ): Promise<BookingRequest> {
    const request: BookingRequest = {
      client: name,
      kind: what.kind,
      bookingId: what.bookingId,
      slots: what.slots,
      invokedAtMs: this.options.nowMs(),
      returnedAtMs: Number.POSITIVE_INFINITY,
      outcome: "unknown",
      answer: "",
      attempts: 0,
    };
    this.requests.push(request);
    const deadlineMs = performance.now() + this.options.operationDeadlineMs;
    for (let attempt = 0; attempt < 50 && performance.now() < deadlineMs && !this.aborting.signal.aborted; attempt++) {
      request.attempts = attempt + 1;
      const url = this.scheduler(firstScheduler + attempt);
      const answer =
        what.kind === "create"
          ? await call(url, "POST", "/bookings", scientist.apiKey, this.createBody(what.slots), { "idempotency-key": what.key ?? "" })
          : await call(url, "DELETE", `/bookings/${what.bookingId}`, scientist.apiKey);
      const code: string = answer.body?.error?.code ?? "";
      request.answer = `${answer.status}${code === "" ? "" : ` ${code}`}`;
      const settled = settle(what.kind, answer.status, code);
      if (settled !== undefined) {
        request.outcome = settled;
        request.returnedAtMs = this.options.nowMs();
        return request;
      }
      const leftMs = Math.max(1, Math.ceil(deadlineMs - performance.now()));
      await sleep(Math.min(1000, 100 * 2 ** attempt), AbortSignal.any([this.aborting.signal, AbortSignal.timeout(leftMs)]));
    }
    return request;
  }

  private createBody(slots: readonly string[]): Record<string, string> {
    const first = slots[0] as string;
    const last = slots[slots.length - 1] as string;
    return {
      telescopeId,
      startUtc: first,
      endUtc: iso(Date.parse(last) + slotMs),
      requestedAtUtc: new Date().toISOString(),
    };
  }

  /** check reads the final state from the cluster and checks every booking invariant. */
  async check(): Promise<BookingCheck> {
    const client = new LockClient({ nodes: this.options.nodeUrls, apiToken: this.options.apiToken, retriesMax: 12, retryMaxMs: 500 });
    const [bookingItems, slotItems, auditItems, dayItems, sciItems] = await Promise.all(
      ["booking/", `slot/${telescopeId}/`, chainPrefix("audit"), `day/${telescopeId}/`, "sci/"].map((prefix) => readAll(client, prefix)),
    );
    return checkBookings({
      requests: this.requests,
      bookings: bookingItems as StoredItem[],
      slotClaims: slotItems as StoredItem[],
      audit: (auditItems as StoredItem[]).map((item) => JSON.parse(item.value) as ChainRecord),
      copies: [...(dayItems as StoredItem[]), ...(sciItems as StoredItem[])],
    });
  }
}

interface StoredItem {
  readonly key: string;
  readonly value: string;
}

interface StoredBooking {
  readonly id: string;
  readonly telescopeId: string;
  readonly slots: readonly string[];
  readonly status: "confirmed" | "cancelled";
}

export interface BookingCheck {
  readonly ok: boolean;
  readonly problems: string[];
  readonly stored: number;
  readonly confirmed: number;
  readonly cancelled: number;
  readonly auditRecords: number;
  readonly acknowledged: number;
}

/** checkBookings is the pure part of the check (tested on its own with broken states). */
export function checkBookings(state: {
  requests: readonly BookingRequest[];
  bookings: readonly StoredItem[];
  slotClaims: readonly StoredItem[];
  audit: readonly ChainRecord[];
  copies: readonly StoredItem[];
}): BookingCheck {
  const problems: string[] = [];
  const bookings = new Map<string, StoredBooking>();
  for (const item of state.bookings) {
    const booking = JSON.parse(item.value) as StoredBooking;
    bookings.set(booking.id, booking);
  }
  // No slot booked twice.
  const slotOwners = new Map<string, string>();
  for (const booking of bookings.values()) {
    if (booking.status !== "confirmed") continue;
    for (const slot of booking.slots) {
      const other = slotOwners.get(slot);
      if (other !== undefined) problems.push(`slot ${slot} is booked twice: ${other} and ${booking.id}`);
      slotOwners.set(slot, booking.id);
    }
  }
  // The slot claims name exactly the confirmed bookings' slots.
  const claims = new Map(
    state.slotClaims.map((item) => [item.key.split("/").at(-1) as string, JSON.parse(item.value) as { bookingId: string }]),
  );
  for (const [slot, owner] of slotOwners) {
    if (claims.get(slot)?.bookingId !== owner)
      problems.push(`slot ${slot} is booked by ${owner} but claimed by ${claims.get(slot)?.bookingId ?? "nobody"}`);
  }
  for (const [slot, claim] of claims) {
    if (slotOwners.get(slot) !== claim.bookingId) problems.push(`slot ${slot} is claimed by ${claim.bookingId}, which does not hold it`);
  }
  // What each scientist was told.
  const cancels = new Map<string, BookingRequest["outcome"][]>();
  for (const request of state.requests) {
    if (request.kind === "cancel") cancels.set(request.bookingId, [...(cancels.get(request.bookingId) ?? []), request.outcome]);
  }
  let acknowledged = 0;
  for (const request of state.requests) {
    const stored = bookings.get(request.bookingId);
    if (request.kind === "create" && request.outcome === "created") {
      acknowledged++;
      const cancelOutcomes = cancels.get(request.bookingId) ?? [];
      if (stored === undefined) problems.push(`booking ${request.bookingId} was acknowledged (201) but is not stored`);
      else if (stored.status === "cancelled" && !cancelOutcomes.some((outcome) => outcome === "cancelled" || outcome === "unknown")) {
        problems.push(`booking ${request.bookingId} is cancelled, but nobody cancelled it`);
      }
    }
    if (request.kind === "create" && request.outcome === "refused" && stored !== undefined) {
      problems.push(`booking ${request.bookingId} was refused (${request.answer}) but is stored`);
    }
    if (request.kind === "cancel" && request.outcome === "cancelled" && stored?.status !== "cancelled") {
      problems.push(`booking ${request.bookingId}: its cancellation was acknowledged, but it is ${stored?.status ?? "not stored"}`);
    }
  }
  // The three copies agree.
  const copies = new Map<string, StoredBooking[]>();
  for (const item of state.copies) {
    const copy = JSON.parse(item.value) as StoredBooking;
    copies.set(copy.id, [...(copies.get(copy.id) ?? []), copy]);
  }
  for (const booking of bookings.values()) {
    const found = copies.get(booking.id) ?? [];
    if (found.length !== 2 || found.some((copy) => copy.status !== booking.status)) {
      problems.push(
        `booking ${booking.id}: ${found.length} day/sci copies (want 2), statuses ${found.map((copy) => copy.status).join(",")}`,
      );
    }
  }
  // The audit chain: it verifies, and holds each booking's records exactly once.
  const verdict = verifyChain(state.audit);
  if (!verdict.ok) problems.push(`the audit chain does not verify at seq ${verdict.brokenAtSeq}: ${verdict.reason}`);
  const auditCounts = new Map<string, number>();
  for (const record of state.audit) {
    const parsed = JSON.parse(record.record) as { event_type: string; details: { booking_id?: string } };
    if (parsed.details.booking_id === undefined) continue;
    const key = `${parsed.event_type} ${parsed.details.booking_id}`;
    auditCounts.set(key, (auditCounts.get(key) ?? 0) + 1);
    if (!bookings.has(parsed.details.booking_id)) problems.push(`audit record ${key} names a booking that is not stored`);
  }
  for (const booking of bookings.values()) {
    const created = auditCounts.get(`BOOKING_CREATED ${booking.id}`) ?? 0;
    const cancelled = auditCounts.get(`BOOKING_CANCELLED ${booking.id}`) ?? 0;
    if (created !== 1) problems.push(`booking ${booking.id} has ${created} BOOKING_CREATED audit records (want 1)`);
    const want = booking.status === "cancelled" ? 1 : 0;
    if (cancelled !== want)
      problems.push(`booking ${booking.id} (${booking.status}) has ${cancelled} BOOKING_CANCELLED audit records (want ${want})`);
  }
  const all = [...bookings.values()];
  return {
    ok: problems.length === 0,
    problems,
    stored: all.length,
    confirmed: all.filter((booking) => booking.status === "confirmed").length,
    cancelled: all.filter((booking) => booking.status === "cancelled").length,
    auditRecords: state.audit.length,
    acknowledged,
  };
}

/** settle maps a final answer to an outcome, or undefined when the request must be retried (no clear answer yet). */
function settle(kind: "create" | "cancel", status: number, code: string): BookingRequest["outcome"] | undefined {
  if (status >= 500 || status === 0 || code === "lease_lost" || code === "booking_in_progress" || status === 429) return undefined;
  if (kind === "create") return status === 201 ? "created" : "refused";
  if (status === 200 || code === "already_cancelled") return "cancelled";
  // A cancel that met a busy slot may be tried again later; it is no decision about the booking.
  return "refused";
}

async function readAll(client: LockClient, prefix: string): Promise<StoredItem[]> {
  const items: StoredItem[] = [];
  let after = "";
  for (let page = 0; page < 1000; page++) {
    const answer = await client.range(prefix, { limit: 1000, after });
    items.push(...answer.items);
    if (!answer.more) return items;
    after = answer.items.at(-1)?.key ?? after;
  }
  throw new Error(`more than a million keys under ${prefix}`);
}

// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field where used
type Json = any;

async function call(
  base: string,
  method: string,
  path: string,
  apiKey?: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Json }> {
  try {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...(apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(5000),
    });
    const text = await response.text();
    return { status: response.status, body: text === "" ? {} : (JSON.parse(text) as Json) };
  } catch (error) {
    return { status: 0, body: { error: { code: "unreachable", message: (error as Error).message } } };
  }
}

function iso(epochMs: number): string {
  return `${new Date(epochMs).toISOString().slice(0, 19)}Z`;
}
