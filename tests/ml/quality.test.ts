import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../src/ml/random.ts';
import {
  COVERAGE_THRESHOLD,
  fitGaussian,
  frechetDistance,
  labelStats,
  nearestDistances,
  sqrtmPsd,
  symmetricEigen,
  traceSqrtProduct,
} from '../../src/ml/metrics/quality.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** n rows of dim: x = mean + L·z with z ~ N(0, I), L given row-major [dim, dim]. */
function gaussianRows(rng: Rng, n: number, mean: number[], factor: number[][]): Float32Array {
  const dim = mean.length;
  const rows = new Float32Array(n * dim);
  const z = new Float64Array(dim);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < dim; k++) z[k] = rng.normal();
    for (let j = 0; j < dim; j++) {
      let v = mean[j]!;
      for (let k = 0; k < dim; k++) v += factor[j]![k]! * z[k]!;
      rows[i * dim + j] = v;
    }
  }
  return rows;
}

const diag = (values: number[]) => values.map((v, i) => values.map((_, j) => (i === j ? v : 0)));

function randomPsd(rng: Rng, d: number, rank = d): Float64Array {
  // G Gᵀ with G [d, rank]: PSD, singular when rank < d.
  const g = Array.from({ length: d * rank }, () => rng.normal());
  const m = new Float64Array(d * d);
  for (let i = 0; i < d; i++)
    for (let j = 0; j < d; j++) for (let k = 0; k < rank; k++) m[i * d + j]! += g[i * rank + k]! * g[j * rank + k]!;
  return m;
}

function multiply(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) for (let k = 0; k < d; k++) out[i * d + j]! += a[i * d + k]! * b[k * d + j]!;
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('linear algebra', () => {
  it('symmetricEigen reconstructs A = V Λ Vᵀ with orthonormal V', () => {
    const d = 7;
    const a = randomPsd(new Rng(1), d);
    for (let i = 0; i < d; i++) a[i * d + i]! -= 3; // indefinite too
    const { values, vectors } = symmetricEigen(a, d);
    const vt = new Float64Array(d * d);
    const lambdaVt = new Float64Array(d * d);
    for (let i = 0; i < d; i++)
      for (let j = 0; j < d; j++) {
        vt[i * d + j] = vectors[j * d + i]!;
        lambdaVt[i * d + j] = values[i]! * vectors[j * d + i]!;
      }
    expect(maxAbsDiff(multiply(vectors, lambdaVt, d), a)).toBeLessThan(1e-10);
    const identity = Float64Array.from({ length: d * d }, (_, k) => (k % (d + 1) === 0 ? 1 : 0));
    expect(maxAbsDiff(multiply(vt, vectors, d), identity)).toBeLessThan(1e-12);
  });

  it('sqrtmPsd(A)² = A, also for a singular A', () => {
    const rng = new Rng(2);
    for (const rank of [6, 3]) {
      const a = randomPsd(rng, 6, rank);
      const s = sqrtmPsd(a, 6);
      expect(maxAbsDiff(multiply(s, s, 6), a)).toBeLessThan(1e-9);
    }
  });

  it('Tr((AB)^½) agrees with a brute-force root of AB by Denman–Beavers iteration', () => {
    const d = 5;
    const rng = new Rng(3);
    const a = randomPsd(rng, d);
    const b = randomPsd(rng, d);
    for (let i = 0; i < d; i++) {
      a[i * d + i]! += 0.5; // well conditioned, so the plain iteration converges
      b[i * d + i]! += 0.5;
    }
    // Denman–Beavers: Y ← (Y + Z⁻¹)/2, Z ← (Z + Y⁻¹)/2 with Y₀ = AB, Z₀ = I → Y → (AB)^½.
    let y = multiply(a, b, d);
    let z = Float64Array.from({ length: d * d }, (_, k) => (k % (d + 1) === 0 ? 1 : 0));
    for (let it = 0; it < 60; it++) {
      const yInv = invert(y, d);
      const zInv = invert(z, d);
      y = y.map((v, k) => (v + zInv[k]!) / 2);
      z = z.map((v, k) => (v + yInv[k]!) / 2);
    }
    expect(maxAbsDiff(multiply(y, y, d), multiply(a, b, d))).toBeLessThan(1e-8);
    let trace = 0;
    for (let i = 0; i < d; i++) trace += y[i * d + i]!;
    expect(traceSqrtProduct(a, b, d)).toBeCloseTo(trace, 8);
  });
});

function invert(m: Float64Array, d: number): Float64Array {
  // Gauss–Jordan with partial pivoting.
  const a = Float64Array.from(m);
  const inv = Float64Array.from({ length: d * d }, (_, k) => (k % (d + 1) === 0 ? 1 : 0));
  for (let c = 0; c < d; c++) {
    let p = c;
    for (let r = c + 1; r < d; r++) if (Math.abs(a[r * d + c]!) > Math.abs(a[p * d + c]!)) p = r;
    for (let k = 0; k < d; k++) {
      [a[c * d + k], a[p * d + k]] = [a[p * d + k]!, a[c * d + k]!];
      [inv[c * d + k], inv[p * d + k]] = [inv[p * d + k]!, inv[c * d + k]!];
    }
    const pivot = a[c * d + c]!;
    for (let k = 0; k < d; k++) {
      a[c * d + k]! /= pivot;
      inv[c * d + k]! /= pivot;
    }
    for (let r = 0; r < d; r++) {
      if (r === c) continue;
      const f = a[r * d + c]!;
      for (let k = 0; k < d; k++) {
        a[r * d + k]! -= f * a[c * d + k]!;
        inv[r * d + k]! -= f * inv[c * d + k]!;
      }
    }
  }
  return inv;
}

describe('frechetDistance', () => {
  const dim = 4;
  const n = 20_000;

  it('fits mean and covariance', () => {
    const rows = gaussianRows(new Rng(4), n, [1, -2, 0, 3], diag([1, 2, 0.5, 1]));
    const g = fitGaussian(rows, dim);
    expect(maxAbsDiff(g.mean, [1, -2, 0, 3])).toBeLessThan(0.05);
    expect(g.covariance[1 * dim + 1]).toBeCloseTo(4, 0);
    expect(Math.abs(g.covariance[0 * dim + 1]!)).toBeLessThan(0.1);
  });

  it('is 0 for a sample against itself', () => {
    const rows = gaussianRows(new Rng(5), 500, [0, 0, 0, 0], diag([1, 1, 1, 1]));
    expect(frechetDistance(rows, rows, dim)).toBeLessThan(1e-9);
  });

  it('is the squared shift for equal covariances', () => {
    const rows = gaussianRows(new Rng(6), 500, [0, 0, 0, 0], [[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 2, 0], [0, 0.3, 0, 1]]);
    const shifted = rows.map((v, i) => v + [1, -2, 0.5, 0][i % dim]!);
    expect(frechetDistance(rows, shifted, dim)).toBeCloseTo(1 + 4 + 0.25, 3);
  });

  it('is Σ(√a − √b)² for different diagonal covariances (independent samples)', () => {
    const a = [1, 4, 0.25, 2];
    const b = [4, 1, 1, 2];
    const x = gaussianRows(new Rng(7), n, [0, 0, 0, 0], diag(a.map(Math.sqrt)));
    const y = gaussianRows(new Rng(8), n, [0, 0, 0, 0], diag(b.map(Math.sqrt)));
    const expected = a.reduce((s, ai, i) => s + (Math.sqrt(ai) - Math.sqrt(b[i]!)) ** 2, 0); // 1 + 1 + 0.25 + 0
    expect(Math.abs(frechetDistance(x, y, dim) - expected)).toBeLessThan(0.1);
  });

  it('rejects inconsistent dims', () => {
    expect(() => frechetDistance(new Float32Array(10), new Float32Array(12), 4)).toThrow(/multiple of dim/);
  });
});

describe('labelStats', () => {
  it('uniform labels: entropy ln 10, all digits covered', () => {
    const predicted = Uint8Array.from({ length: 1000 }, (_, i) => i % 10);
    const s = labelStats(predicted);
    expect(s.histogram).toEqual(new Array(10).fill(100));
    expect(s.entropy).toBeCloseTo(Math.log(10), 12);
    expect(s.digitsCovered).toBe(10);
  });

  it('one digit: entropy 0; a digit under the 1 % threshold is not covered', () => {
    expect(labelStats(new Uint8Array(50).fill(3)).entropy).toBe(0);
    const predicted = new Uint8Array(1000).fill(1);
    predicted.fill(2, 0, 1000 * COVERAGE_THRESHOLD - 1); // 9 of 1000: < 1 %
    predicted.fill(4, 500, 500 + 1000 * COVERAGE_THRESHOLD); // 10 of 1000: = 1 %
    expect(labelStats(predicted).digitsCovered).toBe(2);
  });
});

describe('nearestDistances', () => {
  it('matches brute force, across chunk boundaries, without leaking tensors', () => {
    const rng = new Rng(9);
    const dim = 6;
    const train = Float32Array.from({ length: 37 * dim }, () => rng.next());
    const samples = Float32Array.from({ length: 11 * dim }, () => rng.next());
    samples.set(train.subarray(5 * dim, 6 * dim), 0); // sample 0 is training row 5
    const before = tf.memory().numTensors;
    const got = nearestDistances(samples, train, dim, { trainChunk: 10, sampleChunk: 4 });
    expect(tf.memory().numTensors).toBe(before);
    for (let i = 0; i < 11; i++) {
      let best = Infinity;
      for (let j = 0; j < 37; j++) {
        let d2 = 0;
        for (let k = 0; k < dim; k++) d2 += (samples[i * dim + k]! - train[j * dim + k]!) ** 2;
        best = Math.min(best, d2);
      }
      expect(got[i]).toBeCloseTo(Math.sqrt(best), 3);
    }
    expect(got[0]).toBeLessThan(1e-3);
  });
});
