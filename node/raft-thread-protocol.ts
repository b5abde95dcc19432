// What the HTTP (main) thread and the raft thread say to each other over the worker's MessagePort.
// Every message is plain data (structured clone). Messages travel in batches, one postMessage per
// batch (Outbox), so a burst of requests or answers costs one wake-up of the other thread.
//
// main → raft: calls of the RaftHost methods, watch polls and their cancellation.
// raft → main: answers, the leader this node knows (whenever it changes), a nudge when the status
// timeline moves, and "started" or "start_failed" once.

import type { Credential, LockCommand } from "../lock/types.ts";
import type { Role } from "../protocol/roles.ts";
import type { ConfChange, NodeId } from "../raft/index.ts";
import { type CallerCheck, CredentialRefusedError } from "./api-auth.ts";
import type { NodeConfig } from "./config.ts";
import { DriverError, type DriverErrorCode } from "./driver/raft-driver.ts";
import type { HandOverOptions } from "./graceful-stop.ts";
import type { PeerTlsOptions } from "./transport/websocket-transport.ts";
import { WatchError, type WatchErrorCode } from "./watch-hub.ts";

/** RaftThreadData is the worker's workerData: the node's configuration, validated by the main thread. */
export interface RaftThreadData {
  readonly config: NodeConfig;
  /** tls: the peer link's certificate, key and CA, read and checked by the main thread (none: a plain link). */
  readonly tls?: PeerTlsOptions;
}

/** HostCall is one call of a RaftHost method on the raft thread. */
export type HostCall =
  | { readonly method: "propose"; readonly args: readonly [LockCommand, { readonly awaitQueuedMs?: number }] }
  | { readonly method: "proposeConfChange"; readonly args: readonly [ConfChange] }
  | { readonly method: "transferLeadership"; readonly args: readonly [NodeId] }
  | { readonly method: "readKey"; readonly args: readonly [string, CallerCheck] }
  | {
      readonly method: "readRange";
      readonly args: readonly [{ readonly prefix: string; readonly limit: number; readonly after?: string }, CallerCheck];
    }
  | { readonly method: "readLeases"; readonly args: readonly [CallerCheck] }
  | { readonly method: "confirmCaller"; readonly args: readonly [CallerCheck] }
  | { readonly method: "credentialList"; readonly args: readonly [CallerCheck] }
  | { readonly method: "findCredential"; readonly args: readonly [string] }
  | { readonly method: "useTls"; readonly args: readonly [PeerTlsOptions] }
  | { readonly method: "hostStatus"; readonly args: readonly [] }
  | { readonly method: "localView"; readonly args: readonly [number] }
  | { readonly method: "raftMetricsText"; readonly args: readonly [] }
  | { readonly method: "raftLoopLag"; readonly args: readonly [] }
  | { readonly method: "handOverLeadership"; readonly args: readonly [Omit<HandOverOptions, "clock">] }
  | { readonly method: "stop"; readonly args: readonly [] };

/** WatchCall is a watch poll (its AbortSignal stays on the main thread: a hang-up sends cancel_watch). */
export interface WatchCall {
  readonly prefix: string;
  readonly after: number | undefined;
  readonly limit: number;
  readonly timeoutMs: number;
  readonly caller?: CallerCheck;
}

export type ToRaftThread =
  | ({ readonly kind: "call"; readonly id: number } & HostCall)
  | { readonly kind: "watch"; readonly id: number; readonly query: WatchCall }
  | { readonly kind: "cancel_watch"; readonly id: number };

export type FromRaftThread =
  | { readonly kind: "answer"; readonly id: number; readonly value: unknown }
  | { readonly kind: "failure"; readonly id: number; readonly error: WireError }
  | { readonly kind: "leader"; readonly leaderId: NodeId | null }
  | { readonly kind: "timeline_changed" }
  /** credentials: the whole credential table, after every change (the main thread lets requests in by it). */
  | { readonly kind: "credentials"; readonly credentials: readonly Credential[] }
  | { readonly kind: "started"; readonly leaderId: NodeId | null }
  /** start_failed: the raft side could not start; the process exits with exitCode (3: an unusable data directory). */
  | { readonly kind: "start_failed"; readonly exitCode: number; readonly message: string };

/** WireError is an error as it crosses: the coded errors keep their class and fields; others keep their text. */
export type WireError =
  | {
      readonly kind: "driver";
      readonly code: DriverErrorCode;
      readonly message: string;
      readonly leaderHint: NodeId | null;
      readonly dropReason: string | undefined;
    }
  | {
      readonly kind: "watch";
      readonly code: WatchErrorCode;
      readonly message: string;
      readonly details: { readonly oldestIndex: number } | undefined;
    }
  | { readonly kind: "credential"; readonly code: "unauthorized" | "forbidden"; readonly message: string; readonly role: Role }
  | { readonly kind: "other"; readonly message: string; readonly stack: string | undefined };

export function toWireError(error: unknown): WireError {
  if (error instanceof DriverError) {
    return { kind: "driver", code: error.code, message: error.message, leaderHint: error.leaderHint, dropReason: error.dropReason };
  }
  if (error instanceof WatchError) return { kind: "watch", code: error.code, message: error.message, details: error.details };
  if (error instanceof CredentialRefusedError) return { kind: "credential", code: error.code, message: error.message, role: error.role };
  if (error instanceof Error) return { kind: "other", message: error.message, stack: error.stack };
  return { kind: "other", message: String(error), stack: undefined };
}

/** fromWireError rebuilds the error on the receiving side, so handlers branch on it as if it were thrown there. */
export function fromWireError(wire: WireError): Error {
  switch (wire.kind) {
    case "driver":
      return new DriverError(wire.code, wire.message, wire.leaderHint, wire.dropReason);
    case "watch":
      return new WatchError(wire.code, wire.message, wire.details);
    case "credential":
      return new CredentialRefusedError(wire.code, wire.message, wire.role);
    case "other": {
      const error = new Error(`raft thread: ${wire.message}`);
      if (wire.stack !== undefined) error.stack = wire.stack;
      return error;
    }
  }
}

/**
 * Outbox batches messages for one port: everything sent within one turn of the event loop goes
 * out as one postMessage (on setImmediate). flush() sends what waits at once (before a stop).
 */
export class Outbox<T> {
  private batch: T[] = [];
  private scheduled = false;
  private readonly post: (batch: readonly T[]) => void;

  constructor(post: (batch: readonly T[]) => void) {
    this.post = post;
  }

  send(message: T): void {
    this.batch.push(message);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  flush(): void {
    this.scheduled = false;
    if (this.batch.length === 0) return;
    const batch = this.batch;
    this.batch = [];
    this.post(batch);
  }
}
