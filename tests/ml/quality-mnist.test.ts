/**
 * The quality metric on real MNIST with a briefly trained classifier on the wasm backend
 * (≈ 20–40 s on 2 busy cores). Full-size measurements: bench/classifier.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend.ts';
import { loadMnist } from '../../src/ml/data/mnist.ts';
import { frechetDistance, sampleQuality } from '../../src/ml/metrics/quality.ts';
import { disposeClassifier, featureDim, features, trainClassifier, type Classifier } from '../../src/ml/models/classifier.ts';
import { Rng } from '../../src/ml/random.ts';

let model: Classifier;
// Random split of the test set (its halves come from different NIST writer pools).
const test = loadMnist({ split: 'test', shuffleSeed: 1, limit: 4000 });
const train = loadMnist({ split: 'train', shuffleSeed: 2, limit: 4000 });
const half = 2000 * 784;

beforeAll(async () => {
  await initBackend({ backend: 'wasm' });
  ({ model } = await trainClassifier(train, { epochs: 1, batchSize: 64, rng: new Rng(3) }));
}, 120_000);

afterAll(() => disposeClassifier(model));

describe('sample quality on MNIST', () => {
  it('test vs other test images: FD near 0; uniform noise: FD far above', () => {
    const dim = featureDim(model);
    const a = features(model, test.images.subarray(0, half));
    const b = features(model, test.images.subarray(half));
    const rng = new Rng(4);
    const noise = Float32Array.from({ length: 2000 * 784 }, () => rng.next());
    const fdReal = frechetDistance(a, b, dim);
    const fdNoise = frechetDistance(features(model, noise), b, dim);
    expect(fdReal).toBeGreaterThanOrEqual(0);
    expect(fdReal).toBeLessThan(0.05 * fdNoise);
  });

  it('sampleQuality ties it together: real images score well, noise badly', () => {
    const reference = { features: features(model, test.images.subarray(half)), train: train.images };
    const real = sampleQuality(model, test.images.subarray(0, 500 * 784), reference);
    const rng = new Rng(5);
    const noise = sampleQuality(model, Float32Array.from({ length: 500 * 784 }, () => rng.next()), reference);
    expect(real.histogram.reduce((s, c) => s + c, 0)).toBe(500);
    expect(real.digitsCovered).toBe(10);
    expect(real.entropy).toBeGreaterThan(2.2);
    expect(real.classifierFD).toBeLessThan(0.1 * noise.classifierFD);
    expect(real.meanNearest).toBeLessThan(noise.meanNearest);
    expect(noise.entropy).toBeLessThan(real.entropy);
    // The same images in [−1, 1] score the same.
    const pm1 = sampleQuality(model, test.images.subarray(0, 500 * 784).map((v) => v * 2 - 1), reference, { range: 'pm1' });
    expect(pm1.histogram).toEqual(real.histogram);
    expect(pm1.classifierFD).toBeCloseTo(real.classifierFD, 2);
  });
});
