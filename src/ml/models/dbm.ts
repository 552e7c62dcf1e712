/**
 * Two-hidden-layer Bernoulli deep Boltzmann machine.
 *
 * References
 * - R. Salakhutdinov, G. Hinton, "Deep Boltzmann Machines" (AISTATS 2009): §2.2 learning
 *   (mean-field positive phase, persistent Gibbs negative phase), §3.1 greedy layer-wise
 *   pre-training with doubled inputs (Fig. 2).
 * - R. Salakhutdinov, H. Larochelle, "Efficient Learning of Deep Boltzmann Machines"
 *   (AISTATS 2010) — the bottom-up initialisation of mean-field with doubled W1.
 *
 * Energy  E(v, h1, h2) = −vᵀW1h1 − h1ᵀW2h2 − b·v − c1·h1 − c2·h2.
 * Conditionals: h1 | v, h2 ~ σ(vW1 + h2W2ᵀ + c1);  v | h1 ~ σ(h1W1ᵀ + b);  h2 | h1 ~ σ(h1W2 + c2).
 *
 * Orientation: weights1 [nVisible, nHidden1], weights2 [nHidden1, nHidden2]; the passes that
 * need W1ᵀ or W2ᵀ use an explicit transpose made once per step (no transposed matMuls).
 *
 * Pre-training (doubling trick): RBM1 is trained with bottom-up input 2·vW1 (h1 stands in for
 * both of its DBM neighbours), RBM2 on RBM1's hidden means with top-down input 2·h2W2ᵀ. Once
 * composed, each hidden layer of the DBM receives one copy from each side. c1 is the mean of
 * RBM1's hidden bias and RBM2's visible bias.
 */
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../random.ts';
import { bernoulli, variableFrom } from './rbm.ts';

function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

export interface Dbm {
  readonly nVisible: number;
  readonly nHidden1: number;
  readonly nHidden2: number;
  /** W1, [nVisible, nHidden1]. */
  readonly weights1: tf.Variable<tf.Rank.R2>;
  /** W2, [nHidden1, nHidden2]. */
  readonly weights2: tf.Variable<tf.Rank.R2>;
  readonly visibleBias: tf.Variable<tf.Rank.R1>;
  readonly hiddenBias1: tf.Variable<tf.Rank.R1>;
  readonly hiddenBias2: tf.Variable<tf.Rank.R1>;
  /** Persistent negative-phase particles (binary states), [particles, layer size]. */
  particles: { visible: tf.Variable<tf.Rank.R2>; hidden1: tf.Variable<tf.Rank.R2>; hidden2: tf.Variable<tf.Rank.R2> };
}

export interface DbmData {
  nVisible: number;
  nHidden1: number;
  nHidden2: number;
  /** Row-major [nVisible, nHidden1]. */
  weights1: Float32Array;
  /** Row-major [nHidden1, nHidden2]. */
  weights2: Float32Array;
  visibleBias: Float32Array;
  hiddenBias1: Float32Array;
  hiddenBias2: Float32Array;
  /** Row-major particle states; absent → no particles (fitDbm makes them). */
  particles?: { visible: Float32Array; hidden1: Float32Array; hidden2: Float32Array };
}

export interface CreateDbmOptions {
  /** Default 784, 512, 1024 (the course's pre-trained DBM). */
  nVisible?: number;
  nHidden1?: number;
  nHidden2?: number;
  rng: Rng;
  /** Persistent particles. Default 100. */
  particles?: number;
  /** Initial weight standard deviation. Default 0.01. */
  initStd?: number;
}

function randomNormalArray(n: number, std: number, rng: Rng): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = std * rng.normal();
  return out;
}

function randomBinaryArray(n: number, rng: Rng): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.next() < 0.5 ? 1 : 0;
  return out;
}

export function createDbm(options: CreateDbmOptions): Dbm {
  const nVisible = options.nVisible ?? 784;
  const nHidden1 = options.nHidden1 ?? 512;
  const nHidden2 = options.nHidden2 ?? 1024;
  const particles = options.particles ?? 100;
  const std = options.initStd ?? 0.01;
  const { rng } = options;
  for (const [name, value] of [['nVisible', nVisible], ['nHidden1', nHidden1], ['nHidden2', nHidden2], ['particles', particles]] as const) {
    assert(Number.isInteger(value) && value >= 1, `createDbm: ${name} must be a positive integer, got ${value}`);
  }
  return dbmFromData({
    nVisible,
    nHidden1,
    nHidden2,
    weights1: randomNormalArray(nVisible * nHidden1, std, rng),
    weights2: randomNormalArray(nHidden1 * nHidden2, std, rng),
    visibleBias: new Float32Array(nVisible),
    hiddenBias1: new Float32Array(nHidden1),
    hiddenBias2: new Float32Array(nHidden2),
    particles: {
      visible: randomBinaryArray(particles * nVisible, rng),
      hidden1: randomBinaryArray(particles * nHidden1, rng),
      hidden2: randomBinaryArray(particles * nHidden2, rng),
    },
  });
}

function variable2d(values: Float32Array, rows: number, cols: number): tf.Variable<tf.Rank.R2> {
  return variableFrom(tf.tensor2d(values, [rows, cols]));
}

export function dbmFromData(data: DbmData): Dbm {
  const { nVisible, nHidden1, nHidden2 } = data;
  const check = (name: string, got: number, expected: number): void =>
    assert(got === expected, `dbmFromData: ${name} must hold ${expected} values, got ${got}`);
  check('weights1', data.weights1.length, nVisible * nHidden1);
  check('weights2', data.weights2.length, nHidden1 * nHidden2);
  check('visibleBias', data.visibleBias.length, nVisible);
  check('hiddenBias1', data.hiddenBias1.length, nHidden1);
  check('hiddenBias2', data.hiddenBias2.length, nHidden2);
  const p = data.particles ?? { visible: new Float32Array(nVisible), hidden1: new Float32Array(nHidden1), hidden2: new Float32Array(nHidden2) };
  const count = p.visible.length / nVisible;
  assert(Number.isInteger(count) && count >= 1, `dbmFromData: particles.visible length ${p.visible.length} is not a multiple of ${nVisible}`);
  check('particles.hidden1', p.hidden1.length, count * nHidden1);
  check('particles.hidden2', p.hidden2.length, count * nHidden2);
  return {
    nVisible,
    nHidden1,
    nHidden2,
    weights1: variable2d(data.weights1, nVisible, nHidden1),
    weights2: variable2d(data.weights2, nHidden1, nHidden2),
    visibleBias: variableFrom(tf.tensor1d(data.visibleBias)),
    hiddenBias1: variableFrom(tf.tensor1d(data.hiddenBias1)),
    hiddenBias2: variableFrom(tf.tensor1d(data.hiddenBias2)),
    particles: {
      visible: variable2d(p.visible, count, nVisible),
      hidden1: variable2d(p.hidden1, count, nHidden1),
      hidden2: variable2d(p.hidden2, count, nHidden2),
    },
  };
}

export function dbmToData(dbm: Dbm): DbmData {
  const f = (t: tf.Tensor): Float32Array => t.dataSync() as Float32Array;
  return {
    nVisible: dbm.nVisible,
    nHidden1: dbm.nHidden1,
    nHidden2: dbm.nHidden2,
    weights1: f(dbm.weights1),
    weights2: f(dbm.weights2),
    visibleBias: f(dbm.visibleBias),
    hiddenBias1: f(dbm.hiddenBias1),
    hiddenBias2: f(dbm.hiddenBias2),
    particles: { visible: f(dbm.particles.visible), hidden1: f(dbm.particles.hidden1), hidden2: f(dbm.particles.hidden2) },
  };
}

export function disposeDbm(dbm: Dbm): void {
  for (const t of [dbm.weights1, dbm.weights2, dbm.visibleBias, dbm.hiddenBias1, dbm.hiddenBias2, dbm.particles.visible, dbm.particles.hidden1, dbm.particles.hidden2]) {
    t.dispose();
  }
}

function rowsOf(data: Float32Array, nVisible: number, what: string): number {
  assert(data.length % nVisible === 0 && data.length > 0, `${what}: data length ${data.length} is not a positive multiple of nVisible ${nVisible}`);
  return data.length / nVisible;
}

/** Coefficient column (+lr/b for b positive rows, −lr/p for p negative rows) and its row. */
function phaseCoefficients(positive: number, negative: number, learningRate: number): { coef: tf.Tensor2D; coefRow: tf.Tensor2D } {
  const c = new Float32Array(positive + negative);
  c.fill(learningRate / positive, 0, positive);
  c.fill(-learningRate / negative, positive);
  return { coef: tf.tensor2d(c, [c.length, 1]), coefRow: tf.tensor2d(c, [1, c.length]) };
}

// ---------------------------------------------------------------------------------------
// Greedy layer-wise pre-training

export interface PretrainLayerInfo {
  /** Mean squared reconstruction error of the layer's input over the epoch. */
  reconstructionError: number;
  seconds: number;
}

export interface PretrainDbmOptions {
  /** Epochs for RBM1 (v–h1) and RBM2 (h1–h2). */
  epochs1: number;
  epochs2: number;
  /** Default 100. */
  batchSize?: number;
  /** Default 0.05 (RBM1) and 0.01 (RBM2), as the course's pre-trained DBM. */
  learningRate1?: number;
  learningRate2?: number;
  rng: Rng;
  onEpoch?: (layer: 1 | 2, epoch: number, info: PretrainLayerInfo) => void;
  /** Stop each epoch after this many batches (benchmarks). */
  maxBatchesPerEpoch?: number;
}

/**
 * CD-1 on an RBM with scaled inputs: hidden input `upScale·xW + c`, visible input
 * `downScale·hWᵀ + b`. Positive statistics use hidden means, the negative phase uses the
 * mean-field reconstruction (probabilities), as is usual for pre-training. Returns the summed
 * squared reconstruction error of the batch (a scalar tensor).
 */
function cdStep(
  w: tf.Variable<tf.Rank.R2>,
  visibleBias: tf.Variable<tf.Rank.R1>,
  hiddenBias: tf.Variable<tf.Rank.R1>,
  x: tf.Tensor2D,
  upScale: number,
  downScale: number,
  coef: tf.Tensor2D,
  coefRow: tf.Tensor2D,
  seed: number,
): tf.Scalar {
  return tf.tidy(() => {
    const wUp = upScale === 1 ? w : tf.mul(w, upScale); // [nIn, nOut]
    const wDownT = tf.transpose(downScale === 1 ? w : tf.mul(w, downScale)); // [nOut, nIn]
    const hPos = tf.fused.matMul({ a: x, b: wUp, bias: hiddenBias, activation: 'sigmoid' }) as tf.Tensor2D; // [b, nOut]
    const hSample = bernoulli(hPos, seed);
    const xNeg = tf.fused.matMul({ a: hSample, b: wDownT, bias: visibleBias, activation: 'sigmoid' }) as tf.Tensor2D; // [b, nIn]
    const hNeg = tf.fused.matMul({ a: xNeg, b: wUp, bias: hiddenBias, activation: 'sigmoid' }) as tf.Tensor2D; // [b, nOut]
    const xAll = tf.concat([x, xNeg], 0); // [2b, nIn]
    const hScaled = tf.mul(tf.concat([hPos, hNeg], 0), coef); // [2b, nOut]
    w.assign(tf.add(w, tf.matMul(tf.transpose(xAll), hScaled)));
    hiddenBias.assign(tf.add(hiddenBias, tf.sum(hScaled, 0)));
    visibleBias.assign(tf.add(visibleBias, tf.reshape(tf.matMul(coefRow, xAll), [-1])));
    return tf.sum(tf.squaredDifference(x, xNeg));
  });
}

/**
 * Greedy layer-wise pre-training (Salakhutdinov & Hinton 2009, §3.1): RBM1 on the data with
 * doubled bottom-up input, then RBM2 on RBM1's hidden means σ(2·vW1 + c1) with doubled
 * top-down input. Batches are taken in a fresh random order each epoch.
 */
export function pretrainDbm(dbm: Dbm, data: Float32Array, options: PretrainDbmOptions): void {
  const batchSize = options.batchSize ?? 100;
  const lr1 = options.learningRate1 ?? 0.05;
  const lr2 = options.learningRate2 ?? 0.01;
  const { rng } = options;
  const nV = dbm.nVisible;
  const n = rowsOf(data, nV, 'pretrainDbm');
  const maxBatches = options.maxBatchesPerEpoch ?? Infinity;
  const batch = new Float32Array(batchSize * nV);
  const gather = (order: Uint32Array, start: number, size: number): tf.Tensor2D => {
    for (let r = 0; r < size; r++) batch.set(data.subarray(order[start + r]! * nV, (order[start + r]! + 1) * nV), r * nV);
    return tf.tensor2d(batch.subarray(0, size * nV), [size, nV]); // [size, nV]
  };
  // RBM2's visible bias is its own until the layers are composed.
  const rbm2VisibleBias = variableFrom(tf.zeros([dbm.nHidden1]) as tf.Tensor1D);
  const coefficients = new Map<string, { coef: tf.Tensor2D; coefRow: tf.Tensor2D }>();
  const coefFor = (size: number, lr: number): { coef: tf.Tensor2D; coefRow: tf.Tensor2D } => {
    const key = `${size}:${lr}`;
    let c = coefficients.get(key);
    if (!c) coefficients.set(key, (c = phaseCoefficients(size, size, lr)));
    return c;
  };
  try {
    for (const layer of [1, 2] as const) {
      const epochs = layer === 1 ? options.epochs1 : options.epochs2;
      for (let epoch = 1; epoch <= epochs; epoch++) {
        const t0 = performance.now();
        const order = rng.permutation(n);
        let errorSum = tf.scalar(0);
        let seen = 0;
        for (let start = 0, k = 0; start < n && k < maxBatches; start += batchSize, k++) {
          const size = Math.min(batchSize, n - start);
          const { coef, coefRow } = coefFor(size, layer === 1 ? lr1 : lr2);
          const v = gather(order, start, size);
          let err: tf.Scalar;
          if (layer === 1) {
            err = cdStep(dbm.weights1, dbm.visibleBias, dbm.hiddenBias1, v, 2, 1, coef, coefRow, rng.seed());
          } else {
            const x = tf.tidy(() => tf.fused.matMul({ a: v, b: tf.mul(dbm.weights1, 2), bias: dbm.hiddenBias1, activation: 'sigmoid' }) as tf.Tensor2D); // [size, nH1]
            err = cdStep(dbm.weights2, rbm2VisibleBias, dbm.hiddenBias2, x, 1, 2, coef, coefRow, rng.seed());
            x.dispose();
          }
          v.dispose();
          const next = tf.add(errorSum, err) as tf.Scalar;
          errorSum.dispose();
          err.dispose();
          errorSum = next;
          seen += size;
        }
        const total = errorSum.dataSync()[0]!;
        errorSum.dispose();
        const width = layer === 1 ? nV : dbm.nHidden1;
        options.onEpoch?.(layer, epoch, { reconstructionError: total / (seen * width), seconds: (performance.now() - t0) / 1000 });
      }
    }
    // Compose: h1 gets one copy of its input from each side; average its two biases.
    tf.tidy(() => dbm.hiddenBias1.assign(tf.mul(tf.add(dbm.hiddenBias1, rbm2VisibleBias), 0.5)));
  } finally {
    rbm2VisibleBias.dispose();
    for (const c of coefficients.values()) {
      c.coef.dispose();
      c.coefRow.dispose();
    }
  }
}

// ---------------------------------------------------------------------------------------
// Mean-field inference

export interface MeanFieldOptions {
  /** Maximum number of fixed-point updates (h1 then h2). Default 10. */
  steps?: number;
  /** Stop when max |Δμ| over both layers falls below this. Default 0 (run all steps). */
  tolerance?: number;
}

/**
 * Mean-field fixed point q(h1) q(h2) for v [n, nVisible]: start bottom-up with
 * μ1 = σ(2·vW1 + c1), μ2 = σ(μ1W2 + c2), then iterate
 * μ1 ← σ(vW1 + μ2W2ᵀ + c1), μ2 ← σ(μ1W2 + c2). Returns the tensors (caller disposes) and
 * the max |Δμ| of each update.
 */
export function meanField(
  dbm: Dbm,
  v: tf.Tensor2D,
  options: MeanFieldOptions & {
    /** W2ᵀ [nHidden2, nHidden1] if the caller has it: the same tensor in the Gibbs sweeps lets wasm reuse its packed matMul operator. */
    weights2T?: tf.Tensor2D;
  } = {},
): { mu1: tf.Tensor2D; mu2: tf.Tensor2D; changes: number[] } {
  const steps = options.steps ?? 10;
  const tolerance = options.tolerance ?? 0;
  const changes: number[] = [];
  const w2T = options.weights2T ?? tf.transpose(dbm.weights2); // [nH2, nH1]
  // Same call as in gibbsSweep (fused, bias c1, linear), so that wasm can reuse the operator.
  const vInput = tf.fused.matMul({ a: v, b: dbm.weights1, bias: dbm.hiddenBias1 }) as tf.Tensor2D; // [n, nH1]
  let [mu1, mu2] = tf.tidy(() => {
    const m1 = tf.sigmoid(tf.sub(tf.mul(vInput, 2), dbm.hiddenBias1)) as tf.Tensor2D; // σ(2vW1 + c1)
    return [m1, tf.fused.matMul({ a: m1, b: dbm.weights2, bias: dbm.hiddenBias2, activation: 'sigmoid' }) as tf.Tensor2D];
  }) as [tf.Tensor2D, tf.Tensor2D];
  for (let s = 0; s < steps; s++) {
    const [next1, next2, change] = tf.tidy(() => {
      const n1 = tf.sigmoid(tf.add(vInput, tf.matMul(mu2, w2T))) as tf.Tensor2D; // [n, nH1]
      const n2 = tf.fused.matMul({ a: n1, b: dbm.weights2, bias: dbm.hiddenBias2, activation: 'sigmoid' }) as tf.Tensor2D; // [n, nH2]
      const c = tf.maximum(tf.max(tf.abs(tf.sub(n1, mu1))), tf.max(tf.abs(tf.sub(n2, mu2))));
      return [n1, n2, c];
    });
    mu1.dispose();
    mu2.dispose();
    mu1 = next1 as tf.Tensor2D;
    mu2 = next2 as tf.Tensor2D;
    const delta = change.dataSync()[0]!;
    change.dispose();
    changes.push(delta);
    if (delta < tolerance) break;
  }
  vInput.dispose();
  if (!options.weights2T) w2T.dispose();
  return { mu1, mu2, changes };
}

// ---------------------------------------------------------------------------------------
// Joint training

export interface FitDbmEpochInfo {
  /** Mean squared error of the mean-field reconstruction σ(μ1W1ᵀ + b) over the epoch's batches. */
  reconstructionError: number;
  /** Mean number of mean-field updates per batch. */
  meanFieldUpdates: number;
  seconds: number;
}

export interface FitDbmOptions {
  epochs: number;
  /** Default 100. */
  batchSize?: number;
  /** Default 0.001. */
  learningRate?: number;
  /** Persistent particles; if it differs from the model's, fresh random particles are made. Default: the model's. */
  particles?: number;
  /** Up to this many mean-field updates per batch. Default 10. */
  meanFieldSteps?: number;
  /** Mean-field stops early below this max |Δμ|. Default 1e-3. */
  meanFieldTolerance?: number;
  /** Gibbs steps on the particles per update. Default 1. */
  gibbsSteps?: number;
  /** L2 weight decay. Default 0. */
  weightDecay?: number;
  rng: Rng;
  onEpoch?: (epoch: number, info: FitDbmEpochInfo) => void;
  /** Stop each epoch after this many batches (benchmarks). */
  maxBatchesPerEpoch?: number;
}

/** One Gibbs sweep of the particles: h1 | v, h2; then v | h1 and h2 | h1. Returns p(h2 | h1). */
function gibbsSweep(dbm: Dbm, w1T: tf.Tensor2D, w2T: tf.Tensor2D, rng: Rng): tf.Tensor2D {
  return tf.tidy(() => {
    const p = dbm.particles;
    const h1 = bernoulli(tf.sigmoid(tf.add(tf.fused.matMul({ a: p.visible, b: dbm.weights1, bias: dbm.hiddenBias1 }), tf.matMul(p.hidden2, w2T))) as tf.Tensor2D, rng.seed()); // [P, nH1]
    const v = bernoulli(tf.fused.matMul({ a: h1, b: w1T, bias: dbm.visibleBias, activation: 'sigmoid' }) as tf.Tensor2D, rng.seed()); // [P, nV]
    const pH2 = tf.fused.matMul({ a: h1, b: dbm.weights2, bias: dbm.hiddenBias2, activation: 'sigmoid' }) as tf.Tensor2D; // [P, nH2]
    p.hidden1.assign(h1);
    p.visible.assign(v);
    p.hidden2.assign(bernoulli(pH2, rng.seed()));
    return pH2;
  });
}

function resetParticles(dbm: Dbm, count: number, rng: Rng): void {
  const p = dbm.particles;
  p.visible.dispose();
  p.hidden1.dispose();
  p.hidden2.dispose();
  dbm.particles = {
    visible: variable2d(randomBinaryArray(count * dbm.nVisible, rng), count, dbm.nVisible),
    hidden1: variable2d(randomBinaryArray(count * dbm.nHidden1, rng), count, dbm.nHidden1),
    hidden2: variable2d(randomBinaryArray(count * dbm.nHidden2, rng), count, dbm.nHidden2),
  };
}

/**
 * Joint training (Salakhutdinov & Hinton 2009, Algorithm 1): for each mini-batch, the
 * positive phase is the mean-field fixed point (μ1, μ2); the negative phase advances the
 * persistent particles by `gibbsSteps` Gibbs sweeps; then
 *   W1 += lr·(vᵀμ1/b − ṽᵀh̃1/P),  W2 += lr·(μ1ᵀμ2/b − h̃1ᵀ p(h̃2|h̃1)/P),  biases alike.
 */
export function fitDbm(dbm: Dbm, data: Float32Array, options: FitDbmOptions): void {
  const batchSize = options.batchSize ?? 100;
  const lr = options.learningRate ?? 0.001;
  const mfSteps = options.meanFieldSteps ?? 10;
  const mfTolerance = options.meanFieldTolerance ?? 1e-3;
  const gibbsSteps = options.gibbsSteps ?? 1;
  const decay = options.weightDecay ?? 0;
  const { rng } = options;
  const nV = dbm.nVisible;
  const n = rowsOf(data, nV, 'fitDbm');
  assert(Number.isInteger(gibbsSteps) && gibbsSteps >= 1, `fitDbm: gibbsSteps must be ≥ 1, got ${gibbsSteps}`);
  if (options.particles !== undefined && options.particles !== dbm.particles.visible.shape[0]) resetParticles(dbm, options.particles, rng);
  const count = dbm.particles.visible.shape[0];
  const batch = new Float32Array(batchSize * nV);
  const coefficients = new Map<number, { coef: tf.Tensor2D; coefRow: tf.Tensor2D }>();
  try {
    for (let epoch = 1; epoch <= options.epochs; epoch++) {
      const t0 = performance.now();
      const order = rng.permutation(n);
      let errorSum = tf.scalar(0);
      let seen = 0;
      let updates = 0;
      let batches = 0;
      for (let start = 0; start < n && batches < (options.maxBatchesPerEpoch ?? Infinity); start += batchSize, batches++) {
        const size = Math.min(batchSize, n - start);
        for (let r = 0; r < size; r++) batch.set(data.subarray(order[start + r]! * nV, (order[start + r]! + 1) * nV), r * nV);
        let cf = coefficients.get(size);
        if (!cf) coefficients.set(size, (cf = phaseCoefficients(size, count, lr)));
        const { coef, coefRow } = cf;
        const v = tf.tensor2d(batch.subarray(0, size * nV), [size, nV]); // [b, nV]
        const w2T = tf.transpose(dbm.weights2); // [nH2, nH1], shared by mean-field and Gibbs
        const { mu1, mu2, changes } = meanField(dbm, v, { steps: mfSteps, tolerance: mfTolerance, weights2T: w2T });
        updates += changes.length;
        const err = tf.tidy(() => {
          const w1T = tf.transpose(dbm.weights1); // [nH1, nV]
          let pH2 = gibbsSweep(dbm, w1T, w2T, rng);
          for (let s = 1; s < gibbsSteps; s++) {
            pH2.dispose();
            pH2 = gibbsSweep(dbm, w1T, w2T, rng);
          }
          const p = dbm.particles;
          const vAll = tf.concat([v, p.visible], 0); // [b + P, nV]
          const h1All = tf.concat([mu1, p.hidden1], 0); // [b + P, nH1]
          const h1Scaled = tf.mul(h1All, coef);
          const h2Scaled = tf.mul(tf.concat([mu2, pH2], 0), coef); // [b + P, nH2]
          let dW1 = tf.matMul(tf.transpose(vAll), h1Scaled); // [nV, nH1]
          let dW2 = tf.matMul(tf.transpose(h1All), h2Scaled); // [nH1, nH2]
          if (decay > 0) {
            dW1 = tf.sub(dW1, tf.mul(dbm.weights1, lr * decay));
            dW2 = tf.sub(dW2, tf.mul(dbm.weights2, lr * decay));
          }
          const reconstruction = tf.fused.matMul({ a: mu1, b: w1T, bias: dbm.visibleBias, activation: 'sigmoid' }); // [b, nV]
          const e = tf.sum(tf.squaredDifference(v, reconstruction));
          dbm.weights1.assign(tf.add(dbm.weights1, dW1));
          dbm.weights2.assign(tf.add(dbm.weights2, dW2));
          dbm.visibleBias.assign(tf.add(dbm.visibleBias, tf.reshape(tf.matMul(coefRow, vAll), [-1])));
          dbm.hiddenBias1.assign(tf.add(dbm.hiddenBias1, tf.sum(h1Scaled, 0)));
          dbm.hiddenBias2.assign(tf.add(dbm.hiddenBias2, tf.sum(h2Scaled, 0)));
          return tf.add(errorSum, e) as tf.Scalar;
        });
        errorSum.dispose();
        errorSum = err;
        v.dispose();
        w2T.dispose();
        mu1.dispose();
        mu2.dispose();
        seen += size;
      }
      const total = errorSum.dataSync()[0]!;
      errorSum.dispose();
      options.onEpoch?.(epoch, { reconstructionError: total / (seen * nV), meanFieldUpdates: updates / batches, seconds: (performance.now() - t0) / 1000 });
    }
  } finally {
    for (const c of coefficients.values()) {
      c.coef.dispose();
      c.coefRow.dispose();
    }
  }
}

// ---------------------------------------------------------------------------------------
// Sampling and filters

export interface SampleDbmOptions {
  /** Gibbs sweeps. Default 1 (the course's gibbs_steps). */
  steps?: number;
  /** Fresh random chains of this many particles; default: continue from (a copy of) the model's persistent particles. */
  particles?: number;
  rng: Rng;
}

/**
 * Runs Gibbs sweeps on a copy of the persistent particles (or on fresh random chains) and
 * returns the visible probabilities P(v | h1) of the last sweep, row-major [particles, nVisible].
 * The model's own particles are left as they were.
 */
export function sampleDbm(dbm: Dbm, options: SampleDbmOptions): Float32Array {
  const steps = options.steps ?? 1;
  const { rng } = options;
  assert(Number.isInteger(steps) && steps >= 1, `sampleDbm: steps must be ≥ 1, got ${steps}`);
  const count = options.particles ?? dbm.particles.visible.shape[0];
  const fresh = options.particles !== undefined;
  // Each sweep runs in its own tidy so that only the chain state outlives it: one tidy
  // around all sweeps would keep every sweep's intermediates (≈ 30 MB per sweep at 1000
  // particles) until the end.
  let v: tf.Tensor2D = fresh ? tf.tensor2d(randomBinaryArray(count * dbm.nVisible, rng), [count, dbm.nVisible]) : dbm.particles.visible.clone();
  let h2: tf.Tensor2D = fresh ? tf.tensor2d(randomBinaryArray(count * dbm.nHidden2, rng), [count, dbm.nHidden2]) : dbm.particles.hidden2.clone();
  let pV: tf.Tensor2D | undefined;
  const w1T = tf.transpose(dbm.weights1); // [nH1, nV]
  const w2T = tf.transpose(dbm.weights2); // [nH2, nH1]
  try {
    for (let s = 0; s < steps; s++) {
      const [nextV, nextH2, nextPV] = tf.tidy(() => {
        const h1 = bernoulli(tf.sigmoid(tf.add(tf.fused.matMul({ a: v, b: dbm.weights1, bias: dbm.hiddenBias1 }), tf.matMul(h2, w2T))) as tf.Tensor2D, rng.seed()); // [P, nH1]
        const p = tf.fused.matMul({ a: h1, b: w1T, bias: dbm.visibleBias, activation: 'sigmoid' }) as tf.Tensor2D; // [P, nV]
        const nextVisible = bernoulli(p, rng.seed());
        const nextHidden2 = bernoulli(tf.fused.matMul({ a: h1, b: dbm.weights2, bias: dbm.hiddenBias2, activation: 'sigmoid' }) as tf.Tensor2D, rng.seed()); // [P, nH2]
        return [nextVisible, nextHidden2, p];
      }) as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
      v.dispose();
      h2.dispose();
      pV?.dispose();
      [v, h2, pV] = [nextV, nextH2, nextPV];
    }
    return pV!.dataSync() as Float32Array;
  } finally {
    v.dispose();
    h2.dispose();
    pV?.dispose();
    w1T.dispose();
    w2T.dispose();
  }
}

/**
 * Filters in pixel space: layer 1 = the columns of W1 (row-major [nHidden1, nVisible], one
 * 784-vector per unit); layer 2 = the columns of W1·W2 ([nHidden2, nVisible]).
 */
export function projectedFilters(dbm: Dbm): { layer1: Float32Array; layer2: Float32Array } {
  const [l1, l2] = tf.tidy(() => [tf.transpose(dbm.weights1), tf.transpose(tf.matMul(dbm.weights1, dbm.weights2))]);
  const out = { layer1: l1!.dataSync() as Float32Array, layer2: l2!.dataSync() as Float32Array };
  l1!.dispose();
  l2!.dispose();
  return out;
}
