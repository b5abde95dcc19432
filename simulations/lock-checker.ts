// LockChecker watches the committed lock history: the first application of each log index anywhere
// (which, by State Machine Safety, every node applies alike). On every entry it checks the lock
// properties that the log alone decides:
//
// - rising tokens: the fencing tokens granted for a resource strictly increase;
// - one holder in the log: a resource is never granted while the log says it is held;
// - a stale fenced write is refused: a txn whose guard is not the resource's current lease must be
//   rejected (stale_fencing_token), never applied. Refusals are counted, and accepted stale writes fail the run;
// - exactly-once: a command repeated with the same session (a client's retry) is answered with the
//   first answer (or the resolution of a queued acquire), never applied a second time.
//
// Lease safety in time (no two clients believe they hold a lease at one instant) is checked by the
// simulated clients (clients.ts), which know what each client believes.

import { decodeCommand } from "../lock/codec.ts";
import type { Applied } from "../lock/lock-state-machine.ts";
import type { LockCommand, LockResult } from "../lock/types.ts";
import type { ViolationKind } from "./checker.ts";

export class LockChecker {
  grants = 0;
  staleWritesRefused = 0;
  staleWritesAttempted = 0;
  duplicatesAnswered = 0;
  /** holder: the current lease token of each held resource, as the log says. */
  private readonly holder = new Map<string, number>();
  private readonly lastToken = new Map<string, number>();
  /** answers: each session request's answer ("client#sequence" → result JSON), updated when a queued acquire resolves. */
  private readonly answers = new Map<string, string>();
  private readonly fail: (kind: ViolationKind, message: string) => void;

  constructor(fail: (kind: ViolationKind, message: string) => void) {
    this.fail = fail;
  }

  /** firstApplied: entry `index` was applied for the first time anywhere, with `data` and what it produced. */
  firstApplied(index: number, data: Uint8Array, applied: Applied): void {
    const command = decodeCommand(data);
    if (command.type === "txn") this.checkFencedWrite(index, command, applied.result);
    this.checkSession(index, command, applied.result);
    for (const event of applied.events) {
      if (event.type === "granted") {
        this.grants++;
        const held = this.holder.get(event.resource);
        if (held !== undefined)
          this.fail("grant_while_held", `${event.resource} granted at ${index} (token ${event.token}) while token ${held} holds it`);
        const last = this.lastToken.get(event.resource) ?? 0;
        if (!(event.token > last)) this.fail("token_order", `${event.resource} granted with token ${event.token} after token ${last}`);
        this.lastToken.set(event.resource, event.token);
        this.holder.set(event.resource, event.token);
      } else if (event.type === "released" || event.type === "expired") {
        if (this.holder.get(event.resource) === event.token) this.holder.delete(event.resource);
      }
    }
    for (const resolved of applied.resolvedWaiters) {
      if (resolved.session !== undefined) this.answers.set(sessionKey(resolved.session), JSON.stringify(resolved.result));
    }
  }

  private checkFencedWrite(index: number, command: Extract<LockCommand, { type: "txn" }>, result: LockResult): void {
    const stale = command.guards.find((guard) => this.holder.get(guard.resource) !== guard.token);
    if (stale === undefined) return;
    if (result.status === "rejected" && result.code === "stale_sequence") return; // A replay, refused before the guards are looked at.
    if (this.answers.has(sessionKey(command.session))) return; // A retry: answered from the session (checked below).
    this.staleWritesAttempted++;
    if (result.status === "committed") {
      this.fail(
        "stale_write_accepted",
        `txn at ${index} guarded by ${stale.resource}@${stale.token} was applied, but ${stale.resource} is ${this.holder.has(stale.resource) ? `held by token ${this.holder.get(stale.resource)}` : "not held"}`,
      );
    } else if (result.status === "rejected" && result.code === "stale_fencing_token") {
      this.staleWritesRefused++;
    }
  }

  private checkSession(index: number, command: LockCommand, result: LockResult): void {
    // The leader's own commands and the credentials' carry no session.
    if (command.type !== "acquire" && command.type !== "renew" && command.type !== "release" && command.type !== "txn") return;
    if (command.session === undefined) return;
    const key = sessionKey(command.session);
    const answer = JSON.stringify(result);
    const first = this.answers.get(key);
    if (first === undefined) {
      this.answers.set(key, answer);
      return;
    }
    this.duplicatesAnswered++;
    // A retry may also find its session's answer evicted (bounded per session): a refusal, not a second application.
    if (result.status === "rejected" && (result.code === "stale_sequence" || result.code === "session_expired")) return;
    if (answer !== first) {
      this.fail("exactly_once", `${key} applied again at ${index} with answer ${answer}; its first answer was ${first}`);
    }
  }
}

function sessionKey(session: { clientId: string; sequence: number } | undefined): string {
  return session === undefined ? "" : `${session.clientId}#${session.sequence}`;
}
