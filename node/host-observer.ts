// HostObserver is how metrics and the status page watch the drive loop without living in it. The
// host calls each hook synchronously from its loop, so a hook must be cheap and must not throw: it
// runs on the path of every Ready. Hooks only read what they are given; they never call back into
// the host or the core.

import type { Applied } from "../lock/lock-state-machine.ts";
import type { DriverObserver } from "./driver/raft-driver.ts";

export type { ProposalOutcomeKind } from "./driver/raft-driver.ts";

/**
 * HostObserver: the driver's hooks (DriverObserver: Readies, applied entries, proposals,
 * transfers) and the lock service's own (held joins).
 */
export interface HostObserver extends DriverObserver<Applied> {
  /** joinHeld: an acquire that would only join a lock's queue was held back to go out with the next write. */
  joinHeld?(): void;
}

/** combineObservers calls each observer's hooks in order. */
export function combineObservers(...observers: readonly HostObserver[]): HostObserver {
  return {
    readyTaken: (ready) => {
      for (const observer of observers) observer.readyTaken?.(ready);
    },
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
