import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/ml/random.ts';
import { createRbm, disposeRbm, rbmFromData } from '../../src/ml/models/rbm.ts';
import { fitRbm } from '../../src/ml/models/rbm-train.ts';
import { exactLogLikelihood, exactLogPartition } from '../../src/ml/models/rbm-likelihood.ts';
import { aisLogPartition, baseRateVisibleBias, betaSchedule, estimateLogLikelihood } from '../../src/ml/models/rbm-ais.ts';
import { useTestBackend } from './setup-backend.ts';

beforeAll(async () => {
  await useTestBackend();
});

/** Binary data from 3 noisy prototypes of 20 pixels. */
function prototypes(n: number, rng: Rng): Float32Array {
  const protos = Array.from({ length: 3 }, () => Array.from({ length: 20 }, () => (rng.next() < 0.4 ? 1 : 0)));
  const out = new Float32Array(n * 20);
  for (let s = 0; s < n; s++) {
    const p = protos[s % 3]!;
    for (let i = 0; i < 20; i++) out[s * 20 + i] = rng.next() < 0.1 ? 1 - p[i]! : p[i]!;
  }
  return out;
}

describe('annealed importance sampling', () => {
  it('builds β schedules from 0 to 1', () => {
    const b = betaSchedule([[0.5, 0.1], [1, 0.25]]);
    expect([...b].map((x) => Math.round(x * 1000) / 1000)).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1]);
    expect(betaSchedule().length).toBe(5501);
  });

  it('agrees with the exact log Z of a briefly trained 20×8 RBM within 0.1 nats', () => {
    const rng = new Rng(7);
    const data = prototypes(300, rng);
    const rbm = createRbm({ nVisible: 20, nComponents: 8, rng });
    fitRbm(rbm, data, { nIter: 20, rng, learningRate: 0.1, score: false });
    const exact = exactLogPartition(rbm);
    const before = tf.memory().numTensors;
    const ais = aisLogPartition(rbm, {
      runs: 100,
      betas: betaSchedule([[0.5, 2e-3], [1, 1e-3]]),
      rng: new Rng(1),
      baseVisibleBias: baseRateVisibleBias(data, 20),
    });
    expect(tf.memory().numTensors).toBe(before);
    expect(Math.abs(ais.logZ - exact)).toBeLessThan(0.1);
    expect(ais.logZLow).toBeLessThanOrEqual(ais.logZ);
    expect(ais.logZHigh).toBeGreaterThanOrEqual(ais.logZ);
    expect(ais.stdErr).toBeLessThan(0.1);
    expect(estimateLogLikelihood(rbm, data, ais)).toBeCloseTo(exactLogLikelihood(rbm, data, exact), 1);
    // The trained model is far from uniform: log Z is not the base model's.
    expect(Math.abs(exact - ais.logZBase)).toBeGreaterThan(1);
    disposeRbm(rbm);
  });

  it('is exact for a model with zero weights equal to the base-rate model', () => {
    const b = Float32Array.from({ length: 6 }, (_, i) => i - 3);
    const rbm = rbmFromData({ nVisible: 6, nComponents: 3, weights: new Float32Array(18), visibleBias: b, hiddenBias: new Float32Array(3) });
    const ais = aisLogPartition(rbm, { runs: 10, betas: betaSchedule([[1, 0.1]]), rng: new Rng(2), baseVisibleBias: b });
    expect(ais.logZ).toBeCloseTo(exactLogPartition(rbm), 5);
    expect(ais.stdErr).toBeLessThan(1e-6);
    disposeRbm(rbm);
  });
});
