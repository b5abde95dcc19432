// The node's configuration: from the environment (SCTEC_*), overridden by command-line flags
// (--node-id, …), validated with zod at startup. Every problem is reported at once, with the
// variable or flag to fix, and the process exits non-zero. How the sources are read and the
// problems reported is config/load-config.ts's, shared with the booking API.

import { z } from "zod";
import { integerSetting as integer, listenSetting as listen, loadConfig, type SettingSource } from "../config/load-config.ts";
import { plainListenProblem, type TlsFiles } from "../config/tls.ts";
import { nodeIdPattern, nodeIdRule } from "../protocol/limits.ts";

const peerList = z
  .string()
  .min(1)
  .transform((text, context) => {
    const peers = new Map<string, string>();
    for (const item of text.split(",")) {
      const [id, url] = item.split("=");
      if (id === undefined || url === undefined || id.trim() === "" || !/^https?:\/\/[^/]+$/.test(url.trim())) {
        context.addIssue({ code: "custom", message: `"${item}" is not id=http://host:port` });
        return z.NEVER;
      }
      if (!nodeIdPattern.test(id.trim())) {
        context.addIssue({ code: "custom", message: `"${id.trim()}": ${nodeIdRule}` });
        return z.NEVER;
      }
      peers.set(id.trim(), url.trim());
    }
    return peers;
  });

/**
 * raftPortOffset: where a node takes peer (Raft) connections when SCTEC_RAFT_LISTEN does not say:
 * its HTTP port plus this (7001 → 7101). A peer's Raft address is derived from its SCTEC_PEERS
 * address the same way unless SCTEC_RAFT_PEERS names it. docs/DESIGN.md says why the peer
 * connections have a port of their own ("Heartbeats on a thread of their own").
 */
export const raftPortOffset = 100;

/** raftPeerList: `id=host:port,…`, the peers' Raft addresses. */
const raftPeerList = z
  .string()
  .min(1)
  .transform((text, context) => {
    const peers = new Map<string, { host: string; port: number }>();
    for (const item of text.split(",")) {
      const [id, address] = item.split("=").map((part) => part.trim());
      const match = /^([^:/\s]+):(\d{1,5})$/.exec(address ?? "");
      if (id === undefined || id === "" || match === null || Number(match[2]) > 65_535) {
        context.addIssue({ code: "custom", message: `"${item}" is not id=host:port` });
        return z.NEVER;
      }
      peers.set(id, { host: match[1] as string, port: Number(match[2]) });
    }
    return peers;
  });

/** plusRaftOffset: an HTTP address's Raft address by the default rule (the port plus raftPortOffset). */
function plusRaftOffset(address: { host: string; port: number }): { host: string; port: number } {
  return { host: address.host, port: address.port + raftPortOffset };
}

export const nodeConfigSchema = z
  .object({
    nodeId: z.string().regex(nodeIdPattern, nodeIdRule),
    listen,
    peers: peerList,
    /** raftListen: host:port for the peers' Raft connections (the raft thread's own server); default: listen's port + 100. */
    raftListen: listen.optional(),
    /** raftPeers: id=host:port of peers whose Raft address is not their SCTEC_PEERS port + 100. */
    raftPeers: raftPeerList.optional(),
    /**
     * raftRealtime: run the raft thread under the real-time round-robin policy (SCHED_RR, priority
     * 1), so that busy neighbours on the machine cannot delay its ticks; needs CAP_SYS_NICE.
     */
    raftRealtime: z.enum(["true", "false"]).transform((value) => value === "true"),
    dataDir: z.string().min(1),
    clusterId: z.string().min(1).max(64),
    clusterSecret: z.string().min(16, "must be at least 16 characters"),
    apiToken: z.string().min(16, "must be at least 16 characters"),
    tickIntervalMs: integer(1, 1000),
    electionTimeoutTicks: integer(3, 1000),
    heartbeatIntervalTicks: integer(1, 100),
    snapshotIntervalEntries: integer(10, 10_000_000),
    bodyBytesMax: integer(1024, 16 * 1024 * 1024),
    frameBytesMax: integer(64 * 1024, 256 * 1024 * 1024),
    /** watchEventsMax: how many applied events the node keeps for watchers (GET /watch); older ones answer events_compacted. */
    watchEventsMax: integer(100, 10_000_000),
    /** watchBytesMax: the same ring's memory bound (events carry values of up to 64 KiB), at least 1 MiB so one event always fits. */
    watchBytesMax: integer(1024 * 1024, 4 * 1024 * 1024 * 1024),
    /** watchersMax: how many watch polls may wait at once; one more is refused (429 too_many_watchers). */
    watchersMax: integer(1, 100_000),
    /**
     * requestQueueMax: client API requests in flight at once (admission.ts); one more is answered
     * at once 503 overloaded with Retry-After.
     */
    requestQueueMax: integer(1, 1_000_000),
    /** overloadRetryAfterMs: the wait an overloaded answer asks for (Retry-After in whole seconds, details.retryAfterMs exactly). */
    overloadRetryAfterMs: integer(0, 60_000),
    /** stopTransferMs bounds a stopping leader's hand-over of its leadership (graceful-stop.ts); 0 skips it. */
    stopTransferMs: integer(0, 60_000),
    /** stopDrainMs bounds how long a stopping node lets its client requests in flight finish. */
    stopDrainMs: integer(0, 60_000),
    logPretty: z.enum(["true", "false"]).transform((value) => value === "true"),
    /** join: this node joins a running cluster (added as a learner) instead of founding one with its peers. */
    join: z.enum(["true", "false"]).transform((value) => value === "true"),
    /** founders: the founding voters (default: every peer). The peer list is the address book and may hold future members. */
    founders: z
      .string()
      .optional()
      .transform((text) => (text === undefined || text.trim() === "" ? undefined : text.split(",").map((id) => id.trim()))),
    logFile: z.string().optional(),
    /**
     * statusLinks: where the status page links to each member (id=http://host:port,…), for when a
     * browser reaches the nodes at other addresses than their peers do (containers behind published
     * ports). Members not listed keep their SCTEC_PEERS address.
     */
    statusLinks: peerList.optional(),
    /** bookingUrl: where the status page links to the booking page (the scheduler's). */
    bookingUrl: z.string().regex(/^https?:\/\/[^\s]+$/, "must be an http(s) URL"),
    /** statusViewersMax: status pages watching this node at once (/status/live); one more is refused (503). */
    statusViewersMax: integer(1, 10_000),
    /** statusTimelineEventsMax: the status page's timeline ring (elections, terms, membership, transfers, peers). */
    statusTimelineEventsMax: integer(10, 100_000),
    /** statusLeasesMax: lease rows in one status view (the total is always shown). */
    statusLeasesMax: integer(1, 100_000),
    /** statusPushMs: how often the status page gets a fresh view (sooner when the timeline moves). */
    statusPushMs: integer(50, 60_000),
    /** statusPeerPollMs: how often a watched node asks its peers' /status (server-side, one request in flight per peer). */
    statusPeerPollMs: integer(200, 60_000),
    /** tlsCertFile, tlsKeyFile, tlsCaFile: serve HTTPS and talk to peers over mutual TLS (all three, or none). */
    tlsCertFile: z.string().min(1).optional(),
    tlsKeyFile: z.string().min(1).optional(),
    tlsCaFile: z.string().min(1).optional(),
    /** insecure: listen beyond loopback without TLS, on purpose. */
    insecure: z.enum(["true", "false"]).transform((value) => value === "true"),
  })
  .strict()
  .superRefine((config, context) => {
    if (!config.peers.has(config.nodeId)) {
      context.addIssue({ code: "custom", path: ["peers"], message: `must include this node (${config.nodeId})` });
    }
    for (const id of config.statusLinks?.keys() ?? []) {
      if (!config.peers.has(id)) context.addIssue({ code: "custom", path: ["statusLinks"], message: `${id} is not in the peer list` });
    }
    for (const founder of config.founders ?? []) {
      if (!config.peers.has(founder))
        context.addIssue({ code: "custom", path: ["founders"], message: `${founder} is not in the peer list` });
    }
    if (config.electionTimeoutTicks <= config.heartbeatIntervalTicks) {
      context.addIssue({ code: "custom", path: ["electionTimeoutTicks"], message: "must exceed heartbeatIntervalTicks" });
    }
    for (const id of config.raftPeers?.keys() ?? []) {
      if (!config.peers.has(id)) context.addIssue({ code: "custom", path: ["raftPeers"], message: `${id} is not in the peer list` });
    }
    if (config.raftListen === undefined && config.listen.port + raftPortOffset > 65_535) {
      context.addIssue({
        code: "custom",
        path: ["raftListen"],
        message: `is required when the HTTP port is above ${65_535 - raftPortOffset}`,
      });
    }
    for (const [id, url] of config.peers) {
      const port = Number(new URL(url).port || (url.startsWith("https://") ? 443 : 80));
      if (config.raftPeers?.has(id) !== true && port + raftPortOffset > 65_535) {
        context.addIssue({
          code: "custom",
          path: ["raftPeers"],
          message: `must name ${id}'s Raft address (its HTTP port is above ${65_535 - raftPortOffset})`,
        });
      }
    }
    checkTls(config, context);
  })
  .transform(({ tlsCertFile, tlsKeyFile, tlsCaFile, ...config }) => {
    const tls =
      tlsCertFile === undefined || tlsKeyFile === undefined || tlsCaFile === undefined
        ? undefined
        : ({ certFile: tlsCertFile, keyFile: tlsKeyFile, caFile: tlsCaFile } satisfies TlsFiles);
    return {
      ...config,
      raftListen: config.raftListen ?? plusRaftOffset(config.listen),
      /**
       * raftPeerUrls: every member's Raft WebSocket URL (ws://host:port/raft, or wss:// with TLS:
       * the peer link is then mutual TLS), this node's included.
       */
      raftPeerUrls: new Map(
        [...config.peers].map(([id, url]) => {
          const http = new URL(url);
          const address =
            config.raftPeers?.get(id) ??
            plusRaftOffset({ host: http.hostname, port: Number(http.port || (http.protocol === "https:" ? 443 : 80)) });
          return [id, `${tls === undefined ? "ws" : "wss"}://${address.host}:${address.port}/raft`];
        }),
      ),
      /** tls: the files to serve and dial peers with; undefined serves plain HTTP. */
      tls,
    };
  });

/**
 * checkTls: the three TLS files come together; with them every peer is an https:// URL (the peer
 * link is then mutual TLS), without them an http:// one; and a listen beyond loopback, the API's
 * or the peer port's, needs TLS or --insecure.
 */
function checkTls(
  config: { tlsCertFile?: string | undefined; tlsKeyFile?: string | undefined; tlsCaFile?: string | undefined; insecure: boolean } & {
    listen: { host: string };
    raftListen?: { host: string } | undefined;
    peers: ReadonlyMap<string, string>;
  },
  context: z.RefinementCtx,
): void {
  const given = [config.tlsCertFile, config.tlsKeyFile, config.tlsCaFile].filter((file) => file !== undefined).length;
  if (given !== 0 && given !== 3) {
    for (const [key, file] of [
      ["tlsCertFile", config.tlsCertFile],
      ["tlsKeyFile", config.tlsKeyFile],
      ["tlsCaFile", config.tlsCaFile],
    ] as const) {
      if (file === undefined)
        context.addIssue({ code: "custom", path: [key], message: "TLS needs the certificate, the key and the CA file" });
    }
    return;
  }
  const tls = given === 3;
  for (const [id, url] of config.peers) {
    if (tls !== url.startsWith("https://")) {
      const scheme = tls ? "https://" : "http://";
      context.addIssue({ code: "custom", path: ["peers"], message: `${id} must be an ${scheme} URL ${tls ? "with" : "without"} TLS` });
    }
  }
  const listens: [key: "listen" | "raftListen", host: unknown][] = [["listen", config.listen?.host]];
  if (config.raftListen !== undefined) listens.push(["raftListen", config.raftListen?.host]);
  for (const [key, host] of listens) {
    // A listen setting that did not parse was reported already (zod goes on refining with its issue).
    if (typeof host !== "string") continue;
    const problem = plainListenProblem(host, {
      tls,
      insecure: config.insecure,
      tlsSettings: "SCTEC_TLS_CERT_FILE, SCTEC_TLS_KEY_FILE and SCTEC_TLS_CA_FILE",
      insecureSetting: "--insecure (SCTEC_INSECURE=true)",
    });
    if (problem !== undefined) context.addIssue({ code: "custom", path: [key], message: problem });
  }
}

export type NodeConfig = z.output<typeof nodeConfigSchema>;

/** Where each setting comes from: environment variable and flag. */
const sources: Record<keyof z.input<typeof nodeConfigSchema>, SettingSource & { readonly flag: string }> = {
  nodeId: { env: "SCTEC_NODE_ID", flag: "node-id" },
  listen: { env: "SCTEC_LISTEN", flag: "listen" },
  peers: { env: "SCTEC_PEERS", flag: "peers" },
  raftListen: { env: "SCTEC_RAFT_LISTEN", flag: "raft-listen" },
  raftPeers: { env: "SCTEC_RAFT_PEERS", flag: "raft-peers" },
  raftRealtime: { env: "SCTEC_RAFT_REALTIME", flag: "raft-realtime", fallback: "false" },
  dataDir: { env: "SCTEC_DATA_DIR", flag: "data-dir" },
  clusterId: { env: "SCTEC_CLUSTER_ID", flag: "cluster-id", fallback: "sctec-local" },
  clusterSecret: { env: "SCTEC_CLUSTER_SECRET", flag: "cluster-secret", secret: true },
  apiToken: { env: "SCTEC_API_TOKEN", flag: "api-token", secret: true },
  tickIntervalMs: { env: "SCTEC_TICK_MS", flag: "tick-ms", fallback: "10" },
  electionTimeoutTicks: { env: "SCTEC_ELECTION_TICKS", flag: "election-ticks", fallback: "15" },
  heartbeatIntervalTicks: { env: "SCTEC_HEARTBEAT_TICKS", flag: "heartbeat-ticks", fallback: "3" },
  snapshotIntervalEntries: { env: "SCTEC_SNAPSHOT_ENTRIES", flag: "snapshot-entries", fallback: "10000" },
  bodyBytesMax: { env: "SCTEC_BODY_BYTES_MAX", flag: "body-bytes-max", fallback: "65536" },
  frameBytesMax: { env: "SCTEC_FRAME_BYTES_MAX", flag: "frame-bytes-max", fallback: "16777216" },
  watchEventsMax: { env: "SCTEC_WATCH_EVENTS_MAX", flag: "watch-events-max", fallback: "10000" },
  watchBytesMax: { env: "SCTEC_WATCH_BYTES_MAX", flag: "watch-bytes-max", fallback: "67108864" },
  watchersMax: { env: "SCTEC_WATCHERS_MAX", flag: "watchers-max", fallback: "1000" },
  requestQueueMax: { env: "SCTEC_REQUEST_QUEUE_MAX", flag: "request-queue-max", fallback: "1024" },
  overloadRetryAfterMs: { env: "SCTEC_OVERLOAD_RETRY_AFTER_MS", flag: "overload-retry-after-ms", fallback: "250" },
  stopTransferMs: { env: "SCTEC_STOP_TRANSFER_MS", flag: "stop-transfer-ms", fallback: "2000" },
  stopDrainMs: { env: "SCTEC_STOP_DRAIN_MS", flag: "stop-drain-ms", fallback: "3000" },
  logPretty: { env: "SCTEC_LOG_PRETTY", flag: "log-pretty", fallback: "false" },
  join: { env: "SCTEC_JOIN", flag: "join", fallback: "false" },
  founders: { env: "SCTEC_FOUNDERS", flag: "founders" },
  logFile: { env: "SCTEC_LOG_FILE", flag: "log-file" },
  statusLinks: { env: "SCTEC_STATUS_LINKS", flag: "status-links" },
  bookingUrl: { env: "SCTEC_BOOKING_URL", flag: "booking-url", fallback: "http://127.0.0.1:8080/" },
  statusViewersMax: { env: "SCTEC_STATUS_VIEWERS_MAX", flag: "status-viewers-max", fallback: "100" },
  statusTimelineEventsMax: { env: "SCTEC_STATUS_TIMELINE_EVENTS_MAX", flag: "status-timeline-events-max", fallback: "200" },
  statusLeasesMax: { env: "SCTEC_STATUS_LEASES_MAX", flag: "status-leases-max", fallback: "200" },
  statusPushMs: { env: "SCTEC_STATUS_PUSH_MS", flag: "status-push-ms", fallback: "500" },
  statusPeerPollMs: { env: "SCTEC_STATUS_PEER_POLL_MS", flag: "status-peer-poll-ms", fallback: "1000" },
  tlsCertFile: { env: "SCTEC_TLS_CERT_FILE", flag: "tls-cert-file" },
  tlsKeyFile: { env: "SCTEC_TLS_KEY_FILE", flag: "tls-key-file" },
  tlsCaFile: { env: "SCTEC_TLS_CA_FILE", flag: "tls-ca-file" },
  insecure: { env: "SCTEC_INSECURE", flag: "insecure", boolean: true, fallback: "false" },
};

export class ConfigError extends Error {
  readonly code = "invalid_config";
}

/** loadNodeConfig reads flags over environment over defaults; throws ConfigError listing every problem. */
export function loadNodeConfig(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): NodeConfig {
  return loadConfig({ what: "node", schema: nodeConfigSchema, sources, env, argv, error: (message) => new ConfigError(message) });
}
