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
import { assert } from '../assert.ts';
import { IMAGE_PIXELS } from '../data/image.ts';
import { Rng } from '../random.ts';
import type { StepContext } from '../trainer.ts';
import { applyDense, countParams, createDense, denseVariables, type Dense } from './dense.ts';

/** Forward-pass mode: `training` uses batch statistics where a network has batch norm. */
export interface ForwardOptions {
  training?: boolean;
}

/**
 * What every VAE of the report offers (the course's MLP here, the GAN-decoder variants of
 * vae-decoders.ts): a Gaussian encoder q(z|x) = N(mu, diag exp(logVar)) and a Bernoulli
 * decoder p(x|z) given by its logits; the prior is N(0, I).
 */
export interface VaeModel {
  readonly inputDim: number;
  readonly latentDim: number;
  readonly variables: tf.Variable[];
  /** Saved with the model but not trained (batch-norm running averages), if any. */
  readonly statistics?: tf.Variable[];
  /** x [b, inputDim] in [0, 1] → mu, logVar [b, latentDim]. */
  encode(x: tf.Tensor2D, options?: ForwardOptions): { mu: tf.Tensor2D; logVar: tf.Tensor2D };
  /** z = mu + exp(logVar / 2) · ε, ε ~ N(0, I) drawn with `seed`. */
  reparameterize(mu: tf.Tensor2D, logVar: tf.Tensor2D, seed: number): tf.Tensor2D;
  /** z [b, latentDim] → logits [b, inputDim]. */
  decodeLogits(z: tf.Tensor2D, options?: ForwardOptions): tf.Tensor2D;
  /** z [b, latentDim] → Bernoulli means [b, inputDim] in (0, 1). */
  decode(z: tf.Tensor2D, options?: ForwardOptions): tf.Tensor2D;
  dispose(): void;
}

export interface Vae extends VaeModel {
  readonly hiddenDim: number;
  readonly layers: { encoder: Dense; mu: Dense; logVar: Dense; decoderHidden: Dense; decoderOutput: Dense };
}

/** z = mu + exp(logVar / 2) · ε with ε ~ N(0, I) drawn from `seed` (Kingma & Welling 2014, §2.4). */
export function reparameterize(mu: tf.Tensor2D, logVar: tf.Tensor2D, seed: number): tf.Tensor2D {
  const epsilon = tf.randomNormal(mu.shape, 0, 1, 'float32', seed); // [b, latent]
  return tf.add(mu, tf.mul(tf.exp(tf.mul(logVar, 0.5)), epsilon));
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
  const { inputDim = IMAGE_PIXELS, hiddenDim, latentDim, rng } = options;
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
    reparameterize,
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
export function vaeStep(ctx: Pick<StepContext, 'x' | 'rng' | 'minimize'>, vae: VaeModel, options: { beta?: number } = {}): void {
  const { beta = 1 } = options;
  const batch = ctx.x;
  if (batch.shape[1] !== vae.inputDim) {
    throw new Error(`vaeStep: expected a batch [b, ${vae.inputDim}], got [${batch.shape.join(', ')}]`);
  }
  const seed = ctx.rng.seed();
  ctx.minimize('vae', () => {
    const { mu, logVar } = vae.encode(batch, { training: true });
    const z = vae.reparameterize(mu, logVar, seed); // [b, latent]
    const recon = tf.mean(reconstructionLoss(vae.decodeLogits(z, { training: true }), batch)) as tf.Scalar;
    const kl = tf.mean(klLoss(mu, logVar)) as tf.Scalar;
    return { loss: tf.add(recon, tf.mul(kl, beta)) as tf.Scalar, reconstructionLoss: recon, klLoss: kl };
  });
}

export function vaeParamCount(vae: Pick<VaeModel, 'variables'>): number {
  return countParams(vae.variables);
}

// ---------------------------------------------------------------------------------------
// Evaluation: ELBO, importance-weighted bound, latent statistics

/** Rows of `images` ([n, dim]) from `start`, `size` of them, as a tensor (caller disposes). */
function rowsTensor(images: Float32Array, dim: number, start: number, size: number): tf.Tensor2D {
  return tf.tensor2d(images.subarray(start * dim, (start + size) * dim), [size, dim]);
}

function imageCount(images: Float32Array, dim: number, name: string): number {
  const n = images.length / dim;
  assert(Number.isInteger(n) && n > 0, `${name}: images length ${images.length} is not a positive multiple of ${dim}`);
  return n;
}

export interface ElboParts {
  /** Per image, nats: ELBO = −(reconstruction + kl); reconstruction = E_q[−log p(x|z)] (Monte Carlo), kl in closed form. */
  elbo: Float64Array;
  reconstruction: Float64Array;
  kl: Float64Array;
}

/**
 * The ELBO of each image (Kingma & Welling 2014, eq. 10): the reconstruction term is
 * estimated with `samples` draws of z ~ q(z|x) (default 1), the KL term is exact.
 * `images` [n, inputDim]; evaluation mode (batch norm uses its running averages).
 */
export function elboPerImage(vae: VaeModel, images: Float32Array, seed: number, options: { samples?: number; chunk?: number } = {}): ElboParts {
  const { samples = 1, chunk = 1000 } = options;
  const n = imageCount(images, vae.inputDim, 'elboPerImage');
  const rng = new Rng(seed);
  const out: ElboParts = { elbo: new Float64Array(n), reconstruction: new Float64Array(n), kl: new Float64Array(n) };
  for (let start = 0; start < n; start += chunk) {
    const size = Math.min(chunk, n - start);
    const seeds = Array.from({ length: samples }, () => rng.seed());
    const parts = tf.tidy(() => {
      const x = rowsTensor(images, vae.inputDim, start, size);
      const { mu, logVar } = vae.encode(x);
      const recon = tf.div(tf.addN(seeds.map((s) => reconstructionLoss(vae.decodeLogits(vae.reparameterize(mu, logVar, s)), x))), samples); // [size]
      return tf.stack([recon, klLoss(mu, logVar)]); // [2, size]
    });
    const values = parts.dataSync();
    parts.dispose();
    for (let i = 0; i < size; i++) {
      const r = values[i]!;
      const k = values[size + i]!;
      out.reconstruction[start + i] = r;
      out.kl[start + i] = k;
      out.elbo[start + i] = -(r + k);
    }
  }
  return out;
}

/**
 * log w_k = log p(x|z_k) + log p(z_k) − log q(z_k|x) for z_k = mu + σ ⊙ ε_k, with the given
 * ε [b, s, latent] for the images x [b, inputDim]: [b, s] (nats). The Gaussian
 * normalisers (2π)^(−d/2) of p(z) and q(z|x) cancel:
 *   log p(z) − log q(z|x) = −½‖z‖² + ½‖ε‖² + ½ Σ log σ².
 * Call inside tf.tidy.
 */
export function logImportanceWeights(vae: VaeModel, x: tf.Tensor2D, epsilon: tf.Tensor3D): tf.Tensor2D {
  const [b, s, latent] = epsilon.shape;
  assert(b === x.shape[0] && latent === vae.latentDim, `logImportanceWeights: ε [${epsilon.shape.join(', ')}] does not fit x [${x.shape.join(', ')}] and latent ${vae.latentDim}`);
  const { mu, logVar } = vae.encode(x); // [b, latent] each
  const sd = tf.exp(tf.mul(logVar, 0.5));
  const z = tf.add(tf.expandDims(mu, 1), tf.mul(tf.expandDims(sd, 1), epsilon)); // [b, s, latent]
  const logits = tf.reshape(vae.decodeLogits(tf.reshape(z, [b * s, latent]) as tf.Tensor2D), [b, s, vae.inputDim]); // [b, s, D]
  const logLikelihood = tf.sum(tf.sub(tf.mul(tf.expandDims(x, 1), logits), tf.softplus(logits)), 2); // log p(x|z) [b, s]
  const logPriorOverPosterior = tf.add(
    tf.mul(0.5, tf.sub(tf.sum(tf.square(epsilon), 2), tf.sum(tf.square(z), 2))), // [b, s]
    tf.mul(0.5, tf.sum(logVar, 1, true)), // [b, 1]
  );
  return tf.add(logLikelihood, logPriorOverPosterior) as tf.Tensor2D;
}

export interface BoundOptions {
  /** Rows (images × samples) decoded per pass (default 4 096); memory ≈ 4 · rows · inputDim · 4 bytes. */
  rowsPerPass?: number;
  /** Called after each chunk of images with the number done. */
  onProgress?(done: number, total: number): void;
}

/**
 * The importance-weighted bound of Burda, Grosse & Salakhutdinov (2016), eq. 8, per image:
 *   L_K(x) = log (1/K) Σ_k p(x, z_k) / q(z_k|x),  z_k ~ q(z|x) independent,
 * a lower bound on log p(x) in nats with L_1 = ELBO in expectation and E[L_K] increasing in
 * K (their Theorem 1). The log-mean-exp runs in float64 over chunks of samples (a running
 * maximum and a rescaled sum), so K is limited only by time. Evaluation mode.
 * Cost: K decoder passes per image (K = 1 000 on 10 000 MNIST images is 10⁷ decodes).
 */
export function importanceWeightedBound(vae: VaeModel, x: Float32Array, K: number, seed: number, options: BoundOptions = {}): Float64Array {
  assert(Number.isInteger(K) && K >= 1, `importanceWeightedBound: K must be a positive integer, got ${K}`);
  const { rowsPerPass = 4096 } = options;
  const n = imageCount(x, vae.inputDim, 'importanceWeightedBound');
  const samplesPerPass = Math.min(K, rowsPerPass);
  const imagesPerPass = Math.max(1, Math.floor(rowsPerPass / samplesPerPass));
  const rng = new Rng(seed);
  const bound = new Float64Array(n);
  for (let start = 0; start < n; start += imagesPerPass) {
    const size = Math.min(imagesPerPass, n - start);
    const max = new Float64Array(size).fill(-Infinity);
    const sum = new Float64Array(size); // Σ exp(log w − max)
    const images = rowsTensor(x, vae.inputDim, start, size);
    try {
      for (let done = 0; done < K; done += samplesPerPass) {
        const s = Math.min(samplesPerPass, K - done);
        const epsilonSeed = rng.seed();
        const logW = tf.tidy(() => logImportanceWeights(vae, images, tf.randomNormal([size, s, vae.latentDim], 0, 1, 'float32', epsilonSeed) as tf.Tensor3D));
        const values = logW.dataSync();
        logW.dispose();
        for (let i = 0; i < size; i++) {
          let chunkMax = -Infinity;
          for (let k = 0; k < s; k++) chunkMax = Math.max(chunkMax, values[i * s + k]!);
          const m = Math.max(max[i]!, chunkMax);
          let total = max[i] === -Infinity ? 0 : sum[i]! * Math.exp(max[i]! - m);
          for (let k = 0; k < s; k++) total += Math.exp(values[i * s + k]! - m);
          max[i] = m;
          sum[i] = total;
        }
      }
    } finally {
      images.dispose();
    }
    for (let i = 0; i < size; i++) bound[start + i] = max[i]! + Math.log(sum[i]! / K);
    options.onProgress?.(start + size, n);
  }
  return bound;
}

/** Posterior means mu(x) of `images` [n, inputDim]: [n, latentDim] (evaluation mode). */
export function posteriorMeans(vae: VaeModel, images: Float32Array, chunk = 1000): { mu: Float32Array; logVar: Float32Array } {
  const n = imageCount(images, vae.inputDim, 'posteriorMeans');
  const mu = new Float32Array(n * vae.latentDim);
  const logVar = new Float32Array(n * vae.latentDim);
  for (let start = 0; start < n; start += chunk) {
    const size = Math.min(chunk, n - start);
    const [m, v] = tf.tidy(() => {
      const out = vae.encode(rowsTensor(images, vae.inputDim, start, size));
      return [out.mu, out.logVar];
    });
    mu.set(m!.dataSync(), start * vae.latentDim);
    logVar.set(v!.dataSync(), start * vae.latentDim);
    tf.dispose([m!, v!]);
  }
  return { mu, logVar };
}

export interface LatentUsage {
  /** Per latent dimension: Cov_x(E_q[z_i]) = variance over images of mu_i(x). */
  activity: Float64Array;
  /** Dimensions with activity > threshold (Burda et al. 2016, §5.2: 10⁻²). */
  activeUnits: number;
  /** Per dimension: mean over images of KL(q(z_i|x) ‖ N(0, 1)), nats. */
  klPerDimension: Float64Array;
}

/**
 * Active units (Burda et al. 2016, eq. 14: unit i is active when Cov_x(E_{q(z|x)}[z_i]) > 10⁻²)
 * and the KL term split by dimension (Σ_i klPerDimension[i] = mean KL per image): both
 * measure which latent dimensions the model uses; a collapsed dimension has q(z_i|x) ≈ N(0, 1)
 * for every x, activity ≈ 0 and KL ≈ 0.
 */
export function latentUsage(vae: VaeModel, images: Float32Array, threshold = 0.01): LatentUsage {
  const { mu, logVar } = posteriorMeans(vae, images);
  const d = vae.latentDim;
  const n = mu.length / d;
  const mean = new Float64Array(d);
  const kl = new Float64Array(d);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < d; i++) {
      const m = mu[r * d + i]!;
      const lv = logVar[r * d + i]!;
      mean[i] = mean[i]! + m;
      kl[i] = kl[i]! + 0.5 * (Math.exp(lv) + m * m - 1 - lv);
    }
  }
  const activity = new Float64Array(d);
  for (let i = 0; i < d; i++) mean[i] = mean[i]! / n;
  for (let r = 0; r < n; r++) for (let i = 0; i < d; i++) activity[i] = activity[i]! + (mu[r * d + i]! - mean[i]!) ** 2;
  for (let i = 0; i < d; i++) {
    activity[i] = activity[i]! / Math.max(n - 1, 1);
    kl[i] = kl[i]! / n;
  }
  return { activity, activeUnits: activity.reduce((count, a) => count + (a > threshold ? 1 : 0), 0), klPerDimension: kl };
}

/** Decoder means for codes z ([n, latentDim], flattened) in chunks, evaluation mode: [n, inputDim] in (0, 1). */
export function decodeMeans(vae: Pick<VaeModel, 'latentDim' | 'inputDim' | 'decode'>, z: Float32Array, chunk = 1000): Float32Array {
  const n = z.length / vae.latentDim;
  const out = new Float32Array(n * vae.inputDim);
  for (let start = 0; start < n; start += chunk) {
    const size = Math.min(chunk, n - start);
    const images = tf.tidy(() => vae.decode(rowsTensor(z, vae.latentDim, start, size)));
    out.set(images.dataSync(), start * vae.inputDim);
    images.dispose();
  }
  return out;
}
