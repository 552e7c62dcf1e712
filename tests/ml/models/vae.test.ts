import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src/ml/backend.ts';
import { Rng } from '../../../src/ml/random.ts';
import {
  COURSE_VAE, COURSE_VAE_ADAM, PAPER_VAE, createVae, decodeMeans, elboPerImage, importanceWeightedBound, klLoss, latentUsage, logImportanceWeights,
  posteriorMeans, reconstructionLoss, vaeParamCount, vaeStep, type Vae,
} from '../../../src/ml/models/vae.ts';
import { createStepRunner } from '../../../src/ml/trainer.ts';

/** One-step runner for a VAE with the course's Adam. */
function vaeRunner(vae: Vae, beta?: number) {
  const runner = createStepRunner({ vae: { variables: vae.variables, optimizer: COURSE_VAE_ADAM } });
  return (x: tf.Tensor2D, rng: Rng) => runner.run({ epoch: 0, index: 0, globalStep: 0, x, rng }, (ctx) => vaeStep(ctx, vae, { beta }));
}

beforeAll(async () => {
  await initBackend(process.env['TFJS_BACKEND'] ? {} : { backend: 'cpu' });
});

const batch = 5;
const pixels = 12;

function fixedBatch(seed: number): tf.Tensor2D {
  return tf.randomUniform([batch, pixels], 0, 1, 'float32', seed) as tf.Tensor2D;
}

/** Negative ELBO per image with ε drawn from `seed` (replays vaeStep's draw). */
function lossWithSeed(vae: Vae, x: tf.Tensor2D, seed: number): number {
  return tf.tidy(() => {
    const { mu, logVar } = vae.encode(x);
    const z = vae.reparameterize(mu, logVar, seed);
    return tf.mean(tf.add(reconstructionLoss(vae.decodeLogits(z), x), klLoss(mu, logVar))).dataSync()[0]!;
  });
}

describe('VAE (vae.ts)', () => {
  it('has the parameter counts PyTorch gives the course\'s and the paper\'s configurations', () => {
    for (const [config, expected] of [[COURSE_VAE, 240_344], [PAPER_VAE, 652_824]] as const) {
      const vae = createVae({ ...config, rng: new Rng(0) });
      expect(vaeParamCount(vae)).toBe(expected);
      vae.dispose();
    }
  });

  it('encodes to mu and logVar, decodes to Bernoulli means', () => {
    const vae = createVae({ inputDim: pixels, hiddenDim: 7, latentDim: 3, rng: new Rng(1) });
    tf.tidy(() => {
      const { mu, logVar } = vae.encode(fixedBatch(2));
      expect(mu.shape).toEqual([batch, 3]);
      expect(logVar.shape).toEqual([batch, 3]);
      const means = vae.decode(vae.reparameterize(mu, logVar, 3)).dataSync();
      expect(means.length).toBe(batch * pixels);
      for (const m of means) expect(m > 0 && m < 1).toBe(true);
    });
    vae.dispose();
  });

  it('computes the losses of the paper against a direct evaluation', () => {
    tf.tidy(() => {
      const logits = tf.tensor2d([[0.3, -1.2], [2.0, 0.0]]);
      const x = tf.tensor2d([[1, 0.25], [0, 0.5]]);
      const bce = (p: number, t: number) => -(t * Math.log(p) + (1 - t) * Math.log(1 - p));
      const s = (l: number) => 1 / (1 + Math.exp(-l));
      const expected = [bce(s(0.3), 1) + bce(s(-1.2), 0.25), bce(s(2), 0) + bce(s(0), 0.5)];
      const got = reconstructionLoss(logits, x).arraySync();
      expected.forEach((e, i) => expect(got[i]).toBeCloseTo(e, 5));
      // KL(N(mu, σ²) ‖ N(0, 1)) = ½(σ² + mu² − 1 − ln σ²), summed over dimensions.
      const mu = tf.tensor2d([[0.5, -1]]);
      const logVar = tf.tensor2d([[0.2, -0.7]]);
      const kl = (m: number, lv: number) => 0.5 * (Math.exp(lv) + m * m - 1 - lv);
      expect(klLoss(mu, logVar).arraySync()[0]).toBeCloseTo(kl(0.5, 0.2) + kl(-1, -0.7), 5);
    });
  });

  it('one step lowers the loss on its batch (same ε) and reports its parts', () => {
    const vae = createVae({ inputDim: pixels, hiddenDim: 7, latentDim: 3, rng: new Rng(4) });
    const step1 = vaeRunner(vae);
    const x = fixedBatch(5);
    const seed = new Rng(6).seed(); // vaeStep draws ε from its Rng's first seed
    const before = lossWithSeed(vae, x, seed);
    const step = step1(x, new Rng(6));
    expect(step.loss).toBeCloseTo(before, 4);
    expect(step.loss).toBeCloseTo(step.reconstructionLoss! + step.klLoss!, 4);
    expect(lossWithSeed(vae, x, seed)).toBeLessThan(before);
    x.dispose();
    vae.dispose();
  });

  it('leaks no tensors across steps and rejects a batch of the wrong width', () => {
    const vae = createVae({ inputDim: pixels, hiddenDim: 7, latentDim: 3, rng: new Rng(7) });
    const step = vaeRunner(vae, 4);
    const x = fixedBatch(8);
    const rng = new Rng(9);
    step(x, rng);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step(x, rng);
    expect(tf.memory().numTensors).toBe(before);
    const bad = tf.zeros([2, 5]) as tf.Tensor2D;
    expect(() => step(bad, rng)).toThrow(/expected a batch \[b, 12\]/);
    bad.dispose();
    x.dispose();
    vae.dispose();
  });
});

// ---------------------------------------------------------------------------------------
// Bounds and latent statistics

/** A tiny VAE's weights as float64 arrays, and a float64 forward pass of it. */
function float64Vae(vae: Vae) {
  const w = (d: { kernel: tf.Variable; bias: tf.Variable }) => ({ k: Float64Array.from(d.kernel.dataSync()), b: Float64Array.from(d.bias.dataSync()), fanOut: d.kernel.shape[1]! });
  const L = vae.layers;
  const layers = { enc: w(L.encoder), mu: w(L.mu), lv: w(L.logVar), dh: w(L.decoderHidden), out: w(L.decoderOutput) };
  const dense = (l: ReturnType<typeof w>, x: ArrayLike<number>, relu: boolean) => {
    const y = new Float64Array(l.fanOut);
    for (let j = 0; j < l.fanOut; j++) {
      let s = l.b[j]!;
      for (let i = 0; i < x.length; i++) s += x[i]! * l.k[i * l.fanOut + j]!;
      y[j] = relu ? Math.max(0, s) : s;
    }
    return y;
  };
  const softplus = (v: number) => (v > 0 ? v + Math.log1p(Math.exp(-v)) : Math.log1p(Math.exp(v)));
  const logLikelihood = (x: ArrayLike<number>, z: ArrayLike<number>) => {
    const logits = dense(layers.out, dense(layers.dh, z, true), false);
    let s = 0;
    logits.forEach((l, j) => (s += x[j]! * l - softplus(l)));
    return s;
  };
  const encode = (x: ArrayLike<number>) => {
    const h = dense(layers.enc, x, true);
    return { mu: dense(layers.mu, h, false), logVar: dense(layers.lv, h, false) };
  };
  return { logLikelihood, encode };
}

describe('VAE bounds (vae.ts)', () => {
  const tiny = () => createVae({ inputDim: 6, hiddenDim: 5, latentDim: 2, rng: new Rng(21) });
  const images = new Float32Array([1, 0, 1, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 1, 1, 1, 0, 1]); // 3 binary images of 6 pixels

  it('log importance weights agree with a float64 computation for the same ε', () => {
    const vae = tiny();
    const ref = float64Vae(vae);
    const s = 4;
    const epsilon = tf.randomNormal([3, s, 2], 0, 1, 'float32', 5) as tf.Tensor3D;
    const got = tf.tidy(() => logImportanceWeights(vae, tf.tensor2d(images, [3, 6]), epsilon).arraySync());
    const eps = epsilon.arraySync();
    for (let b = 0; b < 3; b++) {
      const x = images.subarray(b * 6, b * 6 + 6);
      const { mu, logVar } = ref.encode(x);
      for (let k = 0; k < s; k++) {
        const e = eps[b]![k]!;
        const z = e.map((v, i) => mu[i]! + Math.exp(logVar[i]! / 2) * v);
        // log N(z; 0, I) − log N(z; mu, σ²) written out with both normalisers.
        const logPrior = z.reduce((a, v) => a - 0.5 * v * v - 0.5 * Math.log(2 * Math.PI), 0);
        const logQ = z.reduce((a, v, i) => a - 0.5 * (v - mu[i]!) ** 2 / Math.exp(logVar[i]!) - 0.5 * logVar[i]! - 0.5 * Math.log(2 * Math.PI), 0);
        expect(got[b]![k]!).toBeCloseTo(ref.logLikelihood(x, z) + logPrior - logQ, 3);
      }
    }
    epsilon.dispose();
    vae.dispose();
  });

  it('brackets log p(x) computed by float64 quadrature: ELBO ≤ IWAE(K) ≤ log p(x), and IWAE(5 000) is within 0.05 nats', () => {
    const vae = tiny();
    const ref = float64Vae(vae);
    // log p(x) = log ∫ p(x|z) N(z; 0, I) dz on a 2-D grid over [−7, 7]², step 0.035.
    const h = 0.035;
    const grid: number[] = [];
    for (let v = -7; v <= 7 + 1e-9; v += h) grid.push(v);
    const exact = [0, 1, 2].map((b) => {
      const x = images.subarray(b * 6, b * 6 + 6);
      const terms: number[] = [];
      for (const z1 of grid) for (const z2 of grid) terms.push(ref.logLikelihood(x, [z1, z2]) - 0.5 * (z1 * z1 + z2 * z2) - Math.log(2 * Math.PI) + 2 * Math.log(h));
      const m = terms.reduce((a, t) => Math.max(a, t), -Infinity);
      return m + Math.log(terms.reduce((a, t) => a + Math.exp(t - m), 0));
    });
    const iwae = importanceWeightedBound(vae, images, 5000, 7, { rowsPerPass: 1024 }); // 5 passes per image, the last one short
    const elbo = elboPerImage(vae, images, 8, { samples: 2000 }).elbo;
    for (let b = 0; b < 3; b++) {
      expect(iwae[b]!).toBeLessThan(exact[b]! + 0.01);
      expect(iwae[b]!).toBeGreaterThan(exact[b]! - 0.05);
      expect(elbo[b]!).toBeLessThan(iwae[b]!);
    }
    vae.dispose();
  });

  it('IWAE with K = 1 is the ELBO in expectation, and E[IWAE(K)] grows with K', () => {
    const vae = tiny();
    const copies = 3000;
    const repeated = new Float32Array(copies * 6);
    for (let i = 0; i < copies; i++) repeated.set(images.subarray(0, 6), i * 6); // one image, independent ε per copy
    const one = importanceWeightedBound(vae, repeated, 1, 11);
    const ten = importanceWeightedBound(vae, repeated.subarray(0, 500 * 6), 10, 12);
    const elbo = elboPerImage(vae, images.subarray(0, 6), 13, { samples: 4000 }).elbo[0]!;
    const mean = (a: Float64Array) => a.reduce((s, v) => s + v, 0) / a.length;
    const sd = Math.sqrt(one.reduce((s, v) => s + (v - mean(one)) ** 2, 0) / (copies - 1));
    expect(Math.abs(mean(one) - elbo)).toBeLessThan(4 * sd / Math.sqrt(copies));
    expect(mean(ten)).toBeGreaterThan(mean(one));
    vae.dispose();
  });

  it('counts active units and splits the KL by dimension', () => {
    const vae = createVae({ inputDim: pixels, hiddenDim: 7, latentDim: 3, rng: new Rng(30) });
    // Dimension 2 of the mean head ignores x: its kernel column is zero.
    tf.tidy(() => vae.layers.mu.kernel.assign(tf.mul(vae.layers.mu.kernel, tf.tensor1d([10, 10, 0]))));
    const data = tf.tidy(() => tf.randomUniform([200, pixels], 0, 1, 'float32', 31).dataSync() as Float32Array);
    const usage = latentUsage(vae, data);
    expect(usage.activity[2]).toBeLessThan(1e-10);
    expect(usage.activity[0]).toBeGreaterThan(0.01);
    expect(usage.activeUnits).toBe([...usage.activity].filter((a) => a > 0.01).length);
    const meanKl = tf.tidy(() => {
      const { mu, logVar } = vae.encode(tf.tensor2d(data, [200, pixels]));
      return tf.mean(klLoss(mu, logVar)).dataSync()[0]!;
    });
    expect(usage.klPerDimension.reduce((a, b) => a + b, 0)).toBeCloseTo(meanKl, 4);
    vae.dispose();
  });

  it('evaluation functions leak no tensors', () => {
    const vae = tiny();
    importanceWeightedBound(vae, images, 5, 1);
    const before = tf.memory().numTensors;
    importanceWeightedBound(vae, images, 50, 2, { rowsPerPass: 16 });
    elboPerImage(vae, images, 3, { samples: 2, chunk: 2 });
    latentUsage(vae, images);
    posteriorMeans(vae, images, 2);
    decodeMeans(vae, new Float32Array(10).fill(0.5), 2);
    expect(tf.memory().numTensors).toBe(before);
    vae.dispose();
  });
});
