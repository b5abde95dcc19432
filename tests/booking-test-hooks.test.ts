// The booking flow calls its test hooks (scheduler/test-hooks.ts) at their points, and nowhere
// else: `leaseNames` names what the acquire asks for, `afterChecks` runs after the claims were read
// and before the fenced txn, for a booking and for a cancellation. Bookings in one process against
// an in-process three-node cluster, with every request to the cluster recorded beside the hooks'
// calls. With locking off's lease names and a barrier at afterChecks, two bookings of one slot both
// pass the check and both are stored: the lab's delivery 2 race, shown without timing. Planted and
// caught (then removed): Bookings ignoring testHooks (always productionHooks), afterChecks called
// before the acquire, and the cancellation skipping afterChecks.

import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LockClient } from "../client/lock-client.ts";
import { HttpTransport, type LockTransport } from "../client/transport.ts";
import { type HttpCluster, startHttpCluster } from "../node/testing/http-cluster.ts";
import { Bookings } from "../scheduler/bookings.ts";
import { lockClusterPort } from "../scheduler/cluster.ts";
import type { SchedulerLogger } from "../scheduler/logging.ts";
import type { Scientist } from "../scheduler/records.ts";
import type { Telescope } from "../scheduler/slots.ts";
import { type BookingTestHooks, productionHooks, unlockedLeaseNames } from "../scheduler/test-hooks.ts";

const telescope: Telescope = { id: "hubble-acad", name: "Hubble Acad", slotMinutes: 5, horizonDays: 30, slotsPerBookingMax: 12 };
const log: SchedulerLogger = pino({ level: "silent", customLevels: { audit: 35 } });

let cluster: HttpCluster;
beforeAll(async () => {
  cluster = await startHttpCluster();
});
afterAll(async () => {
  await cluster.stop();
});

/** setup: Bookings with these hooks; `trace` gets every cluster request's path, and whatever the hooks add. */
function setup(hooks: BookingTestHooks | undefined): { bookings: Bookings; trace: string[] } {
  const trace: string[] = [];
  const http = new HttpTransport([...cluster.urls.values()]);
  const recording: LockTransport = {
    send: (request) => {
      trace.push(request.path);
      return http.send(request);
    },
  };
  const client = new LockClient({ nodes: [...cluster.urls.values()], apiToken: cluster.apiToken, transport: recording });
  const bookings = new Bookings({
    cluster: lockClusterPort(client),
    telescopes: new Map([[telescope.id, telescope]]),
    serviceName: "scheduler",
    leaseTtlMs: 30_000,
    nowMs: () => Date.now(),
    ...(hooks === undefined ? {} : { testHooks: hooks }),
  });
  return { bookings, trace };
}

function scientist(id: string): Scientist {
  return { id, name: id, email: `${id}@example.org`, keyHash: "x", createdAtUtc: new Date().toISOString() };
}

function slotInput(daysAhead: number, hour: number) {
  const now = new Date();
  const start = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + daysAhead, hour, 0);
  const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;
  return {
    telescopeId: telescope.id,
    startUtc: iso(start),
    endUtc: iso(start + 600_000),
    requestedAtUtc: now.toISOString(),
    idempotencyKey: undefined,
  };
}

/** recordingHooks: production behaviour, with each call written into the trace. */
function recordingHooks(trace: () => string[]): BookingTestHooks {
  return {
    leaseNames: (slotResources, bookingId, hookLog) => {
      trace().push(`leaseNames ${slotResources.join(",")}`);
      return productionHooks.leaseNames(slotResources, bookingId, hookLog);
    },
    afterChecks: async (flow) => {
      trace().push(`afterChecks ${flow}`);
    },
  };
}

describe("the booking flow's test hooks", () => {
  it("run at their points: lease names before the acquire, afterChecks between the checks and the fenced txn", async () => {
    let trace: string[] = [];
    const run = setup(recordingHooks(() => trace));
    trace = run.trace;
    const input = slotInput(6, 9);
    const owner = scientist("sci_000000000001");
    const { booking } = await run.bookings.create(input, owner, log, "req-hooks-create");
    const slots = booking.slots.map((slot) => `${telescope.id}_${slot}`).join(",");
    // The acquire's grant carries the claims read; the txn ends the lease.
    expect(trace).toEqual([`leaseNames ${slots}`, "/lock", "afterChecks booking", "/txn"]);

    trace.length = 0;
    await run.bookings.cancel(booking.id, owner, log, "req-hooks-cancel");
    // The booking is read before and again under the lease, then afterChecks, then the txn.
    const read = `/kv/${encodeURIComponent(`booking/${booking.id}`)}`;
    expect(trace).toEqual([read, `leaseNames ${slots}`, "/lock", read, "afterChecks cancellation", "/txn"]);
  });

  it("with locking off's lease names, two bookings of one slot both pass the check and both are stored (the lab's delivery 2)", async () => {
    let arrived = 0;
    let release: () => void = () => undefined;
    const bothChecked = new Promise<void>((resolve) => {
      release = resolve;
    });
    const barrier: BookingTestHooks = {
      leaseNames: unlockedLeaseNames,
      // Each waits at the point between its check and its write until the other has checked too.
      afterChecks: async () => {
        arrived += 1;
        if (arrived === 2) release();
        await bothChecked;
      },
    };
    const run = setup(barrier);
    const input = slotInput(6, 11);
    const outcomes = await Promise.all([
      run.bookings.create(input, scientist("sci_00000000000a"), log, "req-race-a"),
      run.bookings.create(input, scientist("sci_00000000000b"), log, "req-race-b"),
    ]);
    expect(outcomes.map((outcome) => outcome.replayed)).toEqual([false, false]);
    const listed = await run.bookings.list({ telescopeId: telescope.id, day: input.startUtc.slice(0, 10), limit: 100 }, "req-race-list");
    const onSlot = listed.items.filter((booking) => booking.startUtc === input.startUtc);
    expect(onSlot.map((booking) => booking.scientistId).sort()).toEqual(["sci_00000000000a", "sci_00000000000b"]);
  });

  it("without hooks, the same race has one winner: the second is refused (slot_busy or slot_taken)", async () => {
    const run = setup(undefined);
    const input = slotInput(6, 13);
    const outcomes = await Promise.allSettled([
      run.bookings.create(input, scientist("sci_00000000000c"), log, "req-locked-a"),
      run.bookings.create(input, scientist("sci_00000000000d"), log, "req-locked-b"),
    ]);
    expect(outcomes.filter((outcome) => outcome.status === "fulfilled")).toHaveLength(1);
    const refused = outcomes.find((outcome) => outcome.status === "rejected") as PromiseRejectedResult;
    expect(["slot_busy", "slot_taken"]).toContain((refused.reason as { code: string }).code);
  });
});
