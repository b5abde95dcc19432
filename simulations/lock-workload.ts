// LockWorkload runs the real lock state machine (node/state/) inside the simulator. Each
// simulated node applies lock commands from its committed log, and its leader counts leases down
// with the real LeaseTimekeeper on the node's own drifting clock. Simulated clients, each with a
// drifting clock of its own, acquire, renew, release and write under fenced leases, and retry
// through any node when replies are lost.
//
// It checks the two lease properties of issue 3, on top of the Raft checks:
// - at no simulated instant do two clients believe they hold a valid lease on one resource. A
//   client's belief runs from the grant's arrival until its clock passes send time + TTL × (1 −
//   clientDriftDiscount) − margin, as the real client library counts it;
// - the fencing tokens handed out for a resource strictly increase.

import { LeaseTimekeeper } from "../lock/lease-timekeeper.ts";
import { type Applied, type LockLimits, LockStateMachine, type LockStateSnapshot, lockLimitsDefaults } from "../lock/lock-state-machine.ts";
import type { LeasePlantedBug } from "../lock/planted-bugs.ts";
import type { LockCommand, LockResult } from "../lock/types.ts";
import type { RandomSource } from "../raft/random.ts";

/**
 * LockPlantedBug: the lease bugs the simulator must find. Two are planted in the real
 * LeaseTimekeeper; `client_counts_from_reply` is planted in the simulated client, which then
 * counts its lease from the reply's arrival instead of from when it sent the request.
 */
export type LockPlantedBug = LeasePlantedBug | "client_counts_from_reply";
export const lockPlantedBugs: readonly LockPlantedBug[] = [
  "expire_at_half_ttl",
  "keep_countdown_on_new_leader",
  "client_counts_from_reply",
];

/** tickMs: one simulated tick stands for this many milliseconds of a node's or client's clock. */
export const tickMs = 10;
/** clientDriftDiscount: the client library assumes clocks may drift apart by this fraction. */
export const clientDriftDiscount = 0.1;
/** locksDriftPercentMax: the lock workload keeps clock drift within what the discount covers ((1 − 0.1) ≤ (1 − d)/(1 + d)). */
export const locksDriftPercentMax = 5;
const resources = ["r1", "r2", "r3"] as const;
const clientCount = 4;

export interface LockWorkloadHost {
  readonly random: RandomSource & { nextFloat(): number };
  tickNow(): number;
  healed(): boolean;
  /** propose sends bytes to `nodeId` (following a leader hint once); returns the node that accepted it, if any. */
  propose(nodeId: string, command: LockCommand): { nodeId: string; index: number; term: number } | undefined;
  liveNodeIds(): string[];
  fail(kind: "double_holder" | "token_order", message: string): void;
  replyDropProbability(): number;
}

/** LockReplica is one node's lock state: the state machine, the leader's expiry clock and its pending proposals. */
export class LockReplica {
  machine: LockStateMachine;
  readonly timekeeper: LeaseTimekeeper;
  clockMs = 0;
  /** pending: proposals accepted at this node, by index; lost when the node crashes. */
  readonly pending = new Map<number, { clientId: string; sequence: number; term: number }>();

  constructor(limits: LockLimits, snapshot: LockStateSnapshot | undefined, plantedBug: LockPlantedBug | undefined) {
    this.machine = snapshot === undefined ? new LockStateMachine(limits) : LockStateMachine.restore(snapshot, limits);
    const timekeeperBug = plantedBug === "client_counts_from_reply" ? undefined : plantedBug;
    this.timekeeper = new LeaseTimekeeper({
      reproposeAfterMs: 20 * tickMs,
      dueCommandsMax: 64,
      ...(timekeeperBug === undefined ? {} : { plantedBug: timekeeperBug }),
    });
  }
}

interface Outstanding {
  readonly command: Exclude<LockCommand, { type: "expire" } | { type: "cancel_wait" }>;
  readonly firstSentClockMs: number;
  lastSentTick: number;
  attachedNodeId: string;
}

interface SimLockClient {
  readonly id: string;
  readonly clockRate: number;
  clockMs: number;
  sequence: number;
  outstanding: Outstanding | undefined;
  held: { resources: readonly string[]; token: number; validUntilClockMs: number; ttlMs: number } | undefined;
  /** pausedUntilTick: a stalled client (a GC pause, a swapped-out process) does nothing until then. */
  pausedUntilTick: number;
  /** lastLease: the lease it last held, which a careless client may still write under after a pause. */
  lastLease: { resources: readonly string[]; token: number } | undefined;
}

interface Belief {
  readonly clientId: string;
  readonly token: number;
  readonly startTick: number;
  endTick: number;
}

export class LockWorkload {
  readonly limits: LockLimits;
  private readonly host: LockWorkloadHost;
  private readonly clients: SimLockClient[] = [];
  private readonly ttlMs: number;
  private readonly retryTicks: number;
  private readonly beliefs = new Map<string, Belief[]>();
  private readonly lastGrantToken = new Map<string, number>();
  grants = 0;
  staleWritesRefused = 0;

  readonly plantedBug: LockPlantedBug | undefined;

  constructor(
    options: { electionTimeoutTicks: number; clockDriftPercentMax: number; plantedLockBug?: LockPlantedBug },
    host: LockWorkloadHost,
  ) {
    this.host = host;
    this.plantedBug = options.plantedLockBug;
    // TTLs must outlast 1.5 × the longest election timeout (2 × electionTimeoutTicks ticks).
    const ttlMsMin = Math.ceil(1.5 * 2 * options.electionTimeoutTicks * tickMs);
    this.limits = { ...lockLimitsDefaults, ttlMsMin };
    this.ttlMs = 2 * ttlMsMin;
    this.retryTicks = 4 * options.electionTimeoutTicks;
    const drift = Math.min(options.clockDriftPercentMax, locksDriftPercentMax);
    for (let position = 0; position < clientCount; position++) {
      const clockRate = 1 + (drift === 0 ? 0 : (host.random.nextInt(2 * drift + 1) - drift) / 100);
      this.clients.push({
        id: `client-${position}`,
        clockRate,
        clockMs: 0,
        sequence: 0,
        outstanding: undefined,
        held: undefined,
        pausedUntilTick: 0,
        lastLease: undefined,
      });
    }
  }

  /** outstanding counts requests still waiting for an answer (liveness: none may be left after the heal). */
  outstanding(): number {
    return this.clients.filter((client) => client.outstanding !== undefined).length;
  }

  /** tick moves the clients' clocks and lets each act. */
  tick(): void {
    const now = this.host.tickNow();
    for (const client of this.clients) {
      client.clockMs += tickMs * client.clockRate;
      if (client.held !== undefined && client.clockMs >= client.held.validUntilClockMs) client.held = undefined; // Its belief lapsed.
      if (now < client.pausedUntilTick) continue;
      if (client.outstanding !== undefined) {
        if (now - client.outstanding.lastSentTick >= this.retryTicks) this.send(client.outstanding);
        continue;
      }
      if (this.host.healed()) continue; // After the heal, clients only finish what they started.
      if (this.host.random.nextFloat() >= 0.3) continue;
      this.act(client);
    }
  }

  private act(client: SimLockClient): void {
    const random = this.host.random;
    const session = { clientId: client.id, sequence: client.sequence + 1 };
    let command: Outstanding["command"];
    const woke = client.pausedUntilTick > 0 && client.pausedUntilTick <= this.host.tickNow();
    client.pausedUntilTick = 0;
    if (woke && client.lastLease !== undefined && random.nextInt(2) === 0) {
      // The paused-writer case: it writes under its old lease without checking it is still valid.
      // Fencing must refuse the write if another client was granted the resource meanwhile.
      const lease = client.lastLease;
      const guards = lease.resources.map((resource) => ({ resource, token: lease.token }));
      command = {
        type: "txn",
        session,
        guards,
        operations: [{ op: "put", key: `booking/${lease.resources[0]}`, value: `${client.id}@late` }],
      };
    } else if (client.held === undefined) {
      const first = resources[random.nextInt(resources.length)] as string;
      const second = resources[random.nextInt(resources.length)] as string;
      const wanted = first === second ? [first] : [first, second];
      command = {
        type: "acquire",
        session,
        resources: wanted,
        owner: client.id,
        ttlMs: this.ttlMs,
        waitMs: random.nextInt(2) === 0 ? 0 : this.ttlMs,
      };
    } else {
      const leases = client.held.resources.map((resource) => ({ resource, token: (client.held as { token: number }).token }));
      const choice = random.nextInt(4);
      if (choice === 3) {
        client.pausedUntilTick = this.host.tickNow() + 1 + random.nextInt(Math.ceil((3 * client.held.ttlMs) / tickMs));
        return;
      }
      if (choice === 0) {
        command = { type: "release", session, leases };
        this.endBelief(client); // A client stops relying on a lease the moment it lets go.
        client.held = undefined;
      } else if (choice === 1) {
        command = { type: "renew", session, leases };
      } else {
        const resource = leases[0]?.resource as string;
        command = {
          type: "txn",
          session,
          guards: leases,
          operations: [{ op: "put", key: `booking/${resource}`, value: `${client.id}@${this.host.tickNow()}` }],
        };
      }
    }
    client.sequence++;
    const outstanding: Outstanding = { command, firstSentClockMs: client.clockMs, lastSentTick: this.host.tickNow(), attachedNodeId: "" };
    client.outstanding = outstanding;
    this.send(outstanding);
  }

  /** send (or resend: same session, same first-send time) a client's request to a random live node. */
  private send(outstanding: Outstanding): void {
    outstanding.lastSentTick = this.host.tickNow();
    const live = this.host.liveNodeIds();
    if (live.length === 0) return;
    const target = live[this.host.random.nextInt(live.length)] as string;
    const accepted = this.host.propose(target, outstanding.command);
    outstanding.attachedNodeId = accepted?.nodeId ?? target;
  }

  /** accepted records that `nodeId` accepted a client's proposal at `index`, so it answers when it applies it. */
  accepted(replica: LockReplica, index: number, term: number, command: LockCommand): void {
    if (command.type === "expire" || command.type === "cancel_wait" || command.session === undefined) return;
    replica.pending.set(index, { clientId: command.session.clientId, sequence: command.session.sequence, term });
  }

  /** applied is called for every lock entry a node applies; `firstApply` is true for the first node to apply this index. */
  applied(nodeId: string, replica: LockReplica, index: number, term: number, applied: Applied, firstApply: boolean): void {
    if (firstApply) this.checkTokens(applied);
    const pending = replica.pending.get(index);
    if (pending !== undefined) {
      replica.pending.delete(index);
      if (pending.term === term) this.reply(pending.clientId, pending.sequence, applied.result);
    }
    for (const resolved of applied.resolvedWaiters) {
      const session = resolved.session;
      if (session === undefined) continue; // Simulated clients always use sessions.
      const client = this.clients.find((candidate) => candidate.id === session.clientId);
      if (client?.outstanding?.attachedNodeId === nodeId) this.reply(client.id, session.sequence, resolved.result);
    }
  }

  private checkTokens(applied: Applied): void {
    for (const event of applied.events) {
      if (event.type !== "granted") continue;
      this.grants++;
      const last = this.lastGrantToken.get(event.resource) ?? 0;
      if (!(event.token > last)) this.host.fail("token_order", `${event.resource} granted with token ${event.token} after token ${last}`);
      this.lastGrantToken.set(event.resource, event.token);
    }
  }

  /** reply delivers an answer to a client (unless the network loses it). */
  private reply(clientId: string, sequence: number, result: LockResult): void {
    if (this.host.random.nextFloat() < this.host.replyDropProbability()) return;
    const client = this.clients.find((candidate) => candidate.id === clientId);
    const outstanding = client?.outstanding;
    if (client === undefined || outstanding === undefined || outstanding.command.session?.sequence !== sequence) return;
    if (result.status === "queued") return; // Still waiting: the grant or the timeout will follow.
    client.outstanding = undefined;
    const command = outstanding.command;
    if (command.type === "acquire" && result.status === "granted") {
      const countFromClockMs = this.plantedBug === "client_counts_from_reply" ? client.clockMs : outstanding.firstSentClockMs;
      if (!this.believe(client, result.resources, result.token, countFromClockMs, result.ttlMs)) {
        // Granted after a long wait: counted from the original send, nothing is left of it. A real
        // client renews at once and counts from the renewal instead.
        client.lastLease = { resources: result.resources, token: result.token };
        const leases = result.resources.map((resource) => ({ resource, token: result.token }));
        client.sequence++;
        const renew: Outstanding = {
          command: { type: "renew", session: { clientId: client.id, sequence: client.sequence }, leases },
          firstSentClockMs: client.clockMs,
          lastSentTick: this.host.tickNow(),
          attachedNodeId: "",
        };
        client.outstanding = renew;
        this.send(renew);
      }
    } else if (command.type === "renew" && result.status === "renewed") {
      const token = command.leases[0]?.token as number;
      this.believe(
        client,
        command.leases.map((lease) => lease.resource),
        token,
        outstanding.firstSentClockMs,
        result.ttlMs,
      );
    } else if (command.type === "renew" || (command.type === "txn" && result.status === "rejected")) {
      if (result.status === "rejected" && result.code === "stale_fencing_token") this.staleWritesRefused++;
      if (client.held !== undefined && result.status === "rejected") {
        this.endBelief(client); // The cluster says the lease is gone: stop relying on it.
        client.held = undefined;
      }
    }
  }

  /**
   * believe starts (or extends) a client's belief that it holds `leaseResources`: until its own
   * clock passes sentAt + TTL × (1 − discount) − margin. The margin covers the tick granularity of
   * both clocks. Checked against every other client's belief on the same resources.
   */
  private believe(client: SimLockClient, leaseResources: readonly string[], token: number, sentAtClockMs: number, ttlMs: number): boolean {
    const validUntilClockMs = sentAtClockMs + ttlMs * (1 - clientDriftDiscount) - 2 * tickMs;
    if (validUntilClockMs <= client.clockMs) return false; // Arrived too late to be of use.
    const now = this.host.tickNow();
    const endTick = now + Math.floor((validUntilClockMs - client.clockMs) / (tickMs * client.clockRate));
    client.held = { resources: leaseResources, token, validUntilClockMs, ttlMs };
    client.lastLease = { resources: leaseResources, token };
    for (const resource of leaseResources) {
      const list = this.beliefs.get(resource) ?? [];
      for (const other of list) {
        if (other.clientId === client.id && other.token === token) continue;
        if (other.startTick < endTick && now < other.endTick) {
          this.host.fail(
            "double_holder",
            `${client.id} (token ${token}) and ${other.clientId} (token ${other.token}) both hold ${resource} at tick ${Math.max(now, other.startTick)}`,
          );
        }
      }
      const mine = list.find((belief) => belief.clientId === client.id && belief.token === token && belief.endTick >= now);
      if (mine !== undefined) mine.endTick = Math.max(mine.endTick, endTick);
      else list.push({ clientId: client.id, token, startTick: now, endTick });
      this.beliefs.set(
        resource,
        list.filter((belief) => belief.endTick >= now - 1000),
      );
    }
    return true;
  }

  private endBelief(client: SimLockClient): void {
    const now = this.host.tickNow();
    for (const list of this.beliefs.values()) {
      for (const belief of list) if (belief.clientId === client.id && belief.endTick > now) belief.endTick = now;
    }
  }
}
