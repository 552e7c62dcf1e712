import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend.ts';
import { COURSE_ADAM, createDiscriminator, createGenerator, ganStep } from '../../src/ml/models/gan.ts';
import { Rng } from '../../src/ml/random.ts';
import { createAdam, createStepRunner, createTrainer, type TrainState } from '../../src/ml/trainer.ts';

beforeAll(async () => {
  await initBackend(process.env['TFJS_BACKEND'] ? {} : { backend: 'cpu' });
});

/**
 * A tiny seeded GAN on 2-D data and a trainer for it; `resumeFrom` continues a saved state,
 * `schedule` is both networks' learning-rate schedule.
 */
function tinyGanTrainer(resumeFrom?: TrainState, dropoutRate = 0.3, schedule?: (epoch: number) => number) {
  const rng = new Rng(1);
  const models = {
    generator: createGenerator({ latentDim: 2, hiddenDims: [8], outputDim: 2, outputActivation: 'linear', rng }),
    discriminator: createDiscriminator({ inputDim: 2, hiddenDims: [8], dropoutRate, rng }),
  };
  const data = new Float32Array(40 * 2).map((_, i) => Math.sin(i * 1.7));
  const trainer = createTrainer({
    networks: {
      generator: { variables: models.generator.variables, optimizer: COURSE_ADAM, learningRateSchedule: schedule },
      discriminator: { variables: models.discriminator.variables, optimizer: COURSE_ADAM, learningRateSchedule: schedule },
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

  it('setLearningRate sets α of the next updates; the rate round-trips through state()', () => {
    const x = tf.tidy(() => tf.variable(tf.tensor1d([1, -2])));
    const adam = createAdam([x], { learningRate: 0.1 });
    expect(adam.learningRate).toBe(0.1);
    adam.setLearningRate(0);
    tf.tidy(() => adam.apply([tf.tensor1d([0.5, 0.5])]));
    expect(Array.from(x.dataSync())).toEqual([1, -2]); // α = 0: no move, but the moments and t advance
    expect(adam.step).toBe(1);
    expect(Array.from(adam.state().m[0]!)).not.toEqual([0, 0]);
    adam.setLearningRate(0.05);
    tf.tidy(() => adam.apply([tf.tensor1d([0.5, 0.5])]));
    expect(x.dataSync()[0]).toBeLessThan(1);
    const saved = adam.state();
    expect(saved.learningRate).toBe(0.05);
    const restored = createAdam([x], { learningRate: 0.1 }, saved);
    expect(restored.learningRate).toBe(0.05);
    expect(restored.options.learningRate).toBe(0.1); // the base stays the option
    const older = createAdam([x], { learningRate: 0.1 }, { step: saved.step, m: saved.m, v: saved.v }); // saved before schedules
    expect(older.learningRate).toBe(0.1);
    expect(() => adam.setLearningRate(-1)).toThrow(/learningRate must be finite and >= 0/);
    for (const a of [adam, restored, older]) a.dispose();
    x.dispose();
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

  it('a learning-rate schedule sets each epoch\'s rate, and a run resumed mid-schedule is bit-identical', async () => {
    const halving = (epoch: number) => 0.5 ** epoch;
    const straight = tinyGanTrainer(undefined, 0.3, halving);
    await straight.trainer.fit(3);
    const expected = straight.trainer.state();
    straight.dispose();
    expect(expected.optimizers['generator']!.learningRate).toBe(COURSE_ADAM.learningRate * 0.25); // epoch 2 (0-based)

    const constant = tinyGanTrainer();
    await constant.trainer.fit(3);
    const unscheduled = constant.trainer.state();
    constant.dispose();
    expect(unscheduled.optimizers['generator']!.learningRate).toBe(COURSE_ADAM.learningRate);
    expect(expected.history[0]!.train).toEqual(unscheduled.history[0]!.train); // epoch 0 runs at ×1
    expect(expected.history[1]!.train).not.toEqual(unscheduled.history[1]!.train);

    const first = tinyGanTrainer(undefined, 0.3, halving);
    await first.trainer.fit(1);
    const saved = structuredClone(first.trainer.state());
    first.dispose();
    const resumed = tinyGanTrainer(saved, 0.3, halving);
    await resumed.trainer.fit(3);
    const actual = resumed.trainer.state();
    resumed.dispose();
    for (const network of ['generator', 'discriminator']) {
      actual.weights[network]!.forEach((w, i) => expect(Buffer.from(w.buffer)).toEqual(Buffer.from(expected.weights[network]![i]!.buffer)));
      expect(actual.optimizers[network]!.learningRate).toBe(expected.optimizers[network]!.learningRate);
    }
    expect(actual.history.map((r) => r.train)).toEqual(expected.history.map((r) => r.train));
  });

  it('minimize names the network or the loss it did not find', () => {
    const w = tf.tidy(() => tf.variable(tf.scalar(1)));
    const x = tf.zeros([1, 1]) as tf.Tensor2D;
    const runner = createStepRunner({ net: { variables: [w], optimizer: { learningRate: 0.1 } } });
    const base = { epoch: 0, index: 0, globalStep: 0, x, rng: new Rng(0) };
    expect(() => runner.run(base, (ctx) => ctx.minimize('net', () => ({ cost: tf.square(w) as tf.Scalar })))).toThrow(/returned cost, expected 'loss'/);
    expect(() => runner.run(base, (ctx) => ctx.minimize('other', () => ({ loss: tf.square(w) as tf.Scalar })))).toThrow(/no network 'other' \(have net\)/);
    runner.dispose();
    tf.dispose([w, x]);
  });

  it('rejects a state without the network it must restore', () => {
    const state: TrainState = { epoch: 1, weights: {}, optimizers: {}, history: [], steps: [] };
    expect(() => tinyGanTrainer(state)).toThrow(/no weights for network 'generator'/);
  });
});
