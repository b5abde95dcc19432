// Timeline records the events of a simulation that matter to a reader of a failure: elections,
// crashes and restarts, disk faults, partitions, clock steps, grants, fenced writes, and the
// violation itself. Recording is off in ordinary runs (it costs a string per event) and on when a
// failing seed is replayed; the newest eventsMax events are kept.

export interface TimelineEvent {
  /** atMs: true (simulated) time. */
  readonly atMs: number;
  /** who: a node id, a client id, "network", "world" or "checker". */
  readonly who: string;
  readonly text: string;
}

/** eventsMax bounds the timeline kept for printing (the newest events win). */
const eventsMax = 20_000;

export class Timeline {
  readonly enabled: boolean;
  private list: TimelineEvent[] = [];

  constructor(enabled: boolean) {
    this.enabled = enabled;
  }

  record(atMs: number, who: string, text: string, _kind?: string): void {
    if (!this.enabled) return;
    this.list.push({ atMs, who, text });
    if (this.list.length > 2 * eventsMax) this.list = this.list.slice(-eventsMax);
  }

  events(): readonly TimelineEvent[] {
    return this.list.length > eventsMax ? this.list.slice(-eventsMax) : this.list;
  }
}

/**
 * formatTimeline prints the events one per line, each node in a column of its own (so a node's
 * story reads down its column), with the time in milliseconds at the left. Events of the world,
 * the network and the checker span the line.
 */
export function formatTimeline(events: readonly TimelineEvent[], lastMax = 400): string {
  const shown = events.slice(-lastMax);
  const nodes = [...new Set(shown.map((event) => event.who).filter((who) => /^n\d+$/.test(who)))].sort(
    (a, b) => Number(a.slice(1)) - Number(b.slice(1)),
  );
  const lines: string[] = [];
  if (shown.length < events.length) lines.push(`(${events.length - shown.length} earlier events not shown)`);
  lines.push(`${"ms".padStart(9)}  ${nodes.map((id) => id.padEnd(4)).join(" ")}`);
  for (const event of shown) {
    const column = nodes.indexOf(event.who);
    const lane = nodes.map((_, index) => (index === column ? "●   " : "│   ")).join(" ");
    const who = column >= 0 ? event.who : `[${event.who}]`;
    lines.push(`${event.atMs.toFixed(1).padStart(9)}  ${lane} ${who}: ${event.text}`);
  }
  return lines.join("\n");
}
