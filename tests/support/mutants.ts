// Planted bugs without a branch in production code: a mutant is a copy of a whole source folder
// with one text replaced, written under test-results/mutants/ (never into a source folder), and
// imported from there. The folder's relative imports resolve inside the copy; package imports
// resolve from the repository's node_modules, which is above test-results/.

import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const repositoryRoot = fileURLToPath(new URL("../..", import.meta.url));
const mutantsRoot = join(repositoryRoot, "test-results", "mutants");
let made = 0;

/** Mutation: replace `original` (which must occur exactly once) by `replacement` in `file` (a path from the repository root). */
export interface Mutation {
  readonly file: string;
  readonly original: string;
  readonly replacement: string;
}

/**
 * importMutant copies `folder` (from the repository root, e.g. "client"), applies the mutation,
 * (or mutations) and imports `entry` (a path inside the folder) from the copy. It throws if a
 * mutation target does not occur exactly once, so a mutant never silently equals the original.
 */
export async function importMutant<T>(folder: string, entry: string, mutation: Mutation | readonly Mutation[]): Promise<T> {
  const copy = join(mutantsRoot, `${process.pid}-${made++}`, folder);
  mkdirSync(copy, { recursive: true });
  cpSync(join(repositoryRoot, folder), copy, { recursive: true, filter: (source) => !source.endsWith(".test.ts") });
  pointOutside(join(repositoryRoot, folder), copy);
  // Several replacements make one mutant when a bug spans more than one place (each must occur once).
  for (const one of Array.isArray(mutation) ? mutation : [mutation]) {
    const target = join(copy, relative(folder, one.file));
    const source = readFileSync(target, "utf8");
    const occurrences = source.split(one.original).length - 1;
    if (occurrences !== 1) throw new Error(`the mutation target occurs ${occurrences} times in ${one.file}: ${one.original}`);
    writeFileSync(target, source.replace(one.original, one.replacement));
  }
  return (await import(pathToFileURL(join(copy, entry)).href)) as T;
}

/**
 * pointOutside rewrites, in every file of the copy, the relative imports that leave the copied
 * folder (`../raft/assert.ts` from lock/) to the repository's files, which the copy does not hold.
 */
function pointOutside(original: string, copy: string): void {
  for (const entry of readdirSync(copy, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".ts")) continue;
    const copied = join(entry.parentPath, entry.name);
    const originalDirectory = join(original, relative(copy, entry.parentPath));
    const source = readFileSync(copied, "utf8");
    const rewritten = source.replace(/(from\s+["'])(\.\.?\/[^"']+)(["'])/g, (whole, before: string, specifier: string, after: string) => {
      const target = resolve(originalDirectory, specifier);
      return target.startsWith(`${original}/`) ? whole : `${before}${pathToFileURL(target).href}${after}`;
    });
    if (rewritten !== source) writeFileSync(copied, rewritten);
  }
}

/** removeMutants deletes this process's copies. */
export function removeMutants(): void {
  for (let index = 0; index < made; index++) rmSync(join(mutantsRoot, `${process.pid}-${index}`), { recursive: true, force: true });
}
