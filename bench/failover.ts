// failovers: what bench:locks and bench:overload measure alike: the leader `kill -9`ed, and the
// time from the kill to the next successful acquire, `count` times (the killed node is restarted
// and given a second to catch up before the next kill).

import { LockClient } from "../client/lock-client.ts";
import { type ProcessCluster, waitFor } from "../harness/process-cluster.ts";

/** tlsOf: a LockClient's TLS option for `cluster` (its CA), or nothing for a plain one. */
export function tlsOf(cluster: ProcessCluster): { tls?: { ca: string } } {
  const ca = cluster.caPem();
  return ca === undefined ? {} : { tls: { ca } };
}

/** failovers kills the leader `count` times and measures kill → next successful acquire; `progress` hears each. */
export async function failovers(
  cluster: ProcessCluster,
  count: number,
  progress: (message: string) => void,
  resourcePrefix = "failover",
): Promise<{ samplesMs: number[] }> {
  const samplesMs: number[] = [];
  for (let round = 0; round < count; round++) {
    const leader = await cluster.waitForLeader(10_000);
    const client = new LockClient({
      nodes: cluster.urls(),
      apiToken: cluster.apiToken,
      ...tlsOf(cluster),
      requestTimeoutMs: 300,
      retriesMax: 200,
      retryBaseMs: 2,
      retryMaxMs: 20,
    });
    const killedAt = performance.now();
    await cluster.kill(leader);
    const lease = await client.acquire([`${resourcePrefix}-${round}`], { ttlMs: 60_000, autoRenew: false });
    samplesMs.push(performance.now() - killedAt);
    await lease.release();
    cluster.startNode(leader);
    // Generous: a node restarts through tsx, which takes tens of seconds on a loaded machine.
    await waitFor(() => cluster.status(leader), `${leader} to come back`, 120_000);
    await new Promise((resolve) => setTimeout(resolve, 1000)); // Let it catch up before the next kill.
    progress(`failover ${round + 1}/${count}: ${samplesMs[samplesMs.length - 1]?.toFixed(0)} ms`);
  }
  return { samplesMs };
}
