/**
 * The VAE and stacked auto-encoder runs of section 4.3, measured the same way every time
 * (after report/lib/gan-runs.ts): the shared trainer runs the loop; after each epoch the
 * held-out objective is computed on the test set, and every `protocolEvery` epochs the shared
 * evaluation protocol (src/ml/metrics/protocol.ts) judges 5 000 images decoded from fresh
 * prior codes z ~ N(0, I).
 *
 * What is judged: the decoder's MEANS, sigmoid(logits) ∈ (0, 1) — the grey images the
 * course script shows — not Bernoulli samples drawn from them (a Bernoulli draw of every
 * pixel gives salt-and-pepper binary images that neither the referee nor a reader would
 * take for the model's output). The GANs of 4.2 are judged on their outputs mapped to [0, 1].
 *
 * Data: training on grey MNIST in [0, 1] (as the course script); the likelihood bounds
 * (ELBO, importance-weighted bound) are reported on the BINARISED test set (threshold 0.5,
 * as 4.1's AIS log-likelihood), where a Bernoulli decoder defines a proper likelihood.
 * Report glue: it knows the runtime (progress, profile) and the models.
 */
import * as tf from '@tensorflow/tfjs';
import { byProfile, progress, seed } from 'report:runtime';
import { IMAGE_PIXELS } from '../../src/ml/data/image.ts';
import { loadMnist } from '../../src/ml/data/mnist.ts';
import { createStackedAutoencoder, encodeAll, trainStackedAutoencoder, autoencoderParamCount, type AutoencoderStage, type StackedAutoencoder } from '../../src/ml/models/autoencoder.ts';
import { classifierFromWeights, disposeClassifier, type Classifier, type StoredWeight } from '../../src/ml/models/classifier.ts';
import { countParams } from '../../src/ml/models/dense.ts';
import {
  COURSE_VAE,
  COURSE_VAE_ADAM,
  createVae,
  decodeMeans,
  elboPerImage,
  importanceWeightedBound,
  latentUsage,
  posteriorMeans,
  reconstructionLoss,
  vaeStep,
  type VaeModel,
} from '../../src/ml/models/vae.ts';
import { evaluateSamples, meanSd, memorisation, protocolReference, type MemorisationMetrics, type ProtocolReference, type SampleMetrics } from '../../src/ml/metrics/protocol.ts';
import { Rng } from '../../src/ml/random.ts';
import { createTrainer, networkWeights, type AdamOptions, type Metrics } from '../../src/ml/trainer.ts';

// ---------------------------------------------------------------------------------------
// Profile sizes, seeds, shared helpers

/** Sizes of the profile: the full one measures; the quick one only proves the cells run (≤ 15 s a cell). */
export function profileSizes() {
  return byProfile({
    full: {
      trainImages: undefined as number | undefined,
      stepsPerEpoch: undefined as number | undefined,
      evalSamples: 5000,
      referenceImages: 5000,
      memorisationSamples: 1000,
      testImages: 10000,
      /** Training images whose codes a Gaussian is fitted to (Q2). */
      fitImages: 10000,
      iwaeK: 1000,
    },
    quick: { trainImages: 3000, stepsPerEpoch: 2, evalSamples: 300, referenceImages: 500, memorisationSamples: 50, testImages: 500, fitImages: 500, iwaeK: 20 },
  });
}

/**
 * The random stream of VAE run `seedIndex` (1, 2, 3): from the document seed and the index,
 * not the cell, so that run k of every VAE configuration with the same architecture starts
 * from the same weights and sees the same batches (the β sweep is paired with Q1's runs,
 * whose first epochs are exactly a shorter run's).
 */
export function vaeRunRng(seedIndex: number): Rng {
  return new Rng(seed).fork(`vae run ${seedIndex}`);
}

export function autoencoderRunRng(seedIndex: number): Rng {
  return new Rng(seed).fork(`autoencoder run ${seedIndex}`);
}

export function normalCodes(n: number, dim: number, rng: Rng): Float32Array {
  return new Float32Array(n * dim).map(() => rng.normal());
}

/**
 * Codes drawn from the Gaussian fitted (mean, full covariance, float64) to `codes`
 * ([m, dim]): c = mean + L·ε with L the Cholesky factor of the covariance (+ 10⁻⁶·trace/dim
 * on the diagonal).
 */
export function fittedGaussianCodes(codes: Float32Array, dim: number, n: number, rng: Rng): Float32Array {
  const m = codes.length / dim;
  const mean = new Float64Array(dim);
  for (let r = 0; r < m; r++) for (let i = 0; i < dim; i++) mean[i] = mean[i]! + codes[r * dim + i]! / m;
  const cov = new Float64Array(dim * dim);
  for (let r = 0; r < m; r++) {
    for (let i = 0; i < dim; i++) {
      const a = codes[r * dim + i]! - mean[i]!;
      for (let j = 0; j <= i; j++) cov[i * dim + j] = cov[i * dim + j]! + (a * (codes[r * dim + j]! - mean[j]!)) / (m - 1);
    }
  }
  let trace = 0;
  for (let i = 0; i < dim; i++) trace += cov[i * dim + i]!;
  for (let i = 0; i < dim; i++) cov[i * dim + i] = cov[i * dim + i]! + (1e-6 * trace) / dim;
  const chol = new Float64Array(dim * dim); // lower triangular
  for (let i = 0; i < dim; i++) {
    for (let j = 0; j <= i; j++) {
      let s = cov[i * dim + j]!;
      for (let k = 0; k < j; k++) s -= chol[i * dim + k]! * chol[j * dim + k]!;
      chol[i * dim + j] = i === j ? Math.sqrt(Math.max(s, 1e-12)) : s / chol[j * dim + j]!;
    }
  }
  const out = new Float32Array(n * dim);
  const eps = new Float64Array(dim);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < dim; i++) eps[i] = rng.normal();
    for (let i = 0; i < dim; i++) {
      let v = mean[i]!;
      for (let k = 0; k <= i; k++) v += chol[i * dim + k]! * eps[k]!;
      out[r * dim + i] = v;
    }
  }
  return out;
}

/** Φ⁻¹(p), the standard normal quantile (Acklam's rational approximation, relative error < 1.2·10⁻⁹). */
export function normalQuantile(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return (((((c[0]! * q + c[1]!) * q + c[2]!) * q + c[3]!) * q + c[4]!) * q + c[5]!) / ((((d[0]! * q + d[1]!) * q + d[2]!) * q + d[3]!) * q + 1);
  }
  if (p > 1 - low) return -normalQuantile(1 - p);
  const q = p - 0.5;
  const r = q * q;
  return ((((((a[0]! * r + a[1]!) * r + a[2]!) * r + a[3]!) * r + a[4]!) * r + a[5]!) * q) / (((((b[0]! * r + b[1]!) * r + b[2]!) * r + b[3]!) * r + b[4]!) * r + 1);
}

/** First two principal components of rows [n, dim] (power iteration with deflation, float64): [n, 2] projections and the explained variance shares. */
export function pca2(rows: Float32Array, dim: number): { projection: Float32Array; explained: [number, number] } {
  const n = rows.length / dim;
  const mean = new Float64Array(dim);
  for (let r = 0; r < n; r++) for (let i = 0; i < dim; i++) mean[i] = mean[i]! + rows[r * dim + i]! / n;
  const cov = new Float64Array(dim * dim);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < dim; i++) {
      const a = rows[r * dim + i]! - mean[i]!;
      for (let j = 0; j < dim; j++) cov[i * dim + j] = cov[i * dim + j]! + (a * (rows[r * dim + j]! - mean[j]!)) / (n - 1);
    }
  }
  let total = 0;
  for (let i = 0; i < dim; i++) total += cov[i * dim + i]!;
  const components: Float64Array[] = [];
  const values: number[] = [];
  for (let c = 0; c < 2; c++) {
    let v = new Float64Array(dim).map((_, i) => 1 + i / dim);
    let lambda = 0;
    for (let it = 0; it < 500; it++) {
      const w = new Float64Array(dim);
      for (let i = 0; i < dim; i++) for (let j = 0; j < dim; j++) w[i] = w[i]! + cov[i * dim + j]! * v[j]!;
      const norm = Math.hypot(...w);
      if (norm === 0) break;
      lambda = norm;
      v = w.map((x) => x / norm);
    }
    components.push(v);
    values.push(lambda);
    for (let i = 0; i < dim; i++) for (let j = 0; j < dim; j++) cov[i * dim + j] = cov[i * dim + j]! - lambda * v[i]! * v[j]!;
  }
  const projection = new Float32Array(n * 2);
  for (let r = 0; r < n; r++) {
    for (let c = 0; c < 2; c++) {
      let s = 0;
      for (let i = 0; i < dim; i++) s += (rows[r * dim + i]! - mean[i]!) * components[c]![i]!;
      projection[r * 2 + c] = s;
    }
  }
  return { projection, explained: [values[0]! / total, values[1]! / total] };
}

/** Test-set reconstruction of decoded codes in both metrics: MSE per pixel, BCE summed per image (nats). */
function reconstructionMetrics(images: Float32Array, decodeLogits: (x: tf.Tensor2D) => tf.Tensor2D, chunk = 1000): { mse: number; bce: number } {
  const n = images.length / IMAGE_PIXELS;
  let se = 0;
  let bce = 0;
  for (let start = 0; start < n; start += chunk) {
    const size = Math.min(chunk, n - start);
    const sums = tf.tidy(() => {
      const x = tf.tensor2d(images.subarray(start * IMAGE_PIXELS, (start + size) * IMAGE_PIXELS), [size, IMAGE_PIXELS]);
      const logits = decodeLogits(x);
      return tf.stack([tf.sum(tf.square(tf.sub(tf.sigmoid(logits), x))), tf.sum(reconstructionLoss(logits, x))]);
    });
    const [a, b] = sums.dataSync();
    sums.dispose();
    se += a!;
    bce += b!;
  }
  return { mse: se / (n * IMAGE_PIXELS), bce: bce / n };
}

/** Milliseconds per image to decode 1 000 prior codes (median of 3). */
function samplingMs(decode: (z: Float32Array) => Float32Array, dim: number, rng: Rng): number {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const z = normalCodes(1000, dim, rng);
    const start = performance.now();
    decode(z);
    times.push((performance.now() - start) / 1000);
  }
  return times.sort((a, b) => a - b)[1]!;
}

interface Protocol {
  classifier: Classifier;
  reference: ProtocolReference;
  trainUnit: Float32Array;
  dispose(): void;
}

function protocolFor(classifierWeights: readonly StoredWeight[]): Protocol {
  const sizes = profileSizes();
  const trainUnit = loadMnist({ split: 'train' }).images; // [60000, 784] in [0, 1], memorisation check
  const test = loadMnist({ split: 'test' });
  const classifier = classifierFromWeights(classifierWeights);
  const reference = protocolReference(classifier, test.images.subarray(0, sizes.referenceImages * IMAGE_PIXELS), trainUnit);
  return { classifier, reference, trainUnit, dispose: () => disposeClassifier(classifier) };
}

function stripHistogram(m: SampleMetrics): SampleMetrics {
  return { ...m, histogram: [...m.histogram] };
}

// ---------------------------------------------------------------------------------------
// VAE runs

export type VaeArchitecture = 'course' | 'mlp-gan' | 'dcgan';

export interface VaeRunConfig {
  label: string;
  architecture: VaeArchitecture;
  epochs: number;
  /** Course: latent 100, hidden 128 (the GAN decoders: latent 10). */
  latentDim?: number;
  hiddenDim?: number;
  /** Weight of the KL term (1: the ELBO; Higgins et al.'s β otherwise). */
  beta?: number;
  /** Default: course 3 000, mlp-gan 512 (4.2's GAN), dcgan 64 (4.2's DCGAN). */
  batchSize?: number;
  /** Default: the course's Adam(1e-3, β 0.5, 0.999); dcgan: Adam(2e-4, β 0.5, 0.999) as 4.2's DCGAN. */
  optimizer?: AdamOptions;
  trainImages?: number;
  stepsPerEpoch?: number;
  /** Judge prior samples with the protocol every n epochs and at the last (default 1). */
  protocolEvery?: number;
  /** Importance-weighted bound at the end: K samples on the first `images` binarised test images. */
  iwae?: { K: number; images: number };
  /** Q2: test reconstruction in both metrics and samples from a Gaussian fitted to the training codes. */
  compareWithAutoencoder?: boolean;
  /** Nearest-training-image distances of 1 000 final samples (default true; ≈ 7 s). */
  memorisation?: boolean;
  /** Grey test images for the per-epoch test terms (default: the profile's, all 10 000). */
  epochTestImages?: number;
  /** Keep the posterior means of the first n test images (2-D latent: raw; else their 2 principal components). */
  posteriorImages?: number;
  /** 2-D latent: decode a side × side grid at Gaussian quantiles. */
  manifoldSide?: number;
  keepWeights?: boolean;
  /**
   * The model factory for architectures other than 'course' (report/lib/vae-gan-runs.ts
   * supplies the GAN-decoder VAEs): kept out of this file so that the course VAE's cells do
   * not bundle gan.ts and dcgan.ts, whose edits would otherwise re-run all of section 4.3.
   */
  model?: (rng: Rng) => { vae: VaeModel; params: { encoder: number; decoder: number } };
}

export interface VaeEpoch {
  epoch: number;
  /** Means over the epoch's steps: loss (= reconstructionLoss + β·klLoss), reconstructionLoss, klLoss (nats per image), vaeGradNorm. */
  train: Metrics;
  /** The same terms on the grey test set (one z sample per image, β = 1 for `loss`), and the active units. */
  test: { loss: number; reconstruction: number; kl: number; activeUnits: number };
  /** Protocol metrics of decoder means of prior samples, on the epochs judged. */
  eval?: SampleMetrics;
  seconds: number;
}

export interface VaeRun {
  label: string;
  architecture: VaeArchitecture;
  latentDim: number;
  beta: number;
  batchSize: number;
  stepsPerEpoch: number;
  epochs: VaeEpoch[];
  params: { encoder: number; decoder: number };
  /** Last protocol evaluation (N(0, I) codes, decoder means). */
  protocol: SampleMetrics;
  memorisation?: MemorisationMetrics;
  /** Binarised test set: mean per image (nats) of the ELBO and its parts, and the standard error of the ELBO mean. */
  binarised: { images: number; elbo: number; elboSe: number; reconstruction: number; kl: number };
  /** Importance-weighted bound on the first `images` binarised test images, and the ELBO on the same images. */
  iwae?: { K: number; images: number; bound: number; boundSe: number; elbo: number; gap: number; gapSe: number };
  /** Latent usage on the grey test set. */
  latent: { activeUnits: number; activity: number[]; klPerDimension: number[] };
  /** Q2 extras. */
  reconstruction?: { mse: number; bce: number };
  fitted?: { protocol: SampleMetrics; samples: Float32Array };
  /** Posterior means (2-D) or their first two principal components, with the digit labels. */
  posterior?: { points: Float32Array; labels: Uint8Array; explained?: [number, number] };
  manifold?: { side: number; images: Float32Array };
  /** 64 decoder means of prior codes, [64, 784]; 16 Bernoulli samples of the first 16, [16, 784]. */
  samples: Float32Array;
  bernoulliSamples: Float32Array;
  /** 8 grey test images and their reconstructions (decoded posterior means), [16, 784]. */
  reconstructions: Float32Array;
  samplingMs: number;
  trainingSeconds: number;
  weights?: Float32Array[];
}

function createVaeModel(config: VaeRunConfig, rng: Rng): { vae: VaeModel; params: { encoder: number; decoder: number } } {
  if (config.architecture === 'course') {
    const vae = createVae({ hiddenDim: config.hiddenDim ?? COURSE_VAE.hiddenDim, latentDim: config.latentDim ?? COURSE_VAE.latentDim, rng });
    const l = vae.layers;
    return { vae, params: { encoder: countParams([l.encoder.kernel, l.encoder.bias, l.mu.kernel, l.mu.bias, l.logVar.kernel, l.logVar.bias]), decoder: countParams([l.decoderHidden.kernel, l.decoderHidden.bias, l.decoderOutput.kernel, l.decoderOutput.bias]) } };
  }
  if (!config.model) throw new Error(`trainVaeRun: architecture '${config.architecture}' needs a model factory (report/lib/vae-gan-runs.ts)`);
  return config.model(rng);
}

export function defaultBatchSize(architecture: VaeArchitecture): number {
  return architecture === 'course' ? 3000 : architecture === 'mlp-gan' ? 512 : 64;
}

export const DCGAN_VAE_ADAM = { learningRate: 2e-4, beta1: 0.5, beta2: 0.999 } as const;

export async function trainVaeRun(config: VaeRunConfig, classifierWeights: readonly StoredWeight[], seedIndex: number): Promise<VaeRun> {
  const rng = vaeRunRng(seedIndex);
  const sizes = profileSizes();
  const beta = config.beta ?? 1;
  const batchSize = config.batchSize ?? defaultBatchSize(config.architecture);
  const optimizer = config.optimizer ?? (config.architecture === 'dcgan' ? DCGAN_VAE_ADAM : COURSE_VAE_ADAM);
  const protocolEvery = config.protocolEvery ?? 1;
  const train = loadMnist({ split: 'train', limit: config.trainImages ?? sizes.trainImages });
  const test = loadMnist({ split: 'test', limit: sizes.testImages });
  const protocol = protocolFor(classifierWeights);
  const { vae, params } = createVaeModel(config, rng.fork(`init ${config.architecture} ${config.latentDim ?? ''}`));
  const evalRng = rng.fork('evaluation');
  const decode = (z: Float32Array) => decodeMeans(vae, z);
  const judge = (epoch: number) => evaluateSamples(protocol.classifier, decode(normalCodes(sizes.evalSamples, vae.latentDim, evalRng.fork(`epoch ${epoch}`))), protocol.reference);
  const trainer = createTrainer({
    networks: { vae: { variables: vae.variables, statistics: vae.statistics, optimizer } },
    data: train.images,
    rowSize: IMAGE_PIXELS,
    batchSize,
    stepsPerEpoch: config.stepsPerEpoch ?? sizes.stepsPerEpoch,
    seed: rng.fork('trainer').seed(),
    step: (ctx) => vaeStep(ctx, vae, { beta }),
    onStepEnd: ({ epoch, index, stepsPerEpoch, metrics }) => {
      if (index % 5 === 0) {
        progress({ step: epoch * stepsPerEpoch + index, total: config.epochs * stepsPerEpoch, label: config.label, metrics: { loss: metrics['loss']!, kl: metrics['klLoss']! } });
      }
    },
    onEpochEnd: (record) => {
      const epochTest = test.images.subarray(0, Math.min(config.epochTestImages ?? test.count, test.count) * IMAGE_PIXELS);
      const parts = elboPerImage(vae, epochTest, evalRng.fork(`test ${record.epoch}`).seed());
      const usage = latentUsage(vae, epochTest);
      const evalMetrics: Metrics = { testReconstruction: mean(parts.reconstruction), testKl: mean(parts.kl), activeUnits: usage.activeUnits };
      if (record.epoch % protocolEvery === 0 || record.epoch === config.epochs) {
        const m = judge(record.epoch);
        protocolResults.set(record.epoch, m);
        progress({ step: record.epoch, total: config.epochs, label: `${config.label}: FD ${m.fd.toFixed(1)}` });
      }
      return evalMetrics;
    },
  });
  const protocolResults = new Map<number, SampleMetrics>();
  try {
    await trainer.fit(config.epochs);
    const epochs: VaeEpoch[] = trainer.history.map((r) => ({
      epoch: r.epoch,
      train: r.train,
      test: { loss: r.eval!['testReconstruction']! + r.eval!['testKl']!, reconstruction: r.eval!['testReconstruction']!, kl: r.eval!['testKl']!, activeUnits: r.eval!['activeUnits']! },
      eval: protocolResults.has(r.epoch) ? stripHistogram(protocolResults.get(r.epoch)!) : undefined,
      seconds: r.seconds,
    }));
    const trainingSeconds = epochs.reduce((a, e) => a + e.seconds, 0);
    // Final measurements.
    const binary = loadMnist({ split: 'test', binarize: true, limit: sizes.testImages }).images;
    const parts = elboPerImage(vae, binary, rng.fork('binarised elbo').seed());
    const elboStats = meanSd([...parts.elbo]);
    const binarised = { images: parts.elbo.length, elbo: elboStats.mean, elboSe: elboStats.sd / Math.sqrt(elboStats.n), reconstruction: mean(parts.reconstruction), kl: mean(parts.kl) };
    let iwae: VaeRun['iwae'];
    if (config.iwae) {
      const images = Math.min(config.iwae.images, binary.length / IMAGE_PIXELS);
      const subset = binary.subarray(0, images * IMAGE_PIXELS);
      const bound = importanceWeightedBound(vae, subset, config.iwae.K, rng.fork('iwae').seed(), {
        onProgress: (done, total) => {
          if (done % 200 < 4 || done === total) progress({ step: done, total, label: `${config.label}: IWAE K = ${config.iwae!.K}` });
        },
      });
      const gaps = [...bound].map((b, i) => b - parts.elbo[i]!);
      const boundStats = meanSd([...bound]);
      const gapStats = meanSd(gaps);
      iwae = { K: config.iwae.K, images, bound: boundStats.mean, boundSe: boundStats.sd / Math.sqrt(images), elbo: mean(parts.elbo.subarray(0, images)), gap: gapStats.mean, gapSe: gapStats.sd / Math.sqrt(images) };
    }
    const usage = latentUsage(vae, test.images);
    const latent = { activeUnits: usage.activeUnits, activity: [...usage.activity], klPerDimension: [...usage.klPerDimension] };
    let reconstruction: VaeRun['reconstruction'];
    let fitted: VaeRun['fitted'];
    if (config.compareWithAutoencoder) {
      reconstruction = reconstructionMetrics(test.images, (x) => vae.decodeLogits(vae.encode(x).mu));
      const codes = posteriorMeans(vae, train.images.subarray(0, Math.min(sizes.fitImages, train.count) * IMAGE_PIXELS)).mu;
      const images = decode(fittedGaussianCodes(codes, vae.latentDim, sizes.evalSamples, rng.fork('fitted codes')));
      fitted = { protocol: stripHistogram(evaluateSamples(protocol.classifier, images, protocol.reference)), samples: images.slice(0, 16 * IMAGE_PIXELS) };
    }
    let posterior: VaeRun['posterior'];
    if (config.posteriorImages) {
      const n = Math.min(config.posteriorImages, test.count);
      const { mu } = posteriorMeans(vae, test.images.subarray(0, n * IMAGE_PIXELS));
      const labels = test.labels.slice(0, n);
      if (vae.latentDim === 2) posterior = { points: mu, labels };
      else {
        const { projection, explained } = pca2(mu, vae.latentDim);
        posterior = { points: projection, labels, explained };
      }
    }
    let manifold: VaeRun['manifold'];
    if (config.manifoldSide && vae.latentDim === 2) {
      const side = config.manifoldSide;
      const q = Array.from({ length: side }, (_, i) => normalQuantile((i + 0.5) / side));
      const z = new Float32Array(side * side * 2);
      // Row r (top to bottom) has z₂ from high to low; column c has z₁ from low to high.
      for (let r = 0; r < side; r++) for (let c = 0; c < side; c++) z.set([q[c]!, q[side - 1 - r]!], (r * side + c) * 2);
      manifold = { side, images: decode(z) };
    }
    const finalSamples = decode(normalCodes(Math.max(64, sizes.memorisationSamples), vae.latentDim, rng.fork('final samples')));
    const bernoulliRng = rng.fork('bernoulli');
    const bernoulliSamples = finalSamples.slice(0, 16 * IMAGE_PIXELS).map((p) => (bernoulliRng.next() < p ? 1 : 0));
    const shown = test.images.slice(0, 8 * IMAGE_PIXELS);
    const recon = tf.tidy(() => vae.decode(vae.encode(tf.tensor2d(shown, [8, IMAGE_PIXELS])).mu));
    const reconstructions = new Float32Array(16 * IMAGE_PIXELS);
    reconstructions.set(shown, 0);
    reconstructions.set(recon.dataSync(), 8 * IMAGE_PIXELS);
    recon.dispose();
    const last = epochs.at(-1)!;
    return {
      label: config.label,
      architecture: config.architecture,
      latentDim: vae.latentDim,
      beta,
      batchSize,
      stepsPerEpoch: Math.min(config.stepsPerEpoch ?? sizes.stepsPerEpoch ?? Infinity, Math.floor(train.count / batchSize)),
      epochs,
      params,
      protocol: last.eval!,
      memorisation: config.memorisation === false ? undefined : memorisation(finalSamples.subarray(0, sizes.memorisationSamples * IMAGE_PIXELS), protocol.trainUnit),
      binarised,
      iwae,
      latent,
      reconstruction,
      fitted,
      posterior,
      manifold,
      samples: finalSamples.slice(0, 64 * IMAGE_PIXELS),
      bernoulliSamples,
      reconstructions,
      samplingMs: samplingMs(decode, vae.latentDim, rng.fork('timing')),
      trainingSeconds,
      weights: config.keepWeights ? networkWeights({ variables: vae.variables, statistics: vae.statistics }) : undefined,
    };
  } finally {
    trainer.dispose();
    vae.dispose();
    protocol.dispose();
  }
}

function mean(values: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i]!;
  return s / values.length;
}

// ---------------------------------------------------------------------------------------
// Stacked auto-encoder runs (Q2)

export interface AutoencoderRunConfig {
  label: string;
  /** Epochs of each stage (full profile: 5 + 5 + 40, the VAE's 50 passes in all). */
  epochs: Record<AutoencoderStage, number>;
  hiddenDim?: number;
  codeDim?: number;
  batchSize?: number;
  optimizer?: AdamOptions;
}

export interface AutoencoderEpoch {
  stage: AutoencoderStage;
  epoch: number;
  /** Mean training MSE of the stage's own reconstruction (level 2: of the level-1 features). */
  trainMse: number;
  /** End-to-end test MSE per pixel of the whole stack (grey test images) after this epoch. */
  testMse: number;
  seconds: number;
}

export interface AutoencoderRun {
  label: string;
  codeDim: number;
  params: number;
  epochs: AutoencoderEpoch[];
  /** Grey test set, codes decoded: MSE per pixel and BCE summed per image (nats). */
  reconstruction: { mse: number; bce: number };
  /** Protocol of decoded codes from N(0, I) and from a Gaussian fitted to the training codes. */
  standard: SampleMetrics;
  fitted: SampleMetrics;
  /** Code statistics on the training images: mean per-dimension sd and the mean code norm. */
  codes: { meanSd: number; meanNorm: number };
  /** 16 decoded N(0, I) codes and 16 decoded fitted-Gaussian codes, [32, 784]. */
  samples: Float32Array;
  /** 8 grey test images and their reconstructions, [16, 784]. */
  reconstructions: Float32Array;
  trainingSeconds: number;
}

export async function trainAutoencoderRun(config: AutoencoderRunConfig, classifierWeights: readonly StoredWeight[], seedIndex: number): Promise<AutoencoderRun> {
  const rng = autoencoderRunRng(seedIndex);
  const sizes = profileSizes();
  const train = loadMnist({ split: 'train', limit: sizes.trainImages });
  const test = loadMnist({ split: 'test', limit: sizes.testImages });
  const protocol = protocolFor(classifierWeights);
  const ae: StackedAutoencoder = createStackedAutoencoder({ hiddenDim: config.hiddenDim ?? COURSE_VAE.hiddenDim, codeDim: config.codeDim ?? COURSE_VAE.latentDim, rng: rng.fork('init') });
  const decodeLogitsOfImages = (x: tf.Tensor2D) => ae.decodeLogits(ae.encode(x));
  const decodeCodes = (z: Float32Array) => {
    const n = z.length / ae.codeDim;
    const out = new Float32Array(n * IMAGE_PIXELS);
    for (let start = 0; start < n; start += 1000) {
      const size = Math.min(1000, n - start);
      const images = tf.tidy(() => ae.decode(tf.tensor2d(z.subarray(start * ae.codeDim, (start + size) * ae.codeDim), [size, ae.codeDim])));
      out.set(images.dataSync(), start * IMAGE_PIXELS);
      images.dispose();
    }
    return out;
  };
  const totalEpochs = config.epochs.level1 + config.epochs.level2 + config.epochs.finetune;
  const offset: Record<AutoencoderStage, number> = { level1: 0, level2: config.epochs.level1, finetune: config.epochs.level1 + config.epochs.level2 };
  const epochs: AutoencoderEpoch[] = [];
  try {
    await trainStackedAutoencoder(ae, {
      data: train.images,
      epochs: config.epochs,
      batchSize: config.batchSize ?? 3000,
      optimizer: config.optimizer ?? COURSE_VAE_ADAM,
      seed: rng.fork('trainer').seed(),
      stepsPerEpoch: sizes.stepsPerEpoch,
      onStepEnd: (stage, { epoch, index, stepsPerEpoch, metrics }) => {
        if (index % 5 === 0) progress({ step: (offset[stage] + epoch) * stepsPerEpoch + index, total: totalEpochs * stepsPerEpoch, label: `${config.label} (${stage})`, metrics: { mse: metrics['loss']! } });
      },
      onEpochEnd: (stage, record) => {
        epochs.push({ stage, epoch: offset[stage] + record.epoch, trainMse: record.train['loss']!, testMse: reconstructionMetrics(test.images, decodeLogitsOfImages).mse, seconds: record.seconds });
      },
    });
    const reconstruction = reconstructionMetrics(test.images, decodeLogitsOfImages);
    const codes = encodeAll(ae, train.images.subarray(0, Math.min(sizes.fitImages, train.count) * IMAGE_PIXELS));
    const d = ae.codeDim;
    const n = codes.length / d;
    let sdSum = 0;
    for (let i = 0; i < d; i++) {
      let m = 0;
      let s = 0;
      for (let r = 0; r < n; r++) m += codes[r * d + i]! / n;
      for (let r = 0; r < n; r++) s += (codes[r * d + i]! - m) ** 2 / (n - 1);
      sdSum += Math.sqrt(s);
    }
    let normSum = 0;
    for (let r = 0; r < n; r++) normSum += Math.hypot(...codes.subarray(r * d, (r + 1) * d));
    const standardImages = decodeCodes(normalCodes(sizes.evalSamples, d, rng.fork('standard codes')));
    const fittedImages = decodeCodes(fittedGaussianCodes(codes, d, sizes.evalSamples, rng.fork('fitted codes')));
    const samples = new Float32Array(32 * IMAGE_PIXELS);
    samples.set(standardImages.subarray(0, 16 * IMAGE_PIXELS), 0);
    samples.set(fittedImages.subarray(0, 16 * IMAGE_PIXELS), 16 * IMAGE_PIXELS);
    const shown = test.images.slice(0, 8 * IMAGE_PIXELS);
    const recon = tf.tidy(() => ae.decode(ae.encode(tf.tensor2d(shown, [8, IMAGE_PIXELS]))));
    const reconstructions = new Float32Array(16 * IMAGE_PIXELS);
    reconstructions.set(shown, 0);
    reconstructions.set(recon.dataSync(), 8 * IMAGE_PIXELS);
    recon.dispose();
    return {
      label: config.label,
      codeDim: d,
      params: autoencoderParamCount(ae),
      epochs,
      reconstruction,
      standard: stripHistogram(evaluateSamples(protocol.classifier, standardImages, protocol.reference)),
      fitted: stripHistogram(evaluateSamples(protocol.classifier, fittedImages, protocol.reference)),
      codes: { meanSd: sdSum / d, meanNorm: normSum / n },
      samples,
      reconstructions,
      trainingSeconds: epochs.reduce((a, e) => a + e.seconds, 0),
    };
  } finally {
    ae.dispose();
    protocol.dispose();
  }
}

// ---------------------------------------------------------------------------------------
// Configurations and summaries of section 4.3

/** Q1: the course's 50 epochs (batch 3 000: 20 steps an epoch). */
export const COURSE_EPOCHS = byProfile({ full: 50, quick: 2 });
/** Q2: stacked AE, level 1 / level 2 / fine-tuning: 50 passes over the data in all, as the VAE's 50 epochs. */
export const AUTOENCODER_EPOCHS = byProfile({ full: { level1: 5, level2: 5, finetune: 40 }, quick: { level1: 1, level2: 1, finetune: 1 } });
/**
 * Q3: epochs of the β sweep, compared with Q1's β = 1 runs at the same epoch (the same runs up
 * to there). Must be an epoch Q1 judges with the protocol (a multiple of `protocolEvery` in
 * `courseVae`): vae-latent reads the FD there.
 */
export const BETA_EPOCHS = byProfile({ full: 10, quick: 2 });
export const LATENT2D_EPOCHS = byProfile({ full: 30, quick: 2 });

/** Q1's course VAE, run `seedIndex`. IWAE (K = 1 000) on all 10 000 test images for run 1, on the first 1 000 for runs 2 and 3 (time). */
export function courseVae(classifierWeights: readonly StoredWeight[], seedIndex: number): Promise<VaeRun> {
  const sizes = profileSizes();
  return trainVaeRun({
    label: `course VAE, run ${seedIndex}`,
    architecture: 'course',
    epochs: COURSE_EPOCHS,
    protocolEvery: byProfile({ full: 10, quick: 1 }),
    iwae: { K: sizes.iwaeK, images: seedIndex === 1 ? sizes.testImages : byProfile({ full: 1000, quick: 50 }) },
    compareWithAutoencoder: true,
    posteriorImages: seedIndex === 1 ? byProfile({ full: 3000, quick: 300 }) : undefined,
  }, classifierWeights, seedIndex);
}

/** Q3: the β sweep, runs 1–3 of one β, BETA_EPOCHS epochs each. */
export async function betaRuns(beta: number, classifierWeights: readonly StoredWeight[]): Promise<VaeRun[]> {
  const runs: VaeRun[] = [];
  for (const seedIndex of [1, 2, 3]) {
    const run = await trainVaeRun({ label: `β = ${beta}, run ${seedIndex}`, architecture: 'course', beta, epochs: BETA_EPOCHS, protocolEvery: BETA_EPOCHS, memorisation: false }, classifierWeights, seedIndex);
    runs.push(slim(run));
  }
  return runs;
}

/** Drops the per-run images a summary does not need (keeps 16 samples). */
export function slim(run: VaeRun): VaeRun {
  return { ...run, samples: run.samples.slice(0, 16 * IMAGE_PIXELS), reconstructions: run.reconstructions.slice(0, 0) };
}

export interface MeanSdSeries {
  mean: number[];
  sd: number[];
}

export function seriesOf(values: number[][]): MeanSdSeries {
  const length = Math.min(...values.map((v) => v.length));
  const stats = Array.from({ length }, (_, i) => meanSd(values.map((v) => v[i]!)));
  return { mean: stats.map((s) => s.mean), sd: stats.map((s) => s.sd) };
}

/** Per-epoch mean ± sd over runs of the training and test terms; protocol metrics on the judged epochs. */
export function vaeAcrossRuns(runs: readonly VaeRun[]) {
  const n = Math.min(...runs.map((r) => r.epochs.length));
  const epochs = Array.from({ length: n }, (_, i) => i + 1);
  const train = (key: string) => seriesOf(runs.map((r) => r.epochs.slice(0, n).map((e) => e.train[key]!)));
  const test = (key: 'loss' | 'reconstruction' | 'kl' | 'activeUnits') => seriesOf(runs.map((r) => r.epochs.slice(0, n).map((e) => e.test[key])));
  const judged = runs[0]!.epochs.slice(0, n).filter((e) => e.eval).map((e) => e.epoch);
  const evalKey = (key: 'fd' | 'precision' | 'recall' | 'digitsCovered' | 'entropy') => seriesOf(runs.map((r) => judged.map((epoch) => r.epochs[epoch - 1]!.eval![key])));
  return {
    epochs,
    train: { loss: train('loss'), reconstruction: train('reconstructionLoss'), kl: train('klLoss') },
    test: { loss: test('loss'), reconstruction: test('reconstruction'), kl: test('kl'), activeUnits: test('activeUnits') },
    judged,
    eval: { fd: evalKey('fd'), precision: evalKey('precision'), recall: evalKey('recall'), digitsCovered: evalKey('digitsCovered'), entropy: evalKey('entropy') },
    seconds: seriesOf(runs.map((r) => r.epochs.slice(0, n).map((e) => e.seconds))),
  };
}

export type Stat = ReturnType<typeof meanSd>;

export function statOf(values: readonly number[]): Stat {
  return meanSd(values);
}

export function fmt(s: Stat, digits: number): string {
  return `${s.mean.toFixed(digits)} ± ${s.sd.toFixed(digits)}`;
}
