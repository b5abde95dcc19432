// The audit trail as stored in the cluster: the `audit` hash chain, whose records the cluster
// itself numbers and chains when it applies each transaction. GET /audit verifies the chain and
// answers with one page of it.
//
// Verification is incremental: the first request verifies from the genesis, and this process
// remembers the verified head (seq, hash, key), so later requests only verify what was appended
// since. Each request verifies at most `recordsPerRequestMax` records; beyond that it says
// "partial" and how far it got, and the next request goes on from there.
//
// Verification runs one at a time (issue 14): concurrent requests used to read from the same head,
// and the one that finished second checked records 1… against the head the first had already
// moved to N, found "expected seq N+1, found 1", and remembered the chain as broken for good. Now a
// request that arrives while a verification runs waits for the next one (which starts after it
// arrived, so it sees everything written before the request), and every run checks its records
// against the head it read them after, never against one that moved meanwhile.

import { type ChainRecord, chainGenesisHash, verifyChain } from "../protocol/chain.ts";
import { nameLengthMax } from "../protocol/limits.ts";
import type { ClusterPort } from "./cluster.ts";
import { ApiError, clusterError } from "./errors.ts";
import { type AuditRecord, keys, sha256Hex } from "./records.ts";

export type ChainStatus =
  | { readonly verified: true; readonly records: number; readonly headHash: string }
  | { readonly verified: "partial"; readonly records: number; readonly verifiedThroughSeq: number; readonly headHash: string }
  | { readonly verified: false; readonly brokenAtSeq: number; readonly reason: string };

export interface AuditPage {
  readonly chain: ChainStatus;
  readonly items: readonly (Omit<ChainRecord, "record"> & { record: AuditRecord })[];
  readonly nextCursor: string | undefined;
}

export class AuditTrail {
  private readonly cluster: ClusterPort;
  private readonly recordsPerRequestMax: number;
  /** head: how far this process has verified the chain. */
  private head = { seq: 0, hash: chainGenesisHash, key: undefined as string | undefined };
  private broken: { brokenAtSeq: number; reason: string } | undefined;

  constructor(cluster: ClusterPort, recordsPerRequestMax: number) {
    this.cluster = cluster;
    this.recordsPerRequestMax = recordsPerRequestMax;
  }

  /** running: the verification in progress; queued: the one that starts after it, shared by every request that arrived meanwhile. */
  private running: Promise<ChainStatus> | undefined;
  private queued: Promise<ChainStatus> | undefined;

  /**
   * verify extends the verified head over what was appended since, up to the per-request bound.
   * Runs are serialised: at most one runs and one waits, however many requests arrive at once.
   */
  verify(requestId: string): Promise<ChainStatus> {
    if (this.running === undefined) return this.start(requestId);
    if (this.queued === undefined) {
      const after = this.running.catch(() => undefined);
      this.queued = after.then(() => {
        this.queued = undefined;
        return this.start(requestId);
      });
    }
    return this.queued;
  }

  private start(requestId: string): Promise<ChainStatus> {
    const run = this.verifyOnce(requestId).finally(() => {
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }

  private async verifyOnce(requestId: string): Promise<ChainStatus> {
    if (this.broken !== undefined) return { verified: false, ...this.broken };
    let read = 0;
    for (;;) {
      const from = this.head;
      const page = await this.cluster.range(keys.auditPrefix, {
        limit: 1000,
        requestId,
        ...(from.key === undefined ? {} : { after: from.key }),
      });
      // Runs are serialised, so nothing else moves the head while this one reads; the assertion
      // keeps it that way, since checking records against a head they were not read after is
      // exactly how a wrong "broken" used to arise.
      if (this.head !== from) throw new Error("audit chain verification: the head moved during a run (runs must be serialised)");
      const records = page.items.map((item) => JSON.parse(item.value) as ChainRecord);
      // A native SHA-256 (sha256Hex, node:crypto): the pure one the state machine must use took
      // 2 to 3 s, all on the event loop, for a chain of 20,000 records.
      const verdict = verifyChain(records, from, sha256Hex);
      if (!verdict.ok) {
        this.broken = { brokenAtSeq: verdict.brokenAtSeq, reason: verdict.reason };
        return { verified: false, ...this.broken };
      }
      const last = page.items.at(-1);
      if (last !== undefined) this.head = { seq: from.seq + verdict.count, hash: verdict.headHash, key: last.key };
      read += page.items.length;
      if (!page.more) return { verified: true, records: this.head.seq, headHash: this.head.hash };
      if (read >= this.recordsPerRequestMax) {
        return { verified: "partial", records: this.head.seq, verifiedThroughSeq: this.head.seq, headHash: this.head.hash };
      }
    }
  }

  /** page verifies, then reads `limit` records after the cursor (a chain key this API handed out). */
  async page(query: { limit: number; cursor?: string | undefined }, requestId: string): Promise<AuditPage> {
    let after: string | undefined;
    if (query.cursor !== undefined) {
      after = Buffer.from(query.cursor, "base64url").toString("utf8");
      // A cursor this API made is a chain key, within the cluster's key limit; anything else is refused here, not passed on.
      if (after.length > nameLengthMax || !after.startsWith(keys.auditPrefix))
        throw new ApiError("invalid_cursor", "the cursor is not one this API made; follow the next link");
    }
    try {
      const chain = await this.verify(requestId);
      const page = await this.cluster.range(keys.auditPrefix, { limit: query.limit, requestId, ...(after === undefined ? {} : { after }) });
      const last = page.items.at(-1);
      return {
        chain,
        items: page.items.map((item) => {
          const record = JSON.parse(item.value) as ChainRecord;
          return { ...record, record: parseRecord(record.record) };
        }),
        nextCursor: page.more && last !== undefined ? Buffer.from(last.key).toString("base64url") : undefined,
      };
    } catch (error) {
      throw clusterError(error, "reading the audit chain");
    }
  }
}

export function parseRecord(value: string): AuditRecord {
  return JSON.parse(value) as AuditRecord;
}
