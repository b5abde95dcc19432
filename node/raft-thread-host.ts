// RaftThreadHost is the HTTP thread's RaftHost: it starts the raft thread (raft-thread.ts, a
// worker) and forwards every call to it over the worker's MessagePort, in batches
// (raft-thread-protocol.ts). The one thing it answers by itself is leaderId(), from the last
// leader the raft thread announced (it announces every change at once): every HTTP answer names
// the leader, and that must not cost a round trip.
//
// Calls in flight are bounded (callsInFlightMax); one more is refused at once as `overloaded`. If
// the raft thread dies (a broken invariant: it exits 70), the calls in flight fail with
// `shutting_down` and `onExit` hears the thread's exit code: the process must exit with it.

import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import type { Credential, LockCommand, LockResult, StoredValue } from "../lock/types.ts";
import { type ConfChange, type NodeId, nodeId, type Refusal } from "../raft/index.ts";
import type { CallerCheck, CredentialIdentity } from "./api-auth.ts";
import type { NodeConfig } from "./config.ts";
import { DriverError } from "./driver/raft-driver.ts";
import type { HandOver, HandOverOptions } from "./graceful-stop.ts";
import type { LoopLag } from "./loop-lag.ts";
import type { CredentialInfo, HostStatus, HostWatchQuery, LeaseWithDeadline, RaftHost, RangeAnswer } from "./raft-host.ts";
import {
  type FromRaftThread,
  fromWireError,
  type HostCall,
  Outbox,
  type RaftThreadData,
  type ToRaftThread,
} from "./raft-thread-protocol.ts";
import type { LocalStatusView } from "./status/status-source.ts";
import type { PeerTlsOptions } from "./transport/websocket-transport.ts";
import type { WatchAnswer } from "./watch-hub.ts";

export interface RaftThreadHostOptions {
  readonly config: NodeConfig;
  /** tls: the peer link's certificate, key and CA, read and checked here (none: a plain link). */
  readonly tls?: PeerTlsOptions;
  /** callsInFlightMax bounds the calls waiting for the raft thread's answer; one more is refused (overloaded). */
  readonly callsInFlightMax: number;
  /** onExit hears the raft thread's exit code when it ends without being stopped (a crash). */
  readonly onExit: (exitCode: number) => void;
}

/** RaftThreadStartError: the raft thread could not start; `exitCode` is what the process should exit with (3: data directory). */
export class RaftThreadStartError extends Error {
  readonly code = "raft_thread_start_failed";
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = "RaftThreadStartError";
    this.exitCode = exitCode;
  }
}

interface PendingCall {
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
}

/**
 * raftThreadUrl: the worker's entry, next to this file. Under tsx this file is .ts; in the
 * container's build (tsconfig.build.json) it is .js, and so is the entry.
 */
const raftThreadUrl = new URL(`./raft-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/**
 * bootstrapCode: the worker's first (eval'd) code, which imports the entry. A worker refuses a .ts
 * path, and under tsx (npm start, the tests) the loader that the main thread was started with does
 * not reach a worker thread on Node 20: so the entry is imported after registering tsx's loader in
 * the worker, through tsx's own API. The container's build runs .js, and needs neither.
 */
function bootstrapCode(): string {
  const entry = JSON.stringify(raftThreadUrl.href);
  if (!raftThreadUrl.pathname.endsWith(".ts")) return `import(${entry});`;
  const tsx = JSON.stringify(import.meta.resolve("tsx/esm/api"));
  return `import(${tsx}).then(({ register }) => { register(); return import(${entry}); });`;
}

export class RaftThreadHost implements RaftHost {
  readonly nodeId: NodeId;
  private readonly options: RaftThreadHostOptions;
  private readonly worker: Worker;
  private readonly outbox: Outbox<ToRaftThread>;
  private readonly pending = new Map<number, PendingCall>();
  private readonly timelineListeners = new Set<() => void>();
  private nextId = 1;
  private knownLeaderId: NodeId | null = null;
  /**
   * credentialsByHash: the raft thread's credential table as it last announced it, to let requests
   * in without a round trip. It may lag by a message: it only lets a request in or sends it to the
   * ReadIndex lookup (findCredential); the raft thread checks the token again where it takes effect.
   */
  private credentialsByHash = new Map<string, CredentialIdentity>();
  private stopping = false;
  private exited = false;

  private constructor(options: RaftThreadHostOptions, worker: Worker, leaderId: NodeId | null) {
    this.options = options;
    this.nodeId = nodeId(options.config.nodeId);
    this.worker = worker;
    this.knownLeaderId = leaderId;
    this.outbox = new Outbox((batch) => {
      if (!this.exited) worker.postMessage(batch);
    });
    worker.on("message", (batch: readonly FromRaftThread[]) => {
      for (const message of batch) this.receive(message);
    });
    worker.on("exit", (exitCode) => this.threadExited(exitCode));
  }

  /**
   * start starts the raft thread and answers once its node runs. It throws RaftThreadStartError
   * when the raft side cannot start (an unusable data directory: exitCode 3).
   */
  static start(options: RaftThreadHostOptions): Promise<RaftThreadHost> {
    if (!(Number.isInteger(options.callsInFlightMax) && options.callsInFlightMax >= 1)) {
      throw new Error("RaftThreadHost: callsInFlightMax must be a positive integer");
    }
    const workerData: RaftThreadData = { config: options.config, ...(options.tls === undefined ? {} : { tls: options.tls }) };
    const worker = new Worker(bootstrapCode(), { eval: true, workerData });
    // Always heard: an 'error' event without a listener would throw here. The thread's end follows
    // it, and the 'exit' handlers decide what the process does.
    worker.on("error", (error) => process.stderr.write(`raft thread error: ${error.stack ?? error.message}\n`));
    return new Promise((resolve, reject) => {
      const onExit = (exitCode: number) =>
        reject(new RaftThreadStartError(`the raft thread exited with code ${exitCode} while starting`, exitCode || 1));
      const onError = (error: Error) =>
        reject(new RaftThreadStartError(`the raft thread failed while starting: ${error.stack ?? error.message}`, 70));
      worker.once("exit", onExit);
      worker.once("error", onError);
      worker.once("message", (batch: readonly FromRaftThread[]) => {
        worker.off("exit", onExit);
        worker.off("error", onError);
        const first = batch[0];
        if (first?.kind === "start_failed") {
          reject(new RaftThreadStartError(first.message, first.exitCode));
          return;
        }
        if (first?.kind !== "started") {
          reject(new RaftThreadStartError(`the raft thread said ${first?.kind} before it started`, 70));
          return;
        }
        const host = new RaftThreadHost(options, worker, first.leaderId);
        for (const message of batch.slice(1)) host.receive(message);
        resolve(host);
      });
    });
  }

  leaderId(): NodeId | null {
    return this.knownLeaderId;
  }

  propose(command: LockCommand, options: { readonly awaitQueuedMs?: number } = {}): Promise<{ readonly result: LockResult }> {
    return this.call({ method: "propose", args: [command, options] });
  }

  proposeConfChange(change: ConfChange): Promise<void> {
    return this.call({ method: "proposeConfChange", args: [change] });
  }

  transferLeadership(transferee: NodeId): Promise<Refusal | { readonly kind: "started" }> {
    return this.call({ method: "transferLeadership", args: [transferee] });
  }

  readKey(key: string, caller: CallerCheck): Promise<StoredValue | undefined> {
    return this.call({ method: "readKey", args: [key, caller] });
  }

  readRange(
    query: { readonly prefix: string; readonly limit: number; readonly after?: string | undefined },
    caller: CallerCheck,
  ): Promise<RangeAnswer> {
    const { prefix, limit, after } = query;
    return this.call({ method: "readRange", args: [after === undefined ? { prefix, limit } : { prefix, limit, after }, caller] });
  }

  readLeases(caller: CallerCheck): Promise<LeaseWithDeadline[]> {
    return this.call({ method: "readLeases", args: [caller] });
  }

  confirmCaller(caller: CallerCheck): Promise<void> {
    return this.call({ method: "confirmCaller", args: [caller] });
  }

  credentialList(caller: CallerCheck): Promise<CredentialInfo[]> {
    return this.call({ method: "credentialList", args: [caller] });
  }

  credentialByTokenHash(tokenHash: string): CredentialIdentity | undefined {
    return this.credentialsByHash.get(tokenHash);
  }

  findCredential(tokenHash: string): Promise<CredentialIdentity | undefined> {
    return this.call({ method: "findCredential", args: [tokenHash] });
  }

  useTls(material: PeerTlsOptions): Promise<void> {
    return this.call({ method: "useTls", args: [material] });
  }

  hostStatus(): Promise<HostStatus> {
    return this.call({ method: "hostStatus", args: [] });
  }

  localView(leasesShownMax: number): Promise<LocalStatusView> {
    return this.call({ method: "localView", args: [leasesShownMax] });
  }

  raftMetricsText(): Promise<string> {
    return this.call({ method: "raftMetricsText", args: [] });
  }

  raftLoopLag(): Promise<LoopLag> {
    return this.call({ method: "raftLoopLag", args: [] });
  }

  handOverLeadership(options: Omit<HandOverOptions, "clock">): Promise<HandOver> {
    return this.call({ method: "handOverLeadership", args: [options] });
  }

  /** watch forwards a poll; the caller's hang-up (signal) drops it on the raft thread too. */
  watch(query: HostWatchQuery): Promise<WatchAnswer> {
    const { signal, ...rest } = query;
    const id = this.nextId++;
    const answer = this.track<WatchAnswer>(id, () => this.outbox.send({ kind: "watch", id, query: rest }));
    if (signal !== undefined) {
      const cancel = () => this.outbox.send({ kind: "cancel_watch", id });
      signal.addEventListener("abort", cancel, { once: true });
      void answer.finally(() => signal.removeEventListener("abort", cancel)).catch(() => undefined);
    }
    return answer;
  }

  onTimelineChange(listener: () => void): () => void {
    this.timelineListeners.add(listener);
    return () => this.timelineListeners.delete(listener);
  }

  /** stop stops the raft side (service, transport, durable log) and waits for the thread to end. */
  async stop(): Promise<void> {
    if (this.exited) return;
    this.stopping = true;
    const ended = new Promise<void>((resolve) => this.worker.once("exit", () => resolve()));
    await this.call<void>({ method: "stop", args: [] }).catch(() => undefined);
    // The thread ends by itself once its port is closed; a handle left open must not keep the node up.
    const endedMs = 2000;
    const timer = setTimeout(() => void this.worker.terminate(), endedMs);
    await ended;
    clearTimeout(timer);
  }

  private call<T>(call: HostCall): Promise<T> {
    const id = this.nextId++;
    return this.track<T>(id, () => this.outbox.send({ kind: "call", id, ...call }));
  }

  /** track registers a call's answer and sends it, unless too many are in flight or the thread is gone. */
  private track<T>(id: number, send: () => void): Promise<T> {
    if (this.exited) return Promise.reject(new DriverError("shutting_down", "the node is shutting down"));
    if (this.pending.size >= this.options.callsInFlightMax) {
      return Promise.reject(new DriverError("overloaded", `more than ${this.options.callsInFlightMax} calls wait for the raft thread`));
    }
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      send();
    });
  }

  private receive(message: FromRaftThread): void {
    switch (message.kind) {
      case "answer":
      case "failure": {
        const call = this.pending.get(message.id);
        if (call === undefined) return;
        this.pending.delete(message.id);
        if (message.kind === "answer") call.resolve(message.value);
        else call.reject(fromWireError(message.error));
        return;
      }
      case "leader":
      case "started":
        this.knownLeaderId = message.leaderId;
        return;
      case "timeline_changed":
        for (const listener of this.timelineListeners) listener();
        return;
      case "credentials":
        this.credentialsByHash = credentialMapOf(message.credentials);
        return;
      case "start_failed":
        return; // Only ever the first message, handled by start().
    }
  }

  private threadExited(exitCode: number): void {
    this.exited = true;
    const error = new DriverError("shutting_down", "the node is shutting down");
    for (const call of this.pending.values()) call.reject(error);
    this.pending.clear();
    if (!this.stopping) this.options.onExit(exitCode === 0 ? 70 : exitCode);
  }
}

/** credentialMapOf: the announced table by token hash, with what the API needs of each (the hash stays the key). */
function credentialMapOf(credentials: readonly Credential[]): Map<string, CredentialIdentity> {
  return new Map(credentials.map(({ tokenHash, name, role, issuedIndex }) => [tokenHash, { name, role, issuedIndex }] as const));
}
