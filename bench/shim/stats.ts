/**
 * Summary statistics for benchmark samples: median, p90, spread (min–max and standard deviation), and the median of
 * paired differences of an interleaved A/B run (host-lab.md §8.7), which cancels most of the host's drift.
 *
 * Percentiles use linear interpolation between closest ranks (the "R-7" method of spreadsheets and numpy), so the
 * median of an even count is the mean of the two middle samples.
 *
 * @example
 * ```ts
 * import { paired, summarize } from "./stats.ts";
 * const s = summarize([61, 59, 64, 70]);
 * console.log(s.median, s.p90, s.min, s.max); // 62.5 68.2 59 70
 * console.log(paired([60, 61], [66, 64]).median); // 4.5
 * ```
 * @module
 */

/** Summary of one sample set. */
export interface Summary {
  n: number;
  median: number;
  p90: number;
  min: number;
  max: number;
  mean: number;
  /** Sample standard deviation (n − 1); 0 for fewer than two samples. */
  stdev: number;
}

/** The `q`-quantile (0 ≤ q ≤ 1) of `sorted` (ascending), interpolated linearly between closest ranks. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new RangeError("quantile of no samples");
  if (q < 0 || q > 1) throw new RangeError(`quantile ${q} is outside [0, 1]`);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Summarizes `samples`; throws on an empty set, since a figure from nothing would be a lie in the report. */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) throw new RangeError("no samples to summarize");
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  const mean = sorted.reduce((s, x) => s + x, 0) / n;
  const variance = n < 2 ? 0 : sorted.reduce((s, x) => s + (x - mean) ** 2, 0) / (n - 1);
  return {
    n,
    median: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    min: sorted[0],
    max: sorted[n - 1],
    mean,
    stdev: Math.sqrt(variance),
  };
}

/** Summary of the paired differences `b[i] − a[i]` of an interleaved run (same length required). */
export function paired(a: readonly number[], b: readonly number[]): Summary {
  if (a.length !== b.length) throw new RangeError(`paired samples differ in length: ${a.length} vs ${b.length}`);
  return summarize(a.map((x, i) => b[i] - x));
}

/** `ours / theirs`, or null when the denominator is zero (a ratio that cannot be stated). */
export function ratio(ours: number, theirs: number): number | null {
  return theirs === 0 ? null : ours / theirs;
}

/**
 * The order in which the two sides run in iteration `i` of an interleaved loop: A then B on even iterations, B then A
 * on odd ones, so neither side always runs right after the other (caches, the reaper of PID 1, page cache).
 */
export function abOrder<T>(i: number, a: T, b: T): [T, T] {
  return i % 2 === 0 ? [a, b] : [b, a];
}
