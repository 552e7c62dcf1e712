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

describe('trainClassifier', () => {
  it('learns a tiny synthetic task through the shared loop without leaking tensors', async () => {
    // Two classes: a bright top half (0) or a bright bottom half (1), plus noise.
    const rng = new Rng(11);
    const count = 32;
    const data = { images: new Float32Array(count * 784), labels: new Uint8Array(count), count };
    for (let i = 0; i < count; i++) {
      const label = i % 2;
      data.labels[i] = label;
      for (let p = 0; p < 784; p++) {
        const top = p < 392;
        data.images[i * 784 + p] = (top === (label === 0) ? 0.8 : 0.1) + 0.1 * rng.next();
      }
    }
    const before = tf.memory().numTensors;
    const epochs: number[] = [];
    const { model, history } = await trainClassifier(data, {
      epochs: 10,
      batchSize: 8,
      rng: new Rng(12),
      learningRate: 0.01,
      learningRateDecay: 1,
      architecture: { filters: [2, 3], hidden: 8, dropoutRate: 0.1 },
      onEpochEnd: (epoch, means) => {
        epochs.push(epoch);
        expect(Number.isFinite(means.loss)).toBe(true);
      },
    });
    expect(epochs).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(history.epochs).toHaveLength(10);
    expect(history.epochs[9]!.loss!).toBeLessThan(history.epochs[0]!.loss!);
    expect(accuracy(model, data.images, data.labels)).toBe(1);
    expect(tf.memory().numTensors).toBe(before + 8); // only the model's variables remain
    disposeClassifier(model);
  });
});
