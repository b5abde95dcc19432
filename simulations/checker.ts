// SafetyChecker watches a simulated cluster from outside, the way only a simulator can: it sees
// every election, every applied entry and every node's log, and records the first violation of
// the Raft safety properties (Figure 3 of the paper) or of read linearizability.
//
// It keeps, per log index, the term and content of the first entry any node applied there, and
// per snapshot index the content of the first snapshot any node wrote there. Every later apply, snapshot install and new leader is checked against that
// record, so each check costs O(1) per event (O(log suffix) per election) and can run on every
// tick of every schedule.

import type { Entry, LogIndex, Term } from "../raft/messages.ts";

export type ViolationKind =
  | "election_safety"
  | "leader_completeness"
  | "state_machine_safety"
  | "log_matching"
  | "apply_order"
  | "stale_read"
  | "wrong_apply"
  | "liveness"
  | "invariant"
  | "double_holder"
  | "token_order"
  | "grant_while_held"
  | "stale_write_accepted"
  | "exactly_once"
  | "durability"
  | "node_error";

export interface Violation {
  readonly kind: ViolationKind;
  readonly tick: number;
  readonly message: string;
}

export class SafetyChecker {
  violation: Violation | undefined = undefined;
  /** acknowledgedIndexMax is the highest index of a command whose client got a success. */
  acknowledgedIndexMax: LogIndex = 0;
  private appliedIndexMax: LogIndex = 0;
  private readonly leaderOfTerm = new Map<Term, string>();
  private readonly termAt: Term[] = [];
  private readonly keyAt: number[] = [];
  /** snapshotAt: the checksum of the first snapshot written at each index (every other must equal it). */
  private readonly snapshotAt = new Map<LogIndex, number>();
  /** applyTermMinAt: the lowest current term of any node when it applied each index. */
  private readonly applyTermMinAt: Term[] = [];

  fail(kind: ViolationKind, tick: number, message: string): void {
    if (this.violation === undefined) this.violation = { kind, tick, message };
  }

  assertTrue(condition: boolean, tick: number, kind: ViolationKind, message: string): void {
    if (!condition) this.fail(kind, tick, message);
  }

  /** leaderElected checks Election Safety: at most one leader per term. */
  leaderElected(tick: number, id: string, term: Term): void {
    const previous = this.leaderOfTerm.get(term);
    if (previous !== undefined && previous !== id) {
      this.fail("election_safety", tick, `two leaders in term ${term}: ${previous} and ${id}`);
      return;
    }
    this.leaderOfTerm.set(term, id);
  }

  /**
   * checkLeaderCompleteness is §5.4's Leader Completeness: an entry committed in term c is in the
   * log of every leader of a term above c. A leader of an older term can still be elected later
   * in real time (its votes were delayed) and need not hold it. We do not see in which term an
   * entry was committed, but no node can apply it before a leader of that term committed it, so
   * the lowest term any node was in when applying it bounds the commit term from above: the
   * check covers leaders of higher terms, and never accuses a correct cluster.
   */
  checkLeaderCompleteness(
    tick: number,
    id: string,
    leaderTerm: Term,
    snapshotIndex: LogIndex,
    lastIndex: LogIndex,
    termOf: (index: LogIndex) => Term | undefined,
  ): void {
    for (let index = snapshotIndex + 1; index <= this.appliedIndexMax; index++) {
      const committedTerm = this.termAt[index];
      if (committedTerm === undefined) continue; // No node applied this index one by one (all jumped it by snapshot).
      if ((this.applyTermMinAt[index] as Term) >= leaderTerm) continue; // Perhaps committed in this term or later.
      const term = index <= lastIndex ? termOf(index) : undefined;
      if (term !== committedTerm) {
        const acknowledged = index <= this.acknowledgedIndexMax ? " (an acknowledged write is lost)" : "";
        this.fail(
          "leader_completeness",
          tick,
          `leader ${id} lacks committed entry ${index}@${committedTerm} (it has ${term === undefined ? "nothing" : `term ${term}`})${acknowledged}`,
        );
        return;
      }
    }
  }

  assertNextApply(tick: number, id: string, appliedIndex: LogIndex, index: LogIndex): void {
    if (index !== appliedIndex + 1) this.fail("apply_order", tick, `${id} applied ${index} right after ${appliedIndex}`);
  }

  /**
   * applied checks State Machine Safety: no two nodes apply different entries at one index (`key`
   * is a checksum of the entry's content). `nodeTerm` is the applying node's current term (see
   * checkLeaderCompleteness). Returns whether this was the first apply of `index` anywhere.
   */
  applied(tick: number, id: string, index: LogIndex, term: Term, key: number, nodeTerm: Term): boolean {
    const applyTermMin = this.applyTermMinAt[index];
    if (applyTermMin === undefined || nodeTerm < applyTermMin) this.applyTermMinAt[index] = nodeTerm;
    const recordedTerm = this.termAt[index];
    if (recordedTerm === undefined) {
      this.termAt[index] = term;
      this.keyAt[index] = key;
      if (index > this.appliedIndexMax) this.appliedIndexMax = index;
      return true;
    }
    if (recordedTerm !== term || this.keyAt[index] !== key) {
      this.fail(
        "state_machine_safety",
        tick,
        `${id} applied entry ${index}@${term} (content ${key.toString(16)}), where ${index}@${recordedTerm} (content ${(this.keyAt[index] as number).toString(16)}) was applied before`,
      );
    }
    return false;
  }

  /** termApplied: the term of the entry applied at `index` (undefined if none was). */
  termApplied(index: LogIndex): Term | undefined {
    return this.termAt[index];
  }

  /** snapshotWritten: every snapshot at one index (taken by a node or received) must hold the same state. */
  snapshotWritten(tick: number, id: string, index: LogIndex, checksum: number): void {
    const recorded = this.snapshotAt.get(index);
    if (recorded === undefined) {
      this.snapshotAt.set(index, checksum);
      return;
    }
    if (recorded !== checksum) {
      this.fail("state_machine_safety", tick, `${id} wrote a snapshot at ${index} whose state differs from another node's snapshot there`);
    }
  }

  /** hasApplied reports whether some node already applied `index`. */
  hasApplied(index: LogIndex): boolean {
    return this.termAt[index] !== undefined;
  }

  acknowledged(index: LogIndex): void {
    if (index > this.acknowledgedIndexMax) this.acknowledgedIndexMax = index;
  }

  /**
   * checkLogMatching checks the Log Matching property pairwise: if two logs hold an entry with
   * the same index and term, they are identical up to that index (over the range both still hold).
   */
  checkLogMatching(tick: number, logs: readonly { id: string; entries: readonly Entry[] }[]): void {
    for (const [position, a] of logs.entries()) {
      for (const b of logs.slice(position + 1)) {
        const problem = logMatchingProblem(a.entries, b.entries);
        if (problem !== undefined) {
          this.fail("log_matching", tick, `${a.id} and ${b.id}: ${problem}`);
          return;
        }
      }
    }
  }
}

function logMatchingProblem(a: readonly Entry[], b: readonly Entry[]): string | undefined {
  const firstA = a[0]?.index ?? 0;
  const firstB = b[0]?.index ?? 0;
  const lo = Math.max(firstA, firstB);
  const hi = Math.min(firstA + a.length, firstB + b.length) - 1;
  let highestMatch = -1;
  for (let index = hi; index >= lo; index--) {
    if ((a[index - firstA] as Entry).term === (b[index - firstB] as Entry).term) {
      highestMatch = index;
      break;
    }
  }
  for (let index = lo; index <= highestMatch; index++) {
    const entryA = a[index - firstA] as Entry;
    const entryB = b[index - firstB] as Entry;
    if (entryA.term !== entryB.term || !sameContent(entryA, entryB)) {
      return `they agree at ${highestMatch} but differ at ${index} (${entryA.index}@${entryA.term} vs ${entryB.index}@${entryB.term})`;
    }
  }
  return undefined;
}

function sameContent(a: Entry, b: Entry): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === "normal" && b.kind === "normal") {
    if (a.data.byteLength !== b.data.byteLength) return false;
    for (let position = 0; position < a.data.byteLength; position++) if (a.data[position] !== b.data[position]) return false;
    return true;
  }
  if (a.kind === "conf_change" && b.kind === "conf_change") return a.change.type === b.change.type && a.change.nodeId === b.change.nodeId;
  return true;
}
