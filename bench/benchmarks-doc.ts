// Each benchmark writes its latest table into docs/BENCHMARKS.md, between its own markers
// (`<!-- bench:<name>:start -->` … `<!-- bench:<name>:end -->`), leaving the rest of the page alone.

import { readFileSync, writeFileSync } from "node:fs";

/** updateBenchmarksDoc replaces the text between the markers of benchmark `name` in docs/BENCHMARKS.md. */
export function updateBenchmarksDoc(name: string, text: string, path = "docs/BENCHMARKS.md"): void {
  const doc = readFileSync(path, "utf8");
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const from = doc.indexOf(start);
  const to = doc.indexOf(end);
  if (from < 0 || to < 0) {
    console.log(`(no ${start} markers in ${path}: not updated)`);
    return;
  }
  writeFileSync(path, `${doc.slice(0, from + start.length)}\n${text}\n${doc.slice(to)}`);
  console.log(`updated ${path}`);
}
