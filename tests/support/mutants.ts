// Planted bugs without a branch in production code: a mutant is a copy of a whole source folder
// with one text replaced, written under test-results/mutants/ (never into a source folder), and
// imported from there. The folder's relative imports resolve inside the copy; package imports
// resolve from the repository's node_modules, which is above test-results/.

import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
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
 * and imports `entry` (a path inside the folder) from the copy. It throws if the mutation target
 * does not occur exactly once, so a mutant never silently equals the original.
 */
export async function importMutant<T>(folder: string, entry: string, mutation: Mutation): Promise<T> {
  const copy = join(mutantsRoot, `${process.pid}-${made++}`, folder);
  mkdirSync(copy, { recursive: true });
  cpSync(join(repositoryRoot, folder), copy, { recursive: true, filter: (source) => !source.endsWith(".test.ts") });
  const target = join(copy, relative(folder, mutation.file));
  const source = readFileSync(target, "utf8");
  const occurrences = source.split(mutation.original).length - 1;
  if (occurrences !== 1) throw new Error(`the mutation target occurs ${occurrences} times in ${mutation.file}: ${mutation.original}`);
  writeFileSync(target, source.replace(mutation.original, mutation.replacement));
  return (await import(pathToFileURL(join(copy, entry)).href)) as T;
}

/** removeMutants deletes this process's copies. */
export function removeMutants(): void {
  for (let index = 0; index < made; index++) rmSync(join(mutantsRoot, `${process.pid}-${index}`), { recursive: true, force: true });
}
