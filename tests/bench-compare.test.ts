// The single coordinator that `npm run bench:compare` uses as its baseline (bench/single-coordinator.ts)
// answers like the lab's: started as its own process on loopback, as the benchmark starts it, it
// grants a free resource with 200, refuses a held one with 409 (one 200 and nine 409 for ten
// simultaneous requests), releases only for the holder, and forgets everything when restarted.
// No etcd and no clock-dependent figure: the benchmark itself is not run here.

import { type ChildProcess, spawn } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { freePort, waitFor } from "../harness/process-cluster.ts";

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

const started: ChildProcess[] = [];

async function startCoordinator(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "bench/single-coordinator.ts"], {
    env: { ...process.env, SINGLE_COORDINATOR_LISTEN: `127.0.0.1:${port}` },
    stdio: "ignore",
  });
  started.push(child);
  await waitFor(
    () =>
      fetch(`http://127.0.0.1:${port}/status`, { signal: AbortSignal.timeout(1000) }).then(
        (response) => (response.ok ? true : undefined),
        () => undefined,
      ),
    "the single coordinator",
    20_000,
  );
  return child;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

async function post(port: number, path: string, body: Record<string, unknown>): Promise<Answer> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5000),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

afterEach(async () => {
  for (const child of started.splice(0)) await stop(child);
});

describe("bench/single-coordinator.ts, the baseline of bench:compare", () => {
  it("answers 200 to a free resource and 409 to a held one, and releases only for the holder", async () => {
    const port = await freePort();
    await startCoordinator(port);
    const granted = await post(port, "/lock", { resource: "hubble_03:00", owner: "alice" });
    expect(granted).toEqual({ status: 200, body: { resource: "hubble_03:00", token: "1" } });
    const refused = await post(port, "/lock", { resource: "hubble_03:00", owner: "bob" });
    expect(refused.status).toBe(409);
    expect(refused.body["holder"]).toEqual({ owner: "alice", token: "1" });
    expect((await post(port, "/unlock", { resource: "hubble_03:00", owner: "bob" })).status).toBe(409);
    expect((await post(port, "/unlock", { resource: "hubble_03:00", owner: "alice" })).status).toBe(200);
    expect(await post(port, "/lock", { resource: "hubble_03:00", owner: "bob" })).toEqual({
      status: 200,
      body: { resource: "hubble_03:00", token: "2" },
    });
    expect((await post(port, "/lock", { owner: "bob" })).status).toBe(400);
  });

  it("gives one 200 and nine 409 to ten simultaneous requests for one resource (the lab's stress test)", async () => {
    const port = await freePort();
    await startCoordinator(port);
    const answers = await Promise.all(
      Array.from({ length: 10 }, (_, position) => post(port, "/lock", { resource: "webb_04:00", owner: `scientist-${position}` })),
    );
    const statuses = answers.map((answer) => answer.status).sort();
    expect(statuses).toEqual([200, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
  });

  it("forgets every lock, and starts its tokens again, when it is killed and restarted", async () => {
    const port = await freePort();
    const first = await startCoordinator(port);
    for (const resource of ["a", "b", "c"]) expect((await post(port, "/lock", { resource, owner: "alice" })).status).toBe(200);
    await stop(first);
    await startCoordinator(port);
    const again = await post(port, "/lock", { resource: "a", owner: "mallory" });
    expect(again).toEqual({ status: 200, body: { resource: "a", token: "1" } });
  });
});
