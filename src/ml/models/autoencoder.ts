/**
 * Stacked auto-encoder, the deterministic counterpart of the VAE in section 4.3 (Q2).
 *
 * References: Y. Bengio, P. Lamblin, D. Popovici and H. Larochelle, "Greedy Layer-Wise
 * Training of Deep Networks", NeurIPS 2007 — §2 and Algorithm 1 (each level is an
 * auto-encoder trained on the codes of the level below, then the whole stack is
 * fine-tuned); P. Vincent et al., "Stacked Denoising Autoencoders", JMLR 2010 — §3 and §7
 * (the same stacking; we use no input corruption, i.e. their basic auto-encoder).
 *
 * Architecture, chosen to match the course's VAE layer for layer (784 → 128 → code and
 * back; vae.ts): encoder 784 → 128 ReLU → code (linear, like the VAE's mean head);
 * decoder code → 128 ReLU → 784 sigmoid. Levels of the greedy stage:
 *   level 1: x → ReLU(x·W₁ + b₁) → sigmoid(h·W₁' + b₁') ≈ x            (encoder1, decoder1)
 *   level 2: h = ReLU(x·W₁ + b₁) → c = h·W₂ + b₂ → ReLU(c·W₂' + b₂') ≈ h  (encoder2, decoder2)
 * and the fine-tuned stack x → c → x̂ uses all four layers. Every stage minimises the mean
 * squared error (per element, as PyTorch's nn.MSELoss) and runs through the shared
 * trainer (src/ml/trainer.ts) as one network per stage: 'level1', 'level2', 'finetune'.
 * Weights are untied (Vincent et al. allow both); initialisation is dense.ts's (PyTorch's).
 */
import * as tf from '@tensorflow/tfjs';
import { assert } from '../assert.ts';
import { IMAGE_PIXELS } from '../data/image.ts';
import type { Rng } from '../random.ts';
import { createTrainer, type AdamOptions, type EpochRecord, type Metrics, type StepContext } from '../trainer.ts';
import { applyDense, countParams, createDense, denseVariables, type Dense } from './dense.ts';

export type AutoencoderStage = 'level1' | 'level2' | 'finetune';
export const AUTOENCODER_STAGES: readonly AutoencoderStage[] = ['level1', 'level2', 'finetune'];

export interface StackedAutoencoder {
  readonly inputDim: number;
  readonly hiddenDim: number;
  readonly codeDim: number;
  readonly layers: { encoder1: Dense; encoder2: Dense; decoder2: Dense; decoder1: Dense };
  readonly variables: tf.Variable[];
  /** Variables trained at each stage (level 1: encoder1 + decoder1; level 2: encoder2 + decoder2; fine-tuning: all). */
  readonly stageVariables: Record<AutoencoderStage, tf.Variable[]>;
  /** x [b, inputDim] → the level-1 features ReLU(x·W₁ + b₁) [b, hiddenDim]. */
  hidden(x: tf.Tensor2D): tf.Tensor2D;
  /** x [b, inputDim] → code [b, codeDim]. */
  encode(x: tf.Tensor2D): tf.Tensor2D;
  /** code [b, codeDim] → logits [b, inputDim] (the output is sigmoid(logits)). */
  decodeLogits(code: tf.Tensor2D): tf.Tensor2D;
  /** code [b, codeDim] → reconstruction [b, inputDim] in (0, 1). */
  decode(code: tf.Tensor2D): tf.Tensor2D;
  dispose(): void;
}

export function createStackedAutoencoder(options: { inputDim?: number; hiddenDim: number; codeDim: number; rng: Rng }): StackedAutoencoder {
  const { inputDim = IMAGE_PIXELS, hiddenDim, codeDim, rng } = options;
  for (const [name, value] of Object.entries({ inputDim, hiddenDim, codeDim })) {
    assert(Number.isInteger(value) && value >= 1, `createStackedAutoencoder: ${name} must be a positive integer, got ${value}`);
  }
  const layers = {
    encoder1: createDense(inputDim, hiddenDim, rng),
    encoder2: createDense(hiddenDim, codeDim, rng),
    decoder2: createDense(codeDim, hiddenDim, rng),
    decoder1: createDense(hiddenDim, inputDim, rng),
  };
  const variables = denseVariables([layers.encoder1, layers.encoder2, layers.decoder2, layers.decoder1]);
  const hidden = (x: tf.Tensor2D) => applyDense(layers.encoder1, x, 'relu'); // [b, hidden]
  const decodeLogits = (code: tf.Tensor2D) => applyDense(layers.decoder1, applyDense(layers.decoder2, code, 'relu')); // [b, inputDim]
  return {
    inputDim,
    hiddenDim,
    codeDim,
    layers,
    variables,
    stageVariables: {
      level1: denseVariables([layers.encoder1, layers.decoder1]),
      level2: denseVariables([layers.encoder2, layers.decoder2]),
      finetune: variables,
    },
    hidden,
    encode: (x) => applyDense(layers.encoder2, hidden(x)), // [b, code]
    decodeLogits,
    decode: (code) => tf.sigmoid(decodeLogits(code)),
    dispose: () => variables.forEach((v) => v.dispose()),
  };
}

function meanSquaredError(a: tf.Tensor2D, b: tf.Tensor2D): tf.Scalar {
  return tf.mean(tf.square(tf.sub(a, b))) as tf.Scalar;
}

/**
 * One step of `stage` through the trainer on the batch `ctx.x`: for 'level1' and
 * 'finetune' the batch is images [b, inputDim]; for 'level2' it is level-1 features
 * [b, hiddenDim] (see `hiddenFeatures`). Minimises the network named after the stage;
 * records `loss` (the stage's MSE).
 */
export function autoencoderStep(ctx: Pick<StepContext, 'x' | 'minimize'>, ae: StackedAutoencoder, stage: AutoencoderStage): void {
  const x = ctx.x;
  const width = stage === 'level2' ? ae.hiddenDim : ae.inputDim;
  if (x.shape[1] !== width) throw new Error(`autoencoderStep(${stage}): expected a batch [b, ${width}], got [${x.shape.join(', ')}]`);
  ctx.minimize(stage, () => {
    switch (stage) {
      case 'level1':
        return { loss: meanSquaredError(tf.sigmoid(applyDense(ae.layers.decoder1, ae.hidden(x))), x) };
      case 'level2':
        return { loss: meanSquaredError(applyDense(ae.layers.decoder2, applyDense(ae.layers.encoder2, x), 'relu'), x) };
      case 'finetune':
        return { loss: meanSquaredError(ae.decode(ae.encode(x)), x) };
    }
  });
}

/** Level-1 features of `images` ([n, inputDim]) in chunks: the training data of level 2, [n, hiddenDim]. */
export function hiddenFeatures(ae: StackedAutoencoder, images: Float32Array, chunk = 2000): Float32Array {
  const n = images.length / ae.inputDim;
  const out = new Float32Array(n * ae.hiddenDim);
  for (let start = 0; start < n; start += chunk) {
    const size = Math.min(chunk, n - start);
    const h = tf.tidy(() => ae.hidden(tf.tensor2d(images.subarray(start * ae.inputDim, (start + size) * ae.inputDim), [size, ae.inputDim])));
    out.set(h.dataSync(), start * ae.hiddenDim);
    h.dispose();
  }
  return out;
}

/** Codes of `images` ([n, inputDim]) in chunks: [n, codeDim]. */
export function encodeAll(ae: StackedAutoencoder, images: Float32Array, chunk = 2000): Float32Array {
  const n = images.length / ae.inputDim;
  const out = new Float32Array(n * ae.codeDim);
  for (let start = 0; start < n; start += chunk) {
    const size = Math.min(chunk, n - start);
    const c = tf.tidy(() => ae.encode(tf.tensor2d(images.subarray(start * ae.inputDim, (start + size) * ae.inputDim), [size, ae.inputDim])));
    out.set(c.dataSync(), start * ae.codeDim);
    c.dispose();
  }
  return out;
}

export interface StackedTrainingOptions {
  /** Training images [n, inputDim] in [0, 1]. */
  data: Float32Array;
  /** Epochs of each stage (0 skips it: e.g. { level1: 0, level2: 0, finetune: e } trains end to end from scratch). */
  epochs: Record<AutoencoderStage, number>;
  batchSize: number;
  optimizer: AdamOptions;
  /** Seed of the trainers (each stage forks its own). */
  seed: number;
  stepsPerEpoch?: number;
  onStepEnd?(stage: AutoencoderStage, info: { epoch: number; index: number; stepsPerEpoch: number; metrics: Metrics }): void;
  /** After each epoch of each stage; what it returns is stored as the epoch's `eval`. */
  onEpochEnd?(stage: AutoencoderStage, record: EpochRecord): Metrics | void | Promise<Metrics | void>;
}

/**
 * Greedy layer-wise training then fine-tuning (Bengio et al. 2007, Algorithm 1): one
 * trainer per stage, each with its own Adam on that stage's variables only; level 2 trains
 * on the level-1 features of the training images, computed once after level 1.
 * Returns each stage's epoch history.
 */
export async function trainStackedAutoencoder(ae: StackedAutoencoder, options: StackedTrainingOptions): Promise<Record<AutoencoderStage, EpochRecord[]>> {
  const histories = { level1: [], level2: [], finetune: [] } as Record<AutoencoderStage, EpochRecord[]>;
  for (const [i, stage] of AUTOENCODER_STAGES.entries()) {
    const epochs = options.epochs[stage];
    if (epochs === 0) continue;
    const data = stage === 'level2' ? hiddenFeatures(ae, options.data) : options.data;
    const trainer = createTrainer({
      networks: { [stage]: { variables: ae.stageVariables[stage], optimizer: options.optimizer } },
      data,
      rowSize: stage === 'level2' ? ae.hiddenDim : ae.inputDim,
      batchSize: options.batchSize,
      stepsPerEpoch: options.stepsPerEpoch,
      seed: options.seed + 7919 * (i + 1),
      step: (ctx) => autoencoderStep(ctx, ae, stage),
      onStepEnd: options.onStepEnd && ((info) => options.onStepEnd!(stage, info)),
      onEpochEnd: options.onEpochEnd && ((record) => options.onEpochEnd!(stage, record)),
    });
    try {
      histories[stage] = await trainer.fit(epochs);
    } finally {
      trainer.dispose();
    }
  }
  return histories;
}

export function autoencoderParamCount(ae: StackedAutoencoder): number {
  return countParams(ae.variables);
}
