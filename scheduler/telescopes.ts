// Telescopes come from configuration, but their slot grid must never change under existing
// bookings: a slot claim names a slot start on the grid, so a booking made on 10-minute slots
// would not block a 5-minute booking in its second half. Each telescope's grid is therefore
// recorded in the cluster by the first scheduler that serves it, and a scheduler whose
// configuration disagrees refuses to start.

import type { ClusterPort } from "./cluster.ts";
import { clusterError } from "./errors.ts";
import type { Telescope } from "./slots.ts";

export class TelescopeGridMismatch extends Error {
  readonly code = "telescope_grid_mismatch";
}

const gridKey = (telescopeId: string) => `telescope/${telescopeId}`;

/** ensureTelescopeGrids records each telescope's slot grid in the cluster, or checks it against the one recorded. */
export async function ensureTelescopeGrids(cluster: ClusterPort, telescopes: readonly Telescope[], leaseTtlMs: number): Promise<void> {
  for (const telescope of telescopes) {
    const requestId = `startup-${telescope.id}`;
    try {
      const recorded = await cluster.get(gridKey(telescope.id), requestId);
      if (recorded !== undefined) {
        check(telescope, recorded.value);
        continue;
      }
      const lease = await cluster.acquire([`telescope-config_${telescope.id}`], { ttlMs: leaseTtlMs, waitMs: 5000, requestId });
      let released = false;
      try {
        const again = await cluster.get(gridKey(telescope.id), requestId);
        if (again !== undefined) {
          check(telescope, again.value);
          continue;
        }
        await lease.txn(
          [{ op: "put", key: gridKey(telescope.id), value: JSON.stringify({ slotMinutes: telescope.slotMinutes }) }],
          requestId,
          {
            release: true,
          },
        );
        released = true;
      } finally {
        if (!released) await lease.release(requestId).catch(() => undefined);
      }
    } catch (error) {
      if (error instanceof TelescopeGridMismatch) throw error;
      throw clusterError(error, `recording the slot grid of ${telescope.id}`);
    }
  }
}

function check(telescope: Telescope, value: string): void {
  const recorded = (JSON.parse(value) as { slotMinutes: number }).slotMinutes;
  if (recorded !== telescope.slotMinutes) {
    throw new TelescopeGridMismatch(
      `telescope ${telescope.id} is configured with ${telescope.slotMinutes}-minute slots, but its bookings in the cluster use ${recorded}-minute slots; a slot grid cannot change under existing bookings (configure a new telescope id instead)`,
    );
  }
}
