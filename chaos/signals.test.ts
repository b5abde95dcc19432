// The command behind `npm run chaos` must let the runner finish its cleanup after Ctrl-C, however
// long a loaded machine makes it take. Regression: it was `tsx chaos/main.ts`, and the tsx
// command relays a signal to its child and sends SIGKILL after it unless the child acknowledges
// within 30 ms; at load 13 that killed the runner mid-history with its tmpfs disks still mounted.
// Shown here with a stand-in for the runner whose event loop is busy 300 ms at a time (as a loaded
// machine makes it), so a signal waits that long to be served; its SIGINT handler records that it
// cleaned up. Started with the package's chaos command, it must get to record it. With the old
// command it is SIGKILLed first (planted: the test fails with "tsx chaos/main.ts").
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "..");
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const standIn = `
import { writeFileSync } from "node:fs";
const marker = process.argv[2] ?? "";
process.on("SIGINT", () => {
  writeFileSync(marker, "cleaned up");
  process.exit(0);
});
writeFileSync(marker + ".ready", "");
// Busy 300 ms at a time, as a loaded machine makes the runner: a signal waits that long to be served.
const spin = () => {
  const until = performance.now() + 300;
  while (performance.now() < until) {}
  setTimeout(spin, 0);
};
spin();
`;

async function waitUntil(condition: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 25));
  }
}

describe("npm run chaos and Ctrl-C", () => {
  it("the runner is not killed before it has cleaned up after SIGINT, however long that takes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "chaos-signals-"));
    dirs.push(dir);
    const script = join(dir, "stand-in.ts");
    writeFileSync(script, standIn);
    const marker = join(dir, "marker");
    const command = (JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts["chaos"];
    expect(command).toMatch(/chaos\/main\.ts$/);
    const [program, ...args] = (command as string).replace("chaos/main.ts", script).split(" ");
    const child = spawn(program as string, [...args, marker], {
      cwd: root,
      env: { ...process.env, PATH: `${join(root, "node_modules", ".bin")}${delimiter}${process.env["PATH"] ?? ""}` },
      stdio: "ignore",
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
      child.once("exit", (code, signal) => done({ code, signal })),
    );
    try {
      await waitUntil(() => existsSync(`${marker}.ready`), "the stand-in to start", 60_000);
      child.kill("SIGINT");
      const exit = await exited;
      expect(existsSync(marker), `the stand-in was ended before it cleaned up (exit ${exit.code ?? exit.signal})`).toBe(true);
      expect(exit.code).toBe(0);
    } finally {
      child.kill("SIGKILL");
    }
  }, 90_000);
});
