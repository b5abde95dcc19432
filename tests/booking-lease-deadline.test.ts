// The booking API keeps the lease's truth (issue: "a lease tells its holder the truth on time"): a
// scheduler whose lease ends before its write answers `lease_lost` with nothing written, whether
// the client's deadline timer ended the lease first (the txn is refused locally, never sent) or
// the cluster's fence refuses a txn that was sent (the lease was released behind the scheduler's
// back). Bookings in one process against an in-process three-node cluster; the cluster port is
// wrapped so the test can act between the acquire and the write, where a slow scheduler would be.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Lease, LockClient } from "../client/lock-client.ts";
import { HttpTransport, type LockTransport } from "../client/transport.ts";
import { waitFor } from "../harness/process-cluster.ts";
import { type HttpCluster, startHttpCluster } from "../node/testing/http-cluster.ts";
import { type BookingObserver, Bookings } from "../scheduler/bookings.ts";
import { type ClusterLease, type ClusterPort, lockClusterPort } from "../scheduler/cluster.ts";
import { ApiError } from "../scheduler/errors.ts";
import { createSchedulerLogger, type SchedulerLogger } from "../scheduler/logging.ts";
import type { Scientist } from "../scheduler/records.ts";
import type { Telescope } from "../scheduler/slots.ts";

const telescope: Telescope = { id: "hubble-acad", name: "Hubble Acad", slotMinutes: 5, horizonDays: 30, slotsPerBookingMax: 12 };

let cluster: HttpCluster;
const logDir = mkdtempSync(join(tmpdir(), "sctec-deadline-"));
beforeAll(async () => {
  cluster = await startHttpCluster();
});
afterAll(async () => {
  await cluster.stop();
  rmSync(logDir, { recursive: true, force: true });
});

interface Setup {
  readonly bookings: Bookings;
  readonly log: SchedulerLogger;
  /** sentPaths: every request the scheduler's LockClient sent to the cluster. */
  readonly sentPaths: string[];
  /** refusals: fencingRejected reports, by who refused. */
  readonly refusals: string[];
}

/**
 * setup builds Bookings with leases of `leaseTtlMs` whose claims read runs `beforeRead(lease)`
 * first (the acquire's own reads are dropped, so one happens); `leases` collects the client's
 * Lease objects, to watch their signals.
 */
function setup(leaseTtlMs: number, beforeRead: (lease: ClusterLease) => Promise<void>): Setup & { leases: Lease[] } {
  const sentPaths: string[] = [];
  const http = new HttpTransport([...cluster.urls.values()]);
  const counting: LockTransport = {
    send: (request) => {
      sentPaths.push(request.path);
      return http.send(request);
    },
  };
  const leases: Lease[] = [];
  const client = new LockClient({ nodes: [...cluster.urls.values()], apiToken: cluster.apiToken, transport: counting });
  const acquire = client.acquire.bind(client);
  client.acquire = async (resources, options) => {
    const lease = await acquire(resources, options);
    leases.push(lease);
    return lease;
  };
  const port = lockClusterPort(client);
  let current: ClusterLease | undefined;
  const wrapped: ClusterPort = {
    ...port,
    async acquire(resources, options) {
      current = await port.acquire(resources, options);
      return { ...current, reads: undefined };
    },
    async range(prefix, options) {
      if (current !== undefined) await beforeRead(current);
      return port.range(prefix, options);
    },
  };
  const refusals: string[] = [];
  const observer: BookingObserver = {
    bookingCreated: () => undefined,
    bookingCancelled: () => undefined,
    bookingConflict: () => undefined,
    fencingRejected: (refusedBy) => void refusals.push(refusedBy),
    lockWaited: () => undefined,
  };
  const { log } = createSchedulerLogger({ logDir, pretty: false, instanceId: "deadline-test", stdout: new PassThrough() });
  const bookings = new Bookings({
    cluster: wrapped,
    telescopes: new Map([[telescope.id, telescope]]),
    serviceName: "scheduler",
    leaseTtlMs,
    nowMs: () => Date.now(),
    observer,
  });
  return { bookings, log, sentPaths, refusals, leases };
}

const scientist: Scientist = {
  id: "sc_deadline",
  name: "Dee",
  email: "dee@example.org",
  keyHash: "x",
  createdAtUtc: new Date().toISOString(),
};

function slotInput(daysAhead: number) {
  const start = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + daysAhead, 9, 0);
  const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;
  return {
    telescopeId: telescope.id,
    startUtc: iso(start),
    endUtc: iso(start + 300_000),
    requestedAtUtc: new Date().toISOString(),
    idempotencyKey: undefined,
  };
}

describe("a booking whose lease ends before its write", () => {
  it("the lease's deadline timer fires first: lease_lost, the txn never sent, nothing stored", async () => {
    // Valid locally for 600 × 0.9 − 100 = 440 ms: the read waits for the lease's `lost`, which only
    // its deadline timer can raise here (nothing else runs meanwhile).
    const lostAt: number[] = [];
    const run = setup(600, async () => {
      const lease = run.leases.at(-1) as Lease;
      lease.on("lost", () => void lostAt.push(performance.now()));
      await waitFor(() => (lostAt.length > 0 ? true : undefined), "the lease's lost signal", 5000);
    });
    const input = slotInput(4);
    const outcome = await run.bookings.create(input, scientist, run.log, "req-deadline").catch((error: unknown) => error);
    expect(outcome).toBeInstanceOf(ApiError);
    expect(outcome).toMatchObject({ code: "lease_lost" });
    expect((outcome as ApiError).message).toContain("nothing was written");
    expect(run.refusals).toEqual(["client"]);
    expect(lostAt).toHaveLength(1);
    expect(run.sentPaths.filter((path) => path === "/txn")).toEqual([]);
    await expectNothingStored(input.startUtc);
  });

  it("the cluster's fence refuses a txn under a lease released behind the scheduler's back: lease_lost, nothing stored", async () => {
    const operator = new LockClient({ nodes: [...cluster.urls.values()], apiToken: cluster.apiToken });
    const input = slotInput(5);
    // A TTL long enough that the lease is still valid locally when the txn is sent, however slow the machine.
    const run = setup(30_000, async (lease) => {
      const resource = `${telescope.id}_${input.startUtc}`;
      await operator.mutate("/unlock", { resources: [resource], token: lease.token });
    });
    const outcome = await run.bookings.create(input, scientist, run.log, "req-fenced").catch((error: unknown) => error);
    expect(outcome).toMatchObject({ code: "lease_lost" });
    expect(run.refusals).toEqual(["cluster"]);
    expect(run.sentPaths.filter((path) => path === "/txn")).toEqual(["/txn"]);
    await expectNothingStored(input.startUtc);
  });
});

async function expectNothingStored(startUtc: string): Promise<void> {
  const reader = new LockClient({ nodes: [...cluster.urls.values()], apiToken: cluster.apiToken });
  const all = await reader.range("", { limit: 1000 });
  const mentions = all.items.filter((item) => item.key.includes(startUtc) || item.value.includes(startUtc));
  expect(mentions).toEqual([]);
}
