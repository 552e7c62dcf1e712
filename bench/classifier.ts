/**
 * Measures the report's referee classifier on this machine: time per epoch at batch 128 on
 * the chosen backend (wasm unless TFJS_BACKEND says otherwise), test accuracy after each
 * epoch, and the cost and sanity of the sample-quality metric on real data:
 * FD(test half A, test half B) should be near 0, FD(uniform noise, test) far above it.
 * The halves are a random split: MNIST's first 5000 test images come from NIST SD-3 and
 * the last 5000 from SD-1 (different writers), so the in-order halves differ measurably.
 *
 *   npx tsx bench/classifier.ts            # 4 epochs on all 60 000 training images
 *   EPOCHS=5 LIMIT=6000 SEED=1 LR=2e-3 DECAY=0.7 ARCH='{"filters":[32,64]}' npx tsx bench/classifier.ts
 *
 * Prints one JSON line per measurement.
 */
import { pathToFileURL } from 'node:url';
import { initBackend } from '../src/ml/backend.ts';
import { loadMnist } from '../src/ml/data/mnist.ts';
import { frechetDistance, labelStats, nearestDistances } from '../src/ml/metrics/quality.ts';
import { accuracy, disposeClassifier, type ClassifierOptions, featureDim, features, predict, trainClassifier } from '../src/ml/models/classifier.ts';
import { Rng } from '../src/ml/random.ts';

export interface ClassifierBenchOptions {
  epochs: number;
  /** Training images used (default all 60 000). */
  limit?: number;
  seed: number;
  learningRateDecay?: number;
  learningRate?: number;
  architecture?: Omit<ClassifierOptions, 'rng'>;
  log: (row: Record<string, unknown>) => void;
}

export async function benchClassifier(options: ClassifierBenchOptions): Promise<void> {
  const backend = await initBackend();
  const train = loadMnist({ split: 'train', ...(options.limit ? { limit: options.limit } : {}) });
  const test = loadMnist({ split: 'test', shuffleSeed: options.seed });
  let epochStart = performance.now();
  const { model } = await trainClassifier(train, {
    epochs: options.epochs,
    batchSize: 128,
    rng: new Rng(options.seed),
    ...(options.learningRateDecay !== undefined ? { learningRateDecay: options.learningRateDecay } : {}),
    ...(options.learningRate !== undefined ? { learningRate: options.learningRate } : {}),
    ...(options.architecture ? { architecture: options.architecture } : {}),
    onEpochEnd: (epoch, means, m) => {
      const seconds = (performance.now() - epochStart) / 1000;
      const evalStart = performance.now();
      const testAccuracy = accuracy(m, test.images, test.labels);
      const evalSeconds = (performance.now() - evalStart) / 1000;
      options.log({ backend, epoch: epoch + 1, trainImages: train.count, batchSize: 128, seconds, loss: means.loss, testAccuracy, evalSeconds });
      epochStart = performance.now();
    },
  });

  // The metric on real data.
  const dim = featureDim(model);
  let t = performance.now();
  const testFeatures = features(model, test.images); // [10 000, dim]
  const featureSeconds = (performance.now() - t) / 1000;
  const half = 5000 * dim;
  t = performance.now();
  const fdReal = frechetDistance(testFeatures.subarray(0, half), testFeatures.subarray(half), dim);
  const fdSeconds = (performance.now() - t) / 1000;
  const rng = new Rng(options.seed + 1);
  const noise = Float32Array.from({ length: 5000 * 784 }, () => rng.next());
  const fdNoise = frechetDistance(features(model, noise), testFeatures.subarray(half), dim);
  const trainFeatures = features(model, train.images.subarray(0, 5000 * 784));
  const fdTrain = frechetDistance(trainFeatures, testFeatures.subarray(half), dim);
  options.log({ metric: 'FD', dim, fdTestVsTest: fdReal, fdTrainVsTest: fdTrain, fdNoiseVsTest: fdNoise, featureSecondsPer10k: featureSeconds, fdSeconds });
  options.log({ metric: 'labels', test: labelStats(predict(model, test.images)), noise: labelStats(predict(model, noise)) });
  t = performance.now();
  const nearest = nearestDistances(test.images.subarray(0, 1000 * 784), train.images, 784);
  const nearestSeconds = (performance.now() - t) / 1000;
  const meanNearest = nearest.reduce((a, b) => a + b, 0) / nearest.length;
  options.log({ metric: 'nearest', samples: 1000, trainImages: train.count, meanNearest, seconds: nearestSeconds });
  disposeClassifier(model);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const env = process.env;
  await benchClassifier({
    epochs: Number(env['EPOCHS'] ?? 4),
    ...(env['LIMIT'] ? { limit: Number(env['LIMIT']) } : {}),
    seed: Number(env['SEED'] ?? 0),
    ...(env['DECAY'] ? { learningRateDecay: Number(env['DECAY']) } : {}),
    ...(env['LR'] ? { learningRate: Number(env['LR']) } : {}),
    ...(env['ARCH'] ? { architecture: JSON.parse(env['ARCH']) as Omit<ClassifierOptions, 'rng'> } : {}),
    log: (row) => console.log(JSON.stringify(row)),
  });
}
