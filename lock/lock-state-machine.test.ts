// The lock state machine's rules, one example each: grants carry the entry's index as fencing
// token, conflicts name the holder, waiters are served FIFO and atomically, a wrong token never
// releases anything, expiry is guarded by the lease's version, transactions are fenced (per lease
// and per key), hash chains are appended to by txns alone and link every record to the one before,
// sessions make every command exactly-once, a snapshot restores everything, and credentials
// decide who may do what: a reader cannot lock, and a revoked or rotated token does nothing from
// the revoking entry on.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type ChainRecord, chainGenesisHash, verifyChain } from "../protocol/chain.ts";
import { LockStateMachine, lockLimitsDefaults } from "./lock-state-machine.ts";
import type { LockCommand, LockResult, Session, TxnOperation } from "./types.ts";

class Harness {
  readonly machine: LockStateMachine;
  index = 10;
  private readonly sequences = new Map<string, number>();
  constructor(machine = new LockStateMachine()) {
    this.machine = machine;
  }
  session(clientId: string): Session {
    const sequence = (this.sequences.get(clientId) ?? 0) + 1;
    this.sequences.set(clientId, sequence);
    return { clientId, sequence };
  }
  apply(command: LockCommand) {
    this.index++;
    return this.machine.apply(this.index, command);
  }
  acquire(clientId: string, resources: string[], options: { waitMs?: number; ttlMs?: number } = {}): LockResult {
    return this.apply({
      type: "acquire",
      session: this.session(clientId),
      resources,
      owner: clientId,
      ttlMs: options.ttlMs ?? 5000,
      waitMs: options.waitMs ?? 0,
    }).result;
  }
}

/** chainOf reads a chain's records back from the store, in key order (which is record order). */
function chainOf(machine: LockStateMachine, chain: string): ChainRecord[] {
  return machine.range(`~chain/${chain}/`, 1000).items.map((item) => JSON.parse(item.value.value) as ChainRecord);
}

function tokenOf(result: LockResult): number {
  if (result.status !== "granted") throw new Error(`expected a grant, got ${JSON.stringify(result)}`);
  return result.token;
}

describe("leases", () => {
  it("grants a free resource with the granting entry's index as fencing token", () => {
    const h = new Harness();
    const result = h.acquire("alice", ["slot-1"]);
    expect(result).toEqual({ status: "granted", token: 11, resources: ["slot-1"], owner: "alice", ttlMs: 5000 });
    expect(h.machine.lease("slot-1")).toMatchObject({ token: 11, owner: "alice", version: 0 });
  });

  it("answers conflict with the holder's token when held and the caller does not wait", () => {
    const h = new Harness();
    h.acquire("alice", ["slot-1"]);
    const result = h.acquire("bob", ["slot-1"]);
    expect(result).toMatchObject({ status: "rejected", code: "conflict", holder: { resource: "slot-1", token: 11, owner: "alice" } });
  });

  it("grants several resources atomically: all or none", () => {
    const h = new Harness();
    h.acquire("alice", ["b"]);
    expect(h.acquire("bob", ["a", "b", "c"])).toMatchObject({ status: "rejected", code: "conflict" });
    expect(h.machine.lease("a")).toBeUndefined();
    expect(h.machine.lease("c")).toBeUndefined();
    const granted = h.acquire("carol", ["c", "a"]);
    expect(granted).toMatchObject({ status: "granted", resources: ["a", "c"] });
  });

  it("a release with a wrong token releases nothing, not even the resources it names correctly", () => {
    const h = new Harness();
    const ab = tokenOf(h.acquire("alice", ["a", "b"]));
    const result = h.apply({
      type: "release",
      session: h.session("alice"),
      leases: [
        { resource: "a", token: ab },
        { resource: "b", token: ab - 1 },
      ],
    }).result;
    expect(result).toMatchObject({ status: "rejected", code: "not_held" });
    expect(h.machine.lease("a")?.token).toBe(ab);
    expect(h.machine.lease("b")?.token).toBe(ab);
  });

  it("tokens rise strictly with every grant of a resource", () => {
    const h = new Harness();
    const tokens: number[] = [];
    for (let round = 0; round < 5; round++) {
      const token = tokenOf(h.acquire(`client-${round}`, ["slot"]));
      tokens.push(token);
      h.apply({ type: "release", session: h.session(`client-${round}`), leases: [{ resource: "slot", token }] });
    }
    for (let position = 1; position < tokens.length; position++) expect(tokens[position]).toBeGreaterThan(tokens[position - 1] as number);
  });

  it("renewal bumps the version, so an expiry proposed before it is a no-op", () => {
    const h = new Harness();
    const token = tokenOf(h.acquire("alice", ["slot"]));
    h.apply({ type: "renew", session: h.session("alice"), leases: [{ resource: "slot", token }] });
    expect(h.apply({ type: "expire", resource: "slot", token, version: 0 }).result.status).toBe("no_op");
    expect(h.machine.lease("slot")?.version).toBe(1);
    const expired = h.apply({ type: "expire", resource: "slot", token, version: 1 });
    expect(expired.result.status).toBe("expired");
    expect(expired.events).toEqual([{ type: "expired", index: h.index, resource: "slot", token }]);
    expect(h.machine.lease("slot")).toBeUndefined();
  });

  it("an expiry of an older lease never touches the current one", () => {
    const h = new Harness();
    const first = tokenOf(h.acquire("alice", ["slot"]));
    h.apply({ type: "expire", resource: "slot", token: first, version: 0 });
    const second = tokenOf(h.acquire("bob", ["slot"]));
    expect(h.apply({ type: "expire", resource: "slot", token: first, version: 0 }).result.status).toBe("no_op");
    expect(h.machine.lease("slot")?.token).toBe(second);
  });

  it("refuses TTLs outside the configured bounds and other malformed commands", () => {
    const h = new Harness();
    expect(h.acquire("alice", ["slot"], { ttlMs: lockLimitsDefaults.ttlMsMin - 1 })).toMatchObject({ code: "invalid_command" });
    expect(h.acquire("alice", [])).toMatchObject({ code: "invalid_command" });
    expect(h.acquire("alice", ["a", "a"])).toMatchObject({ code: "invalid_command" });
    expect(h.acquire("alice", ["x".repeat(lockLimitsDefaults.nameLengthMax + 1)])).toMatchObject({ code: "invalid_command" });
    expect(h.machine.leases()).toEqual([]);
  });
});

describe("waiters", () => {
  it("queues FIFO and grants in order, with the freeing entry's index as token", () => {
    const h = new Harness();
    const held = tokenOf(h.acquire("alice", ["slot"]));
    expect(h.acquire("bob", ["slot"], { waitMs: 1000 })).toEqual({ status: "queued", waiterId: 12 });
    expect(h.acquire("carol", ["slot"], { waitMs: 1000 })).toEqual({ status: "queued", waiterId: 13 });
    const released = h.apply({ type: "release", session: h.session("alice"), leases: [{ resource: "slot", token: held }] });
    expect(released.resolvedWaiters).toEqual([
      {
        session: { clientId: "bob", sequence: 1 },
        waiterId: 12,
        result: { status: "granted", token: 14, resources: ["slot"], owner: "bob", ttlMs: 5000 },
      },
    ]);
    expect(h.machine.lease("slot")).toMatchObject({ owner: "bob", token: 14 });
    expect(h.machine.waitersNow().map((waiter) => waiter.owner)).toEqual(["carol"]);
  });

  it("an earlier waiter reserves its resources: a later one is not let through ahead of it", () => {
    const h = new Harness();
    const a = tokenOf(h.acquire("alice", ["a"]));
    h.acquire("bob", ["a", "b"], { waitMs: 1000 }); // Waits for a; reserves b too.
    expect(h.acquire("carol", ["b"])).toMatchObject({ status: "rejected", code: "conflict" });
    h.acquire("dave", ["b"], { waitMs: 1000 });
    h.apply({ type: "release", session: h.session("alice"), leases: [{ resource: "a", token: a }] });
    expect(h.machine.lease("a")?.owner).toBe("bob");
    expect(h.machine.lease("b")?.owner).toBe("bob");
    expect(h.machine.waitersNow().map((waiter) => waiter.owner)).toEqual(["dave"]);
  });

  it("a cancelled wait answers wait_timeout and lets later waiters go ahead", () => {
    const h = new Harness();
    h.acquire("alice", ["a"]);
    h.acquire("bob", ["a", "b"], { waitMs: 1000 });
    h.acquire("carol", ["b"], { waitMs: 1000 });
    const cancelled = h.apply({ type: "cancel_wait", waiterId: 12 });
    expect(cancelled.resolvedWaiters[0]?.result).toMatchObject({ status: "rejected", code: "wait_timeout" });
    expect(cancelled.resolvedWaiters[1]?.result).toMatchObject({ status: "granted", owner: "carol", token: h.index });
    expect(h.apply({ type: "cancel_wait", waiterId: 12 }).result.status).toBe("no_op");
  });

  it("bounds the wait queue", () => {
    const h = new Harness(new LockStateMachine({ ...lockLimitsDefaults, waitersMax: 2 }));
    h.acquire("alice", ["slot"]);
    h.acquire("b", ["slot"], { waitMs: 1000 });
    h.acquire("c", ["slot"], { waitMs: 1000 });
    expect(h.acquire("d", ["slot"], { waitMs: 1000 })).toMatchObject({ code: "too_many_waiters" });
  });
});

describe("fenced transactions", () => {
  it("writes under the current lease and remembers the token of each key's last write", () => {
    const h = new Harness();
    const token = tokenOf(h.acquire("alice", ["slot"]));
    const result = h.apply({
      type: "txn",
      session: h.session("alice"),
      guards: [{ resource: "slot", token }],
      operations: [
        { op: "put", key: "booking/1", value: "alice" },
        { op: "put", key: "audit/1", value: "created" },
      ],
    });
    expect(result.result).toEqual({ status: "committed", index: h.index, keys: ["booking/1", "audit/1"] });
    expect(h.machine.get("booking/1")).toEqual({ value: "alice", token, modIndex: h.index });
    expect(h.machine.range("booking/", 10).items).toHaveLength(1);
  });

  it("refuses a write under a stale token, writing nothing (the paused-writer case)", () => {
    const h = new Harness();
    const old = tokenOf(h.acquire("alice", ["slot"]));
    h.apply({ type: "expire", resource: "slot", token: old, version: 0 }); // Alice paused past her TTL.
    const fresh = tokenOf(h.acquire("bob", ["slot"]));
    h.apply({
      type: "txn",
      session: h.session("bob"),
      guards: [{ resource: "slot", token: fresh }],
      operations: [{ op: "put", key: "k", value: "bob" }],
    });
    const late = h.apply({
      type: "txn",
      session: h.session("alice"),
      guards: [{ resource: "slot", token: old }],
      operations: [
        { op: "put", key: "k", value: "alice" },
        { op: "put", key: "other", value: "alice" },
      ],
    });
    expect(late.result).toMatchObject({ status: "rejected", code: "stale_fencing_token" });
    expect((late.result as { message: string }).message).toContain("stale fencing token");
    expect(h.machine.get("k")?.value).toBe("bob");
    expect(h.machine.get("other")).toBeUndefined();
  });

  it("a key refuses a write under a lower token than its last one, even through another resource", () => {
    const h = new Harness();
    const low = tokenOf(h.acquire("alice", ["r1"]));
    const high = tokenOf(h.acquire("bob", ["r2"]));
    h.apply({
      type: "txn",
      session: h.session("bob"),
      guards: [{ resource: "r2", token: high }],
      operations: [{ op: "put", key: "k", value: "bob" }],
    });
    const result = h.apply({
      type: "txn",
      session: h.session("alice"),
      guards: [{ resource: "r1", token: low }],
      operations: [{ op: "put", key: "k", value: "alice" }],
    });
    expect(result.result).toMatchObject({ code: "stale_fencing_token" });
  });

  it("a deleted key keeps its token, so a stale writer cannot bring it back", () => {
    const h = new Harness();
    const low = tokenOf(h.acquire("alice", ["r1"]));
    const high = tokenOf(h.acquire("bob", ["r2"]));
    h.apply({
      type: "txn",
      session: h.session("bob"),
      guards: [{ resource: "r2", token: high }],
      operations: [{ op: "delete", key: "k" }],
    });
    expect(h.machine.get("k")).toBeUndefined();
    const result = h.apply({
      type: "txn",
      session: h.session("alice"),
      guards: [{ resource: "r1", token: low }],
      operations: [{ op: "put", key: "k", value: "alice" }],
    });
    expect(result.result).toMatchObject({ code: "stale_fencing_token" });
  });
});

describe("hash chains", () => {
  const txn = (h: Harness, clientId: string, resource: string, token: number, operations: TxnOperation[]) =>
    h.apply({ type: "txn", session: h.session(clientId), guards: [{ resource, token }], operations });

  it("an append stores a record linked to the chain's previous one, and the txn answers its key", () => {
    const h = new Harness();
    const token = tokenOf(h.acquire("alice", ["slot"]));
    const first = txn(h, "alice", "slot", token, [
      { op: "put", key: "booking/42", value: "{}" },
      { op: "append", chain: "audit", value: '{"booking":"42"}' },
    ]);
    const key = "~chain/audit/0000000000000012";
    expect(first.result).toEqual({ status: "committed", index: 12, keys: ["booking/42", key] });
    expect(h.machine.get(key)?.value).toBe(
      '{"chain":"audit","seq":1,"index":12,"prevHash":"' +
        chainGenesisHash +
        '","hash":"c3458dd411d2f516c17488090647a14338989d32bc9d9093de8e25230e40f8da","record":"{\\"booking\\":\\"42\\"}"}',
    );
    expect(first.events).toContainEqual({ type: "key_changed", index: 12, key, deleted: false, token, value: h.machine.get(key)?.value });
    expect(first.events).toContainEqual({ type: "key_changed", index: 12, key: "booking/42", deleted: false, token, value: "{}" });
    expect(h.machine.chainHead("audit")).toEqual({ seq: 1, hash: "c3458dd411d2f516c17488090647a14338989d32bc9d9093de8e25230e40f8da" });
  });

  it("a chain written by several txns, under several leases, verifies: seq counts from 1 and each prevHash is the last hash", () => {
    const h = new Harness();
    const a = tokenOf(h.acquire("alice", ["a"]));
    const b = tokenOf(h.acquire("bob", ["b"]));
    for (let round = 0; round < 3; round++) {
      txn(h, "alice", "a", a, [{ op: "append", chain: "audit", value: `alice ${round}` }]);
      txn(h, "bob", "b", b, [
        { op: "append", chain: "audit", value: `bob ${round}` },
        { op: "append", chain: "other", value: `bob ${round}` },
      ]);
    }
    const records = chainOf(h.machine, "audit");
    expect(records.map((record) => record.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(records[0]?.prevHash).toBe(chainGenesisHash);
    for (let position = 1; position < records.length; position++) {
      expect(records[position]?.prevHash).toBe(records[position - 1]?.hash);
    }
    expect(verifyChain(records)).toEqual({ ok: true, count: 6, headHash: records[5]?.hash });
    expect(verifyChain(chainOf(h.machine, "other"))).toMatchObject({ ok: true, count: 3 });
    expect(h.machine.chainHead("audit")).toEqual({ seq: 6, hash: records[5]?.hash });
  });

  it("verifyChain detects a changed record, a dropped one and a reordering, and continues from a known head", () => {
    const h = new Harness();
    const token = tokenOf(h.acquire("alice", ["slot"]));
    for (let round = 1; round <= 4; round++) txn(h, "alice", "slot", token, [{ op: "append", chain: "audit", value: `record ${round}` }]);
    const records = chainOf(h.machine, "audit");
    const [r1, r2, r3, r4] = records as [ChainRecord, ChainRecord, ChainRecord, ChainRecord];
    expect(verifyChain([r1, { ...r2, record: "forged" }, r3, r4])).toMatchObject({ ok: false, brokenAtSeq: 2 });
    expect(verifyChain([r1, r2, r4])).toMatchObject({ ok: false, brokenAtSeq: 3 });
    expect(verifyChain([r1, r3, r2, r4])).toMatchObject({ ok: false, brokenAtSeq: 2 });
    expect(verifyChain([r2, r3, r4])).toMatchObject({ ok: false, brokenAtSeq: 1 });
    expect(verifyChain([r3, r4], { seq: 2, hash: r2.hash })).toEqual({ ok: true, count: 2, headHash: r4.hash });
    expect(verifyChain([])).toEqual({ ok: true, count: 0, headHash: chainGenesisHash });
  });

  it("refuses put and delete under ~chain/, two appends to one chain in a txn, and bad chain names, writing nothing", () => {
    const h = new Harness();
    const token = tokenOf(h.acquire("alice", ["slot"]));
    txn(h, "alice", "slot", token, [{ op: "append", chain: "audit", value: "real" }]);
    const [record] = chainOf(h.machine, "audit");
    const key = `~chain/audit/${String(record?.index).padStart(16, "0")}`;
    const refusals: TxnOperation[][] = [
      [{ op: "put", key, value: "forged" }],
      [{ op: "delete", key }],
      [{ op: "put", key: "~chain/audit/9999999999999999", value: "forged" }],
      [
        { op: "append", chain: "audit", value: "one" },
        { op: "append", chain: "audit", value: "two" },
      ],
      [{ op: "append", chain: "Audit", value: "x" }],
      [{ op: "append", chain: "", value: "x" }],
      [{ op: "append", chain: "a".repeat(65), value: "x" }],
      [{ op: "append", chain: "a/b", value: "x" }],
    ];
    for (const operations of refusals) {
      expect(txn(h, "alice", "slot", token, operations).result, JSON.stringify(operations)).toMatchObject({ code: "invalid_command" });
    }
    expect(chainOf(h.machine, "audit")).toEqual([record]);
    expect(h.machine.chainHead("audit")?.seq).toBe(1);
  });

  it("a refused txn appends nothing: the chain's head does not move and no record appears", () => {
    const h = new Harness();
    const old = tokenOf(h.acquire("alice", ["slot"]));
    txn(h, "alice", "slot", old, [{ op: "append", chain: "audit", value: "first" }]);
    h.apply({ type: "expire", resource: "slot", token: old, version: 0 });
    const fresh = tokenOf(h.acquire("bob", ["slot"]));
    // A stale guard: refused.
    const stale = txn(h, "alice", "slot", old, [{ op: "append", chain: "audit", value: "late" }]);
    expect(stale.result).toMatchObject({ code: "stale_fencing_token" });
    expect(stale.events).toEqual([]);
    // A current guard, but a key beside the append was last written under a higher token: refused whole.
    const higher = tokenOf(h.acquire("carol", ["other"]));
    txn(h, "carol", "other", higher, [{ op: "put", key: "k", value: "carol" }]);
    const refused = txn(h, "bob", "slot", fresh, [
      { op: "append", chain: "audit", value: "bob" },
      { op: "put", key: "k", value: "bob" },
    ]);
    expect(refused.result).toMatchObject({ code: "stale_fencing_token" });
    expect(chainOf(h.machine, "audit").map((record) => record.record)).toEqual(["first"]);
    expect(h.machine.chainHead("audit")?.seq).toBe(1);
    expect(h.machine.range("~chain/", 100).items).toHaveLength(1);
  });

  it("chain heads survive snapshot and restore, and a snapshot from before chains existed still restores", () => {
    const h = new Harness();
    const token = tokenOf(h.acquire("alice", ["slot"]));
    txn(h, "alice", "slot", token, [{ op: "append", chain: "audit", value: "one" }]);
    txn(h, "alice", "slot", token, [{ op: "append", chain: "audit", value: "two" }]);
    const snapshot = JSON.parse(JSON.stringify(h.machine.snapshot()));
    expect(snapshot.version).toBe(1);
    expect(snapshot.chains).toEqual([["audit", h.machine.chainHead("audit")]]);
    const copy = LockStateMachine.restore(snapshot);
    const append: LockCommand = {
      type: "txn",
      session: h.session("alice"),
      guards: [{ resource: "slot", token }],
      operations: [{ op: "append", chain: "audit", value: "three" }],
    };
    expect(copy.apply(100, append)).toEqual(h.machine.apply(100, append));
    expect(verifyChain(chainOf(copy, "audit"))).toMatchObject({ ok: true, count: 3 });
    const { chains: _chains, ...older } = snapshot;
    const fromOlder = LockStateMachine.restore(older);
    expect(fromOlder.chainHead("audit")).toBeUndefined();
    expect(fromOlder.lease("slot")?.token).toBe(token);
  });
});

describe("sessions", () => {
  it("a retried acquire returns the first answer and grants nothing twice", () => {
    const h = new Harness();
    const command: LockCommand = {
      type: "acquire",
      session: { clientId: "c", sequence: 1 },
      resources: ["slot"],
      owner: "c",
      ttlMs: 5000,
      waitMs: 0,
    };
    const first = h.machine.apply(20, command);
    const retry = h.machine.apply(21, command);
    expect(retry.result).toEqual(first.result);
    expect(retry.events).toEqual([]);
    expect(h.machine.lease("slot")?.token).toBe(20);
  });

  it("a retried queued acquire learns that it was granted meanwhile", () => {
    const h = new Harness();
    const held = tokenOf(h.acquire("alice", ["slot"]));
    const command: LockCommand = {
      type: "acquire",
      session: { clientId: "bob", sequence: 1 },
      resources: ["slot"],
      owner: "bob",
      ttlMs: 5000,
      waitMs: 1000,
    };
    expect(h.machine.apply(20, command).result.status).toBe("queued");
    h.machine.apply(21, { type: "release", session: { clientId: "alice", sequence: 2 }, leases: [{ resource: "slot", token: held }] });
    expect(h.machine.apply(22, command).result).toMatchObject({ status: "granted", token: 21 });
  });

  it("a new session starts at sequence 1; an unknown session beyond it is refused", () => {
    const h = new Harness();
    const result = h.machine.apply(20, {
      type: "acquire",
      session: { clientId: "x", sequence: 7 },
      resources: ["s"],
      owner: "x",
      ttlMs: 5000,
      waitMs: 0,
    });
    expect(result.result).toMatchObject({ code: "session_expired" });
    expect(h.machine.lease("s")).toBeUndefined();
  });

  it("a retry older than the remembered results is refused, never re-executed", () => {
    const limits = { ...lockLimitsDefaults, resultsPerSessionMax: 2 };
    const h = new Harness(new LockStateMachine(limits));
    const acquire = (sequence: number): LockCommand => ({
      type: "acquire",
      session: { clientId: "c", sequence },
      resources: [`r${sequence}`],
      owner: "c",
      ttlMs: 5000,
      waitMs: 0,
    });
    for (let sequence = 1; sequence <= 3; sequence++) h.machine.apply(20 + sequence, acquire(sequence));
    expect(h.machine.apply(30, acquire(1)).result).toMatchObject({ code: "stale_sequence" });
    expect(h.machine.apply(31, acquire(3)).result).toMatchObject({ status: "granted", token: 23 });
  });

  it("evicts the least recently used session beyond sessionsMax", () => {
    const h = new Harness(new LockStateMachine({ ...lockLimitsDefaults, sessionsMax: 2 }));
    h.acquire("a", ["ra"]);
    h.acquire("b", ["rb"]);
    h.acquire("a", ["ra2"]); // a is now the most recent
    h.acquire("c", ["rc"]); // evicts b
    const retryOfB = h.machine.apply(100, {
      type: "acquire",
      session: { clientId: "b", sequence: 2 },
      resources: ["x"],
      owner: "b",
      ttlMs: 5000,
      waitMs: 0,
    });
    expect(retryOfB.result).toMatchObject({ code: "session_expired" });
  });
});

describe("snapshots", () => {
  it("restore(snapshot()) reproduces leases, waiters, keys and sessions, and behaves the same afterwards", () => {
    const h = new Harness();
    const token = tokenOf(h.acquire("alice", ["a", "b"]));
    h.acquire("bob", ["a"], { waitMs: 1000 });
    h.apply({
      type: "txn",
      session: h.session("alice"),
      guards: [{ resource: "a", token }],
      operations: [{ op: "put", key: "k", value: "v" }],
    });
    const copy = LockStateMachine.restore(JSON.parse(JSON.stringify(h.machine.snapshot())));
    expect(copy.snapshot()).toEqual(h.machine.snapshot());
    const release: LockCommand = { type: "release", session: h.session("alice"), leases: [{ resource: "a", token }] };
    expect(copy.apply(100, release)).toEqual(h.machine.apply(100, release));
    expect(copy.snapshot()).toEqual(h.machine.snapshot());
  });

  it("crashes loudly if entries are applied twice or out of order", () => {
    const h = new Harness();
    h.acquire("alice", ["a"]);
    expect(() => h.machine.apply(h.index, { type: "cancel_wait", waiterId: 1 })).toThrow(/applied once, in order/);
  });
});

describe("range reads", () => {
  it("agree with a naive filter-and-sort over random writes, deletes, prefixes, cursors and limits, before and after a snapshot", () => {
    // A small key space, so cursors and prefixes usually name keys that exist.
    const keyArb = fc.stringMatching(/^[ab]\/[a-c]{0,2}$/);
    fc.assert(
      fc.property(
        fc.array(fc.record({ key: keyArb, deleted: fc.boolean() }), { minLength: 1, maxLength: 60 }),
        fc.array(
          fc.record({
            prefix: fc.stringMatching(/^([ab](\/[a-c]{0,2})?)?$/),
            after: fc.option(keyArb),
            limit: fc.integer({ min: 1, max: 8 }),
          }),
          {
            maxLength: 10,
          },
        ),
        (writes, reads) => {
          const machine = new LockStateMachine();
          let index = 1;
          const lease = machine.apply(index, { type: "acquire", resources: ["r"], owner: "o", ttlMs: 5000, waitMs: 0 });
          const token = tokenOf(lease.result);
          const reference = new Map<string, string>();
          for (const write of writes) {
            index += 1;
            const operation: TxnOperation = write.deleted
              ? { op: "delete", key: write.key }
              : { op: "put", key: write.key, value: `v${index}` };
            machine.apply(index, { type: "txn", guards: [{ resource: "r", token }], operations: [operation] });
            if (write.deleted) reference.delete(write.key);
            else reference.set(write.key, `v${index}`);
          }
          const restored = LockStateMachine.restore(machine.snapshot());
          for (const read of reads) {
            const after = read.after ?? "";
            const expected = [...reference.keys()].filter((key) => key.startsWith(read.prefix) && key > after).sort();
            for (const candidate of [machine, restored]) {
              const page = candidate.range(read.prefix, read.limit, after);
              expect(page.items.map((item) => item.key)).toEqual(expected.slice(0, read.limit));
              expect(page.items.map((item) => item.value.value)).toEqual(expected.slice(0, read.limit).map((key) => reference.get(key)));
              expect(page.more).toBe(expected.length > read.limit);
            }
          }
        },
      ),
    );
  });
});

describe("reads with an acquire", () => {
  it("answers the reads as of the granting entry, and not for a refused or queued acquire", () => {
    const machine = new LockStateMachine();
    const first = machine.apply(1, { type: "acquire", resources: ["r"], owner: "o", ttlMs: 5000, waitMs: 0 });
    machine.apply(2, {
      type: "txn",
      guards: [{ resource: "r", token: tokenOf(first.result) }],
      operations: [
        { op: "put", key: "slot/a", value: "1" },
        { op: "put", key: "slot/b", value: "2" },
        { op: "put", key: "slot/c", value: "3" },
      ],
      releaseGuards: true,
    });
    const reads = [
      { prefix: "slot/", after: "slot/a", limit: 1 },
      { prefix: "slot/c", limit: 5 },
      { prefix: "none/", limit: 5 },
    ];
    const granted = machine.apply(3, { type: "acquire", resources: ["r"], owner: "o", ttlMs: 5000, waitMs: 0, reads });
    expect(granted.result).toMatchObject({
      status: "granted",
      reads: [
        { items: [{ key: "slot/b", value: "2", modIndex: 2 }], more: true },
        { items: [{ key: "slot/c", value: "3", modIndex: 2 }], more: false },
        { items: [], more: false },
      ],
    });
    const refused = machine.apply(4, { type: "acquire", resources: ["r"], owner: "p", ttlMs: 5000, waitMs: 0, reads });
    expect(refused.result).toMatchObject({ status: "rejected", code: "conflict" });
    expect(refused.result).not.toHaveProperty("reads");
    const queued = machine.apply(5, { type: "acquire", resources: ["r"], owner: "p", ttlMs: 5000, waitMs: 1000, reads });
    expect(queued.result).toEqual({ status: "queued", waiterId: 5 });
    const small = new LockStateMachine({ ...lockLimitsDefaults, readBytesMax: 20 });
    const lease = small.apply(1, { type: "acquire", resources: ["r"], owner: "o", ttlMs: 5000, waitMs: 0 });
    small.apply(2, {
      type: "txn",
      guards: [{ resource: "r", token: tokenOf(lease.result) }],
      operations: [
        { op: "put", key: "k1", value: "0123456789" },
        { op: "put", key: "k2", value: "0123456789" },
      ],
      releaseGuards: true,
    });
    const cut = small.apply(3, {
      type: "acquire",
      resources: ["r"],
      owner: "o",
      ttlMs: 5000,
      waitMs: 0,
      reads: [{ prefix: "k", limit: 10 }],
    });
    expect(cut.result).toMatchObject({ reads: [{ items: [{ key: "k1" }], more: true }] });
    const tooMany = machine.apply(6, {
      type: "acquire",
      resources: ["x"],
      owner: "p",
      ttlMs: 5000,
      waitMs: 0,
      reads: [...reads, ...reads],
    });
    expect(tooMany.result).toMatchObject({ status: "rejected", code: "invalid_command" });
  });
});

describe("credentials", () => {
  const hashA = "a".repeat(64);
  const hashB = "b".repeat(64);
  const lockUnder = (credentialIndex: number | undefined, resource = "slot-1", waitMs = 0): Extract<LockCommand, { type: "acquire" }> => ({
    type: "acquire",
    resources: [resource],
    owner: "o",
    ttlMs: 5000,
    waitMs,
    ...(credentialIndex === undefined ? {} : { credentialIndex }),
  });

  it("a reader's token cannot lock (forbidden), a locker's can; only an admin's may make credentials", () => {
    const machine = new LockStateMachine();
    expect(machine.apply(1, { type: "credential_create", name: "view", role: "reader", tokenHash: hashA }).result).toEqual({
      status: "credential_issued",
      name: "view",
      role: "reader",
      createdIndex: 1,
      issuedIndex: 1,
    });
    machine.apply(2, { type: "credential_create", name: "svc", role: "locker", tokenHash: hashB });
    expect(machine.apply(3, lockUnder(1)).result).toMatchObject({
      status: "rejected",
      code: "forbidden",
      message: expect.stringContaining("locker"),
    });
    expect(machine.lease("slot-1")).toBeUndefined();
    expect(machine.apply(4, lockUnder(2)).result).toMatchObject({ status: "granted", token: 4 });
    expect(
      machine.apply(5, { type: "credential_create", credentialIndex: 2, name: "x", role: "admin", tokenHash: "c".repeat(64) }).result,
    ).toMatchObject({ status: "rejected", code: "forbidden" });
    expect(machine.credentialByTokenHash(hashA)).toMatchObject({ name: "view", role: "reader" });
    expect(machine.credentialRefusal(1, "reader")).toBeUndefined();
    expect(machine.credentialRefusal(1, "locker")).toMatchObject({ code: "forbidden" });
  });

  it("refuses a name or a token already in use, and a credential it does not have", () => {
    const machine = new LockStateMachine();
    machine.apply(1, { type: "credential_create", name: "svc", role: "locker", tokenHash: hashA });
    expect(machine.apply(2, { type: "credential_create", name: "svc", role: "reader", tokenHash: hashB }).result).toMatchObject({
      code: "credential_exists",
    });
    expect(machine.apply(3, { type: "credential_create", name: "other", role: "reader", tokenHash: hashA }).result).toMatchObject({
      code: "credential_exists",
    });
    expect(machine.apply(4, { type: "credential_revoke", name: "nobody" }).result).toMatchObject({ code: "unknown_credential" });
    const full = new LockStateMachine({ ...lockLimitsDefaults, credentialsMax: 1 });
    full.apply(1, { type: "credential_create", name: "one", role: "reader", tokenHash: hashA });
    expect(full.apply(2, { type: "credential_create", name: "two", role: "reader", tokenHash: hashB }).result).toMatchObject({
      code: "too_many_credentials",
    });
  });

  it("a revoked token does nothing from the revoking entry on, not even a retry's remembered answer", () => {
    const machine = new LockStateMachine();
    machine.apply(1, { type: "credential_create", name: "svc", role: "locker", tokenHash: hashA });
    const session = { clientId: "c", sequence: 1 };
    expect(machine.apply(2, { ...lockUnder(1), session }).result).toMatchObject({ status: "granted" });
    expect(machine.apply(3, { type: "credential_revoke", name: "svc" }).result).toEqual({
      status: "credential_revoked",
      name: "svc",
      index: 3,
    });
    expect(machine.apply(4, { ...lockUnder(1), session }).result).toMatchObject({ status: "rejected", code: "unauthorized" });
    expect(machine.apply(5, { type: "release", credentialIndex: 1, leases: [{ resource: "slot-1", token: 2 }] }).result).toMatchObject({
      code: "unauthorized",
    });
    expect(machine.credentialByTokenHash(hashA)).toBeUndefined();
    expect(machine.credentialList()).toEqual([]);
  });

  it("a rotation retires the old token at once and keeps the name and role; a wait queued under a retired token ends", () => {
    const machine = new LockStateMachine();
    machine.apply(1, { type: "credential_create", name: "svc", role: "locker", tokenHash: hashA });
    machine.apply(2, lockUnder(undefined)); // The bootstrap token holds slot-1.
    const session = { clientId: "w", sequence: 1 };
    expect(machine.apply(3, { ...lockUnder(1, "slot-1", 1000), session }).result).toEqual({ status: "queued", waiterId: 3 });
    const rotated = machine.apply(4, { type: "credential_rotate", name: "svc", tokenHash: hashB });
    expect(rotated.result).toEqual({ status: "credential_issued", name: "svc", role: "locker", createdIndex: 1, issuedIndex: 4 });
    expect(rotated.resolvedWaiters).toEqual([{ session, waiterId: 3, result: expect.objectContaining({ code: "unauthorized" }) }]);
    expect(machine.waitersNow()).toEqual([]);
    expect(machine.apply(5, lockUnder(1, "slot-2")).result).toMatchObject({ code: "unauthorized" });
    expect(machine.apply(6, lockUnder(4, "slot-2")).result).toMatchObject({ status: "granted" });
    // The ended wait's session answers its retry with how it ended.
    expect(machine.apply(7, { ...lockUnder(4, "slot-1", 1000), session }).result).toMatchObject({ code: "unauthorized" });
  });

  it("credentials survive snapshot and restore, and a snapshot from before them restores with none", () => {
    const machine = new LockStateMachine();
    machine.apply(1, { type: "credential_create", name: "svc", role: "locker", tokenHash: hashA });
    machine.apply(2, { type: "credential_rotate", name: "svc", tokenHash: hashB });
    const snapshot = JSON.parse(JSON.stringify(machine.snapshot()));
    const copy = LockStateMachine.restore(snapshot);
    expect(copy.credentialList()).toEqual([{ name: "svc", role: "locker", tokenHash: hashB, createdIndex: 1, issuedIndex: 2 }]);
    expect(copy.credentialRefusal(1, "reader")).toMatchObject({ code: "unauthorized" });
    expect(copy.credentialRefusal(2, "locker")).toBeUndefined();
    const { credentials: _credentials, ...older } = snapshot;
    expect(LockStateMachine.restore(older).credentialList()).toEqual([]);
  });
});
