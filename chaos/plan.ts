// The nemesis's schedule: which faults a history gets, when, for how long and with what
// parameters, drawn from a seeded random source. The plan is a pure function of (run seed,
// history number, options), so `--seed S --history N` replays the same schedule (the processes'
// timing, of course, is the machine's). What "the leader" or "one node" is gets decided when the
// fault starts, from the cluster as it is then.
//
// Kinds come from a deck: the run deals every enabled kind once, in a shuffled order, then again,
// so that a run's first k histories of s faults each cover every kind once k·s reaches the number
// of kinds (the first three histories cover all seven), and any window of twice that does too
// (any five histories in a row). Membership changes and leadership transfers
// always run during another fault, as the issue asks.

import { createSeededRandom } from "../raft/index.ts";

export const faultKinds = ["kill", "pause", "partition", "clock", "disk", "membership", "transfer"] as const;
export type FaultKind = (typeof faultKinds)[number];

export const faultVariants = {
  kill: ["one", "leader", "majority", "all"],
  pause: ["one", "leader"],
  partition: ["one-way", "majority-minority", "bridge", "isolate-leader"],
  clock: ["step-forward", "step-back", "strobe"],
  disk: ["full", "slow-fsync"],
  membership: ["add", "remove", "replace-leader"],
  transfer: ["transfer"],
} as const satisfies Record<FaultKind, readonly string[]>;

export type Workload = "lock-set" | "bookings";

/** Target: which node a fault hits, decided when it starts. */
export type Target = "leader" | "one" | "all";

export interface FaultPlan {
  readonly kind: FaultKind;
  readonly variant: string;
  /** startMs: from the start of the history's workload. */
  readonly startMs: number;
  readonly durationMs: number;
  readonly target: Target;
  /** clockOffsetSeconds: the step (clock step-*), or the strobe's amplitude. */
  readonly clockOffsetSeconds?: number;
  /** strobePeriodMs: how often a strobing clock flips. */
  readonly strobePeriodMs?: number;
  /** fsyncDelayMs: each fsync's extra wait (disk slow-fsync). */
  readonly fsyncDelayMs?: number;
  /** transfers: how many leadership transfers (transfer). */
  readonly transfers?: number;
  /** pick: a number in [0, 1) that picks "one" node, a direction or a side, when the fault starts. */
  readonly pick: number;
}

export interface HistoryPlan {
  readonly runSeed: number;
  readonly index: number;
  /** seed: this history's own seed (workload choices, client pauses). */
  readonly seed: number;
  readonly workload: Workload;
  readonly durationMs: number;
  /** healAtMs: every fault is over and healed by then; the rest is the recovery window. */
  readonly healAtMs: number;
  readonly faults: readonly FaultPlan[];
  readonly unfenced: boolean;
}

export interface PlanOptions {
  readonly kinds: readonly FaultKind[];
  readonly workloads: readonly Workload[];
  readonly historyMs: number;
  readonly faultsPerHistory: number;
  readonly leaseTtlMs: number;
  readonly unfenced: boolean;
}

const warmUpMs = 2000;
const recoveryMs = 4000;
/** gapMs: at least this much quiet between one fault's end and the next one's start. */
const gapMs = 700;

/** deal returns the kinds of fault slot `slot` onwards: the run's deck, reshuffled every time it is used up. */
export function dealKinds(runSeed: number, kinds: readonly FaultKind[], firstSlot: number, count: number): FaultKind[] {
  const random = createSeededRandom(runSeed ^ 0x5eed_dec4);
  const dealt: FaultKind[] = [];
  const slotsNeeded = firstSlot + count;
  for (let round = 0; dealt.length < slotsNeeded && round < slotsNeeded; round++) {
    const deck = [...kinds];
    for (let position = deck.length - 1; position > 0; position--) {
      const other = random.nextInt(position + 1);
      [deck[position], deck[other]] = [deck[other] as FaultKind, deck[position] as FaultKind];
    }
    dealt.push(...deck);
  }
  return dealt.slice(firstSlot, slotsNeeded);
}

/** historySeed derives a history's seed from the run's (splitmix-style), so neighbouring histories differ. */
export function historySeed(runSeed: number, index: number): number {
  let value = (runSeed + Math.imul(index + 1, 0x9e37_79b9)) >>> 0;
  value = Math.imul(value ^ (value >>> 16), 0x85eb_ca6b) >>> 0;
  value = Math.imul(value ^ (value >>> 13), 0xc2b2_ae35) >>> 0;
  return (value ^ (value >>> 16)) >>> 0;
}

export function makeHistoryPlan(runSeed: number, index: number, options: PlanOptions): HistoryPlan {
  if (options.kinds.length === 0) throw new Error("no fault kinds enabled");
  const seed = historySeed(runSeed, index);
  const random = createSeededRandom(seed);
  const slots = options.faultsPerHistory;
  const healAtMs = options.historyMs - recoveryMs;
  const slotMs = (healAtMs - warmUpMs) / slots;
  const kinds = dealKinds(runSeed, options.kinds, index * slots, slots);
  const faults: FaultPlan[] = [];
  for (const [slot, kind] of kinds.entries()) {
    const slotStartMs = warmUpMs + slot * slotMs;
    const roomMs = slotMs - gapMs;
    const main = drawFault(kind, random, options.leaseTtlMs);
    const startMs = Math.round(slotStartMs + random.nextFloat() * Math.min(400, roomMs / 4));
    const durationMs = Math.round(Math.min(main.durationMs, slotStartMs + roomMs - startMs));
    faults.push({ ...main, startMs, durationMs });
    if (kind === "membership" || kind === "transfer") {
      // Membership changes and transfers run during another fault.
      const others = options.kinds.filter((other) => other !== "membership" && other !== "transfer");
      if (others.length > 0) {
        const other = drawFault(others[random.nextInt(others.length)] as FaultKind, random, options.leaseTtlMs);
        faults.push({ ...other, startMs: Math.max(warmUpMs, startMs - 300), durationMs: Math.min(other.durationMs, durationMs) });
      }
    }
  }
  // Every third history books through the schedulers (when both workloads are on); --unfenced is about the lock-set.
  let workload: Workload = "lock-set";
  if (!options.unfenced && options.workloads.includes("bookings")) {
    workload = !options.workloads.includes("lock-set") || index % 3 === 2 ? "bookings" : "lock-set";
  }
  return { runSeed, index, seed, workload, durationMs: options.historyMs, healAtMs, faults, unfenced: options.unfenced };
}

/** drawFault draws a fault's variant, target and parameters (its start is set by the caller). */
function drawFault(kind: FaultKind, random: ReturnType<typeof createSeededRandom>, leaseTtlMs: number): Omit<FaultPlan, "startMs"> {
  const variants: readonly string[] = faultVariants[kind];
  const variant = variants[random.nextInt(variants.length)] as string;
  const between = (low: number, high: number): number => Math.round(low + random.nextFloat() * (high - low));
  const targets: Target[] = ["leader", "one"];
  const pick = random.nextFloat();
  switch (kind) {
    case "kill":
      return { kind, variant, durationMs: between(1500, 4000), target: variant === "leader" ? "leader" : "one", pick };
    case "pause":
      // Longer than a lease's TTL: the paused node's leases must expire (or its writes be fenced).
      return { kind, variant, durationMs: leaseTtlMs + between(500, 2000), target: variant === "leader" ? "leader" : "one", pick };
    case "partition":
      return { kind, variant, durationMs: between(2000, 4500), target: variant === "isolate-leader" ? "leader" : "one", pick };
    case "clock": {
      const target: Target = random.nextInt(3) === 0 ? "all" : (targets[random.nextInt(2)] as Target);
      const minutes = between(2, 10);
      if (variant === "strobe") {
        return {
          kind,
          variant,
          durationMs: between(2000, 4000),
          target,
          clockOffsetSeconds: between(1, 300),
          strobePeriodMs: between(20, 200),
          pick,
        };
      }
      return {
        kind,
        variant,
        durationMs: between(2000, 4000),
        target,
        clockOffsetSeconds: (variant === "step-back" ? -60 : 60) * minutes,
        pick,
      };
    }
    case "disk":
      if (variant === "slow-fsync") {
        const target: Target = random.nextInt(3) === 0 ? "all" : (targets[random.nextInt(2)] as Target);
        return { kind, variant, durationMs: between(2500, 4500), target, fsyncDelayMs: between(20, 250), pick };
      }
      return { kind, variant, durationMs: between(2000, 4000), target: targets[random.nextInt(2)] as Target, pick };
    case "membership":
      return { kind, variant, durationMs: between(3000, 4500), target: variant === "replace-leader" ? "leader" : "one", pick };
    case "transfer":
      return { kind, variant, durationMs: between(2000, 4000), target: "one", transfers: between(1, 3), pick };
  }
}

/** describeFault is a fault in words, for logs and reports. */
export function describeFault(fault: FaultPlan): string {
  const parts = [`${fault.kind} ${fault.variant}`];
  if (fault.kind === "clock") {
    parts.push(
      fault.variant === "strobe"
        ? `±${fault.clockOffsetSeconds} s every ${fault.strobePeriodMs} ms`
        : `${(fault.clockOffsetSeconds ?? 0) > 0 ? "+" : ""}${(fault.clockOffsetSeconds ?? 0) / 60} min`,
    );
  }
  if (fault.fsyncDelayMs !== undefined) parts.push(`+${fault.fsyncDelayMs} ms per fsync`);
  if (fault.transfers !== undefined) parts.push(`${fault.transfers}×`);
  if (fault.kind === "clock" || fault.kind === "disk") parts.push(`on ${fault.target === "all" ? "every node" : fault.target}`);
  parts.push(`for ${(fault.durationMs / 1000).toFixed(1)} s`);
  return parts.join(", ");
}
