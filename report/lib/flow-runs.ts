/**
 * Section 4.4's runs: class-conditional flow matching (src/ml/models/flow-matching.ts) with
 * a small space-to-depth U-Net, trained by the shared trainer and judged by the shared
 * evaluation protocol, as every model of sections 4.2 and 4.3. Report glue: it knows the
 * runtime (progress, profiles) and the models.
 */
import { byProfile, checkpoint, progress, resume, seed } from 'report:runtime';
import { loadMnist } from '../../src/ml/data/mnist.ts';
import { registerFastConvolutions } from '../../src/ml/kernels/fast-conv.ts';
import { classifierFromWeights, disposeClassifier, type Classifier, type StoredWeight } from '../../src/ml/models/classifier.ts';
import {
  createFlowModel,
  flowMatchingStep,
  functionEvaluations,
  heldOutLoss,
  sampleFlow,
  withEmaWeights,
  type FlowModel,
  type OdeMethod,
  type TimeSampling,
} from '../../src/ml/models/flow-matching.ts';
import { unetParamCount } from '../../src/ml/models/unet.ts';
import { evaluateSamples, memorisation, protocolReference, type MemorisationMetrics, type ProtocolReference, type SampleMetrics } from '../../src/ml/metrics/protocol.ts';
import { Rng } from '../../src/ml/random.ts';
import { assignWeights, createTrainer, type Metrics, type TrainState } from '../../src/ml/trainer.ts';
import { profileSizes } from './gan-runs.ts';

/** How images are drawn: ODE solver, steps, guidance weight w, EMA or trained weights. */
export interface Sampler {
  method: OdeMethod;
  steps: number;
  guidance: number;
  weights: 'ema' | 'trained';
}

/** The sampler of every training-cell evaluation: Heun, 10 steps (20 network evaluations), no guidance, EMA weights. */
export const DEFAULT_SAMPLER: Sampler = { method: 'heun', steps: 10, guidance: 1, weights: 'ema' };

export interface FlowConfig {
  label: string;
  /** Total epochs (counting those of `resumeFrom`). */
  epochs: number;
  batchSize?: number;
  learningRate?: number;
  channels?: readonly [number, number];
  labelDropout?: number;
  timeSampling?: TimeSampling;
  emaDecay?: number;
  resumeFrom?: TrainState;
}

export interface FlowEpoch {
  epoch: number;
  /** Means over the epoch's steps: loss, velocityGradNorm. */
  train: Metrics;
  /** Flow-matching loss on held-out test images (fixed noise and times), EMA and trained weights. */
  heldOut: { ema: number; trained: number };
  /** The protocol on `quickSamples` samples of the default sampler (FD biased upwards by the small sample). */
  quick: Omit<SampleMetrics, 'histogram'>;
  /** Seconds of the epoch's training steps. */
  seconds: number;
}

export interface FlowRun {
  label: string;
  seedIndex: number;
  batchSize: number;
  learningRate: number;
  stepsPerEpoch: number;
  params: number;
  epochs: FlowEpoch[];
  quickSamples: number;
  /** The protocol on 5 000 samples (full profile) of the default sampler after the last epoch. */
  final: SampleMetrics;
  memorisation: MemorisationMetrics;
  /** Wall-clock ms per image of the default sampler (measured on the final samples). */
  samplingMs: number;
  /** Network evaluations per image of the default sampler. */
  nfe: number;
  /** 100 final samples, class i % 10 for image i, [100, 784] in [0, 1]. */
  samples: Float32Array;
  /** The whole training state (weights, EMA, Adam moments), to continue or to sample later. */
  state: TrainState;
}

/** Run k's random stream: from the document seed and k (not the cell), so a continued run keeps its streams. */
export function flowRng(seedIndex: number): Rng {
  return new Rng(seed).fork(`flow run ${seedIndex}`);
}

export const FLOW_EPOCHS = byProfile({ full: 3, quick: 1 });

/** Balanced labels 0…9, 0…9, … for n images. */
export function cyclicLabels(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => i % 10);
}

/** Samples of `sampler` with balanced labels, and wall-clock ms per image. */
export function drawSamples(model: FlowModel, sampler: Sampler, n: number, sampleSeed: number): { images: Float32Array; msPerImage: number } {
  const start = performance.now();
  const images = sampleFlow(model, { labels: cyclicLabels(n), ...sampler, seed: sampleSeed });
  return { images, msPerImage: (performance.now() - start) / n };
}

function withoutHistogram({ histogram: _, ...metrics }: SampleMetrics): Omit<SampleMetrics, 'histogram'> {
  return metrics;
}

/** The protocol's reference (5 000 test images, full profile) and the training images for memorisation. */
export function flowReference(classifier: Classifier): ProtocolReference {
  const sizes = profileSizes();
  const test = loadMnist({ split: 'test' });
  return protocolReference(classifier, test.images.subarray(0, sizes.referenceImages * 784), loadMnist({ split: 'train' }).images);
}

export async function trainFlowRun(config: FlowConfig, classifierWeights: readonly StoredWeight[], seedIndex: number): Promise<FlowRun> {
  registerFastConvolutions();
  const rng = flowRng(seedIndex);
  const sizes = profileSizes();
  const { batchSize = 128, learningRate = 1e-3, channels = [32, 64], labelDropout = 0.1, timeSampling = 'uniform', emaDecay = 0.999 } = config;
  const quickSamples = byProfile({ full: 1000, quick: 100 });
  const heldOutImages = byProfile({ full: 2000, quick: 100 });
  const train = loadMnist({ split: 'train', limit: sizes.trainImages });
  const test = loadMnist({ split: 'test' });
  const heldOut = {
    images: test.images.subarray(test.images.length - heldOutImages * 784), // the end of the test set: not the protocol's reference
    labels: test.labels.subarray(test.labels.length - heldOutImages),
  };
  const classifier = classifierFromWeights(classifierWeights);
  const reference = flowReference(classifier);
  const model = createFlowModel({ channels, emaDecay, rng: rng.fork('init') });
  const evalRng = rng.fork('evaluation');
  const heldOutSeed = rng.fork('held-out noise').seed();
  // The snapshot of an earlier attempt at this cell (killed, timed out or stopped), if any.
  const snapshot = resume<TrainState>();
  const trainer = createTrainer({
    networks: { velocity: { variables: model.net.variables, statistics: model.ema, optimizer: { learningRate, beta1: 0.9, beta2: 0.999 } } },
    data: train.images,
    labels: train.labels,
    rowSize: 784,
    batchSize,
    stepsPerEpoch: sizes.stepsPerEpoch,
    seed: rng.fork('trainer').seed(),
    resumeFrom: snapshot ?? config.resumeFrom,
    step: (ctx) => flowMatchingStep(ctx, model, { labelDropout, timeSampling }),
    onStepEnd: ({ epoch, index, stepsPerEpoch, metrics }) => {
      if (index % 10 === 0) {
        progress({ step: epoch * stepsPerEpoch + index, total: config.epochs * stepsPerEpoch, label: config.label, metrics: { loss: metrics['loss']! } });
      }
    },
    onEpochEnd: (record) => {
      const ema = withEmaWeights(model, () => heldOutLoss(model.net, heldOut.images, heldOut.labels, heldOutSeed));
      const trained = heldOutLoss(model.net, heldOut.images, heldOut.labels, heldOutSeed);
      const { images } = drawSamples(model, DEFAULT_SAMPLER, quickSamples, evalRng.fork(`epoch ${record.epoch}`).seed());
      const quick = withoutHistogram(evaluateSamples(classifier, images, reference));
      progress({ step: record.epoch, total: config.epochs, label: `${config.label}: held-out loss ${ema.toFixed(4)}, FD(${quickSamples}) ${quick.fd.toFixed(1)}` });
      return { heldOutEma: ema, heldOutTrained: trained, ...quick };
    },
  });
  try {
    // One epoch at a time, each followed by a snapshot: a run killed part-way resumes from
    // its last finished epoch, bit for bit as if uninterrupted — the trainer's state holds
    // the weights, the EMA, Adam's moments, the epoch count and the histories, and every
    // random stream is a function of the seed and the epoch.
    while (trainer.epoch < config.epochs) {
      await trainer.fit(trainer.epoch + 1);
      checkpoint(trainer.state());
    }
    const epochs: FlowEpoch[] = trainer.history.map((record) => {
      const { heldOutEma, heldOutTrained, ...quick } = record.eval as Metrics;
      return {
        epoch: record.epoch,
        train: record.train,
        heldOut: { ema: heldOutEma!, trained: heldOutTrained! },
        quick: quick as unknown as Omit<SampleMetrics, 'histogram'>,
        seconds: record.seconds,
      };
    });
    const { images, msPerImage } = drawSamples(model, DEFAULT_SAMPLER, sizes.evalSamples, rng.fork('final samples').seed());
    return {
      label: config.label,
      seedIndex,
      batchSize,
      learningRate,
      stepsPerEpoch: trainer.stepsPerEpoch,
      params: unetParamCount(model.net),
      epochs,
      quickSamples,
      final: evaluateSamples(classifier, images, reference),
      memorisation: memorisation(images.subarray(0, sizes.memorisationSamples * 784), reference.train),
      samplingMs: msPerImage,
      nfe: functionEvaluations(DEFAULT_SAMPLER.method, DEFAULT_SAMPLER.steps),
      samples: images.slice(0, 100 * 784),
      state: trainer.state(),
    };
  } finally {
    trainer.dispose();
    model.dispose();
    disposeClassifier(classifier);
  }
}

/** A flow model with the weights (and EMA) of a stored run's state. */
export function flowModelFromState(state: TrainState, channels: readonly [number, number] = [32, 64]): FlowModel {
  const model = createFlowModel({ channels, rng: new Rng(0) });
  assignWeights({ variables: model.net.variables, statistics: model.ema }, state.weights['velocity']!);
  return model;
}

export interface SamplerResult {
  sampler: Sampler;
  nfe: number;
  metrics: Omit<SampleMetrics, 'histogram'>;
  msPerImage: number;
}

/**
 * Each sampler on `n` samples of each stored run (the same initial noise for every sampler
 * of a run: paired comparisons). Returns one row per sampler with one result per run.
 */
export function samplerSweep(
  runs: readonly Pick<FlowRun, 'state' | 'seedIndex'>[],
  samplers: readonly Sampler[],
  classifierWeights: readonly StoredWeight[],
  n: number,
  label: string,
): { sampler: Sampler; nfe: number; runs: SamplerResult[] }[] {
  registerFastConvolutions();
  const classifier = classifierFromWeights(classifierWeights);
  const reference = flowReference(classifier);
  const rows = samplers.map((sampler) => ({ sampler, nfe: functionEvaluations(sampler.method, sampler.steps) * (sampler.guidance === 0 || sampler.guidance === 1 ? 1 : 2), runs: [] as SamplerResult[] }));
  try {
    let done = 0;
    for (const run of runs) {
      const model = flowModelFromState(run.state);
      const noiseSeed = flowRng(run.seedIndex).fork(`sampler sweep ${label}`).seed();
      try {
        for (const row of rows) {
          const { images, msPerImage } = drawSamples(model, row.sampler, n, noiseSeed);
          row.runs.push({ sampler: row.sampler, nfe: row.nfe, metrics: withoutHistogram(evaluateSamples(classifier, images, reference)), msPerImage });
          progress({ step: ++done, total: runs.length * rows.length, label });
        }
      } finally {
        model.dispose();
      }
    }
    return rows;
  } finally {
    disposeClassifier(classifier);
  }
}
