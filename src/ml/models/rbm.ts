/**
 * Bernoulli restricted Boltzmann machine with scikit-learn's `BernoulliRBM` semantics: the
 * model, its conditionals and free energy, and Gibbs sampling. Training (persistent
 * contrastive divergence) is in `rbm-train.ts`; the likelihood estimators (pseudo-likelihood,
 * exact log Z of small RBMs) in `rbm-likelihood.ts`, and annealed importance sampling in
 * `rbm-ais.ts`.
 *
 * References
 * - G. Hinton, "A Practical Guide to Training Restricted Boltzmann Machines" (2010), §3 (CD),
 *   §16 (free energy).
 * - scikit-learn `sklearn/neural_network/_rbm.py` (`_fit`, `score_samples`, `gibbs`), the
 *   course's reference implementation; the behaviour below follows it step by step.
 *
 * Energy  E(v, h) = −b·v − c·h − vᵀWh,   free energy  F(v) = −b·v − Σ_j softplus(c_j + (vW)_j).
 *
 * Orientation: `weights` is W with shape [nVisible, nComponents] (scikit-learn's
 * `components_` transposed), so the hidden pre-activation is a plain `v @ W` and no matMul
 * needs transposeA/transposeB (wasm's transposed matMuls are ~30× slower than an explicit
 * transpose); where Wᵀ is needed it is transposed once per call or per training step.
 *
 * Shapes: v [batch, nVisible], h [batch, nComponents], visibleBias [nVisible],
 * hiddenBias [nComponents], persistentHidden [batchSize, nComponents].
 */
import * as tf from '@tensorflow/tfjs';
import { assert } from '../assert.ts';
import type { Rng } from '../random.ts';

export interface Rbm {
  readonly nVisible: number;
  readonly nComponents: number;
  /** W, [nVisible, nComponents]. */
  readonly weights: tf.Variable<tf.Rank.R2>;
  /** b, [nVisible]. */
  readonly visibleBias: tf.Variable<tf.Rank.R1>;
  /** c, [nComponents]. */
  readonly hiddenBias: tf.Variable<tf.Rank.R1>;
  /** The persistent chains' hidden states (scikit-learn's `h_samples_`), [batchSize, nComponents]. */
  persistentHidden: tf.Variable<tf.Rank.R2>;
}

export interface CreateRbmOptions {
  nVisible: number;
  nComponents: number;
  rng: Rng;
  /** Number of persistent chains; scikit-learn uses the batch size. Default 10. */
  batchSize?: number;
  /** Standard deviation of the initial weights. Default 0.01 (scikit-learn). */
  initStd?: number;
}

/** Throws unless `value` is an integer ≥ `min` (for the size arguments of the RBM files). */
export function assertInteger(name: string, value: number, min: number): void {
  assert(Number.isInteger(value) && value >= min, `${name}: expected an integer ≥ ${min}, got ${value}`);
}

/** The number of rows of `data` read as a row-major [n, nVisible] matrix; throws if it is not one. */
export function asMatrix(data: Float32Array, nVisible: number, what: string): number {
  assert(data.length % nVisible === 0, `${what}: data length ${data.length} is not a multiple of nVisible ${nVisible}`);
  return data.length / nVisible;
}

/** W ~ N(0, 0.01²), biases 0, persistent hidden chains zeros — as `BernoulliRBM.fit`. */
export function createRbm(options: CreateRbmOptions): Rbm {
  const { nVisible, nComponents, rng } = options;
  const batchSize = options.batchSize ?? 10;
  const initStd = options.initStd ?? 0.01;
  assertInteger('createRbm nVisible', nVisible, 1);
  assertInteger('createRbm nComponents', nComponents, 1);
  assertInteger('createRbm batchSize', batchSize, 1);
  const w = new Float32Array(nVisible * nComponents);
  for (let i = 0; i < w.length; i++) w[i] = initStd * rng.normal();
  return rbmFromData({
    nVisible,
    nComponents,
    weights: w,
    visibleBias: new Float32Array(nVisible),
    hiddenBias: new Float32Array(nComponents),
    persistentHidden: new Float32Array(batchSize * nComponents),
  });
}

export function disposeRbm(rbm: Rbm): void {
  rbm.weights.dispose();
  rbm.visibleBias.dispose();
  rbm.hiddenBias.dispose();
  rbm.persistentHidden.dispose();
}

/** Plain arrays for storage. `weights` is row-major [nVisible, nComponents]. */
export interface RbmData {
  nVisible: number;
  nComponents: number;
  weights: Float32Array;
  visibleBias: Float32Array;
  hiddenBias: Float32Array;
  /** Row-major [batchSize, nComponents]; absent → one zero chain per default batch (10). */
  persistentHidden?: Float32Array;
}

export function rbmToData(rbm: Rbm): RbmData {
  return {
    nVisible: rbm.nVisible,
    nComponents: rbm.nComponents,
    weights: rbm.weights.dataSync() as Float32Array,
    visibleBias: rbm.visibleBias.dataSync() as Float32Array,
    hiddenBias: rbm.hiddenBias.dataSync() as Float32Array,
    persistentHidden: rbm.persistentHidden.dataSync() as Float32Array,
  };
}

export function rbmFromData(data: RbmData): Rbm {
  const { nVisible, nComponents } = data;
  assert(
    data.weights.length === nVisible * nComponents,
    `rbmFromData: weights must hold nVisible·nComponents = ${nVisible * nComponents} values, got ${data.weights.length}`,
  );
  assert(data.visibleBias.length === nVisible, `rbmFromData: visibleBias length ${data.visibleBias.length} ≠ nVisible ${nVisible}`);
  assert(data.hiddenBias.length === nComponents, `rbmFromData: hiddenBias length ${data.hiddenBias.length} ≠ nComponents ${nComponents}`);
  const persistent = data.persistentHidden ?? new Float32Array(10 * nComponents);
  assert(
    persistent.length % nComponents === 0 && persistent.length > 0,
    `rbmFromData: persistentHidden length ${persistent.length} is not a positive multiple of nComponents ${nComponents}`,
  );
  return {
    nVisible,
    nComponents,
    weights: variableFrom(tf.tensor2d(data.weights, [nVisible, nComponents])),
    visibleBias: variableFrom(tf.tensor1d(data.visibleBias)),
    hiddenBias: variableFrom(tf.tensor1d(data.hiddenBias)),
    persistentHidden: variableFrom(tf.tensor2d(persistent, [persistent.length / nComponents, nComponents])),
  };
}

/** A variable holding `initial`'s values; `initial` itself is disposed (tf.variable copies it). */
export function variableFrom<R extends tf.Rank>(initial: tf.Tensor<R>): tf.Variable<R> {
  const v = tf.variable(initial);
  initial.dispose();
  return v;
}

// ---------------------------------------------------------------------------------------
// Conditionals and free energy (tensor level; callers own tidy)

/** P(h = 1 | v) = σ(vW + c). v [n, nVisible] → [n, nComponents]. */
export function hiddenProbabilities(rbm: Rbm, v: tf.Tensor2D): tf.Tensor2D {
  assert(v.shape[1] === rbm.nVisible, `hiddenProbabilities: v has ${v.shape[1]} columns, expected nVisible ${rbm.nVisible}`);
  return tf.fused.matMul({ a: v, b: rbm.weights, bias: rbm.hiddenBias, activation: 'sigmoid' }) as tf.Tensor2D;
}

/**
 * P(v = 1 | h) = σ(hWᵀ + b). h [n, nComponents] → [n, nVisible]. Pass `weightsT` (Wᵀ,
 * [nComponents, nVisible]) when it is already at hand, to avoid a transpose.
 */
export function visibleProbabilities(rbm: Rbm, h: tf.Tensor2D, weightsT?: tf.Tensor2D): tf.Tensor2D {
  assert(h.shape[1] === rbm.nComponents, `visibleProbabilities: h has ${h.shape[1]} columns, expected nComponents ${rbm.nComponents}`);
  return tf.tidy(() => {
    const wT = weightsT ?? tf.transpose(rbm.weights); // [nComponents, nVisible]
    return tf.fused.matMul({ a: h, b: wT, bias: rbm.visibleBias, activation: 'sigmoid' }) as tf.Tensor2D;
  });
}

/** Bernoulli sample of probabilities p: 1 where u < p (one fused `step(p − u)`). */
export function bernoulli(p: tf.Tensor2D, seed: number): tf.Tensor2D {
  return tf.tidy(() => tf.step(tf.sub(p, tf.randomUniform(p.shape, 0, 1, 'float32', seed))) as tf.Tensor2D);
}

/** F(v) = −b·v − Σ_j softplus(c_j + (vW)_j). v [n, nVisible] → [n]. */
export function freeEnergy(rbm: Rbm, v: tf.Tensor2D): tf.Tensor1D {
  assert(v.shape[1] === rbm.nVisible, `freeEnergy: v has ${v.shape[1]} columns, expected nVisible ${rbm.nVisible}`);
  return tf.tidy(() => {
    const pre = tf.fused.matMul({ a: v, b: rbm.weights, bias: rbm.hiddenBias }); // [n, nComponents]
    const vb = tf.matMul(v, tf.reshape(rbm.visibleBias, [rbm.nVisible, 1])); // [n, 1]
    return tf.neg(tf.add(tf.reshape(vb, [-1]), tf.sum(tf.softplus(pre), 1))) as tf.Tensor1D;
  });
}

// ---------------------------------------------------------------------------------------
// Sampling, inpainting, reconstruction

export interface GibbsOptions {
  /** Known pixels are kept fixed: mask 1 = known (value from `values`), 0 = resampled. */
  clamp?: { mask: Float32Array; values: Float32Array };
  /** Return P(v | h) of the last step instead of the binary sample (known pixels still clamped). */
  returnProbabilities?: boolean;
}

/**
 * `steps` Gibbs steps v → h → v, both sampled (scikit-learn's `gibbs`, repeated), from
 * v [n, nVisible] (row-major). With `clamp`, the known pixels are set to their values at the
 * start and after every step, so only the missing ones are resampled (inpainting).
 */
export function gibbs(rbm: Rbm, v: Float32Array, steps: number, rng: Rng, options: GibbsOptions = {}): Float32Array {
  const nV = rbm.nVisible;
  const n = asMatrix(v, nV, 'gibbs');
  assertInteger('gibbs steps', steps, 0);
  const { clamp } = options;
  if (clamp) {
    assert(
      clamp.mask.length === nV || clamp.mask.length === v.length,
      `gibbs: clamp.mask must have nVisible (${nV}) or n·nVisible (${v.length}) values, got ${clamp.mask.length}`,
    );
    assert(clamp.values.length === v.length, `gibbs: clamp.values must have ${v.length} values, got ${clamp.values.length}`);
  }
  const result = tf.tidy(() => {
    const wT = tf.transpose(rbm.weights); // [nC, nV]
    const mask = clamp ? (clamp.mask.length === nV ? tf.tensor2d(clamp.mask, [1, nV]) : tf.tensor2d(clamp.mask, [n, nV])) : null;
    const known = clamp ? tf.tensor2d(clamp.values, [n, nV]) : null;
    const free = mask ? tf.sub(1, mask) : null;
    const applyClamp = (x: tf.Tensor2D): tf.Tensor2D => (mask && known && free ? tf.add(tf.mul(x, free), tf.mul(known, mask)) : x);
    let state = applyClamp(tf.tensor2d(v, [n, nV])); // [n, nV]
    for (let s = 0; s < steps; s++) {
      const next = tf.tidy(() => {
        const h = bernoulli(hiddenProbabilities(rbm, state), rng.seed()); // [n, nC]
        const p = visibleProbabilities(rbm, h, wT); // [n, nV]
        const out = options.returnProbabilities && s === steps - 1 ? p : bernoulli(p, rng.seed());
        return applyClamp(out);
      });
      state.dispose();
      state = next;
    }
    return state;
  });
  const out = result.dataSync() as Float32Array;
  result.dispose();
  return out;
}

/** Mean-field reconstruction σ(σ(vW + c)Wᵀ + b), v [n, nVisible] row-major → same shape. */
export function reconstruct(rbm: Rbm, v: Float32Array): Float32Array {
  const n = asMatrix(v, rbm.nVisible, 'reconstruct');
  const out = tf.tidy(() => visibleProbabilities(rbm, hiddenProbabilities(rbm, tf.tensor2d(v, [n, rbm.nVisible]))));
  const values = out.dataSync() as Float32Array;
  out.dispose();
  return values;
}
