// Wall-clock faults on real node processes: every node runs under Debian's libfaketime, whose
// wall clock the test steps by ten minutes either way and strobes, while CLOCK_MONOTONIC is left
// alone (FAKETIME_DONT_FAKE_MONOTONIC: Linux never steps it). Leases, elections and timers run on
// the monotonic clock, so a wall-clock fault may change nothing but times of day:
// - a 1 s lease whose leader's clock steps (or strobes) while it runs ends 1 to 6 s after it was
//   asked for (a lease timed on the wall clock would end at once after a step forward, and ten
//   minutes late after one back: shown by planting Date.now() as the host's clock);
// - after a step back, a follower's status page still ages its last contact with a leader that
//   went silent (it used Date.now(), and showed "0 s ago" for ten minutes: the regression).
// Skipped where libfaketime is missing (CI installs it: apt-get install -y faketime).

import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { faketimeLibrary, NodeClocks } from "../chaos/environment.ts";
import { LockClient } from "../client/lock-client.ts";
import { ProcessCluster, waitFor } from "../harness/process-cluster.ts";

let cluster: ProcessCluster | undefined;
let clockDir: string | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
  if (clockDir !== undefined) rmSync(clockDir, { recursive: true, force: true });
});

async function startOnFakeClocks(): Promise<{ cluster: ProcessCluster; clocks: NodeClocks }> {
  clockDir = mkdtempSync(join(tmpdir(), "sctec-clock-steps-"));
  const clocks = new NodeClocks(clockDir);
  cluster = await ProcessCluster.start({
    envFor: (id) => ({ LD_PRELOAD: faketimeLibrary, ...clocks.environment(id) }),
    leaderTimeoutMs: 60_000, // Generous: a loaded machine starts three processes slowly.
  });
  return { cluster, clocks };
}

/**
 * leaseLifetimeMs takes a 1 s lease that is never renewed and measures, from the moment it was
 * asked for, until it is gone (bounded). It asks with a bare /lock request, not acquire(): a Lease
 * object unlocks itself at its own, pessimistic local deadline (about 0.9 s after the send), and
 * what is measured here is when the cluster ends the lease by itself.
 */
async function leaseLifetimeMs(
  client: LockClient,
  resource: string,
  during: () => void | Promise<void> = () => undefined,
): Promise<number> {
  const askedMs = performance.now();
  await client.mutate("/lock", { resources: [resource], owner: "clock-probe", ttlMs: 1000, waitMs: 0 }, { deadlineMs: askedMs + 10_000 });
  await during();
  await waitFor(
    async () => ((await client.leases()).some((lease) => lease.resource === resource) ? undefined : true),
    `${resource} to expire`,
    30_000,
  );
  return performance.now() - askedMs;
}

describe.skipIf(!existsSync(faketimeLibrary))("wall-clock faults on real nodes (libfaketime)", () => {
  it("a lease ends about its TTL after the grant whether the leader's wall clock steps back, steps forward or strobes", async () => {
    const { cluster: started, clocks } = await startOnFakeClocks();
    const leader = await started.waitForLeader(30_000);
    const client = new LockClient({ nodes: started.urls(), apiToken: started.apiToken, retriesMax: 20 });
    // Each step comes after the grant, while the lease runs: the countdown must not notice.
    const afterStepBack = await leaseLifetimeMs(client, "step-back", () => clocks.set(leader, -600));
    clocks.set(leader, 0);
    const afterStepForward = await leaseLifetimeMs(client, "step-forward", () => clocks.set(leader, +600));
    clocks.set(leader, 0);
    let strobing = false;
    let strobe: Promise<void> = Promise.resolve();
    const whileStrobing = await leaseLifetimeMs(client, "strobe", () => {
      strobing = true;
      strobe = (async () => {
        for (let flip = 0; strobing && flip < 400; flip++) {
          clocks.set(leader, flip % 2 === 0 ? 300 : -300);
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
    });
    strobing = false;
    await strobe;
    clocks.set(leader, 0);
    for (const lifetimeMs of [afterStepBack, afterStepForward, whileStrobing]) {
      expect(lifetimeMs).toBeGreaterThanOrEqual(1000);
      expect(lifetimeMs).toBeLessThan(6000); // Generous: a failover meanwhile restarts the countdown.
    }
  }, 90_000);

  it("after a wall-clock step back, a follower's status page still ages its last contact with a leader that went silent", async () => {
    const { cluster: started, clocks } = await startOnFakeClocks();
    const viewOf = async (id: string) =>
      (await (await fetch(`${started.url(id)}/status/view`, { signal: AbortSignal.timeout(2000) })).json()) as {
        view: { leaderId: string | null };
        members: { id: string; lastContactAgoMs: number | null }[];
      };
    // A settled cluster: some follower follows a leader and has just heard from it.
    const { follower, leader } = await waitFor(
      async () => {
        for (const id of started.ids()) {
          const view = await viewOf(id).catch(() => undefined);
          const leaderId = view?.view.leaderId ?? null;
          const contact = view?.members.find((member) => member.id === leaderId)?.lastContactAgoMs;
          if (leaderId !== null && leaderId !== id && typeof contact === "number" && contact < 500)
            return { follower: id, leader: leaderId };
        }
        return undefined;
      },
      "a follower that hears from its leader",
      20_000,
    );
    // The leader goes silent; its last contact was stamped on the real time. Then the follower's
    // wall clock steps back ten minutes: "now" is before that stamp.
    started.signal(leader, "SIGSTOP");
    try {
      clocks.set(follower, -600);
      await new Promise((resolve) => setTimeout(resolve, 2500));
      const silent = (await viewOf(follower)).members.find((member) => member.id === leader);
      expect(silent?.lastContactAgoMs, JSON.stringify(silent)).toBeGreaterThanOrEqual(2000);
    } finally {
      started.signal(leader, "SIGCONT");
    }
  }, 60_000);
});
