// SimNetwork carries messages between simulated processes on the virtual timeline: each message is
// dropped, duplicated, or delivered after a drawn delay (sometimes a long one, so it arrives after
// the world has moved on). Without `reorder`, messages on one link arrive in the order sent, as on
// a TCP connection. Links can be cut one way or both ways; a cut link loses what crosses it at
// delivery time. A message bound for a process that dies before delivery is lost with it (the
// connection broke). With `peerRefusals`, a message sent to a node whose process is down is
// refused, as a dial to a port nothing listens on: the sender's transport hears of it
// (onPeerRefused) a millisecond later, unless the link is cut (a partition is silent). Everything
// random comes from the simulator's seeded source (a refusal draws nothing).

import type { PeerTransport } from "../node/contracts.ts";
import type { NodeId, RaftMessage } from "../raft/messages.ts";
import type { RandomSource } from "../raft/random.ts";
import type { SimProcess, SimScheduler } from "./scheduler.ts";

export interface NetworkFaults {
  dropProbability: number;
  duplicateProbability: number;
  /** delayMsMax: a message takes 1 .. 1 + delayMsMax ms. */
  delayMsMax: number;
  reorder: boolean;
  /** longDelayProbability: the chance that a message is held up to longDelayMsMax (a stuck queue, a GC pause). */
  longDelayProbability: number;
  longDelayMsMax: number;
}

/** nodesMax bounds the node slots of one simulated cluster (founders plus joiners). */
export const nodesMax = 16;

/** Endpoint is where messages for one node go: its live process and its handler. */
export interface Endpoint {
  process: SimProcess | undefined;
  handler: ((message: RaftMessage) => void) | undefined;
  /** refusedHandler hears that a peer this node sent to is down (PeerTransport.onPeerRefused). */
  refusedHandler?: ((peer: NodeId) => void) | undefined;
}

export class SimNetwork {
  faults: NetworkFaults;
  /** sent counts messages handed to the network, by type; delivered and dropped count outcomes. */
  readonly sentByType = new Map<RaftMessage["type"], number>();
  delivered = 0;
  dropped = 0;
  private readonly scheduler: SimScheduler;
  private readonly random: RandomSource & { nextFloat(): number };
  /** blocked[from * nodesMax + to] is 1 when messages from `from` to `to` are cut. */
  private readonly blocked = new Uint8Array(nodesMax * nodesMax);
  /** lastArrivalMs per link, so a link without reorder stays FIFO. */
  private readonly lastArrivalMs = new Float64Array(nodesMax * nodesMax);
  private readonly slotOf: (id: string) => number;
  private readonly endpointOf: (slot: number) => Endpoint | undefined;
  /** onSend sees every message as a node hands it over (the simulator checks what it promises). */
  private readonly onSend: (message: RaftMessage) => void;

  constructor(options: {
    /** peerRefusals: report a message to a down node to its sender (see refuse). */
    peerRefusals: boolean;
    faults: NetworkFaults;
    scheduler: SimScheduler;
    random: RandomSource & { nextFloat(): number };
    slotOf: (id: string) => number;
    endpointOf: (slot: number) => Endpoint | undefined;
    onSend: (message: RaftMessage) => void;
  }) {
    this.faults = options.faults;
    this.peerRefusals = options.peerRefusals;
    this.scheduler = options.scheduler;
    this.random = options.random;
    this.slotOf = options.slotOf;
    this.endpointOf = options.endpointOf;
    this.onSend = options.onSend;
  }

  /** transport is the PeerTransport of one process, delivering to `endpoint`'s handler. */
  transport(endpoint: Endpoint): PeerTransport {
    return {
      send: (message) => this.send(message),
      onMessage: (handler) => {
        endpoint.handler = handler;
      },
      onPeerRefused: (handler) => {
        endpoint.refusedHandler = handler;
      },
      peerStatus: () => new Map(),
      close: () => Promise.resolve(),
    };
  }

  send(message: RaftMessage): void {
    this.onSend(message);
    this.sentByType.set(message.type, (this.sentByType.get(message.type) ?? 0) + 1);
    const faults = this.faults;
    if (faults.dropProbability > 0 && this.random.nextFloat() < faults.dropProbability) {
      this.dropped++;
      return;
    }
    this.schedule(message);
    if (faults.duplicateProbability > 0 && this.random.nextFloat() < faults.duplicateProbability) this.schedule(message);
  }

  isBlocked(from: string, to: string): boolean {
    return this.blocked[this.slotOf(from) * nodesMax + this.slotOf(to)] === 1;
  }

  cut(from: string, to: string): void {
    this.blocked[this.slotOf(from) * nodesMax + this.slotOf(to)] = 1;
  }

  heal(): void {
    this.blocked.fill(0);
  }

  /** refusals: reports of a down peer handed to senders. */
  refusals = 0;
  private readonly peerRefusals: boolean;

  /** messagesSent: every message handed to the network so far. */
  messagesSent(): number {
    let total = 0;
    for (const count of this.sentByType.values()) total += count;
    return total;
  }

  /** refuse tells `message`'s sender, a millisecond later, that its peer is down (nothing listens there), unless the link is cut. */
  private refuse(message: RaftMessage): void {
    const sender = this.endpointOf(this.slotOf(message.from));
    const senderProcess = sender?.process;
    if (sender === undefined || senderProcess === undefined || this.isBlocked(message.from, message.to)) return;
    this.scheduler.at(this.scheduler.nowMs + 1, senderProcess, () => {
      const handler = sender.refusedHandler;
      if (this.isBlocked(message.from, message.to) || handler === undefined) return;
      this.refusals++; // Counted once a transport's user (the driver) hears it.
      handler(message.to);
    });
  }

  private schedule(message: RaftMessage): void {
    const faults = this.faults;
    const toSlot = this.slotOf(message.to);
    const endpoint = this.endpointOf(toSlot);
    const process = endpoint?.process;
    if (endpoint === undefined || process === undefined) {
      this.dropped++;
      if (endpoint !== undefined && this.peerRefusals) this.refuse(message);
      return;
    }
    let delayMs = 1 + this.random.nextFloat() * faults.delayMsMax;
    if (faults.longDelayProbability > 0 && this.random.nextFloat() < faults.longDelayProbability) {
      delayMs = 1 + this.random.nextFloat() * faults.longDelayMsMax;
    }
    let arrivalMs = this.scheduler.nowMs + delayMs;
    if (!faults.reorder) {
      const link = this.slotOf(message.from) * nodesMax + toSlot;
      arrivalMs = Math.max(arrivalMs, this.lastArrivalMs[link] as number);
      this.lastArrivalMs[link] = arrivalMs;
    }
    this.scheduler.at(arrivalMs, process, () => {
      if (this.isBlocked(message.from, message.to)) {
        this.dropped++;
        return;
      }
      this.delivered++;
      endpoint.handler?.(message);
    });
  }
}
