// A node that cannot use its data directory exits with code 3, as node/README.md says, also when
// its log file is not open yet. Regression (npm run chaos, a node restarted while the machine was
// loaded): the refusal came before the log file was open, process.exit(3) ran pino's exit hook,
// whose synchronous flush throws "sonic boom is not ready yet", and the node died with an
// "unhandled rejection", exit 70, the code of a broken invariant. Shown deterministically with
// the log file on a named pipe, which opens only once a reader comes: the reader is opened after
// the node has said it cannot use the directory. (Planted: process.exit(3) back gives exit 70.)

import { execFileSync, spawn } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { waitFor } from "../harness/process-cluster.ts";

const root = resolve(import.meta.dirname, "..");
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("node exit codes", () => {
  it("a data directory the node cannot use is exit 3, even before its log file is open", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sctec-exit-codes-"));
    dirs.push(dir);
    const dataDir = join(dir, "data");
    execFileSync("mkdir", ["-p", dataDir]);
    writeFileSync(join(dataDir, "notes.txt"), "not a LevelDB database\n");
    const logPipe = join(dir, "node.log");
    execFileSync("mkfifo", [logPipe]);
    let stderr = "";
    const child = spawn(process.execPath, ["--import", "tsx", "node/main.ts"], {
      cwd: root,
      env: {
        ...process.env,
        SCTEC_NODE_ID: "n1",
        SCTEC_LISTEN: "127.0.0.1:0",
        SCTEC_PEERS: "n1=http://127.0.0.1:1",
        SCTEC_DATA_DIR: dataDir,
        SCTEC_CLUSTER_SECRET: "0123456789abcdef0123456789abcdef",
        SCTEC_API_TOKEN: "fedcba9876543210fedcba9876543210",
        SCTEC_LOG_FILE: logPipe,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
    let reader: number | undefined;
    try {
      await waitFor(
        () => (stderr.includes("cannot use data directory") ? true : undefined),
        "the node to refuse its data directory",
        60_000,
      );
      // Now the log file opens: a non-blocking reader lets the node's pending open of the pipe complete.
      reader = openSync(logPipe, constants.O_RDONLY | constants.O_NONBLOCK);
      expect(await exited, stderr).toBe(3);
      expect(stderr).toContain("not a LevelDB database");
      expect(stderr).not.toContain("unhandled rejection");
    } finally {
      child.kill("SIGKILL");
      if (reader !== undefined) closeSync(reader);
    }
  }, 90_000);
});
