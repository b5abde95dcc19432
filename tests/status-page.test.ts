// The lock nodes' status page (node/status-page/) in a real headless Chromium, against three real
// node processes on loopback. Shown, in order:
//  1. node 1's page shows three members and exactly one leader (the one the nodes agree on), the
//     replication picture, links to every node's page and to the booking page;
//  2. the pages ask for nothing once loaded (no polling): every update arrives over /status/live;
//  3. a lease taken through the API shows in the lease table with its holder and fencing token;
//  4. the leader is killed (SIGKILL); the page of a surviving node, already open, shows the new
//     leader and the dead node as unreachable (table, picture and timeline) within a few seconds,
//     without a reload; the dead node's own page says that it lost its connection;
//  5. a screenshot of the survivor's page is saved to test-results/status-page.png;
//  6. on a 375 px wide phone the page is no wider than the screen (wide tables scroll inside their
//     cards), screenshot test-results/status-page-375.png; no page got a 4xx for anything it
//     asked for (the browser's own /favicon.ico used to answer 401), and /favicon.ico answers 204
//     without a token.
//
// Needs /usr/bin/chromium (`apt-get update && apt-get install -y chromium`; .ci/run installs it).
// Without it the test is skipped with the reason in its name and on stderr; in CI it fails.
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import type { Browser, Page, Request } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ProcessCluster, waitFor } from "../harness/process-cluster.ts";
import { declareMissingChromium, HAS_CHROMIUM, launchChromium } from "./support/chromium.ts";

const SCREENSHOT = path.resolve("test-results/status-page.png");
const WAIT_MS = 45_000; // the machine is small and shared (at a load of 20, 20 s was not enough for a new leader to show): generous waits
const FAILOVER_SHOWN_MS = 10_000; // "within a few seconds": election ~0.3 s, link loss at once, pushes every 0.5 s

declareMissingChromium("tests/status-page.test.ts");

interface OpenPage {
  id: string;
  page: Page;
  errors: string[];
  requests: Request[];
  navigations: number;
}

describe.skipIf(!HAS_CHROMIUM)("status page in headless Chromium", () => {
  let cluster: ProcessCluster | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    cluster = await ProcessCluster.start({ size: 3 });
    browser = await launchChromium();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await cluster?.close();
  }, 60_000);

  it("shows three members and one leader; after the leader is killed, a survivor's page shows the new leader and the dead node unreachable", async () => {
    const nodes = cluster!;
    const leader = await nodes.waitForLeader(WAIT_MS);

    // 1. Node 1's page: three members, one leader, the picture, the links.
    const pages = new Map<string, OpenPage>();
    for (const id of nodes.ids()) pages.set(id, await openPage(browser!, id, `${nodes.url(id)}/`));
    const first = pages.get("n1") as OpenPage;
    await waitFor(
      async () => ((await leaderShown(first.page)) === leader ? true : undefined),
      `n1's page to show leader ${leader}`,
      WAIT_MS,
    );
    const rows = first.page.getByTestId("member-row");
    expect(await rows.count()).toBe(3);
    expect(await first.page.locator('[data-testid="member-row"][data-leader="true"]').count()).toBe(1);
    expect(await first.page.getByTestId("leader").getAttribute("data-leader")).toBe(leader);
    await waitFor(
      async () => ((await reachabilities(first.page)).every((state) => state === "self" || state === "reachable") ? true : undefined),
      "every member reachable from n1",
      WAIT_MS,
    );
    expect(await first.page.getByTestId("picture-node").count()).toBe(3);
    // The picture marks as leader the leader the page shows. Read both together, again until they
    // agree: under load a spurious election (issue 17) can move the leader between two reads.
    await expect
      .poll(
        async () => {
          const shown = await leaderShown(first.page);
          return shown === undefined
            ? "none"
            : await first.page.locator(`[data-testid="picture-node"][data-member="${shown}"]`).getAttribute("data-kind");
        },
        { timeout: WAIT_MS },
      )
      .toBe("leader");
    expect(await first.page.getByTestId("replication-link").count()).toBe(2);
    const links = await first.page.getByTestId("node-link").evaluateAll((anchors) => anchors.map((anchor) => anchor.getAttribute("href")));
    expect(links.sort()).toEqual(
      nodes
        .urls()
        .map((url) => `${url}/`)
        .sort(),
    );
    expect(await first.page.getByRole("link", { name: "Booking page" }).getAttribute("href")).toBe("http://127.0.0.1:8080/");
    expect(await first.page.getByTestId("timeline-event").count()).toBeGreaterThan(0);

    // 2. No polling: for 3 s the pages ask for nothing, yet the view keeps arriving.
    const before = first.requests.length;
    const pushedBefore = await first.page.locator("#pushed-at").textContent();
    await first.page.waitForTimeout(3000);
    expect(first.requests.slice(before).map((request) => request.url())).toEqual([]);
    expect(await first.page.locator("#connection").getAttribute("data-state")).toBe("live");
    expect(await first.page.locator("#pushed-at").textContent()).not.toBe(pushedBefore);

    // 3. A lease shows in the table with its holder and fencing token.
    const resource = `status-page-${Date.now()}`;
    const granted = await fetch(`${nodes.url(leader)}/lock`, {
      method: "POST",
      headers: { authorization: `Bearer ${nodes.apiToken}`, "content-type": "application/json" },
      body: JSON.stringify({ resource, owner: "status-page-test", ttlMs: 60_000 }),
    });
    const token = ((await granted.json()) as { token: string }).token;
    const leaseRow = first.page.locator(`[data-testid="lease-row"][data-resource="${resource}"]`);
    await leaseRow.waitFor({ timeout: WAIT_MS });
    expect(await leaseRow.textContent()).toContain("status-page-test");
    expect(await leaseRow.locator("td").nth(2).textContent()).toBe(token);

    // 4. Kill the leader; a surviving node's page (already open) shows the new leader and the dead node unreachable.
    const survivorId = leader === "n1" ? "n2" : "n1";
    const survivor = pages.get(survivorId) as OpenPage;
    const killedAt = performance.now();
    await nodes.kill(leader);
    const newLeader = await waitFor(
      async () => {
        const shown = await leaderShown(survivor.page);
        const deadState = await survivor.page
          .locator(`[data-testid="member-row"][data-member="${leader}"]`)
          .getAttribute("data-reachability");
        return shown !== null && shown !== "" && shown !== leader && deadState === "unreachable" ? shown : undefined;
      },
      `${survivorId}'s page to show a new leader and ${leader} unreachable`,
      FAILOVER_SHOWN_MS,
    );
    const shownMs = Math.round(performance.now() - killedAt);
    console.log(`status-page: ${survivorId}'s page showed leader ${newLeader} and ${leader} unreachable ${shownMs} ms after the kill`);
    expect(await nodes.waitForLeader(WAIT_MS, leader)).toBe(newLeader);
    expect(await survivor.page.locator('[data-testid="member-row"][data-leader="true"]').count()).toBe(1);
    expect(await survivor.page.locator(`[data-testid="member-row"][data-member="${leader}"]`).getAttribute("data-leader")).toBe("false");
    await survivor.page
      .locator(`[data-testid="picture-node"][data-member="${leader}"][data-kind="unreachable"]`)
      .waitFor({ timeout: WAIT_MS });
    await survivor.page
      .getByTestId("warnings")
      .filter({ hasText: `unreachable from ${survivorId}: ${leader}` })
      .waitFor({ timeout: WAIT_MS });
    await survivor.page.locator('[data-testid="timeline-event"][data-kind="peer_unreachable"]').first().waitFor({ timeout: WAIT_MS });
    expect(survivor.navigations).toBe(1); // no reload
    // The dead node's own page cannot be live: it says so.
    const orphan = pages.get(leader) as OpenPage;
    await orphan.page.locator('#connection[data-state="disconnected"]').waitFor({ timeout: WAIT_MS });
    expect(await orphan.page.getByTestId("warnings").textContent()).toContain(`Lost the connection to ${leader}`);

    // 5. The screenshot.
    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    rmSync(SCREENSHOT, { force: true });
    await survivor.page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(1_000);

    // 6. A phone: nothing wider than the screen; and nothing the pages asked for was refused.
    const phone = await browser!.newContext({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true });
    const small = await phone.newPage();
    const refused: string[] = [];
    small.on("response", (response) => {
      if (response.status() >= 400) refused.push(`${response.status()} ${response.url()}`);
    });
    await small.goto(`${nodes.url(survivorId)}/`, { timeout: WAIT_MS });
    await small.locator('#connection[data-state="live"]').waitFor({ timeout: WAIT_MS });
    await small.getByTestId("member-row").first().waitFor({ timeout: WAIT_MS });
    expect(await small.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(375);
    const phoneShot = path.resolve("test-results/status-page-375.png");
    rmSync(phoneShot, { force: true });
    await small.screenshot({ path: phoneShot, fullPage: true });
    expect(statSync(phoneShot).size).toBeGreaterThan(1_000);
    await phone.close();
    expect(refused).toEqual([]);
    const favicon = await fetch(`${nodes.url(survivorId)}/favicon.ico`);
    expect(favicon.status).toBe(204);

    for (const opened of pages.values()) expect(opened.errors).toEqual([]);
  }, 240_000);
});

async function openPage(browser: Browser, id: string, url: string): Promise<OpenPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  const opened: OpenPage = { id, page, errors: [], requests: [], navigations: 0 };
  page.on("pageerror", (error) => opened.errors.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    // A killed node's page logs its failed reconnections; that is the point of step 4, not an error.
    if (message.type() === "error" && !/WebSocket connection|Failed to load resource/.test(message.text()))
      opened.errors.push(`console: ${message.text()}`);
  });
  page.on("request", (request) => {
    if (!request.url().startsWith("ws")) opened.requests.push(request);
  });
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) opened.navigations += 1;
  });
  await page.goto(url, { timeout: WAIT_MS });
  await page.locator('#connection[data-state="live"]').waitFor({ timeout: WAIT_MS });
  return opened;
}

async function leaderShown(page: Page): Promise<string | null> {
  return page.getByTestId("leader").getAttribute("data-leader");
}

async function reachabilities(page: Page): Promise<string[]> {
  return page.getByTestId("member-row").evaluateAll((rows) => rows.map((row) => row.getAttribute("data-reachability") ?? ""));
}
