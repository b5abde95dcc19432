// clusterError maps every LockErrorCode to the booking API's codes, and none that a caller can
// cause is a 500: a cluster 400 is the caller's 400 (issue 14: long ids and cursors used to come
// back as 500 internal). Only the scheduler's own misconfiguration (a wrong cluster token, a node
// without the endpoint) is the server's error.

import { describe, expect, it } from "vitest";
import { LockError, type LockErrorCode } from "../client/lock-client.ts";
import type { statusOfCode } from "./errors.ts";
import { clusterError } from "./records.ts";

const expected: Record<LockErrorCode, keyof typeof statusOfCode> = {
  conflict: "slot_busy",
  wait_timeout: "slot_busy",
  stale_fencing_token: "lease_lost",
  not_held: "lease_lost",
  lease_expired: "lease_lost",
  invalid_request: "invalid_request",
  too_many_waiters: "cluster_unavailable",
  too_many_watchers: "cluster_unavailable",
  events_compacted: "cluster_unavailable",
  timeout: "cluster_unavailable",
  unavailable: "cluster_unavailable",
  aborted: "cluster_unavailable",
  session_expired: "cluster_unavailable",
  stale_sequence: "cluster_unavailable",
  unauthorized: "internal",
  not_found: "internal",
};

describe("clusterError", () => {
  it.each(Object.entries(expected))("maps the cluster's %s to %s", (code, apiCode) => {
    const mapped = clusterError(new LockError(code as LockErrorCode, "node said so"), "reading a scientist");
    expect(mapped.code).toBe(apiCode);
    expect(mapped.message).toContain("reading a scientist");
  });

  it("answers a cluster 400 as the caller's 400", () => {
    const mapped = clusterError(new LockError("invalid_request", "invalid request: key: Too big"), "reading a scientist");
    expect([mapped.status, mapped.code]).toEqual([400, "invalid_request"]);
  });
});
