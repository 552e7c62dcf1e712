import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src/ml/backend.ts';
import { Rng } from '../../../src/ml/random.ts';
import {
  COURSE_ADAM,
  createDiscriminator,
  createGenerator,
  ganParamCount,
  ganStep,
  type Discriminator,
  type GanModels,
  type GanStepOptions,
  type Generator,
} from '../../../src/ml/models/gan.ts';
import { createAdam, createStepRunner, type Metrics } from '../../../src/ml/trainer.ts';

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

/** A step runner for G and D with the course's Adam; `step(x, rng)` runs one ganStep. */
function ganRunner(models: GanModels, options: GanStepOptions = {}) {
  const runner = createStepRunner({
    generator: { variables: models.generator.variables, optimizer: COURSE_ADAM },
    discriminator: { variables: models.discriminator.variables, optimizer: COURSE_ADAM },
  });
  return (x: tf.Tensor2D, rng: Rng): Metrics =>
    runner.run({ epoch: 0, index: 0, globalStep: 0, x, rng }, (ctx) => ganStep(ctx, models, options));
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
    const step1 = ganRunner(models);
    const real = realBatch(7);
    // ganStep draws z from the first seed of its Rng: replay it.
    const z = tf.randomNormal([batch, 3], 0, 1, 'float32', new Rng(3).seed()) as tf.Tensor2D;
    const fakeBefore = models.generator.apply(z);
    const dBefore = dLossOn(models.discriminator, real, fakeBefore);
    const step = step1(real, new Rng(3));
    expect(step.dLoss).toBeCloseTo(dBefore, 5); // without dropout, the reported loss is the one optimised
    expect(dLossOn(models.discriminator, real, fakeBefore)).toBeLessThan(dBefore);
    // G's loss is the updated D's verdict on the fakes G made before its own update.
    expect(step.gLoss).toBeCloseTo(tf.tidy(() => tf.mean(tf.softplus(tf.neg(models.discriminator.apply(fakeBefore)))).dataSync()[0]!), 5);
    expect(gLossOn(models.generator, models.discriminator, z)).toBeLessThan(step.gLoss!);
    expect(Object.keys(step).sort()).toEqual(['dFake', 'dLoss', 'dReal', 'discriminatorGradNorm', 'gLoss', 'generatorGradNorm']);
    for (const v of Object.values(step)) expect(Number.isFinite(v)).toBe(true);
    expect(step.generatorGradNorm).toBeGreaterThan(0);
    expect(step.dReal).toBeGreaterThan(0);
    expect(step.dFake).toBeLessThan(1);
    tf.dispose([real, z, fakeBefore]);
  });

  it('matches the textbook two-pass step (G forward again after the D update) to float precision', () => {
    const ours = tinyGan(11);
    const reference = tinyGan(11); // same seed: same initial weights
    const optRef = {
      generator: createAdam(reference.generator.variables, COURSE_ADAM),
      discriminator: createAdam(reference.discriminator.variables, COURSE_ADAM),
    };
    const real = realBatch(12);
    ganRunner(ours)(real, new Rng(13));
    const list = (vars: tf.Variable[], grads: tf.NamedTensorMap) => vars.map((v) => grads[v.name]!);
    tf.tidy(() => {
      const z = tf.randomNormal([batch, 3], 0, 1, 'float32', new Rng(13).seed()) as tf.Tensor2D;
      const fake = reference.generator.apply(z);
      const d = tf.variableGrads(() => dLossScalar(reference.discriminator, real, fake), reference.discriminator.variables);
      optRef.discriminator.apply(list(reference.discriminator.variables, d.grads));
      const g = tf.variableGrads(
        () => tf.mean(tf.softplus(tf.neg(reference.discriminator.apply(reference.generator.apply(z))))) as tf.Scalar,
        reference.generator.variables,
      );
      optRef.generator.apply(list(reference.generator.variables, g.grads));
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
    const step = ganRunner(models, { discriminatorSteps: 2, realLabel: 0.9 });
    const real = realBatch(8);
    const rng = new Rng(5);
    step(real, rng);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step(real, rng);
    expect(tf.memory().numTensors).toBe(before);
    real.dispose();
  });

  it('is reproducible from the seed', () => {
    const run = () => {
      const models = tinyGan(6, 0.3);
      const real = realBatch(9);
      const out = ganRunner(models)(real, new Rng(10));
      real.dispose();
      return out;
    };
    expect(run()).toEqual(run());
  });

  it('saturating loss: G minimises log(1 − D(G(z))), whose gradient is smaller than the non-saturating one\'s when D rejects the fakes', () => {
    const gradNorm = (generatorLoss: GanStepOptions['generatorLoss']) => {
      const models = tinyGan(21);
      // Make D reject every fake: a large negative output bias.
      const last = models.discriminator.variables.at(-1)!;
      last.assign(tf.fill(last.shape, -8));
      const real = realBatch(22);
      const out = ganRunner(models, { generatorLoss })(real, new Rng(23));
      real.dispose();
      return out;
    };
    const saturating = gradNorm('saturating');
    const nonSaturating = gradNorm('non-saturating');
    expect(saturating.dFake).toBeLessThan(0.01);
    expect(saturating.gLoss).toBeLessThan(0); // log(1 − D) < 0
    expect(nonSaturating.gLoss).toBeGreaterThan(4); // −log D large
    expect(saturating.generatorGradNorm).toBeLessThan(nonSaturating.generatorGradNorm! / 100);
  });

  it('one-sided label smoothing and k D-steps are the losses they claim', () => {
    const models = tinyGan(31);
    const real = realBatch(32);
    const rng = new Rng(33);
    // Replay: with k = 2 the step draws z₁ first (then the D seed, z₂, the D seed, the G seed).
    const z1 = tf.randomNormal([batch, 3], 0, 1, 'float32', new Rng(33).seed()) as tf.Tensor2D;
    const smoothed = (fake: tf.Tensor2D) => tf.tidy(() => {
      const r = models.discriminator.apply(real);
      const f = models.discriminator.apply(fake);
      // BCE(σ(l), 0.9) = softplus(l) − 0.9·l
      return tf.mul(0.5, tf.add(tf.mean(tf.sub(tf.softplus(r), tf.mul(r, 0.9))), tf.mean(tf.softplus(f)))).dataSync()[0]!;
    });
    const fake1 = models.generator.apply(z1);
    const before = smoothed(fake1);
    const step = ganRunner(models, { discriminatorSteps: 2, realLabel: 0.9 });
    const out = step(real, rng);
    // The recorded dLoss is the last D step's: on z₂'s fakes, after one D update on z₁'s.
    expect(smoothed(fake1)).toBeLessThan(before);
    expect(Number.isFinite(out.dLoss)).toBe(true);
    tf.dispose([real, z1, fake1]);
  });
});
