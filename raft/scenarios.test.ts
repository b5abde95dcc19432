// Runs every scenario script in raft/testdata/*.txt as its own test: each command's actual
// transcript must equal the one written under it (etcd-io/raft datadriven, TigerBeetle snaptest).
//
// To rewrite the expectations in place after a deliberate change of behaviour, run
//
//   UPDATE=1 npx vitest run raft-scenarios
//
// then read the diff (git diff raft/testdata) before committing: a transcript is only right if it
// shows correct Raft behaviour. The runner itself is pure and lives in raft/scenario.ts; this file
// only reads and writes the files (raft/ may not import node:*).

import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runScenario } from "./testing/scenario.ts";

const testdata = new URL("./testdata/", import.meta.url);
const { UPDATE } = process.env;
const update = UPDATE === "1";
const files = readdirSync(testdata)
  .filter((name) => name.endsWith(".txt"))
  .sort();

describe("raft scenarios (raft/testdata/*.txt)", () => {
  it("finds the scenario scripts", () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const name of files) {
    it(name, () => {
      const path = `raft/testdata/${name}`;
      const url = new URL(name, testdata);
      const expected = readFileSync(url, "utf8");
      const run = runScenario(path, expected);
      if (update) {
        if (run.text !== expected) writeFileSync(url, run.text);
        return;
      }
      const where = run.mismatches.map((line) => `${path}:${line}`).join(", ");
      const hint = "if the new transcript is right, rewrite with: UPDATE=1 npx vitest run raft-scenarios";
      expect(run.text, `transcripts differ at ${where || path} (${hint})`).toEqual(expected);
    });
  }
});
