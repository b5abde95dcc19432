// The reference model and command generators for the lock state machine's model-based property
// test (fast-check commands); used by lock-model.test.ts on the real machine and by
// scripts/lock-mutations.test.ts on deliberately broken copies of it. Random sequences of
// acquire (with and without waiting, one or several resources), renew, release, expire, cancel,
// fenced txn (put, delete and hash-chain append, including the writes it must refuse), retries of
// earlier requests and snapshot/restore run against the real state machine and against ModelLocks, a deliberately simple reference written apart from it. Credentials
// are created, rotated and revoked among them, and every command a caller sends carries a token:
// the bootstrap one, a credential's current one (of any role), or one already retired. After
// every step the two must agree on the answer and on the whole state, and the safety invariants
// must hold: one holder per resource, strictly rising tokens, nothing written under a stale
// token, a retry never acting twice, and nothing done under a retired token or a too-low role.

import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import fc from "fast-check";
import { expect } from "vitest";
import { type Role, roleIncludes, roles } from "../../protocol/roles.ts";
import { type LockLimits, type LockStateMachine, lockLimitsDefaults } from "../lock-state-machine.ts";
import type { LeaseRef, LockCommand, LockResult, TxnOperation } from "../types.ts";

const resourceNames = ["a", "b", "c"] as const;
const keyNames = ["k1", "k2"] as const;
const chainNames = ["audit", "log-2"] as const;
/** forbiddenKey is a chain record's key: put and delete of it must be refused. */
const forbiddenKey = "~chain/audit/0000000000000001";
const clientIds = ["c0", "c1", "c2"] as const;
const credentialNames = ["ops", "svc", "view"] as const;
/** tokenHashes: few, so that a create or rotate with a hash already in use is drawn too. */
const tokenHashes = ["a", "b", "c", "d", "e"].map((letter) => letter.repeat(64));
const limits = { ...lockLimitsDefaults, resultsPerSessionMax: 10_000 };

/** Outcome is the part of a result both implementations must agree on. */
type Outcome = { status: string; code?: string; token?: number; keys?: readonly string[]; name?: string; role?: string };

function outcomeOf(result: LockResult): Outcome {
  if (result.status === "rejected") return { status: "rejected", code: result.code };
  if (result.status === "credential_issued")
    return { status: result.status, name: result.name, role: result.role, token: result.issuedIndex };
  if (result.status === "credential_revoked") return { status: result.status, name: result.name, token: result.index };
  if (result.status === "granted") return { status: "granted", token: result.token };
  if (result.status === "queued") return { status: "queued", token: result.waiterId };
  if (result.status === "committed") return { status: "committed", keys: result.keys };
  return { status: result.status };
}

interface ModelWaiter {
  id: number;
  resources: string[];
  owner: string;
  requestKey: string;
  credentialIndex: number | undefined;
}

interface ModelCredential {
  name: string;
  role: Role;
  tokenHash: string;
  createdIndex: number;
  issuedIndex: number;
}

/** ModelLocks: the same rules, written as plainly as possible, without limits or optimisation. */
class ModelLocks {
  index = 0;
  holders = new Map<string, { token: number; owner: string; version: number }>();
  waiters: ModelWaiter[] = [];
  keys = new Map<string, { value: string; token: number; deleted: boolean }>();
  chains = new Map<string, { seq: number; hash: string }>(); // Each chain's last record.
  answers = new Map<string, Outcome>(); // `${clientId}#${sequence}` -> first answer (updated when a wait ends)
  issued: LockCommand[] = []; // Every session command, for retries.
  nextSequence = new Map<string, number>();
  lastToken = new Map<string, number>(); // Safety: tokens per resource must rise.
  credentials = new Map<string, ModelCredential>();
  retiredIndexes: number[] = []; // Tokens revoked or rotated away, by the index that issued them.

  /** started: the clients whose session the machine knows (its first request passed the credential check). */
  started = new Set<string>();

  /** sequenceFor numbers a client's next request; until its session has started, it starts again at 1 (as LockClient does after session_expired). */
  sequenceFor(clientId: string): number {
    const next = this.started.has(clientId) ? (this.nextSequence.get(clientId) ?? 0) + 1 : 1;
    this.nextSequence.set(clientId, next);
    return next;
  }

  apply(command: LockCommand): Outcome {
    this.index++;
    if (command.type === "expire") return this.expire(command.resource, command.token, command.version);
    if (command.type === "cancel_wait") return this.cancel(command.waiterId);
    if (command.type === "credential_create" || command.type === "credential_rotate" || command.type === "credential_revoke") {
      return this.refusal(command.credentialIndex, "admin") ?? this.credential(command);
    }
    const refusal = this.refusal(command.credentialIndex, "locker");
    if (refusal !== undefined) return refusal;
    if (command.session === undefined) return this.fresh(command, `anonymous#${this.index}`);
    // A session starts with the first request the machine applies, which must be sequence 1.
    if (!this.started.has(command.session.clientId)) {
      if (command.session.sequence !== 1) return { status: "rejected", code: "session_expired" };
      this.started.add(command.session.clientId);
    }
    const requestKey = `${command.session.clientId}#${command.session.sequence}`;
    const cached = this.answers.get(requestKey);
    if (cached !== undefined) return cached;
    const outcome = this.fresh(command, requestKey);
    this.answers.set(requestKey, outcome);
    return outcome;
  }

  /** refusal: a token that is no longer any credential's is unauthorized; one whose role is too low, forbidden. */
  private refusal(credentialIndex: number | undefined, needed: Role): Outcome | undefined {
    if (credentialIndex === undefined) return undefined;
    const credential = [...this.credentials.values()].find((each) => each.issuedIndex === credentialIndex);
    if (credential === undefined) return { status: "rejected", code: "unauthorized" };
    return roleIncludes(credential.role, needed) ? undefined : { status: "rejected", code: "forbidden" };
  }

  private credential(command: Extract<LockCommand, { type: "credential_create" | "credential_rotate" | "credential_revoke" }>): Outcome {
    const existing = this.credentials.get(command.name);
    const hashTaken = (hash: string) => [...this.credentials.values()].some((each) => each.tokenHash === hash);
    if (command.type === "credential_create") {
      if (existing !== undefined || hashTaken(command.tokenHash)) return { status: "rejected", code: "credential_exists" };
      this.credentials.set(command.name, {
        name: command.name,
        role: command.role,
        tokenHash: command.tokenHash,
        createdIndex: this.index,
        issuedIndex: this.index,
      });
      return { status: "credential_issued", name: command.name, role: command.role, token: this.index };
    }
    if (existing === undefined) return { status: "rejected", code: "unknown_credential" };
    if (command.type === "credential_rotate" && hashTaken(command.tokenHash)) return { status: "rejected", code: "credential_exists" };
    this.retire(existing.issuedIndex);
    if (command.type === "credential_revoke") {
      this.credentials.delete(command.name);
      this.wake();
      return { status: "credential_revoked", name: command.name, token: this.index };
    }
    this.credentials.set(command.name, { ...existing, tokenHash: command.tokenHash, issuedIndex: this.index });
    this.wake();
    return { status: "credential_issued", name: command.name, role: existing.role, token: this.index };
  }

  /** retire: a token that stops working ends the waits queued under it (answered unauthorized). */
  private retire(issuedIndex: number): void {
    this.retiredIndexes.push(issuedIndex);
    for (const waiter of this.waiters) {
      if (waiter.credentialIndex === issuedIndex) this.answers.set(waiter.requestKey, { status: "rejected", code: "unauthorized" });
    }
    this.waiters = this.waiters.filter((waiter) => waiter.credentialIndex !== issuedIndex);
  }

  private fresh(command: Extract<LockCommand, { type: "acquire" | "renew" | "release" | "txn" }>, requestKey: string): Outcome {
    switch (command.type) {
      case "acquire": {
        const wanted = [...command.resources].sort();
        const reserved = new Set(this.waiters.flatMap((waiter) => waiter.resources));
        if (wanted.every((resource) => !this.holders.has(resource) && !reserved.has(resource))) {
          this.grant(wanted, command.owner);
          return { status: "granted", token: this.index };
        }
        if (command.waitMs === 0) return { status: "rejected", code: "conflict" };
        this.waiters.push({
          id: this.index,
          resources: wanted,
          owner: command.owner,
          requestKey,
          credentialIndex: command.credentialIndex,
        });
        return { status: "queued", token: this.index };
      }
      case "renew":
      case "release": {
        if (!this.allHeld(command.leases)) return { status: "rejected", code: "not_held" };
        for (const ref of command.leases) {
          const holder = this.holders.get(ref.resource) as { token: number; owner: string; version: number };
          if (command.type === "renew") holder.version++;
          else this.holders.delete(ref.resource);
        }
        if (command.type === "release") this.wake();
        return { status: command.type === "renew" ? "renewed" : "released" };
      }
      case "txn": {
        const writes = command.operations.flatMap((operation) => (operation.op === "append" ? [] : [operation.key]));
        const chains = command.operations.flatMap((operation) => (operation.op === "append" ? [operation.chain] : []));
        if (new Set(writes).size !== writes.length || new Set(chains).size !== chains.length) {
          return { status: "rejected", code: "invalid_command" };
        }
        if (writes.some((key) => key.startsWith("~chain/"))) return { status: "rejected", code: "invalid_command" };
        if (new Set(command.guards.map((guard) => guard.resource)).size !== command.guards.length) {
          return { status: "rejected", code: "invalid_command" };
        }
        if (!this.allHeld(command.guards)) return { status: "rejected", code: "stale_fencing_token" };
        const token = Math.max(...command.guards.map((guard) => guard.token));
        if (writes.some((key) => (this.keys.get(key)?.token ?? 0) > token)) return { status: "rejected", code: "stale_fencing_token" };
        const keys: string[] = [];
        for (const operation of command.operations) {
          if (operation.op === "append") {
            const key = this.append(operation.chain, operation.value);
            this.keys.set(key.key, { value: key.value, token, deleted: false });
            keys.push(key.key);
          } else {
            this.keys.set(operation.key, {
              value: operation.op === "put" ? operation.value : "",
              token,
              deleted: operation.op === "delete",
            });
            keys.push(operation.key);
          }
        }
        if (command.releaseGuards === true) {
          for (const guard of command.guards) this.holders.delete(guard.resource);
          this.wake();
        }
        return { status: "committed", keys };
      }
    }
  }

  /** append: the chain's next record, linked to the last one by hash, under a key named by this index. */
  private append(chain: string, record: string): { key: string; value: string } {
    const head = this.chains.get(chain) ?? { seq: 0, hash: "0".repeat(64) };
    const seq = head.seq + 1;
    const hash = bytesToHex(sha256(utf8ToBytes(`${head.hash}\n${seq}\n${this.index}\n${record}`)));
    this.chains.set(chain, { seq, hash });
    const key = `~chain/${chain}/${String(this.index).padStart(16, "0")}`;
    return { key, value: JSON.stringify({ chain, seq, index: this.index, prevHash: head.hash, hash, record }) };
  }

  private allHeld(refs: readonly LeaseRef[]): boolean {
    return refs.every((ref) => this.holders.get(ref.resource)?.token === ref.token);
  }

  private grant(resources: string[], owner: string): void {
    for (const resource of resources) {
      const last = this.lastToken.get(resource) ?? 0;
      if (!(this.index > last)) throw new Error(`token for ${resource} did not rise: ${last} then ${this.index}`);
      this.lastToken.set(resource, this.index);
      this.holders.set(resource, { token: this.index, owner, version: 0 });
    }
  }

  /** wake: scan waiters in FIFO order; an earlier waiter's resources are off limits to later ones. */
  private wake(): void {
    const blocked = new Set<string>();
    const still: ModelWaiter[] = [];
    for (const waiter of this.waiters) {
      if (waiter.resources.some((resource) => this.holders.has(resource) || blocked.has(resource))) {
        for (const resource of waiter.resources) blocked.add(resource);
        still.push(waiter);
      } else {
        this.grant(waiter.resources, waiter.owner);
        this.answers.set(waiter.requestKey, { status: "granted", token: this.index });
      }
    }
    this.waiters = still;
  }

  private expire(resource: string, token: number, version: number): Outcome {
    const holder = this.holders.get(resource);
    if (holder === undefined || holder.token !== token || holder.version !== version) return { status: "no_op" };
    this.holders.delete(resource);
    this.wake();
    return { status: "expired" };
  }

  private cancel(waiterId: number): Outcome {
    const waiter = this.waiters.find((candidate) => candidate.id === waiterId);
    if (waiter === undefined) return { status: "no_op" };
    this.waiters = this.waiters.filter((candidate) => candidate !== waiter);
    this.answers.set(waiter.requestKey, { status: "rejected", code: "wait_timeout" });
    this.wake();
    return { status: "no_op" };
  }
}

/** MachineClass is the real state machine's constructor and restore, so mutants can stand in for it. */
export interface MachineClass {
  new (limits?: LockLimits): LockStateMachine;
  restore(snapshot: ReturnType<LockStateMachine["snapshot"]>, limits?: LockLimits): LockStateMachine;
}

interface Real {
  machine: LockStateMachine;
  readonly machineClass: MachineClass;
}

/** TokenChoice picks, at run time, the token a command names: the current one, an older one, or nonsense. */
type TokenChoice = "current" | "older" | "bogus";

function pickToken(model: ModelLocks, resource: string, choice: TokenChoice): number {
  const current = model.holders.get(resource)?.token;
  if (choice === "current" && current !== undefined) return current;
  if (choice === "older") return Math.max(1, (current ?? model.index) - 1);
  return model.index + 1000;
}

function compare(model: ModelLocks, real: Real, command: LockCommand): void {
  const expected = model.apply(command);
  const actual = outcomeOf(real.machine.apply(model.index, command).result);
  expect(actual, `${JSON.stringify(command)}`).toEqual(expected);
  for (const resource of resourceNames) {
    const lease = real.machine.lease(resource);
    const holder = model.holders.get(resource);
    expect(lease === undefined ? undefined : { token: lease.token, owner: lease.owner, version: lease.version }).toEqual(holder);
  }
  expect(real.machine.waitersNow().map((waiter) => waiter.waiterId)).toEqual(model.waiters.map((waiter) => waiter.id));
  for (const key of keyNames) {
    const stored = model.keys.get(key);
    const expectedValue = stored === undefined || stored.deleted ? undefined : { value: stored.value, token: stored.token };
    const value = real.machine.get(key);
    expect(value === undefined ? undefined : { value: value.value, token: value.token }).toEqual(expectedValue);
  }
  const chainRecords = [...model.keys].filter(([key]) => key.startsWith("~chain/")).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const stored = real.machine.range("~chain/", 10_000).items;
  expect(stored.map((item) => [item.key, item.value.value])).toEqual(chainRecords.map(([key, entry]) => [key, entry.value]));
  for (const chain of chainNames) expect(real.machine.chainHead(chain)).toEqual(model.chains.get(chain));
  const credentials = [...model.credentials.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  expect(real.machine.credentialList()).toEqual(credentials);
  for (const credential of credentials) expect(real.machine.credentialByTokenHash(credential.tokenHash)?.name).toBe(credential.name);
}

/** AuthChoice picks, at run time, the token a command is sent with: the bootstrap one, a credential's current one, or a retired one. */
type AuthChoice =
  | { readonly kind: "bootstrap" }
  | { readonly kind: "current"; readonly pick: number }
  | { readonly kind: "retired"; readonly pick: number };

function credentialIndexFor(model: ModelLocks, choice: AuthChoice): number | undefined {
  if (choice.kind === "bootstrap") return undefined;
  const pool = choice.kind === "current" ? [...model.credentials.values()].map((each) => each.issuedIndex) : model.retiredIndexes;
  return pool.length === 0 ? undefined : pool[choice.pick % pool.length];
}

/** withAuth sends a command with the chosen token (none: the bootstrap admin token). */
function withAuth<Command extends LockCommand>(model: ModelLocks, choice: AuthChoice, command: Command): Command {
  const credentialIndex = credentialIndexFor(model, choice);
  return credentialIndex === undefined ? command : { ...command, credentialIndex };
}

class SessionCommand implements fc.Command<ModelLocks, Real> {
  private readonly clientId: string;
  private readonly build: (model: ModelLocks, session: { clientId: string; sequence: number }) => LockCommand;
  private readonly label: string;
  private readonly auth: AuthChoice;
  constructor(
    clientId: string,
    build: (model: ModelLocks, session: { clientId: string; sequence: number }) => LockCommand,
    label: string,
    auth: AuthChoice,
  ) {
    this.clientId = clientId;
    this.build = build;
    this.label = label;
    this.auth = auth;
  }
  check(): boolean {
    return true;
  }
  run(model: ModelLocks, real: Real): void {
    const command = withAuth(model, this.auth, this.build(model, { clientId: this.clientId, sequence: model.sequenceFor(this.clientId) }));
    model.issued.push(command);
    compare(model, real, command);
  }
  toString(): string {
    return `${this.clientId} ${this.label} as ${this.auth.kind}${"pick" in this.auth ? ` #${this.auth.pick}` : ""}`;
  }
}

class LeaderCommand implements fc.Command<ModelLocks, Real> {
  private readonly build: (model: ModelLocks) => LockCommand;
  private readonly label: string;
  constructor(build: (model: ModelLocks) => LockCommand, label: string) {
    this.build = build;
    this.label = label;
  }
  check(): boolean {
    return true;
  }
  run(model: ModelLocks, real: Real): void {
    compare(model, real, this.build(model));
  }
  toString(): string {
    return this.label;
  }
}

class RetryCommand implements fc.Command<ModelLocks, Real> {
  private readonly pick: number;
  constructor(pick: number) {
    this.pick = pick;
  }
  check(model: Readonly<ModelLocks>): boolean {
    return model.issued.length > 0;
  }
  run(model: ModelLocks, real: Real): void {
    const command = model.issued[this.pick % model.issued.length] as LockCommand;
    const before = real.machine.snapshot();
    compare(model, real, command);
    // A retry acts at most once: it changes nothing but the applied index.
    expect({ ...real.machine.snapshot(), appliedIndex: 0 }).toEqual({ ...before, appliedIndex: 0 });
  }
  toString(): string {
    return `retry #${this.pick}`;
  }
}

class SnapshotRestoreCommand implements fc.Command<ModelLocks, Real> {
  check(): boolean {
    return true;
  }
  run(_model: ModelLocks, real: Real): void {
    const snapshot = real.machine.snapshot();
    real.machine = real.machineClass.restore(JSON.parse(JSON.stringify(snapshot)), limits);
    expect(real.machine.snapshot()).toEqual(snapshot);
  }
  toString(): string {
    return "snapshot+restore";
  }
}

const resource = fc.constantFrom(...resourceNames);
/** auth: mostly the bootstrap token, as most of the machine's rules have nothing to do with credentials. */
const auth: fc.Arbitrary<AuthChoice> = fc.oneof(
  { arbitrary: fc.constant({ kind: "bootstrap" as const }), weight: 3 },
  { arbitrary: fc.nat({ max: 10 }).map((pick) => ({ kind: "current" as const, pick })), weight: 2 },
  { arbitrary: fc.nat({ max: 10 }).map((pick) => ({ kind: "retired" as const, pick })), weight: 1 },
);
const client = fc.constantFrom(...clientIds);
const tokenChoice = fc.constantFrom<TokenChoice>("current", "current", "older", "bogus");

const commandArbitraries = [
  fc
    .record({ client, resources: fc.uniqueArray(resource, { minLength: 1, maxLength: 3 }), wait: fc.boolean(), auth })
    .map(
      ({ client: clientId, resources, wait, auth: as }) =>
        new SessionCommand(
          clientId,
          (_model, session) => ({ type: "acquire", session, resources, owner: clientId, ttlMs: 5000, waitMs: wait ? 1000 : 0 }),
          `acquire ${resources.join(",")}${wait ? " wait" : ""}`,
          as,
        ),
    ),
  fc.record({ client, resource, choice: tokenChoice, renew: fc.boolean(), auth }).map(
    ({ client: clientId, resource: name, choice, renew, auth: as }) =>
      new SessionCommand(
        clientId,
        (model, session) => ({
          type: renew ? "renew" : "release",
          session,
          leases: [{ resource: name, token: pickToken(model, name, choice) }],
        }),
        `${renew ? "renew" : "release"} ${name} (${choice})`,
        as,
      ),
  ),
  fc
    .record({
      client,
      resource,
      choice: tokenChoice,
      keys: fc.uniqueArray(fc.constantFrom(...keyNames), { minLength: 1 }),
      del: fc.boolean(),
      auth,
    })
    .map(
      ({ client: clientId, resource: name, choice, keys, del, auth: as }) =>
        new SessionCommand(
          clientId,
          (model, session) => ({
            type: "txn",
            session,
            guards: [{ resource: name, token: pickToken(model, name, choice) }],
            operations: keys.map(
              (key): TxnOperation => (del ? { op: "delete", key } : { op: "put", key, value: `${clientId}@${model.index + 1}` }),
            ),
          }),
          `txn ${name} (${choice}) ${del ? "delete" : "put"} ${keys.join(",")}`,
          as,
        ),
    ),
  fc
    .record({
      client,
      resource,
      choice: tokenChoice,
      releaseGuards: fc.boolean(),
      writes: fc.array(
        fc.oneof(
          { arbitrary: fc.record({ op: fc.constantFrom("put", "delete"), key: fc.constantFrom(...keyNames) }), weight: 2 },
          { arbitrary: fc.record({ op: fc.constant("append"), chain: fc.constantFrom(...chainNames) }), weight: 3 },
          { arbitrary: fc.record({ op: fc.constantFrom("put", "delete"), key: fc.constant(forbiddenKey) }), weight: 1 },
        ),
        { minLength: 1, maxLength: 3 },
      ),
      auth,
    })
    .map(
      ({ client: clientId, resource: name, choice, writes, releaseGuards, auth: as }) =>
        new SessionCommand(
          clientId,
          (model, session) => ({
            type: "txn",
            session,
            guards: [{ resource: name, token: pickToken(model, name, choice) }],
            operations: writes.map((write): TxnOperation => {
              const value = `${clientId}@${model.index + 1}`;
              if (write.op === "append") return { op: "append", chain: write.chain, value };
              return write.op === "put" ? { op: "put", key: write.key, value } : { op: "delete", key: write.key };
            }),
            ...(releaseGuards ? { releaseGuards: true } : {}),
          }),
          `txn ${name} (${choice}) ${writes.map((write) => ("chain" in write ? `append ${write.chain}` : `${write.op} ${write.key}`)).join(", ")}${releaseGuards ? " and release" : ""}`,
          as,
        ),
    ),
  fc.record({ resource, choice: tokenChoice, stale: fc.boolean() }).map(
    ({ resource: name, choice, stale }) =>
      new LeaderCommand(
        (model) => {
          const version = model.holders.get(name)?.version ?? 0;
          return { type: "expire", resource: name, token: pickToken(model, name, choice), version: stale ? version - 1 : version };
        },
        `expire ${name} (${choice}${stale ? ", old version" : ""})`,
      ),
  ),
  fc
    .nat({ max: 20 })
    .map(
      (pick) =>
        new LeaderCommand(
          (model) => ({ type: "cancel_wait", waiterId: model.waiters[pick % Math.max(1, model.waiters.length)]?.id ?? 1 }),
          `cancel_wait #${pick}`,
        ),
    ),
  fc
    .record({
      action: fc.constantFrom("credential_create", "credential_create", "credential_rotate", "credential_revoke"),
      name: fc.constantFrom(...credentialNames),
      role: fc.constantFrom(...roles),
      hash: fc.constantFrom(...tokenHashes),
      auth,
    })
    .map(
      ({ action, name, role, hash, auth: as }) =>
        new LeaderCommand(
          (model) => {
            if (action === "credential_create") return withAuth(model, as, { type: action, name, role, tokenHash: hash });
            if (action === "credential_rotate") return withAuth(model, as, { type: action, name, tokenHash: hash });
            return withAuth(model, as, { type: action, name });
          },
          `${action} ${name}${action === "credential_create" ? ` ${role}` : ""} as ${as.kind}`,
        ),
    ),
  fc.nat({ max: 1000 }).map((pick) => new RetryCommand(pick)),
  fc.constant(new SnapshotRestoreCommand()),
];

/** checkAgainstModel runs `numRuns` random command sequences against `machineClass` and the model; throws on the first disagreement. */
export function checkAgainstModel(machineClass: MachineClass, numRuns: number, seed: number): void {
  fc.assert(
    fc.property(fc.commands(commandArbitraries, { maxCommands: 60, size: "max" }), (sequence) => {
      fc.modelRun(() => ({ model: new ModelLocks(), real: { machine: new machineClass(limits), machineClass } }), sequence);
    }),
    { numRuns, seed },
  );
}
