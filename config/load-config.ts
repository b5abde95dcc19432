// Reading a process's configuration: each setting from its flag, else its environment variable,
// else its default, validated with the process's zod schema at startup, and every problem
// reported at once, named by the variable (and flag) to fix. The lock node (node/config.ts) and
// the booking API (scheduler/config.ts) each declare their settings, sources and rules; how the
// sources are read and the problems reported is written once, here.
//
// A secret (a token, the cluster secret) may also be read from a file, named by `<VARIABLE>_FILE`
// or `--<flag>-file`, so that a container carries the secret as a mounted file (a Docker secret)
// and never in its environment, where `docker inspect`, /proc/<pid>/environ and crash reports
// would show it.

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { z } from "zod";

/** SettingSource says where one setting comes from: an environment variable, perhaps a flag, perhaps a default. */
export interface SettingSource {
  readonly env: string;
  /** flag: the command-line flag (`--<flag>`) that overrides the variable. */
  readonly flag?: string;
  /** fallback: the text used when neither is given (a setting without one is required). */
  readonly fallback?: string;
  /**
   * secret: the value may instead come from a file, named by `<env>_FILE` (or `--<flag>-file`);
   * giving both the value and its file is refused. The file's trailing line breaks are dropped
   * (as the shell's `$(<file)` does), nothing else.
   */
  readonly secret?: boolean;
  /** boolean: the flag takes no value (`--insecure` means "true"); the variable is "true" or "false". */
  readonly boolean?: boolean;
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
  /** readFile reads a secret's file (injectable for tests). @default fs.readFileSync as UTF-8 */
  readonly readFile?: (path: string) => string;
}

/** fileSourceOf names where a secret's file may be named: its variable and its flag, each with `_FILE` / `-file`. */
function fileSourceOf(source: SettingSource): { readonly env: string; readonly flag: string | undefined } {
  return { env: `${source.env}_FILE`, flag: source.flag === undefined ? undefined : `${source.flag}-file` };
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
  /** origins: for a value read from a secret's file, the variable or flag that named the file (problems name it). */
  const origins = new Map<string, string>();
  const problems: string[] = [];
  for (const [key, source] of sources) {
    const read = readSetting(source, flags, options);
    if ("problem" in read) problems.push(`  ${read.problem}`);
    else if (read.value !== undefined) {
      raw[key] = read.value;
      if (read.origin !== undefined) origins.set(key, read.origin);
    }
  }
  const parsed = options.schema.safeParse(raw);
  if (parsed.success && problems.length === 0) return parsed.data;
  for (const issue of parsed.success ? [] : parsed.error.issues) {
    const key = String(issue.path[0] ?? "");
    const source = options.sources[key as keyof typeof options.sources] as SettingSource | undefined;
    const where = origins.get(key) ?? (source === undefined ? key : nameOf(source));
    const missing = issue.code === "invalid_type" && raw[key] === undefined;
    const orFile = source?.secret === true ? ` (or its file, ${nameOf(fileSourceOf(source))})` : "";
    const message = missing ? `is required${orFile}` : issue.message;
    const path = issue.path.length > 1 ? ` (at ${issue.path.slice(1).join(".")})` : "";
    problems.push(`  ${where}: ${message}${path}`);
  }
  throw options.error(`invalid ${options.what} configuration:\n${problems.join("\n")}`);
}

/** nameOf names a setting as problems do: `VARIABLE / --flag`, or the variable alone. */
function nameOf(source: { readonly env: string; readonly flag?: string | undefined }): string {
  return source.flag === undefined ? source.env : `${source.env} / --${source.flag}`;
}

type SettingRead = { readonly value: string | undefined; readonly origin?: string } | { readonly problem: string };

/**
 * readSetting reads one setting: its flag (or, for a secret, the flag's file), else its variable
 * (or the variable's file), else its default. A value and its file given at the same level is a
 * problem, as is a file that cannot be read; the file's text never appears in a problem.
 */
function readSetting(
  source: SettingSource,
  flags: Readonly<Record<string, string | boolean | undefined>>,
  options: { readonly env: Readonly<Record<string, string | undefined>>; readonly readFile?: (path: string) => string },
): SettingRead {
  const flagValue = source.flag === undefined ? undefined : flags[source.flag];
  const direct = typeof flagValue === "boolean" ? String(flagValue) : flagValue;
  if (source.secret !== true) return { value: direct ?? options.env[source.env] ?? source.fallback };
  const file = fileSourceOf(source);
  const flagFile = file.flag === undefined ? undefined : flags[file.flag];
  const levels = [
    { value: direct, path: typeof flagFile === "string" ? flagFile : undefined, valueName: `--${source.flag}`, fileName: `--${file.flag}` },
    { value: options.env[source.env], path: options.env[file.env], valueName: source.env, fileName: file.env },
  ];
  for (const level of levels) {
    if (level.value !== undefined && level.path !== undefined) {
      return { problem: `${level.valueName} and ${level.fileName}: give the value or its file, not both` };
    }
    if (level.value !== undefined) return { value: level.value };
    if (level.path === undefined) continue;
    try {
      const text = (options.readFile ?? ((path: string) => readFileSync(path, "utf8")))(level.path);
      return { value: text.replace(/[\r\n]+$/, ""), origin: `${level.fileName} (${level.path})` };
    } catch (error) {
      return {
        problem: `${level.fileName}: cannot read ${level.path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
      };
    }
  }
  return { value: source.fallback };
}

/** readFlags parses the flags the sources name (and a secret's `-file` flag); anything else on the command line is refused. */
function readFlags(
  options: { readonly argv?: readonly string[]; readonly error: (message: string) => Error },
  sources: readonly [string, SettingSource][],
): Readonly<Record<string, string | boolean | undefined>> {
  if (options.argv === undefined) return {};
  const known: Record<string, { type: "string" | "boolean" }> = {};
  for (const [, source] of sources) {
    if (source.flag === undefined) continue;
    known[source.flag] = { type: source.boolean === true ? "boolean" : "string" };
    const fileFlag = fileSourceOf(source).flag;
    if (source.secret === true && fileFlag !== undefined) known[fileFlag] = { type: "string" };
  }
  try {
    return parseArgs({ args: [...options.argv], options: known, strict: true, allowPositionals: false }).values as Record<
      string,
      string | boolean | undefined
    >;
  } catch (error) {
    throw options.error(`invalid arguments: ${(error as Error).message}`);
  }
}
