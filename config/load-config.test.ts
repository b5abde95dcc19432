// loadConfig on a small schema of its own: a flag beats its variable, a variable beats the default,
// a setting without either is "required", every problem is listed at once under its variable and
// flag (with the path inside a structured value), an unknown flag is refused, and a process
// without flags reads none. node/config.test.ts and scheduler/config.test.ts show the same on the
// two real configurations.

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
});
