// Seeded randomness for the core and the simulator. The core never calls Math.random: the
// host passes a RandomSource in, so a simulation run is a pure function of its seed.

/** RandomSource yields uniformly distributed integers. */
export interface RandomSource {
  /** nextInt returns an integer in [0, boundExclusive). */
  nextInt(boundExclusive: number): number;
}

/**
 * createSeededRandom returns a small, fast PRNG (sfc32, seeded through splitmix32) whose
 * sequence depends only on `seed`. It is not cryptographic; it only spreads election timeouts
 * and drives the simulator.
 */
export function createSeededRandom(seed: number): RandomSource & { nextFloat(): number } {
  let state = seed >>> 0;
  const splitmix = (): number => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
  let a = splitmix();
  let b = splitmix();
  let c = splitmix();
  let d = splitmix();
  const next32 = (): number => {
    const t = (((a + b) >>> 0) + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t;
  };
  for (let warmup = 0; warmup < 12; warmup++) next32();
  return {
    nextInt(boundExclusive: number): number {
      if (!(boundExclusive >= 1)) throw new RangeError(`nextInt bound must be >= 1, got ${boundExclusive}`);
      return Math.floor((next32() / 0x1_0000_0000) * boundExclusive);
    },
    nextFloat(): number {
      return next32() / 0x1_0000_0000;
    },
  };
}
