/**
 * One generic training loop (after tfjs-examples' fashion-mnist-vae and minGPT's Trainer):
 * `epochs × stepsPerEpoch` calls of the caller's `step`, which trains on one batch and
 * returns its losses as plain numbers; the loop averages them per epoch and reports
 * through callbacks. Logging, progress and figures belong to the caller.
 *
 * Memory: `step` must leave no tensors behind — run its work in tf.tidy, or use
 * `optimizerStep`, which does. tests/ml/train.test.ts checks `tf.memory().numTensors`.
 */
import * as tf from '@tensorflow/tfjs';

export type Losses = Record<string, number>;

export interface TrainCallbacks {
  onBatchEnd?(epoch: number, stepIndex: number, losses: Losses): void | Promise<void>;
  onEpochEnd?(epoch: number, means: Losses): void | Promise<void>;
}

export interface TrainOptions {
  epochs: number;
  stepsPerEpoch: number;
  step: (epoch: number, stepIndex: number) => Losses | Promise<Losses>;
  callbacks?: TrainCallbacks;
}

export interface TrainHistory {
  /** Per epoch, the mean of each loss over its steps. */
  epochs: Losses[];
}

export async function train(options: TrainOptions): Promise<TrainHistory> {
  const { epochs, stepsPerEpoch, step, callbacks = {} } = options;
  for (const [name, value] of [['epochs', epochs], ['stepsPerEpoch', stepsPerEpoch]] as const) {
    if (!Number.isInteger(value) || value < 0) throw new Error(`train: ${name} must be a non-negative integer, got ${value}`);
  }
  const history: TrainHistory = { epochs: [] };
  for (let epoch = 0; epoch < epochs; epoch++) {
    const sums: Losses = {};
    for (let i = 0; i < stepsPerEpoch; i++) {
      const losses = await step(epoch, i);
      for (const [name, value] of Object.entries(losses)) sums[name] = (sums[name] ?? 0) + value;
      await callbacks.onBatchEnd?.(epoch, i, losses);
    }
    const means: Losses = {};
    for (const [name, sum] of Object.entries(sums)) means[name] = sum / stepsPerEpoch;
    history.epochs.push(means);
    await callbacks.onEpochEnd?.(epoch, means);
  }
  return history;
}

/** Adam (Kingma & Ba 2015, Algorithm 1) with the paper's names; defaults are the paper's. */
export function adam(options: { learningRate: number; beta1?: number; beta2?: number; epsilon?: number }): tf.AdamOptimizer {
  return tf.train.adam(options.learningRate, options.beta1 ?? 0.9, options.beta2 ?? 0.999, options.epsilon ?? 1e-8);
}

/**
 * One optimiser update inside tf.tidy: `losses()` returns named scalars, the one named
 * `minimize` (default 'loss') is minimised over `varList` (default: all trainable
 * variables), and all are returned as numbers. Leaves no tensors behind.
 */
export function optimizerStep(
  optimizer: tf.Optimizer,
  losses: () => Record<string, tf.Scalar>,
  options: { minimize?: string; varList?: tf.Variable[] } = {},
): Losses {
  const target = options.minimize ?? 'loss';
  const kept: Record<string, tf.Scalar> = {};
  try {
    return tf.tidy(() => {
      const cost = optimizer.minimize(() => {
        const parts = losses();
        const loss = parts[target];
        if (loss == null) throw new Error(`optimizerStep: losses() returned ${Object.keys(parts).join(', ') || 'nothing'}, expected a '${target}' scalar`);
        for (const [name, value] of Object.entries(parts)) if (name !== target) kept[name] = tf.keep(value);
        return loss;
      }, true, options.varList);
      const values: Losses = { [target]: cost == null ? NaN : cost.dataSync()[0]! };
      for (const [name, value] of Object.entries(kept)) values[name] = value.dataSync()[0]!;
      return values;
    });
  } finally {
    tf.dispose(Object.values(kept));
  }
}
