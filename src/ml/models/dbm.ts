/**
 * Two-hidden-layer Bernoulli deep Boltzmann machine: the model, Gibbs sampling from it and
 * its filters in pixel space. Greedy layer-wise pre-training is in `dbm-pretrain.ts`,
 * mean-field inference in `dbm-mean-field.ts`, joint training in `dbm-train.ts`.
 *
 * References
 * - R. Salakhutdinov, G. Hinton, "Deep Boltzmann Machines" (AISTATS 2009).
 *
 * Energy  E(v, h1, h2) = −vᵀW1h1 − h1ᵀW2h2 − b·v − c1·h1 − c2·h2.
 * Conditionals: h1 | v, h2 ~ σ(vW1 + h2W2ᵀ + c1);  v | h1 ~ σ(h1W1ᵀ + b);  h2 | h1 ~ σ(h1W2 + c2).
 *
 * Orientation: weights1 [nVisible, nHidden1], weights2 [nHidden1, nHidden2]; the passes that
 * need W1ᵀ or W2ᵀ use an explicit transpose made once per step (no transposed matMuls).
 */
import * as tf from '@tensorflow/tfjs';
import { assert } from '../assert.ts';
import type { Rng } from '../random.ts';
import { bernoulli, variableFrom } from './rbm.ts';

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

/** Uniform binary noise (each value 1 with probability ½), one `rng.next()` per value: fresh chain states. */
export function randomBinaryArray(n: number, rng: Rng): Float32Array {
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

/** A [rows, cols] variable holding `values`. */
export function variable2d(values: Float32Array, rows: number, cols: number): tf.Variable<tf.Rank.R2> {
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

/** The number of rows of `data` read as a row-major [n, nVisible] matrix (n ≥ 1); throws if it is not one. */
export function rowsOf(data: Float32Array, nVisible: number, what: string): number {
  assert(data.length % nVisible === 0 && data.length > 0, `${what}: data length ${data.length} is not a positive multiple of nVisible ${nVisible}`);
  return data.length / nVisible;
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

/** The tensors of one Gibbs sweep ({@link gibbsSweep}); the caller's `tf.tidy` owns them. */
export interface GibbsSweep {
  /** h1 ~ p(h1 | v, h2), [P, nH1]. */
  hidden1: tf.Tensor2D;
  /** p(v | h1), [P, nV]. */
  visibleProbability: tf.Tensor2D;
  /** v ~ p(v | h1). */
  visible: tf.Tensor2D;
  /** p(h2 | h1), [P, nH2]. */
  hidden2Probability: tf.Tensor2D;
  /** h2 ~ p(h2 | h1). */
  hidden2: tf.Tensor2D;
}

/**
 * One Gibbs sweep of a two-layer DBM from the chain state (v, h2): h1 | v, h2; then v | h1
 * and h2 | h1 (the two outer layers are conditionally independent given h1). `w1T` and
 * `w2T` are the transposed weights, made once by the caller. Draws three seeds from `rng`,
 * in the order h1, v, h2. Used by training (the persistent particles) and by sampling.
 */
export function gibbsSweep(dbm: Dbm, visible: tf.Tensor2D, hidden2: tf.Tensor2D, w1T: tf.Tensor2D, w2T: tf.Tensor2D, rng: Rng): GibbsSweep {
  const hidden1 = bernoulli(tf.sigmoid(tf.add(tf.fused.matMul({ a: visible, b: dbm.weights1, bias: dbm.hiddenBias1 }), tf.matMul(hidden2, w2T))) as tf.Tensor2D, rng.seed());
  const visibleProbability = tf.fused.matMul({ a: hidden1, b: w1T, bias: dbm.visibleBias, activation: 'sigmoid' }) as tf.Tensor2D;
  const nextVisible = bernoulli(visibleProbability, rng.seed());
  const hidden2Probability = tf.fused.matMul({ a: hidden1, b: dbm.weights2, bias: dbm.hiddenBias2, activation: 'sigmoid' }) as tf.Tensor2D;
  const nextHidden2 = bernoulli(hidden2Probability, rng.seed());
  return { hidden1, visibleProbability, visible: nextVisible, hidden2Probability, hidden2: nextHidden2 };
}

export interface DbmSamples {
  /** P(v | h1) of the last sweep, row-major [particles, nVisible]. */
  visible: Float32Array;
  /** Mean of the sampled h1 and h2 over chains and units, at the last sweep. */
  meanHidden1: number;
  meanHidden2: number;
}

/**
 * Runs Gibbs sweeps on a copy of the persistent particles (or on fresh chains started from
 * uniform binary noise in v and h2) and returns the visible probabilities P(v | h1) of the
 * last sweep and what the hidden layers did. The model's own particles are left as they were.
 */
export function sampleDbm(dbm: Dbm, options: SampleDbmOptions): DbmSamples {
  const steps = options.steps ?? 1;
  const { rng } = options;
  assert(Number.isInteger(steps) && steps >= 1, `sampleDbm: steps must be ≥ 1, got ${steps}`);
  const count = options.particles ?? dbm.particles.visible.shape[0];
  const fresh = options.particles !== undefined;
  // Each sweep runs in its own tidy so that only the chain state outlives it: one tidy
  // around all sweeps would keep every sweep's intermediates (≈ 30 MB per sweep at 1000
  // particles) until the end.
  let state: Pick<GibbsSweep, 'visible' | 'hidden2'> & Partial<GibbsSweep> = {
    visible: fresh ? tf.tensor2d(randomBinaryArray(count * dbm.nVisible, rng), [count, dbm.nVisible]) : dbm.particles.visible.clone(),
    hidden2: fresh ? tf.tensor2d(randomBinaryArray(count * dbm.nHidden2, rng), [count, dbm.nHidden2]) : dbm.particles.hidden2.clone(),
  };
  const w1T = tf.transpose(dbm.weights1); // [nH1, nV]
  const w2T = tf.transpose(dbm.weights2); // [nH2, nH1]
  const release = (s: typeof state) => tf.dispose([s.visible, s.hidden2, ...(s.hidden1 ? [s.hidden1] : []), ...(s.visibleProbability ? [s.visibleProbability] : [])]);
  try {
    for (let s = 0; s < steps; s++) {
      const next = tf.tidy(() => {
        const sweep = gibbsSweep(dbm, state.visible, state.hidden2, w1T, w2T, rng);
        return { hidden1: sweep.hidden1, visibleProbability: sweep.visibleProbability, visible: sweep.visible, hidden2: sweep.hidden2 };
      });
      release(state);
      state = next;
    }
    const visible = state.visibleProbability!.dataSync() as Float32Array;
    const means = tf.tidy(() => tf.stack([state.hidden1!.mean(), state.hidden2.mean()]));
    const [meanHidden1, meanHidden2] = means.dataSync();
    means.dispose();
    return { visible, meanHidden1: meanHidden1!, meanHidden2: meanHidden2! };
  } finally {
    release(state);
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
