// The folder rules must really be enforced by the linter: each forbidden construct, written to a
// probe file at a path inside a folder and linted there, must be rejected, and the same code
// elsewhere (or the allowed variant) must pass. A biome.json change that silently drops a rule
// fails here. (Biome's --stdin-file-path does not resolve imports, so real files are used.) The
// probes live in a temporary copy of the repository's lint configuration, never in a source
// folder: a test writes nothing where the code is.
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const repositoryRoot = fileURLToPath(new URL("..", import.meta.url));
const biome = join(repositoryRoot, "node_modules", ".bin", "biome");
const probeRoot = mkdtempSync(join(tmpdir(), "sctec-lint-"));
const config = JSON.parse(readFileSync(join(repositoryRoot, "biome.json"), "utf8")) as Record<string, unknown>;
writeFileSync(join(probeRoot, "biome.json"), JSON.stringify({ ...config, $schema: undefined, vcs: { enabled: false } }));
cpSync(join(repositoryRoot, "lint"), join(probeRoot, "lint"), { recursive: true });
afterAll(() => rmSync(probeRoot, { recursive: true, force: true }));

let probes = 0;
function lint(path: string, source: string): { ok: boolean; output: string } {
  const probe = join(probeRoot, path.replace(/\.ts$/, `-${probes++}.ts`));
  mkdirSync(dirname(probe), { recursive: true });
  writeFileSync(probe, source);
  const result = spawnSync(biome, ["lint", "--max-diagnostics=50", probe], { cwd: probeRoot, encoding: "utf8", timeout: 30_000 });
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
}

describe("lint rules enforce purity and import direction", () => {
  const forbiddenInPureFolders: [string, string][] = [
    ["a node:* import", 'import { readFileSync } from "node:fs";\nexport const f = readFileSync;\n'],
    ["an I/O library", 'import WebSocket from "ws";\nexport const w = WebSocket;\n'],
    ["the wall clock", "export const now = Date.now();\n"],
    ["a timer", "export const t = setTimeout(() => undefined, 1);\n"],
    ["Math.random()", "export const r = Math.random();\n"],
  ];
  for (const folder of ["raft", "lock", "simulations"]) {
    it.each(forbiddenInPureFolders)(`${folder}/ rejects %s`, (_name, source) => {
      expect(lint(`${folder}/example-lint.ts`, source).ok).toBe(false);
    });
  }

  it("allows pure arithmetic in raft/ and lock/", () => {
    for (const folder of ["raft", "lock"]) {
      const result = lint(`${folder}/example-lint.ts`, "export const x = Math.floor(2.5) + Math.max(1, 2);\n");
      expect(result.ok, result.output).toBe(true);
    }
  });

  it("allows node:* outside the pure folders", () => {
    expect(lint("scripts/example-lint.ts", 'import { readFileSync } from "node:fs";\nexport const f = readFileSync;\n').ok).toBe(true);
  });

  it("forbids raft/ from importing the rest of the system", () => {
    expect(lint("raft/example-lint.ts", 'import { x } from "../node/server.ts";\nexport const y = x;\n').ok).toBe(false);
    expect(lint("raft/example-lint.ts", 'import { x } from "../lock/types.ts";\nexport const y = x;\n').ok).toBe(false);
  });

  it("lets lock/ import raft/ and protocol/ only", () => {
    expect(lint("lock/example-lint.ts", 'import { assert } from "../raft/assert.ts";\nexport const a = assert;\n').ok).toBe(true);
    expect(lint("lock/example-lint.ts", 'import { limits } from "../protocol/limits.ts";\nexport const l = limits;\n').ok).toBe(true);
    const impure = lint("lock/example-lint.ts", 'import { LockService } from "../node/lock-service.ts";\nexport const s = LockService;\n');
    expect(impure.ok).toBe(false);
    expect(impure.output).toContain("lock/ imports only raft/");
  });

  it("forbids protocol/ from importing a service", () => {
    for (const service of ["node/http-api.ts", "client/lock-client.ts", "scheduler/app.ts", "raft/index.ts"]) {
      const result = lint("protocol/example-lint.ts", `import { x } from "../${service}";\nexport const y = x;\n`);
      expect(result.ok, service).toBe(false);
      expect(result.output).toContain("protocol/ imports nothing of ours");
    }
    expect(lint("protocol/example-lint.ts", 'import { z } from "zod";\nexport const s = z.string();\n').ok).toBe(true);
  });

  it.each([["node"], ["client"], ["scheduler"], ["bench"], ["scripts"], ["harness"]])("forbids %s/ from importing tests/", (folder) => {
    const result = lint(`${folder}/example-lint.ts`, 'import { x } from "../tests/support/mutants.ts";\nexport const y = x;\n');
    expect(result.ok).toBe(false);
    expect(result.output).toContain("tests/ is imported by nothing");
  });

  it.each([["node"], ["client"], ["scheduler"]])("forbids production code in %s/ from importing harness/", (folder) => {
    const result = lint(`${folder}/example-lint.ts`, 'import { x } from "../harness/process-cluster.ts";\nexport const y = x;\n');
    expect(result.ok).toBe(false);
    expect(result.output).toContain("production code never imports it");
  });

  it("lets tests/, bench/ and scripts/ import harness/", () => {
    for (const folder of ["tests", "bench", "scripts"]) {
      const result = lint(`${folder}/example-lint.ts`, 'import { x } from "../harness/process-cluster.ts";\nexport const y = x;\n');
      expect(result.ok, result.output).toBe(true);
    }
  });

  it.each([["node"], ["client"], ["scheduler"]])("forbids %s/ from importing the planted bugs", (folder) => {
    const result = lint(
      `${folder}/example-lint.ts`,
      'import { plantedBugs } from "../raft/planted-bugs.ts";\nexport const b = plantedBugs;\n',
    );
    expect(result.ok).toBe(false);
    expect(result.output).toContain("tests only");
  });

  it("forbids the node from importing the planted lease bugs, but not lock/ itself", () => {
    const source = 'import { leasePlantedBugs } from "../lock/planted-bugs.ts";\nexport const b = leasePlantedBugs;\n';
    expect(lint("node/example-lint.ts", source).ok).toBe(false);
    const inside = 'import { leasePlantedBugs } from "./planted-bugs.ts";\nexport const b = leasePlantedBugs;\n';
    expect(lint("lock/example-lint.ts", inside).ok).toBe(true);
  });

  it("forbids chaos/ from importing the scheduler's code, the simulator or tests/, but not the client", () => {
    expect(lint("chaos/example-lint.ts", 'import { Bookings } from "../scheduler/bookings.ts";\nexport const b = Bookings;\n').ok).toBe(
      false,
    );
    expect(lint("chaos/example-lint.ts", 'import { runSchedule } from "../simulations/sim.ts";\nexport const r = runSchedule;\n').ok).toBe(
      false,
    );
    expect(
      lint("chaos/example-lint.ts", 'import { importMutant } from "../tests/support/mutants.ts";\nexport const m = importMutant;\n').ok,
    ).toBe(false);
    const client = lint("chaos/example-lint.ts", 'import { LockClient } from "../client/lock-client.ts";\nexport const c = LockClient;\n');
    expect(client.ok, client.output).toBe(true);
  });

  it.each([
    ["node/", 'import { LockService } from "../node/lock-service.ts";\nexport const h = LockService;\n'],
    ["raft/", 'import { nodeId } from "../raft/index.ts";\nexport const n = nodeId;\n'],
    ["client/", 'import { LockClient } from "../client/lock-client.ts";\nexport const c = LockClient;\n'],
    ["scheduler/", 'import { ApiError } from "../scheduler/errors.ts";\nexport const e = ApiError;\n'],
  ])("forbids protocol/ from importing %s (it imports nothing of ours)", (_folder, source) => {
    const result = lint("protocol/example-lint.ts", source);
    expect(result.ok).toBe(false);
    expect(result.output).toContain("protocol/ imports nothing of ours");
  });

  it("lets protocol/ import zod and its own files, and every side import protocol/", () => {
    const own = 'import { z } from "zod";\nimport { nameLengthMax } from "./limits.ts";\nexport const s = z.string().max(nameLengthMax);\n';
    const inside = lint("protocol/example-lint.ts", own);
    expect(inside.ok, inside.output).toBe(true);
    for (const path of ["node/example-lint.ts", "lock/example-lint.ts", "client/example-lint.ts", "scheduler/example-lint.ts"]) {
      const depth = path.split("/").length - 1;
      const source = `import { nameLengthMax } from "${"../".repeat(depth)}protocol/limits.ts";\nexport const n = nameLengthMax;\n`;
      const result = lint(path, source);
      expect(result.ok, `${path}: ${result.output}`).toBe(true);
    }
  });

  it("lets config/ import zod and node:util only, and the node and the booking API import config/", () => {
    for (const service of ["node/config.ts", "scheduler/config.ts", "protocol/limits.ts", "client/lock-client.ts"]) {
      const result = lint("config/example-lint.ts", `import { x } from "../${service}";\nexport const y = x;\n`);
      expect(result.ok, service).toBe(false);
      expect(result.output).toContain("config/ imports nothing of ours");
    }
    const io = lint("config/example-lint.ts", 'import { request } from "undici";\nexport const r = request;\n');
    expect(io.ok).toBe(false);
    expect(io.output).toContain("No I/O libraries");
    const own = 'import { parseArgs } from "node:util";\nimport { z } from "zod";\nexport const p = [parseArgs, z];\n';
    expect(lint("config/example-lint.ts", own).ok).toBe(true);
    const loader = 'import { loadConfig } from "../config/load-config.ts";\nexport const l = loadConfig;\n';
    for (const path of ["node/example-lint.ts", "scheduler/example-lint.ts"]) {
      const result = lint(path, loader);
      expect(result.ok, `${path}: ${result.output}`).toBe(true);
    }
    // The client reads no process configuration: it is a library, given its options by its caller.
    expect(lint("client/example-lint.ts", loader).output).toContain("it imports protocol/ and nothing else of ours");
  });

  it("forbids raft/ from importing protocol/ too", () => {
    expect(
      lint("raft/example-lint.ts", 'import { nameLengthMax } from "../protocol/limits.ts";\nexport const n = nameLengthMax;\n').ok,
    ).toBe(false);
  });

  it("forbids scheduler/ from reaching past client/, and client/ from reaching past protocol/", () => {
    expect(lint("scheduler/example-lint.ts", 'import { RawNode } from "../raft/index.ts";\nexport const r = RawNode;\n').ok).toBe(false);
    expect(lint("client/example-lint.ts", 'import { x } from "../node/http-api.ts";\nexport const y = x;\n').ok).toBe(false);
    expect(lint("client/example-lint.ts", 'import { x } from "../protocol/errors.ts";\nexport const y = x;\n').ok).toBe(true);
  });

  it("keeps simulations/ away from sockets, LevelDB and HTTP", () => {
    const result = lint(
      "simulations/example-lint.ts",
      'import { x } from "../node/transport/websocket-transport.ts";\nexport const y = x;\n',
    );
    expect(result.ok).toBe(false);
  });

  it.each([
    ["node:*", 'import { readFileSync } from "node:fs";\nexport const f = readFileSync;\n'],
    ["a package", 'import { z } from "zod";\nexport const s = z.string();\n'],
    ["the server's code", 'import { createApp } from "../app.ts";\nexport const a = createApp;\n'],
    ["client/", 'import { LockClient } from "../../client/lock-client.ts";\nexport const c = LockClient;\n'],
    ["protocol/", 'import { nameLengthMax } from "../../protocol/limits.ts";\nexport const n = nameLengthMax;\n'],
  ])("keeps the booking page (scheduler/web/) to its own browser modules: not %s", (_what, source) => {
    const result = lint("scheduler/web/example-lint.ts", source);
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/scheduler\/web\/ is browser code|noNodejsModules/);
  });

  it("lets the booking page import its own modules, and the scheduler keep its rules beside it", () => {
    const own = lint("scheduler/web/example-lint.ts", 'import { timeOf } from "./time-format.js";\nexport const t = timeOf;\n');
    expect(own.ok, own.output).toBe(true);
    const server = lint("scheduler/routes/example-lint.ts", 'import { RawNode } from "../../raft/index.ts";\nexport const r = RawNode;\n');
    expect(server.ok).toBe(false);
  });
});
