import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src/ml/backend.ts';
import { Rng } from '../../../src/ml/random.ts';
import {
  autoencoderParamCount, autoencoderStep, createStackedAutoencoder, encodeAll, hiddenFeatures, trainStackedAutoencoder, type AutoencoderStage, type StackedAutoencoder,
} from '../../../src/ml/models/autoencoder.ts';
import { COURSE_VAE, COURSE_VAE_ADAM, createVae, vaeParamCount } from '../../../src/ml/models/vae.ts';
import { createStepRunner } from '../../../src/ml/trainer.ts';

beforeAll(async () => {
  await initBackend(process.env['TFJS_BACKEND'] ? {} : { backend: 'cpu' });
});

const pixels = 12;
const tiny = (seed: number) => createStackedAutoencoder({ inputDim: pixels, hiddenDim: 8, codeDim: 3, rng: new Rng(seed) });
/** Smooth, low-dimensional data in [0, 1]: an AE can learn it. */
function data(rows: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(rows * pixels);
  for (let r = 0; r < rows; r++) {
    const a = rng.next();
    const b = rng.next();
    for (let j = 0; j < pixels; j++) out[r * pixels + j] = 0.5 + 0.4 * Math.sin(a * 6 + j * 0.7) * b;
  }
  return out;
}

function stepRunner(ae: StackedAutoencoder, stage: AutoencoderStage) {
  const runner = createStepRunner({ [stage]: { variables: ae.stageVariables[stage], optimizer: COURSE_VAE_ADAM } });
  return (x: tf.Tensor2D) => runner.run({ epoch: 0, index: 0, globalStep: 0, x, rng: new Rng(0) }, (ctx) => autoencoderStep(ctx, ae, stage));
}

function endToEndMse(ae: StackedAutoencoder, x: Float32Array): number {
  return tf.tidy(() => {
    const t = tf.tensor2d(x, [x.length / pixels, pixels]);
    return tf.mean(tf.square(tf.sub(ae.decode(ae.encode(t)), t))).dataSync()[0]!;
  });
}

describe('stacked auto-encoder (autoencoder.ts)', () => {
  it('has the course VAE\'s layers minus the log-variance head', () => {
    const ae = createStackedAutoencoder({ hiddenDim: COURSE_VAE.hiddenDim, codeDim: COURSE_VAE.latentDim, rng: new Rng(1) });
    const vae = createVae({ ...COURSE_VAE, rng: new Rng(1) });
    expect(autoencoderParamCount(ae)).toBe(227_444);
    expect(vaeParamCount(vae) - autoencoderParamCount(ae)).toBe(128 * 100 + 100);
    ae.dispose();
    vae.dispose();
  });

  it('encodes to codes, decodes to (0, 1), and splits its variables into the two levels', () => {
    const ae = tiny(2);
    tf.tidy(() => {
      const x = tf.tensor2d(data(5, 3), [5, pixels]);
      expect(ae.hidden(x).shape).toEqual([5, 8]);
      expect(ae.encode(x).shape).toEqual([5, 3]);
      const y = ae.decode(ae.encode(x)).dataSync();
      expect(y.length).toBe(5 * pixels);
      for (const v of y) expect(v > 0 && v < 1).toBe(true);
    });
    const names = (vs: tf.Variable[]) => vs.map((v) => v.name);
    expect(new Set([...names(ae.stageVariables.level1), ...names(ae.stageVariables.level2)])).toEqual(new Set(names(ae.variables)));
    expect(names(ae.stageVariables.level1).filter((n) => names(ae.stageVariables.level2).includes(n))).toEqual([]);
    expect(encodeAll(ae, data(7, 4), 3).length).toBe(7 * 3);
    expect(hiddenFeatures(ae, data(7, 4), 3).length).toBe(7 * 8);
    ae.dispose();
  });

  it('a level-2 step trains only level 2 and lowers its MSE on the level-1 features', () => {
    const ae = tiny(5);
    const features = hiddenFeatures(ae, data(16, 6));
    const x = tf.tensor2d(features, [16, 8]);
    const level1Before = ae.stageVariables.level1.map((v) => v.dataSync().slice());
    const step = stepRunner(ae, 'level2');
    const first = step(x).loss!;
    let last = first;
    for (let i = 0; i < 20; i++) last = step(x).loss!;
    expect(last).toBeLessThan(first);
    ae.stageVariables.level1.forEach((v, i) => expect(v.dataSync()).toEqual(level1Before[i]));
    x.dispose();
    ae.dispose();
  });

  it('greedy training lowers each level\'s MSE and fine-tuning lowers the end-to-end MSE further', async () => {
    const ae = tiny(7);
    const train = data(96, 8);
    const before = endToEndMse(ae, train);
    const afterStage: Record<string, number> = {};
    const histories = await trainStackedAutoencoder(ae, {
      data: train, epochs: { level1: 15, level2: 15, finetune: 0 }, batchSize: 16, optimizer: { learningRate: 1e-2 }, seed: 9,
    });
    afterStage['greedy'] = endToEndMse(ae, train);
    for (const stage of ['level1', 'level2'] as const) {
      expect(histories[stage]).toHaveLength(15);
      expect(histories[stage].at(-1)!.train['loss']!).toBeLessThan(histories[stage][0]!.train['loss']!);
    }
    const fine = await trainStackedAutoencoder(ae, {
      data: train, epochs: { level1: 0, level2: 0, finetune: 15 }, batchSize: 16, optimizer: { learningRate: 1e-2 }, seed: 10,
    });
    expect(fine.level1).toHaveLength(0);
    afterStage['finetuned'] = endToEndMse(ae, train);
    expect(afterStage['greedy']!).toBeLessThan(before);
    expect(afterStage['finetuned']!).toBeLessThan(afterStage['greedy']!);
    ae.dispose();
  });

  it('leaks no tensors across steps and rejects a batch of the wrong width', () => {
    const ae = tiny(11);
    const x = tf.tensor2d(data(8, 12), [8, pixels]);
    for (const stage of ['level1', 'finetune'] as const) {
      const step = stepRunner(ae, stage);
      step(x);
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) step(x);
      expect(tf.memory().numTensors).toBe(before);
    }
    expect(() => stepRunner(ae, 'level2')(x)).toThrow(/expected a batch \[b, 8\]/);
    x.dispose();
    ae.dispose();
  });
});
