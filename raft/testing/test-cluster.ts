// TestCluster drives N cores over MemoryStorage with a perfect, synchronous network that
// tests can cut. It is the harness of the unit tests and of the scenario scripts; it follows
// Ready's contract exactly (persist, then send, then apply, then advance), so it also serves as
// the reference for how a host should drive the core. Only tests import it.

import { assert } from "../assert.ts";
import type { RaftConfig } from "../config.ts";
import { raftConfigDefaults } from "../config.ts";
import type { Entry, LogIndex, NodeId, RaftMessage } from "../messages.ts";
import { nodeId } from "../messages.ts";
import type { Ready } from "../node.ts";
import { RawNode } from "../node.ts";
import type { PlantedBug } from "../planted-bugs.ts";
import { createSeededRandom } from "../random.ts";
import { MemoryStorage } from "../storage.ts";

export interface TestNode {
  readonly id: NodeId;
  rawNode: RawNode;
  /** storage is this node's durable state: it survives crash(). */
  storage: MemoryStorage;
  /** applied lists every entry the state machine applied, in order, since the last restart. */
  applied: Entry[];
  /** appliedData is the state machine: the data of the normal entries applied, in order. */
  appliedData: string[];
  readsServed: { requestId: number; index: LogIndex }[];
  readsDropped: number[];
  crashed: boolean;
}

export interface TestClusterOptions {
  readonly size: number;
  readonly seed?: number;
  readonly config?: Partial<Omit<RaftConfig, "id" | "random">>;
  readonly plantedBug?: PlantedBug;
}

/** TestCluster is a cluster of cores on a synchronous in-memory network. */
export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** inFlight are messages sent but not yet delivered. */
  inFlight: RaftMessage[] = [];
  /** delivered counts every message delivered, by type, for transcripts. */
  readonly trace: string[] = [];
  private readonly cut = new Set<string>();
  private seed: number;
  private readonly options: TestClusterOptions;

  constructor(options: TestClusterOptions) {
    this.options = options;
    this.seed = options.seed ?? 1;
    const ids = Array.from({ length: options.size }, (_, position) => nodeId(`n${position + 1}`));
    for (const id of ids) this.addNode(id, MemoryStorage.bootstrap(ids));
  }

  /** addNode starts a server over `storage` (bootstrap storage for founders, empty for a joiner). */
  addNode(id: NodeId, storage: MemoryStorage = new MemoryStorage()): TestNode {
    const node: TestNode = {
      id,
      rawNode: this.makeRawNode(id, storage),
      storage,
      applied: [],
      appliedData: [],
      readsServed: [],
      readsDropped: [],
      crashed: false,
    };
    this.nodes.set(id, node);
    return node;
  }

  node(id: string): TestNode {
    const node = this.nodes.get(nodeId(id));
    assert(node !== undefined, `no node ${id}`);
    return node;
  }

  ids(): NodeId[] {
    return [...this.nodes.keys()];
  }

  /** partition cuts every link between the groups (both directions). */
  partition(...groups: string[][]): void {
    this.cut.clear();
    for (const [position, group] of groups.entries()) {
      for (const other of groups.slice(position + 1)) {
        for (const a of group) for (const b of other) this.isolatePair(a, b);
      }
    }
  }

  /** cutLink drops messages from `from` to `to` only (a one-way partition). */
  cutLink(from: string, to: string): void {
    this.cut.add(`${from}>${to}`);
  }

  isolatePair(a: string, b: string): void {
    this.cut.add(`${a}>${b}`);
    this.cut.add(`${b}>${a}`);
  }

  isolate(id: string): void {
    for (const other of this.ids()) if (other !== id) this.isolatePair(id, other);
  }

  heal(): void {
    this.cut.clear();
  }

  /** tick advances the given nodes (all by default) by `count` ticks, processing Ready after each. */
  tick(ids: readonly string[] = this.ids(), count = 1): void {
    for (let round = 0; round < count; round++) {
      for (const id of ids) {
        const node = this.node(id);
        if (node.crashed) continue;
        node.rawNode.tick();
        this.processReady(node);
      }
    }
  }

  /** campaign makes `id` start an election (subject to pre-vote). */
  campaign(id: string): void {
    const node = this.node(id);
    node.rawNode.campaign();
    this.processReady(node);
  }

  propose(id: string, data: string): ReturnType<RawNode["propose"]> {
    const node = this.node(id);
    const outcome = node.rawNode.propose(new TextEncoder().encode(data));
    this.processReady(node);
    return outcome;
  }

  /** processReady handles every Ready the node has, in the contract's order. */
  processReady(node: TestNode): void {
    for (let rounds = 0; rounds < 1000; rounds++) {
      const ready = node.rawNode.ready();
      if (ready === undefined) return;
      this.handleReady(node, ready);
      node.rawNode.advance(ready);
    }
    assert(false, `node ${node.id} kept producing Ready`);
  }

  /** deliverAll delivers messages until the network is quiet; returns the number delivered. */
  stabilize(deliveriesMax = 100_000): number {
    let delivered = 0;
    while (this.inFlight.length > 0) {
      assert(delivered < deliveriesMax, `no quiescence after ${deliveriesMax} deliveries`);
      const batch = this.inFlight;
      this.inFlight = [];
      for (const message of batch) {
        if (this.deliver(message)) delivered++;
      }
    }
    return delivered;
  }

  /** deliver hands one message to its target unless the link is cut or the target is down. */
  deliver(message: RaftMessage): boolean {
    if (this.cut.has(`${message.from}>${message.to}`)) return false;
    const target = this.nodes.get(message.to);
    if (target === undefined || target.crashed) return false;
    this.trace.push(describeMessage(message));
    target.rawNode.step(message);
    this.processReady(target);
    return true;
  }

  /**
   * deliverNext takes the oldest message in flight that `matches` (any, by default) and delivers
   * it; with no filter that is the order stabilize() uses. Returns undefined when no such message
   * is in flight; `delivered` is false when the link was cut or the target is down (the message is
   * then lost). Added for the scenario runner.
   */
  deliverNext(
    matches: (message: RaftMessage) => boolean = () => true,
  ): { readonly message: RaftMessage; readonly delivered: boolean } | undefined {
    const position = this.inFlight.findIndex(matches);
    if (position < 0) return undefined;
    const [message] = this.inFlight.splice(position, 1) as [RaftMessage];
    return { message, delivered: this.deliver(message) };
  }

  /** dropMatching removes the messages in flight that `matches` and returns them, as a lossy network would. */
  dropMatching(matches: (message: RaftMessage) => boolean): RaftMessage[] {
    const dropped = this.inFlight.filter(matches);
    this.inFlight = this.inFlight.filter((message) => !matches(message));
    return dropped;
  }

  /** isLinkCut reports whether messages from `from` to `to` are currently dropped. */
  isLinkCut(from: string, to: string): boolean {
    return this.cut.has(`${from}>${to}`);
  }

  /** crash stops a node: whatever it had not persisted is gone, and so are its messages in flight. */
  crash(id: string): void {
    const node = this.node(id);
    node.crashed = true;
    this.inFlight = this.inFlight.filter((message) => message.from !== node.id && message.to !== node.id);
  }

  /** restart brings a crashed node back from its durable storage with a fresh state machine. */
  restart(id: string): void {
    const node = this.node(id);
    node.crashed = false;
    node.applied = [];
    // The state machine comes back from the snapshot, then the log after it is replayed.
    const snapshot = node.storage.snapshot();
    node.appliedData =
      snapshot.metadata.index === 0
        ? []
        : new TextDecoder()
            .decode(snapshot.data)
            .split("\n")
            .filter((line) => line.length > 0);
    node.rawNode = this.makeRawNode(node.id, node.storage);
    this.processReady(node);
  }

  leader(): TestNode | undefined {
    let found: TestNode | undefined;
    for (const node of this.nodes.values()) {
      if (!node.crashed && node.rawNode.status().role === "leader") {
        if (found === undefined || node.rawNode.status().term > found.rawNode.status().term) found = node;
      }
    }
    return found;
  }

  private handleReady(node: TestNode, ready: Ready): void {
    // 1. Persist.
    if (ready.snapshot !== undefined) node.storage.applySnapshot(ready.snapshot);
    node.storage.append(ready.entries);
    if (ready.hardState !== undefined) node.storage.setHardState(ready.hardState);
    // 2. Send.
    for (const message of ready.messages) this.inFlight.push(message);
    // 3. Apply.
    if (ready.snapshot !== undefined) {
      node.appliedData = new TextDecoder()
        .decode(ready.snapshot.data)
        .split("\n")
        .filter((line) => line.length > 0);
    }
    for (const entry of ready.committedEntries) {
      node.applied.push(entry);
      if (entry.kind === "normal") node.appliedData.push(new TextDecoder().decode(entry.data));
    }
    for (const read of ready.readStates) node.readsServed.push(read);
    for (const requestId of ready.droppedReads) node.readsDropped.push(requestId);
  }

  /** compact takes a snapshot of `id`'s state machine at its applied index and drops the log before it. */
  compact(id: string): void {
    const node = this.node(id);
    const status = node.rawNode.status();
    const data = new TextEncoder().encode(node.appliedData.join("\n"));
    node.storage.createSnapshot(status.appliedIndex, node.rawNode.confState(), data);
  }

  private makeRawNode(id: NodeId, storage: MemoryStorage): RawNode {
    this.seed++;
    const config: RaftConfig = {
      ...raftConfigDefaults,
      ...this.options.config,
      id,
      random: createSeededRandom(this.seed),
      ...(this.options.plantedBug === undefined ? {} : { plantedBug: this.options.plantedBug }),
    };
    return new RawNode(config, storage);
  }
}

/** describeMessage renders a message on one line, for transcripts and failure reports. */
export function describeMessage(message: RaftMessage): string {
  const head = `${message.from}->${message.to} ${message.type} term=${message.term}`;
  switch (message.type) {
    case "request_vote":
      return `${head} last=${message.lastLogIndex}@${message.lastLogTerm}${message.preVote ? " pre" : ""}${message.leadershipTransfer ? " transfer" : ""}`;
    case "request_vote_result":
      return `${head} ${message.voteGranted ? "granted" : "refused"}${message.preVote ? " pre" : ""}`;
    case "append_entries":
      return `${head} prev=${message.prevLogIndex}@${message.prevLogTerm} entries=${message.entries.length} commit=${message.leaderCommit}`;
    case "append_entries_result":
      return message.success
        ? `${head} ok match=${message.matchIndex}`
        : `${head} reject=${message.rejectedIndex} hint=${message.hintIndex}@${message.hintTerm}`;
    case "heartbeat":
      return `${head} commit=${message.commitIndex}${message.readContext > 0 ? ` read=${message.readContext}` : ""}`;
    case "heartbeat_result":
      return `${head}${message.readContext > 0 ? ` read=${message.readContext}` : ""}`;
    case "install_snapshot":
      return `${head} snapshot=${message.snapshot.metadata.index}@${message.snapshot.metadata.term}`;
    case "install_snapshot_result":
      return `${head} match=${message.matchIndex}`;
    case "timeout_now":
      return head;
  }
}
