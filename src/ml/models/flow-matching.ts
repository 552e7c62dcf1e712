/**
 * Conditional flow matching with the linear (rectified-flow) path, classifier-free
 * guidance and an exponential moving average of the weights: section 4.4's model.
 *
 * References: Y. Lipman, R. T. Q. Chen, H. Ben-Hamu, M. Nickel and M. Le, "Flow Matching
 * for Generative Modeling", ICLR 2023 (§4, conditional flow matching; the optimal-transport
 * path with σ_min = 0); X. Liu, C. Gong and Q. Liu, "Flow Straight and Fast", ICLR 2023
 * (the same linear path as "rectified flow"); J. Ho and T. Salimans, "Classifier-Free
 * Diffusion Guidance", 2022 (label dropout in training, guided velocity at sampling);
 * P. Esser et al., "Scaling Rectified Flow Transformers", ICML 2024 (logit-normal t).
 *
 * Notation: data x₁ (pixels scaled to [−1, 1]), noise x₀ ~ N(0, I), t ∈ [0, 1],
 *   x_t = (1 − t)·x₀ + t·x₁,   target velocity u = x₁ − x₀,
 *   loss = E_{t, x₀, x₁} ‖v_θ(x_t, t, y) − u‖² / 784   (mean over pixels).
 * Sampling integrates dx/dt = v_θ(x, t, y) from x₀ ~ N(0, I) at t = 0 to t = 1 (Euler or
 * Heun), with the guided field v = v_θ(x, t, ∅) + w·(v_θ(x, t, y) − v_θ(x, t, ∅)):
 * w = 1 is the plain conditional model, w = 0 the unconditional one.
 */
import * as tf from '@tensorflow/tfjs';
import { assert } from '../assert.ts';
import { IMAGE_PIXELS } from '../data/image.ts';
import type { Rng } from '../random.ts';
import type { StepContext } from '../trainer.ts';
import { createUNet, NULL_CLASS, type UNet, type UNetOptions } from './unet.ts';


export interface FlowModel {
  net: UNet;
  /** Exponential moving averages of `net.variables` (same order), updated after every step. */
  ema: tf.Variable[];
  emaDecay: number;
  dispose(): void;
}

export function createFlowModel(options: UNetOptions & { emaDecay?: number }): FlowModel {
  const { emaDecay = 0.999, ...unet } = options;
  const net = createUNet(unet);
  const ema = net.variables.map((v) => tf.tidy(() => tf.variable(v.clone(), false)));
  return {
    net,
    ema,
    emaDecay,
    dispose() {
      net.dispose();
      ema.forEach((v) => v.dispose());
    },
  };
}

export type TimeSampling = 'uniform' | 'logit-normal';

export interface FlowStepOptions {
  /** Probability that a training label is replaced by "no label" (classifier-free guidance; default 0.1). */
  labelDropout?: number;
  /** How t is drawn: U(0, 1) (default) or logit-normal(0, 1) (Esser et al. 2024). */
  timeSampling?: TimeSampling;
}

/** t for a batch of b, seeded. */
export function sampleTimes(b: number, sampling: TimeSampling, seed: number): tf.Tensor1D {
  return tf.tidy(() =>
    sampling === 'uniform' ? tf.randomUniform([b], 0, 1, 'float32', seed) : tf.sigmoid(tf.randomNormal([b], 0, 1, 'float32', seed)),
  ) as tf.Tensor1D;
}

/** The flow-matching loss (mean over batch and pixels) of `net` on data x₁, noise x₀, times t and labels y. */
export function flowMatchingLoss(net: Pick<UNet, 'apply'>, x1: tf.Tensor2D, x0: tf.Tensor2D, t: tf.Tensor1D, y: tf.Tensor1D): tf.Scalar {
  const tt = tf.reshape(t, [-1, 1]);
  const xt = tf.add(tf.mul(tf.sub(1, tt), x0), tf.mul(tt, x1)) as tf.Tensor2D;
  const target = tf.sub(x1, x0);
  return tf.mean(tf.square(tf.sub(net.apply(xt, t, y), target))) as tf.Scalar;
}

/** Labels for a training batch with each replaced by NULL_CLASS with probability `dropout` (JS-side, seeded). */
export function droppedLabels(labels: Uint8Array, dropout: number, rng: Rng): Float32Array {
  return Float32Array.from(labels, (label) => (rng.next() < dropout ? NULL_CLASS : label));
}

/**
 * One trainer step of the network 'velocity' on the batch `ctx.x` ([b, 784] in [0, 1],
 * with `ctx.labels`), then the EMA update. Records `loss`.
 */
export function flowMatchingStep(ctx: Pick<StepContext, 'x' | 'labels' | 'rng' | 'minimize' | 'globalStep'>, model: FlowModel, options: FlowStepOptions = {}): void {
  const { labelDropout = 0.1, timeSampling = 'uniform' } = options;
  const b = ctx.x.shape[0];
  assert(ctx.x.shape[1] === IMAGE_PIXELS, `flowMatchingStep: expected a batch [b, ${IMAGE_PIXELS}], got [${ctx.x.shape.join(', ')}]`);
  assert(ctx.labels !== undefined && ctx.labels.length === b, 'flowMatchingStep: the trainer must be given labels');
  const y = tf.tensor1d(droppedLabels(ctx.labels, labelDropout, ctx.rng));
  const x0 = tf.randomNormal([b, IMAGE_PIXELS], 0, 1, 'float32', ctx.rng.seed()) as tf.Tensor2D;
  const t = sampleTimes(b, timeSampling, ctx.rng.seed());
  const x1 = tf.sub(tf.mul(ctx.x, 2), 1) as tf.Tensor2D;
  ctx.minimize('velocity', () => ({ loss: flowMatchingLoss(model.net, x1, x0, t, y) }));
  updateEma(model, ctx.globalStep);
}

/**
 * ema ← d·ema + (1 − d)·θ with d = min(decay, (1 + n)/(10 + n)) after n earlier updates: the
 * usual warm-up, so that the average is not dominated by the random initial weights early
 * on (with a fixed 0.999, 63 % of the average would still be the initial weights after one
 * epoch of 468 steps).
 */
export function emaDecayAt(decay: number, step: number): number {
  return Math.min(decay, (1 + step) / (10 + step));
}

function updateEma(model: FlowModel, step: number): void {
  const d = emaDecayAt(model.emaDecay, step);
  tf.tidy(() => model.net.variables.forEach((v, i) => model.ema[i]!.assign(tf.add(tf.mul(model.ema[i]!, d), tf.mul(v, 1 - d)))));
}

/** Runs `fn` with the EMA weights in the network (the trained ones are put back after). */
export function withEmaWeights<T>(model: FlowModel, fn: () => T): T {
  const saved = model.net.variables.map((v) => tf.keep(v.clone()));
  try {
    model.net.variables.forEach((v, i) => v.assign(model.ema[i]!));
    return fn();
  } finally {
    model.net.variables.forEach((v, i) => v.assign(saved[i]!));
    tf.dispose(saved);
  }
}

// ---------------------------------------------------------------------------------------
// Sampling

/** A velocity field v(x, t) on a batch x [b, d]. */
export type VelocityField = (x: tf.Tensor2D, t: number) => tf.Tensor2D;

export type OdeMethod = 'euler' | 'heun';

/** Network evaluations of `integrate` for `steps` steps. */
export function functionEvaluations(method: OdeMethod, steps: number): number {
  return method === 'euler' ? steps : 2 * steps;
}

/**
 * Integrates dx/dt = field(x, t) from t = 0 to 1 in `steps` equal steps: Euler, or Heun's
 * second-order method (trapezoidal predictor–corrector). Returns x(1); `x0` is not disposed.
 */
export function integrate(field: VelocityField, x0: tf.Tensor2D, options: { steps: number; method?: OdeMethod }): tf.Tensor2D {
  const { steps, method = 'euler' } = options;
  assert(Number.isInteger(steps) && steps > 0, `integrate: steps must be a positive integer, got ${steps}`);
  const h = 1 / steps;
  let x = tf.clone(x0);
  for (let k = 0; k < steps; k++) {
    const t = k * h;
    const next = tf.tidy(() => {
      const v = field(x, t);
      if (method === 'euler') return tf.add(x, tf.mul(v, h)) as tf.Tensor2D;
      const predicted = tf.add(x, tf.mul(v, h)) as tf.Tensor2D;
      const v2 = field(predicted, t + h);
      return tf.add(x, tf.mul(tf.add(v, v2), h / 2)) as tf.Tensor2D;
    });
    x.dispose();
    x = next;
  }
  return x;
}

/**
 * The classifier-free-guided field of `net` for labels y [b]: w = 1 evaluates only the
 * conditional net, w = 0 only the unconditional one; otherwise both in one batch of 2b.
 */
export function guidedField(net: Pick<UNet, 'apply'>, labels: Float32Array, guidance: number): VelocityField {
  return (x, t) =>
    tf.tidy(() => {
      const b = x.shape[0];
      const times = tf.fill([b], t) as tf.Tensor1D;
      if (guidance === 1) return net.apply(x, times, tf.tensor1d(labels));
      if (guidance === 0) return net.apply(x, times, tf.fill([b], NULL_CLASS) as tf.Tensor1D);
      const both = net.apply(
        tf.concat([x, x]) as tf.Tensor2D,
        tf.concat([times, times]) as tf.Tensor1D,
        tf.concat([tf.tensor1d(labels), tf.fill([b], NULL_CLASS)]) as tf.Tensor1D,
      );
      const [conditional, unconditional] = tf.split(both, 2);
      return tf.add(unconditional!, tf.mul(tf.sub(conditional!, unconditional!), guidance)) as tf.Tensor2D;
    });
}

export interface SampleOptions {
  /** Class of each image (0…9); its length is the number of images. */
  labels: Float32Array;
  steps: number;
  method?: OdeMethod;
  /** Guidance weight w (default 1: no guidance). */
  guidance?: number;
  /** Use the EMA weights (default) or the trained ones. */
  weights?: 'ema' | 'trained';
  seed: number;
  /** Images per batch (default 500). */
  chunk?: number;
}

/** Images [n, 784] in [0, 1] (x(1) mapped back from [−1, 1] and clipped). */
export function sampleFlow(model: FlowModel, options: SampleOptions): Float32Array {
  const { labels, steps, method = 'euler', guidance = 1, weights = 'ema', seed, chunk = 500 } = options;
  const n = labels.length;
  const out = new Float32Array(n * IMAGE_PIXELS);
  const run = () => {
    for (let start = 0; start < n; start += chunk) {
      const size = Math.min(chunk, n - start);
      const x0 = tf.randomNormal([size, IMAGE_PIXELS], 0, 1, 'float32', seed + start) as tf.Tensor2D;
      const field = guidedField(model.net, labels.subarray(start, start + size), guidance);
      const x1 = integrate(field, x0, { steps, method });
      out.set(tf.tidy(() => tf.clipByValue(tf.div(tf.add(x1, 1), 2), 0, 1).dataSync() as Float32Array), start * IMAGE_PIXELS);
      tf.dispose([x0, x1]);
    }
  };
  if (weights === 'ema') withEmaWeights(model, run);
  else run();
  return out;
}

/**
 * The flow-matching loss on held-out images ([n, 784] in [0, 1], labels 0…9) with noise and
 * times fixed by `seed`: comparable across epochs and models (mean over images and pixels).
 */
export function heldOutLoss(
  net: Pick<UNet, 'apply'>,
  images: Float32Array,
  labels: Uint8Array,
  seed: number,
  options: { conditional?: boolean; chunk?: number } = {},
): number {
  const { conditional = true, chunk = 500 } = options;
  const n = labels.length;
  assert(images.length === n * IMAGE_PIXELS, `heldOutLoss: ${images.length} values for ${n} labels`);
  let sum = 0;
  for (let start = 0; start < n; start += chunk) {
    const size = Math.min(chunk, n - start);
    sum += tf.tidy(() => {
      const x1 = tf.sub(tf.mul(tf.tensor2d(images.subarray(start * IMAGE_PIXELS, (start + size) * IMAGE_PIXELS), [size, IMAGE_PIXELS]), 2), 1) as tf.Tensor2D;
      const x0 = tf.randomNormal([size, IMAGE_PIXELS], 0, 1, 'float32', seed + start) as tf.Tensor2D;
      const t = tf.randomUniform([size], 0, 1, 'float32', seed + start + 1) as tf.Tensor1D;
      const y = conditional ? tf.tensor1d(Float32Array.from(labels.subarray(start, start + size))) : (tf.fill([size], NULL_CLASS) as tf.Tensor1D);
      return flowMatchingLoss(net, x1, x0, t, y).dataSync()[0]! * size;
    });
  }
  return sum / n;
}
