// The error codes a lock node answers with, and the HTTP status of each: the one table. The node
// answers every error with the status written here; the client turns each code into a LockError
// (client/errors.ts, a map that must name every code here, or it fails the type check), and the
// booking API maps those to its own codes (scheduler/errors.ts, likewise exhaustive). A code added
// here therefore fails the type check on every side until each has decided what it means.
//
// An error answer is `{ "error": { "code", "message", "details"?, "holder"? } }` (errorAnswerSchema).

import { z } from "zod";
import { fencingTokenTextSchema } from "./commands.ts";

/**
 * errorStatus maps each code a node may answer with to its HTTP status. 409 is a refusal the
 * state of the cluster explains (a retry will not help unless something changes); 429 and 503
 * are "not now" (retry, perhaps at another node); 504 is "no outcome in time" (retry with the
 * same session, which cannot act twice).
 */
export const errorStatus = {
  // The lock state machine's refusals (lock/types.ts LockResultCode).
  conflict: 409,
  not_held: 409,
  stale_fencing_token: 409,
  wait_timeout: 409,
  stale_sequence: 409,
  session_expired: 409,
  too_many_waiters: 429,
  invalid_command: 400,
  unauthorized: 401,
  forbidden: 403,
  credential_exists: 409,
  unknown_credential: 404,
  too_many_credentials: 409,
  // The watch hub's (node/watch-hub.ts).
  too_many_watchers: 429,
  events_compacted: 410,
  // The driver's (node/driver/raft-driver.ts DriverErrorCode; invalid_command and timeout included).
  not_leader: 503,
  proposal_dropped: 503,
  leadership_lost: 503,
  shutting_down: 503,
  overloaded: 503,
  /** disk_full: this node's disk is full; it waits for space, and another node may serve. */
  disk_full: 503,
  timeout: 504,
  // The HTTP API's own.
  invalid_request: 400,
  not_found: 404,
  payload_too_large: 413,
  unsupported_media_type: 415,
  learner_not_caught_up: 409,
  no_leader: 503,
  internal: 500,
} as const satisfies Record<string, number>;

/** ErrorCode is every code a node may answer with. */
export type ErrorCode = keyof typeof errorStatus;

/** errorCodes lists every ErrorCode, in the table's order. */
export const errorCodes = Object.keys(errorStatus) as readonly ErrorCode[];

/** isErrorCode says whether `code` is one of this contract's codes (a newer node may send others). */
export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(errorStatus, code);
}

/** holderSchema names who holds a resource, in a `conflict` answer (the lab's 409). */
export const holderSchema = z.object({ resource: z.string(), token: fencingTokenTextSchema, owner: z.string() });
/** Holder is who holds a resource; the fencing token is a decimal string. */
export type Holder = z.output<typeof holderSchema>;

/**
 * errorAnswerSchema is the body of every error answer. `code` is a plain string here, not the
 * ErrorCode enum: a reader must still be able to read the answer of a node that is newer than it,
 * and keep the code it does not know (the client's `unknown`).
 */
export const errorAnswerSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    /**
     * details: what the code needs to be acted on, e.g. `{ oldestIndex }` for events_compacted,
     * `{ leaderId }` for no_leader, `{ role, tokenRole }` for forbidden (the role the call needs, the one the token has).
     */
    details: z.unknown().optional(),
    /** holder: for `conflict`, who holds the resource. */
    holder: holderSchema.optional(),
  }),
});
/** ErrorAnswer is the body of an error answer. */
export type ErrorAnswer = z.output<typeof errorAnswerSchema>;
