// Sending: an HTTP request goes out through node:http (keep-alive, so 100,000 requests do not use
// 100,000 sockets); what node:http refuses to send (a control character in a header, a value
// beyond Latin-1) and the raw requests go out over a plain socket instead.
// Every wait is bounded, and an answer body is read up to a bound only.

import { type ClientRequest, Agent as HttpAgent, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from "node:http";
import { rawHttp } from "../../harness/raw-http.ts";
import type { FuzzRequest } from "./generate.ts";

/** FuzzAnswer is what came back: a status, or none (and why). */
export interface FuzzAnswer {
  readonly status: number | undefined;
  readonly headers: Readonly<Record<string, string>>;
  /** body: the answer's text, up to bodyBytesMax (error answers are small; a large success body is cut). */
  readonly body: string;
  /** failure: why there is no status (a timeout, a reset), or undefined. */
  readonly failure: string | undefined;
  readonly elapsedMs: number;
  readonly via: "http" | "socket";
}

export interface Sender {
  send(request: FuzzRequest): Promise<FuzzAnswer>;
  close(): Promise<void>;
}

const bodyBytesMax = 256 * 1024;

function beyondLatin1(text: string): boolean {
  for (let position = 0; position < text.length; position++) if (text.charCodeAt(position) > 0xff) return true;
  return false;
}

/**
 * createSender makes a sender with at most `connections` keep-alive connections per target. It
 * uses node:http, whose per-request timeout destroys a stuck socket: with undici's pool, a few
 * hostile requests (header values beyond Latin-1, a TRACE) left later requests to the same origin
 * unsettled, past every timeout, so a fuzz run stalled.
 */
export function createSender(options: { connections: number; timeoutMs: number }): Sender {
  const agent = new HttpAgent({ keepAlive: true, maxSockets: options.connections, maxFreeSockets: options.connections });
  const send = (fuzzRequest: FuzzRequest, fresh = false): Promise<FuzzAnswer> => {
    const startedMs = performance.now();
    if (fuzzRequest.raw !== undefined) {
      return rawHttp(fuzzRequest.baseUrl, fuzzRequest.raw.bytes, {
        timeoutMs: Math.min(options.timeoutMs, 5000),
        halfClose: fuzzRequest.raw.halfClose,
        stopAfterHead: true,
      }).then((answer) => socketAnswer(answer, startedMs));
    }
    // Header values beyond Latin-1 have no exact form for node:http (it would garble them): they
    // go out as UTF-8 bytes over a socket of their own, as a client that sends UTF-8 would.
    if (fuzzRequest.headers.some(([name, value]) => beyondLatin1(name + value))) {
      return rawHttp(fuzzRequest.baseUrl, asBytes(fuzzRequest), { timeoutMs: options.timeoutMs }).then((answer) =>
        socketAnswer(answer, startedMs),
      );
    }
    return new Promise<FuzzAnswer>((resolve) => {
      const fail = (failure: string) =>
        resolve({ status: undefined, headers: {}, body: "", failure, elapsedMs: performance.now() - startedMs, via: "http" });
      let outgoing: ClientRequest;
      try {
        const headers: OutgoingHttpHeaders = {};
        for (const [name, value] of fuzzRequest.headers) headers[name] = value;
        if (fuzzRequest.body !== undefined) headers["content-length"] = String(Buffer.byteLength(fuzzRequest.body));
        outgoing = httpRequest(`${fuzzRequest.baseUrl}${fuzzRequest.path}`, {
          method: fuzzRequest.method,
          headers,
          // The retry after a reset goes on a connection of its own: the agent could hand it another
          // idle socket that the server is closing at that moment (seen once in 100,000 requests).
          agent: fresh ? false : agent,
          timeout: options.timeoutMs,
        });
      } catch {
        // node:http refuses what is not HTTP (a control character in a header, a path it cannot
        // write): it goes out as bytes instead, and the server's parser has its say.
        rawHttp(fuzzRequest.baseUrl, asBytes(fuzzRequest), { timeoutMs: options.timeoutMs }).then((answer) =>
          resolve(socketAnswer(answer, startedMs)),
        );
        return;
      }
      outgoing.on("timeout", () => outgoing.destroy(new Error(`no answer within ${options.timeoutMs} ms`)));
      outgoing.on("error", (error) => {
        // A kept-alive socket the server closed as it sat idle fails the next request sent on it
        // before the server read a byte: that race is the client's, so it is tried once more on a
        // fresh connection, as browsers do.
        if (outgoing.reusedSocket && !fresh && (error as { code?: string }).code === "ECONNRESET") {
          void send(fuzzRequest, true).then(resolve);
          return;
        }
        fail(`${(error as { code?: string }).code ?? error.name}: ${error.message}`);
      });
      outgoing.on("response", (response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        response.on("data", (chunk: Buffer) => {
          if (bytes >= bodyBytesMax) return;
          chunks.push(chunk);
          bytes += chunk.byteLength;
        });
        response.on("error", (error) => fail(`the answer broke off: ${error.message}`));
        response.on("end", () => {
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(response.headers))
            headers[name] = Array.isArray(value) ? value.join(", ") : String(value);
          resolve({
            status: response.statusCode,
            headers,
            body: Buffer.concat(chunks).toString("utf8"),
            failure: undefined,
            elapsedMs: performance.now() - startedMs,
            via: "http",
          });
        });
      });
      outgoing.end(fuzzRequest.body);
    });
  };
  return {
    // A hard deadline around everything: whatever happens to a socket, a worker never waits longer.
    async send(fuzzRequest) {
      let timer: NodeJS.Timeout | undefined;
      const deadlineMs = options.timeoutMs + 1000;
      const deadline = new Promise<FuzzAnswer>((resolve) => {
        timer = setTimeout(
          () =>
            resolve({
              status: undefined,
              headers: {},
              body: "",
              failure: `no answer within ${deadlineMs} ms`,
              elapsedMs: deadlineMs,
              via: "http",
            }),
          deadlineMs,
        );
      });
      try {
        return await Promise.race([send(fuzzRequest), deadline]);
      } finally {
        clearTimeout(timer);
      }
    },
    close: async () => agent.destroy(),
  };
}

function socketAnswer(answer: Awaited<ReturnType<typeof rawHttp>>, startedMs: number): FuzzAnswer {
  const split = answer.text.indexOf("\r\n\r\n");
  const head = split < 0 ? answer.text : answer.text.slice(0, split);
  const headers: Record<string, string> = {};
  for (const headerLine of head.split("\r\n").slice(1)) {
    const colon = headerLine.indexOf(":");
    if (colon > 0) headers[headerLine.slice(0, colon).trim().toLowerCase()] = headerLine.slice(colon + 1).trim();
  }
  return {
    status: answer.status,
    headers,
    body: split < 0 ? "" : Buffer.from(answer.text.slice(split + 4), "latin1").toString("utf8"),
    failure: answer.status === undefined ? (answer.timedOut ? "no answer in time" : "closed without an answer") : undefined,
    elapsedMs: performance.now() - startedMs,
    via: "socket",
  };
}

/** asBytes writes an HTTP request as HTTP/1.1 bytes, headers exactly as given. */
export function asBytes(fuzzRequest: FuzzRequest): Uint8Array {
  const body = fuzzRequest.body === undefined ? Buffer.alloc(0) : Buffer.from(fuzzRequest.body);
  const url = new URL(fuzzRequest.baseUrl);
  const head = [
    `${fuzzRequest.method} ${fuzzRequest.path} HTTP/1.1`,
    `Host: ${url.host}`,
    ...fuzzRequest.headers.map(([name, value]) => `${name}: ${value}`),
    ...(fuzzRequest.body === undefined ? [] : [`Content-Length: ${body.byteLength}`]),
    "Connection: close",
    "",
    "",
  ].join("\r\n");
  return Buffer.concat([Buffer.from(head, "utf8"), body]);
}
