/**
 * Training a Bernoulli RBM by persistent contrastive divergence, step for step as
 * scikit-learn's `BernoulliRBM._fit` (the course's reference implementation).
 *
 * References
 * - T. Tieleman, "Training Restricted Boltzmann Machines using Approximations to the
 *   Likelihood Gradient" (ICML 2008) — persistent contrastive divergence (PCD / SML).
 * - G. Hinton, "A Practical Guide to Training Restricted Boltzmann Machines" (2010), §3.
 * - scikit-learn `sklearn/neural_network/_rbm.py` (`_fit`).
 *
 * `fitRbm` works on an augmented copy [[W, b], [cᵀ, ·]] with activations carried
 * transposed — see `pcdStep` for why — and writes W, b, c back after every iteration.
 *
 * Speed (wasm, one core, 784-100, batch 10, 6000 steps = one iteration over 60 000 images):
 * ≈ 0.8 ms CPU per step ≈ 5 s per iteration, about 2× scikit-learn float32 on this machine
 * (2.4 s). Three matMuls per step each pay ≈ 0.1 ms of XNNPACK operator set-up for their
 * fresh right operand; that, not arithmetic, is the floor here (bench/rbm.ts).
 */
import * as tf from '@tensorflow/tfjs';
import { assert } from '../assert.ts';
import { Rng } from '../random.ts';
import { asMatrix, assertInteger, bernoulli, type Rbm } from './rbm.ts';
import { pseudoLikelihood } from './rbm-likelihood.ts';

function mean(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return s / values.length;
}

export interface IterationInfo {
  /** Mean pseudo-likelihood over all training data after this iteration (NaN if not scored). */
  pseudoLikelihood: number;
  /** Wall-clock seconds of this iteration's training steps. */
  seconds: number;
  /** Wall-clock seconds of the pseudo-likelihood pass. */
  scoreSeconds: number;
}

export interface FitRbmOptions {
  /** Default 0.01 (the course; scikit-learn's default is 0.1). Scaled by 1/batch size per step. */
  learningRate?: number;
  /** Default 10 (scikit-learn). */
  batchSize?: number;
  nIter: number;
  rng: Rng;
  /** Score the pseudo-likelihood after each iteration (scikit-learn's verbose output). Default true. */
  score?: boolean;
  onIteration?: (iteration: number, info: IterationInfo) => void;
  /**
   * Called after each step, cheaply (no data is downloaded for it). The model's own variables
   * are brought up to date at the end of each iteration (before `onIteration`), not per step.
   */
  onBatch?: (batch: number, iteration: number) => void;
  /** Stop after this many steps in each iteration (benchmarks). Default: all batches. */
  maxStepsPerIteration?: number;
}

export interface FitRbmResult {
  pseudoLikelihood: number[];
  seconds: number[];
}

/** scikit-learn's gen_even_slices(n_batches·batchSize, n_batches, n_samples=n): in order, last one short. */
export function batchSlices(n: number, batchSize: number): Array<[start: number, size: number]> {
  const slices: Array<[number, number]> = [];
  for (let start = 0; start < n; start += batchSize) slices.push([start, Math.min(batchSize, n - start)]);
  return slices;
}

/**
 * Self-weight of the bias unit in the augmented parameter matrix (see `pcdStep`): large
 * enough that σ(anything + BIAS_UNIT_SELF_WEIGHT) is exactly 1 in float32, so the bias unit
 * stays on through every pass and every sample.
 */
const BIAS_UNIT_SELF_WEIGHT = 1e6;

/**
 * One PCD step (BernoulliRBM._fit) on a batch of b samples, with B persistent chains:
 *   h_pos = σ(v_pos W + c)                                   (means, not samples)
 *   v_neg ~ P(v | h_persistent),  h_neg = σ(v_neg W + c)
 *   W += lr/b · (v_posᵀ h_pos − v_negᵀ h_neg),  c += lr/b · Σ(h_pos − h_neg),  b += lr/b · Σ(v_pos − v_neg)
 *   h_persistent ← sample(h_neg)
 *
 * Layout, for speed on wasm at batch 10 (where per-op cost, not arithmetic, dominates):
 * - Augmented parameters A [nV + 1, nC + 1] = [[W, b], [cᵀ, BIAS_UNIT_SELF_WEIGHT]]: an extra
 *   "bias unit" on each side, always 1, carries the biases through the matMuls and its
 *   gradient row/column are the bias gradients, so one matMul + sigmoid per pass and one
 *   matMul + add per update serve W, b and c together. The bias units stay exactly 1:
 *   their pre-activation includes the huge self-weight; their self-weight's gradient is
 *   Σ coef = lr − lr·B/b (0 for full batches).
 * - XNNPACK packs a matMul's right operand into an operator cached per tensor; a right
 *   operand that changes every step (the updated weights) is re-packed on every call
 *   (≈ 0.55 ms for 784 × 100, more than the multiply at batch 10). So A and Aᵀ are only LEFT
 *   operands and activations are carried transposed ([units + 1, batch]):
 *   p_negᵀ = σ(A h_persᵀ), [h_pos | h_neg]ᵀ = σ(Aᵀ [v_pos | v_neg]ᵀ). Aᵀ is one explicit
 *   transpose per step. Each matMul with a fresh right operand costs ≈ 0.1 ms of operator
 *   set-up on wasm, hence h_pos and h_neg share one matMul: three matMuls per step in all.
 * `vPosT` is the batch transposed with a final row of ones, [nV + 1, b]; `persistentT` the
 * persistent hidden chains transposed with a final row of ones, [nC + 1, B]; `coef` the
 * [b + B, 1] column (+lr/b for the b positive rows, −lr/b for the B negative ones).
 */
function pcdStep(augmented: tf.Variable<tf.Rank.R2>, persistentT: tf.Variable<tf.Rank.R2>, vPosT: tf.Tensor2D, coef: tf.Tensor2D, seedV: number, seedH: number): void {
  tf.tidy(() => {
    const positives = vPosT.shape[1];
    const chains = persistentT.shape[1];
    const aT = tf.transpose(augmented); // [nC + 1, nV + 1]
    const pNegT = tf.fused.matMul({ a: augmented, b: persistentT, activation: 'sigmoid' }) as tf.Tensor2D; // [nV + 1, B]
    const vAllT = tf.concat([vPosT, bernoulli(pNegT, seedV)], 1); // [nV + 1, b + B]: v_pos | v_neg
    // h_pos and h_neg in one matMul (h_pos does not depend on v_neg, so this is the same step).
    const hAllT = tf.fused.matMul({ a: aT, b: vAllT, activation: 'sigmoid' }) as tf.Tensor2D; // [nC + 1, b + B]
    const hScaled = tf.mul(tf.transpose(hAllT), coef); // [b + B, nC + 1]
    augmented.assign(tf.add(augmented, tf.matMul(vAllT, hScaled))); // [nV + 1, nC + 1]
    const hNegT = tf.slice(hAllT, [0, positives], [hAllT.shape[0], chains]) as tf.Tensor2D; // [nC + 1, B]
    persistentT.assign(bernoulli(hNegT, seedH));
  });
}

/** [[W, b], [cᵀ, BIAS_UNIT_SELF_WEIGHT]], [nV + 1, nC + 1]. */
function augmentedParameters(rbm: Rbm): tf.Variable<tf.Rank.R2> {
  const a = tf.tidy(() =>
    tf.concat(
      [
        tf.concat([rbm.weights, tf.reshape(rbm.visibleBias, [rbm.nVisible, 1])], 1),
        tf.concat([tf.reshape(rbm.hiddenBias, [1, rbm.nComponents]), tf.fill([1, 1], BIAS_UNIT_SELF_WEIGHT)], 1),
      ],
      0,
    ),
  );
  const v = tf.variable(a) as tf.Variable<tf.Rank.R2>;
  a.dispose();
  return v;
}

/**
 * Writes the augmented parameters and persistent chains back into the model's variables
 * (once per iteration). Through JS arrays on purpose: on wasm, a reshaped slice keeps its
 * buffer's rank-2 shape, which `_FusedMatMul` then rejects as a bias.
 */
function writeBack(rbm: Rbm, augmented: tf.Tensor2D, persistentT: tf.Tensor2D): void {
  const { nVisible: nV, nComponents: nC } = rbm;
  const a = augmented.dataSync(); // [nV + 1, nC + 1] row-major
  const p = persistentT.dataSync(); // [nC + 1, B]
  const chains = persistentT.shape[1];
  const w = new Float32Array(nV * nC);
  const b = new Float32Array(nV);
  const c = new Float32Array(nC);
  for (let i = 0; i < nV; i++) {
    for (let j = 0; j < nC; j++) w[i * nC + j] = a[i * (nC + 1) + j]!;
    b[i] = a[i * (nC + 1) + nC]!;
  }
  for (let j = 0; j < nC; j++) c[j] = a[nV * (nC + 1) + j]!;
  const h = new Float32Array(chains * nC);
  for (let r = 0; r < chains; r++) for (let j = 0; j < nC; j++) h[r * nC + j] = p[j * chains + r]!;
  tf.tidy(() => {
    rbm.weights.assign(tf.tensor2d(w, [nV, nC]));
    rbm.visibleBias.assign(tf.tensor1d(b));
    rbm.hiddenBias.assign(tf.tensor1d(c));
    rbm.persistentHidden.assign(tf.tensor2d(h, [chains, nC]));
  });
}

/** Coefficient column [b + B, 1]: +lr/b for the b positive rows and −lr/b for the B negative ones — both phases divided by the BATCH size b (scikit-learn), not each by its own count. */
function phaseCoefficientsOverBatchSize(positive: number, negative: number, learningRate: number): tf.Tensor2D {
  const c = new Float32Array(positive + negative);
  const lr = learningRate / positive; // scikit-learn: learning_rate / v_pos.shape[0]
  c.fill(lr, 0, positive);
  c.fill(-lr, positive);
  return tf.tensor2d(c, [c.length, 1]);
}

/**
 * Persistent contrastive divergence as `BernoulliRBM.fit`: `nIter` passes over the batches in
 * order (no shuffling), one Gibbs step per update from the persistent hidden chains.
 * Continues from the model's current state (a fresh `createRbm` + `fitRbm` = scikit-learn's
 * `fit`). If `batchSize` differs from the number of persistent chains, the chains are reset to
 * zeros of the new batch size.
 *
 * Pseudo-likelihood: like scikit-learn with an integer random_state — whose `score_samples`
 * re-seeds its generator on every call — the same flip indices are used after every iteration
 * (drawn from one seed taken from `rng` at the start).
 */
export function fitRbm(rbm: Rbm, data: Float32Array, options: FitRbmOptions): FitRbmResult {
  const learningRate = options.learningRate ?? 0.01;
  const batchSize = options.batchSize ?? 10;
  const { nIter, rng } = options;
  const score = options.score ?? true;
  const nV = rbm.nVisible;
  assertInteger('fitRbm nIter', nIter, 0);
  assertInteger('fitRbm batchSize', batchSize, 1);
  assert(Number.isFinite(learningRate) && learningRate > 0, `fitRbm: learningRate must be > 0, got ${learningRate}`);
  const n = asMatrix(data, nV, 'fitRbm');
  assert(n > 0, 'fitRbm: no training samples');

  if (rbm.persistentHidden.shape[0] !== batchSize) {
    const fresh = tf.zeros([batchSize, rbm.nComponents]) as tf.Tensor2D;
    rbm.persistentHidden.dispose();
    rbm.persistentHidden = tf.variable(fresh);
    fresh.dispose();
  }
  const scoreSeed = rng.seed();
  const slices = batchSlices(n, batchSize);
  const coefficients = new Map<number, tf.Tensor2D>();
  const batchT = new Float32Array((nV + 1) * batchSize);
  const augmented = augmentedParameters(rbm); // [nV + 1, nC + 1]
  const persistentInit = tf.tidy(() => tf.concat([tf.transpose(rbm.persistentHidden), tf.ones([1, batchSize])], 0));
  const persistentT = tf.variable(persistentInit) as tf.Variable<tf.Rank.R2>; // [nC + 1, batchSize]
  persistentInit.dispose();
  const result: FitRbmResult = { pseudoLikelihood: [], seconds: [] };
  try {
    for (let iteration = 1; iteration <= nIter; iteration++) {
      const t0 = performance.now();
      const steps = Math.min(slices.length, options.maxStepsPerIteration ?? Infinity);
      for (let k = 0; k < steps; k++) {
        const [start, size] = slices[k]!;
        let coef = coefficients.get(size);
        if (!coef) {
          coef = phaseCoefficientsOverBatchSize(size, batchSize, learningRate);
          coefficients.set(size, coef);
        }
        // Upload the batch, transposed in JS: wasm's Slice of a large tensor costs time
        // proportional to the whole tensor (≈ 0.3 s for 60 000 × 784).
        for (let r = 0; r < size; r++) {
          const row = (start + r) * nV;
          for (let i = 0; i < nV; i++) batchT[i * size + r] = data[row + i]!;
          batchT[nV * size + r] = 1; // bias unit
        }
        const vPosT = tf.tensor2d(batchT.subarray(0, (nV + 1) * size), [nV + 1, size]); // [nV + 1, size]
        pcdStep(augmented, persistentT, vPosT, coef, rng.seed(), rng.seed());
        vPosT.dispose();
        options.onBatch?.(k, iteration);
      }
      writeBack(rbm, augmented, persistentT);
      // Wait for the backend before timing (a no-op on synchronous backends).
      rbm.hiddenBias.dataSync();
      const t1 = performance.now();
      const pl = score ? mean(pseudoLikelihood(rbm, data, new Rng(scoreSeed))) : NaN;
      const t2 = performance.now();
      result.pseudoLikelihood.push(pl);
      result.seconds.push((t1 - t0) / 1000);
      options.onIteration?.(iteration, { pseudoLikelihood: pl, seconds: (t1 - t0) / 1000, scoreSeconds: (t2 - t1) / 1000 });
    }
  } finally {
    writeBack(rbm, augmented, persistentT);
    augmented.dispose();
    persistentT.dispose();
    for (const coef of coefficients.values()) coef.dispose();
  }
  return result;
}
