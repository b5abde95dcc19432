// Resources.releaseUnder: a history's cleanup when its cluster never started. A long run at a load
// of 20 ended with an uncaught EBUSY: the cluster failed to start, so no ChaosCluster unmounted the
// nodes' disks, and removing the history's mount root with the tmpfs still on it threw. Mounting
// needs root (as the chaos run does; CI runs as root).

import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NodeDisks } from "./environment.ts";
import { isMounted, Resources } from "./resources.ts";

const root = process.getuid?.() === 0;

describe.runIf(root)("Resources.releaseUnder", () => {
  it("unmounts the disks still mounted under a history's root, removes it, and does not throw", () => {
    const resources = new Resources();
    const mountRoot = mkdtempSync(join(tmpdir(), "sctec-resources-test-"));
    const disks = new NodeDisks({ root: mountRoot, sizeBytes: 1024 * 1024, resources });
    disks.mount("n1");
    disks.mount("n2");
    writeFileSync(join(disks.mountPath("n1"), "data"), "x");
    expect(isMounted(disks.mountPath("n1"))).toBe(true);
    try {
      expect(resources.releaseUnder(mountRoot)).toEqual([]);
      expect(isMounted(disks.mountPath("n1"))).toBe(false);
      expect(isMounted(disks.mountPath("n2"))).toBe(false);
      expect(existsSync(mountRoot)).toBe(false);
    } finally {
      resources.releaseAllNow();
    }
  });
});
