// LockStateMachine is what every replica applies, entry by entry, from the committed Raft log:
// fenced leases on resources, FIFO waiters, a fenced key-value store and exactly-once client
// sessions. It is pure and deterministic (no clock, no randomness, no I/O): the node and the
// simulator apply exactly this code, so every replica reaches the same state at every index.
//
// Time enters only through the log. A lease's TTL is counted by the leader on its own monotonic
// clock; when it runs out the leader proposes `expire` (guarded by the lease's version, so an
// expiry decided before a renewal does nothing), and a waiter's patience likewise ends with a
// `cancel_wait` entry. Every replica therefore agrees on when each lease ended.

import { type ChainHead, chainKeyOf, chainKeyPrefix, encodeChainRecord } from "../protocol/chain.ts";
import {
  chainNamePattern,
  credentialsMax,
  leasesPerCommandMax,
  nameLengthMax,
  operationsPerTxnMax,
  readLimitMax,
  readsPerAcquireMax,
  valueLengthMax,
} from "../protocol/limits.ts";
import type { Role } from "../protocol/roles.ts";
import { assert } from "./assert.ts";
import { chainRecordOf } from "./chain.ts";
import { type CredentialChange, type CredentialRefusal, CredentialTable } from "./credentials.ts";
import type {
  Credential,
  FencingToken,
  Lease,
  LeaseHolder,
  LeaseRef,
  LockCommand,
  LockEvent,
  LockResult,
  Session,
  StoredValue,
  TxnOperation,
  Waiter,
} from "./types.ts";

/** LockLimits bound every input and every table; the node validates them at startup. */
export interface LockLimits {
  /** ttlMsMin must be at least 1.5 × the longest election timeout (a failover may not outlast a lease's minimum). */
  readonly ttlMsMin: number;
  readonly ttlMsMax: number;
  readonly waitMsMax: number;
  readonly resourcesPerAcquireMax: number;
  readonly nameLengthMax: number;
  readonly valueLengthMax: number;
  readonly operationsPerTxnMax: number;
  readonly waitersMax: number;
  readonly sessionsMax: number;
  /** resultsPerSessionMax: how many recent results each client session keeps for retries. */
  readonly resultsPerSessionMax: number;
  /** readsPerAcquireMax and readLimitMax bound the range reads an acquire may carry (their answers are remembered per session). */
  readonly readsPerAcquireMax: number;
  readonly readLimitMax: number;
  /** readBytesMax bounds the keys and values all reads of one acquire return (in UTF-16 code units). */
  readonly readBytesMax: number;
  /** credentialsMax bounds the callers' credentials (lock/credentials.ts). */
  readonly credentialsMax: number;
}

/**
 * lockLimitsDefaults: the wire limits come from protocol/limits.ts, the limits every command was
 * checked against before it entered the log; the rest bound the state machine's own tables.
 */
export const lockLimitsDefaults: LockLimits = {
  ttlMsMin: 1000,
  ttlMsMax: 10 * 60 * 1000,
  waitMsMax: 60 * 1000,
  resourcesPerAcquireMax: leasesPerCommandMax,
  nameLengthMax,
  valueLengthMax,
  operationsPerTxnMax,
  waitersMax: 10_000,
  sessionsMax: 10_000,
  resultsPerSessionMax: 64,
  readsPerAcquireMax,
  readLimitMax,
  readBytesMax: 64 * 1024,
  credentialsMax,
};

/** Applied is what applying one entry produced: the answer for the proposer and the events for watchers. */
export interface Applied {
  readonly result: LockResult;
  readonly events: readonly LockEvent[];
  /** resolvedWaiters: queued requests that this entry ended (granted or timed out), for the node to answer. */
  readonly resolvedWaiters: readonly { readonly session: Session | undefined; readonly waiterId: number; readonly result: LockResult }[];
}

interface SessionRecord {
  /** results of this client's recent requests, by sequence number. */
  readonly results: Map<number, LockResult>;
  /** evictedThrough: every sequence at or below it was applied and forgotten; a retry of one is refused. */
  evictedThrough: number;
}

/** LockStateSnapshot is the whole state as plain data (for Raft snapshots), in a deterministic order. */
export interface LockStateSnapshot {
  readonly version: 1;
  readonly appliedIndex: number;
  readonly leases: readonly Lease[];
  readonly waiters: readonly Waiter[];
  readonly keys: readonly (readonly [string, StoredValue & { readonly deleted: boolean }])[];
  readonly sessions: readonly (readonly [
    string,
    { readonly evictedThrough: number; readonly results: readonly (readonly [number, LockResult])[] },
  ])[];
  /** chains: each hash chain's head. Optional only so that snapshots written before chains existed still restore. */
  readonly chains?: readonly (readonly [string, ChainHead])[];
  /** credentials: the callers' credentials, by name. Optional only so that snapshots written before them still restore (with none). */
  readonly credentials?: readonly Credential[];
}

export class LockStateMachine {
  readonly limits: LockLimits;
  private appliedIndexValue = 0;
  private readonly leasesByResource = new Map<string, Lease>();
  private waiters: Waiter[] = [];
  /** keys: deleted keys stay as tombstones, so a stale writer cannot bring them back. */
  private readonly keys = new Map<string, StoredValue & { deleted: boolean }>();
  /** sortedKeys: every key of `keys` (tombstones included) in JavaScript string order, for range reads. */
  private readonly sortedKeys: string[] = [];
  /** sessions are kept in least-recently-used order (Map insertion order, refreshed on use). */
  private readonly sessions = new Map<string, SessionRecord>();
  /** chainHeads: the last record of each hash chain, which the next append links to. */
  private readonly chainHeads = new Map<string, ChainHead>();
  /** credentials: who may send commands, and with which role (credentials.ts). */
  private credentials: CredentialTable;

  constructor(limits: LockLimits = lockLimitsDefaults) {
    this.limits = limits;
    this.credentials = new CredentialTable(limits.credentialsMax);
  }

  appliedIndex(): number {
    return this.appliedIndexValue;
  }

  /** apply applies the command of the committed entry at `index`. Indexes must rise. */
  apply(index: number, command: LockCommand): Applied {
    assert(
      index > this.appliedIndexValue,
      `LockStateMachine.apply(${index}) after ${this.appliedIndexValue}: entries are applied once, in order`,
    );
    this.appliedIndexValue = index;
    switch (command.type) {
      case "expire":
        return this.expire(index, command.resource, command.token, command.version);
      case "cancel_wait":
        return this.cancelWait(index, command.waiterId);
      case "credential_create":
      case "credential_rotate":
      case "credential_revoke":
        return this.applyCredential(index, command);
      default: {
        // Checked first, before the session's remembered answers: nothing is answered under a
        // token that was revoked or rotated before this entry, not even a retry's first answer.
        const refusal = this.credentials.check(command.credentialIndex, "locker");
        if (refusal !== undefined) return answer(rejected(refusal.code, refusal.message));
        return this.applyWithSession(index, command);
      }
    }
  }

  /** applyNoop advances the applied index for entries that carry no command (Raft no-ops, membership). */
  applyNoop(index: number): void {
    if (index > this.appliedIndexValue) this.appliedIndexValue = index;
  }

  // -------------------------------------------------------------------------------------------
  // Queries (the node serves them after a ReadIndex round, so they are linearizable).

  lease(resource: string): Lease | undefined {
    return this.leasesByResource.get(resource);
  }

  leases(): Lease[] {
    return [...this.leasesByResource.values()];
  }

  /** waiter returns the queued acquire with this id, if it is still waiting. */
  waiter(waiterId: number): Waiter | undefined {
    return this.waiters.find((candidate) => candidate.waiterId === waiterId);
  }

  waitersNow(): Waiter[] {
    return this.waiters.slice();
  }

  get(key: string): StoredValue | undefined {
    const stored = this.keys.get(key);
    if (stored === undefined || stored.deleted) return undefined;
    return { value: stored.value, token: stored.token, modIndex: stored.modIndex };
  }

  /**
   * range returns the live keys starting with `prefix` and greater than `after` (JavaScript string
   * order), in key order, at most `limit` of them; `more` says whether further keys follow, to be
   * read with `after` set to the last key returned.
   */
  range(prefix: string, limit: number, after = ""): { items: { key: string; value: StoredValue }[]; more: boolean } {
    const found: { key: string; value: StoredValue }[] = [];
    // Start at the first key above both the prefix's start and `after`, and walk the sorted index
    // while the prefix holds: a range costs O(log n + what it returns, plus tombstones in between).
    const from = after >= prefix ? after : prefix;
    for (let position = this.firstKeyPositionAbove(from, from === after); position < this.sortedKeys.length; position += 1) {
      const key = this.sortedKeys[position] as string;
      if (!key.startsWith(prefix)) break;
      const stored = this.keys.get(key);
      assert(stored !== undefined, `sorted key index names ${key}, which is not stored`);
      if (stored.deleted) continue;
      if (found.length === limit) return { items: found, more: true };
      found.push({ key, value: { value: stored.value, token: stored.token, modIndex: stored.modIndex } });
    }
    return { items: found, more: false };
  }

  /** firstKeyPositionAbove: the position of the first key > `from` (or >= when not exclusive) in the sorted index. */
  private firstKeyPositionAbove(from: string, exclusive: boolean): number {
    let low = 0;
    let high = this.sortedKeys.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const key = this.sortedKeys[middle] as string;
      if (key < from || (exclusive && key === from)) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** storeKey writes a key, adding it to the sorted index the first time it is seen (tombstones stay in both). */
  private storeKey(key: string, stored: StoredValue & { deleted: boolean }): void {
    if (!this.keys.has(key)) this.sortedKeys.splice(this.firstKeyPositionAbove(key, false), 0, key);
    this.keys.set(key, stored);
  }

  /** chainHead returns the last record's seq and hash of a hash chain, if it has any. */
  chainHead(chain: string): ChainHead | undefined {
    return this.chainHeads.get(chain);
  }

  /** credentialByTokenHash finds the credential a token (by its SHA-256, hex) belongs to now. */
  credentialByTokenHash(tokenHash: string): Credential | undefined {
    return this.credentials.byTokenHash(tokenHash);
  }

  /**
   * credentialRefusal says whether the token issued at `credentialIndex` (undefined: the bootstrap
   * admin token) may still do what needs `role`, as of this state: undefined if it may.
   */
  credentialRefusal(credentialIndex: number | undefined, role: Role): CredentialRefusal | undefined {
    return this.credentials.check(credentialIndex, role);
  }

  /** credentialList lists every credential, by name. */
  credentialList(): Credential[] {
    return this.credentials.list();
  }

  // -------------------------------------------------------------------------------------------
  // Credentials (admin only).

  private applyCredential(
    index: number,
    command: Extract<LockCommand, { type: "credential_create" | "credential_rotate" | "credential_revoke" }>,
  ): Applied {
    const refusal = this.credentials.check(command.credentialIndex, "admin");
    if (refusal !== undefined) return answer(rejected(refusal.code, refusal.message));
    const change: CredentialChange =
      command.type === "credential_create"
        ? this.credentials.create(index, command.name, command.role, command.tokenHash)
        : command.type === "credential_rotate"
          ? this.credentials.rotate(index, command.name, command.tokenHash)
          : this.credentials.revoke(index, command.name);
    if (change.retiredIndex === undefined) return answer(change.result);
    const ended = this.endWaitsUnder(index, change.retiredIndex);
    return { result: change.result, events: ended.events, resolvedWaiters: ended.resolved };
  }

  /**
   * endWaitsUnder ends the waits queued under a token that this entry retired (revoked or
   * rotated): each is answered `unauthorized`, so no lease is granted later to a request whose
   * token no longer holds; the waiters behind them may go ahead.
   */
  private endWaitsUnder(index: number, credentialIndex: number): { events: LockEvent[]; resolved: Applied["resolvedWaiters"][number][] } {
    const ended = this.waiters.filter((waiter) => waiter.credentialIndex === credentialIndex);
    if (ended.length === 0) return { events: [], resolved: [] };
    this.waiters = this.waiters.filter((waiter) => waiter.credentialIndex !== credentialIndex);
    const resolved = ended.map((waiter) => {
      const result = rejected("unauthorized", `the token this wait was queued under was revoked or rotated at index ${index}`);
      this.resolveSession(waiter.session, result);
      return { session: waiter.session, waiterId: waiter.waiterId, result };
    });
    const woken = this.grantWaiters(index);
    return { events: woken.events, resolved: [...resolved, ...woken.resolved] };
  }

  // -------------------------------------------------------------------------------------------
  // Sessions: exactly-once.

  private applyWithSession(index: number, command: SessionCommand): Applied {
    // A command without a session is applied once and not remembered: it neither creates a
    // session nor pushes a real client's session out of the table.
    if (command.session === undefined) return this.applyCommand(index, command);
    const { clientId, sequence } = command.session;
    if (
      typeof clientId !== "string" ||
      clientId.length === 0 ||
      clientId.length > this.limits.nameLengthMax ||
      !isPositiveInteger(sequence)
    ) {
      return answer(rejected("invalid_command", "session needs a clientId and a positive integer sequence"));
    }
    let session = this.sessions.get(clientId);
    if (session !== undefined) {
      const cached = session.results.get(sequence);
      if (cached !== undefined) return answer(cached); // A retry: the first answer, nothing done twice.
      if (sequence <= session.evictedThrough) {
        return answer(rejected("stale_sequence", `request ${sequence} of ${clientId} is too old to be answered again`));
      }
      this.sessions.delete(clientId); // Re-inserted below: most recently used last.
    } else if (sequence !== 1) {
      return answer(rejected("session_expired", `session ${clientId} is unknown here (expired or never started): start a new one`));
    } else {
      session = { results: new Map(), evictedThrough: 0 };
    }
    this.sessions.set(clientId, session);
    this.evictSessions();
    const applied = this.applyCommand(index, command);
    this.remember(session, sequence, applied.result);
    return applied;
  }

  private remember(session: SessionRecord, sequence: number, result: LockResult): void {
    session.results.set(sequence, result);
    while (session.results.size > this.limits.resultsPerSessionMax) {
      let lowest = Number.POSITIVE_INFINITY;
      for (const key of session.results.keys()) lowest = Math.min(lowest, key);
      session.results.delete(lowest);
      session.evictedThrough = Math.max(session.evictedThrough, lowest);
    }
  }

  private evictSessions(): void {
    while (this.sessions.size > this.limits.sessionsMax) {
      const oldest = this.sessions.keys().next().value as string;
      this.sessions.delete(oldest);
    }
  }

  private applyCommand(index: number, command: SessionCommand): Applied {
    switch (command.type) {
      case "acquire":
        return this.acquire(index, command);
      case "renew":
        return this.renew(index, command.leases);
      case "release":
        return this.release(index, command.leases);
      case "txn":
        return this.txn(index, command.guards, command.operations, command.releaseGuards === true);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Leases.

  private acquire(index: number, command: Extract<LockCommand, { type: "acquire" }>): Applied {
    const invalid = this.checkAcquire(command);
    if (invalid !== undefined) return answer(rejected("invalid_command", invalid));
    const resources = [...command.resources].sort();
    const reserved = this.reservedByWaiters();
    const blocker = resources.find((resource) => this.leasesByResource.has(resource) || reserved.has(resource));
    if (blocker === undefined) {
      const events = this.grant(index, resources, command.owner, command.session?.clientId ?? "", command.ttlMs);
      const result = { status: "granted" as const, token: index, resources, owner: command.owner, ttlMs: command.ttlMs };
      if (command.reads === undefined || command.reads.length === 0) return { result, events, resolvedWaiters: [] };
      // The answers are remembered with the session's results, so their size is bounded: past
      // readBytesMax an answer is cut short and says `more` (the holder reads the rest by range).
      let bytesLeft = this.limits.readBytesMax;
      const reads = command.reads.map((read) => {
        const page = this.range(read.prefix, read.limit, read.after ?? "");
        const items: { key: string; value: string; modIndex: number }[] = [];
        for (const item of page.items) {
          const bytes = item.key.length + item.value.value.length;
          if (bytes > bytesLeft) return { items, more: true };
          bytesLeft -= bytes;
          items.push({ key: item.key, value: item.value.value, modIndex: item.value.modIndex });
        }
        return { items, more: page.more };
      });
      return { result: { ...result, reads }, events, resolvedWaiters: [] };
    }
    const holder = this.leasesByResource.get(blocker);
    if (command.waitMs === 0) {
      const message =
        holder === undefined
          ? `${blocker} is promised to an earlier waiter`
          : `${blocker} is held by ${holder.owner} (token ${holder.token})`;
      return answer(rejected("conflict", message, holder === undefined ? undefined : leaseHolder(holder)));
    }
    if (this.waiters.length >= this.limits.waitersMax) {
      return answer(rejected("too_many_waiters", `the wait queue is full (${this.limits.waitersMax} waiters)`));
    }
    this.waiters.push({
      waiterId: index,
      ...(command.session === undefined ? {} : { session: command.session }),
      ...(command.credentialIndex === undefined ? {} : { credentialIndex: command.credentialIndex }),
      resources,
      owner: command.owner,
      ttlMs: command.ttlMs,
      waitMs: command.waitMs,
    });
    return answer({ status: "queued", waiterId: index });
  }

  private checkAcquire(command: Extract<LockCommand, { type: "acquire" }>): string | undefined {
    const limits = this.limits;
    if (!Array.isArray(command.resources) || command.resources.length === 0) return "resources must be a non-empty list";
    if (command.resources.length > limits.resourcesPerAcquireMax) return `at most ${limits.resourcesPerAcquireMax} resources per acquire`;
    if (new Set(command.resources).size !== command.resources.length) return "resources must be distinct";
    for (const resource of command.resources) {
      if (!isName(resource, limits.nameLengthMax)) return `resource names are 1 to ${limits.nameLengthMax} characters`;
    }
    if (!isName(command.owner, limits.nameLengthMax)) return `owner is 1 to ${limits.nameLengthMax} characters`;
    if (command.reads !== undefined) {
      if (!Array.isArray(command.reads) || command.reads.length > limits.readsPerAcquireMax)
        return `at most ${limits.readsPerAcquireMax} reads per acquire`;
      for (const read of command.reads) {
        const valid =
          typeof read?.prefix === "string" &&
          read.prefix.length <= limits.nameLengthMax &&
          (read.after === undefined || (typeof read.after === "string" && read.after.length <= limits.nameLengthMax)) &&
          isPositiveInteger(read.limit) &&
          read.limit <= limits.readLimitMax;
        if (!valid)
          return `each read is a prefix and an optional after (at most ${limits.nameLengthMax} characters) and a limit from 1 to ${limits.readLimitMax}`;
      }
    }
    if (!isPositiveInteger(command.ttlMs) || command.ttlMs < limits.ttlMsMin || command.ttlMs > limits.ttlMsMax) {
      return `ttlMs must be an integer in [${limits.ttlMsMin}, ${limits.ttlMsMax}]`;
    }
    if (!Number.isSafeInteger(command.waitMs) || command.waitMs < 0 || command.waitMs > limits.waitMsMax) {
      return `waitMs must be an integer in [0, ${limits.waitMsMax}]`;
    }
    return undefined;
  }

  private grant(index: number, resources: readonly string[], owner: string, clientId: string, ttlMs: number): LockEvent[] {
    const events: LockEvent[] = [];
    for (const resource of resources) {
      this.leasesByResource.set(resource, { resource, token: index, owner, clientId, ttlMs, version: 0 });
      events.push({ type: "granted", index, resource, token: index, owner });
    }
    return events;
  }

  private renew(index: number, refs: readonly LeaseRef[]): Applied {
    const problem = this.checkLeaseRefs(refs);
    if (problem !== undefined) return answer(problem);
    const events: LockEvent[] = [];
    let ttlMs = 0;
    for (const ref of refs) {
      const lease = this.leasesByResource.get(ref.resource) as Lease;
      this.leasesByResource.set(ref.resource, { ...lease, version: lease.version + 1 });
      ttlMs = lease.ttlMs;
      events.push({ type: "renewed", index, resource: ref.resource, token: ref.token });
    }
    return { result: { status: "renewed", leases: refs, ttlMs }, events, resolvedWaiters: [] };
  }

  private release(index: number, refs: readonly LeaseRef[]): Applied {
    const problem = this.checkLeaseRefs(refs);
    if (problem !== undefined) return answer(problem); // A mismatch never releases anything.
    const events: LockEvent[] = [];
    for (const ref of refs) {
      this.leasesByResource.delete(ref.resource);
      events.push({ type: "released", index, resource: ref.resource, token: ref.token });
    }
    const woken = this.grantWaiters(index);
    return { result: { status: "released", leases: refs }, events: [...events, ...woken.events], resolvedWaiters: woken.resolved };
  }

  /** checkLeaseRefs: every ref must name a resource's current lease, or the whole command is refused. */
  private checkLeaseRefs(refs: readonly LeaseRef[]): LockResult | undefined {
    if (!Array.isArray(refs) || refs.length === 0 || refs.length > this.limits.resourcesPerAcquireMax) {
      return rejected("invalid_command", `name 1 to ${this.limits.resourcesPerAcquireMax} leases`);
    }
    if (new Set(refs.map((ref) => ref.resource)).size !== refs.length)
      return rejected("invalid_command", "leases must name distinct resources");
    for (const ref of refs) {
      if (!isName(ref.resource, this.limits.nameLengthMax) || !isPositiveInteger(ref.token)) {
        return rejected("invalid_command", "each lease is a resource name and a positive integer token");
      }
      const lease = this.leasesByResource.get(ref.resource);
      if (lease === undefined || lease.token !== ref.token) {
        return rejected(
          "not_held",
          `${ref.resource} is not held with token ${ref.token}${lease === undefined ? "" : ` (current token ${lease.token})`}`,
          lease === undefined ? undefined : leaseHolder(lease),
        );
      }
    }
    return undefined;
  }

  private expire(index: number, resource: string, token: FencingToken, version: number): Applied {
    const lease = this.leasesByResource.get(resource);
    if (lease === undefined || lease.token !== token || lease.version !== version) {
      return answer({ status: "no_op", reason: "the lease was released, renewed or replaced after this expiry was proposed" });
    }
    this.leasesByResource.delete(resource);
    const woken = this.grantWaiters(index);
    return {
      result: { status: "expired" },
      events: [{ type: "expired", index, resource, token }, ...woken.events],
      resolvedWaiters: woken.resolved,
    };
  }

  /**
   * grantWaiters grants, in FIFO order, every waiter whose resources are all free and not wanted
   * by an earlier waiter: an earlier waiter reserves its resources even while it cannot be granted,
   * so a waiter is never overtaken on a resource it asked for first. The token is this entry's index.
   */
  private grantWaiters(index: number): { events: LockEvent[]; resolved: Applied["resolvedWaiters"][number][] } {
    const events: LockEvent[] = [];
    const resolved: Applied["resolvedWaiters"][number][] = [];
    const reserved = new Set<string>();
    const remaining: Waiter[] = [];
    for (const waiter of this.waiters) {
      const free = waiter.resources.every((resource) => !this.leasesByResource.has(resource) && !reserved.has(resource));
      if (!free) {
        for (const resource of waiter.resources) reserved.add(resource);
        remaining.push(waiter);
        continue;
      }
      events.push(...this.grant(index, waiter.resources, waiter.owner, waiter.session?.clientId ?? "", waiter.ttlMs));
      const result = granted(index, waiter.resources, waiter.owner, waiter.ttlMs);
      this.resolveSession(waiter.session, result);
      resolved.push({ session: waiter.session, waiterId: waiter.waiterId, result });
    }
    this.waiters = remaining;
    return { events, resolved };
  }

  private cancelWait(index: number, waiterId: number): Applied {
    const waiter = this.waiters.find((candidate) => candidate.waiterId === waiterId);
    if (waiter === undefined) return answer({ status: "no_op", reason: "the waiter was granted or cancelled already" });
    this.waiters = this.waiters.filter((candidate) => candidate !== waiter);
    const result = rejected("wait_timeout", `no lease on ${waiter.resources.join(", ")} within ${waiter.waitMs} ms`);
    this.resolveSession(waiter.session, result);
    const woken = this.grantWaiters(index); // Its reservations are gone: later waiters may go ahead.
    return {
      result: { status: "no_op", reason: "waiter cancelled" },
      events: [{ type: "wait_timeout", index, waiterId }, ...woken.events],
      resolvedWaiters: [{ session: waiter.session, waiterId, result }, ...woken.resolved],
    };
  }

  /** resolveSession replaces a queued request's cached answer, so a retry learns how it ended. */
  private resolveSession(session: Session | undefined, result: LockResult): void {
    if (session === undefined) return;
    const record = this.sessions.get(session.clientId);
    if (record?.results.has(session.sequence)) record.results.set(session.sequence, result);
  }

  private reservedByWaiters(): Set<string> {
    const reserved = new Set<string>();
    for (const waiter of this.waiters) for (const resource of waiter.resources) reserved.add(resource);
    return reserved;
  }

  // -------------------------------------------------------------------------------------------
  // Fenced transactions.

  private txn(index: number, guards: readonly LeaseRef[], operations: readonly TxnOperation[], releaseGuards: boolean): Applied {
    const invalid = this.checkTxn(guards, operations);
    if (invalid !== undefined) return answer(rejected("invalid_command", invalid));
    for (const guard of guards) {
      const lease = this.leasesByResource.get(guard.resource);
      if (lease === undefined || lease.token !== guard.token) {
        const current = lease === undefined ? "it is not held" : `its current token is ${lease.token}`;
        return answer(
          rejected("stale_fencing_token", `stale fencing token ${guard.token} for ${guard.resource}: ${current}; nothing was written`),
        );
      }
    }
    const token = Math.max(...guards.map((guard) => guard.token));
    for (const operation of operations) {
      // An append creates a key named by this entry's index, which nothing has written yet: only
      // the guards fence it. Any current lease may append to a chain, in log order.
      if (operation.op === "append") continue;
      const stored = this.keys.get(operation.key);
      if (stored !== undefined && stored.token > token) {
        return answer(
          rejected(
            "stale_fencing_token",
            `stale fencing token ${token} for key ${operation.key}, last written under token ${stored.token}; nothing was written`,
          ),
        );
      }
    }
    const events: LockEvent[] = [];
    const keys: string[] = [];
    for (const operation of operations) {
      if (operation.op === "delete") {
        this.storeKey(operation.key, { value: "", token, modIndex: index, deleted: true });
        events.push({ type: "key_changed", index, key: operation.key, deleted: true, token });
        keys.push(operation.key);
        continue;
      }
      const { key, value } = operation.op === "put" ? operation : this.append(index, operation.chain, operation.value);
      this.storeKey(key, { value, token, modIndex: index, deleted: false });
      events.push({ type: "key_changed", index, key, deleted: false, token, value });
      keys.push(key);
    }
    if (!releaseGuards) return { result: { status: "committed", index, keys }, events, resolvedWaiters: [] };
    for (const guard of guards) {
      this.leasesByResource.delete(guard.resource);
      events.push({ type: "released", index, resource: guard.resource, token: guard.token });
    }
    const woken = this.grantWaiters(index);
    return { result: { status: "committed", index, keys }, events: [...events, ...woken.events], resolvedWaiters: woken.resolved };
  }

  /** append advances a chain's head and returns the key and stored value of its new record. */
  private append(index: number, chain: string, record: string): { key: string; value: string } {
    const created = chainRecordOf(chain, this.chainHeads.get(chain), index, record);
    this.chainHeads.set(chain, { seq: created.seq, hash: created.hash });
    return { key: chainKeyOf(chain, index), value: encodeChainRecord(created) };
  }

  private checkTxn(guards: readonly LeaseRef[], operations: readonly TxnOperation[]): string | undefined {
    const limits = this.limits;
    if (!Array.isArray(guards) || guards.length === 0) return "a txn acts under at least one lease (its guards)";
    if (new Set(guards.map((guard) => guard?.resource)).size !== guards.length) return "guards must name distinct resources";
    if (guards.length > limits.resourcesPerAcquireMax) return `at most ${limits.resourcesPerAcquireMax} guards`;
    for (const guard of guards) {
      if (!isName(guard.resource, limits.nameLengthMax) || !isPositiveInteger(guard.token))
        return "each guard is a resource and a positive token";
    }
    if (!Array.isArray(operations) || operations.length === 0 || operations.length > limits.operationsPerTxnMax) {
      return `a txn has 1 to ${limits.operationsPerTxnMax} operations`;
    }
    const keys = new Set<string>();
    const chains = new Set<string>();
    for (const operation of operations) {
      const invalid = checkOperation(operation, limits);
      if (invalid !== undefined) return invalid;
      if (operation.op === "append") {
        // One record per chain per entry: the record's key is named by the entry's index.
        if (chains.has(operation.chain)) return "a txn appends to each chain at most once";
        chains.add(operation.chain);
      } else {
        if (keys.has(operation.key)) return "a txn writes each key at most once";
        keys.add(operation.key);
      }
    }
    return undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Snapshots.

  snapshot(): LockStateSnapshot {
    return {
      version: 1,
      appliedIndex: this.appliedIndexValue,
      leases: this.leases(),
      waiters: this.waitersNow(),
      keys: [...this.keys.entries()].map(([key, stored]) => [key, { ...stored }] as const),
      sessions: [...this.sessions.entries()].map(
        ([clientId, record]) => [clientId, { evictedThrough: record.evictedThrough, results: [...record.results.entries()] }] as const,
      ),
      chains: [...this.chainHeads.entries()].map(([chain, head]) => [chain, { ...head }] as const),
      credentials: this.credentials.snapshot(),
    };
  }

  static restore(snapshot: LockStateSnapshot, limits: LockLimits = lockLimitsDefaults): LockStateMachine {
    assert(snapshot.version === 1, `unknown lock state snapshot version ${String(snapshot.version)}`);
    const machine = new LockStateMachine(limits);
    machine.appliedIndexValue = snapshot.appliedIndex;
    for (const lease of snapshot.leases) machine.leasesByResource.set(lease.resource, lease);
    machine.waiters = snapshot.waiters.slice();
    for (const [key, stored] of snapshot.keys) machine.keys.set(key, { ...stored });
    for (const key of machine.keys.keys()) machine.sortedKeys.push(key);
    machine.sortedKeys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [clientId, record] of snapshot.sessions) {
      machine.sessions.set(clientId, { evictedThrough: record.evictedThrough, results: new Map(record.results) });
    }
    for (const [chain, head] of snapshot.chains ?? []) machine.chainHeads.set(chain, { ...head });
    machine.credentials = CredentialTable.restore(snapshot.credentials ?? [], limits.credentialsMax);
    return machine;
  }
}

/** SessionCommand: the commands a caller asks for, which may carry a session (the leader's own and the credentials' do not). */
type SessionCommand = Extract<LockCommand, { type: "acquire" | "renew" | "release" | "txn" }>;

function answer(result: LockResult): Applied {
  return { result, events: [], resolvedWaiters: [] };
}

function rejected(code: Extract<LockResult, { status: "rejected" }>["code"], message: string, holder?: LeaseHolder): LockResult {
  return holder === undefined ? { status: "rejected", code, message } : { status: "rejected", code, message, holder };
}

function granted(token: FencingToken, resources: readonly string[], owner: string, ttlMs: number): LockResult {
  return { status: "granted", token, resources, owner, ttlMs };
}

function leaseHolder(lease: Lease): LeaseHolder {
  return { resource: lease.resource, token: lease.token, owner: lease.owner };
}

/** checkOperation validates one txn operation's shape; keys under `~chain/` are written by append alone. */
function checkOperation(operation: TxnOperation, limits: LockLimits): string | undefined {
  if (operation.op !== "put" && operation.op !== "delete" && operation.op !== "append") return "operations are put, delete or append";
  if (operation.op !== "delete" && (typeof operation.value !== "string" || operation.value.length > limits.valueLengthMax)) {
    return `values are strings of at most ${limits.valueLengthMax} characters`;
  }
  if (operation.op === "append") {
    if (typeof operation.chain !== "string" || !chainNamePattern.test(operation.chain)) {
      return "chain names are 1 to 64 lower-case letters, digits and dashes";
    }
    return undefined;
  }
  if (!isName(operation.key, limits.nameLengthMax)) return `keys are 1 to ${limits.nameLengthMax} characters`;
  if (operation.key.startsWith(chainKeyPrefix)) return `keys under ${chainKeyPrefix} are written by append only`;
  return undefined;
}

function isName(value: unknown, lengthMax: number): value is string {
  return typeof value === "string" && value.length > 0 && value.length <= lengthMax;
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0;
}
