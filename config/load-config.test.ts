// loadConfig on a small schema of its own: a flag beats its variable, a variable beats the default,
// a setting without either is "required", every problem is listed at once under its variable and
// flag (with the path inside a structured value), an unknown flag is refused, and a process
// without flags reads none. A secret may come from a file instead (`<VARIABLE>_FILE`,
// `--<flag>-file`): read with its trailing line breaks dropped, refused beside its value, an
// unreadable file named without its text. node/config.test.ts and scheduler/config.test.ts show
// the same on the two real configurations.

import { describe, expect, it } from "vitest";
import { z } from "zod";
import { integerSetting, listenSetting, loadConfig } from "./load-config.ts";

class ExampleConfigError extends Error {}

const schema = z.strictObject({
  listen: listenSetting,
  workersMax: integerSetting(1, 64),
  name: z.string().min(1),
  shape: z
    .string()
    .transform((text) => JSON.parse(text) as unknown)
    .pipe(z.object({ sides: z.int().min(3) })),
});
const sources = {
  listen: { env: "EXAMPLE_LISTEN", flag: "listen", fallback: "127.0.0.1:9000" },
  workersMax: { env: "EXAMPLE_WORKERS_MAX", flag: "workers-max", fallback: "4" },
  name: { env: "EXAMPLE_NAME" },
  shape: { env: "EXAMPLE_SHAPE", fallback: '{"sides":3}' },
};

function load(env: Record<string, string>, argv?: string[]) {
  return loadConfig({
    what: "example",
    schema,
    sources,
    env,
    ...(argv === undefined ? {} : { argv }),
    error: (message) => new ExampleConfigError(message),
  });
}

const secretSchema = z.strictObject({ token: z.string().min(16, "must be at least 16 characters"), insecure: z.enum(["true", "false"]) });
const secretSources = {
  token: { env: "EXAMPLE_TOKEN", flag: "token", secret: true },
  insecure: { env: "EXAMPLE_INSECURE", flag: "insecure", boolean: true, fallback: "false" },
};
/** files: what the injected readFile finds; any other path is missing, as fs would say. */
const files: Record<string, string> = {
  "/run/secrets/token": "a-token-from-a-file-0123\n",
  "/run/secrets/crlf": "a-token-with-a-crlf-01234\r\n",
  "/run/secrets/short": "short\n",
};

function loadSecret(env: Record<string, string>, argv: string[] = []) {
  return loadConfig({
    what: "example",
    schema: secretSchema,
    sources: secretSources,
    env,
    argv,
    error: (message) => new ExampleConfigError(message),
    readFile: (path) => {
      const text = files[path];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: "ENOENT" });
      return text;
    },
  });
}

function secretProblemsOf(env: Record<string, string>, argv: string[] = []): string {
  try {
    loadSecret(env, argv);
  } catch (error) {
    expect(error).toBeInstanceOf(ExampleConfigError);
    return (error as Error).message;
  }
  throw new Error("expected the configuration to be refused");
}

function problemsOf(env: Record<string, string>, argv?: string[]): string {
  try {
    load(env, argv);
  } catch (error) {
    expect(error).toBeInstanceOf(ExampleConfigError);
    return (error as Error).message;
  }
  throw new Error("expected the configuration to be refused");
}

describe("loadConfig", () => {
  it("takes a flag over its variable, and a variable over the default", () => {
    expect(load({ EXAMPLE_NAME: "a" })).toEqual({
      listen: { host: "127.0.0.1", port: 9000 },
      workersMax: 4,
      name: "a",
      shape: { sides: 3 },
    });
    expect(load({ EXAMPLE_NAME: "a", EXAMPLE_WORKERS_MAX: "8" }).workersMax).toBe(8);
    expect(load({ EXAMPLE_NAME: "a", EXAMPLE_WORKERS_MAX: "8" }, ["--workers-max", "16"]).workersMax).toBe(16);
  });

  it("lists every problem at once, each under the variable and flag to fix", () => {
    const message = problemsOf({ EXAMPLE_LISTEN: "9000", EXAMPLE_WORKERS_MAX: "0", EXAMPLE_SHAPE: '{"sides":2}' });
    expect(message.split("\n")).toEqual([
      "invalid example configuration:",
      "  EXAMPLE_LISTEN / --listen: must be host:port",
      "  EXAMPLE_WORKERS_MAX / --workers-max: Too small: expected number to be >=1",
      "  EXAMPLE_NAME: is required",
      "  EXAMPLE_SHAPE: Too small: expected number to be >=3 (at sides)",
    ]);
  });

  it("refuses a flag it does not know, and reads no flags for a process that takes none", () => {
    expect(problemsOf({ EXAMPLE_NAME: "a" }, ["--name", "b"])).toMatch(/^invalid arguments: .*--name/);
    expect(load({ EXAMPLE_NAME: "a" }).name).toBe("a");
  });

  it("reads a secret from the file its _FILE variable or -file flag names, without the trailing line break", () => {
    expect(loadSecret({ EXAMPLE_TOKEN_FILE: "/run/secrets/token" }).token).toBe("a-token-from-a-file-0123");
    expect(loadSecret({ EXAMPLE_TOKEN_FILE: "/run/secrets/crlf" }).token).toBe("a-token-with-a-crlf-01234");
    expect(loadSecret({}, ["--token-file", "/run/secrets/token"]).token).toBe("a-token-from-a-file-0123");
    // A flag beats the variable, whichever of the two forms each takes.
    expect(loadSecret({ EXAMPLE_TOKEN: "a-token-from-the-environment" }, ["--token-file", "/run/secrets/token"]).token).toBe(
      "a-token-from-a-file-0123",
    );
    expect(loadSecret({ EXAMPLE_TOKEN_FILE: "/run/secrets/token" }, ["--token", "a-token-from-the-command-line"]).token).toBe(
      "a-token-from-the-command-line",
    );
  });

  it("refuses a secret and its file together, a file it cannot read, and names the file when its secret is bad", () => {
    expect(secretProblemsOf({ EXAMPLE_TOKEN: "a-token-from-the-environment", EXAMPLE_TOKEN_FILE: "/run/secrets/token" })).toContain(
      "EXAMPLE_TOKEN and EXAMPLE_TOKEN_FILE: give the value or its file, not both",
    );
    expect(secretProblemsOf({}, ["--token", "a-token-from-the-command-line", "--token-file", "/run/secrets/token"])).toContain(
      "--token and --token-file: give the value or its file, not both",
    );
    expect(secretProblemsOf({ EXAMPLE_TOKEN_FILE: "/run/secrets/missing" })).toContain(
      "EXAMPLE_TOKEN_FILE: cannot read /run/secrets/missing: ENOENT",
    );
    const short = secretProblemsOf({ EXAMPLE_TOKEN_FILE: "/run/secrets/short" });
    expect(short).toContain("EXAMPLE_TOKEN_FILE (/run/secrets/short): must be at least 16 characters");
    expect(short).not.toContain("short\n"); // The file's text is never echoed.
    expect(secretProblemsOf({})).toContain("EXAMPLE_TOKEN / --token: is required (or its file, EXAMPLE_TOKEN_FILE / --token-file)");
  });

  it("takes a boolean flag without a value", () => {
    const env = { EXAMPLE_TOKEN: "a-token-from-the-environment" };
    expect(loadSecret(env).insecure).toBe("false");
    expect(loadSecret(env, ["--insecure"]).insecure).toBe("true");
    expect(loadSecret({ ...env, EXAMPLE_INSECURE: "true" }).insecure).toBe("true");
  });
});
