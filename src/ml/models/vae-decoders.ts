/**
 * VAEs whose decoders are section 4.2's GAN generators (section 4.3, Q4: the same
 * backbone on both sides of the VAE–GAN comparison).
 *
 * The decoder IS the generator: built by gan.ts's `createGenerator` / dcgan.ts's
 * `createDcGenerator` (same layers, same initialisation), with its output read before the
 * tanh. With a = the generator's pre-tanh output, the GAN's image in [0, 1] is
 * (tanh(a) + 1)/2 = sigmoid(2a); we use logits 2a, so the Bernoulli decoder's mean is
 * exactly the GAN generator's image for the same weights and z. The encoders mirror the
 * discriminators with two heads (mean, log-variance) in place of the single logit:
 *
 * - 'mlp':   x → 1024 → 512 → 256 (LeakyReLU 0.2, no dropout) → mu, logVar; an MLP built by
 *            `createGenerator` (784 → 1024 → 512 → 256 → 2·latent, linear output), i.e. the
 *            MLP discriminator's trunk. Decoder: latent → 256 → 512 → 1024 → 784.
 * - 'dcgan': x → [28, 28, 1] → conv 64 (4×4 s2) → LeakyReLU → conv 128 (4×4 s2) → BN →
 *            LeakyReLU → flatten 6272 → two dense heads; the convolutions are made by
 *            `createDcDiscriminator` (its 1-logit output layer is discarded). Decoder: the
 *            DCGAN generator (dense 7·7·128 → BN → LeakyReLU → deconv 64 → BN → LeakyReLU →
 *            deconv 1), forward pass re-stated here without the final tanh.
 *
 * Why the DCGAN forward passes are re-stated rather than an option added to dcgan.ts: every
 * cell of section 4.2 bundles dcgan.ts (through report/lib/gan-runs.ts), and a change to it
 * would invalidate all of that section's stored results. The batch norm below is
 * dcgan.ts's (`batchNormTraining`, exported there) with the same running-average update.
 */
import * as tf from '@tensorflow/tfjs';
import { IMAGE_PIXELS } from '../data/image.ts';
import type { Rng } from '../random.ts';
import { batchNormTraining, createDcDiscriminator, createDcGenerator, type BatchNorm, type DcGenerator } from './dcgan.ts';
import { applyDense, countParams, createDense, leakyRelu, type Dense } from './dense.ts';
import { createGenerator } from './gan.ts';
import { reparameterize, type ForwardOptions, type VaeModel } from './vae.ts';

const LEAK = 0.2;
const BN_EPSILON = 1e-5;
const BN_MOMENTUM = 0.1;

export type VaeDecoderArchitecture = 'mlp' | 'dcgan';

export interface GanDecoderVae extends VaeModel {
  readonly architecture: VaeDecoderArchitecture;
  /** Parameter counts of each half. */
  readonly params: { encoder: number; decoder: number };
  readonly statistics: tf.Variable[];
}

/** As dcgan.ts's batch norm: batch statistics when training (and the running averages move), running averages otherwise. */
function applyBatchNorm<T extends tf.Tensor>(bn: BatchNorm, x: T, training: boolean): T {
  if (!training) return tf.batchNorm(x, bn.movingMean, bn.movingVariance, bn.offset, bn.scale, BN_EPSILON) as T;
  const n = x.size / x.shape[x.shape.length - 1]!;
  return batchNormTraining(x, bn.scale, bn.offset, (mean, variance) =>
    tf.tidy(() => {
      const unbiased = tf.mul(variance, n / Math.max(n - 1, 1));
      bn.movingMean.assign(tf.add(tf.mul(bn.movingMean, 1 - BN_MOMENTUM), tf.mul(mean, BN_MOMENTUM)));
      bn.movingVariance.assign(tf.add(tf.mul(bn.movingVariance, 1 - BN_MOMENTUM), tf.mul(unbiased, BN_MOMENTUM)));
    }));
}

/** The DCGAN generator's forward pass up to (not including) the tanh: [b, 784]. */
function dcGeneratorPreActivation(generator: DcGenerator, z: tf.Tensor2D, training: boolean): tf.Tensor2D {
  const { layers } = generator;
  const batch = z.shape[0];
  const f0 = layers.deconv1.shape[3];
  const f1 = layers.deconv1.shape[2];
  let h: tf.Tensor = tf.matMul(z, layers.project); // [b, 7·7·f0]
  h = leakyRelu(applyBatchNorm(layers.projectNorm, h, training), LEAK);
  h = tf.reshape(h, [batch, 7, 7, f0]);
  h = tf.conv2dTranspose(h as tf.Tensor4D, layers.deconv1, [batch, 14, 14, f1], 2, 'same'); // [b, 14, 14, f1]
  h = leakyRelu(applyBatchNorm(layers.deconv1Norm, h, training), LEAK);
  h = tf.conv2dTranspose(h as tf.Tensor4D, layers.deconv2, [batch, 28, 28, 1], 2, 'same'); // [b, 28, 28, 1]
  return tf.reshape(tf.add(h, layers.deconv2Bias), [batch, IMAGE_PIXELS]);
}

export interface GanDecoderVaeOptions {
  architecture: VaeDecoderArchitecture;
  /** Latent size (section 4.2's GANs: 10). */
  latentDim?: number;
  /** Tiny networks for tests: MLP hidden sizes (decoder order, small to large) or DCGAN filters. */
  mlpHiddenDims?: readonly number[];
  dcFilters?: { generator: readonly [number, number]; encoder: readonly [number, number] };
  rng: Rng;
}

export function createGanDecoderVae(options: GanDecoderVaeOptions): GanDecoderVae {
  const { architecture, latentDim = 10, rng } = options;
  return architecture === 'mlp' ? mlpVae(latentDim, options.mlpHiddenDims ?? [256, 512, 1024], rng) : dcganVae(latentDim, options.dcFilters, rng);
}

function splitHeads(out: tf.Tensor2D, latentDim: number): { mu: tf.Tensor2D; logVar: tf.Tensor2D } {
  const [mu, logVar] = tf.split(out, [latentDim, latentDim], 1) as [tf.Tensor2D, tf.Tensor2D];
  return { mu, logVar };
}

function mlpVae(latentDim: number, hiddenDims: readonly number[], rng: Rng): GanDecoderVae {
  const encoder = createGenerator({ latentDim: IMAGE_PIXELS, hiddenDims: [...hiddenDims].reverse(), outputDim: 2 * latentDim, outputActivation: 'linear', rng });
  const decoder = createGenerator({ latentDim, hiddenDims, outputDim: IMAGE_PIXELS, outputActivation: 'linear', rng });
  const variables = [...encoder.variables, ...decoder.variables];
  const decodeLogits = (z: tf.Tensor2D) => tf.mul(decoder.apply(z), 2) as tf.Tensor2D; // [b, 784]
  return {
    architecture: 'mlp',
    inputDim: IMAGE_PIXELS,
    latentDim,
    variables,
    statistics: [],
    params: { encoder: countParams(encoder.variables), decoder: countParams(decoder.variables) },
    encode: (x) => splitHeads(encoder.apply(x), latentDim),
    reparameterize,
    decodeLogits,
    decode: (z) => tf.sigmoid(decodeLogits(z)),
    dispose: () => variables.forEach((v) => v.dispose()),
  };
}

function dcganVae(latentDim: number, filters: GanDecoderVaeOptions['dcFilters'], rng: Rng): GanDecoderVae {
  const encoderFilters = filters?.encoder ?? [64, 128];
  const convs = createDcDiscriminator({ filters: encoderFilters, rng });
  convs.layers.output.kernel.dispose(); // the discriminator's 1-logit layer: replaced by the two heads
  convs.layers.output.bias.dispose();
  const { conv1, conv1Bias, conv2, conv2Norm } = convs.layers;
  const flat = 7 * 7 * encoderFilters[1];
  const heads: { mu: Dense; logVar: Dense } = { mu: createDense(flat, latentDim, rng), logVar: createDense(flat, latentDim, rng) };
  const generator = createDcGenerator({ latentDim, filters: filters?.generator, rng });
  const encoderVariables = [conv1, conv1Bias, conv2, conv2Norm.scale, conv2Norm.offset, heads.mu.kernel, heads.mu.bias, heads.logVar.kernel, heads.logVar.bias];
  const variables = [...encoderVariables, ...generator.variables];
  const statistics = [conv2Norm.movingMean, conv2Norm.movingVariance, ...generator.statistics];
  const decodeLogits = (z: tf.Tensor2D, { training = false }: ForwardOptions = {}) => tf.mul(dcGeneratorPreActivation(generator, z, training), 2) as tf.Tensor2D;
  return {
    architecture: 'dcgan',
    inputDim: IMAGE_PIXELS,
    latentDim,
    variables,
    statistics,
    params: { encoder: countParams(encoderVariables), decoder: countParams(generator.variables) },
    encode(x, { training = false } = {}) {
      const batch = x.shape[0];
      let h: tf.Tensor = tf.reshape(x, [batch, 28, 28, 1]);
      h = leakyRelu(tf.add(tf.conv2d(h as tf.Tensor4D, conv1, 2, 'same'), conv1Bias), LEAK); // [b, 14, 14, f0]
      h = tf.conv2d(h as tf.Tensor4D, conv2, 2, 'same'); // [b, 7, 7, f1]
      h = leakyRelu(applyBatchNorm(conv2Norm, h, training), LEAK);
      const features = tf.reshape(h, [batch, flat]) as tf.Tensor2D;
      return { mu: applyDense(heads.mu, features), logVar: applyDense(heads.logVar, features) };
    },
    reparameterize,
    decodeLogits,
    decode: (z, options) => tf.sigmoid(decodeLogits(z, options)),
    dispose: () => [...variables, ...statistics].forEach((v) => v.dispose()),
  };
}
