import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src/ml/backend.ts';
import { Rng } from '../../../src/ml/random.ts';
import { createDcDiscriminator, createDcGenerator } from '../../../src/ml/models/dcgan.ts';
import { createDense } from '../../../src/ml/models/dense.ts';
import { createGenerator } from '../../../src/ml/models/gan.ts';
import { createGanDecoderVae, type GanDecoderVaeOptions } from '../../../src/ml/models/vae-decoders.ts';
import { COURSE_VAE_ADAM, klLoss, reconstructionLoss, vaeStep, type VaeModel } from '../../../src/ml/models/vae.ts';
import { createStepRunner } from '../../../src/ml/trainer.ts';

beforeAll(async () => {
  await initBackend(process.env['TFJS_BACKEND'] ? {} : { backend: 'cpu' });
});

const batch = 4;
const latentDim = 3;
const options: Record<'mlp' | 'dcgan', Omit<GanDecoderVaeOptions, 'rng'>> = {
  mlp: { architecture: 'mlp', latentDim, mlpHiddenDims: [5, 6, 7] },
  dcgan: { architecture: 'dcgan', latentDim, dcFilters: { generator: [6, 4], encoder: [4, 6] } },
};

function images(seed: number): tf.Tensor2D {
  return tf.randomUniform([batch, 784], 0, 1, 'float32', seed) as tf.Tensor2D;
}

function runner(vae: VaeModel) {
  const r = createStepRunner({ vae: { variables: vae.variables, statistics: vae.statistics, optimizer: COURSE_VAE_ADAM } });
  return (x: tf.Tensor2D, rng: Rng) => r.run({ epoch: 0, index: 0, globalStep: 0, x, rng }, (ctx) => vaeStep(ctx, vae));
}

/** The training-mode negative ELBO with ε from `seed` (replays vaeStep's draw). */
function lossWithSeed(vae: VaeModel, x: tf.Tensor2D, seed: number): number {
  return tf.tidy(() => {
    const { mu, logVar } = vae.encode(x, { training: true });
    const z = vae.reparameterize(mu, logVar, seed);
    return tf.mean(tf.add(reconstructionLoss(vae.decodeLogits(z, { training: true }), x), klLoss(mu, logVar))).dataSync()[0]!;
  });
}

describe('VAEs with GAN decoders (vae-decoders.ts)', () => {
  for (const architecture of ['mlp', 'dcgan'] as const) {
    it(`${architecture}: encodes to mu and logVar, decodes to (0, 1)`, () => {
      const vae = createGanDecoderVae({ ...options[architecture], rng: new Rng(1) });
      tf.tidy(() => {
        const { mu, logVar } = vae.encode(images(2));
        expect(mu.shape).toEqual([batch, latentDim]);
        expect(logVar.shape).toEqual([batch, latentDim]);
        const means = vae.decode(mu).dataSync();
        expect(means.length).toBe(batch * 784);
        for (const m of means) expect(m > 0 && m < 1).toBe(true);
      });
      expect(vae.params.encoder + vae.params.decoder).toBe(vae.variables.reduce((n, v) => n + v.size, 0));
      vae.dispose();
    });

    it(`${architecture}: one step lowers the loss on its batch (same ε) and leaks no tensors`, () => {
      const vae = createGanDecoderVae({ ...options[architecture], rng: new Rng(3) });
      const step = runner(vae);
      const x = images(4);
      const seed = new Rng(6).seed();
      const before = lossWithSeed(vae, x, seed);
      const metrics = step(x, new Rng(6));
      expect(metrics.loss).toBeCloseTo(before, 2);
      expect(lossWithSeed(vae, x, seed)).toBeLessThan(before);
      const count = tf.memory().numTensors;
      for (let i = 0; i < 2; i++) step(x, new Rng(7 + i));
      expect(tf.memory().numTensors).toBe(count);
      x.dispose();
      vae.dispose();
    });
  }

  it('the MLP decoder is gan.ts\'s generator: its mean is (G(z) + 1)/2 for the same weights', () => {
    const vae = createGanDecoderVae({ ...options.mlp, rng: new Rng(10) });
    const rng = new Rng(10); // replay the construction: encoder, then the generator
    const encoder = createGenerator({ latentDim: 784, hiddenDims: [7, 6, 5], outputDim: 2 * latentDim, outputActivation: 'linear', rng });
    const generator = createGenerator({ latentDim, hiddenDims: [5, 6, 7], rng });
    tf.tidy(() => {
      const z = tf.randomNormal([batch, latentDim], 0, 1, 'float32', 11) as tf.Tensor2D;
      const gan = tf.div(tf.add(generator.apply(z), 1), 2).dataSync();
      const ours = vae.decode(z).dataSync();
      gan.forEach((g, i) => expect(ours[i]!).toBeCloseTo(g, 5));
    });
    encoder.dispose();
    generator.dispose();
    vae.dispose();
  });

  it('the DCGAN decoder is dcgan.ts\'s generator: its mean is (G(z) + 1)/2, in evaluation and in training mode', () => {
    const vae = createGanDecoderVae({ ...options.dcgan, rng: new Rng(12) });
    const rng = new Rng(12); // replay the construction: discriminator convolutions, two heads, the generator
    const convs = createDcDiscriminator({ filters: [4, 6], rng });
    const heads = [createDense(7 * 7 * 6, latentDim, rng), createDense(7 * 7 * 6, latentDim, rng)];
    const generator = createDcGenerator({ latentDim, filters: [6, 4], rng });
    tf.tidy(() => {
      const z = tf.randomNormal([batch, latentDim], 0, 1, 'float32', 13) as tf.Tensor2D;
      for (const training of [false, true]) {
        const gan = tf.div(tf.add(generator.apply(z, { training, updateStatistics: false }), 1), 2).dataSync();
        const ours = vae.decode(z, { training }).dataSync();
        gan.forEach((g, i) => expect(ours[i]!).toBeCloseTo(g, 4));
      }
    });
    convs.dispose();
    heads.forEach((h) => tf.dispose([h.kernel, h.bias]));
    generator.dispose();
    vae.dispose();
  });

  it('the DCGAN VAE\'s training steps move its batch-norm running averages, evaluation does not', () => {
    const vae = createGanDecoderVae({ ...options.dcgan, rng: new Rng(14) });
    const snapshot = () => vae.statistics.map((s) => s.dataSync().slice());
    const start = snapshot();
    tf.tidy(() => vae.decode(vae.encode(images(15)).mu));
    snapshot().forEach((s, i) => expect(s).toEqual(start[i]));
    runner(vae)(images(16), new Rng(17));
    snapshot().forEach((s, i) => expect(s).not.toEqual(start[i]));
    vae.dispose();
  });
});
