// The floor under one replicated lock operation on this machine (issue 21): what a commit cannot
// beat whatever the code does, measured by the benchmark itself, beside its results.
//
// A lock operation's answer needs, at the least: the client's request to reach the leader and the
// answer to come back (one HTTP round trip on a kept-alive connection), and a majority's synced
// write of the entry. The leader writes its copy in parallel with sending it (Raft thesis
// §10.2.1), so with three nodes the commit waits for the slower of its own synced write and one
// follower's: a peer frame there and back (one WebSocket round trip) plus that follower's synced
// write. So one commit's floor is an HTTP round trip + a WebSocket round trip + a synced write, and
// a lock cycle (acquire, then release: two commits one after the other) costs twice that.
//
// Each part is measured the way the nodes do it: an append of a small record to a file followed by
// fdatasync (LevelDB's synced write appends to its log and syncs it) in the directory the cluster's
// data goes to; undici to a node:http server on loopback over one kept-alive connection (the
// client's path); `ws` binary frames echoed on loopback (the peers' path). Sequential, one at a
// time: these are latencies, not throughput.

import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Pool } from "undici";
import { WebSocket, WebSocketServer } from "ws";
import { percentile } from "./measure.ts";

/** LatencyFigure: the median and 99th percentile of one measured step, in ms. */
export interface LatencyFigure {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly samples: number;
}

/** Floor: the measured parts and the floors they add up to (see the file's comment). */
export interface Floor {
  readonly syncedWrite: LatencyFigure;
  readonly httpRoundTrip: LatencyFigure;
  readonly webSocketRoundTrip: LatencyFigure;
  /** commitP50Ms: HTTP round trip + WebSocket round trip + synced write, medians. */
  readonly commitP50Ms: number;
  /** cycleP50Ms: an acquire and a release, one after the other: two commits. */
  readonly cycleP50Ms: number;
}

/** FloorOptions: how many samples of each part, and where the synced writes go. */
export interface FloorOptions {
  readonly samples: number;
  /** directory: where the cluster's data goes (default: the OS temporary directory, as ProcessCluster uses). */
  readonly directory?: string;
}

const samplesMin = 20;
const samplesMax = 10_000;
/** recordBytes: about one small lock command with its framing. */
const recordBytes = 128;

/** measureFloor measures the three parts in turn and adds them up. */
export async function measureFloor(options: FloorOptions): Promise<Floor> {
  if (!Number.isInteger(options.samples) || options.samples < samplesMin || options.samples > samplesMax) {
    throw new RangeError(`floor samples must be an integer from ${samplesMin} to ${samplesMax}, not ${options.samples}`);
  }
  const syncedWrite = measureSyncedWrite(options.directory ?? tmpdir(), options.samples);
  const httpRoundTrip = await measureHttpRoundTrip(options.samples);
  const webSocketRoundTrip = await measureWebSocketRoundTrip(options.samples);
  const commitP50Ms = httpRoundTrip.p50Ms + webSocketRoundTrip.p50Ms + syncedWrite.p50Ms;
  return { syncedWrite, httpRoundTrip, webSocketRoundTrip, commitP50Ms, cycleP50Ms: 2 * commitP50Ms };
}

/** describeFloor is the floor in one paragraph, for the terminal and the doc. */
export function describeFloor(floor: Floor): string {
  const part = (name: string, figure: LatencyFigure) => `${name} p50 ${ms(figure.p50Ms)} (p99 ${ms(figure.p99Ms)})`;
  return (
    `Floor on this machine (measured in this run, ${floor.syncedWrite.samples} samples each): ` +
    `${part("synced write of a 128-byte record", floor.syncedWrite)}, ` +
    `${part("loopback HTTP round trip on a kept-alive connection", floor.httpRoundTrip)}, ` +
    `${part("WebSocket frame round trip", floor.webSocketRoundTrip)}. ` +
    `One commit cannot answer sooner than HTTP + WebSocket round trip + synced write = ${ms(floor.commitP50Ms)}; ` +
    `an acquire+release cycle (two commits) ${ms(floor.cycleP50Ms)}.`
  );
}

function ms(value: number): string {
  return `${value < 1 ? value.toFixed(3) : value.toFixed(2)} ms`;
}

function figureOf(latenciesMs: number[]): LatencyFigure {
  const sorted = latenciesMs.sort((a, b) => a - b);
  return { p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), samples: sorted.length };
}

function measureSyncedWrite(directory: string, samples: number): LatencyFigure {
  const dir = mkdtempSync(join(directory, "sctec-floor-"));
  const fd = openSync(join(dir, "log"), "a");
  const record = Buffer.alloc(recordBytes, 7);
  const latenciesMs: number[] = [];
  try {
    for (let sample = 0; sample < samples; sample++) {
      const start = performance.now();
      writeSync(fd, record);
      fdatasyncSync(fd);
      latenciesMs.push(performance.now() - start);
    }
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
  return figureOf(latenciesMs);
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

async function measureHttpRoundTrip(samples: number): Promise<LatencyFigure> {
  const answer = JSON.stringify({ ok: true, fencingToken: 12345 });
  const server = createServer((request, response) => {
    request.resume();
    request.on("end", () => response.writeHead(200, { "content-type": "application/json" }).end(answer));
  });
  const port = await listen(server);
  const pool = new Pool(`http://127.0.0.1:${port}`, { connections: 1, pipelining: 1 });
  const body = JSON.stringify({ resource: "floor", ttlMs: 10_000, clientId: "floor", sequence: 1 });
  const latenciesMs: number[] = [];
  try {
    for (let sample = 0; sample < samples + 5; sample++) {
      const start = performance.now();
      const response = await pool.request({ method: "POST", path: "/lock", body, headers: { "content-type": "application/json" } });
      await response.body.text();
      if (sample >= 5) latenciesMs.push(performance.now() - start); // The first few open the connection.
    }
  } finally {
    await pool.close();
    await new Promise((resolve) => server.close(resolve));
  }
  return figureOf(latenciesMs);
}

async function measureWebSocketRoundTrip(samples: number): Promise<LatencyFigure> {
  const server = createServer();
  const sockets = new WebSocketServer({ server });
  sockets.on("connection", (socket) => socket.on("message", (data) => socket.send(data as Buffer, { binary: true })));
  const port = await listen(server);
  const client = new WebSocket(`ws://127.0.0.1:${port}`);
  await new Promise<void>((resolve, reject) => {
    client.once("open", () => resolve());
    client.once("error", reject);
  });
  const frame = Buffer.alloc(recordBytes, 3);
  const latenciesMs: number[] = [];
  try {
    for (let sample = 0; sample < samples + 5; sample++) {
      const start = performance.now();
      await new Promise<void>((resolve) => {
        client.once("message", () => resolve());
        client.send(frame, { binary: true });
      });
      if (sample >= 5) latenciesMs.push(performance.now() - start);
    }
  } finally {
    client.close();
    sockets.close();
    await new Promise((resolve) => server.close(resolve));
  }
  return figureOf(latenciesMs);
}
