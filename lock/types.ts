// The lock state machine's vocabulary: the commands that go through the Raft log, the results
// they produce, and the events watchers see. Plain data, so the node can encode it, the client
// can share it, and the simulator can copy it.

import type { Role } from "../protocol/roles.ts";

/** FencingToken is the Raft index of the log entry that granted a lease (a decimal string in JSON). */
export type FencingToken = number;

/** Session makes a mutating command exactly-once: the state machine remembers each client's latest result. */
export interface Session {
  readonly clientId: string;
  /** sequence starts at 1 and rises by one per new request; a retry repeats it. */
  readonly sequence: number;
}

/** RangeRead asks for the live keys starting with `prefix`, after `after` (exclusive), at most `limit`. */
export interface RangeRead {
  readonly prefix: string;
  readonly after?: string;
  readonly limit: number;
}

/** RangeItem is one key a RangeRead found. */
export interface RangeItem {
  readonly key: string;
  readonly value: string;
  readonly modIndex: number;
}

/** LeaseRef names one lease: a resource and the token it was granted with. */
export interface LeaseRef {
  readonly resource: string;
  readonly token: FencingToken;
}

/**
 * TxnOperation is one write of a fenced txn. `append` adds the next record to a hash chain (see
 * chain.ts): it creates the key `~chain/<chain>/<index, 16 digits>`, and keys under `~chain/` are
 * written by append alone, so a chain's records can be neither changed nor removed.
 */
export type TxnOperation =
  | { readonly op: "put"; readonly key: string; readonly value: string }
  | { readonly op: "delete"; readonly key: string }
  | { readonly op: "append"; readonly chain: string; readonly value: string };

/**
 * LockCommand is what a log entry carries. `expire` and `cancel_wait` are proposed by the leader
 * alone. `credentialIndex`, on the commands a caller asks for, names the token the request came
 * with (the index of the entry that issued it; see protocol/commands.ts): the machine refuses the
 * command if that token was revoked or rotated by then, or its role does not allow it. Absent for
 * the bootstrap admin token.
 */
export type LockCommand =
  | {
      readonly type: "acquire";
      /** session makes the command exactly-once; without one it is applied but never remembered. */
      readonly session?: Session;
      readonly credentialIndex?: number;
      readonly resources: readonly string[];
      readonly owner: string;
      readonly ttlMs: number;
      /** waitMs: 0 answers "conflict" at once; more queues the request (FIFO) for up to that long. */
      readonly waitMs: number;
      /**
       * reads: range reads done by the granting entry itself, so the holder learns the state its lease
       * starts from without another (ReadIndex) round. Only an immediate grant reads; a queued one does not.
       */
      readonly reads?: readonly RangeRead[];
    }
  | { readonly type: "renew"; readonly session?: Session; readonly credentialIndex?: number; readonly leases: readonly LeaseRef[] }
  | { readonly type: "release"; readonly session?: Session; readonly credentialIndex?: number; readonly leases: readonly LeaseRef[] }
  | {
      readonly type: "txn";
      readonly session?: Session;
      readonly credentialIndex?: number;
      /** guards: every named lease must be the resource's current one, or nothing is written. */
      readonly guards: readonly LeaseRef[];
      readonly operations: readonly TxnOperation[];
      /** releaseGuards ends the guards' leases in the same entry, once the writes are applied (saves a release round). */
      readonly releaseGuards?: boolean;
    }
  | { readonly type: "expire"; readonly resource: string; readonly token: FencingToken; readonly version: number }
  | { readonly type: "cancel_wait"; readonly waiterId: number }
  | {
      readonly type: "credential_create";
      readonly credentialIndex?: number;
      readonly name: string;
      readonly role: Role;
      /** tokenHash: the SHA-256 of the new token, in hex; the token itself never enters the log. */
      readonly tokenHash: string;
    }
  | { readonly type: "credential_rotate"; readonly credentialIndex?: number; readonly name: string; readonly tokenHash: string }
  | { readonly type: "credential_revoke"; readonly credentialIndex?: number; readonly name: string };

export type LockCommandType = LockCommand["type"];

/** LockResultCode is the stable code of every non-success outcome; edges map them to HTTP statuses. */
export type LockResultCode =
  | "conflict"
  | "not_held"
  | "stale_fencing_token"
  | "wait_timeout"
  | "too_many_waiters"
  | "invalid_command"
  | "stale_sequence"
  | "session_expired"
  | "unauthorized"
  | "forbidden"
  | "credential_exists"
  | "unknown_credential"
  | "too_many_credentials";

export type LockResult =
  | {
      readonly status: "granted";
      readonly token: FencingToken;
      readonly resources: readonly string[];
      readonly owner: string;
      readonly ttlMs: number;
      /** reads: the answers to the acquire's `reads`, in order, as of the granting entry. */
      readonly reads?: readonly { readonly items: readonly RangeItem[]; readonly more: boolean }[];
    }
  | { readonly status: "queued"; readonly waiterId: number }
  | { readonly status: "renewed"; readonly leases: readonly LeaseRef[]; readonly ttlMs: number }
  | { readonly status: "released"; readonly leases: readonly LeaseRef[] }
  | { readonly status: "committed"; readonly index: number; readonly keys: readonly string[] }
  | { readonly status: "expired" }
  | {
      readonly status: "credential_issued";
      readonly name: string;
      readonly role: Role;
      readonly createdIndex: number;
      readonly issuedIndex: number;
    }
  | { readonly status: "credential_revoked"; readonly name: string; readonly index: number }
  | { readonly status: "no_op"; readonly reason: string }
  | { readonly status: "rejected"; readonly code: LockResultCode; readonly message: string; readonly holder?: LeaseHolder };

/** LeaseHolder describes the current lease on a resource (the lab's 409 answer names the holder's token). */
export interface LeaseHolder {
  readonly resource: string;
  readonly token: FencingToken;
  readonly owner: string;
}

/** LockEvent is published to watchers from the committed log, once per (index, position). */
export type LockEvent =
  | { readonly type: "granted"; readonly index: number; readonly resource: string; readonly token: FencingToken; readonly owner: string }
  | { readonly type: "released"; readonly index: number; readonly resource: string; readonly token: FencingToken }
  | { readonly type: "expired"; readonly index: number; readonly resource: string; readonly token: FencingToken }
  | { readonly type: "renewed"; readonly index: number; readonly resource: string; readonly token: FencingToken }
  | { readonly type: "wait_timeout"; readonly index: number; readonly waiterId: number }
  | {
      readonly type: "key_changed";
      readonly index: number;
      readonly key: string;
      readonly deleted: boolean;
      readonly token: FencingToken;
      /** value: the key's new value, for puts and appends (absent for deletes). */
      readonly value?: string;
    };

/** Lease is the state machine's record of a held resource. */
export interface Lease {
  readonly resource: string;
  readonly token: FencingToken;
  readonly owner: string;
  readonly clientId: string;
  readonly ttlMs: number;
  /** version rises with every renewal, so an expire proposed before a renewal is a no-op. */
  readonly version: number;
}

/** Waiter is a queued acquire. Its id is the Raft index of the acquire entry. */
export interface Waiter {
  readonly waiterId: number;
  readonly session?: Session;
  /** credentialIndex: the token it was queued under; revoking or rotating that token ends the wait (unauthorized). */
  readonly credentialIndex?: number;
  readonly resources: readonly string[];
  readonly owner: string;
  readonly ttlMs: number;
  readonly waitMs: number;
}

/** StoredValue is a key's value with the token of its last write and the index that wrote it. */
export interface StoredValue {
  readonly value: string;
  readonly token: FencingToken;
  readonly modIndex: number;
}

/**
 * Credential is one caller's credential: a name, a role and the hash of its current token. The
 * bootstrap admin token is not one: it lives in each node's configuration.
 */
export interface Credential {
  readonly name: string;
  readonly role: Role;
  /** tokenHash: SHA-256 of the current token, lower-case hex. */
  readonly tokenHash: string;
  /** createdIndex: the index of the entry that created the credential. */
  readonly createdIndex: number;
  /** issuedIndex: the index of the entry that issued the current token (creation or last rotation); commands name it. */
  readonly issuedIndex: number;
}
