// The scheduler's two log streams in one pino logger (docs/LOGGING.md): application lines, and
// audit records at the custom level `audit`, written as `"level": "AUDIT"` in the lab's shape.
// Every line goes to stdout (JSON, or human-readable when asked) and to app.log.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import pino, { type Logger } from "pino";

export type SchedulerLogger = Logger<"audit">;

const auditLevel = 35;

export function createSchedulerLogger(options: {
  readonly logDir: string;
  readonly pretty: boolean;
  readonly instanceId: string;
  /** stdout: where the console stream goes (tests pass their own). */
  readonly stdout?: NodeJS.WritableStream;
}): { log: SchedulerLogger; flush: () => void; logFile: string } {
  mkdirSync(options.logDir, { recursive: true });
  const logFile = join(options.logDir, "app.log");
  const file = pino.destination({ dest: logFile, sync: false, mkdir: true });
  const console = options.pretty
    ? (pino.transport({
        target: "pino-pretty",
        options: { colorize: false, translateTime: "SYS:isoTime", customLevels: "audit:35" },
      }) as NodeJS.WritableStream)
    : (options.stdout ?? process.stdout);
  const levels = { ...pino.levels.values, audit: auditLevel };
  const log = pino<"audit">(
    {
      customLevels: { audit: auditLevel },
      base: { service: "scheduler", instance: options.instanceId, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label, number) => ({ level: label === "audit" ? "AUDIT" : number }) },
    },
    pino.multistream(
      [
        { level: "info", stream: console },
        { level: "info", stream: file },
      ],
      { levels },
    ),
  );
  return { log, flush: () => file.flushSync(), logFile };
}
