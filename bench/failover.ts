// failovers: what bench:locks and bench:overload measure alike: the leader `kill -9`ed, and the
// time from the kill to the next successful acquire, `count` times (the killed node is restarted
// and given a second to catch up before the next kill).
//
// With `trace`, each kill is also taken apart (bench only; the product is not changed for it):
// every HTTP attempt of the failover client, through LockClient's transport seam, and the
// survivors' `role_changed` log lines (pre_candidate, candidate, leader, with the time each was
// logged: after that Ready's write) and their "connection to peer lost" lines. So the time from
// the kill to the acquire splits into: the wait for a follower's election timeout, the pre-vote
// and vote rounds, the client's lag behind the new leader, and the successful attempt itself.

import { closeSync, openSync, readSync, statSync } from "node:fs";
import { join } from "node:path";
import { LockClient } from "../client/lock-client.ts";
import { HttpTransport, type LockTransport, type TransportAnswer, type TransportRequest } from "../client/transport.ts";
import { type ProcessCluster, waitFor } from "../harness/process-cluster.ts";
import { percentile } from "./measure.ts";

/** tlsOf: a LockClient's TLS option for `cluster` (its CA), or nothing for a plain one. */
export function tlsOf(cluster: ProcessCluster): { tls?: { ca: string } } {
  const ca = cluster.caPem();
  return ca === undefined ? {} : { tls: { ca } };
}

/** AttemptRecord: one HTTP attempt of the failover client; times in ms since the kill. */
export interface AttemptRecord {
  readonly node: string;
  readonly startMs: number;
  readonly endMs: number;
  /** outcome: the status and the node's error code ("503 no_leader"), or the transport's error code ("ECONNREFUSED"). */
  readonly outcome: string;
}

/** NodeEvent: a survivor's log line of interest; ms since the kill (wall clock, ms resolution). */
export interface NodeEvent {
  readonly node: string;
  readonly atMs: number;
  /** what: the role it took ("pre_candidate", "candidate", "leader", "follower"), or "lost <peer>". */
  readonly what: string;
  readonly term: number | undefined;
}

/** FailoverTrace: one kill taken apart. */
export interface FailoverTrace {
  readonly killed: string;
  readonly exitMs: number;
  readonly acquiredMs: number;
  readonly attempts: readonly AttemptRecord[];
  readonly events: readonly NodeEvent[];
}

/**
 * TracingTransport is the client's own HTTP transport with every attempt recorded (a bench-only
 * use of LockClient's `transport` seam): where it went, when, and what came of it.
 */
class TracingTransport implements LockTransport {
  readonly attempts: AttemptRecord[] = [];
  /** originMs: the kill's performance.now(); attempt times are counted from it. */
  originMs = 0;
  private readonly inner: LockTransport;
  private readonly nameOf: (url: string) => string;

  constructor(inner: LockTransport, nameOf: (url: string) => string) {
    this.inner = inner;
    this.nameOf = nameOf;
  }

  async send(request: TransportRequest): Promise<TransportAnswer> {
    const startMs = performance.now() - this.originMs;
    const record = (outcome: string) =>
      this.attempts.push({ node: this.nameOf(request.node), startMs, endMs: performance.now() - this.originMs, outcome });
    try {
      const answer = await this.inner.send(request);
      record(answer.status < 400 ? String(answer.status) : `${answer.status} ${errorCodeOfBody(answer.body)}`);
      return answer;
    } catch (error) {
      record((error as { code?: string }).code ?? (error as Error).name);
      throw error;
    }
  }
}

function errorCodeOfBody(body: string): string {
  try {
    const code = (JSON.parse(body) as { error?: { code?: unknown } }).error?.code;
    return typeof code === "string" ? code : "?";
  } catch {
    return "?";
  }
}

/** logTailBytes: how much of a node's log file the trace reads (its end: a long run's log is large). */
const logTailBytes = 4 * 1024 * 1024;

/** nodeEvents reads the role changes and lost peer links each node logged between `fromWallMs` and `toWallMs`. */
function nodeEvents(cluster: ProcessCluster, ids: readonly string[], fromWallMs: number, toWallMs: number): NodeEvent[] {
  const events: NodeEvent[] = [];
  for (const id of ids) {
    let text: string;
    try {
      const path = join(cluster.dataRoot, `${id}.log`);
      const size = statSync(path).size;
      const length = Math.min(size, logTailBytes);
      const buffer = Buffer.alloc(length);
      const fd = openSync(path, "r");
      try {
        readSync(fd, buffer, 0, length, size - length);
      } finally {
        closeSync(fd);
      }
      text = buffer.toString("utf8");
    } catch {
      continue; // No log (yet): the trace just lacks this node.
    }
    for (const line of text.split("\n")) {
      if (!line.includes("role_changed") && !line.includes("connection to peer lost")) continue;
      let entry: { time?: string; event?: string; role?: string; term?: number; peer?: string; msg?: string };
      try {
        entry = JSON.parse(line) as typeof entry;
      } catch {
        continue; // The first line of the tail may be cut.
      }
      const atWallMs = entry.time === undefined ? Number.NaN : Date.parse(entry.time);
      if (!(atWallMs >= fromWallMs && atWallMs <= toWallMs)) continue;
      const what = entry.event === "role_changed" ? String(entry.role) : `lost ${entry.peer ?? "?"}`;
      events.push({ node: id, atMs: atWallMs - fromWallMs, what, term: entry.term });
    }
  }
  return events.sort((a, b) => a.atMs - b.atMs);
}

/** failovers kills the leader `count` times and measures kill → next successful acquire; `progress` hears each. */
export async function failovers(
  cluster: ProcessCluster,
  count: number,
  progress: (message: string) => void,
  resourcePrefix = "failover",
  options: { readonly trace?: boolean } = {},
): Promise<{ samplesMs: number[]; traces: FailoverTrace[] }> {
  const samplesMs: number[] = [];
  const traces: FailoverTrace[] = [];
  const nameOf = (url: string) => cluster.ids().find((id) => cluster.url(id) === url) ?? url;
  for (let round = 0; round < count; round++) {
    const leader = await cluster.waitForLeader(10_000);
    const tracing = options.trace === true ? new TracingTransport(new HttpTransport(cluster.urls(), tlsCaOf(cluster)), nameOf) : undefined;
    const client = new LockClient({
      nodes: cluster.urls(),
      apiToken: cluster.apiToken,
      ...tlsOf(cluster),
      requestTimeoutMs: 300,
      retriesMax: 200,
      retryBaseMs: 2,
      retryMaxMs: 20,
      ...(tracing === undefined ? {} : { transport: tracing }),
    });
    const killedAtWallMs = Date.now();
    const killedAt = performance.now();
    if (tracing !== undefined) tracing.originMs = killedAt;
    await cluster.kill(leader);
    const exitMs = performance.now() - killedAt;
    const lease = await client.acquire([`${resourcePrefix}-${round}`], { ttlMs: 60_000, autoRenew: false });
    const acquiredMs = performance.now() - killedAt;
    samplesMs.push(acquiredMs);
    await lease.release();
    cluster.startNode(leader);
    // Generous: a node restarts through tsx, which takes tens of seconds on a loaded machine.
    await waitFor(() => cluster.status(leader), `${leader} to come back`, 120_000);
    await new Promise((resolve) => setTimeout(resolve, 1000)); // Let it catch up before the next kill.
    progress(`failover ${round + 1}/${count}: ${acquiredMs.toFixed(0)} ms`);
    if (tracing !== undefined) {
      const survivors = cluster.ids().filter((id) => id !== leader);
      const trace: FailoverTrace = {
        killed: leader,
        exitMs,
        acquiredMs,
        attempts: tracing.attempts,
        events: nodeEvents(cluster, survivors, killedAtWallMs, killedAtWallMs + acquiredMs + 50),
      };
      traces.push(trace);
      progress(`  ${describeTrace(trace)}`);
    }
  }
  return { samplesMs, traces };
}

function tlsCaOf(cluster: ProcessCluster): { ca?: string } {
  const ca = cluster.caPem();
  return ca === undefined ? {} : { ca };
}

/** Phases: one kill's time split at the first election timeout, the new leader, and the successful attempt's send. */
export interface Phases {
  /** timeoutMs: kill → the first pre_candidate logged (a follower's election timeout fired). */
  readonly timeoutMs: number;
  /** electionMs: that → the new leader logged (pre-vote, vote, and the leader's first write). */
  readonly electionMs: number;
  /** clientLagMs: that → the successful attempt sent. */
  readonly clientLagMs: number;
  /** answerMs: the successful attempt, sent → answered. */
  readonly answerMs: number;
}

/** phasesOf splits a trace; NaN where the logs did not show a step. */
export function phasesOf(trace: FailoverTrace): Phases {
  const firstPreCandidate = trace.events.find((event) => event.what === "pre_candidate")?.atMs ?? Number.NaN;
  const leaderAt = trace.events.filter((event) => event.what === "leader").at(-1)?.atMs ?? Number.NaN;
  // The first success is the acquire (the release after it goes through the same transport).
  const success = trace.attempts.find((attempt) => /^2\d\d$/.test(attempt.outcome));
  const sentMs = success?.startMs ?? Number.NaN;
  return {
    timeoutMs: firstPreCandidate,
    electionMs: leaderAt - firstPreCandidate,
    clientLagMs: sentMs - leaderAt,
    answerMs: (success?.endMs ?? Number.NaN) - sentMs,
  };
}

/** describeTrace: one line per kill. */
export function describeTrace(trace: FailoverTrace): string {
  const counts = new Map<string, number>();
  for (const attempt of trace.attempts.filter((each) => each.startMs < trace.acquiredMs)) {
    const key = `${attempt.node} ${attempt.outcome}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const events = trace.events.map(
    (event) => `${event.node} ${event.what}${event.term === undefined ? "" : `@${event.term}`} +${event.atMs}`,
  );
  const phases = phasesOf(trace);
  const attempts = [...counts].map(([key, n]) => `${key} ×${n}`).join(", ");
  return [
    `killed ${trace.killed} (exit +${trace.exitMs.toFixed(0)})`,
    `timeout ${phases.timeoutMs.toFixed(0)}, election ${phases.electionMs.toFixed(0)}, client lag ${phases.clientLagMs.toFixed(0)}, answer ${phases.answerMs.toFixed(0)} ms`,
    `events: ${events.join(", ")}`,
    `acquire attempts: ${attempts}`,
  ].join(" | ");
}

/** summarizePhases: the median and max of each phase over the kills. */
export function summarizePhases(traces: readonly FailoverTrace[]): string {
  const phases = traces.map(phasesOf);
  const names = ["timeoutMs", "electionMs", "clientLagMs", "answerMs"] as const;
  return names
    .map((name) => {
      const values = phases
        .map((phase) => phase[name])
        .filter((value) => Number.isFinite(value))
        .sort((a, b) => a - b);
      return `${name.replace(/Ms$/, "")}: median ${percentile(values, 0.5).toFixed(0)} ms, max ${(values.at(-1) ?? Number.NaN).toFixed(0)} ms (${values.length} kills)`;
    })
    .join("; ");
}
