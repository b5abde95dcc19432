// Shows that the wire codec is exact and safe at the edge: every message type survives a round
// trip bit for bit (binary data included), and arbitrary or mutated bytes never throw but come
// back either as a coded rejection or as a message that re-encodes to itself. Property tests use
// fast-check with fixed run counts, so the file stays fast and every loop is bounded.

import fc from "fast-check";
import { Packr } from "msgpackr";
import { describe, expect, it } from "vitest";
import { nodeIdLengthMax } from "../../protocol/limits.ts";
import type { ConfChange, Entry, NodeId, RaftMessage, Snapshot } from "../../raft/index.ts";
import { nodeId } from "../../raft/index.ts";
import type { FrameLimits } from "./frames.ts";
import { decodeFrame, decodeFrameBySchema, encodeFrame, frameLimitsDefaults } from "./frames.ts";

const limits: FrameLimits = { ...frameLimitsDefaults, frameBytesMax: 64 * 1024, entriesPerFrameMax: 16, membersPerConfStateMax: 8 };
const rawPackr = new Packr({ useRecords: false });

const n1 = nodeId("n1");
const n2 = nodeId("n2");
const header = { from: n1, to: n2, term: 7 };
const zeroes = new Uint8Array([0, 0, 1, 0, 255, 0]);
const snapshot: Snapshot = {
  metadata: { index: 120, term: 6, confState: { voters: [n1, n2, nodeId("n3")], learners: [nodeId("n4")] } },
  data: new Uint8Array([0, 1, 2, 0, 0]),
};

/** examples holds one message of each of the nine types, with every entry kind and change type. */
const examples: readonly RaftMessage[] = [
  { type: "request_vote", ...header, lastLogIndex: 10, lastLogTerm: 6, preVote: true, leadershipTransfer: false },
  { type: "request_vote_result", ...header, preVote: false, voteGranted: true },
  {
    type: "append_entries",
    ...header,
    prevLogIndex: 9,
    prevLogTerm: 6,
    leaderCommit: 8,
    entries: [
      { kind: "normal", term: 7, index: 10, data: zeroes },
      { kind: "normal", term: 7, index: 11, data: new Uint8Array(0) },
      { kind: "noop", term: 7, index: 12 },
      { kind: "conf_change", term: 7, index: 13, change: { type: "add_voter", nodeId: n1 } },
      { kind: "conf_change", term: 7, index: 14, change: { type: "add_learner", nodeId: n2 } },
      { kind: "conf_change", term: 7, index: 15, change: { type: "promote_learner", nodeId: n2 } },
      { kind: "conf_change", term: 7, index: 16, change: { type: "remove_node", nodeId: n1 } },
    ],
  },
  { type: "append_entries", ...header, prevLogIndex: 0, prevLogTerm: 0, leaderCommit: 0, entries: [] },
  { type: "append_entries_result", ...header, success: false, matchIndex: 0, rejectedIndex: 9, hintIndex: 5, hintTerm: 4 },
  { type: "heartbeat", ...header, commitIndex: 12, readContext: 3 },
  { type: "heartbeat_result", ...header, readContext: 0 },
  { type: "install_snapshot", ...header, snapshot },
  {
    type: "install_snapshot",
    ...header,
    snapshot: { metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } }, data: new Uint8Array(0) },
  },
  { type: "install_snapshot_result", ...header, matchIndex: 120 },
  { type: "timeout_now", ...header, term: Number.MAX_SAFE_INTEGER },
];

function roundTrip(message: RaftMessage): RaftMessage {
  const decoded = decodeFrame(encodeFrame(message), limits);
  if (!decoded.ok) throw new Error(`${decoded.code}: ${decoded.reason}`);
  return decoded.message;
}

/** binaryFields lists every Uint8Array a message carries, to check they are plain (not Buffer). */
function binaryFields(message: RaftMessage): Uint8Array[] {
  if (message.type === "install_snapshot") return [message.snapshot.data];
  if (message.type === "append_entries") return message.entries.flatMap((entry) => (entry.kind === "normal" ? [entry.data] : []));
  return [];
}

/** decodeValue encodes an arbitrary value as msgpack (no envelope added) and decodes it as a frame. */
function decodeValue(value: unknown) {
  return decodeFrame(rawPackr.pack(value), limits);
}

describe("round trip", () => {
  it("keeps every message type, entry kind and change type exactly", () => {
    const types = new Set(examples.map((message) => message.type));
    expect(types.size).toBe(9);
    for (const message of examples) {
      const decoded = roundTrip(message);
      expect(decoded).toEqual(message);
      for (const bytes of binaryFields(decoded)) expect(Object.getPrototypeOf(bytes)).toBe(Uint8Array.prototype);
    }
  });

  it("copies binary data out of the frame, so a message does not pin or alias the frame", () => {
    const frame = encodeFrame(examples[2]!);
    const decoded = decodeFrame(frame, limits);
    frame.fill(0xee);
    expect(decoded.ok && decoded.message).toEqual(examples[2]);
  });

  it("holds for arbitrary messages", () => {
    fc.assert(
      fc.property(messageArbitrary, (message) => {
        expect(roundTrip(message)).toEqual(message);
      }),
      { numRuns: 300 },
    );
  });
});

describe("rejections", () => {
  it("rejects a frame over frameBytesMax before decoding it", () => {
    const big: RaftMessage = { type: "install_snapshot", ...header, snapshot: { ...snapshot, data: new Uint8Array(limits.frameBytesMax) } };
    const decoded = decodeFrame(encodeFrame(big), limits);
    expect(decoded).toMatchObject({ ok: false, code: "frame_too_large" });
  });

  it("rejects another envelope version as unsupported_version, and a missing one as malformed", () => {
    expect(decodeValue({ v: 2, message: examples[0] })).toMatchObject({ ok: false, code: "unsupported_version" });
    expect(decodeValue({ v: 0, message: examples[0] })).toMatchObject({ ok: false, code: "unsupported_version" });
    expect(decodeValue({ message: examples[0] })).toMatchObject({ ok: false, code: "malformed_frame" });
    expect(decodeValue({ v: "1", message: examples[0] })).toMatchObject({ ok: false, code: "malformed_frame" });
  });

  it("rejects frames that are not a versioned envelope", () => {
    for (const value of [null, 1, "frame", [1, examples[0]], new Uint8Array(3), { v: 1 }, { v: 1, message: examples[0], extra: 1 }]) {
      expect(decodeValue(value)).toMatchObject({ ok: false, code: "malformed_frame" });
    }
    expect(decodeFrame(new Uint8Array(0), limits)).toMatchObject({ ok: false, code: "malformed_frame" });
    const trailing = new Uint8Array([...encodeFrame(examples[0]!), 0xc0]);
    expect(decodeFrame(trailing, limits)).toMatchObject({ ok: false, code: "malformed_frame" });
  });

  it("rejects every kind of bad field as invalid_message", () => {
    const vote = examples[0]!;
    const appendEntries = examples[2] as Extract<RaftMessage, { type: "append_entries" }>;
    const normal = appendEntries.entries[0]!;
    const bad: unknown[] = [
      "not a map",
      { ...vote, type: "request_votes" },
      { ...vote, type: undefined },
      { ...vote, term: -1 },
      { ...vote, term: 1.5 },
      { ...vote, term: Number.NaN },
      { ...vote, term: Number.POSITIVE_INFINITY },
      { ...vote, term: 2 ** 60 },
      { ...vote, term: "7" },
      { ...vote, preVote: 1 },
      { ...vote, from: "" },
      { ...vote, to: "x".repeat(nodeIdLengthMax + 1) },
      { ...vote, to: "X=vts}1;>(" },
      { ...vote, from: "N1" },
      { ...vote, from: 1 },
      { ...vote, extra: true },
      { type: "request_vote", from: n1, to: n2, term: 1 },
      { ...appendEntries, entries: Array.from({ length: limits.entriesPerFrameMax + 1 }, () => normal) },
      { ...appendEntries, entries: [{ ...normal, data: "bytes" }] },
      { ...appendEntries, entries: [{ ...normal, data: [0, 1] }] },
      { ...appendEntries, entries: [{ ...normal, data: new Date(0) }] },
      { ...appendEntries, entries: [{ ...normal, data: new Set([1]) }] },
      { ...appendEntries, entries: [{ ...normal, kind: "weird" }] },
      { ...appendEntries, entries: [{ kind: "noop", term: 1, index: 1, data: zeroes }] },
      { ...appendEntries, entries: [{ kind: "conf_change", term: 1, index: 1, change: { type: "add_witness", nodeId: n1 } }] },
      { ...appendEntries, entries: [{ kind: "conf_change", term: 1, index: 1, change: { type: "add_voter", nodeId: "" } }] },
      // The issue-14 entry: an id the old admin API let through (200 characters), and a junk one.
      { ...appendEntries, entries: [{ kind: "conf_change", term: 1, index: 1, change: { type: "add_learner", nodeId: "a".repeat(200) } }] },
      { ...appendEntries, entries: [{ kind: "conf_change", term: 1, index: 1, change: { type: "add_learner", nodeId: "X=vts}1;>(" } }] },
      { ...appendEntries, entries: {} },
      { ...examples[7]!, snapshot: { ...snapshot, data: null } },
      { ...examples[7]!, snapshot: { ...snapshot, metadata: { ...snapshot.metadata, confState: { voters: "n1", learners: [] } } } },
      { ...examples[7]!, snapshot: { ...snapshot, metadata: { ...snapshot.metadata, confState: { voters: [n1, 3], learners: [] } } } },
      {
        ...examples[7]!,
        snapshot: { ...snapshot, metadata: { ...snapshot.metadata, confState: { voters: Array(9).fill(n1), learners: [] } } },
      },
      { ...examples[7]!, snapshot: { ...snapshot, metadata: { index: 1, term: 1 } } },
    ];
    for (const message of bad) {
      const decoded = decodeValue({ v: 1, message });
      expect(decoded, JSON.stringify(message)?.slice(0, 120)).toMatchObject({ ok: false, code: "invalid_message" });
    }
  });
});

describe("fuzz: decodeFrame never throws", () => {
  /** checkStable: a frame that decodes must re-encode to a frame that decodes to the same message and the same bytes. */
  function checkStable(bytes: Uint8Array): void {
    const decoded = decodeFrame(bytes, limits);
    if (!decoded.ok) {
      expect(["frame_too_large", "malformed_frame", "unsupported_version", "invalid_message"]).toContain(decoded.code);
      return;
    }
    const again = encodeFrame(decoded.message);
    const redecoded = decodeFrame(again, limits);
    expect(redecoded.ok && redecoded.message).toEqual(decoded.message);
    expect(redecoded.ok && Buffer.from(encodeFrame(redecoded.message)).equals(again)).toBe(true);
  }

  it("on arbitrary bytes", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 512 }), checkStable), { numRuns: 2000 });
  });

  it("on mutated valid frames", () => {
    const mutation = fc.record({
      position: fc.nat(),
      byte: fc.integer({ min: 0, max: 255 }),
      op: fc.constantFrom("flip", "insert", "delete", "truncate"),
    });
    fc.assert(
      fc.property(messageArbitrary, fc.array(mutation, { minLength: 1, maxLength: 4 }), (message, mutations) => {
        let bytes = Array.from(encodeFrame(message));
        for (const { position, byte, op } of mutations) bytes = mutate(bytes, position % (bytes.length + 1), byte, op);
        checkStable(new Uint8Array(bytes));
      }),
      { numRuns: 1000 },
    );
  });

  it("on arbitrary msgpack values in the envelope", () => {
    fc.assert(
      fc.property(fc.anything({ maxDepth: 3 }), (value) => {
        checkStable(rawPackr.pack({ v: 1, message: value }));
      }),
      { numRuns: 500 },
    );
  });
});

describe("hand-checked frames decode exactly as their schemas do", () => {
  // decodeFrame checks heartbeat, heartbeat_result and append_entries_result by hand (issue 21);
  // decodeFrameBySchema is the schema alone. On valid messages of those types, and on messages
  // with a field dropped, added or replaced by any value (a wrong type, a fraction, a negative or
  // unsafe number, a bad id), both must answer the same: the same message, or the same rejection.
  const valid = fc.oneof(
    fc.record({
      type: fc.constant("heartbeat"),
      from: idArbitrary,
      to: idArbitrary,
      term: counter,
      commitIndex: counter,
      readContext: counter,
    }),
    fc.record({ type: fc.constant("heartbeat_result"), from: idArbitrary, to: idArbitrary, term: counter, readContext: counter }),
    fc.record({
      type: fc.constant("append_entries_result"),
      from: idArbitrary,
      to: idArbitrary,
      term: counter,
      success: fc.boolean(),
      matchIndex: counter,
      rejectedIndex: counter,
      hintIndex: counter,
      hintTerm: counter,
    }),
  );
  const oddValue = fc.oneof(
    fc.constantFrom(-1, -0, 0.5, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY, null, true, false, "", "N1", "n1", "a".repeat(33), "7"),
    fc.integer(),
    fc.double(),
    fc.string({ maxLength: 40 }),
    fc.anything({ maxDepth: 1 }),
  );
  const change = fc.record({
    op: fc.constantFrom("drop", "add", "replace"),
    field: fc.constantFrom(
      "from",
      "to",
      "term",
      "commitIndex",
      "readContext",
      "success",
      "matchIndex",
      "rejectedIndex",
      "hintIndex",
      "hintTerm",
      "extra",
    ),
    value: oddValue,
  });

  function sameAsSchema(message: Record<string, unknown>): void {
    const bytes = rawPackr.pack({ v: 1, message });
    expect(decodeFrame(bytes, limits)).toEqual(decodeFrameBySchema(bytes, limits));
  }

  it("on valid messages", () => {
    fc.assert(
      fc.property(valid, (message) => sameAsSchema({ ...message })),
      { numRuns: 500 },
    );
  });

  it("on messages with fields dropped, added or replaced", () => {
    fc.assert(
      fc.property(valid, fc.array(change, { minLength: 1, maxLength: 3 }), (message, changes) => {
        const broken: Record<string, unknown> = { ...message };
        for (const { op, field, value } of changes) {
          if (op === "drop") delete broken[field];
          else broken[field] = value;
        }
        sameAsSchema(broken);
      }),
      { numRuns: 3000 },
    );
  });

  it("on every example", () => {
    for (const message of examples) sameAsSchema({ ...message });
  });
});

function mutate(bytes: number[], position: number, byte: number, op: "flip" | "insert" | "delete" | "truncate"): number[] {
  const copy = [...bytes];
  if (op === "flip" && position < copy.length) copy[position] = byte;
  if (op === "insert") copy.splice(position, 0, byte);
  if (op === "delete") copy.splice(position, 1);
  if (op === "truncate") copy.length = position;
  return copy;
}

// ---------------------------------------------------------------------------------------------
// Arbitraries for every message type, within the limits above.

const counter = fc.nat({ max: Number.MAX_SAFE_INTEGER });
// Ids follow the one node-id rule (protocol/limits.ts); any other string is refused (tested above).
const idArbitrary: fc.Arbitrary<NodeId> = fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,11}$/).map(nodeId);
const bytesArbitrary = fc.uint8Array({ maxLength: 64 });
const changeArbitrary: fc.Arbitrary<ConfChange> = fc.record({
  type: fc.constantFrom("add_voter", "add_learner", "promote_learner", "remove_node"),
  nodeId: idArbitrary,
});
const entryArbitrary: fc.Arbitrary<Entry> = fc.oneof(
  fc.record({ kind: fc.constant("normal" as const), term: counter, index: counter, data: bytesArbitrary }),
  fc.record({ kind: fc.constant("noop" as const), term: counter, index: counter }),
  fc.record({ kind: fc.constant("conf_change" as const), term: counter, index: counter, change: changeArbitrary }),
);
const members = fc.array(idArbitrary, { maxLength: limits.membersPerConfStateMax });
const headerArbitrary = { from: idArbitrary, to: idArbitrary, term: counter };

const messageArbitrary: fc.Arbitrary<RaftMessage> = fc.oneof(
  fc.record({
    type: fc.constant("request_vote" as const),
    ...headerArbitrary,
    lastLogIndex: counter,
    lastLogTerm: counter,
    preVote: fc.boolean(),
    leadershipTransfer: fc.boolean(),
  }),
  fc.record({ type: fc.constant("request_vote_result" as const), ...headerArbitrary, preVote: fc.boolean(), voteGranted: fc.boolean() }),
  fc.record({
    type: fc.constant("append_entries" as const),
    ...headerArbitrary,
    prevLogIndex: counter,
    prevLogTerm: counter,
    entries: fc.array(entryArbitrary, { maxLength: limits.entriesPerFrameMax }),
    leaderCommit: counter,
  }),
  fc.record({
    type: fc.constant("append_entries_result" as const),
    ...headerArbitrary,
    success: fc.boolean(),
    matchIndex: counter,
    rejectedIndex: counter,
    hintIndex: counter,
    hintTerm: counter,
  }),
  fc.record({ type: fc.constant("heartbeat" as const), ...headerArbitrary, commitIndex: counter, readContext: counter }),
  fc.record({ type: fc.constant("heartbeat_result" as const), ...headerArbitrary, readContext: counter }),
  fc.record({
    type: fc.constant("install_snapshot" as const),
    ...headerArbitrary,
    snapshot: fc.record({
      metadata: fc.record({ index: counter, term: counter, confState: fc.record({ voters: members, learners: members }) }),
      data: bytesArbitrary,
    }),
  }),
  fc.record({ type: fc.constant("install_snapshot_result" as const), ...headerArbitrary, matchIndex: counter }),
  fc.record({ type: fc.constant("timeout_now" as const), ...headerArbitrary }),
);
