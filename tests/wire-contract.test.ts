// The wire contract (protocol/) holds the node's real answers: three in-memory nodes behind real
// HTTP servers on 127.0.0.1 answer one of every call the client makes, and each success answer
// must fit its schema in protocol/api.ts, protocol/status.ts or protocol/watch.ts, and each error
// answer the error shape, with a code from protocol/errors.ts and exactly the status its table
// gives. The client decodes answers with the same schemas (client/errors.test.ts shows what it
// does with one that does not fit), so a node that drifted from the contract fails here first.

import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { z } from "zod";
import { type HttpCluster, startHttpCluster } from "../node/testing/http-cluster.ts";
import {
  commitAnswerSchema,
  credentialListSchema,
  grantAnswerSchema,
  healthAnswerSchema,
  issuedCredentialSchema,
  keyValueSchema,
  leasesAnswerSchema,
  memberAnswerSchema,
  rangePageSchema,
  releaseAnswerSchema,
  renewAnswerSchema,
  revokedCredentialSchema,
  transferAnswerSchema,
  whoamiAnswerSchema,
} from "../protocol/api.ts";
import { type ChainRecord, chainPrefix, verifyChain } from "../protocol/chain.ts";
import { errorAnswerSchema, errorStatus, isErrorCode } from "../protocol/errors.ts";
import { nodeStatusSchema } from "../protocol/status.ts";
import { watchAnswerSchema } from "../protocol/watch.ts";

let cluster: HttpCluster;
beforeAll(async () => {
  cluster = await startHttpCluster({ bodyBytesMax: 4096, watchEventsMax: 100 });
});
afterAll(async () => {
  await cluster.stop();
});

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

async function call(
  method: "GET" | "POST",
  path: string,
  body?: unknown,
  headers: Record<string, string> = { authorization: `Bearer ${cluster.apiToken}` },
): Promise<Answer> {
  const response = await request(`${cluster.leaderUrl()}${path}`, {
    method,
    headers: { "content-type": "application/json", ...headers },
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await response.body.text();
  return { status: response.statusCode, body: text.length > 0 ? (JSON.parse(text) as unknown) : undefined };
}

/** fits: a success answer fits its schema (the schema's complaint is the failure message). */
function fits<Schema extends z.ZodType>(schema: Schema, answer: Answer, status = 200): z.output<Schema> {
  expect(answer.status, JSON.stringify(answer.body)).toBe(status);
  const parsed = schema.safeParse(answer.body);
  expect(parsed.success, parsed.success ? "" : parsed.error.message).toBe(true);
  return parsed.data as z.output<Schema>;
}

/** refused: an error answer has the error shape, a contract code, and that code's status. */
function refused(answer: Answer, code: string): void {
  const parsed = errorAnswerSchema.safeParse(answer.body);
  expect(parsed.success, JSON.stringify(answer.body)).toBe(true);
  const error = parsed.data?.error;
  expect(error?.code).toBe(code);
  expect(isErrorCode(code)).toBe(true);
  expect(answer.status).toBe(errorStatus[code as keyof typeof errorStatus]);
}

describe("the node's answers fit the wire contract", () => {
  it("open calls: /healthz and /status", async () => {
    fits(healthAnswerSchema, await call("GET", "/healthz", undefined, {}));
    const status = fits(nodeStatusSchema, await call("GET", "/status", undefined, {}));
    expect(status.role).toBe("leader");
    expect(status.progress.length).toBeGreaterThan(0); // A leader's progress is part of the shape too.
  });

  it("a lease's life: lock, a conflict, renew, txn with an append, reads, watch, leases, unlock", async () => {
    const granted = fits(
      grantAnswerSchema,
      await call("POST", "/lock", { resources: ["c-slot"], owner: "alice", ttlMs: 5000, reads: [{ prefix: "c/", limit: 10 }] }),
    );
    expect(granted.reads).toEqual([{ items: [], more: false }]);
    const conflict = await call("POST", "/lock", { resource: "c-slot", owner: "bob" });
    refused(conflict, "conflict");
    expect(errorAnswerSchema.parse(conflict.body).error.holder).toEqual({ resource: "c-slot", token: granted.token, owner: "alice" });

    fits(renewAnswerSchema, await call("POST", "/renew", { resource: "c-slot", token: granted.token }));
    const committed = fits(
      commitAnswerSchema,
      await call("POST", "/txn", {
        guards: [{ resource: "c-slot", token: granted.token }],
        operations: [
          { op: "put", key: "c/1", value: "one" },
          { op: "append", chain: "contract", value: "first" },
        ],
      }),
    );
    expect(committed.keys).toHaveLength(2);

    fits(keyValueSchema, await call("GET", "/kv/c%2F1"));
    const page = fits(rangePageSchema, await call("GET", `/kv?prefix=${encodeURIComponent(chainPrefix("contract"))}`));
    expect(verifyChain(page.items.map((item) => JSON.parse(item.value) as ChainRecord))).toMatchObject({ ok: true, count: 1 });
    const events = fits(watchAnswerSchema, await call("GET", `/watch?after=${Number(granted.token) - 1}&timeoutMs=0`));
    expect(events.events.map((event) => event.type)).toEqual(expect.arrayContaining(["granted", "renewed", "key_changed"]));
    fits(leasesAnswerSchema, await call("GET", "/leases"));

    fits(releaseAnswerSchema, await call("POST", "/unlock", { resource: "c-slot", token: granted.token }));
    refused(await call("POST", "/unlock", { resource: "c-slot", token: granted.token }), "not_held");
    refused(
      await call("POST", "/txn", { guards: [{ resource: "c-slot", token: granted.token }], operations: [{ op: "delete", key: "c/1" }] }),
      "stale_fencing_token",
    );
  });

  it("refusals: each code with its table's status", async () => {
    refused(await call("POST", "/lock", { owner: "alice" }, {}), "unauthorized");
    refused(await call("POST", "/lock", { owner: "" }), "invalid_request");
    refused(await call("POST", "/lock", "{not json"), "invalid_request");
    refused(await call("GET", "/kv/c%2Fnone"), "not_found");
    refused(await call("GET", "/no-such-endpoint"), "not_found");
    refused(await call("POST", "/lock", { resource: "big", owner: "x".repeat(5000) }), "payload_too_large");
    const lease = grantAnswerSchema.parse((await call("POST", "/lock", { resource: "c-chain", owner: "carol" })).body);
    const chainKey = `${chainPrefix("contract")}0000000000000001`;
    refused(
      await call("POST", "/txn", {
        guards: [{ resource: "c-chain", token: lease.token }],
        operations: [{ op: "put", key: chainKey, value: "x" }],
      }),
      "invalid_command",
    );
    refused(
      await call(
        "POST",
        "/lock",
        { owner: "dave" },
        { authorization: `Bearer ${cluster.apiToken}`, "content-type": "application/json; charset=latin1" },
      ),
      "unsupported_media_type",
    );
    refused(await call("POST", "/admin/members", { action: "promote_learner", nodeId: "n8" }), "invalid_request");
  });

  it("credentials: create, whoami, list, a forbidden call, rotate, revoke, and their refusals", async () => {
    const made = fits(issuedCredentialSchema, await call("POST", "/admin/credentials", { name: "contract", role: "reader" }), 201);
    const asReader = { authorization: `Bearer ${made.token}` };
    expect(fits(whoamiAnswerSchema, await call("GET", "/auth/whoami", undefined, asReader))).toEqual({ name: "contract", role: "reader" });
    expect(fits(credentialListSchema, await call("GET", "/admin/credentials")).credentials.map((each) => each.name)).toContain("contract");
    refused(await call("POST", "/lock", { resource: "c-denied", owner: "r" }, asReader), "forbidden");
    refused(await call("POST", "/admin/credentials", { name: "contract", role: "reader" }), "credential_exists");
    fits(issuedCredentialSchema, await call("POST", "/admin/credentials/contract/rotate"));
    refused(await call("GET", "/auth/whoami", undefined, asReader), "unauthorized");
    fits(revokedCredentialSchema, await call("POST", "/admin/credentials/contract/revoke"));
    refused(await call("POST", "/admin/credentials/contract/revoke"), "unknown_credential");
  });

  // Last: the transfer moves the leadership away.
  it("admin calls: a membership change and a leadership transfer", async () => {
    const added = fits(memberAnswerSchema, await call("POST", "/admin/members", { action: "add_learner", nodeId: "n9" }));
    expect(added.status.learners).toContain("n9");
    fits(memberAnswerSchema, await call("POST", "/admin/members", { action: "remove_node", nodeId: "n9" }));
    const leaderId = nodeStatusSchema.parse((await call("GET", "/status", undefined, {})).body).leaderId;
    const to = ["n1", "n2", "n3"].find((id) => id !== leaderId) as string;
    fits(transferAnswerSchema, await call("POST", "/admin/transfer", { to }), 202);
  });
});
