/**
 * One training loop for every model trained by gradient descent (the referee classifier of
 * section 4.1, GAN, DCGAN, VAE, stacked auto-encoder, the model of section 4.4; the RBMs
 * and the DBM keep their own contrastive-divergence updates), after minGPT's `Trainer` and
 * the tfjs-examples' loops: the loop owns the optimisers, the seeded batch order, `tf.tidy`
 * and disposal, the per-step and per-epoch callbacks, gradient-norm logging per network,
 * and a state that can be saved and restored exactly. A model file supplies only its
 * factories and its loss functions; the caller's `step` says which loss each network
 * minimises.
 *
 * Determinism and resuming. Every random draw of epoch e comes from
 * `new Rng(seed).fork('epoch e')` — the batch order and the `rng` handed to each step — so
 * the random streams need no state beyond the epoch counter. `state()` after any epoch holds
 * the weights, each optimiser's moments, step count and learning rate, and the history; a
 * trainer created with `resumeFrom: state` continues bit for bit where the saved one stopped
 * (tests/ml/trainer.test.ts checks it against an uninterrupted run).
 *
 * Adam (Kingma & Ba 2015, Algorithm 1) is written here rather than taken from
 * `tf.train.adam`: tfjs's optimiser keeps β^t as a running float32 product but restores it
 * with `pow`, so a restored optimiser is not bit-identical to the one that was saved; ours
 * computes the bias corrections 1 − β^t in float64 from the step count.
 *
 * Learning-rate schedules (the classifier's step decay) are per network and per epoch
 * (`NetworkSpec.learningRateSchedule`); the rate in force is part of each optimiser's state.
 *
 * Memory: each step runs inside `tf.tidy`; metrics are read with one `dataSync` per step.
 */
import * as tf from '@tensorflow/tfjs';
import { assert } from './assert.ts';
import { batchCount, batches } from './data/batches.ts';
import { Rng } from './random.ts';

export type Metrics = Record<string, number>;

// ---------------------------------------------------------------------------------------
// Adam with a state that round-trips exactly

export interface AdamOptions {
  learningRate: number;
  beta1?: number;
  beta2?: number;
  epsilon?: number;
}

export interface AdamState {
  step: number;
  /**
   * α of the next update: `options.learningRate` unless `setLearningRate` changed it.
   * Absent in states saved before learning-rate schedules existed (read as the base).
   */
  learningRate?: number;
  /** First and second moments, one array per variable, in variable order. */
  m: Float32Array[];
  v: Float32Array[];
}

export interface Adam {
  /** As created; `options.learningRate` is the base rate that schedules multiply. */
  readonly options: Required<AdamOptions>;
  /** Number of updates applied so far (t in the paper). */
  readonly step: number;
  /** α of the next update (saved and restored with the state). */
  readonly learningRate: number;
  /** Sets α from the next update on; the moments and the step count are kept. */
  setLearningRate(value: number): void;
  /** θ ← θ − α · m̂ / (√v̂ + ε) for each variable, given its gradient (same order). */
  apply(grads: readonly tf.Tensor[]): void;
  state(): AdamState;
  dispose(): void;
}

export function createAdam(variables: readonly tf.Variable[], options: AdamOptions, restore?: AdamState): Adam {
  const { learningRate: baseRate, beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8 } = options;
  const checkRate = (value: number) => assert(Number.isFinite(value) && value >= 0, `Adam: learningRate must be finite and >= 0, got ${value}`);
  assert(baseRate > 0, `Adam: learningRate must be > 0, got ${baseRate}`);
  if (restore) {
    assert(restore.m.length === variables.length && restore.v.length === variables.length,
      `Adam: state has ${restore.m.length} moments for ${variables.length} variables`);
  }
  // In tf.tidy: the initial-value tensors are disposed, the variables (which tidy never
  // disposes) keep their data. tests/ml/leaks.test.ts checks it.
  const moments = (saved?: Float32Array[]) =>
    tf.tidy(() => variables.map((x, i) => tf.variable(saved ? tf.tensor(saved[i]!, x.shape) : tf.zerosLike(x), false)));
  const m = moments(restore?.m);
  const v = moments(restore?.v);
  let step = restore?.step ?? 0;
  let learningRate = restore?.learningRate ?? baseRate;
  checkRate(learningRate);
  return {
    options: { learningRate: baseRate, beta1, beta2, epsilon },
    get step() {
      return step;
    },
    get learningRate() {
      return learningRate;
    },
    setLearningRate(value) {
      checkRate(value);
      learningRate = value;
    },
    apply(grads) {
      assert(grads.length === variables.length, `Adam: ${grads.length} gradients for ${variables.length} variables`);
      step++;
      // Bias corrections in float64 from the step count: exact to restore.
      const correction1 = 1 - beta1 ** step;
      const correction2 = 1 - beta2 ** step;
      tf.tidy(() => {
        variables.forEach((x, i) => {
          const g = grads[i]!;
          const mi = tf.add(tf.mul(m[i]!, beta1), tf.mul(g, 1 - beta1));
          const vi = tf.add(tf.mul(v[i]!, beta2), tf.mul(tf.square(g), 1 - beta2));
          m[i]!.assign(mi);
          v[i]!.assign(vi);
          const update = tf.div(tf.div(mi, correction1), tf.add(tf.sqrt(tf.div(vi, correction2)), epsilon));
          x.assign(tf.sub(x, tf.mul(update, learningRate)));
        });
      });
    },
    state: () => ({ step, learningRate, m: m.map((t) => t.dataSync().slice() as Float32Array), v: v.map((t) => t.dataSync().slice() as Float32Array) }),
    dispose: () => tf.dispose([...m, ...v]),
  };
}

// ---------------------------------------------------------------------------------------
// The loop

export interface NetworkSpec {
  /** Trained by this network's optimiser. */
  variables: tf.Variable[];
  /** Saved and restored but not trained (e.g. batch-norm running averages). */
  statistics?: tf.Variable[];
  optimizer: AdamOptions;
  /**
   * Learning-rate schedule: 0-based epoch e trains with `optimizer.learningRate · schedule(e)`,
   * set before the epoch's first step (so a resumed run gets the rate of the epoch it
   * resumes at); e.g. step decay `(e) => 0.7 ** e`. Default: the constant base rate.
   */
  learningRateSchedule?: (epoch: number) => number;
}

export interface StepContext {
  /** 0-based epoch and step within it; `globalStep` counts from the start of training. */
  epoch: number;
  index: number;
  globalStep: number;
  /** The batch [b, rowSize]; `labels` of its rows when the trainer has labels. */
  x: tf.Tensor2D;
  labels?: Uint8Array;
  /** This step's random stream (seeded by the trainer's seed and the epoch). */
  rng: Rng;
  /**
   * One optimiser step of `network` on the scalar named `target` (default 'loss') among
   * those `losses()` returns. Records every returned scalar as `<name>` and the gradient's
   * global L2 norm as `<network>GradNorm`. May be nested (a D step inside G's loss).
   */
  minimize(network: string, losses: () => Record<string, tf.Scalar>, target?: string): void;
  /** Records a scalar metric of this step. */
  record(name: string, value: tf.Scalar | number): void;
}

export interface EpochRecord {
  /** 1-based epoch number. */
  epoch: number;
  /** Means over the epoch's steps of every recorded metric. */
  train: Metrics;
  /** Whatever `onEpochEnd` returned (evaluation metrics), if anything. */
  eval?: Metrics;
  /** Wall-clock seconds of the epoch's training steps (not of the evaluation). */
  seconds: number;
}

export interface StepRecord {
  globalStep: number;
  metrics: Metrics;
}

export interface TrainState {
  /** Epochs completed. */
  epoch: number;
  /** Per network: trained variables then statistics, flattened, in their order. */
  weights: Record<string, Float32Array[]>;
  optimizers: Record<string, AdamState>;
  history: EpochRecord[];
  steps: StepRecord[];
}

export interface TrainerOptions {
  networks: Record<string, NetworkSpec>;
  /** Training rows [n, rowSize], and optionally their labels. */
  data: Float32Array;
  rowSize: number;
  labels?: Uint8Array;
  batchSize: number;
  /** Drop the last short batch (default true: every step sees a full batch). */
  dropLast?: boolean;
  /** Use only the first `stepsPerEpoch` batches of each (shuffled) epoch. */
  stepsPerEpoch?: number;
  seed: number;
  step(ctx: StepContext): void;
  /** Keep every n-th step's metrics in `steps` (default: none). */
  logEvery?: number;
  onStepEnd?(info: { epoch: number; index: number; stepsPerEpoch: number; metrics: Metrics }): void;
  /** Called after each epoch; what it returns is stored as that epoch's `eval`. */
  onEpochEnd?(record: EpochRecord): Metrics | void | Promise<Metrics | void>;
  /** A state from `state()` to continue from (weights are assigned to `networks`). */
  resumeFrom?: TrainState;
  /** Clock, injectable for tests (default performance.now). */
  now?: () => number;
}

export interface Trainer {
  /** Trains until `epochs` epochs are complete in total (counting resumed ones). */
  fit(epochs: number): Promise<EpochRecord[]>;
  readonly epoch: number;
  /** Steps in each epoch (all full batches, or `stepsPerEpoch` if smaller). */
  readonly stepsPerEpoch: number;
  readonly history: readonly EpochRecord[];
  readonly steps: readonly StepRecord[];
  state(): TrainState;
  /** Disposes the optimisers' moments (not the networks' variables). */
  dispose(): void;
}

/** Runs single steps on a set of networks: the part of the trainer that knows no data set. */
export interface StepRunner {
  readonly optimizers: Readonly<Record<string, Adam>>;
  /** Runs `step` in tf.tidy with `minimize`/`record` bound to these networks; returns its metrics. */
  run(base: Omit<StepContext, 'minimize' | 'record'>, step: (ctx: StepContext) => void): Metrics;
  dispose(): void;
}

export function createStepRunner(networks: Record<string, NetworkSpec>, restore?: Record<string, AdamState>): StepRunner {
  const optimizers = Object.fromEntries(
    Object.entries(networks).map(([name, spec]) => [name, createAdam(spec.variables, spec.optimizer, restore?.[name])]),
  );
  return {
    optimizers,
    run(base, step) {
      const names: string[] = [];
      const kept: tf.Scalar[] = [];
      const numbers: Metrics = {};
      const record = (name: string, value: tf.Scalar | number) => {
        if (typeof value === 'number') numbers[name] = value;
        else {
          names.push(name);
          kept.push(tf.keep(value));
        }
      };
      const minimize = (network: string, losses: () => Record<string, tf.Scalar>, target = 'loss') => {
        const optimizer = optimizers[network];
        assert(optimizer !== undefined, `trainer: no network '${network}' (have ${Object.keys(networks).join(', ')})`);
        const { variables } = networks[network]!;
        const { value, grads } = tf.variableGrads(() => {
          const parts = losses();
          const loss = parts[target];
          assert(loss !== undefined, `trainer: losses() returned ${Object.keys(parts).join(', ') || 'nothing'}, expected '${target}'`);
          for (const [name, part] of Object.entries(parts)) if (name !== target) record(name, part);
          return loss;
        }, variables);
        const list = variables.map((v) => grads[v.name] ?? tf.zerosLike(v));
        record(target, value);
        record(`${network}GradNorm`, tf.sqrt(tf.addN(list.map((g) => tf.sum(tf.square(g))))) as tf.Scalar);
        optimizer.apply(list);
      };
      try {
        tf.tidy(() => step({ ...base, minimize, record }));
        const values = kept.length > 0 ? tf.tidy(() => tf.stack(kept).dataSync()) : new Float32Array(0);
        const metrics: Metrics = { ...numbers };
        names.forEach((name, i) => (metrics[name] = values[i]!));
        return metrics;
      } finally {
        tf.dispose(kept);
      }
    },
    dispose: () => Object.values(optimizers).forEach((o) => o.dispose()),
  };
}

export function createTrainer(options: TrainerOptions): Trainer {
  const { networks, data, rowSize, labels, batchSize, dropLast = true, seed, logEvery = 0 } = options;
  const now = options.now ?? (() => performance.now());
  const rows = data.length / rowSize;
  assert(Number.isInteger(rows), `trainer: data length ${data.length} is not a multiple of rowSize ${rowSize}`);
  assert(labels === undefined || labels.length === rows, `trainer: ${labels?.length} labels for ${rows} rows`);
  const fullSteps = batchCount(rows, batchSize, dropLast);
  const stepsPerEpoch = Math.min(options.stepsPerEpoch ?? fullSteps, fullSteps);
  assert(stepsPerEpoch > 0, `trainer: no full batch of ${batchSize} in ${rows} rows`);

  const resume = options.resumeFrom;
  if (resume) restoreWeights(networks, resume.weights);
  const runner = createStepRunner(networks, resume?.optimizers);
  let epoch = resume?.epoch ?? 0;
  const history: EpochRecord[] = resume ? resume.history.map((r) => ({ ...r })) : [];
  const steps: StepRecord[] = resume ? resume.steps.map((s) => ({ ...s })) : [];

  return {
    get epoch() {
      return epoch;
    },
    stepsPerEpoch,
    history,
    steps,
    async fit(epochs) {
      assert(Number.isInteger(epochs) && epochs >= 0, `trainer.fit: epochs must be a non-negative integer, got ${epochs}`);
      const done: EpochRecord[] = [];
      while (epoch < epochs) {
        for (const [name, spec] of Object.entries(networks)) {
          if (spec.learningRateSchedule) runner.optimizers[name]!.setLearningRate(spec.optimizer.learningRate * spec.learningRateSchedule(epoch));
        }
        const epochRng = new Rng(seed).fork(`epoch ${epoch}`);
        const sums: Metrics = {};
        const start = now();
        for (const batch of batches(data, rowSize, batchSize, { rng: epochRng, dropLast })) {
          if (batch.index >= stepsPerEpoch) {
            batch.x.dispose();
            break;
          }
          const globalStep = epoch * stepsPerEpoch + batch.index;
          let metrics: Metrics;
          try {
            const base = {
              epoch,
              index: batch.index,
              globalStep,
              x: batch.x,
              labels: labels ? Uint8Array.from(batch.indices, (i) => labels[i]!) : undefined,
              rng: epochRng.fork(`step ${batch.index}`),
            };
            metrics = runner.run(base, options.step);
          } finally {
            batch.x.dispose();
          }
          for (const [name, value] of Object.entries(metrics)) sums[name] = (sums[name] ?? 0) + value;
          if (logEvery > 0 && globalStep % logEvery === 0) steps.push({ globalStep, metrics });
          options.onStepEnd?.({ epoch, index: batch.index, stepsPerEpoch, metrics });
        }
        const record: EpochRecord = {
          epoch: epoch + 1,
          train: Object.fromEntries(Object.entries(sums).map(([name, sum]) => [name, sum / stepsPerEpoch])),
          seconds: (now() - start) / 1000,
        };
        epoch++;
        const evaluation = await options.onEpochEnd?.(record);
        if (evaluation) record.eval = evaluation;
        history.push(record);
        done.push(record);
      }
      return done;
    },
    state: () => ({
      epoch,
      weights: Object.fromEntries(Object.entries(networks).map(([name, spec]) => [name, networkWeights(spec)])),
      optimizers: Object.fromEntries(Object.entries(runner.optimizers).map(([name, o]) => [name, o.state()])),
      history: history.map((r) => ({ ...r })),
      steps: steps.map((s) => ({ ...s })),
    }),
    dispose: () => runner.dispose(),
  };
}

/** A network's trained variables then statistics as plain arrays (for the results store). */
export function networkWeights(spec: Pick<NetworkSpec, 'variables' | 'statistics'>): Float32Array[] {
  return [...spec.variables, ...(spec.statistics ?? [])].map((v) => v.dataSync().slice() as Float32Array);
}

/** Assigns arrays from `networkWeights` back to a network of the same shapes. */
export function assignWeights(spec: Pick<NetworkSpec, 'variables' | 'statistics'>, weights: readonly Float32Array[]): void {
  const all = [...spec.variables, ...(spec.statistics ?? [])];
  assert(weights.length === all.length, `assignWeights: ${weights.length} arrays for ${all.length} variables`);
  all.forEach((v, i) => {
    assert(weights[i]!.length === v.size, `assignWeights: array ${i} has ${weights[i]!.length} values, variable ${v.name} has ${v.size}`);
    tf.tidy(() => v.assign(tf.tensor(weights[i]!, v.shape, 'float32')));
  });
}

function restoreWeights(networks: Record<string, NetworkSpec>, weights: Record<string, Float32Array[]>): void {
  for (const [name, spec] of Object.entries(networks)) {
    const saved = weights[name];
    assert(saved !== undefined, `trainer: the state to resume has no weights for network '${name}'`);
    assignWeights(spec, saved);
  }
}
