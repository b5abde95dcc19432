// RaftDriver on hand-stepped seams: a clock whose ticks and deferred callbacks run only when the
// test says, a disk whose writes complete only when the test releases them, and a transport that
// is the test itself (it plays the two other members). Deterministic, no wall clock, no sockets.
//
// What it pins down (issue 17): the core keeps stepping while a write is in flight (heartbeats,
// their answers and a leader's appends go out), nothing that depends on the write leaves or is
// applied before it is durable, and time and peer messages are fed in the order they arrived.

import { describe, expect, it } from "vitest";
import {
  createSeededRandom,
  type Entry,
  type HardState,
  type NodeId,
  nodeId,
  type RaftMessage,
  raftConfigDefaults,
  type Snapshot,
} from "../../raft/index.ts";
import type { DurableLog, DurableState, PeerLinkStatus, PeerTransport } from "../contracts.ts";
import type { Clock, TimerHandle } from "./clock.ts";
import { RaftDriver, type StateMachine } from "./raft-driver.ts";

const n1 = nodeId("n1");
const n2 = nodeId("n2");
const n3 = nodeId("n3");
const tickMs = 10;
const electionTimeoutTicks = 10;

/** SteppedClock: timers fire on advance(); deferred callbacks wait in a queue until runDeferred(). */
class SteppedClock implements Clock {
  private now = 0;
  private timers: { atMs: number; callback: () => void; handle: object; everyMs: number | undefined }[] = [];
  private readonly deferred: (() => void)[] = [];

  nowMs(): number {
    return this.now;
  }
  setTimer(callback: () => void, delayMs: number): TimerHandle {
    const handle = {};
    this.timers.push({ atMs: this.now + delayMs, callback, handle, everyMs: undefined });
    return handle;
  }
  clearTimer(timer: TimerHandle): void {
    this.timers = this.timers.filter((each) => each.handle !== timer);
  }
  repeat(callback: () => void, intervalMs: number): TimerHandle {
    const handle = {};
    this.timers.push({ atMs: this.now + intervalMs, callback, handle, everyMs: intervalMs });
    return handle;
  }
  defer(callback: () => void): void {
    this.deferred.push(callback);
  }
  /** runDeferred runs deferred callbacks (and those they defer) until none is left: the event loop gets to run. */
  runDeferred(): void {
    for (let callback = this.deferred.shift(); callback !== undefined; callback = this.deferred.shift()) callback();
  }
  /** runDeferredRound runs the callbacks deferred so far, not those they defer: one turn of an event loop. */
  runDeferredRound(): void {
    for (const callback of this.deferred.splice(0)) callback();
  }
  /** advance moves time on by `ms`, firing due timers in order; deferred callbacks wait (a stalled loop) unless run. */
  advance(ms: number): void {
    this.now += ms;
    for (;;) {
      const due = this.timers.filter((each) => each.atMs <= this.now).sort((a, b) => a.atMs - b.atMs)[0];
      if (due === undefined) return;
      if (due.everyMs === undefined) this.timers = this.timers.filter((each) => each !== due);
      else due.atMs += due.everyMs;
      due.callback();
    }
  }
}

/** HeldDisk: writes complete on the clock's deferred queue, or, while `held`, only when released. */
class HeldDisk implements DurableLog {
  held = false;
  hardState: HardState = { term: 0, votedFor: null, commitIndex: 0 };
  private readonly waiting: (() => void)[] = [];
  private readonly clock: SteppedClock;
  constructor(clock: SteppedClock) {
    this.clock = clock;
  }

  load(): Promise<DurableState> {
    throw new Error("not used: the driver is built over an empty state");
  }
  save(update: { readonly hardState?: HardState; readonly entries: readonly Entry[]; readonly snapshot?: Snapshot }): Promise<void> {
    return this.write(() => {
      if (update.hardState !== undefined) this.hardState = update.hardState;
    });
  }
  /** compacted: the snapshots compacted with, once their write completed. */
  readonly compacted: Snapshot[] = [];
  compact(snapshot: Snapshot): Promise<void> {
    return this.write(() => {
      this.compacted.push(snapshot);
    });
  }
  async close(): Promise<void> {}
  /** writesInFlight: writes started and not yet complete. */
  writesInFlight(): number {
    return this.waiting.length;
  }
  /** release completes every write in flight (in order), then lets the loop run. */
  release(): void {
    this.held = false;
    for (let complete = this.waiting.shift(); complete !== undefined; complete = this.waiting.shift()) complete();
    this.clock.runDeferred();
  }
  private write(apply: () => void): Promise<void> {
    // A thenable completed by a callback, as the simulator's disk is: no microtask in between.
    let done: (() => void) | undefined;
    const complete = () => {
      apply();
      done?.();
    };
    if (this.held) this.waiting.push(complete);
    else this.clock.defer(complete);
    return {
      // biome-ignore lint/suspicious/noThenProperty: a thenable is the point: the driver waits with .then(ok, fail).
      then: (ok: () => void) => {
        done = ok;
        return undefined as never;
      },
    } as unknown as Promise<void>;
  }
}

/** Peers: the transport, played by the test: it keeps what n1 sends and hands n1 what the others answer. */
class Peers implements PeerTransport {
  readonly sent: RaftMessage[] = [];
  private handler: ((message: RaftMessage) => void) | undefined;
  send(message: RaftMessage): void {
    this.sent.push(message);
  }
  onMessage(handler: (message: RaftMessage) => void): void {
    this.handler = handler;
  }
  peerStatus(): ReadonlyMap<NodeId, PeerLinkStatus> {
    return new Map();
  }
  async close(): Promise<void> {}
  /** deliver hands n1 a message from a peer (queued by the driver like any other). */
  deliver(message: RaftMessage): void {
    this.handler?.(message);
  }
  /** take returns and forgets what n1 sent since the last take. */
  take(): RaftMessage[] {
    return this.sent.splice(0);
  }
}

class CountingMachine implements StateMachine<number> {
  private applied = 0;
  appliedIndex(): number {
    return this.applied;
  }
  apply(entry: Entry): number {
    this.applied = entry.index;
    return entry.index;
  }
  snapshot(): Uint8Array {
    return new Uint8Array();
  }
  restore(snapshot: Snapshot): void {
    this.applied = snapshot.metadata.index;
  }
}

/**
 * SlicedMachine: a CountingMachine whose snapshot takes `slicesTotal` slices, each noting the
 * clock's time when it ran. Its snapshot() (what a driver without slices calls) takes them all at once.
 */
class SlicedMachine extends CountingMachine {
  readonly sliceTimesMs: number[] = [];
  private readonly slicesTotal: number;
  private readonly clock: Clock;
  constructor(clock: Clock, slicesTotal: number) {
    super();
    this.clock = clock;
    this.slicesTotal = slicesTotal;
  }
  override snapshot(): Uint8Array {
    const slices = this.snapshotInSlices();
    for (let next = slices.next(); ; next = slices.next()) if (next.done === true) return next.value;
  }
  *snapshotInSlices(): Generator<void, Uint8Array, void> {
    for (let slice = 0; slice < this.slicesTotal; slice++) {
      if (slice > 0) yield;
      this.sliceTimesMs.push(this.clock.nowMs());
    }
    return new Uint8Array([this.slicesTotal]);
  }
}

function heartbeatAnswers(messages: readonly RaftMessage[]): RaftMessage[] {
  return messages.flatMap((message) =>
    message.type === "heartbeat"
      ? [{ type: "heartbeat_result", from: message.to, to: message.from, term: message.term, readContext: message.readContext } as const]
      : [],
  );
}

/**
 * leaderN1 starts n1 of {n1, n2, n3} and elects it, the test answering as n2 and n3. Afterwards
 * the clock has ticked `ticksAsLeader` times since n1 became leader (the core runs check-quorum
 * every election timeout of ticks from there).
 */
function leaderN1(options: { stateMachine?: (clock: SteppedClock) => StateMachine<number>; snapshotIntervalEntries?: number } = {}) {
  const clock = new SteppedClock();
  const disk = new HeldDisk(clock);
  const peers = new Peers();
  const driver = new RaftDriver<number>(
    {
      raft: { ...raftConfigDefaults, electionTimeoutTicks, heartbeatIntervalTicks: 2, random: createSeededRandom(7) },
      nodeId: n1,
      bootstrapVoters: [n1, n2, n3],
      tickIntervalMs: tickMs,
      clock,
      durableLog: disk,
      transport: peers,
      stateMachine: options.stateMachine?.(clock) ?? new CountingMachine(),
      snapshotIntervalEntries: options.snapshotIntervalEntries ?? 1000,
      proposalTimeoutMs: 60_000,
      pendingRequestsMax: 100,
      inputsPerTurnMax: 64,
    },
    { hardState: { term: 0, votedFor: null, commitIndex: 0 }, snapshot: undefined, entries: [] },
  );
  driver.start();
  clock.runDeferred();
  const tick = () => {
    clock.advance(tickMs);
    clock.runDeferred();
  };
  for (let ticks = 0; ticks < 10 * electionTimeoutTicks && !driver.isLeader(); ticks++) {
    tick();
    for (const message of peers.take()) {
      if (message.type !== "request_vote") continue;
      const grant = {
        type: "request_vote_result",
        from: message.to,
        to: n1,
        term: message.term,
        preVote: message.preVote,
        voteGranted: true,
      };
      peers.deliver(grant as RaftMessage);
      clock.runDeferred();
    }
  }
  expect(driver.isLeader()).toBe(true);
  peers.take();
  return { clock, disk, peers, driver, tick };
}

describe("RaftDriver: time and peer messages are fed in the order they arrived", () => {
  it("a leader reads its followers' waiting answers before the ticks that came after them (check-quorum)", () => {
    const { clock, peers, driver, tick } = leaderN1();
    // Ticks 1-4 as leader: answered at once. Ticks 5-10: the answers are held in the network, and
    // the check-quorum of tick 10 passes on the answers of ticks 1-4.
    for (let ticks = 1; ticks <= 4; ticks++) {
      tick();
      for (const answer of heartbeatAnswers(peers.take())) peers.deliver(answer);
      clock.runDeferred();
    }
    const held: RaftMessage[] = [];
    for (let ticks = 5; ticks <= electionTimeoutTicks; ticks++) {
      tick();
      held.push(...heartbeatAnswers(peers.take()));
    }
    expect(driver.isLeader()).toBe(true);
    expect(held.length).toBeGreaterThan(0);
    // Now n1's loop stalls: the held answers arrive first, then an election timeout of ticks.
    // The check-quorum at the last of them must count the answers that arrived before it.
    for (const answer of held) peers.deliver(answer);
    for (let ticks = 0; ticks < electionTimeoutTicks; ticks++) clock.advance(tickMs);
    clock.runDeferred();
    // Fed ticks first (as before), the check ran with no answer counted and the leader stepped down.
    expect(driver.status().role).toBe("leader");
    expect(driver.isLeader()).toBe(true);
  });
});

describe("RaftDriver: the core keeps stepping while a write is in flight", () => {
  it("a leader whose write hangs keeps heartbeating, replicates, and hears its followers", () => {
    const { clock, disk, peers, driver, tick } = leaderN1();
    const term = driver.currentTerm();
    disk.held = true;
    let answer: unknown;
    driver.propose(new Uint8Array([1]), (outcome) => {
      answer = outcome;
    });
    clock.runDeferred();
    expect(disk.writesInFlight()).toBe(1);
    // Three election timeouts with the write in flight, the followers answering every heartbeat.
    const sent: RaftMessage[] = [];
    for (let ticks = 0; ticks < 3 * electionTimeoutTicks; ticks++) {
      tick();
      const out = peers.take();
      sent.push(...out);
      for (const reply of heartbeatAnswers(out)) peers.deliver(reply);
      clock.runDeferred();
    }
    expect(disk.writesInFlight()).toBe(1);
    expect(driver.status()).toMatchObject({ role: "leader", term });
    expect(sent.filter((message) => message.type === "heartbeat" && message.to === n2).length).toBeGreaterThanOrEqual(
      (3 * electionTimeoutTicks) / 2 - 1,
    );
    const append = sent.find((message) => message.type === "append_entries" && message.to === n2 && message.entries.length > 0);
    expect(append).toBeDefined();
    // Both followers acknowledge the entry: a majority without the leader's own copy commits it,
    // but the leader applies it (and answers the client) only once its own write is durable.
    const last = (append as Extract<RaftMessage, { type: "append_entries" }>).entries.at(-1) as Entry;
    for (const from of [n2, n3]) {
      peers.deliver({
        type: "append_entries_result",
        from,
        to: n1,
        term,
        success: true,
        matchIndex: last.index,
        rejectedIndex: 0,
        hintIndex: 0,
        hintTerm: 0,
      });
    }
    clock.runDeferred();
    expect(answer).toBeUndefined();
    disk.release();
    expect(answer).toEqual({ result: last.index });
  });

  it("a follower whose write hangs answers heartbeats within a tick, and acknowledges appends only after the write", () => {
    const clock = new SteppedClock();
    const disk = new HeldDisk(clock);
    const peers = new Peers();
    const driver = new RaftDriver<number>(
      {
        raft: { ...raftConfigDefaults, electionTimeoutTicks, heartbeatIntervalTicks: 2, random: createSeededRandom(3) },
        nodeId: n1,
        bootstrapVoters: [n1, n2, n3],
        tickIntervalMs: tickMs,
        clock,
        durableLog: disk,
        transport: peers,
        stateMachine: new CountingMachine(),
        snapshotIntervalEntries: 1000,
        proposalTimeoutMs: 60_000,
        pendingRequestsMax: 100,
        inputsPerTurnMax: 64,
      },
      { hardState: { term: 0, votedFor: null, commitIndex: 0 }, snapshot: undefined, entries: [] },
    );
    driver.start();
    clock.runDeferred();
    // n2 leads term 2; its first append (a no-op at 4) makes n1 write the new term and the entry.
    const term = 2;
    const noop: Entry = { kind: "noop", term, index: 4 };
    disk.held = true;
    peers.deliver({ type: "append_entries", from: n2, to: n1, term, prevLogIndex: 3, prevLogTerm: 1, entries: [noop], leaderCommit: 3 });
    clock.runDeferred();
    expect(disk.writesInFlight()).toBe(1);
    expect(peers.take()).toEqual([]);
    // The write of term 2 hangs: heartbeats of term 2 are heard (no election) but not answered,
    // since term 2 is not on disk yet; nothing else leaves.
    for (let ticks = 0; ticks < 3 * electionTimeoutTicks; ticks++) {
      clock.advance(tickMs);
      if (ticks % 2 === 0) peers.deliver({ type: "heartbeat", from: n2, to: n1, term, commitIndex: 3, readContext: 0 });
      clock.runDeferred();
    }
    expect(peers.take()).toEqual([]);
    expect(driver.status()).toMatchObject({ role: "follower", leaderId: n2, term });
    disk.release();
    const acknowledged = peers.take();
    expect(acknowledged.filter((message) => message.type === "append_entries_result")).toMatchObject([{ success: true, matchIndex: 4 }]);
    expect(disk.hardState.term).toBe(term);
    // Term 2 is durable now. The next write hangs too: heartbeats are answered at once, the
    // acknowledgement of the entry it writes waits for it.
    disk.held = true;
    const entry: Entry = { kind: "normal", term, index: 5, data: new Uint8Array([1]) };
    peers.deliver({
      type: "append_entries",
      from: n2,
      to: n1,
      term,
      prevLogIndex: 4,
      prevLogTerm: term,
      entries: [entry],
      leaderCommit: 4,
    });
    clock.runDeferred();
    expect(disk.writesInFlight()).toBe(1);
    for (let ticks = 0; ticks < 3 * electionTimeoutTicks; ticks++) {
      clock.advance(tickMs);
      if (ticks % 2 === 0) peers.deliver({ type: "heartbeat", from: n2, to: n1, term, commitIndex: 4, readContext: ticks + 1 });
      clock.runDeferred();
    }
    const whileWriting = peers.take();
    expect(whileWriting.length).toBe(15);
    expect(whileWriting.every((message) => message.type === "heartbeat_result" && message.term === term)).toBe(true);
    disk.release();
    expect(peers.take().filter((message) => message.type === "append_entries_result")).toMatchObject([{ success: true, matchIndex: 5 }]);
  });
});

describe("RaftDriver: a compaction encodes its snapshot a slice per turn (issue 17)", () => {
  it("a leader keeps heartbeating between the slices of a large snapshot, then compacts with the whole of it", () => {
    const slicesTotal = 40;
    let machine: SlicedMachine | undefined;
    const { clock, disk, peers, driver } = leaderN1({
      stateMachine: (clock) => {
        machine = new SlicedMachine(clock, slicesTotal);
        return machine;
      },
      snapshotIntervalEntries: 10,
    });
    const sliced = machine as SlicedMachine;
    for (let proposal = 0; proposal < 10; proposal++) driver.propose(new Uint8Array([proposal]), () => undefined);
    clock.runDeferred();
    peers.take();
    const lastIndex = (driver.logEntries(1, Number.MAX_SAFE_INTEGER).at(-1) as Entry).index;
    expect(sliced.sliceTimesMs).toEqual([]);
    // The followers acknowledge: the entries commit and are applied, and the compaction is due.
    // From here the event loop turns one round at a time, a tick every fourth round (a real loop
    // turns far more often than the 10 ms ticker), the followers answering every heartbeat.
    for (const from of [n2, n3]) {
      const term = driver.currentTerm();
      peers.deliver({
        type: "append_entries_result",
        from,
        to: n1,
        term,
        success: true,
        matchIndex: lastIndex,
        rejectedIndex: 0,
        hintIndex: 0,
        hintTerm: 0,
      });
    }
    const heartbeatTimesMs: number[] = [];
    for (let round = 0; round < 1000 && disk.compacted.length === 0; round++) {
      if (round % 4 === 3) clock.advance(tickMs);
      clock.runDeferredRound();
      const out = peers.take();
      for (const message of out) if (message.type === "heartbeat") heartbeatTimesMs.push(clock.nowMs());
      for (const reply of heartbeatAnswers(out)) peers.deliver(reply);
    }
    expect(sliced.sliceTimesMs.length).toBe(slicesTotal);
    const firstSliceMs = sliced.sliceTimesMs[0] as number;
    const lastSliceMs = sliced.sliceTimesMs[slicesTotal - 1] as number;
    // Before: the driver called snapshot() and took every slice in one turn, at one instant.
    expect(heartbeatTimesMs.filter((atMs) => atMs > firstSliceMs && atMs < lastSliceMs).length).toBeGreaterThanOrEqual(3);
    expect(disk.compacted.map((snapshot) => [snapshot.metadata.index, Array.from(snapshot.data)])).toEqual([[lastIndex, [slicesTotal]]]);
    expect(driver.isLeader()).toBe(true);
  });
});
