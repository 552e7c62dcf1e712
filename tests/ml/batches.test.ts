import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { batchCount, batches } from '../../src/ml/data/batches.ts';
import { Rng } from '../../src/ml/random.ts';

/** 10 rows of 3 values; row r holds r·10, r·10+1, r·10+2. */
const data = Float32Array.from({ length: 30 }, (_, i) => Math.floor(i / 3) * 10 + (i % 3));

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function rowsOf(x: tf.Tensor2D): number[] {
  const values = x.dataSync();
  return Array.from({ length: x.shape[0] }, (_, r) => values[r * 3]! / 10);
}

describe('batches', () => {
  it('yields the rows in order, the last batch short', () => {
    const seen = [...batches(data, 3, 4)].map(({ x, indices, index }) => {
      const rows = { index, shape: x.shape, rows: rowsOf(x), indices: Array.from(indices) };
      x.dispose();
      return rows;
    });
    expect(seen).toEqual([
      { index: 0, shape: [4, 3], rows: [0, 1, 2, 3], indices: [0, 1, 2, 3] },
      { index: 1, shape: [4, 3], rows: [4, 5, 6, 7], indices: [4, 5, 6, 7] },
      { index: 2, shape: [2, 3], rows: [8, 9], indices: [8, 9] },
    ]);
    expect(batchCount(10, 4)).toBe(3);
  });

  it('drops the short batch with dropLast', () => {
    const sizes = [...batches(data, 3, 4, { dropLast: true })].map(({ x }) => {
      x.dispose();
      return x.shape[0];
    });
    expect(sizes).toEqual([4, 4]);
    expect(batchCount(10, 4, true)).toBe(2);
  });

  it('shuffles every row exactly once, the same way for the same seed', () => {
    const order = (seed: number) => [...batches(data, 3, 3, { rng: new Rng(seed) })].flatMap(({ x, indices }) => {
      expect(rowsOf(x)).toEqual(Array.from(indices));
      x.dispose();
      return Array.from(indices);
    });
    const a = order(1);
    expect([...a].sort((p, q) => p - q)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(order(1)).toEqual(a);
    expect(order(2)).not.toEqual(a);
    expect(a).not.toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('keeps earlier shuffled batches intact on cpu, which keeps the arrays it is given', () => {
    const all = [...batches(data, 3, 4, { rng: new Rng(3) })];
    for (const { x, indices } of all) expect(rowsOf(x)).toEqual(Array.from(indices));
    tf.dispose(all.map((b) => b.x));
  });

  it('leaves no tensors behind when the caller disposes the batches', () => {
    const before = tf.memory().numTensors;
    for (const { x } of batches(data, 3, 4, { rng: new Rng(4) })) {
      tf.tidy(() => tf.sum(x)).dispose();
      x.dispose();
    }
    tf.tidy(() => {
      for (const { x } of batches(data, 3, 4)) tf.sum(x);
    });
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects data that is not whole rows', () => {
    expect(() => [...batches(new Float32Array(7), 3, 2)]).toThrow(/not a multiple of rowSize 3/);
  });
});
