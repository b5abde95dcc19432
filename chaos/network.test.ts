// The peer network (network.ts): the partition shapes name the right directed edges, and a cut
// on the real proxy mesh drops one direction only: with "A→B" cut, what A sends over its
// connection to B vanishes while B still reaches A; healing resets A's damaged connection. With
// Raft ports (a node's peers talk to it on a port of its own), each edge has a Raft proxy too,
// named in SCTEC_RAFT_PEERS and cut with the HTTP one (planted: a cut that spared the Raft proxy
// failed the last test).
import { once } from "node:events";
import { connect, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type Edge, PeerNetwork, partitions } from "./network.ts";

const key = (edges: readonly Edge[]) => edges.map((edge) => `${edge.from}>${edge.to}`).sort();

describe("partition shapes", () => {
  it("isolate, split, one-way and bridge cut exactly their edges", () => {
    expect(key(partitions.isolate("n1", ["n2", "n3"]))).toEqual(["n1>n2", "n1>n3", "n2>n1", "n3>n1"]);
    expect(key(partitions.split(["n1"], ["n2", "n3"]))).toEqual(["n1>n2", "n1>n3", "n2>n1", "n3>n1"]);
    expect(key(partitions.outboundOf("n2", ["n1", "n3"]))).toEqual(["n2>n1", "n2>n3"]);
    expect(key(partitions.inboundOf("n2", ["n1", "n3"]))).toEqual(["n1>n2", "n3>n2"]);
    // n3 bridges {n1, n2} and {n4, n5}: the sides lose each other, n3 keeps everyone.
    const bridge = key(partitions.bridge("n3", ["n1", "n2"], ["n4", "n5"]));
    expect(bridge).toHaveLength(8);
    expect(bridge.some((edge) => edge.includes("n3"))).toBe(false);
  });
});

describe("PeerNetwork on loopback", () => {
  const servers: Server[] = [];
  let network: PeerNetwork | undefined;
  afterEach(async () => {
    await network?.close();
    network = undefined;
    for (const server of servers.splice(0)) server.close();
  });

  /** echoServer stands in for a node: it answers every chunk with "<name>:<chunk>". */
  async function echoServer(name: string): Promise<number> {
    const server = createServer((socket) => socket.on("data", (chunk) => socket.write(`${name}:${chunk}`)));
    servers.push(server);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const address = server.address();
    return typeof address === "object" && address !== null ? address.port : 0;
  }

  async function dial(url: string): Promise<{ socket: Socket; received: string[]; closed: Promise<unknown> }> {
    const socket = connect(Number(new URL(url).port), "127.0.0.1");
    const received: string[] = [];
    socket.on("data", (chunk) => received.push(chunk.toString()));
    socket.on("error", () => undefined);
    await once(socket, "connect");
    return { socket, received, closed: once(socket, "close") };
  }

  /** until polls `condition` every 10 ms, for at most 5 s (a loaded machine). */
  async function until(condition: () => boolean): Promise<void> {
    for (let poll = 0; poll < 500 && !condition(); poll++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(condition()).toBe(true);
  }

  it("cuts one direction, keeps the other, and resets the damaged connection when healed", async () => {
    const ports = new Map([
      ["a", await echoServer("a")],
      ["b", await echoServer("b")],
    ]);
    network = await PeerNetwork.start(["a", "b"], (id) => ports.get(id) as number);
    const addressBook = (id: string) =>
      new Map(
        network
          ?.peersFor(id, (peer) => `http://127.0.0.1:${ports.get(peer)}`)
          .split(",")
          .map((item) => item.split("=") as [string, string]),
      );
    expect(addressBook("a").get("a")).toBe(`http://127.0.0.1:${ports.get("a")}`);
    expect(addressBook("a").get("b")).not.toBe(`http://127.0.0.1:${ports.get("b")}`);
    const aToB = await dial(addressBook("a").get("b") as string);
    const bToA = await dial(addressBook("b").get("a") as string);
    network.cut([{ from: "a", to: "b" }]);
    expect(key(network.cutEdges())).toEqual(["a>b"]);
    aToB.socket.write("x");
    bToA.socket.write("y");
    await until(() => bToA.received.length > 0);
    expect(bToA.received).toEqual(["a:y"]); // b still reaches a
    expect(aToB.received).toEqual([]); // a's bytes to b vanished (they went first)
    network.heal();
    await aToB.closed; // lost bytes: reset, as a real network would after a long partition
    expect(network.cutEdges()).toEqual([]);
    const again = await dial(addressBook("a").get("b") as string);
    again.socket.write("z");
    await until(() => again.received.length > 0);
    expect(again.received).toEqual(["b:z"]);
    for (const connection of [bToA, again]) connection.socket.destroy();
  });

  it("with Raft ports, names a Raft proxy per edge in SCTEC_RAFT_PEERS, and a cut drops Raft traffic too", async () => {
    const ports = new Map([
      ["a", await echoServer("a-http")],
      ["b", await echoServer("b-http")],
    ]);
    const raftPorts = new Map([
      ["a", await echoServer("a-raft")],
      ["b", await echoServer("b-raft")],
    ]);
    network = await PeerNetwork.start(
      ["a", "b"],
      (id) => ports.get(id) as number,
      (id) => raftPorts.get(id) as number,
    );
    const raftBook = new Map(
      network
        .raftPeersFor("a", (peer) => `127.0.0.1:${raftPorts.get(peer)}`)
        .split(",")
        .map((item) => item.split("=") as [string, string]),
    );
    expect(raftBook.get("a")).toBe(`127.0.0.1:${raftPorts.get("a")}`);
    expect(raftBook.get("b")).not.toBe(`127.0.0.1:${raftPorts.get("b")}`); // a proxy
    const aToBRaft = await dial(`http://${raftBook.get("b")}`);
    aToBRaft.socket.write("1");
    await until(() => aToBRaft.received.length > 0);
    expect(aToBRaft.received).toEqual(["b-raft:1"]); // through the proxy, to b's Raft port
    network.cut([{ from: "a", to: "b" }]);
    aToBRaft.socket.write("2");
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(aToBRaft.received).toEqual(["b-raft:1"]); // cut: a's Raft bytes to b vanish
    network.heal();
    await aToBRaft.closed;
  });
});
