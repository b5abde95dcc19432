// Scenario scripts for the core (etcd-io/raft datadriven, TigerBeetle snaptest): a script is a
// sequence of commands run against a TestCluster, each followed by the transcript it must
// produce. This module is pure, text in and text out: runScenario() runs a script and returns it
// with every transcript replaced by the actual one. The file I/O (comparing, or rewriting the
// files with UPDATE=1) lives in scripts/raft-scenarios.test.ts, because raft/ may not import node:*.
//
// File format (one block per command, as in etcd's datadriven):
//
//   # A comment: lines starting with '#' between blocks are kept as they are.
//   command arg arg key=value
//   ----
//   expected transcript, one or more lines ("ok" when the command prints nothing)
//   <blank line, or end of file>
//
// A transcript may not contain a blank line (it would end the block). A command written without
// its `----` and transcript is accepted: the rewrite fills them in.
//
// What the transcripts show:
//   - every message delivered, rendered by describeMessage(), one per line;
//   - under it, indented, what that delivery changed on its target: `n2 role=follower term=3
//     leader=n1 commit=5` lists only the fields that changed among role, term, vote, leader and
//     commit; `n1 read 7 ready index=5` and `n1 read 7 dropped` report ReadIndex outcomes;
//   - after a tick, the same change lines, prefixed with the tick's number (`tick 12: n2 ...`).
// Messages dropped by a cut link or a crashed target are not shown one by one; the command
// says how many were lost. Node ids are written `1` or `n1` in commands and `n1` in transcripts.
//
// Commands (IDS is `all` or a comma-separated list; FILTER is any of from=IDS to=IDS type=T1,T2):
//   add-nodes N [seed=S] [config=value ...]   founding voters n1..nN; config keys as in RaftConfig
//   add-node ID                               a fresh server with empty storage (a joiner)
//   campaign ID | propose ID DATA | read-index ID REQUEST_ID | transfer-leadership FROM TO
//   propose-conf-change ID add_learner|promote_learner|remove_node TARGET
//   tick IDS [count=N] [deliver=true]         N ticks; with deliver, stabilize after each
//   deliver [count=N] [FILTER]                the N oldest matching messages in flight (default 1)
//   stabilize [FILTER]                        deliver matching messages until none is in flight
//   drop [FILTER] | in-flight                 lose, or list, messages in flight
//   partition 1,2|3 | cut FROM>TO ... | heal  network faults (checked when a message is delivered)
//   crash ID | restart ID | compact ID        durable storage survives a crash
//   raft-state | progress ID | raft-log ID [from=INDEX] | applied IDS | reads IDS

import type { RaftConfig } from "../config.ts";
import { raftConfigDefaults } from "../config.ts";
import type { ConfChange, Entry, NodeId, RaftMessage } from "../messages.ts";
import { nodeId } from "../messages.ts";
import type { ProposeOutcome, Refusal } from "../raft.ts";
import type { TestNode } from "./test-cluster.ts";
import { describeMessage, TestCluster } from "./test-cluster.ts";

/** ScenarioError is a mistake in a script (unknown command, bad argument) or a failure while running it; it names the file and line. */
export class ScenarioError extends Error {
  readonly code = "scenario_error";
  readonly file: string;
  readonly line: number;
  constructor(file: string, line: number, message: string, options?: { cause?: unknown }) {
    super(`${file}:${line}: ${message}`, options);
    this.name = "ScenarioError";
    this.file = file;
    this.line = line;
  }
}

/** ScenarioRun is the outcome of running one script. */
export interface ScenarioRun {
  /** text is the script with every transcript replaced by the actual one (what UPDATE=1 writes). */
  readonly text: string;
  /** mismatches lists the line of each command whose actual transcript differs from the expected one. */
  readonly mismatches: readonly number[];
}

/** runScenario runs the script `text` (named `file` in error messages) from a fresh, empty environment. */
export function runScenario(file: string, text: string): ScenarioRun {
  const segments = parseScenario(file, text);
  const env: Env = { file, cluster: undefined, observed: new Map() };
  const out: string[] = [];
  const mismatches: number[] = [];
  for (const segment of segments) {
    if (segment.kind === "text") {
      out.push(segment.line);
      continue;
    }
    const directive = segment.directive;
    const actual = runDirective(env, directive);
    out.push(...directive.header, separator, ...actual);
    if (!directive.hasSeparator || !sameLines(actual, directive.expected)) mismatches.push(directive.line);
  }
  return { text: `${out.join("\n")}\n`, mismatches };
}

// ---------------------------------------------------------------------------------------------
// Parsing.

const separator = "----";
/** deliveriesMax bounds one stabilize: a cluster that never goes quiet is a bug worth a failure. */
const deliveriesMax = 100_000;

interface Directive {
  /** line is the 1-based line of the command. */
  readonly line: number;
  readonly command: string;
  readonly positional: readonly string[];
  readonly named: ReadonlyMap<string, string>;
  /** header is the command line and any input lines, as written. */
  readonly header: readonly string[];
  readonly inputLines: readonly string[];
  readonly hasSeparator: boolean;
  readonly expected: readonly string[];
}

type Segment = { readonly kind: "text"; readonly line: string } | { readonly kind: "directive"; readonly directive: Directive };

function parseScenario(file: string, text: string): Segment[] {
  const lines = text.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  const segments: Segment[] = [];
  let position = 0;
  while (position < lines.length) {
    const line = lines[position] as string;
    if (line.trim() === "" || line.startsWith("#")) {
      segments.push({ kind: "text", line });
      position++;
      continue;
    }
    const start = position;
    position++;
    while (position < lines.length && lines[position] !== separator && (lines[position] as string).trim() !== "") position++;
    const header = lines.slice(start, position);
    const hasSeparator = lines[position] === separator;
    const expectedStart = hasSeparator ? position + 1 : position;
    position = expectedStart;
    while (hasSeparator && position < lines.length && lines[position] !== "") position++;
    const expected = lines.slice(expectedStart, position);
    segments.push({ kind: "directive", directive: parseDirective(file, start + 1, header, hasSeparator, expected) });
  }
  return segments;
}

function parseDirective(file: string, line: number, header: readonly string[], hasSeparator: boolean, expected: string[]): Directive {
  const tokens = (header[0] as string).trim().split(/\s+/);
  const command = tokens[0] as string;
  const positional: string[] = [];
  const named = new Map<string, string>();
  for (const token of tokens.slice(1)) {
    const equals = token.indexOf("=");
    if (equals <= 0) {
      positional.push(token);
      continue;
    }
    const key = token.slice(0, equals);
    if (named.has(key)) throw new ScenarioError(file, line, `argument ${key} given twice`);
    named.set(key, token.slice(equals + 1));
  }
  return { line, command, positional, named, header, inputLines: header.slice(1), hasSeparator, expected };
}

function sameLines(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((line, position) => line === b[position]);
}

// ---------------------------------------------------------------------------------------------
// Running.

interface Observation {
  readonly role: string;
  readonly term: number;
  readonly vote: string;
  readonly leader: string;
  readonly commit: number;
  readonly served: number;
  readonly dropped: number;
}

interface Env {
  readonly file: string;
  cluster: TestCluster | undefined;
  /** observed is what the transcript last showed of each node, so only changes are printed. */
  readonly observed: Map<NodeId, Observation>;
}

type Handler = (env: Env, args: ArgReader) => string[];

function runDirective(env: Env, directive: Directive): string[] {
  const handler = handlers.get(directive.command);
  if (handler === undefined) {
    throw new ScenarioError(env.file, directive.line, `unknown command "${directive.command}" (known: ${[...handlers.keys()].join(", ")})`);
  }
  const args = new ArgReader(env.file, directive);
  let output: string[];
  try {
    output = handler(env, args);
    args.finish();
  } catch (error) {
    if (error instanceof ScenarioError) throw error;
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    throw new ScenarioError(env.file, directive.line, `${directive.command} failed: ${message}`, { cause: error });
  }
  for (const line of output) assertPrintable(env, directive, line);
  return output.length === 0 ? ["ok"] : output;
}

function assertPrintable(env: Env, directive: Directive, line: string): void {
  if (line.trim() === "" || line === separator) {
    throw new ScenarioError(env.file, directive.line, `transcript line ${JSON.stringify(line)} would break the file format`);
  }
}

/** ArgReader hands a command its arguments and, at the end, rejects any it did not use. */
class ArgReader {
  private readonly file: string;
  private readonly directive: Directive;
  private positionalUsed = 0;
  private readonly namedUsed = new Set<string>();

  constructor(file: string, directive: Directive) {
    this.file = file;
    this.directive = directive;
  }

  fail(message: string): never {
    throw new ScenarioError(this.file, this.directive.line, `${this.directive.command}: ${message}`);
  }

  positional(name: string): string {
    const value = this.directive.positional[this.positionalUsed];
    if (value === undefined) this.fail(`missing argument ${name}`);
    this.positionalUsed++;
    return value;
  }

  /** restPositional returns every positional argument not yet taken. */
  restPositional(): string[] {
    const rest = this.directive.positional.slice(this.positionalUsed);
    this.positionalUsed = this.directive.positional.length;
    return rest;
  }

  named(key: string): string | undefined {
    const value = this.directive.named.get(key);
    if (value !== undefined) this.namedUsed.add(key);
    return value;
  }

  /** restNamed returns every key=value argument not yet taken. */
  restNamed(): [string, string][] {
    const rest = [...this.directive.named].filter(([key]) => !this.namedUsed.has(key));
    for (const [key] of rest) this.namedUsed.add(key);
    return rest;
  }

  int(key: string, fallback: number, minimum = 0): number {
    const raw = this.named(key);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value) || value < minimum) this.fail(`${key}=${raw} must be an integer >= ${minimum}`);
    return value;
  }

  bool(key: string, fallback: boolean): boolean {
    const raw = this.named(key);
    if (raw === undefined) return fallback;
    if (raw !== "true" && raw !== "false") this.fail(`${key}=${raw} must be true or false`);
    return raw === "true";
  }

  finish(): void {
    const extra = this.directive.positional.slice(this.positionalUsed);
    if (extra.length > 0) this.fail(`unexpected argument(s): ${extra.join(" ")}`);
    const unknown = [...this.directive.named.keys()].filter((key) => !this.namedUsed.has(key));
    if (unknown.length > 0) this.fail(`unknown argument(s): ${unknown.join(", ")}`);
    if (this.directive.inputLines.length > 0) this.fail("takes no input lines before ----");
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers shared by the commands.

function clusterOf(env: Env, args: ArgReader): TestCluster {
  if (env.cluster === undefined) args.fail("no cluster yet: start the script with add-nodes");
  return env.cluster;
}

/** parseId accepts `3` or `n3`. */
function parseId(args: ArgReader, token: string): NodeId {
  if (/^\d+$/.test(token)) return nodeId(`n${token}`);
  if (/^[A-Za-z][\w-]*$/.test(token)) return nodeId(token);
  return args.fail(`bad node id "${token}"`);
}

function existingNode(env: Env, args: ArgReader, token: string): TestNode {
  const cluster = clusterOf(env, args);
  const node = cluster.nodes.get(parseId(args, token));
  if (node === undefined) args.fail(`no node ${token} (nodes: ${cluster.ids().join(", ")})`);
  return node;
}

function runningNode(env: Env, args: ArgReader, token: string): TestNode {
  const node = existingNode(env, args, token);
  if (node.crashed) args.fail(`${node.id} is crashed`);
  return node;
}

/** parseIds reads `all` or a comma-separated list. */
function parseIds(env: Env, args: ArgReader, token: string): NodeId[] {
  if (token === "all") return clusterOf(env, args).ids();
  return token.split(",").map((part) => existingNode(env, args, part).id);
}

function observe(node: TestNode): Observation {
  const status = node.rawNode.status();
  return {
    role: status.role,
    term: status.term,
    vote: status.votedFor ?? "none",
    leader: status.leaderId ?? "none",
    commit: status.commitIndex,
    served: node.readsServed.length,
    dropped: node.readsDropped.length,
  };
}

/** changes prints what changed on each running node since the transcript last looked, and remembers the new state. */
function changes(env: Env, prefix: string): string[] {
  const lines: string[] = [];
  const cluster = env.cluster;
  if (cluster === undefined) return lines;
  for (const node of cluster.nodes.values()) {
    if (node.crashed) continue;
    const now = observe(node);
    const before = env.observed.get(node.id);
    env.observed.set(node.id, now);
    const fields: string[] = [];
    for (const key of ["role", "term", "vote", "leader", "commit"] as const) {
      // A new term resets the vote, so the vote is shown with every term change, even if it names the same server again.
      const changed = before === undefined || before[key] !== now[key] || (key === "vote" && before.term !== now.term);
      if (changed) fields.push(`${key}=${now[key]}`);
    }
    if (fields.length > 0) lines.push(`${prefix}${node.id} ${fields.join(" ")}`);
    for (const read of node.readsServed.slice(before?.served ?? 0))
      lines.push(`${prefix}${node.id} read ${read.requestId} ready index=${read.index}`);
    for (const requestId of node.readsDropped.slice(before?.dropped ?? 0)) lines.push(`${prefix}${node.id} read ${requestId} dropped`);
  }
  return lines;
}

type MessageFilter = (message: RaftMessage) => boolean;

const messageTypes: readonly RaftMessage["type"][] = [
  "request_vote",
  "request_vote_result",
  "append_entries",
  "append_entries_result",
  "heartbeat",
  "heartbeat_result",
  "install_snapshot",
  "install_snapshot_result",
  "timeout_now",
];

/** parseFilter reads the optional `from=IDS to=IDS type=T1,T2` arguments of deliver, stabilize and drop. */
function parseFilter(env: Env, args: ArgReader): MessageFilter {
  const fromRaw = args.named("from");
  const toRaw = args.named("to");
  const typeRaw = args.named("type");
  const from = fromRaw === undefined ? undefined : new Set<string>(parseIds(env, args, fromRaw));
  const to = toRaw === undefined ? undefined : new Set<string>(parseIds(env, args, toRaw));
  const types = typeRaw === undefined ? undefined : new Set<string>(typeRaw.split(","));
  for (const type of types ?? []) {
    if (!messageTypes.some((known) => known === type)) args.fail(`unknown message type ${type} (known: ${messageTypes.join(", ")})`);
  }
  return (message) =>
    (from === undefined || from.has(message.from)) &&
    (to === undefined || to.has(message.to)) &&
    (types === undefined || types.has(message.type));
}

/** deliverMessages delivers up to `count` matching messages in flight (FIFO), printing each and what it changed; returns how many were lost. */
function deliverMessages(env: Env, cluster: TestCluster, count: number, lines: string[], filter: MessageFilter = () => true): number {
  let lost = 0;
  for (let taken = 0; taken < count; taken++) {
    const next = cluster.deliverNext(filter);
    if (next === undefined) break;
    if (!next.delivered) {
      lost++;
      continue;
    }
    lines.push(describeMessage(next.message));
    lines.push(...changes(env, "  "));
  }
  return lost;
}

function lostLine(lost: number): string[] {
  return lost === 0 ? [] : [`(${lost} message${lost === 1 ? "" : "s"} lost: link cut or target down)`];
}

function describeRefusal(outcome: Refusal): string {
  if (outcome.kind === "not_leader") return `not_leader leader=${outcome.leaderHint ?? "none"}`;
  return `dropped ${outcome.reason}`;
}

function describeOutcome(outcome: ProposeOutcome): string {
  if (outcome.kind === "accepted") return `accepted index=${outcome.index} term=${outcome.term}`;
  return describeRefusal(outcome);
}

function describeEntry(entry: Entry): string {
  const head = `${entry.index}@${entry.term} ${entry.kind}`;
  switch (entry.kind) {
    case "normal":
      return `${head} ${new TextDecoder().decode(entry.data)}`;
    case "noop":
      return head;
    case "conf_change":
      return `${head} ${entry.change.type} ${entry.change.nodeId}`;
  }
}

function list(ids: readonly string[]): string {
  return `(${ids.join(" ")})`;
}

// ---------------------------------------------------------------------------------------------
// Commands. Each reads its arguments, acts, and returns its transcript lines.

const configKeys = Object.keys(raftConfigDefaults) as (keyof typeof raftConfigDefaults)[];

function addNodes(env: Env, args: ArgReader): string[] {
  if (env.cluster !== undefined) args.fail("the cluster exists already (use add-node to start one more server)");
  const size = Number(args.positional("N"));
  if (!Number.isSafeInteger(size) || size < 1 || size > 9) args.fail("N must be an integer from 1 to 9");
  const seed = args.int("seed", 1);
  const config: Record<string, number | boolean> = {};
  for (const [key, raw] of args.restNamed()) {
    const name = configKeys.find((candidate) => candidate === key);
    if (name === undefined) args.fail(`unknown config key ${key} (known: seed, ${configKeys.join(", ")})`);
    if (typeof raftConfigDefaults[name] === "boolean") {
      if (raw !== "true" && raw !== "false") args.fail(`${key}=${raw} must be true or false`);
      config[name] = raw === "true";
    } else {
      const value = Number(raw);
      if (!/^\d+$/.test(raw) || !Number.isSafeInteger(value)) args.fail(`${key}=${raw} must be an integer`);
      config[name] = value;
    }
  }
  env.cluster = new TestCluster({ size, seed, config: config as Partial<Omit<RaftConfig, "id" | "random">> });
  return changes(env, "");
}

function addNode(env: Env, args: ArgReader): string[] {
  const cluster = clusterOf(env, args);
  const id = parseId(args, args.positional("ID"));
  if (cluster.nodes.has(id)) args.fail(`node ${id} exists already`);
  cluster.addNode(id);
  return changes(env, "");
}

function campaign(env: Env, args: ArgReader): string[] {
  const node = runningNode(env, args, args.positional("ID"));
  clusterOf(env, args).campaign(node.id);
  return changes(env, "");
}

function propose(env: Env, args: ArgReader): string[] {
  const node = runningNode(env, args, args.positional("ID"));
  const data = args.positional("DATA");
  const outcome = clusterOf(env, args).propose(node.id, data);
  return [describeOutcome(outcome), ...changes(env, "")];
}

function proposeConfChange(env: Env, args: ArgReader): string[] {
  const node = runningNode(env, args, args.positional("ID"));
  const type = args.positional("TYPE");
  const target = parseId(args, args.positional("TARGET"));
  if (type !== "add_learner" && type !== "promote_learner" && type !== "remove_node") {
    args.fail(`TYPE must be add_learner, promote_learner or remove_node, got ${type}`);
  }
  const change: ConfChange = { type, nodeId: target };
  const outcome = node.rawNode.proposeConfChange(change);
  clusterOf(env, args).processReady(node);
  return [describeOutcome(outcome), ...changes(env, "")];
}

function transferLeadership(env: Env, args: ArgReader): string[] {
  const node = runningNode(env, args, args.positional("FROM"));
  const transferee = parseId(args, args.positional("TO"));
  const outcome = node.rawNode.transferLeadership(transferee);
  clusterOf(env, args).processReady(node);
  return [outcome.kind === "started" ? "started" : describeRefusal(outcome), ...changes(env, "")];
}

function readIndex(env: Env, args: ArgReader): string[] {
  const node = runningNode(env, args, args.positional("ID"));
  const requestId = Number(args.positional("REQUEST_ID"));
  if (!Number.isSafeInteger(requestId) || requestId < 1) args.fail("REQUEST_ID must be a positive integer");
  const outcome = node.rawNode.readIndex(requestId);
  clusterOf(env, args).processReady(node);
  return [outcome.kind === "queued" ? "queued" : describeRefusal(outcome), ...changes(env, "")];
}

function tick(env: Env, args: ArgReader): string[] {
  const cluster = clusterOf(env, args);
  const ids = parseIds(env, args, args.positional("IDS"));
  const count = args.int("count", 1, 1);
  const deliver = args.bool("deliver", false);
  const lines: string[] = [];
  let lost = 0;
  for (let round = 1; round <= count; round++) {
    cluster.tick(ids, 1);
    lines.push(...changes(env, `tick ${round}: `));
    if (!deliver) continue;
    lost += deliverMessages(env, cluster, deliveriesMax, lines);
    if (cluster.inFlight.length > 0) args.fail(`no quiescence after ${deliveriesMax} deliveries`);
  }
  return [...lines, ...lostLine(lost)];
}

function deliver(env: Env, args: ArgReader): string[] {
  const count = args.int("count", 1, 1);
  const filter = parseFilter(env, args);
  const lines: string[] = [];
  const lost = deliverMessages(env, clusterOf(env, args), count, lines, filter);
  return [...lines, ...lostLine(lost)];
}

function stabilize(env: Env, args: ArgReader): string[] {
  const cluster = clusterOf(env, args);
  const filter = parseFilter(env, args);
  const lines: string[] = [];
  const lost = deliverMessages(env, cluster, deliveriesMax, lines, filter);
  if (cluster.inFlight.some(filter)) args.fail(`no quiescence after ${deliveriesMax} deliveries`);
  return [...lines, ...lostLine(lost)];
}

function drop(env: Env, args: ArgReader): string[] {
  const filter = parseFilter(env, args);
  return clusterOf(env, args)
    .dropMatching(filter)
    .map((message) => `dropped ${describeMessage(message)}`);
}

function inFlight(env: Env, args: ArgReader): string[] {
  const cluster = clusterOf(env, args);
  const describe = (message: RaftMessage): string =>
    `${describeMessage(message)}${cluster.isLinkCut(message.from, message.to) ? " (link cut)" : ""}`;
  return cluster.inFlight.length === 0 ? ["none"] : cluster.inFlight.map(describe);
}

function partition(env: Env, args: ArgReader): string[] {
  const groups = args.positional("GROUPS").split("|");
  if (groups.length < 2) args.fail("give at least two groups separated by |");
  const parsed = groups.map((group) => parseIds(env, args, group));
  clusterOf(env, args).partition(...parsed);
  return [];
}

function cut(env: Env, args: ArgReader): string[] {
  const links = [args.positional("FROM>TO"), ...args.restPositional()];
  for (const link of links) {
    const [from, to, ...rest] = link.split(">");
    if (from === undefined || to === undefined || rest.length > 0) args.fail(`bad link "${link}": write FROM>TO`);
    clusterOf(env, args).cutLink(existingNode(env, args, from).id, existingNode(env, args, to).id);
  }
  return [];
}

function heal(env: Env, args: ArgReader): string[] {
  clusterOf(env, args).heal();
  return [];
}

function crash(env: Env, args: ArgReader): string[] {
  const node = runningNode(env, args, args.positional("ID"));
  const cluster = clusterOf(env, args);
  const before = cluster.inFlight.length;
  cluster.crash(node.id);
  const lost = before - cluster.inFlight.length;
  return lost > 0 ? [`(${lost} message${lost === 1 ? "" : "s"} in flight lost)`] : [];
}

function restart(env: Env, args: ArgReader): string[] {
  const node = existingNode(env, args, args.positional("ID"));
  if (!node.crashed) args.fail(`${node.id} is running: crash it first`);
  clusterOf(env, args).restart(node.id);
  return changes(env, "");
}

function compact(env: Env, args: ArgReader): string[] {
  const node = runningNode(env, args, args.positional("ID"));
  clusterOf(env, args).compact(node.id);
  const snapshot = node.storage.snapshot().metadata;
  const first = node.storage.firstIndex();
  const last = node.storage.lastIndex();
  return [`snapshot ${snapshot.index}@${snapshot.term}; entries left: ${first <= last ? `${first}..${last}` : "none"}`];
}

function raftState(env: Env, args: ArgReader): string[] {
  const cluster = clusterOf(env, args);
  return [...cluster.nodes.values()].map((node) => {
    if (node.crashed) {
      const hard = node.storage.hardStateNow();
      return `${node.id}: crashed; durable term=${hard.term} vote=${hard.votedFor ?? "none"} commit=${hard.commitIndex} last=${node.storage.lastIndex()}`;
    }
    const status = node.rawNode.status();
    const snapshot = status.snapshotIndex > 0 ? ` snapshot=${status.snapshotIndex}` : "";
    return (
      `${node.id}: ${status.role} term=${status.term} vote=${status.votedFor ?? "none"} leader=${status.leaderId ?? "none"} ` +
      `commit=${status.commitIndex} applied=${status.appliedIndex} last=${status.lastIndex}${snapshot} ` +
      `voters=${list(status.voters)} learners=${list(status.learners)}`
    );
  });
}

function raftLog(env: Env, args: ArgReader): string[] {
  const node = existingNode(env, args, args.positional("ID"));
  const storage = node.storage;
  const lines: string[] = [];
  const snapshot = storage.snapshot().metadata;
  if (snapshot.index > 0) {
    lines.push(
      `snapshot ${snapshot.index}@${snapshot.term} voters=${list(snapshot.confState.voters)} learners=${list(snapshot.confState.learners)}`,
    );
  }
  const first = Math.max(storage.firstIndex(), args.int("from", 0));
  const last = storage.lastIndex();
  if (first <= last) for (const entry of storage.entries(first, last + 1, Number.MAX_SAFE_INTEGER)) lines.push(describeEntry(entry));
  return lines.length === 0 ? ["empty"] : lines;
}

function applied(env: Env, args: ArgReader): string[] {
  return parseIds(env, args, args.positional("IDS")).map((id) => {
    const node = existingNode(env, args, id);
    if (node.crashed) return `${id}: crashed`;
    return `${id}: ${node.appliedData.length === 0 ? "(none)" : node.appliedData.join(" ")}`;
  });
}

function reads(env: Env, args: ArgReader): string[] {
  return parseIds(env, args, args.positional("IDS")).map((id) => {
    const node = existingNode(env, args, id);
    const served = node.readsServed.map((read) => `${read.requestId}@${read.index}`);
    return `${id}: served=${list(served)} dropped=${list(node.readsDropped.map(String))}`;
  });
}

function progress(env: Env, args: ArgReader): string[] {
  const node = runningNode(env, args, args.positional("ID"));
  const status = node.rawNode.status();
  if (status.role !== "leader") return [`${node.id} is ${status.role}: no progress`];
  return status.progress.map(
    (peer) =>
      `${peer.id}: ${peer.state} match=${peer.matchIndex} next=${peer.nextIndex}${peer.isLearner ? " learner" : ""}${peer.recentActive ? " active" : ""}`,
  );
}

const handlers: ReadonlyMap<string, Handler> = new Map<string, Handler>([
  ["add-nodes", addNodes],
  ["add-node", addNode],
  ["campaign", campaign],
  ["propose", propose],
  ["propose-conf-change", proposeConfChange],
  ["transfer-leadership", transferLeadership],
  ["read-index", readIndex],
  ["tick", tick],
  ["deliver", deliver],
  ["stabilize", stabilize],
  ["drop", drop],
  ["in-flight", inFlight],
  ["partition", partition],
  ["cut", cut],
  ["heal", heal],
  ["crash", crash],
  ["restart", restart],
  ["compact", compact],
  ["raft-state", raftState],
  ["raft-log", raftLog],
  ["applied", applied],
  ["reads", reads],
  ["progress", progress],
]);
