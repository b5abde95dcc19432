// Types for api.js (plain JavaScript, served to the browser as is), for tsc and the TypeScript that imports it.

export interface Link {
  href: string;
  method?: string;
  templated?: boolean;
}

export const ENTRY_POINT: string;

export class ApiError extends Error {
  constructor(code: string, message: string, status: number, details?: unknown, requestId?: string, retryAfterMs?: number);
  readonly code: string;
  readonly status: number;
  readonly details: unknown;
  readonly requestId: string | undefined;
  readonly retryAfterMs: number | undefined;
  /** retryable: worth sending again with the same Idempotency-Key. */
  readonly retryable: boolean;
}

export interface FollowOptions {
  apiKey?: string | undefined;
  body?: unknown;
  idempotencyKey?: string | undefined;
  signal?: AbortSignal | undefined;
  base?: string | undefined;
}

// biome-ignore lint/suspicious/noExplicitAny: JSON answers are read field by field by the caller
export function follow(link: Link | undefined, options?: FollowOptions): Promise<any>;
export function randomKey(): string;
export function describeError(error: unknown): { title: string; message: string; code?: string };
