// How lock commands and the lock state snapshot travel inside Raft entries and snapshots: UTF-8
// JSON. The node and the simulator encode the same way. JSON, not msgpackr, because entries stay
// readable in a debugger and in the status page's log view, and the commands are small.
//
// Every command is checked against its schema in protocol/commands.ts twice: by the leader before
// it enters the log (encodeCheckedCommand), and by whoever decodes the entry (checkCommandBytes for
// a peer's frame, decodeCommand when applying). Bytes this process has checked once are
// remembered (a WeakSet, so nothing is kept alive by it), so an entry the leader proposed, or a
// follower took from a frame, is not checked again when it is applied; an entry read back from
// disk after a restart is.

import { describeIssues, lockCommandSchema } from "../protocol/commands.ts";
import { assert } from "./assert.ts";
import type { LockStateSnapshot } from "./lock-state-machine.ts";
import type { LockCommand } from "./types.ts";

const encoder = new TextEncoder();
/** commandDecoder refuses bytes that are not UTF-8, where a lenient decoder would put U+FFFD in their place. */
const commandDecoder = new TextDecoder("utf-8", { fatal: true });
const decoder = new TextDecoder();

/** checkedBytes: encoded commands this process has already checked against the schema. */
const checkedBytes = new WeakSet<Uint8Array>();

/** CommandCheck is a checked command, or why it is not one (for logs and error answers). */
export type CommandCheck = { readonly ok: true; readonly command: LockCommand } | { readonly ok: false; readonly reason: string };

/** checkCommand checks a value against the lock command schema (protocol/commands.ts). */
export function checkCommand(value: unknown): CommandCheck {
  const parsed = lockCommandSchema.safeParse(value);
  // The schema's output is a LockCommand: this assignment is the compile-time proof.
  if (parsed.success) return { ok: true, command: parsed.data satisfies LockCommand };
  return { ok: false, reason: describeIssues(parsed.error) };
}

/** encodeCommand encodes a command without checking it (the leader's own expiries, and the simulator). */
export function encodeCommand(command: LockCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

/**
 * encodeCheckedCommand checks a command against its schema and encodes it, or says why it may
 * not enter the log. This is the leader's gate: an entry no follower could decode is never
 * proposed (docs/DESIGN.md).
 */
export function encodeCheckedCommand(
  command: LockCommand,
): { readonly ok: true; readonly data: Uint8Array } | { readonly ok: false; readonly reason: string } {
  const checked = checkCommand(command);
  if (!checked.ok) return checked;
  const data = encodeCommand(command);
  checkedBytes.add(data);
  return { ok: true, data };
}

/** readCommand parses an entry's bytes and checks the command, or says why it cannot. Never throws. */
function readCommand(data: Uint8Array): CommandCheck {
  let value: unknown;
  try {
    value = JSON.parse(commandDecoder.decode(data));
  } catch (error) {
    return { ok: false, reason: `not UTF-8 JSON: ${(error as Error).message}` };
  }
  return checkCommand(value);
}

/**
 * checkCommandBytes checks a normal entry's bytes as they arrive in a peer's frame, before the
 * node appends the entry to its log: undefined when they are a valid command, else why not.
 */
export function checkCommandBytes(data: Uint8Array): string | undefined {
  if (checkedBytes.has(data)) return undefined;
  const read = readCommand(data);
  if (!read.ok) return read.reason;
  checkedBytes.add(data);
  return undefined;
}

/**
 * decodeCommand reads the command of a committed entry at `index`. Every entry was checked with
 * the same schema before it was appended (by the leader, or by this node when the frame arrived),
 * so one that fails now was damaged after that, or written by incompatible code: a broken
 * invariant, and the node stops rather than apply a command it cannot read (docs/DESIGN.md).
 */
export function decodeCommand(data: Uint8Array, index?: number): LockCommand {
  if (checkedBytes.has(data)) return JSON.parse(decoder.decode(data)) as LockCommand;
  const read = readCommand(data);
  assert(
    read.ok,
    `the committed entry${index === undefined ? "" : ` at index ${index}`} holds no valid lock command: ${read.ok ? "" : read.reason}`,
  );
  checkedBytes.add(data);
  return read.command;
}

export function encodeLockSnapshot(snapshot: LockStateSnapshot): Uint8Array {
  return encoder.encode(JSON.stringify(snapshot));
}

export function decodeLockSnapshot(data: Uint8Array): LockStateSnapshot {
  return JSON.parse(decoder.decode(data)) as LockStateSnapshot;
}

/**
 * snapshotSliceChars: how much of the keys' text (names and values) encodeLockSnapshotInSlices
 * takes per slice in the node: about half a megabyte of JSON, a few ms of the Raft thread (the
 * 2,000 keys of a bookings run, 0.6 MB, took 4–12 ms at a load of 9). By size, not by count: a
 * key's value may be anything up to 64 KiB.
 */
export const snapshotSliceChars = 512 * 1024;

/**
 * encodeLockSnapshotInSlices makes the same bytes as encodeLockSnapshot, a slice of the keys at a
 * time: each next() of the iterator encodes the keys whose names and values hold about
 * `sliceChars` characters (at least one key; JSON, then UTF-8), and the one that finishes returns
 * the bytes. A state that fits one slice is encoded by the first next(). The driver takes one
 * slice per turn of its event loop during a compaction, so a state of megabytes (every booking
 * ever made) no longer holds the Raft thread for its whole encoding: the JSON and UTF-8 of a 5.9 MB
 * state took 30–110 ms of it at a load of 3–15 (docs/BENCHMARKS.md, issue 17). `snapshot` must not
 * change until the last slice: LockStateMachine.snapshot() copies what its commands replace, and
 * the driver applies nothing while a compaction is in flight.
 */
export function* encodeLockSnapshotInSlices(snapshot: LockStateSnapshot, sliceChars: number): Generator<void, Uint8Array, void> {
  assert(Number.isSafeInteger(sliceChars) && sliceChars >= 1, `sliceChars must be a positive integer, not ${sliceChars}`);
  const parts: Uint8Array[] = [];
  let text = "{";
  let fields = 0;
  for (const [name, value] of Object.entries(snapshot)) {
    if (value === undefined) continue; // As JSON.stringify leaves it out.
    text += `${fields++ === 0 ? "" : ","}${JSON.stringify(name)}:`;
    if (name !== "keys") {
      text += JSON.stringify(value);
      continue;
    }
    // JSON.stringify of an array is its elements' JSON, joined by commas, in brackets: so is this.
    const keys = snapshot.keys;
    text += "[";
    // Bounded: each slice takes at least one key.
    for (let from = 0; from < keys.length; ) {
      if (from > 0) yield;
      const to = sliceEnd(keys, from, sliceChars);
      const slice = JSON.stringify(keys.slice(from, to));
      text += (from === 0 ? "" : ",") + slice.slice(1, -1);
      parts.push(encoder.encode(text));
      text = "";
      from = to;
    }
    text += "]";
  }
  parts.push(encoder.encode(`${text}}`));
  return concatenateBytes(parts);
}

/** sliceEnd: where the slice of `keys` that starts at `from` ends: about `sliceChars` characters of names and values, at least one key. */
function sliceEnd(keys: LockStateSnapshot["keys"], from: number, sliceChars: number): number {
  let chars = 0;
  let to = from;
  for (; to < keys.length && (to === from || chars < sliceChars); to++) {
    const [key, stored] = keys[to] as LockStateSnapshot["keys"][number];
    chars += key.length + stored.value.length + 64; // 64: the JSON around them (token, modIndex, deleted).
  }
  return to;
}

function concatenateBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const bytes = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  return bytes;
}
