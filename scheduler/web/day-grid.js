// The day view's grid of slot buttons: drawing, the keyboard and the pointer. It knows nothing of
// the API: the page (app.js) gives it the slots with their shown states and the selection, and
// hears back what the person did (activate, select, extend, change day).
//
// - One row per hour (half an hour when the grid is too narrow for 24 px targets). Each button's
//   accessible name is its time and state ("03:00 free"); a slot that cannot be acted on is
//   aria-disabled, not disabled, so the keyboard can still reach and read it.
// - One tab stop (roving tabindex): arrows move by a slot or a row, Home/End to the row's ends,
//   Page Up/Down ask for the previous/next day, Enter/Space select, Shift with either extends the
//   selection, Escape clears it.
// - Pointer: click selects one slot, shift-click extends, a mouse drag selects the slots it
//   crosses. A drag ends with a click on its last slot, which is not taken as a new selection.

import { timeOf } from "./time-format.js";

/** SLOT_TARGET_PX: the smallest slot button the grid lays out (WCAG 2.2 target size: 24 px). */
const SLOT_TARGET_PX = 28;
const ROW_LABEL_PX = 52;

const LABELS = {
  free: "free",
  yours: "yours",
  taken: "taken",
  past: "past",
  closed: "not bookable yet",
  booking: "booking…",
};

export class DayGrid {
  /**
   * @param {HTMLElement} container
   * @param {object} handlers { activate(index), select(index), extend(index), clear(), changeDay(step), focusMoved(index) }
   */
  constructor(container, handlers) {
    this.container = container;
    this.handlers = handlers;
    this.model = undefined;
    this.focusIndex = 0;
    this.perRow = 0;
    this.drag = undefined; // { start, moved }
    this.layoutKey = "";
    container.addEventListener("keydown", (event) => this.onKey(event));
    container.addEventListener("click", (event) => this.onClick(event));
    container.addEventListener("pointerdown", (event) => this.onPointerDown(event));
    container.addEventListener("pointerover", (event) => this.onPointerOver(event));
    window.addEventListener("pointerup", () => {
      if (this.drag !== undefined) setTimeout(() => (this.drag = undefined), 0); // after the click that ends it
    });
    container.addEventListener("focusin", (event) => {
      const index = indexOf(event.target);
      if (index !== undefined) this.focusIndex = index;
    });
    if (typeof ResizeObserver === "function") new ResizeObserver(() => this.model && this.render(this.model)).observe(container);
  }

  /**
   * render draws `model`: { key (telescope/day), slots: [{ startUtc, endUtc, shown, opensText }],
   * zone, offsetAt(ms), slotMinutes, selected: { first, last } | undefined, conflicts: Set<index>,
   * actionable(index), dateOf(ms), dateLabel(ms) }.
   */
  render(model) {
    const keepFocus = this.container.contains(document.activeElement);
    if (this.model?.key !== model.key) this.focusIndex = firstActionable(model);
    this.model = model;
    this.focusIndex = Math.min(Math.max(0, this.focusIndex), model.slots.length - 1);
    const perRow = this.rowLength(model);
    const layoutKey = `${model.key}|${model.slots.length}|${perRow}|${model.zone}`;
    if (layoutKey !== this.layoutKey) {
      this.layoutKey = layoutKey;
      this.perRow = perRow;
      this.container.style.setProperty("--per-row", String(perRow));
      this.container.replaceChildren(...this.rows(model, perRow));
    }
    for (const button of this.container.querySelectorAll("button[data-index]")) {
      const index = Number(button.dataset.index);
      this.drawSlot(button, index, model);
    }
    if (keepFocus) this.focusSlot(this.focusIndex);
  }

  /** rowLength: slots per row: an hour's, or a divisor of it when the grid is too narrow for the target size. */
  rowLength(model) {
    const perHour = Math.max(1, Math.min(12, Math.floor(60 / (model.slotMinutes || 60))));
    const width = this.container.clientWidth || 1000;
    const fits = Math.max(1, Math.floor((width - ROW_LABEL_PX) / (SLOT_TARGET_PX + 2)));
    for (let candidate = perHour; candidate >= 1; candidate -= 1) if (perHour % candidate === 0 && candidate <= fits) return candidate;
    return 1;
  }

  rows(model, perRow) {
    const rows = [];
    let lastDate;
    for (let start = 0; start < model.slots.length; start += perRow) {
      const first = model.slots[start];
      const startMs = Date.parse(first.startUtc);
      // In a time zone a UTC day spans two dates: a divider says where the zone's date changes.
      const date = model.dateOf(startMs);
      if (model.zone !== "UTC" && date !== lastDate) {
        const divider = document.createElement("p");
        divider.className = "date-divider";
        divider.textContent = model.dateLabel(startMs);
        rows.push(divider);
      }
      lastDate = date;
      const row = document.createElement("div");
      row.className = "hour";
      const label = document.createElement("span");
      label.className = "hour-label";
      label.setAttribute("aria-hidden", "true");
      label.textContent = timeOf(startMs, model.zone);
      row.append(label);
      for (let index = start; index < Math.min(start + perRow, model.slots.length); index += 1) {
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.index = String(index);
        row.append(button);
      }
      rows.push(row);
    }
    return rows;
  }

  drawSlot(button, index, model) {
    const slot = model.slots[index];
    const startMs = Date.parse(slot.startUtc);
    const time = timeOf(startMs, model.zone);
    const selected = model.selected !== undefined && index >= model.selected.first && index <= model.selected.last;
    const conflict = model.conflicts.has(index);
    button.className = `slot ${slot.shown}${selected ? " selected" : ""}${conflict ? " conflict" : ""}`;
    const hours = document.createElement("span");
    hours.className = "hh";
    hours.textContent = time.slice(0, 2);
    button.replaceChildren(hours, time.slice(2));
    button.dataset.testid = "slot";
    button.dataset.start = slot.startUtc;
    button.dataset.state = slot.shown;
    button.setAttribute("aria-label", `${time} ${LABELS[slot.shown] ?? slot.shown}`);
    button.setAttribute("aria-pressed", String(selected));
    // The offset is the slot's own: on a day the clocks change, two slots may show the same time.
    button.title = `${time}–${timeOf(Date.parse(slot.endUtc), model.zone)} ${model.offsetAt(startMs)}: ${LABELS[slot.shown] ?? slot.shown}${slot.opensText ? ` (${slot.opensText})` : ""}`;
    if (model.actionable(index)) button.removeAttribute("aria-disabled");
    else button.setAttribute("aria-disabled", "true");
    if (slot.shown === "booking") button.setAttribute("aria-busy", "true");
    else button.removeAttribute("aria-busy");
    button.tabIndex = index === this.focusIndex ? 0 : -1;
  }

  focusSlot(index) {
    const button = this.container.querySelector(`button[data-index="${index}"]`);
    if (button === null) return;
    for (const other of this.container.querySelectorAll('button[tabindex="0"]')) other.tabIndex = -1;
    button.tabIndex = 0;
    this.focusIndex = index;
    button.focus({ preventScroll: false });
  }

  /** focusAt moves the keyboard focus to a slot (the week view opens an hour here). */
  focusAt(index) {
    this.focusIndex = index;
    this.focusSlot(index);
  }

  onKey(event) {
    const index = indexOf(event.target);
    if (index === undefined || this.model === undefined) return;
    const last = this.model.slots.length - 1;
    const rowStart = index - (index % this.perRow);
    const moves = {
      ArrowLeft: index - 1,
      ArrowRight: index + 1,
      ArrowUp: index - this.perRow,
      ArrowDown: index + this.perRow,
      Home: rowStart,
      End: Math.min(last, rowStart + this.perRow - 1),
    };
    if (event.key in moves) {
      event.preventDefault();
      const target = Math.min(last, Math.max(0, moves[event.key]));
      this.focusSlot(target);
      if (event.shiftKey) this.handlers.extend(target);
      return;
    }
    if (event.key === "PageUp" || event.key === "PageDown") {
      event.preventDefault();
      this.handlers.changeDay(event.key === "PageUp" ? -1 : 1);
      return;
    }
    if (event.key === "Escape") {
      this.handlers.clear();
      return;
    }
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault(); // not also a click
      if (event.shiftKey) this.handlers.extend(index);
      else this.handlers.activate(index);
    }
  }

  onClick(event) {
    const index = indexOf(event.target);
    if (index === undefined) return;
    // Keyboard "clicks" are handled in onKey; a click that ends a drag is not a new selection.
    if (this.drag?.moved) {
      this.drag = undefined;
      return;
    }
    this.drag = undefined;
    this.focusIndex = index;
    if (event.shiftKey) this.handlers.extend(index);
    else this.handlers.activate(index);
  }

  onPointerDown(event) {
    const index = indexOf(event.target);
    if (index === undefined || event.button !== 0 || event.pointerType === "touch" || event.shiftKey) return;
    this.drag = { start: index, moved: false };
  }

  onPointerOver(event) {
    if (this.drag === undefined || (event.buttons & 1) === 0) return;
    const index = indexOf(event.target);
    if (index === undefined || (index === this.drag.start && !this.drag.moved)) return;
    if (!this.drag.moved) {
      this.drag.moved = true;
      if (!this.handlers.select(this.drag.start)) {
        this.drag = undefined;
        return;
      }
    }
    this.handlers.extend(index);
  }
}

function indexOf(target) {
  const button = target instanceof Element ? target.closest("button[data-index]") : null;
  return button === null ? undefined : Number(button.dataset.index);
}

function firstActionable(model) {
  for (let index = 0; index < model.slots.length; index += 1) if (model.actionable(index)) return index;
  return 0;
}
