// What crosses between the HTTP thread and the raft thread: errors keep their class and fields
// (the API maps a DriverError's or a WatchError's code to its HTTP status, and forwards a
// not_leader to the hinted leader), and the Outbox sends what one event-loop turn sent as one
// batch, in order. The threads themselves are exercised by every real-process test
// (harness/process-cluster.ts starts node/main.ts, which runs the raft thread).

import { describe, expect, it } from "vitest";
import { nodeId } from "../raft/index.ts";
import { CredentialRefusedError } from "./api-auth.ts";
import { DriverError } from "./driver/raft-driver.ts";
import { fromWireError, Outbox, toWireError } from "./raft-thread-protocol.ts";
import { WatchError } from "./watch-hub.ts";

/** crossed: an error as the other thread sees it (structured clone, as postMessage does). */
function crossed(error: unknown): Error {
  return fromWireError(structuredClone(toWireError(error)));
}

describe("errors between the threads", () => {
  it("a DriverError keeps its code, leader hint and drop reason", () => {
    const error = crossed(new DriverError("proposal_dropped", "the leader dropped the proposal: x", nodeId("n2"), "learner_not_caught_up"));
    expect(error).toBeInstanceOf(DriverError);
    expect(error).toMatchObject({ code: "proposal_dropped", leaderHint: "n2", dropReason: "learner_not_caught_up" });
    expect(error.message).toBe("the leader dropped the proposal: x");
    expect(crossed(new DriverError("not_leader", "not the leader", null))).toMatchObject({ code: "not_leader", leaderHint: null });
  });

  it("a WatchError keeps its code and details", () => {
    const error = crossed(new WatchError("events_compacted", "too old", { oldestIndex: 42 }));
    expect(error).toBeInstanceOf(WatchError);
    expect(error).toMatchObject({ code: "events_compacted", details: { oldestIndex: 42 } });
  });

  it("a refused credential keeps its code and the role the call needed (the API answers 401 or 403 by it)", () => {
    const error = crossed(new CredentialRefusedError("forbidden", "this needs the admin role", "admin"));
    expect(error).toBeInstanceOf(CredentialRefusedError);
    expect(error).toMatchObject({ code: "forbidden", role: "admin", message: "this needs the admin role" });
    expect(crossed(new CredentialRefusedError("unauthorized", "revoked", "reader"))).toMatchObject({ code: "unauthorized" });
  });

  it("anything else becomes an Error that says where it came from", () => {
    const error = crossed(new TypeError("boom"));
    expect(error).not.toBeInstanceOf(DriverError);
    expect(error.message).toBe("raft thread: boom");
    expect(crossed("a string").message).toBe("raft thread: a string");
  });
});

describe("Outbox", () => {
  it("sends what one turn sent as one batch, in order, and flush() sends at once", async () => {
    const batches: (readonly number[])[] = [];
    const outbox = new Outbox<number>((batch) => batches.push(batch));
    outbox.send(1);
    outbox.send(2);
    outbox.send(3);
    expect(batches).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toEqual([[1, 2, 3]]);
    outbox.send(4);
    outbox.flush();
    expect(batches).toEqual([[1, 2, 3], [4]]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(batches).toEqual([[1, 2, 3], [4]]); // Nothing twice, no empty batch.
  });
});
