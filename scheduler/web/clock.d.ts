// Types for clock.js (plain JavaScript, served to the browser as is), for clock.test.ts and tsc.

/** One `GET /time` exchange: local clock when sent and when answered, and the server's clock in the answer, all in ms. */
export interface TimeSample {
  sentAtMs: number;
  receivedAtMs: number;
  serverTimeMs: number;
}

export interface ClockEstimate {
  /** Server clock minus local clock, in ms. */
  offsetMs: number;
  /** Half the best round trip, in ms. */
  uncertaintyMs: number;
  /** The best (smallest) round trip, in ms. */
  rttMs: number;
  /** How many samples were usable. */
  samples: number;
}

export function roundTripMs(sample: TimeSample): number;
export function offsetMs(sample: TimeSample): number;
export function bestSample(samples: readonly TimeSample[]): TimeSample | undefined;
export function estimate(samples: readonly TimeSample[]): ClockEstimate | undefined;
export function serverTimeOf(body: unknown): number;
export function synchronise(fetchServerTimeMs: () => Promise<number>, now: () => number, count?: number): Promise<ClockEstimate>;
export function formatOffset(offset: number, uncertainty: number): string;
