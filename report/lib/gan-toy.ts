/**
 * The 2-D experiments of section 4.2 Q3: a course-style GAN on a ring of 8 Gaussians
 * (Metz et al. 2017, §3.1), and gradient play on the bilinear game min_x max_y x·y
 * (Mescheder et al. 2018, §2: simultaneous gradient steps on it diverge).
 */
import * as tf from '@tensorflow/tfjs';
import { progress, seed } from 'report:runtime';
import { modeCoverage, ringOfGaussians } from '../../src/ml/data/toy.ts';
import { COURSE_ADAM, createDiscriminator, createGenerator, ganStep } from '../../src/ml/models/gan.ts';
import { Rng } from '../../src/ml/random.ts';
import { createTrainer } from '../../src/ml/trainer.ts';

export interface RingSnapshot {
  step: number;
  points: { x: number; y: number; label: string }[];
}

export interface RingCoverage {
  step: number;
  /** Per run. */
  modesCovered: number[];
  highQuality: number[];
}

const BATCH = 256;
const LATENT = 8;

export async function ringRuns(options: { runs: number; epochs: number; snapshotEvery: number; stepsPerEpoch?: number }) {
  const { runs, epochs, snapshotEvery, stepsPerEpoch = 100 } = options;
  const snapshots: RingSnapshot[] = [];
  const coverage = new Map<number, RingCoverage>();
  for (let run = 1; run <= runs; run++) {
    const rng = new Rng(seed).fork(`ring run ${run}`);
    const data = ringOfGaussians(BATCH * stepsPerEpoch, rng.fork('data'));
    const shown = ringOfGaussians(1000, rng.fork('shown'));
    const init = rng.fork('init');
    const models = {
      generator: createGenerator({ latentDim: LATENT, hiddenDims: [128, 128], outputDim: 2, outputActivation: 'linear', rng: init }),
      discriminator: createDiscriminator({ inputDim: 2, hiddenDims: [128, 128], dropoutRate: 0, rng: init }),
    };
    const sampleRng = rng.fork('samples');
    const trainer = createTrainer({
      networks: {
        generator: { variables: models.generator.variables, optimizer: COURSE_ADAM },
        discriminator: { variables: models.discriminator.variables, optimizer: COURSE_ADAM },
      },
      data,
      rowSize: 2,
      batchSize: BATCH,
      seed: rng.fork('trainer').seed(),
      step: (ctx) => ganStep(ctx, models),
      onEpochEnd: (record) => {
        progress({ step: (run - 1) * epochs + record.epoch, total: runs * epochs, label: `ring, run ${run}` });
        if (record.epoch % snapshotEvery !== 0) return;
        const samples = tf.tidy(() => models.generator.apply(tf.randomNormal([2000, LATENT], 0, 1, 'float32', sampleRng.seed()) as tf.Tensor2D).dataSync() as Float32Array);
        const step = record.epoch * stepsPerEpoch;
        const c = modeCoverage(samples);
        const entry = coverage.get(step) ?? { step, modesCovered: [], highQuality: [] };
        entry.modesCovered.push(c.modesCovered);
        entry.highQuality.push(c.highQuality);
        coverage.set(step, entry);
        if (run === 1) {
          // Generated first, data drawn over it: the eight data modes stay visible.
          const points: RingSnapshot['points'] = [];
          for (let i = 0; i < 1000; i++) points.push({ x: samples[2 * i]!, y: samples[2 * i + 1]!, label: 'generated' });
          for (let i = 0; i < 1000; i++) points.push({ x: shown[2 * i]!, y: shown[2 * i + 1]!, label: 'data' });
          snapshots.push({ step, points });
        }
      },
    });
    try {
      await trainer.fit(epochs);
    } finally {
      trainer.dispose();
      models.generator.dispose();
      models.discriminator.dispose();
    }
  }
  return { snapshots, coverage: [...coverage.values()].sort((a, b) => a.step - b.step) };
}

/** Gradient play on f(x, y) = x·y from (1, 1): x descends, y ascends, step size η. */
export function bilinearGame(options: { steps: number; learningRate: number }) {
  const { steps, learningRate: eta } = options;
  const simultaneous: [number, number][] = [[1, 1]];
  const alternating: [number, number][] = [[1, 1]];
  for (let t = 0; t < steps; t++) {
    const [x, y] = simultaneous.at(-1)!;
    simultaneous.push([x - eta * y, y + eta * x]); // both use the old point
    const [a, b] = alternating.at(-1)!;
    const a2 = a - eta * b; // the minimiser moves first …
    alternating.push([a2, b + eta * a2]); // … and the maximiser answers the new point
  }
  const radius = ([x, y]: [number, number]) => Math.hypot(x, y);
  return {
    simultaneous,
    alternating,
    start: radius(simultaneous[0]!),
    simultaneousEnd: radius(simultaneous.at(-1)!),
    alternatingMax: Math.max(...alternating.map(radius)),
    alternatingMin: Math.min(...alternating.map(radius)),
    /** Growth per simultaneous step: √(1 + η²) exactly. */
    growth: Math.sqrt(1 + eta * eta),
  };
}
