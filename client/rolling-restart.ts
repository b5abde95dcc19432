// rollingRestart: restart every member of a running cluster, one at a time, without a pause in
// service (issue 17, item 3). `sctec rolling-restart` runs it; so do the compose demo and
// `npm run bench:rolling`.
//
// It restarts the followers first and the leader last, so leadership moves once at most (a
// leader asked to restart hands its leadership to the most caught-up voter before it stops:
// node/graceful-stop.ts). For each member it:
//   1. asks it to restart (POST /admin/restart; its supervisor starts it again: npm start, compose's
//      restart policy, systemd), and waits until a new process answers (GET /status: another bootId);
//   2. waits until it has caught up: the leader replicates to it (progress "replicate", heard from
//      lately) and its applied index has reached the leader's commit index as of its return;
// and only then goes on to the next. Before the first, every member must be up and replicating
// (waited for, within catchUpTimeoutMs: a cluster may still be starting): restarting one while
// another is down could leave no majority; and the client's token must have the admin role (what
// POST /admin/restart needs), or nothing is restarted. Every wait is bounded.

import { roleIncludes } from "../protocol/roles.ts";
import type { NodeStatus } from "../protocol/status.ts";
import { LockError } from "./errors.ts";
import type { LockClient } from "./lock-client.ts";

export interface RollingRestartOptions {
  /** client: its `nodes` must reach every member (their URLs are matched to member ids through GET /status). */
  readonly client: LockClient;
  /** nodes: the members' base URLs, as the client has them. */
  readonly nodes: readonly string[];
  /** restartTimeoutMs bounds the wait for one member to stop and answer again as a new process. @default 60000 */
  readonly restartTimeoutMs?: number;
  /** catchUpTimeoutMs bounds the wait for one restarted member to catch up. @default 60000 */
  readonly catchUpTimeoutMs?: number;
  /** pollMs: how often the members are asked. @default 100 */
  readonly pollMs?: number;
  /** onProgress hears each step, for progress output. */
  readonly onProgress?: (message: string) => void;
  /** now is a monotonic clock in ms. @default performance.now */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** MemberRestart: one member's restart, as it went. */
export interface MemberRestart {
  readonly nodeId: string;
  readonly url: string;
  readonly wasLeader: boolean;
  /** askedAtMs: when it was asked to restart, in ms since the rolling restart began. */
  readonly askedAtMs: number;
  /** backMs: from the restart request until a new process answered. */
  readonly backMs: number;
  /** caughtUpMs: from then until it had caught up. */
  readonly caughtUpMs: number;
  /** leaderAfter: the leader once it had caught up. */
  readonly leaderAfter: string;
}

export interface RollingRestartReport {
  readonly restarted: readonly MemberRestart[];
  /** leaders: every leader seen during the run, in order (a change per restart of a leader at most). */
  readonly leaders: readonly string[];
  readonly totalMs: number;
}

/**
 * RollingRestartError: the rolling restart stopped; `code` says why. `not_ready`: a member is
 * down, not caught up, or no leader is known (nothing was restarted, or the last one restarted did
 * not recover in time); `unknown_member`: a member none of the given URLs answers as;
 * `forbidden`: the client's token is not an admin's (nothing was restarted).
 */
export class RollingRestartError extends Error {
  readonly code: "not_ready" | "unknown_member" | "restart_timeout" | "catch_up_timeout" | "forbidden";
  constructor(code: RollingRestartError["code"], message: string) {
    super(message);
    this.name = "RollingRestartError";
    this.code = code;
  }
}

interface Seen {
  readonly url: string;
  readonly status: NodeStatus;
}

/** rollingRestart restarts every member of the cluster in turn (see the file comment). */
export async function rollingRestart(options: RollingRestartOptions): Promise<RollingRestartReport> {
  const now = options.now ?? (() => performance.now());
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const pollMs = options.pollMs ?? 100;
  const say = options.onProgress ?? (() => undefined);
  const startedMs = now();
  const nodes = options.nodes.map((url) => url.replace(/\/+$/, ""));
  const leaders: string[] = [];
  const noteLeader = (leaderId: string): void => {
    if (leaders.at(-1) !== leaderId) leaders.push(leaderId);
  };

  const ask = async (url: string): Promise<NodeStatus | undefined> => {
    try {
      return await options.client.status(url);
    } catch (error) {
      if (error instanceof LockError) return undefined;
      throw error;
    }
  };
  const survey = async (): Promise<Seen[]> =>
    (await Promise.all(nodes.map(async (url) => ({ url, status: await ask(url) })))).filter(
      (seen): seen is Seen => seen.status !== undefined,
    );
  const leaderOf = (seen: readonly Seen[]): Seen | undefined => {
    const highestTerm = Math.max(...seen.map((each) => each.status.term));
    return seen.find((each) => each.status.role === "leader" && each.status.term === highestTerm);
  };

  // Every member must be up and replicating before the first restart. A cluster that is still
  // starting, or a member that answers slowly under load, is waited for (bounded); a member that
  // stays down is an error, and nothing is restarted.
  let why: RollingRestartError | undefined;
  const ready = await waitUntil(
    async () => {
      const verdict = readiness(await survey(), nodes);
      if (verdict instanceof RollingRestartError) {
        if (why?.message !== verdict.message) say(`waiting for the cluster: ${verdict.message}`);
        why = verdict;
        return undefined;
      }
      return verdict;
    },
    options.catchUpTimeoutMs ?? 60_000,
    { now, sleep, pollMs },
  );
  if (ready === undefined) throw why ?? new RollingRestartError("not_ready", "the cluster did not answer");
  const { leader, urlOf, members } = ready;
  // Every node would refuse the restart (403) to a token below admin: say so before the first.
  const caller = await options.client.whoami();
  if (!roleIncludes(caller.role, "admin")) {
    throw new RollingRestartError(
      "forbidden",
      `a rolling restart needs an admin token; the token in use is credential ${caller.name}, of role ${caller.role}`,
    );
  }
  noteLeader(leader.status.nodeId);
  const order = [...members.filter((member) => member !== leader.status.nodeId).sort(), leader.status.nodeId];
  say(
    `rolling restart of ${order.length} members, leader last: ${order.join(", ")} (leader ${leader.status.nodeId}, term ${leader.status.term})`,
  );

  const restarted: MemberRestart[] = [];
  for (const [position, member] of order.entries()) {
    const url = urlOf.get(member) as string;
    const before = await ask(url);
    if (before === undefined) throw new RollingRestartError("not_ready", `${member} (${url}) does not answer`);
    const wasLeader = before.role === "leader";
    const identity = identityOf(before);
    say(`[${position + 1}/${order.length}] restarting ${member}${wasLeader ? " (the leader: it hands its leadership over first)" : ""}`);
    const askedMs = now();
    try {
      await options.client.restartNode(url);
    } catch (error) {
      // The answer may be lost with the process that stops: whether it restarts shows below.
      if (!(error instanceof LockError)) throw error;
      say(`  ${member} did not confirm (${error.code}: ${error.message}); waiting for it anyway`);
    }
    const back = await waitUntil(
      async () => {
        const status = await ask(url);
        return status !== undefined && identityOf(status) !== identity ? status : undefined;
      },
      options.restartTimeoutMs ?? 60_000,
      { now, sleep, pollMs },
    );
    if (back === undefined)
      throw new RollingRestartError(
        "restart_timeout",
        `${member} did not answer as a new process within ${options.restartTimeoutMs ?? 60_000} ms`,
      );
    const backAtMs = now();
    // What it must reach: the leader's commit index as of its return (its own is volatile, relearned).
    const commitAtBack = leaderOf(await survey())?.status.commitIndex ?? back.commitIndex;
    say(`  ${member} is back (pid ${back.pid}) after ${Math.round(backAtMs - askedMs)} ms; waiting for it to reach index ${commitAtBack}`);
    const caughtUp = await waitUntil(
      async () => {
        const seen = await survey();
        const current = leaderOf(seen);
        if (current === undefined) return undefined;
        noteLeader(current.status.nodeId);
        const own = seen.find((each) => each.status.nodeId === member)?.status;
        if (own === undefined) return undefined;
        if (current.status.nodeId === member) return current.status.nodeId; // It leads again: caught up by definition.
        const progress = current.status.progress.find((peer) => peer.id === member);
        const replicating = progress?.state === "replicate" && progress.recentActive;
        return replicating && own.appliedIndex >= commitAtBack ? current.status.nodeId : undefined;
      },
      options.catchUpTimeoutMs ?? 60_000,
      { now, sleep, pollMs },
    );
    if (caughtUp === undefined)
      throw new RollingRestartError("catch_up_timeout", `${member} did not catch up within ${options.catchUpTimeoutMs ?? 60_000} ms`);
    const caughtUpMs = now() - backAtMs;
    say(`  ${member} caught up in ${Math.round(caughtUpMs)} ms; leader ${caughtUp}`);
    restarted.push({
      nodeId: member,
      url,
      wasLeader,
      askedAtMs: askedMs - startedMs,
      backMs: backAtMs - askedMs,
      caughtUpMs,
      leaderAfter: caughtUp,
    });
  }
  return { restarted, leaders, totalMs: now() - startedMs };
}

/**
 * readiness: whether a survey of the nodes shows a cluster that may be rolled: a leader, every
 * member (voters and learners, as the leader has them) answering at one of the URLs, and the
 * leader replicating to each; else why not.
 */
function readiness(
  seen: readonly Seen[],
  nodes: readonly string[],
): { leader: Seen; urlOf: Map<string, string>; members: string[] } | RollingRestartError {
  const highestTerm = Math.max(...seen.map((each) => each.status.term));
  const leader = seen.find((each) => each.status.role === "leader" && each.status.term === highestTerm);
  if (leader === undefined)
    return new RollingRestartError("not_ready", "no leader is known: the cluster must be up before a rolling restart");
  const urlOf = new Map(seen.map((each) => [each.status.nodeId, each.url]));
  const members = [...leader.status.voters, ...leader.status.learners];
  for (const member of members) {
    if (!urlOf.has(member))
      return new RollingRestartError(
        "unknown_member",
        `${member} is a member, but none of ${nodes.join(", ")} answered as it: give every member's URL (and every member must be up)`,
      );
  }
  for (const member of members) {
    if (member === leader.status.nodeId) continue;
    const progress = leader.status.progress.find((peer) => peer.id === member);
    if (progress === undefined || progress.state !== "replicate" || !progress.recentActive)
      return new RollingRestartError(
        "not_ready",
        `${member} is not caught up (the leader ${leader.status.nodeId} sees it ${progress === undefined ? "nowhere" : `${progress.state}${progress.recentActive ? "" : ", silent"}`}): restarting now could leave no majority`,
      );
  }
  return { leader, urlOf, members };
}

/** identityOf names the process behind a status: its bootId, or its pid for a node that sends none (an older one). */
function identityOf(status: NodeStatus): string {
  return status.bootId ?? `pid ${status.pid}`;
}

async function waitUntil<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs: number,
  clock: { now: () => number; sleep: (ms: number) => Promise<void>; pollMs: number },
): Promise<T | undefined> {
  const deadlineMs = clock.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (clock.now() >= deadlineMs) return undefined;
    await clock.sleep(clock.pollMs);
  }
}
