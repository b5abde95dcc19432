// The nodes' applied logs, as each node applied them: every node keeps the events of the entries
// it applied since it started (GET /watch, from its own state machine, no forwarding), and every
// node must derive the same events at the same indexes. Read from each running node once the
// cluster has converged, and compared index by index; unlike the durable logs, which compaction
// cuts short, this covers everything a node applied while it ran.

export interface AppliedEvents {
  readonly id: string;
  /** fromIndex: the node holds events after this index only (it started, or installed a snapshot, there). */
  readonly fromIndex: number;
  readonly byIndex: ReadonlyMap<number, string>;
}

export interface AppliedComparison {
  readonly ok: boolean;
  readonly comparedIndexes: number;
  readonly problems: string[];
}

/** readAppliedEvents reads a node's applied events up to `toIndex` (bounded pages), each index's events as one JSON text. */
export async function readAppliedEvents(id: string, url: string, apiToken: string, toIndex: number): Promise<AppliedEvents> {
  const byIndex = new Map<number, string[]>();
  let after = 0;
  let fromIndex = 0;
  for (let page = 0; page < 10_000 && after < toIndex; page++) {
    const response = await fetch(`${url}/watch?after=${after}&timeoutMs=0&limit=1000`, {
      headers: { authorization: `Bearer ${apiToken}` },
      signal: AbortSignal.timeout(5000),
    });
    const body = (await response.json()) as {
      events?: { index: number }[];
      lastIndex?: number;
      error?: { code: string; details?: { oldestIndex?: number } };
    };
    if (response.status === 410 && body.error?.details?.oldestIndex !== undefined) {
      // The node holds nothing older (it started from a snapshot there): start where it can.
      after = body.error.details.oldestIndex;
      fromIndex = after;
      continue;
    }
    if (!response.ok || body.events === undefined || body.lastIndex === undefined) {
      throw new Error(`${id}: GET /watch answered ${response.status} ${JSON.stringify(body).slice(0, 200)}`);
    }
    for (const event of body.events) {
      if (event.index > toIndex) continue;
      byIndex.set(event.index, [...(byIndex.get(event.index) ?? []), JSON.stringify(event)]);
    }
    if (body.lastIndex <= after) break; // Nothing newer applied yet.
    after = body.lastIndex;
  }
  return { id, fromIndex, byIndex: new Map([...byIndex].map(([index, events]) => [index, events.join("\n")])) };
}

/** compareAppliedEvents compares, for every index two or more nodes cover, the events each applied there. */
export function compareAppliedEvents(nodes: readonly AppliedEvents[], toIndex: number): AppliedComparison {
  const problems: string[] = [];
  let comparedIndexes = 0;
  for (let index = 1; index <= toIndex && problems.length < 20; index++) {
    const covering = nodes.filter((node) => index > node.fromIndex);
    if (covering.length < 2) continue;
    comparedIndexes++;
    const [first, ...others] = covering as [AppliedEvents, ...AppliedEvents[]];
    const expected = first.byIndex.get(index) ?? "(no events)";
    for (const other of others) {
      const actual = other.byIndex.get(index) ?? "(no events)";
      if (actual !== expected)
        problems.push(`index ${index}: ${first.id} applied ${expected.slice(0, 160)}, ${other.id} applied ${actual.slice(0, 160)}`);
    }
  }
  return { ok: problems.length === 0, comparedIndexes, problems };
}
