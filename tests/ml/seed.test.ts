/**
 * Same seed + code + backend ⇒ bit-identical weights after training; another seed differs.
 * A tiny MLP drawing everything from one Rng: data, initialisers, batch order, dropout.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { batches } from '../../src/ml/data/batches.ts';
import { registerWasmFixes } from '../../src/ml/kernels/index.ts';
import { Rng } from '../../src/ml/random.ts';
import { dropout } from '../../src/ml/models/dense.ts';
import { glorotUniform, heNormal, randomNormal } from '../../src/ml/seeded.ts';
import { adam, optimizerStep, train } from '../../src/ml/train.ts';

async function trainedWeights(seed: number): Promise<Float32Array[]> {
  const rng = new Rng(seed);
  const data = randomNormal([24, 5], rng.fork('data')); // [24, 5]
  const xs = Float32Array.from(data.dataSync());
  data.dispose();
  const init = rng.fork('init');
  const w1 = tf.variable(heNormal(init).apply([5, 6]) as tf.Tensor2D); // [5, 6]
  const b1 = tf.variable(tf.zeros([6]));
  const dense = tf.layers.dense({ units: 1, kernelInitializer: glorotUniform(init), inputShape: [6] }); // [6] → [1]
  const optimizer = adam({ learningRate: 0.05 });
  const order = rng.fork('batches');
  const noise = rng.fork('dropout');
  let epochBatches = batches(xs, 5, 8, { rng: order });
  await train({
    epochs: 2,
    stepsPerEpoch: 3,
    step: () => {
      const { x } = epochBatches.next().value!; // [8, 5]
      const losses = optimizerStep(optimizer, () => {
        const h = dropout(tf.relu(tf.add(tf.matMul(x, w1), b1)) as tf.Tensor2D, 0.25, noise.seed()); // [8, 6]
        const y = dense.apply(h) as tf.Tensor2D; // [8, 1]
        return { loss: tf.losses.meanSquaredError(tf.max(x, 1, true), y) as tf.Scalar };
      });
      x.dispose();
      return losses;
    },
    callbacks: { onEpochEnd: () => void (epochBatches = batches(xs, 5, 8, { rng: order })) },
  });
  const weights = [w1, b1, ...dense.getWeights()].map((w) => Float32Array.from(w.dataSync()));
  optimizer.dispose();
  tf.dispose([w1, b1]);
  dense.dispose();
  return weights;
}

describe('seeded runs', () => {
  it.each(['cpu', 'wasm'] as const)('the same seed gives bit-identical weights, another seed differs (%s)', async (backend) => {
    await tf.setBackend(backend);
    if (backend === 'wasm') registerWasmFixes();
    const a = await trainedWeights(1);
    const b = await trainedWeights(1);
    const c = await trainedWeights(2);
    a.forEach((w, i) => {
      expect(Buffer.from(w.buffer).equals(Buffer.from(b[i]!.buffer))).toBe(true);
    });
    expect(a.some((w, i) => !Buffer.from(w.buffer).equals(Buffer.from(c[i]!.buffer)))).toBe(true);
    expect(a[0]!.some((v) => v !== 0)).toBe(true);
  });

  it('Rng-derived op seeds give identical draws, and differ between seeds', async () => {
    await tf.setBackend('cpu');
    const draw = (seed: number) => tf.tidy(() => Array.from(randomNormal([8], new Rng(seed)).dataSync()));
    expect(draw(3)).toEqual(draw(3));
    expect(draw(3)).not.toEqual(draw(4));
  });
});
