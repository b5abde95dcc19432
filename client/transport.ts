// The seam between LockClient and the network: one request to one node, one whole answer. The
// default is HTTP over undici; tests put a scripted transport here (blackholed networks, dropped
// requests or answers, slow answers) and run the client's timing rules on a fake clock.

import { EventEmitter } from "node:events";
import { createSecureContext, type SecureContext } from "node:tls";
import { Agent, Pool } from "undici";

/**
 * AttemptSignal ends one attempt, on its timeout or the caller's signal. A transport must settle
 * the request soon after `abort` (undici takes this EventEmitter as a request's signal, as well
 * as an AbortSignal: an AbortController, an EventTarget, cost about 9 µs more per request in a
 * loopback benchmark).
 */
export class AttemptSignal extends EventEmitter {
  aborted = false;
  reason: unknown = undefined;

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    this.emit("abort");
  }
}

/** TransportRequest is one HTTP request to one node. */
export interface TransportRequest {
  readonly method: "GET" | "POST";
  /** node is the node's base URL, e.g. "http://127.0.0.1:7001" (no trailing slash). */
  readonly node: string;
  /** path starts with "/" and may carry a query. */
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | undefined;
  readonly signal: AttemptSignal;
}

/** TransportAnswer is a node's whole answer. */
export interface TransportAnswer {
  readonly status: number;
  readonly body: string;
  /** leaderUrl: the leader the answering node knows (header x-sctec-leader), if any. */
  readonly leaderUrl: string | undefined;
  /** retryAfterMs: the wait the answer asks for before another attempt (header Retry-After, in seconds), if any. */
  readonly retryAfterMs?: number | undefined;
}

/**
 * LockTransport sends one request and reads its whole answer. It rejects when the node cannot be
 * reached or `signal` aborts; LockClient turns that into `unavailable`, `timeout` or `aborted`.
 */
export interface LockTransport {
  send(request: TransportRequest): Promise<TransportAnswer>;
}

/**
 * HttpTransport is the default transport: one undici Pool per node it is told about (parsing a
 * URL and finding its pool on every call is dear at thousands of requests a second), and one
 * Agent for any other URL (a leader named by a header, say). With `ca`, https:// nodes are
 * trusted when their certificate comes from that CA (the cluster's own, `npm run certs`); the CA
 * is made into a TLS context once (secureContextOf), not at every connection.
 */
export class HttpTransport implements LockTransport {
  private readonly knownNodes: ReadonlySet<string>;
  private readonly pools = new Map<string, { readonly pool: Pool; readonly basePath: string }>();
  private readonly connect: { readonly secureContext: SecureContext } | undefined;
  private readonly agent: Agent;

  constructor(nodes: readonly string[], options: { readonly ca?: string } = {}) {
    this.knownNodes = new Set(nodes);
    this.connect = options.ca === undefined ? undefined : { secureContext: secureContextOf(options.ca) };
    this.agent = new Agent(this.connect === undefined ? {} : { connect: this.connect });
  }

  async send(sent: TransportRequest): Promise<TransportAnswer> {
    const options = {
      method: sent.method,
      headers: sent.headers,
      signal: sent.signal,
      ...(sent.body === undefined ? {} : { body: sent.body }),
    };
    const target = this.poolOf(sent.node);
    const response =
      target === undefined
        ? await this.agent.request({
            ...options,
            origin: new URL(sent.node).origin,
            path: `${new URL(sent.node).pathname.replace(/\/+$/, "")}${sent.path}`,
          })
        : await target.pool.request({ ...options, path: `${target.basePath}${sent.path}` });
    const body = await response.body.text();
    const leader = response.headers["x-sctec-leader"];
    const retryAfter = response.headers["retry-after"];
    return {
      status: response.statusCode,
      body,
      leaderUrl: typeof leader === "string" ? leader : undefined,
      retryAfterMs: typeof retryAfter === "string" ? retryAfterHeaderMs(retryAfter) : undefined,
    };
  }

  private poolOf(node: string): { readonly pool: Pool; readonly basePath: string } | undefined {
    let target = this.pools.get(node);
    if (target === undefined && this.knownNodes.has(node)) {
      const url = new URL(node);
      target = {
        pool: new Pool(url.origin, this.connect === undefined ? {} : { connect: this.connect }),
        basePath: url.pathname.replace(/\/+$/, ""),
      };
      this.pools.set(node, target);
    }
    return target;
  }
}

/** secureContexts: the TLS contexts made for CAs, by the CA's PEM text (secureContextOf); a handful at most. */
const secureContexts = new Map<string, SecureContext>();
const secureContextsMax = 8;

/**
 * secureContextOf: a TLS client context that trusts `ca` (and nothing else), made once per CA and
 * shared by every connection and every client in this process. Given only `ca`, each TLS
 * connection builds a context of its own, parsing the CA anew: with OpenSSL 3 that was about a
 * millisecond of CPU per connection, a quarter of a whole handshake's cost on both ends
 * (docs/BENCHMARKS.md, "Over TLS").
 */
export function secureContextOf(ca: string): SecureContext {
  let context = secureContexts.get(ca);
  if (context === undefined) {
    if (secureContexts.size >= secureContextsMax) secureContexts.delete(secureContexts.keys().next().value as string);
    context = createSecureContext({ ca, minVersion: "TLSv1.2" });
    secureContexts.set(ca, context);
  }
  return context;
}

/** retryAfterHeaderMs reads a Retry-After header in delay-seconds (an HTTP date is not used by nodes: ignored). */
export function retryAfterHeaderMs(header: string): number | undefined {
  const seconds = /^\s*\d+\s*$/.test(header) ? Number(header) : Number.NaN;
  return Number.isSafeInteger(seconds) ? seconds * 1000 : undefined;
}
