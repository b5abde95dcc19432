// LockClient and a node that refuses the connection (issue 17's failover target): nothing
// listens at a killed node's address, and the client asks the next node at once instead of
// waiting a backoff for nothing. The attempts and their waits are counted as before: a round of
// refusals costs one attempt, so a cluster that refuses everywhere still waits between rounds and
// the client gives up after as many waits as before. Anything else (a timeout, a 503) keeps the
// backoff. A scripted transport answers, an injected sleep records the waits: nothing here takes
// time.

import { describe, expect, it } from "vitest";
import { LockClient, LockError } from "./lock-client.ts";
import type { LockTransport, TransportAnswer, TransportRequest } from "./transport.ts";

const granted: TransportAnswer = {
  status: 200,
  body: JSON.stringify({ status: "granted", token: "7", resources: ["r"], owner: "o", ttlMs: 10_000 }),
  leaderUrl: undefined,
};

const noLeader: TransportAnswer = {
  status: 503,
  body: JSON.stringify({ error: { code: "no_leader", message: "electing" } }),
  leaderUrl: undefined,
};

/** refused: what undici rejects with when nothing listens (a socket error carrying ECONNREFUSED). */
function refused(node: string): Error {
  return Object.assign(new Error(`connect ECONNREFUSED ${new URL(node).host}`), { code: "ECONNREFUSED" });
}

/** timedOut: what an attempt whose node is silent ends with (the client's own timer aborts it). */
function timedOut(): Error {
  return new DOMException("The operation was aborted due to timeout", "TimeoutError");
}

type Step = TransportAnswer | "refused" | "timeout";

/** scripted answers each send with the next step of the node it went to, and records which node. */
function scripted(steps: Record<string, Step[]>): { transport: LockTransport; nodesAsked: string[] } {
  const nodesAsked: string[] = [];
  return {
    nodesAsked,
    transport: {
      send: async (request: TransportRequest) => {
        const name = new URL(request.node).port;
        nodesAsked.push(name);
        const step = steps[name]?.shift();
        if (step === undefined) throw new Error(`the script ran out for node ${name}`);
        if (step === "refused") throw refused(request.node);
        if (step === "timeout") throw timedOut();
        return step;
      },
    },
  };
}

function client(transport: LockTransport, sleeps: number[], options: { retriesMax?: number } = {}): LockClient {
  return new LockClient({
    nodes: ["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"],
    apiToken: "t".repeat(16),
    transport,
    random: () => 0.5,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...options,
  });
}

describe("LockClient and a node that refuses the connection", () => {
  it("asks the next node at once, without a backoff", async () => {
    const sleeps: number[] = [];
    const { transport, nodesAsked } = scripted({ "1": ["refused"], "2": [granted] });
    const lease = await client(transport, sleeps).acquire(["r"], { ttlMs: 10_000, autoRenew: false });
    expect(lease.token).toBe("7");
    expect(nodesAsked).toEqual(["1", "2"]);
    expect(sleeps).toEqual([]);
  });

  it("keeps the backoff schedule for other answers: a refusal in between costs no wait and no attempt", async () => {
    const sleeps: number[] = [];
    // The killed leader is node 1; nodes 2 and 3 are electing (503), then node 3 leads.
    const { transport, nodesAsked } = scripted({ "1": ["refused", "refused"], "2": [noLeader, noLeader], "3": [noLeader, granted] });
    await client(transport, sleeps).acquire(["r"], { ttlMs: 10_000, autoRenew: false });
    expect(nodesAsked).toEqual(["1", "2", "3", "1", "2", "3"]);
    // Attempts 0..3 (a refusal and the send after it are one attempt): backoff ceilings 50, 100, 200 ms, random 0.5.
    expect(sleeps).toEqual([25, 50, 100]);
  });

  it("waits between rounds when every node refuses, and gives up after as many waits as before", async () => {
    const sleeps: number[] = [];
    const everywhere: Step[] = ["refused", "refused", "refused"];
    const { transport, nodesAsked } = scripted({ "1": [...everywhere], "2": [...everywhere], "3": [...everywhere] });
    const error = await client(transport, sleeps, { retriesMax: 2 })
      .acquire(["r"], { ttlMs: 10_000, autoRenew: false })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LockError);
    expect(error).toMatchObject({ code: "unavailable" });
    // (retriesMax + 1) rounds of three sends; a wait between rounds only.
    expect(nodesAsked).toEqual(["1", "2", "3", "1", "2", "3", "1", "2", "3"]);
    expect(sleeps).toEqual([25, 50]);
  });

  it("backs off after a timeout: a silent node may be alive", async () => {
    const sleeps: number[] = [];
    const { transport, nodesAsked } = scripted({ "1": ["timeout"], "2": [granted] });
    await client(transport, sleeps).acquire(["r"], { ttlMs: 10_000, autoRenew: false });
    expect(nodesAsked).toEqual(["1", "2"]);
    expect(sleeps).toEqual([25]);
  });
});
