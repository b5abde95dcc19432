// GET /watch: a long poll over the lock events a node has applied. Events are committed data, and
// every node derives the same events at the same indexes from the same log, so any node serves a
// watcher, and a watcher moves between nodes by carrying the index it has seen (`after`).

import { z } from "zod";
import { fencingTokenTextSchema, prefixSchema } from "./commands.ts";
import type { Wire } from "./wire.ts";

/** watchTimeoutMsMax bounds how long one poll may wait for an event; watchLimitMax bounds the events asked for per poll. */
export const watchTimeoutMsMax = 30_000;
export const watchLimitMax = 1000;

/**
 * watchQuerySchema is the query of GET /watch. Without `after` the poll answers only events
 * applied from now on; `timeoutMs` 0 answers at once.
 */
export const watchQuerySchema = z.strictObject({
  prefix: prefixSchema.default(""),
  after: z.coerce.number().int().min(0).optional(),
  timeoutMs: z.coerce.number().int().min(0).max(watchTimeoutMsMax).default(25_000),
  limit: z.coerce.number().int().min(1).max(watchLimitMax).default(watchLimitMax),
});

const token = fencingTokenTextSchema;
const index = z.int();

/**
 * watchEventSchema is one committed lock event (fencing tokens as decimal strings). `index` is the
 * Raft index of the entry that caused it; one entry may cause several. A `key_changed` of a put or
 * an append carries the key's new `value`; a delete's carries none.
 */
export const watchEventSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("granted"), index, resource: z.string(), token, owner: z.string() }),
  z.object({ type: z.literal("released"), index, resource: z.string(), token }),
  z.object({ type: z.literal("expired"), index, resource: z.string(), token }),
  z.object({ type: z.literal("renewed"), index, resource: z.string(), token }),
  z.object({ type: z.literal("wait_timeout"), index, waiterId: z.int() }),
  z.object({ type: z.literal("key_changed"), index, key: z.string(), deleted: z.boolean(), token, value: z.string().optional() }),
]);
export type WatchEvent = Wire<z.output<typeof watchEventSchema>>;

/**
 * watchAnswerSchema is GET /watch's answer: the events after `after`, complete up to `lastIndex`
 * (poll again from there). One index's events are never split, so a page may hold a few more than
 * `limit`.
 */
export const watchAnswerSchema = z.object({ events: z.array(watchEventSchema), lastIndex: z.int() });
export type WatchAnswer = Wire<z.output<typeof watchAnswerSchema>>;
