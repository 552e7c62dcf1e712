import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../../src/ml/random.ts';
import {
  accuracy,
  classifierFromWeights,
  classifierLogits,
  classifierLoss,
  classifierVariables,
  classifierWeights,
  createClassifier,
  disposeClassifier,
  featureDim,
  features,
  predict,
  trainClassifier,
} from '../../src/ml/models/classifier.ts';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function images(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * 784 }, () => rng.next());
}

describe('classifier', () => {
  it('has the documented shapes', () => {
    const model = createClassifier({ rng: new Rng(1), filters: [2, 3], hidden: 5 });
    expect(model.conv1.kernel.shape).toEqual([5, 5, 1, 2]);
    expect(model.conv2.kernel.shape).toEqual([5, 5, 2, 3]);
    expect(model.hidden.kernel.shape).toEqual([4 * 4 * 3, 5]);
    expect(featureDim(model)).toBe(5);
    const x = images(3, 2);
    expect(features(model, x)).toHaveLength(3 * 5);
    const labels = predict(model, x);
    expect(labels).toBeInstanceOf(Uint8Array);
    expect(labels).toHaveLength(3);
    for (const l of labels) expect(l).toBeLessThan(10);
    const logits = tf.tidy(() => classifierLogits(model, tf.tensor2d(x, [3, 784])).shape);
    expect(logits).toEqual([3, 10]);
    disposeClassifier(model);
  });

  it('is seeded: same seed, same weights', () => {
    const a = createClassifier({ rng: new Rng(7), filters: [2, 3], hidden: 5 });
    const b = createClassifier({ rng: new Rng(7), filters: [2, 3], hidden: 5 });
    const x = images(2, 3);
    expect(features(a, x)).toEqual(features(b, x));
    disposeClassifier(a);
    disposeClassifier(b);
  });

  it('does not leak tensors across creation, predict, features and training steps', () => {
    const before = tf.memory().numTensors;
    const model = createClassifier({ rng: new Rng(1), filters: [2, 3], hidden: 5 });
    expect(tf.memory().numTensors).toBe(before + 8); // the 8 variables only
    const x = images(5, 4);
    predict(model, x, 2);
    const afterFirst = tf.memory().numTensors;
    predict(model, x, 2);
    features(model, x, 3);
    expect(tf.memory().numTensors).toBe(afterFirst);
    const optimizer = tf.train.sgd(0.1);
    const xs = tf.tensor2d(x, [5, 784]);
    const ys = tf.tensor1d([0, 1, 2, 3, 4], 'int32');
    const step = (seed: number) =>
      tf.tidy(() => optimizer.minimize(() => classifierLoss(model, xs, ys, seed), true, classifierVariables(model))!.dataSync()[0]!);
    const first = step(1);
    const count = tf.memory().numTensors;
    let last = first;
    for (let i = 0; i < 5; i++) last = step(2 + i);
    expect(tf.memory().numTensors).toBe(count);
    expect(last).toBeLessThan(first); // it learns the 5 examples
    xs.dispose();
    ys.dispose();
    optimizer.dispose();
    disposeClassifier(model);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('round-trips through stored weights', () => {
    const model = createClassifier({ rng: new Rng(5), filters: [2, 3], hidden: 5 });
    const stored = classifierWeights(model);
    expect(stored.map((w) => w.name)).toEqual([
      'conv1/kernel', 'conv1/bias', 'conv2/kernel', 'conv2/bias',
      'hidden/kernel', 'hidden/bias', 'output/kernel', 'output/bias',
    ]);
    const rebuilt = classifierFromWeights(stored);
    const x = images(4, 6);
    expect(features(rebuilt, x)).toEqual(features(model, x));
    expect(predict(rebuilt, x)).toEqual(predict(model, x));
    expect(() => classifierFromWeights(stored.slice(1))).toThrow(/expected weights/);
    disposeClassifier(model);
    disposeClassifier(rebuilt);
  });
});

/** Two classes: a bright top half (0) or a bright bottom half (1), plus noise. */
function halves(count: number, seed: number) {
  const rng = new Rng(seed);
  const data = { images: new Float32Array(count * 784), labels: new Uint8Array(count), count };
  for (let i = 0; i < count; i++) {
    const label = i % 2;
    data.labels[i] = label;
    for (let p = 0; p < 784; p++) {
      const top = p < 392;
      data.images[i * 784 + p] = (top === (label === 0) ? 0.8 : 0.1) + 0.1 * rng.next();
    }
  }
  return data;
}

const tinyArchitecture = { filters: [2, 3] as [number, number], hidden: 8, dropoutRate: 0.1 };

describe('trainClassifier', () => {
  it('learns a tiny synthetic task through the shared trainer without leaking tensors', async () => {
    const data = halves(30, 11);
    const before = tf.memory().numTensors;
    const epochs: number[] = [];
    const steps: string[] = [];
    const { model, history } = await trainClassifier(data, {
      epochs: 10,
      batchSize: 8,
      rng: new Rng(12),
      learningRate: 0.01,
      learningRateDecay: 1,
      architecture: tinyArchitecture,
      onEpochEnd: (epoch, means) => {
        epochs.push(epoch);
        expect(Number.isFinite(means['loss'])).toBe(true);
      },
      onBatchEnd: (epoch, step, metrics) => {
        if (epoch === 0) steps.push(`${step} ${Number.isFinite(metrics['loss'])}`);
      },
    });
    expect(epochs).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(steps).toEqual(['0 true', '1 true', '2 true', '3 true']); // 30 images: 3 batches of 8 and the last 6
    expect(history.epochs).toHaveLength(10);
    expect(Object.keys(history.epochs[0]!).sort()).toEqual(['classifierGradNorm', 'loss']);
    expect(history.epochs[9]!['loss']!).toBeLessThan(history.epochs[0]!['loss']!);
    expect(accuracy(model, data.images, data.labels)).toBe(1);
    expect(tf.memory().numTensors).toBe(before + 8); // only the model's variables remain
    disposeClassifier(model);
  });

  it('applies the step decay per epoch (decay 0 freezes the weights after epoch 1) and is seeded', async () => {
    const data = halves(16, 13);
    const run = async (epochs: number, seed: number) => {
      const { model } = await trainClassifier(data, { epochs, batchSize: 8, rng: new Rng(seed), learningRate: 0.01, learningRateDecay: 0, architecture: tinyArchitecture });
      const weights = classifierWeights(model).map((w) => Buffer.from(w.data.buffer));
      disposeClassifier(model);
      return weights;
    };
    const one = await run(1, 5);
    expect(await run(3, 5)).toEqual(one); // epochs 2 and 3 run at 0.01 · 0^e = 0
    expect(await run(1, 6)).not.toEqual(one);
  });

  it('continues a given model and leaves it to the caller when training fails', async () => {
    const model = createClassifier({ ...tinyArchitecture, rng: new Rng(1) });
    const data = halves(4, 2);
    await expect(trainClassifier(data, { epochs: 1, batchSize: 2, rng: new Rng(3), model, learningRate: -1 })).rejects.toThrow(/learningRate must be > 0/);
    expect(model.conv1.kernel.isDisposed).toBe(false);
    const { model: same } = await trainClassifier(data, { epochs: 1, batchSize: 2, rng: new Rng(3), model });
    expect(same).toBe(model);
    disposeClassifier(model);
  });
});
