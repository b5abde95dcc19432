// The sctec command-line tool against real lock node processes: status and members, lock (a
// token), a second lock (exit 1, "error conflict", the holder's token), put under the lease,
// get, unlock, usage errors (exit 2) and --help (exit 0); transfer, which waits until the chosen
// node leads. Runs the real `client/sctec.mjs`.
import { spawnSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProcessCluster } from "../harness/process-cluster.ts";

let cluster: ProcessCluster;
beforeAll(async () => {
  cluster = await ProcessCluster.start();
});
afterAll(async () => {
  await cluster.close();
});

function sctec(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ["client/sctec.mjs", "--nodes", cluster.urls().join(","), ...args], {
    encoding: "utf8",
    env: { ...process.env, SCTEC_API_TOKEN: cluster.apiToken },
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe("sctec", () => {
  it("shows status and members", () => {
    const status = sctec("status");
    expect(status.status).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ voters: ["n1", "n2", "n3"] });
    expect(JSON.parse(sctec("members").stdout).voters).toEqual(["n1", "n2", "n3"]);
  });

  it("locks, refuses a second holder, writes under the lease, reads, and unlocks", () => {
    const locked = sctec("lock", "slot-cli", "--ttl", "60000");
    expect(locked.status).toBe(0);
    const token = JSON.parse(locked.stdout).token as string;
    expect(token).toMatch(/^\d+$/);
    const second = sctec("lock", "slot-cli");
    expect(second.status).toBe(1);
    expect(second.stderr).toContain("error conflict");
    expect(second.stderr).toContain(`token ${token}`);
    expect(sctec("put", "booking/cli", "hello", "--lease", `slot-cli:${token}`).status).toBe(0);
    expect(JSON.parse(sctec("get", "booking/cli").stdout)).toMatchObject({ value: "hello", token });
    expect(JSON.parse(sctec("leases").stdout).map((lease: { resource: string }) => lease.resource)).toContain("slot-cli");
    expect(sctec("unlock", "slot-cli", "--token", token).status).toBe(0);
    expect(sctec("lock", "slot-cli").status).toBe(0);
  });

  it("reports usage errors with exit code 2 and a missing key with exit code 1", () => {
    expect(sctec().status).toBe(2);
    expect(sctec("frobnicate").stderr).toContain("unknown command");
    expect(sctec("unlock", "x").status).toBe(2);
    expect(sctec("lock", "x", "--ttl", "soon").status).toBe(2);
    const missing = sctec("get", "nothing/here");
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain("not_found");
  });

  it("prints its usage for --help, -h and help (exit 0), and an unknown option as bad usage, never a stack trace", () => {
    for (const asked of ["--help", "-h", "help"]) {
      const help = sctec(asked);
      expect([help.status, help.stderr], asked).toEqual([0, ""]);
      for (const command of ["status", "members", "leases", "lock", "unlock", "renew", "get", "range", "put", "transfer", "member"]) {
        expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, "m"));
      }
    }
    const unknown = sctec("--bogus");
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain("Unknown option '--bogus'");
    expect(unknown.stderr).toContain("usage: sctec");
    expect(unknown.stderr).not.toMatch(/^\s+at /m);
  });

  it("transfers leadership and waits until the chosen node leads; refuses a node that is not a voter", async () => {
    const leader = await cluster.waitForLeader(30_000);
    const chosen = cluster.ids().find((id) => id !== leader) as string;
    const moved = sctec("transfer", chosen, "--timeout", "20000");
    expect([moved.status, moved.stderr]).toEqual([0, ""]);
    expect(JSON.parse(moved.stdout)).toMatchObject({ leader: chosen });
    expect(await cluster.leader()).toBe(chosen);
    const refused = sctec("transfer", "n9");
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("not_a_voter");
    expect(sctec("transfer", chosen, "--timeout", "0").status).toBe(2);
  });
});
