// The raft thread: a worker_threads entry that runs the lock node's Raft side (raft-side.ts: the
// LockService and its RaftDriver, the peer transport with its own server, the LevelDB log) on an
// event loop of its own, and answers the HTTP thread's calls (raft-thread-host.ts) over the
// worker's MessagePort. Its loop runs nothing but Raft work, so no HTTP load can delay its ticks,
// its heartbeats or its answers to peers (docs/DESIGN.md, "Heartbeats on a thread of their own").
//
// A broken invariant here stops the node as it did on one thread: the message goes to stderr at
// once (synchronously), and the thread exits 70, which makes the process exit 70.

import { writeSync } from "node:fs";
import { type MessagePort, parentPort, workerData } from "node:worker_threads";
import { LockInvariantError } from "../lock/assert.ts";
import type { Credential } from "../lock/types.ts";
import { RaftInvariantError } from "../raft/index.ts";
import { DataDirError } from "./contracts.ts";
import { flushLogs, makeLogger } from "./logging.ts";
import { LoopLagMonitor } from "./loop-lag.ts";
import type { LocalRaftHost } from "./raft-host.ts";
import { startRaftSide } from "./raft-side.ts";
import { type FromRaftThread, type HostCall, Outbox, type RaftThreadData, type ToRaftThread, toWireError } from "./raft-thread-protocol.ts";
import { makeThreadRealtime } from "./realtime.ts";

/** invariantName names a broken invariant of the core or of the lock state machine (a bug, never an outcome). */
function invariantName(error: unknown): string | undefined {
  if (error instanceof RaftInvariantError) return "RAFT INVARIANT BROKEN";
  if (error instanceof LockInvariantError) return "LOCK INVARIANT BROKEN";
  return undefined;
}

function die(what: string, error: unknown): never {
  const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
  writeSync(2, `${invariantName(error) ?? what} (raft thread): ${text}\n`);
  try {
    flushLogs(logger);
  } catch {
    // The logger did not exist yet.
  }
  process.exit(70); // In a worker this ends the thread; the main thread then exits the process with its code.
}

process.on("uncaughtException", (error) => die("uncaught exception", error));
process.on("unhandledRejection", (reason) => die("unhandled rejection", reason));

function parentPortOrThrow(): MessagePort {
  if (parentPort === null) throw new Error("raft-thread.ts runs as a worker thread (raft-thread-host.ts starts it)");
  return parentPort;
}

const port = parentPortOrThrow();
const { config, tls } = workerData as RaftThreadData;
const logger = makeLogger(config);
const outbox = new Outbox<FromRaftThread>((batch) => port.postMessage(batch));
const loopLag = new LoopLagMonitor({ resolutionMs: 10, windowMs: 5000 });
/** watches: the polls waiting here, by call id, so that a caller's hang-up can drop its poll. */
const watches = new Map<number, AbortController>();

async function start(): Promise<void> {
  if (config.raftRealtime) {
    const refused = makeThreadRealtime();
    if (refused !== undefined) {
      // Asked for and not possible: say so and stop, rather than run without what was asked.
      logger.fatal({ event: "raft_realtime_refused" }, refused);
      flushLogs(logger);
      port.postMessage([{ kind: "start_failed", exitCode: 2, message: `SCTEC_RAFT_REALTIME: ${refused}` }] satisfies FromRaftThread[]);
      port.close();
      return;
    }
    logger.info({ event: "raft_realtime" }, "the raft thread runs under SCHED_RR, priority 1");
  }
  let host: LocalRaftHost;
  let started = false;
  let credentialsAtStart: readonly Credential[] = [];
  try {
    host = await startRaftSide({
      config,
      logger,
      loopLag: () => loopLag.lag(),
      onLeaderChange: (leaderId) => outbox.send({ kind: "leader", leaderId }),
      // "started" goes first (RaftThreadHost.start reads it so): the table known at start follows it.
      onCredentialsChange: (credentials) => {
        if (started) outbox.send({ kind: "credentials", credentials });
        else credentialsAtStart = credentials;
      },
      ...(tls === undefined ? {} : { tls }),
    });
  } catch (error) {
    const exitCode = error instanceof DataDirError ? 3 : 1;
    const message =
      error instanceof DataDirError ? `cannot use data directory ${config.dataDir}: ${error.message}` : `cannot start: ${String(error)}`;
    if (error instanceof DataDirError) logger.fatal({ code: error.code }, error.message);
    else logger.fatal({ err: error }, "the raft side could not start");
    flushLogs(logger);
    port.postMessage([{ kind: "start_failed", exitCode, message }] satisfies FromRaftThread[]);
    port.close();
    return;
  }
  host.onTimelineChange(() => outbox.send({ kind: "timeline_changed" }));
  port.on("message", (batch: readonly ToRaftThread[]) => {
    for (const message of batch) handle(host, message);
  });
  outbox.send({ kind: "started", leaderId: host.leaderId() });
  started = true;
  outbox.send({ kind: "credentials", credentials: credentialsAtStart });
}

function handle(host: LocalRaftHost, message: ToRaftThread): void {
  switch (message.kind) {
    case "call":
      answer(message.id, call(host, message), message.method === "stop");
      return;
    case "watch": {
      const hungUp = new AbortController();
      watches.set(message.id, hungUp);
      const poll = host.watch({ ...message.query, signal: hungUp.signal });
      void poll.finally(() => watches.delete(message.id)).catch(() => undefined);
      answer(message.id, poll, false);
      return;
    }
    case "cancel_watch":
      watches.get(message.id)?.abort();
      return;
  }
}

/** call runs one RaftHost method (the union keeps each method's arguments its own). */
function call(host: LocalRaftHost, message: HostCall): Promise<unknown> {
  switch (message.method) {
    case "propose":
      return host.propose(...message.args);
    case "proposeConfChange":
      return host.proposeConfChange(...message.args);
    case "transferLeadership":
      return host.transferLeadership(...message.args);
    case "readKey":
      return host.readKey(...message.args);
    case "readRange":
      return host.readRange(...message.args);
    case "readLeases":
      return host.readLeases(...message.args);
    case "confirmCaller":
      return host.confirmCaller(...message.args);
    case "credentialList":
      return host.credentialList(...message.args);
    case "findCredential":
      return host.findCredential(...message.args);
    case "useTls":
      return host.useTls(...message.args);
    case "hostStatus":
      return host.hostStatus();
    case "localView":
      return host.localView(...message.args);
    case "raftMetricsText":
      return host.raftMetricsText();
    case "raftLoopLag":
      return host.raftLoopLag();
    case "handOverLeadership":
      return host.handOverLeadership(...message.args);
    case "stop":
      return host.stop();
  }
}

/** answer sends a call's outcome; after a stop, everything waiting goes out at once and the port closes (the thread ends). */
function answer(id: number, outcome: Promise<unknown>, last: boolean): void {
  outcome.then(
    (value) => outbox.send({ kind: "answer", id, value }),
    (error: unknown) => outbox.send({ kind: "failure", id, error: toWireError(error) }),
  );
  if (!last) return;
  void outcome
    .catch(() => undefined)
    .then(() => {
      loopLag.close();
      flushLogs(logger);
      outbox.flush();
      port.close();
    });
}

void start();
