// rawHttp sends bytes as they are over a plain TCP socket and reads the answer, for requests no
// HTTP client library would send (odd header whitespace, malformed request lines, broken
// chunking). Bounded: it gives up after timeoutMs and at answerBytesMax, and with stopAfterHead as
// soon as the answer's head is in.

import { connect } from "node:net";

export interface RawAnswer {
  /** status: the status code of the first answer, or undefined when none came (the server closed or the time ran out). */
  readonly status: number | undefined;
  readonly text: string;
  /** timedOut: no end of the connection within timeoutMs. */
  readonly timedOut: boolean;
}

export function rawHttp(
  baseUrl: string,
  request: string | Uint8Array,
  options: { timeoutMs?: number; answerBytesMax?: number; halfClose?: boolean; stopAfterHead?: boolean } = {},
): Promise<RawAnswer> {
  const url = new URL(baseUrl);
  const timeoutMs = options.timeoutMs ?? 5000;
  const answerBytesMax = options.answerBytesMax ?? 64 * 1024;
  return new Promise((resolve) => {
    let text = "";
    let settled = false;
    // Without halfClose the socket stays open for writing: a Node server drops a request whose
    // client ended its side before the answer was ready. With it, a truncated request ends there.
    const socket = connect(Number(url.port), url.hostname, () =>
      options.halfClose === true ? socket.end(request) : socket.write(request),
    );
    const finish = (timedOut: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1]) || undefined, text, timedOut });
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    socket.on("data", (chunk: Buffer) => {
      text += chunk.toString("latin1");
      // stopAfterHead: the status and headers are all the caller wants (an upgraded socket would stay open).
      if (text.length >= answerBytesMax || (options.stopAfterHead === true && text.includes("\r\n\r\n"))) finish(false);
    });
    socket.on("end", () => finish(false));
    socket.on("close", () => finish(false));
    socket.on("error", () => finish(false));
  });
}

/** authorizedGet is a raw GET with the given Authorization value, written as is. */
export function authorizedGet(path: string, authorization: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${authorization}\r\nConnection: close\r\n\r\n`;
}
