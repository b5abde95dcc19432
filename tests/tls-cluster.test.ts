// A lock cluster over TLS on real node processes (HTTPS for the API, mutual TLS between the nodes,
// certificates of a CA made for the run): it elects a leader and takes locks from a LockClient that
// trusts the CA; a client speaking plain HTTP to it, on the API port or the peer (Raft) port, gets
// nowhere; SIGHUP makes a node serve a renewed certificate on both ports without a restart (the
// peer port's is the raft thread's, told by the HTTP thread), while the cluster keeps its leader and
// term and goes on committing; a damaged certificate file on SIGHUP is refused and the old one kept. And a node or a booking API
// asked to listen beyond loopback without TLS refuses to start (exit 2), before it listens at all.

import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, type PeerCertificate } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LockClient } from "../client/lock-client.ts";
import { makeCertificates } from "../harness/certificates.ts";
import { freePort, ProcessCluster, waitFor } from "../harness/process-cluster.ts";

let cluster: ProcessCluster;
beforeAll(async () => {
  cluster = await ProcessCluster.start({ tls: true });
}, 120_000);
afterAll(async () => {
  await cluster?.close();
});

/** servedCertificate connects to a node's port and returns the certificate it serves now. */
function servedCertificate(url: string): Promise<PeerCertificate> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca: cluster.caPem(), servername: "localhost" }, () => {
      const certificate = socket.getPeerCertificate();
      socket.end();
      resolve(certificate);
    });
    socket.once("error", reject);
    socket.setTimeout(5000, () => socket.destroy(new Error("no TLS handshake within 5 s")));
  });
}

function clientOf(): LockClient {
  return new LockClient({ nodes: cluster.urls(), apiToken: cluster.apiToken, tls: { ca: cluster.caPem() as string }, retriesMax: 6 });
}

describe("a lock cluster over TLS, on real processes", () => {
  it("serves HTTPS, takes locks from a client that trusts its CA, and gives a plaintext client nothing", async () => {
    expect(cluster.urls().every((url) => url.startsWith("https://"))).toBe(true);
    const lease = await clientOf().acquire(["tls-slot"], { ttlMs: 5000, autoRenew: false });
    expect(lease.token).toMatch(/^\d+$/);
    await lease.release();
    const plainUrl = (cluster.urls()[0] as string).replace("https://", "http://");
    const plain = await fetch(`${plainUrl}/status`, { signal: AbortSignal.timeout(5000) }).then(
      (response) => `HTTP ${response.status}`,
      (error: Error) => `failed: ${error.message}`,
    );
    expect(plain).toMatch(/^failed/);
    // The peer port (the raft thread's) is TLS too: a plaintext request there gets no answer either.
    const plainPeer = await fetch(`http://127.0.0.1:${cluster.raftPorts.get("n1")}/raft`, { signal: AbortSignal.timeout(5000) }).then(
      (response) => `HTTP ${response.status}`,
      (error: Error) => `failed: ${error.message}`,
    );
    expect(plainPeer).toMatch(/^failed/);
  });

  it("reloads a renewed certificate on SIGHUP without dropping the cluster, and refuses a damaged one", async () => {
    const leader = await cluster.waitForLeader(30_000);
    const before = await cluster.status(leader);
    const target = cluster.ids().find((id) => id !== leader) as string;
    const peerUrl = `https://127.0.0.1:${cluster.raftPorts.get(target)}`;
    const oldSerial = (await servedCertificate(cluster.url(target))).serialNumber;
    expect((await servedCertificate(peerUrl)).serialNumber).toBe(oldSerial);
    await makeCertificates({
      out: join(cluster.dataRoot, "tls"),
      nodes: [target],
      schedulers: [],
      hosts: [],
      renew: [target],
      force: false,
      log: () => undefined,
    });
    cluster.signal(target, "SIGHUP");
    const newSerial = await waitFor(
      async () => {
        const serial = (await servedCertificate(cluster.url(target))).serialNumber;
        return serial === oldSerial ? undefined : serial;
      },
      `${target} to serve its renewed certificate`,
      20_000,
    );
    // The raft thread serves it on the peer port too (it heard of it over its MessagePort).
    await waitFor(
      async () => ((await servedCertificate(peerUrl)).serialNumber === newSerial ? true : undefined),
      `${target}'s peer port to serve the renewed certificate`,
      20_000,
    );
    // The same leader in the same term: no link was dropped long enough for an election.
    const after = await cluster.status(leader);
    expect({ role: after?.role, term: after?.term }).toEqual({ role: "leader", term: before?.term });
    const lease = await clientOf().acquire(["after-reload"], { ttlMs: 5000, autoRenew: false });
    await lease.release();
    await waitFor(
      async () => (((await cluster.status(target))?.appliedIndex ?? 0) >= Number(lease.token) ? true : undefined),
      "the renewed node to apply",
      20_000,
    );

    const files = cluster.tlsFilesOf(target);
    writeFileSync(files?.cert as string, "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n");
    cluster.signal(target, "SIGHUP");
    await new Promise((resolve) => setTimeout(resolve, 500)); // Nothing to wait for: the node must keep serving as it was.
    expect((await servedCertificate(cluster.url(target))).serialNumber).toBe(newSerial);
    expect((await servedCertificate(peerUrl)).serialNumber).toBe(newSerial);
    expect(cluster.exitedNodes()).toEqual([]);
    expect((await cluster.status(leader))?.term).toBe(before?.term);
  }, 120_000);
});

/** exitOf starts a process and returns its exit code and stderr, killing it after `timeoutMs`. */
async function exitOf(script: string, env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once("exit", (exitCode) => resolve(exitCode)));
  clearTimeout(timer);
  return { code, stderr };
}

describe("a listen beyond loopback without TLS", () => {
  it("stops a lock node before it listens (exit 2), naming --insecure", async () => {
    const port = await freePort();
    // The data directory cannot be opened: were the configuration taken, the node would exit 3 before listening.
    const { code, stderr } = await exitOf(
      "node/main.ts",
      {
        SCTEC_NODE_ID: "n1",
        SCTEC_LISTEN: `0.0.0.0:${port}`,
        SCTEC_PEERS: `n1=http://127.0.0.1:${port}`,
        SCTEC_DATA_DIR: "/dev/null/no-such-dir",
        SCTEC_CLUSTER_SECRET: "a-cluster-secret-long-enough",
        SCTEC_API_TOKEN: "an-api-token-long-enough",
      },
      60_000,
    );
    expect(code).toBe(2);
    expect(stderr).toContain("SCTEC_LISTEN / --listen: listens on 0.0.0.0, beyond loopback, without TLS");
    expect(stderr).toContain("--insecure");
  }, 90_000);

  it("stops a booking API before it listens (exit 2), naming --insecure", async () => {
    const port = await freePort();
    const { code, stderr } = await exitOf(
      "scheduler/main.ts",
      {
        SCHEDULER_LISTEN: `0.0.0.0:${port}`,
        SCHEDULER_NODES: `http://127.0.0.1:${await freePort()}`,
        SCTEC_API_TOKEN: "an-api-token-long-enough",
        SCHEDULER_LOG_DIR: join(cluster.dataRoot, "insecure-scheduler"),
      },
      60_000,
    );
    expect(code).toBe(2);
    expect(stderr).toContain("SCHEDULER_LISTEN: listens on 0.0.0.0, beyond loopback, without TLS");
    expect(stderr).toContain("--insecure");
  }, 90_000);
});
