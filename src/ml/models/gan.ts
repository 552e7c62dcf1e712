/**
 * The course's fully connected ("vanilla") GAN.
 *
 * Reference: I. Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 — §3 (the
 * minimax game), Algorithm 1 (alternating D and G updates) and the remark after it (train
 * G to maximise log D(G(z)), the non-saturating loss). Architecture and hyper-parameters
 * are the course's script's (section 4.2): latent → 256 → 512 → 1024 → 784 with
 * LeakyReLU(0.2) and tanh; 784 → 1024 → 512 → 256 → 1 with LeakyReLU(0.2) and dropout 0.3
 * after each hidden layer; Adam(lr 1e-3, β 0.5, 0.999) for both networks.
 *
 * One deviation, for numerical stability: the discriminator returns logits and the losses
 * use the sigmoid cross-entropy on logits (log-sum-exp form) instead of sigmoid followed
 * by BCE — the same function, without log(0) when D saturates. `probabilities()` gives
 * the script's sigmoid output.
 *
 * Real images must be in [−1, 1] (the generator's tanh range); the script fed [0, 1], a bug.
 */
import * as tf from '@tensorflow/tfjs';
import { IMAGE_PIXELS } from '../data/image.ts';
import type { Rng } from '../random.ts';
import type { StepContext } from '../trainer.ts';
import { applyDense, countParams, createDense, denseVariables, dropout, type Dense } from './dense.ts';

export interface Generator {
  readonly latentDim: number;
  readonly variables: tf.Variable[];
  /**
   * z [batch, latentDim] → images [batch, 784] in [−1, 1]. With batch norm (dcgan.ts),
   * `training` uses batch statistics and `updateStatistics` (default: `training`) also
   * moves the running averages.
   */
  apply(z: tf.Tensor2D, options?: { training?: boolean; updateStatistics?: boolean }): tf.Tensor2D;
  dispose(): void;
}

export interface Discriminator {
  readonly variables: tf.Variable[];
  /**
   * True when a forward pass uses batch statistics (batch norm): real and fake batches
   * must then go through separately, as in the course's loop, not concatenated.
   */
  readonly usesBatchStatistics: boolean;
  /** images [batch, 784] → logits [batch, 1]. `seed` drives dropout when training. */
  apply(x: tf.Tensor2D, options?: { training?: boolean; seed?: number }): tf.Tensor2D;
  dispose(): void;
}

export interface GanModels<G extends Generator = Generator, D extends Discriminator = Discriminator> {
  generator: G;
  discriminator: D;
}

export interface MlpGenerator extends Generator {
  readonly layers: readonly Dense[];
}

/**
 * The course's generator, latent → 256 → 512 → 1024 → 784 (LeakyReLU 0.2, tanh). `outputDim`
 * and a linear output serve the 2-D toy problems of section 4.2.
 */
export function createGenerator(options: {
  latentDim?: number;
  hiddenDims?: readonly number[];
  outputDim?: number;
  outputActivation?: 'tanh' | 'linear';
  rng: Rng;
}): MlpGenerator {
  const { latentDim = 10, hiddenDims = [256, 512, 1024], outputDim = IMAGE_PIXELS, outputActivation = 'tanh', rng } = options;
  const dims = [latentDim, ...hiddenDims, outputDim];
  const layers = dims.slice(1).map((out, i) => createDense(dims[i]!, out, rng));
  const variables = denseVariables(layers);
  return {
    latentDim,
    layers,
    variables,
    apply(z) {
      let h = z; // [batch, latentDim]
      layers.forEach((layer, i) => {
        h = applyDense(layer, h, i === layers.length - 1 ? outputActivation : 'leakyrelu', 0.2);
      });
      return h; // [batch, outputDim]
    },
    dispose: () => variables.forEach((v) => v.dispose()),
  };
}

export interface MlpDiscriminator extends Discriminator {
  readonly layers: readonly Dense[];
  readonly dropoutRate: number;
}

export function createDiscriminator(options: { inputDim?: number; hiddenDims?: readonly number[]; dropoutRate?: number; rng: Rng }): MlpDiscriminator {
  const { inputDim = IMAGE_PIXELS, hiddenDims = [1024, 512, 256], dropoutRate = 0.3, rng } = options;
  const dims = [inputDim, ...hiddenDims, 1];
  const layers = dims.slice(1).map((out, i) => createDense(dims[i]!, out, rng));
  const variables = denseVariables(layers);
  return {
    layers,
    dropoutRate,
    variables,
    usesBatchStatistics: false,
    apply(x, { training = false, seed } = {}) {
      if (training && dropoutRate > 0 && seed === undefined) {
        throw new Error('discriminator.apply: training with dropout needs a seed (from the run\'s Rng)');
      }
      let h = x; // [batch, 784]
      layers.forEach((layer, i) => {
        if (i === layers.length - 1) {
          h = applyDense(layer, h); // [batch, 1] logits
        } else {
          h = applyDense(layer, h, 'leakyrelu', 0.2);
          if (training) h = dropout(h, dropoutRate, seed! + i);
        }
      });
      return h;
    },
    dispose: () => variables.forEach((v) => v.dispose()),
  };
}

/** The script's discriminator output, sigmoid(logits). */
export function probabilities(logits: tf.Tensor2D): tf.Tensor2D {
  return tf.sigmoid(logits);
}

/** The course script's optimiser for both networks: Adam(lr 1e-3, β₁ 0.5, β₂ 0.999). */
export const COURSE_ADAM = { learningRate: 1e-3, beta1: 0.5, beta2: 0.999 } as const;

/** Mean binary cross-entropy of sigmoid(logits) against a constant target t ∈ [0, 1]: softplus(l) − t·l. */
export function bceWithLogits(logits: tf.Tensor, target: number): tf.Scalar {
  // BCE(σ(l), 1) = softplus(−l);  BCE(σ(l), 0) = softplus(l)
  if (target === 1) return tf.mean(tf.softplus(tf.neg(logits))) as tf.Scalar;
  if (target === 0) return tf.mean(tf.softplus(logits)) as tf.Scalar;
  return tf.mean(tf.sub(tf.softplus(logits), tf.mul(logits, target))) as tf.Scalar;
}

export interface GanStepOptions {
  /**
   * 'non-saturating' (default, the script's): G minimises −log D(G(z)) = BCE(D(G(z)), 1).
   * 'saturating': G minimises log(1 − D(G(z))), the minimax game's own term, whose
   * gradient vanishes when D confidently rejects the fakes (Goodfellow et al. 2014, §3).
   */
  generatorLoss?: 'non-saturating' | 'saturating';
  /** Target for real images in D's loss: 1 (default), or e.g. 0.9 (one-sided label smoothing, Salimans et al. 2016 §3.4). */
  realLabel?: number;
  /** k D-steps per G-step (Algorithm 1's k, default 1); the extra steps reuse the real batch with fresh z. */
  discriminatorSteps?: number;
}

/**
 * D's loss ½·(BCE(D(x), t) + BCE(D(G(z)), 0)) and its mean outputs on each batch. When D
 * has no batch statistics, real and fake go through D as one batch of 2·b (same loss,
 * half the kernel launches); with batch norm they go separately, as in the course's loop.
 */
function discriminatorLosses(
  discriminator: Discriminator,
  realBatch: tf.Tensor2D,
  fake: tf.Tensor2D,
  seed: number,
  realLabel: number,
): Record<string, tf.Scalar> {
  let realLogits: tf.Tensor2D;
  let fakeLogits: tf.Tensor2D;
  if (discriminator.usesBatchStatistics) {
    realLogits = discriminator.apply(realBatch, { training: true, seed }); // [b, 1]
    fakeLogits = discriminator.apply(fake, { training: true, seed: seed + 1000 }); // [b, 1]
  } else {
    const logits = discriminator.apply(tf.concat([realBatch, fake], 0) as tf.Tensor2D, { training: true, seed }); // [2b, 1]
    [realLogits, fakeLogits] = tf.split(logits, 2, 0) as [tf.Tensor2D, tf.Tensor2D];
  }
  return {
    dLoss: tf.mul(0.5, tf.add(bceWithLogits(realLogits, realLabel), bceWithLogits(fakeLogits, 0))),
    dReal: tf.mean(tf.sigmoid(realLogits)) as tf.Scalar,
    dFake: tf.mean(tf.sigmoid(fakeLogits)) as tf.Scalar,
  };
}

/**
 * One step of Algorithm 1 (Goodfellow et al. 2014) through the trainer: k updates of the
 * network 'discriminator' on the real batch `ctx.x` and equal-sized fake batches, then one
 * update of 'generator' on the last fakes, scored by the updated D. Records dLoss, dReal,
 * dFake (of the last D step), gLoss (the loss G minimised) and both gradient norms.
 * Works for any Generator/Discriminator pair (gan.ts, dcgan.ts).
 *
 * G runs forward once for its step, as in PyTorch's loop (`fake = G(z)`, D step on
 * `fake.detach()`, then G step on `fake`): the last D step is taken inside G's gradient
 * function, after G's forward pass and before D scores the fakes for G's loss. tfjs's tapes
 * nest: the D step's operations land on G's tape too, but none of them leads from G's
 * variables to G's loss (D's updated weights are variables, read afresh), so G's backward
 * pass prunes them.
 */
export function ganStep(ctx: Pick<StepContext, 'x' | 'rng' | 'minimize'>, models: GanModels, options: GanStepOptions = {}): void {
  const { generator, discriminator } = models;
  const { generatorLoss = 'non-saturating', realLabel = 1, discriminatorSteps = 1 } = options;
  const realBatch = ctx.x;
  const batch = realBatch.shape[0];
  const noise = () => tf.randomNormal([batch, generator.latentDim], 0, 1, 'float32', ctx.rng.seed()) as tf.Tensor2D; // [b, latent]
  for (let k = 1; k < discriminatorSteps; k++) {
    const z = noise();
    const dSeed = ctx.rng.seed();
    const fake = generator.apply(z, { training: true }); // outside G's tape: a constant for D
    ctx.minimize('discriminator', () => discriminatorLosses(discriminator, realBatch, fake, dSeed, realLabel), 'dLoss');
  }
  const z = noise();
  const dSeed = ctx.rng.seed();
  const gSeed = ctx.rng.seed();
  ctx.minimize('generator', () => {
    const fake = generator.apply(z, { training: true }); // [b, 784], on G's tape
    ctx.minimize('discriminator', () => discriminatorLosses(discriminator, realBatch, fake, dSeed, realLabel), 'dLoss');
    const logits = discriminator.apply(fake, { training: true, seed: gSeed }); // [b, 1], updated D
    const gLoss = generatorLoss === 'non-saturating'
      ? bceWithLogits(logits, 1)
      : (tf.neg(tf.mean(tf.softplus(logits))) as tf.Scalar); // log(1 − σ(l)) = −softplus(l)
    return { gLoss };
  }, 'gLoss');
}

export function ganParamCount(models: GanModels): { generator: number; discriminator: number } {
  return { generator: countParams(models.generator.variables), discriminator: countParams(models.discriminator.variables) };
}
