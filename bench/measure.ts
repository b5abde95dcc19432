// What every benchmark here measures the same way: percentiles of sorted latencies, and a
// process's CPU time from /proc (Linux).

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import type { BookingSystem } from "../harness/booking-system.ts";

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

/**
 * processCpuMs is a running process's user + system CPU in ms so far. It throws when the process is
 * gone or `pid` names none: CPU that cannot be read is not zero CPU. Counting it as zero once put
 * the nodes of a bench:bookings row at −5.10 ms per booking: a node's PID was asked of its /status
 * at each end of the run, and the only way the sum can go back is that one such request failed
 * (it gives up after 1 s, and under load a node can take longer), so its PID read as 0 and its CPU
 * (−5.10 ms × 4,851 bookings: about 25 s, a node's whole life so far) as none.
 */
export function processCpuMs(pid: number, what: string): number {
  const stat = pid > 0 ? readProcStat(pid) : undefined;
  if (stat === undefined) throw new Error(`cannot read the CPU time of ${what} (pid ${pid}): no such process`);
  return stat.cpuMs;
}

/** processesCpuMs: the CPU so far of every process named, summed (processCpuMs for each). */
export function processesCpuMs(pids: ReadonlyMap<string, number>): number {
  let total = 0;
  for (const [what, pid] of pids) total += processCpuMs(pid, what);
  return total;
}

/** BookingSystemPids: the processes of a booking system, by role and name ("node n1", "scheduler 2"). */
export interface BookingSystemPids {
  readonly schedulers: ReadonlyMap<string, number>;
  readonly nodes: ReadonlyMap<string, number>;
}

/**
 * bookingSystemPids names a booking system's processes from the harness that started them: never
 * over HTTP (a /status that timed out under load gave no PID). Take them once and read the CPU of
 * the same PIDs at both ends of a run: a process gone meanwhile then fails the run loudly.
 */
export function bookingSystemPids(system: Pick<BookingSystem, "cluster" | "schedulerPids">): BookingSystemPids {
  const nodes = new Map<string, number>();
  for (const id of system.cluster.ids()) {
    const pid = system.cluster.pid(id);
    if (pid === undefined) throw new Error(`node ${id} is not running`);
    nodes.set(`node ${id}`, pid);
  }
  const schedulers = new Map(system.schedulerPids().map((pid, position) => [`scheduler ${position + 1}`, pid] as const));
  return { schedulers, nodes };
}
