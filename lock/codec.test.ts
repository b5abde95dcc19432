// Shows that a lock command is checked against its one schema (protocol/commands.ts) wherever it
// is encoded or decoded: the leader's gate refuses what no follower could read, a follower's frame
// check says why an entry is unreadable, and applying a committed entry that is not a valid
// command is a broken invariant (LockInvariantError), never a silent skip. Every command the
// production paths build round-trips.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { nameLengthMax, valueLengthMax } from "../protocol/limits.ts";
import { LockInvariantError } from "./assert.ts";
import {
  checkCommandBytes,
  decodeCommand,
  decodeLockSnapshot,
  encodeCheckedCommand,
  encodeCommand,
  encodeLockSnapshot,
  encodeLockSnapshotInSlices,
} from "./codec.ts";
import { LockStateMachine } from "./lock-state-machine.ts";
import type { LockCommand } from "./types.ts";

const valid: readonly LockCommand[] = [
  { type: "acquire", resources: ["a", "b"], owner: "alice", ttlMs: 5000, waitMs: 0 },
  {
    type: "acquire",
    session: { clientId: "c1", sequence: 3 },
    resources: ["a"],
    owner: "alice",
    ttlMs: 5000,
    waitMs: 100,
    reads: [
      { prefix: "day/", limit: 10 },
      { prefix: "", after: "x", limit: 1 },
    ],
  },
  { type: "renew", leases: [{ resource: "a", token: 7 }] },
  { type: "release", session: { clientId: "c1", sequence: 4 }, leases: [{ resource: "a", token: 7 }] },
  {
    type: "txn",
    guards: [{ resource: "a", token: 7 }],
    operations: [
      { op: "put", key: "k", value: "v" },
      { op: "delete", key: "k2" },
      { op: "append", chain: "audit", value: "r" },
    ],
    releaseGuards: true,
  },
  { type: "expire", resource: "a", token: 7, version: 0 },
  { type: "cancel_wait", waiterId: 12 },
];

const invalid: readonly [string, unknown][] = [
  [
    "a resource longer than the wire limit",
    { type: "acquire", resources: ["r".repeat(nameLengthMax + 1)], owner: "o", ttlMs: 1, waitMs: 0 },
  ],
  ["no resources", { type: "acquire", resources: [], owner: "o", ttlMs: 1, waitMs: 0 }],
  ["a fractional TTL", { type: "acquire", resources: ["r"], owner: "o", ttlMs: 1.5, waitMs: 0 }],
  ["an unknown field", { type: "renew", leases: [{ resource: "a", token: 1 }], extra: 1 }],
  ["a token that is not a positive integer", { type: "release", leases: [{ resource: "a", token: 0 }] }],
  [
    "a value over the limit",
    { type: "txn", guards: [{ resource: "a", token: 1 }], operations: [{ op: "put", key: "k", value: "v".repeat(valueLengthMax + 1) }] },
  ],
  [
    "a bad chain name",
    { type: "txn", guards: [{ resource: "a", token: 1 }], operations: [{ op: "append", chain: "Bad/Name", value: "v" }] },
  ],
  ["an unknown command", { type: "steal", resource: "a" }],
  ["a session without its sequence", { type: "renew", session: { clientId: "c" }, leases: [{ resource: "a", token: 1 }] }],
];

const bytesOf = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

describe("the lock command codec checks every command against its one schema", () => {
  it("round-trips every kind of valid command, through the leader's gate and through a frame", () => {
    for (const command of valid) {
      const encoded = encodeCheckedCommand(command);
      expect(encoded.ok, command.type).toBe(true);
      if (!encoded.ok) continue;
      expect(decodeCommand(encoded.data, 1)).toEqual(command);
      const fresh = encodeCommand(command); // as a follower receives it: bytes it has not seen
      expect(checkCommandBytes(fresh)).toBeUndefined();
      expect(decodeCommand(fresh, 1)).toEqual(command);
      expect(decodeCommand(encodeCommand(command), 1)).toEqual(command); // as read back from disk
    }
  });

  it.each(invalid)("the leader's gate refuses %s, and a follower's frame check says why", (_what, value) => {
    const encoded = encodeCheckedCommand(value as LockCommand);
    expect(encoded.ok).toBe(false);
    expect(checkCommandBytes(bytesOf(value))).toEqual(expect.any(String));
  });

  it("a follower's frame check refuses bytes that are not UTF-8 JSON", () => {
    expect(checkCommandBytes(new Uint8Array([0xff, 0xfe]))).toMatch(/not UTF-8 JSON/);
    expect(checkCommandBytes(new TextEncoder().encode("{not json"))).toMatch(/not UTF-8 JSON/);
    expect(checkCommandBytes(new Uint8Array(0))).toMatch(/not UTF-8 JSON/);
  });

  it("applying a committed entry that holds no valid command is a broken invariant, naming the index", () => {
    for (const [, value] of invalid) {
      expect(() => decodeCommand(bytesOf(value), 42)).toThrow(LockInvariantError);
    }
    expect(() => decodeCommand(new Uint8Array([0xff]), 42)).toThrow(/index 42 holds no valid lock command: not UTF-8 JSON/);
  });

  it("never throws in the frame check, whatever the bytes (fuzz)", () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.jsonValue().map(bytesOf)), (bytes) => {
        const problem = checkCommandBytes(bytes);
        expect(problem === undefined || typeof problem === "string").toBe(true);
      }),
      { numRuns: 500, seed: 14 },
    );
  });
});

describe("the lock state snapshot, encoded in slices for a compaction (issue 17)", () => {
  /** stateWithBookings: a machine holding `count` bookings' keys, their audit records and a session. */
  function stateWithBookings(count: number): LockStateMachine {
    const machine = new LockStateMachine();
    machine.apply(1, { type: "acquire", resources: ["slot"], owner: "alice", ttlMs: 5000, waitMs: 0 });
    for (let booking = 0; booking < count; booking++) {
      machine.apply(2 + booking, {
        type: "txn",
        session: { clientId: "scheduler-1", sequence: booking + 1 },
        guards: [{ resource: "slot", token: 1 }],
        operations: [
          { op: "put", key: `booking/${booking}`, value: JSON.stringify({ title: `observation "${booking}" of Hale–Bopp ☄`, booking }) },
          { op: "append", chain: "audit", value: `created ${booking}` },
        ],
      });
    }
    return machine;
  }

  it("makes the bytes of the whole encoding, taking one slice of keys per next(), by their size", () => {
    const decoder = new TextDecoder();
    for (const machine of [new LockStateMachine(), stateWithBookings(25)]) {
      const captured = machine.snapshot();
      const whole = decoder.decode(encodeLockSnapshot(captured));
      for (const sliceChars of [1, 100, 250, 1000, 10_000_000]) {
        const slices = encodeLockSnapshotInSlices(captured, sliceChars);
        let nexts = 1;
        let next = slices.next();
        for (; next.done !== true && nexts <= captured.keys.length; nexts++) next = slices.next();
        expect(next.done, `${sliceChars} characters a slice`).toBe(true);
        expect(decoder.decode(next.value as Uint8Array), `${sliceChars} characters a slice`).toBe(whole);
        // A slice holds at least one key; one character a slice is a key a slice, ten million the whole state.
        if (sliceChars === 1) expect(nexts).toBe(Math.max(1, captured.keys.length));
        if (sliceChars === 10_000_000) expect(nexts).toBe(1);
        if (sliceChars === 250 && captured.keys.length > 0) expect(nexts).toBeGreaterThan(2);
      }
      expect(LockStateMachine.restore(decodeLockSnapshot(encodeLockSnapshot(captured))).snapshot()).toEqual(captured);
    }
  });
});
