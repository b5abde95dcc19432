// The peer network between the nodes: loopback proxies per directed pair of nodes. Node A
// reaches node B only through the proxies "A→B", because A is started with SCTEC_PEERS naming one
// as B's HTTP address and SCTEC_RAFT_PEERS the other as B's Raft address (a node takes its peers'
// Raft connections on a port of its own: node/README.md). A node sends its Raft messages only on the WebSocket it dialled (the
// acceptor sends back nothing but handshake frames and pongs: node/transport/README.md), and its
// HTTP forwards to the leader go the same way, so cutting "A→B" is exactly "A cannot reach B"
// while B still reaches A through "B→A": a one-way partition, per direction, without touching
// the kernel's network. Clients talk to the nodes directly, as Jepsen's do.
//
// A cut drops bytes (a blackhole: no reset, no refusal), and lifting it resets the connections
// that lost bytes (LoopbackProxy), as a real network would after a long enough partition.

import { LoopbackProxy } from "../harness/loopback-proxy.ts";

/** Edge: the direction "from can send to to". */
export interface Edge {
  readonly from: string;
  readonly to: string;
}

export class PeerNetwork {
  /** proxies: per directed edge, its HTTP proxy, and its Raft proxy when the network has them. */
  private readonly proxies = new Map<string, LoopbackProxy>();
  private readonly raftProxies = new Map<string, LoopbackProxy>();
  private readonly ids: readonly string[];

  private constructor(ids: readonly string[]) {
    this.ids = ids;
  }

  /**
   * start creates a proxy for every directed pair of `ids`, each forwarding to the target's port,
   * and, with `raftPortOf`, a second one to the target's Raft port.
   */
  static async start(ids: readonly string[], portOf: (id: string) => number, raftPortOf?: (id: string) => number): Promise<PeerNetwork> {
    const network = new PeerNetwork(ids);
    try {
      for (const from of ids) {
        for (const to of ids) {
          if (from === to) continue;
          network.proxies.set(edgeKey({ from, to }), await LoopbackProxy.start(portOf(to)));
          if (raftPortOf !== undefined) network.raftProxies.set(edgeKey({ from, to }), await LoopbackProxy.start(raftPortOf(to)));
        }
      }
    } catch (error) {
      await network.close();
      throw error;
    }
    return network;
  }

  /** peersFor is the SCTEC_PEERS of `id`: itself at its own address, every other node at its proxy. */
  peersFor(id: string, urlOf: (id: string) => string): string {
    return this.ids.map((peer) => `${peer}=${peer === id ? urlOf(peer) : this.proxy({ from: id, to: peer }).url}`).join(",");
  }

  /** raftPeersFor is the SCTEC_RAFT_PEERS of `id`: itself at its own Raft address (host:port), every other node at its Raft proxy. */
  raftPeersFor(id: string, raftAddressOf: (id: string) => string): string {
    return this.ids
      .map((peer) => {
        if (peer === id) return `${peer}=${raftAddressOf(peer)}`;
        const proxy = this.raftProxies.get(edgeKey({ from: id, to: peer }));
        if (proxy === undefined) throw new Error(`no Raft proxy for ${id}→${peer}`);
        return `${peer}=127.0.0.1:${proxy.port}`;
      })
      .join(",");
  }

  /** cut drops everything on these edges from now on, HTTP and Raft (edges already cut stay cut). */
  cut(edges: readonly Edge[]): void {
    for (const edge of edges) for (const proxy of this.proxiesOf(edge)) proxy.setCut("both");
  }

  /** restore lifts the cuts on these edges (a fault ending while another is still on). */
  restore(edges: readonly Edge[]): void {
    for (const edge of edges) for (const proxy of this.proxiesOf(edge)) proxy.setCut("none");
  }

  /** heal lifts every cut. */
  heal(): void {
    for (const proxy of [...this.proxies.values(), ...this.raftProxies.values()]) proxy.setCut("none");
  }

  /** cutEdges lists the edges cut now. */
  cutEdges(): Edge[] {
    const edges: Edge[] = [];
    for (const [key, proxy] of this.proxies) {
      if (proxy.currentCut === "none") continue;
      const [from, to] = key.split(">") as [string, string];
      edges.push({ from, to });
    }
    return edges;
  }

  async close(): Promise<void> {
    await Promise.all([...this.proxies.values(), ...this.raftProxies.values()].map((proxy) => proxy.close()));
    this.proxies.clear();
    this.raftProxies.clear();
  }

  private proxy(edge: Edge): LoopbackProxy {
    const proxy = this.proxies.get(edgeKey(edge));
    if (proxy === undefined) throw new Error(`no proxy for ${edge.from}→${edge.to}`);
    return proxy;
  }

  /** proxiesOf: an edge's HTTP proxy and, when there is one, its Raft proxy. */
  private proxiesOf(edge: Edge): LoopbackProxy[] {
    const raft = this.raftProxies.get(edgeKey(edge));
    return raft === undefined ? [this.proxy(edge)] : [this.proxy(edge), raft];
  }
}

function edgeKey(edge: Edge): string {
  return `${edge.from}>${edge.to}`;
}

/** Partition shapes over a set of nodes, as edges to cut. */
export const partitions = {
  /** isolate: `node` neither sends to nor hears from the others. */
  isolate(node: string, others: readonly string[]): Edge[] {
    return others.flatMap((other) => [
      { from: node, to: other },
      { from: other, to: node },
    ]);
  },
  /** split: no traffic between the two sides, either way. */
  split(sideA: readonly string[], sideB: readonly string[]): Edge[] {
    return sideA.flatMap((a) => sideB.flatMap((b) => [{ from: a, to: b } as Edge, { from: b, to: a } as Edge]));
  },
  /** outboundOf: `node` cannot send to the others (it still hears them): a one-way partition. */
  outboundOf(node: string, others: readonly string[]): Edge[] {
    return others.map((other) => ({ from: node, to: other }));
  },
  /** inboundOf: the others cannot send to `node` (it still reaches them). */
  inboundOf(node: string, others: readonly string[]): Edge[] {
    return others.map((other) => ({ from: other, to: node }));
  },
  /**
   * bridge: `bridge` reaches and hears everyone, but the two sides do not reach each other
   * (Jepsen's bridge): each side sees a majority through the bridge node.
   */
  bridge(bridgeNode: string, sideA: readonly string[], sideB: readonly string[]): Edge[] {
    return partitions.split(
      sideA.filter((id) => id !== bridgeNode),
      sideB.filter((id) => id !== bridgeNode),
    );
  },
};
