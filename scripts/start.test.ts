// `npm start` must run as the README promises: three lock node processes on 127.0.0.1:7001-7003
// elect a leader, answer the CLI, and stop cleanly. Runs the real script for a few seconds, with
// its data in a temporary directory.
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, expect, it } from "vitest";

const dataDir = mkdtempSync(join(tmpdir(), "sctec-start-"));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

it("npm start runs a three-node cluster and the scheduler, prints the booking page and the status pages, and stops cleanly", async () => {
  const { stdout } = await promisify(execFile)("npx", ["tsx", "scripts/start.ts", "--seconds", "12", "--data", dataDir], {
    timeout: 60_000,
  });
  expect(stdout).toMatch(/node n1: http:\/\/127\.0\.0\.1:7001/);
  expect(stdout).toMatch(/node n3: http:\/\/127\.0\.0\.1:7003/);
  expect(stdout).toMatch(/cluster ready: leader n\d in term \d+/);
  expect(stdout).toMatch(/API token: [0-9a-f]{48}/);
  expect(stdout).toMatch(/booking page: http:\/\/127\.0\.0\.1:8080\//);
  expect(stdout).toMatch(/node n1: http:\/\/127\.0\.0\.1:7001 \(status page: http:\/\/127\.0\.0\.1:7001\/,/);
  expect(stdout).toContain("status pages: http://127.0.0.1:7001/ http://127.0.0.1:7002/ http://127.0.0.1:7003/");
  expect(stdout).toContain("stopped");
  expect(stdout).not.toMatch(/exited \(/);
});
