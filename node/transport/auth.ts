// Peer authentication with the cluster secret, by challenge and response, so that the secret
// never crosses the wire (DESIGN.md "Security": nodes accept peer connections only from holders of
// the cluster secret). Both sides prove they hold it, so a node never sends Raft traffic to an
// impostor either:
//
//   acceptor → dialer   { v: 1, challenge: nonceA }                       32 random bytes
//   dialer → acceptor   { v: 1, hello: { nodeId, proof, nonce: nonceB } }  proof = HMAC-SHA256(secret, nonceA ‖ nodeId)
//   acceptor → dialer   { v: 1, welcome: { nodeId, proof } }               proof = HMAC-SHA256(secret, "welcome" ‖ nonceB ‖ nodeId)
//
// The welcome proof carries a label so that a dialer's hello proof can never be replayed as an
// acceptor's welcome. Nonces are fresh per connection, so a recorded exchange is useless later.
// Anything else, a wrong proof, an unknown node or a timeout closes the socket with 1008 (policy
// violation) and logs a warning with the remote address.
//
// Over mutual TLS the handshake stays, as a second factor (docs/DESIGN.md, "TLS and the peer
// link"): the TLS layer has already checked the certificate's chain, and the acceptor then also
// requires the hello's node id to be the one the client certificate names (the dialer checks the
// acceptor's certificate name when it connects, in websocket-transport.ts).

import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { Logger } from "pino";
import type { RawData, WebSocket } from "ws";
import { nodeIdPattern } from "../../protocol/limits.ts";
import type { NodeId } from "../../raft/index.ts";
import { nodeId } from "../../raft/index.ts";
import type { DecodeResult } from "./frames.ts";
import { packEnvelope, unpackEnvelope } from "./frames.ts";

/** NONCE_BYTES is the size of each side's challenge nonce; fixed, so `nonce ‖ nodeId` parses one way only. */
export const NONCE_BYTES = 32;
const PROOF_BYTES = 32; // SHA-256
/** handshakeBytesMax bounds a handshake frame: they are tiny, and arrive before the peer is trusted. */
const handshakeBytesMax = 1024;
const welcomeLabel = Buffer.from("welcome", "utf8");

/** POLICY_VIOLATION is the WebSocket close code for a refused handshake (RFC 6455 §7.4.1). */
export const POLICY_VIOLATION = 1008;

/** HandshakeErrorCode says why a handshake failed; it is logged, and counted by the transport. */
export type HandshakeErrorCode =
  | "handshake_timeout"
  | "malformed_handshake"
  | "bad_proof"
  | "unknown_peer"
  | "unexpected_peer"
  /** untrusted_certificate: over TLS, the peer showed no certificate from the cluster's CA (or we refused its server certificate). */
  | "untrusted_certificate"
  /** certificate_mismatch: over TLS, the certificate names another member than the peer claims (or than the one dialled). */
  | "certificate_mismatch";

interface Hello {
  readonly nodeId: NodeId;
  readonly proof: Uint8Array;
  readonly nonce: Uint8Array;
}
interface Welcome {
  readonly nodeId: NodeId;
  readonly proof: Uint8Array;
}

/** createNonce returns fresh random bytes from the OS generator. */
export function createNonce(): Uint8Array {
  return new Uint8Array(randomBytes(NONCE_BYTES));
}

/** helloProof is the dialer's answer to a challenge: HMAC-SHA256(secret, nonce ‖ nodeId). */
export function helloProof(secret: string, nonce: Uint8Array, id: NodeId): Uint8Array {
  return new Uint8Array(createHmac("sha256", secret).update(nonce).update(id, "utf8").digest());
}

/** welcomeProof is the acceptor's answer to the dialer's nonce, labelled so it cannot be confused with a hello proof. */
export function welcomeProof(secret: string, nonce: Uint8Array, id: NodeId): Uint8Array {
  return new Uint8Array(createHmac("sha256", secret).update(welcomeLabel).update(nonce).update(id, "utf8").digest());
}

/** proofMatches compares in constant time, so timing does not reveal how much of a forged proof was right. */
function proofMatches(expected: Uint8Array, actual: Uint8Array): boolean {
  return expected.byteLength === actual.byteLength && timingSafeEqual(expected, actual);
}

// ---------------------------------------------------------------------------------------------
// Handshake frames. Each decoder checks the envelope, the exact field set and every field.

/** encodeChallenge builds the acceptor's first frame. */
export function encodeChallenge(nonce: Uint8Array): Uint8Array {
  return packEnvelope({ challenge: nonce });
}

/** encodeHello builds the dialer's answer to a challenge. */
export function encodeHello(hello: Hello): Uint8Array {
  return packEnvelope({ hello: { nodeId: hello.nodeId, proof: hello.proof, nonce: hello.nonce } });
}

/** encodeWelcome builds the acceptor's answer to a valid hello. */
export function encodeWelcome(welcome: Welcome): Uint8Array {
  return packEnvelope({ welcome: { nodeId: welcome.nodeId, proof: welcome.proof } });
}

type Fields = Readonly<Record<string, unknown>>;

/** handshakeField unpacks a handshake envelope that must hold exactly `v` and the one field `name`. */
function handshakeField(bytes: Uint8Array, name: string): DecodeResult<unknown> {
  const envelope = unpackEnvelope(bytes, handshakeBytesMax);
  if (!envelope.ok) return envelope;
  const keys = Object.keys(envelope.value);
  if (keys.length !== 2 || !Object.hasOwn(envelope.value, name)) {
    return { ok: false, code: "malformed_frame", reason: `expected a \`${name}\` frame, got fields ${keys.join(",").slice(0, 60)}` };
  }
  return { ok: true, value: envelope.value[name] };
}

function isBytes(value: unknown, length: number): value is Uint8Array {
  return value instanceof Uint8Array && value.byteLength === length;
}

function isNodeIdText(value: unknown): value is string {
  return typeof value === "string" && nodeIdPattern.test(value);
}

function hasExactKeys(value: unknown, keys: readonly string[]): value is Fields {
  if (typeof value !== "object" || value === null || Object.getPrototypeOf(value) !== Object.prototype) return false;
  const own = Object.keys(value);
  return own.length === keys.length && keys.every((key) => Object.hasOwn(value, key));
}

/** decodeChallenge returns the acceptor's nonce, or undefined for anything that is not exactly a challenge frame. */
export function decodeChallenge(bytes: Uint8Array): Uint8Array | undefined {
  const field = handshakeField(bytes, "challenge");
  return field.ok && isBytes(field.value, NONCE_BYTES) ? new Uint8Array(field.value) : undefined;
}

/** decodeHello returns a checked hello (fields only; the proof is verified by acceptHandshake), or undefined. */
export function decodeHello(bytes: Uint8Array): Hello | undefined {
  const field = handshakeField(bytes, "hello");
  if (!field.ok || !hasExactKeys(field.value, ["nodeId", "proof", "nonce"])) return undefined;
  const { nodeId: id, proof, nonce } = field.value;
  if (!isNodeIdText(id) || !isBytes(proof, PROOF_BYTES) || !isBytes(nonce, NONCE_BYTES)) return undefined;
  return { nodeId: nodeId(id), proof: new Uint8Array(proof), nonce: new Uint8Array(nonce) };
}

/** decodeWelcome returns a checked welcome (fields only; the proof is verified by dialHandshake), or undefined. */
export function decodeWelcome(bytes: Uint8Array): Welcome | undefined {
  const field = handshakeField(bytes, "welcome");
  if (!field.ok || !hasExactKeys(field.value, ["nodeId", "proof"])) return undefined;
  const { nodeId: id, proof } = field.value;
  if (!isNodeIdText(id) || !isBytes(proof, PROOF_BYTES)) return undefined;
  return { nodeId: nodeId(id), proof: new Uint8Array(proof) };
}

/** rawDataBytes turns what ws delivers into one Uint8Array; text frames are not ours and give undefined. */
export function rawDataBytes(data: RawData, isBinary: boolean): Uint8Array | undefined {
  if (!isBinary) return undefined;
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

// ---------------------------------------------------------------------------------------------
// The two sides of the handshake. Each takes over the socket's "message" events until it
// succeeds (and hands the socket on) or fails (and closes it). Neither ever throws.

/** HandshakeOptions are what both sides need. */
export interface HandshakeOptions {
  readonly nodeId: NodeId;
  readonly clusterSecret: string;
  readonly handshakeTimeoutMs: number;
  readonly logger: Logger;
  /** remoteAddress names the other end in warnings (address:port inbound, the peer URL outbound). */
  readonly remoteAddress: string;
  /** onFailure is told why a handshake failed (for counters), after the socket was closed. */
  readonly onFailure: (code: HandshakeErrorCode) => void;
}

interface Refusal {
  readonly code: HandshakeErrorCode;
  readonly detail: string;
}

/** A handshake step consumes one frame: it waits for another, finishes with the peer's id, or refuses the peer. */
type StepOutcome = "continue" | { readonly peer: NodeId } | Refusal;

/**
 * acceptHandshake runs the acceptor's side on a fresh inbound socket: it sends a challenge and
 * waits for a hello from a configured peer (`isPeer`) that proves the secret. Only then does it
 * answer with a welcome and call `onAccepted`, which must attach the socket's Raft frame handler
 * at once (ws emits frames synchronously, so none is lost in between).
 */
export function acceptHandshake(
  socket: WebSocket,
  options: HandshakeOptions & {
    readonly isPeer: (id: NodeId) => boolean;
    /** certifiedPeer: over TLS, the member id the client's verified certificate names; the hello must claim the same. */
    readonly certifiedPeer?: string;
  },
  onAccepted: (peer: NodeId) => void,
): void {
  const nonce = createNonce();
  const step = (bytes: Uint8Array | undefined): StepOutcome => {
    const hello = bytes === undefined ? undefined : decodeHello(bytes);
    if (hello === undefined) return { code: "malformed_handshake", detail: "the first frame was not a hello" };
    if (!proofMatches(helloProof(options.clusterSecret, nonce, hello.nodeId), hello.proof)) {
      return { code: "bad_proof", detail: `wrong proof for ${hello.nodeId}` };
    }
    // Membership is checked after the proof, so that a stranger cannot probe for configured ids.
    if (!options.isPeer(hello.nodeId)) return { code: "unknown_peer", detail: `${hello.nodeId} is not a configured peer` };
    if (options.certifiedPeer !== undefined && options.certifiedPeer !== hello.nodeId) {
      return { code: "certificate_mismatch", detail: `${hello.nodeId} presented the certificate of ${options.certifiedPeer}` };
    }
    socket.send(encodeWelcome({ nodeId: options.nodeId, proof: welcomeProof(options.clusterSecret, hello.nonce, options.nodeId) }));
    return { peer: hello.nodeId };
  };
  driveHandshake(socket, options, step, onAccepted);
  if (socket.readyState === socket.OPEN) socket.send(encodeChallenge(nonce));
}

/**
 * dialHandshake runs the dialer's side on a socket it just opened to `peer`: it answers the
 * challenge, then checks that the welcome comes from `peer` and proves the secret, and only then
 * calls `onReady`. It must be called right after `new WebSocket(...)`: the timeout then covers
 * the TCP connection and the HTTP upgrade as well.
 */
export function dialHandshake(socket: WebSocket, options: HandshakeOptions & { readonly peer: NodeId }, onReady: () => void): void {
  const nonce = createNonce();
  let challenged = false;
  const step = (bytes: Uint8Array | undefined): StepOutcome => {
    if (!challenged) {
      const challenge = bytes === undefined ? undefined : decodeChallenge(bytes);
      if (challenge === undefined) return { code: "malformed_handshake", detail: "the first frame was not a challenge" };
      socket.send(encodeHello({ nodeId: options.nodeId, proof: helloProof(options.clusterSecret, challenge, options.nodeId), nonce }));
      challenged = true;
      return "continue";
    }
    const welcome = bytes === undefined ? undefined : decodeWelcome(bytes);
    if (welcome === undefined) return { code: "malformed_handshake", detail: "the second frame was not a welcome" };
    if (welcome.nodeId !== options.peer) {
      return { code: "unexpected_peer", detail: `the address of ${options.peer} answered as ${welcome.nodeId}` };
    }
    if (!proofMatches(welcomeProof(options.clusterSecret, nonce, options.peer), welcome.proof)) {
      return { code: "bad_proof", detail: `wrong welcome proof from ${options.peer}` };
    }
    return { peer: welcome.nodeId };
  };
  driveHandshake(socket, options, step, onReady);
}

/**
 * driveHandshake feeds the socket's frames to `step` until it finishes or refuses, under one
 * timeout for the whole exchange. After that it detaches itself, so the caller's own frame
 * handler (attached in `onDone`) sees every later frame.
 */
function driveHandshake(
  socket: WebSocket,
  options: HandshakeOptions,
  step: (bytes: Uint8Array | undefined) => StepOutcome,
  onDone: (peer: NodeId) => void,
): void {
  const detach = (): void => {
    clearTimeout(timer);
    socket.off("message", onMessage);
    socket.off("close", detach);
  };
  const timer = setTimeout(() => {
    detach();
    refuse(socket, options, { code: "handshake_timeout", detail: `no handshake within ${options.handshakeTimeoutMs} ms` });
  }, options.handshakeTimeoutMs);
  const onMessage = (data: RawData, isBinary: boolean): void => {
    const outcome = step(rawDataBytes(data, isBinary));
    if (outcome === "continue") return;
    detach();
    if ("peer" in outcome) onDone(outcome.peer);
    else refuse(socket, options, outcome);
  };
  socket.on("message", onMessage);
  socket.on("close", detach);
}

/** refuse closes the socket with 1008 and logs why, with the remote address. */
function refuse(socket: WebSocket, options: HandshakeOptions, refusal: Refusal): void {
  options.logger.warn({ remoteAddress: options.remoteAddress, code: refusal.code, detail: refusal.detail }, "peer handshake refused");
  if (socket.readyState === socket.OPEN) socket.close(POLICY_VIOLATION, refusal.code);
  else socket.terminate(); // Still connecting: close() would wait for the upgrade, terminate() does not.
  options.onFailure(refusal.code);
}
