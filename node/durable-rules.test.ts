// crc32c (durable-rules.ts) computes eight bytes a step (slicing-by-8). Shown equal to the
// byte-at-a-time definition on every length around the 8-byte steps and with a continued
// checksum, and to the published check values (RFC 3720 B.4, and "123456789").

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { crc32c } from "./durable-rules.ts";

/** crc32cBytewise: the definition, a byte at a time (what crc32c was before). */
function crc32cBytewise(bytes: Uint8Array, previous = 0): number {
  let crc = ~previous >>> 0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

describe("crc32c", () => {
  it("matches the published check values", () => {
    expect(crc32c(new TextEncoder().encode("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, position) => position))).toBe(0x46dd794e);
    expect(crc32c(Uint8Array.from({ length: 32 }, (_, position) => 31 - position))).toBe(0x113fdb5c);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it("equals the byte-at-a-time definition, in one piece or continued in slices", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.nat(), fc.integer({ min: 0, max: 0xffffffff }), (bytes, cut, previous) => {
        const expected = crc32cBytewise(bytes, previous);
        expect(crc32c(bytes, previous)).toBe(expected);
        const at = bytes.length === 0 ? 0 : cut % bytes.length;
        expect(crc32c(bytes.subarray(at), crc32c(bytes.subarray(0, at), previous))).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });
});
