// The live event stream (`GET /events`, a WebSocket; docs/API.md "Live events").
//
// - The scheduler greets with { type: "hello", lastId }. A fresh connection starts from there (what
//   happened before is in the page's own reads, which the page reloads: onResync).
// - Events carry the audit chain's sequence number as `id`; each is passed on once: ids at or
//   below the last one seen, or seen before, are dropped.
// - When the connection drops it reconnects with exponential backoff and full jitter, asking for
//   `?after=<last id>` so that nothing in between is lost; { type: "resync" } means the scheduler
//   cannot go back that far, and the page reloads what it shows.

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 15_000;
const SEEN_MAX = 2_000;

export class LiveEvents {
  /**
   * @param {object} options
   * @param {string} options.href the `events` link's href (http(s) URL or path)
   * @param {(event: object) => void} options.onEvent a booking event, once per id
   * @param {() => void} options.onResync reload what the page shows
   * @param {(status: {state: string, retryInMs?: number}) => void} options.onStatus
   */
  constructor({ href, onEvent, onResync, onStatus, base = globalThis.location?.href, WebSocketImpl = globalThis.WebSocket }) {
    this.href = href;
    this.base = base;
    this.onEvent = onEvent;
    this.onResync = onResync;
    this.onStatus = onStatus;
    this.WebSocketImpl = WebSocketImpl;
    this.lastId = undefined;
    this.seen = new Set();
    this.attempts = 0;
    this.socket = undefined;
    this.timer = undefined;
    this.stopped = true;
    this.onOnline = () => {
      if (this.timer !== undefined) this.connectNow();
    };
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    globalThis.addEventListener?.("online", this.onOnline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    globalThis.removeEventListener?.("online", this.onOnline);
    clearTimeout(this.timer);
    this.timer = undefined;
    const socket = this.socket;
    this.socket = undefined;
    socket?.close();
  }

  /** The WebSocket URL: the link's href with ws(s):, and `after` when resuming. */
  url() {
    const url = new URL(this.href, this.base);
    if (url.protocol === "http:") url.protocol = "ws:";
    else if (url.protocol === "https:") url.protocol = "wss:";
    if (this.lastId !== undefined) url.searchParams.set("after", String(this.lastId));
    return url.toString();
  }

  connectNow() {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.attempts = 0;
    this.connect();
  }

  connect() {
    if (this.stopped) return;
    this.timer = undefined;
    this.onStatus({ state: this.lastId === undefined ? "connecting" : "resuming" });
    let socket;
    try {
      socket = new this.WebSocketImpl(this.url());
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    const resuming = this.lastId !== undefined;
    socket.onmessage = (message) => {
      if (this.socket !== socket) return;
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      this.handle(data, resuming);
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.socket = undefined;
      this.scheduleReconnect();
    };
    socket.onerror = () => {
      // A close event follows; reconnecting is decided there.
    };
  }

  handle(data, resuming) {
    if (data === null || typeof data !== "object") return;
    if (data.type === "hello") {
      this.attempts = 0;
      const head = Number.isInteger(data.lastId) ? data.lastId : undefined;
      this.helloLastId = head;
      if (!resuming || this.lastId === undefined || (head !== undefined && head < this.lastId)) {
        // Fresh start (or the stream went backwards, e.g. a new cluster): take it from here, and
        // reload, because whatever happened before this connection is not going to be sent.
        this.lastId = head;
        this.seen.clear();
        this.onStatus({ state: "live" });
        this.onResync();
      } else {
        this.onStatus({ state: "live" });
      }
      return;
    }
    if (data.type === "resync") {
      if (this.helloLastId !== undefined) this.lastId = this.helloLastId;
      this.seen.clear();
      this.onResync();
      return;
    }
    if (!Number.isInteger(data.id)) return;
    if (this.seen.has(data.id) || (this.lastId !== undefined && data.id <= this.lastId)) return;
    this.seen.add(data.id);
    if (this.seen.size > SEEN_MAX) this.seen.delete(this.seen.values().next().value);
    this.lastId = this.lastId === undefined ? data.id : Math.max(this.lastId, data.id);
    this.onEvent(data);
  }

  scheduleReconnect() {
    if (this.stopped) return;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempts);
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.attempts += 1;
    this.onStatus({ state: "reconnecting", retryInMs: delay });
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
