// The booking page: plain DOM, no framework. Everything it does goes through the links the API
// hands out (docs/API.md); the one URL it knows is the entry point `/api`. The pieces with no DOM
// live in their own modules (booking.js: the clock and the booking requests, shared with the
// rush benchmark; selection.js; time-format.js; my-bookings.js); the day grid and the week view
// draw themselves (day-grid.js, week-view.js). This file holds the page's state and wires it up.
import { ApiError, describeError, ENTRY_POINT, follow } from "./api.js";
import { mayNotBeDecided, newClick, ServerClock, sendBooking, withRetries } from "./booking.js";
import { formatOffset } from "./clock.js";
import { DayGrid } from "./day-grid.js";
import { LiveEvents } from "./events.js";
import { pageOf } from "./my-bookings.js";
import { bounds, extendTo, problemOf, resize, size } from "./selection.js";
import { browserTimeZone, clockOf, dateOf, durationText, offsetChangeIn, offsetOf, rangeText, timeOf, UTC } from "./time-format.js";
import { daysOfWeek, WeekView, weekStartOf } from "./week-view.js";

const KEY_STORAGE = "sctec.apiKey";
const TELESCOPE_STORAGE = "sctec.telescopeId";
const TIME_MODE_STORAGE = "sctec.timeMode";
const CLOCK_RESYNC_MS = 5 * 60_000;
const NOTICE_SHOWN_MS = 10_000;
/** BOOKING_PAGES_MAX bounds how many pages of "My bookings" are read (the API's default page is 20). */
const BOOKING_PAGES_MAX = 50;
const DAY_MS = 86_400_000;
const BROWSER_ZONE = browserTimeZone();

const $ = (id) => document.getElementById(id);

const state = {
  apiKey: readStored(KEY_STORAGE),
  keyProblem: undefined, // why the stored key does not work, when it does not
  keyError: undefined, // the API's answer that refused it
  entry: undefined, // GET /api (with the key when there is one)
  me: undefined,
  telescopes: [],
  telescope: undefined,
  view: "day", // "day" | "week"
  timeMode: readStored(TIME_MODE_STORAGE) === "local" ? "local" : "utc",
  day: undefined, // GET …/days/{day}
  dayWanted: undefined, // the link of the day asked for last
  dayLoads: 0, // generation counter: an older answer never overwrites a newer one
  week: undefined, // { telescopeId, monday, days: Map<day, answer> }
  dayTyped: undefined, // a day typed before the telescopes arrived
  selection: undefined, // { key (telescope/day), anchor, end }: indexes into the shown day's slots
  selectionNote: undefined, // why the last extension stopped short
  inFlight: new Map(), // range key -> the click being sent (booking.js newClick)
  unsettled: new Map(), // range key -> a click whose outcome is unknown: clicking again sends it again, same key
  bookings: [],
  bookingsMore: false, // more than BOOKING_PAGES_MAX pages
  bookingLoads: 0,
  list: { filter: "upcoming", sort: "start-asc", page: 0 },
  cancelling: new Set(), // ids of bookings whose cancel is in flight
  clock: undefined, // a ServerClock (booking.js) over the `time` link
  events: undefined,
};

let grid;
let weekView;

// ---- time --------------------------------------------------------------------------------------

/** The server's clock as far as Cristian's algorithm knows it (the local clock until the first sync). */
function serverNow() {
  return state.clock ? state.clock.now() : performance.timeOrigin + performance.now();
}

/** The zone times are shown in: UTC, or the browser's at the person's choice. */
function zone() {
  return state.timeMode === "local" ? BROWSER_ZONE : UTC;
}

/** whenText: an interval in the shown zone; in local time followed by the same in UTC, so nobody books the wrong hour. */
function whenText(startMs, endMs) {
  const shown = rangeText(startMs, endMs, zone());
  return state.timeMode === "local" ? `${shown} (${rangeText(startMs, endMs, UTC)})` : shown;
}

async function syncClock() {
  const link = state.entry?._links?.time;
  if (!link) return;
  state.clock ??= ServerClock.overLink(link);
  const button = $("clock-resync");
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  try {
    await state.clock.sync();
  } catch (error) {
    $("clock-sync").textContent = `clock: not synchronised (${describeError(error).message})`;
    return;
  } finally {
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
  renderClock();
  render(); // "past" and "opens at" depend on the clock
}

function renderClock() {
  const nowMs = serverNow();
  $("clock-now").textContent = clockOf(nowMs, UTC);
  $("clock-now").dateTime = new Date(nowMs).toISOString();
  $("clock-local").textContent = clockOf(nowMs, BROWSER_ZONE);
  $("clock-zone").textContent = `${BROWSER_ZONE} (${offsetOf(nowMs, BROWSER_ZONE)})`;
  const clock = state.clock?.estimate;
  if (clock) {
    $("clock-sync").textContent =
      `offset ${formatOffset(clock.offsetMs, clock.uncertaintyMs)} · best round trip ${clock.rttMs.toFixed(1)} ms of ${clock.samples} samples · synced ${clockOf(clock.syncedAtLocalMs + clock.offsetMs, UTC)} UTC`;
  }
}

// ---- messages ----------------------------------------------------------------------------------

let noticeTimer;

function showError(error) {
  const { title, message, code } = describeError(error);
  $("error-title").textContent = `${title}:`;
  $("error-text").textContent = message + detailsText(error);
  $("error-code").textContent = code ? `(${code})` : "";
  renderOffers(error);
  $("error").hidden = false;
  hideNotice();
}

/** renderOffers: a lost race's alternatives (409 details.alternatives), each a button that books it. */
function renderOffers(error) {
  const offers = error instanceof ApiError && Array.isArray(error.details?.alternatives) ? error.details.alternatives : [];
  const usable = offers.filter((offer) => offer?._links?.book && typeof offer.startUtc === "string" && typeof offer.endUtc === "string");
  $("error-offers").hidden = usable.length === 0;
  $("error-offer-buttons").replaceChildren(
    ...usable.map((offer) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "primary";
      button.dataset.testid = "offer";
      const startMs = Date.parse(offer.startUtc);
      const endMs = Date.parse(offer.endUtc);
      button.textContent = `Book ${telescopeName(offer.telescopeId)} ${whenText(startMs, endMs)} instead`;
      button.addEventListener("click", () => {
        $("error").hidden = true;
        bookRange({ telescopeId: offer.telescopeId, startUtc: offer.startUtc, endUtc: offer.endUtc }, offer._links.book);
      });
      return button;
    }),
  );
}

function detailsText(error) {
  const details = error instanceof ApiError ? error.details : undefined;
  if (details === undefined || details === null || error.code !== "invalid_request") return "";
  const list = Array.isArray(details) ? details : (details.fields ?? details.issues ?? details);
  const parts = Array.isArray(list)
    ? list.map((item) => (typeof item === "object" ? [item.path ?? item.field, item.message].filter(Boolean).join(": ") : String(item)))
    : Object.entries(list).map(([field, problem]) => `${field}: ${typeof problem === "string" ? problem : JSON.stringify(problem)}`);
  return parts.length > 0 ? ` — ${parts.join("; ")}` : "";
}

function showNotice(text) {
  $("error").hidden = true;
  $("notice-text").textContent = text;
  $("notice").hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(hideNotice, NOTICE_SHOWN_MS);
}

function hideNotice() {
  clearTimeout(noticeTimer);
  $("notice").hidden = true;
}

// ---- who you are -------------------------------------------------------------------------------

function readStored(key) {
  try {
    return localStorage.getItem(key) ?? undefined;
  } catch {
    return undefined;
  }
}

function store(key, value) {
  try {
    if (value === undefined) localStorage.removeItem(key);
    else localStorage.setItem(key, value);
  } catch {
    // Storage refused (private mode): kept for this page only.
  }
}

function storeKey(key) {
  state.apiKey = key;
  store(KEY_STORAGE, key);
}

/** GET /api, with the key when there is one; then who the key belongs to. */
async function loadEntry() {
  state.keyProblem = undefined;
  state.keyError = undefined;
  state.me = undefined;
  if (state.apiKey) {
    try {
      state.entry = await follow({ href: ENTRY_POINT }, { apiKey: state.apiKey });
    } catch (error) {
      if (!(error instanceof ApiError) || error.code !== "unauthorized") throw error;
      state.keyProblem = `Your saved API key was not accepted: ${error.message}`;
      state.keyError = error;
      state.entry = await follow({ href: ENTRY_POINT });
    }
    const meLink = state.entry?._links?.me;
    if (meLink) {
      try {
        const answer = await follow(meLink, { apiKey: state.apiKey });
        state.me = answer?.scientist ?? answer;
      } catch (error) {
        if (!(error instanceof ApiError) || (error.code !== "unauthorized" && error.code !== "not_found")) throw error;
        state.keyProblem = `Your saved API key was not accepted: ${error.message}`;
        state.keyError = error;
      }
    } else if (!state.keyProblem) {
      state.keyProblem = "The API did not recognise your saved key.";
    }
  } else {
    state.entry = await follow({ href: ENTRY_POINT });
  }
  renderAccount();
}

function renderAccount() {
  const signedIn = state.apiKey !== undefined;
  $("signed-in").hidden = !signedIn;
  $("signed-out").hidden = signedIn && !state.keyProblem;
  $("key-shown").value = state.apiKey ?? "";
  $("key-problem").hidden = !state.keyProblem;
  $("key-problem").textContent = state.keyProblem ?? "";
  if (state.me) {
    $("me-name").textContent = state.me.name ?? state.me.id;
    const detail = [state.me.email, state.me.institution].filter(Boolean).join(", ");
    $("me-detail").textContent = detail ? `(${detail})` : "";
    $("whoami").hidden = false;
  } else {
    $("whoami").hidden = true;
  }
}

async function register(form, button) {
  const data = new FormData(form);
  const body = { name: String(data.get("name")).trim(), email: String(data.get("email")).trim() };
  const institution = String(data.get("institution") ?? "").trim();
  if (institution) body.institution = institution;
  await busy(button, "Registering…", async () => {
    const answer = await follow(state.entry?._links?.register, { body });
    storeKey(answer.apiKey);
    form.reset();
    await loadEntry();
    if (!state.me) state.me = answer.scientist;
    renderAccount();
    $("key-details").open = true;
    showNotice(
      `Welcome, ${answer.scientist?.name ?? body.name}. Your API key is kept in this browser; copy it from "Show my API key" to use it elsewhere.`,
    );
    await Promise.all([loadBookings(), reloadShown()]);
  });
}

async function useKey(form, button) {
  const key = String(new FormData(form).get("apiKey") ?? "").trim();
  if (!key) return;
  await busy(button, "Checking…", async () => {
    storeKey(key);
    await loadEntry();
    if (state.keyProblem) {
      const refusal = state.keyError ?? new ApiError("unauthorized", "The API did not recognise that key.", 401);
      storeKey(undefined);
      state.keyProblem = undefined;
      state.keyError = undefined;
      renderAccount();
      throw refusal;
    }
    form.reset();
    showNotice(`Welcome back, ${state.me?.name ?? "you"}.`);
    await Promise.all([loadBookings(), reloadShown()]);
  });
}

async function forgetKey() {
  storeKey(undefined);
  state.me = undefined;
  state.keyProblem = undefined;
  state.bookings = [];
  state.unsettled.clear();
  state.selection = undefined;
  renderAccount();
  renderBookings();
  showNotice("Signed out: the API key was removed from this browser.");
  try {
    await loadEntry();
    await reloadShown();
  } catch (error) {
    showError(error);
  }
}

function usableKey() {
  return state.keyProblem ? undefined : state.apiKey;
}

// ---- telescopes and days -----------------------------------------------------------------------

async function loadTelescopes() {
  const answer = await follow(state.entry._links.telescopes);
  state.telescopes = answer?.items ?? [];
  $("telescope").replaceChildren(
    ...state.telescopes.map((telescope) => {
      const option = document.createElement("option");
      option.value = telescope.id;
      option.textContent = `${telescope.name} (${telescope.slotMinutes}-minute slots)`;
      return option;
    }),
  );
  const saved = readStored(TELESCOPE_STORAGE);
  state.telescope = state.telescopes.find((t) => t.id === saved) ?? state.telescopes[0];
  if (state.telescope) $("telescope").value = state.telescope.id;
}

/**
 * The link to a chosen day: the telescope's `day` link is a URI template (`…/days/{day}`), which
 * the page fills in; it builds no URL of its own.
 */
function dayLink(telescope, day) {
  const template = telescope?._links?.day;
  if (template?.templated !== true || typeof template.href !== "string") throw new Error("the API gave no day link for this telescope");
  return { href: template.href.replace("{day}", encodeURIComponent(day)) };
}

async function showDay(link) {
  if (!link) return;
  const generation = ++state.dayLoads;
  state.dayWanted = { href: link.href }; // what a reload reads: the day asked for last, even before it arrives
  // Reading the shown day again (after an event) keeps its line; only another day says "Loading…".
  if (link.href !== state.day?._links?.self?.href) $("day-status").textContent = "Loading…";
  try {
    const day = await follow(link, { apiKey: usableKey() });
    if (generation !== state.dayLoads) return;
    const anotherDay = state.day?.telescopeId !== day.telescopeId || state.day?.day !== day.day;
    if (anotherDay) {
      state.selection = undefined;
      state.selectionNote = undefined;
    }
    state.day = day;
    // Only a move to another day sets the field: a reload of the shown day (after a live event)
    // would overwrite a day the scientist is typing, and their Enter would then change nothing
    // (a CI run of the browser test typed a day, a reload put today's back, and the page never moved).
    if (anotherDay) $("day").value = day.day;
    $("day-problem").textContent = "";
    render();
    scheduleOpening();
  } catch (error) {
    if (generation !== state.dayLoads) return;
    $("day-status").textContent = "";
    throw error;
  } finally {
    renderDayButtons();
  }
}

/** Reads what is shown again (after an event, a booking, a cancellation, a sign-in). */
async function reloadShown() {
  if (state.view === "week") await showWeek(state.week?.monday);
  const wanted = state.dayWanted ?? state.day?._links?.self;
  if (wanted) await showDay(wanted);
  else if (state.telescope) await showDay(state.telescope._links.today);
}

let dayRefresh;
function reloadDaySoon() {
  clearTimeout(dayRefresh);
  dayRefresh = setTimeout(() => {
    const wanted = state.dayWanted ?? state.day?._links?.self;
    if (wanted) showDay(wanted).catch(showError);
  }, 50);
}

let openingTimer;
/**
 * scheduleOpening redraws the day when its next slot opens for booking (opensAtUtc), by the
 * synchronised clock, so slots entering the horizon become bookable on screen at that instant.
 */
function scheduleOpening() {
  clearTimeout(openingTimer);
  const nowMs = serverNow();
  const next = (state.day?.slots ?? [])
    .map((slot) => Date.parse(slot.opensAtUtc ?? ""))
    .filter((opensAtMs) => Number.isFinite(opensAtMs) && opensAtMs > nowMs)
    .reduce((soonest, opensAtMs) => Math.min(soonest, opensAtMs), Number.POSITIVE_INFINITY);
  if (Number.isFinite(next) && next - nowMs < DAY_MS) {
    openingTimer = setTimeout(
      () => {
        render();
        scheduleOpening();
      },
      Math.max(0, next - nowMs),
    );
  }
}

function renderDayButtons() {
  const week = state.view === "week";
  $("prev-day").hidden = week;
  $("next-day").hidden = week;
  $("prev-day").disabled = !state.day?._links?.previous;
  $("next-day").disabled = !state.day?._links?.next;
}

function telescopeName(id) {
  return state.telescopes.find((t) => t.id === id)?.name ?? id;
}

function slotKey(telescopeId, startUtc) {
  return `${telescopeId}|${Date.parse(startUtc)}`;
}

/** inFlightSlots: the slot keys of every range being booked right now. */
function inFlightSlots() {
  const keys = new Set();
  for (const click of state.inFlight.values()) {
    const slotMs = (state.telescopes.find((t) => t.id === click.body.telescopeId)?.slotMinutes ?? 1) * 60_000;
    for (let ms = Date.parse(click.body.startUtc); ms < Date.parse(click.body.endUtc); ms += slotMs) {
      keys.add(`${click.body.telescopeId}|${ms}`);
    }
  }
  return keys;
}

/**
 * free | yours | taken | past | closed | booking: the server's state, aged by the synchronised
 * clock. "closed" is free but not open for booking yet (no `book` link, and its opensAtUtc still
 * ahead); once opensAtUtc has passed it is free, booked through the entry point's `book` link.
 */
function effectiveState(slot, telescopeId, inFlight) {
  if (inFlight.has(slotKey(telescopeId, slot.startUtc))) return "booking";
  if (slot.state === "free" && Date.parse(slot.startUtc) <= serverNow()) return "past";
  if (slot.state === "free" && !bookLinkOf(slot)) return "closed";
  return slot.state;
}

function bookLinkOf(slot) {
  if (slot._links?.book) return slot._links.book;
  const opensAtMs = Date.parse(slot.opensAtUtc ?? "");
  return Number.isFinite(opensAtMs) && opensAtMs <= serverNow() ? state.entry?._links?.book : undefined;
}

function selectionRules(day, inFlight) {
  const telescope = state.telescopes.find((t) => t.id === day.telescopeId);
  return {
    isBookable: (slot) => effectiveState(slot, day.telescopeId, inFlight) === "free",
    maxSlots: telescope?.slotsPerBookingMax ?? 12,
  };
}

/** The selection, if it belongs to the day shown. */
function currentSelection() {
  const day = state.day;
  return day && state.selection?.key === `${day.telescopeId}/${day.day}` ? state.selection : undefined;
}

// ---- drawing -----------------------------------------------------------------------------------

function render() {
  renderZoneNote();
  if (state.view === "week") renderWeek();
  else renderDay();
}

function renderDay() {
  const day = state.day;
  if (!day) return;
  const inFlight = inFlightSlots();
  const shown = day.slots.map((slot) => effectiveState(slot, day.telescopeId, inFlight));
  const selection = currentSelection();
  const conflicts = new Set();
  if (selection) {
    const { first, last } = bounds(selection);
    for (let index = first; index <= last; index += 1) if (shown[index] !== "free" && shown[index] !== "booking") conflicts.add(index);
  }
  const currentZone = zone();
  grid.render({
    key: `${day.telescopeId}/${day.day}`,
    slots: day.slots.map((slot, index) => ({
      startUtc: slot.startUtc,
      endUtc: slot.endUtc,
      shown: shown[index],
      opensText: shown[index] === "closed" && slot.opensAtUtc ? `opens ${rangeStart(Date.parse(slot.opensAtUtc))}` : undefined,
    })),
    zone: currentZone,
    offsetAt: (ms) => offsetOf(ms, currentZone),
    slotMinutes: day.slotMinutes,
    selected: selection ? bounds(selection) : undefined,
    conflicts,
    actionable: (index) => shown[index] === "free" || shown[index] === "yours",
    dateOf: (ms) => dateOf(ms, currentZone),
    dateLabel: (ms) => `${weekdayOf(dateOf(ms, currentZone))} ${dateOf(ms, currentZone)} (${offsetOf(ms, currentZone)})`,
  });
  $("day-status").textContent = describeDay(day, shown);
  renderSelection(day, shown, inFlight);
}

function rangeStart(ms) {
  return `${dateOf(ms, zone())} ${timeOf(ms, zone())} ${offsetOf(ms, zone())}`;
}

function describeDay(day, shown) {
  const count = (wanted) => shown.filter((one) => one === wanted).length;
  const closed = count("closed");
  const opensAt = day.slots.find((slot) => slot.opensAtUtc)?.opensAtUtc;
  const beyond = closed > 0 ? `; ${closed} not bookable yet${opensAt ? ` (the first opens ${rangeStart(Date.parse(opensAt))})` : ""}` : "";
  return `${telescopeName(day.telescopeId)}, ${day.day} (UTC): ${count("free")} free of ${day.slots.length} slots${beyond}`;
}

function weekdayOf(day) {
  return ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"][new Date(`${day}T00:00:00Z`).getUTCDay()];
}

/** renderZoneNote says which time is which: UTC days, and the hours in the zone chosen. */
function renderZoneNote() {
  const day = state.day?.day;
  const note = $("zone-note");
  if (!day) {
    note.textContent = "";
    return;
  }
  const startMs = Date.parse(`${day}T00:00:00Z`);
  if (state.timeMode === "utc") {
    const yours = offsetOf(startMs, BROWSER_ZONE);
    note.textContent = `Times in UTC. Days are UTC days, 00:00–24:00 UTC.${yours === UTC ? "" : ` Your time zone, ${BROWSER_ZONE}, is ${yours}.`}`;
    return;
  }
  const change = offsetChangeIn(startMs, startMs + DAY_MS, BROWSER_ZONE);
  note.textContent =
    `Times in your time zone, ${BROWSER_ZONE}. The UTC day ${day} runs ${rangeText(startMs, startMs + DAY_MS, BROWSER_ZONE)} there.` +
    (change ? ` Clocks change at ${timeOf(change.atMs, UTC)} UTC that day (${change.from} to ${change.to}).` : "");
}

function renderSelection(day, shown, inFlight) {
  const selection = currentSelection();
  const actions = $("selection-actions");
  const problemText = $("selection-problem");
  $("selection-bar").classList.toggle("active", selection !== undefined);
  if (!selection) {
    $("selection-text").textContent = "No slots selected.";
    actions.hidden = true;
    problemText.textContent = state.selectionNote ?? "";
    return;
  }
  const { first, last } = bounds(selection);
  const startMs = Date.parse(day.slots[first].startUtc);
  const endMs = Date.parse(day.slots[last].endUtc);
  const count = size(selection);
  $("selection-text").textContent =
    `Selected: ${telescopeName(day.telescopeId)} · ${whenText(startMs, endMs)} · ${count} slot${count === 1 ? "" : "s"} · ${durationText(endMs - startMs)}`;
  const rules = selectionRules(day, inFlight);
  const problem = problemOf(selection, day.slots, rules);
  const booking = shown.slice(first, last + 1).includes("booking");
  let text = state.selectionNote ?? "";
  if (problem?.reason === "not_bookable" && !booking) {
    const slot = day.slots[problem.index];
    const now = shown[problem.index];
    const what =
      now === "taken"
        ? "was just booked by someone else"
        : now === "yours"
          ? "is booked by you now"
          : `is ${now === "closed" ? "not bookable yet" : now}`;
    text = `${timeOf(Date.parse(slot.startUtc), zone())} ${what}: this range can no longer be booked. Choose another.`;
  } else if (problem?.reason === "too_long") {
    text = `A booking covers at most ${problem.maxSlots} slots.`;
  }
  problemText.textContent = text;
  actions.hidden = false;
  const book = $("selection-book");
  book.textContent = booking ? "Booking…" : `Book ${count} slot${count === 1 ? "" : "s"}`;
  book.disabled = problem !== undefined || booking;
  if (booking) book.setAttribute("aria-busy", "true");
  else book.removeAttribute("aria-busy");
  $("selection-shorter").disabled = count <= 1 || booking;
  $("selection-longer").disabled = count >= rules.maxSlots || booking;
}

// ---- selecting and booking ---------------------------------------------------------------------

const dayGridHandlers = {
  activate(index) {
    const day = state.day;
    const slot = day?.slots[index];
    if (!slot) return;
    const shown = effectiveState(slot, day.telescopeId, inFlightSlots());
    if (shown === "yours") {
      focusBooking(slot.bookingId);
      return;
    }
    if (shown === "closed" && slot.opensAtUtc) {
      showNotice(`${timeOf(Date.parse(slot.startUtc), zone())} is not bookable yet: it opens ${rangeStart(Date.parse(slot.opensAtUtc))}.`);
      return;
    }
    if (shown !== "free") return;
    const selection = currentSelection();
    const single = selection && selection.anchor === index && selection.end === index;
    state.selectionNote = undefined;
    state.selection = single ? undefined : { key: `${day.telescopeId}/${day.day}`, anchor: index, end: index };
    renderDay();
  },
  select(index) {
    const day = state.day;
    const slot = day?.slots[index];
    if (!slot || effectiveState(slot, day.telescopeId, inFlightSlots()) !== "free") return false;
    state.selectionNote = undefined;
    state.selection = { key: `${day.telescopeId}/${day.day}`, anchor: index, end: index };
    renderDay();
    return true;
  },
  extend(index) {
    const day = state.day;
    const selection = currentSelection();
    if (!day) return;
    if (!selection) {
      dayGridHandlers.select(index);
      return;
    }
    const { selection: extended, stoppedBy } = extendTo(selection, index, day.slots, selectionRules(day, inFlightSlots()));
    state.selection = { ...selection, ...extended };
    state.selectionNote = stopNote(day, stoppedBy);
    renderDay();
  },
  clear() {
    state.selection = undefined;
    state.selectionNote = undefined;
    renderDay();
  },
  changeDay(step) {
    const link = step < 0 ? state.day?._links?.previous : state.day?._links?.next;
    showDay(link)
      .then(() => grid.focusAt(grid.focusIndex))
      .catch(showError);
  },
};

function stopNote(day, stoppedBy) {
  if (stoppedBy?.reason === "too_long") return `A booking covers at most ${stoppedBy.maxSlots} slots: the range stops there.`;
  if (stoppedBy?.reason === "not_bookable") {
    const slot = day.slots[stoppedBy.index];
    return `A range is free slots in a row: it stops before ${timeOf(Date.parse(slot.startUtc), zone())}.`;
  }
  return undefined;
}

function resizeSelection(delta) {
  const day = state.day;
  const selection = currentSelection();
  if (!day || !selection) return;
  const { selection: resized, stoppedBy } = resize(selection, delta, day.slots, selectionRules(day, inFlightSlots()));
  state.selection = { ...selection, ...resized };
  state.selectionNote = stopNote(day, stoppedBy);
  renderDay();
}

function bookSelection() {
  const day = state.day;
  const selection = currentSelection();
  if (!day || !selection) return;
  const { first, last } = bounds(selection);
  const startSlot = day.slots[first];
  bookRange({ telescopeId: day.telescopeId, startUtc: startSlot.startUtc, endUtc: day.slots[last].endUtc }, bookLinkOf(startSlot));
}

/**
 * bookRange books `range` through the `book` link, as one request. One Idempotency-Key per click;
 * a click whose outcome stayed unknown (no answer, 503) is kept, and the next click on the same
 * range sends it again with the same key, so it can never book twice.
 */
async function bookRange(range, link) {
  if (!usableKey()) {
    showError(new ApiError("sign_in", "Register or paste your API key to book.", 0));
    return;
  }
  if (!link) {
    showError(new ApiError("no_link", "The API offers no way to book this range now.", 0));
    return;
  }
  const key = `${range.telescopeId}|${Date.parse(range.startUtc)}|${Date.parse(range.endUtc)}`;
  if (state.inFlight.has(key)) return;
  const click = state.unsettled.get(key) ?? newClick(range, { now: serverNow });
  state.inFlight.set(key, click);
  render();
  try {
    const booking = await sendBooking({ link, click, apiKey: state.apiKey, clock: state.clock });
    state.unsettled.delete(key);
    state.selection = undefined;
    state.selectionNote = undefined;
    markBooked(booking, true);
    upsertBooking(booking);
    const count = booking.slots?.length ?? 1;
    showNotice(
      `Booked ${telescopeName(booking.telescopeId)} ${whenText(Date.parse(booking.startUtc), Date.parse(booking.endUtc))}: ${count} slot${count === 1 ? "" : "s"} (order ${booking.order}).`,
    );
  } catch (error) {
    if (mayNotBeDecided(error)) state.unsettled.set(key, click);
    else state.unsettled.delete(key);
    showError(error);
  } finally {
    state.inFlight.delete(key);
    render();
  }
  reloadDaySoon();
  loadBookings().catch(showError);
}

/** Marks a booking's slots in the shown day at once (from a booking answer or a live event). */
function markBooked(booking, mine) {
  const day = state.day;
  if (!day || booking.telescopeId !== day.telescopeId) return;
  const starts = new Set((booking.slots ?? [booking.startUtc]).map((s) => Date.parse(s)));
  let changed = false;
  day.slots = day.slots.map((slot) => {
    if (!starts.has(Date.parse(slot.startUtc))) return slot;
    changed = true;
    return { startUtc: slot.startUtc, endUtc: slot.endUtc, state: mine ? "yours" : "taken", bookingId: booking.id, _links: {} };
  });
  if (changed && state.view === "day") renderDay();
}

// ---- the week ----------------------------------------------------------------------------------

async function showWeek(monday = weekStartOf(state.day?.day ?? dateOf(serverNow(), UTC))) {
  const telescope = state.telescope;
  if (!telescope) return;
  const days = daysOfWeek(monday);
  if (state.week?.monday !== monday || state.week?.telescopeId !== telescope.id) {
    state.week = { telescopeId: telescope.id, monday, days: new Map() };
  }
  renderWeek();
  await Promise.all(days.map((day) => loadWeekDay(telescope, day)));
}

async function loadWeekDay(telescope, day) {
  const answer = await follow(dayLink(telescope, day), { apiKey: usableKey() });
  // An answer for a week or telescope no longer shown is dropped.
  if (state.week?.monday !== weekStartOf(day) || state.week?.telescopeId !== telescope.id) return;
  state.week.days.set(day, answer);
  if (state.view === "week") renderWeek();
}

const weekDayRefreshes = new Map();
function reloadWeekDaySoon(day) {
  clearTimeout(weekDayRefreshes.get(day));
  weekDayRefreshes.set(
    day,
    setTimeout(() => {
      weekDayRefreshes.delete(day);
      if (state.week && state.telescope) loadWeekDay(state.telescope, day).catch(showError);
    }, 50),
  );
}

function renderWeek() {
  const week = state.week;
  if (!week) return;
  const inFlight = inFlightSlots();
  const days = daysOfWeek(week.monday).map((day) => {
    const answer = week.days.get(day);
    return {
      day,
      slots: answer?.slots.map((slot) => ({ startUtc: slot.startUtc, shown: effectiveState(slot, week.telescopeId, inFlight) })),
    };
  });
  const mondayMs = Date.parse(`${week.monday}T00:00:00Z`);
  weekView.render({
    key: `${week.telescopeId}/${week.monday}/${zone()}`,
    days,
    zone: zone(),
    zoneLabel: state.timeMode === "local" ? offsetOf(mondayMs, BROWSER_ZONE) : UTC,
    offsetAt: (ms) => offsetOf(ms, zone()),
    selectedDay: state.day?.day,
    today: dateOf(serverNow(), UTC),
    weekdayOf,
  });
  const loaded = days.filter((entry) => entry.slots !== undefined).length;
  $("day-status").textContent =
    `${telescopeName(week.telescopeId)}, the week of ${week.monday} to ${days[6].day} (UTC days)${loaded < 7 ? `: loading ${7 - loaded} of 7 days…` : ""}`;
  const change = state.timeMode === "local" ? offsetChangeIn(mondayMs, mondayMs + 7 * DAY_MS, BROWSER_ZONE) : undefined;
  $("week-note").textContent = change
    ? `${BROWSER_ZONE} changes from ${change.from} to ${change.to} on ${dateOf(change.atMs, BROWSER_ZONE)}: from then on, each row is ${change.to > change.from ? "an hour later" : "an hour earlier"} in local time than its label (labels are for ${week.monday}).`
    : "";
}

const weekHandlers = {
  open(day, hour) {
    setView("day");
    const telescope = state.telescope;
    showDay(dayLink(telescope, day))
      .then(() => grid.focusAt(Math.floor((hour * 60) / (state.day?.slotMinutes ?? 60))))
      .catch(showError);
  },
  changeWeek(step) {
    const monday = state.week?.monday ?? weekStartOf(dateOf(serverNow(), UTC));
    showWeek(new Date(Date.parse(`${monday}T00:00:00Z`) + step * 7 * DAY_MS).toISOString().slice(0, 10))
      .then(() => weekView.focusCell(weekView.focus.column, weekView.focus.hour))
      .catch(showError);
  },
};

function setView(view) {
  state.view = view;
  $("view-day").setAttribute("aria-pressed", String(view === "day"));
  $("view-week").setAttribute("aria-pressed", String(view === "week"));
  $("day-view").hidden = view !== "day";
  $("week-view").hidden = view !== "week";
  renderDayButtons();
}

// ---- my bookings -------------------------------------------------------------------------------

async function loadBookings() {
  const first = state.entry?._links?.["my-bookings"];
  if (!usableKey() || !first) {
    state.bookings = [];
    renderBookings();
    return;
  }
  const generation = ++state.bookingLoads;
  const items = [];
  let link = first;
  let pages = 0;
  // Every page, bounded: filters, orders and paging are the person's, over all of their bookings.
  while (link && pages < BOOKING_PAGES_MAX) {
    const answer = await follow(link, { apiKey: state.apiKey });
    if (generation !== state.bookingLoads) return;
    items.push(...(answer?.items ?? []));
    link = answer?._links?.next;
    pages += 1;
  }
  state.bookings = items;
  state.bookingsMore = link !== undefined;
  renderBookings();
}

let bookingsRefresh;
function loadBookingsSoon() {
  clearTimeout(bookingsRefresh);
  bookingsRefresh = setTimeout(() => loadBookings().catch(showError), 50);
}

function upsertBooking(booking) {
  const index = state.bookings.findIndex((b) => b.id === booking.id);
  if (index >= 0) state.bookings[index] = booking;
  else state.bookings.push(booking);
  renderBookings();
}

function renderBookings() {
  const list = $("bookings");
  const signedIn = Boolean(usableKey());
  const { items, page, pages, total } = pageOf(state.bookings, { ...state.list, nowMs: serverNow() });
  state.list.page = page;
  $("list-controls").hidden = !signedIn || state.bookings.length === 0;
  const filterWord = { upcoming: "upcoming", past: "past", cancelled: "cancelled", all: "" }[state.list.filter];
  $("bookings-status").textContent = !signedIn
    ? "Register or paste your API key to see your bookings."
    : state.bookings.length === 0
      ? "No bookings yet. Select free slots and book them."
      : total === 0
        ? `No ${filterWord} bookings.`
        : `${total} ${filterWord ? `${filterWord} ` : ""}booking${total === 1 ? "" : "s"}${state.bookingsMore ? ` (of your first ${state.bookings.length})` : ""}.`;
  list.replaceChildren(...items.map(bookingItem));
  $("pager").hidden = !signedIn || pages <= 1;
  $("page-status").textContent = `Page ${page + 1} of ${pages}`;
  $("page-prev").disabled = page === 0;
  $("page-next").disabled = page >= pages - 1;
}

function bookingItem(booking) {
  const item = document.createElement("li");
  item.dataset.bookingId = booking.id;
  item.className = booking.status;
  const what = document.createElement("span");
  const when = document.createElement("span");
  when.className = "when";
  const startMs = Date.parse(booking.startUtc);
  const endMs = Date.parse(booking.endUtc);
  const describe = `${telescopeName(booking.telescopeId)} ${whenText(startMs, endMs)}`;
  when.textContent = `${telescopeName(booking.telescopeId)} · ${whenText(startMs, endMs)}`;
  const status = document.createElement("span");
  status.className = "status muted";
  const count = booking.slots?.length ?? 1;
  status.textContent = ` ${count} slot${count === 1 ? "" : "s"}, ${durationText(endMs - startMs)} · ${booking.status}${Number.isInteger(booking.order) ? ` · order ${booking.order}` : ""}`;
  what.append(when, status);
  item.append(what);
  const cancel = booking._links?.cancel;
  if (cancel) {
    const button = document.createElement("button");
    button.type = "button";
    const cancelling = state.cancelling.has(booking.id);
    button.textContent = cancelling ? "Cancelling…" : "Cancel";
    button.disabled = cancelling;
    if (cancelling) button.setAttribute("aria-busy", "true");
    button.setAttribute("aria-label", `Cancel booking ${describe}`);
    button.addEventListener("click", () => confirmCancel(booking));
    item.append(button);
  }
  return item;
}

/** confirmCancel asks first (a dialog that defaults to keeping the booking), then follows the cancel link. */
function confirmCancel(booking) {
  const dialog = $("confirm-cancel");
  const count = booking.slots?.length ?? 1;
  $("confirm-what").textContent =
    `${telescopeName(booking.telescopeId)}, ${whenText(Date.parse(booking.startUtc), Date.parse(booking.endUtc))}: ${count} slot${count === 1 ? "" : "s"}.`;
  dialog.returnValue = "";
  dialog.onclose = () => {
    if (dialog.returnValue === "cancel") cancelBooking(booking);
  };
  dialog.showModal();
}

async function cancelBooking(booking) {
  const link = booking._links?.cancel;
  if (!link || state.cancelling.has(booking.id)) return;
  // Kept in the state, not on the button: the list may be drawn again while the request is out.
  state.cancelling.add(booking.id);
  renderBookings();
  const when = whenText(Date.parse(booking.startUtc), Date.parse(booking.endUtc));
  try {
    const cancelled = await withRetries(() => follow(link, { apiKey: state.apiKey }), { clock: state.clock });
    if (cancelled && typeof cancelled === "object" && cancelled.id) upsertBooking(cancelled);
    showNotice(`Cancelled ${telescopeName(booking.telescopeId)} ${when}.`);
  } catch (error) {
    // A retry whose first attempt went through answers already_cancelled: the wish is granted.
    if (error instanceof ApiError && error.code === "already_cancelled") showNotice(`${when} was already cancelled.`);
    else showError(error);
  } finally {
    state.cancelling.delete(booking.id);
    renderBookings();
    reloadDaySoon();
    loadBookingsSoon();
  }
}

/** focusBooking shows one of your bookings in the list (from its slot in the grid). */
function focusBooking(bookingId) {
  const booking = state.bookings.find((b) => b.id === bookingId);
  if (!booking) return;
  const nowMs = serverNow();
  const visible = (filter) => pageOf(state.bookings, { ...state.list, filter, page: 0, nowMs, pageSize: Number.MAX_SAFE_INTEGER });
  if (!visible(state.list.filter).items.includes(booking)) setFilter("all");
  const ordered = visible(state.list.filter).items;
  state.list.page = Math.floor(ordered.indexOf(booking) / 10);
  renderBookings();
  const item = document.querySelector(`li[data-booking-id="${CSS.escape(bookingId)}"]`);
  item?.scrollIntoView({ block: "nearest" });
  (item?.querySelector("button") ?? item)?.focus?.();
}

function setFilter(filter) {
  state.list.filter = filter;
  state.list.page = 0;
  for (const input of document.querySelectorAll('input[name="list-filter"]')) input.checked = input.value === filter;
}

// ---- live events -------------------------------------------------------------------------------

function startEvents() {
  const link = state.entry?._links?.events;
  if (!link || state.events) return;
  state.events = new LiveEvents({
    href: link.href,
    onEvent: onBookingEvent,
    onResync: () => {
      reloadDaySoon();
      if (state.view === "week" && state.week) for (const day of daysOfWeek(state.week.monday)) reloadWeekDaySoon(day);
      if (usableKey()) loadBookingsSoon();
    },
    onStatus: ({ state: status, retryInMs }) => {
      const element = $("live-status");
      element.dataset.state = status;
      element.textContent =
        status === "live"
          ? "Live updates: on"
          : status === "reconnecting"
            ? `Live updates: connection lost, retrying in ${Math.ceil(retryInMs / 1000)} s`
            : "Live updates: connecting…";
    },
  });
  state.events.start();
}

function onBookingEvent(event) {
  const booking = event.booking;
  if (!booking || typeof booking !== "object") return;
  const starts = new Set((booking.slots ?? []).map((s) => Date.parse(s)));
  const day = state.day;
  if (day && booking.telescopeId === day.telescopeId && day.slots.some((slot) => starts.has(Date.parse(slot.startUtc)))) {
    // Show a new booking at once (a selected range it touches is marked no longer free, before any
    // click); the day is then read again for the exact states and links (a freed slot's `book`
    // link comes only from the server).
    if (event.type === "BOOKING_CREATED") markBooked(booking, Boolean(state.me && booking.scientistId === state.me.id));
    reloadDaySoon();
  }
  const week = state.week;
  if (week && booking.telescopeId === week.telescopeId) {
    const days = new Set((booking.slots ?? []).map((s) => String(s).slice(0, 10)));
    for (const shown of daysOfWeek(week.monday)) if (days.has(shown)) reloadWeekDaySoon(shown);
  }
  if (state.me && booking.scientistId === state.me.id) loadBookingsSoon();
}

// ---- wiring ------------------------------------------------------------------------------------

/** Runs `task` with `button` showing `label` and disabled; always restores it, and shows errors. */
async function busy(button, label, task) {
  const original = button.textContent;
  button.disabled = true;
  button.setAttribute("aria-busy", "true");
  button.textContent = label;
  try {
    await task();
  } catch (error) {
    showError(error);
  } finally {
    button.textContent = original;
    button.disabled = false;
    button.removeAttribute("aria-busy");
  }
}

/** dayProblem: why the day input is not a day, or undefined (it must be an ISO date that exists). */
function dayProblem(text) {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return `"${text}" is not a day: write it as YYYY-MM-DD, for example ${dateOf(serverNow(), UTC)}.`;
  const midnight = Date.parse(`${text}T00:00:00Z`);
  if (!Number.isFinite(midnight) || new Date(midnight).toISOString().slice(0, 10) !== text) return `${text} is not a day of the calendar.`;
  return undefined;
}

function goToTypedDay() {
  const text = $("day").value.trim();
  const problem = dayProblem(text);
  $("day-problem").textContent = problem ?? "";
  $("day").setAttribute("aria-invalid", String(problem !== undefined));
  if (problem !== undefined) return;
  if (!state.telescope) {
    state.dayTyped = text; // shown once the telescopes have arrived, instead of today
    return;
  }
  if (state.view === "week") showWeek(weekStartOf(text)).catch(showError);
  showDay(dayLink(state.telescope, text)).catch(showError);
}

function wire() {
  grid = new DayGrid($("grid"), dayGridHandlers);
  weekView = new WeekView($("week"), weekHandlers);
  $("error-dismiss").addEventListener("click", () => {
    $("error").hidden = true;
  });
  $("notice-dismiss").addEventListener("click", hideNotice);
  $("register-form").addEventListener("submit", (event) => {
    event.preventDefault();
    register(event.currentTarget, event.submitter ?? event.currentTarget.querySelector("button"));
  });
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    useKey(event.currentTarget, event.submitter ?? event.currentTarget.querySelector("button"));
  });
  $("forget-key").addEventListener("click", forgetKey);
  $("clock-resync").addEventListener("click", () => syncClock());
  for (const input of document.querySelectorAll('input[name="time-mode"]')) {
    input.checked = input.value === state.timeMode;
    input.addEventListener("change", () => {
      state.timeMode = input.value === "local" ? "local" : "utc";
      store(TIME_MODE_STORAGE, state.timeMode);
      render();
      renderBookings();
    });
  }
  $("zone-name").textContent = BROWSER_ZONE;
  $("clock-local-line").hidden = BROWSER_ZONE === UTC; // the UTC clock beside it says it all
  $("telescope").addEventListener("change", (event) => {
    state.telescope = state.telescopes.find((t) => t.id === event.currentTarget.value);
    store(TELESCOPE_STORAGE, state.telescope?.id);
    const chosen = state.day?.day;
    if (state.view === "week") showWeek(state.week?.monday).catch(showError);
    showDay(chosen ? dayLink(state.telescope, chosen) : state.telescope?._links?.today).catch(showError);
  });
  $("view-day").addEventListener("click", () => {
    setView("day");
    render();
  });
  $("view-week").addEventListener("click", () => {
    setView("week");
    showWeek().catch(showError);
  });
  $("day-form").addEventListener("submit", (event) => {
    event.preventDefault();
    goToTypedDay();
  });
  $("day").addEventListener("change", goToTypedDay);
  $("prev-day").addEventListener("click", () => showDay(state.day?._links?.previous).catch(showError));
  $("next-day").addEventListener("click", () => showDay(state.day?._links?.next).catch(showError));
  $("today").addEventListener("click", () => {
    if (state.view === "week") showWeek(weekStartOf(dateOf(serverNow(), UTC))).catch(showError);
    showDay(state.telescope?._links?.today).catch(showError);
  });
  $("prev-week").addEventListener("click", () => weekHandlers.changeWeek(-1));
  $("next-week").addEventListener("click", () => weekHandlers.changeWeek(1));
  $("selection-shorter").addEventListener("click", () => resizeSelection(-1));
  $("selection-longer").addEventListener("click", () => resizeSelection(1));
  $("selection-clear").addEventListener("click", () => dayGridHandlers.clear());
  $("selection-book").addEventListener("click", bookSelection);
  for (const input of document.querySelectorAll('input[name="list-filter"]')) {
    input.addEventListener("change", () => {
      setFilter(input.value);
      renderBookings();
    });
  }
  $("list-sort").addEventListener("change", (event) => {
    state.list.sort = event.currentTarget.value;
    state.list.page = 0;
    renderBookings();
  });
  $("page-prev").addEventListener("click", () => {
    state.list.page -= 1;
    renderBookings();
  });
  $("page-next").addEventListener("click", () => {
    state.list.page += 1;
    renderBookings();
  });
  document.addEventListener("visibilitychange", () => {
    const synced = state.clock?.estimate;
    if (document.visibilityState === "visible" && synced && state.clock.localNow() - synced.syncedAtLocalMs > 60_000) syncClock();
  });
  // The displayed time ticks every second; every 15 s the views age free slots into past ones.
  // Both are local: the server is asked only for the clock, every few minutes.
  let ticks = 0;
  setInterval(() => {
    renderClock();
    ticks += 1;
    if (ticks % 15 === 0) render();
  }, 1_000);
  setInterval(() => syncClock(), CLOCK_RESYNC_MS);
}

async function main() {
  wire();
  renderAccount();
  renderBookings();
  renderClock();
  try {
    await loadEntry();
  } catch (error) {
    showError(error);
    $("day-status").textContent = "The booking API is not reachable. Reload the page to try again.";
    return;
  }
  const clockReady = syncClock();
  startEvents();
  try {
    await loadTelescopes();
    const first = state.dayTyped === undefined ? state.telescope?._links?.today : dayLink(state.telescope, state.dayTyped);
    await Promise.all([state.telescope ? showDay(first) : undefined, loadBookings()]);
  } catch (error) {
    showError(error);
  }
  await clockReady;
}

main();
