/**
 * Section 4.1's measurement helpers (report/lib/rbm-analysis.ts, dbm-chains.ts):
 * statistics, bootstrap intervals, what small RBMs' units do, clamped Gibbs readings and
 * DBM chains.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/ml/random.ts';
import { createDbm, disposeDbm } from '../../src/ml/models/dbm.ts';
import { disposeRbm, rbmFromData, type RbmData } from '../../src/ml/models/rbm.ts';
import { dbmChains, FRAME_PIXELS, frameAndMean, initVisibleBiasFromData } from '../../report/lib/dbm-chains.ts';
import { gibbsReadings, pairedBootstrap, stat, unitStats } from '../../report/lib/rbm-analysis.ts';
import { useTestBackend } from './setup-backend.ts';

beforeAll(async () => {
  await useTestBackend();
});

function model(weights: (i: number, j: number) => number, nComponents: number, hiddenBias = 0): RbmData {
  const w = new Float32Array(784 * nComponents);
  for (let i = 0; i < 784; i++) for (let j = 0; j < nComponents; j++) w[i * nComponents + j] = weights(i, j);
  return { nVisible: 784, nComponents, weights: w, visibleBias: new Float32Array(784), hiddenBias: new Float32Array(nComponents).fill(hiddenBias) };
}

describe('rbm-analysis', () => {
  it('stat gives the mean and the sample standard deviation', () => {
    const s = stat([1, 2, 3]);
    expect(s.mean).toBe(2);
    expect(s.sd).toBeCloseTo(1, 12);
    expect(stat([5]).sd).toBe(0);
  });

  it('pairedBootstrap brackets the mean difference and is exact when the difference is constant', () => {
    const rng = new Rng(1);
    const a = Float64Array.from({ length: 400 }, () => (rng.next() < 0.8 ? 1 : 0));
    const b = Float64Array.from({ length: 400 }, () => (rng.next() < 0.6 ? 1 : 0));
    const r = pairedBootstrap(a, b, new Rng(2));
    expect(r.lo).toBeLessThan(r.diff);
    expect(r.hi).toBeGreaterThan(r.diff);
    const c = pairedBootstrap([1, 2, 3], [0, 1, 2], new Rng(3), 50);
    expect([c.diff, c.lo, c.hi]).toEqual([1, 1, 1]);
  });

  it('unitStats finds duplicated units stuck on, and units that respond', () => {
    const images = new Float32Array(20 * 784);
    for (let s = 0; s < 20; s++) for (let i = 0; i < 784; i++) images[s * 784 + i] = (i + s) % 7 === 0 ? 1 : 0;
    // Three identical units with a large bias: always on, all duplicates.
    const stuck = unitStats(model(() => 0.001, 3, 10), images);
    expect(stuck).toMatchObject({ activeUnits: 0, stuckOn: 3, stuckOff: 0, duplicatePairs: 3, distinctCodes: 1, codesFor90: 1 });
    // One unit reading pixel 0, which is on in some images only.
    const responds = unitStats(model((i) => (i === 0 ? 8 : 0), 1, -4), images);
    expect(responds.activeUnits).toBe(1);
    expect(responds.distinctCodes).toBe(2);
  });

  it('gibbsReadings returns one reading per step count and keeps clamped pixels exact', () => {
    const rng = new Rng(4);
    const rbm = rbmFromData(model(() => 0.3 * rng.normal(), 5));
    const start = Float32Array.from({ length: 3 * 784 }, () => (rng.next() < 0.3 ? 1 : 0));
    const mask = Float32Array.from({ length: 784 }, (_, i) => (i < 392 ? 1 : 0));
    const before = tf.memory().numTensors;
    const readings = gibbsReadings(rbm, start, [1, 3, 5], new Rng(5), { mask, values: start });
    expect(tf.memory().numTensors).toBe(before);
    expect(readings).toHaveLength(3);
    for (const r of readings) {
      expect(r.length).toBe(start.length);
      for (let s = 0; s < 3; s++) for (let i = 0; i < 392; i++) expect(r[s * 784 + i]).toBe(start[s * 784 + i]);
      for (const v of r) expect(v).toBeGreaterThanOrEqual(0);
    }
    disposeRbm(rbm);
  });
});

describe('dbm-chains', () => {
  it('runs chains from noise and from the particles, and sets base-rate visible biases', () => {
    const dbm = createDbm({ nHidden1: 8, nHidden2: 6, particles: 4, rng: new Rng(6) });
    const train = Float32Array.from({ length: 10 * 784 }, (_, k) => (FRAME_PIXELS.includes(k % 784) ? 0 : (k % 3 === 0 ? 1 : 0)));
    initVisibleBiasFromData(dbm, train);
    const bias = dbm.visibleBias.dataSync();
    expect(bias[0]).toBeLessThan(-2); // a frame pixel, never on
    // Each call leaves the tensor count as it found it: no chain state, and not the two scalar
    // means of h1 and h2 either (each call used to leave those behind).
    const before = tf.memory().numTensors;
    const noise = dbmChains(dbm, { steps: 3, chains: 5, rng: new Rng(7) });
    expect(tf.memory().numTensors).toBe(before);
    const particles = dbmChains(dbm, { steps: 1, rng: new Rng(8) });
    expect(tf.memory().numTensors).toBe(before);
    expect(noise.visible.length).toBe(5 * 784);
    expect(particles.visible.length).toBe(4 * 784);
    expect(noise.meanHidden1).toBeGreaterThanOrEqual(0);
    expect(frameAndMean(new Float32Array(784).fill(1))).toEqual({ frame: 1, all: 1 });
    disposeDbm(dbm);
  });
});
