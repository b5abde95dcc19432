// The lab's single coordinator ("o Porteiro", delivery 3), written here as a baseline for
// `npm run bench:compare` only: one in-memory Express process with `POST /lock` and `POST /unlock`.
// A free resource is locked at once (200 OK), a held one is refused (409 Conflict); nothing waits,
// nothing expires, nothing is written to disk and nothing is replicated. It logs the lab's four
// lines. What it holds dies with the process: that is what the benchmark's failover row shows.
//
// It adds one thing the lab did not ask for, so the comparison can show what is lost with the
// process: every grant carries a fencing token from an in-memory counter, which starts again at 1
// after a restart.
//
//   SINGLE_COORDINATOR_LISTEN=127.0.0.1:7100 npx tsx bench/single-coordinator.ts

import { pathToFileURL } from "node:url";
import express, { type Express } from "express";

/** resourceLengthMax bounds a resource name; ownerLengthMax bounds an owner name. */
const resourceLengthMax = 512;
const ownerLengthMax = 256;
/** locksMax bounds the table: a coordinator that is never unlocked must not grow without end. */
const locksMax = 1_000_000;

/** CoordinatorState is the whole state of the coordinator: who holds which resource, and the last token. */
export interface CoordinatorState {
  readonly locks: Map<string, { readonly owner: string; readonly token: number }>;
  lastToken: number;
}

/** createSingleCoordinator returns the coordinator's Express app over a fresh in-memory state. */
export function createSingleCoordinator(options: { log?: (line: string) => void } = {}): { app: Express; state: CoordinatorState } {
  const log = options.log ?? ((line: string) => console.log(line));
  const state: CoordinatorState = { locks: new Map(), lastToken: 0 };
  const app = express();
  app.disable("x-powered-by");
  app.use(express.json({ limit: "4kb" }));

  app.post("/lock", (request, response) => {
    const body = parseBody(request.body);
    if (body === undefined) {
      response.status(400).json({ error: "invalid_request" });
      return;
    }
    log(`lock request received for ${body.resource}`);
    const holder = state.locks.get(body.resource);
    if (holder !== undefined) {
      log(`${body.resource} already in use — denying`);
      response
        .status(409)
        .json({ error: "conflict", resource: body.resource, holder: { owner: holder.owner, token: String(holder.token) } });
      return;
    }
    if (state.locks.size >= locksMax) {
      response.status(503).json({ error: "too_many_locks" });
      return;
    }
    state.lastToken += 1;
    state.locks.set(body.resource, { owner: body.owner, token: state.lastToken });
    log(`lock granted for ${body.resource}`);
    response.status(200).json({ resource: body.resource, token: String(state.lastToken) });
  });

  app.post("/unlock", (request, response) => {
    const body = parseBody(request.body);
    if (body === undefined) {
      response.status(400).json({ error: "invalid_request" });
      return;
    }
    const holder = state.locks.get(body.resource);
    if (holder === undefined || holder.owner !== body.owner) {
      response.status(409).json({ error: "not_held", resource: body.resource });
      return;
    }
    state.locks.delete(body.resource);
    log(`lock for ${body.resource} released`);
    response.status(200).json({ resource: body.resource, released: true });
  });

  app.get("/status", (_request, response) => {
    response.json({ pid: process.pid, locks: state.locks.size, lastToken: state.lastToken });
  });

  return { app, state };
}

/** parseBody accepts `{ resource, owner }` with two non-empty strings of bounded length. */
function parseBody(body: unknown): { resource: string; owner: string } | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const { resource, owner } = body as Record<string, unknown>;
  if (typeof resource !== "string" || resource.length === 0 || resource.length > resourceLengthMax) return undefined;
  if (typeof owner !== "string" || owner.length === 0 || owner.length > ownerLengthMax) return undefined;
  return { resource, owner };
}

/** main listens on SINGLE_COORDINATOR_LISTEN (loopback only) and stops on SIGTERM or SIGINT. */
function main(): void {
  const listen = process.env["SINGLE_COORDINATOR_LISTEN"] ?? "127.0.0.1:7100";
  const [host, portText] = listen.split(":");
  const port = Number(portText);
  if (host !== "127.0.0.1" || !Number.isSafeInteger(port) || port < 1 || port > 65_535) {
    console.error("single-coordinator: SINGLE_COORDINATOR_LISTEN must be 127.0.0.1:<port>");
    process.exit(2);
  }
  const { app } = createSingleCoordinator();
  const server = app.listen(port, host, () => console.log(`single coordinator listening on http://${host}:${port} (pid ${process.pid})`));
  const stop = () => server.close(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
