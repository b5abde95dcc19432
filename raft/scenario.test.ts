// The scenario runner's own behaviour: it reproduces a script whose transcripts are right, fills
// in and replaces wrong ones, and fails with file and line on a mistake in the script. The
// scripts themselves (raft/testdata/*.txt) run from scripts/raft-scenarios.test.ts, which does
// the file I/O that raft/ may not.
import { describe, expect, it } from "vitest";
import { runScenario, ScenarioError } from "./testing/scenario.ts";

const script = `# Three servers elect n1.
add-nodes 3
----
n1 role=follower term=1 vote=none leader=none commit=3
n2 role=follower term=1 vote=none leader=none commit=3
n3 role=follower term=1 vote=none leader=none commit=3

campaign 1
----
n1 role=pre_candidate
`;

describe("runScenario", () => {
  it("returns a script unchanged when every transcript matches", () => {
    const run = runScenario("t.txt", script);
    expect(run.text).toEqual(script);
    expect(run.mismatches).toEqual([]);
  });

  it("replaces a wrong transcript and reports the command's line", () => {
    const run = runScenario("t.txt", script.replace("n1 role=pre_candidate", "n1 role=leader"));
    expect(run.text).toEqual(script);
    expect(run.mismatches).toEqual([8]);
  });

  it("fills in a transcript that was never written", () => {
    const run = runScenario("t.txt", "add-nodes 1\n\nraft-state\n");
    expect(run.text).toEqual(
      "add-nodes 1\n----\nn1 role=follower term=1 vote=none leader=none commit=1\n\n" +
        "raft-state\n----\nn1: follower term=1 vote=none leader=none commit=1 applied=0 last=1 voters=(n1) learners=()\n",
    );
    expect(run.mismatches).toEqual([1, 3]);
  });

  it.each([
    ["an unknown command", "add-nodes 1\n----\nok\n\nfly 1\n----\nok\n", "t.txt:5: unknown command"],
    ["an unknown argument", "add-nodes 1 colour=red\n----\nok\n", "t.txt:1: add-nodes: unknown config key colour"],
    ["a missing argument", "add-nodes 2\n----\nok\n\n# comment\npropose 1\n----\nok\n", "t.txt:6: propose: missing argument DATA"],
    ["an unknown node", "add-nodes 2\n----\nok\n\ncampaign 7\n----\nok\n", "t.txt:5: campaign: no node 7"],
    ["a command before add-nodes", "stabilize\n----\nok\n", "t.txt:1: stabilize: no cluster yet"],
    ["a bad count", "add-nodes 1\n----\nok\n\ntick all count=x\n----\nok\n", "t.txt:5: tick: count=x must be an integer"],
  ])("fails with file and line on %s", (_, text, message) => {
    expect(() => runScenario("t.txt", text)).toThrow(ScenarioError);
    expect(() => runScenario("t.txt", text)).toThrow(message);
  });

  it("turns a failure inside the core into a ScenarioError with the line", () => {
    const text = "add-nodes 1\n----\nok\n\ncompact 1\n----\nok\n";
    expect(() => runScenario("t.txt", text)).toThrow("t.txt:5: compact failed: RaftInvariantError");
  });
});
