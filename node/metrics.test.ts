// NodeMetrics in one process: frames refused from a peer are counted by peer and code
// (sctec_peer_frames_rejected_total), so a follower that refuses its leader's entries shows on a
// dashboard, not only in its log (issue 14). The rest of /metrics is shown on real processes in
// tests/metrics.test.ts.

import { describe, expect, it } from "vitest";
import { parsePrometheusText } from "../harness/prometheus-text.ts";
import { nodeId, type Status } from "../raft/index.ts";
import { NodeMetrics } from "./metrics.ts";

describe("NodeMetrics", () => {
  it("counts refused peer frames by peer and code", async () => {
    const status = {
      id: nodeId("n1"),
      role: "follower",
      term: 1,
      commitIndex: 0,
      appliedIndex: 0,
      lastIndex: 0,
      snapshotIndex: 0,
      voters: [],
    };
    const metrics = new NodeMetrics({
      nodeId: "n1",
      appendsTrackedMax: 10,
      source: { status: () => status as unknown as Status, leaseCounts: () => ({ leases: 0, waiters: 0 }) },
    });
    metrics.frameRejected("n2", "invalid_entry");
    metrics.frameRejected("n2", "invalid_entry");
    metrics.frameRejected("n3", "malformed_frame");
    const text = parsePrometheusText(await metrics.text());
    expect(text.sum("sctec_peer_frames_rejected_total", { peer: "n2", code: "invalid_entry" })).toBe(2);
    expect(text.sum("sctec_peer_frames_rejected_total", { peer: "n3", code: "malformed_frame" })).toBe(1);
    expect(text.sum("sctec_peer_frames_rejected_total")).toBe(3);
  });
});
