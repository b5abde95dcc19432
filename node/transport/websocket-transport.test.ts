// Shows the WebSocket transport on real sockets (127.0.0.1, ephemeral ports): authenticated peers
// exchange messages in every direction; strangers, garbage and unauthenticated frames are closed
// with 1008 while the real peers keep talking; a peer that restarts is redialled; the send queue
// drops instead of growing; close() resolves and stops redialling. Every wait polls with a bound.

import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import type { AppendEntries, NodeId, RaftMessage } from "../../raft/index.ts";
import { nodeId } from "../../raft/index.ts";
import { decodeChallenge, encodeHello, helloProof } from "./auth.ts";
import { encodeFrame } from "./frames.ts";
import type { WebSocketTransportOptions } from "./websocket-transport.ts";
import { backoffDelayMs, WebSocketTransport } from "./websocket-transport.ts";

const secret = "a cluster secret for the tests, long enough";
const n1 = nodeId("n1");
const n2 = nodeId("n2");
const n3 = nodeId("n3");

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly code?: string;
  readonly remoteAddress?: string;
  readonly reason?: string;
}
const WARN = 40;
const ERROR = 50;

/** Everything a test opens, closed after it whatever happened. */
const transports: WebSocketTransport[] = [];
const servers: Server[] = [];

afterEach(async () => {
  await Promise.all(transports.splice(0).map((transport) => transport.close()));
  await Promise.all(servers.splice(0).map(closeServer));
});

/** listen starts an HTTP server on 127.0.0.1 (port 0 unless given) that answers plain requests with 503. */
async function listen(port = 0): Promise<{ server: Server; port: number }> {
  const server = createServer((_request, response) => {
    response.statusCode = 503;
    response.end();
  });
  servers.push(server);
  server.listen(port, "127.0.0.1");
  await once(server, "listening");
  return { server, port: (server.address() as AddressInfo).port };
}

async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function peerUrl(port: number): string {
  return `ws://127.0.0.1:${port}/raft`;
}

interface TestNode {
  readonly transport: WebSocketTransport;
  readonly received: RaftMessage[];
  readonly logs: LogLine[];
}

function startNode(
  id: NodeId,
  server: Server | undefined,
  peers: ReadonlyMap<NodeId, string>,
  overrides: Partial<WebSocketTransportOptions> = {},
): TestNode {
  const logs: LogLine[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => logs.push(JSON.parse(line) as LogLine) });
  const transport = new WebSocketTransport({
    nodeId: id,
    peers,
    clusterSecret: secret,
    frameBytesMax: 64 * 1024,
    queueMessagesMax: 64,
    reconnectBaseMs: 20,
    reconnectMaxMs: 200,
    handshakeTimeoutMs: 500,
    logger,
    ...overrides,
  });
  transports.push(transport);
  if (server !== undefined) transport.handleUpgrade(server);
  const received: RaftMessage[] = [];
  transport.onMessage((message) => received.push(message));
  return { transport, received, logs };
}

/** startCluster starts one transport per id on its own server; the peer maps include each node itself, as the node config does. */
async function startCluster(ids: readonly NodeId[]): Promise<{ nodes: TestNode[]; peers: Map<NodeId, string>; servers: Server[] }> {
  const listening = await Promise.all(ids.map(() => listen()));
  const peers = new Map(ids.map((id, i) => [id, peerUrl(listening[i]!.port)] as const));
  const nodes = ids.map((id, i) => startNode(id, listening[i]!.server, peers));
  return { nodes, peers, servers: listening.map((entry) => entry.server) };
}

/** waitFor polls `condition` every 10 ms, for at most `timeoutMs`. */
async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function heartbeat(from: NodeId, to: NodeId, readContext: number): RaftMessage {
  return { type: "heartbeat", from, to, term: 3, commitIndex: 10, readContext };
}

function append(from: NodeId, to: NodeId, data: Uint8Array): AppendEntries {
  const entries = [{ kind: "normal" as const, term: 3, index: 11, data }];
  return { type: "append_entries", from, to, term: 3, prevLogIndex: 10, prevLogTerm: 3, entries, leaderCommit: 10 };
}

function warnings(node: TestNode, msg: string): LogLine[] {
  return node.logs.filter((line) => line.level === WARN && line.msg === msg);
}

/** refusals: the error lines logged for refused frames (at most one per peer per 5 s, counting the rest). */
function refusals(node: TestNode): (LogLine & { notLogged?: number; framesRejected?: number })[] {
  return node.logs.filter((line) => line.level === ERROR && line.msg.startsWith("refused a frame from peer"));
}

/** authenticatedFake connects to `port` as n2, with the cluster secret, and returns the raw socket. */
async function authenticatedFake(port: number): Promise<Awaited<ReturnType<typeof rawClient>>> {
  const fake = await rawClient(port);
  const nonce = decodeChallenge(fake.frames[0]!)!;
  fake.socket.send(encodeHello({ nodeId: n2, proof: helloProof(secret, nonce, n2), nonce: new Uint8Array(32) }));
  await waitFor(() => fake.frames.length === 2, "the welcome");
  return fake;
}

/** rawClient opens a plain WebSocket to a node and records how it was closed. */
async function rawClient(port: number, path = "/raft"): Promise<{ socket: WebSocket; frames: Buffer[]; closed: Promise<number> }> {
  const socket = new WebSocket(`ws://127.0.0.1:${port}${path}`);
  const frames: Buffer[] = [];
  socket.on("message", (data) => frames.push(data as Buffer));
  socket.on("error", () => {});
  const closed = once(socket, "close").then(([code]) => code as number);
  await once(socket, "open");
  await waitFor(() => frames.length > 0, "the challenge");
  return { socket, frames, closed };
}

describe("WebSocketTransport", () => {
  it("delivers messages between three nodes in every direction, binary data intact", async () => {
    const ids = [n1, n2, n3];
    const { nodes } = await startCluster(ids);
    const data = new Uint8Array([0, 0, 7, 0, 255]);
    for (const [i, from] of ids.entries()) {
      for (const to of ids) if (to !== from) nodes[i]!.transport.send(heartbeat(from, to, i + 1));
      for (const to of ids) if (to !== from) nodes[i]!.transport.send(append(from, to, data));
    }
    await waitFor(() => nodes.every((node) => node.received.length === 4), "4 messages at each node");
    for (const [i, node] of nodes.entries()) {
      const senders = node.received.map((message) => message.from).sort();
      expect(senders).toEqual(ids.filter((id) => id !== ids[i]).flatMap((id) => [id, id]));
      expect(node.received.every((message) => message.to === ids[i])).toBe(true);
      const appended = node.received.filter((message) => message.type === "append_entries");
      expect(appended).toHaveLength(2);
      for (const message of appended) expect(message.type === "append_entries" && message.entries).toEqual(append(n1, n2, data).entries);
    }
    await waitFor(() => nodes.every((node) => [...node.transport.peerStatus().values()].every((peer) => peer.connected)), "all connected");
    const status = nodes[0]!.transport.peerStatus();
    expect([...status.keys()].sort()).toEqual([n2, n3]);
    expect(status.get(n2)).toMatchObject({
      connected: true,
      inboundConnected: true,
      messagesSent: 2,
      framesReceived: 2,
      messagesDropped: 0,
    });
    expect(status.get(n2)?.lastContactMs).toBeTypeOf("number");
  });

  it("refuses a peer with the wrong secret: 1008, a warning with its address, and none of its messages", async () => {
    const a = await listen();
    const m = await listen();
    const peers = new Map([
      [n1, peerUrl(a.port)],
      [n2, peerUrl(m.port)],
    ]);
    const nodeA = startNode(n1, a.server, peers);
    const impostor = startNode(n2, m.server, peers, { clusterSecret: "not the cluster secret at all" });
    for (let i = 0; i < 5; i++) impostor.transport.send(heartbeat(n2, n1, i));
    nodeA.transport.send(heartbeat(n1, n2, 99));
    await waitFor(() => warnings(nodeA, "peer handshake refused").length >= 2, "two refusals at A");
    await waitFor(() => warnings(impostor, "peer handshake refused").length >= 1, "a refusal at the impostor");
    const refusal = warnings(nodeA, "peer handshake refused")[0]!;
    expect(refusal.code).toBe("bad_proof");
    expect(refusal.remoteAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(nodeA.transport.counters().handshakesRefused.bad_proof).toBeGreaterThanOrEqual(2);
    await waitFor(
      () => warnings(impostor, "peer refused our handshake; check the cluster secret and its peer list").length >= 1,
      "the dialer's warning",
    );
    expect(nodeA.received).toEqual([]);
    expect(impostor.received).toEqual([]);
    expect(nodeA.transport.peerStatus().get(n2)).toMatchObject({ connected: false, inboundConnected: false });
    expect(impostor.transport.peerStatus().get(n1)).toMatchObject({ connected: false, queuedMessages: 5 });
  });

  it("closes raw clients that do not authenticate, and keeps serving the real peers", async () => {
    const {
      nodes,
      servers: [serverA],
    } = await startCluster([n1, n2]);
    const port = (serverA!.address() as AddressInfo).port;
    const [nodeA, nodeB] = [nodes[0]!, nodes[1]!];

    const garbage = await rawClient(port);
    garbage.socket.send(new Uint8Array([0xc1, 0xff, 0x00, 0x13]));
    const unauthenticated = await rawClient(port);
    unauthenticated.socket.send(encodeFrame(heartbeat(n2, n1, 77)));
    const text = await rawClient(port);
    text.socket.send("hello?");
    const silent = await rawClient(port);
    const stranger = await rawClient(port);
    const nonce = decodeChallenge(stranger.frames[0]!)!;
    const n9 = nodeId("n9");
    stranger.socket.send(encodeHello({ nodeId: n9, proof: helloProof(secret, nonce, n9), nonce: new Uint8Array(32) }));

    expect(await garbage.closed).toBe(1008);
    expect(await unauthenticated.closed).toBe(1008);
    expect(await text.closed).toBe(1008);
    expect(await stranger.closed).toBe(1008);
    expect(await silent.closed).toBe(1008); // after handshakeTimeoutMs
    const codes = warnings(nodeA, "peer handshake refused").map((line) => line.code);
    expect(codes.sort()).toEqual([
      "handshake_timeout",
      "malformed_handshake",
      "malformed_handshake",
      "malformed_handshake",
      "unknown_peer",
    ]);

    const otherPath = new WebSocket(`ws://127.0.0.1:${port}/other`);
    const [, response] = await once(otherPath, "unexpected-response");
    expect(response.statusCode).toBe(404);

    nodeB.transport.send(heartbeat(n2, n1, 5));
    nodeA.transport.send(heartbeat(n1, n2, 6));
    await waitFor(() => nodeA.received.length === 1 && nodeB.received.length === 1, "the real peers' messages");
    expect(nodeA.received).toEqual([heartbeat(n2, n1, 5)]);
  });

  it("drops bad frames from an authenticated peer, and closes its connection when they keep coming", async () => {
    const a = await listen();
    const peers = new Map([
      [n1, peerUrl(a.port)],
      [n2, "ws://127.0.0.1:9/raft"], // A's own dialling to n2 fails; this test only looks at what A receives.
    ]);
    const rejected: string[] = [];
    const nodeA = startNode(n1, a.server, peers, {
      garbageFramesMax: 3,
      onFrameRejected: (peer, code) => rejected.push(`${peer} ${code}`),
    });
    const fake = await authenticatedFake(a.port);

    fake.socket.send(encodeFrame(heartbeat(n2, n1, 1)));
    fake.socket.send(encodeFrame(heartbeat(n3, n1, 2))); // spoofed sender
    fake.socket.send(encodeFrame(heartbeat(n2, n3, 3))); // not for A
    fake.socket.send(new Uint8Array([1, 2, 3]));
    fake.socket.send(encodeFrame(heartbeat(n2, n1, 4)));
    await waitFor(() => nodeA.received.length === 2, "the two good frames");
    expect(nodeA.received).toEqual([heartbeat(n2, n1, 1), heartbeat(n2, n1, 4)]);
    expect(nodeA.transport.peerStatus().get(n2)).toMatchObject({
      framesReceived: 2,
      framesRejected: 3,
      inboundConnected: true,
      lastRejection: { code: "malformed_frame" },
    });
    expect(rejected).toEqual(["n2 wrong_sender", "n2 wrong_recipient", "n2 malformed_frame"]);
    // Logged at error, once: the next two fall within the same 5 s and are counted for the next line.
    expect(refusals(nodeA).map((line) => line.code)).toEqual(["wrong_sender"]);

    fake.socket.send(new Uint8Array([0xc1]));
    expect(await fake.closed).toBe(1008);
    await waitFor(() => nodeA.transport.peerStatus().get(n2)?.inboundConnected === false, "the inbound connection to go");
  });

  it("a wall-clock step changes nothing but times of day: the garbage window and the time since last contact run on the monotonic clock", async () => {
    // Regression (found looking for Date.now() in the node, for the chaos clock faults): the
    // garbage window, the drop warnings and the last contact used Date.now(), so a step back of
    // minutes kept the window open for minutes and made a silent leader look just heard from on
    // the status page.
    let monotonicMs = 0;
    let wallMs = 1_700_000_000_000;
    const a = await listen();
    const peers = new Map([
      [n1, peerUrl(a.port)],
      [n2, "ws://127.0.0.1:9/raft"],
    ]);
    const nodeA = startNode(n1, a.server, peers, { garbageFramesMax: 3, nowMs: () => monotonicMs, wallNowMs: () => wallMs });
    const fake = await authenticatedFake(a.port);
    fake.socket.send(encodeFrame(heartbeat(n2, n1, 1)));
    await waitFor(() => nodeA.received.length === 1, "a good frame");
    expect(nodeA.transport.peerStatus().get(n2)?.lastContactMs).toBe(wallMs);
    for (let bad = 0; bad < 3; bad++) fake.socket.send(new Uint8Array([0xc1]));
    await waitFor(() => nodeA.transport.peerStatus().get(n2)?.framesRejected === 3, "three bad frames");
    // The wall clock steps back ten minutes while 11 s pass: the window (10 s) is over.
    wallMs -= 600_000;
    monotonicMs += 11_000;
    expect(wallMs - (nodeA.transport.peerStatus().get(n2)?.lastContactMs ?? 0)).toBe(11_000);
    for (let bad = 0; bad < 3; bad++) fake.socket.send(new Uint8Array([0xc1]));
    fake.socket.send(encodeFrame(heartbeat(n2, n1, 2)));
    await waitFor(() => nodeA.received.length === 2, "the next good frame");
    expect(nodeA.transport.peerStatus().get(n2)).toMatchObject({ framesRejected: 6, inboundConnected: true, lastContactMs: wallMs });
    expect(fake.socket.readyState).toBe(WebSocket.OPEN);
  });

  it("refuses an append whose entry this node could not apply, loudly, and takes the good ones", async () => {
    const a = await listen();
    const peers = new Map([
      [n1, peerUrl(a.port)],
      [n2, "ws://127.0.0.1:9/raft"],
    ]);
    const bad = new Uint8Array([0xde, 0xad]);
    const rejected: string[] = [];
    const nodeA = startNode(n1, a.server, peers, {
      checkEntryData: (data) => (data.byteLength === 2 && data[0] === 0xde ? "not a command" : undefined),
      onFrameRejected: (peer, code) => rejected.push(`${peer} ${code}`),
    });
    const fake = await authenticatedFake(a.port);
    fake.socket.send(encodeFrame(append(n2, n1, new Uint8Array([1]))));
    fake.socket.send(encodeFrame(append(n2, n1, bad)));
    fake.socket.send(encodeFrame(heartbeat(n2, n1, 7)));
    await waitFor(() => nodeA.received.length === 2, "the good append and the heartbeat");
    expect(nodeA.received.map((message) => message.type)).toEqual(["append_entries", "heartbeat"]);
    expect(rejected).toEqual(["n2 invalid_entry"]);
    const status = nodeA.transport.peerStatus().get(n2);
    expect(status?.lastRejection).toMatchObject({ code: "invalid_entry", reason: "entry 11 (term 3): not a command" });
    expect(refusals(nodeA)).toMatchObject([{ code: "invalid_entry", reason: "entry 11 (term 3): not a command", framesRejected: 1 }]);
  });

  it("drops a message too large for a frame, and keeps the connection", async () => {
    const { nodes } = await startCluster([n1, n2]);
    const big = append(n1, n2, new Uint8Array(64 * 1024));
    nodes[0]!.transport.send(big);
    nodes[0]!.transport.send(heartbeat(n1, n2, 1));
    await waitFor(() => nodes[1]!.received.length === 1, "the heartbeat");
    expect(nodes[1]!.received).toEqual([heartbeat(n1, n2, 1)]);
    expect(nodes[0]!.transport.peerStatus().get(n2)).toMatchObject({ messagesDropped: 1, messagesSent: 1, connected: true });
  });

  it("redials a peer that went down and came back; messages flow again", async () => {
    const { nodes, peers, servers: clusterServers } = await startCluster([n1, n2, n3]);
    const [nodeA, nodeB] = [nodes[0]!, nodes[1]!];
    nodeA.transport.send(heartbeat(n1, n3, 1));
    await waitFor(() => nodes[2]!.received.length === 1, "the first message to n3");

    await nodes[2]!.transport.close();
    await closeServer(clusterServers[2]!);
    await waitFor(() => nodeA.transport.peerStatus().get(n3)?.connected === false, "A to see n3 gone");
    nodeA.transport.send(heartbeat(n1, n3, 2)); // queued while n3 is down

    const port = Number(new URL(peers.get(n3)!).port);
    const restarted = await listen(port);
    const nodeC = startNode(n3, restarted.server, peers);
    nodeA.transport.send(heartbeat(n1, n3, 3));
    nodeB.transport.send(heartbeat(n2, n3, 4));
    nodeC.transport.send(heartbeat(n3, n1, 5));
    await waitFor(() => nodeC.received.length === 3 && nodeA.received.length === 1, "messages through the new connections");
    expect(nodeC.received.map((message) => (message.type === "heartbeat" ? message.readContext : -1)).sort()).toEqual([2, 3, 4]);
    expect(nodeA.received).toEqual([heartbeat(n3, n1, 5)]);
    expect(warnings(nodeA, "connection to peer lost; reconnecting")).toHaveLength(1);
  });

  it("redials a link that was up at once when it breaks, and reports a peer whose address refuses the connection", async () => {
    const ports = await Promise.all([listen(), listen()]);
    const peers = new Map([
      [n1, peerUrl(ports[0].port)],
      [n2, peerUrl(ports[1].port)],
    ]);
    // The backoff's floor is 2 s here, and the monotonic clock is moved on by hand: only an
    // immediate redial (of a link up for longer than the floor) can find the refusal within 1 s.
    let nowMs = 0;
    const nodeA = startNode(n1, ports[0].server, peers, { reconnectBaseMs: 2000, reconnectMaxMs: 4000, nowMs: () => nowMs });
    const refused: NodeId[] = [];
    nodeA.transport.onPeerRefused((peer) => refused.push(peer));
    const nodeB = startNode(n2, ports[1].server, peers);
    await waitFor(() => nodeA.transport.peerStatus().get(n2)?.connected === true, "A connected to B");
    nowMs += 10_000;
    await nodeB.transport.close();
    await closeServer(ports[1].server); // Nothing listens at B's address any more.
    const lostAt = Date.now();
    await waitFor(() => refused.length > 0, "A to report B refused", 1000);
    expect(Date.now() - lostAt).toBeLessThan(2000);
    expect(refused[0]).toBe(n2);
    expect(new Set(refused)).toEqual(new Set([n2]));
  });

  it("bounds the send queue: the oldest messages are dropped and counted, the newest delivered", async () => {
    const a = await listen();
    const b = await listen(); // Up, but with no transport yet: upgrades get 503 and A keeps redialling.
    const peers = new Map([
      [n1, peerUrl(a.port)],
      [n2, peerUrl(b.port)],
    ]);
    const nodeA = startNode(n1, a.server, peers, { queueMessagesMax: 5 });
    for (let i = 0; i < 50; i++) nodeA.transport.send(heartbeat(n1, n2, i));
    expect(nodeA.transport.peerStatus().get(n2)).toMatchObject({ queuedMessages: 5, messagesDropped: 45, connected: false });
    expect(warnings(nodeA, "dropping messages for peer")).toHaveLength(1); // rate-limited, not one per drop

    await sleep(100); // a few failed dials
    const nodeB = startNode(n2, b.server, peers);
    await waitFor(() => nodeB.received.length === 5, "the five newest messages");
    expect(nodeB.received).toEqual([45, 46, 47, 48, 49].map((i) => heartbeat(n1, n2, i)));
    expect(nodeA.transport.peerStatus().get(n2)).toMatchObject({ queuedMessages: 0, messagesSent: 5, connected: true });
  });

  it("close() resolves, closes its sockets and stops redialling", async () => {
    const { nodes } = await startCluster([n1, n2]);
    await waitFor(
      () => nodes.every((node) => node.transport.peerStatus().get(node === nodes[0] ? n2 : n1)?.connected === true),
      "connected",
    );

    const counting = await listen();
    let upgrades = 0;
    counting.server.on("upgrade", (_request, socket) => {
      upgrades++;
      socket.destroy();
    });
    const lonely = startNode(nodeId("n4"), undefined, new Map([[n1, peerUrl((counting.server.address() as AddressInfo).port)]]));
    await waitFor(() => upgrades >= 2, "a few redials");

    const startedMs = Date.now();
    await Promise.all([nodes[0]!.transport.close(), lonely.transport.close()]);
    expect(Date.now() - startedMs).toBeLessThan(2000);
    await waitFor(() => nodes[1]!.transport.peerStatus().get(n1)?.connected === false, "n2 to see n1 gone");
    const upgradesAtClose = upgrades;
    await sleep(400); // twice reconnectMaxMs
    expect(upgrades).toBe(upgradesAtClose);
    expect(() => lonely.transport.send(heartbeat(nodeId("n4"), n1, 1))).not.toThrow();
    expect(lonely.transport.peerStatus().get(n1)).toMatchObject({ connected: false, queuedMessages: 0 });
  });
});

describe("backoffDelayMs", () => {
  it("grows exponentially from the base, is capped at the max, and jitters within those bounds", () => {
    const bounds = { baseMs: 50, maxMs: 5000 };
    expect([0, 1, 2, 3, 10, 1000].map((attempt) => backoffDelayMs(attempt, bounds, () => 0.999999))).toEqual([
      50, 100, 200, 400, 5000, 5000,
    ]);
    expect([0, 5, 1000].map((attempt) => backoffDelayMs(attempt, bounds, () => 0))).toEqual([50, 50, 50]);
    expect(backoffDelayMs(3, bounds, () => 0.5)).toBe(225);
  });
});
