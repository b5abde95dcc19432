// The node's HTTP API as both sides see it: the schema of every request body or query the node
// accepts (the node validates with them), and of every answer it gives (the client decodes with
// them, and tests/wire-contract.test.ts holds the node's real answers to them). Fencing tokens are
// decimal strings on the wire (a JSON number loses digits past 2^53 in some readers); the node
// also takes a number where a token comes in.
//
// The bodies' fields are the command schemas' fields (commands.ts), with the same limits: a
// request that passes here builds a command that passes the leader's check, and every follower's.
//
// Errors are not here: errors.ts holds their codes, statuses and body. The /status answer is in
// status.ts, /watch in watch.ts, the hash chain's format in chain.ts.

import { z } from "zod";
import {
  credentialNameSchema,
  fencingTokenSchema,
  fencingTokenTextSchema,
  nameSchema,
  nodeIdSchema,
  prefixSchema,
  txnOperationSchema,
} from "./commands.ts";
import { leasesPerCommandMax, operationsPerTxnMax, rangeLimitMax, readLimitMax, readsPerAcquireMax } from "./limits.ts";
import { roleSchema } from "./roles.ts";
import { nodeStatusSchema } from "./status.ts";
import type { Wire } from "./wire.ts";

/** tokenSchema is a fencing token in a request: a decimal string (as answers carry it) or a number. */
export const tokenSchema = z
  .union([z.string().regex(/^[1-9]\d{0,15}$/), z.number()])
  .transform((value) => Number(value))
  .pipe(fencingTokenSchema);

// Without a session (clientId + sequence, both or neither) a command is applied once and never remembered.
const sessionFields = { clientId: nameSchema.optional(), sequence: z.number().int().positive().optional() };
// Exactly one of resource and resources (the node checks that, with a clear message).
const resourcesFields = { resource: nameSchema.optional(), resources: z.array(nameSchema).min(1).max(leasesPerCommandMax).optional() };

/** rangeReadRequestSchema is one range read an acquire carries: answered by the granting entry itself (linearizable, no extra round). */
export const rangeReadRequestSchema = z.strictObject({
  prefix: prefixSchema,
  after: prefixSchema.optional(),
  limit: z.number().int().min(1).max(readLimitMax),
});
export type RangeReadRequest = Wire<z.input<typeof rangeReadRequestSchema>>;

/** lockRequestSchema is the body of POST /lock. */
export const lockRequestSchema = z.strictObject({
  ...resourcesFields,
  ...sessionFields,
  owner: nameSchema,
  ttlMs: z.number().int().positive().default(10_000),
  waitMs: z.number().int().min(0).default(0),
  reads: z.array(rangeReadRequestSchema).max(readsPerAcquireMax).optional(),
});
export type LockRequest = Wire<z.input<typeof lockRequestSchema>>;

/** leaseRequestSchema is the body of POST /unlock and POST /renew. */
export const leaseRequestSchema = z.strictObject({ ...resourcesFields, ...sessionFields, token: tokenSchema });
export type LeaseRequest = Wire<z.input<typeof leaseRequestSchema>>;

/** txnRequestSchema is the body of POST /txn. */
export const txnRequestSchema = z.strictObject({
  ...sessionFields,
  guards: z
    .array(z.strictObject({ resource: nameSchema, token: tokenSchema }))
    .min(1)
    .max(leasesPerCommandMax),
  operations: z.array(txnOperationSchema).min(1).max(operationsPerTxnMax),
  releaseGuards: z.boolean().optional(),
});
export type TxnRequest = Wire<z.input<typeof txnRequestSchema>>;

/** TxnOperation is one write of a txn: put, delete, or the next record of a hash chain (chain.ts). */
export type TxnOperation = Wire<z.output<typeof txnOperationSchema>>;

/**
 * memberRequestSchema is the body of POST /admin/members. Node ids follow the one rule
 * (limits.ts), the rule a follower's frame decoder applies to a membership entry.
 */
export const memberRequestSchema = z.strictObject({
  action: z.enum(["add_learner", "promote_learner", "remove_node"]),
  nodeId: nodeIdSchema,
});
export type MemberRequest = Wire<z.input<typeof memberRequestSchema>>;

/** transferRequestSchema is the body of POST /admin/transfer. */
export const transferRequestSchema = z.strictObject({ to: nodeIdSchema });
export type TransferRequest = Wire<z.input<typeof transferRequestSchema>>;

/** rangeQuerySchema is the query of GET /kv; `after` is an exclusive start key, normally the last key of the previous page. */
export const rangeQuerySchema = z.strictObject({
  prefix: prefixSchema.default(""),
  limit: z.coerce.number().int().min(1).max(rangeLimitMax).default(100),
  after: prefixSchema.default(""),
});

const leaseRefAnswerSchema = z.object({ resource: z.string(), token: fencingTokenTextSchema });
/** rangeItemSchema is one key a range read found: its value and the index that wrote it. */
export const rangeItemSchema = z.object({ key: z.string(), value: z.string(), modIndex: z.int() });
export type RangeItem = Wire<z.output<typeof rangeItemSchema>>;

/** rangeResultSchema is the answer to one of an acquire's range reads. */
export const rangeResultSchema = z.object({ items: z.array(rangeItemSchema), more: z.boolean() });
export type RangeResult = Wire<z.output<typeof rangeResultSchema>>;

/** grantAnswerSchema is POST /lock's answer: the lease, and its reads' answers as of the granting entry (an immediate grant's only). */
export const grantAnswerSchema = z.object({
  status: z.literal("granted"),
  token: fencingTokenTextSchema,
  resources: z.array(z.string()),
  owner: z.string(),
  ttlMs: z.int(),
  reads: z.array(rangeResultSchema).optional(),
});
export type GrantAnswer = Wire<z.output<typeof grantAnswerSchema>>;

/** releaseAnswerSchema is POST /unlock's answer. */
export const releaseAnswerSchema = z.object({ status: z.literal("released"), leases: z.array(leaseRefAnswerSchema) });
export type ReleaseAnswer = Wire<z.output<typeof releaseAnswerSchema>>;

/** renewAnswerSchema is POST /renew's answer: the full TTL now runs again from when the renewal was applied. */
export const renewAnswerSchema = z.object({ status: z.literal("renewed"), leases: z.array(leaseRefAnswerSchema), ttlMs: z.int() });
export type RenewAnswer = Wire<z.output<typeof renewAnswerSchema>>;

/** commitAnswerSchema is POST /txn's answer: the txn's Raft index, and the keys it wrote in the order of its operations. */
export const commitAnswerSchema = z.object({ status: z.literal("committed"), index: z.int(), keys: z.array(z.string()) });
export type CommitAnswer = Wire<z.output<typeof commitAnswerSchema>>;

/** keyValueSchema is GET /kv/{key}'s answer: a key, its value, the fencing token of its last write and the index that wrote it. */
export const keyValueSchema = z.object({ key: z.string(), value: z.string(), token: fencingTokenTextSchema, modIndex: z.int() });
export type KeyValue = Wire<z.output<typeof keyValueSchema>>;

/** rangePageSchema is GET /kv's answer: one page, and the applied index it was read at (a watch may start there). */
export const rangePageSchema = z.object({
  items: z.array(keyValueSchema),
  /** more: further keys follow; ask again with `after` set to the last key of this page. */
  more: z.boolean(),
  index: z.int(),
});
export type RangePage = Wire<z.output<typeof rangePageSchema>>;

/** leasesAnswerSchema is GET /leases's answer: the lease table, with the leader's own deadline for each (null on another node). */
export const leasesAnswerSchema = z.object({
  leases: z.array(
    z.object({
      resource: z.string(),
      token: fencingTokenTextSchema,
      owner: z.string(),
      clientId: z.string(),
      ttlMs: z.int(),
      version: z.int(),
      leaderDeadlineMs: z.number().nullable(),
    }),
  ),
});
export type LeasesAnswer = Wire<z.output<typeof leasesAnswerSchema>>;

/** memberAnswerSchema is POST /admin/members's answer, once the change is applied (or already was: `alreadyInEffect`). */
export const memberAnswerSchema = z.object({
  applied: z.object({ action: memberRequestSchema.shape.action, nodeId: z.string() }),
  alreadyInEffect: z.literal(true).optional(),
  status: nodeStatusSchema,
});
export type MemberAnswer = Wire<z.output<typeof memberAnswerSchema>>;

/** transferAnswerSchema is POST /admin/transfer's answer (202): the transfer has started. */
export const transferAnswerSchema = z.object({ transferringTo: z.string() });
export type TransferAnswer = Wire<z.output<typeof transferAnswerSchema>>;

/** credentialRequestSchema is the body of POST /admin/credentials: a new credential's name and role. */
export const credentialRequestSchema = z.strictObject({ name: credentialNameSchema, role: roleSchema });
export type CredentialRequest = Wire<z.input<typeof credentialRequestSchema>>;

/** credentialInfoSchema describes one credential, never its token: GET /admin/credentials lists them. */
export const credentialInfoSchema = z.object({
  name: z.string(),
  role: roleSchema,
  /** createdIndex: the Raft index of the entry that created the credential. */
  createdIndex: z.int(),
  /** issuedIndex: the Raft index of the entry that issued its current token (its creation or its last rotation). */
  issuedIndex: z.int(),
});
export type CredentialInfo = Wire<z.output<typeof credentialInfoSchema>>;

/**
 * issuedCredentialSchema is the answer to POST /admin/credentials (201) and to POST
 * /admin/credentials/{name}/rotate: the credential and its new token, shown this once. The
 * cluster keeps only the token's SHA-256.
 */
export const issuedCredentialSchema = credentialInfoSchema.extend({ token: z.string() });
export type IssuedCredential = Wire<z.output<typeof issuedCredentialSchema>>;

/** credentialListSchema is GET /admin/credentials's answer, by name (linearizable). */
export const credentialListSchema = z.object({ credentials: z.array(credentialInfoSchema) });
export type CredentialList = Wire<z.output<typeof credentialListSchema>>;

/** revokedCredentialSchema is POST /admin/credentials/{name}/revoke's answer: from `index` on, its token is refused on every node. */
export const revokedCredentialSchema = z.object({ revoked: z.string(), index: z.int() });
export type RevokedCredential = Wire<z.output<typeof revokedCredentialSchema>>;

/** whoamiAnswerSchema is GET /auth/whoami's answer: the credential a token belongs to, and its role. */
export const whoamiAnswerSchema = z.object({ name: z.string(), role: roleSchema });
export type WhoamiAnswer = Wire<z.output<typeof whoamiAnswerSchema>>;

/**
 * restartAnswerSchema is POST /admin/restart's answer (202): the node is stopping (gracefully: a
 * leader hands its leadership over first) to be started again by its supervisor; `bootId` names
 * the process that answered, so a caller can tell when a new one serves (GET /status `bootId`).
 */
export const restartAnswerSchema = z.object({ nodeId: z.string(), restarting: z.literal(true), bootId: z.string() });
export type RestartAnswer = Wire<z.output<typeof restartAnswerSchema>>;

/** healthAnswerSchema is GET /healthz's answer. */
export const healthAnswerSchema = z.object({
  ok: z.literal(true),
  nodeId: z.string(),
  role: nodeStatusSchema.shape.role,
  leaderId: z.string().nullable(),
});
export type HealthAnswer = Wire<z.output<typeof healthAnswerSchema>>;

/**
 * writeEndpoints are the four calls of every lock cycle (all POST): each path with the schema of
 * its body and of its success answer. A body may carry a session (clientId + sequence, both or
 * neither), which makes it exactly-once: a retry gets the first answer.
 */
export const writeEndpoints = {
  "/lock": { request: lockRequestSchema, answer: grantAnswerSchema },
  "/unlock": { request: leaseRequestSchema, answer: releaseAnswerSchema },
  "/renew": { request: leaseRequestSchema, answer: renewAnswerSchema },
  "/txn": { request: txnRequestSchema, answer: commitAnswerSchema },
} as const;
/** WritePath is the path of one of the write endpoints. */
export type WritePath = keyof typeof writeEndpoints;
/** WriteRequest is the body of a write endpoint, as a sender writes it. */
export type WriteRequest<Path extends WritePath> = Wire<z.input<(typeof writeEndpoints)[Path]["request"]>>;
/** WriteAnswer is the success answer of a write endpoint. */
export type WriteAnswer<Path extends WritePath> = Wire<z.output<(typeof writeEndpoints)[Path]["answer"]>>;
