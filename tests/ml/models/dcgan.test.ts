import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src/ml/backend.ts';
import { Rng } from '../../../src/ml/random.ts';
import { batchNormTraining, createDcDiscriminator, createDcGenerator, dcganParamCount } from '../../../src/ml/models/dcgan.ts';
import { COURSE_ADAM, ganStep } from '../../../src/ml/models/gan.ts';
import { createStepRunner } from '../../../src/ml/trainer.ts';

beforeAll(async () => {
  await initBackend(process.env['TFJS_BACKEND'] ? {} : { backend: 'cpu' });
});

const batch = 4;

function models(seed: number) {
  const rng = new Rng(seed);
  return { generator: createDcGenerator({ latentDim: 5, filters: [6, 4], rng }), discriminator: createDcDiscriminator({ filters: [4, 6], rng }) };
}

function realBatch(seed: number): tf.Tensor2D {
  return tf.randomUniform([batch, 784], -1, 1, 'float32', seed) as tf.Tensor2D;
}

describe('DCGAN (dcgan.ts)', () => {
  it('batch norm\'s closed-form gradient agrees with autodiff through tf.moments + tf.batchNorm', () => {
    tf.tidy(() => {
      const x = tf.randomNormal([3, 2, 2, 5], 1, 2, 'float32', 11);
      const scale = tf.randomUniform([5], 0.5, 1.5, 'float32', 12) as tf.Tensor1D;
      const offset = tf.randomUniform([5], -1, 1, 'float32', 13) as tf.Tensor1D;
      const weights = tf.randomNormal([3, 2, 2, 5], 0, 1, 'float32', 14); // a non-trivial loss
      const reference = (a: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => {
        const { mean, variance } = tf.moments(a, [0, 1, 2]);
        return tf.sum(tf.mul(tf.batchNorm(a, mean, variance, o as tf.Tensor1D, s as tf.Tensor1D, 1e-5), weights));
      };
      const ours = (a: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => tf.sum(tf.mul(batchNormTraining(a, s as tf.Tensor1D, o as tf.Tensor1D), weights));
      const expected = tf.grads(reference)([x, scale, offset]);
      const got = tf.grads(ours)([x, scale, offset]);
      expect(ours(x, scale, offset).dataSync()[0]).toBeCloseTo(reference(x, scale, offset).dataSync()[0]!, 4);
      got.forEach((g, i) => {
        expect(g.shape).toEqual(expected[i]!.shape);
        expect(tf.max(tf.abs(tf.sub(g, expected[i]!))).dataSync()[0]).toBeLessThan(1e-4);
      });
    });
  });

  it('has the parameter counts of the PyTorch twin in bench/torch_bench.py', () => {
    const m = { generator: createDcGenerator({ rng: new Rng(0) }), discriminator: createDcDiscriminator({ rng: new Rng(1) }) };
    expect(dcganParamCount(m)).toEqual({ generator: 207_489, discriminator: 138_689 });
    m.generator.dispose();
    m.discriminator.dispose();
  });

  it('generates [b, 784] images in [−1, 1] and scores them with one logit, in both modes', () => {
    const { generator, discriminator } = models(2);
    tf.tidy(() => {
      const z = tf.randomNormal([batch, 5], 0, 1, 'float32', 3) as tf.Tensor2D;
      for (const training of [true, false]) {
        const images = generator.apply(z, { training });
        expect(images.shape).toEqual([batch, 784]);
        const values = images.dataSync();
        expect(Math.max(...values)).toBeLessThanOrEqual(1);
        expect(Math.min(...values)).toBeGreaterThanOrEqual(-1);
        expect(discriminator.apply(images, { training }).shape).toEqual([batch, 1]);
      }
    });
  });

  it('moves the batch-norm running averages only when asked', () => {
    const { generator } = models(4);
    const snapshot = () => generator.statistics.map((v) => Array.from(v.dataSync()));
    const z = tf.randomNormal([batch, 5], 0, 1, 'float32', 5) as tf.Tensor2D;
    const initial = snapshot();
    tf.tidy(() => generator.apply(z, { training: true, updateStatistics: false }));
    tf.tidy(() => generator.apply(z));
    expect(snapshot()).toEqual(initial);
    tf.tidy(() => generator.apply(z, { training: true }));
    expect(snapshot()).not.toEqual(initial);
    z.dispose();
  });

  it('one step lowers D\'s loss on its batches, then G\'s loss against the updated D; no leaks', () => {
    const m = models(6);
    const runner = createStepRunner({
      generator: { variables: m.generator.variables, optimizer: COURSE_ADAM },
      discriminator: { variables: m.discriminator.variables, optimizer: COURSE_ADAM },
    });
    const dcganStep = (x: tf.Tensor2D, rng: Rng) => runner.run({ epoch: 0, index: 0, globalStep: 0, x, rng }, (ctx) => ganStep(ctx, m));
    const real = realBatch(7);
    const z = tf.randomNormal([batch, 5], 0, 1, 'float32', new Rng(8).seed()) as tf.Tensor2D;
    // Losses in training mode (batch statistics), as the step sees them; statistics untouched.
    const dLoss = (fake: tf.Tensor2D) => tf.tidy(() => {
      const r = m.discriminator.apply(real, { training: true });
      const f = m.discriminator.apply(fake, { training: true });
      return tf.mul(0.5, tf.add(tf.mean(tf.softplus(tf.neg(r))), tf.mean(tf.softplus(f)))).dataSync()[0]!;
    });
    const gLoss = () => tf.tidy(() => {
      const f = m.generator.apply(z, { training: true, updateStatistics: false });
      return tf.mean(tf.softplus(tf.neg(m.discriminator.apply(f, { training: true })))).dataSync()[0]!;
    });
    const fakeBefore = m.generator.apply(z, { training: true, updateStatistics: false });
    const dBefore = dLoss(fakeBefore);
    const step = dcganStep(real, new Rng(8));
    expect(step.dLoss).toBeCloseTo(dBefore, 4);
    expect(dLoss(fakeBefore)).toBeLessThan(dBefore);
    expect(gLoss()).toBeLessThan(step.gLoss!);

    const rng = new Rng(9);
    dcganStep(real, rng);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) dcganStep(real, rng);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([real, z, fakeBefore]);
  });
});
