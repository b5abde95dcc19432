// The audit trail as stored in the cluster: the `audit` hash chain, whose records the cluster
// itself numbers and chains when it applies each transaction. GET /audit reads it back and
// verifies the whole chain with client/'s verifier.

import { type ChainRecord, verifyChain } from "../client/audit-chain.ts";
import type { ClusterPort } from "./cluster.ts";
import { ApiError } from "./errors.ts";
import { type AuditRecord, clusterError, keys } from "./records.ts";

export interface AuditPage {
  readonly chain:
    | { verified: true; records: number; headHash: string }
    | { verified: false; records: number; brokenAtSeq: number; reason: string };
  readonly items: readonly (Omit<ChainRecord, "record"> & { record: AuditRecord })[];
  readonly nextCursor: string | undefined;
}

/** readAuditPage reads the whole chain (at most `recordsMax`), verifies it, and returns one page of it. */
export async function readAuditPage(
  cluster: ClusterPort,
  query: { limit: number; cursor?: string | undefined },
  recordsMax: number,
  requestId: string,
): Promise<AuditPage> {
  let fromSeq = 1;
  if (query.cursor !== undefined) {
    fromSeq = Number(Buffer.from(query.cursor, "base64url").toString("utf8"));
    if (!Number.isSafeInteger(fromSeq) || fromSeq < 1)
      throw new ApiError("invalid_cursor", "the cursor is not one this API made; follow the next link");
  }
  const records: ChainRecord[] = [];
  let after: string | undefined;
  try {
    for (;;) {
      const page = await cluster.range(keys.auditPrefix, { limit: 1000, requestId, ...(after === undefined ? {} : { after }) });
      for (const item of page.items) records.push(JSON.parse(item.value) as ChainRecord);
      if (!page.more || page.items.length === 0) break;
      if (records.length >= recordsMax) break;
      after = page.items.at(-1)?.key;
    }
  } catch (error) {
    throw clusterError(error, "reading the audit chain");
  }
  const verdict = verifyChain(records);
  const chain: AuditPage["chain"] = verdict.ok
    ? { verified: true, records: verdict.count, headHash: verdict.headHash }
    : { verified: false, records: records.length, brokenAtSeq: verdict.brokenAtSeq, reason: verdict.reason };
  const start = records.findIndex((record) => record.seq >= fromSeq);
  const slice = start === -1 ? [] : records.slice(start, start + query.limit);
  const last = slice.at(-1);
  const hasMore = start !== -1 && start + query.limit < records.length;
  return {
    chain,
    items: slice.map((record) => ({ ...record, record: parseRecord(record.record) })),
    nextCursor: hasMore && last !== undefined ? Buffer.from(String(last.seq + 1)).toString("base64url") : undefined,
  };
}

export function parseRecord(value: string): AuditRecord {
  return JSON.parse(value) as AuditRecord;
}
