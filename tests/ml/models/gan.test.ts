import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src/ml/backend.ts';
import { Rng } from '../../../src/ml/random.ts';
import {
  createDiscriminator,
  createGanOptimizers,
  createGenerator,
  ganParamCount,
  ganStep,
  type Discriminator,
  type Generator,
} from '../../../src/ml/models/gan.ts';

beforeAll(async () => {
  await initBackend(process.env['TFJS_BACKEND'] ? {} : { backend: 'cpu' });
});

const batch = 6;

function tinyGan(seed: number, dropoutRate = 0) {
  const rng = new Rng(seed);
  return {
    generator: createGenerator({ latentDim: 3, hiddenDims: [8, 16], rng }),
    discriminator: createDiscriminator({ hiddenDims: [16, 8], dropoutRate, rng }),
  };
}

function realBatch(seed: number): tf.Tensor2D {
  return tf.randomUniform([batch, 784], -1, 1, 'float32', seed) as tf.Tensor2D;
}

/** Evaluation-mode losses on fixed inputs (no dropout). */
function dLossScalar(d: Discriminator, real: tf.Tensor2D, fake: tf.Tensor2D): tf.Scalar {
  return tf.mul(0.5, tf.add(tf.mean(tf.softplus(tf.neg(d.apply(real)))), tf.mean(tf.softplus(d.apply(fake)))));
}
function dLossOn(d: Discriminator, real: tf.Tensor2D, fake: tf.Tensor2D): number {
  return tf.tidy(() => dLossScalar(d, real, fake).dataSync()[0]!);
}
function gLossOn(g: Generator, d: Discriminator, z: tf.Tensor2D): number {
  return tf.tidy(() => tf.mean(tf.softplus(tf.neg(d.apply(g.apply(z))))).dataSync()[0]!);
}

describe('MLP GAN (gan.ts)', () => {
  it('has the course script\'s parameter counts (≈1.46 M each, as PyTorch counts them)', () => {
    const rng = new Rng(0);
    const models = { generator: createGenerator({ rng }), discriminator: createDiscriminator({ rng }) };
    expect(ganParamCount(models)).toEqual({ generator: 1_463_312, discriminator: 1_460_225 });
    models.generator.dispose();
    models.discriminator.dispose();
  });

  it('maps latents to tanh images and images to one logit', () => {
    const { generator, discriminator } = tinyGan(1, 0.3);
    tf.tidy(() => {
      const images = generator.apply(tf.randomNormal([batch, 3], 0, 1, 'float32', 5) as tf.Tensor2D);
      expect(images.shape).toEqual([batch, 784]);
      const values = images.dataSync();
      expect(Math.max(...values)).toBeLessThanOrEqual(1);
      expect(Math.min(...values)).toBeGreaterThanOrEqual(-1);
      expect(discriminator.apply(images).shape).toEqual([batch, 1]);
    });
    expect(() => discriminator.apply(tf.zeros([2, 784]) as tf.Tensor2D, { training: true })).toThrow(/seed/);
    expect(() => discriminator.apply(tf.zeros([2, 100]) as tf.Tensor2D)).toThrow(/expected input \[batch, 784\]/);
  });

  it('one step lowers D\'s loss on its batch, then G\'s loss against the updated D', () => {
    const models = tinyGan(2);
    const optimizers = createGanOptimizers();
    const real = realBatch(7);
    // ganStep draws z from the first seed of its Rng: replay it.
    const z = tf.randomNormal([batch, 3], 0, 1, 'float32', new Rng(3).seed()) as tf.Tensor2D;
    const fakeBefore = models.generator.apply(z);
    const dBefore = dLossOn(models.discriminator, real, fakeBefore);
    const step = ganStep(models, optimizers, real, new Rng(3));
    expect(step.dLoss).toBeCloseTo(dBefore, 5); // without dropout, the reported loss is the one optimised
    expect(dLossOn(models.discriminator, real, fakeBefore)).toBeLessThan(dBefore);
    // G's loss is the updated D's verdict on the fakes G made before its own update.
    expect(step.gLoss).toBeCloseTo(tf.tidy(() => tf.mean(tf.softplus(tf.neg(models.discriminator.apply(fakeBefore)))).dataSync()[0]!), 5);
    expect(gLossOn(models.generator, models.discriminator, z)).toBeLessThan(step.gLoss);
    for (const v of Object.values(step)) expect(Number.isFinite(v)).toBe(true);
    expect(step.dReal).toBeGreaterThan(0);
    expect(step.dFake).toBeLessThan(1);
    tf.dispose([real, z, fakeBefore]);
  });

  it('matches the textbook two-pass step (G forward again after the D update) to float precision', () => {
    const ours = tinyGan(11);
    const reference = tinyGan(11); // same seed: same initial weights
    const [optOurs, optRef] = [createGanOptimizers(), createGanOptimizers()];
    const real = realBatch(12);
    ganStep(ours, optOurs, real, new Rng(13));
    tf.tidy(() => {
      const z = tf.randomNormal([batch, 3], 0, 1, 'float32', new Rng(13).seed()) as tf.Tensor2D;
      const fake = reference.generator.apply(z);
      const d = tf.variableGrads(() => dLossScalar(reference.discriminator, real, fake), reference.discriminator.variables);
      optRef.discriminator.applyGradients(d.grads);
      const g = tf.variableGrads(
        () => tf.mean(tf.softplus(tf.neg(reference.discriminator.apply(reference.generator.apply(z))))) as tf.Scalar,
        reference.generator.variables,
      );
      optRef.generator.applyGradients(g.grads);
    });
    const all = (m: typeof ours) => [...m.generator.variables, ...m.discriminator.variables];
    all(ours).forEach((v, i) => {
      const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(v, all(reference)[i]!))).dataSync()[0]!);
      expect(diff).toBeLessThan(1e-6);
    });
    real.dispose();
  });

  it('leaks no tensors across steps (with dropout)', () => {
    const models = tinyGan(4, 0.3);
    const optimizers = createGanOptimizers();
    const real = realBatch(8);
    const rng = new Rng(5);
    ganStep(models, optimizers, real, rng); // creates Adam's moments
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) ganStep(models, optimizers, real, rng);
    expect(tf.memory().numTensors).toBe(before);
    real.dispose();
  });

  it('is reproducible from the seed', () => {
    const run = () => {
      const models = tinyGan(6, 0.3);
      const real = realBatch(9);
      const out = ganStep(models, createGanOptimizers(), real, new Rng(10));
      real.dispose();
      return out;
    };
    expect(run()).toEqual(run());
  });
});
