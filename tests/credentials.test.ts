// Credentials on real node processes, through the sctec CLI as an operator would use them: made
// with the bootstrap admin token (from a file, as a container would hold it), listed without their
// tokens, a reader's token refused a lock (exit 1, `error forbidden`, naming the role), a locker's
// token locking through any node, and a revoked token refused by every node right after the
// revocation committed (the revoking call answers once its entry is applied), for reads, writes and
// the watch alike. A rotated token likewise, while the new one works at once everywhere.

import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProcessCluster } from "../harness/process-cluster.ts";

let cluster: ProcessCluster;
let adminTokenFile: string;
beforeAll(async () => {
  cluster = await ProcessCluster.start();
  adminTokenFile = join(cluster.dataRoot, "admin-token");
  writeFileSync(adminTokenFile, `${cluster.apiToken}\n`, { mode: 0o600 });
});
afterAll(async () => {
  await cluster.close();
});

/** sctec runs the CLI; `token` is a credential's token, else the bootstrap admin token is read from its file. */
function sctec(args: string[], token?: string): { status: number | null; stdout: string; stderr: string } {
  const { SCTEC_API_TOKEN: _token, ...env } = process.env;
  const tokenArgs = token === undefined ? ["--api-token-file", adminTokenFile] : ["--api-token", token];
  const result = spawnSync(process.execPath, ["client/sctec.mjs", "--nodes", cluster.urls().join(","), ...tokenArgs, ...args], {
    encoding: "utf8",
    env,
    timeout: 90_000, // Generous: each run starts tsx, which alone took over 30 s at a load of 100 (the whole suite beside others).
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/**
 * statusOn asks one node directly (no failover, no forwarding by the client) and returns the HTTP
 * status. Each on a connection of its own: a kept-alive one may be closed by the node's idle
 * timeout while a slow CLI run goes on, and reused at that moment.
 */
async function statusOn(url: string, token: string, method: "GET" | "POST", path: string, body?: unknown): Promise<number> {
  const response = await request(`${url}${path}`, {
    method,
    reset: true,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  await response.body.arrayBuffer();
  return response.statusCode;
}

describe("credentials through the sctec CLI, on real node processes", () => {
  it("makes credentials shown once and listed without tokens; a reader cannot lock, a locker can", () => {
    const reader = sctec(["credential", "create", "auditor", "--role", "reader"]);
    expect(reader.status, reader.stderr).toBe(0);
    expect(reader.stderr).toContain("shown this once");
    const readerToken = JSON.parse(reader.stdout).token as string;
    const locker = JSON.parse(sctec(["credential", "create", "booking-api", "--role", "locker"]).stdout);
    expect(locker).toMatchObject({ name: "booking-api", role: "locker", token: expect.stringMatching(/^sctec_[A-Za-z0-9_-]{43}$/) });

    const denied = sctec(["lock", "cli-slot"], readerToken);
    expect(denied.status).toBe(1);
    expect(denied.stderr).toMatch(/error forbidden: .*locker/);
    expect(JSON.parse(sctec(["whoami"], readerToken).stdout)).toEqual({ name: "auditor", role: "reader" });
    expect(sctec(["leases"], readerToken).status).toBe(0);
    expect(sctec(["lock", "cli-slot"], locker.token).status).toBe(0);
    expect(sctec(["member", "remove", "n3"], locker.token).stderr).toContain("error forbidden");

    const listed = sctec(["credential", "list"]);
    expect(JSON.parse(listed.stdout).map((each: { name: string; role: string }) => `${each.name}:${each.role}`)).toEqual([
      "auditor:reader",
      "booking-api:locker",
    ]);
    expect(listed.stdout).not.toContain(readerToken);
    expect(sctec(["credential", "create", "x", "--role", "root"]).status).toBe(2);
  }, 300_000); // Ten CLI runs, each a tsx start: under a minute alone, several on a loaded machine.

  it("refuses a revoked token on every node right after the revocation commits, and a rotated one likewise", async () => {
    const made = JSON.parse(sctec(["credential", "create", "temporary", "--role", "locker"]).stdout) as { token: string };
    for (const url of cluster.urls()) expect(await statusOn(url, made.token, "GET", "/kv/nothing")).toBe(404);

    const rotated = sctec(["credential", "rotate", "temporary"]);
    expect(rotated.status, rotated.stderr).toBe(0);
    const newToken = JSON.parse(rotated.stdout).token as string;
    for (const url of cluster.urls()) {
      expect(await statusOn(url, made.token, "GET", "/kv/nothing")).toBe(401);
      expect(await statusOn(url, newToken, "GET", "/kv/nothing")).toBe(404);
    }

    const revoked = sctec(["credential", "revoke", "temporary"]);
    expect(revoked.status, revoked.stderr).toBe(0);
    expect(JSON.parse(revoked.stdout)).toMatchObject({ revoked: "temporary", index: expect.any(Number) });
    // At once, on each node, whether it has applied the revocation yet or not.
    for (const url of cluster.urls()) {
      expect(await statusOn(url, newToken, "GET", "/kv/nothing"), url).toBe(401);
      expect(await statusOn(url, newToken, "GET", "/watch?timeoutMs=0"), url).toBe(401);
      expect(await statusOn(url, newToken, "POST", "/lock", { resource: "after-revoke", owner: "x" }), url).toBe(401);
    }
    expect(sctec(["credential", "revoke", "temporary"]).stderr).toContain("error unknown_credential");
  }, 300_000);
});
