/**
 * Sample quality of a generative model, the same for every model in the report.
 *
 * - Fréchet distance between Gaussians fitted to classifier features of generated and
 *   real images (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule
 *   Converge to a Local Nash Equilibrium", §3 / eq. 6 — the FID, here with our MNIST
 *   classifier's penultimate layer in place of Inception's pool3 features):
 *     FD = |μa − μb|² + Tr(Σa + Σb − 2 (Σa Σb)^{1/2}).
 *   Tr((Σa Σb)^{1/2}) is computed in float64 as Σ √λ over the eigenvalues λ of the
 *   symmetric PSD matrix √Σa · Σb · √Σa, which has the same eigenvalues as Σa Σb;
 *   both eigendecompositions are cyclic Jacobi, tiny negative eigenvalues (round-off)
 *   are clamped to 0. Cost O(d³) per sweep: 0.3 s at d = 128 (the classifier's features),
 *   2 s at d = 256, about a minute for pixel-space FD at d = 784.
 * - Label statistics of the classifier's predictions on samples: histogram, entropy
 *   (nats; ln 10 ≈ 2.303 when all digits are equally frequent) and digits covered.
 * - Distance of each sample to its nearest training image (memorisation check).
 */
import * as tf from '@tensorflow/tfjs';
import { assert } from '../assert.ts';
import { IMAGE_PIXELS } from '../data/image.ts';
import { featureDim, features, predict, type Classifier } from '../models/classifier.ts';

// ---------------------------------------------------------------------------------------
// Gaussian fits and the Fréchet distance

export interface Gaussian {
  /** [dim] */
  mean: Float64Array;
  /** [dim, dim], row-major, unbiased (n − 1). */
  covariance: Float64Array;
  dim: number;
  count: number;
}

/** Mean and covariance (float64) of `rows` ([n, dim], row-major). */
export function fitGaussian(rows: Float32Array | Float64Array, dim: number): Gaussian {
  assert(Number.isInteger(dim) && dim > 0, `quality: dim must be a positive integer, got ${dim}`);
  assert(rows.length % dim === 0, `quality: features.length (${rows.length}) must be a multiple of dim (${dim})`);
  const n = rows.length / dim;
  assert(n >= 2, `quality: need at least 2 rows to fit a covariance, got ${n}`);
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let j = 0; j < dim; j++) mean[j]! += rows[i * dim + j]!;
  for (let j = 0; j < dim; j++) mean[j]! /= n;
  // Upper triangle of Σ (x − μ)(x − μ)ᵀ, then mirrored.
  const covariance = new Float64Array(dim * dim);
  const centred = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < dim; j++) centred[j] = rows[i * dim + j]! - mean[j]!;
    for (let j = 0; j < dim; j++) {
      const cj = centred[j]!;
      if (cj === 0) continue;
      const row = j * dim;
      for (let k = j; k < dim; k++) covariance[row + k]! += cj * centred[k]!;
    }
  }
  for (let j = 0; j < dim; j++) {
    for (let k = j; k < dim; k++) {
      const v = covariance[j * dim + k]! / (n - 1);
      covariance[j * dim + k] = v;
      covariance[k * dim + j] = v;
    }
  }
  return { mean, covariance, dim, count: n };
}

/** Fréchet distance between Gaussians fitted to two feature sets ([n, dim] each). */
export function frechetDistance(featuresA: Float32Array, featuresB: Float32Array, dim: number): number {
  return frechetDistanceOfGaussians(fitGaussian(featuresA, dim), fitGaussian(featuresB, dim));
}

/** FD = |μa − μb|² + Tr Σa + Tr Σb − 2 Tr (Σa Σb)^{1/2}, clamped at 0. */
export function frechetDistanceOfGaussians(a: Gaussian, b: Gaussian): number {
  assert(a.dim === b.dim, `quality: Gaussians must have the same dim, got ${a.dim} and ${b.dim}`);
  const d = a.dim;
  let meanTerm = 0;
  for (let j = 0; j < d; j++) meanTerm += (a.mean[j]! - b.mean[j]!) ** 2;
  let traceTerm = 0;
  for (let j = 0; j < d; j++) traceTerm += a.covariance[j * d + j]! + b.covariance[j * d + j]!;
  const fd = meanTerm + traceTerm - 2 * traceSqrtProduct(a.covariance, b.covariance, d);
  return Math.max(0, fd);
}

/** Tr((A B)^{1/2}) for symmetric PSD A, B ([d, d] row-major): Σ √eig(√A · B · √A). */
export function traceSqrtProduct(a: Float64Array, b: Float64Array, d: number): number {
  const sqrtA = sqrtmPsd(a, d);
  const m = matmul(matmul(sqrtA, b, d), sqrtA, d);
  symmetrize(m, d);
  const { values } = symmetricEigen(m, d);
  let trace = 0;
  for (const v of values) trace += Math.sqrt(Math.max(0, v));
  return trace;
}

/** Principal square root of a symmetric PSD matrix: V diag(√max(λ, 0)) Vᵀ. */
export function sqrtmPsd(a: Float64Array, d: number): Float64Array {
  const { values, vectors } = symmetricEigen(a, d);
  const out = new Float64Array(d * d);
  for (let k = 0; k < d; k++) {
    const s = Math.sqrt(Math.max(0, values[k]!));
    if (s === 0) continue;
    for (let i = 0; i < d; i++) {
      const vik = vectors[i * d + k]! * s;
      if (vik === 0) continue;
      for (let j = 0; j < d; j++) out[i * d + j]! += vik * vectors[j * d + k]!;
    }
  }
  symmetrize(out, d);
  return out;
}

/**
 * Eigendecomposition of a symmetric matrix by cyclic Jacobi rotations (Golub & Van Loan,
 * "Matrix Computations", §8.5). Returns eigenvalues and the eigenvectors as the columns
 * of `vectors` ([d, d] row-major): A = V diag(values) Vᵀ. Does not modify `a`.
 */
export function symmetricEigen(a: Float64Array, d: number): { values: Float64Array; vectors: Float64Array } {
  assert(a.length === d * d, `quality: matrix must be ${d}×${d}, got ${a.length} entries`);
  const m = Float64Array.from(a);
  const v = new Float64Array(d * d);
  for (let i = 0; i < d; i++) v[i * d + i] = 1;
  let scale = 0;
  for (let i = 0; i < d * d; i++) scale += m[i]! * m[i]!;
  const tolerance = 1e-30 * Math.max(scale, Number.MIN_VALUE);
  const maxSweeps = 100;
  for (let sweep = 0; sweep < maxSweeps; sweep++) {
    let off = 0;
    for (let p = 0; p < d; p++) for (let q = p + 1; q < d; q++) off += m[p * d + q]! ** 2;
    if (off <= tolerance) break;
    for (let p = 0; p < d - 1; p++) {
      for (let q = p + 1; q < d; q++) {
        const apq = m[p * d + q]!;
        if (apq === 0) continue;
        const app = m[p * d + p]!;
        const aqq = m[q * d + q]!;
        // Rotation angle that zeroes m[p][q]: t = tan θ, the smaller root.
        const theta = (aqq - app) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < d; k++) {
          // Columns p and q of m (m ← m J).
          const mkp = m[k * d + p]!;
          const mkq = m[k * d + q]!;
          m[k * d + p] = c * mkp - s * mkq;
          m[k * d + q] = s * mkp + c * mkq;
        }
        for (let k = 0; k < d; k++) {
          // Rows p and q of m (m ← Jᵀ m).
          const mpk = m[p * d + k]!;
          const mqk = m[q * d + k]!;
          m[p * d + k] = c * mpk - s * mqk;
          m[q * d + k] = s * mpk + c * mqk;
        }
        m[p * d + q] = 0;
        m[q * d + p] = 0;
        for (let k = 0; k < d; k++) {
          const vkp = v[k * d + p]!;
          const vkq = v[k * d + q]!;
          v[k * d + p] = c * vkp - s * vkq;
          v[k * d + q] = s * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(d);
  for (let i = 0; i < d; i++) values[i] = m[i * d + i]!;
  return { values, vectors: v };
}

function matmul(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let k = 0; k < d; k++) {
      const aik = a[i * d + k]!;
      if (aik === 0) continue;
      for (let j = 0; j < d; j++) out[i * d + j]! += aik * b[k * d + j]!;
    }
  }
  return out;
}

function symmetrize(m: Float64Array, d: number): void {
  for (let i = 0; i < d; i++) {
    for (let j = i + 1; j < d; j++) {
      const v = (m[i * d + j]! + m[j * d + i]!) / 2;
      m[i * d + j] = v;
      m[j * d + i] = v;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Label statistics

/** A digit counts as covered when it gets at least this fraction of the samples. */
export const COVERAGE_THRESHOLD = 0.01;

export interface LabelStats {
  /** Number of samples predicted as each digit 0..9. */
  histogram: number[];
  /** Entropy of the predicted-label distribution in nats (max ln 10 ≈ 2.303). */
  entropy: number;
  /** Digits predicted for ≥ 1 % (COVERAGE_THRESHOLD) of the samples. */
  digitsCovered: number;
}

export function labelStats(predicted: Uint8Array): LabelStats {
  const histogram = new Array<number>(10).fill(0);
  for (const label of predicted) {
    assert(label < 10, `quality: predicted labels must be digits 0..9, got ${label}`);
    histogram[label]!++;
  }
  const n = predicted.length;
  let entropy = 0;
  let digitsCovered = 0;
  for (const count of histogram) {
    if (n === 0) break;
    const p = count / n;
    if (p > 0) entropy -= p * Math.log(p);
    if (p >= COVERAGE_THRESHOLD) digitsCovered++;
  }
  return { histogram, entropy, digitsCovered };
}

// ---------------------------------------------------------------------------------------
// Nearest training image

export interface NearestOptions {
  /** Training rows per matmul chunk (default 8192). */
  trainChunk?: number;
  /** Sample rows per matmul chunk (default 1024). */
  sampleChunk?: number;
}

/**
 * Euclidean distance of each sample ([m, dim]) to its nearest training row ([n, dim]),
 * via |s − t|² = |s|² + |t|² − 2 s·t with chunked matmuls on the active tfjs backend.
 * Float32 round-off makes distances below ≈ 0.05 (for 784 pixels in [0, 1]) unreliable.
 */
export function nearestDistances(
  samples: Float32Array,
  train: Float32Array,
  dim: number,
  options: NearestOptions = {},
): Float32Array {
  assert(samples.length % dim === 0, `quality: samples.length (${samples.length}) must be a multiple of dim (${dim})`);
  assert(train.length % dim === 0, `quality: train.length (${train.length}) must be a multiple of dim (${dim})`);
  const m = samples.length / dim;
  const n = train.length / dim;
  assert(n > 0, 'quality: train must hold at least one row');
  const trainChunk = options.trainChunk ?? 8192;
  const sampleChunk = options.sampleChunk ?? 1024;
  const best = new Float32Array(m).fill(Infinity); // smallest squared distance so far
  for (let t0 = 0; t0 < n; t0 += trainChunk) {
    const tc = Math.min(trainChunk, n - t0);
    const trainRows = tf.tensor2d(train.subarray(t0 * dim, (t0 + tc) * dim), [tc, dim]); // [tc, dim]
    const trainNorms = tf.tidy(() => tf.sum(tf.square(trainRows), 1).reshape([1, tc])); // [1, tc]
    try {
      for (let s0 = 0; s0 < m; s0 += sampleChunk) {
        const sc = Math.min(sampleChunk, m - s0);
        const minSq = tf.tidy(() => {
          const s = tf.tensor2d(samples.subarray(s0 * dim, (s0 + sc) * dim), [sc, dim]); // [sc, dim]
          const sNorms = tf.sum(tf.square(s), 1, true); // [sc, 1]
          const cross = tf.matMul(s, trainRows, false, true); // [sc, tc]
          return tf.min(tf.sub(tf.add(sNorms, trainNorms), tf.mul(2, cross)), 1); // [sc]
        });
        const values = minSq.dataSync();
        minSq.dispose();
        for (let i = 0; i < sc; i++) if (values[i]! < best[s0 + i]!) best[s0 + i] = values[i]!;
      }
    } finally {
      trainRows.dispose();
      trainNorms.dispose();
    }
  }
  for (let i = 0; i < m; i++) best[i] = Math.sqrt(Math.max(0, best[i]!));
  return best;
}

// ---------------------------------------------------------------------------------------
// All together

export interface QualityReference {
  /** Classifier features of real (test) images, [n, featureDim(model)]. */
  features: Float32Array;
  /** Training images [n, 784] for the nearest-neighbour check. */
  train: Float32Array;
}

export interface SampleQuality {
  classifierFD: number;
  entropy: number;
  digitsCovered: number;
  histogram: number[];
  /** Mean distance of a sample to its nearest training image (pixel space). */
  meanNearest: number;
}

export interface SampleQualityOptions {
  /**
   * Pixel range of `samples`: '01' (default) or 'pm1' ([−1, 1], e.g. tanh outputs), which
   * is mapped to [0, 1] first — the classifier and `reference.train` use [0, 1].
   */
  range?: '01' | 'pm1';
}

/** Quality of generated `samples` ([n, 784]) against real images. */
export function sampleQuality(
  model: Classifier,
  samples: Float32Array,
  reference: QualityReference,
  options: SampleQualityOptions = {},
): SampleQuality {
  const unit = options.range === 'pm1' ? samples.map((v) => (v + 1) / 2) : samples; // [n, 784] in [0, 1]
  const dim = featureDim(model);
  const sampleFeatures = features(model, unit); // [n, dim]
  const classifierFD = frechetDistance(sampleFeatures, reference.features, dim);
  const { histogram, entropy, digitsCovered } = labelStats(predict(model, unit));
  const nearest = nearestDistances(unit, reference.train, IMAGE_PIXELS);
  let sum = 0;
  for (const v of nearest) sum += v;
  return { classifierFD, entropy, digitsCovered, histogram, meanNearest: sum / nearest.length };
}
