// Reading a process's configuration: each setting from its flag, else its environment variable,
// else its default, validated with the process's zod schema at startup, and every problem
// reported at once, named by the variable (and flag) to fix. The lock node (node/config.ts) and
// the booking API (scheduler/config.ts) each declare their settings, sources and rules; how the
// sources are read and the problems reported is written once, here.

import { parseArgs } from "node:util";
import { z } from "zod";

/** SettingSource says where one setting comes from: an environment variable, perhaps a flag, perhaps a default. */
export interface SettingSource {
  readonly env: string;
  /** flag: the command-line flag (`--<flag>`) that overrides the variable. */
  readonly flag?: string;
  /** fallback: the text used when neither is given (a setting without one is required). */
  readonly fallback?: string;
}

/** integerSetting is an integer setting given as text, within [min, max]. */
export function integerSetting(min: number, max: number) {
  return z.coerce.number().int().min(min).max(max);
}

/** listenSetting is an address to listen on, `host:port`. */
export const listenSetting = z
  .string()
  .regex(/^[^:]+:\d{1,5}$/, "must be host:port")
  .transform((text) => {
    const [host, port] = text.split(":") as [string, string];
    return { host, port: Number(port) };
  });

export interface LoadConfigOptions<Schema extends z.ZodType<unknown, object>> {
  /** what: the process, as the error message names it ("node", "scheduler"). */
  readonly what: string;
  readonly schema: Schema;
  /** sources: one entry per field of the schema's input, so no setting can lack a source. */
  readonly sources: { readonly [Key in keyof z.input<Schema>]-?: SettingSource };
  readonly env: Readonly<Record<string, string | undefined>>;
  /** argv: the command-line arguments (flags only); none when the process takes no flags. */
  readonly argv?: readonly string[];
  /** error makes the error thrown for a bad configuration (the process's own class, with a stable code). */
  readonly error: (message: string) => Error;
}

/**
 * loadConfig reads every setting (flag over variable over default) and validates them together.
 * It throws `options.error(…)` listing every problem, each as `  VARIABLE / --flag: problem`
 * (`(at a.b)` added for a problem inside a structured value), or naming the bad argument.
 */
export function loadConfig<Schema extends z.ZodType<unknown, object>>(options: LoadConfigOptions<Schema>): z.output<Schema> {
  const sources = Object.entries(options.sources) as [string, SettingSource][];
  const flags = readFlags(options, sources);
  const raw: Record<string, string> = {};
  for (const [key, source] of sources) {
    const value = (source.flag === undefined ? undefined : flags[source.flag]) ?? options.env[source.env] ?? source.fallback;
    if (value !== undefined) raw[key] = value;
  }
  const parsed = options.schema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const key = String(issue.path[0] ?? "");
    const source = options.sources[key as keyof typeof options.sources] as SettingSource | undefined;
    const where = source === undefined ? key : source.flag === undefined ? source.env : `${source.env} / --${source.flag}`;
    const message = issue.code === "invalid_type" && raw[key] === undefined ? "is required" : issue.message;
    const path = issue.path.length > 1 ? ` (at ${issue.path.slice(1).join(".")})` : "";
    return `  ${where}: ${message}${path}`;
  });
  throw options.error(`invalid ${options.what} configuration:\n${problems.join("\n")}`);
}

/** readFlags parses the flags the sources name; anything else on the command line is refused. */
function readFlags(
  options: { readonly argv?: readonly string[]; readonly error: (message: string) => Error },
  sources: readonly [string, SettingSource][],
): Readonly<Record<string, string | undefined>> {
  if (options.argv === undefined) return {};
  const known = Object.fromEntries(
    sources.flatMap(([, source]) => (source.flag === undefined ? [] : [[source.flag, { type: "string" as const }]])),
  );
  try {
    return parseArgs({ args: [...options.argv], options: known, strict: true, allowPositionals: false }).values as Record<
      string,
      string | undefined
    >;
  } catch (error) {
    throw options.error(`invalid arguments: ${(error as Error).message}`);
  }
}
