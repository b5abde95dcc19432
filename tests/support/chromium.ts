// Headless Chromium for the browser tests (Debian's `chromium` + playwright-core; never a
// browser download). Outside CI a machine without Chromium skips those tests, loudly; in CI
// (CI=true, set by .ci/run) a missing Chromium fails them, so CI cannot pass without running them.

import { existsSync } from "node:fs";
import type { Browser } from "playwright-core";
import { it } from "vitest";

export const CHROMIUM = process.env["SCTEC_CHROMIUM"] ?? "/usr/bin/chromium";
export const HAS_CHROMIUM = existsSync(CHROMIUM);

/** declareMissingChromium adds the test that stands in for a browser test when Chromium is missing. */
export function declareMissingChromium(what: string): void {
  if (HAS_CHROMIUM) return;
  const reason = `no Chromium at ${CHROMIUM} (apt-get update && apt-get install -y chromium)`;
  if (process.env["CI"] !== undefined) {
    it(`${what} needs Chromium`, () => {
      throw new Error(`${what}: ${reason}`);
    });
    return;
  }
  console.warn(`\n*** ${what} SKIPPED: ${reason} ***\n`);
  it.skip(`${what}: SKIPPED, ${reason}`, () => {});
}

/** launchChromium starts headless Chromium with the project's flags. */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import("playwright-core");
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    timeout: 60_000,
  });
}
