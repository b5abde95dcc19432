// The horizon rush: N simulated scientists, registered beforehand, all try at the same instant to
// book ranges of the slots that have just become bookable, through three scheduler processes, on
// a three-node cluster of real processes. Each scientist runs the booking page's own client logic
// (scheduler/web/booking.js): its own clock, off by up to ± clockSkewMaxMs, synchronised by Cristian's
// algorithm over GET /time; one Idempotency-Key per click, sent again with the same key while the
// outcome is open; a request a moment early sent again at the opening. A scientist who loses and is
// offered free ranges (409 details.alternatives) clicks the first one, as the page offers.
//
// Then the proofs (rush-checks.ts): from the stored state, and from the cluster's Raft log, read
// from each node's LevelDB once the nodes are stopped.
//
// How the opening is staged: the rush telescopes open their slots in one-hour blocks, one day
// ahead (horizonBlockMinutes 60, horizonDays 1), so a block of 60 one-minute slots per telescope
// opens at each whole hour of the schedulers' clock. The schedulers run with a clock offset
// (SCHEDULER_TEST_CLOCK_OFFSET_MS) that puts the next whole hour a lead time after they start.
// Registration goes through a separate "desk" scheduler first, which is stopped before the rush.
// If the machine is too slow to get every scientist ready before the opening, the three schedulers
// are started again with a lead twice as long (at most three tries).
//
// Used by bench/rush.ts (1,000 scientists) and tests/horizon-rush.test.ts (50).

import { createHash } from "node:crypto";
import { type BookingSystemPids, bookingSystemPids, processesCpuMs } from "../bench/measure.ts";
import { LockClient } from "../client/lock-client.ts";
import { type ChainRecord, chainPrefix, verifyChain } from "../protocol/chain.ts";
import { createSeededRandom } from "../raft/random.ts";
import { ApiError, follow } from "../scheduler/web/api.js";
import { type Click, mayNotBeDecided, monotonicNow, newClick, ServerClock, sendBooking, withRetries } from "../scheduler/web/booking.js";
import { type BookingSystem, startBookingSystem } from "./booking-system.ts";
import { poolFetch } from "./pool-fetch.ts";
import { type CommittedLog, firstDisagreement, readCommittedLog } from "./raft-log.ts";
import {
  type Check,
  checkRush,
  type RushAnswer,
  type RushAuditRecord,
  type RushBooking,
  type RushVerdict,
  replayLog,
  slotName,
} from "./rush-checks.ts";

export interface HorizonRushOptions {
  readonly scientists: number;
  /** telescopes: how many rush telescopes open a block of 60 one-minute slots each. */
  readonly telescopes: number;
  readonly seed: number;
  /** clockSkewMaxMs: each scientist's own clock is off by a random amount up to this, either way. */
  readonly clockSkewMaxMs: number;
  /** slotsPerRangeMax: each scientist wants 1 to this many consecutive slots. */
  readonly slotsPerRangeMax: number;
  readonly progress: (message: string) => void;
  /** schedulerArgs: extra arguments for each scheduler's `node` (for example --cpu-prof, to profile a rush). */
  readonly schedulerArgs?: readonly string[];
}

export interface LatencySummary {
  readonly count: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
}

export interface HorizonRushReport {
  readonly scientists: number;
  readonly schedulers: number;
  readonly telescopes: readonly string[];
  readonly slotsOpened: number;
  /** openingUtc: the opening on the schedulers' clock; blockUtc: the first slot of the block that opened. */
  readonly openingUtc: string;
  readonly blockUtc: string;
  readonly tries: number;
  readonly preparationSeconds: number;
  readonly requests: {
    readonly total: number;
    readonly byStatus: Readonly<Record<string, number>>;
    readonly conflictsByCode: Readonly<Record<string, number>>;
    readonly serverErrors: number;
  };
  readonly clicks: {
    /** first, second: scientists who clicked their first choice, and the first range a 409 offered; again: clicks repeated after an open outcome. */
    readonly first: number;
    readonly firstWon: number;
    readonly second: number;
    readonly secondWon: number;
    readonly again: number;
    readonly endedWith: Readonly<Record<string, number>>;
  };
  /** requestLatency: each booking request, sent to answered; clickLatency: each click, first send to last answer (retries included). */
  readonly requestLatency: LatencySummary;
  readonly clickLatency: LatencySummary;
  /** firstSendMs: when each scientist's first request left, relative to the true opening (negative: early). */
  readonly firstSendMs: {
    readonly minMs: number;
    readonly p50Ms: number;
    readonly p99Ms: number;
    readonly maxMs: number;
    readonly early: number;
  };
  /** clockUncertaintyMs: the synchronised clocks' uncertainty (half the best round trip). */
  readonly clockUncertaintyMs: { readonly p50Ms: number; readonly maxMs: number };
  /** rushSeconds: from the opening to the last answer. */
  readonly rushSeconds: number;
  /** cpuSeconds: CPU time each role used from just before the opening to the last answer (from /proc). */
  readonly cpuSeconds: CpuByRole;
  /** slotsBooked: every slot booked in the rush; slotsBookedInBlock: those of the block that opened (the rest were offered alternatives). */
  readonly slotsBooked: number;
  readonly slotsBookedInBlock: number;
  readonly logEntries: number;
  readonly verdict: RushVerdict;
  readonly checks: readonly Check[];
}

interface Scientist {
  readonly id: string;
  readonly apiKey: string;
  base: string;
  // biome-ignore lint/suspicious/noExplicitAny: the entry point's links, read field by field
  entry: any;
  clock: ServerClock;
  readonly skewMs: number;
  readonly wanted: { readonly telescopeId: string; readonly offsetSlots: number; readonly slots: number };
}

const minuteMs = 60_000;
const hourMs = 60 * minuteMs;
const dayMs = 24 * hourMs;
const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;

/** rushTelescopes: one-minute slots opening in one-hour blocks, one day ahead. */
export function rushTelescopes(count: number, slotsPerRangeMax: number) {
  return Array.from({ length: count }, (_, position) => ({
    id: `rush-${position + 1}`,
    name: `Rush ${position + 1}`,
    slotMinutes: 1,
    horizonDays: 1,
    horizonBlockMinutes: 60,
    slotsPerBookingMax: slotsPerRangeMax,
  }));
}

/** runHorizonRush runs the whole rush and its checks; it always stops what it started. */
export async function runHorizonRush(options: HorizonRushOptions): Promise<HorizonRushReport> {
  const telescopes = rushTelescopes(options.telescopes, options.slotsPerRangeMax);
  const say = options.progress;
  const unlimited = {
    SCHEDULER_TELESCOPES: JSON.stringify(telescopes),
    SCHEDULER_REGISTRATIONS_PER_ADDRESS_PER_HOUR: "10000000",
    SCHEDULER_RATE_LIMIT_PER_ADDRESS_PER_MINUTE: "10000000",
    SCHEDULER_RATE_LIMIT_PER_MINUTE: "1000000",
  };
  say(`starting three lock nodes (log compaction off, so the whole Raft log can be read afterwards) and a registration desk`);
  const system = await startBookingSystem({
    schedulers: 1,
    env: unlimited,
    nodeEnv: { SCTEC_SNAPSHOT_ENTRIES: "10000000" },
    ...(options.schedulerArgs === undefined ? {} : { schedulerArgs: options.schedulerArgs }),
  });
  // The scientists' requests go through the page's code (api.js, booking.js) unchanged, over a
  // cheaper fetch (pool-fetch.ts), so that this one process can send 1,000 at nearly one instant.
  const transport = poolFetch();
  const realFetch = globalThis.fetch;
  globalThis.fetch = transport.fetch;
  try {
    const preparedAt = performance.now();
    const deskUrl = system.schedulerUrls[0] as string;
    const random = createSeededRandom(options.seed);
    const registered = await registerScientists(deskUrl, options, say);
    system.killScheduler(0);
    const scientists: Scientist[] = registered.map((one) => ({
      ...one,
      base: deskUrl,
      entry: undefined,
      clock: new ServerClock({ fetchServerTimeMs: async () => Number.NaN }),
      skewMs: Math.round((random.nextFloat() * 2 - 1) * options.clockSkewMaxMs),
      wanted: wantedRange(random, telescopes, options.slotsPerRangeMax),
    }));

    // Preparing takes each scientist an entry point and 8 clock samples: about 15 ms apiece on a
    // quiet machine, several times that on a loaded one. A lead too short costs a restart.
    let leadMs = 10_000 + options.scientists * 40;
    for (let tries = 1; ; tries += 1) {
      const staged = await stageOpening(system, unlimited, leadMs, say);
      const ready = await prepareScientists(scientists, staged.urls, options, say);
      const marginMs = staged.openingWallMs - Date.now();
      if (ready && marginMs > 1_000) {
        say(`every scientist ready ${(marginMs / 1000).toFixed(1)} s before the opening`);
        const preparationSeconds = (performance.now() - preparedAt) / 1000;
        const pids = bookingSystemPids(system); // the same processes at both ends
        const cpuBefore = cpuByRole(pids);
        const rush = await rushAtOpening(scientists, staged, say);
        rush.cpuSeconds = subtractCpu(cpuByRole(pids), cpuBefore);
        return await proveAndReport(system, { options, telescopes, staged, rush, tries, preparationSeconds, say });
      }
      if (tries === 3) throw new Error(`the scientists were not ready before the opening in ${tries} tries (last lead ${leadMs / 1000} s)`);
      say(
        `not ready in time (${ready ? `${marginMs} ms to spare` : "clock sync failed"}): starting the schedulers again with a lead of ${(2 * leadMs) / 1000} s`,
      );
      for (const url of staged.urls) system.killScheduler(system.schedulerUrls.indexOf(url));
      leadMs *= 2;
    }
  } finally {
    globalThis.fetch = realFetch;
    await transport.close();
    await system.stop();
  }
}

async function registerScientists(deskUrl: string, options: HorizonRushOptions, say: (message: string) => void) {
  say(`registering ${options.scientists} scientists at the desk`);
  const entry = await follow({ href: "/api" }, { base: deskUrl });
  const run = Date.now().toString(36);
  const registered: { id: string; apiKey: string }[] = new Array(options.scientists);
  let done = 0;
  await inParallel(options.scientists, 16, async (position) => {
    // A registration has no idempotency key: one that met a 503 (an election on a loaded machine)
    // may or may not exist, so the next try uses another address (at most 5 tries, a second apart).
    const answer = await withRetries(
      (() => {
        let tries = 0;
        return () => {
          tries += 1;
          return follow(entry._links.register, {
            base: deskUrl,
            body: {
              name: `Scientist ${position + 1}`,
              email: `rush-${run}-${position + 1}-${tries}@example.org`,
              institution: "Horizon Rush",
            },
          });
        };
      })(),
      { attemptsMax: 5 },
    );
    registered[position] = { id: answer.scientist.id, apiKey: answer.apiKey };
    done += 1;
    if (done % Math.max(1, Math.floor(options.scientists / 4)) === 0) say(`  ${done} registered`);
  });
  return registered;
}

function wantedRange(random: ReturnType<typeof createSeededRandom>, telescopes: readonly { id: string }[], slotsMax: number) {
  const slots = 1 + random.nextInt(slotsMax);
  return {
    telescopeId: (telescopes[random.nextInt(telescopes.length)] as { id: string }).id,
    offsetSlots: random.nextInt(60 - slots + 1),
    slots,
  };
}

interface StagedOpening {
  readonly urls: string[];
  readonly offsetMs: number;
  /** openingServerMs: the whole hour of the schedulers' clock when the block opens; openingWallMs: the same instant on this machine's clock. */
  readonly openingServerMs: number;
  readonly openingWallMs: number;
  readonly blockStartMs: number;
}

/** stageOpening starts three schedulers whose clock reaches a whole hour `leadMs` from now. */
async function stageOpening(
  system: BookingSystem,
  env: Record<string, string>,
  leadMs: number,
  say: (message: string) => void,
): Promise<StagedOpening> {
  const openingWallMs = Date.now() + leadMs;
  const offsetMs = Math.ceil(openingWallMs / hourMs) * hourMs - openingWallMs;
  const openingServerMs = openingWallMs + offsetMs;
  say(
    `starting three schedulers whose clock runs ${(offsetMs / 1000).toFixed(1)} s ahead, so that a block opens in ${(leadMs / 1000).toFixed(0)} s`,
  );
  const urls = await Promise.all([1, 2, 3].map(() => system.startScheduler({ ...env, SCHEDULER_TEST_CLOCK_OFFSET_MS: String(offsetMs) })));
  return { urls, offsetMs, openingServerMs, openingWallMs, blockStartMs: openingServerMs + dayMs };
}

/** prepareScientists: each reads the entry point (with its key) and synchronises its own clock, through its scheduler. */
async function prepareScientists(
  scientists: Scientist[],
  urls: readonly string[],
  options: HorizonRushOptions,
  say: (message: string) => void,
) {
  say(`each scientist reads the entry point and synchronises its clock (off by up to ±${options.clockSkewMaxMs} ms) with 8 × GET /time`);
  try {
    await inParallel(scientists.length, 32, async (position) => {
      const scientist = scientists[position] as Scientist;
      scientist.base = urls[position % urls.length] as string;
      scientist.entry = await follow({ href: "/api" }, { base: scientist.base, apiKey: scientist.apiKey });
      scientist.clock = ServerClock.overLink(scientist.entry._links.time, {
        base: scientist.base,
        localNow: () => monotonicNow() + scientist.skewMs,
      });
      await scientist.clock.sync();
    });
    return true;
  } catch (error) {
    say(`preparation failed: ${(error as Error).message}`);
    return false;
  }
}

interface ClickRecord {
  readonly scientist: Scientist;
  readonly choice: 1 | 2;
  /** again: a click on the same range after one whose outcome stayed open, with the same key (as the page does). */
  readonly again: boolean;
  readonly answer: RushAnswer;
  readonly sentWallMs: number;
  readonly latencyMs: number;
}

interface RushRun {
  readonly clicks: ClickRecord[];
  /** answers: every answer to a booking request, retries included (status 0: no answer). */
  readonly answers: { readonly status: number; readonly code: string }[];
  readonly requestLatenciesMs: number[];
  readonly firstSendOffsetsMs: number[];
  readonly clockUncertaintiesMs: number[];
  lastAnswerWallMs: number;
  cpuSeconds: CpuByRole;
}

/** CpuByRole: CPU seconds of the three schedulers, the three nodes, and this load generator. */
export interface CpuByRole {
  readonly schedulers: number;
  readonly nodes: number;
  readonly loadGenerator: number;
}

function cpuByRole(pids: BookingSystemPids): CpuByRole {
  const own = process.cpuUsage();
  return {
    schedulers: processesCpuMs(pids.schedulers) / 1000,
    nodes: processesCpuMs(pids.nodes) / 1000,
    loadGenerator: (own.user + own.system) / 1e6,
  };
}

function subtractCpu(after: CpuByRole, before: CpuByRole): CpuByRole {
  return {
    schedulers: after.schedulers - before.schedulers,
    nodes: after.nodes - before.nodes,
    loadGenerator: after.loadGenerator - before.loadGenerator,
  };
}

/** rushAtOpening: every scientist fires at the opening by its own synchronised clock. */
async function rushAtOpening(scientists: readonly Scientist[], staged: StagedOpening, say: (message: string) => void): Promise<RushRun> {
  const run: RushRun = {
    clicks: [],
    answers: [],
    requestLatenciesMs: [],
    firstSendOffsetsMs: [],
    clockUncertaintiesMs: scientists.map((scientist) => scientist.clock.estimate?.uncertaintyMs ?? Number.NaN),
    lastAnswerWallMs: 0,
    cpuSeconds: { schedulers: 0, nodes: 0, loadGenerator: 0 },
  };
  const plainFetch = globalThis.fetch;
  // Time every booking request at the one place they all pass, without touching the page's code.
  globalThis.fetch = async (input, init) => {
    const startedMs = performance.now();
    try {
      return await plainFetch(input, init);
    } finally {
      if (init?.method === "POST") run.requestLatenciesMs.push(performance.now() - startedMs);
    }
  };
  say(
    `the rush: ${scientists.length} scientists fire at ${iso(staged.openingServerMs)} by their own clocks, for slots from ${iso(staged.blockStartMs)}`,
  );
  try {
    await Promise.all(
      scientists.map(async (scientist) => {
        const firstMs = staged.blockStartMs + scientist.wanted.offsetSlots * minuteMs;
        const range = {
          telescopeId: scientist.wanted.telescopeId,
          startUtc: iso(firstMs),
          endUtc: iso(firstMs + scientist.wanted.slots * minuteMs),
        };
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, staged.openingServerMs - scientist.clock.now())));
        run.firstSendOffsetsMs.push(Date.now() - staged.openingWallMs);
        const first = await clickUntilDecided(scientist, range, 1, run);
        const alternative = first.error?.details?.alternatives?.[0];
        if (first.answer.status === 409 && alternative !== undefined) {
          await clickUntilDecided(
            scientist,
            { telescopeId: alternative.telescopeId, startUtc: alternative.startUtc, endUtc: alternative.endUtc },
            2,
            run,
          );
        }
      }),
    );
  } finally {
    globalThis.fetch = plainFetch;
  }
  return run;
}

/**
 * clickUntilDecided clicks a range, and clicks it again (at most twice more) while the outcome stays
 * open: the page keeps such a click, so the next click on the range sends the same request, with
 * the same Idempotency-Key, and cannot book twice.
 */
async function clickUntilDecided(
  scientist: Scientist,
  range: { telescopeId: string; startUtc: string; endUtc: string },
  choice: 1 | 2,
  run: RushRun,
) {
  let outcome = await click(scientist, newClick(range, scientist.clock), choice, false, run);
  for (let again = 0; again < 2 && mayNotBeDecided(outcome.error); again += 1) {
    outcome = await click(scientist, outcome.click, choice, true, run);
  }
  return outcome;
}

async function click(scientist: Scientist, theClick: Click, choice: 1 | 2, again: boolean, run: RushRun) {
  const bookingId = `bk_${createHash("sha256").update(`${scientist.id}\n${theClick.idempotencyKey}`).digest("hex").slice(0, 24)}`;
  const sentWallMs = Date.now();
  const startedMs = performance.now();
  let answer: RushAnswer;
  let error: ApiError | undefined;
  try {
    const booking = await sendBooking({
      link: scientist.entry._links.book,
      click: theClick,
      apiKey: scientist.apiKey,
      base: scientist.base,
      clock: scientist.clock,
      onAttempt: ({ error: failed }) => {
        run.answers.push(failed instanceof ApiError ? { status: failed.status, code: failed.code } : { status: 0, code: "unknown" });
      },
    });
    run.answers.push({ status: 201, code: "created" });
    answer = { scientistId: scientist.id, bookingId, status: 201, code: undefined, slots: booking.slots, order: booking.order };
  } catch (caught) {
    error = caught instanceof ApiError ? caught : undefined;
    answer = {
      scientistId: scientist.id,
      bookingId,
      status: error?.status ?? 0,
      code: error?.code ?? String(caught),
      slots: undefined,
      order: undefined,
    };
  }
  run.lastAnswerWallMs = Math.max(run.lastAnswerWallMs, Date.now());
  run.clicks.push({ scientist, choice, again, answer, sentWallMs, latencyMs: performance.now() - startedMs });
  // biome-ignore lint/suspicious/noExplicitAny: the error's details, read field by field
  return { answer, click: theClick, error: error as (ApiError & { details: any }) | undefined };
}

interface ProofInput {
  readonly options: HorizonRushOptions;
  readonly telescopes: readonly { id: string }[];
  readonly staged: StagedOpening;
  readonly rush: RushRun;
  readonly tries: number;
  readonly preparationSeconds: number;
  readonly say: (message: string) => void;
}

async function proveAndReport(system: BookingSystem, input: ProofInput): Promise<HorizonRushReport> {
  const { rush, telescopes, say } = input;
  const telescopeIds = telescopes.map((telescope) => telescope.id);
  // The schedulers stop as an operator would stop them (SIGTERM: what is in flight finishes, logs
  // are flushed, a CPU profile asked for with schedulerArgs is written).
  for (const url of input.staged.urls) await system.stopScheduler(system.schedulerUrls.indexOf(url));
  say("reading the stored bookings, slot claims and audit chain from the cluster");
  const client = new LockClient({ nodes: system.nodeUrls, apiToken: system.apiToken });
  const bookingItems = await rangeAll(client, "booking/");
  const stored: RushBooking[] = bookingItems
    .map((item) => ({ ...(JSON.parse(item.value) as Omit<RushBooking, "order"> & { order?: number }), modIndex: item.modIndex }))
    .filter((booking) => telescopeIds.includes(booking.telescopeId))
    .map((booking) => ({ ...booking, order: booking.order ?? booking.modIndex }));
  const storedClaims = new Map<string, string>();
  for (const id of telescopeIds) {
    for (const item of await rangeAll(client, `slot/${id}/`)) {
      storedClaims.set(slotName(id, item.key.slice(`slot/${id}/`.length)), (JSON.parse(item.value) as { bookingId: string }).bookingId);
    }
  }
  const chain = (await rangeAll(client, chainPrefix("audit"))).map((item) => JSON.parse(item.value) as ChainRecord);
  const verdictOfChain = verifyChain(chain);
  const audit: RushAuditRecord[] = chain.map((record) => {
    const parsed = JSON.parse(record.record) as { event_type: string; details: { booking_id?: string; fencing_token?: string } };
    return {
      seq: record.seq,
      index: record.index,
      eventType: parsed.event_type,
      bookingId: parsed.details.booking_id,
      fencingToken: parsed.details.fencing_token,
    };
  });

  say("stopping the nodes and reading each one's Raft log from LevelDB");
  const logs: CommittedLog[] = [];
  for (const id of system.cluster.ids()) await system.cluster.kill(id, "SIGTERM");
  for (const id of system.cluster.ids()) logs.push(await readCommittedLog(system.cluster.dataRoot, id));
  const longest = logs.reduce((best, log) => (log.commitIndex > best.commitIndex ? log : best));
  const disagreement = firstDisagreement(logs);
  const replay = replayLog(longest.commands, telescopeIds);
  const verdict = checkRush({
    telescopeIds,
    answers: rush.clicks.map((one) => one.answer),
    statuses: rush.answers.map((answer) => answer.status),
    stored,
    storedClaims,
    audit,
    chainVerified: verdictOfChain.ok
      ? { ok: true, detail: `${verdictOfChain.count} records` }
      : { ok: false, detail: `broken at seq ${verdictOfChain.brokenAtSeq}: ${verdictOfChain.reason}` },
    replay,
  });
  const checks: Check[] = [
    ...verdict.checks,
    {
      name: "the three nodes' logs agree",
      ok: disagreement === undefined,
      detail:
        disagreement ??
        `committed through ${logs.map((log) => `${log.nodeId} ${log.commitIndex}`).join(", ")}; the same command at every index all hold`,
    },
  ];
  return summarise(input, verdict, checks, stored, longest.commitIndex);
}

function summarise(
  input: ProofInput,
  verdict: RushVerdict,
  checks: Check[],
  stored: readonly RushBooking[],
  logEntries: number,
): HorizonRushReport {
  const { rush, staged, options } = input;
  const byStatus: Record<string, number> = {};
  const conflictsByCode: Record<string, number> = {};
  for (const { status, code } of rush.answers) {
    byStatus[String(status)] = (byStatus[String(status)] ?? 0) + 1;
    if (status === 409) conflictsByCode[code] = (conflictsByCode[code] ?? 0) + 1;
  }
  // The last click of each scientist's choice says how that choice ended.
  const lastOfChoice = new Map<string, ClickRecord>();
  for (const one of rush.clicks) lastOfChoice.set(`${one.scientist.id}|${one.choice}`, one);
  const endedWith: Record<string, number> = {};
  for (const one of lastOfChoice.values()) {
    const key = one.answer.status === 201 ? "201" : `${one.answer.status} ${one.answer.code}`;
    endedWith[key] = (endedWith[key] ?? 0) + 1;
  }
  const firsts = [...lastOfChoice.values()].filter((one) => one.choice === 1);
  const seconds = [...lastOfChoice.values()].filter((one) => one.choice === 2);
  const offsets = [...rush.firstSendOffsetsMs].sort((a, b) => a - b);
  const bookedStarts = stored
    .filter((booking) => booking.status === "confirmed")
    .flatMap((booking) => booking.slots.map((slot) => Date.parse(slot)));
  return {
    scientists: options.scientists,
    schedulers: staged.urls.length,
    telescopes: input.telescopes.map((telescope) => telescope.id),
    slotsOpened: input.telescopes.length * 60,
    openingUtc: iso(staged.openingServerMs),
    blockUtc: iso(staged.blockStartMs),
    tries: input.tries,
    preparationSeconds: input.preparationSeconds,
    requests: {
      total: rush.answers.length,
      byStatus,
      conflictsByCode,
      serverErrors: rush.answers.filter((answer) => answer.status >= 500).length,
    },
    clicks: {
      first: firsts.length,
      firstWon: firsts.filter((one) => one.answer.status === 201).length,
      second: seconds.length,
      secondWon: seconds.filter((one) => one.answer.status === 201).length,
      again: rush.clicks.filter((one) => one.again).length,
      endedWith,
    },
    requestLatency: latency(rush.requestLatenciesMs),
    clickLatency: latency(rush.clicks.map((one) => one.latencyMs)),
    firstSendMs: {
      minMs: offsets[0] ?? Number.NaN,
      p50Ms: percentile(offsets, 0.5),
      p99Ms: percentile(offsets, 0.99),
      maxMs: offsets.at(-1) ?? Number.NaN,
      early: offsets.filter((offset) => offset < 0).length,
    },
    clockUncertaintyMs: summariseUncertainty(rush.clockUncertaintiesMs),
    rushSeconds: (rush.lastAnswerWallMs - staged.openingWallMs) / 1000,
    cpuSeconds: rush.cpuSeconds,
    slotsBooked: bookedStarts.length,
    slotsBookedInBlock: bookedStarts.filter((start) => start >= staged.blockStartMs && start < staged.blockStartMs + hourMs).length,
    logEntries,
    verdict,
    checks,
  };
}

function summariseUncertainty(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50Ms: percentile(sorted, 0.5), maxMs: sorted.at(-1) ?? Number.NaN };
}

function latency(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b);
  return { count: sorted.length, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), maxMs: sorted.at(-1) ?? Number.NaN };
}

/** percentile of an ascending array (nearest rank); NaN when empty (the same rule as bench/measure.ts). */
function percentile(sorted: readonly number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))] as number;
}

async function rangeAll(client: LockClient, prefix: string) {
  const items: { key: string; value: string; modIndex: number }[] = [];
  let after: string | undefined;
  // Bounded: a rush stores a few thousand keys; 1000 pages of 1000 is far beyond that.
  for (let pages = 0; pages < 1000; pages += 1) {
    const page = await client.range(prefix, { limit: 1000, ...(after === undefined ? {} : { after }) });
    items.push(...page.items.map((item) => ({ key: item.key, value: item.value, modIndex: item.modIndex })));
    if (!page.more || page.items.length === 0) return items;
    after = page.items.at(-1)?.key;
  }
  throw new Error(`more than a million keys under ${prefix}`);
}

/** inParallel runs task(0 … count-1) with at most `concurrency` at a time; the first failure rejects. */
async function inParallel(count: number, concurrency: number, task: (position: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count) }, async () => {
      while (next < count) {
        const position = next;
        next += 1;
        await task(position);
      }
    }),
  );
}
