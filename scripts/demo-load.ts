// The steady booking load of `npm run demo:compose` (scripts/demo-compose.ts): a few workers post
// bookings through the load balancer, one after another, each with an Idempotency-Key. A 5xx, a
// `lease_lost` or a broken connection is retried with the same key (as docs/API.md says is safe),
// and so is a `slot_busy` that follows one of those (the busy lease may be the cut-off attempt's
// own), within a time limit, so every booking ends with one clear answer: 201, or 409 when its
// slot was busy or taken. Every answer and every failed attempt is recorded with its time and the scheduler
// that served it (nginx's X-Upstream header), for the demo's checks.

import { randomUUID } from "node:crypto";
import { Agent, fetch } from "undici";
import { sleep } from "./demo-docker.ts";

export interface Telescope {
  readonly id: string;
  readonly slotMinutes: number;
  readonly horizonDays: number;
  readonly slotsPerBookingMax: number;
}

/** Outcome: one booking request, from its first attempt to its final answer. */
export interface Outcome {
  readonly sentMs: number;
  readonly answeredMs: number;
  /** status: the final answer (0 when none came within the time limit). */
  readonly status: number;
  readonly code: string | undefined;
  readonly bookingId: string | undefined;
  readonly telescopeId: string;
  readonly slots: readonly string[];
  /** upstream: the scheduler (ip:port) that gave the final answer. */
  readonly upstream: string | undefined;
  readonly attempts: number;
  /** failures: what went wrong with each attempt before the last (empty when the first attempt was answered). */
  readonly failures: readonly FailedAttempt[];
}

/** FailedAttempt: one attempt that got a 5xx, a `lease_lost`, a `slot_busy` after one of those, or no answer, and was retried. */
export interface FailedAttempt {
  readonly atMs: number;
  readonly what: string;
  readonly upstream: string | undefined;
}

export interface LoadOptions {
  readonly baseUrl: string;
  readonly workers: number;
  readonly pauseMs: number;
  /** bookingTimeLimitMs bounds one booking, retries included. */
  readonly bookingTimeLimitMs: number;
  readonly scientists: number;
  readonly now: () => number;
}

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
  readonly upstream: string | undefined;
}

const dayMs = 86_400_000;
const iso = (ms: number): string => `${new Date(ms).toISOString().slice(0, 19)}Z`;

/** dispatcher: what request() goes through; trustCa makes it trust a private CA (the compose demo's, over TLS). */
let dispatcher: Agent | undefined;

/** trustCa makes every later request() trust the certificates `ca` (PEM) issued. */
export function trustCa(ca: string): void {
  dispatcher = new Agent({ connect: { ca } });
}

/** request sends one HTTP request with a 10 s limit; throws on a network error. */
export async function request(
  url: string,
  method: string,
  options: { key?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const response = await fetch(url, {
    method,
    headers: {
      ...(options.body === undefined ? {} : { "content-type": "application/json" }),
      ...(options.key === undefined ? {} : { authorization: `Bearer ${options.key}` }),
      ...options.headers,
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    signal: AbortSignal.timeout(10_000),
    ...(dispatcher === undefined ? {} : { dispatcher }),
  });
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = text === "" ? {} : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    body = { text: text.slice(0, 200) };
  }
  // nginx lists every scheduler it tried ("a:8080, b:8080"); the last one answered.
  const upstream = response.headers.get("x-upstream")?.split(",").at(-1)?.trim();
  return { status: response.status, body, upstream: upstream === "" ? undefined : upstream };
}

/** BookingLoad drives the load; start() and stop() bracket it, and the records stay for the checks. */
export class BookingLoad {
  readonly outcomes: Outcome[] = [];
  readonly failedAttempts: FailedAttempt[] = [];
  /** keys: the API keys of the scientists the load books for. */
  keys: string[] = [];
  telescopes: Telescope[] = [];
  private running = false;
  private workers: Promise<void>[] = [];
  private readonly hotDayMs: number;

  private readonly options: LoadOptions;

  constructor(options: LoadOptions) {
    this.options = options;
    // A few "hot" slots three days ahead that every worker keeps asking for: they show the 409s.
    this.hotDayMs = Math.floor(Date.now() / dayMs) * dayMs + 3 * dayMs;
  }

  /** prepare reads the telescopes and registers the scientists (through the load balancer). */
  async prepare(): Promise<void> {
    const telescopes = await this.retrying(() => request(`${this.options.baseUrl}/telescopes`, "GET"), "GET /telescopes");
    this.telescopes = (telescopes.body["items"] as Telescope[]) ?? [];
    if (this.telescopes.length === 0) throw new Error("GET /telescopes listed no telescope");
    for (let position = 0; position < this.options.scientists; position += 1) {
      const answer = await this.retrying(
        () =>
          request(`${this.options.baseUrl}/scientists`, "POST", {
            body: { name: `Demo Scientist ${position + 1}`, email: `demo-${randomUUID()}@example.org`, institution: "SCTEC demo" },
          }),
        "POST /scientists",
      );
      if (answer.status !== 201) throw new Error(`registration answered ${answer.status}: ${JSON.stringify(answer.body).slice(0, 200)}`);
      this.keys.push(answer.body["apiKey"] as string);
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.workers = Array.from({ length: this.options.workers }, (_, worker) => this.work(worker));
  }

  /** stop lets each worker finish its booking in flight (each bounded by bookingTimeLimitMs). */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
    this.workers = [];
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** burst sends `count` bookings at once, beside the steady load; it settles when all have their answer. */
  async burst(count: number): Promise<void> {
    await Promise.all(Array.from({ length: count }, (_, position) => this.bookOnce(this.keys[position % this.keys.length] as string)));
  }

  /** answered: the bookings that got a final answer between fromMs and toMs (by answer time). */
  answered(fromMs: number, toMs = Number.POSITIVE_INFINITY): Outcome[] {
    return this.outcomes.filter((outcome) => outcome.status !== 0 && outcome.answeredMs >= fromMs && outcome.answeredMs <= toMs);
  }

  /** longestSilence: the longest stretch within [fromMs, toMs] in which no booking got its final answer. */
  longestSilence(fromMs: number, toMs: number): { ms: number; fromMs: number; toMs: number } {
    const times = this.answered(fromMs, toMs)
      .map((outcome) => outcome.answeredMs)
      .sort((a, b) => a - b);
    let best = { ms: 0, fromMs, toMs: fromMs };
    let previous = fromMs;
    for (const time of [...times, toMs]) {
      if (time - previous > best.ms) best = { ms: time - previous, fromMs: previous, toMs: time };
      previous = time;
    }
    return best;
  }

  private async retrying(send: () => Promise<Answer>, what: string): Promise<Answer> {
    let lastError = "";
    for (let attempt = 0; attempt < 10; attempt += 1) {
      try {
        const answer = await send();
        if (answer.status < 500) return answer;
        lastError = `${answer.status}`;
      } catch (error) {
        lastError = (error as Error).message;
      }
      await sleep(Math.min(2000, 100 * 2 ** attempt));
    }
    throw new Error(`${what} failed 10 times (last: ${lastError})`);
  }

  private async work(worker: number): Promise<void> {
    let count = 0;
    while (this.running) {
      await this.bookOnce(this.keys[(worker + count) % this.keys.length] as string);
      count += 1;
      if (this.running) await sleep(this.options.pauseMs);
    }
  }

  /** pick chooses a telescope and a slot range: one in ten among the hot slots, else anywhere from 2 to 27 days ahead. */
  private pick(): { telescope: Telescope; startMs: number; slots: number } {
    const telescope = this.telescopes[Math.floor(Math.random() * this.telescopes.length)] as Telescope;
    const slotMs = telescope.slotMinutes * 60_000;
    const slotsPerDay = dayMs / slotMs;
    const slots = 1 + Math.floor(Math.random() * Math.min(2, telescope.slotsPerBookingMax));
    if (Math.random() < 0.1) return { telescope, startMs: this.hotDayMs + (8 + Math.floor(Math.random() * 6)) * slotMs, slots };
    const days = Math.min(27, telescope.horizonDays - 2);
    const day = Math.floor(Date.now() / dayMs) * dayMs + (2 + Math.floor(Math.random() * (days - 1))) * dayMs;
    return { telescope, startMs: day + Math.floor(Math.random() * (slotsPerDay - slots)) * slotMs, slots };
  }

  private async bookOnce(key: string): Promise<void> {
    const { telescope, startMs, slots } = this.pick();
    const slotMs = telescope.slotMinutes * 60_000;
    const body = {
      telescopeId: telescope.id,
      startUtc: iso(startMs),
      endUtc: iso(startMs + slots * slotMs),
      requestedAtUtc: new Date().toISOString(),
    };
    const slotList = Array.from({ length: slots }, (_, position) => iso(startMs + position * slotMs));
    const idempotencyKey = randomUUID();
    const sentMs = this.options.now();
    const deadlineMs = sentMs + this.options.bookingTimeLimitMs;
    let attempts = 0;
    const failures: FailedAttempt[] = [];
    for (;;) {
      attempts += 1;
      let answer: Answer | undefined;
      let failure: string;
      try {
        answer = await request(`${this.options.baseUrl}/bookings`, "POST", { key, body, headers: { "idempotency-key": idempotencyKey } });
        const code = (answer.body["error"] as { code?: string } | undefined)?.code;
        // After an attempt that was cut off, `slot_busy` may be that attempt's own lease, held until
        // its write commits or the lease runs out: the booking is in doubt, so ask again, same key.
        const inDoubt = code === "lease_lost" || (code === "slot_busy" && failures.length > 0);
        if (answer.status < 500 && !inDoubt) {
          this.outcomes.push({
            sentMs,
            answeredMs: this.options.now(),
            status: answer.status,
            code,
            bookingId: answer.status === 201 ? (answer.body["id"] as string) : undefined,
            telescopeId: telescope.id,
            slots: slotList,
            upstream: answer.upstream,
            attempts,
            failures,
          });
          return;
        }
        failure = `${answer.status}${code === undefined ? "" : ` ${code}`}`;
      } catch (error) {
        const cause = (error as Error & { cause?: Error }).cause?.message;
        failure = (error as Error).name === "TimeoutError" ? "no answer in 10 s" : `network: ${cause ?? (error as Error).message}`;
      }
      const failed = { atMs: this.options.now(), what: failure, upstream: answer?.upstream };
      failures.push(failed);
      this.failedAttempts.push(failed);
      const backoffMs = Math.min(1000, 100 * 2 ** (attempts - 1));
      if (this.options.now() + backoffMs > deadlineMs) {
        this.outcomes.push({
          sentMs,
          answeredMs: this.options.now(),
          status: 0,
          code: `unresolved after ${attempts} attempts (last: ${failure})`,
          bookingId: undefined,
          telescopeId: telescope.id,
          slots: slotList,
          upstream: undefined,
          attempts,
          failures,
        });
        return;
      }
      await sleep(backoffMs);
    }
  }
}
