/**
 * Section 4.2 Q4: what the latent space of a trained generator looks like to the referee —
 * linear vs spherical interpolation (White 2016, "Sampling Generative Networks"), one
 * coordinate at a time, class-mean codes, and nearest training images of samples.
 */
import * as tf from '@tensorflow/tfjs';
import { seed } from 'report:runtime';
import { classifierLogits, type Classifier } from '../../src/ml/models/classifier.ts';
import { Rng } from '../../src/ml/random.ts';
import { generate, generatorFromWeights, normalCodes } from './gan-runs.ts';

const LATENT = 10;
const STEPS = 11;

/** Referee labels and confidences (max softmax) of images [n, 784] in [0, 1]. */
function referee(model: Classifier, images: Float32Array): { labels: Uint8Array; confidence: Float32Array } {
  const n = images.length / 784;
  const out = tf.tidy(() => {
    const probs = tf.softmax(classifierLogits(model, tf.tensor2d(images, [n, 784])));
    return [tf.argMax(probs, 1), tf.max(probs, 1)] as const;
  });
  const result = { labels: Uint8Array.from(out[0].dataSync()), confidence: Float32Array.from(out[1].dataSync()) };
  tf.dispose([...out]);
  return result;
}

function chunked(model: Classifier, images: Float32Array, chunk = 2000) {
  const n = images.length / 784;
  const labels = new Uint8Array(n);
  const confidence = new Float32Array(n);
  for (let s = 0; s < n; s += chunk) {
    const r = referee(model, images.subarray(s * 784, Math.min(n, s + chunk) * 784));
    labels.set(r.labels, s);
    confidence.set(r.confidence, s);
  }
  return { labels, confidence };
}

function lerp(a: Float32Array, b: Float32Array, t: number): Float32Array {
  return a.map((v, i) => (1 - t) * v + t * b[i]!);
}

function slerp(a: Float32Array, b: Float32Array, t: number): Float32Array {
  const norm = (v: Float32Array) => Math.hypot(...v);
  const cos = a.reduce((s, v, i) => s + v * b[i]!, 0) / (norm(a) * norm(b));
  const omega = Math.acos(Math.min(1, Math.max(-1, cos)));
  if (omega < 1e-6) return lerp(a, b, t);
  const [wa, wb] = [Math.sin((1 - t) * omega) / Math.sin(omega), Math.sin(t * omega) / Math.sin(omega)];
  return a.map((v, i) => wa * v + wb * b[i]!);
}

export function latentStudy(weights: readonly Float32Array[], model: Classifier, train: Float32Array, options: { pairs: number; classSamples: number }) {
  const rng = new Rng(seed).fork('gan latent');
  const { generator, discriminator } = generatorFromWeights({ architecture: 'mlp', latentDim: LATENT }, weights, rng.fork('init'));
  discriminator.dispose();
  try {
    // Interpolation: `pairs` random pairs, STEPS points each, both paths.
    const ends = normalCodes(2 * options.pairs, LATENT, rng.fork('pairs'));
    const paths = { linear: [] as Float32Array[], spherical: [] as Float32Array[] };
    for (let p = 0; p < options.pairs; p++) {
      const a = ends.subarray(2 * p * LATENT, (2 * p + 1) * LATENT);
      const b = ends.subarray((2 * p + 1) * LATENT, (2 * p + 2) * LATENT);
      for (let s = 0; s < STEPS; s++) {
        paths.linear.push(lerp(a, b, s / (STEPS - 1)));
        paths.spherical.push(slerp(a, b, s / (STEPS - 1)));
      }
    }
    const judge = (codes: Float32Array[]) => {
      const z = new Float32Array(codes.length * LATENT);
      codes.forEach((c, i) => z.set(c, i * LATENT));
      const images = generate(generator, z);
      return { images, ...chunked(model, images) };
    };
    const mid = (STEPS - 1) / 2;
    const summary = (codes: Float32Array[], judged: ReturnType<typeof judge>) => {
      let norm = 0;
      let confidence = 0;
      let changes = 0;
      for (let p = 0; p < options.pairs; p++) {
        norm += Math.hypot(...codes[p * STEPS + mid]!);
        confidence += judged.confidence[p * STEPS + mid]!;
        for (let s = 1; s < STEPS; s++) if (judged.labels[p * STEPS + s] !== judged.labels[p * STEPS + s - 1]) changes++;
      }
      return { norm: norm / options.pairs, confidence: confidence / options.pairs, changes: changes / options.pairs };
    };
    const linear = judge(paths.linear);
    const spherical = judge(paths.spherical);
    const [ls, ss] = [summary(paths.linear, linear), summary(paths.spherical, spherical)];
    const interpolationGrid = new Float32Array(6 * STEPS * 784);
    const interpolationLabels: string[] = [];
    for (let p = 0; p < 3; p++) {
      for (const [k, judged] of [linear, spherical].entries()) {
        interpolationGrid.set(judged.images.subarray(p * STEPS * 784, (p + 1) * STEPS * 784), (2 * p + k) * STEPS * 784);
        for (let s = 0; s < STEPS; s++) interpolationLabels.push(`${judged.labels[p * STEPS + s]} ${(100 * judged.confidence[p * STEPS + s]!).toFixed(0)}%`);
      }
    }

    // Traversals: one base code, each coordinate from −3 to 3 in 9 steps.
    const base = normalCodes(1, LATENT, rng.fork('traversal'));
    const traversal: Float32Array[] = [];
    for (let d = 0; d < LATENT; d++) {
      for (let s = 0; s < 9; s++) {
        const z = Float32Array.from(base);
        z[d] = -3 + (6 * s) / 8;
        traversal.push(z);
      }
    }
    const traversed = judge(traversal);
    // How often does moving one coordinate over [−3, 3] change the digit? 200 base codes per coordinate.
    const bases = normalCodes(200, LATENT, rng.fork('traversal bases'));
    const changesPerDim: number[] = [];
    for (let d = 0; d < LATENT; d++) {
      const codes: Float32Array[] = [];
      for (let b = 0; b < 200; b++) {
        for (const v of [-3, 3]) {
          const z = Float32Array.from(bases.subarray(b * LATENT, (b + 1) * LATENT));
          z[d] = v;
          codes.push(z);
        }
      }
      const j = judge(codes);
      let changed = 0;
      for (let b = 0; b < 200; b++) if (j.labels[2 * b] !== j.labels[2 * b + 1]) changed++;
      changesPerDim.push(changed / 200);
    }

    // Class means: the mean code of the samples labelled as each digit, decoded.
    const codes = normalCodes(options.classSamples, LATENT, rng.fork('class samples'));
    const { labels } = chunked(model, generate(generator, codes));
    const sums = Array.from({ length: 10 }, () => new Float64Array(LATENT));
    const counts = new Array<number>(10).fill(0);
    labels.forEach((label, i) => {
      counts[label]!++;
      for (let d = 0; d < LATENT; d++) sums[label]![d]! += codes[i * LATENT + d]!;
    });
    const means = sums.map((sum, digit) => Float32Array.from(sum, (v) => v / Math.max(1, counts[digit]!)));
    const decodedMeans = judge(means);
    const classMeanNorms = means.map((m) => Math.hypot(...m));

    // Memorisation: 12 samples and their nearest training images.
    const samples = generate(generator, normalCodes(12, LATENT, rng.fork('nearest')));
    const nearestGrid = new Float32Array(24 * 784);
    const nearestLabels: string[] = [];
    const distances: number[] = [];
    for (let i = 0; i < 12; i++) {
      const s = samples.subarray(i * 784, (i + 1) * 784);
      let best = Infinity;
      let bestIndex = 0;
      for (let t = 0; t < train.length / 784; t++) {
        let d = 0;
        for (let j = 0; j < 784 && d < best; j++) d += (s[j]! - train[t * 784 + j]!) ** 2;
        if (d < best) {
          best = d;
          bestIndex = t;
        }
      }
      nearestGrid.set(s, i * 784);
      nearestGrid.set(train.subarray(bestIndex * 784, (bestIndex + 1) * 784), (12 + i) * 784);
      distances.push(Math.sqrt(best));
    }
    for (let i = 0; i < 12; i++) nearestLabels.push('');
    for (const d of distances) nearestLabels.push(d.toFixed(1));

    return {
      pairs: options.pairs,
      midNorm: { linear: ls.norm, spherical: ss.norm },
      midConfidence: { linear: ls.confidence, spherical: ss.confidence },
      labelChanges: { linear: ls.changes, spherical: ss.changes },
      interpolationGrid,
      interpolationLabels,
      traversalGrid: traversed.images,
      traversalRows: Array.from({ length: LATENT }, (_, d) => `z${d + 1}`),
      changesPerDim,
      classCounts: counts,
      classMeanGrid: decodedMeans.images,
      classMeanLabels: Array.from(decodedMeans.labels, (l, i) => `${l} ${(100 * decodedMeans.confidence[i]!).toFixed(0)}%`),
      classMeanCorrect: Array.from(decodedMeans.labels).filter((l, i) => l === i && counts[i]! > 0).length,
      classMeanNorms,
      nearestGrid,
      nearestLabels,
      nearestDistances: distances,
    };
  } finally {
    generator.dispose();
  }
}
