/**
 * Our wasm fixes against the cpu backend (tfjs's reference kernels and gradients), and
 * the gradients we supply against finite differences.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { registerMatMulGradients, registerWasmFixes, unregisterMatMulGradients } from '../../src/ml/kernels/index.ts';
import { on, relativeError, seededValues } from './compare.ts';

const TOLERANCE = 1e-4;

beforeAll(async () => {
  await tf.setBackend('wasm');
  registerWasmFixes();
});

type Pad = 'same' | 'valid';
// [batch, height, width, inChannels, outChannels, kernel, stride, pad]
const convCases: Array<[number, number, number, number, number, number, number | [number, number], Pad]> = [
  [2, 14, 14, 8, 16, 4, 2, 'same'], // DCGAN discriminator
  [3, 28, 28, 1, 4, 5, 1, 'same'], // CNN classifier first layer
  [2, 9, 10, 3, 4, 3, 2, 'valid'], // leftover row/column under 'valid'
  [2, 10, 11, 2, 3, 3, 2, 'same'],
  [1, 8, 9, 3, 5, 2, 1, 'valid'],
  [2, 7, 7, 4, 3, 4, 2, 'same'], // 7 → 4 → 7
  [2, 11, 12, 2, 3, 3, 3, 'valid'],
  [2, 28, 28, 1, 8, 4, 2, 'same'], // DCGAN generator's last transposed conv: 14×14×8 → 28×28×1
  [2, 14, 14, 4, 6, 5, 2, 'same'], // 5×5 kernels, stride 2 (zero-padded sub-filters)
  [2, 9, 8, 3, 2, 3, [1, 2], 'same'], // unequal strides: Conv2DBackpropInput falls back to tfjs's kernel
];

describe('Conv2DBackpropFilter and Conv2DBackpropInput on wasm', () => {
  it.each(convCases.map((c) => ({ name: `x [${c[0]}, ${c[1]}, ${c[2]}, ${c[3]}], ${c[5]}×${c[5]}×${c[4]} filter, stride ${c[6]}, '${c[7]}'`, c })))('$name: match cpu', async ({ c }) => {
    const [b, h, w, ci, co, k, stride, pad] = c;
    const xv = seededValues([b, h, w, ci], 1);
    const wv = seededValues([k, k, ci, co], 2);
    const compute = () => {
      const x = tf.tensor4d(xv, [b, h, w, ci]);
      const filter = tf.tensor4d(wv, [k, k, ci, co]);
      const outShape = tf.conv2d(x, filter, stride, pad).shape;
      const dy = tf.tensor4d(seededValues(outShape, 3), outShape);
      const attrs = { strides: stride, pad, dataFormat: 'NHWC' } as const;
      const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: [k, k, ci, co] }) as tf.Tensor;
      const dx = tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, { ...attrs, inputShape: [b, h, w, ci] }) as tf.Tensor;
      return [dw, dx];
    };
    const cpu = await on('cpu', compute);
    const wasm = await on('wasm', compute);
    for (let i = 0; i < 2; i++) {
      expect(wasm[i]!.shape).toEqual(cpu[i]!.shape);
      expect(relativeError(wasm[i]!.values, cpu[i]!.values)).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it('give conv2d and conv2dTranspose the same gradients as cpu through autodiff', async () => {
    const compute = () => {
      const x = tf.tensor4d(seededValues([2, 14, 14, 3], 4), [2, 14, 14, 3]);
      const w1 = tf.tensor4d(seededValues([4, 4, 3, 8], 5), [4, 4, 3, 8]);
      const w2 = tf.tensor4d(seededValues([4, 4, 5, 8], 6), [4, 4, 5, 8]);
      const grads = tf.grads((xIn: tf.Tensor, a: tf.Tensor, c: tf.Tensor) => {
        const h = tf.relu(tf.conv2d(xIn as tf.Tensor4D, a as tf.Tensor4D, 2, 'same')); // [2, 7, 7, 8]
        const up = tf.conv2dTranspose(h, c as tf.Tensor4D, [2, 14, 14, 5], 2, 'same'); // [2, 14, 14, 5]
        return tf.sum(tf.square(up));
      });
      return grads([x, w1, w2]);
    };
    const cpu = await on('cpu', compute);
    const wasm = await on('wasm', compute);
    cpu.forEach((c, i) => expect(relativeError(wasm[i]!.values, c.values)).toBeLessThanOrEqual(TOLERANCE));
  });
});

const transposeCases: Array<[boolean, boolean]> = [[false, false], [false, true], [true, false], [true, true]];

/** [m, k] or [k, m] operands for y = op(a)·op(b) with y [batch?, 5, 4] and k = 3. */
function operands(transposeA: boolean, transposeB: boolean, batch?: number): [tf.Tensor, tf.Tensor] {
  const lead = batch === undefined ? [] : [batch];
  const aShape = [...lead, ...(transposeA ? [3, 5] : [5, 3])];
  const bShape = [...lead, ...(transposeB ? [4, 3] : [3, 4])];
  return [tf.tensor(seededValues(aShape, 7), aShape), tf.tensor(seededValues(bShape, 8), bShape)];
}

describe('matMul on wasm with transposes', () => {
  it.each(transposeCases)('transposeA %s, transposeB %s: forward and gradients match cpu (rank 2 and 3)', async (ta, tb) => {
    for (const batch of [undefined, 2]) {
      const compute = () => {
        const [a, b] = operands(ta, tb, batch);
        const weights = tf.tensor(seededValues([...(batch ? [batch] : []), 5, 4], 9), [...(batch ? [batch] : []), 5, 4]);
        const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x, y, ta, tb), weights));
        return [tf.matMul(a, b, ta, tb), ...tf.grads(f)([a, b])];
      };
      unregisterMatMulGradients(); // cpu: tfjs's own gradient
      const cpu = await on('cpu', compute);
      registerMatMulGradients();
      const wasm = await on('wasm', compute);
      cpu.forEach((c, i) => {
        expect(wasm[i]!.shape).toEqual(c.shape);
        expect(relativeError(wasm[i]!.values, c.values)).toBeLessThanOrEqual(TOLERANCE);
      });
    }
  });

  it.each(['linear', 'relu'] as const)('tf.fused.matMul with bias and %s: forward and gradients match cpu (the path of tf.layers Dense)', async (activation) => {
    for (const [ta, tb] of transposeCases) {
      const compute = () => {
        const [a, b] = operands(ta, tb);
        const bias = tf.tensor1d(seededValues([4], 10));
        const weights = tf.tensor2d(seededValues([5, 4], 11), [5, 4]);
        const f = (x: tf.Tensor, y: tf.Tensor, c: tf.Tensor) =>
          tf.sum(tf.mul(tf.fused.matMul({ a: x as tf.Tensor2D, b: y as tf.Tensor2D, transposeA: ta, transposeB: tb, bias: c, activation }), weights));
        const forward = tf.fused.matMul({ a: a as tf.Tensor2D, b: b as tf.Tensor2D, transposeA: ta, transposeB: tb, bias, activation });
        return [forward, ...tf.grads(f)([a, b, bias])];
      };
      unregisterMatMulGradients();
      const cpu = await on('cpu', compute);
      registerMatMulGradients();
      const wasm = await on('wasm', compute);
      cpu.forEach((c, i) => expect(relativeError(wasm[i]!.values, c.values)).toBeLessThanOrEqual(TOLERANCE));
    }
  });
});

/** Central differences of a scalar function of `inputs[which]`, in float32 (the losses here are piecewise linear in each input). */
function finiteDifferences(loss: (inputs: Float32Array[]) => number, inputs: Float32Array[], which: number, eps = 1e-2): Float32Array {
  const x = inputs[which]!;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const saved = x[i]!;
    x[i] = saved + eps;
    const plus = loss(inputs);
    x[i] = saved - eps;
    const minus = loss(inputs);
    x[i] = saved;
    out[i] = (plus - minus) / (2 * eps);
  }
  return out;
}

describe('our matMul gradient configs', () => {
  it.each(transposeCases)('BatchMatMul gradient, transposeA %s, transposeB %s, agrees with finite differences on wasm', async (ta, tb) => {
    await tf.setBackend('wasm');
    registerMatMulGradients();
    const aShape = ta ? [2, 3, 5] : [2, 5, 3];
    const bShape = tb ? [2, 4, 3] : [2, 3, 4];
    const inputs = [seededValues(aShape, 12), seededValues(bShape, 13)];
    const weights = seededValues([2, 5, 4], 14);
    const lossOf = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(tf.matMul(a, b, ta, tb), tf.tensor(weights, [2, 5, 4])));
    const loss = (v: Float32Array[]) => tf.tidy(() => lossOf(tf.tensor(v[0]!, aShape), tf.tensor(v[1]!, bShape)).dataSync()[0]!);
    const grads = tf.tidy(() => tf.grads(lossOf)([tf.tensor(inputs[0]!, aShape), tf.tensor(inputs[1]!, bShape)]).map((g) => Float32Array.from(g.dataSync())));
    for (const which of [0, 1]) {
      expect(relativeError(grads[which]!, finiteDifferences(loss, inputs, which))).toBeLessThanOrEqual(1e-3);
    }
  });

  it.each(['linear', 'relu'] as const)('_FusedMatMul gradient (kernel recorded on the tape directly), %s, agrees with finite differences and cpu', async (activation) => {
    await tf.setBackend('wasm');
    registerMatMulGradients();
    for (const [ta, tb] of transposeCases) {
      const aShape = ta ? [1, 3, 5] : [1, 5, 3];
      const bShape = tb ? [1, 4, 3] : [1, 3, 4];
      const inputs = [seededValues(aShape, 15), seededValues(bShape, 16), seededValues([4], 17)];
      const weights = seededValues([1, 5, 4], 18);
      const lossOf = (a: tf.Tensor, b: tf.Tensor, bias: tf.Tensor) => {
        const y = tf.engine().runKernel('_FusedMatMul', { a, b, bias }, { transposeA: ta, transposeB: tb, activation }) as tf.Tensor; // [1, 5, 4]
        return tf.sum(tf.mul(y, tf.tensor(weights, [1, 5, 4])));
      };
      const shapes = [aShape, bShape, [4]];
      const tensors = (v: Float32Array[]) => v.map((x, i) => tf.tensor(x, shapes[i]!));
      const loss = (v: Float32Array[]) => tf.tidy(() => lossOf(...(tensors(v) as [tf.Tensor, tf.Tensor, tf.Tensor])).dataSync()[0]!);
      const grads = tf.tidy(() => tf.grads(lossOf)(tensors(inputs)).map((g) => Float32Array.from(g.dataSync())));
      for (const which of [0, 1, 2]) {
        // Small steps for relu, so that no pre-activation crosses its kink.
        expect(relativeError(grads[which]!, finiteDifferences(loss, inputs, which, activation === 'relu' ? 1e-3 : 1e-2))).toBeLessThanOrEqual(1e-3);
      }
      // tfjs's reference: the unfused ops' gradients on cpu.
      unregisterMatMulGradients();
      const [reference] = await Promise.all([on('cpu', () => tf.grads((a: tf.Tensor, b: tf.Tensor, bias: tf.Tensor) => {
        const z = tf.add(tf.matMul(a, b, ta, tb), bias);
        return tf.sum(tf.mul(activation === 'relu' ? tf.relu(z) : z, tf.tensor(weights, [1, 5, 4])));
      })(tensors(inputs)))]);
      registerMatMulGradients();
      await tf.setBackend('wasm');
      reference!.forEach((r, i) => expect(relativeError(grads[i]!, r.values)).toBeLessThanOrEqual(TOLERANCE));
    }
  });
});

describe('UnsortedSegmentSum on wasm', () => {
  it('matches cpu, directly and as the gradient of tf.gather (repeated indices, axis 0 and 1)', async () => {
    const compute = () => {
      const x = tf.tensor3d(seededValues([6, 3, 2], 22), [6, 3, 2]);
      const ids = tf.tensor1d([2, 0, 2, 4, 1, 2], 'int32');
      const table = tf.tensor2d(seededValues([5, 4], 23), [5, 4]);
      const picks = tf.tensor1d([3, 1, 3, 3, 0], 'int32');
      const weights = tf.tensor2d(seededValues([5, 4], 24), [5, 4]);
      const [dTable] = tf.grads((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, picks), weights)))([table]);
      const [dColumns] = tf.grads((t: tf.Tensor) => tf.sum(tf.square(tf.gather(t, tf.tensor1d([2, 2, 0], 'int32'), 1))))([table]);
      return [tf.unsortedSegmentSum(x, ids, 5), dTable!, dColumns!];
    };
    const cpu = await on('cpu', compute);
    const wasm = await on('wasm', compute);
    cpu.forEach((c, i) => {
      expect(wasm[i]!.shape).toEqual(c.shape);
      expect(relativeError(wasm[i]!.values, c.values)).toBeLessThanOrEqual(TOLERANCE);
    });
  });
});

describe('memory', () => {
  it('the wasm fixes leave no tensors or buffers behind', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor4d(seededValues([2, 8, 8, 3], 19), [2, 8, 8, 3]);
    const w = tf.tensor4d(seededValues([4, 4, 3, 4], 20), [4, 4, 3, 4]);
    const a = tf.tensor2d(seededValues([6, 5], 21), [6, 5]);
    const step = () => tf.tidy(() => {
      const g = tf.grads((xi: tf.Tensor, wi: tf.Tensor, ai: tf.Tensor) => tf.add(
        tf.sum(tf.conv2dTranspose(tf.conv2d(xi as tf.Tensor4D, wi as tf.Tensor4D, 2, 'same'), wi as tf.Tensor4D, [2, 8, 8, 3], 2, 'same')),
        tf.sum(tf.matMul(ai, ai, true, false)),
      ))([x, w, a]);
      g.forEach((t) => t.dataSync());
    });
    step();
    const before = { tensors: tf.memory().numTensors, buffers: tf.memory().numDataBuffers, bytes: tf.memory().numBytes };
    for (let i = 0; i < 3; i++) step();
    expect({ tensors: tf.memory().numTensors, buffers: tf.memory().numDataBuffers, bytes: tf.memory().numBytes }).toEqual(before);
    expect((tf.backend() as unknown as { numDataIds(): number }).numDataIds()).toBe(tf.memory().numDataBuffers);
    tf.dispose([x, w, a]);
  });
});
