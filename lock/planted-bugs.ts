// Planted lease bugs exist only to show that the simulator's lease checks bite (see
// simulations/planted-bugs.test.ts). The lint rules (biome.json) forbid the node host, client/
// and scheduler/ from importing this module, and the node's configuration accepts no such field.

/** LeasePlantedBug names one deliberate violation of the lease rules in LeaseTimekeeper. */
export type LeasePlantedBug =
  /** The leader expires a lease after half its TTL. */
  | "expire_at_half_ttl"
  /** A new leader does not restart the countdowns: it treats every lease as already run out. */
  | "keep_countdown_on_new_leader";

export const leasePlantedBugs: readonly LeasePlantedBug[] = ["expire_at_half_ttl", "keep_countdown_on_new_leader"];
