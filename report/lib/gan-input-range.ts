/**
 * Section 4.2's control for the input range: the course GAN trained exactly as the course's
 * script did, on real images in [0, 1] while the generator's tanh outputs [−1, 1], to compare
 * with the corrected runs (gan-runs.ts, images in [−1, 1]) at the same learning rate, seeds
 * and epochs. Samples are clipped to [0, 1] for the referee, as the script's plots clip them.
 */
import { progress } from 'report:runtime';
import { loadMnist } from '../../src/ml/data/mnist.ts';
import { classifierFromWeights, disposeClassifier, type StoredWeight } from '../../src/ml/models/classifier.ts';
import { COURSE_ADAM, ganStep } from '../../src/ml/models/gan.ts';
import { evaluateSamples, protocolReference, type SampleMetrics } from '../../src/ml/metrics/protocol.ts';
import { createTrainer, type Metrics } from '../../src/ml/trainer.ts';
import { createGanModels, generate, normalCodes, profileSizes, runRng } from './gan-runs.ts';

export interface InputRangeRun {
  epochs: { epoch: number; train: Metrics; eval: Omit<SampleMetrics, 'histogram'> }[];
}

export async function unitRangeRun(classifierWeights: readonly StoredWeight[], seedIndex: number, epochs: number, learningRate = 1e-3): Promise<InputRangeRun> {
  const rng = runRng(seedIndex); // the same streams as run `seedIndex` of gan-runs.ts
  const sizes = profileSizes();
  const train = loadMnist({ split: 'train', range: '01', limit: sizes.trainImages });
  const test = loadMnist({ split: 'test' });
  const classifier = classifierFromWeights(classifierWeights);
  const reference = protocolReference(classifier, test.images.subarray(0, sizes.referenceImages * 784), new Float32Array(784));
  const models = createGanModels({ architecture: 'mlp' }, rng.fork('init'));
  rng.fork('fixed codes'); // keep the stream aligned with gan-runs.ts
  const evalRng = rng.fork('evaluation');
  const trainer = createTrainer({
    networks: {
      generator: { variables: models.generator.variables, optimizer: { ...COURSE_ADAM, learningRate } },
      discriminator: { variables: models.discriminator.variables, optimizer: { ...COURSE_ADAM, learningRate } },
    },
    data: train.images,
    rowSize: 784,
    batchSize: 512,
    stepsPerEpoch: sizes.stepsPerEpoch,
    seed: rng.fork('trainer').seed(),
    step: (ctx) => ganStep(ctx, models),
    onStepEnd: ({ epoch, index, stepsPerEpoch }) => {
      if (index % 10 === 0) progress({ step: epoch * stepsPerEpoch + index, total: epochs * stepsPerEpoch, label: `[0, 1] input, run ${seedIndex}` });
    },
    onEpochEnd: (record) => {
      // generate() maps tanh outputs from [−1, 1] to [0, 1]; here the outputs are meant as [0, 1] pixels: undo it and clip.
      const mapped = generate(models.generator, normalCodes(sizes.evalSamples, 10, evalRng.fork(`epoch ${record.epoch}`)));
      const samples = mapped.map((v) => Math.min(1, Math.max(0, 2 * v - 1)));
      const { histogram: _histogram, ...metrics } = evaluateSamples(classifier, samples, reference);
      return metrics;
    },
  });
  try {
    await trainer.fit(epochs);
    return { epochs: trainer.history.map((r) => ({ epoch: r.epoch, train: r.train, eval: r.eval as unknown as Omit<SampleMetrics, 'histogram'> })) };
  } finally {
    trainer.dispose();
    models.generator.dispose();
    models.discriminator.dispose();
    disposeClassifier(classifier);
  }
}
