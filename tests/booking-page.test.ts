// The booking page (client/web/) in a real headless Chromium, against the real system: lock nodes
// and schedulers as processes on loopback. Two scientists in two browser contexts (two pages on
// two schedulers when there are two): A books a slot, B sees it taken live (no reload, no polling),
// A cancels through the booking's `cancel` link, B sees it free again.
//
// Needs /usr/bin/chromium (`apt-get update && apt-get install -y chromium`; .ci/run installs it).
// Without it the test is skipped with the reason in its name and on stderr; in CI it fails.
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import type { Browser, Page, Request } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBookingSystem } from "../harness/booking-system.ts";
import { declareMissingChromium, HAS_CHROMIUM, launchChromium } from "./support/chromium.ts";

const SCREENSHOT = path.resolve("test-results/booking-page.png");
const WAIT_MS = 20_000; // the machine is small and shared: generous waits, but a bound on "live" below
const LIVE_BOUND_MS = 5_000; // the page should turn a slot within about a second; this leaves room for a loaded CI

declareMissingChromium("tests/booking-page.test.ts");

describe.skipIf(!HAS_CHROMIUM)("booking page in headless Chromium", () => {
  let system: Awaited<ReturnType<typeof startBookingSystem>> | undefined;
  let browser: Browser | undefined;

  beforeAll(async () => {
    system = await startBookingSystem({ schedulers: 2 });
    browser = await launchChromium();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await system?.stop();
  }, 60_000);

  it("books, shows it live in another page, cancels through the link", async () => {
    const urls = system!.schedulerUrls;
    const pageUrlA = new URL("/", urls[0]).toString();
    const pageUrlB = new URL("/", urls[1] ?? urls[0]).toString();
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const run = Date.now().toString(36);

    const a = await openPage(browser!, pageUrlA);
    const b = await openPage(browser!, pageUrlB);

    // The clock is synchronised and shown with its uncertainty.
    await a.page
      .locator("#clock-sync")
      .filter({ hasText: /offset [+−][\d.]+ m?s ± [\d.]+ m?s/ })
      .waitFor({ timeout: WAIT_MS });

    // A registers; B first tries A's email and sees the API's error, then registers as someone else.
    await register(a.page, "Ada Astronomer", `ada-${run}@example.org`);
    await b.page.getByLabel("Name", { exact: true }).fill("Bob Observer");
    await b.page.getByLabel("Email", { exact: true }).fill(`ADA-${run}@example.org`);
    await b.page.getByRole("button", { name: "Register", exact: true }).click();
    const alert = b.page.getByRole("alert");
    await alert.filter({ hasText: "email_taken" }).waitFor({ timeout: WAIT_MS });
    expect(await alert.textContent()).toMatch(/already registered/i);
    await b.page.getByRole("button", { name: "Register", exact: true, disabled: false }).waitFor({ timeout: WAIT_MS }); // not left spinning
    await register(b.page, "Bob Observer", `bob-${run}@example.org`);

    // Both show tomorrow (UTC): A through the day's `next` link, B through the date input.
    await a.page.getByRole("button", { name: "Next day" }).click();
    await b.page.getByLabel("Day (UTC)").fill(tomorrow);
    for (const page of [a.page, b.page]) {
      await page.waitForFunction(`document.getElementById("day")?.value === ${JSON.stringify(tomorrow)}`, undefined, { timeout: WAIT_MS });
      await slot(page, "03:00", "free").waitFor({ timeout: WAIT_MS });
    }
    // Page B must not reload from here on, and must not poll.
    await b.page.evaluate("window.notReloaded = true");
    await quiet(b, 3_000);

    // A books 03:00 with one click.
    const post = a.page.waitForRequest((request) => request.method() === "POST" && new URL(request.url()).pathname === "/bookings", {
      timeout: WAIT_MS,
    });
    await slot(a.page, "03:00", "free").click();
    const request = await post;
    const clickedAt = Date.now();
    expect(request.headers()["idempotency-key"]).toMatch(/^[0-9a-f]{32}$/);
    const body = request.postDataJSON() as { telescopeId: string; startUtc: string; endUtc: string; requestedAtUtc: string };
    expect(Object.keys(body).sort()).toEqual(["endUtc", "requestedAtUtc", "startUtc", "telescopeId"]);
    expect(body.startUtc).toBe(`${tomorrow}T03:00:00Z`);
    expect(Math.abs(Date.parse(body.requestedAtUtc) - clickedAt)).toBeLessThan(5_000);
    await slot(a.page, "03:00", "yours").waitFor({ timeout: WAIT_MS });
    const bookedAt = Date.now();

    // B sees it taken, live.
    await slot(b.page, "03:00", "taken").waitFor({ timeout: WAIT_MS });
    const liveMs = Date.now() - bookedAt;
    console.log(`booking-page: page B showed the slot taken ${liveMs} ms after page A showed it booked`);
    expect(liveMs).toBeLessThan(LIVE_BOUND_MS);
    expect(await b.page.evaluate("window.notReloaded")).toBe(true);
    expect(b.navigations).toBe(1);

    // A's list has the booking with its cancel button; B has no cancel button at all.
    const cancel = a.page.getByRole("button", { name: new RegExp(`^Cancel booking .* ${tomorrow} 03:00–03:05 UTC$`) });
    await cancel.waitFor({ timeout: WAIT_MS });
    expect(await b.page.getByRole("button", { name: /^Cancel booking/ }).count()).toBe(0);

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    rmSync(SCREENSHOT, { force: true });
    await a.page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(existsSync(SCREENSHOT)).toBe(true);
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(1_000);

    // A cancels through the link; the slot is free again in both pages, B without reloading.
    const del = a.page.waitForRequest((r) => r.method() === "DELETE", { timeout: WAIT_MS });
    await cancel.click();
    expect(new URL((await del).url()).pathname).toMatch(/^\/bookings\/bk_/);
    const cancelledAt = Date.now();
    await slot(b.page, "03:00", "free").waitFor({ timeout: WAIT_MS });
    console.log(`booking-page: page B showed the slot free again ${Date.now() - cancelledAt} ms after the cancel click`);
    await slot(a.page, "03:00", "free").waitFor({ timeout: WAIT_MS });
    await a.page.locator("#bookings li.cancelled").waitFor({ timeout: WAIT_MS });
    expect(await a.page.getByRole("button", { name: /^Cancel booking/ }).count()).toBe(0);
    expect(await b.page.evaluate("window.notReloaded")).toBe(true);
    expect(b.navigations).toBe(1);

    // The key survives a reload; "Forget key" signs out.
    await a.page.reload();
    await a.page.getByText("Signed in as Ada Astronomer").waitFor({ timeout: WAIT_MS });
    await a.page.getByRole("button", { name: "Forget key (sign out)" }).click();
    await a.page.getByRole("button", { name: "Register", exact: true }).waitFor({ timeout: WAIT_MS });
    expect(await a.page.evaluate('localStorage.getItem("sctec.apiKey")')).toBeNull();

    expect([...a.errors, ...b.errors]).toEqual([]);
  }, 300_000);
});

interface OpenPage {
  page: Page;
  errors: string[];
  requests: Request[];
  navigations: number;
}

async function openPage(browser: Browser, url: string): Promise<OpenPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const opened: OpenPage = { page, errors: [], requests: [], navigations: 0 };
  page.on("pageerror", (error) => opened.errors.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    // The browser logs every 4xx/5xx answer as "Failed to load resource"; the API's errors are expected here.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource"))
      opened.errors.push(`console: ${message.text()}`);
  });
  page.on("request", (request) => opened.requests.push(request));
  page.on("framenavigated", (frame) => {
    if (frame === page.mainFrame()) opened.navigations += 1;
  });
  await page.goto(url, { timeout: WAIT_MS });
  await page.getByRole("status").filter({ hasText: "Live updates: on" }).waitFor({ timeout: WAIT_MS });
  return opened;
}

async function register(page: Page, name: string, email: string): Promise<void> {
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("Email", { exact: true }).fill(email);
  await page.getByLabel("Institution", { exact: true }).fill("Test Observatory");
  await page.getByRole("button", { name: "Register", exact: true }).click();
  await page.getByText(`Signed in as ${name}`).waitFor({ timeout: WAIT_MS });
}

/** A slot button of the shown day, found by its accessible name: "03:00 free", "03:00 taken", … */
function slot(page: Page, time: string, state: "free" | "taken" | "yours" | "past") {
  return page.getByRole("button", { name: `${time} ${state}`, exact: true });
}

/** Asserts the page asks the API for nothing (but its clock) for `ms`: updates come by WebSocket. */
async function quiet(opened: OpenPage, ms: number): Promise<void> {
  const before = opened.requests.length;
  await opened.page.waitForTimeout(ms);
  const asked = opened.requests.slice(before).map((r) => `${r.method()} ${new URL(r.url()).pathname}`);
  expect(asked.filter((r) => !r.endsWith(" /time"))).toEqual([]);
}
