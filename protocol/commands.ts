// The zod schemas of what goes through the Raft log, one per command: the lock commands carried
// by normal entries, and membership changes. The same schema is used by the API that accepts a
// request (its fields), the leader that proposes the command (nothing enters the log that does not
// pass), and every node that decodes the entry (a peer's frame, or its own log after a restart).
// So a command one node accepts, every node can read: see docs/DESIGN.md, "An entry a node
// cannot decode".
//
// The schemas check the shape and the wire limits (limits.ts). What depends on a node's settings
// or state (a TTL's bounds, whether a lease is current) is the lock state machine's to decide,
// deterministically, when it applies the entry.

import { z } from "zod";
import { issueDetailsOf, issuesText } from "./issues.ts";
import {
  chainNamePattern,
  credentialNamePattern,
  credentialNameRule,
  leasesPerCommandMax,
  nameLengthMax,
  nodeIdPattern,
  nodeIdRule,
  operationsPerTxnMax,
  readLimitMax,
  readsPerAcquireMax,
  tokenHashPattern,
  valueLengthMax,
} from "./limits.ts";
import { roleSchema } from "./roles.ts";

/** nodeIdSchema is a node id by the one rule (limits.ts nodeIdPattern). */
export const nodeIdSchema = z.string().regex(nodeIdPattern, nodeIdRule);

/** nameSchema is a resource, owner, key or client id: 1 to nameLengthMax characters. */
export const nameSchema = z.string().min(1).max(nameLengthMax);
/** prefixSchema is a range read's prefix or `after` cursor: a name that may be empty. */
export const prefixSchema = z.string().max(nameLengthMax);
/** valueSchema is a stored value. */
export const valueSchema = z.string().max(valueLengthMax);
/** chainNameSchema is a hash chain's name. */
export const chainNameSchema = z.string().regex(chainNamePattern, "a chain name is 1 to 64 lower-case letters, digits and dashes");

// z.int() takes safe integers only: NaN, Infinity, fractions and lossy large values all fail.
const positiveInteger = z.int().positive();
/** fencingTokenSchema is a fencing token as a command carries it: the granting entry's Raft index. */
export const fencingTokenSchema = positiveInteger;
/** fencingTokenTextSchema is a fencing token as answers carry it: its decimal string (no JSON reader loses digits). */
export const fencingTokenTextSchema = z.string().regex(/^[1-9]\d*$/);

const session = z.strictObject({ clientId: nameSchema, sequence: positiveInteger });
/**
 * credentialIndex names the token a command was sent with: the index of the entry that issued it
 * (the credential's creation or its last rotation). The node that took the request sets it, never
 * the caller; the state machine refuses the command if that token is no longer the credential's
 * by the time the entry applies (revoked or rotated), so a revocation holds from its own entry on.
 * Absent for the bootstrap admin token, which lives in each node's configuration, not in the log.
 */
const credentialIndex = positiveInteger.exactOptional();

/** credentialNameSchema is a credential's name (limits.ts credentialNamePattern). */
export const credentialNameSchema = z.string().regex(credentialNamePattern, credentialNameRule);
/** tokenHashSchema is what the log and the state keep of a token: its SHA-256 in hex, never the token. */
export const tokenHashSchema = z.string().regex(tokenHashPattern, "a token hash is 64 lower-case hex digits (SHA-256)");
const leaseRef = z.strictObject({ resource: nameSchema, token: fencingTokenSchema });
const leaseRefs = z.array(leaseRef).min(1).max(leasesPerCommandMax);

/** rangeReadSchema is one range read an acquire carries. */
export const rangeReadSchema = z.strictObject({
  prefix: prefixSchema,
  after: prefixSchema.exactOptional(),
  limit: z.int().min(1).max(readLimitMax),
});

/** txnOperationSchema is one write of a txn. */
export const txnOperationSchema = z.discriminatedUnion("op", [
  z.strictObject({ op: z.literal("put"), key: nameSchema, value: valueSchema }),
  z.strictObject({ op: z.literal("delete"), key: nameSchema }),
  z.strictObject({ op: z.literal("append"), chain: chainNameSchema, value: valueSchema }),
]);

/** lockCommandSchemas holds one schema per lock command, keyed by its `type`. */
export const lockCommandSchemas = {
  acquire: z.strictObject({
    type: z.literal("acquire"),
    session: session.exactOptional(),
    credentialIndex,
    resources: z.array(nameSchema).min(1).max(leasesPerCommandMax),
    owner: nameSchema,
    ttlMs: positiveInteger,
    waitMs: z.int().min(0),
    reads: z.array(rangeReadSchema).max(readsPerAcquireMax).exactOptional(),
  }),
  renew: z.strictObject({ type: z.literal("renew"), session: session.exactOptional(), credentialIndex, leases: leaseRefs }),
  release: z.strictObject({ type: z.literal("release"), session: session.exactOptional(), credentialIndex, leases: leaseRefs }),
  txn: z.strictObject({
    type: z.literal("txn"),
    session: session.exactOptional(),
    credentialIndex,
    guards: leaseRefs,
    operations: z.array(txnOperationSchema).min(1).max(operationsPerTxnMax),
    releaseGuards: z.boolean().exactOptional(),
  }),
  // expire and cancel_wait are proposed by the leader alone, from its own lease timekeeper.
  expire: z.strictObject({ type: z.literal("expire"), resource: nameSchema, token: fencingTokenSchema, version: z.int().min(0) }),
  cancel_wait: z.strictObject({ type: z.literal("cancel_wait"), waiterId: positiveInteger }),
  // The credentials (admin only): the log carries a token's hash, never the token, which the node
  // that made it shows once, in its answer.
  credential_create: z.strictObject({
    type: z.literal("credential_create"),
    credentialIndex,
    name: credentialNameSchema,
    role: roleSchema,
    tokenHash: tokenHashSchema,
  }),
  credential_rotate: z.strictObject({
    type: z.literal("credential_rotate"),
    credentialIndex,
    name: credentialNameSchema,
    tokenHash: tokenHashSchema,
  }),
  credential_revoke: z.strictObject({ type: z.literal("credential_revoke"), credentialIndex, name: credentialNameSchema }),
} as const;

/** lockCommandSchema is any lock command (the union of lockCommandSchemas). */
export const lockCommandSchema = z.discriminatedUnion("type", [
  lockCommandSchemas.acquire,
  lockCommandSchemas.renew,
  lockCommandSchemas.release,
  lockCommandSchemas.txn,
  lockCommandSchemas.expire,
  lockCommandSchemas.cancel_wait,
  lockCommandSchemas.credential_create,
  lockCommandSchemas.credential_rotate,
  lockCommandSchemas.credential_revoke,
]);

/** confChangeSchema is one membership step, as the admin API accepts it and a membership entry carries it. */
export const confChangeSchema = z.strictObject({
  type: z.enum(["add_voter", "add_learner", "promote_learner", "remove_node"]),
  nodeId: nodeIdSchema,
});

/** describeIssues turns a zod error into one line, `path: message; …`, for logs and error answers. */
export function describeIssues(error: z.ZodError, lengthMax = 300): string {
  const text = issuesText(issueDetailsOf(error), "value");
  return text.length > lengthMax ? `${text.slice(0, lengthMax)}…` : text;
}
