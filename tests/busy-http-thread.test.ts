// Heartbeats that request handling cannot starve (issue 17): a node's HTTP thread, blocked by a
// busy handler for several election timeouts, must not cost the cluster its leader. Real node
// processes on free loopback ports, each with the V8 inspector on a port of its own; the test
// makes a node's HTTP (main) thread run a busy loop for 3 s through the inspector
// (Runtime.evaluate runs on that thread only), which is what a handler that hogs the loop does.
// The raft thread (node/raft-thread.ts) is untouched by it, so the leader keeps sending
// heartbeats, and no follower may start an election: every node must stay in its term, with
// the same leader, during the block and after it.
//
// The block is shown to be real: a /status asked of the blocked node during it answers only
// once the busy loop ends. With the whole node on one loop (main's design before issue 17, put
// back for a run as a planted bug: main.ts calling startRaftSide itself instead of starting the
// raft thread) the followers elect a new leader during the first block, and this test fails.
//
// Bounds are generous (the machine is shared): the block is 3 s, ten times the longest election
// timeout; every wait is for a condition. The machine also elects by itself now and then, which
// says nothing of the node: a change during a block counts only if the cluster keeps its leader
// through as long a watch with no block right after (blockOutcome; three attempts at most). The
// planted one-loop design changes leader during every block, whatever the machine does.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { ProcessCluster, waitFor } from "../harness/process-cluster.ts";

const blockMs = 3000;

let cluster: ProcessCluster;

beforeAll(async () => {
  cluster = await ProcessCluster.start({ inspect: true });
}, 90_000);

afterAll(async () => {
  await cluster?.close();
});

/** InspectorSession drives one node's main thread through its V8 inspector (Chrome DevTools Protocol). */
class InspectorSession {
  private nextId = 1;
  private readonly waiting = new Map<number, (result: unknown) => void>();
  private readonly socket: WebSocket;
  private constructor(socket: WebSocket) {
    this.socket = socket;
    socket.on("message", (data) => {
      const message = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: unknown };
      if (message.id === undefined) return;
      this.waiting.get(message.id)?.(message.error ?? message.result);
      this.waiting.delete(message.id);
    });
  }

  static async connect(port: number): Promise<InspectorSession> {
    const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as { webSocketDebuggerUrl: string }[];
    const url = targets[0]?.webSocketDebuggerUrl;
    if (url === undefined) throw new Error(`no inspector target on port ${port}`);
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    return new InspectorSession(socket);
  }

  /** evaluate runs `expression` on the node's main thread and answers when it has run. */
  evaluate(expression: string): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.socket.send(JSON.stringify({ id, method: "Runtime.evaluate", params: { expression, returnByValue: true } }));
    });
  }

  /** close disconnects (a node with a debugger attached would wait for it before it exits). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.socket.once("close", () => resolve());
      this.socket.close();
    });
  }
}

/** busyLoop: an expression that keeps the thread running JavaScript for `ms`, as a hogging handler does. */
function busyLoop(ms: number): string {
  return `(() => { const end = Date.now() + ${ms}; let spins = 0; while (Date.now() < end) spins++; return spins; })()`;
}

interface Seen {
  readonly node: string;
  readonly term: number;
  readonly leaderId: string | null;
}

/** settledLeader waits until every node names the same leader in the same term, and answers them. */
async function settledLeader(): Promise<{ leader: string; term: number }> {
  return waitFor(
    async () => {
      const statuses = await Promise.all(cluster.ids().map((id) => cluster.status(id)));
      const first = statuses[0];
      if (first === undefined || first.leaderId === null) return undefined;
      const agreed = statuses.every((status) => status !== undefined && status.leaderId === first.leaderId && status.term === first.term);
      return agreed ? { leader: first.leaderId, term: first.term } : undefined;
    },
    "every node to name the same leader in the same term",
    30_000,
  );
}

/**
 * blockAndWatch blocks `blocked`'s HTTP thread for blockMs and, meanwhile, asks every other node
 * for its term and leader. It answers what they said, and how long the blocked node took to
 * answer a /status sent at the start of the block.
 */
async function blockAndWatch(blocked: string): Promise<{ seen: Seen[]; blockedStatusMs: number }> {
  const port = cluster.inspectorPorts.get(blocked) as number;
  const inspector = await InspectorSession.connect(port);
  try {
    let done = false;
    const block = inspector.evaluate(busyLoop(blockMs)).finally(() => {
      done = true;
    });
    // Sent once the busy loop runs: it cannot be answered before the loop ends.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const askedAt = performance.now();
    const blockedStatus = fetch(`${cluster.url(blocked)}/status`, { signal: AbortSignal.timeout(30_000) }).then(
      () => performance.now() - askedAt,
    );
    const seen: Seen[] = [];
    const others = cluster.ids().filter((id) => id !== blocked);
    for (let round = 0; round < 1000 && !done; round++) {
      for (const id of others) {
        const status = await cluster.status(id);
        if (status !== undefined) seen.push({ node: id, term: status.term, leaderId: status.leaderId });
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await block;
    return { seen, blockedStatusMs: await blockedStatus };
  } finally {
    await inspector.close();
  }
}

/** watchAll asks every node for its term and leader for `ms`, with no block (the control). */
async function watchAll(ms: number): Promise<Seen[]> {
  const seen: Seen[] = [];
  const end = performance.now() + ms;
  for (let round = 0; round < 1000 && performance.now() < end; round++) {
    for (const id of cluster.ids()) {
      const status = await cluster.status(id);
      if (status !== undefined) seen.push({ node: id, term: status.term, leaderId: status.leaderId });
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return seen;
}

interface BlockOutcome {
  /** changed: what differed from the leader and term before the block, during it or after. */
  readonly changed: readonly Seen[];
  /** blockedStatusMs: how long the blocked node took to answer a /status sent during the block. */
  readonly blockedStatusMs: number;
  readonly notes: readonly string[];
}

/**
 * blockOutcome blocks the HTTP thread of the node `pick` names (given the leader) and reports what
 * changed. This machine is shared, and elects now and then by itself (docs/DESIGN.md, "What it
 * does not fix"): a change during a block counts against the node only if the cluster, watched
 * as long right after with no block at all, keeps its leader. An attempt that saw a change both
 * ways says nothing, and is made again, three times at most.
 */
async function blockOutcome(pick: (leader: string) => string): Promise<BlockOutcome> {
  const notes: string[] = [];
  let last: BlockOutcome | undefined;
  for (let attempt = 1; attempt <= 3; attempt++) {
    const before = await settledLeader();
    const { seen, blockedStatusMs } = await blockAndWatch(pick(before.leader));
    const after = await settledLeader();
    const differs = (status: { term: number; leaderId: string | null }) => status.term !== before.term || status.leaderId !== before.leader;
    const changed = [
      ...seen.filter(differs),
      ...(differs({ term: after.term, leaderId: after.leader }) ? [{ node: "all", ...after, leaderId: after.leader }] : []),
    ];
    last = { changed, blockedStatusMs, notes };
    if (changed.length === 0) return last;
    const controlBefore = await settledLeader();
    const control = await watchAll(blockMs);
    const controlQuiet = control.every((status) => status.term === controlBefore.term && status.leaderId === controlBefore.leader);
    if (controlQuiet) return last; // The block did it.
    notes.push(`attempt ${attempt}: the leader changed during the block, and also ${blockMs} ms after it with no block: too noisy to tell`);
  }
  return last as BlockOutcome;
}

describe("a node whose HTTP thread is busy", () => {
  it("the leader's: no election, the same leader in the same term on every node, during the block and after", async () => {
    const outcome = await blockOutcome((leader) => leader);
    // The block was real: the leader's HTTP thread answered nothing for most of it.
    expect(outcome.blockedStatusMs).toBeGreaterThan(blockMs / 2);
    // Nobody started an election: the followers kept hearing the leader's heartbeats.
    expect(outcome.changed, outcome.notes.join("\n")).toEqual([]);
  }, 120_000);

  it("a follower's: no election either, and the follower still follows", async () => {
    const outcome = await blockOutcome((leader) => cluster.ids().find((id) => id !== leader) as string);
    expect(outcome.blockedStatusMs).toBeGreaterThan(blockMs / 2);
    expect(outcome.changed, outcome.notes.join("\n")).toEqual([]);
  }, 120_000);
});
