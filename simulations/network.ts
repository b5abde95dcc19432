// SimNetwork carries messages between simulated nodes: each message is dropped, duplicated,
// delayed by 0..delayTicksMax ticks and (with reorder) delivered in random order within its
// tick. Links can be cut one way or both ways. Everything random comes from the simulator's
// seeded source, so a run replays exactly.

import { assert } from "../raft/assert.ts";
import type { RaftMessage } from "../raft/messages.ts";
import type { RandomSource } from "../raft/random.ts";

export interface NetworkFaults {
  dropProbability: number;
  duplicateProbability: number;
  delayTicksMax: number;
  reorder: boolean;
  /** longDelayProbability: the chance that a message is held up to longDelayTicksMax (a stuck queue, a GC pause). */
  longDelayProbability: number;
  longDelayTicksMax: number;
}

/** nodesMax bounds the node slots of one simulated cluster (founders plus joiners). */
export const nodesMax = 16;

export class SimNetwork {
  faults: NetworkFaults;
  /** delivered counts messages handed to a node. */
  delivered = 0;
  dropped = 0;
  private readonly buckets: RaftMessage[][];
  private cursor = 0;
  /** blocked[from * nodesMax + to] is 1 when messages from `from` to `to` are cut. */
  private readonly blocked = new Uint8Array(nodesMax * nodesMax);
  private readonly slotOf: (id: string) => number;
  private readonly random: RandomSource & { nextFloat(): number };

  constructor(options: {
    faults: NetworkFaults;
    delayTicksMaxLimit: number;
    slotOf: (id: string) => number;
    random: RandomSource & { nextFloat(): number };
  }) {
    this.faults = options.faults;
    this.slotOf = options.slotOf;
    this.random = options.random;
    this.buckets = Array.from({ length: options.delayTicksMaxLimit + 1 }, () => []);
  }

  send(message: RaftMessage): void {
    const faults = this.faults;
    if (faults.dropProbability > 0 && this.random.nextFloat() < faults.dropProbability) {
      this.dropped++;
      return;
    }
    this.enqueue(message);
    if (faults.duplicateProbability > 0 && this.random.nextFloat() < faults.duplicateProbability) this.enqueue(message);
  }

  /** takeNow removes and returns one message due in the current tick, or undefined. */
  takeNow(): RaftMessage | undefined {
    const bucket = this.buckets[this.cursor] as RaftMessage[];
    if (bucket.length === 0) return undefined;
    if (!this.faults.reorder) return bucket.shift();
    const position = this.random.nextInt(bucket.length);
    const message = bucket[position] as RaftMessage;
    bucket[position] = bucket[bucket.length - 1] as RaftMessage;
    bucket.pop();
    return message;
  }

  /** advance moves to the next tick; messages not delivered this tick were already taken. */
  advance(): void {
    assert((this.buckets[this.cursor] as RaftMessage[]).length === 0, "advance() with messages still due this tick");
    this.cursor = (this.cursor + 1) % this.buckets.length;
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

  inFlight(): number {
    let count = 0;
    for (const bucket of this.buckets) count += bucket.length;
    return count;
  }

  private enqueue(message: RaftMessage): void {
    const faults = this.faults;
    let delay = faults.delayTicksMax === 0 ? 0 : this.random.nextInt(faults.delayTicksMax + 1);
    if (faults.longDelayProbability > 0 && this.random.nextFloat() < faults.longDelayProbability) {
      delay = Math.min(this.buckets.length - 1, this.random.nextInt(faults.longDelayTicksMax + 1));
    }
    const slot = (this.cursor + delay) % this.buckets.length;
    (this.buckets[slot] as RaftMessage[]).push(message);
  }
}
