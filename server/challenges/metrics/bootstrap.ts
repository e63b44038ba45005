/**
 * A percentile bootstrap interval for the mean of per-slide scores: the
 * slides are resampled with replacement `iterations` times, and the interval
 * is the (1 − level)/2 and (1 + level)/2 quantiles of the resampled means.
 * The generator is seeded, so the same scores and options always give the
 * same interval.
 */
import { quantileOfSorted } from './summary.js';

export interface BootstrapOptions {
  /** Resamples (default 1000). */
  iterations?: number;
  /** Seed of the generator (default 1). */
  seed?: number;
  /** Coverage, between 0 and 1 (default 0.95). */
  level?: number;
}

export function bootstrapInterval(perSlide: number[], options: BootstrapOptions = {}): { low: number; high: number } {
  const iterations = options.iterations ?? 1000;
  const level = options.level ?? 0.95;
  if (perSlide.length === 0) throw new RangeError('bootstrapInterval needs at least one slide score');
  if (!Number.isInteger(iterations) || iterations < 1) throw new RangeError(`iterations must be a whole number of at least 1, got ${iterations}`);
  if (!(level > 0 && level < 1)) throw new RangeError(`level must lie between 0 and 1, got ${level}`);
  const random = mulberry32(options.seed ?? 1);
  const n = perSlide.length;
  const means = new Float64Array(iterations);
  for (let k = 0; k < iterations; k++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += perSlide[Math.floor(random() * n)]!;
    means[k] = sum / n;
  }
  means.sort();
  return { low: quantileOfSorted(means, (1 - level) / 2), high: quantileOfSorted(means, (1 + level) / 2) };
}

/** Mulberry32: a small, fast 32-bit generator, uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
