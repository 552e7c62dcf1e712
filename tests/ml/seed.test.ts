/**
 * Same seed + code + backend ⇒ bit-identical weights after training; another seed differs.
 * A tiny MLP trained by createTrainer, drawing everything from seeds: data, initialisers
 * (one of them through tf.layers), batch order and dropout. On both backends the steps also
 * leave tf.memory().numTensors where it was and the loss goes down.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { registerWasmFixes } from '../../src/ml/kernels/index.ts';
import { Rng } from '../../src/ml/random.ts';
import { dropout } from '../../src/ml/models/dense.ts';
import { glorotUniform, heNormal, randomNormal } from '../../src/ml/seeded.ts';
import { createTrainer } from '../../src/ml/trainer.ts';

async function trainedWeights(seed: number) {
  const rng = new Rng(seed);
  const data = randomNormal([24, 5], rng.fork('data')); // [24, 5]
  const xs = Float32Array.from(data.dataSync());
  data.dispose();
  const init = rng.fork('init');
  const w1 = tf.tidy(() => tf.variable(heNormal(init).apply([5, 6]) as tf.Tensor2D)); // [5, 6]
  const b1 = tf.tidy(() => tf.variable(tf.zeros([6])));
  const dense = tf.layers.dense({ units: 1, kernelInitializer: glorotUniform(init), inputShape: [6] }); // [6] → [1]
  tf.tidy(() => void dense.apply(tf.zeros([1, 6]))); // builds its kernel and bias
  const variables = [w1, b1, ...dense.trainableWeights.map((w) => w.read() as tf.Variable)];
  const counts: number[] = [];
  const trainer = createTrainer({
    networks: { mlp: { variables, optimizer: { learningRate: 0.05 } } },
    data: xs,
    rowSize: 5,
    batchSize: 8,
    seed: rng.fork('trainer').seed(),
    step: (ctx) =>
      ctx.minimize('mlp', () => {
        const h = dropout(tf.relu(tf.add(tf.matMul(ctx.x, w1), b1)) as tf.Tensor2D, 0.25, ctx.rng.seed()); // [8, 6]
        const y = dense.apply(h) as tf.Tensor2D; // [8, 1]
        return { loss: tf.losses.meanSquaredError(tf.max(ctx.x, 1, true), y) as tf.Scalar };
      }),
    onStepEnd: () => void counts.push(tf.memory().numTensors),
  });
  const history = await trainer.fit(4);
  trainer.dispose();
  const weights = variables.map((w) => Float32Array.from(w.dataSync()));
  tf.dispose([w1, b1]);
  dense.dispose();
  return { weights, counts, losses: history.map((r) => r.train['loss']!) };
}

describe('seeded runs', () => {
  it.each(['cpu', 'wasm'] as const)('the same seed gives bit-identical weights, another seed differs (%s)', async (backend) => {
    await tf.setBackend(backend);
    if (backend === 'wasm') registerWasmFixes();
    const before = tf.memory().numTensors;
    const a = await trainedWeights(1);
    const b = await trainedWeights(1);
    const c = await trainedWeights(2);
    a.weights.forEach((w, i) => {
      expect(Buffer.from(w.buffer).equals(Buffer.from(b.weights[i]!.buffer))).toBe(true);
    });
    expect(a.weights.some((w, i) => !Buffer.from(w.buffer).equals(Buffer.from(c.weights[i]!.buffer)))).toBe(true);
    expect(a.weights[0]!.some((v) => v !== 0)).toBe(true);
    expect(a.counts).toHaveLength(4 * 3);
    expect(new Set(a.counts).size).toBe(1); // no step leaves a tensor behind
    expect(tf.memory().numTensors).toBe(before);
    expect(a.losses[3]!).toBeLessThan(a.losses[0]!);
  });

  it('Rng-derived op seeds give identical draws, and differ between seeds', async () => {
    await tf.setBackend('cpu');
    const draw = (seed: number) => tf.tidy(() => Array.from(randomNormal([8], new Rng(seed)).dataSync()));
    expect(draw(3)).toEqual(draw(3));
    expect(draw(3)).not.toEqual(draw(4));
  });
});
