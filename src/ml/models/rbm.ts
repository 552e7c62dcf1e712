/**
 * Bernoulli restricted Boltzmann machine with scikit-learn's `BernoulliRBM` semantics.
 *
 * References
 * - G. Hinton, "A Practical Guide to Training Restricted Boltzmann Machines" (2010), §3 (CD),
 *   §16 (free energy).
 * - T. Tieleman, "Training Restricted Boltzmann Machines using Approximations to the
 *   Likelihood Gradient" (ICML 2008) — persistent contrastive divergence (PCD / SML).
 * - scikit-learn `sklearn/neural_network/_rbm.py` (`_fit`, `score_samples`, `gibbs`), the
 *   course's reference implementation; the behaviour below follows it step by step.
 *
 * Energy  E(v, h) = −b·v − c·h − vᵀWh,   free energy  F(v) = −b·v − Σ_j softplus(c_j + (vW)_j).
 *
 * Orientation: `weights` is W with shape [nVisible, nComponents] (scikit-learn's
 * `components_` transposed), so the hidden pre-activation is a plain `v @ W` and no matMul
 * needs transposeA/transposeB (wasm's transposed matMuls are ~30× slower than an explicit
 * transpose); where Wᵀ is needed it is transposed once per call or per training step.
 * Training (`fitRbm`) works on an augmented copy [[W, b], [cᵀ, ·]] with activations carried
 * transposed — see `pcdStep` for why — and writes W, b, c back after every iteration.
 *
 * Speed (wasm, one core, 784-100, batch 10, 6000 steps = one iteration over 60 000 images):
 * ≈ 0.8 ms CPU per step ≈ 5 s per iteration, about 2× scikit-learn float32 on this machine
 * (2.4 s). Three matMuls per step each pay ≈ 0.1 ms of XNNPACK operator set-up for their
 * fresh right operand; that, not arithmetic, is the floor here (bench/rbm.ts).
 *
 * Shapes: v [batch, nVisible], h [batch, nComponents], visibleBias [nVisible],
 * hiddenBias [nComponents], persistentHidden [batchSize, nComponents].
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../random.ts';

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

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

function assertInteger(name: string, value: number, min: number): void {
  assert(Number.isInteger(value) && value >= min, `${name}: expected an integer ≥ ${min}, got ${value}`);
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
// Pseudo-likelihood (scikit-learn's score_samples)

function asMatrix(data: Float32Array, nVisible: number, what: string): number {
  assert(data.length % nVisible === 0, `${what}: data length ${data.length} is not a multiple of nVisible ${nVisible}`);
  return data.length / nVisible;
}

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

function mean(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return s / values.length;
}

// ---------------------------------------------------------------------------------------
// Training: persistent contrastive divergence exactly as BernoulliRBM._fit

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

function phaseCoefficients(positive: number, negative: number, learningRate: number): tf.Tensor2D {
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
          coef = phaseCoefficients(size, batchSize, learningRate);
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
