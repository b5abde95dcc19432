// The scheduler's two log streams in one pino logger (docs/LOGGING.md): application lines, and
// audit records at the custom level `audit`, written as `"level": "AUDIT"` in the lab's shape.
// Every line goes to stdout (JSON, or human-readable when asked) and to app.log.
//
// A booking writes eight lines (the lab's key points), so how they are written shows in the
// scheduler's CPU per booking: lines are serialized once and gathered here into batches of about
// `batchCharsMin`; each batch is one write per destination, never one system call per line.
// app.log is written asynchronously, so a busy disk never holds up the event loop; each such write
// goes through libuv's thread pool, which costs about ten times a synchronous write of the same
// 4 KiB here (≈50 µs against ≈5 µs), hence batches of 16 KiB. stdout is written synchronously, as
// Node writes it to a file or a pipe anyway. A batch waits at most `flushIntervalMs`; a warning or
// worse goes out at once; `flush()` writes what is pending (on stop, on the fatal exits, and when
// the process exits).

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import pino, { type Logger } from "pino";

export type SchedulerLogger = Logger<"audit">;

const auditLevel = 35;
const warnLevel = 40;
/** batchCharsMin: about fifty lines, six bookings; a busy scheduler fills it many times within flushIntervalMs. */
const batchCharsMin = 16_384;
/** flushIntervalMs bounds how late a line of a quiet scheduler reaches its destinations. */
const flushIntervalMs = 100;

/** Destination is what the batcher needs of a stream: SonicBoom (pino.destination) or any Writable. */
interface Destination {
  write(text: string): unknown;
  flushSync?(): void;
}

/** flushers: every logger's flush, run when the process exits (an uncaught error included). */
const flushers = new Set<() => void>();
process.on("exit", () => {
  for (const flush of flushers) {
    try {
      flush();
    } catch {
      // A log file not yet open (or already closed) must not replace the exit's own reason.
    }
  }
});

/** isoTimeOncePerMs is pino's isoTime, formatted once per millisecond: a booking's lines mostly share one. */
function isoTimeOncePerMs(): () => string {
  let lastMs = Number.NaN;
  let lastText = "";
  return () => {
    const nowMs = Date.now();
    if (nowMs !== lastMs) {
      lastMs = nowMs;
      lastText = `,"time":"${new Date(nowMs).toISOString()}"`;
    }
    return lastText;
  };
}

export function createSchedulerLogger(options: {
  readonly logDir: string;
  readonly pretty: boolean;
  readonly instanceId: string;
  /** stdout: where the console stream goes (tests pass their own; it gets every line at once). */
  readonly stdout?: NodeJS.WritableStream;
}): { log: SchedulerLogger; flush: () => void; logFile: string } {
  mkdirSync(options.logDir, { recursive: true });
  const logFile = join(options.logDir, "app.log");
  // The batching is done here, not by SonicBoom's minLength: it measures its whole pending buffer
  // (Buffer.byteLength) on every line.
  const file = pino.destination({ dest: logFile, sync: false, mkdir: true });
  const batched: Destination[] = [file];
  let immediate: Destination | undefined;
  if (options.pretty) {
    immediate = pino.transport({
      target: "pino-pretty",
      options: { colorize: false, translateTime: "SYS:isoTime", customLevels: "audit:35" },
    }) as NodeJS.WritableStream;
  } else if (options.stdout !== undefined) {
    immediate = options.stdout;
  } else {
    // Not process.stdout: it would write each line with a system call of its own.
    batched.push(pino.destination({ dest: 1, sync: true }));
  }
  let pending = "";
  const writePending = (): void => {
    if (pending === "") return;
    const batch = pending;
    pending = "";
    for (const destination of batched) destination.write(batch);
  };
  const timer = setInterval(writePending, flushIntervalMs);
  timer.unref();
  // pino sets `lastLevel` on a stream that asks for it (needsMetadata) before each write.
  const stream = {
    [pino.symbols.needsMetadataGsym]: true,
    lastLevel: 0,
    write(line: string): void {
      immediate?.write(line);
      pending += line;
      if (pending.length >= batchCharsMin || this.lastLevel >= warnLevel) writePending();
    },
  };
  const log = pino<"audit">(
    {
      customLevels: { audit: auditLevel },
      base: { service: "scheduler", instance: options.instanceId, pid: process.pid },
      timestamp: isoTimeOncePerMs(),
      formatters: { level: (label, number) => ({ level: label === "audit" ? "AUDIT" : number }) },
    },
    stream,
  );
  const flush = (): void => {
    writePending();
    for (const destination of batched) destination.flushSync?.();
  };
  flushers.add(flush);
  return { log, flush, logFile };
}
