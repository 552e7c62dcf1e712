/**
 * A small MNIST CNN: the report's referee. Its penultimate layer gives the features of the
 * Fréchet distance (metrics/quality.ts) and its predictions the label statistics of
 * generated samples.
 *
 * Architecture (LeNet-5 style: LeCun et al. 1998, "Gradient-Based Learning Applied to
 * Document Recognition", §II.B; ReLU, max-pooling and dropout as in Srivastava et al.
 * 2014, "Dropout", §6.1.1):
 *   [batch, 28, 28, 1]
 *   → conv 5×5, 16, ReLU  → [batch, 24, 24, 16] → max-pool 2 → [batch, 12, 12, 16]
 *   → conv 5×5, 32, ReLU  → [batch,  8,  8, 32] → max-pool 2 → [batch,  4,  4, 32]
 *   → flatten [batch, 512] → dense 128, ReLU (the features) → dropout 0.5
 *   → dense 10 (logits)
 * ≈ 80 k parameters and ≈ 1.1 M multiply-adds per image forward.
 *
 * Why this size (bench/classifier.ts, wasm backend, batch 128, 2 cores shared with other
 * jobs): with the defaults of `trainClassifier` (Adam 2e-3, ×0.7 per epoch, He init) it
 * reached 99.09 % / 99.12 % test accuracy after 4 epochs (seeds 0 / 1; 99.03 % / 98.95 %
 * after 3) in the earlier train.ts loop, at 49–150 s per epoch depending on the machine's
 * load. Through the shared trainer (other batch-order and dropout streams) seed 0 gives
 * 98.44 / 98.70 / 98.79 / 99.16 % after epochs 1–4, at 61–69 s of CPU per epoch.
 * Doubling the channels to 32/64 cost 1.7–2× per step and was no better after one epoch;
 * Adam 1e-3 or PyTorch-default init stayed at 98.8–98.9 % after 4–5 epochs.
 *
 * Inputs are images [n, 784] with pixels in [0, 1] (loadMnist's `range: '01'`); convert
 * samples of models trained on [−1, 1] first (sampleQuality's `range: 'pm1'` does).
 *
 * Initialisation: He-uniform for the ReLU layers (He et al. 2015, "Delving Deep into
 * Rectifiers", §2.2), Glorot-uniform for the output layer (Glorot & Bengio 2010, eq. 16),
 * zero biases; fanIn = kh·kw·inChannels for convolutions.
 *
 * Variables are left unnamed (tfjs numbers them) so that several classifiers can live in
 * one process, e.g. a trained one and its copy rebuilt from stored weights.
 */
import * as tf from '@tensorflow/tfjs';
import { assert } from '../assert.ts';
import { IMAGE_PIXELS, IMAGE_SIDE } from '../data/image.ts';
import type { Rng } from '../random.ts';
import { createTrainer, type Metrics, type StepContext, type Trainer } from '../trainer.ts';
import type { Dense } from './dense.ts';

export const NUM_CLASSES = 10;

export interface Conv {
  /** [kh, kw, inChannels, outChannels] */
  kernel: tf.Variable<tf.Rank.R4>;
  /** [outChannels] */
  bias: tf.Variable<tf.Rank.R1>;
}

export interface Classifier {
  conv1: Conv;
  conv2: Conv;
  /** [512, hidden]: its ReLU output is the feature vector. */
  hidden: Dense;
  /** [hidden, 10] logits. */
  output: Dense;
  dropoutRate: number;
}

export interface ClassifierOptions {
  rng: Rng;
  /** Channels of the two convolutions, default [16, 32]. */
  filters?: [number, number];
  /** Side of both convolution kernels, default 5. */
  kernelSize?: number;
  /** Width of the feature layer, default 128. */
  hidden?: number;
  /** Dropout rate before the output layer, default 0.5. */
  dropoutRate?: number;
}

/** Side of the last feature map: conv k×k (valid) → pool 2 → conv k×k → pool 2; k = 5: 28 → 24 → 12 → 8 → 4. */
export function finalSize(kernelSize: number): number {
  return Math.floor((Math.floor((IMAGE_SIDE - kernelSize + 1) / 2) - kernelSize + 1) / 2);
}

export function createClassifier(options: ClassifierOptions): Classifier {
  const [f1, f2] = options.filters ?? [16, 32];
  const hidden = options.hidden ?? 128;
  const k = options.kernelSize ?? 5;
  const { rng } = options;
  return keepVariables(() => ({
    conv1: createLayer([k, k, 1, f1], 'he', rng),
    conv2: createLayer([k, k, f1, f2], 'he', rng),
    hidden: createLayer([finalSize(k) ** 2 * f2, hidden], 'he', rng),
    output: createLayer([hidden, NUM_CLASSES], 'glorot', rng),
    dropoutRate: options.dropoutRate ?? 0.5,
  }));
}

/**
 * Runs `build` in a tidy scope: the initial-value tensors it creates are disposed, the
 * variables (which share their data and which tidy never disposes) stay.
 */
function keepVariables<T>(build: () => T): T {
  let result: T | undefined;
  tf.tidy(() => {
    result = build();
  });
  return result!;
}

/**
 * Kernel ~ U(−b, b) with b = √(6/fanIn) ('he', for layers followed by ReLU) or
 * √(6/(fanIn + fanOut)) ('glorot', the linear output layer); bias 0. fanIn is the product
 * of all but the last kernel axis.
 */
function createLayer<R extends tf.Rank.R2 | tf.Rank.R4>(
  shape: number[],
  init: 'he' | 'glorot',
  rng: Rng,
): { kernel: tf.Variable<R>; bias: tf.Variable<tf.Rank.R1> } {
  const fanIn = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  const fanOut = shape[shape.length - 1]!;
  const bound = Math.sqrt(6 / (init === 'he' ? fanIn : fanIn + fanOut));
  return {
    kernel: tf.variable(tf.randomUniform<tf.Rank>(shape, -bound, bound, 'float32', rng.seed()) as tf.Tensor<R>),
    bias: tf.variable(tf.zeros([fanOut])),
  };
}

export function classifierVariables(model: Classifier): tf.Variable[] {
  return [model.conv1.kernel, model.conv1.bias, model.conv2.kernel, model.conv2.bias,
    model.hidden.kernel, model.hidden.bias, model.output.kernel, model.output.bias];
}

export function disposeClassifier(model: Classifier): void {
  for (const v of classifierVariables(model)) v.dispose();
}

/** Width of the feature vector (the penultimate layer). */
export function featureDim(model: Classifier): number {
  return model.hidden.kernel.shape[1];
}

/** Features [batch, hidden] of images [batch, 784]. */
export function classifierFeatures(model: Classifier, images: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => {
    const [batch, pixels] = images.shape;
    assert(pixels === IMAGE_PIXELS, `classifier: expected images [batch, 784], got [${batch}, ${pixels}]`);
    const x = tf.reshape<tf.Rank.R4>(images, [batch, IMAGE_SIDE, IMAGE_SIDE, 1]); // [batch, 28, 28, 1]
    const h1 = tf.maxPool(convRelu(model.conv1, x), 2, 2, 'valid'); // [batch, 12, 12, f1]
    const h2 = tf.maxPool(convRelu(model.conv2, h1), 2, 2, 'valid'); // [batch, 4, 4, f2]
    const flat = h2.reshape([batch, -1]) as tf.Tensor2D; // [batch, 512]
    return tf.fused.matMul({ a: flat, b: model.hidden.kernel, bias: model.hidden.bias, activation: 'relu' }) as tf.Tensor2D; // [batch, hidden]
  });
}

/**
 * Logits [batch, 10]. With `dropoutSeed` the features go through dropout (training);
 * without it the network is deterministic (evaluation).
 */
export function classifierLogits(model: Classifier, images: tf.Tensor2D, dropoutSeed?: number): tf.Tensor2D {
  return tf.tidy(() => {
    let h = classifierFeatures(model, images); // [batch, hidden]
    if (dropoutSeed !== undefined && model.dropoutRate > 0) h = tf.dropout(h, model.dropoutRate, undefined, dropoutSeed) as tf.Tensor2D;
    return tf.fused.matMul({ a: h, b: model.output.kernel, bias: model.output.bias }) as tf.Tensor2D; // [batch, 10]
  });
}

/** Mean softmax cross-entropy of a batch; `labels` are digits [batch]. */
export function classifierLoss(model: Classifier, images: tf.Tensor2D, labels: tf.Tensor1D, dropoutSeed?: number): tf.Scalar {
  return tf.tidy(() => {
    const logits = classifierLogits(model, images, dropoutSeed); // [batch, 10]
    const oneHot = tf.oneHot(labels.toInt(), NUM_CLASSES); // [batch, 10]
    return tf.losses.softmaxCrossEntropy(oneHot, logits) as tf.Scalar;
  });
}

function convRelu(conv: Conv, x: tf.Tensor4D): tf.Tensor4D {
  return tf.fused.conv2d({ x, filter: conv.kernel, bias: conv.bias, strides: 1, pad: 'valid', activation: 'relu' });
}

/** Runs `fn` on chunks of `images` ([n, 784]) and concatenates the rows it returns. */
function mapChunks<T extends Float32Array | Uint8Array>(
  images: Float32Array,
  width: number,
  make: (n: number) => T,
  fn: (chunk: tf.Tensor2D) => tf.Tensor,
  chunkSize: number,
): T {
  assert(images.length % IMAGE_PIXELS === 0, `classifier: images.length (${images.length}) must be a multiple of ${IMAGE_PIXELS}`);
  const n = images.length / IMAGE_PIXELS;
  const out = make(n * width);
  for (let start = 0; start < n; start += chunkSize) {
    const size = Math.min(chunkSize, n - start);
    const result = tf.tidy(() => fn(tf.tensor2d(images.subarray(start * IMAGE_PIXELS, (start + size) * IMAGE_PIXELS), [size, IMAGE_PIXELS])));
    out.set(result.dataSync(), start * width);
    result.dispose();
  }
  return out;
}

/** Penultimate-layer features of images [n, 784] → Float32Array [n, featureDim]. */
export function features(model: Classifier, images: Float32Array, chunkSize = 1000): Float32Array {
  const dim = featureDim(model);
  return mapChunks(images, dim, (n) => new Float32Array(n), (x) => classifierFeatures(model, x), chunkSize);
}

/** Predicted digits of images [n, 784] → Uint8Array [n]. */
export function predict(model: Classifier, images: Float32Array, chunkSize = 1000): Uint8Array {
  return mapChunks(images, 1, (n) => new Uint8Array(n), (x) => tf.argMax(classifierLogits(model, x), 1), chunkSize);
}

/** Fraction of `images` whose predicted digit equals `labels`. */
export function accuracy(model: Classifier, images: Float32Array, labels: Uint8Array): number {
  const predicted = predict(model, images);
  assert(predicted.length === labels.length, `classifier: got ${predicted.length} images and ${labels.length} labels`);
  let correct = 0;
  for (let i = 0; i < labels.length; i++) if (predicted[i] === labels[i]) correct++;
  return correct / labels.length;
}

// ---------------------------------------------------------------------------------------
// Training

export interface ClassifierData {
  /** [count, 784], pixels in [0, 1] */
  images: Float32Array;
  /** [count], digits */
  labels: Uint8Array;
  count: number;
}

export interface TrainClassifierOptions {
  epochs: number;
  /** Default 128. */
  batchSize?: number;
  /** Draws the initial weights (unless `model` is given) and the trainer's seed (batch order, dropout masks). */
  rng: Rng;
  /** Adam step size of the first epoch, default 2e-3. */
  learningRate?: number;
  /**
   * Step decay: epoch e uses learningRate · learningRateDecay^e (default 0.7, the "StepLR
   * γ = 0.7" of PyTorch's MNIST example). 1 keeps the rate constant.
   */
  learningRateDecay?: number;
  /** Architecture of a new model (ignored when `model` is given). */
  architecture?: Omit<ClassifierOptions, 'rng'>;
  /** Continue training this model instead of creating one. */
  model?: Classifier;
  /** After each epoch (0-based), with the epoch's means of the step metrics (`loss`, `classifierGradNorm`). */
  onEpochEnd?: (epoch: number, means: Metrics, model: Classifier) => void | Promise<void>;
  /** After each step (0-based within its epoch), with its metrics. */
  onBatchEnd?: (epoch: number, step: number, metrics: Metrics) => void;
}

export interface ClassifierHistory {
  /** Per epoch, the means of the step metrics (`loss`, `classifierGradNorm`). */
  epochs: Metrics[];
}

/**
 * Trains with Adam on softmax cross-entropy, shuffled mini-batches (the last, short one
 * included), dropout on the features, through the shared trainer (trainer.ts) with a
 * step-decay schedule. Returns the model and its loss history.
 */
export async function trainClassifier(
  data: ClassifierData,
  options: TrainClassifierOptions,
): Promise<{ model: Classifier; history: ClassifierHistory }> {
  const { images, labels, count } = data;
  assert(images.length === count * IMAGE_PIXELS, `classifier: images hold ${images.length / IMAGE_PIXELS} rows, count is ${count}`);
  assert(labels.length === count, `classifier: labels hold ${labels.length} entries, count is ${count}`);
  const decay = options.learningRateDecay ?? 0.7;
  const model = options.model ?? createClassifier({ ...options.architecture, rng: options.rng.fork('classifier/init') });
  const { onBatchEnd, onEpochEnd } = options;
  let trainer: Trainer | undefined;
  try {
    trainer = createTrainer({
      networks: {
        classifier: {
          variables: classifierVariables(model),
          optimizer: { learningRate: options.learningRate ?? 2e-3 },
          learningRateSchedule: (epoch) => decay ** epoch,
        },
      },
      data: images,
      rowSize: IMAGE_PIXELS,
      labels,
      batchSize: options.batchSize ?? 128,
      dropLast: false,
      seed: options.rng.fork('classifier/trainer').seed(),
      step: (ctx) => classifierStep(ctx, model),
      onStepEnd: onBatchEnd ? ({ epoch, index, metrics }) => onBatchEnd(epoch, index, metrics) : undefined,
      onEpochEnd: onEpochEnd ? async (record) => void (await onEpochEnd(record.epoch - 1, record.train, model)) : undefined,
    });
    await trainer.fit(options.epochs);
    return { model, history: { epochs: trainer.history.map((r) => r.train) } };
  } catch (error) {
    if (!options.model) disposeClassifier(model);
    throw error;
  } finally {
    trainer?.dispose();
  }
}

/** One trainer step: softmax cross-entropy of the batch `ctx.x` with dropout drawn from `ctx.rng`. */
export function classifierStep(ctx: Pick<StepContext, 'x' | 'labels' | 'rng' | 'minimize'>, model: Classifier): void {
  const { labels } = ctx;
  assert(labels !== undefined && labels.length === ctx.x.shape[0], 'classifier: the trainer must be given labels');
  const seed = ctx.rng.seed();
  ctx.minimize('classifier', () => ({ loss: classifierLoss(model, ctx.x, tf.tensor1d(Int32Array.from(labels), 'int32'), seed) }));
}

// ---------------------------------------------------------------------------------------
// Storing and rebuilding

export interface StoredWeight {
  name: string;
  shape: number[];
  data: Float32Array;
}

const WEIGHT_NAMES = [
  'conv1/kernel', 'conv1/bias', 'conv2/kernel', 'conv2/bias',
  'hidden/kernel', 'hidden/bias', 'output/kernel', 'output/bias',
] as const;

/** Plain copies of all weights, in a fixed order, for a report cell to store. */
export function classifierWeights(model: Classifier): StoredWeight[] {
  return classifierVariables(model).map((v, i) => ({
    name: WEIGHT_NAMES[i]!,
    shape: [...v.shape],
    data: Float32Array.from(v.dataSync() as Float32Array),
  }));
}

/** Rebuilds a classifier from `classifierWeights` output (sizes come from the shapes). */
export function classifierFromWeights(weights: readonly StoredWeight[], options: { dropoutRate?: number } = {}): Classifier {
  assert(
    weights.length === WEIGHT_NAMES.length && weights.every((w, i) => w.name === WEIGHT_NAMES[i]),
    `classifier: expected weights ${WEIGHT_NAMES.join(', ')}; got ${weights.map((w) => w.name).join(', ')}`,
  );
  for (const w of weights) {
    const size = w.shape.reduce((a, b) => a * b, 1);
    assert(w.data.length === size, `classifier: weight ${w.name} has shape [${w.shape}] but ${w.data.length} values`);
  }
  const [conv1Kernel, conv1Bias, conv2Kernel, conv2Bias, hiddenKernel, hiddenBias, outputKernel, outputBias] = weights as [
    StoredWeight, StoredWeight, StoredWeight, StoredWeight, StoredWeight, StoredWeight, StoredWeight, StoredWeight,
  ];
  const f2 = conv2Kernel.shape[3]!;
  assert(
    hiddenKernel.shape[0] === finalSize(conv2Kernel.shape[0]!) ** 2 * f2 && outputKernel.shape[1] === NUM_CLASSES,
    `classifier: inconsistent shapes: conv2 [${conv2Kernel.shape}], hidden [${hiddenKernel.shape}], output [${outputKernel.shape}]`,
  );
  const variable = <R extends tf.Rank>(w: StoredWeight): tf.Variable<R> =>
    tf.variable(tf.tensor<tf.Rank>(w.data, w.shape) as tf.Tensor<R>);
  return keepVariables(() => ({
    conv1: { kernel: variable(conv1Kernel), bias: variable(conv1Bias) },
    conv2: { kernel: variable(conv2Kernel), bias: variable(conv2Bias) },
    hidden: { kernel: variable(hiddenKernel), bias: variable(hiddenBias) },
    output: { kernel: variable(outputKernel), bias: variable(outputBias) },
    dropoutRate: options.dropoutRate ?? 0.5,
  }));
}
