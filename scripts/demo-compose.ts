// `npm run demo:compose`: the whole system as containers (docker-compose.yml), attacked while
// bookings flow through the load balancer. It narrates and checks nine steps and ends with one
// line `N passed, N failed` (exit 1 if any step failed):
//   1. build the image and bring everything up, gated by health checks;
//   2. scale the schedulers to 3 and start a steady booking load through the load balancer;
//   3. kill the Raft leader's container: a new leader, bookings go on (the gap), a survivor's status page shows it;
//   4. restart the killed node: it catches up (its applied index reaches the leader's);
//   5. kill a scheduler in the middle of bookings: the others answer;
//   6. grow the cluster to five nodes (node4, node5) and shrink it back to three, under load;
//   7. roll all three nodes (a rolling restart, as `sctec rolling-restart` does it) under the load:
//      each comes back and catches up, the leader last, leadership moves once, no booking fails;
//   8. verify from the cluster's own data: every 201 stored, no overlap, the audit chain verifies;
//   9. show a slice of the aggregated logs and tear everything down, volumes included.
// Everything runs over TLS with role tokens, as docker-compose.yml has it: the demo makes its
// secrets (a CA, certificates, the cluster secret, the bootstrap admin token) in a directory of its
// own (SCTEC_SECRETS_DIR), starts the nodes, makes the booking API's `locker` credential through
// them, and only then starts the schedulers and the load balancer.
// It prepares the machine only as far as needed (docker/README.md): Debian's Docker packages, a
// dockerd, and the base images built offline when they are missing. Every wait is bounded, and
// whatever it starts it stops (containers, volumes, network, the image it built, a dockerd it
// started), also on failure and on Ctrl-C.
//
//   npm run demo:compose
//   npm run demo:compose -- --keep-images     keep the built image (a faster next run)
//   npm run demo:compose -- --keep-docker     leave running the dockerd it started
//   npm run demo:compose -- --workers 3 --pause-ms 100   the booking load
// SCTEC_COMPOSE="docker-compose" picks the compose command (default: `docker compose` if present).

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Agent, fetch } from "undici";
import { type Lease, LockClient } from "../client/lock-client.ts";
import { rollingRestart } from "../client/rolling-restart.ts";
import { type ChainRecord, chainPrefix, verifyChain } from "../protocol/chain.ts";
import { makeComposeSecrets } from "./compose-secrets.ts";
import { Compose, type ContainerInfo, DockerHost, portInUse, run, runOk, sleep, stopRunningCommands } from "./demo-docker.ts";
import { BookingLoad, type Outcome, request, trustCa } from "./demo-load.ts";

const { values } = parseArgs({
  options: {
    "keep-images": { type: "boolean", default: false },
    "keep-docker": { type: "boolean", default: false },
    workers: { type: "string", default: "3" },
    "pause-ms": { type: "string", default: "100" },
    project: { type: "string", default: "sctec-demo" },
  },
});
const workers = Number(values.workers);
const pauseMs = Number(values["pause-ms"]);
if (!Number.isInteger(workers) || workers < 1 || workers > 32 || !Number.isInteger(pauseMs) || pauseMs < 0 || pauseMs > 10_000) {
  console.error("demo:compose: --workers must be 1 to 32 and --pause-ms 0 to 10000");
  process.exit(2);
}

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const project = values.project as string;
const image = `${project}:local`;
const lbUrl = "https://127.0.0.1:8080";
const founders = ["node1", "node2", "node3"] as const;
const spares = ["node4", "node5"] as const;
const nodeUrl = (id: string): string => `https://127.0.0.1:${7000 + Number(id.slice(4))}`;
/** The whole demo's limit; each wait inside has its own, shorter one. */
const demoTimeLimitMs = 40 * 60_000;
/**
 * nodeHealthyTimeoutMs: how long a node container started or restarted by a step may take to pass
 * its healthcheck. A node starts two isolates (its HTTP thread and its raft thread); on this 2-core
 * machine at a load average of about 30, a restart took 32–37 s and a fresh node5 was not healthy
 * within 60 s (a run of 2026-12-07), so 60 s made the demo fail on the machine's load alone.
 */
const nodeHealthyTimeoutMs = 120_000;
/**
 * secrets: the demo's own Docker secrets (compose reads them from SCTEC_SECRETS_DIR), made before
 * anything starts and removed at the end; `ca` is what the host trusts the containers with.
 */
const secretsDir = mkdtempSync(join(tmpdir(), "sctec-demo-secrets-"));
const secretFiles = await makeComposeSecrets(secretsDir, () => undefined);
const secrets = {
  ca: readFileSync(secretFiles.ca, "utf8"),
  apiToken: readFileSync(secretFiles.adminToken, "utf8").trim(),
  schedulerTokenFile: secretFiles.schedulerToken,
};
/** hostDispatcher: the demo's own HTTPS requests to the containers, trusting the demo's CA. */
const hostDispatcher = new Agent({ connect: { ca: secrets.ca } });
trustCa(secrets.ca);

// ---------------------------------------------------------------- narration and steps

const startedMs = performance.now();
const now = (): number => performance.now();
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
const stamp = (): string => `[${seconds(now() - startedMs).padStart(8)}]`;
const say = (text: string): void => console.log(`${stamp()} ${text}`);
const detail = (text: string): void => console.log(`${" ".repeat(13)}${text}`);

class StepFailed extends Error {}
let stepFailures = 0;
/** check prints a verified claim (✓) or a failed one (✗); a failed check fails the step. */
function check(ok: boolean, text: string): boolean {
  console.log(`${" ".repeat(13)}${ok ? "✓" : "✗"} ${text}`);
  if (!ok) stepFailures += 1;
  return ok;
}
/** must is a check the rest of the step depends on: it ends the step when it fails. */
function must(ok: boolean, text: string): void {
  if (!check(ok, text)) throw new StepFailed(text);
}

interface StepResult {
  readonly n: number;
  readonly title: string;
  readonly ok: boolean;
  readonly ms: number;
}
const results: StepResult[] = [];
/** figures: the numbers worth repeating in the summary (gap, catch-up, timings). */
const figures: string[] = [];
let abandoned: string | undefined;

/** stepsTotal: the steps main() runs (a step not run because an earlier one failed counts as failed). */
const stepsTotal = 9;

async function step(n: number, title: string, timeLimitMs: number, body: () => Promise<void>): Promise<boolean> {
  console.log("");
  say(`step ${n}/${stepsTotal}: ${title}`);
  if (abandoned !== undefined) {
    check(false, `not run: ${abandoned}`);
    results.push({ n, title, ok: false, ms: 0 });
    return false;
  }
  stepFailures = 0;
  const began = now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      body(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`step ${n} took longer than its limit of ${seconds(timeLimitMs)}`)), timeLimitMs);
      }),
    ]);
  } catch (error) {
    if (!(error instanceof StepFailed)) check(false, (error as Error).message);
    if ((error as Error).message.includes("longer than its limit")) abandoned = `step ${n} overran its time limit`;
  } finally {
    clearTimeout(timer);
  }
  const ok = stepFailures === 0;
  results.push({ n, title, ok, ms: now() - began });
  say(`${ok ? "PASS" : "FAIL"} step ${n} (${seconds(now() - began)})`);
  return ok;
}

/** waitFor polls until probe gives a value, or throws after timeoutMs. */
async function waitFor<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs: number, intervalMs = 100): Promise<T> {
  const deadline = now() + timeoutMs;
  for (;;) {
    if (stopping) throw new Error("the demo is stopping");
    const value = await probe();
    if (value !== undefined) return value;
    if (now() > deadline) throw new Error(`timed out after ${seconds(timeoutMs)} waiting for ${what}`);
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------- the cluster, seen from the host

interface NodeStatus {
  readonly nodeId: string;
  readonly role: string;
  readonly term: number;
  readonly leaderId: string | null;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  readonly voters: readonly string[];
  readonly learners: readonly string[];
}

async function getJson<T>(url: string, timeoutMs = 1500): Promise<T | undefined> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), dispatcher: hostDispatcher });
    return response.ok ? ((await response.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

const nodeStatus = (id: string): Promise<NodeStatus | undefined> => getJson<NodeStatus>(`${nodeUrl(id)}/status`);

/** findLeader: among these nodes, the one that leads in the highest term any of them reports. */
async function findLeader(ids: readonly string[]): Promise<NodeStatus | undefined> {
  const statuses = (await Promise.all(ids.map(nodeStatus))).filter((status) => status !== undefined);
  const highest = Math.max(...statuses.map((status) => status.term));
  return statuses.find((status) => status.role === "leader" && status.term === highest);
}

// ---------------------------------------------------------------- state shared by the steps

const composeEnv: NodeJS.ProcessEnv = {
  ...process.env,
  SCTEC_SECRETS_DIR: secretsDir,
  SCTEC_IMAGE: image,
  // The demo reads the logs as JSON lines; the classic builder works on every machine (docker/README.md).
  SCTEC_LOG_PRETTY: "false",
  SCHEDULER_LOG_PRETTY: "false",
  DOCKER_BUILDKIT: "0",
  COMPOSE_DOCKER_CLI_BUILD: "1",
};
for (const inherited of ["COMPOSE_PROFILES", "COMPOSE_FILE", "COMPOSE_PROJECT_NAME"]) delete composeEnv[inherited];

const docker = new DockerHost(repoRoot, detail);
let compose: Compose | undefined;
let imageBuilt = false;
let client: LockClient | undefined;
let sentinel: Lease | undefined;
const load = new BookingLoad({ baseUrl: lbUrl, workers, pauseMs, bookingTimeLimitMs: 30_000, scientists: 6, now });
let loadPrepared = false;
/** schedulerNames: a scheduler's address (ip:8080) → its container name, to say who answered. */
const schedulerNames = new Map<string, string>();

async function refreshSchedulerNames(): Promise<ContainerInfo[]> {
  const containers = await (compose as Compose).containers("scheduler");
  for (const container of containers) if (container.ip !== "") schedulerNames.set(`${container.ip}:8080`, container.name);
  return containers;
}
const nameOf = (upstream: string | undefined): string => (upstream === undefined ? "?" : (schedulerNames.get(upstream) ?? upstream));

function countBy<T>(items: readonly T[], key: (item: T) => string): string {
  const counts = new Map<string, number>();
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .map(([name, count]) => `${name} × ${count}`)
    .join(", ");
}

/** clear: a final answer the load expects (201, or 409 because the slot was busy or taken). */
const clear = (outcome: Outcome): boolean =>
  outcome.status === 201 || (outcome.status === 409 && (outcome.code === "slot_busy" || outcome.code === "slot_taken"));

/** checkAnswers: every booking answered since fromMs got a clear answer. */
function checkAnswers(fromMs: number, during: string): void {
  const since = load.outcomes.filter((outcome) => outcome.answeredMs >= fromMs);
  const unclear = since.filter((outcome) => !clear(outcome));
  check(
    unclear.length === 0,
    unclear.length === 0
      ? `every booking ${during} got a clear answer (${since.length}: ${countBy(since, (outcome) => `${outcome.status}`)})`
      : `${unclear.length} of ${since.length} bookings ${during} got no clear answer: ${countBy(unclear, (outcome) => `${outcome.status} ${outcome.code ?? ""}`)}`,
  );
}

function failedAttemptsSince(fromMs: number, toMs = Number.POSITIVE_INFINITY): string {
  const failed = load.failedAttempts.filter((attempt) => attempt.atMs >= fromMs && attempt.atMs <= toMs);
  if (failed.length === 0) return "no attempt failed";
  const busy = failed.some((attempt) => attempt.what === "409 slot_busy");
  return `${failed.length} attempts failed and were retried with their Idempotency-Key (${countBy(failed, (attempt) => attempt.what)})${busy ? "; a slot_busy after a failed attempt can be that attempt's own lease, held until its write commits or the lease ends, so the client asks again" : ""}`;
}

async function sentinelHeld(): Promise<boolean> {
  const leases = await (client as LockClient).leases();
  return leases.some((lease) => lease.resource === "demo-sentinel" && lease.token === sentinel?.token);
}

// ---------------------------------------------------------------- the steps

async function stepUp(): Promise<void> {
  await docker.prepare();
  detail(`Docker engine ${docker.serverVersion}; compose: ${docker.composeVersion} (\`${docker.compose.join(" ")}\`)`);
  compose = new Compose(docker.compose, project, join(repoRoot, "docker-compose.yml"), composeEnv, repoRoot);
  const leftovers = await compose.leftovers();
  if (leftovers.length > 0) {
    detail(`removing what an earlier run left: ${leftovers.join(", ")}`);
    await compose.run(["down", "-v", "--remove-orphans", "-t", "5"], 120_000, { profile: "grow" });
  }
  const ports = [8080, 7001, 7002, 7003, 7004, 7005];
  const busy: number[] = [];
  for (const port of ports) if (await portInUse(port)) busy.push(port);
  must(
    busy.length === 0,
    busy.length === 0
      ? `the ports it publishes are free: 127.0.0.1:${ports.join(", ")}`
      : `127.0.0.1:${busy.join(", ")} in use (npm start, or another compose project?): the demo publishes ${ports.join(", ")}`,
  );
  detail("building the image (npm ci and tsc inside the build stage; the first build takes a few minutes) …");
  imageBuilt = true;
  const build = await compose.run(["build"], 1_200_000, {
    onLine: (line) => {
      if (/^Step \d+\/\d+ : (RUN|FROM)/.test(line)) detail(`  ${line.slice(0, 120)}`);
    },
  });
  const inspected = await run(
    "docker",
    ["image", "inspect", "--format", "{{.Size}}\t{{.Config.User}}\t{{json .Config.Healthcheck}}", image],
    {
      timeoutMs: 15_000,
    },
  );
  const [size, user, healthcheck] = inspected.stdout.trim().split("\t");
  must(inspected.code === 0, `image ${image} built in ${seconds(build.ms)}: ${(Number(size) / 1e6).toFixed(0)} MB`);
  check(user === "node", `it runs as the non-root user "${user}"`);
  check((healthcheck ?? "null") !== "null", `it has a health check: ${(healthcheck ?? "").slice(0, 90)}`);
  figures.push(`image build ${seconds(build.ms)}, ${(Number(size) / 1e6).toFixed(0)} MB`);

  const nodesUp = await compose.run(["up", "-d", ...founders], 300_000);
  const nodes = await Promise.all(founders.map((id) => (compose as Compose).waitHealthy(id, 1, 90_000)));
  check(nodes.length === 3, `node1, node2, node3 healthy over HTTPS, with certificates and secrets from ${secretsDir}`);
  const leader = await waitFor(() => findLeader(founders), "a leader", 30_000);
  check(true, `leader: ${leader.nodeId} in term ${leader.term}; voters ${leader.voters.join(", ")}`);
  await makeSchedulerCredential();
  const up = await compose.run(["up", "-d"], 300_000);
  await compose.waitHealthy("scheduler", 1, 90_000);
  check(true, `the scheduler healthy with its own locker token (up in ${seconds(nodesUp.ms + up.ms)})`);
  const api = await waitFor(
    async () => {
      try {
        const answer = await request(`${lbUrl}/api`, "GET");
        return answer.status === 200 ? answer : undefined;
      } catch {
        return undefined;
      }
    },
    "the booking API through the load balancer",
    30_000,
    250,
  );
  check(api.body["name"] === "SCTEC booking API", `the booking API answers on ${lbUrl}/api (through lb), up in ${seconds(up.ms)}`);
  for (const id of founders) {
    const page = await fetch(`${nodeUrl(id)}/`, { signal: AbortSignal.timeout(3000), dispatcher: hostDispatcher }).catch(() => undefined);
    const html = page?.ok === true ? await page.text() : "";
    check(html.includes("<html"), `${id}'s status page is reachable from the host: ${nodeUrl(id)}/`);
  }
}

/**
 * makeSchedulerCredential makes the booking API's `locker` credential with the bootstrap admin
 * token and writes its token into the scheduler's secret file (in place: its owner and mode stay
 * those the containers can read), then shows what the roles allow: the scheduler's token may lock
 * but not administer, and a request in the clear gets nowhere.
 */
async function makeSchedulerCredential(): Promise<void> {
  const admin = new LockClient({ nodes: founders.map(nodeUrl), apiToken: secrets.apiToken, retriesMax: 20, tls: { ca: secrets.ca } });
  const made = await admin.createCredential({ name: "scheduler", role: "locker" });
  writeFileSync(secrets.schedulerTokenFile, made.token);
  check(
    made.role === "locker",
    `made the booking API's credential "scheduler" (role locker) at index ${made.issuedIndex}; its token went into the secret file only`,
  );
  const asScheduler = new LockClient({ nodes: founders.map(nodeUrl), apiToken: made.token, retriesMax: 2, tls: { ca: secrets.ca } });
  const refused = await asScheduler.admin("/admin/transfer", { to: "node1" }).then(
    () => "accepted",
    (error: Error & { code?: string }) => error.code ?? error.message,
  );
  check(
    refused === "forbidden",
    `the scheduler's token may not administer the cluster: a leadership transfer with it is refused (${refused})`,
  );
  const plain = await globalThis
    .fetch(`${nodeUrl("node1").replace("https://", "http://")}/status`, { signal: AbortSignal.timeout(3000) })
    .then(
      (response) => `answered ${response.status}`,
      () => "refused",
    );
  check(plain === "refused", `a request in the clear to node1 gets no answer (${plain})`);
}

async function stepScale(): Promise<void> {
  const scaled = await (compose as Compose).run(["up", "-d", "--no-deps", "--scale", "scheduler=3", "scheduler"], 180_000);
  const schedulers = await (compose as Compose).waitHealthy("scheduler", 3, 120_000);
  await refreshSchedulerNames();
  must(
    schedulers.length === 3,
    `3 schedulers healthy: ${schedulers.map((container) => container.name).join(", ")} (\`up --scale scheduler=3\` took ${seconds(scaled.ms)})`,
  );
  client = new LockClient({ nodes: founders.map(nodeUrl), apiToken: secrets.apiToken, retriesMax: 20, tls: { ca: secrets.ca } });
  sentinel = await client.acquire(["demo-sentinel"], { ttlMs: 600_000, autoRenew: false });
  detail(`took the lease demo-sentinel (fencing token ${sentinel.token}, 10 minutes): it must survive every step below`);
  await load.prepare();
  loadPrepared = true;
  detail(
    `registered ${load.keys.length} scientists; ${workers} workers now book through ${lbUrl}, one booking each at a time, ${pauseMs} ms apart`,
  );
  const from = now();
  load.start();
  await waitFor(
    async () => {
      const answered = load.answered(from);
      return answered.length >= 40 && new Set(answered.map((outcome) => outcome.upstream)).size >= 3 ? true : undefined;
    },
    "40 answers from 3 schedulers",
    40_000,
    250,
  ).catch(() => undefined);
  const answered = load.answered(from);
  const elapsed = now() - from;
  detail(
    `${answered.length} bookings answered in ${seconds(elapsed)} (${((answered.length * 1000) / elapsed).toFixed(1)}/s): ${countBy(answered, (outcome) => `${outcome.status}${outcome.code === undefined ? "" : ` ${outcome.code}`}`)}`,
  );
  const served = new Set(answered.map((outcome) => outcome.upstream));
  check(served.size === 3, `answers came from ${served.size} schedulers: ${countBy(answered, (outcome) => nameOf(outcome.upstream))}`);
  check(answered.filter((outcome) => outcome.status === 201).length >= 10, "bookings are being made (at least 10 × 201)");
  checkAnswers(from, "so far");
}

/** containerTime: a container's StartedAt or FinishedAt (Docker's record, to the millisecond), on this process's clock. */
async function containerTime(id: string, field: "StartedAt" | "FinishedAt"): Promise<{ atMs: number; wallMs: number } | undefined> {
  const inspected = await run("docker", ["inspect", "--format", `{{.State.${field}}}`, id], { timeoutMs: 15_000 });
  const wallMs = Date.parse(inspected.stdout.trim().replace(/(\.\d{3})\d*/, "$1"));
  return Number.isFinite(wallMs) ? { atMs: now() - (Date.now() - wallMs), wallMs } : undefined;
}

/** killContainer sends SIGKILL with `docker kill` and answers when the process died, as Docker recorded it. */
async function killContainer(container: ContainerInfo): Promise<{ atMs: number; wallMs: number }> {
  const issuedMs = now();
  await runOk("docker", ["kill", container.id], { timeoutMs: 30_000 });
  return (await containerTime(container.id, "FinishedAt")) ?? { atMs: issuedMs, wallMs: Date.now() - (now() - issuedMs) };
}

let killedNode: string | undefined;
let killedStatus: NodeStatus | undefined;
let killedAtMs = 0;

interface StatusPageView {
  readonly view: { readonly leaderId: string | null; readonly warnings: readonly string[] };
  readonly members: readonly { readonly id: string; readonly url: string | null; readonly reachability: string }[];
  readonly timeline: readonly { readonly kind: string; readonly text: string; readonly atMs: number }[];
}

async function stepKillLeader(): Promise<void> {
  const leader = await waitFor(() => findLeader(founders), "the leader", 15_000);
  const [container] = await (compose as Compose).containers(leader.nodeId);
  must(container?.status === "running", `the leader is ${leader.nodeId} (term ${leader.term}, commit index ${leader.commitIndex})`);
  killedNode = leader.nodeId;
  killedStatus = leader;
  const survivors = founders.filter((id) => id !== leader.nodeId);
  detail(`docker kill ${(container as ContainerInfo).name} (SIGKILL) while bookings flow …`);
  const kill = await killContainer(container as ContainerInfo);
  const killedAt = kill.atMs;
  killedAtMs = killedAt;
  const elected = await waitFor(
    async () => {
      const next = await findLeader(survivors);
      return next !== undefined && next.term > leader.term ? next : undefined;
    },
    "a new leader",
    20_000,
    50,
  );
  const seenMs = now() - killedAt;
  // The survivor's own timeline says when the new leader took over (the poll above only says by when).
  const watcher = survivors.find((id) => id !== elected.nodeId) ?? elected.nodeId;
  const view = await waitFor(
    async () => {
      const seen = await getJson<StatusPageView>(`${nodeUrl(watcher)}/status/view`);
      const dead = seen?.members.find((member) => member.id === leader.nodeId);
      return seen?.view.leaderId === elected.nodeId && dead?.reachability === "unreachable" ? seen : undefined;
    },
    `${watcher}'s status page to show the new leader and ${leader.nodeId} unreachable`,
    20_000,
    100,
  ).catch((error: Error) => {
    check(false, error.message);
    return undefined;
  });
  const takeover = view?.timeline.find(
    (event) => event.kind === "leader_changed" && event.text.includes(elected.nodeId) && event.atMs >= kill.wallMs - 50,
  );
  const electedMs = takeover === undefined ? undefined : takeover.atMs - kill.wallMs;
  check(
    true,
    `new leader ${elected.nodeId} in term ${elected.term}: ${electedMs === undefined ? `seen ${seenMs.toFixed(0)} ms after the kill` : `${electedMs.toFixed(0)} ms after the kill (${watcher}'s timeline)`}`,
  );
  if (view !== undefined) {
    check(
      true,
      `${watcher}'s status page (${nodeUrl(watcher)}/) shows it: leader ${view.view.leaderId}; ${view.members
        .filter((member) => founders.includes(member.id as (typeof founders)[number]))
        .map((member) => `${member.id} ${member.reachability}`)
        .join(", ")}`,
    );
    for (const event of view.timeline.filter((item) => item.atMs >= kill.wallMs - 100).slice(0, 5)) {
      detail(`  timeline: +${(event.atMs - kill.wallMs).toFixed(0).padStart(4)} ms  ${event.text}`);
    }
    const links = view.members.filter((member) => founders.includes(member.id as (typeof founders)[number])).map((member) => member.url);
    check(
      links.every((url) => url?.startsWith("https://127.0.0.1:700") === true),
      `its links lead to pages a browser on the host can open (${links.join(", ")})`,
    );
  }
  const resumed = await waitFor(
    async () => {
      const made = load.outcomes.filter((outcome) => outcome.sentMs >= killedAt && outcome.status === 201);
      return made.length >= 5 ? made : undefined;
    },
    "five bookings sent after the kill to be made",
    45_000,
    50,
  );
  const first = Math.min(...resumed.map((outcome) => outcome.answeredMs)) - killedAt;
  await sleep(Math.max(0, killedAt + 8000 - now()));
  const silence = load.longestSilence(killedAt - 2000, killedAt + 8000);
  const at = (ms: number): string => `${ms >= 0 ? "+" : ""}${(ms / 1000).toFixed(2)} s`;
  const gap = `${(silence.ms / 1000).toFixed(2)} s (${at(silence.fromMs - killedAt)} to ${at(silence.toMs - killedAt)} from the kill)`;
  check(
    silence.ms < 15_000,
    `bookings went on: from 2 s before to 8 s after the kill, the longest time without any booking answered was ${gap}; the first booking sent after the kill was made ${at(first)} after it`,
  );
  // A booking in flight at the kill may have been waiting on the dead leader: its scheduler gives up
  // on that node after SCHEDULER_CLUSTER_TIMEOUT_MS (3 s) and tries another, so it is slow, not lost.
  const caught = load.outcomes.filter((outcome) => outcome.sentMs < killedAt && outcome.answeredMs > killedAt);
  detail(
    `${caught.length} bookings were in flight at the kill; they took ${caught.map((outcome) => seconds(outcome.answeredMs - outcome.sentMs)).join(", ") || "-"}; ${failedAttemptsSince(killedAt - 1000, killedAt + 8000)}`,
  );
  checkAnswers(killedAt - 10_000, "around the kill");
  check(await sentinelHeld(), `the lease demo-sentinel is still held, token ${sentinel?.token}`);
  figures.push(
    `leader kill: new leader after ${electedMs === undefined ? `≤ ${seenMs.toFixed(0)}` : electedMs.toFixed(0)} ms; longest gap without answers ${gap}; first new booking made ${at(first)} after the kill`,
  );
}

async function stepRestart(): Promise<void> {
  must(killedNode !== undefined, "step 3 killed a node to restart");
  const id = killedNode as string;
  const others = founders.filter((other) => other !== id);
  const [container] = await (compose as Compose).containers(id);
  must(container !== undefined, `${id}'s container is there, stopped`);
  const leader = await waitFor(() => findLeader(others), "the leader", 15_000);
  const commitAtRestart = leader.commitIndex;
  const missed = commitAtRestart - (killedStatus?.commitIndex ?? 0);
  detail(
    `${id} has been down ${seconds(now() - killedAtMs)}: it had applied ${killedStatus?.appliedIndex}, the cluster has since committed up to ${commitAtRestart} (${missed} entries more); docker start ${(container as ContainerInfo).name} …`,
  );
  await runOk("docker", ["start", (container as ContainerInfo).id], { timeoutMs: 60_000 });
  const startedAt = (await containerTime((container as ContainerInfo).id, "StartedAt"))?.atMs ?? now();
  let first: { status: NodeStatus; atMs: number } | undefined;
  const caught = await waitFor(
    async () => {
      const status = await getJson<NodeStatus>(`${nodeUrl(id)}/status`, 500);
      if (status !== undefined && first === undefined) first = { status, atMs: now() };
      return status !== undefined && status.appliedIndex >= commitAtRestart ? { status, atMs: now() } : undefined;
    },
    `${id} to apply index ${commitAtRestart}`,
    45_000,
    25,
  );
  const answered = first as { status: NodeStatus; atMs: number };
  detail(
    `${id} answered ${seconds(answered.atMs - startedAt)} after its process started, at applied index ${answered.status.appliedIndex} (term ${answered.status.term}, ${answered.status.role})`,
  );
  check(
    true,
    `${id} caught up: applied index ${caught.status.appliedIndex} ≥ ${commitAtRestart} ${seconds(caught.atMs - startedAt)} after its process started${caught.status.snapshotIndex > 0 ? ` (it has a snapshot at ${caught.status.snapshotIndex})` : ""}`,
  );
  await (compose as Compose).waitHealthy(id, 1, nodeHealthyTimeoutMs);
  // The leader is read again at each sample, not kept from before the restart: under load the
  // cluster may elect another leader meanwhile (the CI run of 2026-12-07 20:20 waited 30 s for node2
  // to follow the leader of before the restart), and following the cluster's current leader is what
  // catching up means. The last sample is kept so that a timeout says what the node reported.
  let last = "no status yet";
  const level = await waitFor(
    async () => {
      const statuses = (await Promise.all(founders.map(nodeStatus))).filter((status) => status !== undefined);
      const ahead = await findLeader(founders);
      const behind = statuses.find((status) => status.nodeId === id);
      last = `${id}: ${behind === undefined ? "no answer" : `${behind.role} of ${behind.leaderId ?? "no one"} in term ${behind.term}, applied ${behind.appliedIndex}`}; leader: ${ahead === undefined ? "none found" : `${ahead.nodeId} in term ${ahead.term}, commit ${ahead.commitIndex}`}`;
      const following = behind?.role === "follower" && behind.leaderId === ahead?.nodeId && behind.term === ahead?.term;
      return ahead !== undefined && behind !== undefined && following && behind.appliedIndex >= ahead.commitIndex - 10
        ? { ahead, behind }
        : undefined;
    },
    `${id} to follow the leader and keep up with it`,
    30_000,
    50,
  ).catch((error: unknown) => {
    throw new Error(`${error instanceof Error ? error.message : String(error)}; last sample: ${last}`);
  });
  if (level.ahead.nodeId !== leader.nodeId || level.ahead.term !== leader.term) {
    detail(
      `the leader changed during the restart: ${leader.nodeId} in term ${leader.term} before it, ${level.ahead.nodeId} in term ${level.ahead.term} after`,
    );
  }
  check(
    level.behind.role === "follower" && level.behind.leaderId === level.ahead.nodeId,
    `${id} is healthy, a ${level.behind.role} of the leader ${level.behind.leaderId} (term ${level.behind.term}), and keeps up under load: applied ${level.behind.appliedIndex}, leader's commit ${level.ahead.commitIndex}`,
  );
  figures.push(
    `restart of ${id}: answered ${seconds(answered.atMs - startedAt)} after start (applied ${answered.status.appliedIndex}), applied the ${missed} entries it missed (to ${commitAtRestart}) ${seconds(caught.atMs - startedAt)} after start`,
  );
  checkAnswers(startedAt, "during the restart");
}

async function stepKillScheduler(): Promise<void> {
  const schedulers = (await refreshSchedulerNames()).filter((container) => container.status === "running");
  must(schedulers.length === 3, `3 schedulers running (${schedulers.map((container) => container.name).join(", ")})`);
  const victim = schedulers[1] as ContainerInfo;
  const victimUpstream = `${victim.ip}:8080`;
  const burstSize = 24;
  detail(
    `${burstSize} bookings at once beside the steady load, and docker kill ${victim.name} (${victimUpstream}) while they are in flight …`,
  );
  const burst = load.burst(burstSize);
  await sleep(150);
  const kill = await killContainer(victim);
  const killedAt = kill.atMs;
  await Promise.race([burst, sleep(60_000)]);
  await sleep(Math.max(0, killedAt + 10_000 - now()));
  // Cut off by the kill: a booking with a failed attempt on the victim, answered after the victim
  // died (its container's FinishedAt). One answered before that was answered by the victim alive:
  // at a load of 25, `docker kill` took seconds, and a booking that had met two 503s on the victim
  // (the cluster slow) was then booked by it, before it died, and counted as cut off.
  const cut = load.outcomes.filter(
    (outcome) => outcome.answeredMs >= killedAt && outcome.failures.some((failure) => failure.upstream === victimUpstream),
  );
  const waited = cut.filter((outcome) =>
    outcome.failures.some((failure) => failure.what === "409 slot_busy" || failure.what === "503 booking_in_progress"),
  ).length;
  // Whether a request is on the victim at the very instant of the kill is timing: it is reported,
  // not required. What the step requires is that clients get their answers from the others.
  if (cut.length > 0) {
    detail(
      `the kill cut off ${cut.length} bookings in flight on ${victim.name} (nginx answered them ${countBy(
        cut.flatMap((outcome) => outcome.failures.filter((failure) => failure.upstream === victimUpstream)),
        (failure) => failure.what,
      )})${waited > 0 ? `; ${waited} of them then met their own first attempt's lease and asked again until it was decided` : ""}`,
    );
  } else {
    detail("the kill happened to catch no booking in flight on the victim (timing); the checks below still apply");
  }
  if (cut.length > 0) {
    check(
      cut.every((outcome) => outcome.upstream !== victimUpstream && clear(outcome)),
      `each was sent again with its Idempotency-Key and answered by the others: ${countBy(cut, (outcome) => `${outcome.status}${outcome.code === undefined ? "" : ` ${outcome.code}`} by ${nameOf(outcome.upstream)}`)}`,
    );
  }
  const after = load.answered(killedAt).filter((outcome) => outcome.sentMs >= killedAt);
  check(
    after.length >= 10,
    `${after.length} bookings sent after the kill were answered within 10 s, by ${countBy(after, (outcome) => nameOf(outcome.upstream))}`,
  );
  check(
    after.every((outcome) => outcome.upstream !== victimUpstream),
    `none by the killed ${victim.name}`,
  );
  checkAnswers(killedAt - 1000, "around the kill");
  const restored = await (compose as Compose).run(["up", "-d", "--no-deps", "--scale", "scheduler=3", "scheduler"], 180_000);
  await (compose as Compose).waitHealthy("scheduler", 3, 120_000);
  await refreshSchedulerNames();
  check(true, `back to 3 healthy schedulers (${seconds(restored.ms)} for \`up --scale scheduler=3\`, then health)`);
  figures.push(`scheduler kill: ${cut.length} bookings cut off in flight, all answered by the other schedulers on retry`);
}

async function stepGrow(): Promise<void> {
  const lockClient = client as LockClient;
  const from = now();
  // The leader may be node4 or node5 once they vote (an election under load): look among all five.
  const voters = async (): Promise<string[]> =>
    [...((await waitFor(() => findLeader([...founders, ...spares]), "the leader", 15_000)).voters ?? [])].sort();
  detail(`voters now: ${(await voters()).join(", ")}; starting node4 and node5 (profile grow, SCTEC_JOIN=true) …`);
  await (compose as Compose).run(["up", "-d", "--no-deps", ...spares], 180_000, { profile: "grow" });
  await Promise.all(spares.map((id) => (compose as Compose).waitHealthy(id, 1, nodeHealthyTimeoutMs)));
  for (const id of spares) {
    const addedAt = now();
    await lockClient.admin("/admin/members", { action: "add_learner", nodeId: id });
    const leader = await waitFor(() => findLeader([...founders, ...spares]), "the leader", 15_000);
    const caught = await waitFor(
      async () => {
        const status = await nodeStatus(id);
        return status !== undefined && status.appliedIndex >= leader.commitIndex ? status : undefined;
      },
      `${id} to catch up as a learner`,
      45_000,
      100,
    );
    await waitFor(
      async () => {
        try {
          return await lockClient.admin("/admin/members", { action: "promote_learner", nodeId: id });
        } catch {
          return undefined; // Not caught up enough yet for the leader: try again.
        }
      },
      `${id}'s promotion`,
      30_000,
      250,
    );
    check(true, `${id} added as a learner, caught up (applied ${caught.appliedIndex}), promoted to voter: ${seconds(now() - addedAt)}`);
  }
  const five = await waitFor(async () => ((await voters()).length === 5 ? await voters() : undefined), "five voters", 15_000, 250);
  check(true, `five voters: ${five.join(", ")}`);
  const grownAt = now();
  await waitFor(
    async () => (load.outcomes.filter((outcome) => outcome.sentMs >= grownAt && outcome.status === 201).length >= 3 ? true : undefined),
    "bookings with five voters",
    30_000,
    100,
  );
  check(true, "bookings are made with five voters");
  const leader = await waitFor(() => findLeader([...founders, ...spares]), "the leader", 15_000);
  if ((spares as readonly string[]).includes(leader.nodeId)) {
    detail(`${leader.nodeId} leads: handing leadership to node1 before removing it`);
    await lockClient.admin("/admin/transfer", { to: "node1" });
    await waitFor(async () => ((await findLeader(founders))?.nodeId === "node1" ? true : undefined), "node1 to lead", 15_000);
  }
  for (const id of [...spares].reverse()) {
    await lockClient.admin("/admin/members", { action: "remove_node", nodeId: id });
    await waitFor(async () => (!(await voters()).includes(id) ? true : undefined), `${id}'s removal`, 20_000, 250);
    check(true, `${id} removed from the cluster`);
  }
  const three = await voters();
  check(three.join(",") === founders.join(","), `three voters again: ${three.join(", ")}`);
  await (compose as Compose).run(["stop", "-t", "10", ...spares], 60_000, { profile: "grow" });
  await (compose as Compose).run(["rm", "-f", ...spares], 60_000, { profile: "grow" });
  detail("stopped and removed the node4 and node5 containers (their volumes go with the teardown)");
  check(await sentinelHeld(), `the lease demo-sentinel is still held, token ${sentinel?.token}`);
  checkAnswers(from, "while the cluster grew and shrank");
  figures.push(`grow to 5 and back to 3 under load: ${seconds(now() - from)}`);
}

/** restartCount: how many times Docker has restarted a container by its restart policy. */
async function restartCount(id: string): Promise<number | undefined> {
  const inspected = await run("docker", ["inspect", "--format", "{{.RestartCount}}", id], { timeoutMs: 15_000 });
  const count = Number(inspected.stdout.trim());
  return inspected.code === 0 && Number.isInteger(count) ? count : undefined;
}

async function stepRollingRestart(): Promise<void> {
  const containers = new Map<string, ContainerInfo>();
  for (const id of founders) {
    const [container] = await (compose as Compose).containers(id);
    must(container?.status === "running", `${id}'s container is running`);
    containers.set(id, container as ContainerInfo);
  }
  const restartsBefore = new Map(
    await Promise.all(founders.map(async (id) => [id, await restartCount((containers.get(id) as ContainerInfo).id)] as const)),
  );
  const leader = await waitFor(() => findLeader(founders), "the leader", 15_000);
  detail(
    `the leader is ${leader.nodeId} (term ${leader.term}); each node is asked in turn to restart (POST /admin/restart: it stops gracefully, a leader handing its leadership over first, and exits 75; compose's restart policy starts it again), followers first, while bookings flow …`,
  );
  const from = now();
  const report = await rollingRestart({
    client: new LockClient({ nodes: founders.map(nodeUrl), apiToken: secrets.apiToken, retriesMax: 4, tls: { ca: secrets.ca } }),
    nodes: founders.map(nodeUrl),
    restartTimeoutMs: 120_000,
    catchUpTimeoutMs: 60_000,
    onProgress: (message) => detail(`  ${message.trim()}`),
  });
  const to = now();
  await sleep(2000); // Bookings in flight at the end of the roll get their answers.
  must(
    report.restarted.length === 3,
    `every node restarted and caught up, in ${seconds(report.totalMs)}: ${report.restarted
      .map(
        (each) =>
          `${each.nodeId}${each.wasLeader ? " (the leader)" : ""} back after ${seconds(each.backMs)}, caught up ${each.caughtUpMs.toFixed(0)} ms later`,
      )
      .join("; ")}`,
  );
  check(report.restarted.at(-1)?.nodeId === leader.nodeId, `the leader ${leader.nodeId} went last`);
  for (const id of founders) {
    const after = await restartCount((containers.get(id) as ContainerInfo).id);
    const before = restartsBefore.get(id);
    check(
      before !== undefined && after === before + 1,
      `${id}'s container was restarted by Docker's restart policy (RestartCount ${before} → ${after})`,
    );
  }
  check(
    report.leaders.length - 1 <= 1,
    `leadership moved ${report.leaders.length - 1} time(s): ${report.leaders.join(" → ")} (once at most: when the leader restarted)`,
  );
  const silence = load.longestSilence(from, to);
  const failed = load.failedAttempts.filter((attempt) => attempt.atMs >= from && attempt.atMs <= to + 2000);
  // The issue's measure is failed bookings: every booking must end with a clear answer (checked
  // next). An attempt that failed and was retried with its Idempotency-Key, as the booking page
  // retries, is reported beside it: one 503 cluster_unavailable in a CI run of this step, where
  // the run before had none; a leader's hand-over is not yet free of them (issue 17).
  detail(`booking attempts during the roll: ${failedAttemptsSince(from, to + 2000)}`);
  checkAnswers(from, "during the rolling restart (no booking failed)");
  check(silence.ms < 15_000, `the longest time without any booking answered during the roll was ${seconds(silence.ms)}`);
  check(await sentinelHeld(), `the lease demo-sentinel is still held, token ${sentinel?.token}`);
  figures.push(
    `rolling restart of three nodes under load: ${seconds(report.totalMs)}, ${load.answered(from, to).length} bookings answered meanwhile, ${failed.length} failed attempts, longest gap ${seconds(silence.ms)}, ${report.leaders.length - 1} leader change(s)`,
  );
}

async function readAll(prefix: string): Promise<{ key: string; value: string }[]> {
  const items: { key: string; value: string }[] = [];
  let after = "";
  for (let page = 0; page < 100_000; page += 1) {
    const result = await (client as LockClient).range(prefix, { limit: 1000, after });
    items.push(...result.items);
    const last = result.items.at(-1);
    if (!result.more || last === undefined) return items;
    after = last.key;
  }
  throw new Error(`more than 100000 pages under ${prefix}`);
}

async function stepVerify(): Promise<void> {
  await load.stop();
  const all = load.outcomes;
  const elapsed = (all.at(-1)?.answeredMs ?? now()) - (all[0]?.sentMs ?? now());
  detail(
    `the load stopped: ${all.length} bookings in ${seconds(elapsed)} (${((all.length * 1000) / Math.max(1, elapsed)).toFixed(1)}/s): ${countBy(all, (outcome) => `${outcome.status}${outcome.code === undefined ? "" : ` ${outcome.code}`}`)}; ${load.failedAttempts.length} attempts retried`,
  );
  const statuses = await waitFor(
    async () => {
      const seen = await Promise.all(founders.map(nodeStatus));
      const applied = new Set(seen.map((status) => status?.appliedIndex));
      return seen.every((status) => status !== undefined) && applied.size === 1 ? (seen as NodeStatus[]) : undefined;
    },
    "the three nodes to apply the same index",
    20_000,
    200,
  );
  check(true, `node1, node2, node3 agree: applied index ${statuses[0]?.appliedIndex} on each`);

  interface StoredBooking {
    readonly id: string;
    readonly telescopeId: string;
    readonly slots: readonly string[];
    readonly status: string;
  }
  const stored = new Map<string, StoredBooking>();
  for (const item of await readAll("booking/")) {
    const booking = JSON.parse(item.value) as StoredBooking;
    stored.set(booking.id, booking);
  }
  const confirmed = [...stored.values()].filter((booking) => booking.status === "confirmed");
  const created = new Map(all.filter((outcome) => outcome.status === 201).map((outcome) => [outcome.bookingId as string, outcome]));
  const missing = [...created.values()].filter(
    (outcome) =>
      stored.get(outcome.bookingId as string)?.status !== "confirmed" ||
      stored.get(outcome.bookingId as string)?.slots.join(",") !== outcome.slots.join(","),
  );
  check(
    missing.length === 0,
    `every booking that got a 201 is stored, confirmed, with its slots: ${created.size - missing.length} of ${created.size}${missing.length > 0 ? `; missing: ${missing.map((outcome) => outcome.bookingId).join(", ")}` : ""}`,
  );
  const unresolved = all.filter((outcome) => outcome.status === 0).length;
  const extra = confirmed.filter((booking) => !created.has(booking.id));
  check(
    extra.length <= unresolved,
    `no booking stored that no client was told about: ${confirmed.length} confirmed in the cluster, ${created.size} answered 201${unresolved > 0 ? `, ${unresolved} unanswered` : ""}`,
  );

  const owner = new Map<string, string>();
  const overlaps: string[] = [];
  for (const booking of confirmed) {
    for (const slot of booking.slots) {
      const key = `${booking.telescopeId} ${slot}`;
      const other = owner.get(key);
      if (other !== undefined) overlaps.push(`${key}: ${other} and ${booking.id}`);
      owner.set(key, booking.id);
    }
  }
  check(
    overlaps.length === 0,
    `no two bookings overlap: ${owner.size} slots held by ${confirmed.length} bookings${overlaps.length > 0 ? `; overlaps: ${overlaps.slice(0, 5).join("; ")}` : ""}`,
  );
  const claims = await readAll("slot/");
  const wrongClaims = claims.filter((item) => {
    const [, telescopeId, slot] = item.key.split("/");
    return owner.get(`${telescopeId} ${slot}`) !== (JSON.parse(item.value) as { bookingId: string }).bookingId;
  });
  check(
    claims.length === owner.size && wrongClaims.length === 0,
    `the slot claims match the bookings: ${claims.length} claims${wrongClaims.length > 0 ? `, ${wrongClaims.length} wrong` : ""}`,
  );

  const records = (await readAll(chainPrefix("audit"))).map((item) => JSON.parse(item.value) as ChainRecord);
  const verdict = verifyChain(records);
  const auditIds = records
    .map((record) => JSON.parse(record.record) as { event_type: string; details: { booking_id?: string } })
    .filter((record) => record.event_type === "BOOKING_CREATED")
    .map((record) => record.details.booking_id);
  const auditSet = new Set(auditIds);
  const unaudited = confirmed.filter((booking) => !auditSet.has(booking.id));
  check(
    verdict.ok && auditIds.length === auditSet.size && unaudited.length === 0 && auditSet.size === stored.size,
    `the audit chain verifies: ${verdict.ok ? `${verdict.count} records, head ${verdict.headHash.slice(0, 12)}…` : `broken at seq ${verdict.brokenAtSeq}: ${verdict.reason}`}; one BOOKING_CREATED per stored booking (${auditSet.size} for ${stored.size})`,
  );
  const viaApi = await request(`${lbUrl}/audit?limit=1`, "GET", { key: load.keys[0] as string });
  const chain = viaApi.body["chain"] as { verified?: boolean } | undefined;
  check(chain?.verified === true, `GET /audit through the load balancer agrees: ${JSON.stringify(chain)}`);
  figures.push(`load: ${all.length} bookings (${created.size} × 201), all verified in the cluster`);
}

/** readable shortens a `logs` line for the narration: a JSON record to its time, level and message; other lines as they are. */
function readable(line: string): string {
  const bar = line.indexOf("|");
  const prefix = line.slice(0, bar).trim();
  const text = line.slice(bar + 1).trim();
  let shown = text;
  try {
    const record = JSON.parse(text) as {
      time?: string;
      level?: number | string;
      msg?: string;
      event_type?: string;
      details?: { booking_id?: string };
    };
    const level =
      typeof record.level === "string"
        ? record.level
        : ({ 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" }[record.level ?? 30] ?? "?");
    const message = record.event_type === undefined ? record.msg : `${record.event_type} ${record.details?.booking_id ?? ""}`;
    shown = `${(record.time ?? "").slice(11, 23)} ${level.padEnd(5)} ${message}`;
  } catch {
    // Not JSON (nginx's access log): shown as it is.
  }
  const full = `${prefix.padEnd(22)} | ${shown}`;
  return full.length > 150 ? `${full.slice(0, 149)}…` : full;
}

async function stepLogsAndDown(): Promise<void> {
  const target = compose as Compose;
  // `logs -f` never ends by itself: its time limit stops it, as a user's Ctrl-C would. While it
  // follows, a few requests through lb and a lock make every kind of service write live lines.
  const following = target.runLoose(["logs", "-f", "--no-color", "--tail=2"], 8000);
  await sleep(3000);
  try {
    for (let count = 0; count < 4; count += 1) await request(`${lbUrl}/time`, "GET");
    const lease = await client?.acquire(["demo-logs"], { ttlMs: 5000, autoRenew: false });
    await lease?.release();
  } catch (error) {
    detail(`(the live requests failed: ${(error as Error).message})`);
  }
  const logs = await following;
  // compose v2 starts each line with a terminal control sequence (erase line) even with --no-color.
  const control = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, "g");
  const lines = logs.stdout
    .replace(control, "")
    .split("\n")
    .filter((line) => line.includes("|"));
  const services = new Set<string>();
  let unreadable = 0;
  for (const line of lines) {
    const bar = line.indexOf("|");
    const prefix = line.slice(0, bar).trim();
    const text = line.slice(bar + 1).trim();
    services.add(prefix);
    if (/node\d|scheduler/.test(prefix)) {
      try {
        const parsed = JSON.parse(text) as { msg?: unknown };
        if (typeof parsed.msg !== "string") unreadable += 1;
      } catch {
        unreadable += 1;
      }
    }
  }
  detail(
    `\`${docker.compose.join(" ")} logs -f --tail=2\` for 8 s: each container's last lines, then the live lines of four GET /time through lb and a lock taken and released, interleaved (JSON shortened here to time, level, message):`,
  );
  for (const line of lines.slice(0, 40)) detail(`  ${readable(line)}`);
  if (lines.length > 40) detail(`  … and ${lines.length - 40} lines more`);
  const prefixes = [...services];
  const has = (pattern: RegExp, count = 1): boolean => prefixes.filter((prefix) => pattern.test(prefix)).length >= count;
  // Without a system up (step 1 failed), the slice is only there to help find out why.
  const systemRan = results.find((result) => result.n === 2)?.ok === true;
  check(
    !systemRan || (has(/node1/) && has(/node2/) && has(/node3/) && has(/scheduler/, 3) && has(/lb/)),
    `${lines.length} lines from ${prefixes.length} containers, each line prefixed with its container (${prefixes.join(", ")})`,
  );
  check(
    unreadable === 0,
    `every node and scheduler line is one complete JSON log record with its message${unreadable > 0 ? ` (${unreadable} are not)` : ""}`,
  );

  const down = await target.run(["down", "-v", "--remove-orphans", "-t", "10"], 180_000, { profile: "grow" });
  const leftovers = await target.leftovers();
  check(
    leftovers.length === 0,
    `\`down -v\` removed every container, volume and network in ${seconds(down.ms)}${leftovers.length > 0 ? `; left: ${leftovers.join(", ")}` : ""}`,
  );
  figures.push(`teardown (down -v) ${seconds(down.ms)}`);
}

// ---------------------------------------------------------------- teardown, also on failure and Ctrl-C

let stopping = false;
let cleanedUp: Promise<void> | undefined;

function cleanup(): Promise<void> {
  cleanedUp ??= (async () => {
    if (load.isRunning) await Promise.race([load.stop(), sleep(40_000)]);
    if (compose !== undefined) {
      const leftovers = await compose.leftovers();
      if (leftovers.length > 0) {
        say(`tearing down ${project}: ${leftovers.length} containers, volumes and networks left`);
        await compose.runLoose(["down", "-v", "--remove-orphans", "-t", "5"], 180_000, { profile: "grow", always: true });
        const still = await compose.leftovers();
        if (still.length > 0) say(`could not remove: ${still.join(", ")}`);
      }
    }
    if (imageBuilt && values["keep-images"] !== true) {
      await run("docker", ["rmi", "-f", image], { timeoutMs: 60_000, always: true });
      // The classic builder leaves the build stage behind untagged; only this project's (by its label) go.
      await run("docker", ["image", "prune", "-f", "--filter", "label=sctec.stage=build"], { timeoutMs: 60_000, always: true });
      say(`removed the image ${image} and its build stage (--keep-images keeps them)`);
    }
    if (docker.startedDockerd && values["keep-docker"] !== true) await docker.stopDaemon();
    rmSync(secretsDir, { recursive: true, force: true });
  })();
  return cleanedUp;
}

function summary(): { passed: number; failed: number } {
  const passed = results.filter((result) => result.ok).length;
  return { passed, failed: stepsTotal - passed };
}

function interrupt(reason: string, exitCode: number): void {
  if (stopping) {
    console.log(`${reason} again: leaving without finishing the teardown (docker compose -p ${project} down -v cleans up)`);
    process.exit(exitCode);
  }
  stopping = true;
  abandoned = reason;
  console.log("");
  say(`${reason}: stopping the demo and tearing everything down …`);
  stopRunningCommands();
  void cleanup().finally(() => {
    const { passed, failed } = summary();
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(exitCode);
  });
}
process.on("SIGINT", () => interrupt("interrupted (SIGINT)", 130));
process.on("SIGTERM", () => interrupt("terminated (SIGTERM)", 143));
setTimeout(() => interrupt(`the demo's time limit of ${seconds(demoTimeLimitMs)} ran out`, 1), demoTimeLimitMs).unref();

async function main(): Promise<number> {
  say(`SCTEC compose demo: project ${project}, image ${image}, load balancer ${lbUrl}, status pages ${nodeUrl("node1")}/ …`);
  try {
    // Step 1 may install Docker and build the base images first (a few minutes on a bare machine).
    const up = await step(1, "build the image and bring everything up; wait for health", 2_100_000, stepUp);
    if (!up) abandoned = "step 1 did not bring the system up";
    const scaled = await step(2, "scale the schedulers to 3; drive a steady booking load through the load balancer", 300_000, stepScale);
    if (!scaled && !loadPrepared) abandoned = "step 2 could not start the booking load";
    await step(
      3,
      "kill the Raft leader's container: a new leader, bookings go on, a survivor's status page shows it",
      180_000,
      stepKillLeader,
    );
    await step(4, "restart the killed node: it catches up", 180_000, stepRestart);
    await step(5, "kill a scheduler in the middle of bookings: the others answer", 300_000, stepKillScheduler);
    await step(6, "grow the cluster to five nodes and back to three, under load", 420_000, stepGrow);
    await step(7, "roll all three nodes under booking load (rolling restart): no booking fails", 600_000, stepRollingRestart);
    if (load.isRunning) await load.stop();
    await step(8, "verify from the cluster's own data: every 201 stored, no overlap, the audit chain verifies", 180_000, stepVerify);
    if (!stopping) abandoned = compose === undefined ? "there is nothing to show or tear down" : undefined;
    await step(9, "show a slice of the aggregated logs; tear everything down, volumes included", 300_000, stepLogsAndDown);
  } finally {
    await cleanup();
  }
  console.log("");
  say("summary");
  for (const result of results)
    detail(`${result.ok ? "PASS" : "FAIL"} step ${result.n} (${seconds(result.ms).padStart(8)}): ${result.title}`);
  for (const figure of figures) detail(figure);
  detail(`total ${seconds(now() - startedMs)}`);
  const { passed, failed } = summary();
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

process.exit(await main());
