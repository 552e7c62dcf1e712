/**
 * Greedy layer-wise pre-training of a two-layer DBM with the doubling trick.
 *
 * References
 * - R. Salakhutdinov, G. Hinton, "Deep Boltzmann Machines" (AISTATS 2009), §3.1 greedy
 *   layer-wise pre-training with doubled inputs (Fig. 2).
 * - G. Hinton, "Training Products of Experts by Minimizing Contrastive Divergence" (Neural
 *   Computation, 2002) — CD-1, the update of each layer's RBM.
 *
 * Pre-training (doubling trick): RBM1 is trained with bottom-up input 2·vW1 (h1 stands in for
 * both of its DBM neighbours), RBM2 on RBM1's hidden means with top-down input 2·h2W2ᵀ. Once
 * composed, each hidden layer of the DBM receives one copy from each side. c1 is the mean of
 * RBM1's hidden bias and RBM2's visible bias.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../random.ts';
import { rowsOf, type Dbm } from './dbm.ts';
import { phaseMeanCoefficients } from './dbm-train.ts';
import { bernoulli, variableFrom } from './rbm.ts';

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
    if (!c) coefficients.set(key, (c = phaseMeanCoefficients(size, size, lr)));
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
