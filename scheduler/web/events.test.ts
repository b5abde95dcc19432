import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { LiveEvents, type WebSocketLike } from "./events.js";

// A scripted WebSocket: the test plays the scheduler's side.
class FakeSocket implements WebSocketLike {
  static opened: FakeSocket[] = [];
  onmessage: ((message: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  closed = false;
  readonly url: string;
  constructor(url: string) {
    this.url = url;
    FakeSocket.opened.push(this);
  }
  send(message: object) {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  drop() {
    this.onclose?.();
  }
  close() {
    this.closed = true;
  }
}

const created = (id: number) => ({ id, type: "BOOKING_CREATED", booking: { id: `bk_${id}` } });

function start() {
  const events: number[] = [];
  const statuses: string[] = [];
  let resyncs = 0;
  const live = new LiveEvents({
    href: "/events",
    base: "http://127.0.0.1:8080/",
    WebSocketImpl: FakeSocket,
    onEvent: (event) => events.push(event.id),
    onResync: () => {
      resyncs += 1;
    },
    onStatus: (status) => statuses.push(status.state),
  });
  live.start();
  return { live, events, statuses, resyncs: () => resyncs, socket: () => FakeSocket.opened.at(-1)! };
}

describe("LiveEvents", () => {
  beforeEach(() => {
    FakeSocket.opened = [];
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("connects to the link with ws:, starts from hello's lastId, and reloads once for what came before", () => {
    const { events, resyncs, socket, statuses } = start();
    expect(socket().url).toBe("ws://127.0.0.1:8080/events");
    socket().send({ type: "hello", lastId: 10 });
    expect(resyncs()).toBe(1);
    expect(statuses.at(-1)).toBe("live");
    socket().send(created(9)); // older than hello: already in what the page read
    socket().send(created(11));
    expect(events).toEqual([11]);
  });

  it("passes each id on once", () => {
    const { events, socket } = start();
    socket().send({ type: "hello", lastId: 0 });
    for (const id of [1, 2, 2, 1, 3, 3]) socket().send(created(id));
    expect(events).toEqual([1, 2, 3]);
  });

  it("reconnects with backoff and resumes with ?after= the last id, without a reload", () => {
    const { live, events, resyncs, socket, statuses } = start();
    socket().send({ type: "hello", lastId: 4 });
    socket().send(created(5));
    socket().drop();
    expect(statuses.at(-1)).toBe("reconnecting");
    expect(FakeSocket.opened).toHaveLength(1);
    vi.advanceTimersByTime(500);
    expect(FakeSocket.opened).toHaveLength(2); // the first retry comes within 0.25–0.5 s
    expect(socket().url).toBe("ws://127.0.0.1:8080/events?after=5");
    socket().send({ type: "hello", lastId: 7 });
    socket().send(created(5)); // replayed twice by the scheduler: dropped
    socket().send(created(6));
    socket().send(created(7));
    expect(events).toEqual([5, 6, 7]);
    expect(resyncs()).toBe(1); // only the first connection's
    expect(live.lastId).toBe(7);
  });

  it("backs off further after each failed attempt, up to a ceiling", () => {
    const { socket } = start();
    const delays: number[] = [];
    for (let attempt = 0; attempt < 8; attempt += 1) {
      const count = FakeSocket.opened.length;
      socket().drop();
      let waited = 0;
      while (FakeSocket.opened.length === count) {
        vi.advanceTimersByTime(50);
        waited += 50;
      }
      delays.push(waited);
    }
    expect(delays[0]).toBeLessThanOrEqual(500);
    expect(delays[3]).toBeGreaterThanOrEqual(2_000); // 4 s ceiling, at least half of it
    expect(Math.max(...delays)).toBeLessThanOrEqual(15_000);
  });

  it("on resync, reloads and goes on from the newest id", () => {
    const { events, resyncs, socket } = start();
    socket().send({ type: "hello", lastId: 3 });
    socket().send(created(4));
    socket().drop();
    vi.advanceTimersByTime(1_000);
    expect(socket().url).toContain("after=4");
    socket().send({ type: "hello", lastId: 900 });
    socket().send({ type: "resync" });
    expect(resyncs()).toBe(2);
    socket().send(created(900));
    socket().send(created(901));
    expect(events).toEqual([4, 901]);
  });

  it("stop closes the socket and does not reconnect", () => {
    const { live, socket } = start();
    const first = socket();
    live.stop();
    expect(first.closed).toBe(true);
    first.drop();
    vi.advanceTimersByTime(60_000);
    expect(FakeSocket.opened).toHaveLength(1);
  });
});
