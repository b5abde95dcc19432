// The roles a credential of the lock cluster may hold, and what each allows. Three fixed roles,
// each including the one before it: a `locker` may read, an `admin` may do everything. Fixed
// roles rather than etcd's role-per-key-range permissions: the cluster's callers are few and of
// three kinds (a dashboard or auditor reads, the booking API locks and writes, an operator
// administers), and a fixed ladder is one an operator can hold in their head.
//
// Which calls need which role is the node's routing table (node/http-api.ts) and, for what goes
// through the log, the lock state machine's (lock/lock-state-machine.ts `roleNeededBy`), each
// reading `roleIncludes` from here.

import { z } from "zod";

/** roles lists the roles from least to most. */
export const roles = ["reader", "locker", "admin"] as const;

/** Role is one of the roles: reader (reads, watch, the lease table), locker (also lock, unlock, renew, fenced txn), admin (also membership, leadership transfer, credentials). */
export type Role = (typeof roles)[number];

/** roleSchema is a role in a request or an answer. */
export const roleSchema = z.enum(roles);

/** roleIncludes says whether a holder of `held` may do what needs `needed`: each role includes those below it. */
export function roleIncludes(held: Role, needed: Role): boolean {
  return roles.indexOf(held) >= roles.indexOf(needed);
}
