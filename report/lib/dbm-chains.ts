/**
 * Gibbs chains of a two-layer DBM that also report what the hidden layers do and how long
 * the sweeps took, for the grey-state diagnosis of section 4.1.2 (the sweeps are
 * `sampleDbm`'s, src/ml/models/dbm.ts); and the base-rate initialisation of the visible
 * biases (Hinton 2010, "A Practical Guide to Training RBMs", §8.1).
 */
import * as tf from '@tensorflow/tfjs';
import { baseRateVisibleBias } from '../../src/ml/models/rbm-ais.ts';
import { sampleDbm, type Dbm, type DbmSamples } from '../../src/ml/models/dbm.ts';
import type { Rng } from '../../src/ml/random.ts';

export interface DbmChainResult extends DbmSamples {
  /** Wall-clock milliseconds of the sweeps. */
  ms: number;
}

/**
 * `steps` sweeps of `chains` fresh chains started from uniform binary noise in v and h2,
 * or of the model's persistent particles when `chains` is undefined.
 */
export function dbmChains(dbm: Dbm, options: { steps: number; chains?: number; rng: Rng }): DbmChainResult {
  const t0 = performance.now();
  const samples = sampleDbm(dbm, { steps: options.steps, rng: options.rng, ...(options.chains ? { particles: options.chains } : {}) });
  return { ...samples, ms: performance.now() - t0 };
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
