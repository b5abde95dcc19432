// Every error code of the wire contract (protocol/errors.ts), answered by a node with its own HTTP
// status, becomes the LockError that lockErrorCodeOf names, keeps the node's code and status, and
// is retried exactly when its status says "not now" (429, 5xx). A code the contract does not know
// stays `unknown`, with the node's code kept, never `unavailable` (issue 15: a node's 409
// learner_not_caught_up used to reach the caller as `unavailable`, after eight pointless retries).
// A success answer that does not fit the contract is `invalid_answer`, and is not retried (it may
// have taken effect). The node is a scripted transport: every answer is exactly what it is told.

import { describe, expect, it } from "vitest";
import { errorCodes, errorStatus } from "../protocol/errors.ts";
import { lockErrorCodeOf } from "./errors.ts";
import { LockClient, LockError } from "./lock-client.ts";
import type { LockTransport, TransportAnswer, TransportRequest } from "./transport.ts";

/** scriptedNode answers every request alike, and counts them. */
function scriptedNode(status: number, body: unknown): LockTransport & { readonly sent: TransportRequest[] } {
  const sent: TransportRequest[] = [];
  return {
    sent,
    async send(request: TransportRequest): Promise<TransportAnswer> {
      sent.push(request);
      return { status, body: JSON.stringify(body), leaderUrl: undefined };
    },
  };
}

const retriesMax = 3;

function clientOf(transport: LockTransport): LockClient {
  return new LockClient({
    nodes: ["http://127.0.0.1:1", "http://127.0.0.1:2"],
    apiToken: "x".repeat(20),
    retriesMax,
    random: () => 0,
    sleep: async () => undefined,
    transport,
  });
}

async function failureOf(call: Promise<unknown>): Promise<LockError> {
  const outcome = await call.then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(outcome instanceof LockError)) throw new Error(`expected a LockError, got ${String(outcome)}`);
  return outcome;
}

describe("LockClient's error mapping", () => {
  it.each(errorCodes.map((code) => [code, errorStatus[code]] as const))(
    "turns a node's %s (%i) into its LockError, keeps the node's code, and retries only what a retry may fix",
    async (code, status) => {
      const node = scriptedNode(status, { error: { code, message: `node says ${code}` } });
      const error = await failureOf(clientOf(node).range("booking/")); // (get answers not_found as undefined)
      expect(error).toMatchObject({ code: lockErrorCodeOf[code], nodeCode: code, status });
      expect(error.message).toContain(`node says ${code}`);
      const retried = status === 429 || status >= 500;
      expect(node.sent).toHaveLength(retried ? retriesMax + 1 : 1);
    },
  );

  it("answers a promotion that came too early with learner_not_caught_up, at once (it was `unavailable`, after every retry)", async () => {
    const node = scriptedNode(409, { error: { code: "learner_not_caught_up", message: "n4 is still catching up" } });
    const error = await failureOf(clientOf(node).admin("/admin/members", { action: "promote_learner", nodeId: "n4" }));
    expect(error).toMatchObject({ code: "learner_not_caught_up", nodeCode: "learner_not_caught_up", status: 409 });
    expect(node.sent).toHaveLength(1);
  });

  it("keeps a code it does not know as `unknown`, naming it, and retries it only when its status says so", async () => {
    const refused = scriptedNode(409, { error: { code: "quorum_sulking", message: "try later" } });
    const error = await failureOf(clientOf(refused).get("booking/1"));
    expect(error).toMatchObject({ code: "unknown", nodeCode: "quorum_sulking", status: 409 });
    expect(error.message).toBe("quorum_sulking: try later");
    expect(refused.sent).toHaveLength(1);

    const busy = scriptedNode(503, { error: { code: "quorum_sulking", message: "try later" } });
    expect(await failureOf(clientOf(busy).get("booking/1"))).toMatchObject({ code: "unknown", nodeCode: "quorum_sulking", status: 503 });
    expect(busy.sent).toHaveLength(retriesMax + 1);
  });

  it("judges an error answer without the contract's shape by its status alone", async () => {
    expect(await failureOf(clientOf(scriptedNode(400, { oops: true })).get("k"))).toMatchObject({ code: "invalid_request", status: 400 });
    expect(await failureOf(clientOf(scriptedNode(413, "too large")).get("k"))).toMatchObject({ code: "invalid_request", status: 413 });
    expect(await failureOf(clientOf(scriptedNode(418, {})).get("k"))).toMatchObject({ code: "unknown", nodeCode: undefined, status: 418 });
  });

  it("keeps a conflict's holder and an error's details", async () => {
    const holder = { resource: "slot", token: "12", owner: "alice" };
    const conflict = scriptedNode(409, { error: { code: "conflict", message: "held", holder } });
    expect(await failureOf(clientOf(conflict).acquire(["slot"], { ttlMs: 1000 }))).toMatchObject({ code: "conflict", holder });
    const compacted = scriptedNode(410, { error: { code: "events_compacted", message: "gone", details: { oldestIndex: 40 } } });
    expect(await failureOf(clientOf(compacted).range("k"))).toMatchObject({ code: "events_compacted", details: { oldestIndex: 40 } });
  });

  it("refuses a success answer that does not fit the contract as invalid_answer, and does not send it again", async () => {
    const node = scriptedNode(200, { status: "granted", resources: ["slot"], owner: "me", ttlMs: 1000 }); // No token.
    const error = await failureOf(clientOf(node).acquire(["slot"], { ttlMs: 1000, autoRenew: false }));
    expect(error).toMatchObject({ code: "invalid_answer", status: 200 });
    expect(error.message).toContain("token");
    expect(node.sent).toHaveLength(1);
  });

  it("takes a success answer that fits, extra fields of a newer node included", async () => {
    const answer = { key: "k", value: "v", token: "7", modIndex: 7, ageMs: 12 };
    expect(await clientOf(scriptedNode(200, answer)).get("k")).toEqual(answer);
  });
});
