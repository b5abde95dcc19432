// HostObserver is how metrics and the status page watch the drive loop without living in it. The
// host calls each hook synchronously from its loop, so a hook must be cheap and must not throw: it
// runs on the path of every Ready. Hooks only read what they are given; they never call back into
// the host or the core.

import type { Entry, NodeId, Ready } from "../raft/index.ts";
import type { Applied } from "./state/lock-state-machine.ts";

/** ProposalOutcomeKind: what the core answered a proposal (a command or a membership step). */
export type ProposalOutcomeKind = "accepted" | "not_leader" | "dropped";

export interface HostObserver {
  /** readyHandled: one Ready was persisted, sent, applied and advanced; `nowMs` is the host's monotonic clock. */
  readyHandled?(ready: Ready, nowMs: number): void;
  /** applied: a committed entry was applied; `applied` is undefined for entries without a lock command (no-ops, membership). */
  applied?(entry: Entry, applied: Applied | undefined): void;
  /** proposed: the core's answer to a proposal fed to it. */
  proposed?(outcome: ProposalOutcomeKind): void;
  /** joinHeld: an acquire that would only join a lock's queue was held back to go out with the next write. */
  joinHeld?(): void;
  /** transferRequested: a leadership transfer was asked of this node, and what the core answered. */
  transferRequested?(transferee: NodeId, outcome: "started" | ProposalOutcomeKind): void;
}

/** combineObservers calls each observer's hooks in order. */
export function combineObservers(...observers: readonly HostObserver[]): HostObserver {
  return {
    readyHandled: (ready, nowMs) => {
      for (const observer of observers) observer.readyHandled?.(ready, nowMs);
    },
    applied: (entry, applied) => {
      for (const observer of observers) observer.applied?.(entry, applied);
    },
    proposed: (outcome) => {
      for (const observer of observers) observer.proposed?.(outcome);
    },
    joinHeld: () => {
      for (const observer of observers) observer.joinHeld?.();
    },
    transferRequested: (transferee, outcome) => {
      for (const observer of observers) observer.transferRequested?.(transferee, outcome);
    },
  };
}
