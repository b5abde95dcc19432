// The fuzzer's randomness and its hostile values. Every request draws from its own generator,
// seeded from (run seed, request number), so request N is the same in every run with that seed,
// whatever the concurrency, and can be replayed alone (`npm run fuzz -- --seed S --replay N`).

import { createSeededRandom } from "../../raft/index.ts";

/** Rng is a small seeded generator with the helpers the fuzzer needs. */
export class Rng {
  private readonly source: ReturnType<typeof createSeededRandom>;

  constructor(seed: number) {
    this.source = createSeededRandom(seed);
  }

  /** forRequest: the generator of request `index` of the run seeded with `seed`. */
  static forRequest(seed: number, index: number): Rng {
    // Mixed so that neighbouring indexes start far apart (splitmix inside createSeededRandom does the rest).
    return new Rng((Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77)) >>> 0);
  }

  int(boundExclusive: number): number {
    return this.source.nextInt(boundExclusive);
  }

  chance(probability: number): boolean {
    return this.source.nextFloat() < probability;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick from an empty list");
    return items[this.int(items.length)] as T;
  }

  /** weighted picks one of `[weight, value]`, with probability proportional to the weight. */
  weighted<T>(choices: readonly (readonly [number, T])[]): T {
    const total = choices.reduce((sum, [weight]) => sum + weight, 0);
    let point = this.source.nextFloat() * total;
    for (const [weight, value] of choices) {
      point -= weight;
      if (point < 0) return value;
    }
    return (choices.at(-1) as readonly [number, T])[1];
  }

  /** text draws `length` characters from `alphabet`. */
  text(length: number, alphabet: string): string {
    const characters = [...alphabet];
    let out = "";
    for (let position = 0; position < length; position++) out += this.pick(characters);
    return out;
  }

  hex(length: number): string {
    return this.text(length, "0123456789abcdef");
  }
}

const alphabets = [
  "abcdefghijklmnopqrstuvwxyz0123456789-",
  "ABCDEFGHIJKLMNOPQRSTUVWXYZ abcdefghijklmnopqrstuvwxyz",
  "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ ",
  "\u0000\u0001\u0007\b\t\n\u000b\f\r\u001b\u007f",
  "éü߀中文字😀🚀\u200b\u200e\u202e\ufeff\u0301",
  "\udfff\ud800\ufffd\uffff", // lone surrogates (low first, so they never pair up)
];

/** lengths that sit on the limits of the system (protocol/limits.ts and the booking API's schemas) and either side of them. */
const edgeLengths = [0, 1, 2, 12, 31, 32, 33, 63, 64, 65, 119, 120, 121, 127, 128, 129, 245, 246, 247, 255, 256, 257, 600, 1024];

const fixedStrings = [
  "",
  " ",
  "\t",
  "null",
  "undefined",
  "true",
  "0",
  "-1",
  "1e309",
  "NaN",
  "Infinity",
  "0x10",
  "9007199254740993",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "../../../../etc/passwd",
  "..%2F..%2Fpackage.json",
  "%00",
  "%E0",
  "%",
  "\u0000",
  "a\u0000b",
  "X=vts}1;>(",
  "<script>alert(1)</script>",
  "' OR '1'='1",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template injection probe, on purpose
  "${7*7}",
  "{{7*7}}",
  "Bearer",
  "~chain/audit/",
  "~chain/",
  "n1",
  "N1",
  "-n1",
  "sci_000000000000",
  "bk_000000000000000000000000",
  "hubble-acad",
  "2025-02-30T00:00:00Z",
  "2026-12-08T24:00:00Z",
  "9999-12-31T23:59:59Z",
  "0000-01-01T00:00:00Z",
  "2025-12-01T03:00:00.000Z",
  "2025-12-01T03:00:00+02:00",
  "2025-13-01",
  "2025-12-01",
  "0001-01-01",
  "user@example.org",
  "@",
  "a@b",
];

const fixedNumbers = [0, -0, 1, -1, 2, 1.5, -1.5, 1e-9, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 1e21, 1e308, -1e308, 5e-324];

/** hostileString draws a string: a fixed troublemaker, a string of an edge length, or a random one. */
export function hostileString(rng: Rng): string {
  return rng.weighted<() => string>([
    [4, () => rng.pick(fixedStrings)],
    [3, () => rng.text(rng.pick(edgeLengths), rng.pick(alphabets))],
    [2, () => rng.text(rng.int(20), rng.pick(alphabets))],
    [1, () => "x".repeat(rng.pick([4096, 16_384, 65_536, 65_537]))],
  ])();
}

/** hostileNumber draws a number on or past a boundary. */
export function hostileNumber(rng: Rng): number {
  return rng.weighted<() => number>([
    [3, () => rng.pick(fixedNumbers)],
    [2, () => rng.int(100_000) - 50_000],
    [1, () => rng.pick([999, 1000, 1001, 59_999, 60_000, 60_001, 600_000, 600_001, 30_000, 30_001])],
  ])();
}

/** hostileValue draws any JSON value (and a few that JSON has no exact form for), hostile in type or in content. */
export function hostileValue(rng: Rng, depth = 0): unknown {
  return rng.weighted<() => unknown>([
    [5, () => hostileString(rng)],
    [3, () => hostileNumber(rng)],
    [1, () => rng.pick([true, false, null])],
    // Long arrays at the top only: nested, they would multiply into millions of values.
    [
      1,
      () =>
        depth > 1 ? [] : Array.from({ length: rng.pick(depth === 0 ? [0, 1, 2, 65, 200] : [0, 1, 2]) }, () => hostileValue(rng, depth + 1)),
    ],
    [
      1,
      () =>
        depth > 1 ? {} : Object.fromEntries(Array.from({ length: rng.int(4) }, () => [hostileString(rng), hostileValue(rng, depth + 1)])),
    ],
    [0.3, () => deepNesting(rng.pick([100, 1000, 3000]))],
    [0.3, () => JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}') as unknown],
  ])();
}

/** deepNesting is `[[[…]]]` `depth` levels deep: a parser or validator that recurses must not fall over. */
function deepNesting(depth: number): unknown {
  let value: unknown = [];
  for (let level = 0; level < depth; level++) value = [value];
  return value;
}

/** hostileBodyText draws a body that is not what any endpoint expects: broken JSON, other formats, odd bytes. */
export function hostileBodyText(rng: Rng): string {
  return rng.pick<() => string>([
    () => "",
    () => "{",
    () => '{"a":',
    () => "null",
    () => "[]",
    () => '"text"',
    () => "42",
    () => "{'single': 'quotes'}",
    () => '{"a":1,"a":2}',
    () => "\ufeff{}",
    () => "name=x&email=y",
    () => "<xml/>",
    () => "\u0000\u0001\u0002",
    () => `{"x":"${"\\u0000".repeat(10)}"}`,
    () => "[".repeat(50_000) + "]".repeat(50_000), // deeper than JSON.stringify could write
    () => JSON.stringify(hostileValue(rng)),
    () => rng.text(rng.int(200), rng.pick(alphabets)),
  ])();
}
