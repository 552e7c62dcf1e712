import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src/ml/backend.ts';
import { Rng } from '../../../src/ml/random.ts';
import { createStepRunner, createTrainer, type NetworkSpec } from '../../../src/ml/trainer.ts';
import { createUNet, depthToSpace, NULL_CLASS, spaceToDepth, unetParamCount } from '../../../src/ml/models/unet.ts';
import {
  createFlowModel,
  emaDecayAt,
  flowMatchingLoss,
  flowMatchingStep,
  guidedField,
  heldOutLoss,
  integrate,
  sampleFlow,
  withEmaWeights,
  type FlowModel,
  type VelocityField,
} from '../../../src/ml/models/flow-matching.ts';

beforeAll(async () => {
  await initBackend(process.env['TFJS_BACKEND'] ? {} : { backend: 'cpu' });
});

const tiny = (seed: number) => createFlowModel({ channels: [4, 8], embedDim: 8, frequencies: 4, rng: new Rng(seed) });
const spec = (model: FlowModel): NetworkSpec => ({
  variables: model.net.variables,
  statistics: model.ema,
  optimizer: { learningRate: 1e-2, beta1: 0.9, beta2: 0.999 },
});
const values = (t: tf.Tensor) => Array.from(t.dataSync());

describe('space-to-depth', () => {
  it('puts pixel (2i + a, 2j + b) in channel 2a + b at (i, j), and depthToSpace inverts it', () => {
    const x = tf.tensor4d(Float32Array.from({ length: 2 * 28 * 28 }, (_, i) => i), [2, 28, 28, 1]);
    const folded = spaceToDepth(x);
    expect(folded.shape).toEqual([2, 14, 14, 4]);
    const f = folded.arraySync() as number[][][][];
    const img = x.arraySync() as number[][][][];
    for (const [n, i, j, a, b] of [[0, 0, 0, 0, 1], [1, 5, 9, 1, 0], [0, 13, 13, 1, 1], [1, 3, 7, 0, 0]] as const) {
      expect(f[n]![i]![j]![2 * a + b]).toBe(img[n]![2 * i + a]![2 * j + b]![0]);
    }
    expect(values(depthToSpace(folded))).toEqual(values(x));
    tf.dispose([x, folded]);
  });
});

describe('U-Net (unet.ts)', () => {
  it('maps [b, 784] to [b, 784], starts at 0 (zero-initialised output) and counts its parameters', () => {
    const net = createUNet({ channels: [4, 8], embedDim: 8, frequencies: 4, rng: new Rng(0) });
    const out = tf.tidy(() => net.apply(tf.randomNormal([3, 784], 0, 1, 'float32', 1) as tf.Tensor2D, tf.tensor1d([0, 0.5, 1]), tf.tensor1d([0, 3, NULL_CLASS])));
    expect(out.shape).toEqual([3, 784]);
    expect(Math.max(...values(out).map(Math.abs))).toBe(0);
    out.dispose();
    // By hand (c1 = 4, c2 = 8, E = 8, 8 time features):
    const conv = (k: number, i: number, o: number) => k * k * i * o + o;
    const dense = (i: number, o: number) => i * o + o;
    const res = (i: number, o: number) => conv(3, i, o) + dense(8, o) + conv(3, o, o) + (i === o ? 0 : conv(1, i, o));
    const expected = dense(8, 8) + dense(8, 8) + 11 * 8 + conv(3, 4, 4) + res(4, 4) + conv(3, 4, 8) + 2 * res(8, 8) + (16 * 8 * 4 + 4) + res(8, 4) + conv(3, 4, 4);
    expect(unetParamCount(net)).toBe(expected);
    net.dispose();
  });

  it('gives different outputs for different labels and times once its output layer is non-zero', () => {
    const model = tiny(1);
    const runner = createStepRunner({ velocity: spec(model) });
    const x = tf.randomUniform([8, 784], 0, 1, 'float32', 2) as tf.Tensor2D;
    const labels = Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
    for (let i = 0; i < 3; i++) runner.run({ epoch: 0, index: i, globalStep: i, x, labels, rng: new Rng(i) }, (ctx) => flowMatchingStep(ctx, model));
    const [a, b, c] = tf.tidy(() => {
      const z = tf.randomNormal([1, 784], 0, 1, 'float32', 3) as tf.Tensor2D;
      return [
        values(model.net.apply(z, tf.tensor1d([0.3]), tf.tensor1d([1]))),
        values(model.net.apply(z, tf.tensor1d([0.3]), tf.tensor1d([7]))),
        values(model.net.apply(z, tf.tensor1d([0.8]), tf.tensor1d([1]))),
      ];
    });
    expect(a).not.toEqual(b);
    expect(a).not.toEqual(c);
    runner.dispose();
    x.dispose();
    model.dispose();
  });
});

describe('flow matching (flow-matching.ts)', () => {
  it('creating and disposing a model leaves no tensor behind, and a training step leaks none', () => {
    const before = tf.memory().numTensors;
    tiny(0).dispose();
    expect(tf.memory().numTensors).toBe(before);
    const model = tiny(0);
    const runner = createStepRunner({ velocity: spec(model) });
    const x = tf.randomUniform([4, 784], 0, 1, 'float32', 2) as tf.Tensor2D;
    const step = (i: number) => runner.run({ epoch: 0, index: i, globalStep: i, x, labels: Uint8Array.from([1, 2, 3, 4]), rng: new Rng(i) }, (ctx) => flowMatchingStep(ctx, model));
    step(0);
    const after = tf.memory().numTensors;
    for (let i = 1; i < 4; i++) expect(Number.isFinite(step(i)['loss'])).toBe(true);
    expect(tf.memory().numTensors).toBe(after);
    runner.dispose();
    x.dispose();
    model.dispose();
  });

  it('the loss is mean ‖v(x_t) − (x₁ − x₀)‖² over batch and pixels, computed here by hand', () => {
    // A stand-in network v(x, t, y) = 0.5·x + t + y, evaluated in plain JS.
    const net = { apply: (x: tf.Tensor2D, t: tf.Tensor1D, y: tf.Tensor1D) => tf.add(tf.add(tf.mul(x, 0.5), tf.reshape(t, [-1, 1])), tf.reshape(y, [-1, 1])) as tf.Tensor2D };
    const rng = new Rng(4);
    const b = 3;
    const x1 = Float32Array.from({ length: b * 784 }, () => rng.next() * 2 - 1);
    const x0 = Float32Array.from({ length: b * 784 }, () => rng.normal());
    const t = [0.1, 0.5, 0.9];
    const y = [2, 0, NULL_CLASS];
    let sum = 0;
    for (let r = 0; r < b; r++) {
      for (let p = 0; p < 784; p++) {
        const i = r * 784 + p;
        const xt = (1 - t[r]!) * x0[i]! + t[r]! * x1[i]!;
        const v = 0.5 * xt + t[r]! + y[r]!;
        sum += (v - (x1[i]! - x0[i]!)) ** 2;
      }
    }
    const loss = tf.tidy(() => flowMatchingLoss(net, tf.tensor2d(x1, [b, 784]), tf.tensor2d(x0, [b, 784]), tf.tensor1d(t), tf.tensor1d(y)).dataSync()[0]!);
    expect(loss).toBeCloseTo(sum / (b * 784), 4);
  });

  it('Euler and Heun solve the ODE of Gaussian data N(m, s²): Heun to second order, Euler to first order', () => {
    // For x₁ ~ N(m, s²) and the linear path, x_t ~ N(t·m, σ²(t)) with σ²(t) = (1 − t)² + t²s², and
    // the marginal velocity is v(x, t) = m + (x − t·m)·(t·s² − (1 − t))/σ²(t); the exact flow maps
    // x₀ to m + s·x₀.
    const m = 0.7;
    const s = 0.3;
    const field: VelocityField = (x, t) => {
      const variance = (1 - t) ** 2 + t * t * s * s;
      return tf.add(m, tf.mul(tf.sub(x, t * m), (t * s * s - (1 - t)) / variance)) as tf.Tensor2D;
    };
    const x0 = tf.tensor2d([[-1.5, -0.2, 0, 0.4, 2]]);
    const exact = values(x0).map((v) => m + s * v);
    const error = (steps: number, method: 'euler' | 'heun') => {
      const x = integrate(field, x0, { steps, method });
      const e = Math.max(...values(x).map((v, i) => Math.abs(v - exact[i]!)));
      x.dispose();
      return e;
    };
    const h20 = error(20, 'heun');
    const h40 = error(40, 'heun');
    expect(h40).toBeLessThan(1e-3);
    expect(h20 / h40).toBeGreaterThan(3.5);
    expect(h20 / h40).toBeLessThan(4.5);
    const e20 = error(20, 'euler');
    const e40 = error(40, 'euler');
    expect(e20).toBeGreaterThan(1e-3);
    expect(e20 / e40).toBeGreaterThan(1.8);
    expect(e20 / e40).toBeLessThan(2.2);
    x0.dispose();
  });

  it('classifier-free guidance: w = 1 is the conditional net, w = 0 the unconditional one, w = 2 is 2·cond − uncond', () => {
    const model = tiny(3);
    const runner = createStepRunner({ velocity: spec(model) });
    const data = tf.randomUniform([6, 784], 0, 1, 'float32', 5) as tf.Tensor2D;
    for (let i = 0; i < 2; i++) runner.run({ epoch: 0, index: i, globalStep: i, x: data, labels: Uint8Array.from([0, 1, 2, 3, 4, 5]), rng: new Rng(i) }, (ctx) => flowMatchingStep(ctx, model, { labelDropout: 0.5 }));
    const labels = Float32Array.from([3, 8]);
    const x = tf.randomNormal([2, 784], 0, 1, 'float32', 6) as tf.Tensor2D;
    const cond = tf.tidy(() => values(model.net.apply(x, tf.fill([2], 0.4) as tf.Tensor1D, tf.tensor1d(labels))));
    const uncond = tf.tidy(() => values(model.net.apply(x, tf.fill([2], 0.4) as tf.Tensor1D, tf.fill([2], NULL_CLASS) as tf.Tensor1D)));
    const at = (w: number) => tf.tidy(() => values(guidedField(model.net, labels, w)(x, 0.4)));
    expect(at(1)).toEqual(cond);
    expect(at(0)).toEqual(uncond);
    at(2).forEach((v, i) => expect(v).toBeCloseTo(2 * cond[i]! - uncond[i]!, 4));
    tf.dispose([x, data]);
    runner.dispose();
    model.dispose();
  });

  it('EMA: the first update weighs the new weights by 0.9 (warm-up), and withEmaWeights puts the trained weights back', () => {
    expect(emaDecayAt(0.999, 0)).toBeCloseTo(0.1, 12);
    expect(emaDecayAt(0.999, 100_000)).toBe(0.999);
    const model = tiny(4);
    const initial = values(model.net.variables[0]!);
    const runner = createStepRunner({ velocity: spec(model) });
    const x = tf.randomUniform([4, 784], 0, 1, 'float32', 7) as tf.Tensor2D;
    runner.run({ epoch: 0, index: 0, globalStep: 0, x, labels: Uint8Array.from([1, 2, 3, 4]), rng: new Rng(8) }, (ctx) => flowMatchingStep(ctx, model));
    const trained = values(model.net.variables[0]!);
    const ema = values(model.ema[0]!);
    ema.forEach((v, i) => expect(v).toBeCloseTo(0.1 * initial[i]! + 0.9 * trained[i]!, 5));
    const seen = withEmaWeights(model, () => values(model.net.variables[0]!));
    expect(seen).toEqual(ema);
    expect(values(model.net.variables[0]!)).toEqual(trained);
    x.dispose();
    runner.dispose();
    model.dispose();
  });

  it('a run stopped after one epoch and resumed is bit-identical to an uninterrupted one (weights, EMA, samples)', async () => {
    const rng = new Rng(9);
    const data = Float32Array.from({ length: 16 * 784 }, () => rng.next());
    const labels = Uint8Array.from({ length: 16 }, (_, i) => i % 10);
    const fit = async (model: FlowModel, epochs: number, resumeFrom?: ReturnType<ReturnType<typeof createTrainer>['state']>) => {
      const trainer = createTrainer({ networks: { velocity: spec(model) }, data, labels, rowSize: 784, batchSize: 8, seed: 11, resumeFrom, step: (ctx) => flowMatchingStep(ctx, model) });
      await trainer.fit(epochs);
      const state = trainer.state();
      trainer.dispose();
      return state;
    };
    const straight = tiny(10);
    await fit(straight, 2);
    const first = tiny(10);
    const half = await fit(first, 1);
    first.dispose();
    const resumed = tiny(99); // other initial weights: everything must come from the state
    await fit(resumed, 2, half);
    straight.net.variables.forEach((v, i) => expect(values(resumed.net.variables[i]!)).toEqual(values(v)));
    straight.ema.forEach((v, i) => expect(values(resumed.ema[i]!)).toEqual(values(v)));
    const sample = (m: FlowModel) => sampleFlow(m, { labels: Float32Array.from([1, 2]), steps: 2, seed: 3, guidance: 2 });
    expect(Array.from(sample(resumed))).toEqual(Array.from(sample(straight)));
    straight.dispose();
    resumed.dispose();
  });

  it('samples are images in [0, 1], and the held-out loss is reproducible for a seed', () => {
    const model = tiny(12);
    const before = tf.memory().numTensors;
    const images = sampleFlow(model, { labels: Float32Array.from([0, 5, 9]), steps: 3, method: 'heun', seed: 1, guidance: 1.5, chunk: 2 });
    expect(images.length).toBe(3 * 784);
    expect(Math.min(...images)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...images)).toBeLessThanOrEqual(1);
    const loss = heldOutLoss(model.net, images, Uint8Array.from([0, 5, 9]), 4, { chunk: 2 });
    expect(heldOutLoss(model.net, images, Uint8Array.from([0, 5, 9]), 4, { chunk: 2 })).toBe(loss);
    expect(heldOutLoss(model.net, images, Uint8Array.from([0, 5, 9]), 5, { chunk: 2 })).not.toBe(loss);
    expect(tf.memory().numTensors).toBe(before);
    model.dispose();
  });
});
