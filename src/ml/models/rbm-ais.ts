/**
 * Annealed importance sampling of an RBM's partition function, for RBMs too large for the
 * exact sum of `rbm-likelihood.ts`.
 *
 * References
 * - R. Salakhutdinov, I. Murray, "On the Quantitative Analysis of Deep Belief Networks"
 *   (ICML 2008), §3–4: AIS from a base-rate model (zero weights, visible biases from the
 *   data's marginals) to the RBM through p*_k(v) ∝ p*_A(v)^(1−β_k) · p*_B(v)^β_k.
 * - R. Neal, "Annealed Importance Sampling" (Statistics and Computing, 2001).
 *
 * Intermediate distributions (visible units marginal, hidden summed out):
 *   log p*_β(v) = (1−β)·b_A·v + β·b·v + Σ_j softplus(β·(vW + c)_j)
 * At β = 0 this is the base-rate model with nComponents free hidden units:
 *   log Z_A = Σ_i softplus(b_A,i) + nComponents·log 2.
 * Transition T_k (leaves p_k invariant): h ~ σ(β_k (vW + c)), v ~ σ((1−β_k) b_A + β_k (hWᵀ + b)).
 * Weight of a run: log w = Σ_k [log p*_k(v_k) − log p*_{k−1}(v_k)], with v_1 ~ p_A.
 */
import * as tf from '@tensorflow/tfjs';
import { assert } from '../assert.ts';
import type { Rng } from '../random.ts';
import { bernoulli, type Rbm } from './rbm.ts';
import { meanNegativeFreeEnergy } from './rbm-likelihood.ts';

/**
 * β from 0 to 1 in segments `[end, step]`, e.g. the default
 * [[0.5, 1e-3], [0.9, 1e-4], [1, 1e-4]] (5 500 intermediate distributions; Salakhutdinov &
 * Murray used 1e-5 for the last segment, 14 500 in all).
 */
export function betaSchedule(segments: Array<[end: number, step: number]> = [[0.5, 1e-3], [0.9, 1e-4], [1, 1e-4]]): Float64Array {
  const betas = [0];
  let current = 0;
  for (const [end, step] of segments) {
    assert(end > current && end <= 1 && step > 0, `betaSchedule: segment [${end}, ${step}] must go up from ${current} to ≤ 1 by a positive step`);
    const count = Math.round((end - current) / step);
    for (let k = 1; k <= count; k++) betas.push(current + ((end - current) * k) / count);
    current = end;
  }
  assert(current === 1, `betaSchedule: the last segment must end at 1, got ${current}`);
  return Float64Array.from(betas);
}

/**
 * The base-rate model's visible biases: log-odds of the data's per-pixel means, smoothed
 * towards ½ so that no pixel is exactly 0 or 1: p = (Σ v + smoothing) / (n + 2·smoothing).
 */
export function baseRateVisibleBias(data: Float32Array, nVisible: number, smoothing = 1): Float32Array {
  assert(data.length % nVisible === 0, `baseRateVisibleBias: data length ${data.length} is not a multiple of ${nVisible}`);
  const n = data.length / nVisible;
  const sums = new Float64Array(nVisible);
  for (let s = 0; s < n; s++) for (let i = 0; i < nVisible; i++) sums[i]! += data[s * nVisible + i]!;
  return Float32Array.from(sums, (sum) => {
    const p = (sum + smoothing) / (n + 2 * smoothing);
    return Math.log(p / (1 - p));
  });
}

export interface AisOptions {
  /** Number of independent annealing runs (M). */
  runs: number;
  /** Increasing inverse temperatures from 0 to 1 (see betaSchedule). */
  betas: ArrayLike<number>;
  rng: Rng;
  /** b_A; default zeros (the uniform distribution). Use baseRateVisibleBias(data). */
  baseVisibleBias?: Float32Array;
  /** Every this many β steps the device-side weight increments are added into float64. Default 100. */
  flushEvery?: number;
}

export interface AisResult {
  /** log Ẑ = log Z_A + log mean_m w_m. */
  logZ: number;
  /** log(Ẑ − 3σ̂) and log(Ẑ + 3σ̂), σ̂ the standard error of the mean weight (−Infinity if Ẑ − 3σ̂ ≤ 0). */
  logZLow: number;
  logZHigh: number;
  /** Standard error of log Ẑ by the delta method, σ̂ / Ẑ (in nats). */
  stdErr: number;
  logZBase: number;
  /** Per-run log importance weights. */
  logWeights: Float64Array;
}

function softplus64(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

export function aisLogPartition(rbm: Rbm, options: AisOptions): AisResult {
  const { runs, betas, rng } = options;
  const nV = rbm.nVisible;
  const flushEvery = options.flushEvery ?? 100;
  assert(Number.isInteger(runs) && runs >= 2, `aisLogPartition: runs must be an integer ≥ 2, got ${runs}`);
  assert(betas.length >= 2 && betas[0] === 0 && betas[betas.length - 1] === 1, 'aisLogPartition: betas must start at 0 and end at 1');
  for (let k = 1; k < betas.length; k++) assert(betas[k]! > betas[k - 1]!, `aisLogPartition: betas must increase (index ${k})`);
  const baseBias = options.baseVisibleBias ?? new Float32Array(nV);
  assert(baseBias.length === nV, `aisLogPartition: baseVisibleBias length ${baseBias.length} ≠ nVisible ${nV}`);

  let logZBase = rbm.nComponents * Math.LN2;
  for (let i = 0; i < nV; i++) logZBase += softplus64(baseBias[i]!);

  const logWeights = new Float64Array(runs);
  const bA = tf.tensor1d(baseBias); // [nV]
  const wT = tf.transpose(rbm.weights); // [nC, nV]
  const biasDiff = tf.tidy(() => tf.reshape(tf.sub(rbm.visibleBias, bA), [nV, 1])); // [nV, 1]
  let v = tf.tidy(() => bernoulli(tf.tile(tf.reshape(tf.sigmoid(bA), [1, nV]), [runs, 1]), rng.seed())); // [M, nV]
  let block = tf.zeros([runs]) as tf.Tensor1D;
  const flush = (): void => {
    const inc = block.dataSync();
    for (let m = 0; m < runs; m++) logWeights[m]! += inc[m]!;
    block.dispose();
    block = tf.zeros([runs]) as tf.Tensor1D;
  };
  try {
    for (let k = 1; k < betas.length; k++) {
      const beta = betas[k]!;
      const previous = betas[k - 1]!;
      const last = k === betas.length - 1;
      const [nextV, nextBlock] = tf.tidy(() => {
        const a = tf.fused.matMul({ a: v, b: rbm.weights, bias: rbm.hiddenBias }); // [M, nC]
        // log p*_k(v) − log p*_{k−1}(v)
        const linear = tf.mul(tf.reshape(tf.matMul(v, biasDiff), [runs]), beta - previous); // [M]
        const hidden = tf.sum(tf.sub(tf.softplus(tf.mul(a, beta)), tf.softplus(tf.mul(a, previous))), 1); // [M]
        const increment = tf.add(block, tf.add(linear, hidden));
        if (last) return [v.clone(), increment];
        const h = bernoulli(tf.sigmoid(tf.mul(a, beta)) as tf.Tensor2D, rng.seed()); // [M, nC]
        const pre = tf.add(tf.mul(tf.fused.matMul({ a: h, b: wT, bias: rbm.visibleBias }), beta), tf.mul(bA, 1 - beta)); // [M, nV]
        return [bernoulli(tf.sigmoid(pre) as tf.Tensor2D, rng.seed()), increment];
      });
      v.dispose();
      block.dispose();
      v = nextV as tf.Tensor2D;
      block = nextBlock as tf.Tensor1D;
      if (k % flushEvery === 0 || last) flush();
    }
  } finally {
    v.dispose();
    block.dispose();
    bA.dispose();
    wT.dispose();
    biasDiff.dispose();
  }

  let max = -Infinity;
  for (const lw of logWeights) max = Math.max(max, lw);
  let mean = 0;
  for (const lw of logWeights) mean += Math.exp(lw - max);
  mean /= runs;
  let variance = 0;
  for (const lw of logWeights) variance += (Math.exp(lw - max) - mean) ** 2;
  variance /= runs - 1;
  const se = Math.sqrt(variance / runs);
  const logZ = logZBase + max + Math.log(mean);
  return {
    logZ,
    logZLow: mean - 3 * se > 0 ? logZBase + max + Math.log(mean - 3 * se) : -Infinity,
    logZHigh: logZBase + max + Math.log(mean + 3 * se),
    stdErr: se / mean,
    logZBase,
    logWeights,
  };
}

/** Mean log p(v) over data [n, nVisible] with an estimated (or exact) log Z: −mean F(v) − log Z. */
export function estimateLogLikelihood(rbm: Rbm, data: Float32Array, logZ: number | AisResult): number {
  return meanNegativeFreeEnergy(rbm, data) - (typeof logZ === 'number' ? logZ : logZ.logZ);
}
