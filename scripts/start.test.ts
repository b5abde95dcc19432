// `npm start` must behave (issue 17, item 4). Shown in three layers:
//
// - the pieces, deterministically: readiness counts only answers from its own children (by pid);
//   a busy port is found; the supervisor reports a child that exits unasked with its last stderr
//   and log lines, SIGKILLs one that ignores SIGTERM once its bound is up, and starts again one
//   that asks for a restart (within its bound). The children here are tiny `node -e` scripts.
// - the product's children: a node and a scheduler started with an IPC channel stop by themselves
//   when the channel closes (npm start gone, however it ended).
// - the real `npm start`, on free ports of its own (never 7001-7003/8080, where a user's npm start
//   may run): through npm, SIGTERM to npm's pid stops every child and frees every port (it used to
//   orphan them: npm signalled the `sh -c` that ran tsx, and only the shell died); a port in use is
//   an error before anything starts; a node that cannot start is reported with its last lines, and
//   npm start stops the others and exits 1.
//
// Every wait is for a condition, bounded generously: on a loaded machine four tsx processes take
// anywhere from 5 to 40 s to start.

import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, waitFor } from "../harness/process-cluster.ts";
import { ownHealthyScheduler, ownLeader, type StatusAnswer } from "./start/readiness.ts";
import { type ChildExit, portsInUse, Supervisor, tailOfFile } from "./start/supervisor.ts";

const scratch = mkdtempSync(join(tmpdir(), "sctec-start-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** alive: whether a process with this pid exists (a zombie counts as gone once reaped by init). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function listenOn(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

describe("readiness counts only this npm start's own processes", () => {
  const nodes = [
    { id: "n1", url: "http://127.0.0.1:1", pid: 101 },
    { id: "n2", url: "http://127.0.0.1:2", pid: 102 },
    { id: "n3", url: "http://127.0.0.1:3", pid: 103 },
  ];
  const answer = (nodeId: string, pid: number, role: string, term: number): StatusAnswer => ({ nodeId, pid, role, term });

  it("a leader that answers from another process (an older npm start on the port) is not ours", () => {
    const answers = new Map([
      ["n1", answer("n1", 999, "leader", 7)],
      ["n2", answer("n2", 102, "follower", 1)],
    ]);
    const { leader, foreign } = ownLeader(nodes, answers);
    expect(leader).toBeUndefined();
    expect(foreign).toEqual([{ id: "n1", url: "http://127.0.0.1:1", pid: 999 }]);
  });

  it("our leader in the highest term our nodes report is ready; one in a lower term is not", () => {
    const stale = new Map([
      ["n1", answer("n1", 101, "leader", 2)],
      ["n2", answer("n2", 102, "candidate", 3)],
    ]);
    expect(ownLeader(nodes, stale).leader).toBeUndefined();
    const settled = new Map([
      ["n1", answer("n1", 101, "follower", 3)],
      ["n2", answer("n2", 102, "leader", 3)],
      ["n3", undefined],
    ]);
    expect(ownLeader(nodes, settled)).toEqual({ leader: { nodeId: "n2", term: 3 }, foreign: [] });
  });

  it("the scheduler is ready when its healthy answer names our child's pid", () => {
    expect(ownHealthyScheduler(200, 200, { ok: true, pid: 200 })).toBe(true);
    expect(ownHealthyScheduler(200, 200, { ok: true, pid: 201 })).toBe(false);
    expect(ownHealthyScheduler(200, 200, { ok: true })).toBe(false);
    expect(ownHealthyScheduler(200, 503, { ok: false, pid: 200 })).toBe(false);
  });
});

describe("the pieces of the supervisor", () => {
  it("portsInUse finds a port something listens on, and not a free one", async () => {
    const [taken, free] = [await freePort(), await freePort()];
    const server = await listenOn(taken);
    try {
      expect(await portsInUse([taken, free])).toEqual([taken]);
    } finally {
      server.close();
    }
  });

  it("tailOfFile keeps the last lines of a long file, and knows no lines of a missing one", () => {
    const path = join(scratch, "tail.log");
    writeFileSync(path, `${Array.from({ length: 5000 }, (_, line) => `line ${line}`).join("\n")}\n`);
    expect(tailOfFile(path, 3)).toEqual(["line 4997", "line 4998", "line 4999"]);
    expect(tailOfFile(join(scratch, "missing.log"), 3)).toEqual([]);
  });

  function supervisor(exits: ChildExit[], logs: string[], options: { stopTimeoutMs?: number; stderr?: string[] } = {}): Supervisor {
    return new Supervisor({
      command: process.execPath,
      log: (message) => logs.push(message),
      forwardStderr: (text) => options.stderr?.push(text),
      stopTimeoutMs: options.stopTimeoutMs ?? 10_000,
      tailLinesMax: 3,
      restartsPerMinuteMax: 2,
      onExit: (exit) => exits.push(exit),
    });
  }

  it("reports a child that exits unasked, with its last stderr lines and its log's last lines", async () => {
    const exits: ChildExit[] = [];
    const logFile = join(scratch, "child.log");
    writeFileSync(logFile, '{"msg":"starting"}\n{"msg":"cannot open the data directory"}\n');
    const script = 'for (let n = 1; n <= 5; n++) console.error("complaint " + n); process.exit(3)';
    supervisor(exits, []).start({ key: "c1", name: "child c1", args: ["-e", script], env: process.env, logFile });
    const [exit] = await waitFor(() => (exits.length > 0 ? exits : undefined), "the child's exit", 30_000);
    expect(exit).toEqual({
      key: "c1",
      name: "child c1",
      code: 3,
      signal: null,
      lastLines: [
        "stderr | complaint 3",
        "stderr | complaint 4",
        "stderr | complaint 5",
        `${logFile} | {"msg":"starting"}`,
        `${logFile} | {"msg":"cannot open the data directory"}`,
      ],
    });
  });

  it("stopAll stops children with SIGTERM, SIGKILLs one that ignores it once the bound is up, and reports neither", async () => {
    const exits: ChildExit[] = [];
    const stderr: string[] = [];
    const tree = supervisor(exits, [], { stopTimeoutMs: 1500, stderr });
    const script = (key: string, code: string) => tree.start({ key, name: key, args: ["-e", code], env: process.env, logFile: "" });
    const polite = script("polite", "setInterval(() => {}, 1000)");
    // Says so once its handler is in place, so the SIGTERM below cannot come before it.
    const stubborn = script("stubborn", 'process.on("SIGTERM", () => {}); console.error("ready"); setInterval(() => {}, 1000)');
    await waitFor(() => (stderr.includes("[stubborn] ready\n") ? true : undefined), "the stubborn child's handler", 30_000);
    const { killed } = await tree.stopAll(["polite"]);
    expect(killed).toEqual(["stubborn"]);
    expect(alive(polite as number) || alive(stubborn as number)).toBe(false);
    expect(exits).toEqual([]);
  });

  it("starts again a child that exits with its restart code, up to restartsPerMinuteMax times, then reports it", async () => {
    const exits: ChildExit[] = [];
    const logs: string[] = [];
    const tree = supervisor(exits, logs);
    const first = tree.start({
      key: "r1",
      name: "child r1",
      args: ["-e", "process.exit(75)"],
      env: process.env,
      logFile: "",
      restartExitCode: 75,
    });
    const [exit] = await waitFor(() => (exits.length > 0 ? exits : undefined), "the third exit", 30_000);
    expect(exit).toMatchObject({ key: "r1", code: 75 });
    expect(logs.filter((line) => line.includes("started again"))).toHaveLength(2);
    expect(first).toBeGreaterThan(0);
  });
});

/** spawnWithChannel starts one of the product's processes as npm start does: an IPC channel, stderr kept. */
function spawnWithChannel(entry: string, env: NodeJS.ProcessEnv): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, ["--import", "tsx", entry], { env, stdio: ["ignore", "ignore", "pipe", "ipc"] });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return { child, stderr: () => stderr };
}

function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

describe("a node and a scheduler stop by themselves when their supervisor's IPC channel closes", () => {
  it("a serving node stops cleanly (exit 0) when the channel closes", async () => {
    const port = await freePort();
    const dataDir = join(scratch, "ipc-node");
    const { child, stderr } = spawnWithChannel("node/main.ts", {
      ...process.env,
      SCTEC_NODE_ID: "n1",
      SCTEC_LISTEN: `127.0.0.1:${port}`,
      SCTEC_PEERS: `n1=http://127.0.0.1:${port}`,
      SCTEC_DATA_DIR: dataDir,
      SCTEC_CLUSTER_SECRET: randomBytes(16).toString("hex"),
      SCTEC_API_TOKEN: randomBytes(16).toString("hex"),
      SCTEC_LOG_FILE: join(scratch, "ipc-node.log"),
    });
    try {
      await waitFor(
        async () => {
          const status = await fetch(`http://127.0.0.1:${port}/status`).then(
            (response) => response.json() as Promise<{ pid: number }>,
            () => undefined,
          );
          return status?.pid === child.pid ? true : undefined;
        },
        "the node to serve",
        90_000,
      );
      const exited = exitOf(child);
      child.disconnect();
      expect(await exited, stderr()).toEqual({ code: 0, signal: null });
      expect(readFileSync(join(scratch, "ipc-node.log"), "utf8")).toContain("stopping (supervisor gone)");
    } finally {
      child.kill("SIGKILL");
    }
  }, 120_000);

  it("a scheduler still waiting for its cluster exits at once (exit 0) when the channel closes", async () => {
    const logDir = join(scratch, "ipc-scheduler");
    mkdirSync(logDir, { recursive: true });
    const { child, stderr } = spawnWithChannel("scheduler/main.ts", {
      ...process.env,
      SCHEDULER_LISTEN: `127.0.0.1:${await freePort()}`,
      SCHEDULER_NODES: `http://127.0.0.1:${await freePort()}`, // Nobody listens: it waits for the cluster.
      SCTEC_API_TOKEN: randomBytes(16).toString("hex"),
      SCHEDULER_LOG_DIR: logDir,
    });
    try {
      const appLog = join(logDir, "app.log");
      await waitFor(
        () => (existsSync(appLog) && readFileSync(appLog, "utf8").includes("waiting for the lock cluster") ? true : undefined),
        "the scheduler to wait for its cluster",
        90_000,
      );
      const exited = exitOf(child);
      child.disconnect();
      expect(await exited, stderr()).toEqual({ code: 0, signal: null });
    } finally {
      child.kill("SIGKILL");
    }
  }, 120_000);
});

/** runStart runs the script (through npm, or directly) with its output kept. */
function runStart(how: "npm" | "direct", args: readonly string[]): { child: ChildProcess; output: () => string } {
  const child =
    how === "npm"
      ? spawn("npm", ["start", "--silent", "--", ...args], { stdio: ["ignore", "pipe", "pipe"] })
      : spawn(process.execPath, ["--import", "tsx", "scripts/start.ts", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  return { child, output: () => output };
}

/** childPids: the pids npm start printed for its nodes and its scheduler. */
function childPids(output: string): number[] {
  return [...output.matchAll(/\bpid (\d+)/g)].map((match) => Number(match[1]));
}

describe("npm start on ports of its own", () => {
  it("runs three nodes and the scheduler, prints where, and SIGTERM to npm's pid stops every child and frees every port", async () => {
    const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
    const [n1, n2, n3, scheduler] = ports as [number, number, number, number];
    const dataDir = join(scratch, "npm-start");
    // --seconds bounds the run should the signal never come (the test's own timeout is longer).
    const args = ["--seconds", "170", "--data", dataDir, "--node-ports", `${n1},${n2},${n3}`, "--scheduler-port", String(scheduler)];
    const { child, output } = runStart("npm", args);
    const exited = exitOf(child);
    try {
      await waitFor(
        () => (output().includes(`booking page: http://127.0.0.1:${scheduler}/`) ? true : undefined),
        "the booking page",
        150_000,
      );
      const pids = childPids(output());
      expect(pids, output()).toHaveLength(4);
      expect(pids.every(alive)).toBe(true);
      child.kill("SIGTERM"); // npm's own pid, as `kill -TERM <npm pid>` would.
      expect(await exited, output()).toEqual({ code: 0, signal: null });
      await waitFor(() => (pids.some(alive) ? undefined : true), "every child to be gone", 20_000);
      await waitFor(async () => ((await portsInUse(ports)).length === 0 ? true : undefined), "every port to be free", 20_000);
      const text = output();
      expect(text).toMatch(new RegExp(`node n1: http://127\\.0\\.0\\.1:${n1} \\(status page: http://127\\.0\\.0\\.1:${n1}/, pid \\d+\\)`));
      expect(text).toMatch(/cluster ready: leader n\d in term \d+/);
      expect(text).toMatch(/API token: [0-9a-f]{48}/);
      expect(text).toContain(`status pages: http://127.0.0.1:${n1}/ http://127.0.0.1:${n2}/ http://127.0.0.1:${n3}/`);
      expect(text).toContain("SIGTERM: stopping the scheduler and the nodes");
      expect(text).toContain("stopped");
      expect(text).not.toMatch(/exited unexpectedly|had to kill/);
    } finally {
      child.kill("SIGKILL");
      for (const pid of childPids(output())) if (alive(pid)) process.kill(pid, "SIGKILL");
    }
  }, 180_000);

  it("refuses to start beside something that holds one of its ports: exit 1, the port named, nothing started", async () => {
    const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
    const holder = await listenOn(ports[3] as number);
    const dataDir = join(scratch, "busy-port");
    try {
      const { child, output } = runStart("direct", [
        "--data",
        dataDir,
        "--node-ports",
        ports.slice(0, 3).join(","),
        "--scheduler-port",
        String(ports[3]),
      ]);
      expect(await exitOf(child)).toEqual({ code: 1, signal: null });
      expect(output()).toContain(`127.0.0.1:${ports[3]} is in use already`);
      expect(output()).toContain("Nothing was started.");
      expect(output()).not.toMatch(/node n1:/);
      expect(existsSync(dataDir)).toBe(false);
    } finally {
      holder.close();
    }
  }, 60_000);

  it("reports a node that cannot start with its last lines, stops the others and exits 1", async () => {
    const ports = [await freePort(), await freePort(), await freePort(), await freePort()];
    const dataDir = join(scratch, "bad-node");
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, "n2"), "a file where n2's data directory should be\n");
    const { child, output } = runStart("direct", [
      "--seconds",
      "170",
      "--data",
      dataDir,
      "--node-ports",
      ports.slice(0, 3).join(","),
      "--scheduler-port",
      String(ports[3]),
    ]);
    try {
      expect(await exitOf(child), output()).toEqual({ code: 1, signal: null });
      const text = output();
      expect(text).toMatch(/node n2 exited unexpectedly \(code \d+\); its last lines:\n {4}stderr \| /);
      expect(text).toContain("node n2 is gone: stopping the scheduler and the nodes");
      await waitFor(() => (childPids(text).some(alive) ? undefined : true), "every child to be gone", 20_000);
      await waitFor(async () => ((await portsInUse(ports)).length === 0 ? true : undefined), "every port to be free", 20_000);
    } finally {
      child.kill("SIGKILL");
      for (const pid of childPids(output())) if (alive(pid)) process.kill(pid, "SIGKILL");
    }
  }, 180_000);
});
