// A TCP proxy on loopback that a test can cut: it forwards bytes both ways between its clients and
// one target until told to drop them, per direction. Dropped bytes vanish; connections stay open
// and new ones are accepted, so the client sees a blackholed network (no reset, no refusal), the
// way a partition looks from one side. When the cut is lifted, every connection that lost bytes
// is reset: a real network never delivers a stream with a hole in it (TCP retransmits, or the
// connection dies), so the endpoints must not see one either.

import { connect, createServer, type Server, type Socket } from "node:net";

/** Cut: which bytes the proxy drops. "requests": client to target; "answers": target to client. */
export type Cut = "none" | "requests" | "answers" | "both";

export class LoopbackProxy {
  private cut: Cut = "none";
  private readonly sockets = new Set<Socket>();
  /** damaged: client sockets of connections that dropped bytes under the current cut. */
  private readonly damaged = new Set<Socket>();

  private readonly server: Server;
  readonly port: number;

  private constructor(server: Server, port: number) {
    this.server = server;
    this.port = port;
  }

  /** start listens on a free 127.0.0.1 port and forwards to 127.0.0.1:`targetPort`. */
  static async start(targetPort: number): Promise<LoopbackProxy> {
    let proxy: LoopbackProxy | undefined;
    const server = createServer((client) => proxy?.forward(client, targetPort));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    proxy = new LoopbackProxy(server, typeof address === "object" && address !== null ? address.port : 0);
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get currentCut(): Cut {
    return this.cut;
  }

  /** setCut changes which bytes are dropped from now on, on every connection; lifting it resets the connections that lost bytes. */
  setCut(cut: Cut): void {
    this.cut = cut;
    if (cut !== "none") return;
    for (const socket of this.damaged) socket.destroy();
    this.damaged.clear();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private forward(client: Socket, targetPort: number): void {
    const target = connect(targetPort, "127.0.0.1");
    for (const socket of [client, target]) {
      this.sockets.add(socket);
      socket.on("close", () => {
        this.sockets.delete(socket);
        this.damaged.delete(socket);
      });
      socket.on("error", () => undefined); // The other side's close follows.
    }
    client.on("data", (chunk) => {
      if (this.cut !== "requests" && this.cut !== "both") target.write(chunk);
      else this.damaged.add(client);
    });
    target.on("data", (chunk) => {
      if (this.cut !== "answers" && this.cut !== "both") client.write(chunk);
      else this.damaged.add(client);
    });
    client.on("close", () => target.destroy());
    target.on("close", () => client.destroy());
  }
}
