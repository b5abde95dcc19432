// clusterError maps every LockErrorCode to the booking API's codes, and none that a caller can
// cause is a 500: a cluster 400 is the caller's 400 (issue 14: long ids and cursors used to come
// back as 500 internal). Only the scheduler's own misconfiguration (a wrong cluster token, a node
// without the endpoint, a node of another contract) is the server's error. The table below must
// name every LockErrorCode (the type checker holds it to that, as it holds clusterError's switch),
// and the codes a node answers with are followed from the node's own code through the client to
// the booking API's answer.

import { describe, expect, it } from "vitest";
import { LockError, type LockErrorCode, lockErrorCodeOf, lockErrorCodes } from "../client/lock-client.ts";
import { type ErrorCode, errorCodes } from "../protocol/errors.ts";
import { clusterError, type statusOfCode } from "./errors.ts";

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
  forbidden: "internal",
  not_found: "internal",
  internal: "cluster_unavailable",
  unsupported_media_type: "cluster_unavailable",
  learner_not_caught_up: "cluster_unavailable",
  credential_exists: "cluster_unavailable",
  unknown_credential: "cluster_unavailable",
  too_many_credentials: "cluster_unavailable",
  unknown: "cluster_unavailable",
  invalid_answer: "internal",
  overloaded: "overloaded",
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

  it("covers every LockErrorCode the client can throw", () => {
    expect(Object.keys(expected).sort()).toEqual([...lockErrorCodes].sort());
  });

  // What a booking caller was answered before the wire contract kept each node code (issue 15):
  // the client then folded every code it did not list into `unavailable`, and 400 and 413 into
  // `invalid_request`. The booking API's answers stay exactly these, but for one change made on
  // purpose (issue 17): a node's `overloaded` is the booking API's own 503 `overloaded`, with the
  // node's wait passed on in Retry-After, instead of `cluster_unavailable`.
  const answeredBefore: Record<ErrorCode, keyof typeof statusOfCode> = {
    conflict: "slot_busy",
    not_held: "lease_lost",
    stale_fencing_token: "lease_lost",
    wait_timeout: "slot_busy",
    stale_sequence: "cluster_unavailable",
    session_expired: "cluster_unavailable",
    too_many_waiters: "cluster_unavailable",
    invalid_command: "invalid_request",
    too_many_watchers: "cluster_unavailable",
    events_compacted: "cluster_unavailable",
    not_leader: "cluster_unavailable",
    proposal_dropped: "cluster_unavailable",
    leadership_lost: "cluster_unavailable",
    shutting_down: "cluster_unavailable",
    overloaded: "overloaded",
    disk_full: "cluster_unavailable",
    timeout: "cluster_unavailable",
    invalid_request: "invalid_request",
    unauthorized: "internal",
    not_found: "internal",
    payload_too_large: "invalid_request",
    unsupported_media_type: "cluster_unavailable",
    learner_not_caught_up: "cluster_unavailable",
    no_leader: "cluster_unavailable",
    internal: "cluster_unavailable",
    // Issue 20's codes, new since: a token the cluster refuses is the scheduler's own setup, and
    // the credential calls are never the booking API's.
    forbidden: "internal",
    credential_exists: "cluster_unavailable",
    unknown_credential: "cluster_unavailable",
    too_many_credentials: "cluster_unavailable",
  };
  it.each(errorCodes.map((code) => [code]))("answers a node's %s as it did before the contract kept it", (code) => {
    const mapped = clusterError(new LockError(lockErrorCodeOf[code], "node said so", { nodeCode: code }), "booking");
    expect(mapped.code).toBe(answeredBefore[code]);
  });

  it("passes an overloaded cluster's wait on to the caller (503 overloaded, details.retryAfterMs)", () => {
    const asked = clusterError(new LockError("overloaded", "shed", { nodeCode: "overloaded", details: { retryAfterMs: 2500 } }), "booking");
    expect([asked.status, asked.code, asked.details]).toEqual([503, "overloaded", { retryAfterMs: 2500 }]);
    const unsaid = clusterError(new LockError("overloaded", "shed", { nodeCode: "overloaded" }), "booking");
    expect(unsaid.details).toEqual({ retryAfterMs: 1000 });
  });

  it("names a code the scheduler does not know in its answer, and asks the caller to retry", () => {
    const mapped = clusterError(
      new LockError("unknown", "quorum_sulking: try later", { nodeCode: "quorum_sulking", status: 409 }),
      "booking",
    );
    expect([mapped.status, mapped.code]).toEqual([503, "cluster_unavailable"]);
    expect(mapped.message).toContain("quorum_sulking");
  });
});
