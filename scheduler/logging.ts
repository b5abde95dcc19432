// The scheduler's two log streams in one pino logger (docs/LOGGING.md): application lines, and
// audit records at the custom level `audit`, written as `"level": "AUDIT"` in the lab's shape.
// Every line goes to stdout (JSON, or human-readable when asked) and to app.log.
//
// A booking writes eight lines (the lab's key points), so how they are written shows in the
// scheduler's CPU per booking: both destinations are written asynchronously and in batches of at
// least `batchBytesMin`, never one system call per line. A batch waits at most `flushIntervalMs`;
// a warning or worse is written at once; `flush()` writes everything synchronously (on stop, and
// on the fatal exits), and pino writes what is left when the process exits normally.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import pino, { type Logger } from "pino";

export type SchedulerLogger = Logger<"audit">;

const auditLevel = 35;
const warnLevel = 40;
/** batchBytesMin: about a dozen lines; a busy scheduler fills it many times within flushIntervalMs. */
const batchBytesMin = 4096;
/** flushIntervalMs bounds how late a line of a quiet scheduler reaches its destinations. */
const flushIntervalMs = 100;

/** Destination is what the tee needs of a stream: SonicBoom (pino.destination) or any Writable. */
interface Destination {
  write(line: string): unknown;
  flush?(): void;
  flushSync?(): void;
}

export function createSchedulerLogger(options: {
  readonly logDir: string;
  readonly pretty: boolean;
  readonly instanceId: string;
  /** stdout: where the console stream goes (tests pass their own; it is written synchronously). */
  readonly stdout?: NodeJS.WritableStream;
}): { log: SchedulerLogger; flush: () => void; logFile: string } {
  mkdirSync(options.logDir, { recursive: true });
  const logFile = join(options.logDir, "app.log");
  const file = pino.destination({ dest: logFile, sync: false, mkdir: true, minLength: batchBytesMin });
  let console: Destination;
  if (options.pretty) {
    console = pino.transport({
      target: "pino-pretty",
      options: { colorize: false, translateTime: "SYS:isoTime", customLevels: "audit:35" },
    }) as NodeJS.WritableStream;
  } else if (options.stdout !== undefined) {
    console = options.stdout;
  } else {
    // Not process.stdout: to a file or a pipe that writes synchronously, one system call per line.
    console = pino.destination({ dest: 1, sync: false, minLength: batchBytesMin });
  }
  const batched: Destination[] = [file, ...(console === options.stdout || options.pretty ? [] : [console])];
  let unflushed = false;
  const flushAsync = (): void => {
    unflushed = false;
    for (const destination of batched) destination.flush?.();
  };
  const timer = setInterval(() => {
    if (unflushed) flushAsync();
  }, flushIntervalMs);
  timer.unref();
  // One line, serialized once, to both destinations. pino sets `lastLevel` on a stream that asks
  // for it (needsMetadata) before each write.
  const tee = {
    [pino.symbols.needsMetadataGsym]: true,
    lastLevel: 0,
    write(line: string): void {
      console.write(line);
      file.write(line);
      if (this.lastLevel >= warnLevel) flushAsync();
      else unflushed = true;
    },
  };
  const log = pino<"audit">(
    {
      customLevels: { audit: auditLevel },
      base: { service: "scheduler", instance: options.instanceId, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label, number) => ({ level: label === "audit" ? "AUDIT" : number }) },
    },
    tee,
  );
  const flush = (): void => {
    unflushed = false;
    for (const destination of batched) destination.flushSync?.();
  };
  return { log, flush, logFile };
}
