// A scripted stand-in for the lock cluster behind LockClient's transport seam, for timing tests on
// a fake clock: a tiny lease table (grant, renew, release, fenced txn, expiry after the TTL from
// the moment a request is applied) and a network whose behaviour a test scripts per request:
// delivered, dropped on the way there (the cluster never sees it), dropped on the way back (the
// cluster applies it, the client never hears), slow, or answered with an error.
//
// Time is the caller's `now()` (a fake clock in the tests); nothing here sets a timer except to
// deliver a slow answer. Its answers have the wire contract's shapes (protocol/api.ts), which the
// client checks.

import type { LockTransport, TransportAnswer, TransportRequest } from "../../client/transport.ts";
import type { WriteAnswer } from "../../protocol/api.ts";

/** NetworkFate: what the network does with one request. */
export type NetworkFate =
  | { readonly kind: "deliver" }
  | { readonly kind: "drop_request" }
  | { readonly kind: "drop_answer" }
  /** slow: the cluster applies it after half of `delayMs`, and the answer arrives after all of it. */
  | { readonly kind: "slow"; readonly delayMs: number }
  | { readonly kind: "fail"; readonly status: number; readonly code: string };

/** SentRequest: one request as the network saw it, for assertions on attempts. */
export interface SentRequest {
  readonly path: string;
  readonly sentAtMs: number;
  readonly fate: NetworkFate["kind"];
  /** endedAtMs: when it was answered or abandoned (aborted by the client); undefined while open. */
  endedAtMs: number | undefined;
  outcome: "answered" | "aborted" | undefined;
}

interface ServerLease {
  readonly token: number;
  readonly ttlMs: number;
  expiresAtMs: number;
}

/**
 * ScriptedLockCluster applies requests to its lease table and plays the network's part through
 * `fateOf`. It keeps every request it was sent (`sent`) and when each lease ended on its side.
 */
export class ScriptedLockCluster implements LockTransport {
  readonly sent: SentRequest[] = [];
  private readonly leases = new Map<string, ServerLease>();
  private nextToken = 10;
  private readonly now: () => number;
  private readonly fateOf: (request: { path: string; nowMs: number }) => NetworkFate;

  constructor(options: { now: () => number; fateOf: (request: { path: string; nowMs: number }) => NetworkFate }) {
    this.now = options.now;
    this.fateOf = options.fateOf;
  }

  /** expiresAt is when the cluster's lease on `resource` ends (or ended), if it ever granted one. */
  expiresAt(resource: string): number | undefined {
    return this.leases.get(resource)?.expiresAtMs;
  }

  /** releaseBehindTheHolder ends a lease on the cluster's side (an operator who knows the token). */
  releaseBehindTheHolder(resource: string): void {
    const lease = this.leases.get(resource);
    if (lease !== undefined) lease.expiresAtMs = Math.min(lease.expiresAtMs, this.now());
  }

  send(request: TransportRequest): Promise<TransportAnswer> {
    const fate = this.fateOf({ path: request.path, nowMs: this.now() });
    const record: SentRequest = { path: request.path, sentAtMs: this.now(), fate: fate.kind, endedAtMs: undefined, outcome: undefined };
    this.sent.push(record);
    return new Promise<TransportAnswer>((resolve, reject) => {
      const settle = (answer: TransportAnswer) => {
        if (record.endedAtMs !== undefined) return;
        record.endedAtMs = this.now();
        record.outcome = "answered";
        request.signal.removeListener("abort", onAbort);
        resolve(answer);
      };
      const onAbort = () => {
        if (record.endedAtMs !== undefined) return;
        record.endedAtMs = this.now();
        record.outcome = "aborted";
        reject(new Error("aborted"));
      };
      request.signal.once("abort", onAbort);
      switch (fate.kind) {
        case "deliver":
          settle(this.apply(request));
          return;
        case "drop_request":
          return; // Never reaches the cluster; only the client's abort ends it.
        case "drop_answer":
          this.apply(request);
          return;
        case "slow": {
          let answer: TransportAnswer | undefined;
          setTimeout(() => {
            answer = this.apply(request);
          }, fate.delayMs / 2);
          setTimeout(() => {
            if (answer !== undefined) settle(answer);
          }, fate.delayMs);
          return;
        }
        case "fail":
          settle({
            status: fate.status,
            body: JSON.stringify({ error: { code: fate.code, message: `scripted ${fate.code}` } }),
            leaderUrl: undefined,
          });
          return;
      }
    });
  }

  private apply(request: TransportRequest): TransportAnswer {
    const body = JSON.parse(request.body ?? "{}") as {
      resources?: string[];
      owner?: string;
      ttlMs?: number;
      token?: string;
      guards?: { resource: string; token: string }[];
    };
    const nowMs = this.now();
    const live = (resource: string) => {
      const lease = this.leases.get(resource);
      return lease !== undefined && lease.expiresAtMs > nowMs ? lease : undefined;
    };
    const path = request.path.split("?")[0];
    const resources = body.resources ?? [];
    switch (path) {
      case "/lock": {
        const held = resources.find((resource) => live(resource) !== undefined);
        if (held !== undefined) return errorAnswer(409, "conflict");
        const token = this.nextToken++;
        for (const resource of resources)
          this.leases.set(resource, { token, ttlMs: body.ttlMs ?? 0, expiresAtMs: nowMs + (body.ttlMs ?? 0) });
        return okAnswer({ status: "granted", token: String(token), resources, owner: body.owner ?? "", ttlMs: body.ttlMs ?? 0 });
      }
      case "/renew": {
        const leases = resources.map(live);
        if (leases.some((lease) => lease === undefined || String(lease.token) !== body.token)) return errorAnswer(409, "not_held");
        for (const lease of leases) if (lease !== undefined) lease.expiresAtMs = nowMs + lease.ttlMs;
        return okAnswer({ status: "renewed", leases: leaseRefs(resources, body.token), ttlMs: leases[0]?.ttlMs ?? 0 });
      }
      case "/unlock": {
        for (const resource of resources) if (String(live(resource)?.token) === body.token) this.releaseBehindTheHolder(resource);
        return okAnswer({ status: "released", leases: leaseRefs(resources, body.token) });
      }
      case "/txn": {
        const current = (body.guards ?? []).every((guard) => String(live(guard.resource)?.token) === guard.token);
        return current ? okAnswer({ status: "committed", index: this.nextToken++, keys: [] }) : errorAnswer(409, "stale_fencing_token");
      }
      default:
        return errorAnswer(404, "not_found");
    }
  }
}

function leaseRefs(resources: readonly string[], token: string | undefined): { resource: string; token: string }[] {
  return resources.map((resource) => ({ resource, token: token ?? "" }));
}

function okAnswer(body: WriteAnswer<"/lock" | "/renew" | "/unlock" | "/txn">): TransportAnswer {
  return { status: 200, body: JSON.stringify(body), leaderUrl: undefined };
}

function errorAnswer(status: number, code: string): TransportAnswer {
  return { status, body: JSON.stringify({ error: { code, message: `scripted ${code}` } }), leaderUrl: undefined };
}
