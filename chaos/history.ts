// One history: start a fresh cluster (and schedulers, for the booking workload), run the workload
// while the nemesis plays the plan, heal, let the system recover, stop, and check everything:
// the history for linearizability (lock-set), the final state (lock-set, bookings), the nodes'
// logs and states against each other, and that the cluster came back. Whatever happens, the
// cluster is stopped and its disks unmounted before this returns.

import { mkdtempSync, rmSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { smallestFailingWindow } from "../harness/failing-window.ts";
import { type FencedEntry, type FencedOperation, fencedKvModel } from "../harness/fenced-kv-model.ts";
import { groupBy, SearchAbortedError, SearchLimitError, searchLinearizationAsync, type TimedEntry } from "../harness/linearizability.ts";
import { type AppliedComparison, compareAppliedEvents, readAppliedEvents } from "./applied-events.ts";
import type { BuiltCommands } from "./build.ts";
import { ChaosCluster, type UnexpectedExit } from "./chaos-cluster.ts";
import { compareDurableLogs, type LogComparison } from "./durable-logs.ts";
import type { Capabilities } from "./environment.ts";
import type { StatusSample } from "./monitor.ts";
import { type FaultRecord, Nemesis } from "./nemesis.ts";
import type { HistoryPlan } from "./plan.ts";
import type { Resources } from "./resources.ts";
import { sleep } from "./sleep.ts";
import { type BookingCheck, type BookingRequest, BookingsWorkload } from "./workload-bookings.ts";
import { type ClientPause, checkSets, LockSetWorkload, type SetCheck } from "./workload-lock-set.ts";

export interface RunContext {
  readonly capabilities: Capabilities;
  readonly resources: Resources;
  /** runDir: where this run's reports go. */
  readonly runDir: string;
  /** tmpRoot: where histories mount their disks (carries the runner's PID: resources.ts). */
  readonly tmpRoot: string;
  readonly signal: AbortSignal;
  readonly leaseTtlMs: number;
  readonly diskBytes: number;
  readonly keepLogs: boolean;
  /** commands: the compiled build's processes (undefined: the sources through tsx). */
  readonly commands: BuiltCommands | undefined;
  readonly log: (text: string) => void;
}

export interface CheckOutcome {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface FailingWindowReport {
  readonly resource: string;
  readonly fromMs: number;
  readonly toMs: number;
  readonly entries: readonly FencedEntry[];
  readonly optional: readonly boolean[];
}

export interface HistoryResult {
  readonly plan: HistoryPlan;
  readonly startedAtUtc: string;
  readonly wallMs: number;
  /** phasesMs: wall time to start the cluster (and the workload's setup), to play, and to stop and check. */
  readonly phasesMs: { readonly start: number; readonly play: number; readonly check: number };
  readonly loadAverage: { readonly start: number; readonly end: number };
  readonly ok: boolean;
  readonly checks: CheckOutcome[];
  readonly faults: FaultRecord[];
  readonly healedAtMs: number;
  readonly endedAtMs: number;
  readonly samples: StatusSample[];
  readonly lockHistory: FencedEntry[];
  readonly pauses: ClientPause[];
  readonly bookingRequests: BookingRequest[];
  readonly failingWindows: FailingWindowReport[];
  readonly unexpectedExits: UnexpectedExit[];
  readonly logs: LogComparison | undefined;
  readonly applied: AppliedComparison | undefined;
  readonly setCheck: SetCheck | undefined;
  readonly bookingCheck: BookingCheck | undefined;
  readonly workDir: string;
  readonly error: string | undefined;
}

/** searchStatesMax bounds the linearizability search per resource. */
const searchStatesMax = 3_000_000;

export async function runHistory(plan: HistoryPlan, context: RunContext): Promise<HistoryResult> {
  const startedAtUtc = new Date().toISOString();
  const wallStart = performance.now();
  const loadStart = loadavg()[0] as number;
  const workDir = join(context.runDir, `history-${String(plan.index).padStart(3, "0")}`);
  const mountRoot = mkdtempSync(join(context.tmpRoot, `h${plan.index}-`));
  let origin = performance.now();
  const nowMs = () => performance.now() - origin;
  const checks: CheckOutcome[] = [];
  let chaos: ChaosCluster | undefined;
  let state: RunState | undefined;
  let error: string | undefined;
  let startedMs: number | undefined;
  try {
    chaos = await ChaosCluster.start({
      workDir,
      mountRoot,
      resources: context.resources,
      capabilities: context.capabilities,
      diskBytes: context.diskBytes,
      snapshotEntries: 400,
      clocks: plan.faults.some((fault) => fault.kind === "clock"),
      slowFsync: plan.faults.some((fault) => fault.variant === "slow-fsync"),
      schedulers: plan.workload === "bookings" ? 2 : 0,
      schedulerLeaseTtlMs: 2000,
      commands: context.commands,
      nowMs,
      log: context.log,
    });
    state = await prepareWorkload(plan, chaos, context, nowMs);
    origin = performance.now();
    startedMs = origin;
    await play(plan, chaos, state, context, nowMs, checks);
  } catch (caught) {
    error = caught instanceof Error ? (caught.stack ?? caught.message) : String(caught);
    checks.push({ name: "history ran to the end", ok: false, detail: error.split("\n")[0] ?? error });
  } finally {
    await state?.faultsDone;
    chaos?.keepSchedulerLogs();
    const leftovers = await closeQuietly(chaos, context);
    if (leftovers.length > 0) checks.push({ name: "cleaned up", ok: false, detail: `could not unmount ${leftovers.join(", ")}` });
    const unreleased = context.resources.releaseUnder(mountRoot);
    if (unreleased.length > 0) checks.push({ name: "cleaned up", ok: false, detail: `could not release ${unreleased.join(", ")}` });
  }
  const ok = checks.every((check) => check.ok);
  if (ok && !context.keepLogs) removeNodeLogs(workDir);
  return {
    plan,
    startedAtUtc,
    wallMs: performance.now() - wallStart,
    phasesMs: phases(wallStart, startedMs, state?.stoppedAtWallMs),
    loadAverage: { start: loadStart, end: loadavg()[0] as number },
    ok,
    checks,
    faults: state?.nemesis.records ?? [],
    healedAtMs: state?.healedAtMs ?? 0,
    endedAtMs: state?.endedAtMs ?? 0,
    samples: (chaos?.monitor.samples ?? []).filter((sample) => sample.atMs >= 0),
    lockHistory: state?.lockSet?.history ?? [],
    pauses: state?.lockSet?.pauses ?? [],
    bookingRequests: state?.bookings?.requests ?? [],
    failingWindows: state?.failingWindows ?? [],
    unexpectedExits: chaos?.unexpectedExits ?? [],
    logs: state?.logs,
    applied: state?.applied,
    setCheck: state?.setCheck,
    bookingCheck: state?.bookingCheck,
    workDir,
    error,
  };
}

/** RunState is what a history accumulates while it plays. */
interface RunState {
  readonly nemesis: Nemesis;
  readonly lockSet: LockSetWorkload | undefined;
  readonly bookings: BookingsWorkload | undefined;
  healedAtMs: number;
  endedAtMs: number;
  /** stoppedAtWallMs: performance.now() when the workload stopped. */
  stoppedAtWallMs: number | undefined;
  /** faultsDone: the nemesis's run, awaited before the cluster is closed (an interrupted history too). */
  faultsDone: Promise<void>;
  failingWindows: FailingWindowReport[];
  logs: LogComparison | undefined;
  applied: AppliedComparison | undefined;
  setCheck: SetCheck | undefined;
  bookingCheck: BookingCheck | undefined;
}

async function prepareWorkload(plan: HistoryPlan, chaos: ChaosCluster, context: RunContext, nowMs: () => number): Promise<RunState> {
  const nemesis = new Nemesis({ chaos, seed: plan.seed, nowMs, log: context.log });
  const base = {
    nemesis,
    healedAtMs: 0,
    endedAtMs: 0,
    stoppedAtWallMs: undefined,
    faultsDone: Promise.resolve(),
    failingWindows: [],
    logs: undefined,
    applied: undefined,
    setCheck: undefined,
    bookingCheck: undefined,
  };
  if (plan.workload === "bookings") {
    const bookings = new BookingsWorkload({
      schedulerUrls: chaos.system?.schedulerUrls ?? [],
      nodeUrls: chaos.nodeUrls(),
      apiToken: chaos.cluster.apiToken,
      seed: plan.seed,
      nowMs,
      scientists: 6,
      slots: 16,
      operationDeadlineMs: 30_000,
      cyclesMax: 10_000,
    });
    await bookings.setUp();
    return { ...base, lockSet: undefined, bookings };
  }
  const lockSet = new LockSetWorkload({
    nodeUrls: chaos.nodeUrls(),
    apiToken: chaos.cluster.apiToken,
    seed: plan.seed,
    nowMs,
    keys: 3,
    clients: 9,
    ttlMs: context.leaseTtlMs,
    unfenced: plan.unfenced,
    pauseProbability: 0.08,
    pauseOnceAfterMs: plan.healAtMs,
    operationDeadlineMs: 30_000,
    cyclesMax: 100_000,
  });
  return { ...base, lockSet, bookings: undefined };
}

/** play runs the workload and the faults, heals, waits for recovery, stops, and checks. */
async function play(
  plan: HistoryPlan,
  chaos: ChaosCluster,
  state: RunState,
  context: RunContext,
  nowMs: () => number,
  checks: CheckOutcome[],
): Promise<void> {
  const workload = state.lockSet ?? state.bookings;
  if (workload === undefined) throw new Error("no workload");
  const interrupted = () => {
    if (context.signal.aborted) throw new Error("interrupted");
  };
  workload.start();
  try {
    state.faultsDone = state.nemesis.run(plan.faults, context.signal);
    await sleep(plan.healAtMs - nowMs(), context.signal);
    interrupted();
    await state.nemesis.healAll();
    await state.faultsDone;
    await state.nemesis.healAll(); // A membership change that ran late may have left something.
    state.healedAtMs = nowMs();
    interrupted();
    // Generous: restarting killed nodes on a loaded machine takes seconds each.
    const leader = await chaos.waitForLeader(60_000).catch(() => undefined);
    const leaderAfterMs = nowMs() - state.healedAtMs;
    checks.push({
      name: "a leader after healing",
      ok: leader !== undefined,
      detail: leader === undefined ? "no leader within 60 s" : `${leader}, ${(leaderAfterMs / 1000).toFixed(1)} s after healing`,
    });
    await sleep(plan.durationMs - nowMs(), context.signal);
    const successesSince = (atMs: number) => state.lockSet?.committedWritesSince(atMs) ?? state.bookings?.createdSince(atMs) ?? 0;
    for (let wait = 0; wait < 240 && successesSince(state.healedAtMs) === 0 && !context.signal.aborted; wait++) await sleep(250);
    interrupted();
    const recovered = successesSince(state.healedAtMs);
    checks.push({
      name: "the workload recovered after healing",
      ok: recovered > 0,
      detail: `${recovered} ${state.lockSet === undefined ? "bookings" : "writes"} acknowledged after healing`,
    });
  } finally {
    await workload.stop({ abort: context.signal.aborted });
    state.endedAtMs = nowMs();
    state.stoppedAtWallMs = performance.now();
  }
  interrupted();
  await finalChecks(chaos, state, context, checks);
}

async function finalChecks(chaos: ChaosCluster, state: RunState, context: RunContext, checks: CheckOutcome[]): Promise<void> {
  const finals = await state.lockSet?.finalReads();
  if (state.bookings !== undefined) {
    state.bookingCheck = await state.bookings.check();
    const bookings = state.bookingCheck;
    checks.push({
      name: "bookings: no slot twice, nothing acknowledged lost, audit chain whole",
      ok: bookings.ok,
      detail: bookings.ok
        ? `${bookings.acknowledged} acknowledged; stored ${bookings.stored} (${bookings.cancelled} cancelled); ${bookings.auditRecords} audit records, chain verified`
        : bookings.problems.slice(0, 8).join("; "),
    });
  }
  await compareNodes(chaos, state, context, checks);
  // Checked with the nodes stopped: the search may take the CPU for a while (it yields, so a
  // Ctrl-C is still served).
  if (state.lockSet !== undefined && finals !== undefined) {
    checks.push(await checkLockHistory(state.lockSet.history, state, context.signal));
    const sets = checkSets(state.lockSet.elements, finals);
    state.setCheck = sets;
    checks.push({
      name: "lock-set: every acknowledged add is in the final set, no refused one",
      ok: sets.ok,
      detail: sets.ok
        ? `${sets.committed} acknowledged, ${sets.stale} refused by the fence, ${sets.unknown} unknown (${sets.unknownPresent} of them landed)`
        : `lost: ${sets.lost.slice(0, 10).join(" ")}${sets.lost.length > 10 ? " …" : ""}; refused but present: ${sets.refusedButPresent.slice(0, 10).join(" ")}`,
    });
  }
  const exits = chaos.unexpectedExits;
  checks.push({
    name: "no node process died by itself",
    ok: exits.length === 0,
    detail:
      exits.length === 0 ? "none" : exits.map((exit) => `${exit.id} exit ${exit.code ?? exit.signal}: ${lastLine(exit.stderr)}`).join("; "),
  });
  checks.push(...clockChecks(state.nemesis.records, chaos.monitor.samples));
}

/** compareNodes lets the cluster settle, checks every member caught up, stops the nodes and compares their logs and states. */
async function compareNodes(chaos: ChaosCluster, state: RunState, context: RunContext, checks: CheckOutcome[]): Promise<void> {
  // Leases that clients left behind expire within a TTL (the schedulers' are 2 s): let those
  // expiries commit before the logs are compared at one index.
  await sleep(Math.max(context.leaseTtlMs, 2000) + 500);
  const converged = await converge(chaos);
  checks.push({
    name: "every member caught up",
    ok: converged.ok,
    detail: converged.ok ? `${converged.ids.join(", ")} at index ${converged.index}` : converged.detail,
  });
  if (converged.ok) {
    const applied = await Promise.all(
      converged.ids.map((id) => readAppliedEvents(id, chaos.cluster.url(id), chaos.cluster.apiToken, converged.index)),
    );
    state.applied = compareAppliedEvents(applied, converged.index);
    checks.push({
      name: "the nodes applied the same events at every index",
      ok: state.applied.ok,
      detail: state.applied.ok
        ? `${state.applied.comparedIndexes} indexes compared across ${applied.length} nodes, up to ${converged.index}`
        : state.applied.problems.slice(0, 3).join("; "),
    });
  }
  const dataDirs = new Map(
    chaos.cluster.ids().map((id) => [id, chaos.disks === undefined ? join(chaos.cluster.dataRoot, id) : chaos.disks.dataDir(id)]),
  );
  for (const id of chaos.cluster.runningIds()) await chaos.stopGracefully(id);
  state.logs = await compareDurableLogs(dataDirs, converged.ok ? converged : undefined);
  checks.push({
    name: "the nodes' logs and states agree",
    ok: state.logs.ok,
    detail: state.logs.ok
      ? `${state.logs.comparedIndexes} indexes compared across ${state.logs.nodes.length} nodes; states equal at the converged index`
      : state.logs.problems.slice(0, 5).join("; "),
  });
}

/** checkLockHistory checks each resource's history against the fenced key-value model; failures get their smallest window. */
async function checkLockHistory(history: readonly FencedEntry[], state: RunState, signal: AbortSignal): Promise<CheckOutcome> {
  let operations = 0;
  let statesVisited = 0;
  const failed: string[] = [];
  const inconclusive: string[] = [];
  for (const [resource, entries] of groupBy(history, (entry) => entry.operation.resource)) {
    operations += entries.length;
    try {
      const result = await searchLinearizationAsync(entries, fencedKvModel(), { statesVisitedMax: searchStatesMax, signal });
      statesVisited += result.statesVisited;
      if (result.linearizable) continue;
      failed.push(resource);
      const window = smallestFailingWindow(entries as TimedEntry<FencedOperation>[], (anyStart) => fencedKvModel({ anyStart }));
      if (window !== undefined) state.failingWindows.push({ resource, ...window });
    } catch (error) {
      if (!(error instanceof SearchLimitError) && !(error instanceof SearchAbortedError)) throw error;
      inconclusive.push(resource);
    }
  }
  const windows = state.failingWindows.map((window) => `${window.entries.length} operations`).join(", ");
  return {
    name: "linearizable (lease lock with fencing, fenced key-value)",
    ok: failed.length === 0 && inconclusive.length === 0,
    detail:
      failed.length > 0
        ? `NOT linearizable: ${failed.join(", ")}${windows === "" ? "" : ` (smallest failing window: ${windows})`}`
        : inconclusive.length > 0
          ? `undecided: the search for ${inconclusive.join(", ")} passed ${searchStatesMax} states or was stopped`
          : `${operations} operations, ${statesVisited} states searched`,
  };
}

/**
 * clockChecks: a wall-clock fault may change nothing but timestamps. Each clock fault's lease
 * probe must end about its TTL after the grant: never before (a read showed it gone too early),
 * and no read may show it still held past its TTL and slack (LeaseProbe.slackMs: 2 s, or three
 * times what the grant took on a slow machine) unless the leader changed meanwhile (a new leader
 * restarts every lease's countdown, which is allowed). The fault is held on until then
 * (nemesis.ts), so a lease timed on the stepped wall clock is seen held past the slack. Reads that
 * got no answer are no evidence either way.
 */
export function clockChecks(records: readonly FaultRecord[], samples: readonly StatusSample[]): CheckOutcome[] {
  const outcomes: CheckOutcome[] = [];
  for (const record of records) {
    const probe = record.leaseProbe;
    if (record.plan.kind !== "clock" || probe === undefined || probe.grantedAtMs === undefined) continue;
    const name = `clock ${record.plan.variant}: a lease ends on the leader's monotonic clock`;
    const early = probe.goneAtMs !== undefined && probe.goneAtMs - probe.invokedAtMs < probe.ttlMs;
    const seenHeldMs = probe.lastSeenHeldAtMs === undefined ? 0 : probe.lastSeenHeldAtMs - probe.grantedAtMs;
    const newLeader = probe.lastSeenHeldAtMs !== undefined && termChanged(samples, probe.invokedAtMs, probe.lastSeenHeldAtMs);
    const late = seenHeldMs > probe.ttlMs + probe.slackMs && !newLeader;
    const gone =
      probe.goneAtMs === undefined
        ? "not seen gone by the end"
        : `seen gone ${Math.round(probe.goneAtMs - probe.invokedAtMs)} ms after it was asked for`;
    outcomes.push({
      name,
      ok: !early && !late,
      detail: `a ${probe.ttlMs} ms lease: last seen held ${Math.round(seenHeldMs)} ms after its grant, ${gone}; slack ${Math.round(probe.slackMs)} ms${early ? ": EARLY" : ""}${late ? ": HELD TOO LONG" : ""}${newLeader ? " (a new leader restarted its countdown meanwhile: allowed)" : ""}`,
    });
  }
  return outcomes;
}

function phases(wallStart: number, startedMs: number | undefined, stoppedMs: number | undefined): HistoryResult["phasesMs"] {
  const endMs = performance.now();
  const started = startedMs ?? endMs;
  const stopped = stoppedMs ?? endMs;
  return { start: started - wallStart, play: stopped - started, check: endMs - stopped };
}

/** termChanged: whether any node reported a higher term within [fromMs, toMs] than any had before it. */
export function termChanged(samples: readonly StatusSample[], fromMs: number, toMs: number): boolean {
  const before = Math.max(0, ...samples.filter((sample) => sample.atMs <= fromMs).map((sample) => sample.term));
  return samples.some((sample) => sample.atMs > fromMs && sample.atMs <= toMs + 500 && sample.term > before);
}

/** converge waits (bounded) until every running member has applied what the leader has committed. */
async function converge(chaos: ChaosCluster): Promise<{ ok: boolean; index: number; ids: string[]; detail: string }> {
  let detail = "no leader";
  for (let attempt = 0; attempt < 80; attempt++) {
    await chaos.monitor.pollNow();
    const leader = chaos.monitor.leader(1000);
    const members = chaos.monitor.members();
    const leaderSample = leader === undefined ? undefined : chaos.monitor.latestOf(leader);
    if (leaderSample !== undefined && members !== undefined) {
      const ids = [...members.voters, ...members.learners].filter((id) => chaos.running(id)).sort();
      const behind = ids.filter((id) => (chaos.monitor.latestOf(id)?.appliedIndex ?? -1) < leaderSample.commitIndex);
      if (behind.length === 0) return { ok: true, index: leaderSample.commitIndex, ids, detail: "" };
      detail = `${behind.join(", ")} behind the leader's commit index ${leaderSample.commitIndex}`;
    }
    await sleep(250);
  }
  return { ok: false, index: 0, ids: [], detail: `not within 20 s: ${detail}` };
}

async function closeQuietly(chaos: ChaosCluster | undefined, context: RunContext): Promise<string[]> {
  if (chaos === undefined) return [];
  try {
    return await chaos.close();
  } catch (error) {
    context.log(`closing the cluster failed: ${(error as Error).message}`);
    return [];
  }
}

function removeNodeLogs(workDir: string): void {
  rmSync(workDir, { recursive: true, force: true });
}

function lastLine(text: string): string {
  return (
    text
      .trim()
      .split("\n")
      .filter((line) => line.trim() !== "")
      .at(-1) ?? ""
  ).slice(0, 200);
}
