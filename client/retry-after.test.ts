// LockClient and an overloaded node (issue 17): a `503 overloaded` is retried after the wait the
// node asked for (details.retryAfterMs to the millisecond, else its Retry-After header in seconds)
// plus the usual jittered backoff, never longer than retryAfterMaxMs; other 503s keep the plain
// backoff; once the retries run out the caller gets LockError `overloaded` with the node's wait.
// A scripted transport answers, an injected sleep records the waits: nothing here takes time.

import { describe, expect, it } from "vitest";
import { LockClient, LockError } from "./lock-client.ts";
import type { LockTransport, TransportAnswer } from "./transport.ts";
import { retryAfterHeaderMs } from "./transport.ts";

const granted: TransportAnswer = {
  status: 200,
  body: JSON.stringify({ status: "granted", token: "7", resources: ["r"], owner: "o", ttlMs: 10_000 }),
  leaderUrl: undefined,
};

function overloaded(details: object | undefined, retryAfterMs?: number): TransportAnswer {
  return {
    status: 503,
    body: JSON.stringify({ error: { code: "overloaded", message: "shed", ...(details === undefined ? {} : { details }) } }),
    leaderUrl: undefined,
    retryAfterMs,
  };
}

function scripted(answers: TransportAnswer[]): { transport: LockTransport; sent: () => number } {
  let sent = 0;
  return {
    transport: {
      send: async () => {
        sent++;
        const next = answers.shift();
        if (next === undefined) throw new Error("the script ran out");
        return next;
      },
    },
    sent: () => sent,
  };
}

function client(transport: LockTransport, sleeps: number[], options: { retriesMax?: number; retryAfterMaxMs?: number } = {}): LockClient {
  return new LockClient({
    nodes: ["http://127.0.0.1:1", "http://127.0.0.1:2"],
    apiToken: "t".repeat(16),
    transport,
    random: () => 0.5,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    ...options,
  });
}

describe("LockClient and 503 overloaded", () => {
  it("waits what the node asked (details.retryAfterMs) plus the jittered backoff, then succeeds", async () => {
    const sleeps: number[] = [];
    const { transport, sent } = scripted([overloaded({ retryAfterMs: 250 }, 1000), overloaded({ retryAfterMs: 250 }, 1000), granted]);
    const lease = await client(transport, sleeps).acquire(["r"], { ttlMs: 10_000, autoRenew: false });
    expect(lease.token).toBe("7");
    expect(sent()).toBe(3);
    // Backoff ceilings 50 and 100 ms with random 0.5: 25 and 50.
    expect(sleeps).toEqual([250 + 25, 250 + 50]);
  });

  it("falls back on the Retry-After header (whole seconds) when the answer names no wait", async () => {
    const sleeps: number[] = [];
    const { transport } = scripted([overloaded(undefined, 2000), granted]);
    await client(transport, sleeps).acquire(["r"], { ttlMs: 10_000, autoRenew: false });
    expect(sleeps).toEqual([2000 + 25]);
  });

  it("never waits longer than retryAfterMaxMs, whatever the node asks", async () => {
    const sleeps: number[] = [];
    const { transport } = scripted([overloaded({ retryAfterMs: 600_000 }, 600_000), granted]);
    await client(transport, sleeps, { retryAfterMaxMs: 3000 }).acquire(["r"], { ttlMs: 10_000, autoRenew: false });
    expect(sleeps).toEqual([3000]);
  });

  it("keeps the plain backoff after another 503", async () => {
    const sleeps: number[] = [];
    const noLeader: TransportAnswer = {
      status: 503,
      body: JSON.stringify({ error: { code: "no_leader", message: "electing" } }),
      leaderUrl: undefined,
      retryAfterMs: 1000,
    };
    const { transport } = scripted([overloaded({ retryAfterMs: 400 }), noLeader, granted]);
    await client(transport, sleeps).acquire(["r"], { ttlMs: 10_000, autoRenew: false });
    expect(sleeps).toEqual([400 + 25, 50]);
  });

  it("gives up after retriesMax with LockError overloaded, which carries the node's wait", async () => {
    const sleeps: number[] = [];
    const { transport, sent } = scripted([
      overloaded({ retryAfterMs: 100 }),
      overloaded({ retryAfterMs: 100 }),
      overloaded({ retryAfterMs: 100 }),
    ]);
    const error = await client(transport, sleeps, { retriesMax: 2 })
      .acquire(["r"], { ttlMs: 10_000, autoRenew: false })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LockError);
    expect(error).toMatchObject({ code: "overloaded", nodeCode: "overloaded", status: 503, details: { retryAfterMs: 100 } });
    expect(sent()).toBe(3);
    expect(sleeps).toHaveLength(2);
  });

  it("reads Retry-After in delay-seconds only", () => {
    expect(retryAfterHeaderMs("3")).toBe(3000);
    expect(retryAfterHeaderMs(" 0 ")).toBe(0);
    expect(retryAfterHeaderMs("Wed, 21 Oct 2015 07:28:00 GMT")).toBeUndefined();
    expect(retryAfterHeaderMs("-1")).toBeUndefined();
    expect(retryAfterHeaderMs("1.5")).toBeUndefined();
  });
});
