import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Rng } from '../../src/ml/random.ts';
import { createDbm, dbmFromData, dbmToData, disposeDbm, gibbsSweep, projectedFilters, sampleDbm } from '../../src/ml/models/dbm.ts';
import { pretrainDbm } from '../../src/ml/models/dbm-pretrain.ts';
import { meanField } from '../../src/ml/models/dbm-mean-field.ts';
import { fitDbm } from '../../src/ml/models/dbm-train.ts';
import { useTestBackend } from './setup-backend.ts';

beforeAll(async () => {
  await useTestBackend();
});

function binaryData(n: number, width: number, rng: Rng): Float32Array {
  const protos = Array.from({ length: 4 }, () => Array.from({ length: width }, () => (rng.next() < 0.3 ? 1 : 0)));
  return Float32Array.from({ length: n * width }, (_, k) => {
    const p = protos[Math.floor(k / width) % 4]![k % width]!;
    return rng.next() < 0.05 ? 1 - p : p;
  });
}

describe('DBM', () => {
  it('has the course shapes by default', () => {
    const dbm = createDbm({ rng: new Rng(0), particles: 3 });
    expect(dbm.weights1.shape).toEqual([784, 512]);
    expect(dbm.weights2.shape).toEqual([512, 1024]);
    expect(dbm.particles.hidden2.shape).toEqual([3, 1024]);
    const filters = projectedFilters(dbm);
    expect(filters.layer1.length).toBe(512 * 784);
    expect(filters.layer2.length).toBe(1024 * 784);
    disposeDbm(dbm);
  });

  it('create + dispose leaves no tensors behind', () => {
    const before = tf.memory().numTensors;
    const dbm = createDbm({ nVisible: 6, nHidden1: 4, nHidden2: 3, rng: new Rng(0), particles: 2 });
    expect(tf.memory().numTensors).toBe(before + 8);
    disposeDbm(dbm);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('projects layer-2 filters as W1·W2', () => {
    const dbm = createDbm({ nVisible: 3, nHidden1: 2, nHidden2: 2, rng: new Rng(1), initStd: 1 });
    const d = dbmToData(dbm);
    const { layer1, layer2 } = projectedFilters(dbm);
    for (let j = 0; j < 2; j++) for (let i = 0; i < 3; i++) {
      expect(layer1[j * 3 + i]).toBeCloseTo(d.weights1[i * 2 + j]!, 6);
      const w = d.weights1[i * 2]! * d.weights2[j]! + d.weights1[i * 2 + 1]! * d.weights2[2 + j]!;
      expect(layer2[j * 3 + i]).toBeCloseTo(w, 5);
    }
    disposeDbm(dbm);
  });

  it('pre-trains, trains jointly without leaks, and mean-field converges', () => {
    const rng = new Rng(3);
    const data = binaryData(60, 16, rng);
    const dbm = createDbm({ nVisible: 16, nHidden1: 8, nHidden2: 6, rng, particles: 10 });
    const pre: number[] = [];
    pretrainDbm(dbm, data, { epochs1: 10, epochs2: 5, batchSize: 10, learningRate1: 0.1, learningRate2: 0.1, rng, onEpoch: (layer, _e, info) => layer === 1 && pre.push(info.reconstructionError) });
    expect(pre[pre.length - 1]).toBeLessThan(pre[0]!);
    const epochs: number[] = [];
    fitDbm(dbm, data, { epochs: 1, batchSize: 10, learningRate: 0.01, rng, meanFieldSteps: 5 }); // warm-up
    const before = tf.memory().numTensors;
    fitDbm(dbm, data, { epochs: 3, batchSize: 10, learningRate: 0.01, rng, meanFieldSteps: 5, gibbsSteps: 2, onEpoch: (_e, info) => epochs.push(info.reconstructionError) });
    expect(tf.memory().numTensors).toBe(before);
    expect(epochs.every(Number.isFinite)).toBe(true);

    const v = tf.tensor2d(data.subarray(0, 10 * 16), [10, 16]);
    const { mu1, mu2, changes } = meanField(dbm, v, { steps: 20 });
    expect(mu1.shape).toEqual([10, 8]);
    expect(mu2.shape).toEqual([10, 6]);
    expect(changes).toHaveLength(20);
    expect(changes[changes.length - 1]!).toBeLessThan(changes[0]!);
    expect(changes[changes.length - 1]!).toBeLessThan(1e-3);
    tf.dispose([v, mu1, mu2]);

    const samples = sampleDbm(dbm, { steps: 3, rng });
    expect(samples.visible.length).toBe(10 * 16);
    expect(samples.visible.every((x) => x > 0 && x < 1)).toBe(true);
    for (const m of [samples.meanHidden1, samples.meanHidden2]) expect(m >= 0 && m <= 1).toBe(true);
    expect(sampleDbm(dbm, { steps: 1, particles: 4, rng }).visible.length).toBe(4 * 16);
    expect(tf.memory().numTensors).toBe(before);

    const copy = dbmFromData(dbmToData(dbm));
    expect([...dbmToData(copy).weights2]).toEqual([...dbmToData(dbm).weights2]);
    disposeDbm(copy);
    disposeDbm(dbm);
  });

  it('same seed gives bit-identical joint training', () => {
    const run = (): Float32Array => {
      const rng = new Rng(9);
      const data = binaryData(30, 12, new Rng(1));
      const dbm = createDbm({ nVisible: 12, nHidden1: 6, nHidden2: 5, rng, particles: 5 });
      fitDbm(dbm, data, { epochs: 2, batchSize: 10, learningRate: 0.05, rng });
      const w = dbmToData(dbm).weights1;
      disposeDbm(dbm);
      return w;
    };
    expect(Buffer.from(run().buffer).equals(Buffer.from(run().buffer))).toBe(true);
  });
  it('one Gibbs sweep follows the conditionals: p(v | h1) and p(h2 | h1) from the sampled h1, binary states', () => {
    const dbm = createDbm({ nVisible: 5, nHidden1: 4, nHidden2: 3, rng: new Rng(3), particles: 6 });
    const before = tf.memory().numTensors;
    const w1T = tf.transpose(dbm.weights1);
    const w2T = tf.transpose(dbm.weights2);
    const [h1, pV, v, pH2, h2] = tf.tidy(() => {
      const s = gibbsSweep(dbm, dbm.particles.visible, dbm.particles.hidden2, w1T, w2T, new Rng(9));
      return [s.hidden1, s.visibleProbability, s.visible, s.hidden2Probability, s.hidden2].map((t) => t.arraySync() as number[][]);
    });
    tf.dispose([w1T, w2T]);
    expect(tf.memory().numTensors).toBe(before);
    const W1 = dbm.weights1.arraySync();
    const W2 = dbm.weights2.arraySync();
    const b = dbm.visibleBias.arraySync();
    const c2 = dbm.hiddenBias2.arraySync();
    const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
    for (let r = 0; r < 6; r++) {
      for (let i = 0; i < 5; i++) {
        let a = b[i]!;
        for (let j = 0; j < 4; j++) a += h1![r]![j]! * W1[i]![j]!;
        expect(pV![r]![i]!).toBeCloseTo(sigmoid(a), 5);
      }
      for (let k = 0; k < 3; k++) {
        let a = c2[k]!;
        for (let j = 0; j < 4; j++) a += h1![r]![j]! * W2[j]![k]!;
        expect(pH2![r]![k]!).toBeCloseTo(sigmoid(a), 5);
      }
    }
    for (const states of [h1!, v!, h2!]) expect(states.flat().every((x) => x === 0 || x === 1)).toBe(true);
    disposeDbm(dbm);
  });
});
