// The lock-set workload (Jepsen's "lock-set", on the cluster's own fenced key-value store):
// clients take a lease on a lock, read the set stored under the key it guards, add an element of
// their own, write the set back under the lease's fencing token, and release. Now and then a
// client pauses between its read and its write for longer than the lease's TTL (a GC pause), so
// that another client gets the lock meanwhile: the fence must refuse the late write. With
// `unfenced`, the write goes out under a fresh lease of another resource instead (always
// current), which is what a lock without fencing amounts to: the late write lands, and the
// element the other client added is lost. The history is checked against the fenced key-value
// model (harness/fenced-kv-model.ts), and the final sets against the acknowledged adds.
//
// Clients use the product's LockClient (sessions, retries, leader finding). A mutating operation
// is retried under its session sequence until it gets a definite answer or its deadline passes:
// the cluster applies a sequence at most once and answers a retry with the first answer, so an
// operation caught in an outage still gets its real outcome once the cluster is back (its
// interval simply spans the outage). Only one still unanswered at its deadline is unknown. This
// keeps unknown outcomes rare, which keeps the linearizability search small.

import { LockClient, LockError } from "../client/lock-client.ts";
import type { FencedEntry, FencedOperation } from "../harness/fenced-kv-model.ts";
import { createSeededRandom } from "../raft/index.ts";
import { sleep } from "./sleep.ts";

export interface LockSetOptions {
  readonly nodeUrls: readonly string[];
  readonly apiToken: string;
  readonly seed: number;
  /** nowMs: the history's clock (ms since its start). */
  readonly nowMs: () => number;
  readonly keys: number;
  readonly clients: number;
  readonly ttlMs: number;
  readonly unfenced: boolean;
  /** pauseProbability: the chance, per cycle, that a client pauses between its read and its write, past the TTL. */
  readonly pauseProbability: number;
  /**
   * pauseOnceAfterMs: besides, every client pauses so once in its first cycle after this time (the
   * history's healing), so that each history has pauses in a healthy cluster, where another client
   * surely takes the lock meanwhile: the fence is exercised (and --unfenced loses data) even when
   * the faults left the clients few cycles before.
   */
  readonly pauseOnceAfterMs: number;
  /** operationDeadlineMs: an operation without an answer by then is unknown. */
  readonly operationDeadlineMs: number;
  /** cyclesMax bounds each client's loop. */
  readonly cyclesMax: number;
}

/** ElementFate: what became of an element's add, as its client saw it. */
export type ElementFate = "committed" | "stale" | "unknown";

/** ClientPause: a client slept between its read and its write (for the report). */
export interface ClientPause {
  readonly client: string;
  readonly fromMs: number;
  readonly toMs: number;
}

export class LockSetWorkload {
  readonly history: FencedEntry[] = [];
  readonly elements = new Map<string, { readonly key: string; fate: ElementFate }>();
  readonly pauses: ClientPause[] = [];
  private readonly options: LockSetOptions;
  private readonly stopping = new AbortController();
  /** aborting ends the operations in flight (an interrupted run: their outcomes no longer matter). */
  private readonly aborting = new AbortController();
  private loops: Promise<void>[] = [];

  constructor(options: LockSetOptions) {
    this.options = options;
  }

  keyNames(): string[] {
    return Array.from({ length: this.options.keys }, (_, position) => `set/${position}`);
  }

  start(): void {
    this.loops = Array.from({ length: this.options.clients }, (_, position) => this.clientLoop(position));
  }

  /** stop ends the loops after their current operation (each bounded by its deadline), or at once with `abort`. */
  async stop(options: { abort?: boolean } = {}): Promise<void> {
    this.stopping.abort();
    if (options.abort === true) this.aborting.abort();
    await Promise.all(this.loops);
  }

  /** committedWritesSince counts writes acknowledged after `atMs` (the recovery check). */
  committedWritesSince(atMs: number): number {
    return this.history.filter(
      (entry) => entry.operation.kind === "write" && entry.operation.outcome.status === "committed" && entry.returnedAtMs >= atMs,
    ).length;
  }

  /** finalReads reads every key linearizably once the cluster is healed, into the history (client "final"). */
  async finalReads(): Promise<{ key: string; value: string | null }[]> {
    const client = this.client("final", 0);
    const values: { key: string; value: string | null }[] = [];
    for (const [position, key] of this.keyNames().entries()) {
      const invokedAtMs = this.options.nowMs();
      const found = await client.get(key, { signal: this.readSignal() });
      const value = found?.value ?? null;
      this.record("final", invokedAtMs, this.options.nowMs(), {
        kind: "read",
        resource: `lock/${position}`,
        key,
        outcome: { status: "read", value },
      });
      values.push({ key, value });
    }
    return values;
  }

  private client(name: string, position: number): LockClient {
    const nodes = this.options.nodeUrls;
    // Each client starts at a different node; it follows the leader hints from there.
    const rotated = [...nodes.slice(position % nodes.length), ...nodes.slice(0, position % nodes.length)];
    return new LockClient({
      nodes: rotated,
      apiToken: this.options.apiToken,
      clientId: `${name}-${this.options.seed.toString(16)}`,
      requestTimeoutMs: 1000,
      // The deadline bounds each operation; this only bounds the attempts within it.
      retriesMax: 400,
      retryBaseMs: 50,
      retryMaxMs: 400,
    });
  }

  private record(client: string, invokedAtMs: number, returnedAtMs: number, operation: FencedOperation): void {
    this.history.push({ client, invokedAtMs, returnedAtMs: operation.outcome.status === "unknown" ? Infinity : returnedAtMs, operation });
  }

  private async clientLoop(position: number): Promise<void> {
    const name = `c${position}`;
    const client = this.client(name, position);
    const random = createSeededRandom((this.options.seed ^ Math.imul(position + 1, 0x27d4_eb2d)) >>> 0);
    let pausedAfterHealing = false;
    for (let cycle = 0; cycle < this.options.cyclesMax && !this.stopping.signal.aborted; cycle++) {
      const keyIndex = random.nextInt(this.options.keys);
      const resource = `lock/${keyIndex}`;
      const key = `set/${keyIndex}`;
      const waitMs = random.nextFloat() < 0.3 ? 200 + random.nextInt(600) : 0;
      const token = await this.acquire(client, name, resource, waitMs);
      if (token !== undefined) {
        const value = await this.read(client, name, resource, key);
        if (value !== undefined) {
          const afterHealing: boolean = !pausedAfterHealing && this.options.nowMs() >= this.options.pauseOnceAfterMs;
          if (afterHealing) pausedAfterHealing = true;
          if (random.nextFloat() < this.options.pauseProbability || afterHealing) {
            const pauseMs = Math.round(this.options.ttlMs * (1.2 + 0.8 * random.nextFloat()));
            const fromMs = this.options.nowMs();
            await sleep(pauseMs, this.aborting.signal);
            this.pauses.push({ client: name, fromMs, toMs: this.options.nowMs() });
          }
          const element = `${name}.${cycle}`;
          await this.write(client, name, { resource, key, token, element, value, cycle });
        }
        await this.release(client, name, resource, token);
      }
      await sleep(random.nextInt(20), this.stopping.signal);
    }
  }

  private deadline(): { deadlineMs: number; signal: AbortSignal } {
    return { deadlineMs: performance.now() + this.options.operationDeadlineMs, signal: this.aborting.signal };
  }

  private readSignal(): AbortSignal {
    return AbortSignal.any([this.aborting.signal, AbortSignal.timeout(this.options.operationDeadlineMs)]);
  }

  /** acquire records one acquire and returns the token when it was granted. */
  private async acquire(client: LockClient, name: string, resource: string, waitMs: number): Promise<number | undefined> {
    const invokedAtMs = this.options.nowMs();
    const base = { kind: "acquire" as const, resource, ttlMs: this.options.ttlMs };
    try {
      const answer = await client.mutate(
        "/lock",
        { resources: [resource], owner: name, ttlMs: this.options.ttlMs, waitMs },
        this.deadline(),
      );
      const body = answer.body as { status?: string; token?: string };
      if (body.status === "granted" && body.token !== undefined) {
        const token = Number(body.token);
        this.record(name, invokedAtMs, this.options.nowMs(), { ...base, outcome: { status: "granted", token } });
        return token;
      }
      // "queued" past the wait the node keeps the caller for: it may still be granted, or time out.
      this.record(name, invokedAtMs, this.options.nowMs(), { ...base, outcome: { status: "unknown" } });
    } catch (error) {
      const code = error instanceof LockError ? error.code : "unknown";
      if (code === "conflict") {
        const holder = (error as LockError).holder;
        const holderToken = holder === undefined ? null : Number(holder.token);
        this.record(name, invokedAtMs, this.options.nowMs(), { ...base, outcome: { status: "conflict", holderToken } });
      } else if (code === "wait_timeout" || code === "too_many_waiters") {
        this.record(name, invokedAtMs, this.options.nowMs(), { ...base, outcome: { status: "refused" } });
      } else {
        this.record(name, invokedAtMs, this.options.nowMs(), { ...base, outcome: { status: "unknown" } });
      }
    }
    return undefined;
  }

  /** read returns the key's value (null: absent), or undefined when the read failed (a failed read has no effect: not recorded). */
  private async read(client: LockClient, name: string, resource: string, key: string): Promise<string | null | undefined> {
    const invokedAtMs = this.options.nowMs();
    try {
      const found = await client.get(key, { signal: this.readSignal() });
      const value = found?.value ?? null;
      this.record(name, invokedAtMs, this.options.nowMs(), { kind: "read", resource, key, outcome: { status: "read", value } });
      return value;
    } catch {
      return undefined;
    }
  }

  private async write(
    client: LockClient,
    name: string,
    write: { resource: string; key: string; token: number; element: string; value: string | null; cycle: number },
  ): Promise<void> {
    const next = write.value === null ? write.element : `${write.value},${write.element}`;
    const operations = [{ op: "put" as const, key: write.key, value: next }];
    let guard = { resource: write.resource, token: String(write.token) };
    if (this.options.unfenced) {
      // The negative control: a lease of a resource nobody else uses, taken just now, always passes the fence.
      const own = `nofence/${name}/${write.cycle}`;
      try {
        const answer = await client.mutate(
          "/lock",
          { resources: [own], owner: name, ttlMs: this.options.ttlMs, waitMs: 0 },
          this.deadline(),
        );
        guard = { resource: own, token: String((answer.body as { token: string }).token) };
      } catch {
        return; // Nothing was written.
      }
    }
    const invokedAtMs = this.options.nowMs();
    const base = { kind: "write" as const, resource: write.resource, key: write.key, token: write.token, value: next };
    this.elements.set(write.element, { key: write.key, fate: "unknown" });
    try {
      await client.mutate(
        "/txn",
        { guards: [guard], operations, ...(this.options.unfenced ? { releaseGuards: true } : {}) },
        this.deadline(),
      );
      this.record(name, invokedAtMs, this.options.nowMs(), { ...base, outcome: { status: "committed" } });
      this.elements.set(write.element, { key: write.key, fate: "committed" });
    } catch (error) {
      const stale = error instanceof LockError && error.code === "stale_fencing_token";
      this.record(name, invokedAtMs, this.options.nowMs(), { ...base, outcome: { status: stale ? "stale" : "unknown" } });
      if (stale) this.elements.set(write.element, { key: write.key, fate: "stale" });
    }
  }

  private async release(client: LockClient, name: string, resource: string, token: number): Promise<void> {
    const invokedAtMs = this.options.nowMs();
    const base = { kind: "release" as const, resource, token };
    try {
      await client.mutate("/unlock", { resources: [resource], token: String(token) }, this.deadline());
      this.record(name, invokedAtMs, this.options.nowMs(), { ...base, outcome: { status: "ok" } });
    } catch (error) {
      const notHeld = error instanceof LockError && error.code === "not_held";
      this.record(name, invokedAtMs, this.options.nowMs(), { ...base, outcome: { status: notHeld ? "not_held" : "unknown" } });
    }
  }
}

/** SetCheck: the lock-set's own verdict, in elements: lost acknowledged adds, refused adds that appeared anyway. */
export interface SetCheck {
  readonly ok: boolean;
  readonly committed: number;
  readonly stale: number;
  readonly unknown: number;
  readonly lost: string[];
  readonly refusedButPresent: string[];
  readonly unknownPresent: number;
}

/** checkSets compares the final sets with what each client was told about its add. */
export function checkSets(
  elements: ReadonlyMap<string, { readonly key: string; readonly fate: ElementFate }>,
  finals: readonly { key: string; value: string | null }[],
): SetCheck {
  const present = new Map(finals.map((final) => [final.key, new Set(final.value === null ? [] : final.value.split(","))]));
  const lost: string[] = [];
  const refusedButPresent: string[] = [];
  let committed = 0;
  let stale = 0;
  let unknown = 0;
  let unknownPresent = 0;
  for (const [element, { key, fate }] of elements) {
    const isPresent = present.get(key)?.has(element) === true;
    if (fate === "committed") {
      committed++;
      if (!isPresent) lost.push(element);
    } else if (fate === "stale") {
      stale++;
      if (isPresent) refusedButPresent.push(element);
    } else {
      unknown++;
      if (isPresent) unknownPresent++;
    }
  }
  return { ok: lost.length === 0 && refusedButPresent.length === 0, committed, stale, unknown, lost, refusedButPresent, unknownPresent };
}
