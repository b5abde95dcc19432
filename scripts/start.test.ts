// `npm start` must run as the README promises: it elects a leader and replicates commands. Runs
// the real script as a child process for a few seconds.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect, it } from "vitest";

it("npm start runs a local cluster that elects a leader and replicates", async () => {
  const { stdout } = await promisify(execFile)("npx", ["tsx", "scripts/start.ts", "--seconds", "3"], { timeout: 30_000 });
  expect(stdout).toContain("simulated local cluster");
  expect(stdout).toMatch(/leader elected: n\d in term \d+/);
  expect(stdout).toMatch(/proposed command-1 at index \d+/);
});
