// The runner's command line: parsed with node:util, every value checked, every problem listed at
// once (exit 2), as the node's configuration does.

import { randomInt } from "node:crypto";
import { parseArgs } from "node:util";
import { type FaultKind, faultKinds, type Workload } from "./plan.ts";

export interface ChaosOptions {
  readonly minutes: number;
  /** histories: at most this many (the time budget may end the run sooner). */
  readonly histories: number;
  readonly seed: number;
  /** onlyHistory: replay this one history of the seed. */
  readonly onlyHistory: number | undefined;
  readonly historySeconds: number;
  readonly faultsPerHistory: number;
  readonly kinds: readonly FaultKind[];
  readonly workloads: readonly Workload[];
  readonly unfenced: boolean;
  readonly out: string;
  readonly keepLogs: boolean;
  readonly leaseTtlMs: number;
  readonly diskMiB: number;
  /** requireAllKinds: fail the run unless every enabled fault kind took effect at least once (CI). */
  readonly requireAllKinds: boolean;
  /** build: run the compiled build (tsconfig.build.json) rather than the sources through tsx. */
  readonly build: boolean;
}

export const usage = `npm run chaos -- [options]

Runs histories of real lock node processes (and schedulers) under a seeded nemesis, checks each,
writes an HTML report per history and a summary (terminal and JSON) under --out.

  --minutes M            time budget; no history starts that would not end within it (default 10)
  --histories N          at most N histories (default: as many as fit in --minutes)
  --seed S               the run's seed (default: random; printed, with how to replay)
  --history I            replay only history I of --seed
  --history-seconds D    each history's workload time, faults and recovery included (default 20, 12 to 300)
  --faults LIST          fault kinds, comma-separated (default: all): ${faultKinds.join(",")}
  --faults-per-history K faults per history (default 3)
  --workload W           lock-set | bookings | both (default both: every third history books)
  --unfenced             the negative control: lock-set writes not guarded by the lock's token (must fail)
  --ttl-ms T             lease TTL of the lock-set workload (default 1000)
  --disk-mib N           each node's tmpfs disk (default 64)
  --out DIR              where reports go (default test-results/chaos)
  --keep-logs            keep node logs of passing histories too
  --require-all-kinds    fail unless every enabled fault kind took effect at least once
  --no-build             run the sources through tsx instead of compiling them once (slower starts)
  --help`;

export class OptionsError extends Error {
  readonly code = "invalid_options";
}

export function parseChaosOptions(argv: readonly string[]): ChaosOptions | "help" {
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        minutes: { type: "string" },
        histories: { type: "string" },
        seed: { type: "string" },
        history: { type: "string" },
        "history-seconds": { type: "string" },
        faults: { type: "string" },
        "faults-per-history": { type: "string" },
        workload: { type: "string" },
        unfenced: { type: "boolean" },
        "ttl-ms": { type: "string" },
        "disk-mib": { type: "string" },
        out: { type: "string" },
        "keep-logs": { type: "boolean" },
        "require-all-kinds": { type: "boolean" },
        "no-build": { type: "boolean" },
        help: { type: "boolean" },
      },
    }).values;
  } catch (error) {
    throw new OptionsError(`${(error as Error).message}\n\n${usage}`);
  }
  if (values["help"] === true) return "help";
  const problems: string[] = [];
  const number = (name: string, fallback: number, min: number, max: number): number => {
    const text = values[name];
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!Number.isFinite(value) || value < min || value > max)
      problems.push(`--${name} must be a number from ${min} to ${max}, got ${String(text)}`);
    return value;
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const value = number(name, fallback, min, max);
    if (!Number.isInteger(value)) problems.push(`--${name} must be a whole number`);
    return value;
  };
  const kinds = parseKinds(values["faults"] as string | undefined, problems);
  const workloadText = (values["workload"] as string | undefined) ?? "both";
  const workloads: Workload[] = workloadText === "both" ? ["lock-set", "bookings"] : [workloadText as Workload];
  if (!["both", "lock-set", "bookings"].includes(workloadText))
    problems.push(`--workload must be lock-set, bookings or both, got ${workloadText}`);
  const options: ChaosOptions = {
    minutes: number("minutes", 10, 0.5, 24 * 60),
    histories: integer("histories", 1_000_000, 1, 1_000_000),
    seed: integer("seed", randomInt(0x7fff_ffff), 0, 0xffff_ffff),
    onlyHistory: values["history"] === undefined ? undefined : integer("history", 0, 0, 1_000_000),
    historySeconds: number("history-seconds", 20, 12, 300),
    faultsPerHistory: integer("faults-per-history", 3, 1, 10),
    kinds,
    workloads,
    unfenced: values["unfenced"] === true,
    out: (values["out"] as string | undefined) ?? "test-results/chaos",
    keepLogs: values["keep-logs"] === true,
    leaseTtlMs: integer("ttl-ms", 1000, 450, 60_000),
    diskMiB: integer("disk-mib", 64, 16, 4096),
    requireAllKinds: values["require-all-kinds"] === true,
    build: values["no-build"] !== true,
  };
  if (options.unfenced && !options.workloads.includes("lock-set")) problems.push("--unfenced needs the lock-set workload");
  if (problems.length > 0) throw new OptionsError(`invalid options:\n  ${problems.join("\n  ")}\n\n${usage}`);
  return options;
}

function parseKinds(text: string | undefined, problems: string[]): FaultKind[] {
  if (text === undefined || text === "all") return [...faultKinds];
  const kinds = text
    .split(",")
    .map((kind) => kind.trim())
    .filter((kind) => kind !== "");
  for (const kind of kinds) {
    if (!(faultKinds as readonly string[]).includes(kind))
      problems.push(`--faults: unknown kind ${kind} (kinds: ${faultKinds.join(", ")})`);
  }
  if (kinds.length === 0) problems.push("--faults: name at least one kind");
  return kinds as FaultKind[];
}
