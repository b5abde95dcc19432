// How lock commands and the lock state snapshot travel inside Raft entries and snapshots: UTF-8
// JSON. The node and the simulator encode the same way. JSON, not msgpackr, because entries stay
// readable in a debugger and in the status page's log view, and the commands are small.

import type { LockStateSnapshot } from "./lock-state-machine.ts";
import type { LockCommand } from "./types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeCommand(command: LockCommand): Uint8Array {
  return encoder.encode(JSON.stringify(command));
}

/** decodeCommand reads a committed entry's command. Entries were validated when proposed, so a bad one is corruption. */
export function decodeCommand(data: Uint8Array): LockCommand {
  return JSON.parse(decoder.decode(data)) as LockCommand;
}

export function encodeLockSnapshot(snapshot: LockStateSnapshot): Uint8Array {
  return encoder.encode(JSON.stringify(snapshot));
}

export function decodeLockSnapshot(data: Uint8Array): LockStateSnapshot {
  return JSON.parse(decoder.decode(data)) as LockStateSnapshot;
}
