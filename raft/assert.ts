// The core's own assertion helper. raft/ may not import node:assert (it must stay free of
// node:* so it runs unchanged in the simulator and in any host), and a broken invariant must
// crash loudly rather than be handled: the host lets RaftInvariantError kill the process.

/** RaftInvariantError is thrown when the core finds one of its invariants broken: a bug, never an outcome. */
export class RaftInvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RaftInvariantError";
  }
}

/** assert throws RaftInvariantError when `condition` is false. */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new RaftInvariantError(message);
}

/** assertNever makes a `switch` over a union exhaustive: a new member fails to compile here. */
export function assertNever(value: never): never {
  throw new RaftInvariantError(`unexpected value: ${JSON.stringify(value)}`);
}
