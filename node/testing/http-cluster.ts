// A three-node cluster in one process for tests: LockServices over the in-memory transport and
// durable log, each behind a real HTTP server on 127.0.0.1 (ephemeral ports), in this thread (a
// LocalRaftHost between each API and its service). Tests only.

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { lockLimitsDefaults } from "../../lock/lock-state-machine.ts";
import { createSeededRandom, type NodeId, nodeId, raftConfigDefaults } from "../../raft/index.ts";
import { AdmissionGate, type ShedObserver, withAdmission } from "../admission.ts";
import { systemClock } from "../driver/clock.ts";
import { createApi, createHotPath, withHotPath } from "../http-api.ts";
import { LockService } from "../lock-service.ts";
import { LocalRaftHost } from "../raft-host.ts";
import { MemoryDurableLog, MemoryTransportHub } from "./memory-doubles.ts";

export interface HttpCluster {
  readonly apiToken: string;
  readonly hosts: Map<NodeId, LockService>;
  readonly urls: Map<string, string>;
  /**
   * expressOnlyUrls: each node's API once more, without the hot path (createHotPath), so tests can
   * check that both paths answer alike.
   */
  readonly expressOnlyUrls: Map<string, string>;
  readonly hub: MemoryTransportHub;
  /** gates: each node's admission gate, when the cluster was started with `admission`. */
  readonly gates: Map<NodeId, AdmissionGate>;
  leaderUrl(): string;
  followerUrl(): string;
  /** stopNode stops one node as main.ts does on SIGTERM: its connections are cut, its host stopped. */
  stopNode(id: string): Promise<void>;
  stop(): Promise<void>;
}

export interface HttpClusterOptions {
  readonly bodyBytesMax?: number;
  readonly ttlMsMin?: number;
  readonly watchEventsMax?: number;
  readonly watchersMax?: number;
  /** admission puts an admission gate (admission.ts) in front of each node's API, as main.ts does. */
  readonly admission?: {
    readonly requestQueueMax: number;
    readonly retryAfterMs: number;
    /** onShed: who hears of the requests a node's gate refuses (its metrics, say). */
    readonly onShed?: (id: NodeId) => ShedObserver | undefined;
  };
}

export async function startHttpCluster(options: HttpClusterOptions = {}): Promise<HttpCluster> {
  const ids = ["n1", "n2", "n3"].map(nodeId);
  const apiToken = "test-token-0123456789";
  const clusterSecret = "test-cluster-secret-0123456789";
  const logger = pino({ level: "silent" });
  const hub = new MemoryTransportHub();
  const hosts = new Map<NodeId, LockService>();
  const gates = new Map<NodeId, AdmissionGate>();
  const servers = new Map<NodeId, Server>();
  const urls = new Map<string, string>();
  const expressOnlyUrls = new Map<string, string>();
  const expressOnlyServers: Server[] = [];
  for (const [position, id] of ids.entries()) {
    const transport = hub.transport(id);
    const host = await LockService.start({
      nodeId: id,
      raft: { ...raftConfigDefaults, electionTimeoutTicks: 10, heartbeatIntervalTicks: 2, random: createSeededRandom(position + 7) },
      bootstrapVoters: ids,
      tickIntervalMs: 10,
      durableLog: new MemoryDurableLog(),
      transport,
      lockLimits: { ...lockLimitsDefaults, ttlMsMin: options.ttlMsMin ?? 300 },
      snapshotIntervalEntries: 1000,
      proposalTimeoutMs: 2000,
      pendingRequestsMax: 1000,
      inputsPerTurnMax: 256,
      watchEventsMax: options.watchEventsMax ?? 10_000,
      watchBytesMax: 64 * 1024 * 1024,
      watchersMax: options.watchersMax ?? 1000,
      logger,
      clock: systemClock,
    });
    hosts.set(id, host);
    const admission = options.admission;
    const apiOptions = {
      host: new LocalRaftHost({ service: host, transport }),
      apiToken,
      clusterSecret,
      peerUrls: urls,
      bodyBytesMax: options.bodyBytesMax ?? 4096,
      logger,
      ...(admission === undefined ? {} : { overloadRetryAfterMs: admission.retryAfterMs }),
    };
    let listener = withHotPath(createHotPath(apiOptions), createApi(apiOptions));
    if (admission !== undefined) {
      const gate = new AdmissionGate({
        requestQueueMax: admission.requestQueueMax,
        retryAfterMs: admission.retryAfterMs,
        clock: systemClock,
      });
      gates.set(id, gate);
      listener = withAdmission(gate, listener, admission.onShed?.(id));
    }
    const server = createServer(listener);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    servers.set(id, server);
    urls.set(id, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    const expressOnly = createServer(createApi(apiOptions));
    await new Promise<void>((resolve) => expressOnly.listen(0, "127.0.0.1", resolve));
    expressOnlyServers.push(expressOnly);
    expressOnlyUrls.set(id, `http://127.0.0.1:${(expressOnly.address() as AddressInfo).port}`);
  }
  // Ready means a leader every node knows, which has applied its own first entry: before that it
  // refuses membership changes as pending (503), which a test of their validation would misread.
  const leaderReady = (host: LockService) => {
    const status = host.status();
    return status.role === "leader" && status.appliedIndex >= status.lastIndex;
  };
  const deadline = performance.now() + 5000;
  while (![...hosts.values()].some(leaderReady) || ![...hosts.values()].every((host) => host.status().leaderId !== null)) {
    if (performance.now() > deadline) throw new Error("no leader ready within 5 s");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const urlOf = (host: LockService | undefined) => urls.get(host?.nodeId as string) as string;
  const stopped = new Set<NodeId>();
  const stopNode = async (id: NodeId): Promise<void> => {
    if (stopped.has(id)) return;
    stopped.add(id);
    const server = servers.get(id) as Server;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await hosts.get(id)?.stop();
  };
  return {
    apiToken,
    hosts,
    urls,
    expressOnlyUrls,
    hub,
    gates,
    leaderUrl: () => urlOf([...hosts.values()].find((host) => host.status().role === "leader" && !stopped.has(host.nodeId))),
    followerUrl: () => urlOf([...hosts.values()].find((host) => host.status().role !== "leader" && !stopped.has(host.nodeId))),
    stopNode: (id) => stopNode(nodeId(id)),
    stop: async () => {
      for (const server of expressOnlyServers) {
        server.closeAllConnections();
        await new Promise((resolve) => server.close(resolve));
      }
      for (const id of ids) await stopNode(id);
    },
  };
}
