/**
 * Fully connected variational auto-encoder with a Bernoulli decoder.
 *
 * Reference: D. P. Kingma and M. Welling, "Auto-Encoding Variational Bayes", ICLR 2014 —
 * §2.4 (reparameterisation z = μ + σ ⊙ ε), Appendix B (the Gaussian KL term in closed
 * form: −½ Σ (1 + log σ² − μ² − σ²)) and Appendix C.1 (Bernoulli MLP decoder). The paper's
 * MNIST experiments use one hidden layer of 400 units and latent size 20 (the benchmark's
 * 784-400-20); the course's script (section 4.3) uses middle_dim 128 and latent_dim 100,
 * Adam(lr 1e-3, β 0.5, 0.999).
 *
 * Encoder: x [b, 784] → ReLU hidden → two heads, mu and logVar [b, latent].
 * Decoder: z → ReLU hidden → logits [b, 784]; the Bernoulli means are sigmoid(logits).
 * The reconstruction loss is computed from the logits (BCE(σ(l), x) = softplus(l) − x·l),
 * equal to the script's BCE on sigmoid outputs but without log(0).
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../random.ts';
import type { StepContext } from '../trainer.ts';
import { applyDense, countParams, createDense, denseVariables, type Dense } from './dense.ts';

export interface Vae {
  readonly inputDim: number;
  readonly hiddenDim: number;
  readonly latentDim: number;
  readonly layers: { encoder: Dense; mu: Dense; logVar: Dense; decoderHidden: Dense; decoderOutput: Dense };
  readonly variables: tf.Variable[];
  /** x [b, inputDim] in [0, 1] → mu, logVar [b, latentDim]. */
  encode(x: tf.Tensor2D): { mu: tf.Tensor2D; logVar: tf.Tensor2D };
  /** z = mu + exp(logVar / 2) · ε, ε ~ N(0, I) drawn with `seed`. */
  reparameterize(mu: tf.Tensor2D, logVar: tf.Tensor2D, seed: number): tf.Tensor2D;
  /** z [b, latentDim] → logits [b, inputDim]. */
  decodeLogits(z: tf.Tensor2D): tf.Tensor2D;
  /** z [b, latentDim] → Bernoulli means [b, inputDim] in (0, 1). */
  decode(z: tf.Tensor2D): tf.Tensor2D;
  dispose(): void;
}

export interface VaeOptions {
  inputDim?: number;
  hiddenDim: number;
  latentDim: number;
  rng: Rng;
}

/** The course's configuration (middle_dim 128, latent_dim 100). */
export const COURSE_VAE = { hiddenDim: 128, latentDim: 100 } as const;
/** Kingma & Welling's MNIST configuration, used by the benchmark. */
export const PAPER_VAE = { hiddenDim: 400, latentDim: 20 } as const;

export function createVae(options: VaeOptions): Vae {
  const { inputDim = 784, hiddenDim, latentDim, rng } = options;
  for (const [name, value] of Object.entries({ inputDim, hiddenDim, latentDim })) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`createVae: ${name} must be a positive integer, got ${value}`);
  }
  const layers = {
    encoder: createDense(inputDim, hiddenDim, rng),
    mu: createDense(hiddenDim, latentDim, rng),
    logVar: createDense(hiddenDim, latentDim, rng),
    decoderHidden: createDense(latentDim, hiddenDim, rng),
    decoderOutput: createDense(hiddenDim, inputDim, rng),
  };
  const variables = denseVariables(Object.values(layers));
  const decodeLogits = (z: tf.Tensor2D): tf.Tensor2D => {
    const h = applyDense(layers.decoderHidden, z, 'relu'); // [b, hidden]
    return applyDense(layers.decoderOutput, h); // [b, inputDim]
  };
  return {
    inputDim,
    hiddenDim,
    latentDim,
    layers,
    variables,
    encode(x) {
      const h = applyDense(layers.encoder, x, 'relu'); // [b, hidden]
      return { mu: applyDense(layers.mu, h), logVar: applyDense(layers.logVar, h) }; // [b, latent] each
    },
    reparameterize(mu, logVar, seed) {
      const epsilon = tf.randomNormal(mu.shape, 0, 1, 'float32', seed); // [b, latent]
      return tf.add(mu, tf.mul(tf.exp(tf.mul(logVar, 0.5)), epsilon));
    },
    decodeLogits,
    decode: (z) => tf.sigmoid(decodeLogits(z)),
    dispose: () => variables.forEach((v) => v.dispose()),
  };
}

/** Σ over pixels of BCE(sigmoid(logits), x), per image: [b]. */
export function reconstructionLoss(logits: tf.Tensor2D, x: tf.Tensor2D): tf.Tensor1D {
  return tf.sum(tf.sub(tf.softplus(logits), tf.mul(x, logits)), 1);
}

/** KL(N(mu, exp(logVar)) ‖ N(0, I)) per image: [b]. */
export function klLoss(mu: tf.Tensor2D, logVar: tf.Tensor2D): tf.Tensor1D {
  return tf.mul(-0.5, tf.sum(tf.sub(tf.add(1, logVar), tf.add(tf.square(mu), tf.exp(logVar))), 1));
}

/** The course script's optimiser: Adam(lr 1e-3, β₁ 0.5, β₂ 0.999). */
export const COURSE_VAE_ADAM = { learningRate: 1e-3, beta1: 0.5, beta2: 0.999 } as const;

/**
 * One gradient step of the network 'vae' through the trainer on the negative ELBO per image,
 * averaged over the batch `ctx.x` ([b, inputDim] in [0, 1]): reconstruction + β·KL
 * (β = 1, the default, is the ELBO; β ≠ 1 is Higgins et al.'s β-VAE objective). Records
 * `loss`, `reconstructionLoss` and `klLoss` (nats per image, KL unweighted).
 */
export function vaeStep(ctx: Pick<StepContext, 'x' | 'rng' | 'minimize'>, vae: Vae, options: { beta?: number } = {}): void {
  const { beta = 1 } = options;
  const batch = ctx.x;
  if (batch.shape[1] !== vae.inputDim) {
    throw new Error(`vaeStep: expected a batch [b, ${vae.inputDim}], got [${batch.shape.join(', ')}]`);
  }
  const seed = ctx.rng.seed();
  ctx.minimize('vae', () => {
    const { mu, logVar } = vae.encode(batch);
    const z = vae.reparameterize(mu, logVar, seed); // [b, latent]
    const recon = tf.mean(reconstructionLoss(vae.decodeLogits(z), batch)) as tf.Scalar;
    const kl = tf.mean(klLoss(mu, logVar)) as tf.Scalar;
    return { loss: tf.add(recon, tf.mul(kl, beta)) as tf.Scalar, reconstructionLoss: recon, klLoss: kl };
  });
}

export function vaeParamCount(vae: Vae): number {
  return countParams(vae.variables);
}
