// makeLogger: the lock node's pino logger, as both of its threads use it (main.ts, raft-thread.ts).
// Each thread has its own buffered destinations on the same stdout and log file: each write is a
// whole number of lines, appended (O_APPEND), so the two threads' lines never mix within a line.

import { destination, type Logger, multistream, pino, transport as pinoTransport } from "pino";
import type { NodeConfig } from "./config.ts";

/**
 * logBuffering: lines are written in chunks of at least 32 KiB (about 120 lines), so a busy leader
 * makes one write where 4 KiB chunks made eight; the flush below still bounds how long a line waits.
 * sonic-boom requires minLength below maxWrite.
 */
const logBuffering = { sync: false, minLength: 32 * 1024, maxWrite: 64 * 1024 } as const;

/** flushers: each logger's synchronous flush of its buffered destinations (flushLogs). */
const flushers = new WeakMap<Logger, () => void>();

export function makeLogger(config: Pick<NodeConfig, "nodeId" | "logPretty" | "logFile">): Logger {
  const streams: { stream: NodeJS.WritableStream | ReturnType<typeof destination> }[] = [];
  const buffered: ReturnType<typeof destination>[] = [];
  if (config.logPretty) {
    // pino-pretty is loaded only when asked for: production logs stay JSON.
    streams.push({ stream: pinoTransport({ target: "pino-pretty", options: { colorize: true } }) });
  } else {
    // Buffered, asynchronous writes: a synchronous write per line cost ~15% of a busy leader's CPU.
    buffered.push(destination({ dest: 1, ...logBuffering }));
  }
  if (config.logFile !== undefined) buffered.push(destination({ dest: config.logFile, ...logBuffering, mkdir: true }));
  for (const stream of buffered) streams.push({ stream });
  // A quiet node must not sit on its last lines: whatever is buffered goes out within half a second.
  setInterval(() => {
    for (const stream of buffered) stream.flush();
  }, 500).unref();
  const logger = pino(
    { base: { service: "lock-node", nodeId: config.nodeId }, timestamp: pino.stdTimeFunctions.isoTime },
    multistream(streams),
  );
  flushers.set(logger, () => {
    for (const stream of buffered) {
      try {
        stream.flushSync();
      } catch {
        // A destination that is not open yet has nothing to lose.
      }
    }
  });
  return logger;
}

/**
 * flushLogs writes what the logger still buffers, synchronously, before the thread or process
 * ends (pino's own `flush` does nothing for a multistream).
 */
export function flushLogs(logger: Logger): void {
  flushers.get(logger)?.();
}
