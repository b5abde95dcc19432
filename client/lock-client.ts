// LockClient talks to the lock cluster over HTTP (undici). It needs no leader address: any node
// answers (followers forward to the leader), and the client sticks to the node that answered
// last. Every mutating request carries a session (clientId + sequence), so a retry after a
// timeout, a lost reply or a failover returns the first answer instead of acting twice; only a
// lease's own renewals and unlocks go without one (they are idempotent by nature: see lease.ts).
//
// A lease is counted pessimistically, from when its request was sent (a grant's first attempt, a
// renewal's answered attempt), shortened by the clock-drift discount and a safety margin. The
// client never trusts it beyond that, renews it automatically before then, and signals when it is
// in jeopardy or lost (lease.ts).

import { randomUUID } from "node:crypto";
import type { z } from "zod";
import {
  type CredentialInfo,
  type CredentialRequest,
  credentialListSchema,
  type IssuedCredential,
  issuedCredentialSchema,
  type KeyValue,
  keyValueSchema,
  type LeasesAnswer,
  leasesAnswerSchema,
  type MemberAnswer,
  type MemberRequest,
  memberAnswerSchema,
  type RangePage,
  type RangeReadRequest,
  type RestartAnswer,
  type RevokedCredential,
  rangePageSchema,
  restartAnswerSchema,
  revokedCredentialSchema,
  type TransferAnswer,
  type TransferRequest,
  transferAnswerSchema,
  type WhoamiAnswer,
  type WriteAnswer,
  type WritePath,
  type WriteRequest,
  whoamiAnswerSchema,
  writeEndpoints,
} from "../protocol/api.ts";
import { describeIssues } from "../protocol/commands.ts";
import { type NodeStatus, nodeStatusSchema } from "../protocol/status.ts";
import { type WatchEvent, watchAnswerSchema } from "../protocol/watch.ts";
import type { Wire } from "../protocol/wire.ts";
import { LockError, lockErrorFromAnswer } from "./errors.ts";
import { Lease, type LeaseHost, type MutateOptions, type WriteBody } from "./lease.ts";
import { AttemptSignal, HttpTransport, type LockTransport } from "./transport.ts";

// The wire contract's types, as this client's API hands them out (protocol/ holds them, once).
export type {
  CredentialInfo,
  IssuedCredential,
  KeyValue,
  LeasesAnswer,
  MemberAnswer,
  RangePage,
  RangeResult,
  RestartAnswer,
  RevokedCredential,
  TransferAnswer,
  TxnOperation,
  WhoamiAnswer,
} from "../protocol/api.ts";
export { type ChainRecord, type ChainVerdict, chainPrefix, verifyChain } from "../protocol/chain.ts";
export type { Role } from "../protocol/roles.ts";
export type { NodeStatus } from "../protocol/status.ts";
export type { WatchEvent } from "../protocol/watch.ts";
export { LockError, type LockErrorCode, lockErrorCodeOf, lockErrorCodes } from "./errors.ts";
export { Lease, type LeaseEvent, type LeaseState, type MutateOptions, type WriteBody } from "./lease.ts";
export type { LockTransport, TransportAnswer, TransportRequest } from "./transport.ts";

export interface LockClientOptions {
  /** nodes: base URLs of any members, e.g. ["http://127.0.0.1:7001", …]. */
  readonly nodes: readonly string[];
  readonly apiToken: string;
  /** clientId names this client's session; a fresh random one by default. */
  readonly clientId?: string;
  /** requestTimeoutMs bounds each HTTP attempt. @default 5000 */
  readonly requestTimeoutMs?: number;
  /** retriesMax bounds the attempts per request after the first. @default 8 */
  readonly retriesMax?: number;
  /** retryBaseMs and retryMaxMs bound the exponential backoff (with full jitter). @default 50, 1000 */
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  /**
   * retryAfterMaxMs bounds the wait an `overloaded` node may ask for (its Retry-After) before the
   * next attempt; the client waits what the node asks plus the usual jittered backoff, never
   * longer than this. @default 5000
   */
  readonly retryAfterMaxMs?: number;
  /** clockDriftDiscount: the fraction of a TTL given up for clock drift between client and leader. @default 0.1 */
  readonly clockDriftDiscount?: number;
  /** safetyMarginMs: further time given up at the end of every lease. @default 100 */
  readonly safetyMarginMs?: number;
  /** now is a monotonic clock in ms (injectable for tests). @default performance.now */
  readonly now?: () => number;
  /** random in [0, 1) for jitter (injectable for tests). @default Math.random */
  readonly random?: () => number;
  /** sleep waits (injectable for tests). */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /**
   * jeopardyFractionLeft: a lease whose renewals have not succeeded by the time this share of its
   * local validity is left signals `jeopardy` (see Lease). Between 0 and 1. @default 1/3
   */
  readonly jeopardyFractionLeft?: number;
  /** transport sends each request (injectable for tests). @default HTTP over undici */
  readonly transport?: LockTransport;
  /** tls: for https:// nodes, the CA (PEM) their certificates come from (the cluster's own CA). @default the system's CAs */
  readonly tls?: { readonly ca: string };
}

/** RequestOptions apply to one call. */
export interface RequestOptions {
  /** requestId is sent as `x-request-id` (the nodes log it as `requestId`), to trace one operation across services. */
  readonly requestId?: string;
  readonly signal?: AbortSignal;
}

export interface AcquireOptions extends RequestOptions {
  readonly ttlMs: number;
  /** waitMs: 0 fails at once with `conflict`; more waits in the cluster's FIFO queue. @default 0 */
  readonly waitMs?: number;
  /** autoRenew keeps the lease alive until released. @default true */
  readonly autoRenew?: boolean;
  /**
   * reads: up to 4 range reads (limit 1 to 100 each) that the granting log entry answers itself, as
   * of the grant: what the lease starts from, linearizably, without another round. Answered on
   * `lease.reads` for an immediate grant; a grant after a wait carries none (read separately then).
   */
  readonly reads?: readonly RangeReadRequest[];
}

export interface RangeOptions extends RequestOptions {
  /** limit: at most this many keys per page (1 to 1000). @default 100 */
  readonly limit?: number;
  /** after: an exclusive start key, normally the last key of the previous page. @default "" */
  readonly after?: string;
}

export interface WatchOptions {
  /** after: yield events with a higher index (e.g. a range page's `index`). @default only events from now on */
  readonly after?: number;
  /** pollTimeoutMs: how long each long poll waits for an event before asking again (at most 30000). @default 25000 */
  readonly pollTimeoutMs?: number;
  /** limit: about how many events one poll fetches (at most 1000). @default 1000 */
  readonly limit?: number;
  /**
   * pollIntervalMinMs: the least time from the start of a poll that brought events to the start
   * of the next. Under a steady stream of events a node answers a poll per batch it applies;
   * waiting a little lets the next answer carry many, for fewer polls and less CPU on both sides,
   * at the price of up to this much delay. A poll after a quiet spell is not delayed. @default 0
   */
  readonly pollIntervalMinMs?: number;
  /** signal ends the watch: the iterator then throws LockError `aborted`. */
  readonly signal?: AbortSignal;
}

/** SendOptions: how one request is sent (internal). */
interface SendOptions extends RequestOptions {
  /** node: ask this node only, with no failover. */
  readonly node?: string;
  /** timeoutMs replaces requestTimeoutMs for this request (long polls). */
  readonly timeoutMs?: number;
  /**
   * deadlineMs: every attempt and retry ends by then (a renewal's: the lease's local deadline).
   * Each attempt gets at most a third of what is left (at least 20 ms, never past the deadline),
   * so a node that does not answer leaves time to ask another before a renewal's jeopardy point.
   */
  readonly deadlineMs?: number;
}

/** ApiAnswer is a node's answer to one attempt, its body as JSON.parse made it (not yet checked against the contract). */
interface ApiAnswer {
  readonly status: number;
  readonly body: unknown;
  /** leaderUrl: the leader the answering node knows (header x-sctec-leader), if any. */
  readonly leaderUrl: string | undefined;
  /** sentAtMs: when the attempt that was answered was sent (the client's monotonic clock). */
  readonly sentAtMs: number;
  /** retryAfterMs: the wait the node asked for (Retry-After), if any. */
  readonly retryAfterMs: number | undefined;
}

/**
 * LockClient acquires fenced leases and performs fenced writes.
 *
 * **When to use**: whenever several processes must not act on one resource at once. Pass
 * `lease.token` along with every write to the protected store (or use `lease.put`), so a paused
 * holder's late write is refused.
 *
 * **Gotchas**: a lease is only as good as `lease.isValid()`; check it (or listen for `lost`)
 * before acting. Acquire several resources in one call: it is atomic and cannot deadlock.
 *
 * **Example**:
 * ```ts
 * const client = new LockClient({ nodes: ["http://127.0.0.1:7001"], apiToken });
 * const lease = await client.acquire(["hubble-acad_2025-12-01T03:00:00Z"], { ttlMs: 10_000 });
 * await lease.put([{ key: "booking/42", value: "…" }]); // refused if the lease was lost
 * await lease.release();
 * ```
 */
export class LockClient implements LeaseHost {
  private currentClientId: string;
  private readonly options: Required<Omit<LockClientOptions, "clientId" | "transport" | "tls">>;
  private readonly transport: LockTransport;
  /** sessionStart settles when the session's first request has; later requests wait for it (see mutate). */
  private sessionStart: Promise<unknown> | undefined;
  /** outstanding: the sequences of the current session sent and not yet answered (see takeSequence). */
  private readonly outstanding = new Set<number>();
  private readonly slotWaiters: (() => void)[] = [];
  /** holderWaiters: requests on leases already held (txn, renew, release), which go before new acquires. */
  private readonly holderWaiters: (() => void)[] = [];
  private sequence = 0;
  private preferred = 0;

  constructor(options: LockClientOptions) {
    if (options.nodes.length === 0) throw new LockError("invalid_request", "LockClient needs at least one node URL");
    this.currentClientId = options.clientId ?? `client-${randomUUID()}`;
    this.options = {
      nodes: options.nodes.map((url) => url.replace(/\/+$/, "")),
      apiToken: options.apiToken,
      requestTimeoutMs: options.requestTimeoutMs ?? 5000,
      retriesMax: options.retriesMax ?? 8,
      retryBaseMs: options.retryBaseMs ?? 50,
      retryMaxMs: options.retryMaxMs ?? 1000,
      retryAfterMaxMs: options.retryAfterMaxMs ?? 5000,
      clockDriftDiscount: options.clockDriftDiscount ?? 0.1,
      safetyMarginMs: options.safetyMarginMs ?? 100,
      now: options.now ?? (() => performance.now()),
      random: options.random ?? Math.random,
      sleep: options.sleep ?? sleep,
      jeopardyFractionLeft: options.jeopardyFractionLeft ?? 1 / 3,
    };
    const fraction = this.options.jeopardyFractionLeft;
    if (!(fraction > 0 && fraction < 1))
      throw new LockError("invalid_request", `jeopardyFractionLeft must be between 0 and 1, got ${fraction}`);
    this.transport = options.transport ?? new HttpTransport(this.options.nodes, options.tls === undefined ? {} : { ca: options.tls.ca });
  }

  /** jeopardyFractionLeft: see LockClientOptions. */
  get jeopardyFractionLeft(): number {
    return this.options.jeopardyFractionLeft;
  }

  /** requestTimeoutMs: see LockClientOptions. */
  get requestTimeoutMs(): number {
    return this.options.requestTimeoutMs;
  }

  /** acquire takes leases on all `resources` at once (all or none) and returns a Lease. */
  async acquire(resources: readonly string[], options: AcquireOptions): Promise<Lease> {
    const sentAt = this.options.now();
    const answer = await this.mutate(
      "/lock",
      {
        resources: [...resources].sort(),
        owner: this.clientId,
        ttlMs: options.ttlMs,
        waitMs: options.waitMs ?? 0,
        ...(options.reads === undefined ? {} : { reads: options.reads }),
      },
      options,
    );
    const body = answer.body;
    const lease = new Lease(this, { resources: body.resources, token: body.token, ttlMs: body.ttlMs, sentAt, reads: body.reads });
    await lease.activate(options.signal === undefined ? {} : { signal: options.signal }); // Renews first a lease that arrived out of date.
    if (options.autoRenew ?? true) lease.startAutoRenew();
    return lease;
  }

  /** status returns a node's view of the cluster (GET /status). */
  async status(node?: string): Promise<NodeStatus> {
    return decode(nodeStatusSchema, await this.send("GET", "/status", undefined, node === undefined ? {} : { node }), "/status");
  }

  /** get reads a key linearizably; undefined if it does not exist. */
  async get(key: string, options: RequestOptions = {}): Promise<KeyValue | undefined> {
    try {
      return decode(keyValueSchema, await this.send("GET", `/kv/${encodeURIComponent(key)}`, undefined, options), "/kv/{key}");
    } catch (error) {
      if (error instanceof LockError && error.code === "not_found") return undefined;
      throw error;
    }
  }

  /**
   * range reads one page of the keys starting with `prefix`, linearizably, in key order (JavaScript
   * string order). To read them all, repeat with `after` set to the last key while `more` is true:
   *
   * ```ts
   * let page = await client.range("booking/");
   * while (page.more) page = await client.range("booking/", { after: page.items.at(-1)?.key ?? "" });
   * ```
   */
  async range(prefix: string, options: RangeOptions = {}): Promise<RangePage> {
    const query = new URLSearchParams({ prefix, limit: String(options.limit ?? 100), after: options.after ?? "" });
    return decode(rangePageSchema, await this.send("GET", `/kv?${query}`, undefined, options), "/kv");
  }

  /**
   * watch yields the committed lock events after `options.after`, in index order, each once: all
   * events when `prefix` is empty, else the `key_changed` events of keys starting with it. It
   * long-polls any node (each serves from its own applied log), and moves to another node, with
   * the usual backoff, when one fails.
   *
   * **When to use**: to follow changes (bookings, a chain's new records) without polling reads.
   * To see everything: read with `range`, then watch with `after` set to the page's `index`.
   *
   * **Gotchas**: a node keeps a bounded window of events. If `after` is older than every node
   * still holds (or the watcher fell far behind), the iterator throws `events_compacted`
   * (`details.oldestIndex`): read the state again and watch from its `index`. It throws
   * `unavailable` once every node failed `retriesMax` times in a row, and `aborted` when `signal`
   * aborts. Events between yields wait in the cluster, not in memory here; a slow consumer just
   * polls later.
   *
   * **Example**:
   * ```ts
   * const page = await client.range("booking/");
   * for await (const event of client.watch("booking/", { after: page.index, signal })) {
   *   if (event.type === "key_changed") console.log(event.key, event.deleted ? "deleted" : event.value);
   * }
   * ```
   */
  async *watch(prefix: string, options: WatchOptions = {}): AsyncGenerator<WatchEvent, void, undefined> {
    const pollTimeoutMs = options.pollTimeoutMs ?? 25_000;
    let after = options.after;
    for (;;) {
      const query = new URLSearchParams({ prefix, timeoutMs: String(pollTimeoutMs), limit: String(options.limit ?? 1000) });
      if (after !== undefined) query.set("after", String(after));
      const startedMs = this.options.now();
      const answer = await this.pollWatch(`/watch?${query}`, {
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        timeoutMs: pollTimeoutMs + this.options.requestTimeoutMs,
      });
      const body = decode(watchAnswerSchema, answer, "/watch");
      for (const event of body.events) {
        if (after === undefined || event.index > after) yield event;
      }
      // A node that lags behind the last one may answer a lower lastIndex: never go back.
      after = Math.max(after ?? 0, body.lastIndex);
      const waitMs = (options.pollIntervalMinMs ?? 0) - (this.options.now() - startedMs);
      if (body.events.length > 0 && waitMs > 0) await this.options.sleep(waitMs, options.signal);
    }
  }

  /**
   * pollWatch sends one watch poll. On `events_compacted` it asks every node once more before
   * giving up: nodes hold different windows of events (one that restarted from a snapshot holds
   * none from before it), so another may still have them.
   */
  private async pollWatch(path: string, options: SendOptions): Promise<ApiAnswer> {
    try {
      return await this.send("GET", path, undefined, options);
    } catch (error) {
      if (!(error instanceof LockError && error.code === "events_compacted")) throw error;
      for (const [position, node] of this.options.nodes.entries()) {
        const answer = await this.attempt("GET", node, path, undefined, options).catch((other: unknown) => {
          if (other instanceof LockError && other.code === "aborted") throw other;
          return undefined;
        });
        if (answer !== undefined && answer.status < 400) {
          this.preferred = position;
          return answer;
        }
      }
      throw error;
    }
  }

  /** leases lists the current leases, linearizably, each with the leader's own deadline for it (null where that is unknown). */
  async leases(): Promise<LeasesAnswer["leases"]> {
    return decode(leasesAnswerSchema, await this.send("GET", "/leases", undefined, {}), "/leases").leases;
  }

  /**
   * admin runs a membership change (answered once it is applied) or starts a leadership transfer.
   * Promoting a learner that has not caught up yet is refused with `learner_not_caught_up`: ask
   * again a little later.
   */
  async admin(path: "/admin/members", body: MemberRequest): Promise<MemberAnswer>;
  async admin(path: "/admin/transfer", body: TransferRequest): Promise<TransferAnswer>;
  async admin(path: "/admin/members" | "/admin/transfer", body: MemberRequest | TransferRequest): Promise<MemberAnswer | TransferAnswer> {
    const answer = await this.send("POST", path, body, {});
    return path === "/admin/members" ? decode(memberAnswerSchema, answer, path) : decode(transferAnswerSchema, answer, path);
  }

  /**
   * createCredential makes a credential with a role (admin only) and returns it with its token,
   * which no one can see again: the cluster keeps only its SHA-256. A name already taken is
   * `credential_exists` (also what a retry finds if the first attempt's answer was lost).
   */
  async createCredential(request: CredentialRequest): Promise<IssuedCredential> {
    return decode(issuedCredentialSchema, await this.send("POST", "/admin/credentials", request, {}), "/admin/credentials");
  }

  /** listCredentials lists every credential, by name, never a token (admin only; linearizable). */
  async listCredentials(): Promise<readonly CredentialInfo[]> {
    return decode(credentialListSchema, await this.send("GET", "/admin/credentials", undefined, {}), "/admin/credentials").credentials;
  }

  /** rotateCredential gives a credential a new token (returned, shown once); the old one is refused from that entry on (admin only). */
  async rotateCredential(name: string): Promise<IssuedCredential> {
    const path = `/admin/credentials/${encodeURIComponent(name)}/rotate`;
    return decode(issuedCredentialSchema, await this.send("POST", path, {}, {}), path);
  }

  /** revokeCredential ends a credential: from the revoking entry (`index`) on, every node refuses its token (admin only). */
  async revokeCredential(name: string): Promise<RevokedCredential> {
    const path = `/admin/credentials/${encodeURIComponent(name)}/revoke`;
    return decode(revokedCredentialSchema, await this.send("POST", path, {}, {}), path);
  }

  /** whoami names the credential this client's token belongs to, and its role. */
  async whoami(): Promise<WhoamiAnswer> {
    return decode(whoamiAnswerSchema, await this.send("GET", "/auth/whoami", undefined, {}), "/auth/whoami");
  }

  /**
   * restartNode asks one node, by its URL (no failover to another), to stop gracefully and be
   * started again by its supervisor (POST /admin/restart): a leader hands its leadership over
   * first. Without a supervisor that restarts it, the node just stops. For the whole cluster, one
   * node at a time, use `rollingRestart` (rolling-restart.ts).
   */
  async restartNode(node: string): Promise<RestartAnswer> {
    const answer = await this.send("POST", "/admin/restart", {}, { node: node.replace(/\/+$/, "") });
    return decode(restartAnswerSchema, answer, "/admin/restart");
  }

  /**
   * renewLease renews a lease and answers when the validity it bought starts: the send time of
   * the attempt that was answered. A renewal goes without a session, unlike other writes: it is
   * idempotent by nature (it extends the lease with that token, if current, to a full TTL from
   * when it is applied, and does nothing otherwise), so each attempt stands alone, and a retry
   * that gets through late buys validity from its own send time, not from the first attempt's.
   */
  async renewLease(resources: readonly string[], token: string, options: MutateOptions = {}): Promise<number> {
    // No place in the session window is taken (see takeSequence): it guards the results a
    // session remembers, which a renewal does not use, and a busy client must not starve its leases' renewals.
    const renewal = { resources: [...resources], token } satisfies WriteRequest<"/renew">;
    const answer = await this.send("POST", "/renew", renewal, options);
    decode(writeEndpoints["/renew"].answer, answer, "/renew");
    return answer.sentAtMs;
  }

  /**
   * unlockLease asks the cluster to end a lease, once, within `deadlineMs`, without a session: an
   * unlock names its token, so a repeat can only find the lease gone (`not_held`), never end
   * another's. Leases use it to let go of a lease they lost (see Lease).
   */
  async unlockLease(resources: readonly string[], token: string, options: MutateOptions = {}): Promise<void> {
    const answer = await this.send("POST", "/unlock", { resources: [...resources], token } satisfies WriteRequest<"/unlock">, options);
    decode(writeEndpoints["/unlock"].answer, answer, "/unlock");
  }

  /** clientId names this client's session (it changes only if the cluster forgot the session). */
  get clientId(): string {
    return this.currentClientId;
  }

  /**
   * mutate sends a mutating request with a new session sequence, retrying it unchanged. The
   * cluster starts a session only at sequence 1, so later requests wait until the first one has
   * settled; and a new sequence is sent only while the oldest unanswered one is fewer than
   * `sequenceWindowMax` behind it, within the window of results the
   * cluster remembers per session. If the cluster no longer knows the session (`session_expired`:
   * it was evicted, or its first request never arrived), a new session is started and the request
   * is sent once more under it.
   */
  async mutate<Path extends WritePath>(
    path: Path,
    body: WriteBody<Path>,
    options: MutateOptions = {},
  ): Promise<{ readonly body: WriteAnswer<Path>; readonly sentAtMs: number }> {
    const sequence = await this.takeSequence(path !== "/lock", options.signal);
    const answer = await this.mutateInSession(path, body, options, this.currentClientId, sequence, true);
    return { body: decode(writeEndpoints[path].answer, answer, path) as WriteAnswer<Path>, sentAtMs: answer.sentAtMs };
  }

  private async mutateInSession(
    path: WritePath,
    body: object,
    options: MutateOptions,
    clientId: string,
    sequence: number,
    mayRestart: boolean,
  ): Promise<ApiAnswer> {
    let attempt: Promise<ApiAnswer>;
    try {
      if (sequence === 1) {
        attempt = this.send("POST", path, { ...body, clientId, sequence }, options);
        this.sessionStart = attempt.catch(() => undefined);
      } else {
        await this.sessionStart;
        attempt = this.send("POST", path, { ...body, clientId, sequence }, options);
      }
      return await attempt;
    } catch (error) {
      if (!(mayRestart && error instanceof LockError && error.code === "session_expired")) throw error;
      if (this.currentClientId === clientId) {
        this.currentClientId = `client-${randomUUID()}`;
        this.sequence = 0;
        this.sessionStart = undefined;
        this.outstanding.clear();
      }
      // Rare (the session was forgotten): the new number is taken without waiting for the window.
      this.sequence++;
      this.outstanding.add(this.sequence);
      return this.mutateInSession(path, body, options, this.currentClientId, this.sequence, false);
    } finally {
      // A restarted session cleared the set; an answer of the old one must not remove a new number.
      if (this.currentClientId === clientId) this.outstanding.delete(sequence);
      this.wakeWaiters();
    }
  }

  /**
   * takeSequence numbers a new request once it would be fewer than sequenceWindowMax past the
   * oldest unanswered one (it is then unanswered itself until its attempt settles); `signal` ends
   * the wait (a renewal's deadline). Counting requests in flight is not enough: one slow request
   * (a retry after a timeout) can be overtaken by any number of quick ones, and once the cluster
   * has remembered 64 newer results it refuses the slow one as stale_sequence although it was
   * never applied (found by bench:rush: 1,000 simultaneous bookings through three schedulers got
   * 33 answers 503). The check and the numbering happen together, so waiters woken at once cannot
   * all pass the same check.
   *
   * A request on a lease already held (`holder`: txn, renew, release) goes before every waiting
   * acquire: it ends work in progress and frees resources, while a queued acquire only starts more.
   * Behind a burst of acquires a holder's write would otherwise wait its turn until its lease ran
   * out (bench:rush at a load of 15: bookings lost their leases, answered lease_lost).
   */
  private async takeSequence(holder: boolean, signal: AbortSignal | undefined): Promise<number> {
    for (;;) {
      let oldest = this.sequence + 1;
      for (const sequence of this.outstanding) oldest = Math.min(oldest, sequence);
      const mayGo = holder || this.holderWaiters.length === 0;
      if (mayGo && this.sequence + 1 - oldest < sequenceWindowMax) {
        this.sequence++;
        this.outstanding.add(this.sequence);
        return this.sequence;
      }
      const waiters = holder ? this.holderWaiters : this.slotWaiters;
      await new Promise<void>((resolve, reject) => {
        if (signal?.aborted) {
          reject(new LockError("aborted", "the request was aborted", { cause: signal.reason }));
          return;
        }
        const onAbort = () => {
          const position = waiters.indexOf(wake);
          if (position >= 0) waiters.splice(position, 1);
          reject(new LockError("aborted", "the request was aborted", { cause: signal?.reason }));
        };
        const wake = () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        waiters.push(wake);
      });
    }
  }

  private wakeWaiters(): void {
    // Wake every waiter, holders first: an answer may open the window by many; they check again in order.
    for (const wake of this.holderWaiters.splice(0)) wake();
    for (const wake of this.slotWaiters.splice(0)) wake();
  }

  /**
   * send tries the preferred node, then the others, with backoff; only retryable failures are
   * retried. A node that refuses the connection (nothing listens there: its process is down) is
   * passed over at once: the same attempt goes to the next node without the backoff, up to
   * `nodes.length - 1` refusals in a row (so a cluster that refuses everywhere still waits between
   * rounds). The attempts and their waits are counted as before, so the patience is unchanged;
   * the sends are bounded by (retriesMax + 1) · nodes.length. After a leader's `kill -9`, a
   * client whose turn came to the dead node used to wait a backoff for nothing before asking the
   * next one.
   */
  private async send(method: "GET" | "POST", path: string, body: object | undefined, options: SendOptions): Promise<ApiAnswer> {
    const { signal, node, deadlineMs } = options;
    let lastError: LockError | undefined;
    /** askedWaitMs: the wait the last answer asked for (an overloaded node's Retry-After), honoured before the next attempt. */
    let askedWaitMs: number | undefined;
    /** sent: the sends so far, which pick the node (the preferred one first, then round the others). */
    let sent = 0;
    /** refusedInRow: the sends in a row whose node refused the connection; below nodes.length, the next goes at once. */
    let refusedInRow = 0;
    for (let attempt = 0; attempt <= this.options.retriesMax; attempt++) {
      if (signal?.aborted) throw new LockError("aborted", "the request was aborted", { cause: signal.reason });
      const atOnce = attempt === 0 || refusedInRow > 0;
      const backoffMs = atOnce ? 0 : Math.min(this.retryWaitMs(attempt, askedWaitMs), this.leftMs(deadlineMs));
      if (backoffMs > 0) await this.options.sleep(backoffMs, signal);
      if (this.leftMs(deadlineMs) <= 0) break;
      const url = node ?? (this.options.nodes[(this.preferred + sent) % this.options.nodes.length] as string);
      sent++;
      let answer: ApiAnswer;
      try {
        answer = await this.attempt(method, url, path, body, { ...options, timeoutMs: this.attemptTimeoutMs(options) });
      } catch (error) {
        // No answer: try again (another node, after the backoff), unless the caller aborted.
        if (error instanceof LockError && error.code !== "unavailable" && error.code !== "timeout") throw error;
        lastError =
          error instanceof LockError
            ? error
            : new LockError("unavailable", `${url} did not answer: ${(error as Error).message}`, { cause: error });
        refusedInRow = node === undefined && connectionRefused(error) ? refusedInRow + 1 : 0;
        if (refusedInRow > 0 && refusedInRow < this.options.nodes.length)
          attempt--; // The same attempt, at the next node.
        else refusedInRow = 0;
        continue;
      }
      refusedInRow = 0;
      if (answer.status < 400) {
        if (node === undefined) this.prefer(url, answer.leaderUrl);
        return answer;
      }
      lastError = lockErrorFromAnswer(answer.status, answer.body);
      if (!retryable(answer.status)) throw lastError;
      askedWaitMs = lastError.code === "overloaded" ? askedWaitOf(lastError, answer) : undefined;
    }
    if (deadlineMs !== undefined && this.leftMs(deadlineMs) <= 0) {
      throw new LockError("timeout", `no node answered ${path} before its deadline`, { cause: lastError });
    }
    throw lastError ?? new LockError("unavailable", "no node answered");
  }

  /** leftMs is the time left until `deadlineMs` (unbounded without one). */
  private leftMs(deadlineMs: number | undefined): number {
    return deadlineMs === undefined ? Number.POSITIVE_INFINITY : deadlineMs - this.options.now();
  }

  /** attemptTimeoutMs bounds one attempt: the request's timeout, and within a deadline a third of what is left (see SendOptions). */
  private attemptTimeoutMs(options: SendOptions): number {
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs;
    const leftMs = this.leftMs(options.deadlineMs);
    return Math.ceil(Math.min(timeoutMs, Math.max(leftMs / 3, Math.min(leftMs, 20))));
  }

  /**
   * attempt sends one request to `node` and reads its whole answer within the timeout. It costs
   * the scheduler two of these per booking, so it avoids abort signals, which are dear per request
   * (AbortSignal.timeout, AbortSignal.any, even an AbortController): one plain timer ends the
   * attempt through an AttemptSignal.
   */
  private async attempt(
    method: "GET" | "POST",
    node: string,
    path: string,
    body: object | undefined,
    options: SendOptions,
  ): Promise<ApiAnswer> {
    const { signal } = options;
    const url = `${node}${path}`;
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs;
    if (signal?.aborted) throw new LockError("aborted", "the request was aborted", { cause: signal.reason });
    const ending = new AttemptSignal();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      ending.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError"));
    }, timeoutMs);
    timer.unref?.();
    const onAbort = () => ending.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    const headers: Record<string, string> = { authorization: `Bearer ${this.options.apiToken}`, "content-type": "application/json" };
    if (options.requestId !== undefined) headers["x-request-id"] = options.requestId;
    const sentAtMs = this.options.now();
    try {
      const answer = await this.transport.send({
        method,
        node,
        path,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: ending,
      });
      return {
        status: answer.status,
        body: answer.body.length > 0 ? (JSON.parse(answer.body) as unknown) : {},
        leaderUrl: answer.leaderUrl,
        sentAtMs,
        retryAfterMs: answer.retryAfterMs,
      };
    } catch (error) {
      if (signal?.aborted) throw new LockError("aborted", "the request was aborted", { cause: error });
      if (timedOut) throw new LockError("timeout", `${url} did not answer within ${timeoutMs} ms`, { cause: error });
      throw new LockError("unavailable", `${url} is unreachable: ${(error as Error).message}`, { cause: error });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  /** prefer remembers which node to try first: the leader the answer named, if the client knows it, else the node that answered. */
  private prefer(answered: string, leaderUrl: string | undefined): void {
    const leader = leaderUrl === undefined ? -1 : this.options.nodes.indexOf(leaderUrl.replace(/\/+$/, ""));
    this.preferred = leader >= 0 ? leader : Math.max(0, this.options.nodes.indexOf(answered));
  }

  /**
   * retryWaitMs: the wait before attempt number `attempt` (1 for the first retry). After an
   * `overloaded` answer it is what the node asked for plus the jittered backoff (so clients shed
   * together do not come back together), never more than retryAfterMaxMs; else the backoff alone.
   */
  private retryWaitMs(attempt: number, askedWaitMs: number | undefined): number {
    const backoffMs = this.backoffMs(attempt);
    if (askedWaitMs === undefined) return backoffMs;
    return Math.min(this.options.retryAfterMaxMs, askedWaitMs + backoffMs);
  }

  private backoffMs(attempt: number): number {
    const ceiling = Math.min(this.options.retryMaxMs, this.options.retryBaseMs * 2 ** (attempt - 1));
    return Math.floor(this.options.random() * ceiling); // Full jitter: spreads retries after a failover.
  }

  /** validUntil is the pessimistic end of a lease whose request was first sent at `sentAt`. */
  validUntil(sentAt: number, ttlMs: number): number {
    return sentAt + ttlMs * (1 - this.options.clockDriftDiscount) - this.options.safetyMarginMs;
  }

  now(): number {
    return this.options.now();
  }
}

/**
 * sequenceWindowMax: how far a new sequence may run ahead of the oldest unanswered one; below the
 * results the cluster remembers per session (64), so the oldest can never be forgotten while out.
 * It also bounds the requests in flight.
 */
const sequenceWindowMax = 32;

/**
 * askedWaitOf: the wait an overloaded node asked for: `details.retryAfterMs` (to the millisecond)
 * if it says so, else its Retry-After header (whole seconds), else none.
 */
function askedWaitOf(error: LockError, answer: ApiAnswer): number | undefined {
  const detailed = error.details?.["retryAfterMs"];
  if (typeof detailed === "number" && Number.isFinite(detailed) && detailed >= 0) return detailed;
  return answer.retryAfterMs;
}

/**
 * connectionRefused: whether an attempt failed because nothing listens at the node's address
 * (ECONNREFUSED, on the error or a cause it wraps; a few levels at most). A node that is down
 * answers so at once, unlike a slow or partitioned one, whose attempt times out.
 */
function connectionRefused(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    if ((current as { code?: unknown }).code === "ECONNREFUSED") return true;
    current = current.cause;
  }
  return false;
}

/**
 * retryable: the answers worth asking again (another node, after the backoff): 429 and 503 ("not
 * now"), 504 (no outcome in time; the session makes a retry safe), and any other 5xx (a node's
 * fault, which another node may not share). Every other answer would be the same again.
 */
function retryable(status: number): boolean {
  return status === 429 || status >= 500;
}

/**
 * decode checks a success answer against the contract's schema. The body is handed out as the node
 * sent it (a newer node's extra fields included); one that does not fit is `invalid_answer`, and
 * since it was a success, the request may have taken effect.
 */
function decode<Schema extends z.ZodType>(schema: Schema, answer: ApiAnswer, path: string): Wire<z.output<Schema>> {
  const parsed = schema.safeParse(answer.body);
  if (!parsed.success) {
    throw new LockError("invalid_answer", `the answer to ${path} does not fit the wire contract: ${describeIssues(parsed.error)}`, {
      status: answer.status,
    });
  }
  return answer.body as Wire<z.output<Schema>>;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(new LockError("aborted", "the request was aborted", { cause: signal?.reason }));
    };
    // The listener goes when the timer fires: a watch sleeps between polls under one long-lived signal.
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
