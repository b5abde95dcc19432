// Booking events for the web pages: the scheduler watches the cluster's audit chain (committed
// entries only, in Raft index order) and pushes each booking created or cancelled to its
// WebSocket subscribers. An event's id is its audit chain sequence number, so every scheduler
// gives one event the same id and a page that reconnects (`/events?after=<id>`) misses nothing
// and sees nothing twice. When a subscriber's position cannot be continued (this scheduler does not
// hold the events in between), it is told to `resync` instead of being shown a gap.

import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import type { ChainRecord } from "../protocol/chain.ts";
import { parseRecord } from "./audit.ts";
import type { ClusterPort } from "./cluster.ts";
import type { SchedulerLogger as Logger } from "./logging.ts";
import { keys } from "./records.ts";
import { isoUtc, type Telescope } from "./slots.ts";

export interface BookingEvent {
  readonly id: number;
  readonly type: "BOOKING_CREATED" | "BOOKING_CANCELLED";
  readonly order: number;
  readonly booking: {
    readonly id: string;
    readonly telescopeId: string;
    readonly scientistId: string;
    readonly startUtc: string;
    readonly endUtc: string;
    readonly slots: readonly string[];
    readonly status: "confirmed" | "cancelled";
  };
}

/**
 * watchPollIntervalMinMs spaces the polls of the audit chain while bookings stream in. Every
 * scheduler follows every booking, and a node answers a waiting poll as soon as it applies one:
 * under bench load a scheduler with little else to do polled 70 times a second, 6 bookings an
 * answer (28 an answer at 50 ms apart). A page sees an event at most this much later.
 */
const watchPollIntervalMinMs = 50;

interface Subscriber {
  readonly socket: WebSocket;
  /** position: the chain sequence number this subscriber is up to date with (undefined: from now on). */
  position: number | undefined;
}

export interface BookingEventsOptions {
  readonly cluster: ClusterPort;
  readonly telescopes: ReadonlyMap<string, Telescope>;
  readonly eventsKeptMax: number;
  readonly subscribersMax: number;
  readonly log: Logger;
  readonly onEvent?: (event: BookingEvent) => void;
}

export class BookingEvents {
  private readonly options: BookingEventsOptions;
  private readonly server = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  private readonly subscribers = new Set<Subscriber>();
  /** recent booking events, oldest first; every booking event after `keptAfterSeq` is in here. */
  private readonly recent: BookingEvent[] = [];
  private keptAfterSeq: number | undefined;
  private lastSeq: number | undefined;
  private readonly abort = new AbortController();
  private watching: Promise<void> | undefined;

  constructor(options: BookingEventsOptions) {
    this.options = options;
  }

  start(): void {
    this.watching = this.watchLoop();
  }

  async close(): Promise<void> {
    this.abort.abort();
    for (const subscriber of this.subscribers) subscriber.socket.close(1001, "scheduler stopping");
    await this.watching?.catch(() => undefined);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** handleUpgrade takes every HTTP upgrade of the server: /events becomes a subscriber, anything else is refused. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    // After an upgrade Node leaves the socket without an error listener: a peer that resets it
    // while we refuse must not take the process down.
    socket.on("error", () => socket.destroy());
    let url: URL;
    try {
      url = new URL(request.url ?? "/", "http://scheduler");
    } catch {
      socket.end("HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\n\r\nmalformed request target\n");
      return;
    }
    if (url.pathname !== "/events") {
      socket.end("HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\n\r\nWebSocket upgrades are served on /events only\n");
      return;
    }
    if (this.subscribers.size >= this.options.subscribersMax) {
      socket.end("HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n\r\ntoo many event subscribers\n");
      return;
    }
    const afterText = url.searchParams.get("after");
    const after = afterText === null || afterText === "" ? undefined : Number(afterText);
    if (after !== undefined && (!Number.isSafeInteger(after) || after < 0)) {
      socket.end("HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\n\r\nafter must be a non-negative integer\n");
      return;
    }
    this.server.handleUpgrade(request, socket, head, (webSocket) => this.subscribe(webSocket, after));
  }

  subscriberCount(): number {
    return this.subscribers.size;
  }

  private subscribe(socket: WebSocket, after: number | undefined): void {
    const subscriber: Subscriber = { socket, position: after };
    this.subscribers.add(subscriber);
    socket.on("close", () => this.subscribers.delete(subscriber));
    socket.on("error", () => this.subscribers.delete(subscriber));
    // The page sends nothing; anything it does send is ignored.
    this.send(subscriber, { type: "hello", lastId: this.lastSeq ?? null });
    if (after === undefined || this.lastSeq === undefined) return;
    if (this.keptAfterSeq === undefined || after < this.keptAfterSeq) {
      this.send(subscriber, { type: "resync" });
    } else {
      for (const event of this.recent) if (event.id > after) this.send(subscriber, event);
    }
    subscriber.position = Math.max(after, this.lastSeq);
  }

  private send(subscriber: Subscriber, message: unknown): void {
    if (subscriber.socket.readyState !== subscriber.socket.OPEN) return;
    // A page that cannot keep up is dropped rather than buffered without bound; it reconnects and resumes.
    if (subscriber.socket.bufferedAmount > 1024 * 1024) {
      subscriber.socket.close(1013, "too slow");
      return;
    }
    subscriber.socket.send(JSON.stringify(message));
  }

  private async watchLoop(): Promise<void> {
    const log = this.options.log;
    let after: number | undefined;
    let failures = 0;
    while (!this.abort.signal.aborted) {
      try {
        if (after === undefined) after = await this.options.cluster.appliedIndex();
        const watching = { after, signal: this.abort.signal, pollIntervalMinMs: watchPollIntervalMinMs };
        for await (const change of this.options.cluster.watch(keys.auditPrefix, watching)) {
          after = change.index;
          failures = 0;
          if (change.value !== undefined) this.onChainRecord(JSON.parse(change.value) as ChainRecord);
        }
      } catch (error) {
        if (this.abort.signal.aborted) return;
        const code = (error as { code?: string }).code;
        // The node no longer holds the events after `after`: start again from now; the gap in
        // sequence numbers makes every subscriber resync.
        if (code === "events_compacted") after = undefined;
        failures += 1;
        const delayMs = Math.min(5000, 100 * 2 ** Math.min(failures, 6));
        log.warn({ event: "events_watch_failed", err: error, retryInMs: delayMs }, "watching booking events failed; retrying");
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  /** onChainRecord takes one audit chain record in sequence order: keeps its booking event, and tells every subscriber. */
  private onChainRecord(chainRecord: ChainRecord): void {
    const seq = chainRecord.seq;
    if (this.keptAfterSeq === undefined) this.keptAfterSeq = seq - 1;
    else if (this.lastSeq !== undefined && seq > this.lastSeq + 1) {
      // This scheduler missed records: nothing before here can be replayed.
      this.recent.length = 0;
      this.keptAfterSeq = seq - 1;
    }
    this.lastSeq = seq;
    const event = this.bookingEventOf(chainRecord);
    if (event !== undefined) {
      this.recent.push(event);
      if (this.recent.length > this.options.eventsKeptMax) {
        const dropped = this.recent.shift() as BookingEvent;
        this.keptAfterSeq = dropped.id;
      }
      this.options.onEvent?.(event);
    }
    for (const subscriber of this.subscribers) {
      // A page that came from a scheduler further ahead has seen this one already: ids go out once.
      if (subscriber.position !== undefined && seq <= subscriber.position) continue;
      if (subscriber.position !== undefined && seq > subscriber.position + 1) this.send(subscriber, { type: "resync" });
      subscriber.position = seq;
      if (event !== undefined) this.send(subscriber, event);
    }
  }

  /** bookingEventOf: the booking event a chain record holds (undefined for any other record, such as a registration). */
  private bookingEventOf(chainRecord: ChainRecord): BookingEvent | undefined {
    const record = parseRecord(chainRecord.record);
    if (record.event_type !== "BOOKING_CREATED" && record.event_type !== "BOOKING_CANCELLED") return undefined;
    const details = record.details as Record<string, string>;
    const telescope = this.options.telescopes.get(String(details["telescope_id"]));
    const startMs = Date.parse(String(details["start_utc"]));
    const endMs = Date.parse(String(details["end_utc"]));
    const slotMs = (telescope?.slotMinutes ?? 5) * 60_000;
    return {
      id: chainRecord.seq,
      type: record.event_type,
      order: chainRecord.index,
      booking: {
        id: String(details["booking_id"]),
        telescopeId: String(details["telescope_id"]),
        scientistId: String(details["scientist_id"]),
        startUtc: String(details["start_utc"]),
        endUtc: String(details["end_utc"]),
        slots: Array.from({ length: Math.max(0, Math.round((endMs - startMs) / slotMs)) }, (_, position) =>
          isoUtc(startMs + position * slotMs),
        ),
        status: record.event_type === "BOOKING_CREATED" ? "confirmed" : "cancelled",
      },
    };
  }
}
