// What the fuzzer aims at: every endpoint of the lock nodes and of the booking API, each as a
// template that builds a valid request from the fixtures (the data the run set up), which the
// generator (generate.ts) then sends as it is or spoils in one way. Raw requests (malformed HTTP,
// odd upgrades) are listed at the end; they go out over a plain socket.

import type { Rng } from "./values.ts";

/** Fixtures: what the run set up before fuzzing, and which the templates refer to. */
export interface Fixtures {
  readonly nodes: readonly { readonly id: string; readonly url: string }[];
  readonly schedulerUrl: string;
  /** nodeToken: the lock cluster's API token (the nodes' "valid credentials"). */
  readonly nodeToken: string;
  /** scientist: the fuzzer's own scientist; its key is the booking API's "valid credentials". */
  readonly scientist: { readonly id: string; readonly key: string };
  /** otherScientistId: a seeded scientist whose key the fuzzer never has, and whose data must not change. */
  readonly otherScientistId: string;
  /** ownBookingIds and otherBookingIds: bookings of the fuzzer's scientist, and seeded ones of the other. */
  readonly ownBookingIds: readonly string[];
  readonly otherBookingIds: readonly string[];
  /** heldLease: a long lease the fuzzer holds, so that fenced writes (POST /txn) can commit. */
  readonly heldLease: { readonly resource: string; readonly token: string };
  readonly telescopes: readonly { readonly id: string; readonly slotMinutes: number; readonly horizonDays: number }[];
  /** startedAtMs: when the run started (wall clock); slots and days are drawn from it. */
  readonly startedAtMs: number;
}

export type Service = "node" | "scheduler";

/** Credentials: which valid credentials a template's request carries before any mutation. */
export type Credentials = "node" | "scientist" | "none";

/** Built is a valid request as a template makes it: route parameters, query, JSON body, extra headers. */
export interface Built {
  readonly params?: Readonly<Record<string, string>>;
  readonly query?: Readonly<Record<string, unknown>>;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface Template {
  readonly service: Service;
  readonly method: string;
  /** route: the path with `:name` parameters, also the endpoint's name in the table. */
  readonly route: string;
  readonly credentials: Credentials;
  /** weight: how often it is drawn, relative to the others (1 by default). */
  readonly weight?: number;
  build(rng: Rng, fixtures: Fixtures): Built;
  /**
   * tame rewrites a mutated body that would do real harm with valid credentials (change the
   * cluster's membership, move its leadership): the fuzzer sends hostile input, not operator
   * commands. It returns the body unchanged when it is harmless.
   */
  tame?(body: unknown): unknown;
}

const fuzzResource = (rng: Rng) => `fuzz-${rng.hex(8)}`;
const token = (rng: Rng) => String(1 + rng.int(5000));

/** slotStart: an aligned slot start within the telescope's horizon, from tomorrow on (ISO, UTC). */
function slotStart(
  rng: Rng,
  fixtures: Fixtures,
  telescope: Fixtures["telescopes"][number],
  slots = 1,
): { startUtc: string; endUtc: string } {
  const slotMs = telescope.slotMinutes * 60_000;
  const dayMs = 86_400_000;
  const firstDay = Math.floor(fixtures.startedAtMs / dayMs) * dayMs + dayMs;
  const days = Math.max(1, telescope.horizonDays - 2);
  const start = firstDay + rng.int(days) * dayMs + rng.int(dayMs / slotMs) * slotMs;
  const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;
  return { startUtc: iso(start), endUtc: iso(start + slots * slotMs) };
}

function day(rng: Rng, fixtures: Fixtures): string {
  return new Date(fixtures.startedAtMs + (rng.int(40) - 5) * 86_400_000).toISOString().slice(0, 10);
}

/** The node ids the admin API must refuse (not the SCTEC_NODE_ID rule): the fuzzer never sends it a valid one. */
const invalidNodeIds = ["a".repeat(200), "X=vts}1;>(", "N1", "-n1", "n".repeat(33), "", "n1 ", "n_1", "ñ1"];
const nodeIdRule = /^[a-z0-9][a-z0-9-]{0,31}$/;

function tameNodeIdField(field: string) {
  return (body: unknown): unknown => {
    if (typeof body !== "object" || body === null || Array.isArray(body)) return body;
    const value = (body as Record<string, unknown>)[field];
    return typeof value === "string" && nodeIdRule.test(value) ? { ...body, [field]: `${value}!` } : body;
  };
}

const open = (service: Service, method: string, route: string, weight = 1): Template => ({
  service,
  method,
  route,
  credentials: "none",
  weight,
  build: () => ({}),
});

export const nodeTemplates: readonly Template[] = [
  open("node", "GET", "/healthz"),
  open("node", "GET", "/status"),
  open("node", "GET", "/status/view", 0.5),
  open("node", "GET", "/metrics", 0.3),
  open("node", "GET", "/", 0.3),
  open("node", "GET", "/status/live", 0.3),
  {
    service: "node",
    method: "GET",
    route: "/status-page/:file",
    credentials: "none",
    weight: 0.3,
    build: (rng) => ({ params: { file: rng.pick(["status.js", "style.css", "index.html", "nope.js", "../main.ts"]) } }),
  },
  {
    service: "node",
    method: "POST",
    route: "/lock",
    credentials: "node",
    weight: 3,
    build: (rng) => ({
      body: {
        ...(rng.chance(0.7) ? { resource: fuzzResource(rng) } : { resources: [fuzzResource(rng), fuzzResource(rng)] }),
        owner: "fuzzer",
        ttlMs: 1000,
        waitMs: rng.pick([0, 0, 0, 50]),
        ...(rng.chance(0.5) ? { clientId: `fuzz-${rng.hex(8)}`, sequence: 1 } : {}),
        ...(rng.chance(0.3) ? { reads: [{ prefix: "fuzz/", limit: 5 }] } : {}),
      },
    }),
  },
  {
    service: "node",
    method: "POST",
    route: "/unlock",
    credentials: "node",
    weight: 2,
    build: (rng) => ({ body: { resource: fuzzResource(rng), token: token(rng) } }),
  },
  {
    service: "node",
    method: "POST",
    route: "/renew",
    credentials: "node",
    weight: 2,
    build: (rng, fixtures) => ({
      body: rng.chance(0.5) ? { ...fixtures.heldLease } : { resource: fuzzResource(rng), token: token(rng) },
    }),
  },
  {
    service: "node",
    method: "POST",
    route: "/txn",
    credentials: "node",
    weight: 3,
    build: (rng, fixtures) => ({
      body: {
        guards: [rng.chance(0.6) ? { ...fixtures.heldLease } : { resource: fuzzResource(rng), token: token(rng) }],
        operations: [
          rng.pick([
            { op: "put", key: `fuzz/${rng.hex(4)}`, value: `v${rng.hex(4)}` },
            { op: "delete", key: `fuzz/${rng.hex(4)}` },
            { op: "append", chain: "fuzz", value: `record ${rng.hex(4)}` },
          ]),
        ],
        ...(rng.chance(0.2) ? { clientId: `fuzz-${rng.hex(8)}`, sequence: 1 } : {}),
      },
    }),
  },
  {
    service: "node",
    method: "GET",
    route: "/kv/:key",
    credentials: "node",
    build: (rng) => ({ params: { key: rng.pick([`fuzz/${rng.hex(4)}`, "seed/a", "~chain/fuzz/0000000000000001"]) } }),
  },
  {
    service: "node",
    method: "GET",
    route: "/kv",
    credentials: "node",
    build: (rng) => ({ query: { prefix: rng.pick(["fuzz/", "seed/", "~chain/audit/"]), limit: "10", after: "" } }),
  },
  {
    service: "node",
    method: "GET",
    route: "/watch",
    credentials: "node",
    // timeoutMs 0: a long poll would only hold a worker; a hostile timeoutMs is drawn by the mutations.
    build: (rng) => ({ query: { prefix: "fuzz/", timeoutMs: "0", limit: "10", ...(rng.chance(0.5) ? { after: "0" } : {}) } }),
  },
  { service: "node", method: "GET", route: "/leases", credentials: "node", weight: 0.5, build: () => ({}) },
  {
    service: "node",
    method: "POST",
    route: "/admin/members",
    credentials: "node",
    // Twice as often as most: one bad membership request used to stop every write (issue 14).
    weight: 2,
    build: (rng) => ({ body: { action: rng.pick(["add_learner", "promote_learner", "remove_node"]), nodeId: rng.pick(invalidNodeIds) } }),
    tame: tameNodeIdField("nodeId"),
  },
  {
    service: "node",
    method: "POST",
    route: "/admin/transfer",
    credentials: "node",
    weight: 0.5,
    build: (rng) => ({ body: { to: rng.pick(invalidNodeIds) } }),
    tame: tameNodeIdField("to"),
  },
];

export const schedulerTemplates: readonly Template[] = [
  { service: "scheduler", method: "GET", route: "/api", credentials: "scientist", weight: 0.5, build: () => ({}) },
  open("scheduler", "GET", "/time", 0.5),
  open("scheduler", "GET", "/healthz", 0.5),
  open("scheduler", "GET", "/metrics", 0.2),
  open("scheduler", "GET", "/openapi.json", 0.2),
  open("scheduler", "GET", "/telescopes", 0.5),
  open("scheduler", "GET", "/events", 0.2),
  {
    service: "scheduler",
    method: "POST",
    route: "/scientists",
    credentials: "none",
    build: (rng) => ({ body: { name: "Fuzz Tester", email: `fuzz-${rng.hex(10)}@example.org`, institution: "Fuzz Lab" } }),
  },
  {
    service: "scheduler",
    method: "GET",
    route: "/scientists/:id",
    credentials: "scientist",
    build: (rng, fixtures) => ({ params: { id: rng.pick([fixtures.scientist.id, fixtures.otherScientistId, "sci_000000000000"]) } }),
  },
  {
    service: "scheduler",
    method: "GET",
    route: "/telescopes/:id",
    credentials: "none",
    weight: 0.5,
    build: (rng, fixtures) => ({ params: { id: rng.pick(fixtures.telescopes).id } }),
  },
  {
    service: "scheduler",
    method: "GET",
    route: "/telescopes/:id/days/:day",
    credentials: "scientist",
    build: (rng, fixtures) => ({ params: { id: rng.pick(fixtures.telescopes).id, day: day(rng, fixtures) } }),
  },
  {
    service: "scheduler",
    method: "POST",
    route: "/bookings",
    credentials: "scientist",
    weight: 3,
    build: (rng, fixtures) => {
      const telescope = rng.pick(fixtures.telescopes);
      return {
        body: {
          telescopeId: telescope.id,
          ...slotStart(rng, fixtures, telescope, 1 + rng.int(3)),
          requestedAtUtc: new Date(fixtures.startedAtMs).toISOString(),
        },
        ...(rng.chance(0.3) ? { headers: { "idempotency-key": `fuzz-${rng.hex(12)}` } } : {}),
      };
    },
  },
  {
    service: "scheduler",
    method: "GET",
    route: "/bookings",
    credentials: "scientist",
    weight: 2,
    build: (rng, fixtures) => ({
      query: {
        ...rng.pick([{ scientistId: fixtures.scientist.id }, { telescopeId: rng.pick(fixtures.telescopes).id }, {}]),
        ...(rng.chance(0.3) ? { status: rng.pick(["confirmed", "cancelled"]) } : {}),
        limit: String(1 + rng.int(20)),
      },
    }),
  },
  {
    service: "scheduler",
    method: "GET",
    route: "/bookings/:id",
    credentials: "scientist",
    build: (rng, fixtures) => ({ params: { id: rng.pick([...fixtures.ownBookingIds, ...fixtures.otherBookingIds, `bk_${rng.hex(24)}`]) } }),
  },
  {
    service: "scheduler",
    method: "DELETE",
    route: "/bookings/:id",
    credentials: "scientist",
    build: (rng, fixtures) => ({ params: { id: rng.pick([...fixtures.ownBookingIds, ...fixtures.otherBookingIds, `bk_${rng.hex(24)}`]) } }),
  },
  {
    service: "scheduler",
    method: "GET",
    route: "/audit",
    credentials: "scientist",
    build: (rng) => ({ query: { limit: String(1 + rng.int(10)) } }),
  },
  {
    service: "scheduler",
    method: "GET",
    route: "/:file",
    credentials: "none",
    weight: 0.5,
    build: (rng) => ({
      params: { file: rng.pick(["", "index.html", "app.js", "style.css", "README.md", "clock.test.js", "events.d.ts", "favicon.ico"]) },
    }),
  },
];

/** RawTemplate is a request written byte for byte, for what no HTTP client would send. */
export interface RawTemplate {
  readonly name: string;
  readonly service: Service;
  /** halfClose: end the socket's writing side after the bytes (a truncated request ends there). */
  readonly halfClose?: boolean;
  build(rng: Rng, fixtures: Fixtures, credentials: string): string | Uint8Array;
}

const line = (text: string) => `${text}\r\n`;
const host = line("Host: 127.0.0.1");
const close = line("Connection: close");
const wsHeaders = line("Upgrade: websocket") + line("Connection: Upgrade") + line("Sec-WebSocket-Version: 13");

function jsonPost(path: string, credentials: string, body: string, extra = ""): string {
  return `POST ${path} HTTP/1.1\r\n${host}${line(`Authorization: ${credentials}`)}${line("Content-Type: application/json")}${extra}${close}${line(`Content-Length: ${Buffer.byteLength(body)}`)}\r\n${body}`;
}

/** rawTemplates: each is sent to a node or to the booking API (the service says which). */
export const rawTemplates: readonly RawTemplate[] = [
  ...(["node", "scheduler"] as const).flatMap((service): RawTemplate[] => {
    const write = service === "node" ? "/lock" : "/bookings";
    const body = service === "node" ? '{"resource":"fuzz-raw","owner":"raw","ttlMs":1000}' : '{"telescopeId":"hubble-acad"}';
    return [
      { name: "garbage", service, build: (rng) => Buffer.from(Array.from({ length: 1 + rng.int(300) }, () => rng.int(256))) },
      { name: "bad version", service, build: () => `GET /healthz HTTP/9.9\r\n${host}${close}\r\n` },
      { name: "junk method", service, build: () => `FOO /healthz HTTP/1.1\r\n${host}${close}\r\n` },
      { name: "connect", service, build: () => `CONNECT 127.0.0.1:22 HTTP/1.1\r\n${host}${close}\r\n` },
      { name: "absolute uri", service, build: () => `GET http://evil.example/healthz HTTP/1.1\r\n${host}${close}\r\n` },
      { name: "long uri", service, build: (rng) => `GET /${"a".repeat(rng.pick([8000, 20_000, 70_000]))} HTTP/1.1\r\n${host}${close}\r\n` },
      { name: "http/1.0 without host", service, build: () => "GET /healthz HTTP/1.0\r\n\r\n" },
      { name: "header without colon", service, build: () => `GET /healthz HTTP/1.1\r\n${host}Broken header\r\n${close}\r\n` },
      { name: "space in header name", service, build: () => `GET /healthz HTTP/1.1\r\n${host}Bad Name: x\r\n${close}\r\n` },
      { name: "nul in header", service, build: () => `GET /healthz HTTP/1.1\r\n${host}X-Test: a\u0000b\r\n${close}\r\n` },
      {
        name: "huge header",
        service,
        build: (rng) => `GET /healthz HTTP/1.1\r\n${host}X-Big: ${"b".repeat(rng.pick([15_000, 17_000, 40_000]))}\r\n${close}\r\n`,
      },
      {
        name: "many headers",
        service,
        build: (rng) =>
          `GET /healthz HTTP/1.1\r\n${host}${Array.from({ length: rng.pick([200, 2000]) }, (_, n) => line(`X-H${n}: v`)).join("")}${close}\r\n`,
      },
      {
        name: "non-ascii path",
        service,
        build: () => Buffer.concat([Buffer.from("GET /\xff\xfe%ZZ HTTP/1.1\r\n", "latin1"), Buffer.from(`${host}${close}\r\n`)]),
      },
      {
        name: "body shorter than content-length",
        service,
        halfClose: true,
        build: (_rng, _fx, auth) => jsonPost(write, auth, body).replace(/Content-Length: \d+/, "Content-Length: 500"),
      },
      {
        name: "invalid content-length",
        service,
        build: (rng, _fx, auth) =>
          jsonPost(write, auth, body).replace(
            /Content-Length: \d+/,
            `Content-Length: ${rng.pick(["-1", "abc", "1e3", "99999999999999999999"])}`,
          ),
      },
      { name: "two content-lengths", service, build: (_rng, _fx, auth) => jsonPost(write, auth, body, line("Content-Length: 3")) },
      {
        name: "content-length and chunked",
        service,
        build: (_rng, _fx, auth) => jsonPost(write, auth, body, line("Transfer-Encoding: chunked")),
      },
      {
        name: "bad chunk",
        service,
        build: (_rng, _fx, auth) =>
          `POST ${write} HTTP/1.1\r\n${host}${line(`Authorization: ${auth}`)}${line("Content-Type: application/json")}${line("Transfer-Encoding: chunked")}${close}\r\nzz\r\n{}\r\n0\r\n\r\n`,
      },
      {
        name: "chunked body",
        service,
        build: (_rng, _fx, auth) =>
          `POST ${write} HTTP/1.1\r\n${host}${line(`Authorization: ${auth}`)}${line("Content-Type: application/json")}${line("Transfer-Encoding: chunked")}${close}\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
      },
      { name: "expect 100-continue", service, build: (_rng, _fx, auth) => jsonPost(write, auth, body, line("Expect: 100-continue")) },
      { name: "gzip that is not", service, build: (_rng, _fx, auth) => jsonPost(write, auth, body, line("Content-Encoding: gzip")) },
      { name: "tab after token", service, build: (_rng, _fx, auth) => jsonPost(write, `${auth}\t`, body) },
      { name: "pipelined", service, build: () => `GET /healthz HTTP/1.1\r\n${host}\r\nGET /healthz HTTP/1.1\r\n${host}${close}\r\n` },
      { name: "truncated headers", service, halfClose: true, build: () => `GET /healthz HTTP/1.1\r\n${host}X-Partial: ` },
      {
        name: "websocket upgrade, unknown path",
        service,
        build: () => `GET /nope HTTP/1.1\r\n${host}${wsHeaders}${line("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")}\r\n`,
      },
      {
        name: "websocket upgrade, bad key",
        service,
        build: () =>
          `GET ${service === "node" ? "/status/live" : "/events"} HTTP/1.1\r\n${host}${wsHeaders}${line("Sec-WebSocket-Key: short")}\r\n`,
      },
    ];
  }),
  {
    name: "peer upgrade without the secret",
    service: "node",
    build: () => `GET /raft HTTP/1.1\r\n${host}${wsHeaders}${line("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")}\r\n`,
  },
  {
    name: "events upgrade, bad position",
    service: "scheduler",
    build: (rng) =>
      `GET /events?after=${rng.pick(["-1", "x", "1e400", "%00"])} HTTP/1.1\r\n${host}${wsHeaders}${line("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")}\r\n`,
  },
];
