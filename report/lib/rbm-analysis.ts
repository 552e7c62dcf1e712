/**
 * Measurements section 4.1 makes on trained RBMs: statistics over seeds, bootstrap
 * intervals over test images, what the hidden units of a small RBM do, and clamped Gibbs
 * chains read at several step counts (one chain, many readings, so that a number at 10
 * steps is the same chain's state whichever figure or table shows it).
 */
import * as tf from '@tensorflow/tfjs';
import { bernoulli, hiddenProbabilities, visibleProbabilities, type Rbm, type RbmData } from '../../src/ml/models/rbm.ts';
import type { Rng } from '../../src/ml/random.ts';

export interface Stat {
  mean: number;
  sd: number;
  n: number;
}

/** Mean and sample standard deviation. */
export function stat(values: readonly number[]): Stat {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, sd, n };
}

/** "m ± s" with `digits` decimals. */
export function pm(s: Stat, digits = 1): string {
  return `${s.mean.toFixed(digits)} ± ${s.sd.toFixed(digits)}`;
}

/**
 * Paired bootstrap over items: the mean of `a − b` (per-item values, e.g. 0/1 correctness)
 * and its 95 % percentile interval from `resamples` resamplings of the items.
 */
export function pairedBootstrap(a: ArrayLike<number>, b: ArrayLike<number>, rng: Rng, resamples = 1000): { diff: number; lo: number; hi: number } {
  const n = a.length;
  const d = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += (d[i] = a[i]! - b[i]!);
  const means = new Float64Array(resamples);
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += d[rng.int(n)]!;
    means[r] = s / n;
  }
  means.sort();
  return { diff: sum / n, lo: means[Math.floor(0.025 * resamples)]!, hi: means[Math.ceil(0.975 * resamples) - 1]! };
}

/** Binomial standard error of a proportion p over n items. */
export function binomialSe(p: number, n: number): number {
  return Math.sqrt((p * (1 - p)) / n);
}

export interface UnitStats {
  nComponents: number;
  /** Units whose P(h = 1 | v) varies across test images (sd > 0.05): the units that encode something. */
  activeUnits: number;
  /** Units on (mean > 0.95) or off (mean < 0.05) for nearly every image (sd ≤ 0.05). */
  stuckOn: number;
  stuckOff: number;
  /** Pairs of units whose weight vectors have cosine similarity > 0.9 (duplicates). */
  duplicatePairs: number;
  /** Distinct hidden codes (P(h | v) thresholded at ½) over the test images, and how many codes cover 90 % of them. */
  distinctCodes: number;
  codesFor90: number;
}

/** What the hidden units of a (small) RBM do on `images` ([n, 784] in [0, 1]). */
export function unitStats(model: RbmData, images: Float32Array): UnitStats {
  const { nComponents: nC, nVisible: nV, weights, hiddenBias } = model;
  const n = images.length / nV;
  const mean = new Float64Array(nC);
  const sq = new Float64Array(nC);
  const codes = new Map<string, number>();
  const pre = new Float64Array(nC);
  for (let s = 0; s < n; s++) {
    pre.set(hiddenBias);
    for (let i = 0; i < nV; i++) {
      const v = images[s * nV + i]!;
      if (v === 0) continue;
      for (let j = 0; j < nC; j++) pre[j]! += v * weights[i * nC + j]!;
    }
    let code = '';
    for (let j = 0; j < nC; j++) {
      const p = 1 / (1 + Math.exp(-pre[j]!));
      mean[j]! += p / n;
      sq[j]! += (p * p) / n;
      code += p > 0.5 ? '1' : '0';
    }
    codes.set(code, (codes.get(code) ?? 0) + 1);
  }
  let activeUnits = 0;
  let stuckOn = 0;
  let stuckOff = 0;
  for (let j = 0; j < nC; j++) {
    const sd = Math.sqrt(Math.max(0, sq[j]! - mean[j]! ** 2));
    if (sd > 0.05) activeUnits++;
    else if (mean[j]! > 0.95) stuckOn++;
    else if (mean[j]! < 0.05) stuckOff++;
  }
  let duplicatePairs = 0;
  const norm = (j: number) => Math.sqrt(Array.from({ length: nV }, (_, i) => weights[i * nC + j]! ** 2).reduce((a, b) => a + b, 0));
  const norms = Array.from({ length: nC }, (_, j) => norm(j));
  for (let a = 0; a < nC; a++) {
    for (let b = a + 1; b < nC; b++) {
      let dot = 0;
      for (let i = 0; i < nV; i++) dot += weights[i * nC + a]! * weights[i * nC + b]!;
      if (dot / (norms[a]! * norms[b]! || 1) > 0.9) duplicatePairs++;
    }
  }
  const counts = [...codes.values()].sort((x, y) => y - x);
  let covered = 0;
  let codesFor90 = 0;
  for (const c of counts) {
    if (covered >= 0.9 * n) break;
    covered += c;
    codesFor90++;
  }
  return { nComponents: nC, activeUnits, stuckOn, stuckOff, duplicatePairs, distinctCodes: codes.size, codesFor90 };
}

/**
 * Gibbs chains v → h → v (both sampled, as the script's `gibbs`) from `start` ([n, 784]),
 * with the pixels where `mask` is 1 clamped to `values` after every step when `clamp` is
 * true. At each step count in `readAt` the chain is read as P(v | h) of that step (known
 * pixels clamped) without disturbing it. Returns one reading per entry of `readAt`.
 */
export function gibbsReadings(rbm: Rbm, start: Float32Array, readAt: number[], rng: Rng, clampTo?: { mask: Float32Array; values: Float32Array }): Float32Array[] {
  const nV = rbm.nVisible;
  const n = start.length / nV;
  const last = Math.max(...readAt);
  const readings: Float32Array[] = [];
  const wT = tf.transpose(rbm.weights);
  const mask = clampTo ? tf.tensor2d(clampTo.mask, [1, nV]) : null;
  const known = clampTo ? tf.tensor2d(clampTo.values, [n, nV]) : null;
  const free = mask ? tf.sub(1, mask) : null;
  const clamp = (x: tf.Tensor2D): tf.Tensor2D => (mask && known && free ? (tf.add(tf.mul(x, free), tf.mul(known, mask)) as tf.Tensor2D) : x);
  let state = tf.tidy(() => clamp(tf.tensor2d(start, [n, nV])));
  try {
    for (let s = 1; s <= last; s++) {
      const [next, p] = tf.tidy(() => {
        const h = bernoulli(hiddenProbabilities(rbm, state), rng.seed());
        const prob = visibleProbabilities(rbm, h, wT);
        // tf.tidy keeps the tensors of the returned array; the null (no reading at this step) passes through.
        return [clamp(bernoulli(prob, rng.seed())), readAt.includes(s) ? clamp(prob) : null] as unknown as tf.TensorContainer;
      }) as unknown as [tf.Tensor2D, tf.Tensor2D | null];
      state.dispose();
      state = next;
      if (p) {
        readings.push(p.dataSync() as Float32Array);
        p.dispose();
      }
    }
  } finally {
    state.dispose();
    tf.dispose([wT, ...(mask ? [mask] : []), ...(known ? [known] : []), ...(free ? [free] : [])]);
  }
  return readings;
}
