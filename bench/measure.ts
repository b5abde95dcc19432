// What every benchmark here measures the same way: percentiles of sorted latencies, and a
// process's CPU time from /proc (Linux).

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** percentile of an ascending array (nearest rank); NaN when it is empty. */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] as number;
}

export const clockTicksPerSecond = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

/** readProcStat returns a process's parent and its user + system CPU in ms so far, or undefined if it is gone. */
export function readProcStat(pid: number): { parent: number; cpuMs: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces and parentheses: fields are counted after its last ")".
    const fields = text.slice(text.lastIndexOf(")") + 2).split(" "); // fields[0] is field 3, `state`.
    const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime (fields 14 and 15)
    return { parent: Number(fields[1]), cpuMs: (ticks * 1000) / clockTicksPerSecond };
  } catch {
    return undefined;
  }
}
