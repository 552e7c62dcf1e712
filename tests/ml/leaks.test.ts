/**
 * Every factory of src/ml/models and every optimiser-owning part of the trainer, created and
 * disposed on tiny seeded sizes, must leave `tf.memory().numTensors` where it was: a tensor
 * used only to initialise a variable must be disposed too (tf.variable takes its own
 * reference to the tensor's data, so the tensor stays counted until it is disposed).
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend.ts';
import { Rng } from '../../src/ml/random.ts';
import { createStackedAutoencoder } from '../../src/ml/models/autoencoder.ts';
import { classifierFromWeights, classifierWeights, createClassifier, disposeClassifier } from '../../src/ml/models/classifier.ts';
import { createDbm, dbmFromData, dbmToData, disposeDbm } from '../../src/ml/models/dbm.ts';
import { createDcDiscriminator, createDcGenerator } from '../../src/ml/models/dcgan.ts';
import { createDense, uniformVariable } from '../../src/ml/models/dense.ts';
import { createFlowModel } from '../../src/ml/models/flow-matching.ts';
import { COURSE_ADAM, createDiscriminator, createGenerator, ganStep } from '../../src/ml/models/gan.ts';
import { createRbm, disposeRbm, rbmFromData, rbmToData } from '../../src/ml/models/rbm.ts';
import { createUNet } from '../../src/ml/models/unet.ts';
import { createGanDecoderVae } from '../../src/ml/models/vae-decoders.ts';
import { COURSE_VAE_ADAM, createVae } from '../../src/ml/models/vae.ts';
import { createAdam, createStepRunner, createTrainer, type AdamState, type TrainState } from '../../src/ml/trainer.ts';

// Plain-array models and a trainer state to rebuild from, made once outside the measured region.
let storedClassifier: ReturnType<typeof classifierWeights>;
let storedRbm: ReturnType<typeof rbmToData>;
let storedDbm: ReturnType<typeof dbmToData>;
let savedState: TrainState;

beforeAll(async () => {
  await initBackend(process.env['TFJS_BACKEND'] ? {} : { backend: 'cpu' });
  const classifier = createClassifier({ filters: [2, 3], hidden: 4, rng: new Rng(2) });
  storedClassifier = classifierWeights(classifier);
  disposeClassifier(classifier);
  const rbm = createRbm({ nVisible: 5, nComponents: 3, batchSize: 2, rng: new Rng(2) });
  storedRbm = rbmToData(rbm);
  disposeRbm(rbm);
  const dbm = createDbm({ nVisible: 5, nHidden1: 4, nHidden2: 3, particles: 2, rng: new Rng(2) });
  storedDbm = dbmToData(dbm);
  disposeDbm(dbm);
  const gan = tinyGan();
  const trainer = tinyTrainer(gan);
  savedState = trainer.state();
  trainer.dispose();
  gan.dispose();
});

/** Creates something that holds tensors; the returned function disposes all of it. */
type Factory = () => () => void;

const twoVariables = () => tf.tidy(() => [tf.variable(tf.ones([2, 3])), tf.variable(tf.zeros([3]))]);
const disposing = (model: { dispose(): void }) => () => model.dispose();
const rng = () => new Rng(1);

/** A tiny GAN's models and the trainer networks over them. */
function tinyGan() {
  const r = rng();
  const models = { generator: createGenerator({ latentDim: 2, hiddenDims: [4], outputDim: 3, outputActivation: 'linear', rng: r }), discriminator: createDiscriminator({ inputDim: 3, hiddenDims: [4], rng: r }) };
  const networks = {
    generator: { variables: models.generator.variables, optimizer: COURSE_ADAM },
    discriminator: { variables: models.discriminator.variables, optimizer: COURSE_ADAM },
  };
  return { models, networks, dispose: () => (models.generator.dispose(), models.discriminator.dispose()) };
}

function tinyTrainer(gan: ReturnType<typeof tinyGan>, resumeFrom?: TrainState) {
  return createTrainer({
    networks: gan.networks,
    data: new Float32Array(8 * 3).map((_, i) => Math.sin(i)),
    rowSize: 3,
    batchSize: 4,
    seed: 2,
    step: (ctx) => ganStep(ctx, gan.models),
    resumeFrom,
  });
}

const models: Record<string, Factory> = {
  'dense: createDense': () => {
    const d = createDense(3, 2, rng());
    return () => tf.dispose([d.kernel, d.bias]);
  },
  'dense: uniformVariable': () => {
    const v = uniformVariable([2, 2], 0.5, 3);
    return () => v.dispose();
  },
  'gan: createGenerator': () => disposing(createGenerator({ latentDim: 2, hiddenDims: [4], rng: rng() })),
  'gan: createDiscriminator': () => disposing(createDiscriminator({ hiddenDims: [4], rng: rng() })),
  'dcgan: createDcGenerator': () => disposing(createDcGenerator({ latentDim: 2, filters: [3, 2], rng: rng() })),
  'dcgan: createDcDiscriminator': () => disposing(createDcDiscriminator({ filters: [2, 3], rng: rng() })),
  'vae: createVae': () => disposing(createVae({ inputDim: 6, hiddenDim: 4, latentDim: 2, rng: rng() })),
  'vae-decoders: createGanDecoderVae (mlp)': () => disposing(createGanDecoderVae({ architecture: 'mlp', latentDim: 2, mlpHiddenDims: [3, 4], rng: rng() })),
  'vae-decoders: createGanDecoderVae (dcgan)': () =>
    disposing(createGanDecoderVae({ architecture: 'dcgan', latentDim: 2, dcFilters: { generator: [3, 2], encoder: [2, 3] }, rng: rng() })),
  'autoencoder: createStackedAutoencoder': () => disposing(createStackedAutoencoder({ inputDim: 6, hiddenDim: 4, codeDim: 2, rng: rng() })),
  'unet: createUNet': () => disposing(createUNet({ channels: [2, 4], embedDim: 4, frequencies: 2, rng: rng() })),
  'flow-matching: createFlowModel': () => disposing(createFlowModel({ channels: [2, 4], embedDim: 4, frequencies: 2, rng: rng() })),
  'classifier: createClassifier': () => {
    const model = createClassifier({ filters: [2, 3], hidden: 4, rng: rng() });
    return () => disposeClassifier(model);
  },
  'classifier: classifierFromWeights': () => {
    const model = classifierFromWeights(storedClassifier);
    return () => disposeClassifier(model);
  },
  'rbm: createRbm': () => {
    const rbm = createRbm({ nVisible: 5, nComponents: 3, batchSize: 2, rng: rng() });
    return () => disposeRbm(rbm);
  },
  'rbm: rbmFromData': () => {
    const rbm = rbmFromData(storedRbm);
    return () => disposeRbm(rbm);
  },
  'dbm: createDbm': () => {
    const dbm = createDbm({ nVisible: 5, nHidden1: 4, nHidden2: 3, particles: 2, rng: rng() });
    return () => disposeDbm(dbm);
  },
  'dbm: dbmFromData': () => {
    const dbm = dbmFromData(storedDbm);
    return () => disposeDbm(dbm);
  },
};

// The optimiser-owning parts of the trainer; the networks they train are created and
// disposed inside the factory too.
const training: Record<string, Factory> = {
  'trainer: createAdam': () => {
    const v = twoVariables();
    const adam = createAdam(v, COURSE_VAE_ADAM);
    return () => (adam.dispose(), tf.dispose(v));
  },
  'trainer: createAdam from a saved state': () => {
    const v = twoVariables();
    const restore: AdamState = { step: 3, m: [new Float32Array(6).fill(0.1), new Float32Array(3)], v: [new Float32Array(6).fill(0.2), new Float32Array(3)] };
    const adam = createAdam(v, COURSE_VAE_ADAM, restore);
    return () => (adam.dispose(), tf.dispose(v));
  },
  'trainer: createStepRunner (two networks)': () => {
    const gan = tinyGan();
    const runner = createStepRunner(gan.networks);
    return () => (runner.dispose(), gan.dispose());
  },
  'trainer: createTrainer': () => {
    const gan = tinyGan();
    const trainer = tinyTrainer(gan);
    return () => (trainer.dispose(), gan.dispose());
  },
  'trainer: createTrainer resuming from a state': () => {
    const gan = tinyGan();
    const trainer = tinyTrainer(gan, savedState);
    return () => (trainer.dispose(), gan.dispose());
  },
};

describe('creating and disposing leaves no tensor behind', () => {
  it.each(Object.entries({ ...models, ...training }))('%s', (_, factory) => {
    const before = tf.memory().numTensors;
    const dispose = factory();
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('covers every factory that src/ml/models exports', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const dir = new URL('../../src/ml/models/', import.meta.url);
    const exported = readdirSync(dir)
      .filter((f) => f.endsWith('.ts'))
      .flatMap((f) => [...readFileSync(new URL(f, dir), 'utf8').matchAll(/^export function (create\w+|\w+FromData|\w+FromWeights)\(/gm)].map((m) => m[1]!));
    expect(exported.length).toBeGreaterThan(15);
    const tested = Object.keys(models).join(' ');
    expect(exported.filter((name) => !tested.includes(name))).toEqual([]);
  });
});
