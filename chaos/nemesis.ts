// The nemesis runs a history's fault plan (plan.ts) against a ChaosCluster: each fault starts at
// its time, picks its targets from the cluster as the monitor sees it then ("the leader", "one
// node", a majority), holds for its duration and ends; healAll() ends whatever is still on. Every
// step is recorded (FaultRecord) for the report. Every wait is bounded: by the fault's duration,
// by a deadline, or by a count.

import { LockClient } from "../client/lock-client.ts";
import { createSeededRandom } from "../raft/index.ts";
import type { ChaosCluster } from "./chaos-cluster.ts";
import { type Edge, partitions } from "./network.ts";
import { describeFault, type FaultPlan } from "./plan.ts";
import { sleep } from "./sleep.ts";

/**
 * FaultRecord is what happened when a planned fault ran. A fault that started may still have done
 * nothing (no leader to transfer from, a membership change that never committed): `effective`
 * says whether it did, and `ranAs` what it turned out to be (a "leader" fault that found no leader
 * hit one node instead). The summary counts only effective faults, by `ranAs`, so that "every
 * kind ran" means it really did.
 */
export interface FaultRecord {
  readonly plan: FaultPlan;
  readonly label: string;
  targets: string[];
  startedAtMs: number | undefined;
  endedAtMs: number | undefined;
  notes: string[];
  effective: boolean;
  ranAs: string;
  /** leaseProbe: for a clock fault, a lease taken while the clock was off and left to expire (see clockFault). */
  leaseProbe?: LeaseProbe;
}

/** LeaseProbe: when a lease of `ttlMs`, never renewed, was asked for, granted and seen gone (history ms). */
export interface LeaseProbe {
  readonly ttlMs: number;
  readonly invokedAtMs: number;
  grantedAtMs: number | undefined;
  goneAtMs: number | undefined;
  /**
   * lastSeenHeldAtMs: the last time a (linearizable) read showed the lease still held. A read that
   * got no answer shows nothing: on a loaded or partitioned cluster reads fail for a while, and
   * only what was seen counts as evidence of a lease held too long.
   */
  lastSeenHeldAtMs: number | undefined;
  /**
   * slackMs: how much longer than its TTL the lease may be seen held, for a cluster that is merely
   * slow: 2 s, or three times what the grant took if more (a loaded machine answers slowly, and
   * expires slowly too). Set at the grant.
   */
  slackMs: number;
}

/** probeDeadlineMs: until when a probe is watched, and its clock fault held on (see clockFault). */
export function probeDeadlineMs(probe: LeaseProbe, plannedEndMs: number): number {
  if (probe.grantedAtMs === undefined) return plannedEndMs;
  return Math.max(plannedEndMs, probe.grantedAtMs + probe.ttlMs + probe.slackMs + 500);
}

export interface NemesisOptions {
  readonly chaos: ChaosCluster;
  readonly seed: number;
  readonly nowMs: () => number;
  readonly log: (text: string) => void;
}

/** membershipWaitMs bounds a membership change (add, catch up, promote, remove) under faults. */
const membershipWaitMs = 12_000;
/** transferGraceMs: how long past its planned end a transfer fault that moved no leader yet keeps trying. */
const transferGraceMs = 6000;

export class Nemesis {
  readonly records: FaultRecord[] = [];
  private readonly options: NemesisOptions;
  private readonly random: ReturnType<typeof createSeededRandom>;
  private readonly admin: LockClient;
  /** killed: nodes this nemesis killed and has not restarted. */
  private readonly killed = new Set<string>();
  /** removed: nodes taken out of the cluster by a membership change (not restarted at the end). */
  private readonly removed = new Set<string>();
  private readonly healing = new AbortController();

  constructor(options: NemesisOptions) {
    this.options = options;
    this.random = createSeededRandom(options.seed ^ 0x0e5e_e515);
    this.admin = new LockClient({
      nodes: options.chaos.nodeUrls(),
      apiToken: options.chaos.cluster.apiToken,
      requestTimeoutMs: 1500,
      retriesMax: 3,
      retryBaseMs: 50,
      retryMaxMs: 300,
    });
  }

  /** run runs every planned fault at its time; it resolves when all have ended (or `signal` aborts). */
  async run(faults: readonly FaultPlan[], signal: AbortSignal): Promise<void> {
    await Promise.all(faults.map((fault) => this.runFault(fault, signal)));
  }

  /** healAll ends every fault still on: clocks, fsync, disks, partitions, pauses, kills (members only). */
  async healAll(): Promise<string[]> {
    this.healing.abort();
    const chaos = this.options.chaos;
    const done: string[] = [];
    for (const id of chaos.cluster.ids()) {
      if (chaos.clocks !== undefined && chaos.clocks.offset(id) !== 0) {
        chaos.clocks.set(id, 0);
        done.push(`clock of ${id} back to real time`);
      }
      chaos.fsync?.set(id, 0);
      chaos.disks?.free(id);
    }
    if (chaos.network.cutEdges().length > 0) done.push("network healed");
    chaos.network.heal();
    for (const id of [...chaos.paused]) {
      chaos.resume(id);
      done.push(`${id} continued`);
    }
    for (const id of [...this.killed]) {
      if (this.removed.has(id)) continue;
      chaos.restart(id);
      this.killed.delete(id);
      done.push(`${id} restarted`);
    }
    return done;
  }

  private async runFault(plan: FaultPlan, signal: AbortSignal): Promise<void> {
    const record: FaultRecord = {
      plan,
      label: describeFault(plan),
      targets: [],
      startedAtMs: undefined,
      endedAtMs: undefined,
      notes: [],
      effective: false,
      ranAs: plan.variant,
    };
    this.records.push(record);
    await sleep(plan.startMs - this.options.nowMs(), signal);
    if (signal.aborted || this.healing.signal.aborted) {
      record.notes.push("not started: the history was cut short");
      return;
    }
    record.startedAtMs = this.options.nowMs();
    const endAtMs = record.startedAtMs + plan.durationMs;
    try {
      await this.inject(plan, record, endAtMs, signal);
    } catch (error) {
      record.notes.push(`failed: ${(error as Error).message}`);
    }
    record.endedAtMs = this.options.nowMs();
    this.options.log(
      `  fault ended: ${record.label} on ${record.targets.join(", ") || "—"}${record.effective ? "" : ", NO EFFECT"}${record.notes.length > 0 ? ` (${record.notes.join("; ")})` : ""}`,
    );
  }

  /** inject starts the fault, holds it until `endAtMs`, and ends it. */
  private async inject(plan: FaultPlan, record: FaultRecord, endAtMs: number, signal: AbortSignal): Promise<void> {
    const chaos = this.options.chaos;
    const hold = () => sleep(endAtMs - this.options.nowMs(), AbortSignal.any([signal, this.healing.signal]));
    switch (plan.kind) {
      case "kill": {
        record.targets = this.killTargets(plan, record);
        this.options.log(`  fault: ${record.label}: kill -9 ${record.targets.join(", ")}`);
        for (const id of record.targets) {
          this.killed.add(id);
          await chaos.kill(id);
        }
        record.effective = record.targets.length > 0;
        await hold();
        for (const id of record.targets) {
          if (!this.killed.has(id) || this.removed.has(id)) continue;
          chaos.restart(id);
          this.killed.delete(id);
        }
        return;
      }
      case "pause": {
        record.targets = [this.pickTarget(plan, record)];
        this.options.log(`  fault: ${record.label}: SIGSTOP ${record.targets.join(", ")}`);
        for (const id of record.targets) chaos.pause(id);
        record.effective = true;
        await hold();
        for (const id of record.targets) chaos.resume(id);
        return;
      }
      case "partition": {
        const edges = this.partitionEdges(plan, record);
        this.options.log(`  fault: ${record.label}: cut ${edges.map((edge) => `${edge.from}→${edge.to}`).join(" ")}`);
        chaos.network.cut(edges);
        record.effective = edges.length > 0;
        await hold();
        chaos.network.restore(edges);
        return;
      }
      case "clock":
        return this.clockFault(plan, record, hold, endAtMs);
      case "disk":
        return this.diskFault(plan, record, hold);
      case "membership":
        return this.membershipChange(plan, record, endAtMs);
      case "transfer":
        return this.transfers(plan, record, endAtMs);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Targets.

  /** members: the running voters and learners, as the monitor last saw them (every running node if it knows nothing). */
  private runningMembers(): string[] {
    const chaos = this.options.chaos;
    const members = chaos.monitor.members();
    const ids = members === undefined ? chaos.cluster.ids() : [...members.voters, ...members.learners];
    return ids.filter((id) => chaos.running(id) && !chaos.paused.has(id) && !this.removed.has(id)).sort();
  }

  private voters(): string[] {
    const members = this.options.chaos.monitor.members();
    const voters = members === undefined ? this.options.chaos.cluster.foundingIds() : members.voters;
    return voters.filter((id) => !this.removed.has(id)).sort();
  }

  /** pickTarget resolves "leader" (falling back to one node when none is known) and "one". */
  private pickTarget(plan: FaultPlan, record: FaultRecord): string {
    const candidates = this.runningMembers();
    if (plan.target === "leader") {
      const leader = this.options.chaos.monitor.leader();
      if (leader !== undefined && candidates.includes(leader)) return leader;
      record.notes.push("no leader known when it started: hit one node instead");
      if (record.ranAs === "leader") record.ranAs = "one";
    }
    const pool = candidates.length > 0 ? candidates : this.options.chaos.cluster.foundingIds();
    return pool[Math.floor(plan.pick * pool.length)] as string;
  }

  private pickTargets(plan: FaultPlan, record: FaultRecord): string[] {
    return plan.target === "all" ? this.runningMembers() : [this.pickTarget(plan, record)];
  }

  private killTargets(plan: FaultPlan, record: FaultRecord): string[] {
    const running = this.runningMembers();
    const voters = this.voters().filter((id) => running.includes(id));
    switch (plan.variant) {
      case "all":
        return running;
      case "majority": {
        const count = Math.floor(this.voters().length / 2) + 1;
        return this.shuffle(voters).slice(0, count);
      }
      case "leader": {
        const leader = this.options.chaos.monitor.leader();
        if (leader !== undefined && running.includes(leader)) return [leader];
        record.notes.push("no leader known when it started: killed one node instead");
        record.ranAs = "one";
        return this.shuffle(running).slice(0, 1);
      }
      default:
        return this.shuffle(running).slice(0, 1);
    }
  }

  private partitionEdges(plan: FaultPlan, record: FaultRecord): Edge[] {
    const members = this.runningMembers();
    switch (plan.variant) {
      case "one-way": {
        const node = this.pickTarget(plan, record);
        record.targets = [node];
        const others = members.filter((id) => id !== node);
        if (this.random.nextInt(2) === 0) {
          record.notes.push(`${node} cannot send to the others (it still hears them)`);
          return partitions.outboundOf(node, others);
        }
        record.notes.push(`the others cannot send to ${node} (it still reaches them)`);
        return partitions.inboundOf(node, others);
      }
      case "majority-minority": {
        const shuffled = this.shuffle(members);
        const minority = shuffled.slice(0, Math.floor((shuffled.length - 1) / 2) || 1);
        const majority = shuffled.filter((id) => !minority.includes(id));
        record.targets = minority;
        record.notes.push(`${minority.join(",")} | ${majority.join(",")}`);
        return partitions.split(minority, majority);
      }
      case "bridge": {
        const shuffled = this.shuffle(members);
        const bridge = shuffled[0] as string;
        const rest = shuffled.slice(1);
        const half = Math.ceil(rest.length / 2);
        const sideA = rest.slice(0, half);
        const sideB = rest.slice(half);
        record.targets = [bridge];
        record.notes.push(`${sideA.join(",")} | ${sideB.join(",")}, bridged by ${bridge}`);
        return partitions.bridge(bridge, sideA, sideB);
      }
      default: {
        const leader = this.pickTarget({ ...plan, target: "leader" }, record);
        if (record.notes.some((note) => note.startsWith("no leader known"))) record.ranAs = "isolate-one";
        record.targets = [leader];
        return partitions.isolate(
          leader,
          members.filter((id) => id !== leader),
        );
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Clock and disk.

  private async clockFault(plan: FaultPlan, record: FaultRecord, hold: () => Promise<void>, endAtMs: number): Promise<void> {
    const clocks = this.options.chaos.clocks;
    if (clocks === undefined) throw new Error("the nodes were not started with libfaketime");
    record.targets = this.pickTargets(plan, record);
    const offsetSeconds = plan.clockOffsetSeconds ?? 0;
    this.options.log(`  fault: ${record.label}: ${record.targets.join(", ")}`);
    // The probe lease is granted first: the clock must move while its countdown runs.
    const probe = this.probeLease(record, endAtMs, () => {
      if (plan.variant !== "strobe") for (const id of record.targets) clocks.set(id, offsetSeconds);
    });
    record.effective = record.targets.length > 0;
    // The fault stays on while the probe lease is held, up to the probe's deadline: a lease timed
    // on the stepped wall clock would then be seen held past its TTL and slack, whereas ending the
    // fault at its planned time could end such a lease (the clock back) before a loaded machine's
    // slack ran out, and hide the bug.
    const lasts = () => {
      const watched = record.leaseProbe;
      const untilMs = watched === undefined || watched.goneAtMs !== undefined ? endAtMs : probeDeadlineMs(watched, endAtMs);
      return this.options.nowMs() < untilMs && !this.healing.signal.aborted;
    };
    if (plan.variant === "strobe") {
      const periodMs = plan.strobePeriodMs ?? 100;
      // Bounded: one flip per period until the end (the probe's deadline at most, a minute at most).
      const flipsMax = Math.ceil(60_000 / periodMs);
      let flips = 0;
      for (; flips < flipsMax && lasts(); flips++) {
        const offset = flips % 2 === 0 ? offsetSeconds : -offsetSeconds;
        for (const id of record.targets) clocks.set(id, offset);
        await sleep(periodMs, this.healing.signal);
      }
      record.notes.push(`${flips} flips`);
    } else {
      await hold();
      for (let wait = 0; wait < 1200 && lasts(); wait++) await sleep(50, this.healing.signal);
    }
    await probe;
    for (const id of record.targets) clocks.set(id, 0);
  }

  /**
   * probeLease takes a lease, lets the clock fault start (`granted`), and watches the lease
   * expire: the leader must end it on its monotonic clock, about its TTL after the grant, whatever
   * the wall clock did meanwhile (a lease timed on the wall clock would end at once after a step
   * forward, and minutes late after a step back). Bounded by the fault's duration; what it saw
   * goes into the record for the checks.
   */
  private async probeLease(record: FaultRecord, endAtMs: number, granted: () => void): Promise<void> {
    const ttlMs = 1000;
    const resource = `probe/clock-${this.records.indexOf(record)}`;
    const probe: LeaseProbe = {
      ttlMs,
      invokedAtMs: this.options.nowMs(),
      grantedAtMs: undefined,
      goneAtMs: undefined,
      lastSeenHeldAtMs: undefined,
      slackMs: 2000,
    };
    record.leaseProbe = probe;
    try {
      await this.admin.mutate(
        "/lock",
        { resources: [resource], owner: "clock-probe", ttlMs, waitMs: 0 },
        // Generous: on a loaded machine a grant can take seconds, and the fault waits for it.
        { deadlineMs: performance.now() + 5000 },
      );
      probe.grantedAtMs = this.options.nowMs();
      probe.slackMs = Math.max(2000, 3 * (probe.grantedAtMs - probe.invokedAtMs));
    } catch (error) {
      record.notes.push(`lease probe not granted: ${(error as Error).message}`);
      return;
    } finally {
      granted();
    }
    const deadlineMs = probeDeadlineMs(probe, endAtMs);
    for (let poll = 0; poll < 1200 && this.options.nowMs() < deadlineMs && !this.healing.signal.aborted; poll++) {
      try {
        const leases = await this.admin.leases();
        if (!leases.some((lease) => lease.resource === resource)) {
          probe.goneAtMs = this.options.nowMs();
          return;
        }
        probe.lastSeenHeldAtMs = this.options.nowMs();
      } catch {
        // No answer this time: ask again.
      }
      await sleep(50);
    }
  }

  private async diskFault(plan: FaultPlan, record: FaultRecord, hold: () => Promise<void>): Promise<void> {
    const chaos = this.options.chaos;
    record.targets = this.pickTargets(plan, record);
    this.options.log(`  fault: ${record.label}: ${record.targets.join(", ")}`);
    if (plan.variant === "slow-fsync") {
      const fsync = chaos.fsync;
      if (fsync === undefined) throw new Error("the nodes were not started with slow-fsync.so");
      for (const id of record.targets) fsync.set(id, plan.fsyncDelayMs ?? 100);
      record.effective = record.targets.length > 0;
      await hold();
      for (const id of record.targets) fsync.set(id, 0);
      return;
    }
    const disks = chaos.disks;
    if (disks === undefined) throw new Error("the nodes' data are not on tmpfs disks (not root?)");
    for (const id of record.targets) {
      const bytes = disks.fill(id);
      record.notes.push(`${id}: filled ${(bytes / 1024 / 1024).toFixed(1)} MiB, ${disks.freeBytes(id)} bytes left`);
    }
    record.effective = record.targets.length > 0;
    await hold();
    for (const id of record.targets) disks.free(id);
  }

  // -------------------------------------------------------------------------------------------
  // Membership and leadership.

  private async membershipChange(plan: FaultPlan, record: FaultRecord, endAtMs: number): Promise<void> {
    const deadlineMs = Math.max(endAtMs, this.options.nowMs() + membershipWaitMs);
    const chaos = this.options.chaos;
    if (plan.variant === "remove") {
      const leader = chaos.monitor.leader();
      const candidates = this.voters().filter((id) => id !== leader);
      const victim = candidates[Math.floor(plan.pick * candidates.length)];
      if (victim === undefined || this.voters().length <= 2) {
        record.notes.push("skipped: too few voters to remove one");
        return;
      }
      record.targets = [victim];
      this.options.log(`  fault: ${record.label}: remove ${victim}`);
      if (await this.memberAction("remove_node", victim, deadlineMs, record)) {
        this.removed.add(victim);
        record.effective = true;
        await chaos.stopGracefully(victim);
        record.notes.push(`${victim} removed and stopped`);
      }
      return;
    }
    const spare = chaos.cluster.ids().find((id) => !chaos.running(id) && !this.voters().includes(id) && !this.killed.has(id));
    if (spare === undefined) {
      record.notes.push("skipped: no spare node left");
      return;
    }
    const replaced = plan.variant === "replace-leader" ? chaos.monitor.leader() : undefined;
    record.targets = replaced === undefined ? [spare] : [spare, replaced];
    this.options.log(`  fault: ${record.label}: add ${spare}${replaced === undefined ? "" : `, then remove the leader ${replaced}`}`);
    chaos.restart(spare);
    if (!(await this.memberAction("add_learner", spare, deadlineMs, record))) return;
    if (!(await this.memberAction("promote_learner", spare, deadlineMs, record))) return;
    record.notes.push(`${spare} added and promoted`);
    if (plan.variant !== "replace-leader") {
      record.effective = true;
      return;
    }
    if (replaced === undefined) {
      record.notes.push("no leader known to replace: only added a node");
      record.ranAs = "add";
      record.effective = true;
      return;
    }
    if (await this.memberAction("remove_node", replaced, deadlineMs, record)) {
      this.removed.add(replaced);
      record.effective = true;
      await chaos.stopGracefully(replaced);
      record.notes.push(`the old leader ${replaced} removed and stopped`);
    }
  }

  /** memberAction retries one membership step until it is applied or the deadline passes (bounded). */
  private async memberAction(
    action: "add_learner" | "promote_learner" | "remove_node",
    nodeId: string,
    deadlineMs: number,
    record: FaultRecord,
  ): Promise<boolean> {
    let lastError = "";
    for (let attempt = 0; attempt < 200 && this.options.nowMs() < deadlineMs; attempt++) {
      try {
        await this.admin.admin("/admin/members", { action, nodeId });
        return true;
      } catch (error) {
        lastError = (error as Error).message;
        // Already done (a retry after a lost answer): the change is in.
        if (/does not fit the current membership/.test(lastError) && (await this.alreadyDone(action, nodeId))) return true;
        await sleep(250);
      }
    }
    record.notes.push(`${action} ${nodeId} not applied in time: ${lastError}`);
    return false;
  }

  private async alreadyDone(action: string, nodeId: string): Promise<boolean> {
    await this.options.chaos.monitor.pollNow();
    const members = this.options.chaos.monitor.members();
    if (members === undefined) return false;
    if (action === "remove_node") return !members.voters.includes(nodeId) && !members.learners.includes(nodeId);
    if (action === "add_learner") return members.learners.includes(nodeId) || members.voters.includes(nodeId);
    return members.voters.includes(nodeId);
  }

  /**
   * transfers asks for `plan.transfers` leadership transfers, one after another, within the
   * fault's time. Its companion fault may leave no leader for a while (a kill, a pause): then it
   * waits for one, and if no transfer went through by the fault's end it keeps trying for up to
   * transferGraceMs more (bounded in time and attempts), so that a transfer fault is rarely one
   * that did nothing; `effective` says whether one did.
   */
  private async transfers(plan: FaultPlan, record: FaultRecord, endAtMs: number): Promise<void> {
    const chaos = this.options.chaos;
    const count = plan.transfers ?? 1;
    const graceEndMs = endAtMs + transferGraceMs;
    let done = 0;
    let waitedForLeader = false;
    const goOn = () => {
      const nowMs = this.options.nowMs();
      return !this.healing.signal.aborted && (nowMs < endAtMs || (done === 0 && nowMs < graceEndMs));
    };
    for (let attempt = 0; done < count && attempt < count + 40 && goOn(); attempt++) {
      const leader = chaos.monitor.leader();
      const others = this.voters().filter((id) => id !== leader && chaos.running(id) && !chaos.paused.has(id));
      const to = others[this.random.nextInt(Math.max(1, others.length))];
      if (leader === undefined || to === undefined) {
        if (!waitedForLeader) record.notes.push("waited for a leader and another voter to transfer to");
        waitedForLeader = true;
        await sleep(250, this.healing.signal);
        continue;
      }
      record.targets.push(to);
      this.options.log(`  fault: leadership transfer ${leader} → ${to}`);
      try {
        await this.admin.admin("/admin/transfer", { to });
        const started = this.options.nowMs();
        // Bounded wait for the transfer to show (or not) before the next one.
        for (let poll = 0; poll < 20 && this.options.nowMs() - started < 2000; poll++) {
          await chaos.monitor.pollNow();
          if (chaos.monitor.leader() === to) break;
          await sleep(100);
        }
        const moved = chaos.monitor.leader() === to;
        if (moved) done++;
        record.notes.push(`${leader} → ${to}: ${moved ? "done" : `leader now ${chaos.monitor.leader() ?? "none"}`}`);
      } catch (error) {
        record.notes.push(`${leader} → ${to} refused: ${(error as Error).message}`);
      }
      await sleep(Math.max(0, Math.min(700, endAtMs - this.options.nowMs())), this.healing.signal);
    }
    record.effective = done > 0;
  }

  private shuffle(ids: readonly string[]): string[] {
    const shuffled = [...ids];
    for (let position = shuffled.length - 1; position > 0; position--) {
      const other = this.random.nextInt(position + 1);
      [shuffled[position], shuffled[other]] = [shuffled[other] as string, shuffled[position] as string];
    }
    return shuffled;
  }
}
