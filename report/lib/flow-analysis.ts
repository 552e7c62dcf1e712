/**
 * Section 4.4's analyses of stored flow-matching runs (none of them trains): guidance
 * sweeps with the referee's agreement with the requested class, ODE trajectories, nearest
 * training images of samples, and the summaries the prose quotes.
 */
import * as tf from '@tensorflow/tfjs';
import { progress } from 'report:runtime';
import { registerFastConvolutions } from '../../src/ml/kernels/fast-conv.ts';
import { classifierFromWeights, disposeClassifier, predict, type StoredWeight } from '../../src/ml/models/classifier.ts';
import { guidedField, withEmaWeights } from '../../src/ml/models/flow-matching.ts';
import { evaluateSamples, meanSd, type SampleMetrics } from '../../src/ml/metrics/protocol.ts';
import { cyclicLabels, drawSamples, flowModelFromState, flowReference, flowRng, type FlowRun, type Sampler } from './flow-runs.ts';

export interface GuidanceResult {
  guidance: number;
  /** Protocol metrics per run. */
  metrics: Omit<SampleMetrics, 'histogram'>[];
  /** Share of samples the referee labels as the class they were asked for, per run. */
  agreement: number[];
  /** 20 samples (classes 0…9 twice) of the first run, same noise for every w. */
  samples: Float32Array;
}

/** Protocol metrics and class agreement of `n` samples per run for each guidance weight (same noise for every w). */
export function guidanceSweep(
  runs: readonly Pick<FlowRun, 'state' | 'seedIndex'>[],
  weights: readonly number[],
  base: Omit<Sampler, 'guidance'>,
  classifierWeights: readonly StoredWeight[],
  n: number,
): GuidanceResult[] {
  registerFastConvolutions();
  const classifier = classifierFromWeights(classifierWeights);
  const reference = flowReference(classifier);
  const labels = cyclicLabels(n);
  const results: GuidanceResult[] = weights.map((guidance) => ({ guidance, metrics: [], agreement: [], samples: new Float32Array(0) }));
  let done = 0;
  try {
    for (const [r, run] of runs.entries()) {
      const model = flowModelFromState(run.state);
      const noiseSeed = flowRng(run.seedIndex).fork('guidance sweep').seed();
      try {
        for (const result of results) {
          const { images } = drawSamples(model, { ...base, guidance: result.guidance }, n, noiseSeed);
          const { histogram: _, ...metrics } = evaluateSamples(classifier, images, reference);
          const predicted = predict(classifier, images);
          let agree = 0;
          predicted.forEach((p, i) => (agree += p === labels[i] ? 1 : 0));
          result.metrics.push(metrics);
          result.agreement.push(agree / n);
          if (r === 0) result.samples = images.slice(0, 20 * 784);
          progress({ step: ++done, total: runs.length * weights.length, label: `guidance w = ${result.guidance}` });
        }
      } finally {
        model.dispose();
      }
    }
    return results;
  } finally {
    disposeClassifier(classifier);
  }
}

/**
 * The states x_t along the ODE (Heun, `steps` steps, EMA weights, no guidance) of one image
 * per class: [10 · (steps + 1), 784] in [0, 1] (row = class, column = t = 0, 1/steps, …, 1).
 */
export function trajectories(state: FlowRun['state'], seedIndex: number, steps: number): Float32Array {
  registerFastConvolutions();
  const model = flowModelFromState(state);
  const out = new Float32Array(10 * (steps + 1) * 784);
  try {
    withEmaWeights(model, () => {
      const field = guidedField(model.net, cyclicLabels(10), 1);
      let x = tf.randomNormal([10, 784], 0, 1, 'float32', flowRng(seedIndex).fork('trajectories').seed()) as tf.Tensor2D;
      const put = (k: number) => {
        const pixels = tf.tidy(() => tf.clipByValue(tf.div(tf.add(x, 1), 2), 0, 1).dataSync() as Float32Array);
        for (let c = 0; c < 10; c++) out.set(pixels.subarray(c * 784, (c + 1) * 784), (c * (steps + 1) + k) * 784);
      };
      put(0);
      const h = 1 / steps;
      for (let k = 0; k < steps; k++) {
        const next = tf.tidy(() => {
          const v = field(x, k * h);
          const v2 = field(tf.add(x, tf.mul(v, h)) as tf.Tensor2D, (k + 1) * h);
          return tf.add(x, tf.mul(tf.add(v, v2), h / 2)) as tf.Tensor2D;
        });
        x.dispose();
        x = next;
        put(k + 1);
      }
      x.dispose();
    });
    return out;
  } finally {
    model.dispose();
  }
}

/** For each of `samples` ([n, 784]), the nearest of `train` ([m, 784]) in Euclidean distance: its index and distance. */
export function nearestTrainingImages(samples: Float32Array, train: Float32Array): { index: number; distance: number }[] {
  const n = samples.length / 784;
  const m = train.length / 784;
  const result: { index: number; distance: number }[] = [];
  for (let i = 0; i < n; i++) {
    let best = Infinity;
    let bestIndex = -1;
    const a = i * 784;
    for (let j = 0; j < m; j++) {
      const b = j * 784;
      let d = 0;
      for (let p = 0; p < 784 && d < best; p++) {
        const diff = samples[a + p]! - train[b + p]!;
        d += diff * diff;
      }
      if (d < best) {
        best = d;
        bestIndex = j;
      }
    }
    result.push({ index: bestIndex, distance: Math.sqrt(best) });
  }
  return result;
}

/** Mean ± sd over runs of the last epoch's numbers and the final protocol. */
export function flowAcrossRuns(runs: readonly FlowRun[]) {
  const last = (r: FlowRun) => r.epochs[r.epochs.length - 1]!;
  return {
    fd: meanSd(runs.map((r) => r.final.fd)),
    precision: meanSd(runs.map((r) => r.final.precision)),
    recall: meanSd(runs.map((r) => r.final.recall)),
    digits: meanSd(runs.map((r) => r.final.digitsCovered)),
    entropy: meanSd(runs.map((r) => r.final.entropy)),
    heldOut: meanSd(runs.map((r) => last(r).heldOut.ema)),
    heldOutTrained: meanSd(runs.map((r) => last(r).heldOut.trained)),
    trainMinutes: meanSd(runs.map((r) => r.epochs.reduce((s, e) => s + e.seconds, 0) / 60)),
    minutesPerEpoch: meanSd(runs.flatMap((r) => r.epochs.map((e) => e.seconds / 60))),
    samplingMs: meanSd(runs.map((r) => r.samplingMs)),
    meanNearest: meanSd(runs.map((r) => r.memorisation.meanNearest)),
    p01Nearest: meanSd(runs.map((r) => r.memorisation.p01Nearest)),
  };
}
