/**
 * How well an RBM models its data: scikit-learn's pseudo-likelihood (what the course's script
 * prints while it trains) and, for RBMs with at most 20 hidden units, the exact partition
 * function and log-likelihood. Larger RBMs: annealed importance sampling, `rbm-ais.ts`.
 *
 * References
 * - J. Besag, "Statistical Analysis of Non-Lattice Data" (The Statistician, 1975) — the
 *   pseudo-likelihood; scikit-learn's `BernoulliRBM.score_samples` estimates it with one
 *   randomly flipped unit per sample.
 * - G. Hinton, "A Practical Guide to Training Restricted Boltzmann Machines" (2010), §16
 *   (free energy; log p(v) = −F(v) − log Z).
 */
import * as tf from '@tensorflow/tfjs';
import { assert } from '../assert.ts';
import type { Rng } from '../random.ts';
import { asMatrix, freeEnergy, type Rbm } from './rbm.ts';

// ---------------------------------------------------------------------------------------
// Pseudo-likelihood (scikit-learn's score_samples)

/**
 * scikit-learn's `score_samples`: for each sample, flip ONE visible unit chosen uniformly at
 * random (`v_[i] = 1 − v[i]`, applied to the data as given — non-binary data is not
 * binarised, so a grey pixel 0.3 becomes 0.7) and return
 * `nVisible · log σ(F(v_flipped) − F(v))`, per sample.
 *
 * Computed with one matMul: since v_flipped = v + δ·e_i with δ = 1 − 2v_i,
 * (v_flipped W) = vW + δ·W[i, :] and F(v_flipped) − F(v) = −δ·b_i − Σ_j [softplus(a'_j) − softplus(a_j)].
 */
export function pseudoLikelihood(
  rbm: Rbm,
  data: Float32Array,
  rng: Rng,
  options: { chunkSize?: number } = {},
): Float32Array {
  const nV = rbm.nVisible;
  const n = asMatrix(data, nV, 'pseudoLikelihood');
  const chunk = options.chunkSize ?? 10000;
  // Draw every flip index first, in sample order (as scikit-learn's one randint call).
  const flip = new Int32Array(n);
  for (let s = 0; s < n; s++) flip[s] = rng.int(nV);
  const delta = new Float32Array(n);
  for (let s = 0; s < n; s++) delta[s] = 1 - 2 * data[s * nV + flip[s]!]!;
  const out = new Float32Array(n);
  for (let start = 0; start < n; start += chunk) {
    const size = Math.min(chunk, n - start);
    const values = tf.tidy(() => {
      const v = tf.tensor2d(data.subarray(start * nV, (start + size) * nV), [size, nV]); // [size, nV]
      const idx = tf.tensor1d(flip.subarray(start, start + size), 'int32');
      const d = tf.tensor2d(delta.subarray(start, start + size), [size, 1]); // [size, 1]
      const a = tf.fused.matMul({ a: v, b: rbm.weights, bias: rbm.hiddenBias }); // [size, nC]
      const aFlipped = tf.add(a, tf.mul(d, tf.gather(rbm.weights, idx))); // [size, nC]
      const dSoftplus = tf.sum(tf.sub(tf.softplus(aFlipped), tf.softplus(a)), 1); // [size]
      const dBias = tf.mul(tf.reshape(d, [-1]), tf.gather(rbm.visibleBias, idx)); // [size]
      const fDiff = tf.neg(tf.add(dBias, dSoftplus)); // F(v_) − F(v)
      // log σ(x) = −softplus(−x)
      return tf.mul(tf.neg(tf.softplus(tf.neg(fDiff))), nV);
    });
    out.set(values.dataSync() as Float32Array, start);
    values.dispose();
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Exact log-likelihood for small RBMs

/** log Σ exp over a float64 running accumulator. */
export class LogSumExp {
  private max = -Infinity;
  private sum = 0;
  add(x: number): void {
    if (x === -Infinity) return;
    if (x > this.max) {
      this.sum = this.sum * Math.exp(this.max - x) + 1;
      this.max = x;
    } else {
      this.sum += Math.exp(x - this.max);
    }
  }
  value(): number {
    return this.max === -Infinity ? -Infinity : this.max + Math.log(this.sum);
  }
}

/**
 * Exact log Z by summing over all 2^nComponents hidden configurations, with the visible
 * units summed analytically: log Z = log Σ_h exp(c·h + Σ_i softplus(b_i + (hWᵀ)_i)).
 * Each configuration's term is computed in float32 on the backend (|error| ≈ 1e-7 relative
 * to its size) and the log-sum-exp is accumulated in float64, in chunks of 2^14 configurations.
 */
export function exactLogPartition(rbm: Rbm, options: { maxHidden?: number } = {}): number {
  const nC = rbm.nComponents;
  const maxHidden = options.maxHidden ?? 20;
  assert(nC <= maxHidden, `exactLogPartition: 2^${nC} hidden configurations is too many (limit 2^${maxHidden})`);
  const total = 2 ** nC;
  const chunk = Math.min(total, 2 ** 14);
  const acc = new LogSumExp();
  const wT = tf.transpose(rbm.weights); // [nC, nV]
  try {
    const configs = new Float32Array(chunk * nC);
    for (let start = 0; start < total; start += chunk) {
      for (let r = 0; r < chunk; r++) {
        const code = start + r;
        for (let j = 0; j < nC; j++) configs[r * nC + j] = (Math.floor(code / 2 ** j) % 2);
      }
      const terms = tf.tidy(() => {
        const h = tf.tensor2d(configs, [chunk, nC]); // [chunk, nC]
        const visible = tf.sum(tf.softplus(tf.fused.matMul({ a: h, b: wT, bias: rbm.visibleBias })), 1); // [chunk]
        const hidden = tf.reshape(tf.matMul(h, tf.reshape(rbm.hiddenBias, [nC, 1])), [-1]); // [chunk]
        return tf.add(visible, hidden);
      });
      const values = terms.dataSync();
      terms.dispose();
      for (let r = 0; r < chunk; r++) acc.add(values[r]!);
    }
  } finally {
    wT.dispose();
  }
  return acc.value();
}

/** Mean −F(v) over the rows of data [n, nVisible] (float64 accumulation). */
export function meanNegativeFreeEnergy(rbm: Rbm, data: Float32Array, chunkSize = 10000): number {
  const nV = rbm.nVisible;
  const n = asMatrix(data, nV, 'meanNegativeFreeEnergy');
  let s = 0;
  for (let start = 0; start < n; start += chunkSize) {
    const size = Math.min(chunkSize, n - start);
    const f = tf.tidy(() => freeEnergy(rbm, tf.tensor2d(data.subarray(start * nV, (start + size) * nV), [size, nV])));
    const values = f.dataSync();
    f.dispose();
    for (let i = 0; i < size; i++) s -= values[i]!;
  }
  return s / n;
}

/** Mean log p(v) = −mean F(v) − log Z, with log Z exact (≤ 20 hidden units). */
export function exactLogLikelihood(rbm: Rbm, binaryData: Float32Array, logPartition?: number): number {
  return meanNegativeFreeEnergy(rbm, binaryData) - (logPartition ?? exactLogPartition(rbm));
}
