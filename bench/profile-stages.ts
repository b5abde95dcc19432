// profileStages splits a CPU profile's time into the stages of a lock operation (issue 21): each
// sample goes to the stage of the deepest frame on its stack that names one. So time spent in zod
// while decoding a peer frame counts as "peer frame decode", in zod while checking an HTTP body as
// "HTTP handler", and a pino call anywhere as "logging". Libraries used by several stages (zod,
// msgpackr) name no stage of their own: their caller decides. Self time of functions is kept too
// (the top ones are printed), to check that the rules put time where it belongs.

import type { CpuProfile, CpuProfileNode } from "./thread-profiler.ts";

/** StageRule: a stage, and the frames that belong to it (by where the function lives and its name). */
interface StageRule {
  readonly stage: string;
  readonly url?: RegExp;
  readonly functionName?: RegExp;
}

const logging = "logging (pino)";
const crossThread = "cross-thread messages";

/** stageRules, first match wins for a frame; the deepest frame with a match decides a sample. */
const stageRules: readonly StageRule[] = [
  { stage: "GC", functionName: /^\(garbage collector\)$/ },
  { stage: "idle", functionName: /^\(idle\)$/ },
  { stage: "(program): native, outside JS", functionName: /^\(program\)$/ },
  {
    stage: logging,
    url: /node_modules\/(pino|sonic-boom|pino-std-serializers|fast-redact|quick-format-unescaped|atomic-sleep|safe-stable-stringify|on-exit-leak-free|thread-stream)\/|\/node\/logging\.ts/,
  },
  { stage: "metrics", url: /node_modules\/prom-client\/|\/node\/(metrics|front-metrics|host-observer)\.ts/ },
  { stage: "status page, loop lag", url: /\/node\/(loop-lag\.ts|status\/)/ },
  { stage: "peer frame encode", url: /\/node\/transport\/frames\.ts/, functionName: /^(encode|pack)/ },
  { stage: "peer frame decode", url: /\/node\/transport\/frames\.ts/ },
  {
    stage: "peer send (transport queue, ws write)",
    url: /\/node\/transport\/websocket-transport\.ts/,
    functionName: /^(send|flush|countDrop)$/,
  },
  { stage: "peer receive (transport checks)", url: /\/node\/transport\// },
  { stage: "ws library (framing, socket)", url: /node_modules\/ws\// },
  {
    stage: "persist (LevelDB batch, its codec)",
    url: /\/node\/persistence\/|\/node\/durable-rules\.ts|node_modules\/(classic-level|abstract-level|level|level-supports|level-transcoder|module-error|maybe-combine-errors|node-gyp-build)\//,
  },
  { stage: "command codec (JSON, zod)", url: /\/lock\/codec\.ts/ },
  { stage: "apply (lock state machine)", url: /\/lock\// },
  { stage: "raft core", url: /\/raft\// },
  { stage: "driver loop", url: /\/node\/driver\// },
  { stage: "lock service (apply hooks, watch)", url: /\/node\/(lock-service|watch-hub)\.ts/ },
  { stage: crossThread, url: /\/node\/(raft-host|raft-thread|raft-thread-protocol|raft-thread-host)\.ts|^node:internal\/worker/ },
  { stage: crossThread, functionName: /^(postMessage|receiveMessageOnPort|emitMessage)$/ },
  { stage: "HTTP handler (parse, validate, answer)", url: /\/node\/(http-api|api-auth)\.ts/ },
  { stage: "admission gate", url: /\/node\/admission\.ts/ },
  {
    stage: "express",
    url: /node_modules\/(express|body-parser|router|raw-body|finalhandler|send|serve-static|iconv-lite|type-is|content-type)\//,
  },
  {
    stage: "sockets, streams (node:net, node:http)",
    url: /^node:(_http_|http|net|stream|internal\/(http|streams|stream_base_commons|net))/,
  },
  { stage: "event loop (timers, immediates, microtasks)", url: /^node:(internal\/timers|internal\/process\/task_queues|timers|events)/ },
];

/** StageTimes: a profile's time by stage and by function (ms), its active (non-idle) time and length. */
export interface StageTimes {
  readonly byStageMs: ReadonlyMap<string, number>;
  readonly byFunctionMs: ReadonlyMap<string, number>;
  readonly activeMs: number;
  readonly durationMs: number;
}

function ruleStage(frame: CpuProfileNode["callFrame"]): string | undefined {
  for (const rule of stageRules) {
    if (rule.url !== undefined && !rule.url.test(frame.url)) continue;
    if (rule.functionName !== undefined && !rule.functionName.test(frame.functionName)) continue;
    return rule.stage;
  }
  return undefined;
}

/** otherStage names what no rule covers by where it lives: a package, a Node internal, a file of ours. */
function otherStage(frame: CpuProfileNode["callFrame"]): string {
  const packageMatch = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(frame.url);
  if (packageMatch !== null) return `other: ${packageMatch[1]}`;
  if (frame.url.startsWith("node:")) return `other: ${frame.url}`;
  const ours = /\/(raft|lock|node|client|protocol|bench|harness)\/(.*)$/.exec(frame.url);
  if (ours !== null) return `other: ${ours[1]}/${ours[2]}`;
  return `other: ${frame.functionName || "(anonymous native)"}`;
}

/** stagesByNode: each profile node's stage, from the deepest frame with a rule (the node's own, else its caller's, …). */
function stagesByNode(profile: CpuProfile): Map<number, string> {
  const byId = new Map(profile.nodes.map((node) => [node.id, node] as const));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const stages = new Map<number, string>();
  for (const node of profile.nodes) {
    // Walk up to the first frame with a rule (bounded by the tree's depth, at most its size).
    let stage: string | undefined;
    let current: number | undefined = node.id;
    for (let depth = 0; current !== undefined && depth <= profile.nodes.length; depth++) {
      const cached = stages.get(current);
      if (cached !== undefined) {
        stage = cached;
        break;
      }
      const frame = byId.get(current)?.callFrame;
      stage = frame === undefined ? undefined : ruleStage(frame);
      if (stage !== undefined) break;
      current = parentOf.get(current);
    }
    stages.set(node.id, stage ?? otherStage(node.callFrame));
  }
  return stages;
}

/** functionKey names a function for the self-time list: name, file and line. */
function functionKey(frame: CpuProfileNode["callFrame"]): string {
  const file = frame.url.replace(/^.*\/(node_modules\/)/, "$1").replace(/^file:\/\/.*?\/(raft|lock|node|client|protocol)\//, "$1/");
  return `${frame.functionName || "(anonymous)"} ${file}${frame.lineNumber === undefined ? "" : `:${frame.lineNumber + 1}`}`;
}

/** profileStages adds up a profile's samples by stage and by function. */
export function profileStages(profile: CpuProfile): StageTimes {
  const stages = stagesByNode(profile);
  const byId = new Map(profile.nodes.map((node) => [node.id, node] as const));
  const byStageMs = new Map<string, number>();
  const byFunctionMs = new Map<string, number>();
  let activeMs = 0;
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let position = 0; position < samples.length; position++) {
    const id = samples[position] as number;
    const ms = (deltas[position] ?? 0) / 1000;
    const stage = stages.get(id) ?? "other";
    byStageMs.set(stage, (byStageMs.get(stage) ?? 0) + ms);
    if (stage === "idle") continue;
    activeMs += ms;
    const frame = byId.get(id)?.callFrame;
    if (frame !== undefined) byFunctionMs.set(functionKey(frame), (byFunctionMs.get(functionKey(frame)) ?? 0) + ms);
  }
  return { byStageMs, byFunctionMs, activeMs, durationMs: (profile.endTime - profile.startTime) / 1000 };
}
