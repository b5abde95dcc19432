// Types for booking.js (plain JavaScript, served to the browser as is), for tsc and the TypeScript that imports it.

import type { ApiError, Link } from "./api.js";
import type { ClockEstimate } from "./clock.js";

export const CLOCK_SAMPLES: number;
export const BOOK_ATTEMPTS_MAX: number;
export const RETRY_WAIT_MAX_MS: number;
export const EARLY_TOLERANCE_MS: number;

export function monotonicNow(): number;

export interface ServerClockEstimate extends ClockEstimate {
  syncedAtLocalMs: number;
}

export class ServerClock {
  constructor(options: { localNow?: () => number; fetchServerTimeMs: () => Promise<number>; samples?: number });
  static overLink(timeLink: Link, options?: { localNow?: () => number; samples?: number; base?: string }): ServerClock;
  readonly localNow: () => number;
  estimate: ServerClockEstimate | undefined;
  sync(): Promise<ServerClockEstimate>;
  now(): number;
}

export interface BookingBody {
  telescopeId: string;
  startUtc: string;
  endUtc: string;
  requestedAtUtc: string;
}

export interface Click {
  idempotencyKey: string;
  body: BookingBody;
}

export function newClick(range: { telescopeId: string; startUtc: string; endUtc: string }, clock: { now(): number }): Click;
export function mayNotBeDecided(error: unknown): boolean;

export interface RetryOptions {
  clock?: ServerClock | undefined;
  sleep?: (ms: number) => Promise<unknown>;
  random?: () => number;
  attemptsMax?: number;
  onAttempt?: (failed: { attempt: number; error: unknown }) => void;
}

export interface SendBookingOptions extends RetryOptions {
  link: Link;
  click: Click;
  apiKey: string;
  base?: string;
}

// biome-ignore lint/suspicious/noExplicitAny: the booking as the API answers it
export function sendBooking(options: SendBookingOptions): Promise<any>;
export function withRetries<T>(attempt: () => Promise<T>, options?: RetryOptions): Promise<T>;
export function waitBeforeRetryMs(
  error: unknown,
  attempt: number,
  clock: ServerClock | undefined,
  random?: () => number,
): number | undefined;
export type { ApiError };
