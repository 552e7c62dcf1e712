import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend.ts';
import { COURSE_ADAM, createDiscriminator, createGenerator, ganStep } from '../../src/ml/models/gan.ts';
import { Rng } from '../../src/ml/random.ts';
import { createAdam, createTrainer, type TrainState } from '../../src/ml/trainer.ts';

beforeAll(async () => {
  await initBackend(process.env['TFJS_BACKEND'] ? {} : { backend: 'cpu' });
});

/** A tiny seeded GAN on 2-D data and a trainer for it; `resumeFrom` continues a saved state. */
function tinyGanTrainer(resumeFrom?: TrainState, dropoutRate = 0.3) {
  const rng = new Rng(1);
  const models = {
    generator: createGenerator({ latentDim: 2, hiddenDims: [8], outputDim: 2, outputActivation: 'linear', rng }),
    discriminator: createDiscriminator({ inputDim: 2, hiddenDims: [8], dropoutRate, rng }),
  };
  const data = new Float32Array(40 * 2).map((_, i) => Math.sin(i * 1.7));
  const trainer = createTrainer({
    networks: {
      generator: { variables: models.generator.variables, optimizer: COURSE_ADAM },
      discriminator: { variables: models.discriminator.variables, optimizer: COURSE_ADAM },
    },
    data,
    rowSize: 2,
    batchSize: 8,
    seed: 7,
    logEvery: 2,
    step: (ctx) => ganStep(ctx, models),
    resumeFrom,
  });
  const dispose = () => {
    trainer.dispose();
    models.generator.dispose();
    models.discriminator.dispose();
  };
  return { trainer, models, dispose };
}

describe('Adam (trainer.ts)', () => {
  it('matches tf.train.adam on a quadratic to float precision', () => {
    const ours = tf.variable(tf.tensor1d([1, -2, 3]));
    const theirs = tf.variable(tf.tensor1d([1, -2, 3]));
    const adam = createAdam([ours], COURSE_ADAM);
    const reference = tf.train.adam(COURSE_ADAM.learningRate, COURSE_ADAM.beta1, COURSE_ADAM.beta2, 1e-8);
    const loss = (x: tf.Variable) => () => tf.sum(tf.mul(tf.square(x), tf.tensor1d([1, 10, 100]))) as tf.Scalar;
    for (let i = 0; i < 20; i++) {
      tf.tidy(() => {
        const { grads } = tf.variableGrads(loss(ours), [ours]);
        adam.apply([grads[ours.name]!]);
        reference.minimize(loss(theirs), false, [theirs]);
      });
    }
    const diff = tf.tidy(() => tf.max(tf.abs(tf.sub(ours, theirs))).dataSync()[0]!);
    expect(diff).toBeLessThan(1e-6);
    expect(adam.step).toBe(20);
    adam.dispose();
    reference.dispose();
    tf.dispose([ours, theirs]);
  });
});

describe('createTrainer', () => {
  it('averages the recorded metrics per epoch, logs steps, and stores what onEpochEnd returns', async () => {
    const rng = new Rng(1);
    const w = tf.variable(tf.zeros([2]));
    const seen: number[] = [];
    const trainer = createTrainer({
      networks: { net: { variables: [w], optimizer: { learningRate: 0.1 } } },
      data: new Float32Array(12 * 2).map(() => rng.next()),
      rowSize: 2,
      batchSize: 4,
      seed: 3,
      logEvery: 2,
      step: (ctx) => {
        ctx.record('index', ctx.index);
        ctx.minimize('net', () => ({ loss: tf.mean(tf.square(tf.sub(ctx.x, w))) as tf.Scalar }));
      },
      onStepEnd: ({ index }) => void seen.push(index),
      onEpochEnd: (record) => ({ epochTimesTen: record.epoch * 10 }),
    });
    const history = await trainer.fit(2);
    expect(history.map((r) => r.epoch)).toEqual([1, 2]);
    expect(history.map((r) => r.eval)).toEqual([{ epochTimesTen: 10 }, { epochTimesTen: 20 }]);
    expect(history[0]!.train['index']).toBe(1); // mean of 0, 1, 2: 12 rows / batch 4
    expect(Object.keys(history[0]!.train).sort()).toEqual(['index', 'loss', 'netGradNorm']);
    expect(history[1]!.train['loss']!).toBeLessThan(history[0]!.train['loss']!);
    expect(seen).toEqual([0, 1, 2, 0, 1, 2]);
    expect(trainer.steps.map((s) => s.globalStep)).toEqual([0, 2, 4]);
    expect(await trainer.fit(2)).toEqual([]); // already done
    trainer.dispose();
    w.dispose();
  });

  it('leaks no tensors across epochs', async () => {
    const { trainer, dispose } = tinyGanTrainer();
    await trainer.fit(1);
    const before = tf.memory().numTensors;
    await trainer.fit(3);
    expect(tf.memory().numTensors).toBe(before);
    dispose();
  });

  it('a run stopped after epoch 2 and resumed from its state is bit-identical to an uninterrupted run', async () => {
    const straight = tinyGanTrainer();
    await straight.trainer.fit(4);
    const expected = straight.trainer.state();
    straight.dispose();

    const first = tinyGanTrainer();
    await first.trainer.fit(2);
    const saved = structuredClone(first.trainer.state()); // as the results store would keep it
    first.dispose();
    const resumed = tinyGanTrainer(saved);
    expect(resumed.trainer.epoch).toBe(2);
    await resumed.trainer.fit(4);
    const actual = resumed.trainer.state();
    resumed.dispose();

    expect(actual.epoch).toBe(4);
    for (const network of ['generator', 'discriminator']) {
      actual.weights[network]!.forEach((w, i) => expect(Buffer.from(w.buffer)).toEqual(Buffer.from(expected.weights[network]![i]!.buffer)));
      expect(actual.optimizers[network]!.step).toBe(expected.optimizers[network]!.step);
      actual.optimizers[network]!.m.forEach((m, i) => expect(Array.from(m)).toEqual(Array.from(expected.optimizers[network]!.m[i]!)));
      actual.optimizers[network]!.v.forEach((v, i) => expect(Array.from(v)).toEqual(Array.from(expected.optimizers[network]!.v[i]!)));
    }
    expect(actual.history.map((r) => r.train)).toEqual(expected.history.map((r) => r.train));
    expect(actual.steps).toEqual(expected.steps);
  });

  it('a different seed gives a different run; the same seed the same one', async () => {
    const run = async () => {
      const t = tinyGanTrainer();
      await t.trainer.fit(1);
      const w = t.trainer.state().weights['generator']![0]!;
      t.dispose();
      return Array.from(w);
    };
    expect(await run()).toEqual(await run());
  });

  it('rejects a state without the network it must restore', () => {
    const state: TrainState = { epoch: 1, weights: {}, optimizers: {}, history: [], steps: [] };
    expect(() => tinyGanTrainer(state)).toThrow(/no weights for network 'generator'/);
  });
});
