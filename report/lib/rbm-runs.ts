/**
 * One RBM training run as the course's script does it (scikit-learn semantics), with the
 * measurements the report needs after every iteration: the pseudo-likelihood the script
 * prints, and the reconstruction error of unseen test images. Progress goes to the runtime.
 */
import { progress } from 'report:runtime';
import { aisLogPartition, baseRateVisibleBias, estimateLogLikelihood } from '../../src/ml/models/rbm-ais.ts';
import { createRbm, disposeRbm, rbmFromData, rbmToData, reconstruct, type RbmData } from '../../src/ml/models/rbm.ts';
import { fitRbm } from '../../src/ml/models/rbm-train.ts';
import type { Rng } from '../../src/ml/random.ts';

export interface RbmConfig {
  nComponents: number;
  learningRate: number;
  nIter: number;
}

export interface RbmRun extends RbmConfig {
  /** Mean pseudo-likelihood over the training images after each iteration (nats per image). */
  pseudoLikelihood: number[];
  /** Mean squared error per pixel of the mean-field reconstruction of the test images, after each iteration. */
  reconstructionError: number[];
  /** Seconds of training per iteration. */
  seconds: number[];
  model: RbmData;
}

export function label(config: RbmConfig): string {
  return `${config.nComponents} hidden, lr ${config.learningRate}, ${config.nIter} it.`;
}

export function meanSquaredError(a: Float32Array, b: Float32Array, mask?: Float32Array): number {
  let sum = 0;
  let count = 0;
  const width = mask?.length ?? a.length;
  for (let i = 0; i < a.length; i++) {
    if (mask && mask[i % width] === 0) continue;
    sum += (a[i]! - b[i]!) ** 2;
    count++;
  }
  return sum / count;
}

export function trainRbmRun(config: RbmConfig, train: Float32Array, test: Float32Array, rng: Rng, name = label(config)): RbmRun {
  const rbm = createRbm({ nVisible: 784, nComponents: config.nComponents, rng: rng.fork('init') });
  const reconstructionError: number[] = [];
  const steps = Math.ceil(train.length / 784 / 10);
  try {
    const fit = fitRbm(rbm, train, {
      learningRate: config.learningRate,
      nIter: config.nIter,
      rng: rng.fork('fit'),
      onBatch: (batch, iteration) => {
        if (batch % 500 === 0) progress({ step: (iteration - 1) * steps + batch, total: config.nIter * steps, label: name });
      },
      onIteration: (iteration, info) => {
        reconstructionError.push(meanSquaredError(reconstruct(rbm, test), test));
        progress({
          step: iteration * steps,
          total: config.nIter * steps,
          label: name,
          metrics: { iteration, 'pseudo-likelihood': info.pseudoLikelihood },
        });
      },
    });
    return { ...config, pseudoLikelihood: fit.pseudoLikelihood, reconstructionError, seconds: fit.seconds, model: rbmToData(rbm) };
  } finally {
    disposeRbm(rbm);
  }
}

export interface SweepRow extends RbmRun {
  /** Mean log-likelihood of the binarised test images, log Z by annealed importance sampling. */
  logLikelihood: number;
  /** Standard error of the AIS estimate of log Z (nats). */
  logZStdErr: number;
  secondsPerIteration: number;
}

/**
 * Trains each configuration, then estimates its test log-likelihood with AIS (the same β
 * schedule and base-rate model for all, so the numbers are comparable).
 */
export function sweepRuns(
  configs: RbmConfig[],
  data: { train: Float32Array; test: Float32Array; testBinary: Float32Array },
  ais: { runs: number; betas: Float64Array },
  rng: Rng,
): SweepRow[] {
  const baseVisibleBias = baseRateVisibleBias(data.testBinary, 784);
  return configs.map((config) => {
    const run = trainRbmRun(config, data.train, data.test, rng.fork(label(config)));
    const rbm = rbmFromData(run.model);
    try {
      const estimate = aisLogPartition(rbm, { runs: ais.runs, betas: ais.betas, rng: rng.fork(`ais ${label(config)}`), baseVisibleBias });
      return {
        ...run,
        logLikelihood: estimateLogLikelihood(rbm, data.testBinary, estimate),
        logZStdErr: estimate.stdErr,
        secondsPerIteration: run.seconds.reduce((a, b) => a + b, 0) / run.seconds.length,
      };
    } finally {
      disposeRbm(rbm);
    }
  });
}
