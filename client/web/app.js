// The booking page: plain DOM, no framework. Everything it does goes through the links the API
// hands out (docs/API.md); the one URL it knows is the entry point `/api`.
import { ApiError, describeError, ENTRY_POINT, follow } from "./api.js";
import { mayNotBeDecided, newClick, ServerClock, sendBooking, withRetries } from "./booking.js";
import { formatOffset } from "./clock.js";
import { LiveEvents } from "./events.js";

const KEY_STORAGE = "sctec.apiKey";
const TELESCOPE_STORAGE = "sctec.telescopeId";
const CLOCK_RESYNC_MS = 5 * 60_000;

const $ = (id) => document.getElementById(id);

const state = {
  apiKey: readStoredKey(),
  keyProblem: undefined, // why the stored key does not work, when it does not
  keyError: undefined, // the API's answer that refused it
  entry: undefined, // GET /api (with the key when there is one)
  me: undefined,
  telescopes: [],
  telescope: undefined,
  day: undefined, // GET …/days/{day}
  dayWanted: undefined, // the link of the day asked for last
  dayLoads: 0, // generation counter: an older answer never overwrites a newer one
  bookings: [],
  bookingsNext: undefined,
  bookingLoads: 0,
  booking: new Map(), // slot key -> the click in flight (booking.js newClick)
  cancelling: new Set(), // ids of bookings whose cancel is in flight
  unsettled: new Map(), // slot key -> a click whose outcome is unknown: clicking again retries it with the same key
  clock: undefined, // a ServerClock (booking.js) over the `time` link
  events: undefined,
};

// ---- clock ----------------------------------------------------------------------------------

/** The server's clock as far as Cristian's algorithm knows it (the local clock until the first sync). */
function serverNow() {
  return state.clock ? state.clock.now() : performance.timeOrigin + performance.now();
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
  renderGrid(); // "past" depends on the clock
}

function renderClock() {
  const now = new Date(serverNow());
  $("clock-now").textContent = now.toISOString().slice(11, 19);
  $("clock-now").dateTime = now.toISOString();
  const clock = state.clock?.estimate;
  if (clock) {
    const synced = new Date(clock.syncedAtLocalMs + clock.offsetMs).toISOString().slice(11, 19);
    $("clock-sync").textContent =
      `offset ${formatOffset(clock.offsetMs, clock.uncertaintyMs)} · best round trip ${clock.rttMs.toFixed(1)} ms of ${clock.samples} samples · synced ${synced} UTC`;
  }
}

// ---- messages -------------------------------------------------------------------------------

function showError(error) {
  const { title, message, code } = describeError(error);
  $("error-title").textContent = `${title}:`;
  $("error-text").textContent = message + detailsText(error);
  $("error-code").textContent = code ? `(${code})` : "";
  $("error").hidden = false;
  $("notice").textContent = "";
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
  $("notice").textContent = text;
}

// ---- who you are ----------------------------------------------------------------------------

function readStoredKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) ?? undefined;
  } catch {
    return undefined;
  }
}

function storeKey(key) {
  state.apiKey = key;
  try {
    if (key === undefined) localStorage.removeItem(KEY_STORAGE);
    else localStorage.setItem(KEY_STORAGE, key);
  } catch {
    // Storage refused (private mode): the key lives for this page only.
  }
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
    const link = state.entry?._links?.register;
    const answer = await follow(link, { body });
    storeKey(answer.apiKey);
    form.reset();
    await loadEntry();
    if (!state.me) state.me = answer.scientist;
    renderAccount();
    $("key-details").open = true;
    showNotice(
      `Welcome, ${answer.scientist?.name ?? body.name}. Your API key is kept in this browser; copy it from "Show my API key" to use it elsewhere.`,
    );
    await Promise.all([loadBookings(), reloadDay()]);
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
    await Promise.all([loadBookings(), reloadDay()]);
  });
}

async function forgetKey() {
  storeKey(undefined);
  state.me = undefined;
  state.keyProblem = undefined;
  state.bookings = [];
  state.bookingsNext = undefined;
  state.unsettled.clear();
  renderAccount();
  renderBookings();
  showNotice("Signed out: the API key was removed from this browser.");
  try {
    await loadEntry();
    await reloadDay();
  } catch (error) {
    showError(error);
  }
}

// ---- telescopes and days --------------------------------------------------------------------

async function loadTelescopes() {
  const answer = await follow(state.entry._links.telescopes);
  state.telescopes = answer?.items ?? [];
  const select = $("telescope");
  select.replaceChildren(
    ...state.telescopes.map((telescope) => {
      const option = document.createElement("option");
      option.value = telescope.id;
      option.textContent = `${telescope.name} (${telescope.slotMinutes}-minute slots)`;
      return option;
    }),
  );
  let saved;
  try {
    saved = localStorage.getItem(TELESCOPE_STORAGE);
  } catch {
    saved = null;
  }
  state.telescope = state.telescopes.find((t) => t.id === saved) ?? state.telescopes[0];
  if (state.telescope) select.value = state.telescope.id;
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
  $("day-status").textContent = "Loading…";
  try {
    const day = await follow(link, { apiKey: usableKey() });
    if (generation !== state.dayLoads) return;
    state.day = day;
    $("day").value = day.day;
    $("day-status").textContent = describeDay(day);
    renderGrid();
  } catch (error) {
    if (generation !== state.dayLoads) return;
    $("day-status").textContent = "";
    throw error;
  } finally {
    renderDayButtons();
  }
}

/** Reads the shown day again (after an event, a booking, a cancellation, a sign-in). */
async function reloadDay() {
  const wanted = state.dayWanted ?? state.day?._links?.self;
  if (wanted) await showDay(wanted);
  else if (state.telescope) await showDay(state.telescope._links.today);
}

let dayRefresh;
function reloadDaySoon() {
  clearTimeout(dayRefresh);
  dayRefresh = setTimeout(() => reloadDay().catch(showError), 50);
}

function usableKey() {
  return state.keyProblem ? undefined : state.apiKey;
}

function renderDayButtons() {
  $("prev-day").disabled = !state.day?._links?.previous;
  $("next-day").disabled = !state.day?._links?.next;
}

function describeDay(day) {
  const count = (wanted) => day.slots.filter((slot) => effectiveState(slot) === wanted).length;
  const closed = count("closed");
  const horizon = state.telescopes.find((t) => t.id === day.telescopeId)?.horizonDays;
  const beyond = closed > 0 ? `; ${closed} not bookable yet${horizon ? ` (bookings open ${horizon} days ahead)` : ""}` : "";
  return `${telescopeName(day.telescopeId)}, ${day.day}: ${count("free")} free of ${day.slots.length} slots${beyond}`;
}

function telescopeName(id) {
  return state.telescopes.find((t) => t.id === id)?.name ?? id;
}

function slotKey(telescopeId, startUtc) {
  return `${telescopeId}|${Date.parse(startUtc)}`;
}

function hhmm(iso) {
  return new Date(iso).toISOString().slice(11, 16);
}

/**
 * free | yours | taken | past | closed | booking: the server's state, aged by the synchronised
 * clock; "closed" is free but without a `book` link (beyond the booking horizon).
 */
function effectiveState(slot) {
  if (state.day && state.booking.has(slotKey(state.day.telescopeId, slot.startUtc))) return "booking";
  if (slot.state === "free" && Date.parse(slot.startUtc) <= serverNow()) return "past";
  if (slot.state === "free" && !slot._links?.book) return "closed";
  return slot.state;
}

const LABELS = { free: "free", yours: "yours", taken: "taken", past: "past", closed: "not bookable yet", booking: "booking…" };

function renderGrid() {
  const grid = $("grid");
  const day = state.day;
  if (!day) {
    grid.replaceChildren();
    return;
  }
  const layout = `${day.telescopeId}/${day.day}/${day.slots.length}`;
  if (grid.dataset.layout !== layout) {
    grid.dataset.layout = layout;
    const perRow = Math.max(1, Math.min(12, Math.floor(60 / (day.slotMinutes || 60))));
    grid.style.setProperty("--per-hour", String(perRow));
    const rows = [];
    for (let i = 0; i < day.slots.length; i += perRow) {
      const row = document.createElement("div");
      row.className = "hour";
      const label = document.createElement("span");
      label.className = "hour-label";
      label.setAttribute("aria-hidden", "true");
      label.textContent = hhmm(day.slots[i].startUtc);
      row.append(label);
      for (let j = i; j < Math.min(i + perRow, day.slots.length); j += 1) {
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.index = String(j);
        row.append(button);
      }
      rows.push(row);
    }
    grid.replaceChildren(...rows);
  }
  for (const button of grid.querySelectorAll("button.slot, button[data-index]")) {
    const slot = day.slots[Number(button.dataset.index)];
    const shown = effectiveState(slot);
    const time = hhmm(slot.startUtc);
    button.className = `slot ${shown}`;
    const hours = document.createElement("span");
    hours.className = "hh";
    hours.textContent = time.slice(0, 2);
    button.replaceChildren(hours, time.slice(2));
    button.dataset.testid = "slot";
    button.dataset.start = slot.startUtc;
    button.dataset.state = shown;
    button.setAttribute("aria-label", `${time} ${LABELS[shown] ?? shown}`);
    button.title = `${time}–${hhmm(slot.endUtc)} UTC: ${LABELS[shown] ?? shown}`;
    const bookable = shown === "free" && Boolean(slot._links?.book);
    button.disabled = !(bookable || shown === "yours");
    if (shown === "booking") button.setAttribute("aria-busy", "true");
    else button.removeAttribute("aria-busy");
  }
}

async function onSlotClick(button) {
  const day = state.day;
  if (!day) return;
  const slot = day.slots[Number(button.dataset.index)];
  if (!slot) return;
  const shown = effectiveState(slot);
  if (shown === "yours") {
    focusBooking(slot.bookingId);
    return;
  }
  if (shown !== "free" || !slot._links?.book) return;
  if (!usableKey()) {
    showError(new ApiError("sign_in", "Register or paste your API key to book a slot.", 0));
    return;
  }
  await book(day, slot);
}

async function book(day, slot) {
  const key = slotKey(day.telescopeId, slot.startUtc);
  if (state.booking.has(key)) return;
  // One Idempotency-Key per click; a click whose outcome stayed unknown (no answer, 503) is
  // retried with the same key, so it can never book twice.
  const click =
    state.unsettled.get(key) ??
    newClick({ telescopeId: day.telescopeId, startUtc: slot.startUtc, endUtc: slot.endUtc }, { now: serverNow });
  state.booking.set(key, click);
  renderGrid();
  try {
    const booking = await sendBooking({ link: slot._links.book, click, apiKey: state.apiKey, clock: state.clock });
    state.unsettled.delete(key);
    markYours(booking);
    upsertBooking(booking);
    showNotice(`Booked ${telescopeName(booking.telescopeId)} ${describeWhen(booking)} (order ${booking.order}).`);
  } catch (error) {
    if (mayNotBeDecided(error)) state.unsettled.set(key, click);
    else state.unsettled.delete(key);
    showError(error);
  } finally {
    state.booking.delete(key);
    renderGrid();
  }
  reloadDaySoon();
  loadBookings().catch(showError);
}

/** Marks a booking's slots in the shown day (from a booking answer or a live event). */
function markYours(booking, mine = true) {
  const day = state.day;
  if (!day || booking.telescopeId !== day.telescopeId) return;
  const starts = new Set((booking.slots ?? [booking.startUtc]).map((s) => Date.parse(s)));
  let changed = false;
  day.slots = day.slots.map((slot) => {
    if (!starts.has(Date.parse(slot.startUtc))) return slot;
    changed = true;
    return { startUtc: slot.startUtc, endUtc: slot.endUtc, state: mine ? "yours" : "taken", bookingId: booking.id, _links: {} };
  });
  if (changed) renderGrid();
}

// ---- my bookings ----------------------------------------------------------------------------

async function loadBookings(more = false) {
  const link = more ? state.bookingsNext : state.entry?._links?.["my-bookings"];
  if (!usableKey() || !link) {
    state.bookings = [];
    state.bookingsNext = undefined;
    renderBookings();
    return;
  }
  const generation = ++state.bookingLoads;
  const answer = await follow(link, { apiKey: state.apiKey });
  if (generation !== state.bookingLoads) return;
  const items = answer?.items ?? [];
  state.bookings = more ? [...state.bookings, ...items] : items;
  state.bookingsNext = answer?._links?.next;
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
  state.bookings.sort((a, b) => Date.parse(a.startUtc) - Date.parse(b.startUtc));
  renderBookings();
}

function describeWhen(booking) {
  return `${booking.startUtc.slice(0, 10)} ${hhmm(booking.startUtc)}–${hhmm(booking.endUtc)} UTC`;
}

function renderBookings() {
  const list = $("bookings");
  const signedIn = Boolean(usableKey());
  $("bookings-status").textContent = !signedIn
    ? "Register or paste your API key to see your bookings."
    : state.bookings.length === 0
      ? "No bookings yet. Click a free slot to book it."
      : "";
  list.replaceChildren(
    ...state.bookings.map((booking) => {
      const item = document.createElement("li");
      item.dataset.bookingId = booking.id;
      item.className = booking.status;
      const what = document.createElement("span");
      const when = document.createElement("span");
      when.className = "when";
      when.textContent = `${telescopeName(booking.telescopeId)} · ${describeWhen(booking)}`;
      const status = document.createElement("span");
      status.className = "status muted";
      status.textContent = ` ${booking.status}${Number.isInteger(booking.order) ? ` · order ${booking.order}` : ""}`;
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
        button.setAttribute("aria-label", `Cancel booking ${telescopeName(booking.telescopeId)} ${describeWhen(booking)}`);
        button.addEventListener("click", () => cancelBooking(booking));
        item.append(button);
      }
      return item;
    }),
  );
  $("bookings-more").hidden = !signedIn || !state.bookingsNext;
}

async function cancelBooking(booking) {
  const link = booking._links?.cancel;
  if (!link || state.cancelling.has(booking.id)) return;
  // Kept in the state, not on the button: the list may be drawn again while the request is out.
  state.cancelling.add(booking.id);
  renderBookings();
  try {
    const cancelled = await withRetries(() => follow(link, { apiKey: state.apiKey }));
    if (cancelled && typeof cancelled === "object" && cancelled.id) upsertBooking(cancelled);
    showNotice(`Cancelled ${telescopeName(booking.telescopeId)} ${describeWhen(booking)}.`);
  } catch (error) {
    // A retry whose first attempt went through answers already_cancelled: the wish is granted.
    if (error instanceof ApiError && error.code === "already_cancelled") showNotice(`${describeWhen(booking)} was already cancelled.`);
    else showError(error);
  } finally {
    state.cancelling.delete(booking.id);
    renderBookings();
    reloadDaySoon();
    loadBookingsSoon();
  }
}

function focusBooking(bookingId) {
  const item = bookingId ? document.querySelector(`li[data-booking-id="${CSS.escape(bookingId)}"]`) : null;
  if (!item) return;
  item.scrollIntoView({ block: "nearest" });
  item.querySelector("button")?.focus();
}

// ---- live events ----------------------------------------------------------------------------

function startEvents() {
  const link = state.entry?._links?.events;
  if (!link || state.events) return;
  state.events = new LiveEvents({
    href: link.href,
    onEvent: onBookingEvent,
    onResync: () => {
      reloadDaySoon();
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
  const day = state.day;
  if (day && booking.telescopeId === day.telescopeId) {
    const starts = new Set((booking.slots ?? []).map((s) => Date.parse(s)));
    const touches = day.slots.some((slot) => starts.has(Date.parse(slot.startUtc)));
    if (touches) {
      // Show a new booking at once; the day is then read again for the exact states and links
      // (a freed slot's `book` link comes only from the server).
      if (event.type === "BOOKING_CREATED") markYours(booking, Boolean(state.me && booking.scientistId === state.me.id));
      reloadDaySoon();
    }
  }
  if (state.me && booking.scientistId === state.me.id) loadBookingsSoon();
}

// ---- wiring ---------------------------------------------------------------------------------

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

function wire() {
  $("error-dismiss").addEventListener("click", () => {
    $("error").hidden = true;
  });
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
  $("telescope").addEventListener("change", (event) => {
    state.telescope = state.telescopes.find((t) => t.id === event.currentTarget.value);
    try {
      localStorage.setItem(TELESCOPE_STORAGE, state.telescope?.id ?? "");
    } catch {
      // not kept, fine
    }
    const chosen = $("day").value;
    showDay(chosen ? dayLink(state.telescope, chosen) : state.telescope?._links?.today).catch(showError);
  });
  $("day").addEventListener("change", (event) => {
    const chosen = event.currentTarget.value;
    if (chosen && state.telescope) showDay(dayLink(state.telescope, chosen)).catch(showError);
  });
  $("prev-day").addEventListener("click", () => showDay(state.day?._links?.previous).catch(showError));
  $("next-day").addEventListener("click", () => showDay(state.day?._links?.next).catch(showError));
  $("grid").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-index]");
    if (button) onSlotClick(button);
  });
  $("bookings-more").addEventListener("click", (event) => busy(event.currentTarget, "Loading…", () => loadBookings(true)));
  document.addEventListener("visibilitychange", () => {
    const synced = state.clock?.estimate;
    if (document.visibilityState === "visible" && synced && state.clock.localNow() - synced.syncedAtLocalMs > 60_000) syncClock();
  });
  // The displayed time ticks every second; every 15 s the grid ages free slots into past ones.
  // Both are local: the server is asked only for the clock, every few minutes.
  let ticks = 0;
  setInterval(() => {
    renderClock();
    ticks += 1;
    if (ticks % 15 === 0) renderGrid();
  }, 1_000);
  setInterval(() => syncClock(), CLOCK_RESYNC_MS);
}

async function main() {
  wire();
  renderAccount();
  renderBookings();
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
    await Promise.all([state.telescope ? showDay(state.telescope._links.today) : undefined, loadBookings()]);
  } catch (error) {
    showError(error);
  }
  await clockReady;
}

main();
