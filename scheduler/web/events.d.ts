// Types for events.js (plain JavaScript, served to the browser as is), for events.test.ts and tsc.

export interface LiveStatus {
  state: "connecting" | "resuming" | "live" | "reconnecting";
  retryInMs?: number;
}

export interface WebSocketLike {
  onmessage: ((message: { data: string }) => void) | null;
  onclose: (() => void) | null;
  onerror: (() => void) | null;
  close(): void;
}

export interface LiveEventsOptions {
  href: string;
  onEvent: (event: { id: number; type: string; [field: string]: unknown }) => void;
  onResync: () => void;
  onStatus: (status: LiveStatus) => void;
  base?: string;
  WebSocketImpl?: new (url: string) => WebSocketLike;
}

export class LiveEvents {
  constructor(options: LiveEventsOptions);
  lastId: number | undefined;
  start(): void;
  stop(): void;
  url(): string;
  connectNow(): void;
}
