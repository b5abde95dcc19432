// The booking page (scheduler/web/) in a real headless Chromium, against the real system: lock nodes
// and two schedulers as processes on loopback. Shown, one test each:
// The tests share tomorrow's grid, each in hours of its own (1: 03:00, 2: 06:00–09:55, 3: 17:00–19:55,
// 5: 14:00–14:55, 6: 16:00–16:15, 7: 21:00; 4 looks at days in the past).
//  1. two scientists in two pages on two schedulers: A books a slot, B sees it taken live (no
//     reload, no polling); A's cancel asks first, then follows the booking's `cancel` link; B sees
//     the slot free again;
//  2. ranges: click then shift-click, and a mouse drag, select a range, booked in one request;
//     a selected range that someone else books is shown at once, before any click; a lost race
//     offers the nearest free ranges, and one click books one;
//  3. the week view: free / yours / taken per hour at a glance; arrows move between days and
//     hours, Enter opens the hour in the day view, where arrows, Enter and Shift+arrows select;
//  4. local time at a toggle, right across the changes to and from summer time (Europe/Berlin),
//     with the page saying which time is which; the day input takes ISO days only;
//  5. notices float without moving the grid; "My bookings" filters, sorts and pages;
//  6. at 375 px wide, nothing is wider than the screen and every slot is at least 24 px square;
//  7. a day being typed survives a live event's reload of the shown day, and Enter goes to it.
// Screenshots go to test-results/booking-page*.png.
//
// Needs /usr/bin/chromium (`apt-get update && apt-get install -y chromium`; .ci/run installs it).
// Without it the test is skipped with the reason in its name and on stderr; in CI it fails.
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import path from "node:path";
import type { Browser, BrowserContextOptions, Page, Request } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBookingSystem } from "../harness/booking-system.ts";
import { declareMissingChromium, HAS_CHROMIUM, launchChromium } from "./support/chromium.ts";
import { callApi } from "./support/scheduler-in-process.ts";

const WAIT_MS = 20_000; // the machine is small and shared: generous waits, but a bound on "live" below
const LIVE_BOUND_MS = 5_000; // the page should turn a slot within about a second; this leaves room for a loaded CI
const DAY_MS = 86_400_000;

declareMissingChromium("tests/booking-page.test.ts");

const tomorrow = () => new Date(Date.now() + DAY_MS).toISOString().slice(0, 10);
const at = (day: string, time: string) => `${day}T${time}:00Z`;

describe.skipIf(!HAS_CHROMIUM)("booking page in headless Chromium", () => {
  let system: Awaited<ReturnType<typeof startBookingSystem>> | undefined;
  let browser: Browser | undefined;
  let run = 0;
  const urls = () => system?.schedulerUrls ?? [];

  beforeAll(async () => {
    system = await startBookingSystem({ schedulers: 2 });
    browser = await launchChromium();
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await system?.stop();
  }, 60_000);

  /** scientist registers through the API of scheduler `at` (fast; the page's own registration is test 1). */
  async function scientist(name: string, position = 0) {
    run += 1;
    const answer = await api(urls()[position] as string, "POST", "/scientists", {
      body: { name, email: `${name.toLowerCase().replace(/\W+/g, "-")}-${Date.now().toString(36)}-${run}@example.org` },
    });
    return { id: answer.body.scientist.id as string, key: answer.body.apiKey as string, name };
  }

  it("books, shows it live in another page, asks before cancelling, cancels through the link", async () => {
    const day = tomorrow();
    const stamp = Date.now().toString(36);
    const a = await openPage(browser!, urls()[0] as string);
    const b = await openPage(browser!, urls()[1] ?? (urls()[0] as string));

    // The clock is synchronised and shown with its uncertainty.
    await a.page
      .locator("#clock-sync")
      .filter({ hasText: /offset [+−][\d.]+ m?s ± [\d.]+ m?s/ })
      .waitFor({ timeout: WAIT_MS });

    // A registers; B first tries A's email and sees the API's error, then registers as someone else.
    await register(a.page, "Ada Astronomer", `ada-${stamp}@example.org`);
    await b.page.getByLabel("Name", { exact: true }).fill("Bob Observer");
    await b.page.getByLabel("Email", { exact: true }).fill(`ADA-${stamp}@example.org`);
    await b.page.getByRole("button", { name: "Register", exact: true }).click();
    const alert = b.page.getByRole("alert").filter({ hasText: "email_taken" });
    await alert.waitFor({ timeout: WAIT_MS });
    expect(await alert.textContent()).toMatch(/already registered/i);
    await b.page.getByRole("button", { name: "Register", exact: true, disabled: false }).waitFor({ timeout: WAIT_MS }); // not left spinning
    await register(b.page, "Bob Observer", `bob-${stamp}@example.org`);

    // Both show tomorrow (UTC): A through the day's `next` link, B through the day input.
    await a.page.getByRole("button", { name: "Next day" }).click();
    await goToDay(b.page, day);
    for (const page of [a.page, b.page]) {
      await page.waitForFunction(`document.getElementById("day")?.value === ${JSON.stringify(day)}`, undefined, { timeout: WAIT_MS });
      await slot(page, "03:00", "free").waitFor({ timeout: WAIT_MS });
    }
    // Page B must not reload from here on, and must not poll.
    await b.page.evaluate("window.notReloaded = true");
    await quiet(b, 3_000);

    // A selects 03:00 and books it.
    await slot(a.page, "03:00", "free").click();
    await a.page.getByText(`Selected: Hubble Acad · ${day} 03:00–03:05 UTC · 1 slot · 5 min`).waitFor({ timeout: WAIT_MS });
    const post = a.page.waitForRequest((request) => request.method() === "POST" && new URL(request.url()).pathname === "/bookings", {
      timeout: WAIT_MS,
    });
    await a.page.getByRole("button", { name: "Book 1 slot", exact: true }).click();
    const request = await post;
    const clickedAt = Date.now();
    expect(request.headers()["idempotency-key"]).toMatch(/^[0-9a-f]{32}$/);
    const body = request.postDataJSON() as { telescopeId: string; startUtc: string; endUtc: string; requestedAtUtc: string };
    expect(Object.keys(body).sort()).toEqual(["endUtc", "requestedAtUtc", "startUtc", "telescopeId"]);
    expect([body.startUtc, body.endUtc]).toEqual([at(day, "03:00"), at(day, "03:05")]);
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
    const cancel = a.page.getByRole("button", { name: new RegExp(`^Cancel booking .* ${day} 03:00–03:05 UTC$`) });
    await cancel.waitFor({ timeout: WAIT_MS });
    expect(await b.page.getByRole("button", { name: /^Cancel booking/ }).count()).toBe(0);
    await screenshot(a.page, "booking-page.png");

    // Cancelling asks first; "Keep it" sends nothing.
    const deletes: Request[] = [];
    a.page.on("request", (sent) => {
      if (sent.method() === "DELETE") deletes.push(sent);
    });
    await cancel.click();
    const dialog = a.page.getByRole("dialog", { name: "Cancel this booking?" });
    await dialog.waitFor({ timeout: WAIT_MS });
    expect(await dialog.textContent()).toContain(`Hubble Acad, ${day} 03:00–03:05 UTC: 1 slot.`);
    await screenshot(a.page, "booking-page-confirm.png");
    await dialog.getByRole("button", { name: "Keep it" }).click();
    await dialog.waitFor({ state: "hidden", timeout: WAIT_MS });
    await a.page.waitForTimeout(300);
    expect(deletes).toEqual([]);
    await slot(a.page, "03:00", "yours").waitFor({ timeout: WAIT_MS });

    // Then A cancels for real; the slot is free again in both pages, B without reloading.
    await cancel.click();
    await dialog.getByRole("button", { name: "Cancel booking" }).click();
    await waitUntil(() => deletes.length === 1, "the DELETE");
    expect(new URL((deletes[0] as Request).url()).pathname).toMatch(/^\/bookings\/bk_/);
    const cancelledAt = Date.now();
    await slot(b.page, "03:00", "free").waitFor({ timeout: WAIT_MS });
    console.log(`booking-page: page B showed the slot free again ${Date.now() - cancelledAt} ms after the cancel`);
    await slot(a.page, "03:00", "free").waitFor({ timeout: WAIT_MS });
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

  it("books a range in one request; a range someone else takes is shown at once; a lost race offers the nearest free ranges", async () => {
    const day = tomorrow();
    const ada = await scientist("Ada Range");
    const bob = await scientist("Bob Racer", 1);
    const a = await openPage(browser!, urls()[0] as string, { apiKey: ada.key });
    await goToDay(a.page, day);
    await slot(a.page, "06:00", "free").waitFor({ timeout: WAIT_MS });

    // Click, then shift-click: five slots, 25 minutes, one POST.
    const posts: Request[] = [];
    a.page.on("request", (sent) => {
      if (sent.method() === "POST" && new URL(sent.url()).pathname === "/bookings") posts.push(sent);
    });
    await slot(a.page, "06:00", "free").click();
    await slot(a.page, "06:20", "free").click({ modifiers: ["Shift"] });
    await a.page.getByText(`Selected: Hubble Acad · ${day} 06:00–06:25 UTC · 5 slots · 25 min`).waitFor({ timeout: WAIT_MS });
    expect(await a.page.locator('#grid button[aria-pressed="true"]').count()).toBe(5);
    await a.page.getByRole("button", { name: "Book 5 slots" }).click();
    for (const time of ["06:00", "06:05", "06:10", "06:15", "06:20"]) await slot(a.page, time, "yours").waitFor({ timeout: WAIT_MS });
    expect(posts.map((sent) => sent.postDataJSON())).toEqual([
      expect.objectContaining({ startUtc: at(day, "06:00"), endUtc: at(day, "06:25") }),
    ]);

    // A drag selects the slots it crosses; Clear ends the selection.
    await drag(a.page, "07:00", "07:10");
    await a.page.getByText(`Selected: Hubble Acad · ${day} 07:00–07:15 UTC · 3 slots · 15 min`).waitFor({ timeout: WAIT_MS });
    await a.page.getByRole("button", { name: "Clear" }).click();
    await a.page.getByText("No slots selected.").waitFor({ timeout: WAIT_MS });

    // A selects 08:00–08:20; Bob books 08:10 through the other scheduler: A's page says so at once.
    await slot(a.page, "08:00", "free").click();
    await slot(a.page, "08:15", "free").click({ modifiers: ["Shift"] });
    await a.page.getByRole("button", { name: "Book 4 slots" }).waitFor({ timeout: WAIT_MS });
    const bookedAt = Date.now();
    expect((await book(urls()[1] as string, bob.key, at(day, "08:10"), at(day, "08:15"))).status).toBe(201);
    const problem = a.page.locator("#selection-problem").filter({ hasText: "08:10 was just booked by someone else" });
    await problem.waitFor({ timeout: WAIT_MS });
    const shownMs = Date.now() - bookedAt;
    console.log(`booking-page: the selected range was shown no longer free ${shownMs} ms after another scientist booked into it`);
    expect(shownMs).toBeLessThan(LIVE_BOUND_MS);
    expect(await a.page.getByRole("button", { name: "Book 4 slots" }).isDisabled()).toBe(true);
    expect(await a.page.locator(`#grid button[data-start="${at(day, "08:10")}"]`).getAttribute("class")).toContain("conflict");
    await screenshot(a.page, "booking-page-range.png");
    await a.page.getByRole("button", { name: "Clear" }).click();

    // A lost race: while A's request for 09:00–09:10 is on its way, Bob books 09:05. The 409 offers
    // the nearest free ranges of the same length; one click books the first.
    await slot(a.page, "09:00", "free").click();
    await slot(a.page, "09:05", "free").click({ modifiers: ["Shift"] });
    let bobFirst: number | undefined;
    await a.page.route(
      "**/bookings",
      async (route) => {
        bobFirst = (await book(urls()[1] as string, bob.key, at(day, "09:05"), at(day, "09:10"))).status;
        await route.continue();
      },
      { times: 1 },
    );
    await a.page.getByRole("button", { name: "Book 2 slots" }).click();
    const lost = a.page.getByRole("alert").filter({ hasText: "slot_taken" });
    await lost.waitFor({ timeout: WAIT_MS });
    expect(bobFirst).toBe(201);
    const offers = a.page.getByTestId("offer");
    // Nearest first: 08:55–09:05 starts 5 minutes earlier (09:05 itself is taken), then 09:10, then 08:45.
    expect(await offers.allTextContents()).toEqual([
      `Book Hubble Acad ${day} 08:55–09:05 UTC instead`,
      `Book Hubble Acad ${day} 09:10–09:20 UTC instead`,
      `Book Hubble Acad ${day} 08:45–08:55 UTC instead`,
    ]);
    await screenshot(a.page, "booking-page-offers.png");
    await offers.first().click();
    await slot(a.page, "08:55", "yours").waitFor({ timeout: WAIT_MS });
    await slot(a.page, "09:00", "yours").waitFor({ timeout: WAIT_MS });
    expect(posts.at(-1)?.postDataJSON()).toMatchObject({ startUtc: at(day, "08:55"), endUtc: at(day, "09:05") });
    expect(a.errors).toEqual([]);
  }, 240_000);

  it("shows a week at a glance, and moves through it and into a day by keyboard", async () => {
    const day = tomorrow();
    const next = new Date(Date.parse(`${day}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10);
    const ada = await scientist("Ada Week");
    const bob = await scientist("Bob Week");
    expect((await book(urls()[0] as string, ada.key, at(day, "18:00"), at(day, "18:15"))).status).toBe(201);
    expect((await book(urls()[0] as string, bob.key, at(day, "19:00"), at(day, "19:30"))).status).toBe(201);
    const a = await openPage(browser!, urls()[0] as string, { apiKey: ada.key });
    await goToDay(a.page, day);
    await a.page.getByRole("button", { name: "Week" }).click();
    const cell = (cellDay: string, hour: number) => a.page.locator(`[data-testid="week-cell"][data-day="${cellDay}"][data-hour="${hour}"]`);
    await cell(day, 19).and(a.page.locator('[data-taken="6"]')).waitFor({ timeout: WAIT_MS });
    expect(await cell(day, 18).getAttribute("aria-label")).toBe(`${weekday(day)} ${day} 18:00–19:00 UTC: 9 free, 3 yours`);
    expect(await cell(day, 19).getAttribute("aria-label")).toBe(`${weekday(day)} ${day} 19:00–20:00 UTC: 6 free, 6 taken`);
    await screenshot(a.page, "booking-page-week.png");

    // Keyboard: from tomorrow 18:00, right, up, left: tomorrow 17:00; Enter opens it in the day view.
    await cell(day, 18).focus();
    await a.page.keyboard.press("ArrowRight");
    expect(await focused(a.page, "data-day")).toBe(day === weekEnd(day) ? day : next);
    await a.page.keyboard.press("ArrowUp");
    expect(await focused(a.page, "data-hour")).toBe("17");
    if (day !== weekEnd(day)) await a.page.keyboard.press("ArrowLeft");
    expect(await focused(a.page, "data-day")).toBe(day);
    await a.page.keyboard.press("Enter");
    await a.page.waitForFunction(`document.activeElement?.dataset?.start === ${JSON.stringify(at(day, "17:00"))}`, undefined, {
      timeout: WAIT_MS,
    });
    expect(await a.page.getByRole("button", { name: "Day", exact: true }).getAttribute("aria-pressed")).toBe("true");
    // In the day: right moves a slot, Enter selects, Shift+right extends; Page Down goes to the next day.
    await a.page.keyboard.press("ArrowRight");
    expect(await focused(a.page, "data-start")).toBe(at(day, "17:05"));
    await a.page.keyboard.press("Enter");
    await a.page.keyboard.press("Shift+ArrowRight");
    await a.page.getByText(`Selected: Hubble Acad · ${day} 17:05–17:15 UTC · 2 slots · 10 min`).waitFor({ timeout: WAIT_MS });
    await a.page.keyboard.press("ArrowDown");
    expect(await focused(a.page, "data-start")).toBe(at(day, "18:10"));
    await a.page.keyboard.press("PageDown");
    await a.page.waitForFunction(`document.getElementById("day")?.value === ${JSON.stringify(next)}`, undefined, { timeout: WAIT_MS });
    // And back in the week, Page Down is the next week.
    await a.page.getByRole("button", { name: "Week" }).click();
    await cell(next, 0).waitFor({ timeout: WAIT_MS });
    await cell(next, 0).focus();
    await a.page.keyboard.press("PageDown");
    const monday = new Date(Date.parse(`${weekStart(next)}T00:00:00Z`) + 7 * DAY_MS).toISOString().slice(0, 10);
    await a.page.locator(`[data-testid="week-cell"][data-day="${monday}"]`).first().waitFor({ timeout: WAIT_MS });
    expect(a.errors).toEqual([]);
  }, 240_000);

  it("shows times in the browser's time zone at a toggle, right across summer time, and says which is which", async () => {
    const a = await openPage(browser!, urls()[0] as string, { timezoneId: "Europe/Berlin" });
    expect(await a.page.locator("#clock-zone").textContent()).toMatch(/^Europe\/Berlin \(UTC\+[12]\)$/);
    await a.page.getByText("Times in UTC. Days are UTC days").waitFor({ timeout: WAIT_MS });

    // The spring change (2026-03-29, 01:00 UTC): 01:55 local is followed by 03:00 local.
    await goToDay(a.page, "2026-03-29");
    await slot(a.page, "00:55", "past").waitFor({ timeout: WAIT_MS });
    await a.page.getByLabel(/my time zone/).check();
    const named = (start: string) => a.page.locator(`#grid button[data-start="${start}"]`).getAttribute("aria-label");
    await a.page.locator('#grid button[data-start="2026-03-29T00:55:00Z"][aria-label="01:55 past"]').waitFor({ timeout: WAIT_MS });
    expect(await named("2026-03-29T01:00:00Z")).toBe("03:00 past");
    // No 02:xx that night: the UTC day shows 01:00–01:55 local (UTC+1), then 03:00 on (UTC+2), up to 01:55 the next day.
    expect(await slotsNamed(a.page, /^02:\d\d past$/)).toEqual([]);
    expect(await named("2026-03-29T23:55:00Z")).toBe("01:55 past");
    await a.page.getByText("Mon 2026-03-30 (UTC+2)").waitFor({ timeout: WAIT_MS }); // where the local date changes
    await a.page.getByText("Clocks change at 01:00 UTC that day (UTC+1 to UTC+2).").waitFor({ timeout: WAIT_MS });
    await a.page
      .getByText(
        "Times in your time zone, Europe/Berlin. The UTC day 2026-03-29 runs 2026-03-29 01:00 UTC+1 – 2026-03-30 02:00 UTC+2 there.",
      )
      .waitFor({
        timeout: WAIT_MS,
      });
    await screenshot(a.page, "booking-page-local.png");

    // The autumn change (2026-10-25, 01:00 UTC): 02:00–02:55 local happens twice; each says its offset.
    await goToDay(a.page, "2026-10-25");
    await a.page.locator(`#grid button[data-start="2026-10-25T00:00:00Z"]`).waitFor({ timeout: WAIT_MS });
    expect(await slot(a.page, "02:00", "past").count()).toBe(2);
    expect(await a.page.locator(`#grid button[data-start="2026-10-25T00:00:00Z"]`).getAttribute("title")).toBe("02:00–02:05 UTC+2: past");
    expect(await a.page.locator(`#grid button[data-start="2026-10-25T01:00:00Z"]`).getAttribute("title")).toBe("02:00–02:05 UTC+1: past");

    // The choice is remembered; back in UTC the labels are UTC again.
    await a.page.reload();
    await a.page.getByText("Times in your time zone, Europe/Berlin.").waitFor({ timeout: WAIT_MS });
    await a.page.getByLabel("UTC", { exact: true }).check();
    await goToDay(a.page, "2026-10-25");
    expect(await a.page.locator(`#grid button[data-start="2026-10-25T01:00:00Z"]`).getAttribute("aria-label")).toBe("01:00 past");

    // The day input takes ISO days, and says what is wrong with anything else.
    const shown = await a.page.locator("#day-status").textContent();
    for (const [typed, says] of [
      ["2026-02-30", "2026-02-30 is not a day of the calendar."],
      ["30/03/2026", '"30/03/2026" is not a day: write it as YYYY-MM-DD'],
    ] as const) {
      await a.page.getByLabel("Day (UTC, YYYY-MM-DD)").fill(typed);
      await a.page.getByLabel("Day (UTC, YYYY-MM-DD)").press("Enter");
      await a.page.locator("#day-problem").filter({ hasText: says }).waitFor({ timeout: WAIT_MS });
      expect(await a.page.getByLabel("Day (UTC, YYYY-MM-DD)").getAttribute("aria-invalid")).toBe("true");
    }
    expect(await a.page.locator("#day-status").textContent()).toBe(shown);
    expect(a.errors).toEqual([]);
  }, 240_000);

  it("lets notices float without moving the grid, and filters, sorts and pages my bookings", async () => {
    const day = tomorrow();
    const ada = await scientist("Ada Lists");
    const made: string[] = [];
    for (let minute = 0; minute < 60; minute += 5) {
      const start = at(day, `14:${String(minute).padStart(2, "0")}`);
      const answer = await book(
        urls()[0] as string,
        ada.key,
        start,
        new Date(Date.parse(start) + 300_000).toISOString().replace(".000", ""),
      );
      expect(answer.status).toBe(201);
      made.push(answer.body.id);
    }
    const cancelled = await api(urls()[0] as string, "DELETE", `/bookings/${made[11]}`, { key: ada.key });
    expect(cancelled.status).toBe(200);
    const a = await openPage(browser!, urls()[0] as string, { apiKey: ada.key });
    await goToDay(a.page, day);
    await a.page.getByText("11 upcoming bookings.").waitFor({ timeout: WAIT_MS });
    const items = a.page.locator("#bookings li");
    expect(await items.count()).toBe(10);
    expect(await a.page.locator("#page-status").textContent()).toBe("Page 1 of 2");
    expect(await items.first().textContent()).toContain(`${day} 14:00–14:05 UTC`);
    await a.page.getByRole("button", { name: "Next page" }).click();
    expect(await items.allTextContents()).toEqual([expect.stringContaining(`${day} 14:50–14:55 UTC`)]);
    await a.page.getByLabel("Sort").selectOption("start-desc");
    expect(await items.first().textContent()).toContain(`${day} 14:50–14:55 UTC`);
    await a.page.getByLabel("Cancelled").check();
    expect(await items.allTextContents()).toEqual([expect.stringContaining(`${day} 14:55–15:00 UTC`)]);
    await a.page.getByLabel("Upcoming").check();

    // A notice appears over the page; the grid under the pointer does not move.
    const before = await a.page.locator("#grid").boundingBox();
    await a.page.getByRole("button", { name: /^Cancel booking .* 14:50–14:55 UTC$/ }).click();
    await a.page.getByRole("dialog").getByRole("button", { name: "Cancel booking" }).click();
    await a.page
      .locator("#notice")
      .filter({ hasText: `Cancelled Hubble Acad ${day} 14:50–14:55 UTC.` })
      .waitFor({ timeout: WAIT_MS });
    expect(await a.page.locator("#grid").boundingBox()).toEqual(before);
    await screenshot(a.page, "booking-page-notice.png");
    await a.page.getByText("10 upcoming bookings.").waitFor({ timeout: WAIT_MS });
    expect(a.errors).toEqual([]);
  }, 240_000);

  it("keeps a day being typed when a live event reloads the shown day, and then goes to it", async () => {
    // Regression: a reload of the shown day (after a live event) wrote the shown day back into the
    // field while a day was being typed there, so the scientist's Enter changed nothing (a CI run
    // of the test above typed a day, a reload put the old one back, and the page never moved).
    const day = tomorrow();
    const typed = new Date(Date.parse(day) + DAY_MS).toISOString().slice(0, 10);
    const ada = await scientist("Ada Typing");
    const a = await openPage(browser!, urls()[0] as string);
    await goToDay(a.page, day);
    const field = a.page.getByLabel("Day (UTC, YYYY-MM-DD)");
    await field.fill(typed); // Typed, not yet entered.
    // The event marks the slot taken at once; the page then reads the shown day again (50 ms later).
    const reread = a.page.waitForResponse(
      (response) => response.request().method() === "GET" && new URL(response.url()).pathname.endsWith(`/days/${day}`),
      { timeout: WAIT_MS },
    );
    expect((await book(urls()[1] as string, ada.key, at(day, "21:00"), at(day, "21:05"))).status).toBe(201);
    await slot(a.page, "21:00", "taken").waitFor({ timeout: WAIT_MS });
    await (await reread).finished();
    // Its answer is handled in the page's next tasks: let them run.
    await a.page.evaluate("new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)))");
    expect(await field.inputValue()).toBe(typed);
    await field.press("Enter");
    await a.page.waitForFunction(
      `document.querySelector("#grid button[data-start]")?.dataset.start.startsWith(${JSON.stringify(typed)})`,
      undefined,
      { timeout: WAIT_MS },
    );
    expect(a.errors).toEqual([]);
  }, 120_000);

  it("fits a 375 px screen: nothing wider than it, every slot target at least 24 px", async () => {
    const day = tomorrow();
    const ada = await scientist("Ada Phone");
    const a = await openPage(browser!, urls()[0] as string, { apiKey: ada.key, viewport: { width: 375, height: 812 } });
    await goToDay(a.page, day);
    await slot(a.page, "16:00", "free").waitFor({ timeout: WAIT_MS });
    const sizes = async (selector: string) =>
      (await a.page.locator(selector).evaluateAll((elements) =>
        elements.map((element) => {
          const box = element.getBoundingClientRect();
          return Math.min(box.width, box.height);
        }),
      )) as number[];
    // Sampled until the grid has settled: a live update re-renders it, and an element caught in
    // the middle of that measures 0 (seen once at a load of 20).
    await expect
      .poll(
        async () => {
          const slotSizes = await sizes("#grid button");
          return slotSizes.length === 288 ? Math.min(...slotSizes) : -slotSizes.length;
        },
        { timeout: WAIT_MS },
      )
      .toBeGreaterThanOrEqual(24);
    expect(await a.page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(375);
    // Touch-friendly range: tap, then + twice.
    await slot(a.page, "16:00", "free").tap();
    await a.page.getByRole("button", { name: "One slot longer" }).tap();
    await a.page.getByRole("button", { name: "One slot longer" }).tap();
    await a.page.getByText(`Selected: Hubble Acad · ${day} 16:00–16:15 UTC · 3 slots · 15 min`).waitFor({ timeout: WAIT_MS });
    await slot(a.page, "16:05", "free").scrollIntoViewIfNeeded();
    await screenshot(a.page, "booking-page-375.png", false);
    await a.page.getByRole("button", { name: "Week" }).tap();
    await a.page.locator(`[data-testid="week-cell"][data-day="${day}"][data-hour="16"]`).waitFor({ timeout: WAIT_MS });
    await expect.poll(async () => Math.min(...(await sizes('[data-testid="week-cell"]'))), { timeout: WAIT_MS }).toBeGreaterThanOrEqual(24);
    expect(await a.page.evaluate("document.documentElement.scrollWidth")).toBeLessThanOrEqual(375);
    await screenshot(a.page, "booking-page-375-week.png");
    expect(a.errors).toEqual([]);
  }, 240_000);
});

interface OpenPage {
  page: Page;
  errors: string[];
  requests: Request[];
  navigations: number;
}

async function openPage(
  browser: Browser,
  url: string,
  options: { apiKey?: string; timezoneId?: string; viewport?: { width: number; height: number } } = {},
): Promise<OpenPage> {
  const contextOptions: BrowserContextOptions = {
    viewport: options.viewport ?? { width: 1280, height: 900 },
    timezoneId: options.timezoneId ?? "UTC",
    ...(options.viewport !== undefined && options.viewport.width < 500 ? { hasTouch: true, isMobile: true } : {}),
  };
  const context = await browser.newContext(contextOptions);
  // A scientist registered through the API signs in as the page would keep the key.
  if (options.apiKey !== undefined) await context.addInitScript(`localStorage.setItem("sctec.apiKey", ${JSON.stringify(options.apiKey)})`);
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
  await page.goto(new URL("/", url).toString(), { timeout: WAIT_MS });
  await page.getByRole("status").filter({ hasText: "Live updates: on" }).waitFor({ timeout: WAIT_MS });
  await page
    .locator("#day-status")
    .filter({ hasText: / free of \d+ slots/ })
    .waitFor({ timeout: WAIT_MS });
  if (options.apiKey !== undefined) await page.getByText(/^Signed in as /).waitFor({ timeout: WAIT_MS });
  return opened;
}

async function register(page: Page, name: string, email: string): Promise<void> {
  await page.getByLabel("Name", { exact: true }).fill(name);
  await page.getByLabel("Email", { exact: true }).fill(email);
  await page.getByLabel("Institution", { exact: true }).fill("Test Observatory");
  await page.getByRole("button", { name: "Register", exact: true }).click();
  await page.getByText(`Signed in as ${name}`).waitFor({ timeout: WAIT_MS });
}

async function goToDay(page: Page, day: string): Promise<void> {
  await page.getByLabel("Day (UTC, YYYY-MM-DD)").fill(day);
  await page.getByLabel("Day (UTC, YYYY-MM-DD)").press("Enter");
  await page.waitForFunction(
    `document.querySelector("#grid button[data-start]")?.dataset.start.startsWith(${JSON.stringify(day)}) || document.querySelector('[data-testid="week-cell"][data-day="${day}"]') !== null`,
    undefined,
    { timeout: WAIT_MS },
  );
}

/** A slot button of the shown day, found by its accessible name: "03:00 free", "03:00 taken", … */
function slot(page: Page, time: string, state: "free" | "taken" | "yours" | "past") {
  return page.getByRole("button", { name: `${time} ${state}`, exact: true });
}

async function slotsNamed(page: Page, name: RegExp): Promise<string[]> {
  return page
    .locator("#grid button")
    .evaluateAll(
      (buttons, source) =>
        buttons.map((button) => button.getAttribute("aria-label") ?? "").filter((label) => new RegExp(source).test(label)),
      name.source,
    );
}

/** drag presses the mouse on one slot and releases it on another, passing over the ones between. */
async function drag(page: Page, from: string, to: string): Promise<void> {
  const start = await slot(page, from, "free").boundingBox();
  const end = await slot(page, to, "free").boundingBox();
  if (start === null || end === null) throw new Error("slots not on screen");
  await page.mouse.move(start.x + start.width / 2, start.y + start.height / 2);
  await page.mouse.down();
  await page.mouse.move(end.x + end.width / 2, end.y + end.height / 2, { steps: 8 });
  await page.mouse.up();
}

async function focused(page: Page, attribute: string): Promise<string | null> {
  return page.evaluate(`document.activeElement?.getAttribute(${JSON.stringify(attribute)}) ?? null`) as Promise<string | null>;
}

function weekday(day: string): string {
  return ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][new Date(`${day}T00:00:00Z`).getUTCDay()] as string;
}

function weekStart(day: string): string {
  const midnight = Date.parse(`${day}T00:00:00Z`);
  return new Date(midnight - ((new Date(midnight).getUTCDay() + 6) % 7) * DAY_MS).toISOString().slice(0, 10);
}

/** weekEnd: the Sunday of a day's week (ArrowRight stops there). */
function weekEnd(day: string): string {
  return new Date(Date.parse(`${weekStart(day)}T00:00:00Z`) + 6 * DAY_MS).toISOString().slice(0, 10);
}

async function screenshot(page: Page, name: string, fullPage = true): Promise<void> {
  const file = path.resolve("test-results", name);
  mkdirSync(path.dirname(file), { recursive: true });
  rmSync(file, { force: true });
  await page.screenshot({ path: file, fullPage });
  expect(existsSync(file)).toBe(true);
  expect(statSync(file).size).toBeGreaterThan(1_000);
}

/** Asserts the page asks the API for nothing (but its clock) for `ms`: updates come by WebSocket. */
async function quiet(opened: OpenPage, ms: number): Promise<void> {
  const before = opened.requests.length;
  await opened.page.waitForTimeout(ms);
  const asked = opened.requests.slice(before).map((r) => `${r.method()} ${new URL(r.url()).pathname}`);
  expect(asked.filter((r) => !r.endsWith(" /time"))).toEqual([]);
}

async function waitUntil(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const api = callApi;

function book(base: string, key: string, startUtc: string, endUtc: string) {
  return api(base, "POST", "/bookings", {
    key,
    body: { telescopeId: "hubble-acad", startUtc, endUtc, requestedAtUtc: new Date().toISOString() },
  });
}
