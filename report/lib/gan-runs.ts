/**
 * One GAN training run of section 4.2, measured the same way every time: the shared
 * trainer (src/ml/trainer.ts) runs the course's loop, and after each epoch the shared
 * evaluation protocol (src/ml/metrics/protocol.ts) judges 5 000 fresh samples. Report glue:
 * it knows the runtime (progress) and the models, so it lives beside the report.
 */
import * as tf from '@tensorflow/tfjs';
import { byProfile, progress, seed } from 'report:runtime';
import { loadMnist } from '../../src/ml/data/mnist.ts';
import { createDcDiscriminator, createDcGenerator } from '../../src/ml/models/dcgan.ts';
import { classifierFromWeights, disposeClassifier, type StoredWeight } from '../../src/ml/models/classifier.ts';
import { COURSE_ADAM, createDiscriminator, createGenerator, ganStep, type GanModels, type GanStepOptions, type Generator } from '../../src/ml/models/gan.ts';
import { countParams } from '../../src/ml/models/dense.ts';
import { evaluateSamples, memorisation, protocolReference, type MemorisationMetrics, type SampleMetrics } from '../../src/ml/metrics/protocol.ts';
import { Rng } from '../../src/ml/random.ts';
import { assignWeights, createTrainer, networkWeights, type Metrics, type StepRecord, type TrainState } from '../../src/ml/trainer.ts';

export interface GanRunConfig extends GanStepOptions {
  label: string;
  architecture: 'mlp' | 'dcgan';
  epochs: number;
  /** Learning rate of both networks (course: 1e-3); `discriminatorLearningRate` overrides D's. */
  learningRate?: number;
  discriminatorLearningRate?: number;
  batchSize?: number;
  latentDim?: number;
  /** Training images (default all 60 000) and steps per epoch (default all full batches). */
  trainImages?: number;
  stepsPerEpoch?: number;
  /** Samples judged after each epoch (default 5 000). */
  evalSamples?: number;
  /** Keep every n-th step's losses, D outputs and gradient norms. */
  logEvery?: number;
  /** Return the generator's weights (for later cells). */
  keepGenerator?: boolean;
  /** Return the whole training state, to continue the run in another cell. */
  keepState?: boolean;
  resumeFrom?: TrainState;
}

export interface GanEpoch {
  epoch: number;
  /** Means over the epoch: dLoss, gLoss, dReal, dFake, gradient norms. */
  train: Metrics;
  eval: SampleMetrics;
  seconds: number;
}

export interface GanRun {
  label: string;
  batchSize: number;
  stepsPerEpoch: number;
  epochs: GanEpoch[];
  steps: StepRecord[];
  /** Samples of 16 fixed latent codes after each epoch, [epochs · 16, 784] in [0, 1]. */
  fixedSamples: Float32Array;
  params: { generator: number; discriminator: number };
  /** Milliseconds to generate one image (batch of 1 000, median of 3). */
  samplingMs: number;
  memorisation: MemorisationMetrics;
  /** 64 samples of the final generator in [0, 1], [64, 784]. */
  samples: Float32Array;
  generator?: Float32Array[];
  state?: TrainState;
}

export const FIXED_CODES = 16;

export function createGanModels(config: Pick<GanRunConfig, 'architecture' | 'latentDim'>, rng: Rng): GanModels {
  const latentDim = config.latentDim ?? 10;
  return config.architecture === 'mlp'
    ? { generator: createGenerator({ latentDim, rng }), discriminator: createDiscriminator({ rng }) }
    : { generator: createDcGenerator({ latentDim, rng }), discriminator: createDcDiscriminator({ rng }) };
}

/** Generator outputs for `z` ([n, latent]) mapped from [−1, 1] to [0, 1], in chunks, evaluation mode. */
export function generate(generator: Generator, z: Float32Array, chunk = 1000): Float32Array {
  const n = z.length / generator.latentDim;
  const out = new Float32Array(n * 784);
  for (let start = 0; start < n; start += chunk) {
    const size = Math.min(chunk, n - start);
    const images = tf.tidy(() => {
      const codes = tf.tensor2d(z.subarray(start * generator.latentDim, (start + size) * generator.latentDim), [size, generator.latentDim]);
      return tf.div(tf.add(generator.apply(codes), 1), 2);
    });
    out.set(images.dataSync(), start * 784);
    images.dispose();
  }
  return out;
}

export function normalCodes(n: number, latentDim: number, rng: Rng): Float32Array {
  return new Float32Array(n * latentDim).map(() => rng.normal());
}

/**
 * The random stream of run `seedIndex` (1, 2, 3, …): derived from the document seed and the
 * index, not the cell, so that run k of every configuration starts from the same weights
 * and sees the same batches (paired comparisons).
 */
export function runRng(seedIndex: number): Rng {
  return new Rng(seed).fork(`gan run ${seedIndex}`);
}

/** Sizes of the profile: the full one measures; the quick one only proves the cells run. */
export function profileSizes() {
  return byProfile({
    full: { trainImages: undefined as number | undefined, stepsPerEpoch: undefined as number | undefined, evalSamples: 5000, referenceImages: 5000, memorisationSamples: 1000 },
    quick: { trainImages: 2048, stepsPerEpoch: 3, evalSamples: 300, referenceImages: 500, memorisationSamples: 50 },
  });
}

export async function trainGanRun(config: GanRunConfig, classifierWeights: readonly StoredWeight[], seedIndex: number): Promise<GanRun> {
  const rng = runRng(seedIndex);
  const sizes = profileSizes();
  const batchSize = config.batchSize ?? 512;
  const latentDim = config.latentDim ?? 10;
  const evalSamples = config.evalSamples ?? sizes.evalSamples;
  const learningRate = config.learningRate ?? COURSE_ADAM.learningRate;
  const train = loadMnist({ split: 'train', range: 'pm1', limit: config.trainImages ?? sizes.trainImages });
  const trainUnit = loadMnist({ split: 'train' }).images; // [60000, 784] in [0, 1], memorisation check
  const test = loadMnist({ split: 'test' });
  const classifier = classifierFromWeights(classifierWeights);
  const reference = protocolReference(classifier, test.images.subarray(0, sizes.referenceImages * 784), trainUnit);
  const models = createGanModels(config, rng.fork('init'));
  const statistics = (m: object) => ('statistics' in m ? (m.statistics as tf.Variable[]) : undefined);
  const networks = {
    generator: { variables: models.generator.variables, statistics: statistics(models.generator), optimizer: { ...COURSE_ADAM, learningRate } },
    discriminator: {
      variables: models.discriminator.variables,
      statistics: statistics(models.discriminator),
      optimizer: { ...COURSE_ADAM, learningRate: config.discriminatorLearningRate ?? learningRate },
    },
  };
  const fixedCodes = normalCodes(FIXED_CODES, latentDim, rng.fork('fixed codes'));
  const fixed: Float32Array[] = (config.resumeFrom as (TrainState & { fixed?: Float32Array[] }) | undefined)?.fixed ?? [];
  const evalRng = rng.fork('evaluation');
  /** Referee label histogram of each epoch's samples (the trainer keeps numbers only). */
  const histograms = new Map<number, number[]>(
    ((config.resumeFrom as (TrainState & { histograms?: number[][] }) | undefined)?.histograms ?? []).map((h, i) => [i + 1, h]),
  );
  const trainer = createTrainer({
    networks,
    data: train.images,
    rowSize: 784,
    batchSize,
    stepsPerEpoch: config.stepsPerEpoch ?? sizes.stepsPerEpoch,
    seed: rng.fork('trainer').seed(),
    logEvery: config.logEvery,
    resumeFrom: config.resumeFrom,
    step: (ctx) => ganStep(ctx, models, config),
    onStepEnd: ({ epoch, index, stepsPerEpoch, metrics }) => {
      if (index % 10 === 0) {
        progress({
          step: epoch * stepsPerEpoch + index,
          total: config.epochs * stepsPerEpoch,
          label: config.label,
          metrics: { dLoss: metrics['dLoss']!, gLoss: metrics['gLoss']! },
        });
      }
    },
    onEpochEnd: (record) => {
      const samples = generate(models.generator, normalCodes(evalSamples, latentDim, evalRng.fork(`epoch ${record.epoch}`)));
      fixed.push(generate(models.generator, fixedCodes));
      const { histogram, ...metrics } = evaluateSamples(classifier, samples, reference);
      histograms.set(record.epoch, histogram);
      progress({ step: record.epoch, total: config.epochs, label: `${config.label}: FD ${metrics.fd.toFixed(1)}` });
      return metrics;
    },
  });
  try {
    await trainer.fit(config.epochs);
    const epochs: GanEpoch[] = trainer.history.map((record) => ({
      epoch: record.epoch,
      train: record.train,
      eval: { ...(record.eval as Omit<SampleMetrics, 'histogram'>), histogram: histograms.get(record.epoch) ?? [] },
      seconds: record.seconds,
    }));
    const finalSamples = generate(models.generator, normalCodes(Math.max(64, sizes.memorisationSamples), latentDim, rng.fork('final samples')));
    const timings: number[] = [];
    for (let i = 0; i < 3; i++) {
      const start = performance.now();
      generate(models.generator, normalCodes(1000, latentDim, rng.fork(`timing ${i}`)));
      timings.push((performance.now() - start) / 1000);
    }
    timings.sort((a, b) => a - b);
    const fixedSamples = new Float32Array(fixed.length * FIXED_CODES * 784);
    fixed.forEach((f, i) => fixedSamples.set(f, i * FIXED_CODES * 784));
    const state = config.keepState ? Object.assign(trainer.state(), { fixed, histograms: epochs.map((e) => e.eval.histogram) }) : undefined;
    return {
      label: config.label,
      batchSize,
      stepsPerEpoch: trainer.stepsPerEpoch,
      epochs,
      steps: [...trainer.steps],
      fixedSamples,
      params: { generator: countParams(models.generator.variables), discriminator: countParams(models.discriminator.variables) },
      samplingMs: timings[1]!,
      memorisation: memorisation(finalSamples.subarray(0, sizes.memorisationSamples * 784), trainUnit),
      samples: finalSamples.slice(0, 64 * 784),
      generator: config.keepGenerator ? networkWeights(networks.generator) : undefined,
      state,
    };
  } finally {
    trainer.dispose();
    models.generator.dispose();
    models.discriminator.dispose();
    disposeClassifier(classifier);
  }
}

/** Rebuilds a generator from `GanRun.generator`. */
export function generatorFromWeights(config: Pick<GanRunConfig, 'architecture' | 'latentDim'>, weights: readonly Float32Array[], rng: Rng): GanModels {
  const models = createGanModels(config, rng);
  const generator = models.generator;
  const statistics = 'statistics' in generator ? (generator.statistics as tf.Variable[]) : undefined;
  assignWeights({ variables: generator.variables, statistics }, weights);
  return models;
}

// ---------------------------------------------------------------------------------------
// The runs of section 4.2 and their summaries

/** Epochs of the course runs (the script's 50 do not fit the budget: ≈ 1.75 min per epoch on one core, 3 runs per setting). */
export const FAST_EPOCHS = byProfile({ full: 10, quick: 2 });
export const SLOW_EPOCHS = byProfile({ full: 6, quick: 2 });
export const DOMINANCE_EPOCHS = byProfile({ full: 2, quick: 1 });

/** The course's MLP GAN on all of MNIST in [−1, 1], with per-step logs every 5 steps. */
export function courseGan(
  options: Partial<GanRunConfig> & Pick<GanRunConfig, 'label'>,
  classifierWeights: readonly StoredWeight[],
  seedIndex: number,
): Promise<GanRun> {
  return trainGanRun({ architecture: 'mlp', epochs: FAST_EPOCHS, logEvery: byProfile({ full: 5, quick: 1 }), ...options }, classifierWeights, seedIndex);
}

export interface RunGroup {
  label: string;
  runs: GanRun[];
}

/** A Q2 setting: runs 1–3 for DOMINANCE_EPOCHS epochs (same seeds as the course runs). */
export async function dominanceRuns(options: Partial<GanRunConfig> & Pick<GanRunConfig, 'label'>, classifierWeights: readonly StoredWeight[]): Promise<RunGroup> {
  const runs: GanRun[] = [];
  for (const seedIndex of [1, 2, 3]) {
    const run = await courseGan({ epochs: DOMINANCE_EPOCHS, ...options, label: `${options.label}, run ${seedIndex}` }, classifierWeights, seedIndex);
    runs.push({ ...run, samples: run.samples.subarray(0, 16 * 784) });
  }
  return { label: options.label, runs };
}

/** The DCGAN of Q5: batch 64, Adam(2e-4, β 0.5, 0.999) as in Radford et al.; evaluated every quarter epoch. */
export function dcgan(classifierWeights: readonly StoredWeight[], seedIndex: number): Promise<GanRun> {
  return trainGanRun({
    label: `DCGAN, run ${seedIndex}`,
    architecture: 'dcgan',
    batchSize: 64,
    learningRate: 2e-4,
    epochs: byProfile({ full: 4, quick: 2 }), // four quarter-epoch rounds = one epoch, ≈ 12 min per run on one core
    stepsPerEpoch: byProfile({ full: 234, quick: 2 }),
    logEvery: byProfile({ full: 10, quick: 1 }),
  }, classifierWeights, seedIndex);
}
