// ProcessCluster chooses every node's port before any node listens, so a port it has handed out
// still looks free: freePortIn must skip the ports already chosen (`taken`). Regression (npm run
// chaos, two histories of 45 at load 20): two nodes of one cluster got the same port, and the
// second died with EADDRINUSE. Shown on a range of two free ports, one of them taken: the other
// must come back every time (planted: ignoring `taken` returns the taken one about half the time).
import { describe, expect, it } from "vitest";
import { freePortIn } from "../harness/process-cluster.ts";

/** twoFreePorts finds two consecutive ports nothing listens on, below the ephemeral range (bounded). */
async function twoFreePorts(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const low = await freePortIn(20_000, 31_999);
    if ((await freePortIn(low + 1, low + 2).catch(() => undefined)) === low + 1) return low;
  }
  throw new Error("no two consecutive free ports found");
}

describe("freePortIn", () => {
  it("never hands out a port already taken, though nothing listens on it yet", async () => {
    const low = await twoFreePorts();
    for (let round = 0; round < 20; round++) expect(await freePortIn(low, low + 2, new Set([low]))).toBe(low + 1);
  });
});
