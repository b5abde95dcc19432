// The week view: seven UTC days of one telescope side by side, one cell per hour, each cell a bar
// of its slots coloured free / yours / taken / past / not bookable yet, so a week reads at a
// glance. Like the day grid it knows nothing of the API: the page gives it the days and hears
// which hour was opened. One tab stop (roving tabindex): arrows move by a day or an hour, Home/End
// to the day's first and last hour, Page Up/Down ask for the previous/next week, Enter or Space
// opens the hour in the day view.

import { timeOf } from "./time-format.js";

const COUNTED = ["free", "yours", "taken", "closed", "past"];
const WORDS = { free: "free", yours: "yours", taken: "taken", closed: "not bookable yet", past: "past" };

/** weekStartOf: the Monday (UTC) of the week a day `YYYY-MM-DD` falls in. */
export function weekStartOf(day) {
  const midnight = Date.parse(`${day}T00:00:00Z`);
  const weekday = (new Date(midnight).getUTCDay() + 6) % 7; // Monday 0 … Sunday 6
  return new Date(midnight - weekday * 86_400_000).toISOString().slice(0, 10);
}

/** daysOfWeek: the seven days from a Monday. */
export function daysOfWeek(monday) {
  const midnight = Date.parse(`${monday}T00:00:00Z`);
  return Array.from({ length: 7 }, (_, position) => new Date(midnight + position * 86_400_000).toISOString().slice(0, 10));
}

export class WeekView {
  /**
   * @param {HTMLElement} container
   * @param {object} handlers { open(day, hour), changeWeek(step) }
   */
  constructor(container, handlers) {
    this.container = container;
    this.handlers = handlers;
    this.focus = { column: 0, hour: 0 };
    this.key = "";
    container.addEventListener("keydown", (event) => this.onKey(event));
    container.addEventListener("click", (event) => {
      const cell = event.target instanceof Element ? event.target.closest("[data-cell]") : null;
      if (cell !== null) this.handlers.open(cell.dataset.day, Number(cell.dataset.hour));
    });
  }

  /**
   * render draws `model`: { key, days: [{ day, slots (with `shown`) | undefined }], zone,
   * zoneLabel (the corner's), offsetAt(ms) (each cell's own), selectedDay, today, weekdayOf(day) }.
   */
  render(model) {
    const keepFocus = this.container.contains(document.activeElement);
    if (model.key !== this.key) {
      this.key = model.key;
      const selected = model.days.findIndex((entry) => entry.day === model.selectedDay);
      this.focus = { column: Math.max(0, selected), hour: this.focus.hour };
    }
    const table = document.createElement("table");
    table.className = "week-table";
    const caption = document.createElement("caption");
    caption.className = "sr-only";
    caption.textContent = `Week of ${model.days[0]?.day} (UTC days), hours in ${model.zoneLabel}`;
    const head = document.createElement("tr");
    head.append(cornerCell(model.zoneLabel));
    for (const entry of model.days) {
      const th = document.createElement("th");
      th.scope = "col";
      th.className = [entry.day === model.selectedDay ? "selected-day" : "", entry.day === model.today ? "today" : ""].join(" ").trim();
      if (entry.day === model.today) th.title = "today (UTC)";
      const [weekday, date] = [model.weekdayOf(entry.day), entry.day.slice(5)];
      const name = document.createElement("span");
      name.textContent = weekday;
      const when = document.createElement("span");
      when.className = "week-date";
      when.textContent = date;
      th.append(name, when);
      head.append(th);
    }
    const thead = document.createElement("thead");
    thead.append(head);
    const body = document.createElement("tbody");
    for (let hour = 0; hour < 24; hour += 1) {
      const row = document.createElement("tr");
      const label = document.createElement("th");
      label.scope = "row";
      const firstMidnight = Date.parse(`${model.days[0]?.day}T00:00:00Z`);
      label.textContent = timeOf(firstMidnight + hour * 3_600_000, model.zone);
      row.append(label);
      for (const [column, entry] of model.days.entries()) row.append(this.cell(entry, hour, column, model));
      body.append(row);
    }
    table.append(caption, thead, body);
    this.container.replaceChildren(table);
    if (keepFocus) this.focusCell(this.focus.column, this.focus.hour);
  }

  cell(entry, hour, column, model) {
    const td = document.createElement("td");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.cell = "";
    button.dataset.day = entry.day;
    button.dataset.hour = String(hour);
    button.dataset.testid = "week-cell";
    button.tabIndex = column === this.focus.column && hour === this.focus.hour ? 0 : -1;
    const startMs = Date.parse(`${entry.day}T00:00:00Z`) + hour * 3_600_000;
    const from = timeOf(startMs, model.zone);
    const to = timeOf(startMs + 3_600_000, model.zone);
    if (entry.slots === undefined) {
      button.className = "week-cell loading";
      button.setAttribute("aria-label", `${model.weekdayOf(entry.day)} ${entry.day} ${from}–${to} ${model.offsetAt(startMs)}: loading`);
      td.append(button);
      return td;
    }
    const slots = entry.slots.filter((slot) => {
      const slotMs = Date.parse(slot.startUtc);
      return slotMs >= startMs && slotMs < startMs + 3_600_000;
    });
    const counts = Object.fromEntries(COUNTED.map((state) => [state, 0]));
    const bar = document.createElement("span");
    bar.className = "week-bar";
    bar.setAttribute("aria-hidden", "true");
    for (const slot of slots) {
      counts[slot.shown] = (counts[slot.shown] ?? 0) + 1;
      const segment = document.createElement("span");
      segment.className = `seg ${slot.shown}`;
      bar.append(segment);
    }
    const summary = COUNTED.filter((state) => counts[state] > 0)
      .map((state) => `${counts[state]} ${WORDS[state]}`)
      .join(", ");
    const dominant = COUNTED.reduce((best, state) => (counts[state] > counts[best] ? state : best), "free");
    button.className = `week-cell ${dominant}${counts.yours > 0 ? " has-yours" : ""}`;
    button.dataset.free = String(counts.free);
    button.dataset.yours = String(counts.yours);
    button.dataset.taken = String(counts.taken);
    button.setAttribute("aria-label", `${model.weekdayOf(entry.day)} ${entry.day} ${from}–${to} ${model.offsetAt(startMs)}: ${summary}`);
    button.title = button.getAttribute("aria-label");
    button.append(bar);
    td.append(button);
    return td;
  }

  focusCell(column, hour) {
    const target = [...this.container.querySelectorAll(`button[data-cell][data-hour="${hour}"]`)][column];
    if (target === undefined) return;
    for (const other of this.container.querySelectorAll('button[data-cell][tabindex="0"]')) other.tabIndex = -1;
    target.tabIndex = 0;
    this.focus = { column, hour };
    target.focus();
  }

  onKey(event) {
    const cell = event.target instanceof Element ? event.target.closest("[data-cell]") : null;
    if (cell === null) return;
    const hour = Number(cell.dataset.hour);
    const columns = [...this.container.querySelectorAll('thead th[scope="col"]')].length;
    const column = [...cell.closest("tr").querySelectorAll("[data-cell]")].indexOf(cell);
    const moves = {
      ArrowLeft: [column - 1, hour],
      ArrowRight: [column + 1, hour],
      ArrowUp: [column, hour - 1],
      ArrowDown: [column, hour + 1],
      Home: [column, 0],
      End: [column, 23],
    };
    if (event.key in moves) {
      event.preventDefault();
      const [nextColumn, nextHour] = moves[event.key];
      this.focusCell(Math.min(columns - 1, Math.max(0, nextColumn)), Math.min(23, Math.max(0, nextHour)));
      return;
    }
    if (event.key === "PageUp" || event.key === "PageDown") {
      event.preventDefault();
      this.handlers.changeWeek(event.key === "PageUp" ? -1 : 1);
      return;
    }
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      this.handlers.open(cell.dataset.day, hour);
    }
  }
}

function cornerCell(zoneLabel) {
  const th = document.createElement("th");
  th.className = "week-corner";
  th.textContent = zoneLabel;
  return th;
}
