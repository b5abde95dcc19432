// The scheduler's view of the lock cluster: the few calls it needs, as an interface, so the
// booking flow reads as the design says and tests can count calls. `lockClusterPort` adapts
// client/'s LockClient to it. What crosses it has the wire contract's types (protocol/api.ts),
// under the names the booking flow uses.

import { type LockClient, LockError } from "../client/lock-client.ts";
import type { RangeItem, RangeReadRequest, TxnOperation } from "../protocol/api.ts";

/** ClusterOperation is one write of a fenced txn: put, delete, or the next record of a hash chain. */
export type ClusterOperation = TxnOperation;

/** ClusterItem is one key read: its value and the index that wrote it. */
export type ClusterItem = RangeItem;

/** RangeRead: live keys under `prefix`, after `after` (exclusive), at most `limit`. */
export type RangeRead = RangeReadRequest;

export interface ClusterLease {
  /** token is the fencing token (a decimal string). */
  readonly token: string;
  /** reads: the acquire's range reads as of the granting entry (undefined when none were asked or answered). */
  readonly reads: readonly { readonly items: readonly ClusterItem[]; readonly more: boolean }[] | undefined;
  /** isValid: the client's pessimistic view of whether the lease still holds. */
  isValid(): boolean;
  /** txn writes under the lease; with `release` the same entry ends the lease (one round fewer). */
  txn(operations: readonly ClusterOperation[], requestId: string, options?: { release?: boolean }): Promise<{ index: number }>;
  release(requestId: string): Promise<void>;
}

export interface ClusterEvent {
  readonly index: number;
  readonly key: string;
  readonly value: string | undefined;
}

export interface ClusterPort {
  acquire(
    resources: readonly string[],
    options: { ttlMs: number; waitMs: number; requestId: string; reads?: readonly RangeRead[] },
  ): Promise<ClusterLease>;
  get(key: string, requestId: string): Promise<ClusterItem | undefined>;
  range(
    prefix: string,
    options: { limit: number; after?: string | undefined; requestId: string },
  ): Promise<{ items: ClusterItem[]; more: boolean }>;
  /**
   * watch yields key changes under `prefix` committed after index `after`, in order, once each;
   * polls that brought changes are `pollIntervalMinMs` apart at least (LockClient.watch).
   */
  watch(prefix: string, options: { after: number; signal: AbortSignal; pollIntervalMinMs?: number }): AsyncIterable<ClusterEvent>;
  /** appliedIndex: how far the answering node has applied the log (where a new watch starts). */
  appliedIndex(): Promise<number>;
}

export { LockError };

/** lockClusterPort adapts a LockClient to ClusterPort. */
export function lockClusterPort(client: LockClient): ClusterPort {
  return {
    async acquire(resources, options) {
      const lease = await client.acquire(resources, {
        ttlMs: options.ttlMs,
        waitMs: options.waitMs,
        autoRenew: false,
        requestId: options.requestId,
        ...(options.reads === undefined ? {} : { reads: options.reads }),
      });
      return {
        token: lease.token,
        reads: lease.reads,
        isValid: () => lease.isValid(),
        txn: async (operations, requestId, txnOptions) => {
          const result = await lease.txn(operations, { requestId, release: txnOptions?.release === true });
          return { index: result.index };
        },
        release: (requestId) => lease.release({ requestId }),
      };
    },
    async get(key, requestId) {
      const item = await client.get(key, { requestId });
      return item === undefined ? undefined : { key, value: item.value, modIndex: item.modIndex };
    },
    async range(prefix, options) {
      const page = await client.range(prefix, {
        limit: options.limit,
        requestId: options.requestId,
        ...(options.after === undefined ? {} : { after: options.after }),
      });
      return { items: page.items.map((item) => ({ key: item.key, value: item.value, modIndex: item.modIndex })), more: page.more };
    },
    async *watch(prefix, options) {
      const spacing = options.pollIntervalMinMs === undefined ? {} : { pollIntervalMinMs: options.pollIntervalMinMs };
      for await (const event of client.watch(prefix, { after: options.after, signal: options.signal, ...spacing })) {
        if (event.type !== "key_changed") continue;
        yield { index: event.index, key: event.key, value: event.value };
      }
    },
    async appliedIndex() {
      return (await client.status()).appliedIndex;
    },
  };
}
