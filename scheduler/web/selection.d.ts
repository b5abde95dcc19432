// Types for selection.js (plain JavaScript, served to the browser as is), for selection.test.ts and tsc.

export interface Selection {
  anchor: number;
  end: number;
}

export type SelectionProblem = { reason: "not_bookable"; index: number } | { reason: "too_long"; maxSlots: number };

export interface SelectionRules<Slot> {
  isBookable(slot: Slot): boolean;
  maxSlots: number;
}

export function bounds(selection: Selection): { first: number; last: number };
export function size(selection: Selection): number;
export function problemOf<Slot>(selection: Selection, slots: readonly Slot[], rules: SelectionRules<Slot>): SelectionProblem | undefined;
export function extendTo<Slot>(
  selection: Selection,
  index: number,
  slots: readonly Slot[],
  rules: SelectionRules<Slot>,
): { selection: Selection; stoppedBy: SelectionProblem | undefined };
export function resize<Slot>(
  selection: Selection,
  delta: number,
  slots: readonly Slot[],
  rules: SelectionRules<Slot>,
): { selection: Selection; stoppedBy: SelectionProblem | undefined };
