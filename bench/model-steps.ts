/**
 * One training step of each model of the report, built as the report trains it: the model
 * factories of src/ml/models, their step functions (ganStep, vaeStep, autoencoderStep,
 * flowMatchingStep) and the shared trainer's step runner (src/ml/trainer.ts
 * createStepRunner: our Adam, tf.tidy, gradient norms, one metrics read-back per step).
 * bench/run.ts times them against the same models in bench/torch_bench.py.
 *
 * What each one is (report code that sets it up in brackets):
 *   gan-512     the course's MLP GAN, batch 512, Adam(1e-3, β 0.5, 0.999) (report/lib/gan-runs.ts)
 *   dcgan       the DCGAN, batch 64 (gan-runs.ts's DCGAN config; the learning rate does not change the time)
 *   vae-course  the course VAE 784-128-100, batch 3000, the course's Adam (report/lib/vae-runs.ts)
 *   ae          the stacked auto-encoder 784-128-100, its end-to-end fine-tuning stage (40 of its
 *               50 epochs), MSE, batch 3000, the course's Adam (vae-runs.ts trainAutoencoderRun)
 *   flow        section 4.4's class-conditional flow matching, U-Net channels [32, 64], embedding 64,
 *               16 frequencies, batch 128, Adam(1e-3, β 0.9, 0.999), label dropout 0.1, the EMA
 *               update (report/lib/flow-runs.ts trainFlowRun). flow-runs.ts calls
 *               registerFastConvolutions() before training; the caller must do the same (and
 *               unregister after) to time it as the report runs it.
 * Data are synthetic, of MNIST's shape: timings do not depend on pixel values.
 */
import * as tf from '@tensorflow/tfjs';
import { createDcDiscriminator, createDcGenerator } from '../src/ml/models/dcgan.ts';
import { countParams } from '../src/ml/models/dense.ts';
import { createStackedAutoencoder, autoencoderStep } from '../src/ml/models/autoencoder.ts';
import { createFlowModel, flowMatchingStep } from '../src/ml/models/flow-matching.ts';
import { COURSE_ADAM, createDiscriminator, createGenerator, ganStep, type GanModels } from '../src/ml/models/gan.ts';
import { COURSE_VAE, COURSE_VAE_ADAM, createVae, vaeStep } from '../src/ml/models/vae.ts';
import { createStepRunner, type StepContext, type StepRunner } from '../src/ml/trainer.ts';
import { Rng } from '../src/ml/random.ts';

export interface ModelStep {
  /** Trainable parameters (compared with PyTorch's count of the same model). */
  params: number;
  batch: number;
  /** One training step; reads its metrics back (the runner does), so the work is done. */
  step(): void;
  dispose(): void;
}

export type ModelStepKey = 'gan-512' | 'dcgan' | 'vae-course' | 'ae' | 'flow';

/** The report's batch size of each workload. */
export const REPORT_BATCH: Readonly<Record<ModelStepKey, number>> = { 'gan-512': 512, dcgan: 64, 'vae-course': 3000, ae: 3000, flow: 128 };

/** A runner stepping `body` on a fixed batch, with the global step counting up (the EMA's warm-up reads it). */
function stepper(runner: StepRunner, x: tf.Tensor2D, body: (ctx: StepContext) => void, labels?: Uint8Array): () => void {
  const rng = new Rng(5);
  let globalStep = 0;
  return () => {
    runner.run({ epoch: 0, index: globalStep, globalStep, x, labels, rng }, body);
    globalStep++;
  };
}

function ganSteps(models: GanModels, batch: number): ModelStep {
  const runner = createStepRunner({
    generator: { variables: models.generator.variables, optimizer: COURSE_ADAM },
    discriminator: { variables: models.discriminator.variables, optimizer: COURSE_ADAM },
  });
  const real = tf.randomUniform([batch, 784], -1, 1, 'float32', 3) as tf.Tensor2D;
  return {
    params: countParams([...models.generator.variables, ...models.discriminator.variables]),
    batch,
    step: stepper(runner, real, (ctx) => ganStep(ctx, models)),
    dispose() {
      real.dispose();
      runner.dispose();
      models.generator.dispose();
      models.discriminator.dispose();
    },
  };
}

/** The step of workload `key` at `batch` (default: the report's). */
export function createModelStep(key: ModelStepKey, batch = REPORT_BATCH[key]): ModelStep {
  const rng = new Rng(0);
  switch (key) {
    case 'gan-512':
      return ganSteps({ generator: createGenerator({ latentDim: 10, rng }), discriminator: createDiscriminator({ rng }) }, batch);
    case 'dcgan':
      return ganSteps({ generator: createDcGenerator({ latentDim: 10, rng }), discriminator: createDcDiscriminator({ rng }) }, batch);
    case 'vae-course': {
      const vae = createVae({ ...COURSE_VAE, rng });
      const runner = createStepRunner({ vae: { variables: vae.variables, optimizer: COURSE_VAE_ADAM } });
      const x = tf.randomUniform([batch, 784], 0, 1, 'float32', 3) as tf.Tensor2D;
      return {
        params: countParams(vae.variables),
        batch,
        step: stepper(runner, x, (ctx) => vaeStep(ctx, vae)),
        dispose() {
          x.dispose();
          runner.dispose();
          vae.dispose();
        },
      };
    }
    case 'ae': {
      const ae = createStackedAutoencoder({ hiddenDim: COURSE_VAE.hiddenDim, codeDim: COURSE_VAE.latentDim, rng });
      const runner = createStepRunner({ finetune: { variables: ae.stageVariables.finetune, optimizer: COURSE_VAE_ADAM } });
      const x = tf.randomUniform([batch, 784], 0, 1, 'float32', 3) as tf.Tensor2D;
      return {
        params: countParams(ae.variables),
        batch,
        step: stepper(runner, x, (ctx) => autoencoderStep(ctx, ae, 'finetune')),
        dispose() {
          x.dispose();
          runner.dispose();
          ae.dispose();
        },
      };
    }
    case 'flow': {
      const model = createFlowModel({ channels: [32, 64], embedDim: 64, frequencies: 16, emaDecay: 0.999, rng });
      const runner = createStepRunner({
        velocity: { variables: model.net.variables, statistics: model.ema, optimizer: { learningRate: 1e-3, beta1: 0.9, beta2: 0.999 } },
      });
      const x = tf.randomUniform([batch, 784], 0, 1, 'float32', 3) as tf.Tensor2D;
      const labels = Uint8Array.from({ length: batch }, () => rng.int(10));
      return {
        params: countParams(model.net.variables),
        batch,
        step: stepper(runner, x, (ctx) => flowMatchingStep(ctx, model, { labelDropout: 0.1, timeSampling: 'uniform' }), labels),
        dispose() {
          x.dispose();
          runner.dispose();
          model.dispose();
        },
      };
    }
  }
}
