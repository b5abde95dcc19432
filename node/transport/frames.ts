// Wire frames between peers: one msgpack value per WebSocket binary message, wrapped in a
// versioned envelope `{ v: 1, ... }`. A Raft frame is `{ v: 1, message }`; the handshake frames
// (auth.ts) use the same envelope with other fields.
//
// Decoding happens here and only here (STYLE.md §3): bytes from the network are `unknown` until
// the zod schemas below have checked every field, so the rest of the node can trust a RaftMessage.
// The three messages that carry only ids, counters and flags are checked by hand first, the same
// way (fastCheck, below); what that check does not accept still goes to the schema.
// Decoding never throws: anything wrong comes back as a value with a stable code.

import { Packr, Unpackr } from "msgpackr";
import { z } from "zod";
import { confChangeSchema, nodeIdSchema } from "../../protocol/commands.ts";
import { nodeIdPattern } from "../../protocol/limits.ts";
import type { Entry, RaftMessage, RaftMessageType } from "../../raft/index.ts";
import { nodeId } from "../../raft/index.ts";

/** WIRE_VERSION is the envelope version this code speaks; a peer speaking another one is refused frame by frame. */
export const WIRE_VERSION = 1;

/** FrameErrorCode says why a frame was rejected. Callers branch on it (and count it), never on the reason text. */
export type FrameErrorCode = "frame_too_large" | "malformed_frame" | "unsupported_version" | "invalid_message";

/** FrameLimits bound what one frame may hold, so a peer cannot make the node allocate without limit. */
export interface FrameLimits {
  /** frameBytesMax bounds the encoded frame; the WebSocket layer enforces the same bound as its maxPayload. */
  readonly frameBytesMax: number;
  /** entriesPerFrameMax bounds the entries of one append_entries (raft's entriesPerAppendMax must not exceed it). */
  readonly entriesPerFrameMax: number;
  /** membersPerConfStateMax bounds the voters and the learners of a snapshot's membership, each. */
  readonly membersPerConfStateMax: number;
}

/** frameLimitsDefaults are the limits the transport uses unless told otherwise (frameBytesMax always comes from the caller). */
export const frameLimitsDefaults: Omit<FrameLimits, "frameBytesMax"> = {
  entriesPerFrameMax: 4096,
  membersPerConfStateMax: 256,
};

/** DecodeResult is a checked value or a coded rejection. */
export type DecodeResult<T> = { readonly ok: true; readonly value: T } | FrameError;
/** FrameError is a rejected frame: `code` is stable, `reason` is for logs and bounded in length. */
export interface FrameError {
  readonly ok: false;
  readonly code: FrameErrorCode;
  readonly reason: string;
}

/** FrameDecodeResult is what decodeFrame returns: a checked message, or a coded rejection. */
export type FrameDecodeResult = { readonly ok: true; readonly message: RaftMessage } | FrameError;

// Records (msgpackr's default extension for repeated object shapes) are off so that frames are
// plain MessagePack maps that any implementation can read. Bytes become `bin` values.
const packr = new Packr({ useRecords: false });
// structuredClone is off so that a frame cannot build reference cycles; binary values are
// subarrays of the frame and are copied by the schema (toPlainBytes), not here.
const unpackr = new Unpackr({ useRecords: false, structuredClone: false });

const reasonLengthMax = 200;

function frameError(code: FrameErrorCode, reason: string): FrameError {
  return { ok: false, code, reason: reason.length > reasonLengthMax ? reason.slice(0, reasonLengthMax) + "…" : reason };
}

/** packEnvelope encodes `{ v: WIRE_VERSION, ...fields }`. It throws only if a field cannot be encoded (a programmer error). */
export function packEnvelope(fields: Readonly<Record<string, unknown>>): Uint8Array {
  return packr.pack({ v: WIRE_VERSION, ...fields });
}

/**
 * unpackEnvelope checks the size, parses the msgpack value and checks that it is a versioned
 * envelope. It returns the envelope's fields, still unchecked, and never throws.
 */
export function unpackEnvelope(bytes: Uint8Array, frameBytesMax: number): DecodeResult<Readonly<Record<string, unknown>>> {
  if (bytes.byteLength > frameBytesMax) {
    return frameError("frame_too_large", `frame of ${bytes.byteLength} bytes exceeds ${frameBytesMax}`);
  }
  let decoded: unknown;
  try {
    decoded = unpackr.unpack(bytes);
  } catch (error) {
    return frameError("malformed_frame", `not msgpack: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (!isPlainRecord(decoded)) return frameError("malformed_frame", "the frame is not a map");
  const { v: version } = decoded;
  if (version !== WIRE_VERSION) {
    return typeof version === "number"
      ? frameError("unsupported_version", `envelope version ${version} is not ${WIRE_VERSION}`)
      : frameError("malformed_frame", "the envelope has no numeric version `v`");
  }
  return { ok: true, value: decoded };
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

/** encodeFrame encodes a Raft message as `{ v: 1, message }`. */
export function encodeFrame(message: RaftMessage): Uint8Array {
  return packEnvelope({ message });
}

/**
 * decodeFrame turns bytes from an authenticated peer into a RaftMessage, or says why it cannot.
 * Every field of every message type is checked against `limits`; binary fields come back as
 * plain Uint8Array copies (never Buffer views into the frame, which would pin the whole frame).
 */
export function decodeFrame(bytes: Uint8Array, limits: FrameLimits): FrameDecodeResult {
  return decodeFrameWith(bytes, limits, true);
}

/**
 * decodeFrameBySchema is decodeFrame without the hand-written checks (fastCheck): every message
 * goes through its schema. It is the reference the tests hold decodeFrame to.
 */
export function decodeFrameBySchema(bytes: Uint8Array, limits: FrameLimits): FrameDecodeResult {
  return decodeFrameWith(bytes, limits, false);
}

function decodeFrameWith(bytes: Uint8Array, limits: FrameLimits, fast: boolean): FrameDecodeResult {
  const envelope = unpackEnvelope(bytes, limits.frameBytesMax);
  if (!envelope.ok) return envelope;
  const keys = Object.keys(envelope.value);
  if (keys.length !== 2 || !Object.hasOwn(envelope.value, "message")) {
    return frameError("malformed_frame", "a Raft frame has exactly the fields `v` and `message`");
  }
  const { message } = envelope.value;
  if (!isPlainRecord(message)) return frameError("invalid_message", "`message` is not a map");
  const { type } = message;
  const schemas = schemasFor(limits);
  if (typeof type !== "string" || !Object.hasOwn(schemas, type)) {
    return frameError("invalid_message", `unknown message type ${JSON.stringify(String(type)).slice(0, 80)}`);
  }
  const checked = fast ? fastCheck(type, message) : undefined;
  if (checked !== undefined) return { ok: true, message: checked };
  const parsed = schemas[type as RaftMessageType].safeParse(message);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined ? "" : issue.path.map(String).join(".");
    return frameError("invalid_message", `${type}: ${where === "" ? "" : where + ": "}${issue?.message ?? "invalid"}`);
  }
  return { ok: true, message: parsed.data };
}

// ---------------------------------------------------------------------------------------------
// Hand-written checks for the three messages that carry only ids, counters and flags: the
// heartbeat, its answer, and the answer to an append. They are most of the frames a node decodes
// (every 30 ms each way, and one answer per follower per write), and zod's check of one cost more
// than the rest of its decoding (issue 21, docs/BENCHMARKS.md). A check accepts a message only if
// its schema below would, field for field, and answers the value the schema would; it answers
// undefined for anything else, which then goes to the schema, so every rejection and its reason
// stay the schema's. frames.test.ts holds decodeFrame to decodeFrameBySchema on valid and on
// broken messages of these types.

/** fastShapes: each checked type's fields besides `type`, `from` and `to` (and the schema's `term`, a counter). */
const fastShapes: Readonly<Record<string, { readonly counters: readonly string[]; readonly flags: readonly string[] }>> = {
  heartbeat: { counters: ["term", "commitIndex", "readContext"], flags: [] },
  heartbeat_result: { counters: ["term", "readContext"], flags: [] },
  append_entries_result: { counters: ["term", "matchIndex", "rejectedIndex", "hintIndex", "hintTerm"], flags: ["success"] },
};

/** isCounter is the schema's `counter`: z.int().min(0), a safe integer, not negative. */
function isCounter(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isNodeId(value: unknown): value is string {
  return typeof value === "string" && nodeIdPattern.test(value);
}

/** fastCheck: the message, checked by hand, if its type has a hand-written check and it passes; undefined otherwise. */
function fastCheck(type: string, message: Readonly<Record<string, unknown>>): RaftMessage | undefined {
  const shape = Object.hasOwn(fastShapes, type) ? fastShapes[type] : undefined;
  if (shape === undefined) return undefined;
  // Exactly the schema's keys (a strict object): as many keys, and each one there.
  if (Object.keys(message).length !== 3 + shape.counters.length + shape.flags.length) return undefined;
  const { from, to } = message;
  if (!isNodeId(from) || !isNodeId(to)) return undefined;
  const checked: Record<string, unknown> = { type, from: nodeId(from), to: nodeId(to) };
  for (const field of shape.counters) {
    const value = Object.hasOwn(message, field) ? message[field] : undefined;
    if (!isCounter(value)) return undefined;
    checked[field] = value;
  }
  for (const field of shape.flags) {
    const value = Object.hasOwn(message, field) ? message[field] : undefined;
    if (typeof value !== "boolean") return undefined;
    checked[field] = value;
  }
  return checked as unknown as RaftMessage;
}

// ---------------------------------------------------------------------------------------------
// Schemas. One per message type, keyed by the `type` literal: the mapped type below makes the
// compiler reject a missing type or a schema whose output is not exactly that message.

type MessageSchemas = { readonly [K in RaftMessageType]: z.ZodType<Extract<RaftMessage, { type: K }>> };

// Schemas depend on the limits; building them per frame would cost more than the check itself,
// so they are built once per limits object.
const schemaCache = new WeakMap<FrameLimits, MessageSchemas>();

function schemasFor(limits: FrameLimits): MessageSchemas {
  const cached = schemaCache.get(limits);
  if (cached !== undefined) return cached;
  const built = buildSchemas(limits);
  schemaCache.set(limits, built);
  return built;
}

/** toPlainBytes copies a (possibly Buffer) view into a fresh Uint8Array that owns exactly its bytes. */
function toPlainBytes(view: Uint8Array): Uint8Array {
  const copy = new Uint8Array(view.byteLength);
  copy.set(view);
  return copy;
}

function buildSchemas(limits: FrameLimits): MessageSchemas {
  // z.int() accepts safe integers only, so NaN, Infinity, fractions and lossy 64-bit values fail.
  const counter = z.int().min(0);
  // Node ids follow the one rule (protocol/limits.ts), and a membership entry is checked with the
  // schema the admin API and the leader use: the leader never proposes one that fails here.
  const id = nodeIdSchema.transform(nodeId);
  const bytes = z.custom<Uint8Array>((value) => value instanceof Uint8Array, "expected binary data").transform(toPlainBytes);
  const header = { from: id, to: id, term: counter };
  const change = confChangeSchema.transform((checked) => ({ type: checked.type, nodeId: nodeId(checked.nodeId) }));
  const entry: z.ZodType<Entry> = z.discriminatedUnion("kind", [
    z.strictObject({ kind: z.literal("normal"), term: counter, index: counter, data: bytes }),
    z.strictObject({ kind: z.literal("noop"), term: counter, index: counter }),
    z.strictObject({ kind: z.literal("conf_change"), term: counter, index: counter, change }),
  ]);
  const members = z.array(id).max(limits.membersPerConfStateMax);
  const snapshot = z.strictObject({
    metadata: z.strictObject({ index: counter, term: counter, confState: z.strictObject({ voters: members, learners: members }) }),
    data: bytes,
  });
  return {
    request_vote: z.strictObject({
      type: z.literal("request_vote"),
      ...header,
      lastLogIndex: counter,
      lastLogTerm: counter,
      preVote: z.boolean(),
      leadershipTransfer: z.boolean(),
    }),
    request_vote_result: z.strictObject({
      type: z.literal("request_vote_result"),
      ...header,
      preVote: z.boolean(),
      voteGranted: z.boolean(),
    }),
    append_entries: z.strictObject({
      type: z.literal("append_entries"),
      ...header,
      prevLogIndex: counter,
      prevLogTerm: counter,
      entries: z.array(entry).max(limits.entriesPerFrameMax),
      leaderCommit: counter,
    }),
    append_entries_result: z.strictObject({
      type: z.literal("append_entries_result"),
      ...header,
      success: z.boolean(),
      matchIndex: counter,
      rejectedIndex: counter,
      hintIndex: counter,
      hintTerm: counter,
    }),
    heartbeat: z.strictObject({ type: z.literal("heartbeat"), ...header, commitIndex: counter, readContext: counter }),
    heartbeat_result: z.strictObject({ type: z.literal("heartbeat_result"), ...header, readContext: counter }),
    install_snapshot: z.strictObject({ type: z.literal("install_snapshot"), ...header, snapshot }),
    install_snapshot_result: z.strictObject({ type: z.literal("install_snapshot_result"), ...header, matchIndex: counter }),
    timeout_now: z.strictObject({ type: z.literal("timeout_now"), ...header }),
  };
}
