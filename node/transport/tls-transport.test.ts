// The peer link over mutual TLS, on real sockets (HTTPS servers on 127.0.0.1, certificates of a CA
// made for the test): members with certificates from the cluster's CA, each naming its member id,
// link up both ways; and the link is refused, both ways, to a plaintext peer, to a TLS client that
// shows no certificate, to a member whose certificate comes from another CA, and to a member that
// shows another member's certificate (the secret handshake passes in every case: the certificates
// are what is refused). Every wait polls with a bound.

import { once } from "node:events";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { serverTlsOptions } from "../../config/tls.ts";
import { type CertificateAuthority, createAuthority, type IssuedCertificate, issueCertificate } from "../../harness/certificates.ts";
import type { NodeId, RaftMessage } from "../../raft/index.ts";
import { nodeId } from "../../raft/index.ts";
import { WebSocketTransport, type WebSocketTransportOptions } from "./websocket-transport.ts";

const secret = "a cluster secret for the tests, long enough";
const [n1, n2, n3] = ["n1", "n2", "n3"].map(nodeId) as [NodeId, NodeId, NodeId];

let authority: CertificateAuthority;
let otherAuthority: CertificateAuthority;
const issued = new Map<string, IssuedCertificate>();
beforeAll(async () => {
  authority = await createAuthority({ name: "test CA" });
  otherAuthority = await createAuthority({ name: "another CA" });
  for (const id of [n1, n2, n3]) {
    issued.set(
      id,
      await issueCertificate(authority, { commonName: id, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], client: true }),
    );
  }
  issued.set(
    "n3-other-ca",
    await issueCertificate(otherAuthority, { commonName: n3, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"], client: true }),
  );
}, 30_000);

const transports: WebSocketTransport[] = [];
const servers: HttpsServer[] = [];
afterEach(async () => {
  await Promise.all(transports.splice(0).map((transport) => transport.close()));
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

/** Material is what one node serves and dials with: its certificate and key, and the CA it trusts. */
interface Material {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

function materialOf(name: string, trusted: CertificateAuthority = authority): Material {
  const certificate = issued.get(name) as IssuedCertificate;
  return { cert: certificate.certPem, key: certificate.keyPem, ca: trusted.certPem };
}

async function listen(material: Material): Promise<{ server: HttpsServer; port: number }> {
  const server = createHttpsServer(serverTlsOptions(material, { requestClientCertificates: true }));
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return { server, port: (server.address() as AddressInfo).port };
}

interface TestNode {
  readonly transport: WebSocketTransport;
  readonly received: RaftMessage[];
}

function startNode(
  id: NodeId,
  server: HttpsServer,
  peers: ReadonlyMap<NodeId, string>,
  overrides: Partial<WebSocketTransportOptions>,
): TestNode {
  const transport = new WebSocketTransport({
    nodeId: id,
    peers,
    clusterSecret: secret,
    frameBytesMax: 64 * 1024,
    queueMessagesMax: 64,
    reconnectBaseMs: 20,
    reconnectMaxMs: 200,
    handshakeTimeoutMs: 1000,
    logger: pino({ level: "silent" }),
    ...overrides,
  });
  transports.push(transport);
  transport.handleUpgrade(server);
  const received: RaftMessage[] = [];
  transport.onMessage((message) => received.push(message));
  return { transport, received };
}

/** startCluster starts n1..n3 over TLS; `materials` says what each serves and dials with (default: its own, from the cluster's CA). */
async function startCluster(
  materials: Partial<Record<string, Material>> = {},
): Promise<{ nodes: Map<NodeId, TestNode>; ports: Map<NodeId, number> }> {
  const chosen = new Map([n1, n2, n3].map((id) => [id, materials[id] ?? materialOf(id)] as const));
  const listening = new Map<NodeId, { server: HttpsServer; port: number }>();
  for (const [id, material] of chosen) listening.set(id, await listen(material));
  const peers = new Map([...listening].map(([id, { port }]) => [id, `wss://127.0.0.1:${port}/raft`] as const));
  const nodes = new Map<NodeId, TestNode>();
  for (const [id, material] of chosen) {
    nodes.set(id, startNode(id, (listening.get(id) as { server: HttpsServer }).server, peers, { tls: () => material }));
  }
  return { nodes, ports: new Map([...listening].map(([id, { port }]) => [id, port])) };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function linked(nodes: Map<NodeId, TestNode>, from: NodeId, to: NodeId): boolean {
  return nodes.get(from)?.transport.peerStatus().get(to)?.connected === true;
}

function refusedCount(node: TestNode | undefined, code: "untrusted_certificate" | "certificate_mismatch"): number {
  return node?.transport.counters().handshakesRefused[code] ?? 0;
}

function heartbeat(from: NodeId, to: NodeId): RaftMessage {
  return { type: "heartbeat", from, to, term: 3, commitIndex: 10, readContext: 0 };
}

describe("the peer link over mutual TLS", () => {
  it("links members whose certificates come from the cluster's CA and name them, both ways", async () => {
    const { nodes } = await startCluster();
    for (const from of [n1, n2, n3]) {
      for (const to of [n1, n2, n3]) if (from !== to) await waitFor(() => linked(nodes, from, to), `${from} → ${to}`);
    }
    nodes.get(n1)?.transport.send(heartbeat(n1, n3));
    await waitFor(() => (nodes.get(n3)?.received.length ?? 0) > 0, "a heartbeat over TLS");
    expect(nodes.get(n3)?.received[0]).toMatchObject({ type: "heartbeat", from: n1 });
  });

  it("refuses a plaintext peer, and a TLS client that shows no certificate", async () => {
    const { nodes, ports } = await startCluster();
    await waitFor(() => linked(nodes, n1, n2), "the cluster");
    const n1Port = ports.get(n1) as number;
    // A node without TLS dials the TLS node in the clear: the TLS server cannot even read its request.
    const plainServer = await listen(materialOf("n3"));
    const plain = startNode(n3, plainServer.server, new Map([[n1, `ws://127.0.0.1:${n1Port}/raft`]]), {});
    // A TLS client without a certificate, with the secret handshake's first frame awaited.
    const noCertificate = new WebSocket(`wss://127.0.0.1:${n1Port}/raft`, { ca: authority.certPem });
    const refusal = await new Promise<string>((resolve) => {
      noCertificate.on("unexpected-response", (_request, response) => resolve(`HTTP ${response.statusCode}`));
      noCertificate.on("open", () => resolve("opened"));
      noCertificate.on("error", (error) => resolve(error.message));
    });
    noCertificate.terminate();
    expect(refusal).toBe("HTTP 401");
    await waitFor(() => refusedCount(nodes.get(n1), "untrusted_certificate") >= 1, "n1 to count the refusal");
    await new Promise((resolve) => setTimeout(resolve, 300)); // Several redials of the plaintext peer.
    expect(plain.transport.peerStatus().get(n1)?.connected).toBe(false);
    expect(nodes.get(n1)?.transport.peerStatus().get(n3)?.inboundConnected).toBe(true); // Still the real n3's link.
  });

  /** expectN3CutOff: no link between n3 and either other member, in either direction. */
  function expectN3CutOff(nodes: Parameters<typeof linked>[0]): void {
    for (const [from, to] of [
      [n1, n3],
      [n3, n1],
      [n2, n3],
      [n3, n2],
    ] as const) {
      expect(linked(nodes, from, to), `${from} → ${to}`).toBe(false);
    }
  }

  it("refuses, both ways, a member whose certificate comes from another CA", async () => {
    const { nodes } = await startCluster({ n3: { ...materialOf("n3-other-ca", otherAuthority), ca: authority.certPem } });
    await waitFor(() => linked(nodes, n1, n2) && linked(nodes, n2, n1), "n1 and n2 to link");
    await waitFor(
      () => refusedCount(nodes.get(n1), "untrusted_certificate") >= 2 && refusedCount(nodes.get(n3), "untrusted_certificate") >= 2,
      "both sides to refuse n3's certificate",
    );
    expectN3CutOff(nodes);
  });

  it("refuses, both ways, a member that shows another member's certificate", async () => {
    const { nodes } = await startCluster({ n3: materialOf("n2") });
    await waitFor(() => linked(nodes, n1, n2) && linked(nodes, n2, n1), "n1 and n2 to link");
    await waitFor(
      () => refusedCount(nodes.get(n1), "certificate_mismatch") >= 2 && refusedCount(nodes.get(n2), "certificate_mismatch") >= 2,
      "n1 and n2 to refuse n3 (as dialler and as acceptor)",
    );
    expectN3CutOff(nodes);
    expect(nodes.get(n1)?.transport.peerStatus().get(n3)?.inboundConnected).toBe(false);
  });
});
