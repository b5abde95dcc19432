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
