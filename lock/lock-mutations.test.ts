// The lock state machine's model-based property must bite: each mutant below is a copy of lock/
// with one rule of lock-state-machine.ts broken, written under test-results/mutants/ (never into
// a source folder; tests/support/mutants.ts), imported, and checked against the reference model.
// The property must fail for every mutant, and pass for the unmodified machine
// (lock/lock-model.test.ts).

import { afterAll, describe, expect, it } from "vitest";
import { importMutant, removeMutants } from "../tests/support/mutants.ts";
import type { MachineClass } from "./testing/lock-model.ts";
import { checkAgainstModel } from "./testing/lock-model.ts";

/** Each mutant: its name, the text to replace, the replacement, and the file (lock/lock-state-machine.ts unless named). */
const mutants: [string, string, string, string?][] = [
  ["a release ignores the token", "if (lease === undefined || lease.token !== ref.token) {", "if (lease === undefined) {"],
  ["waiters are not served in FIFO order", "        for (const resource of waiter.resources) reserved.add(resource);\n", ""],
  [
    "a key accepts a lower token",
    "if (stored !== undefined && stored.token > token) {",
    "if (stored !== undefined && stored.token > token + 1_000_000) {",
  ],
  ["a retry is executed again", "if (cached !== undefined) return answer(cached);", ""],
  ["an expiry ignores the lease's version", "lease.version !== version", "false"],
  [
    "a cancelled wait does not wake later waiters",
    "const woken = this.grantWaiters(index); // Its reservations",
    "const woken = { events: [], resolved: [] }; // Its reservations",
  ],
  [
    "a queued request's answer is never updated",
    "if (record?.results.has(session.sequence)) record.results.set(session.sequence, result);",
    "",
  ],
  [
    "a txn ignores its guards",
    "if (lease === undefined || lease.token !== guard.token) {",
    "if (lease === undefined && guard.token < 0) {",
  ],
  ["a put may overwrite a chain record", "if (operation.key.startsWith(chainKeyPrefix)) return", "if (operation.key.length < 0) return"],
  ["an append does not advance its chain's head", "this.chainHeads.set(chain, { seq: created.seq, hash: created.hash });", ""],
  [
    "a restore forgets the chain heads",
    "for (const [chain, head] of snapshot.chains ?? []) machine.chainHeads.set(chain, { ...head });",
    "",
  ],
  [
    "a command sent with a revoked token is applied",
    "if (refusal !== undefined) return answer(rejected(refusal.code, refusal.message));\n        return this.applyWithSession",
    "return this.applyWithSession",
  ],
  [
    "a credential's role is not checked",
    "if (!roleIncludes(credential.role, needed)) {",
    "if (credential.role === undefined) {",
    "lock/credentials.ts",
  ],
  ["a rotation leaves the old token working", "    this.remove(old);\n    const credential", "    const credential", "lock/credentials.ts"],
  [
    "a revocation leaves the waits queued under its token",
    "const ended = this.endWaitsUnder(index, change.retiredIndex);",
    "const ended = { events: [], resolved: [] };",
  ],
  [
    "a restore forgets the credentials",
    "machine.credentials = CredentialTable.restore(snapshot.credentials ?? [], limits.credentialsMax);",
    "",
  ],
];

afterAll(() => removeMutants());

describe("the model-based property catches each broken lock state machine", () => {
  it.each(mutants)("mutant: %s", async (_name, original, replacement, file = "lock/lock-state-machine.ts") => {
    const mutant = await importMutant<{ LockStateMachine: MachineClass }>("lock", "lock-state-machine.ts", { file, original, replacement });
    expect(() => checkAgainstModel(mutant.LockStateMachine, 400, 3)).toThrow();
  });
});
