// In-memory doubles of the node's seams (hashicorp/raft's Inmem* idea): a DurableLog that keeps
// its "disk" in memory, and a transport hub whose links tests can cut. Tests only.

import type { NodeId, RaftMessage } from "../../raft/index.ts";
import type { DurableLog, DurableState, PeerTransport } from "../contracts.ts";

/** MemoryDurableLog keeps the durable state in memory; it survives a host restart within the test. */
export class MemoryDurableLog implements DurableLog {
  private state: { hardState: DurableState["hardState"]; snapshot: DurableState["snapshot"]; entries: DurableState["entries"][number][] } =
    {
      hardState: { term: 0, votedFor: null, commitIndex: 0 },
      snapshot: undefined,
      entries: [],
    };
  saves = 0;

  async load(): Promise<DurableState> {
    return { hardState: this.state.hardState, snapshot: this.state.snapshot, entries: this.state.entries.slice() };
  }

  async save(update: Parameters<DurableLog["save"]>[0]): Promise<void> {
    this.saves++;
    if (update.hardState !== undefined) this.state.hardState = update.hardState;
    if (update.snapshot !== undefined) {
      const index = update.snapshot.metadata.index;
      this.state.snapshot = update.snapshot;
      this.state.entries = this.state.entries.filter((entry) => entry.index > index);
    }
    const first = update.entries[0];
    if (first !== undefined) {
      this.state.entries = this.state.entries.filter((entry) => entry.index < first.index).concat(update.entries);
    }
  }

  async compact(snapshot: Parameters<DurableLog["compact"]>[0]): Promise<void> {
    this.state.snapshot = snapshot;
    this.state.entries = this.state.entries.filter((entry) => entry.index > snapshot.metadata.index);
  }

  async close(): Promise<void> {}
}

/** MemoryTransportHub connects MemoryTransports; `isolate` and `heal` cut and mend links, `hold` and `release` delay a node's mail. */
export class MemoryTransportHub {
  private readonly handlers = new Map<NodeId, (message: RaftMessage) => void>();
  private readonly cutLinks = new Set<string>();
  private readonly down = new Set<NodeId>();
  /** held: messages to these nodes wait here, in order, until released (a node that lags behind, without losing anything). */
  private readonly held = new Map<NodeId, RaftMessage[]>();

  transport(id: NodeId): PeerTransport {
    this.down.delete(id);
    return {
      send: (message) => {
        if (this.down.has(id) || this.down.has(message.to) || this.cutLinks.has(`${message.from}>${message.to}`)) return;
        const waiting = this.held.get(message.to);
        if (waiting !== undefined) {
          waiting.push(structuredClone(message));
          return;
        }
        const handler = this.handlers.get(message.to);
        // Deliver asynchronously, as a socket would.
        if (handler !== undefined) setImmediate(() => handler(structuredClone(message)));
      },
      onMessage: (handler) => {
        this.handlers.set(id, handler);
      },
      peerStatus: () => new Map(),
      close: async () => {
        this.down.add(id);
        this.handlers.delete(id);
      },
    };
  }

  isolate(id: NodeId, others: readonly NodeId[]): void {
    for (const other of others) {
      this.cutLinks.add(`${id}>${other}`);
      this.cutLinks.add(`${other}>${id}`);
    }
  }

  heal(): void {
    this.cutLinks.clear();
  }

  /** hold keeps every message to `id` until release(id): the node falls behind, and loses nothing. */
  hold(id: NodeId): void {
    if (!this.held.has(id)) this.held.set(id, []);
  }

  /** release delivers what was held for `id`, in order, and lets later messages through. */
  release(id: NodeId): void {
    const waiting = this.held.get(id) ?? [];
    this.held.delete(id);
    const handler = this.handlers.get(id);
    if (handler !== undefined)
      setImmediate(() => {
        for (const message of waiting) handler(message);
      });
  }
}
