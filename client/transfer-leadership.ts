// transferLeadership: hand leadership to a chosen voter and wait until it leads. `sctec transfer`
// runs it.
//
// POST /admin/transfer answers 202 once the leader has started the transfer, not once it is done,
// and the core abandons a transfer that does not finish within one election timeout (thesis
// §3.10): a transferee still catching up then, as a busy machine makes it, leaves the old leader
// in place with nothing said. So an operator who asked once could not tell whether leadership
// moved. This asks, watches every member's GET /status until the chosen node leads at the highest
// term seen, and asks again every askAgainMs while it does not (as the graceful stop does,
// node/graceful-stop.ts); every wait is bounded by timeoutMs.

import type { NodeStatus } from "../protocol/status.ts";
import { LockError } from "./errors.ts";
import type { LockClient } from "./lock-client.ts";

export interface TransferLeadershipOptions {
  readonly client: Pick<LockClient, "admin" | "status">;
  /** nodes: the members' base URLs, as the client has them; each is asked for its status. */
  readonly nodes: readonly string[];
  /** to: the member id of the voter that should lead. */
  readonly to: string;
  /** timeoutMs bounds the whole wait. */
  readonly timeoutMs: number;
  /** askAgainMs: a transfer not done after this long is asked for again. @default 1000 */
  readonly askAgainMs?: number;
  /** pollMs: how often the members are asked for their status. @default 50 */
  readonly pollMs?: number;
  /** now is a monotonic clock in ms. @default performance.now */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export interface TransferLeadershipReport {
  readonly leader: string;
  readonly term: number;
  /** ms: from the first request until the chosen node was seen leading. */
  readonly ms: number;
  /** requests: how many transfers were asked for (0: it led already). */
  readonly requests: number;
}

/** TransferLeadershipError: the chosen node did not lead within timeoutMs. */
export class TransferLeadershipError extends Error {
  readonly code = "transfer_timed_out";
  constructor(message: string) {
    super(message);
    this.name = "TransferLeadershipError";
  }
}

/** transferLeadership asks for the transfer until `to` leads, or fails after timeoutMs (see the file comment). */
export async function transferLeadership(options: TransferLeadershipOptions): Promise<TransferLeadershipReport> {
  const now = options.now ?? (() => performance.now());
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const askAgainMs = options.askAgainMs ?? 1000;
  const pollMs = options.pollMs ?? 50;
  if (!(Number.isSafeInteger(options.timeoutMs) && options.timeoutMs > 0)) throw new RangeError("timeoutMs must be a positive integer");
  if (!(Number.isSafeInteger(askAgainMs) && askAgainMs > 0)) throw new RangeError("askAgainMs must be a positive integer");
  const startedMs = now();
  const deadlineMs = startedMs + options.timeoutMs;
  let requests = 0;
  let askedAtMs = Number.NEGATIVE_INFINITY;
  let leader: NodeStatus | undefined;
  for (;;) {
    leader = await currentLeader(options);
    if (leader?.nodeId === options.to) return { leader: leader.nodeId, term: leader.term, ms: Math.round(now() - startedMs), requests };
    if (now() >= deadlineMs) break;
    if (now() - askedAtMs >= askAgainMs) {
      askedAtMs = now();
      requests++;
      await options.client.admin("/admin/transfer", { to: options.to }); // A refusal (not a voter, forbidden) is thrown as it came.
    }
    await sleep(Math.min(pollMs, Math.max(0, deadlineMs - now())));
  }
  throw new TransferLeadershipError(
    `${options.to} did not lead within ${options.timeoutMs} ms (transfer asked ${requests} time(s)); ${
      leader === undefined ? "no leader was seen" : `${leader.nodeId} leads in term ${leader.term}`
    }`,
  );
}

/** currentLeader: the member that says it leads at the highest term any member reports, if one does. */
async function currentLeader(options: TransferLeadershipOptions): Promise<NodeStatus | undefined> {
  const seen = await Promise.all(
    options.nodes.map(async (url) => {
      try {
        return await options.client.status(url);
      } catch (error) {
        if (error instanceof LockError) return undefined; // A member down or unreachable: the others tell.
        throw error;
      }
    }),
  );
  const statuses = seen.filter((status): status is NodeStatus => status !== undefined);
  const highestTerm = Math.max(...statuses.map((status) => status.term));
  return statuses.find((status) => status.role === "leader" && status.term === highestTerm);
}
