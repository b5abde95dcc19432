// Docker for `npm run demo:compose` (scripts/demo-compose.ts): bounded commands, the machine's
// preparation when it lacks Docker or the base images (the offline recipe of docker/README.md),
// and a small wrapper over `docker compose` (v2) or `docker-compose` (1.29) for one project.
// Every command has a time limit; what this module starts (commands, a dockerd), it can stop by PID.

import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
  readonly ms: number;
}

export interface RunOptions {
  readonly timeoutMs: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** onLine sees each line of stdout and stderr as it comes (progress narration). */
  readonly onLine?: (line: string) => void;
  /** always: run even after stopRunningCommands() (the teardown's own commands). */
  readonly always?: boolean;
}

/** Output kept per stream: enough for any answer we parse and for a failure's tail. */
const outputCharsMax = 4 * 1024 * 1024;
/** Commands running now, so that an interrupt can stop them (by PID) before tearing down. */
const running = new Set<ChildProcess>();
/** Set by stopRunningCommands: from then on only the teardown's commands (`always`) run. */
let stopping = false;

/** run runs a command with a time limit (SIGTERM, then SIGKILL 5 s later) and collects its output. */
export function run(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const startedMs = performance.now();
  if (stopping && options.always !== true) {
    return Promise.resolve({ code: null, stdout: "", stderr: "not run: the demo is stopping", timedOut: false, ms: 0 });
  }
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      cwd: options.cwd ?? process.cwd(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    running.add(child);
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    const collect = (chunk: Buffer, into: "stdout" | "stderr"): void => {
      const text = chunk.toString("utf8");
      if (into === "stdout") stdout = (stdout + text).slice(-outputCharsMax);
      else stderr = (stderr + text).slice(-outputCharsMax);
      if (options.onLine !== undefined) for (const line of text.split("\n")) if (line.trim() !== "") options.onLine(line);
    };
    child.stdout?.on("data", (chunk: Buffer) => collect(chunk, "stdout"));
    child.stderr?.on("data", (chunk: Buffer) => collect(chunk, "stderr"));
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGTERM");
      killTimer = setTimeout(() => child.kill("SIGKILL"), 5000);
    }, options.timeoutMs);
    const finish = (code: number | null, spawnError?: Error): void => {
      clearTimeout(timer);
      if (killTimer !== undefined) clearTimeout(killTimer);
      running.delete(child);
      resolve({
        code,
        stdout,
        stderr: spawnError === undefined ? stderr : `${stderr}${spawnError.message}`,
        timedOut,
        ms: performance.now() - startedMs,
      });
    };
    child.once("error", (error) => finish(null, error));
    child.once("close", (code) => finish(code));
  });
}

/** runOk runs a command and throws, with the end of its output, unless it exits 0 in time. */
export async function runOk(command: string, args: readonly string[], options: RunOptions): Promise<RunResult> {
  const result = await run(command, args, options);
  if (result.code !== 0 || result.timedOut) {
    const tail = `${result.stdout}\n${result.stderr}`.trim().split("\n").slice(-25).join("\n    ");
    const why = result.timedOut ? `timed out after ${(options.timeoutMs / 1000).toFixed(0)} s` : `exited with ${result.code}`;
    throw new Error(`${command} ${args.join(" ")} ${why}${tail === "" ? "" : `:\n    ${tail}`}`);
  }
  return result;
}

/** stopRunningCommands stops the commands still running, and refuses new ones but the teardown's (an interrupt's first move). */
export function stopRunningCommands(): void {
  stopping = true;
  for (const child of running) child.kill("SIGTERM");
}

/** portInUse tells whether 127.0.0.1:port is taken. */
export function portInUse(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(true));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(false)));
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function commandExists(name: string): Promise<boolean> {
  return (await run("sh", ["-c", `command -v ${name}`], { timeoutMs: 5000 })).code === 0;
}

const isRoot = (): boolean => process.getuid?.() === 0;

/** The base images the Dockerfile and the compose file name; built offline when missing. */
export const baseImages = ["node:22-bookworm-slim", "nginx:stable-bookworm"] as const;

/**
 * DockerHost makes sure this machine can run the demo, doing only what is missing: install Debian's
 * docker.io and docker-compose (and mmdebstrap for the base images), start a dockerd, build the base
 * images offline (docker/build-base-images.sh). It remembers the dockerd it started, to stop it.
 */
export class DockerHost {
  /** compose: the command to run compose, `docker compose` (v2) when present, else `docker-compose`. */
  compose: readonly string[] = [];
  composeVersion = "";
  serverVersion = "";
  private dockerd: ChildProcess | undefined;
  private readonly dockerdLog = "/tmp/sctec-demo-dockerd.log";

  private readonly repoRoot: string;
  private readonly say: (text: string) => void;

  constructor(repoRoot: string, say: (text: string) => void) {
    this.repoRoot = repoRoot;
    this.say = say;
  }

  /** startedDockerd: whether this demo started the running dockerd (and so should stop it). */
  get startedDockerd(): boolean {
    return this.dockerd !== undefined;
  }

  async prepare(): Promise<void> {
    const missing: string[] = [];
    if (!(await commandExists("docker")) || !(await commandExists("dockerd"))) missing.push("docker.io");
    let compose = await this.findCompose();
    if (compose === undefined) missing.push("docker-compose");
    await this.install(missing);
    compose ??= await this.findCompose();
    if (compose === undefined) throw new Error("neither `docker compose` nor `docker-compose` works after installing docker-compose");
    this.compose = compose;
    await this.startDaemon();
    const versions = await runOk("docker", ["version", "--format", "{{.Server.Version}}"], { timeoutMs: 15_000 });
    this.serverVersion = versions.stdout.trim();
    await this.ensureBaseImages();
  }

  /** findCompose prefers compose v2 (`docker compose`), then Debian's docker-compose 1.29. */
  private async findCompose(): Promise<readonly string[] | undefined> {
    const forced = process.env["SCTEC_COMPOSE"];
    const candidates: string[][] = forced === undefined ? [["docker", "compose"], ["docker-compose"]] : [forced.split(" ")];
    for (const candidate of candidates) {
      const [command, ...args] = candidate as [string, ...string[]];
      const result = await run(command, [...args, "version"], { timeoutMs: 15_000 });
      if (result.code === 0) {
        this.composeVersion = (result.stdout.split("\n")[0] ?? "").trim();
        return candidate;
      }
    }
    return undefined;
  }

  private async install(packages: readonly string[]): Promise<void> {
    if (packages.length === 0) return;
    if (!isRoot())
      throw new Error(`missing ${packages.join(", ")}: install them (Debian: apt-get install ${packages.join(" ")}) or run as root`);
    if (!(await commandExists("apt-get"))) throw new Error(`missing ${packages.join(", ")} and no apt-get to install them`);
    this.say(`installing ${packages.join(", ")} (Debian packages) …`);
    const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
    await runOk("apt-get", ["update", "-qq"], { timeoutMs: 300_000, env });
    const result = await runOk("apt-get", ["install", "-y", "-qq", ...packages], { timeoutMs: 900_000, env });
    this.say(`installed ${packages.join(", ")} in ${(result.ms / 1000).toFixed(1)} s`);
  }

  private async daemonAnswers(): Promise<boolean> {
    return (await run("docker", ["info", "--format", "{{.ServerVersion}}"], { timeoutMs: 10_000 })).code === 0;
  }

  /** startDaemon starts dockerd when none answers (it is detached: an interrupt of the demo must not kill it mid-teardown). */
  private async startDaemon(): Promise<void> {
    if (await this.daemonAnswers()) return;
    if (!isRoot()) throw new Error("no Docker daemon answers, and starting one needs root (or start it yourself)");
    const pidFile = "/var/run/docker.pid";
    if (existsSync(pidFile)) {
      // A pid file left by a killed dockerd blocks a new one if that pid now belongs to another process.
      const pid = readFileSync(pidFile, "utf8").trim();
      const comm = existsSync(`/proc/${pid}/comm`) ? readFileSync(`/proc/${pid}/comm`, "utf8").trim() : "";
      if (comm !== "dockerd") rmSync(pidFile, { force: true });
    }
    const log = openSync(this.dockerdLog, "a");
    const dockerd = spawn("dockerd", [], { detached: true, stdio: ["ignore", log, log] });
    closeSync(log);
    dockerd.unref();
    this.dockerd = dockerd;
    const startedMs = performance.now();
    for (let attempt = 0; attempt < 60 && !(await this.daemonAnswers()); attempt += 1) await sleep(500);
    if (!(await this.daemonAnswers())) {
      const tail = readFileSync(this.dockerdLog, "utf8").trim().split("\n").slice(-15).join("\n    ");
      throw new Error(`dockerd (pid ${dockerd.pid}) did not answer within 30 s; the end of ${this.dockerdLog}:\n    ${tail}`);
    }
    this.say(
      `started dockerd (pid ${dockerd.pid}, log ${this.dockerdLog}); it answered in ${((performance.now() - startedMs) / 1000).toFixed(1)} s`,
    );
  }

  private async ensureBaseImages(): Promise<void> {
    const present = await run("docker", ["image", "inspect", ...baseImages], { timeoutMs: 15_000 });
    if (present.code === 0) {
      this.say(`base images present: ${baseImages.join(", ")}`);
      return;
    }
    if (!isRoot()) throw new Error(`missing base images (${baseImages.join(", ")}): pull them, or run as root to build them offline`);
    if (!(await commandExists("mmdebstrap"))) await this.install(["mmdebstrap"]);
    this.say(`building the base images offline (docker/build-base-images.sh: Debian + Node 22 from npm, nginx from Debian) …`);
    const result = await runOk("bash", [`${this.repoRoot}/docker/build-base-images.sh`], {
      timeoutMs: 1_200_000,
      cwd: this.repoRoot,
      onLine: (line) => this.say(`  ${line}`),
    });
    this.say(`base images built in ${(result.ms / 1000).toFixed(1)} s`);
  }

  /** stopDaemon stops the dockerd this demo started, by its PID (SIGTERM, then SIGKILL after 30 s). */
  async stopDaemon(): Promise<void> {
    const dockerd = this.dockerd;
    if (dockerd?.pid === undefined) return;
    this.dockerd = undefined;
    const alive = (): boolean => {
      try {
        process.kill(dockerd.pid as number, 0);
        return true;
      } catch {
        return false;
      }
    };
    process.kill(dockerd.pid, "SIGTERM");
    for (let waited = 0; waited < 30_000 && alive(); waited += 250) await sleep(250);
    if (alive()) process.kill(dockerd.pid, "SIGKILL");
    this.say(`stopped the dockerd this demo started (pid ${dockerd.pid})`);
  }
}

export interface ContainerInfo {
  readonly id: string;
  readonly name: string;
  readonly service: string;
  readonly status: string;
  readonly health: string;
  readonly ip: string;
}

/** Compose runs compose commands for one project and one file, and inspects the project's containers. */
export class Compose {
  readonly project: string;
  private readonly command: readonly string[];
  private readonly file: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly cwd: string;

  constructor(command: readonly string[], project: string, file: string, env: NodeJS.ProcessEnv, cwd: string) {
    this.command = command;
    this.project = project;
    this.file = file;
    this.env = env;
    this.cwd = cwd;
  }

  /** run runs `compose -p project -f file [--profile grow] args…`, throwing on failure. */
  run(args: readonly string[], timeoutMs: number, options: { profile?: string; onLine?: (line: string) => void } = {}): Promise<RunResult> {
    const [command, ...base] = this.command as [string, ...string[]];
    const profile = options.profile === undefined ? [] : ["--profile", options.profile];
    return runOk(command, [...base, "-p", this.project, "-f", this.file, ...profile, ...args], {
      timeoutMs,
      env: this.env,
      cwd: this.cwd,
      ...(options.onLine === undefined ? {} : { onLine: options.onLine }),
    });
  }

  /** runLoose is run without the throw: for `logs -f` (stopped by its time limit) and the teardown (`always`). */
  runLoose(args: readonly string[], timeoutMs: number, options: { profile?: string; always?: boolean } = {}): Promise<RunResult> {
    const [command, ...base] = this.command as [string, ...string[]];
    const profile = options.profile === undefined ? [] : ["--profile", options.profile];
    return run(command, [...base, "-p", this.project, "-f", this.file, ...profile, ...args], {
      timeoutMs,
      env: this.env,
      cwd: this.cwd,
      always: options.always === true,
    });
  }

  /** containers lists the project's containers (of one service, or all), running or not, by compose's labels. */
  async containers(service?: string): Promise<ContainerInfo[]> {
    const filters = ["--filter", `label=com.docker.compose.project=${this.project}`];
    if (service !== undefined) filters.push("--filter", `label=com.docker.compose.service=${service}`);
    const ids = (await runOk("docker", ["ps", "-aq", ...filters], { timeoutMs: 15_000 })).stdout.split("\n").filter((id) => id !== "");
    if (ids.length === 0) return [];
    const format =
      '{{.Id}}\t{{.Name}}\t{{index .Config.Labels "com.docker.compose.service"}}\t{{.State.Status}}\t{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}\t{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}';
    const inspected = await run("docker", ["inspect", "--format", format, ...ids], { timeoutMs: 15_000 });
    // A container removed between the two commands makes inspect fail for it alone: keep the others.
    return inspected.stdout
      .split("\n")
      .filter((line) => line.trim() !== "")
      .map((line) => {
        const [id, name, serviceName, status, health, ip] = line.split("\t") as [string, string, string, string, string, string];
        return { id: id.slice(0, 12), name: name.replace(/^\//, ""), service: serviceName, status, health, ip: ip.trim() };
      })
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  /** waitHealthy waits until `count` containers of `service` run and are healthy. */
  async waitHealthy(service: string, count: number, timeoutMs: number): Promise<ContainerInfo[]> {
    const deadline = performance.now() + timeoutMs;
    let last: ContainerInfo[] = [];
    while (performance.now() < deadline) {
      last = (await this.containers(service)).filter((container) => container.status === "running");
      const healthy = last.filter((container) => container.health === "healthy");
      if (healthy.length >= count) return healthy;
      await sleep(500);
    }
    const states = last.map((container) => `${container.name} ${container.status}/${container.health}`).join(", ") || "none running";
    throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${count} healthy ${service} (${states})`);
  }

  /** leftovers lists what the project still has: containers, volumes, networks. */
  async leftovers(): Promise<string[]> {
    const label = `label=com.docker.compose.project=${this.project}`;
    const found: string[] = [];
    for (const [kind, args] of [
      ["container", ["ps", "-a", "--filter", label, "--format", "{{.Names}}"]],
      ["volume", ["volume", "ls", "--filter", label, "--format", "{{.Name}}"]],
      ["network", ["network", "ls", "--filter", label, "--format", "{{.Name}}"]],
    ] as const) {
      const result = await run("docker", args, { timeoutMs: 15_000, always: true });
      for (const name of result.stdout.split("\n").filter((line) => line.trim() !== "")) found.push(`${kind} ${name}`);
    }
    return found;
  }
}
