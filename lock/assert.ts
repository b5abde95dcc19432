// The lock state machine's own assertion helper. lock/ is pure (no node:assert, so it runs
// unchanged in the node and the simulator), and a broken invariant must crash loudly rather than
// be handled: the node lets LockInvariantError kill the process, as it does RaftInvariantError.

/** LockInvariantError is thrown when the lock state machine finds one of its invariants broken: a bug, never an outcome. */
export class LockInvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "LockInvariantError";
  }
}

/** assert throws LockInvariantError when `condition` is false. */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new LockInvariantError(message);
}
