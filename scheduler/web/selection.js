// Selecting a range of slots in a day, with no DOM: a selection is an anchor (where it began) and
// an end, both indexes into the day's slots; the range runs from the smaller to the larger. Only a
// run of bookable slots, at most `maxSlots` long, is a range that can be booked; these functions
// say which, and why not, so the page can refuse a bad extension and show a range that stopped
// being free.

/** bounds: the first and last index of a selection. */
export function bounds(selection) {
  return { first: Math.min(selection.anchor, selection.end), last: Math.max(selection.anchor, selection.end) };
}

/** size: how many slots a selection covers. */
export function size(selection) {
  const { first, last } = bounds(selection);
  return last - first + 1;
}

/**
 * problemOf: why a selection cannot be booked as it is, or undefined when it can:
 * { reason: "not_bookable", index } (the first slot in it that is not bookable) or
 * { reason: "too_long", maxSlots }.
 */
export function problemOf(selection, slots, { isBookable, maxSlots }) {
  const { first, last } = bounds(selection);
  for (let index = first; index <= last; index += 1) {
    const slot = slots[index];
    if (slot === undefined || !isBookable(slot)) return { reason: "not_bookable", index };
  }
  if (last - first + 1 > maxSlots) return { reason: "too_long", maxSlots };
  return undefined;
}

/**
 * extendTo moves a selection's end to `index` (shift-click, drag, Shift+arrow). If the range to
 * `index` is not bookable it goes as far towards `index` as it can and says what stopped it:
 * { selection, stoppedBy } where stoppedBy is undefined or a problem (see problemOf).
 */
export function extendTo(selection, index, slots, rules) {
  const step = index >= selection.anchor ? 1 : -1;
  let end = selection.anchor;
  let stoppedBy;
  for (let next = selection.anchor + step; step > 0 ? next <= index : next >= index; next += step) {
    const candidate = { anchor: selection.anchor, end: next };
    const problem = problemOf(candidate, slots, rules);
    if (problem !== undefined) {
      stoppedBy = problem;
      break;
    }
    end = next;
  }
  return { selection: { anchor: selection.anchor, end }, stoppedBy };
}

/** resize changes a selection's length by `delta` slots (the +/− buttons), keeping its first slot; the same rules as extendTo. */
export function resize(selection, delta, slots, rules) {
  const { first, last } = bounds(selection);
  const wanted = Math.max(first, last + delta);
  return extendTo({ anchor: first, end: last }, wanted, slots, rules);
}
