// makeThreadRealtime puts the calling thread under the real-time round-robin policy (SCHED_RR,
// priority 1) with util-linux's `chrt`, for SCTEC_RAFT_REALTIME. Node has no binding for
// sched_setscheduler; `chrt -p` on the thread's own id (Linux: /proc/thread-self) sets it for this
// thread only, not the HTTP thread, the libuv pool or other processes. docs/DESIGN.md
// ("Heartbeats on a thread of their own") says when it is worth it and what it risks.

import { spawnSync } from "node:child_process";
import { readlinkSync } from "node:fs";

/** makeThreadRealtime answers undefined once done, or why it could not (no chrt, no CAP_SYS_NICE, not Linux). */
export function makeThreadRealtime(): string | undefined {
  let threadId: string;
  try {
    threadId = readlinkSync("/proc/thread-self").split("/").at(-1) ?? "";
  } catch (error) {
    return `cannot find this thread's id (/proc/thread-self: ${(error as Error).message}); real-time priority needs Linux`;
  }
  if (!/^\d+$/.test(threadId)) return `cannot read this thread's id from /proc/thread-self ("${threadId}")`;
  const chrt = spawnSync("chrt", ["--rr", "--pid", "1", threadId], { encoding: "utf8", timeout: 5000 });
  if (chrt.error !== undefined) return `cannot run chrt (util-linux): ${chrt.error.message}`;
  if (chrt.status !== 0) {
    return `chrt --rr --pid 1 ${threadId} failed (${chrt.stderr.trim() || `exit ${chrt.status}`}): it needs CAP_SYS_NICE (root, or a container started with --cap-add SYS_NICE)`;
  }
  return undefined;
}
