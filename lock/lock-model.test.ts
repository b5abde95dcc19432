// Model-based property test of the lock state machine (fast-check commands, see lock-model.ts):
// random sequences of acquire (with and without waiting, one or several resources), renew,
// release, expire, cancel, fenced txn, retries of earlier requests and snapshot/restore run
// against the real state machine and a simple reference model; after every step they must agree
// on the answer and on the whole state, and the lease invariants must hold.
// scripts/lock-mutations.test.ts shows that this property catches broken copies of the machine.

import { describe, it } from "vitest";
import { LockStateMachine } from "./lock-state-machine.ts";
import { checkAgainstModel } from "./testing/lock-model.ts";

describe("the lock state machine against its reference model", () => {
  it("agrees with the model on every answer and every state, and keeps the lease invariants", () => {
    checkAgainstModel(LockStateMachine, 400, 3);
  });
});
