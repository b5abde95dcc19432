// Smoke test: three cores elect a leader and replicate a proposal to everyone.
import { describe, expect, it } from "vitest";
import { TestCluster } from "./testing/test-cluster.ts";

describe("a three-node cluster", () => {
  it("elects one leader and applies a proposal everywhere", () => {
    const cluster = new TestCluster({ size: 3 });
    cluster.campaign("n1");
    cluster.stabilize();
    expect(cluster.node("n1").rawNode.status().role).toBe("leader");
    const outcome = cluster.propose("n1", "hello");
    expect(outcome.kind).toBe("accepted");
    cluster.stabilize();
    cluster.tick(cluster.ids(), 4);
    cluster.stabilize();
    for (const id of cluster.ids()) expect(cluster.node(id).appliedData).toEqual(["hello"]);
  });

  it("elects a leader by timeouts alone", () => {
    const cluster = new TestCluster({ size: 3 });
    for (let round = 0; round < 100 && cluster.leader() === undefined; round++) {
      cluster.tick();
      cluster.stabilize();
    }
    expect(cluster.leader()).toBeDefined();
  });
});
