// The processes a run starts are the compiled build, as the container image runs them
// (tsconfig.build.json, the Dockerfile's steps): the node and the scheduler compiled to plain
// JavaScript once per run, with their static files beside them. Starting them costs about half of
// what starting them through tsx does (which compiles every module at every start), and a history
// starts and restarts processes many times; and it is the build a user ships.

import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { join, resolve } from "node:path";

export interface BuiltCommands {
  /** node / scheduler: what `node` runs for each (the arguments after the executable). */
  readonly node: readonly string[];
  readonly scheduler: readonly string[];
}

/**
 * buildProcesses compiles the node and the scheduler into `outDir`. Their packages resolve through
 * a link to the repository's node_modules in `outDir`: `--out` may name a directory outside the
 * repository (a run with `--out /elsewhere` once started nodes that could not find pino, and every
 * history failed to start).
 */
export function buildProcesses(outDir: string): BuiltCommands {
  mkdirSync(outDir, { recursive: true });
  const packages = join(outDir, "node_modules");
  if (!existsSync(packages)) symlinkSync(resolve("node_modules"), packages, "dir");
  const compiled = spawnSync("npx", ["tsc", "-p", "tsconfig.build.json", "--outDir", outDir], { encoding: "utf8", timeout: 300_000 });
  if (compiled.status !== 0) {
    throw new Error(
      `tsc -p tsconfig.build.json failed (exit ${compiled.status}): ${`${compiled.stdout}${compiled.stderr}`.trim().slice(0, 2000)}`,
    );
  }
  // The static files the two processes serve, as the Dockerfile copies them: the status page, and
  // the booking page's .html, .css and .js (not its tests).
  cpSync(join("node", "status", "page"), join(outDir, "node", "status", "page"), { recursive: true });
  const web = join("scheduler", "web");
  mkdirSync(join(outDir, web), { recursive: true });
  for (const name of readdirSync(web)) {
    if (/\.(html|css|js)$/.test(name) && !name.endsWith(".test.js")) cpSync(join(web, name), join(outDir, web, name));
  }
  // As in the image, the planted bugs' code stays out (only their types are needed to compile).
  for (const folder of ["raft", "lock"]) {
    for (const name of readdirSync(join(outDir, folder))) if (name.startsWith("planted-bugs.js")) rmSync(join(outDir, folder, name));
  }
  const node = join(outDir, "node", "main.js");
  const scheduler = join(outDir, "scheduler", "main.js");
  for (const file of [node, scheduler]) if (!existsSync(file)) throw new Error(`the build has no ${file}`);
  return { node: [node], scheduler: [scheduler] };
}
