// The scheduler's configuration, from the environment (SCHEDULER_*), validated with zod at
// startup. Every problem is reported at once, naming the variable to fix. How the sources are
// read and the problems reported is config/load-config.ts's, shared with the lock node.

import { z } from "zod";
import { integerSetting as integer, listenSetting, loadConfig, type SettingSource } from "../config/load-config.ts";
import { plainListenProblem } from "../config/tls.ts";
import type { Telescope } from "./slots.ts";

const telescopeSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, "lower-case letters, digits and dashes"),
    name: z.string().min(1).max(120),
    slotMinutes: z
      .number()
      .int()
      .min(1)
      .max(1440)
      .refine((minutes) => 1440 % minutes === 0, "must divide a day"),
    horizonDays: z.number().int().min(1).max(366).default(30),
    /** horizonBlockMinutes: slots open for booking in blocks this long (default: one slot, a rolling horizon). */
    horizonBlockMinutes: z
      .number()
      .int()
      .min(1)
      .max(1440)
      .refine((minutes) => 1440 % minutes === 0, "must divide a day")
      .optional(),
    slotsPerBookingMax: z.number().int().min(1).max(48).default(12),
  })
  .strict()
  .refine((telescope) => telescope.horizonBlockMinutes === undefined || telescope.horizonBlockMinutes % telescope.slotMinutes === 0, {
    message: "horizonBlockMinutes must be a whole number of slots",
    path: ["horizonBlockMinutes"],
  })
  .transform((telescope) => ({ ...telescope, horizonBlockMinutes: telescope.horizonBlockMinutes ?? telescope.slotMinutes }));

const defaultTelescopes: Telescope[] = [
  { id: "hubble-acad", name: "Hubble Acad", slotMinutes: 5, horizonDays: 30, horizonBlockMinutes: 5, slotsPerBookingMax: 12 },
  { id: "webb-acad", name: "Webb Acad", slotMinutes: 10, horizonDays: 30, horizonBlockMinutes: 10, slotsPerBookingMax: 12 },
];

export const schedulerConfigSchema = z
  .object({
    listen: listenSetting,
    /** nodes: base URLs of lock nodes, any subset of the cluster. */
    nodes: z
      .string()
      .min(1)
      .transform((text) => text.split(",").map((url) => url.trim()))
      .pipe(z.array(z.string().regex(/^https?:\/\/[^/]+$/, "each node is http://host:port")).min(1)),
    apiToken: z.string().min(16, "must be at least 16 characters (the lock cluster's API token)"),
    telescopes: z
      .string()
      .optional()
      .transform((text, context) => {
        if (text === undefined || text.trim() === "") return defaultTelescopes;
        try {
          return JSON.parse(text) as unknown;
        } catch {
          context.addIssue({ code: "custom", message: "is not JSON" });
          return z.NEVER;
        }
      })
      .pipe(z.array(telescopeSchema).min(1)),
    /** locking: "off" reproduces the lab's delivery 2 (no slot leases: the race becomes visible). */
    locking: z.enum(["on", "off"]),
    leaseTtlMs: integer(1000, 600_000),
    /** clusterTimeoutMs bounds each call to the cluster (after its own retries the answer is 503). */
    clusterTimeoutMs: integer(100, 60_000),
    rateLimitPerMinute: integer(1, 1_000_000),
    rateLimitPerAddressPerMinute: integer(1, 10_000_000),
    /** registrationsPerAddressPerHour: POST /scientists per client address and hour (each makes an account and a key). */
    registrationsPerAddressPerHour: integer(1, 10_000_000),
    /** clusterRetriesMax: retries of one cluster call (other nodes, backoff) before the answer is 503. */
    clusterRetriesMax: integer(0, 20),
    bodyBytesMax: integer(1024, 1024 * 1024),
    /** requestQueueMax: requests served at once; one more is answered 503 overloaded with Retry-After (middleware.ts RequestQueue). */
    requestQueueMax: integer(1, 1_000_000),
    /** overloadRetryAfterMs: the wait an overloaded answer asks for (Retry-After in whole seconds, at least 1). */
    overloadRetryAfterMs: integer(0, 60_000),
    logDir: z.string().min(1),
    logPretty: z.enum(["true", "false"]).transform((value) => value === "true"),
    instanceId: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
    /** auditVerifyRecordsMax bounds how many chain records one GET /audit verifies (later requests go on). */
    auditVerifyRecordsMax: integer(100, 10_000_000),
    /** eventsKeptMax: recent booking events kept for WebSocket clients that resume (`?after=`). */
    eventsKeptMax: integer(10, 1_000_000),
    /** pauseBeforeWriteMs: a test hook; the process blocks this long (event loop included) between the checks and the write. */
    pauseBeforeWriteMs: integer(0, 600_000),
    /** unlockedWriteDelayMs: with SCHEDULER_LOCKING=off only, an asynchronous wait between the check and the write. */
    unlockedWriteDelayMs: integer(0, 60_000),
    /** clockOffsetMs: a test hook; this scheduler's clock runs this far from the machine's (GET /time, the rules, the records). */
    clockOffsetMs: z.coerce
      .number()
      .int()
      .min(-366 * 86_400_000)
      .max(366 * 86_400_000),
    /** tlsCertFile, tlsKeyFile: serve the booking API over HTTPS (both, with the CA). */
    tlsCertFile: z.string().min(1).optional(),
    tlsKeyFile: z.string().min(1).optional(),
    /** tlsCaFile: the CA the nodes' certificates (and this scheduler's) come from; needed for https:// nodes. */
    tlsCaFile: z.string().min(1).optional(),
    /** insecure: listen beyond loopback without TLS, on purpose. */
    insecure: z.enum(["true", "false"]).transform((value) => value === "true"),
  })
  .strict()
  .superRefine((config, context) => {
    const ids = config.telescopes.map((telescope) => telescope.id);
    if (new Set(ids).size !== ids.length)
      context.addIssue({ code: "custom", path: ["telescopes"], message: "telescope ids must be unique" });
    checkTls(config, context);
  });

/**
 * checkTls: the certificate and key come together, with the CA; https:// nodes need the CA to be
 * checked against; a listen beyond loopback needs TLS or --insecure.
 */
function checkTls(
  config: {
    tlsCertFile?: string | undefined;
    tlsKeyFile?: string | undefined;
    tlsCaFile?: string | undefined;
    insecure: boolean;
    listen: { host: string };
    nodes: readonly string[];
  },
  context: z.RefinementCtx,
): void {
  if ((config.tlsCertFile === undefined) !== (config.tlsKeyFile === undefined)) {
    const missing = config.tlsCertFile === undefined ? "tlsCertFile" : "tlsKeyFile";
    context.addIssue({ code: "custom", path: [missing], message: "HTTPS needs both the certificate and the key file" });
  }
  const serving = config.tlsCertFile !== undefined && config.tlsKeyFile !== undefined;
  if (serving && config.tlsCaFile === undefined) {
    context.addIssue({
      code: "custom",
      path: ["tlsCaFile"],
      message: "is required with the certificate (the CA that issued it and the nodes')",
    });
  }
  if (config.tlsCaFile === undefined && config.nodes.some((url) => url.startsWith("https://"))) {
    context.addIssue({ code: "custom", path: ["tlsCaFile"], message: "is required to check the https:// nodes' certificates" });
  }
  const problem = plainListenProblem(config.listen.host, {
    tls: serving,
    insecure: config.insecure,
    tlsSettings: "SCHEDULER_TLS_CERT_FILE, SCHEDULER_TLS_KEY_FILE and SCHEDULER_TLS_CA_FILE",
    insecureSetting: "--insecure (SCHEDULER_INSECURE=true)",
  });
  if (problem !== undefined) context.addIssue({ code: "custom", path: ["listen"], message: problem });
}

export type SchedulerConfig = z.output<typeof schedulerConfigSchema>;

const sources: Record<keyof z.input<typeof schedulerConfigSchema>, SettingSource> = {
  listen: { env: "SCHEDULER_LISTEN", fallback: "127.0.0.1:8080" },
  nodes: { env: "SCHEDULER_NODES", fallback: "http://127.0.0.1:7001,http://127.0.0.1:7002,http://127.0.0.1:7003" },
  apiToken: { env: "SCTEC_API_TOKEN", secret: true },
  telescopes: { env: "SCHEDULER_TELESCOPES" },
  locking: { env: "SCHEDULER_LOCKING", fallback: "on" },
  leaseTtlMs: { env: "SCHEDULER_LEASE_TTL_MS", fallback: "10000" },
  clusterTimeoutMs: { env: "SCHEDULER_CLUSTER_TIMEOUT_MS", fallback: "3000" },
  rateLimitPerMinute: { env: "SCHEDULER_RATE_LIMIT_PER_MINUTE", fallback: "6000" },
  rateLimitPerAddressPerMinute: { env: "SCHEDULER_RATE_LIMIT_PER_ADDRESS_PER_MINUTE", fallback: "60000" },
  registrationsPerAddressPerHour: { env: "SCHEDULER_REGISTRATIONS_PER_ADDRESS_PER_HOUR", fallback: "100" },
  clusterRetriesMax: { env: "SCHEDULER_CLUSTER_RETRIES_MAX", fallback: "4" },
  bodyBytesMax: { env: "SCHEDULER_BODY_BYTES_MAX", fallback: "16384" },
  requestQueueMax: { env: "SCHEDULER_REQUEST_QUEUE_MAX", fallback: "1024" },
  overloadRetryAfterMs: { env: "SCHEDULER_OVERLOAD_RETRY_AFTER_MS", fallback: "1000" },
  logDir: { env: "SCHEDULER_LOG_DIR", fallback: "." },
  logPretty: { env: "SCHEDULER_LOG_PRETTY", fallback: "false" },
  instanceId: { env: "SCHEDULER_INSTANCE_ID", fallback: `scheduler-${process.pid}` },
  auditVerifyRecordsMax: { env: "SCHEDULER_AUDIT_VERIFY_RECORDS_MAX", fallback: "20000" },
  eventsKeptMax: { env: "SCHEDULER_EVENTS_KEPT_MAX", fallback: "1000" },
  pauseBeforeWriteMs: { env: "SCHEDULER_TEST_PAUSE_BEFORE_WRITE_MS", fallback: "0" },
  unlockedWriteDelayMs: { env: "SCHEDULER_UNLOCKED_WRITE_DELAY_MS", fallback: "0" },
  clockOffsetMs: { env: "SCHEDULER_TEST_CLOCK_OFFSET_MS", fallback: "0" },
  tlsCertFile: { env: "SCHEDULER_TLS_CERT_FILE" },
  tlsKeyFile: { env: "SCHEDULER_TLS_KEY_FILE" },
  tlsCaFile: { env: "SCHEDULER_TLS_CA_FILE" },
  insecure: { env: "SCHEDULER_INSECURE", flag: "insecure", boolean: true, fallback: "false" },
};

export class SchedulerConfigError extends Error {
  readonly code = "invalid_config";
}

/**
 * loadSchedulerConfig reads the environment over the defaults, and one flag, `--insecure`;
 * throws SchedulerConfigError listing every problem.
 */
export function loadSchedulerConfig(env: Readonly<Record<string, string | undefined>>, argv: readonly string[] = []): SchedulerConfig {
  return loadConfig({
    what: "scheduler",
    schema: schedulerConfigSchema,
    sources,
    env,
    argv,
    error: (message) => new SchedulerConfigError(message),
  });
}
