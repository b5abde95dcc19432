// The on-disk vocabulary of LevelDurableLog: its keys, and the msgpackr encoding of its values.
// Decoding never trusts the disk: every value is checked field by field, because a data directory
// can be damaged, hand-edited or written by another program, and a Raft node that starts from a
// half-understood log can break the cluster's safety. A value that does not parse is reported as
// CorruptValueError, which the log turns into DataDirError("corrupt_data_dir").
//
// Every value is framed with a checksum: 4 bytes of CRC-32C (big-endian) over the msgpack bytes
// that follow. LevelDB checksums its own blocks, but only as they sit in its files: a value damaged
// before it reached LevelDB's checksum, by a bug in a layer under us or by a hand edit, or a
// table read with checks off, would decode as a plausible but wrong vote or entry. The frame makes
// any such damage a refusal to start (corrupt_data_dir) instead.

import { Packr } from "msgpackr";
import type { ConfChange, ConfState, Entry, HardState, LogIndex, NodeId, Snapshot } from "../../raft/index.ts";
import { assert, nodeId } from "../../raft/index.ts";
import { crc32c } from "../durable-rules.ts";

/**
 * formatVersion is the layout version written in the meta record; a different one is refused at
 * open. Version 2 framed every value with a checksum; version 1 values had none.
 */
export const formatVersion = 2;

/** checksumBytes: the size of the CRC-32C frame in front of every value. */
const checksumBytes = 4;

export const metaKey = "meta";
export const hardStateKey = "hard_state";
export const snapshotKey = "snapshot";

/**
 * Entry keys are "entry/" and the index zero-padded to 16 decimal digits, so LevelDB's bytewise key
 * order is index order. 16 digits hold Number.MAX_SAFE_INTEGER, the largest index a number can name.
 */
const entryKeyPrefix = "entry/";
const entryIndexDigits = 16;
const entryKeyPattern = /^entry\/(\d{16})$/;

/** entryKeysEnd sorts after every entry key: "0" is the character after "/". */
export const entryKeysEnd = "entry0";
export const entryKeysStart = entryKeyPrefix;

export function entryKey(index: LogIndex): string {
  return entryKeyPrefix + String(index).padStart(entryIndexDigits, "0");
}

/** indexOfEntryKey parses an entry key back into its index, or returns undefined for a malformed key. */
export function indexOfEntryKey(key: string): LogIndex | undefined {
  const match = entryKeyPattern.exec(key);
  if (match === null) return undefined;
  const index = Number(match[1]);
  return Number.isSafeInteger(index) ? index : undefined;
}

/** Meta is the first record written to a data directory: it says whose directory it is. */
export interface Meta {
  readonly formatVersion: number;
  readonly clusterId: string;
  readonly nodeId: string;
}

/** CorruptValueError says a stored value cannot be decoded; `key` names the record. */
export class CorruptValueError extends Error {
  readonly key: string;
  constructor(key: string, message: string, options?: { cause?: unknown }) {
    super(`value at key "${key}" ${message}`, options);
    this.name = "CorruptValueError";
    this.key = key;
  }
}

// useRecords: false keeps every value self-describing (plain msgpack maps), so a value can be
// decoded without the record structures of the process that wrote it. Integers decode as numbers.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, int64AsType: "number" });

export function encodeValue(value: Meta | HardState | Snapshot | Entry): Uint8Array {
  return frameValue(packr.pack(value));
}

/** frameValue puts the checksum frame in front of msgpack bytes (encodeValue's second half; tests frame raw bytes with it). */
export function frameValue(payload: Uint8Array): Uint8Array {
  const framed = new Uint8Array(checksumBytes + payload.length);
  new DataView(framed.buffer).setUint32(0, crc32c(payload));
  framed.set(payload, checksumBytes);
  return framed;
}

/**
 * snapshotValueLayout lays out the stored value of a snapshot: the same bytes as
 * encodeValue(snapshot), checksum field excepted, which is left 0 for the caller to fill
 * (crc32c over valuePayload, then writeChecksum): a long value can be checksummed in slices, with
 * the event loop running between them (LevelDurableLog.compact). The data is copied once, straight
 * into the value; encodeValue copies it twice (into msgpackr's buffer, then into the frame), which
 * for a 6 MB state cost 49–65 ms of the Raft thread under load (docs/BENCHMARKS.md, issue 17).
 *
 * The msgpack is msgpackr's own for everything but the data: the map header, the keys and the
 * metadata come from packing the snapshot with empty data, whose bin header (0xc4 0x00) is then
 * replaced by the real one and followed by the bytes.
 */
export function snapshotValueLayout(snapshot: Snapshot): Uint8Array {
  const head = packr.pack({ metadata: snapshot.metadata, data: new Uint8Array(0) });
  const headLength = head.length - 2;
  assert(head[headLength] === 0xc4 && head[headLength + 1] === 0, "msgpackr packs empty bytes as a bin 8 of length 0, last");
  const dataLength = snapshot.data.length;
  const binHeader =
    dataLength < 0x100
      ? [0xc4, dataLength]
      : dataLength < 0x10000
        ? [0xc5, dataLength >>> 8, dataLength & 0xff]
        : [0xc6, dataLength >>> 24, (dataLength >>> 16) & 0xff, (dataLength >>> 8) & 0xff, dataLength & 0xff];
  const value = new Uint8Array(checksumBytes + headLength + binHeader.length + dataLength);
  value.set(head.subarray(0, headLength), checksumBytes);
  value.set(binHeader, checksumBytes + headLength);
  value.set(snapshot.data, checksumBytes + headLength + binHeader.length);
  return value;
}

/** valuePayload: the bytes of a stored value that its checksum covers (everything after the checksum field). */
export function valuePayload(value: Uint8Array): Uint8Array {
  return value.subarray(checksumBytes);
}

/** writeChecksum fills the checksum field of a value laid out by snapshotValueLayout. */
export function writeChecksum(value: Uint8Array, checksum: number): void {
  new DataView(value.buffer, value.byteOffset, value.byteLength).setUint32(0, checksum);
}

/** unframe checks a value's checksum and returns its msgpack bytes, or throws CorruptValueError. */
function unframe(key: string, bytes: Uint8Array, what: string): Uint8Array {
  if (bytes.length < checksumBytes) throw new CorruptValueError(key, `is too short to hold a checksum (expected a ${what})`);
  const stored = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
  const payload = bytes.subarray(checksumBytes);
  const computed = crc32c(payload);
  if (stored !== computed) {
    throw new CorruptValueError(
      key,
      `fails its checksum (stored ${hex(stored)}, computed ${hex(computed)}): the ${what} was damaged at rest`,
    );
  }
  return payload;
}

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, "0")}`;
}

type Fields = Readonly<Record<string, unknown>>;

/** ShapeError is thrown by the field readers below; decode() turns it into a CorruptValueError. */
class ShapeError extends Error {}

function decode<T>(key: string, bytes: Uint8Array, what: string, parse: (value: Fields) => T): T {
  const payload = unframe(key, bytes, what);
  let value: unknown;
  try {
    value = packr.unpack(payload);
  } catch (error) {
    throw new CorruptValueError(key, `is not valid msgpack (expected a ${what})`, { cause: error });
  }
  try {
    return parse(asFields(value, what));
  } catch (error) {
    if (!(error instanceof ShapeError)) throw error;
    throw new CorruptValueError(key, `is not a valid ${what}: ${error.message}`, { cause: error });
  }
}

function asFields(value: unknown, what: string): Fields {
  if (typeof value !== "object" || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    throw new ShapeError(`expected a map for the ${what}`);
  }
  return value as Fields;
}

/** fieldOf reads one field of a decoded map (a function, so the field name can be a plain string). */
function fieldOf(fields: Fields, name: string): unknown {
  return fields[name];
}

function integerField(fields: Fields, name: string, minimum: number): number {
  const value = fields[name];
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < minimum) {
    throw new ShapeError(`field "${name}" must be an integer >= ${minimum}, found ${String(value)}`);
  }
  return value;
}

function stringField(fields: Fields, name: string): string {
  const value = fields[name];
  if (typeof value !== "string") throw new ShapeError(`field "${name}" must be a string`);
  return value;
}

/** bytesField copies the bytes: msgpackr returns a Buffer that may share memory with the whole value. */
function bytesField(fields: Fields, name: string): Uint8Array {
  const value = fields[name];
  if (!(value instanceof Uint8Array)) throw new ShapeError(`field "${name}" must be bytes`);
  return new Uint8Array(value);
}

function nodeIdList(fields: Fields, name: string): NodeId[] {
  const value = fields[name];
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    throw new ShapeError(`field "${name}" must be a list of node ids`);
  }
  return value.map((item: string) => nodeId(item));
}

/**
 * decodeMeta reads the meta record. A record whose formatVersion is not ours decodes without its
 * other fields being checked, so that the caller reports unsupported_format, not corrupt_data_dir:
 * a newer format may shape them differently.
 */
export function decodeMeta(key: string, bytes: Uint8Array): Meta {
  const unframedVersion = unframedFormatVersion(bytes);
  if (unframedVersion !== undefined) return { formatVersion: unframedVersion, clusterId: "", nodeId: "" };
  return decode(key, bytes, "meta record", (fields) => {
    const version = integerField(fields, "formatVersion", 0);
    if (version !== formatVersion) return { formatVersion: version, clusterId: "", nodeId: "" };
    return { formatVersion: version, clusterId: stringField(fields, "clusterId"), nodeId: stringField(fields, "nodeId") };
  });
}

/**
 * unframedFormatVersion reads the version of a meta record written before values were framed
 * (format 1: plain msgpack), so such a directory is refused as unsupported_format, not as corrupt.
 */
function unframedFormatVersion(bytes: Uint8Array): number | undefined {
  try {
    const value: unknown = packr.unpack(bytes);
    if (typeof value !== "object" || value === null) return undefined;
    const version = (value as Fields)["formatVersion"];
    return typeof version === "number" && Number.isSafeInteger(version) && version < formatVersion ? version : undefined;
  } catch {
    return undefined;
  }
}

export function decodeHardState(key: string, bytes: Uint8Array): HardState {
  return decode(key, bytes, "hard state", (fields) => {
    const votedFor = fieldOf(fields, "votedFor");
    if (votedFor !== null && typeof votedFor !== "string") throw new ShapeError(`field "votedFor" must be a node id or null`);
    return {
      term: integerField(fields, "term", 0),
      votedFor: votedFor === null ? null : nodeId(votedFor),
      commitIndex: integerField(fields, "commitIndex", 0),
    };
  });
}

export function decodeSnapshot(key: string, bytes: Uint8Array): Snapshot {
  return decode(key, bytes, "snapshot", (fields) => {
    const metadata = asFields(fieldOf(fields, "metadata"), "snapshot metadata");
    const confState: ConfState = {
      voters: nodeIdList(asFields(fieldOf(metadata, "confState"), "membership"), "voters"),
      learners: nodeIdList(asFields(fieldOf(metadata, "confState"), "membership"), "learners"),
    };
    return {
      metadata: { index: integerField(metadata, "index", 1), term: integerField(metadata, "term", 1), confState },
      data: bytesField(fields, "data"),
    };
  });
}

const confChangeTypes: ReadonlySet<string> = new Set<ConfChange["type"]>(["add_voter", "add_learner", "promote_learner", "remove_node"]);

function confChangeField(fields: Fields, name: string): ConfChange {
  const change = asFields(fieldOf(fields, name), "membership change");
  const type = stringField(change, "type");
  if (!confChangeTypes.has(type)) throw new ShapeError(`unknown membership change type "${type}"`);
  return { type: type as ConfChange["type"], nodeId: nodeId(stringField(change, "nodeId")) };
}

export function decodeEntry(key: string, bytes: Uint8Array): Entry {
  return decode(key, bytes, "log entry", (fields): Entry => {
    const term = integerField(fields, "term", 1);
    const index = integerField(fields, "index", 1);
    const kind = fieldOf(fields, "kind");
    switch (kind) {
      case "normal":
        return { kind, term, index, data: bytesField(fields, "data") };
      case "noop":
        return { kind, term, index };
      case "conf_change":
        return { kind, term, index, change: confChangeField(fields, "change") };
      default:
        throw new ShapeError(`unknown entry kind "${String(kind)}"`);
    }
  });
}
