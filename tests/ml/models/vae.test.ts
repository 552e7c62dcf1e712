import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src/ml/backend.ts';
import { Rng } from '../../../src/ml/random.ts';
import { COURSE_VAE, COURSE_VAE_ADAM, PAPER_VAE, createVae, klLoss, reconstructionLoss, vaeParamCount, vaeStep, type Vae } from '../../../src/ml/models/vae.ts';
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
