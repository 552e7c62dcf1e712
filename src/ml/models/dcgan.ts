/**
 * Deep convolutional GAN for 28×28 MNIST, the course's "CNN backbone" question.
 *
 * Reference: A. Radford, L. Metz and S. Chintala, "Unsupervised Representation Learning
 * with Deep Convolutional Generative Adversarial Networks", ICLR 2016 — §3 (strided
 * convolutions instead of pooling, batch norm, LeakyReLU in D, tanh output in G) and §4
 * (LeakyReLU slope 0.2, Adam β₁ 0.5). Trained with gan.ts's `ganStep` (Goodfellow et al.
 * 2014, Algorithm 1, non-saturating G loss) and the same optimisers.
 *
 * Generator: z [b, latent] → dense 7·7·128 → BN → LeakyReLU → [b, 7, 7, 128]
 *   → conv2dTranspose 64 (4×4, stride 2, same) → BN → LeakyReLU → [b, 14, 14, 64]
 *   → conv2dTranspose 1 (4×4, stride 2, same) → tanh → [b, 28, 28, 1] → [b, 784].
 * (The dense layer gets BN + LeakyReLU as in the DCGAN paper's projection; a purely
 * linear dense followed by a linear transposed convolution would be one linear map.)
 * Discriminator: x [b, 784] → [b, 28, 28, 1] → conv 64 (4×4 s2, same) → LeakyReLU
 *   → [b, 14, 14, 64] → conv 128 (4×4 s2, same) → BN → LeakyReLU → [b, 7, 7, 128]
 *   → flatten → dense 1 (logits).
 * Layers followed by BN have no bias (BN's offset replaces it). Initialisation: PyTorch's
 * defaults (U(±1/√fanIn)) for convolutions and dense layers; BN scale 1, offset 0.
 * Batch norm uses the batch's statistics when training and running averages
 * (momentum 0.1, as PyTorch) otherwise. Tensors are NHWC (tfjs); PyTorch is NCHW.
 */
import * as tf from '@tensorflow/tfjs';
import { IMAGE_PIXELS } from '../data/image.ts';
import type { Rng } from '../random.ts';
import { applyDense, countParams, createDense, leakyRelu, uniformVariable, type Dense } from './dense.ts';
import type { Discriminator, Generator } from './gan.ts';

const LEAK = 0.2;
const BN_EPSILON = 1e-5;
const BN_MOMENTUM = 0.1;

/** Batch normalisation over all axes but the last (features / channels). */
export interface BatchNorm {
  scale: tf.Variable<tf.Rank.R1>;
  offset: tf.Variable<tf.Rank.R1>;
  /** Running averages for inference; not trainable. */
  movingMean: tf.Variable<tf.Rank.R1>;
  movingVariance: tf.Variable<tf.Rank.R1>;
}

function createBatchNorm(features: number): BatchNorm {
  return {
    scale: tf.tidy(() => tf.variable(tf.ones([features]), true)),
    offset: tf.tidy(() => tf.variable(tf.zeros([features]), true)),
    movingMean: tf.tidy(() => tf.variable(tf.zeros([features]), false)),
    movingVariance: tf.tidy(() => tf.variable(tf.ones([features]), false)),
  };
}

/**
 * Training-mode batch norm (Ioffe & Szegedy 2015, Algorithm 1) as one custom-gradient op
 * with the closed-form backward pass: with x̂ = (x − μ)/σ and N rows per channel,
 *   ∂offset = Σ dy,  ∂scale = Σ dy·x̂,  ∂x = (scale/σ)·(dy − ∂offset/N − x̂·∂scale/N).
 * Why not tf.moments + tf.batchNorm: their gradients go through Tile and several
 * broadcast reductions, which made batch norm ~25 % of a DCGAN step on wasm.
 * `onStatistics` receives the batch mean and (biased) variance, [C] each.
 */
export function batchNormTraining<T extends tf.Tensor>(
  x: T,
  scale: tf.Tensor1D,
  offset: tf.Tensor1D,
  onStatistics?: (mean: tf.Tensor1D, variance: tf.Tensor1D) => void,
): T {
  const shape = x.shape;
  const channels = shape[shape.length - 1]!;
  const rows = x.size / channels;
  const op = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [input, s, o, save] = args as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    const x2 = tf.reshape(input, [rows, channels]); // [N, C]
    const mean = tf.mean(x2, 0) as tf.Tensor1D; // [C]
    const centred = tf.sub(x2, mean);
    const variance = tf.mean(tf.square(centred), 0) as tf.Tensor1D; // [C]
    const invStd = tf.rsqrt(tf.add(variance, BN_EPSILON)); // [C]
    const normalised = tf.mul(centred, invStd); // x̂ [N, C]
    onStatistics?.(mean, variance);
    save([normalised, invStd, s]);
    return {
      value: tf.reshape(tf.add(tf.mul(normalised, s), o), shape),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [xHat, inv, sc] = saved as [tf.Tensor2D, tf.Tensor1D, tf.Tensor1D];
        const dy2 = tf.reshape(dy, [rows, channels]); // [N, C]
        const dOffset = tf.sum(dy2, 0); // [C]
        const dScale = tf.sum(tf.mul(dy2, xHat), 0); // [C]
        const dx = tf.mul(tf.sub(tf.sub(dy2, tf.div(dOffset, rows)), tf.mul(xHat, tf.div(dScale, rows))), tf.mul(sc, inv));
        return [tf.reshape(dx, shape), dScale, dOffset];
      },
    };
  });
  return op(x, scale, offset) as T;
}

function applyBatchNorm<T extends tf.Tensor>(bn: BatchNorm, x: T, training: boolean, updateStatistics: boolean): T {
  if (!training) return tf.batchNorm(x, bn.movingMean, bn.movingVariance, bn.offset, bn.scale, BN_EPSILON) as T;
  const n = x.size / x.shape[x.shape.length - 1]!;
  const update = (mean: tf.Tensor1D, variance: tf.Tensor1D) =>
    tf.tidy(() => {
      const unbiased = tf.mul(variance, n / Math.max(n - 1, 1)); // as PyTorch's running_var
      bn.movingMean.assign(tf.add(tf.mul(bn.movingMean, 1 - BN_MOMENTUM), tf.mul(mean, BN_MOMENTUM)));
      bn.movingVariance.assign(tf.add(tf.mul(bn.movingVariance, 1 - BN_MOMENTUM), tf.mul(unbiased, BN_MOMENTUM)));
    });
  return batchNormTraining(x, bn.scale, bn.offset, updateStatistics ? update : undefined);
}

function batchNormVariables(bn: BatchNorm): tf.Variable[] {
  return [bn.scale, bn.offset];
}

/** Conv filter [h, w, in, out] (conv2d) or [h, w, out, in] (conv2dTranspose); PyTorch's default bound. */
function createFilter(shape: [number, number, number, number], fanIn: number, rng: Rng): tf.Variable<tf.Rank.R4> {
  return uniformVariable(shape, 1 / Math.sqrt(fanIn), rng.seed());
}

export interface DcGenerator extends Generator {
  readonly layers: {
    project: tf.Variable<tf.Rank.R2>; // [latent, 7·7·128], no bias (BN follows)
    projectNorm: BatchNorm;
    deconv1: tf.Variable<tf.Rank.R4>; // [4, 4, 64, 128]
    deconv1Norm: BatchNorm;
    deconv2: tf.Variable<tf.Rank.R4>; // [4, 4, 1, 64]
    deconv2Bias: tf.Variable<tf.Rank.R1>; // [1]
  };
  /** Moving averages of the batch norms (not trained; saved with the model). */
  readonly statistics: tf.Variable[];
}

/**
 * `filters`: depth of the 7×7 projection and of the first transposed convolution
 * (the paper-style [128, 64] by default; tests use tiny ones).
 */
export function createDcGenerator(options: { latentDim?: number; filters?: readonly [number, number]; rng: Rng }): DcGenerator {
  const { latentDim = 10, filters = [128, 64], rng } = options;
  const [f0, f1] = filters;
  const projectBound = 1 / Math.sqrt(latentDim);
  const layers = {
    project: uniformVariable<tf.Rank.R2>([latentDim, 7 * 7 * f0], projectBound, rng.seed()),
    projectNorm: createBatchNorm(7 * 7 * f0),
    // PyTorch's ConvTranspose2d fan-in is computed from its weight [in, out, h, w] as out·h·w.
    deconv1: createFilter([4, 4, f1, f0], f1 * 16, rng),
    deconv1Norm: createBatchNorm(f1),
    deconv2: createFilter([4, 4, 1, f1], 1 * 16, rng),
    deconv2Bias: uniformVariable<tf.Rank.R1>([1], 0.25, rng.seed()),
  };
  const variables = [
    layers.project, ...batchNormVariables(layers.projectNorm),
    layers.deconv1, ...batchNormVariables(layers.deconv1Norm),
    layers.deconv2, layers.deconv2Bias,
  ];
  const statistics = [layers.projectNorm, layers.deconv1Norm].flatMap((bn) => [bn.movingMean, bn.movingVariance]);
  return {
    latentDim,
    layers,
    variables,
    statistics,
    apply(z, { training = false, updateStatistics = training } = {}) {
      const batch = z.shape[0];
      let h: tf.Tensor = tf.matMul(z, layers.project); // [b, 6272]
      h = leakyRelu(applyBatchNorm(layers.projectNorm, h, training, updateStatistics), LEAK);
      h = tf.reshape(h, [batch, 7, 7, f0]);
      h = tf.conv2dTranspose(h as tf.Tensor4D, layers.deconv1, [batch, 14, 14, f1], 2, 'same'); // [b, 14, 14, f1]
      h = leakyRelu(applyBatchNorm(layers.deconv1Norm, h, training, updateStatistics), LEAK);
      h = tf.conv2dTranspose(h as tf.Tensor4D, layers.deconv2, [batch, 28, 28, 1], 2, 'same'); // [b, 28, 28, 1]
      return tf.reshape(tf.tanh(tf.add(h, layers.deconv2Bias)), [batch, IMAGE_PIXELS]); // [b, 784]
    },
    dispose: () => [...variables, ...statistics].forEach((v) => v.dispose()),
  };
}

export interface DcDiscriminator extends Discriminator {
  readonly layers: {
    conv1: tf.Variable<tf.Rank.R4>; // [4, 4, 1, 64]
    conv1Bias: tf.Variable<tf.Rank.R1>; // [64]
    conv2: tf.Variable<tf.Rank.R4>; // [4, 4, 64, 128], no bias (BN follows)
    conv2Norm: BatchNorm;
    output: Dense; // [6272, 1]
  };
  readonly statistics: tf.Variable[];
}

/** `filters`: output depths of the two convolutions ([64, 128] by default). */
export function createDcDiscriminator(options: { filters?: readonly [number, number]; rng: Rng }): DcDiscriminator {
  const { filters = [64, 128], rng } = options;
  const [f0, f1] = filters;
  const layers = {
    conv1: createFilter([4, 4, 1, f0], 16, rng),
    conv1Bias: uniformVariable<tf.Rank.R1>([f0], 0.25, rng.seed()),
    conv2: createFilter([4, 4, f0, f1], f0 * 16, rng),
    conv2Norm: createBatchNorm(f1),
    output: createDense(7 * 7 * f1, 1, rng),
  };
  const variables = [layers.conv1, layers.conv1Bias, layers.conv2, ...batchNormVariables(layers.conv2Norm), layers.output.kernel, layers.output.bias];
  const statistics = [layers.conv2Norm.movingMean, layers.conv2Norm.movingVariance];
  return {
    layers,
    variables,
    statistics,
    usesBatchStatistics: true,
    apply(x, { training = false } = {}) {
      const batch = x.shape[0];
      let h: tf.Tensor = tf.reshape(x, [batch, 28, 28, 1]);
      // conv2d + add rather than tf.fused.conv2d: the fused op's gradient always computes
      // ∂input, which the D step does not need (its input batch is a constant).
      h = tf.add(tf.conv2d(h as tf.Tensor4D, layers.conv1, 2, 'same'), layers.conv1Bias); // [b, 14, 14, f0]
      h = leakyRelu(h, LEAK);
      h = tf.conv2d(h as tf.Tensor4D, layers.conv2, 2, 'same'); // [b, 7, 7, f1]
      h = leakyRelu(applyBatchNorm(layers.conv2Norm, h, training, training), LEAK);
      return applyDense(layers.output, tf.reshape(h, [batch, 7 * 7 * f1])); // [b, 1] logits
    },
    dispose: () => [...variables, ...statistics].forEach((v) => v.dispose()),
  };
}

export function dcganParamCount(models: { generator: DcGenerator; discriminator: DcDiscriminator }): { generator: number; discriminator: number } {
  return { generator: countParams(models.generator.variables), discriminator: countParams(models.discriminator.variables) };
}
