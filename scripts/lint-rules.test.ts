// The folder rules must really be enforced by the linter: each forbidden construct, written to a
// short-lived probe file in the folder and linted there, must be rejected, and the same code
// elsewhere (or the allowed variant) must pass. A biome.json change that silently drops a rule
// fails here. (Biome's --stdin-file-path does not resolve imports, so real files are used.)
import { spawnSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

function lint(path: string, source: string): { ok: boolean; output: string } {
  const probe = path.replace(/\.ts$/, `-${process.pid}.ts`);
  writeFileSync(probe, source);
  try {
    const result = spawnSync("npx", ["biome", "lint", "--max-diagnostics=50", probe], { encoding: "utf8", timeout: 30_000 });
    return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
  } finally {
    rmSync(probe, { force: true });
  }
}

describe("lint rules enforce purity and import direction", () => {
  const forbiddenInPureFolders: [string, string][] = [
    ["a node:* import", 'import { readFileSync } from "node:fs";\nexport const f = readFileSync;\n'],
    ["an I/O library", 'import WebSocket from "ws";\nexport const w = WebSocket;\n'],
    ["the wall clock", "export const now = Date.now();\n"],
    ["a timer", "export const t = setTimeout(() => undefined, 1);\n"],
    ["Math.random()", "export const r = Math.random();\n"],
  ];
  for (const folder of ["raft", "simulations"]) {
    it.each(forbiddenInPureFolders)(`${folder}/ rejects %s`, (_name, source) => {
      expect(lint(`${folder}/example-lint.ts`, source).ok).toBe(false);
    });
  }

  it("allows pure arithmetic in raft/", () => {
    const result = lint("raft/example-lint.ts", "export const x = Math.floor(2.5) + Math.max(1, 2);\n");
    expect(result.ok, result.output).toBe(true);
  });

  it("allows node:* outside the pure folders", () => {
    expect(lint("scripts/example-lint.ts", 'import { readFileSync } from "node:fs";\nexport const f = readFileSync;\n').ok).toBe(true);
  });

  it("forbids raft/ from importing the rest of the system", () => {
    expect(lint("raft/example-lint.ts", 'import { x } from "../node/server.ts";\nexport const y = x;\n').ok).toBe(false);
  });

  it.each([["node"], ["client"], ["scheduler"]])("forbids %s/ from importing the planted bugs", (folder) => {
    const result = lint(
      `${folder}/example-lint.ts`,
      'import { plantedBugs } from "../raft/planted-bugs.ts";\nexport const b = plantedBugs;\n',
    );
    expect(result.ok).toBe(false);
    expect(result.output).toContain("tests only");
  });

  it("forbids the node host from importing the planted lease bugs, but not node/state/ itself", () => {
    const source = 'import { leasePlantedBugs } from "./state/planted-bugs.ts";\nexport const b = leasePlantedBugs;\n';
    expect(lint("node/example-lint.ts", source).ok).toBe(false);
    const inside = 'import { leasePlantedBugs } from "./planted-bugs.ts";\nexport const b = leasePlantedBugs;\n';
    expect(lint("node/state/example-lint.ts", inside).ok).toBe(true);
  });

  it("forbids chaos/ from importing the scheduler's code or the simulator, but not the client", () => {
    expect(lint("chaos/example-lint.ts", 'import { Bookings } from "../scheduler/bookings.ts";\nexport const b = Bookings;\n').ok).toBe(
      false,
    );
    expect(lint("chaos/example-lint.ts", 'import { runSchedule } from "../simulations/sim.ts";\nexport const r = runSchedule;\n').ok).toBe(
      false,
    );
    const client = lint("chaos/example-lint.ts", 'import { LockClient } from "../client/lock-client.ts";\nexport const c = LockClient;\n');
    expect(client.ok, client.output).toBe(true);
  });

  it.each([
    ["node/", 'import { LockNodeHost } from "../node/host.ts";\nexport const h = LockNodeHost;\n'],
    ["raft/", 'import { nodeId } from "../raft/index.ts";\nexport const n = nodeId;\n'],
    ["client/", 'import { LockClient } from "../client/lock-client.ts";\nexport const c = LockClient;\n'],
    ["scheduler/", 'import { ApiError } from "../scheduler/errors.ts";\nexport const e = ApiError;\n'],
  ])("forbids protocol/ from importing %s (it imports nothing of ours)", (_folder, source) => {
    const result = lint("protocol/example-lint.ts", source);
    expect(result.ok).toBe(false);
    expect(result.output).toContain("protocol/ is the wire contract");
  });

  it("lets protocol/ import zod and its own files, and every side import protocol/", () => {
    const own = 'import { z } from "zod";\nimport { nameLengthMax } from "./limits.ts";\nexport const s = z.string().max(nameLengthMax);\n';
    const inside = lint("protocol/example-lint.ts", own);
    expect(inside.ok, inside.output).toBe(true);
    for (const path of ["node/example-lint.ts", "node/state/example-lint.ts", "client/example-lint.ts", "scheduler/example-lint.ts"]) {
      const depth = path.split("/").length - 1;
      const source = `import { nameLengthMax } from "${"../".repeat(depth)}protocol/limits.ts";\nexport const n = nameLengthMax;\n`;
      const result = lint(path, source);
      expect(result.ok, `${path}: ${result.output}`).toBe(true);
    }
  });

  it("forbids raft/ from importing protocol/ too", () => {
    expect(
      lint("raft/example-lint.ts", 'import { nameLengthMax } from "../protocol/limits.ts";\nexport const n = nameLengthMax;\n').ok,
    ).toBe(false);
  });

  it("forbids scheduler/ from reaching past client/", () => {
    expect(lint("scheduler/example-lint.ts", 'import { RawNode } from "../raft/index.ts";\nexport const r = RawNode;\n').ok).toBe(false);
  });
});
