/**
 * Fully connected layers as explicit `tf.Variable`s, shared by the MLP models (gan.ts,
 * vae.ts, dcgan.ts's dense ends).
 *
 * Why not `tf.layers.dense`: explicit variables keep the step free of symbolic-layer
 * bookkeeping and let us choose the ops (see `applyDense`) — one D step of the course's
 * GAN (batch 256, dropout, Adam) took 102 ms this way against 124 ms as a tf.layers
 * model (CPU time, wasm, loaded machine, 2026-11-21). The matMul stays
 * `[batch, in] × [in, out]` with no transpose flags (the wasm backend's transposed matMul
 * is ~30× slower than the plain one; gradients are left to the registered kernel
 * gradients and wasm fixes, see src/ml/backend.ts).
 *
 * Initialisation follows PyTorch's `nn.Linear` default, which the course's scripts use:
 * weight and bias ~ U(−1/√fanIn, 1/√fanIn) (Kaiming-uniform with a = √5).
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../random.ts';

export interface Dense {
  /** [fanIn, fanOut] */
  kernel: tf.Variable<tf.Rank.R2>;
  /** [fanOut] */
  bias: tf.Variable<tf.Rank.R1>;
}

export function createDense(fanIn: number, fanOut: number, rng: Rng): Dense {
  const bound = 1 / Math.sqrt(fanIn);
  return {
    kernel: uniformVariable([fanIn, fanOut], bound, rng.seed()),
    bias: uniformVariable([fanOut], bound, rng.seed()),
  };
}

/**
 * A trainable variable drawn from U(−bound, bound) with `seed`. The tensor it is made from
 * is disposed (tf.variable copies it; tf.tidy keeps the variable).
 */
export function uniformVariable<R extends tf.Rank>(shape: number[], bound: number, seed: number): tf.Variable<R> {
  return tf.tidy(() => tf.variable(tf.randomUniform(shape, -bound, bound, 'float32', seed), true)) as unknown as tf.Variable<R>;
}

export type Activation = 'linear' | 'relu' | 'leakyrelu' | 'sigmoid' | 'tanh';

/**
 * LeakyReLU(x) = max(x, αx), computed as (1 − α)·relu(x) + α·x (same values, same
 * gradient, 1 or α; α at 0 as tfjs's). Why: tfjs-wasm's LeakyRelu kernel and its
 * gradient (Greater + Select) are slow — measured on [64, 14, 14, 64], forward 7.2 ms vs
 * 1.6 ms, forward + backward 13.8 ms vs 7.9 ms (CPU time, loaded machine).
 */
export function leakyRelu<T extends tf.Tensor>(x: T, alpha: number): T {
  return tf.add(tf.mul(tf.relu(x), 1 - alpha), tf.mul(x, alpha));
}

/**
 * x·W + b followed by an activation: `tf.matMul` then `tf.add`, not `tf.fused.matMul`.
 * Why: the fused op's custom gradient computes ∂x and ∂W together, even when x needs no
 * gradient (a discriminator's input batch in its own step, the first layer of any
 * network), while matMul's registered gradient is lazy per input. Skipping that unneeded
 * ∂x (e.g. [256, 1024]·[1024, 784] in the GAN's D step) saves more than the separate bias
 * add costs.
 */
export function applyDense(layer: Dense, x: tf.Tensor2D, activation: Activation = 'linear', leakyreluAlpha = 0.2): tf.Tensor2D {
  const [batch, fanIn] = x.shape;
  if (fanIn !== layer.kernel.shape[0]) {
    throw new Error(`applyDense: expected input [batch, ${layer.kernel.shape[0]}], got [${batch}, ${fanIn}]`);
  }
  const y = tf.add(tf.matMul(x, layer.kernel), layer.bias) as tf.Tensor2D; // [batch, fanOut]
  switch (activation) {
    case 'linear':
      return y;
    case 'relu':
      return tf.relu(y) as tf.Tensor2D;
    case 'leakyrelu':
      return leakyRelu(y, leakyreluAlpha);
    case 'sigmoid':
      return tf.sigmoid(y) as tf.Tensor2D;
    case 'tanh':
      return tf.tanh(y) as tf.Tensor2D;
  }
}

export function denseVariables(layers: readonly Dense[]): tf.Variable[] {
  return layers.flatMap((l) => [l.kernel, l.bias]);
}

export function countParams(variables: readonly tf.Variable[]): number {
  return variables.reduce((n, v) => n + v.size, 0);
}

/** Inverted dropout with a seeded mask (`tf.dropout`, which draws its mask from `seed`). */
export function dropout(x: tf.Tensor2D, rate: number, seed: number): tf.Tensor2D {
  return rate > 0 ? (tf.dropout(x, rate, undefined, seed) as tf.Tensor2D) : x;
}
