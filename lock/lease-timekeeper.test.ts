// The leader's expiry clock: leases expire through `expire` entries once their full TTL has run on
// the leader's clock, a renewal restarts the countdown, a new leader restarts every countdown
// (never shortening a lease), a follower proposes nothing, lost proposals are retried, and waits
// end with `cancel_wait`.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { LeaseTimekeeper } from "./lease-timekeeper.ts";
import { LockStateMachine } from "./lock-state-machine.ts";
import type { LockCommand } from "./types.ts";

const options = { reproposeAfterMs: 500, dueCommandsMax: 100 };
const acquire = (clientId: string, resource: string, ttlMs: number, waitMs = 0): LockCommand => ({
  type: "acquire",
  session: { clientId, sequence: 1 },
  resources: [resource],
  owner: clientId,
  ttlMs,
  waitMs,
});

describe("LeaseTimekeeper", () => {
  it("proposes an expiry only after the full TTL on the leader's clock", () => {
    const machine = new LockStateMachine();
    const keeper = new LeaseTimekeeper(options);
    keeper.becomeLeader(0, machine);
    machine.apply(1, acquire("a", "slot", 2000));
    keeper.sync(100, machine);
    expect(keeper.due(2099)).toEqual([]);
    expect(keeper.nextDeadlineMs()).toBe(2100);
    expect(keeper.due(2100)).toEqual([{ type: "expire", resource: "slot", token: 1, version: 0 }]);
    expect(keeper.due(2200)).toEqual([]); // Proposed already: not again before reproposeAfterMs.
    expect(keeper.due(2600)).toEqual([{ type: "expire", resource: "slot", token: 1, version: 0 }]);
  });

  it("a renewal restarts the countdown and the expiry names the new version", () => {
    const machine = new LockStateMachine();
    const keeper = new LeaseTimekeeper(options);
    keeper.becomeLeader(0, machine);
    machine.apply(1, acquire("a", "slot", 2000));
    keeper.sync(0, machine);
    machine.apply(2, { type: "renew", session: { clientId: "a", sequence: 2 }, leases: [{ resource: "slot", token: 1 }] });
    keeper.sync(1500, machine);
    expect(keeper.due(3000)).toEqual([]);
    expect(keeper.due(3500)).toEqual([{ type: "expire", resource: "slot", token: 1, version: 1 }]);
  });

  it("a new leader restarts every countdown from the full TTL", () => {
    const machine = new LockStateMachine();
    machine.apply(1, acquire("a", "slot", 2000));
    const keeper = new LeaseTimekeeper(options);
    keeper.becomeLeader(5000, machine); // Elected long after the grant: the lease still gets its full TTL.
    expect(keeper.due(6999)).toEqual([]);
    expect(keeper.due(7000)).toHaveLength(1);
  });

  it("a follower proposes nothing, and stepping down forgets the countdowns", () => {
    const machine = new LockStateMachine();
    machine.apply(1, acquire("a", "slot", 2000));
    const keeper = new LeaseTimekeeper(options);
    keeper.sync(0, machine);
    expect(keeper.due(10_000)).toEqual([]);
    keeper.becomeLeader(0, machine);
    keeper.stepDown();
    expect(keeper.due(10_000)).toEqual([]);
    expect(keeper.nextDeadlineMs()).toBeUndefined();
  });

  it("drops the countdown of a released lease, and ends a waiter's wait with cancel_wait", () => {
    const machine = new LockStateMachine();
    const keeper = new LeaseTimekeeper(options);
    keeper.becomeLeader(0, machine);
    machine.apply(1, acquire("a", "slot", 5000));
    machine.apply(2, acquire("b", "slot", 5000, 1000));
    keeper.sync(0, machine);
    expect(keeper.due(1000)).toEqual([{ type: "cancel_wait", waiterId: 2 }]);
    machine.apply(3, { type: "release", session: { clientId: "a", sequence: 2 }, leases: [{ resource: "slot", token: 1 }] });
    keeper.sync(1100, machine);
    // b was granted by the release (token 3): its countdown starts now.
    expect(keeper.due(5000)).toEqual([]);
    expect(keeper.due(6100)).toEqual([{ type: "expire", resource: "slot", token: 3, version: 0 }]);
  });

  it("bounds the commands returned at once", () => {
    const machine = new LockStateMachine();
    const keeper = new LeaseTimekeeper({ reproposeAfterMs: 500, dueCommandsMax: 2 });
    keeper.becomeLeader(0, machine);
    for (let index = 1; index <= 5; index++) machine.apply(index, acquire(`c${index}`, `r${index}`, 1000));
    keeper.sync(0, machine);
    expect(keeper.due(1000)).toHaveLength(2);
    expect(keeper.due(1000)).toHaveLength(2);
    expect(keeper.due(1000)).toHaveLength(1);
  });
});

describe("LeaseTimekeeper.applied (incremental) against sync (full pass)", () => {
  it("keeps exactly the same countdowns over random command sequences", () => {
    const resources = ["r1", "r2", "r3"];
    const step = fc.record({
      kind: fc.constantFrom("acquire", "acquire_wait", "renew", "release", "expire", "expire_stale", "cancel", "txn"),
      resource: fc.constantFrom(...resources),
      second: fc.option(fc.constantFrom(...resources), { nil: undefined }),
      client: fc.constantFrom("a", "b", "c"),
      advanceMs: fc.integer({ min: 0, max: 3000 }),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
        const machine = new LockStateMachine();
        const incremental = new LeaseTimekeeper(options);
        const full = new LeaseTimekeeper(options);
        incremental.becomeLeader(0, machine);
        full.becomeLeader(0, machine);
        let now = 0;
        const sequences = new Map<string, number>();
        for (const [position, item] of steps.entries()) {
          now += item.advanceMs;
          const index = position + 1;
          const sequence = (sequences.get(item.client) ?? 0) + 1;
          sequences.set(item.client, sequence);
          const session = { clientId: item.client, sequence };
          const lease = machine.lease(item.resource);
          const token = lease?.token ?? 1;
          const wanted = item.second === undefined || item.second === item.resource ? [item.resource] : [item.resource, item.second];
          const command: LockCommand =
            item.kind === "acquire" || item.kind === "acquire_wait"
              ? {
                  type: "acquire",
                  session,
                  resources: wanted,
                  owner: item.client,
                  ttlMs: 2000,
                  waitMs: item.kind === "acquire_wait" ? 1500 : 0,
                }
              : item.kind === "renew" || item.kind === "release"
                ? { type: item.kind, session, leases: [{ resource: item.resource, token }] }
                : item.kind === "expire" || item.kind === "expire_stale"
                  ? {
                      type: "expire",
                      resource: item.resource,
                      token,
                      version: (lease?.version ?? 0) - (item.kind === "expire_stale" ? 1 : 0),
                    }
                  : item.kind === "cancel"
                    ? { type: "cancel_wait", waiterId: machine.waitersNow()[0]?.waiterId ?? 1 }
                    : {
                        type: "txn",
                        session,
                        guards: [{ resource: item.resource, token }],
                        operations: [{ op: "put", key: "k", value: "v" }],
                      };
          const applied = machine.apply(index, command);
          incremental.applied(now, machine, applied);
          full.sync(now, machine);
          for (const resource of resources) expect(incremental.leaseDeadlineMs(resource)).toBe(full.leaseDeadlineMs(resource));
          expect(incremental.nextDeadlineMs()).toBe(full.nextDeadlineMs());
          // The same commands are due (their order is irrelevant: each expiry stands alone).
          const sorted = (commands: LockCommand[]) => commands.map((command) => JSON.stringify(command)).sort();
          expect(sorted(incremental.due(now + 10_000))).toEqual(sorted(full.due(now + 10_000)));
        }
      }),
      { numRuns: 300, seed: 5 },
    );
  });
});
