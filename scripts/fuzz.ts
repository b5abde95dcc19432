// `npm run fuzz`: hostile and almost-valid requests against a real lock cluster (three node
// processes) and a real booking API, on free loopback ports (issue 14). Seeded and bounded in
// count and time; it checks every answer (scripts/fuzz/check.ts) and the system after the run
// (scripts/fuzz/system.ts), prints the statuses per endpoint, saves the findings with a one-line
// reproduction under test-results/fuzz/, and exits non-zero if anything failed.
//
//   npm run fuzz                                   10,000 requests, a fresh random seed (printed)
//   npm run fuzz -- --requests 100000 --seed 7     more, reproducibly
//   npm run fuzz -- --seed 7 --replay 1234,99      send only those requests (to a fresh system) and show them

import { randomInt } from "node:crypto";
import { parseArgs } from "node:util";
import { z } from "zod";
import type { FuzzRequest } from "./fuzz/generate.ts";
import { curlLine, writeReport } from "./fuzz/report.ts";
import { runFuzz } from "./fuzz/run.ts";
import { endChecks, startFuzzSystem } from "./fuzz/system.ts";

const optionsSchema = z.strictObject({
  requests: z.coerce.number().int().min(1).max(10_000_000).default(10_000),
  seconds: z.coerce
    .number()
    .int()
    .min(1)
    .max(24 * 3600)
    .default(1800),
  concurrency: z.coerce.number().int().min(1).max(256).default(16),
  seed: z.coerce.number().int().min(0).max(0xffff_ffff).optional(),
  replay: z
    .string()
    .regex(/^\d+(,\d+)*$/, "request numbers, separated by commas")
    .transform((text) => text.split(",").map(Number))
    .optional(),
  "timeout-ms": z.coerce.number().int().min(1000).max(600_000).default(70_000),
  out: z.string().min(1).default("test-results/fuzz"),
});

/** describeRequest: a request curl cannot say (raw bytes, control characters), as JSON. */
function describeRequest(request: FuzzRequest): string {
  const text = (value: string | Uint8Array | undefined) =>
    value === undefined ? undefined : Buffer.from(value).toString("latin1").slice(0, 600);
  return request.raw !== undefined
    ? `raw bytes to ${request.baseUrl}: ${JSON.stringify(text(request.raw.bytes))}`
    : `${request.method} ${request.baseUrl}${request.path.slice(0, 300)} headers ${JSON.stringify(request.headers).slice(0, 600)} body ${JSON.stringify(text(request.body))}`;
}

function log(text: string): void {
  process.stdout.write(`${text}\n`);
}

async function main(): Promise<number> {
  let parsed: z.output<typeof optionsSchema>;
  try {
    const { values } = parseArgs({
      args: process.argv.slice(2),
      options: Object.fromEntries(Object.keys(optionsSchema.shape).map((name) => [name, { type: "string" as const }])),
      strict: true,
      allowPositionals: false,
    });
    parsed = optionsSchema.parse(values);
  } catch (error) {
    const message =
      error instanceof z.ZodError
        ? error.issues.map((issue) => `--${issue.path.join(".")}: ${issue.message}`).join("; ")
        : (error as Error).message;
    process.stderr.write(
      `npm run fuzz: ${message}\nusage: npm run fuzz -- [--requests N] [--seconds S] [--concurrency C] [--seed S] [--replay N,M] [--timeout-ms T] [--out DIR]\n`,
    );
    return 2;
  }
  const seed = parsed.seed ?? randomInt(0x7fff_ffff);
  const startedAt = new Date();
  log(`fuzz: seed ${seed}; starting three lock nodes and a booking API on free loopback ports…`);
  const fuzz = await startFuzzSystem();
  // Ctrl-C or a kill stops the processes this run started before it exits.
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      log(`fuzz: ${signal}: stopping the system`);
      void fuzz.stop().finally(() => process.exit(130));
    });
  }
  try {
    log(`fuzz: nodes ${fuzz.fixtures.nodes.map((node) => node.url).join(" ")}, booking API ${fuzz.fixtures.schedulerUrl}`);
    if (parsed.replay !== undefined) {
      const result = await runFuzz(fuzz.fixtures, {
        seed,
        requests: parsed.replay.length,
        seconds: parsed.seconds,
        // One at a time unless asked: a replay shows each answer in order.
        concurrency: process.argv.includes("--concurrency") ? parsed.concurrency : 1,
        timeoutMs: parsed["timeout-ms"],
        only: parsed.replay,
        exited: () => fuzz.system.exited(),
        onAnswer: (request, answer, findings) => {
          log(`\n#${request.index} ${request.endpoint} (${request.mutation}, credentials ${request.credentials})`);
          log(`  ${curlLine(request) ?? describeRequest(request)}`);
          log(`  → ${answer.status ?? answer.failure} in ${answer.elapsedMs.toFixed(0)} ms: ${answer.body.slice(0, 600)}`);
          for (const finding of findings) log(`  ✗ ${finding.kind}: ${finding.detail}`);
        },
      });
      return result.findingsTotal === 0 && result.exited.length === 0 ? 0 : 1;
    }
    log(`fuzz: sending up to ${parsed.requests} requests (at most ${parsed.seconds} s, ${parsed.concurrency} at a time)`);
    const result = await runFuzz(fuzz.fixtures, {
      seed,
      requests: parsed.requests,
      seconds: parsed.seconds,
      concurrency: parsed.concurrency,
      timeoutMs: parsed["timeout-ms"],
      exited: () => fuzz.system.exited(),
      onProgress: ({ sent, elapsedMs, findings, oldest }) => {
        const waiting =
          oldest !== undefined && oldest.ageMs > 10_000
            ? `; waiting ${(oldest.ageMs / 1000).toFixed(0)} s for #${oldest.index} ${oldest.endpoint} (${oldest.mutation})`
            : "";
        const rate = Math.round(sent / (elapsedMs / 1000));
        log(
          `[${(elapsedMs / 1000).toFixed(1).padStart(6)} s] ${sent} / ${parsed.requests} requests, ${rate}/s, findings ${findings}${waiting}`,
        );
      },
    });
    log("fuzz: checking the system after the run…");
    const checks = await endChecks(fuzz);
    const report = writeReport(parsed.out, { seed, requests: parsed.requests, concurrency: parsed.concurrency, startedAt }, result, checks);
    log(`\n${report.text}\n\nreport and findings: ${report.directory}`);
    const failed = checks.filter((check) => !check.ok).length;
    log(
      `${result.findingsTotal === 0 && failed === 0 ? "PASSED" : "FAILED"}: ${result.findingsTotal} findings, ${failed} failed checks (seed ${seed})`,
    );
    return result.findingsTotal === 0 && failed === 0 ? 0 : 1;
  } finally {
    await fuzz.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`npm run fuzz: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
