/**
 * The shared evaluation protocol: one yardstick for every generative model of the report.
 *
 * - Fréchet distance (FD) of the referee classifier's features (Heusel et al. 2017, with our
 *   MNIST classifier in place of Inception): `sampleCount` generated images against as many
 *   held-out real test images.
 * - Improved precision and recall (Kynkäänniemi et al. 2019, IMAGE_PIXELS3) in the same feature space:
 *   each point's neighbourhood is the ball reaching its k-th nearest neighbour (k = 3) in
 *   its own set; precision = share of generated points inside some real ball (fidelity),
 *   recall = share of real points inside some generated ball (diversity).
 * - Label statistics of the referee's predictions: digits covered and label entropy.
 * - Memorisation: each sample's pixel distance to its nearest training image, beside the
 *   same distance for real test images (which the model never saw).
 * The noise floor of each metric is `realBaseline`: the same numbers for real test images.
 *
 * Knows nothing of reports: the report's cells call it.
 */
import * as tf from '@tensorflow/tfjs';
import { assert } from '../assert.ts';
import { IMAGE_PIXELS } from '../data/image.ts';
import { featureDim, features, predict, type Classifier } from '../models/classifier.ts';
import { frechetDistance, labelStats, nearestDistances } from './quality.ts';

export interface ProtocolReference {
  /** Referee features of the real reference images [n, dim]. */
  features: Float32Array;
  dim: number;
  /** Training images [m, 784] in [0, 1], for the memorisation check. */
  train: Float32Array;
}

export interface SampleMetrics {
  fd: number;
  precision: number;
  recall: number;
  digitsCovered: number;
  entropy: number;
  histogram: number[];
}

export interface MemorisationMetrics {
  /** Mean and 1st percentile of the samples' distances to their nearest training image. */
  meanNearest: number;
  p01Nearest: number;
}

/** Features of real reference images for `evaluateSamples`. */
export function protocolReference(classifier: Classifier, real: Float32Array, train: Float32Array): ProtocolReference {
  return { features: features(classifier, real), dim: featureDim(classifier), train };
}

/** FD, precision/recall (k = 3) and label statistics of `samples` ([n, 784] in [0, 1]). */
export function evaluateSamples(classifier: Classifier, samples: Float32Array, reference: ProtocolReference, k = 3): SampleMetrics {
  assert(samples.length % IMAGE_PIXELS === 0, `samples length ${samples.length} is not a multiple of ${IMAGE_PIXELS}`);
  const sampleFeatures = features(classifier, samples);
  const { precision, recall } = precisionRecall(reference.features, sampleFeatures, reference.dim, k);
  const { histogram, entropy, digitsCovered } = labelStats(predict(classifier, samples));
  return {
    fd: frechetDistance(sampleFeatures, reference.features, reference.dim),
    precision,
    recall,
    digitsCovered,
    entropy,
    histogram,
  };
}

/** Nearest-training-image distances of `samples` ([n, 784] in [0, 1]). */
export function memorisation(samples: Float32Array, train: Float32Array): MemorisationMetrics {
  const nearest = nearestDistances(samples, train, IMAGE_PIXELS);
  const sorted = Float32Array.from(nearest).sort();
  let sum = 0;
  for (const v of nearest) sum += v;
  return { meanNearest: sum / nearest.length, p01Nearest: sorted[Math.floor(0.01 * (sorted.length - 1))]! };
}

export interface RealBaseline {
  /** FD, precision and recall of one half of the real test images against the other. */
  metrics: SampleMetrics;
  /** Distances of real test images (never trained on) to their nearest training image. */
  memorisation: MemorisationMetrics;
}

/** The protocol's numbers for real images: `heldOut` against the reference, and their memorisation distances. */
export function realBaseline(classifier: Classifier, heldOut: Float32Array, reference: ProtocolReference, memorisationCount = 1000): RealBaseline {
  return {
    metrics: evaluateSamples(classifier, heldOut, reference),
    memorisation: memorisation(heldOut.subarray(0, memorisationCount * IMAGE_PIXELS), reference.train),
  };
}

/**
 * Improved precision and recall (Kynkäänniemi et al. 2019) of `fake` against `real`
 * ([n, dim] each). Distances are Euclidean; a point's radius is the distance to its k-th
 * nearest neighbour in its own set (itself excluded).
 */
export function precisionRecall(real: Float32Array, fake: Float32Array, dim: number, k = 3): { precision: number; recall: number } {
  const realRadii = kthNeighbourDistances(real, dim, k);
  const fakeRadii = kthNeighbourDistances(fake, dim, k);
  return {
    precision: coveredShare(fake, real, realRadii, dim),
    recall: coveredShare(real, fake, fakeRadii, dim),
  };
}

const CHUNK = 512;

/** Squared distances between rows a [na, dim] and b [nb, dim] as a tensor [na, nb] (call inside tidy). */
function squaredDistances(a: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  const aa = tf.sum(tf.square(a), 1, true); // [na, 1]
  const bb = tf.reshape(tf.sum(tf.square(b), 1), [1, b.shape[0]]); // [1, nb]
  return tf.relu(tf.sub(tf.add(aa, bb), tf.mul(2, tf.matMul(a, b, false, true)))) as tf.Tensor2D;
}

/** Distance of each row to its k-th nearest other row of the same set. */
export function kthNeighbourDistances(points: Float32Array, dim: number, k: number): Float32Array {
  const n = points.length / dim;
  assert(Number.isInteger(n) && n > k, `need more than k = ${k} rows of dim ${dim}, got ${points.length / dim}`);
  const radii = new Float32Array(n);
  const all = tf.tensor2d(points, [n, dim]);
  try {
    for (let start = 0; start < n; start += CHUNK) {
      const size = Math.min(CHUNK, n - start);
      const kth = tf.tidy(() => {
        const rows = tf.tensor2d(points.subarray(start * dim, (start + size) * dim), [size, dim]);
        // k + 1 smallest: the first is the point itself (distance 0).
        const { values } = tf.topk(tf.neg(squaredDistances(rows, all)), k + 1);
        return tf.sqrt(tf.neg(tf.slice(values, [0, k], [size, 1])));
      });
      radii.set(kth.dataSync(), start);
      kth.dispose();
    }
  } finally {
    all.dispose();
  }
  return radii;
}

/** Share of `queries` rows within radius[j] of some `centres` row j. */
function coveredShare(queries: Float32Array, centres: Float32Array, radii: Float32Array, dim: number): number {
  const nq = queries.length / dim;
  const nc = centres.length / dim;
  const centreTensor = tf.tensor2d(centres, [nc, dim]);
  const radiiSquared = tf.tensor2d(radii.map((r) => r * r), [1, nc]);
  let covered = 0;
  try {
    for (let start = 0; start < nq; start += CHUNK) {
      const size = Math.min(CHUNK, nq - start);
      const inside = tf.tidy(() => {
        const rows = tf.tensor2d(queries.subarray(start * dim, (start + size) * dim), [size, dim]);
        return tf.any(tf.lessEqual(squaredDistances(rows, centreTensor), radiiSquared), 1); // [size]
      });
      for (const v of inside.dataSync()) covered += v;
      inside.dispose();
    }
  } finally {
    tf.dispose([centreTensor, radiiSquared]);
  }
  return covered / nq;
}

/** Mean and sample standard deviation. */
export function meanSd(values: readonly number[]): { mean: number; sd: number; n: number } {
  const n = values.length;
  assert(n > 0, 'meanSd of no values');
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : NaN;
  return { mean, sd, n };
}
