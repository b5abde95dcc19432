// LockClient against a real (in-process) three-node cluster behind HTTP: fencing tokens, conflicts
// with the holder, release, fenced writes refused under a stale lease, any node will do (a dead
// one is skipped), automatic renewal, the `lost` signal, pessimistic validity counted from the
// send time, and bounded retries with jittered backoff (with an injected clock and sleep).

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LockClient, LockError } from "../client/lock-client.ts";
import { type HttpCluster, startHttpCluster } from "../node/testing/http-cluster.ts";

let cluster: HttpCluster;
beforeAll(async () => {
  cluster = await startHttpCluster();
});
afterAll(async () => {
  await cluster.stop();
});

const client = (options: Partial<ConstructorParameters<typeof LockClient>[0]> = {}) =>
  new LockClient({ nodes: [...cluster.urls.values()], apiToken: cluster.apiToken, ...options });

describe("LockClient", () => {
  it("acquires with a fencing token, conflicts name the holder, release frees the resource", async () => {
    const alice = client();
    const lease = await alice.acquire(["slot-a"], { ttlMs: 5000, autoRenew: false });
    expect(lease.token).toMatch(/^\d+$/);
    expect(lease.isValid()).toBe(true);
    const error = await client()
      .acquire(["slot-a"], { ttlMs: 5000 })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(LockError);
    expect(error).toMatchObject({ code: "conflict", holder: { token: lease.token } });
    await lease.release();
    expect(lease.isValid()).toBe(false);
    const next = await client().acquire(["slot-a"], { ttlMs: 5000, autoRenew: false });
    expect(BigInt(next.token)).toBeGreaterThan(BigInt(lease.token));
    await next.release();
  });

  it("writes under its lease, and a stale lease's write is refused", async () => {
    const first = await client().acquire(["slot-b"], { ttlMs: 5000, autoRenew: false });
    await first.release();
    const second = await client().acquire(["slot-b"], { ttlMs: 5000, autoRenew: false });
    await second.put([{ key: "booking/b", value: "second" }]);
    const refused = await first.put([{ key: "booking/b", value: "first" }]).catch((caught: unknown) => caught);
    expect(refused).toMatchObject({ code: "stale_fencing_token" });
    expect((await client().get("booking/b"))?.value).toBe("second");
    expect(await client().get("booking/none")).toBeUndefined();
    await second.release();
  });

  it("works from any node, skipping one that is down", async () => {
    const viaDeadNode = new LockClient({
      nodes: ["http://127.0.0.1:9", cluster.followerUrl()],
      apiToken: cluster.apiToken,
      retryBaseMs: 1,
    });
    const lease = await viaDeadNode.acquire(["slot-c"], { ttlMs: 5000, autoRenew: false });
    expect((await viaDeadNode.leases()).map((item) => item.resource)).toContain("slot-c");
    await lease.release();
  });

  it("renews automatically, and signals `lost` when the cluster no longer has the lease", async () => {
    const lease = await client().acquire(["slot-d"], { ttlMs: 300 });
    let renewed = 0;
    lease.on("renewed", () => renewed++);
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(renewed).toBeGreaterThan(0);
    expect(lease.isValid()).toBe(true);
    const lost = new Promise<LockError | undefined>((resolve) => lease.on("lost", resolve));
    // Someone who knows the token releases it behind the holder's back (an operator, say).
    await client().mutate("/unlock", { resources: ["slot-d"], token: lease.token });
    expect((await lost)?.code).toBe("not_held");
    expect(lease.isValid()).toBe(false);
  });

  it("counts validity from the send time, minus the drift discount and margin", async () => {
    let clock = 1000;
    const lease = await client({ now: () => clock, clockDriftDiscount: 0.1, safetyMarginMs: 50 }).acquire(["slot-e"], {
      ttlMs: 1000,
      autoRenew: false,
    });
    expect(lease.validUntil).toBe(1000 + 900 - 50);
    clock = 1849;
    expect(lease.isValid()).toBe(true);
    clock = 1850;
    expect(lease.isValid()).toBe(false);
    await lease.release();
  });

  it("retries unreachable nodes a bounded number of times, with full-jitter backoff", async () => {
    const sleeps: number[] = [];
    const unreachable = new LockClient({
      nodes: ["http://127.0.0.1:9"],
      apiToken: "x".repeat(20),
      retriesMax: 4,
      retryBaseMs: 100,
      retryMaxMs: 250,
      random: () => 0.999,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
    });
    const error = await unreachable.acquire(["slot-f"], { ttlMs: 1000 }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: "unavailable" });
    expect(sleeps).toEqual([99, 199, 249, 249]);
  });

  it("does not retry errors that a retry cannot fix, and honours AbortSignal", async () => {
    let attempts = 0;
    const badToken = new LockClient({
      nodes: [cluster.leaderUrl()],
      apiToken: "wrong-token-0123456789",
      sleep: async () => void attempts++,
    });
    await expect(badToken.acquire(["slot-g"], { ttlMs: 1000 })).rejects.toMatchObject({ code: "unauthorized" });
    expect(attempts).toBe(0);
    const controller = new AbortController();
    controller.abort();
    await expect(client().acquire(["slot-g"], { ttlMs: 1000, signal: controller.signal })).rejects.toMatchObject({ code: "aborted" });
  });
});
