// GET /status: a node's view of itself and the cluster, open (no token), for operators, the status
// pages of other nodes, the booking API (where a new watch starts) and the CLI. It is the Raft
// core's status (role, term, leader, indexes, members, and on a leader the replication progress),
// plus this node's peer links and watch hub.

import { z } from "zod";
import type { Wire } from "./wire.ts";

/** roleSchema is a member's role in the Raft core (pre_candidate: checking it could win before it disturbs anyone). */
export const roleSchema = z.enum(["follower", "pre_candidate", "candidate", "leader"]);

/** peerProgressSchema is the leader's record of one member's replication (empty on other nodes). */
export const peerProgressSchema = z.object({
  id: z.string(),
  isLearner: z.boolean(),
  matchIndex: z.int(),
  nextIndex: z.int(),
  state: z.enum(["probe", "replicate", "snapshot"]),
  recentActive: z.boolean(),
});

/** peerLinkSchema is this node's link to one peer: up or not, last heard from (wall clock, ms), frames refused from it. */
export const peerLinkSchema = z.object({
  connected: z.boolean(),
  lastContactMs: z.number().nullable(),
  framesRejected: z.int(),
  lastRejection: z.object({ code: z.string(), reason: z.string(), atMs: z.number() }).nullable(),
});

/** nodeStatusSchema is GET /status's answer. */
export const nodeStatusSchema = z.object({
  nodeId: z.string(),
  pid: z.int(),
  /**
   * bootId: a random id of this process, new at every start (a pid may repeat: in a container it
   * is the same at every start). Optional: a node older than it does not send it.
   */
  bootId: z.string().optional(),
  id: z.string(),
  role: roleSchema,
  term: z.int(),
  votedFor: z.string().nullable(),
  leaderId: z.string().nullable(),
  commitIndex: z.int(),
  appliedIndex: z.int(),
  firstIndex: z.int(),
  lastIndex: z.int(),
  snapshotIndex: z.int(),
  voters: z.array(z.string()),
  learners: z.array(z.string()),
  progress: z.array(peerProgressSchema),
  peers: z.record(z.string(), peerLinkSchema),
  /** watch: polls waiting now, and the lowest `after` this node can answer. */
  watch: z.object({ watchers: z.int(), oldestIndex: z.int() }),
  /**
   * storage: whether this node's writes reach its disk. While the disk is full the node waits for
   * space (acknowledging nothing, refusing requests with disk_full or sending them on to the
   * leader, dropping peer messages): since when, and how many peer messages it dropped meanwhile.
   */
  storage: z.discriminatedUnion("ok", [
    z.object({ ok: z.literal(true) }),
    z.object({
      ok: z.literal(false),
      reason: z.literal("disk_full"),
      message: z.string(),
      failingForMs: z.int(),
      peerMessagesDropped: z.int(),
    }),
  ]),
});
export type NodeStatus = Wire<z.output<typeof nodeStatusSchema>>;
