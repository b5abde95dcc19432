// `npm start` must run as the README promises: three lock node processes on 127.0.0.1:7001-7003
// elect a leader, the booking API answers, and a signal stops everything cleanly. Runs the real
// script, with its data in a temporary directory, until it prints the booking page (a condition,
// not a fixed time: on a loaded machine three tsx processes take anywhere from 5 to 30 s to start),
// then sends it SIGINT as Ctrl-C would.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";

const dataDir = mkdtempSync(join(tmpdir(), "sctec-start-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

it("npm start runs a three-node cluster and the scheduler, prints the booking page and the status pages, and stops cleanly", async () => {
  // --seconds bounds the run should the signal never come (the test's own timeout is longer).
  const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts", "--seconds", "150", "--data", dataDir], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let stdout = "";
  let signalled = false;
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
    if (!signalled && /booking page: http:\/\/127\.0\.0\.1:8080\//.test(stdout)) {
      signalled = true;
      child.kill("SIGINT");
    }
  });
  const exitCode = await new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  expect(signalled, stdout).toBe(true);
  expect(exitCode).toBe(0);
  expect(stdout).toMatch(/node n1: http:\/\/127\.0\.0\.1:7001/);
  expect(stdout).toMatch(/node n3: http:\/\/127\.0\.0\.1:7003/);
  expect(stdout).toMatch(/cluster ready: leader n\d in term \d+/);
  expect(stdout).toMatch(/API token: [0-9a-f]{48}/);
  expect(stdout).toMatch(/booking page: http:\/\/127\.0\.0\.1:8080\//);
  expect(stdout).toMatch(/node n1: http:\/\/127\.0\.0\.1:7001 \(status page: http:\/\/127\.0\.0\.1:7001\/,/);
  expect(stdout).toContain("status pages: http://127.0.0.1:7001/ http://127.0.0.1:7002/ http://127.0.0.1:7003/");
  expect(stdout).toContain("stopped");
  expect(stdout).not.toMatch(/exited \(/);
}, 180_000);
