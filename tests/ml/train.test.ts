import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { describe, expect, it } from 'vitest';
import { registerWasmFixes } from '../../src/ml/kernels/index.ts';
import { batches } from '../../src/ml/data/batches.ts';
import { Rng } from '../../src/ml/random.ts';
import { glorotUniform, randomNormal } from '../../src/ml/seeded.ts';
import { adam, optimizerStep, train } from '../../src/ml/train.ts';

describe('train', () => {
  it('averages each loss per epoch and calls back in order', async () => {
    const calls: string[] = [];
    const history = await train({
      epochs: 2,
      stepsPerEpoch: 3,
      step: (epoch, i) => ({ loss: epoch * 10 + i, other: 1 }),
      callbacks: {
        onBatchEnd: (epoch, i, losses) => void calls.push(`batch ${epoch}.${i} ${losses.loss}`),
        onEpochEnd: (epoch, means) => void calls.push(`epoch ${epoch} ${means.loss}`),
      },
    });
    expect(history.epochs).toEqual([{ loss: 1, other: 1 }, { loss: 11, other: 1 }]);
    expect(calls).toEqual(['batch 0.0 0', 'batch 0.1 1', 'batch 0.2 2', 'epoch 0 1', 'batch 1.0 10', 'batch 1.1 11', 'batch 1.2 12', 'epoch 1 11']);
  });

  it.each(['cpu', 'wasm'] as const)('does not grow tf.memory().numTensors across steps of a tiny MLP (%s)', async (backend) => {
    await tf.setBackend(backend);
    if (backend === 'wasm') registerWasmFixes();
    const rng = new Rng(1);
    const data = randomNormal([32, 4], rng); // [32, 4]
    const xs = Float32Array.from(data.dataSync());
    data.dispose();
    const w1 = tf.variable(glorotUniform(rng).apply([4, 8]) as tf.Tensor2D); // [4, 8]
    const b1 = tf.variable(tf.zeros([8]));
    const w2 = tf.variable(glorotUniform(rng).apply([8, 1]) as tf.Tensor2D); // [8, 1]
    const optimizer = adam({ learningRate: 0.01 });
    let iterator = batches(xs, 4, 8, { rng });
    const counts: number[] = [];
    const history = await train({
      epochs: 3,
      stepsPerEpoch: 4,
      step: () => {
        const next = iterator.next();
        if (next.done) throw new Error('ran out of batches');
        const { x } = next.value; // [8, 4]
        const losses = optimizerStep(optimizer, () => {
          const h = tf.relu(tf.add(tf.matMul(x, w1), b1)); // [8, 8]
          const y = tf.matMul(h, w2); // [8, 1]
          const target = tf.sum(x, 1, true); // [8, 1]
          return { loss: tf.losses.meanSquaredError(target, y) as tf.Scalar, meanOutput: tf.mean(y) as tf.Scalar };
        });
        x.dispose();
        return losses;
      },
      callbacks: {
        onBatchEnd: () => void counts.push(tf.memory().numTensors),
        onEpochEnd: () => {
          iterator = batches(xs, 4, 8, { rng });
        },
      },
    });
    // Adam creates its moment variables on the first step; after that nothing may accumulate.
    expect(new Set(counts.slice(1)).size).toBe(1);
    expect(history.epochs).toHaveLength(3);
    expect(Object.keys(history.epochs[0]!)).toEqual(['loss', 'meanOutput']);
    expect(history.epochs[2]!.loss).toBeLessThan(history.epochs[0]!.loss!);
    optimizer.dispose();
    tf.dispose([w1, b1, w2]);
  });

  it('optimizerStep names the missing loss', () => {
    const v = tf.variable(tf.scalar(1));
    expect(() => optimizerStep(adam({ learningRate: 0.1 }), () => ({ cost: tf.square(v) as tf.Scalar }))).toThrow(/returned cost, expected a 'loss' scalar/);
    v.dispose();
  });
});
