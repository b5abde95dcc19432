// The monitor asks every running node for its /status every few hundred milliseconds, through the
// node's own address (not the peer proxies), and keeps what they said: roles, terms, leaders,
// indexes and membership over time. The nemesis reads the current leader and members from it;
// the report draws the terms and leaders from it. One request per node is in flight at a time,
// each bounded by a timeout, so a paused node costs a timeout, not a pile of requests.

export interface StatusSample {
  readonly atMs: number;
  readonly id: string;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly voters: readonly string[];
  readonly learners: readonly string[];
}

export interface MonitorOptions {
  /** nodes: the ids to ask and their base URLs. */
  readonly urlOf: (id: string) => string;
  /** runningIds: the nodes whose process runs now. */
  readonly runningIds: () => readonly string[];
  /** nowMs: the history's clock (ms since its start). */
  readonly nowMs: () => number;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** samplesMax bounds memory: beyond it the monitor stops keeping samples (the history is far too long then). */
  readonly samplesMax: number;
}

export class Monitor {
  readonly samples: StatusSample[] = [];
  private readonly options: MonitorOptions;
  private readonly inFlight = new Set<string>();
  private readonly latest = new Map<string, StatusSample>();
  private timer: NodeJS.Timeout | undefined;

  constructor(options: MonitorOptions) {
    this.options = options;
  }

  start(): void {
    this.poll();
    this.timer = setInterval(() => this.poll(), this.options.intervalMs);
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** leader: the node that said it leads in the highest term, among answers no older than `freshMs`. */
  leader(freshMs = 1500): string | undefined {
    const nowMs = this.options.nowMs();
    const running = new Set(this.options.runningIds());
    const fresh = [...this.latest.values()].filter((sample) => nowMs - sample.atMs <= freshMs && running.has(sample.id));
    const highestTerm = Math.max(...fresh.map((sample) => sample.term));
    return fresh.find((sample) => sample.role === "leader" && sample.term === highestTerm)?.id;
  }

  /** members: the voters and learners as the freshest leader (else the freshest node) last said. */
  members(): { voters: string[]; learners: string[] } | undefined {
    const leader = this.leader(5000);
    const source =
      (leader === undefined ? undefined : this.latest.get(leader)) ?? [...this.latest.values()].sort((a, b) => b.atMs - a.atMs)[0];
    return source === undefined ? undefined : { voters: [...source.voters], learners: [...source.learners] };
  }

  latestOf(id: string): StatusSample | undefined {
    return this.latest.get(id);
  }

  /** pollNow asks every running node once and waits for the answers (bounded by the timeout). */
  async pollNow(): Promise<void> {
    await Promise.all(this.options.runningIds().map((id) => this.ask(id)));
  }

  private poll(): void {
    for (const id of this.options.runningIds()) {
      if (!this.inFlight.has(id)) void this.ask(id);
    }
  }

  private async ask(id: string): Promise<void> {
    this.inFlight.add(id);
    try {
      const response = await fetch(`${this.options.urlOf(id)}/status`, { signal: AbortSignal.timeout(this.options.timeoutMs) });
      const body = (await response.json()) as Omit<StatusSample, "atMs" | "id"> & { nodeId: string };
      const sample: StatusSample = {
        atMs: this.options.nowMs(),
        id,
        role: body.role,
        term: body.term,
        leaderId: body.leaderId,
        commitIndex: body.commitIndex,
        appliedIndex: body.appliedIndex,
        voters: body.voters ?? [],
        learners: body.learners ?? [],
      };
      this.latest.set(id, sample);
      if (this.samples.length < this.options.samplesMax) this.samples.push(sample);
    } catch {
      // A node that does not answer (stopped, paused, overloaded) simply has no fresh sample.
    } finally {
      this.inFlight.delete(id);
    }
  }
}
