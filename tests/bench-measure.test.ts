// The CPU accounting the benchmarks share (bench/measure.ts). A process whose CPU cannot be read
// must fail the measurement, never count as zero: bench:bookings once reported the nodes at
// −5.10 ms per booking, when a node's PID (asked of its /status, which timed out under load) came
// back undefined at the end of a run and its CPU was summed as 0.

import { spawn } from "node:child_process";
import { describe, expect, it } from "vitest";
import { bookingSystemPids, processCpuMs, processesCpuMs } from "../bench/measure.ts";
import type { BookingSystem } from "../harness/booking-system.ts";

/** exitedPid: the PID of a child process that has run and exited (and been reaped). */
async function exitedPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid as number;
}

/** fakeSystem: what bookingSystemPids reads of a booking system, with PIDs given. */
function fakeSystem(nodes: Record<string, number | undefined>, schedulers: number[]): Pick<BookingSystem, "cluster" | "schedulerPids"> {
  const cluster = { ids: () => Object.keys(nodes), pid: (id: string) => nodes[id] };
  return { cluster: cluster as unknown as BookingSystem["cluster"], schedulerPids: () => schedulers };
}

describe("bench/measure.ts CPU accounting", () => {
  it("reads a running process's CPU, which never goes back", () => {
    const first = processCpuMs(process.pid, "this test");
    expect(Number.isFinite(first)).toBe(true);
    expect(first).toBeGreaterThanOrEqual(0);
    expect(processCpuMs(process.pid, "this test")).toBeGreaterThanOrEqual(first);
  });

  it("throws, naming the process, for one that is gone or for no PID at all, instead of counting it as no CPU", async () => {
    const gone = await exitedPid();
    expect(() => processCpuMs(gone, "node n2")).toThrow(`cannot read the CPU time of node n2 (pid ${gone})`);
    expect(() => processCpuMs(0, "node n3")).toThrow("node n3 (pid 0)");
    expect(() => processCpuMs(-1, "node n3")).toThrow("node n3 (pid -1)");
  });

  it("a sum over processes fails when one of them is gone, rather than coming out low", async () => {
    const gone = await exitedPid();
    const pids = new Map([
      ["node n1", process.pid],
      ["node n2", gone],
    ]);
    expect(() => processesCpuMs(pids)).toThrow("node n2");
    expect(processesCpuMs(new Map([["node n1", process.pid]]))).toBeGreaterThanOrEqual(0);
  });

  it("names a booking system's processes from the harness, and refuses a node that is not running", () => {
    const pids = bookingSystemPids(fakeSystem({ n1: 101, n2: 102, n3: 103 }, [201, 202]));
    expect([...pids.nodes]).toEqual([
      ["node n1", 101],
      ["node n2", 102],
      ["node n3", 103],
    ]);
    expect([...pids.schedulers]).toEqual([
      ["scheduler 1", 201],
      ["scheduler 2", 202],
    ]);
    expect(() => bookingSystemPids(fakeSystem({ n1: 101, n2: undefined, n3: 103 }, [201]))).toThrow("node n2 is not running");
  });
});
