// The documentation must match the code: raft/README.md's example is raft/example.ts verbatim,
// and it runs and does what the README says it does.
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { runThreeNodeExample } from "../raft/example.ts";

const read = (path: string): string => readFileSync(new URL(`../${path}`, import.meta.url), "utf8");

it("raft/README.md shows raft/example.ts verbatim", () => {
  const readme = read("raft/README.md");
  const example = read("raft/example.ts");
  const code = example.slice(example.indexOf("import {"));
  const block = /```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  expect(block).toBe(code);
});

it("the raft/README.md example elects a leader and applies a proposal on every node", () => {
  const applied = runThreeNodeExample();
  expect(applied).toHaveLength(3);
  expect(applied.sort()).toEqual(["n1 applied hello at 5", "n2 applied hello at 5", "n3 applied hello at 5"]);
});

it("the README starts with the two commands for a fresh clone", () => {
  const readme = read("README.md");
  const firstBlock = /```(?:sh|bash)?\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
  expect(firstBlock).toContain("npm install && npm start");
  expect(firstBlock).toContain("npm test");
});

it("README.md's lease example is client/example.ts verbatim (the import path from the repository root)", () => {
  const readme = read("README.md");
  const example = read("client/example.ts");
  const code = example.slice(example.indexOf("import {")).replace('from "./lock-client.ts"', 'from "./client/lock-client.ts"');
  const section = readme.slice(readme.indexOf("## Take a lock from code"));
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  expect(block).toBe(code);
});
