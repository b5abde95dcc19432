// The node's HTTP API (express 5): the lab's POST /lock and /unlock, plus renew, fenced txn,
// linearizable reads, status, health and admin calls. Inputs are validated with zod; errors are
// `{ "error": { "code", "message" } }` with the status from one table. Any node accepts any
// request: a follower forwards it to the leader it knows.
//
// The four calls every lock cycle makes (POST /lock, /unlock, /renew, /txn) also have a hot path
// (createHotPath) that answers a well-formed, authorized JSON request without express: the same
// handlers, schemas and answers, minus two routers and body-parser, which were the largest share
// of the leader's CPU per cycle. Anything unusual about a request (another content type or
// encoding, no or a wrong token, no length, a body over the limit) goes to express, which keeps
// answering those cases exactly as before.
//
// Every call but the open ones (/status, /healthz, the status page, /metrics) needs a bearer token
// whose role allows it (api-auth.ts, protocol/roles.ts): `reader` for reads, the watch and the
// lease table, `locker` for the four lock calls, `admin` for membership, transfer and credentials.
// No token, or an unknown one, is 401 `unauthorized`; a token whose role is too low is 403
// `forbidden`, naming the role the call needs.

import { createHmac, randomUUID, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, RequestListener, ServerResponse } from "node:http";
import express, { type NextFunction, type Request, type Response } from "express";
import type { Logger } from "pino";
import { type Dispatcher, request as httpRequest } from "undici";
import type { z } from "zod";
import type { LockCommand, LockEvent, LockResult, Session } from "../lock/types.ts";
import {
  type CommitAnswer,
  type CredentialInfo,
  type CredentialList,
  credentialRequestSchema,
  type GrantAnswer,
  type HealthAnswer,
  type IssuedCredential,
  type KeyValue,
  type LeasesAnswer,
  leaseRequestSchema,
  lockRequestSchema,
  type MemberAnswer,
  memberRequestSchema,
  type RangePage,
  type ReleaseAnswer,
  type RenewAnswer,
  type RestartAnswer,
  type RevokedCredential,
  rangeQuerySchema,
  type TransferAnswer,
  transferRequestSchema,
  txnRequestSchema,
  type WhoamiAnswer,
  whoamiAnswerSchema,
} from "../protocol/api.ts";
import { credentialNameSchema, nameSchema } from "../protocol/commands.ts";
import { type ErrorAnswer, type ErrorCode, errorStatus } from "../protocol/errors.ts";
import { invalidRequestOf } from "../protocol/issues.ts";
import { requestIdPattern } from "../protocol/limits.ts";
import { type Role, roleIncludes } from "../protocol/roles.ts";
import type { NodeStatus } from "../protocol/status.ts";
import { type WatchAnswer, type WatchEvent, watchQuerySchema } from "../protocol/watch.ts";
import { type NodeId, nodeId } from "../raft/index.ts";
import { retryAfterSeconds } from "./admission.ts";
import { ApiAuthenticator, type CallerCheck, CredentialRefusedError, type Identity, newToken, tokenHashOf } from "./api-auth.ts";
import { DriverError } from "./driver/raft-driver.ts";
import type { ApiHost } from "./raft-host.ts";
import { WatchError } from "./watch-hub.ts";

export interface ApiOptions {
  /** host: the Raft side (raft-host.ts), in this thread or on the raft thread. */
  readonly host: ApiHost;
  /** apiToken: the bootstrap admin token (SCTEC_API_TOKEN); every other token is a credential in the replicated state. */
  readonly apiToken: string;
  /** clusterSecret signs the x-sctec-forwarded header between members (forwardedHeader). */
  readonly clusterSecret: string;
  /** peerUrls: each member's base HTTP URL, for forwarding to the leader. */
  readonly peerUrls: ReadonlyMap<string, string>;
  readonly bodyBytesMax: number;
  readonly logger: Logger;
  /** dispatcher: what forwarding to the leader goes through; over TLS, one that trusts the cluster's CA. @default undici's global one */
  readonly dispatcher?: () => Dispatcher;
  /**
   * overloadRetryAfterMs: the wait an `overloaded` answer asks for (Retry-After, and
   * `details.retryAfterMs`), as the admission gate's (admission.ts). @default 1000
   */
  readonly overloadRetryAfterMs?: number;
  /** bootId names this process (GET /status `bootId`, new at every start). */
  readonly bootId?: string;
  /**
   * restart stops the node gracefully to be started again by its supervisor (POST
   * /admin/restart); called once the 202 is sent. Without it the endpoint answers 404.
   */
  readonly restart?: () => void;
}

// The bodies' schemas are the wire contract's (protocol/api.ts), built from the command schemas'
// fields with the same limits: a request that passes here builds a command that passes the
// leader's check, and every follower's. The leader checks the command itself again
// (LockService.submit). Node ids in the admin bodies follow the one rule, the rule a follower's
// frame decoder applies to a membership entry: an id no follower would take never reaches the log.

/**
 * ApiRequest is what a handler reads of a request. express's Request provides it, and so does the
 * hot path's plain object, so both paths run the same handlers.
 */
interface ApiRequest {
  readonly method: string;
  readonly originalUrl: string;
  readonly body: unknown;
  readonly params: Readonly<Record<string, unknown>>;
  readonly query: unknown;
  header(name: string): string | undefined;
}

/** ApiError is an error answer: its code's status comes from the one table (protocol/errors.ts). */
class ApiError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message);
    this.code = code;
    this.details = details;
  }
}

/** defaultOverloadRetryAfterMs: the wait an `overloaded` answer asks for when ApiOptions names none. */
const defaultOverloadRetryAfterMs = 1000;

/** createApi builds the express app. The WebSocket upgrade for /raft is attached to the same server by the caller. */
export function createApi(options: ApiOptions): express.Express {
  const app = express();
  app.disable("x-powered-by");
  // No ETag: every answer is a fresh result, never revalidated, and hashing each body cost the leader CPU.
  app.set("etag", false);
  app.use((request: Request, response: Response, next: NextFunction) => {
    response.locals["requestId"] = stampResponse(options, request.header("x-request-id"), response);
    next();
  });
  app.use(express.json({ limit: options.bodyBytesMax, strict: true }));
  app.get("/healthz", async (_request, response) => {
    const { status } = await options.host.hostStatus();
    response.json({ ok: true, nodeId: status.id, role: status.role, leaderId: status.leaderId } satisfies HealthAnswer);
  });
  app.get("/status", async (_request, response) => {
    response.json(await statusBody(options));
  });
  const auth = new ApiAuthenticator({ bootstrapToken: options.apiToken, host: options.host });
  app.use(authenticate(options, auth));
  for (const [path, handler] of hotHandlers(options)) app.post(path, requireRole("locker"), handle(options, handler));
  const routes: readonly ["get" | "post", string, Role, Handler][] = [
    ["get", "/kv/:key", "reader", (request, _log, _response, identity) => kvGetHandler(options, request, identity)],
    ["get", "/kv", "reader", (request, _log, _response, identity) => kvRangeHandler(options, request, identity)],
    ["get", "/watch", "reader", (request, _log, response, identity) => watchHandler(options, request, response, identity)],
    ["get", "/leases", "reader", (_request, _log, _response, identity) => leasesHandler(options, identity)],
    ["get", "/auth/whoami", "reader", (_request, _log, _response, identity) => whoamiHandler(options, identity)],
    ["post", "/admin/members", "admin", (request, _log, _response, identity) => memberHandler(options, request, identity)],
    ["post", "/admin/transfer", "admin", (request, _log, _response, identity) => transferHandler(options, request, identity)],
    ["post", "/admin/restart", "admin", (request, _log, response, identity) => restartHandler(options, request, response, identity)],
    ...credentialRoutes(options),
  ];
  for (const [method, path, role, handler] of routes) app[method](path, requireRole(role), handle(options, handler));
  app.use((_request: Request, response: Response) => sendError(response, new ApiError("not_found", "no such endpoint")));
  app.use((error: unknown, _request: Request, response: Response, _next: NextFunction) =>
    respondWithError(response, error, options.logger, options.overloadRetryAfterMs ?? defaultOverloadRetryAfterMs),
  );
  return app;
}

/** HotPathObserver hears of every request the hot path takes, as the metrics middleware would. */
export type HotPathObserver = (path: string, method: string, response: ServerResponse) => void;

/**
 * createHotPath returns a listener that answers POST /lock, /unlock, /renew and /txn when the
 * request is plain: `application/json` (UTF-8, no content encoding), a content-length within
 * bodyBytesMax, and the right bearer token. It returns false, touching nothing, for any other
 * request; the caller then hands it to express (withHotPath). The answers are the express path's:
 * same handlers, schemas, headers and error shapes (http-api.test.ts compares both on fuzzed input).
 */
export function createHotPath(
  options: ApiOptions,
  observe?: HotPathObserver,
): (request: IncomingMessage, response: ServerResponse) => boolean {
  const auth = new ApiAuthenticator({ bootstrapToken: options.apiToken, host: options.host });
  const routes = new Map([...hotHandlers(options)].map(([path, handler]) => [path, serve(options, handler)]));
  return (request, response) => {
    if (request.method !== "POST") return false;
    const path = request.url ?? "";
    const run = routes.get(path);
    if (run === undefined) return false;
    const headers = request.headers;
    const bodyBytes = Number(headers["content-length"]);
    // A token this node does not know (yet), or whose role is too low, goes to express, which
    // looks again after a ReadIndex round, or answers 401 or 403.
    const identity = auth.local(headers.authorization);
    const plain =
      identity !== undefined &&
      roleIncludes(identity.role, "locker") &&
      isPlainJson(headers["content-type"]) &&
      headers["content-encoding"] === undefined &&
      headers["transfer-encoding"] === undefined &&
      Number.isSafeInteger(bodyBytes) &&
      bodyBytes >= 0 &&
      bodyBytes <= options.bodyBytesMax;
    if (!plain) return false;
    observe?.(path, "POST", response);
    const requestIdHeader = headers["x-request-id"];
    const requestId = stampResponse(options, typeof requestIdHeader === "string" ? requestIdHeader : undefined, response);
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      let body: unknown = {};
      if (bodyBytes > 0) {
        try {
          body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        } catch (error) {
          sendError(response, new ApiError("invalid_request", `malformed JSON body: ${(error as Error).message}`));
          return;
        }
      }
      const apiRequest: ApiRequest = {
        method: "POST",
        originalUrl: path,
        body,
        params: {},
        query: {},
        header: (name) => {
          const value = headers[name.toLowerCase()];
          return Array.isArray(value) ? value.join(", ") : value;
        },
      };
      void run(apiRequest, response, requestId, identity);
    });
    // A caller that hangs up mid-body gets no answer; the socket is gone anyway.
    request.on("error", () => response.destroy());
    return true;
  };
}

/** isPlainJson: the content types the hot path takes; body-parser handles every other spelling. */
function isPlainJson(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const lower = contentType.toLowerCase();
  return lower === "application/json" || lower === "application/json; charset=utf-8";
}

/** withHotPath serves what the hot path takes and hands everything else to `fallback` (express). */
export function withHotPath(
  hotPath: (request: IncomingMessage, response: ServerResponse) => boolean,
  fallback: RequestListener,
): RequestListener {
  return (request, response) => {
    if (!hotPath(request, response)) fallback(request, response);
  };
}

/**
 * stampResponse sets the headers every answer carries and returns the request's id: the caller's
 * x-request-id when it is a valid one, or a fresh one.
 */
function stampResponse(options: ApiOptions, requestIdHeader: string | undefined, response: ServerResponse): string {
  // A caller's id is adopted only if it looks like one (protocol/limits.ts): it goes into every
  // log line of the request and back into the answer, so its length and characters are bounded.
  const requestId = requestIdHeader !== undefined && requestIdPattern.test(requestIdHeader) ? requestIdHeader : randomUUID();
  response.setHeader("x-request-id", requestId);
  // Name the leader on every answer, so clients can talk to it directly and save a forwarding hop.
  const leaderId = options.host.leaderId();
  const leaderUrl = leaderId === null ? undefined : options.peerUrls.get(leaderId);
  if (leaderUrl !== undefined) response.setHeader("x-sctec-leader", leaderUrl);
  return requestId;
}

type Handler = (
  request: ApiRequest,
  log: Logger,
  response: ServerResponse,
  identity: Identity,
) => Promise<{ status: number; body: unknown }>;

/** hotHandlers: the calls of every lock cycle, served by express and by the hot path alike. */
function hotHandlers(options: ApiOptions): ReadonlyMap<string, Handler> {
  return new Map<string, Handler>([
    ["/lock", (request, log, _response, identity) => lockHandler(options, request, log, identity)],
    ["/unlock", (request, _log, _response, identity) => leaseHandler(options, request, "release", identity)],
    ["/renew", (request, _log, _response, identity) => leaseHandler(options, request, "renew", identity)],
    ["/txn", (request, _log, _response, identity) => txnHandler(options, request, identity)],
  ]);
}

/** handle adapts serve to an express route. */
function handle(options: ApiOptions, handler: Handler) {
  const run = serve(options, handler);
  return (request: Request, response: Response): Promise<void> =>
    run(request, response, String(response.locals["requestId"]), response.locals["identity"] as Identity);
}

/** serve runs a handler, forwards to the leader when this node is not it, and maps errors. */
function serve(options: ApiOptions, handler: Handler) {
  return async (request: ApiRequest, response: ServerResponse, requestId: string, identity: Identity): Promise<void> => {
    const log = options.logger.child({ requestId });
    try {
      const { status, body } = await handler(request, log, response, identity);
      sendJson(response, status, body);
    } catch (error) {
      if (error instanceof DriverError && error.code === "not_leader") {
        await forward(options, request, response, requestId, error.leaderHint, log);
        return;
      }
      respondWithError(response, error, log, options.overloadRetryAfterMs ?? defaultOverloadRetryAfterMs);
    }
  };
}

async function forward(
  options: ApiOptions,
  request: ApiRequest,
  response: ServerResponse,
  requestId: string,
  leaderId: NodeId | null,
  log: Logger,
): Promise<void> {
  const target = leaderId === null ? undefined : options.peerUrls.get(leaderId);
  if (target === undefined) {
    sendError(response, new ApiError("no_leader", "no leader is known right now; retry shortly", { leaderId }));
    return;
  }
  // A request is forwarded once: a node that took it as the leader but no longer is says so,
  // and the caller retries (no forwarding loops while leadership moves).
  const forwardedBy = forwardingPeerOf(options, request, requestId);
  if (forwardedBy !== undefined) {
    const message = `${forwardedBy} forwarded this request here as to the leader, but leadership has moved (to ${leaderId}); retry`;
    sendError(response, new ApiError("no_leader", message, { leaderId }));
    return;
  }
  log.info(
    { event: "forwarded", to: leaderId, path: request.originalUrl },
    `forwarding ${request.method} ${request.originalUrl} to leader ${leaderId}`,
  );
  try {
    const answer = await httpRequest(`${target}${request.originalUrl}`, {
      method: request.method as "GET" | "POST",
      headers: {
        authorization: request.header("authorization") ?? "",
        "content-type": "application/json",
        "x-request-id": requestId,
        "x-sctec-forwarded": forwardedHeader(options, options.host.nodeId, requestId),
      },
      ...(request.method === "GET" ? {} : { body: JSON.stringify(request.body ?? {}) }),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
      ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher() }),
    });
    // The leader's Retry-After (an overloaded leader's) goes back to the caller with its answer.
    const retryAfter = answer.headers["retry-after"];
    if (typeof retryAfter === "string") response.setHeader("retry-after", retryAfter);
    sendText(response, answer.statusCode, await answer.body.text());
  } catch (error) {
    sendError(response, new ApiError("no_leader", `the leader ${leaderId} did not answer: ${(error as Error).message}`));
  }
}

/**
 * forwardedHeader is the x-sctec-forwarded value a node sends with a request it forwards:
 * `<its id>:<HMAC-SHA256(cluster secret, id ‖ request id)>`. Only members hold the secret, so a
 * client cannot make a node believe a request was forwarded (which would refuse it with 503).
 */
function forwardedHeader(options: ApiOptions, from: string, requestId: string): string {
  return `${from}:${createHmac("sha256", options.clusterSecret).update(`${from}\n${requestId}`, "utf8").digest("base64url")}`;
}

/** forwardingPeerOf: the member that forwarded this request, if its x-sctec-forwarded is genuine; a client's is ignored. */
function forwardingPeerOf(options: ApiOptions, request: ApiRequest, requestId: string): string | undefined {
  const header = request.header("x-sctec-forwarded");
  if (header === undefined) return undefined;
  const separator = header.indexOf(":");
  const from = header.slice(0, Math.max(0, separator));
  if (separator < 0 || !options.peerUrls.has(from) || from === options.host.nodeId) return undefined;
  const expected = Buffer.from(forwardedHeader(options, from, requestId), "utf8");
  const given = Buffer.from(header, "utf8");
  return expected.byteLength === given.byteLength && timingSafeEqual(expected, given) ? from : undefined;
}

/**
 * authenticate finds the caller's Identity (response.locals.identity), or answers 401. A token
 * unknown to this node is looked up again after a ReadIndex round (ApiAuthenticator.resolve); a
 * follower, which cannot run one, forwards such a request to the leader, which decides.
 */
function authenticate(options: ApiOptions, auth: ApiAuthenticator) {
  return (request: Request, response: Response, next: NextFunction): void => {
    const requestId = String(response.locals["requestId"]);
    auth.resolve(request.header("authorization")).then(
      (identity) => {
        if (identity === undefined) {
          sendError(response, new ApiError("unauthorized", "a valid bearer token is required (Authorization: Bearer <token>)"));
          return;
        }
        response.locals["identity"] = identity;
        next();
      },
      (error: unknown) => {
        const log = options.logger.child({ requestId });
        if (error instanceof DriverError && error.code === "not_leader")
          void forward(options, request, response, requestId, error.leaderHint, log);
        else respondWithError(response, error, log, options.overloadRetryAfterMs ?? defaultOverloadRetryAfterMs);
      },
    );
  };
}

/** requireRole answers 403 `forbidden`, naming the role the call needs, unless the caller's role includes it. */
function requireRole(role: Role) {
  return (_request: Request, response: Response, next: NextFunction): void => {
    const identity = response.locals["identity"] as Identity;
    if (!roleIncludes(identity.role, role)) {
      sendError(response, forbidden(role, identity));
      return;
    }
    next();
  };
}

function forbidden(role: Role, identity: Identity): ApiError {
  return new ApiError("forbidden", `this call needs the ${role} role; the token of ${identity.name} has the ${identity.role} role`, {
    role,
    tokenRole: identity.role,
  });
}

/** credentialOf: the credentialIndex a command carries for its caller (none for the bootstrap token), so the state machine can refuse a revoked token. */
function credentialOf(identity: Identity): { credentialIndex?: number } {
  return identity.credentialIndex === undefined ? {} : { credentialIndex: identity.credentialIndex };
}

/**
 * callerOf: the caller's token and the role a read needs, for the Raft side to check inside the
 * read (raft-host.ts): a token revoked before the read began is refused on every node, a follower
 * included (its ReadIndex round waits until it has applied the revocation).
 */
function callerOf(identity: Identity, role: Role): CallerCheck {
  return { credentialIndex: identity.credentialIndex, role };
}

/**
 * confirmToken checks, linearizably, that the caller's token still allows `role`, for a call that
 * is not itself a read: after a ReadIndex round on the leader; on a follower (which cannot run one
 * in this core) by asking the leader's `GET /auth/whoami` with the caller's own token. The
 * bootstrap admin token is never revoked through the log, and costs nothing here.
 */
async function confirmToken(options: ApiOptions, request: ApiRequest, identity: Identity, role: Role): Promise<void> {
  if (identity.credentialIndex === undefined) return;
  try {
    await options.host.confirmCaller(callerOf(identity, role));
  } catch (error) {
    if (!(error instanceof DriverError && error.code === "not_leader")) throw error;
    await confirmAtLeader(options, request, error.leaderHint, role);
  }
}

/** confirmAtLeader asks the leader who the caller's token belongs to now (its GET /auth/whoami). */
async function confirmAtLeader(options: ApiOptions, request: ApiRequest, leaderId: NodeId | null, role: Role): Promise<void> {
  const target = leaderId === null ? undefined : options.peerUrls.get(leaderId);
  if (target === undefined)
    throw new ApiError("no_leader", "no leader is known right now to confirm the token; retry shortly", { leaderId });
  let answer: { statusCode: number; text: string };
  try {
    const response = await httpRequest(`${target}/auth/whoami`, {
      method: "GET",
      headers: { authorization: request.header("authorization") ?? "" },
      headersTimeout: 5000,
      bodyTimeout: 5000,
      ...(options.dispatcher === undefined ? {} : { dispatcher: options.dispatcher() }),
    });
    answer = { statusCode: response.statusCode, text: await response.body.text() };
  } catch (error) {
    throw new ApiError("no_leader", `the leader ${leaderId} did not confirm the token: ${(error as Error).message}`);
  }
  if (answer.statusCode === 401) throw new ApiError("unauthorized", "the token was revoked or rotated");
  if (answer.statusCode !== 200)
    throw new ApiError("no_leader", `the leader ${leaderId} could not confirm the token (HTTP ${answer.statusCode}); retry`);
  const whoami = whoamiAnswerSchema.safeParse(JSON.parse(answer.text));
  if (!whoami.success) throw new ApiError("no_leader", `the leader ${leaderId} answered whoami off the contract; retry`);
  if (!roleIncludes(whoami.data.role, role)) {
    throw new ApiError("forbidden", `this call needs the ${role} role; the token has the ${whoami.data.role} role`, {
      role,
      tokenRole: whoami.data.role,
    });
  }
}

function parse<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value ?? {});
  if (!parsed.success) {
    const { message, details } = invalidRequestOf(parsed.error, "body");
    throw new ApiError("invalid_request", message, details);
  }
  return parsed.data;
}

/** sessionOf returns `{ session }` to spread into a command, or `{}`: without a session a command is applied once and not remembered. */
function sessionOf(body: { clientId?: string | undefined; sequence?: number | undefined }): { session?: Session } {
  if (body.clientId !== undefined && body.sequence !== undefined) return { session: { clientId: body.clientId, sequence: body.sequence } };
  if (body.clientId !== undefined || body.sequence !== undefined)
    throw new ApiError("invalid_request", "clientId and sequence go together");
  return {};
}

function resourcesOf(body: { resource?: string | undefined; resources?: string[] | undefined }): string[] {
  if ((body.resource === undefined) === (body.resources === undefined))
    throw new ApiError("invalid_request", "give exactly one of resource and resources");
  return body.resource !== undefined ? [body.resource] : (body.resources as string[]);
}

async function lockHandler(
  options: ApiOptions,
  request: ApiRequest,
  log: Logger,
  identity: Identity,
): Promise<{ status: number; body: unknown }> {
  const body = parse(lockRequestSchema, request.body);
  const resources = resourcesOf(body).sort();
  const session = sessionOf(body);
  const what = resources.join(", ");
  log.info({ event: "lock_requested", resources, owner: body.owner }, `lock request received for ${what}`);
  const command: LockCommand = {
    type: "acquire",
    ...session,
    ...credentialOf(identity),
    resources,
    owner: body.owner,
    ttlMs: body.ttlMs,
    waitMs: body.waitMs,
    ...(body.reads === undefined
      ? {}
      : {
          reads: body.reads.map((read) => ({
            prefix: read.prefix,
            limit: read.limit,
            ...(read.after === undefined ? {} : { after: read.after }),
          })),
        }),
  };
  if (body.waitMs > 0) log.info({ event: "lock_wait", resources }, `${what}: will wait up to ${body.waitMs} ms if in use`);
  // A queued acquire is answered when it is granted or times out (the host wires this up as it
  // applies the entry, so a grant in the same batch is not missed).
  const result = (await options.host.propose(command, { awaitQueuedMs: body.waitMs + 5_000 })).result;
  if (result.status === "granted")
    log.info({ event: "lock_granted", resources, token: result.token }, `lock granted for ${what} (token ${result.token})`);
  else if (result.status === "rejected" && result.code === "conflict")
    log.info({ event: "lock_denied", resources }, `${what} already in use — denying`);
  return resultResponse(result);
}

async function leaseHandler(
  options: ApiOptions,
  request: ApiRequest,
  type: "release" | "renew",
  identity: Identity,
): Promise<{ status: number; body: unknown }> {
  const body = parse(leaseRequestSchema, request.body);
  const leases = resourcesOf(body).map((resource) => ({ resource, token: body.token }));
  const applied = await options.host.propose({ type, ...sessionOf(body), ...credentialOf(identity), leases });
  if (applied.result.status === "released") {
    options.logger.info({ event: "lock_released", leases }, `lock for ${leases.map((lease) => lease.resource).join(", ")} released`);
  }
  return resultResponse(applied.result);
}

async function txnHandler(options: ApiOptions, request: ApiRequest, identity: Identity): Promise<{ status: number; body: unknown }> {
  const body = parse(txnRequestSchema, request.body);
  const applied = await options.host.propose({
    type: "txn",
    ...sessionOf(body),
    ...credentialOf(identity),
    guards: body.guards,
    operations: body.operations,
    ...(body.releaseGuards === true ? { releaseGuards: true } : {}),
  });
  if (applied.result.status === "committed" && body.releaseGuards === true) {
    const resources = body.guards.map((guard) => guard.resource).join(", ");
    options.logger.info({ event: "lock_released", leases: body.guards }, `lock for ${resources} released`);
  }
  return resultResponse(applied.result);
}

async function kvGetHandler(options: ApiOptions, request: ApiRequest, identity: Identity): Promise<{ status: number; body: unknown }> {
  const key = parse(nameSchema, request.params["key"]);
  const value = await options.host.readKey(key, callerOf(identity, "reader"));
  if (value === undefined) throw new ApiError("not_found", `no key ${key}`);
  return { status: 200, body: { key, value: value.value, token: String(value.token), modIndex: value.modIndex } satisfies KeyValue };
}

/**
 * kvRangeHandler answers one page of keys. `index` is the applied index the page was read at: a
 * caller that lists and then watches from `index` sees every later change exactly once.
 */
async function kvRangeHandler(options: ApiOptions, request: ApiRequest, identity: Identity): Promise<{ status: number; body: unknown }> {
  const query = parse(rangeQuerySchema, request.query);
  const { items, more, index } = await options.host.readRange(query, callerOf(identity, "reader"));
  return {
    status: 200,
    body: {
      items: items.map((item) => ({
        key: item.key,
        value: item.value.value,
        token: String(item.value.token),
        modIndex: item.value.modIndex,
      })),
      more,
      index,
    } satisfies RangePage,
  };
}

/**
 * watchHandler is a long poll over this node's applied events (no forwarding: events are
 * committed data, and every node derives the same ones). A poll whose caller hangs up is dropped,
 * so it stops counting against watchersMax. The caller's token is confirmed linearizably before the
 * poll (confirmToken: a follower asks the leader, and still serves the poll itself), and checked
 * again on this node's applied state before it answers: events applied after the token's
 * revocation are never sent under it.
 */
async function watchHandler(
  options: ApiOptions,
  request: ApiRequest,
  response: ServerResponse,
  identity: Identity,
): Promise<{ status: number; body: unknown }> {
  const query = parse(watchQuerySchema, request.query);
  await confirmToken(options, request, identity, "reader");
  const hungUp = new AbortController();
  response.on("close", () => hungUp.abort());
  const answer = await options.host.watch({
    prefix: query.prefix,
    after: query.after, // Without one: from the node's applied index.
    limit: query.limit,
    timeoutMs: query.timeoutMs,
    signal: hungUp.signal,
    // Checked on this node's applied state before the answer: the events are this node's applied
    // ones, so a revocation before any of them is applied here too.
    caller: callerOf(identity, "reader"),
  });
  return { status: 200, body: { events: answer.events.map(eventBody), lastIndex: answer.lastIndex } satisfies WatchAnswer };
}

/** eventBody is an event as the API shows it: fencing tokens as decimal strings. */
function eventBody(event: LockEvent): WatchEvent {
  return "token" in event ? { ...event, token: String(event.token) } : event;
}

async function leasesHandler(options: ApiOptions, identity: Identity): Promise<{ status: number; body: unknown }> {
  const leases = await options.host.readLeases(callerOf(identity, "reader"));
  return { status: 200, body: { leases: leases.map((lease) => ({ ...lease, token: String(lease.token) })) } satisfies LeasesAnswer };
}

async function memberHandler(options: ApiOptions, request: ApiRequest, identity: Identity): Promise<{ status: number; body: unknown }> {
  const body = parse(memberRequestSchema, request.body);
  // A membership entry names no token (the Raft core's), so the token is confirmed at a ReadIndex round instead.
  await confirmToken(options, request, identity, "admin");
  try {
    await options.host.proposeConfChange({ type: body.action, nodeId: nodeId(body.nodeId) });
  } catch (error) {
    // A change already in effect is answered as done: a client that retries after a lost answer
    // (a timeout on a loaded machine) must not be told that its own change "does not fit".
    if (
      error instanceof DriverError &&
      error.dropReason === "invalid_conf_change" &&
      changeInEffect((await options.host.hostStatus()).status, body)
    ) {
      return { status: 200, body: { applied: body, alreadyInEffect: true, status: await statusBody(options) } satisfies MemberAnswer };
    }
    // Refusals that are the caller's to fix are 4xx; "a change is pending" stays a retryable 503.
    if (error instanceof DriverError && error.dropReason === "learner_not_caught_up") {
      throw new ApiError("learner_not_caught_up", `${body.nodeId} is still catching up; promote it a little later`);
    }
    if (error instanceof DriverError && (error.dropReason === "invalid_conf_change" || error.dropReason === "not_a_voter")) {
      throw new ApiError("invalid_request", `membership change refused: ${body.action} ${body.nodeId} does not fit the current membership`);
    }
    throw error;
  }
  options.logger.info({ event: "membership_change_applied", ...body }, `membership change applied: ${body.action} ${body.nodeId}`);
  return { status: 200, body: { applied: body, status: await statusBody(options) } satisfies MemberAnswer };
}

/** changeInEffect: whether the membership this node has applied already is what `change` asks for. */
function changeInEffect(
  status: { voters: readonly string[]; learners: readonly string[] },
  change: { action: string; nodeId: string },
): boolean {
  switch (change.action) {
    case "add_learner":
      return status.learners.includes(change.nodeId);
    case "promote_learner":
      return status.voters.includes(change.nodeId);
    case "remove_node":
      return !status.voters.includes(change.nodeId) && !status.learners.includes(change.nodeId);
    default:
      return false;
  }
}

async function transferHandler(options: ApiOptions, request: ApiRequest, identity: Identity): Promise<{ status: number; body: unknown }> {
  const body = parse(transferRequestSchema, request.body);
  await confirmToken(options, request, identity, "admin");
  const outcome = await options.host.transferLeadership(nodeId(body.to));
  if (outcome.kind === "not_leader") throw new DriverError("not_leader", "this node is not the leader", outcome.leaderHint);
  if (outcome.kind === "dropped") throw new ApiError("invalid_request", `transfer refused: ${outcome.reason}`);
  return { status: 202, body: { transferringTo: body.to } satisfies TransferAnswer };
}

/** whoamiHandler names the caller's credential and role (GET /auth/whoami), as of a ReadIndex round: a revoked token learns so. */
async function whoamiHandler(options: ApiOptions, identity: Identity): Promise<{ status: number; body: unknown }> {
  await options.host.confirmCaller(callerOf(identity, "reader"));
  return { status: 200, body: { name: identity.name, role: identity.role } satisfies WhoamiAnswer };
}

/**
 * credentialRoutes: create, list, rotate and revoke credentials (admin). A new token is made by
 * the node that proposes the entry, which carries only its hash; the answer shows the token once.
 * These calls carry no session: a retry of a create whose answer was lost finds the name taken
 * (409 credential_exists), and the operator revokes it and creates it again, since the token was
 * shown to nobody.
 */
function credentialRoutes(options: ApiOptions): readonly ["get" | "post", string, Role, Handler][] {
  const issue = async (command: LockCommand, token: string, log: Logger, what: string) => {
    const result = (await options.host.propose(command)).result;
    if (result.status !== "credential_issued") return resultResponse(result);
    const { name, role, createdIndex, issuedIndex } = result;
    log.info({ event: `credential_${what}`, name, role, issuedIndex }, `credential ${name} (${role}) ${what}`);
    const body = { name, role, createdIndex, issuedIndex, token } satisfies IssuedCredential;
    return { status: what === "created" ? 201 : 200, body };
  };
  return [
    [
      "post",
      "/admin/credentials",
      "admin",
      async (request, log, _response, identity) => {
        const body = parse(credentialRequestSchema, request.body);
        const token = newToken();
        const command: LockCommand = { type: "credential_create", ...credentialOf(identity), ...body, tokenHash: tokenHashOf(token) };
        return issue(command, token, log, "created");
      },
    ],
    [
      "get",
      "/admin/credentials",
      "admin",
      async (_request, _log, _response, identity) => {
        const credentials: CredentialInfo[] = await options.host.credentialList(callerOf(identity, "admin"));
        return { status: 200, body: { credentials } satisfies CredentialList };
      },
    ],
    [
      "post",
      "/admin/credentials/:name/rotate",
      "admin",
      async (request, log, _response, identity) => {
        const name = parse(credentialNameSchema, request.params["name"]);
        const token = newToken();
        return issue({ type: "credential_rotate", ...credentialOf(identity), name, tokenHash: tokenHashOf(token) }, token, log, "rotated");
      },
    ],
    [
      "post",
      "/admin/credentials/:name/revoke",
      "admin",
      async (request, log, _response, identity) => {
        const name = parse(credentialNameSchema, request.params["name"]);
        const result = (await options.host.propose({ type: "credential_revoke", ...credentialOf(identity), name })).result;
        if (result.status !== "credential_revoked") return resultResponse(result);
        log.info({ event: "credential_revoked", name, index: result.index }, `credential ${name} revoked`);
        return { status: 200, body: { revoked: result.name, index: result.index } satisfies RevokedCredential };
      },
    ],
  ];
}

/**
 * restartHandler answers 202 and then, once the answer is out, has the node stop gracefully to be
 * started again (node/graceful-stop.ts). It is not forwarded: it names the node it is sent to. It
 * needs the admin role, confirmed linearizably as a transfer's is (a revoked admin token cannot
 * restart a node on a follower that has not applied the revocation yet).
 */
async function restartHandler(
  options: ApiOptions,
  request: ApiRequest,
  response: ServerResponse,
  identity: Identity,
): Promise<{ status: number; body: unknown }> {
  const restart = options.restart;
  if (restart === undefined) throw new ApiError("not_found", "this node cannot restart itself (it runs without a supervisor hook)");
  await confirmToken(options, request, identity, "admin");
  options.logger.info({ event: "restart_requested" }, "restart requested (POST /admin/restart): stopping gracefully");
  response.once("finish", () => restart());
  return {
    status: 202,
    body: { nodeId: options.host.nodeId, restarting: true, bootId: options.bootId ?? "" } satisfies RestartAnswer,
  };
}

/** resultResponse maps a state machine result to an HTTP answer (tokens as decimal strings). */
function resultResponse(result: LockResult): { status: number; body: unknown } {
  switch (result.status) {
    case "granted":
      return { status: 200, body: { ...result, token: String(result.token) } satisfies GrantAnswer };
    case "renewed":
      return { status: 200, body: { ...result, leases: leaseRefsBody(result.leases) } satisfies RenewAnswer };
    case "released":
      return { status: 200, body: { ...result, leases: leaseRefsBody(result.leases) } satisfies ReleaseAnswer };
    case "committed":
      return { status: 200, body: result satisfies CommitAnswer };
    case "rejected": {
      const holder = result.holder === undefined ? undefined : { ...result.holder, token: String(result.holder.token) };
      return {
        status: errorStatus[result.code],
        body: { error: { code: result.code, message: result.message, ...(holder === undefined ? {} : { holder }) } } satisfies ErrorAnswer,
      };
    }
    case "queued":
    case "expired":
    case "no_op":
    case "credential_issued":
    case "credential_revoked":
      return { status: 200, body: result };
  }
}

/** leaseRefsBody: leases as answers name them (tokens as decimal strings). */
function leaseRefsBody(leases: readonly { readonly resource: string; readonly token: number }[]): { resource: string; token: string }[] {
  return leases.map((lease) => ({ ...lease, token: String(lease.token) }));
}

async function statusBody(options: ApiOptions): Promise<NodeStatus> {
  const { status, peers: links, watch, storage } = await options.host.hostStatus();
  const peers = Object.fromEntries(
    links.map(([id, peer]) => [
      id,
      {
        connected: peer.connected,
        lastContactMs: peer.lastContactMs ?? null,
        framesRejected: peer.framesRejected ?? 0,
        lastRejection: peer.lastRejection ?? null,
      },
    ]),
  );
  return {
    nodeId: status.id,
    pid: process.pid,
    ...(options.bootId === undefined ? {} : { bootId: options.bootId }),
    ...status,
    peers,
    watch,
    storage,
  };
}

/** overloadedError: the lock service's own `overloaded` (too many proposals pending), with the wait to ask for. */
function overloadedError(message: string, retryAfterMs: number): ApiError {
  return new ApiError("overloaded", `${message}; retry in ${retryAfterMs} ms`, { retryAfterMs });
}

function toApiError(error: unknown, retryAfterMs: number): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof WatchError) return new ApiError(error.code, error.message, error.details);
  if (error instanceof CredentialRefusedError) return new ApiError(error.code, error.message, { role: error.role });
  if (error instanceof DriverError && error.code === "overloaded") return overloadedError(error.message, retryAfterMs);
  if (error instanceof DriverError)
    return new ApiError(error.code, error.message, error.leaderHint === null ? undefined : { leaderId: error.leaderHint });
  const status = (error as { status?: number; type?: string }).status;
  if (status === 413) return new ApiError("payload_too_large", "the request body is too large");
  if (status === 415) return new ApiError("unsupported_media_type", `unsupported body encoding: ${(error as Error).message}`);
  if (status === 400) return new ApiError("invalid_request", `malformed JSON body: ${(error as Error).message}`);
  if (status !== undefined && status > 400 && status < 500)
    return new ApiError("invalid_request", `bad request: ${(error as Error).message}`);
  return new ApiError("internal", `internal error: ${(error as Error).message ?? String(error)}`);
}

/** respondWithError answers with the error's code and status; an unexpected error is logged as well. */
function respondWithError(response: ServerResponse, error: unknown, log: Logger, retryAfterMs: number): void {
  const apiError = toApiError(error, retryAfterMs);
  if (apiError.code === "internal") log.error({ err: error }, "internal error");
  sendError(response, apiError);
}

/**
 * sendJson answers with a JSON body, as express's `response.json` would (same content type), but
 * without its per-answer work that these answers never need (ETag, freshness, charset lookups):
 * it is the hot path of every lock request.
 */
function sendJson(response: ServerResponse, status: number, body: unknown): void {
  sendText(response, status, JSON.stringify(body));
}

/** sendText answers with a body that is JSON already (a forwarded answer). */
function sendText(response: ServerResponse, status: number, json: string): void {
  response.statusCode = status;
  response.setHeader("content-type", "application/json; charset=utf-8");
  response.setHeader("content-length", Buffer.byteLength(json));
  response.end(json);
}

function sendError(response: ServerResponse, error: ApiError): void {
  const retryAfterMs = (error.details as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
  if (error.code === "overloaded" && typeof retryAfterMs === "number") response.setHeader("retry-after", retryAfterSeconds(retryAfterMs));
  sendJson(response, errorStatus[error.code], {
    error: { code: error.code, message: error.message, ...(error.details === undefined ? {} : { details: error.details }) },
  } satisfies ErrorAnswer);
}
