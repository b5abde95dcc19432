// What every answer must satisfy, whatever was sent (issue 14):
// - never a 500, nor any other 5xx except a documented retryable one: a 503 or 504 whose code the
//   service's one error table maps to that status (protocol/errors.ts errorStatus for the node,
//   scheduler/errors.ts statusOfCode), and on the booking API with a Retry-After;
// - an error our code answers has the one error shape `{ "error": { "code", "message" } }`, with a
//   code from that table and the status the table gives it (answers from Node's HTTP parser
//   itself, to bytes no client would send, have no body and are exempt);
// - an HTTP request gets an answer (no reset, no hang past the timeout).

import { errorStatus as nodeStatusOf } from "../../protocol/errors.ts";
import { statusOfCode as schedulerStatusOf } from "../../scheduler/errors.ts";
import type { FuzzRequest } from "./generate.ts";
import type { FuzzAnswer } from "./send.ts";

/** FindingKind names what was wrong; findings are grouped by endpoint, kind and code. */
export type FindingKind = "server_error" | "undocumented_retry" | "error_shape" | "no_answer";

export interface Finding {
  readonly kind: FindingKind;
  readonly detail: string;
}

const tables: Record<FuzzRequest["service"], Readonly<Record<string, number>>> = {
  node: nodeStatusOf,
  scheduler: schedulerStatusOf,
};

/** retryableCodes: per service, the codes its table maps to 503 or 504. */
const retryableCodes: Record<FuzzRequest["service"], ReadonlySet<string>> = {
  node: new Set(
    Object.entries(nodeStatusOf)
      .filter(([, status]) => status === 503 || status === 504)
      .map(([code]) => code),
  ),
  scheduler: new Set(
    Object.entries(schedulerStatusOf)
      .filter(([, status]) => status === 503)
      .map(([code]) => code),
  ),
};

/** errorOf reads `{ error: { code, message } }` from a body, or says why it cannot. */
function errorOf(body: string): { code: string; message: string } | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return `not JSON: ${JSON.stringify(body.slice(0, 80))}`;
  }
  const error = (parsed as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (typeof error?.code !== "string" || typeof error.message !== "string")
    return `no { error: { code, message } } in ${body.slice(0, 80)}`;
  return { code: error.code, message: error.message };
}

/** nodeHeaderBytesMax: Node's limit on a request's header section (--max-http-header-size, 16 KiB by default). */
const nodeHeaderBytesMax = 16 * 1024;

function headerBytes(request: FuzzRequest): number {
  return request.headers.reduce((sum, [name, value]) => sum + Buffer.byteLength(`${name}: ${value}\r\n`), request.path.length + 40);
}

/** upgradeRefusals: raw upgrade requests that a service may refuse with a bare 503 (its documented limits). */
const bareRefusalsAllowed = /upgrade|peer/;

export function checkAnswer(request: FuzzRequest, answer: FuzzAnswer): Finding[] {
  if (answer.status === undefined) {
    // Raw bytes may be dropped without an answer (a parser closes on garbage): only HTTP requests must be answered.
    if (request.raw !== undefined) return [];
    // Node's HTTP parser answers headers over its limit with 431 and closes at once; a client still
    // writing then sees a reset instead of the 431. That is Node's doing, before any code of ours.
    if (headerBytes(request) > nodeHeaderBytesMax && /ECONNRESET|EPIPE/.test(answer.failure ?? "")) return [];
    return [{ kind: "no_answer", detail: answer.failure ?? "no answer" }];
  }
  const status = answer.status;
  const fromOurCode = answer.via === "http" && request.method !== "HEAD" && status !== 431;
  if (status >= 500) {
    if (status !== 503 && status !== 504) return [{ kind: "server_error", detail: `${status} ${answer.body.slice(0, 200)}` }];
    if (request.service === "scheduler" && request.path.startsWith("/healthz") && /"ok":\s*false/.test(answer.body)) return [];
    // A HEAD answer never has a body (RFC 9110 §9.3.2), so its code cannot be read: the status is
    // all it says, and a 503/504 is the documented "try again" (the booking API still owes Retry-After).
    if (request.method === "HEAD") {
      if (request.service === "scheduler" && answer.headers["retry-after"] === undefined)
        return [{ kind: "undocumented_retry", detail: `${status} to HEAD without Retry-After` }];
      return [];
    }
    const error = errorOf(answer.body);
    if (typeof error === "string") {
      // A refused upgrade (peer handshakes or status page viewers over their limit) is a bare 503, as documented.
      if (request.raw !== undefined && bareRefusalsAllowed.test(request.endpoint) && status === 503) return [];
      return [{ kind: "undocumented_retry", detail: `${status}: ${error}` }];
    }
    if (!retryableCodes[request.service].has(error.code) || tables[request.service][error.code] !== status) {
      return [{ kind: "undocumented_retry", detail: `${status} ${error.code} is not a documented retryable answer: ${error.message}` }];
    }
    if (request.service === "scheduler" && answer.headers["retry-after"] === undefined) {
      return [{ kind: "undocumented_retry", detail: `${status} ${error.code} without Retry-After` }];
    }
    return [];
  }
  if (status >= 400 && fromOurCode) {
    const error = errorOf(answer.body);
    if (typeof error === "string") return [{ kind: "error_shape", detail: `${status}: ${error}` }];
    const expected = tables[request.service][error.code];
    if (expected === undefined) return [{ kind: "error_shape", detail: `${status} with a code not in the error table: ${error.code}` }];
    if (expected !== status) return [{ kind: "error_shape", detail: `${status} for ${error.code}, which the table maps to ${expected}` }];
  }
  return [];
}

/** codeOf: the error code of an answer, for the table's columns ("" when it has none). */
export function codeOf(answer: FuzzAnswer): string {
  if (answer.status === undefined || answer.status < 400) return "";
  const error = errorOf(answer.body);
  return typeof error === "string" ? "" : error.code;
}
