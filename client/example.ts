// The README's example, shown there verbatim from the import on: hold a lease while doing work that
// no store can fence (pointing a telescope), and act on the lease's signals. scripts/docs.test.ts
// checks that the README shows this file; tests/lease-timing.test.ts runs it on a fake clock, with
// a healthy network and with one cut in the middle of the work.

import { type Lease, type LockClient, LockError } from "./lock-client.ts";

/** Telescope is the work: `observe` runs until done, or ends early when `signal` aborts. */
export interface Telescope {
  observe(signal: AbortSignal): Promise<string>;
  holdNewCommands(): void;
  resumeCommands(): void;
}

export async function observeUnderLease(client: LockClient, telescope: Telescope): Promise<string> {
  let lease: Lease | undefined;
  try {
    lease = await client.acquire(["hubble-acad_2025-12-01T03:00:00Z"], { ttlMs: 10_000 });
    const lost = new AbortController();
    lease.on("jeopardy", () => telescope.holdNewCommands()); // renewals failing: start nothing new
    lease.on("safe", () => telescope.resumeCommands()); // a renewal got through in time
    lease.on("lost", () => lost.abort()); // at the lease's local deadline at the latest: stop now
    const result = await telescope.observe(lost.signal);
    // Refused here, nothing sent, once the lease is not valid (lease_expired); the cluster's
    // fencing token check refuses it too if the lease is no longer current (stale_fencing_token).
    await lease.put([{ key: "observation/42", value: result }]);
    return `observed under fencing token ${lease.token}`; // the Raft index of the grant, e.g. "12"
  } catch (error) {
    // Codes: conflict (with holder), lease_expired, stale_fencing_token, not_held, wait_timeout, timeout, unavailable, …
    if (error instanceof LockError && error.code === "conflict") return `busy: held under token ${error.holder?.token}`;
    if (error instanceof LockError && error.code === "lease_expired") return "lost the lease: observation abandoned";
    throw error;
  } finally {
    await lease?.release().catch(() => undefined); // whatever happened; after `lost` too (the cluster may still hold it)
  }
}
