/**
 * Gibbs chains of a two-layer DBM that also report what the first hidden layer does, for
 * the grey-state diagnosis of section 4.1.2; and the base-rate initialisation of the
 * visible biases (Hinton 2010, "A Practical Guide to Training RBMs", §8.1). Uses the same
 * conditionals as `sampleDbm` in src/ml/models/dbm.ts (one sweep: h1 | v, h2; then v | h1
 * and h2 | h1), on explicit states.
 */
import * as tf from '@tensorflow/tfjs';
import { baseRateVisibleBias } from '../../src/ml/models/rbm-ais.ts';
import type { Dbm } from '../../src/ml/models/dbm.ts';
import { bernoulli } from '../../src/ml/models/rbm.ts';
import type { Rng } from '../../src/ml/random.ts';

export interface DbmChainResult {
  /** P(v | h1) of the last sweep, [chains, nVisible]. */
  visible: Float32Array;
  /** Mean of the sampled h1 and h2 over chains and units, at the last sweep. */
  meanHidden1: number;
  meanHidden2: number;
  /** Wall-clock milliseconds of the sweeps. */
  ms: number;
}

/**
 * `steps` sweeps of `chains` fresh chains started from uniform binary noise in v and h2
 * (as `sampleDbm` with `particles`), or from the model's persistent particles when
 * `chains` is undefined.
 */
export function dbmChains(dbm: Dbm, options: { steps: number; chains?: number; rng: Rng }): DbmChainResult {
  const { steps, rng } = options;
  const noise = (rows: number, cols: number) => tf.tensor2d(new Float32Array(rows * cols).map(() => (rng.next() < 0.5 ? 1 : 0)), [rows, cols]);
  const count = options.chains ?? dbm.particles.visible.shape[0];
  let v: tf.Tensor2D = options.chains ? noise(count, dbm.nVisible) : dbm.particles.visible.clone();
  let h2: tf.Tensor2D = options.chains ? noise(count, dbm.nHidden2) : dbm.particles.hidden2.clone();
  let h1: tf.Tensor2D | undefined;
  let pV: tf.Tensor2D | undefined;
  const w1T = tf.transpose(dbm.weights1);
  const w2T = tf.transpose(dbm.weights2);
  const t0 = performance.now();
  try {
    for (let s = 0; s < steps; s++) {
      const next = tf.tidy(() => {
        const nh1 = bernoulli(tf.sigmoid(tf.add(tf.fused.matMul({ a: v, b: dbm.weights1, bias: dbm.hiddenBias1 }), tf.matMul(h2, w2T))) as tf.Tensor2D, rng.seed());
        const p = tf.fused.matMul({ a: nh1, b: w1T, bias: dbm.visibleBias, activation: 'sigmoid' }) as tf.Tensor2D;
        const nv = bernoulli(p, rng.seed());
        const nh2 = bernoulli(tf.fused.matMul({ a: nh1, b: dbm.weights2, bias: dbm.hiddenBias2, activation: 'sigmoid' }) as tf.Tensor2D, rng.seed());
        return [nv, nh1, nh2, p] as const;
      });
      tf.dispose([v, h2, ...(h1 ? [h1] : []), ...(pV ? [pV] : [])]);
      [v, h1, h2, pV] = next as unknown as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
    }
    const visible = pV!.dataSync() as Float32Array;
    const ms = performance.now() - t0;
    // The two scalar means are disposed here (they used to be left behind, two per call).
    const [mean1, mean2] = [h1!.mean(), h2.mean()];
    const [meanHidden1, meanHidden2] = [mean1.dataSync()[0]!, mean2.dataSync()[0]!];
    tf.dispose([mean1, mean2]);
    return { visible, meanHidden1, meanHidden2, ms };
  } finally {
    tf.dispose([v, h2, w1T, w2T, ...(h1 ? [h1] : []), ...(pV ? [pV] : [])]);
  }
}

/** Sets the visible biases to the log-odds of the training data's pixel means (smoothed as AIS's base-rate model). */
export function initVisibleBiasFromData(dbm: Dbm, train: Float32Array): void {
  const b = tf.tensor1d(baseRateVisibleBias(train, dbm.nVisible));
  dbm.visibleBias.assign(b);
  b.dispose();
}

/** The pixels of the two-pixel frame of a 28 × 28 image (rows and columns 0, 1, 26, 27). */
export const FRAME_PIXELS: number[] = Array.from({ length: 784 }, (_, i) => i).filter((i) => {
  const r = Math.floor(i / 28);
  const c = i % 28;
  return r < 2 || r > 25 || c < 2 || c > 25;
});

/** Mean of `images` ([n, 784]) over the frame pixels and over all pixels. */
export function frameAndMean(images: Float32Array): { frame: number; all: number } {
  const n = images.length / 784;
  let frame = 0;
  let all = 0;
  for (let s = 0; s < n; s++) {
    for (const i of FRAME_PIXELS) frame += images[s * 784 + i]!;
    for (let i = 0; i < 784; i++) all += images[s * 784 + i]!;
  }
  return { frame: frame / (n * FRAME_PIXELS.length), all: all / (n * 784) };
}
