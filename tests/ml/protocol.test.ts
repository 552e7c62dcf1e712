import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend.ts';
import { kthNeighbourDistances, meanSd, precisionRecall } from '../../src/ml/metrics/protocol.ts';
import { Rng } from '../../src/ml/random.ts';

beforeAll(async () => {
  await initBackend(process.env['TFJS_BACKEND'] ? {} : { backend: 'cpu' });
});

function gaussian(n: number, dim: number, rng: Rng, centre = 0, spread = 1): Float32Array {
  return new Float32Array(n * dim).map(() => centre + spread * rng.normal());
}

/** Brute-force reference of Kynkäänniemi et al.'s definitions. */
function bruteForce(real: Float32Array, fake: Float32Array, dim: number, k: number) {
  const rows = (x: Float32Array) => Array.from({ length: x.length / dim }, (_, i) => x.subarray(i * dim, (i + 1) * dim));
  const dist = (a: Float32Array, b: Float32Array) => Math.sqrt(a.reduce((s, v, j) => s + (v - b[j]!) ** 2, 0));
  const radii = (set: Float32Array[]) => set.map((p) => set.map((q) => dist(p, q)).sort((a, b) => a - b)[k]!);
  const [r, f] = [rows(real), rows(fake)];
  const [rr, fr] = [radii(r), radii(f)];
  const share = (queries: Float32Array[], centres: Float32Array[], rad: number[]) =>
    queries.filter((q) => centres.some((c, j) => dist(q, c) <= rad[j]!)).length / queries.length;
  return { precision: share(f, r, rr), recall: share(r, f, fr), realRadii: rr };
}

describe('improved precision and recall (protocol.ts)', () => {
  it('agrees with a brute-force computation of the definitions', () => {
    const rng = new Rng(1);
    const real = gaussian(700, 3, rng);
    const fake = gaussian(600, 3, rng, 0.7, 0.6); // crosses the 512-row chunk boundary
    const ours = precisionRecall(real, fake, 3, 3);
    const reference = bruteForce(real, fake, 3, 3);
    expect(ours.precision).toBeCloseTo(reference.precision, 2);
    expect(ours.recall).toBeCloseTo(reference.recall, 2);
    const radii = kthNeighbourDistances(real, 3, 3);
    radii.forEach((r, i) => expect(r).toBeCloseTo(reference.realRadii[i]!, 3));
  });

  it('separates fidelity from diversity: a collapsed generator has precision but no recall; a distant one has neither', () => {
    const rng = new Rng(2);
    const real = gaussian(500, 4, rng);
    const same = precisionRecall(real, gaussian(500, 4, rng), 4);
    expect(same.precision).toBeGreaterThan(0.8);
    expect(same.recall).toBeGreaterThan(0.8);
    const collapsed = precisionRecall(real, gaussian(500, 4, rng, 0, 0.05), 4); // all near the mean
    expect(collapsed.precision).toBeGreaterThan(0.9);
    expect(collapsed.recall).toBeLessThan(0.2);
    const far = precisionRecall(real, gaussian(500, 4, rng, 20), 4);
    expect(far.precision).toBe(0);
    expect(far.recall).toBe(0);
  });

  it('meanSd gives the sample standard deviation', () => {
    expect(meanSd([1, 2, 3, 4])).toEqual({ mean: 2.5, sd: Math.sqrt(5 / 3), n: 4 });
    expect(Number.isNaN(meanSd([3]).sd)).toBe(true);
    expect(() => meanSd([])).toThrow(/no values/);
  });
});
