// The fuzzer (npm run fuzz, issue 14) is shown to work before it is trusted to find nothing:
// - its answer checks flag a 500, an undocumented 503, a wrong error shape and a missing answer,
//   and pass the documented answers;
// - requests are a pure function of (seed, number): the same seed gives the same requests;
// - end to end against a stand-in server with a planted bug (a 500 on one kind of input), the
//   fuzz loop reports it, with a reproduction;
// - a short run against the real system (three node processes, a booking API) finds nothing and
//   every check after it passes. `npm run fuzz` runs the long version (docs/RELIABILITY.md).

import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { checkAnswer } from "./fuzz/check.ts";
import { type FuzzRequest, generate } from "./fuzz/generate.ts";
import { reproduction, statusTable } from "./fuzz/report.ts";
import { runFuzz } from "./fuzz/run.ts";
import type { FuzzAnswer } from "./fuzz/send.ts";
import { endChecks, startFuzzSystem } from "./fuzz/system.ts";
import type { Fixtures } from "./fuzz/targets.ts";

function fixturesFor(nodeUrl: string, schedulerUrl: string): Fixtures {
  return {
    nodes: [{ id: "n1", url: nodeUrl }],
    schedulerUrl,
    nodeToken: "node-token-0123456789",
    scientist: { id: "sci_000000000001", key: `sk_sci_000000000001_${"a".repeat(43)}` },
    otherScientistId: "sci_000000000002",
    ownBookingIds: ["bk_000000000000000000000001"],
    otherBookingIds: ["bk_000000000000000000000002"],
    heldLease: { resource: "fuzz-held", token: "7" },
    telescopes: [{ id: "hubble-acad", slotMinutes: 5, horizonDays: 30 }],
    startedAtMs: Date.UTC(2030, 0, 1),
  };
}

const request = (overrides: Partial<FuzzRequest>): FuzzRequest => ({
  index: 1,
  endpoint: "scheduler GET /bookings",
  mutation: "valid",
  credentials: "valid",
  baseUrl: "http://127.0.0.1:1",
  service: "scheduler",
  method: "GET",
  path: "/bookings",
  headers: [],
  body: undefined,
  ...overrides,
});
const answer = (status: number | undefined, body: unknown, headers: Record<string, string> = {}): FuzzAnswer => ({
  status,
  headers,
  body: typeof body === "string" ? body : JSON.stringify(body),
  failure: status === undefined ? "ECONNRESET: socket hang up" : undefined,
  elapsedMs: 1,
  via: "http",
});

describe("the fuzzer's answer checks", () => {
  it("flag a 500, an undocumented 503, a wrong error shape and a missing answer", () => {
    const kinds = (found: ReturnType<typeof checkAnswer>) => found.map((finding) => finding.kind);
    expect(kinds(checkAnswer(request({}), answer(500, { error: { code: "internal", message: "boom" } })))).toEqual(["server_error"]);
    expect(kinds(checkAnswer(request({}), answer(502, "")))).toEqual(["server_error"]);
    expect(kinds(checkAnswer(request({}), answer(503, { error: { code: "internal", message: "x" } }, { "retry-after": "1" })))).toEqual([
      "undocumented_retry",
    ]);
    // A documented code, but the booking API promises a Retry-After with it.
    expect(kinds(checkAnswer(request({}), answer(503, { error: { code: "cluster_unavailable", message: "x" } })))).toEqual([
      "undocumented_retry",
    ]);
    expect(kinds(checkAnswer(request({}), answer(400, "<html>Bad</html>")))).toEqual(["error_shape"]);
    expect(kinds(checkAnswer(request({}), answer(404, { error: { code: "invalid_request", message: "x" } })))).toEqual(["error_shape"]);
    expect(kinds(checkAnswer(request({}), answer(418, { error: { code: "teapot", message: "x" } })))).toEqual(["error_shape"]);
    expect(kinds(checkAnswer(request({}), answer(undefined, "")))).toEqual(["no_answer"]);
  });

  it("pass the documented answers", () => {
    expect(checkAnswer(request({}), answer(503, { error: { code: "cluster_unavailable", message: "x" } }, { "retry-after": "1" }))).toEqual(
      [],
    );
    const node = request({ service: "node", endpoint: "node POST /lock", method: "POST", path: "/lock" });
    expect(checkAnswer(node, answer(503, { error: { code: "no_leader", message: "x" } }))).toEqual([]);
    expect(checkAnswer(node, answer(504, { error: { code: "timeout", message: "x" } }))).toEqual([]);
    expect(checkAnswer(node, answer(409, { error: { code: "conflict", message: "x" } }))).toEqual([]);
    expect(checkAnswer(node, answer(200, { token: "5" }))).toEqual([]);
    // A HEAD answer has no body to name its code (found by a 100,000-request run): the status says it.
    const head = request({ service: "node", endpoint: "node GET /kv/:key", method: "HEAD", path: "/kv/a" });
    expect(checkAnswer(head, answer(503, ""))).toEqual([]);
    expect(checkAnswer(head, answer(500, ""))[0]?.kind).toBe("server_error");
    const schedulerHead = request({ method: "HEAD", path: "/bookings" });
    expect(checkAnswer(schedulerHead, answer(503, "", { "retry-after": "1" }))).toEqual([]);
    expect(checkAnswer(schedulerHead, answer(503, ""))[0]?.kind).toBe("undocumented_retry");
    // Raw bytes may be dropped or refused by Node's parser, without our error shape.
    const raw = request({ endpoint: "node raw: garbage", raw: { bytes: "x", halfClose: false } });
    expect(checkAnswer(raw, { ...answer(400, ""), via: "socket" })).toEqual([]);
    expect(checkAnswer(raw, { ...answer(undefined, ""), via: "socket" })).toEqual([]);
  });

  it("generate the same request for the same seed and number, another for another seed", () => {
    const fixtures = fixturesFor("http://127.0.0.1:1", "http://127.0.0.1:2");
    for (const index of [0, 1, 17, 999, 123_456]) {
      expect(generate(9, index, fixtures)).toEqual(generate(9, index, fixtures));
    }
    const differ = [0, 1, 2, 3, 4, 5, 6, 7].filter(
      (index) => JSON.stringify(generate(9, index, fixtures)) !== JSON.stringify(generate(10, index, fixtures)),
    );
    expect(differ.length).toBeGreaterThan(5);
  });
});

describe("the fuzz loop", () => {
  const servers: Server[] = [];
  afterAll(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  async function serve(handler: (request: IncomingMessage, response: ServerResponse, body: string) => void): Promise<string> {
    const server = createServer((incoming, response) => {
      let body = "";
      incoming.on("data", (chunk) => (body += chunk));
      incoming.on("end", () => handler(incoming, response, body));
    });
    servers.push(server);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it("reports a planted 500, with a reproduction, and counts every status per endpoint", async () => {
    const ok = (response: ServerResponse) => response.writeHead(200, { "content-type": "application/json" }).end("{}");
    // The planted bug: a POST whose body names no telescope makes this stand-in throw (a 500), as a
    // booking API that read `body.telescopeId.length` unchecked would.
    const scheduler = await serve((incoming, response, body) => {
      if (incoming.method === "POST" && incoming.url === "/bookings" && body.startsWith("{") && !body.includes("telescopeId")) {
        response.writeHead(500, { "content-type": "application/json" }).end('{"error":{"code":"internal","message":"planted"}}');
        return;
      }
      ok(response);
    });
    const node = await serve((_incoming, response) => ok(response));
    const result = await runFuzz(fixturesFor(node, scheduler), {
      seed: 3,
      requests: 600,
      seconds: 60,
      concurrency: 8,
      timeoutMs: 5000,
      exited: () => [],
    });
    expect(result.sent).toBe(600);
    const planted = result.findings.filter((finding) => finding.kind === "server_error");
    expect(planted.length).toBeGreaterThan(0);
    for (const finding of planted) {
      expect(finding.endpoint).toBe("scheduler POST /bookings");
      expect(reproduction(3, finding.index)).toBe(`npm run fuzz -- --seed 3 --replay ${finding.index}`);
      // The reproduction is exact: the same request again.
      expect(generate(3, finding.index, fixturesFor(node, scheduler))).toEqual(finding.request);
    }
    expect([...result.findingGroups.keys()].some((group) => group.startsWith("scheduler POST /bookings | server_error | 500"))).toBe(true);
    const table = statusTable(result.statuses);
    expect(table).toMatch(/scheduler POST \/bookings\s/);
    expect(table.split("\n").at(-1)).toMatch(/^total\s.*\s600$/);
  });
});

describe("a short fuzz run against the real system", () => {
  it("finds nothing: no 500, every 503 documented, every process up, one leader, writes commit, seeded data and audit chain intact", async () => {
    const fuzz = await startFuzzSystem();
    try {
      const seed = Number(process.env["FUZZ_SEED"] ?? 14);
      const requests = Number(process.env["FUZZ_REQUESTS"] ?? 2000);
      const result = await runFuzz(fuzz.fixtures, {
        seed,
        requests,
        seconds: 240,
        concurrency: 16,
        timeoutMs: 30_000,
        exited: () => fuzz.system.exited(),
      });
      const checks = await endChecks(fuzz);
      const findings = result.findings.map(
        (finding) => `${finding.endpoint}: ${finding.kind}: ${finding.detail} (${reproduction(seed, finding.index)})`,
      );
      expect(findings, statusTable(result.statuses)).toEqual([]);
      expect(checks.filter((check) => !check.ok)).toEqual([]);
      expect(result.exited).toEqual([]);
      expect(result.sent).toBe(requests);
    } finally {
      await fuzz.stop();
    }
  }, 360_000);
});
