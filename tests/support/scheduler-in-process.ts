// A booking API (scheduler/) in this process, against an in-process cluster (node/testing/
// http-cluster.ts), on a free loopback port: what the API tests share. The clock is the caller's
// (`nowMs`), so a test can move it; the log lines are kept in memory for assertions.

import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { LockClient } from "../../client/lock-client.ts";
import type { HttpCluster } from "../../node/testing/http-cluster.ts";
import { createApp } from "../../scheduler/app.ts";
import { Bookings } from "../../scheduler/bookings.ts";
import { lockClusterPort } from "../../scheduler/cluster.ts";
import { BookingEvents } from "../../scheduler/events.ts";
import { createSchedulerLogger } from "../../scheduler/logging.ts";
import { Scientists } from "../../scheduler/scientists.ts";
import type { Telescope } from "../../scheduler/slots.ts";

export interface InProcessScheduler {
  readonly url: string;
  readonly server: Server;
  readonly events: BookingEvents;
  readonly logLines: string[];
  close(): Promise<void>;
}

export interface InProcessSchedulerOptions {
  readonly cluster: HttpCluster;
  readonly telescopes: readonly Telescope[];
  readonly nowMs: () => number;
  readonly logDir: string;
  readonly rateLimitPerMinute?: number;
  readonly rateLimitPerAddressPerMinute?: number;
  readonly registrationsPerAddressPerHour?: number;
}

export async function startInProcessScheduler(options: InProcessSchedulerOptions): Promise<InProcessScheduler> {
  const logLines: string[] = [];
  const stdout = new Writable({
    write(chunk, _encoding, callback) {
      logLines.push(...String(chunk).split("\n").filter(Boolean));
      callback();
    },
  });
  const { log } = createSchedulerLogger({ logDir: options.logDir, pretty: false, instanceId: "test", stdout });
  const client = new LockClient({ nodes: [...options.cluster.urls.values()], apiToken: options.cluster.apiToken });
  const port = lockClusterPort(client);
  const byId = new Map(options.telescopes.map((telescope) => [telescope.id, telescope]));
  const nowMs = options.nowMs;
  const events = new BookingEvents({ cluster: port, telescopes: byId, eventsKeptMax: 100, subscribersMax: 10, log });
  const app = createApp({
    bookings: new Bookings({
      cluster: port,
      telescopes: byId,
      serviceName: "scheduler",
      leaseTtlMs: 5000,
      nowMs,
    }),
    scientists: new Scientists({ cluster: port, serviceName: "scheduler", leaseTtlMs: 5000, nowMs, cachedMax: 100 }),
    cluster: port,
    telescopes: options.telescopes,
    log,
    nowMs,
    bodyBytesMax: 4096,
    rateLimitPerMinute: options.rateLimitPerMinute ?? 100_000,
    rateLimitPerAddressPerMinute: options.rateLimitPerAddressPerMinute ?? 1_000_000,
    registrationsPerAddressPerHour: options.registrationsPerAddressPerHour ?? 1_000_000,
    auditVerifyRecordsMax: 100_000,
  });
  const server = createServer(app);
  server.on("upgrade", (request, socket, head) => events.handleUpgrade(request, socket, head));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  events.start();
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    server,
    events,
    logLines,
    async close() {
      await events.close();
      server.closeAllConnections();
      server.close();
    },
  };
}

// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field at run time
export type Json = any;

export interface CallOptions {
  readonly key?: string;
  /** body: sent as JSON (with its content type) unless it is a string, which is sent as it is. */
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

/** callApi sends one request and reads the JSON answer (an empty answer reads as `{}`). */
export async function callApi(base: string, method: string, path: string, options: CallOptions = {}) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      ...(options.body === undefined ? {} : { "content-type": "application/json" }),
      ...(options.key === undefined ? {} : { authorization: `Bearer ${options.key}` }),
      ...options.headers,
    },
    ...(options.body === undefined ? {} : { body: typeof options.body === "string" ? options.body : JSON.stringify(options.body) }),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: (text === "" ? {} : JSON.parse(text)) as Json };
}
