// AdmissionGate: the node's bound on client requests in flight (issue 17, admission control). A
// request the gate takes counts from its arrival until its answer is sent (or its caller hangs
// up); beyond `requestQueueMax` of them, a new one is answered at once `503 overloaded`, with
// `Retry-After` and `details.retryAfterMs`, before its body is read or anything else is done for
// it. So a node under more load than it can serve answers quickly "not now" instead of letting
// every request wait longer and longer until all time out (Google SRE's "handling overload":
// reject early and cheaply, let the client back off).
//
// Which requests are gated: the client API, what may reach the Raft log or wait for a read
// (`/lock`, `/unlock`, `/renew`, `/txn`, `/kv…`, `/leases`, `/admin/…`). Not gated: the open
// operator endpoints (`/status`, `/healthz`, `/metrics`, the status page; an operator must see an
// overloaded node), and `/watch` long polls, which wait by design and have their own bound
// (SCTEC_WATCHERS_MAX). An acquire that waits in a lock's queue (`waitMs`) counts while it waits:
// it holds a connection and a place in the leader's tables like any other.
//
// Requests that finish work already under way (`/unlock`, `/renew`, `/txn`: each acts on a lease
// its caller holds) are shed only at twice the limit. New work (an acquire, a read, an admin call)
// is shed first: shedding a release keeps a lease held and its waiters waiting, which deepens the
// queue it was meant to drain, and shedding a renewal can cost its holder the lease (LockClient
// likewise sends a holder's requests before new acquires).
//
// When the node stops (close), gated requests are answered `503 shutting_down` with
// `Connection: close`: the client asks another node, and the ones already in flight finish.

import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import type { ErrorAnswer } from "../protocol/errors.ts";
import { requestIdPattern } from "../protocol/limits.ts";
import type { Clock, TimerHandle } from "./driver/clock.ts";

export interface AdmissionGateOptions {
  /** requestQueueMax: gated requests in flight at once; one more is shed (503 overloaded). */
  readonly requestQueueMax: number;
  /** retryAfterMs: how long a shed caller is asked to wait before it tries again. */
  readonly retryAfterMs: number;
  readonly clock: Clock;
}

/** GateLoad: what the gate says of its load (status page, metrics). */
export interface GateLoad {
  readonly depth: number;
  readonly requestQueueMax: number;
  /** shedTotal: requests answered `overloaded` since the node started. */
  readonly shedTotal: number;
  readonly lastShedAgoMs: number | null;
}

/** GateVerdict: what the gate does with a request. */
export type GateVerdict = "admitted" | "overloaded" | "shutting_down";

export class AdmissionGate {
  private readonly options: AdmissionGateOptions;
  private inFlight = 0;
  private shedCount = 0;
  private lastShedAtMs: number | undefined;
  private closed = false;
  private drainWaiters: (() => void)[] = [];

  constructor(options: AdmissionGateOptions) {
    if (!(Number.isSafeInteger(options.requestQueueMax) && options.requestQueueMax >= 1))
      throw new Error(`AdmissionGate: requestQueueMax must be a positive integer, got ${options.requestQueueMax}`);
    if (!(Number.isSafeInteger(options.retryAfterMs) && options.retryAfterMs >= 0))
      throw new Error(`AdmissionGate: retryAfterMs must be a non-negative integer, got ${options.retryAfterMs}`);
    this.options = options;
  }

  /**
   * admit takes a request in (it must be released once answered), or says why not (an overloaded
   * one is counted as shed). `finishing`: it acts on a lease its caller holds (see the file
   * comment), and is shed only at twice the limit.
   */
  admit(finishing = false): GateVerdict {
    if (this.closed) return "shutting_down";
    if (this.inFlight >= (finishing ? 2 : 1) * this.options.requestQueueMax) {
      this.shedCount++;
      this.lastShedAtMs = this.options.clock.nowMs();
      return "overloaded";
    }
    this.inFlight++;
    return "admitted";
  }

  /** release ends an admitted request. */
  release(): void {
    this.inFlight--;
    if (this.inFlight < 0) throw new Error("AdmissionGate: released more requests than were admitted");
    if (this.inFlight === 0) for (const wake of this.drainWaiters.splice(0)) wake();
  }

  /** depth: gated requests in flight now. */
  depth(): number {
    return this.inFlight;
  }

  /** load: the gate's figures for the status page: in flight, the limit, shed since start and how long ago the last was. */
  load(): GateLoad {
    return {
      depth: this.inFlight,
      requestQueueMax: this.options.requestQueueMax,
      shedTotal: this.shedCount,
      lastShedAgoMs: this.lastShedAtMs === undefined ? null : this.options.clock.nowMs() - this.lastShedAtMs,
    };
  }

  get requestQueueMax(): number {
    return this.options.requestQueueMax;
  }

  get retryAfterMs(): number {
    return this.options.retryAfterMs;
  }

  /** close refuses every later request (`shutting_down`); those in flight go on. */
  close(): void {
    this.closed = true;
  }

  /** drained answers true once no admitted request is in flight, or false if `timeoutMs` passes first. */
  drained(timeoutMs: number): Promise<boolean> {
    if (this.inFlight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      let timer: TimerHandle | undefined;
      const wake = (): void => {
        if (timer !== undefined) this.options.clock.clearTimer(timer);
        resolve(true);
      };
      timer = this.options.clock.setTimer(() => {
        this.drainWaiters = this.drainWaiters.filter((waiter) => waiter !== wake);
        resolve(false);
      }, timeoutMs);
      this.drainWaiters.push(wake);
    });
  }
}

/**
 * gateClassOf: how the gate treats a request path (with its query): `new` work of the client API,
 * `finishing` work on a lease held (shed only at twice the limit), or `open` (not gated).
 */
export function gateClassOf(url: string): "new" | "finishing" | "open" {
  const query = url.indexOf("?");
  const path = query < 0 ? url : url.slice(0, query);
  switch (path) {
    case "/unlock":
    case "/renew":
    case "/txn":
      return "finishing";
    case "/lock":
    case "/kv":
    case "/leases":
      return "new";
    default:
      return path.startsWith("/kv/") || path.startsWith("/admin/") ? "new" : "open";
  }
}

/** ShedObserver hears of each request the gate refused (for metrics), with its path and why. */
export type ShedObserver = (path: string, method: string, verdict: Exclude<GateVerdict, "admitted">, response: ServerResponse) => void;

/**
 * withAdmission puts the gate in front of a listener: a gated request is admitted (and released
 * when its answer is sent or its caller hangs up) or answered at once; any other request passes.
 */
export function withAdmission(gate: AdmissionGate, listener: RequestListener, onShed?: ShedObserver): RequestListener {
  return (request, response) => {
    const url = request.url ?? "";
    const gateClass = gateClassOf(url);
    if (gateClass === "open") {
      listener(request, response);
      return;
    }
    const verdict = gate.admit(gateClass === "finishing");
    if (verdict === "admitted") {
      response.once("close", () => gate.release());
      listener(request, response);
      return;
    }
    onShed?.(url, request.method ?? "", verdict, response);
    refuse(gate, request, response, verdict);
  };
}

/**
 * retryAfterSeconds is a Retry-After header's value for a wait in ms: whole seconds, as HTTP has
 * it, at least 1 (0 would read as "at once"). `details.retryAfterMs` says it to the millisecond
 * for clients that know this contract (LockClient).
 */
export function retryAfterSeconds(retryAfterMs: number): string {
  return String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
}

/**
 * refuse answers a request the gate did not take, without reading its body (Node discards what is
 * left of it once the answer is sent).
 */
function refuse(gate: AdmissionGate, request: IncomingMessage, response: ServerResponse, verdict: "overloaded" | "shutting_down"): void {
  const requestId = request.headers["x-request-id"];
  if (typeof requestId === "string" && requestIdPattern.test(requestId)) response.setHeader("x-request-id", requestId);
  const retryAfterMs = gate.retryAfterMs;
  const answer: ErrorAnswer =
    verdict === "overloaded"
      ? {
          error: {
            code: "overloaded",
            message: `this node has ${gate.requestQueueMax} requests in flight, its limit; retry in ${retryAfterMs} ms`,
            details: { retryAfterMs, requestQueueMax: gate.requestQueueMax },
          },
        }
      : { error: { code: "shutting_down", message: "this node is stopping; ask another node" } };
  const json = JSON.stringify(answer);
  response.statusCode = 503;
  // A stopping node asks for no wait: another node can serve the request now.
  if (verdict === "overloaded") response.setHeader("retry-after", retryAfterSeconds(retryAfterMs));
  else response.setHeader("connection", "close");
  response.setHeader("content-type", "application/json; charset=utf-8");
  response.setHeader("content-length", Buffer.byteLength(json));
  response.end(json);
}
