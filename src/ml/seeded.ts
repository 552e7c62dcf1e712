/**
 * Seeded initialisers and random ops: every draw takes its seed from our `Rng`
 * (src/ml/random.ts), so the same seed, code and backend give bit-identical tensors.
 * tfjs's own draws use Alea/Philox seeded by the integer we pass; without a seed they use
 * Math.random and runs cannot be repeated.
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from './random.ts';

/** tf.layers' Initializer class (not exported by name from @tensorflow/tfjs). */
export type Initializer = ReturnType<typeof tf.initializers.glorotUniform>;

/** Glorot & Bengio (2010), eq. 16: U(±√(6/(fanIn+fanOut))). */
export function glorotUniform(rng: Rng): Initializer {
  return tf.initializers.glorotUniform({ seed: rng.seed() });
}

export function glorotNormal(rng: Rng): Initializer {
  return tf.initializers.glorotNormal({ seed: rng.seed() });
}

/** He et al. (2015), §2.2: N(0, 2/fanIn) truncated as in Keras. */
export function heNormal(rng: Rng): Initializer {
  return tf.initializers.heNormal({ seed: rng.seed() });
}

export function heUniform(rng: Rng): Initializer {
  return tf.initializers.heUniform({ seed: rng.seed() });
}

/** N(mean, stddev²) initialiser (DCGAN, Radford et al. 2016 §4: N(0, 0.02²)). */
export function normalInitializer(rng: Rng, stddev = 0.05, mean = 0): Initializer {
  return tf.initializers.randomNormal({ mean, stddev, seed: rng.seed() });
}

export function randomNormal(shape: number[], rng: Rng, mean = 0, stddev = 1): tf.Tensor {
  return tf.randomNormal(shape, mean, stddev, 'float32', rng.seed());
}

export function randomUniform(shape: number[], rng: Rng, min = 0, max = 1): tf.Tensor {
  return tf.randomUniform(shape, min, max, 'float32', rng.seed());
}

export function truncatedNormal(shape: number[], rng: Rng, mean = 0, stddev = 1): tf.Tensor {
  return tf.truncatedNormal(shape, mean, stddev, 'float32', rng.seed());
}

