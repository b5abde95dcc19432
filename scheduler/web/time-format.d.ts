// Types for time-format.js (plain JavaScript, served to the browser as is), for time-format.test.ts and tsc.

export const UTC: "UTC";
export function browserTimeZone(): string;
export function partsOf(
  epochMs: number,
  zone: string,
): { year: string; month: string; day: string; hour: string; minute: string; second: string; offset: string };
export function timeOf(epochMs: number, zone: string): string;
export function clockOf(epochMs: number, zone: string): string;
export function dateOf(epochMs: number, zone: string): string;
export function offsetOf(epochMs: number, zone: string): string;
export function rangeText(startMs: number, endMs: number, zone: string): string;
export function durationText(ms: number): string;
export function offsetChangeIn(fromMs: number, toMs: number, zone: string): { atMs: number; from: string; to: string } | undefined;
