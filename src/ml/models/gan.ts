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
import type { Rng } from '../random.ts';
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

export interface GanOptimizers {
  generator: tf.Optimizer;
  discriminator: tf.Optimizer;
}

export interface GanStepResult {
  /** ½·(BCE(D(x), 1) + BCE(D(G(z)), 0)), before the D update. */
  dLoss: number;
  /** BCE(D(G(z)), 1) with the updated D, before the G update. */
  gLoss: number;
  /** mean D(x) (probability) on the real batch. */
  dReal: number;
  /** mean D(G(z)) (probability) on the fake batch, in the D step. */
  dFake: number;
}

export const IMAGE_DIM = 784;

export interface MlpGenerator extends Generator {
  readonly layers: readonly Dense[];
}

export function createGenerator(options: { latentDim?: number; hiddenDims?: readonly number[]; rng: Rng }): MlpGenerator {
  const { latentDim = 10, hiddenDims = [256, 512, 1024], rng } = options;
  const dims = [latentDim, ...hiddenDims, IMAGE_DIM];
  const layers = dims.slice(1).map((out, i) => createDense(dims[i]!, out, rng));
  const variables = denseVariables(layers);
  return {
    latentDim,
    layers,
    variables,
    apply(z) {
      let h = z; // [batch, latentDim]
      layers.forEach((layer, i) => {
        h = applyDense(layer, h, i === layers.length - 1 ? 'tanh' : 'leakyrelu', 0.2);
      });
      return h; // [batch, 784]
    },
    dispose: () => variables.forEach((v) => v.dispose()),
  };
}

export interface MlpDiscriminator extends Discriminator {
  readonly layers: readonly Dense[];
  readonly dropoutRate: number;
}

export function createDiscriminator(options: { hiddenDims?: readonly number[]; dropoutRate?: number; rng: Rng }): MlpDiscriminator {
  const { hiddenDims = [1024, 512, 256], dropoutRate = 0.3, rng } = options;
  const dims = [IMAGE_DIM, ...hiddenDims, 1];
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

/** Adam(lr 1e-3, β₁ 0.5, β₂ 0.999) for each network, as in the course's script. */
export function createGanOptimizers(options: { learningRate?: number; beta1?: number; beta2?: number } = {}): GanOptimizers {
  const { learningRate = 1e-3, beta1 = 0.5, beta2 = 0.999 } = options;
  return {
    generator: tf.train.adam(learningRate, beta1, beta2),
    discriminator: tf.train.adam(learningRate, beta1, beta2),
  };
}

/** Mean binary cross-entropy of sigmoid(logits) against a constant target (0 or 1). */
function bceWithLogits(logits: tf.Tensor, target: 0 | 1): tf.Scalar {
  // BCE(σ(l), 1) = softplus(−l);  BCE(σ(l), 0) = softplus(l)
  return tf.mean(tf.softplus(target === 1 ? tf.neg(logits) : logits)) as tf.Scalar;
}

/**
 * D's loss ½·(BCE(D(x), 1) + BCE(D(G(z)), 0)) and its mean outputs on each batch. When D
 * has no batch statistics, real and fake go through D as one batch of 2·b (same loss,
 * half the kernel launches); with batch norm they go separately, as in the course's loop.
 */
function discriminatorLoss(
  discriminator: Discriminator,
  realBatch: tf.Tensor2D,
  fake: tf.Tensor2D,
  seed: number,
): { loss: tf.Scalar; dReal: tf.Scalar; dFake: tf.Scalar } {
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
    loss: tf.mul(0.5, tf.add(bceWithLogits(realLogits, 1), bceWithLogits(fakeLogits, 0))),
    dReal: tf.mean(tf.sigmoid(realLogits)) as tf.Scalar,
    dFake: tf.mean(tf.sigmoid(fakeLogits)) as tf.Scalar,
  };
}

/**
 * One step of Algorithm 1 with k = 1: update D on a real batch and an equal-sized fake
 * batch, then update G with the non-saturating loss on the same fakes, scored by the
 * updated D. Works for any Generator/Discriminator pair (gan.ts, dcgan.ts).
 *
 * G runs forward once, as in PyTorch's loop (`fake = G(z)`, D step on `fake.detach()`,
 * then G step on `fake`): the D step is taken inside G's gradient function, after G's
 * forward pass and before D scores the fakes for G's loss. tfjs's tapes nest: the D step's
 * operations land on G's tape too, but none of them leads from G's variables to G's loss
 * (D's updated weights are variables, read afresh), so G's backward pass prunes them.
 */
export function ganStep(models: GanModels, optimizers: GanOptimizers, realBatch: tf.Tensor2D, rng: Rng): GanStepResult {
  const { generator, discriminator } = models;
  const batch = realBatch.shape[0];
  const stats = tf.tidy(() => {
    const z = tf.randomNormal([batch, generator.latentDim], 0, 1, 'float32', rng.seed()) as tf.Tensor2D; // [b, latent]
    const dSeed = rng.seed();
    const gSeed = rng.seed();
    let dStats: tf.Tensor1D | undefined; // [dLoss, dReal, dFake]
    const g = tf.variableGrads(() => {
      const fake = generator.apply(z, { training: true }); // [b, 784], on G's tape

      let means: tf.Tensor1D | undefined;
      const d = tf.variableGrads(() => {
        const { loss, dReal, dFake } = discriminatorLoss(discriminator, realBatch, fake, dSeed);
        means = tf.keep(tf.stack([dReal, dFake]) as tf.Tensor1D);
        return loss;
      }, discriminator.variables); // `fake` is not among the variables: a constant here
      optimizers.discriminator.applyGradients(d.grads);
      dStats = tf.keep(tf.concat([tf.reshape(d.value, [1]), means!]) as tf.Tensor1D);
      means!.dispose(); // kept out of the inner gradient's scope, so owned by no tidy

      const logits = discriminator.apply(fake, { training: true, seed: gSeed }); // [b, 1], updated D
      return bceWithLogits(logits, 1);
    }, generator.variables);
    optimizers.generator.applyGradients(g.grads);

    const out = tf.concat([tf.reshape(dStats!, [3]), tf.reshape(g.value, [1])]); // [dLoss, dReal, dFake, gLoss]
    dStats!.dispose(); // kept out of the gradient's scope above, so owned by no tidy
    return out;
  });
  const [dLoss, dReal, dFake, gLoss] = stats.dataSync();
  stats.dispose();
  return { dLoss: dLoss!, gLoss: gLoss!, dReal: dReal!, dFake: dFake! };
}

export function ganParamCount(models: GanModels): { generator: number; discriminator: number } {
  return { generator: countParams(models.generator.variables), discriminator: countParams(models.discriminator.variables) };
}
