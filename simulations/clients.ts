// SimClients are the lock service's users in a simulation. Each has a drifting clock of its own and
// talks to the nodes over a lossy network (requests and replies are dropped and delayed like peer
// messages). A client acquires one or two of three resources (at once or by waiting), renews,
// releases and writes under its fenced lease; it retries an unanswered request with the same
// session, through any node, and follows a not_leader hint at once. It also stalls: a paused
// client may, on waking, write under its old lease without checking it, as a careless application
// would; fencing must refuse that write.
//
// The clients check what only they can see:
// - one valid holder: at no instant do two clients believe they hold a lease on one resource. A
//   client believes its lease until its own clock passes send time + TTL × (1 − 0.1) − 2 ticks,
//   counted from when it *sent* the request, as the client library counts it;
// - exactly-once, from the outside: every final answer to one request (first try or retry, from
//   any node) is the same;
// - durability: every write or grant acknowledged to a client is recorded (its index), and the
//   checker requires every later leader to hold it;
// - linearizable reads: a read of a key never returns a version older than a write to that key
//   acknowledged before the read began.

import type { Applied } from "../lock/lock-state-machine.ts";
import type { LeaseRef, LockCommand, LockResult, StoredValue } from "../lock/types.ts";
import type { RandomSource } from "../raft/random.ts";
import type { ViolationKind } from "./checker.ts";
import { type ClientPlantedBug, tickMs } from "./options.ts";

/** clientDriftDiscount: the client library assumes clocks may drift apart by this fraction. */
export const clientDriftDiscount = 0.1;
const resources = ["r1", "r2", "r3"] as const;

/** ClientOutcome is what a node answers a client request: the applied result, or a driver error's code. */
export type ClientOutcome =
  | { readonly applied: Applied }
  | { readonly error: { readonly code: string; readonly leaderHint: string | null } };

export interface ClientHost {
  readonly random: RandomSource & { nextFloat(): number };
  nowMs(): number;
  healed(): boolean;
  liveNodeIds(): readonly string[];
  /** submit carries a request to a node and its answer back, over the lossy client network (either may be lost). */
  submit(nodeId: string, command: LockCommand, awaitQueuedMs: number | undefined, reply: (outcome: ClientOutcome) => void): void;
  /** read runs a linearizable read of `key` at a node (the answer may be lost). */
  read(nodeId: string, key: string, reply: (outcome: { value: StoredValue | undefined } | { error: string }) => void): void;
  /** indexOf: the log index of the entry whose application produced `applied` (undefined if unknown). */
  indexOf(applied: Applied): number | undefined;
  acknowledged(index: number, what: string): void;
  fail(kind: ViolationKind, message: string): void;
  note(clientId: string, text: string): void;
}

type ClientCommand = Extract<LockCommand, { type: "acquire" | "renew" | "release" | "txn" }>;

interface Outstanding {
  readonly command: ClientCommand;
  readonly firstSentClockMs: number;
  lastSentMs: number;
  attempts: number;
}

interface SimClient {
  readonly id: string;
  readonly clockRate: number;
  sequence: number;
  outstanding: Outstanding | undefined;
  held: { resources: readonly string[]; token: number; validUntilClockMs: number; ttlMs: number } | undefined;
  /** pausedUntilMs: a stalled client (a GC pause, a swapped-out process) does nothing until then. */
  pausedUntilMs: number;
  /** lastLease: the lease it last held, which a careless client may still write under after a pause. */
  lastLease: { resources: readonly string[]; token: number } | undefined;
  reading: { key: string; minModIndex: number; sentMs: number } | undefined;
}

interface Belief {
  readonly clientId: string;
  readonly token: number;
  readonly startMs: number;
  endMs: number;
}

export interface ClientStats {
  requests: number;
  retries: number;
  answers: number;
  grantsBelieved: number;
  readsServed: number;
  staleWritesAttempted: number;
}

export class SimClients {
  readonly stats: ClientStats = { requests: 0, retries: 0, answers: 0, grantsBelieved: 0, readsServed: 0, staleWritesAttempted: 0 };
  private readonly host: ClientHost;
  private readonly clients: SimClient[] = [];
  private readonly ttlMs: number;
  private readonly retryMs: number;
  private readonly actProbability: number;
  private readonly readProbability: number;
  private readonly plantedBug: ClientPlantedBug | undefined;
  private readonly beliefs = new Map<string, Belief[]>();
  /** finalAnswers: each request's first final answer ("client#sequence" → JSON), for the exactly-once check. */
  private readonly finalAnswers = new Map<string, string>();
  /** ackedModIndex: per key, the highest index of a write to it acknowledged to a client. */
  private readonly ackedModIndex = new Map<string, number>();

  constructor(
    options: {
      clientCount: number;
      ttlMs: number;
      retryMs: number;
      actProbability: number;
      readProbability: number;
      clockDriftPercentMax: number;
      plantedBug: ClientPlantedBug | undefined;
    },
    host: ClientHost,
  ) {
    this.host = host;
    this.ttlMs = options.ttlMs;
    this.retryMs = options.retryMs;
    this.actProbability = options.actProbability;
    this.readProbability = options.readProbability;
    this.plantedBug = options.plantedBug;
    const drift = options.clockDriftPercentMax;
    for (let position = 0; position < options.clientCount; position++) {
      const clockRate = 1 + (drift === 0 ? 0 : (host.random.nextInt(2 * drift + 1) - drift) / 100);
      this.clients.push({
        id: `client-${position}`,
        clockRate,
        sequence: 0,
        outstanding: undefined,
        held: undefined,
        pausedUntilMs: 0,
        lastLease: undefined,
        reading: undefined,
      });
    }
  }

  /** outstanding counts requests still waiting for an answer (liveness: none may be left after the heal). */
  outstanding(): number {
    let count = 0;
    for (const client of this.clients) if (client.outstanding !== undefined) count++;
    return count;
  }

  /** tick lets each client act: retry what is unanswered, or (before the heal) start something new. */
  tick(): void {
    const now = this.host.nowMs();
    for (const client of this.clients) {
      if (client.held !== undefined && this.clockMs(client) >= client.held.validUntilClockMs) client.held = undefined; // Its belief lapsed.
      if (client.reading !== undefined && now - client.reading.sentMs >= this.retryMs) client.reading = undefined; // Given up.
      if (now < client.pausedUntilMs) continue;
      if (client.outstanding !== undefined) {
        if (now - client.outstanding.lastSentMs >= this.retryMs) {
          this.stats.retries++;
          this.send(client, client.outstanding, undefined);
        }
        continue;
      }
      if (this.host.healed()) continue; // After the heal, clients only finish what they started.
      if (client.reading === undefined && this.readProbability > 0 && this.host.random.nextFloat() < this.readProbability)
        this.read(client);
      if (this.host.random.nextFloat() >= this.actProbability) continue;
      this.act(client);
    }
  }

  private clockMs(client: SimClient): number {
    return this.host.nowMs() * client.clockRate;
  }

  private act(client: SimClient): void {
    const random = this.host.random;
    const session = { clientId: client.id, sequence: client.sequence + 1 };
    const now = this.host.nowMs();
    let command: ClientCommand;
    const woke = client.pausedUntilMs > 0 && client.pausedUntilMs <= now;
    client.pausedUntilMs = 0;
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
      this.stats.staleWritesAttempted++;
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
      const held = client.held;
      const leases: LeaseRef[] = held.resources.map((resource) => ({ resource, token: held.token }));
      const choice = random.nextInt(4);
      if (choice === 3) {
        client.pausedUntilMs = now + tickMs * (1 + random.nextInt(Math.ceil((3 * held.ttlMs) / tickMs)));
        this.host.note(client.id, `pauses until ${client.pausedUntilMs.toFixed(0)} ms`);
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
          operations: [{ op: "put", key: `booking/${resource}`, value: `${client.id}@${now.toFixed(0)}` }],
        };
      }
    }
    client.sequence++;
    const outstanding: Outstanding = { command, firstSentClockMs: this.clockMs(client), lastSentMs: now, attempts: 0 };
    client.outstanding = outstanding;
    this.stats.requests++;
    this.send(client, outstanding, undefined);
  }

  /** send (or resend: same session, same first-send time) a client's request, to `target` or a random live node. */
  private send(client: SimClient, outstanding: Outstanding, target: string | undefined): void {
    outstanding.lastSentMs = this.host.nowMs();
    outstanding.attempts++;
    const live = this.host.liveNodeIds();
    if (live.length === 0) return;
    const nodeId = target ?? (live[this.host.random.nextInt(live.length)] as string);
    const command = outstanding.command;
    const awaitQueuedMs = command.type === "acquire" && command.waitMs > 0 ? command.waitMs : undefined;
    this.host.submit(nodeId, command, awaitQueuedMs, (outcome) => this.answered(client, outstanding, outcome));
  }

  private answered(client: SimClient, outstanding: Outstanding, outcome: ClientOutcome): void {
    if (client.outstanding !== outstanding) {
      // A late answer to a request the client already finished: it must still agree (exactly-once).
      if ("applied" in outcome) this.checkFinal(client, outstanding.command, outcome.applied.result);
      return;
    }
    if ("error" in outcome) {
      // Follow a hint at once, once per try; otherwise try again soon (a short backoff).
      if (outcome.error.code === "not_leader" && outcome.error.leaderHint !== null && outstanding.attempts < 8) {
        this.send(client, outstanding, outcome.error.leaderHint);
      } else {
        outstanding.lastSentMs = Math.min(outstanding.lastSentMs, this.host.nowMs() - this.retryMs + 2 * tickMs);
      }
      return;
    }
    const result = outcome.applied.result;
    if (result.status === "queued") return; // Still waiting: the grant or the timeout will follow (a retry asks again).
    this.stats.answers++;
    this.checkFinal(client, outstanding.command, result);
    this.acknowledge(outstanding.command, outcome.applied);
    client.outstanding = undefined;
    this.applyAnswer(client, outstanding, result);
  }

  private checkFinal(client: SimClient, command: ClientCommand, result: LockResult): void {
    if (result.status === "queued" || command.session === undefined) return;
    if (result.status === "rejected" && (result.code === "stale_sequence" || result.code === "session_expired")) return;
    const key = `${client.id}#${command.session.sequence}`;
    const answer = JSON.stringify(result);
    const first = this.finalAnswers.get(key);
    if (first === undefined) this.finalAnswers.set(key, answer);
    else if (first !== answer) this.host.fail("exactly_once", `${key} was answered ${first}, then ${answer}`);
  }

  /** acknowledge records the index of what the client was told succeeded: it must survive every crash. */
  private acknowledge(command: ClientCommand, applied: Applied): void {
    const result = applied.result;
    let index: number | undefined;
    if (result.status === "granted") index = result.token;
    else if (result.status === "committed") index = result.index;
    else if (result.status === "renewed" || result.status === "released") index = this.host.indexOf(applied);
    if (index === undefined) return;
    this.host.acknowledged(index, `${command.type} ${result.status}`);
    if (result.status === "committed" && command.type === "txn") {
      for (const operation of command.operations) {
        if (operation.op !== "put") continue;
        this.ackedModIndex.set(operation.key, Math.max(this.ackedModIndex.get(operation.key) ?? 0, index));
      }
    }
  }

  private applyAnswer(client: SimClient, outstanding: Outstanding, result: LockResult): void {
    const command = outstanding.command;
    if (command.type === "acquire" && result.status === "granted") {
      const countFromClockMs = this.plantedBug === "client_counts_from_reply" ? this.clockMs(client) : outstanding.firstSentClockMs;
      if (!this.believe(client, result.resources, result.token, countFromClockMs, result.ttlMs)) {
        // Granted after a long wait: counted from the original send, nothing is left of it. A real
        // client renews at once and counts from the renewal instead.
        client.lastLease = { resources: result.resources, token: result.token };
        client.sequence++;
        const renew: Outstanding = {
          command: {
            type: "renew",
            session: { clientId: client.id, sequence: client.sequence },
            leases: result.resources.map((resource) => ({ resource, token: result.token })),
          },
          firstSentClockMs: this.clockMs(client),
          lastSentMs: this.host.nowMs(),
          attempts: 0,
        };
        client.outstanding = renew;
        this.stats.requests++;
        this.send(client, renew, undefined);
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
    } else if (result.status === "rejected" && (command.type === "renew" || command.type === "txn")) {
      if (client.held !== undefined) {
        this.endBelief(client); // The cluster says the lease is gone: stop relying on it.
        client.held = undefined;
      }
    }
  }

  /**
   * believe starts (or extends) a client's belief that it holds `leaseResources`: until its own
   * clock passes sentAt + TTL × (1 − discount) − margin. The margin covers the tick granularity of
   * the clocks. Checked against every other client's belief on the same resources.
   */
  private believe(client: SimClient, leaseResources: readonly string[], token: number, sentAtClockMs: number, ttlMs: number): boolean {
    const validUntilClockMs = sentAtClockMs + ttlMs * (1 - clientDriftDiscount) - 2 * tickMs;
    const clockNow = this.clockMs(client);
    if (validUntilClockMs <= clockNow) return false; // Arrived too late to be of use.
    const now = this.host.nowMs();
    const endMs = now + (validUntilClockMs - clockNow) / client.clockRate;
    client.held = { resources: leaseResources, token, validUntilClockMs, ttlMs };
    client.lastLease = { resources: leaseResources, token };
    this.stats.grantsBelieved++;
    for (const resource of leaseResources) {
      const list = this.beliefs.get(resource) ?? [];
      for (const other of list) {
        if (other.clientId === client.id && other.token === token) continue;
        if (other.startMs < endMs && now < other.endMs) {
          this.host.fail(
            "double_holder",
            `${client.id} (token ${token}) and ${other.clientId} (token ${other.token}) both hold ${resource} at ${Math.max(now, other.startMs).toFixed(1)} ms`,
          );
        }
      }
      const mine = list.find((belief) => belief.clientId === client.id && belief.token === token && belief.endMs >= now);
      if (mine !== undefined) mine.endMs = Math.max(mine.endMs, endMs);
      else list.push({ clientId: client.id, token, startMs: now, endMs });
      this.beliefs.set(
        resource,
        list.filter((belief) => belief.endMs >= now - 10_000),
      );
    }
    this.host.note(client.id, `holds ${leaseResources.join("+")} (token ${token}) until ${endMs.toFixed(0)} ms`);
    return true;
  }

  private endBelief(client: SimClient): void {
    const now = this.host.nowMs();
    for (const list of this.beliefs.values()) {
      for (const belief of list) if (belief.clientId === client.id && belief.endMs > now) belief.endMs = now;
    }
  }

  private read(client: SimClient): void {
    const live = this.host.liveNodeIds();
    if (live.length === 0) return;
    const key = `booking/${resources[this.host.random.nextInt(resources.length)]}`;
    const reading = { key, minModIndex: this.ackedModIndex.get(key) ?? 0, sentMs: this.host.nowMs() };
    client.reading = reading;
    this.host.read(live[this.host.random.nextInt(live.length)] as string, key, (outcome) => {
      if (client.reading === reading) client.reading = undefined;
      if ("error" in outcome) return;
      this.stats.readsServed++;
      const modIndex = outcome.value?.modIndex ?? 0;
      if (modIndex < reading.minModIndex) {
        this.host.fail(
          "stale_read",
          `${client.id} read ${key} at version ${modIndex}, older than the write at ${reading.minModIndex} acknowledged before the read began`,
        );
      }
    });
  }
}
