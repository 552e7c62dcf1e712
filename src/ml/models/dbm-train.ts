/**
 * Joint training of a two-layer DBM: mean-field positive phase, persistent Gibbs negative
 * phase (Salakhutdinov & Hinton 2009, §2.2 and Algorithm 1).
 *
 * References
 * - R. Salakhutdinov, G. Hinton, "Deep Boltzmann Machines" (AISTATS 2009), §2.2.
 * - T. Tieleman, "Training Restricted Boltzmann Machines using Approximations to the
 *   Likelihood Gradient" (ICML 2008) — persistent chains for the negative phase.
 */
import * as tf from '@tensorflow/tfjs';
import { assert } from '../assert.ts';
import type { Rng } from '../random.ts';
import { gibbsSweep, randomBinaryArray, rowsOf, variable2d, type Dbm } from './dbm.ts';
import { meanField } from './dbm-mean-field.ts';

/** Coefficient column (+lr/b for b positive rows, −lr/p for p negative rows) and its row: each phase divided by ITS OWN count (a mean per phase), unlike the RBM's, which divides both by the batch size. */
export function phaseMeanCoefficients(positive: number, negative: number, learningRate: number): { coef: tf.Tensor2D; coefRow: tf.Tensor2D } {
  const c = new Float32Array(positive + negative);
  c.fill(learningRate / positive, 0, positive);
  c.fill(-learningRate / negative, positive);
  return { coef: tf.tensor2d(c, [c.length, 1]), coefRow: tf.tensor2d(c, [1, c.length]) };
}

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

/** One Gibbs sweep of the persistent particles (dbm.ts `gibbsSweep`), in place. Returns p(h2 | h1). */
function advanceParticles(dbm: Dbm, w1T: tf.Tensor2D, w2T: tf.Tensor2D, rng: Rng): tf.Tensor2D {
  return tf.tidy(() => {
    const p = dbm.particles;
    const sweep = gibbsSweep(dbm, p.visible, p.hidden2, w1T, w2T, rng);
    p.hidden1.assign(sweep.hidden1);
    p.visible.assign(sweep.visible);
    p.hidden2.assign(sweep.hidden2);
    return sweep.hidden2Probability;
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
        if (!cf) coefficients.set(size, (cf = phaseMeanCoefficients(size, count, lr)));
        const { coef, coefRow } = cf;
        const v = tf.tensor2d(batch.subarray(0, size * nV), [size, nV]); // [b, nV]
        const w2T = tf.transpose(dbm.weights2); // [nH2, nH1], shared by mean-field and Gibbs
        const { mu1, mu2, changes } = meanField(dbm, v, { steps: mfSteps, tolerance: mfTolerance, weights2T: w2T });
        updates += changes.length;
        const err = tf.tidy(() => {
          const w1T = tf.transpose(dbm.weights1); // [nH1, nV]
          let pH2 = advanceParticles(dbm, w1T, w2T, rng);
          for (let s = 1; s < gibbsSteps; s++) {
            pH2.dispose();
            pH2 = advanceParticles(dbm, w1T, w2T, rng);
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
