/**
 * The im2col/col2im convolutions (src/ml/kernels/fast-conv.ts, conv-im2col.ts) against the
 * cpu backend, in every mode: forced 'gather', 'grid' and 'flip' (each path on every shape it takes)
 * and 'auto' (what models get). Shapes are those of our models at a small batch: DCGAN
 * (4×4 stride 2 'same', 28×28×1 → 14×14×64 → 7×7×128, and the generator's transposed
 * mirror), the classifier (5×5 'valid'), a U-Net (3×3 stride 1 at 28×28×32 and 14×14×64;
 * 4×4 and 3×3 stride 2 down; 1-channel in and out), plus odd geometries.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerWasmFixes } from '../../src/ml/kernels/index.ts';
import {
  convMethod, fastConvolutionsRegistered, registerFastConvolutions, setFastConvMode, subPixelWaste, unregisterFastConvolutions,
  type FastConvMode,
} from '../../src/ml/kernels/fast-conv.ts';
import { convGeometry } from '../../src/ml/kernels/conv-im2col.ts';
import { createDcDiscriminator, createDcGenerator } from '../../src/ml/models/dcgan.ts';
import { Rng } from '../../src/ml/random.ts';
import { on, relativeError, seededValues } from './compare.ts';

const TOLERANCE = 1e-4;

beforeAll(async () => {
  await tf.setBackend('wasm');
  registerWasmFixes();
  expect(registerFastConvolutions()).toBe(true);
});

afterAll(() => {
  setFastConvMode('auto');
});

type Pad = 'same' | 'valid' | number;
// [name, x shape, kernel, outChannels, stride, pad]
type ConvCase = [string, [number, number, number, number], number, number, number, Pad];
const modelCases: ConvCase[] = [
  ['DCGAN D1 / G2', [2, 28, 28, 1], 4, 64, 2, 'same'],
  ['DCGAN D2 / G1', [2, 14, 14, 64], 4, 128, 2, 'same'],
  ['classifier conv1', [2, 28, 28, 1], 5, 16, 1, 'valid'],
  ['classifier conv2', [2, 12, 12, 16], 5, 32, 1, 'valid'],
  ['U-Net 28×28×32 3×3', [2, 28, 28, 32], 3, 32, 1, 'same'],
  ['U-Net 14×14×64 3×3', [2, 14, 14, 64], 3, 64, 1, 'same'],
  ['U-Net in 1→32', [2, 28, 28, 1], 3, 32, 1, 'same'],
  ['U-Net out 32→1', [2, 28, 28, 32], 3, 1, 1, 'same'],
  ['U-Net down 4×4 s2', [2, 28, 28, 32], 4, 64, 2, 'same'],
  ['U-Net down 3×3 s2', [2, 28, 28, 32], 3, 64, 2, 'same'],
];
const oddCases: ConvCase[] = [
  ['valid, leftover row/column', [2, 9, 10, 3], 3, 4, 2, 'valid'],
  ['same, odd sizes', [2, 10, 11, 2], 3, 3, 2, 'same'],
  ['2×2 kernel', [1, 8, 9, 3], 2, 5, 1, 'valid'],
  ['7 → 4 → 7', [2, 7, 7, 4], 4, 3, 2, 'same'],
  ['stride 3', [2, 11, 12, 2], 3, 3, 3, 'valid'],
  ['explicit pad 2, 5×5 s2', [2, 14, 14, 4], 5, 6, 2, 2],
  ['1×1 kernel', [2, 5, 6, 7], 1, 3, 1, 'same'],
];

/** Conv2D, FusedConv2D (bias + relu), Conv2DBackpropFilter and Conv2DBackpropInput of one case. */
function kernels(c: ConvCase): () => tf.Tensor[] {
  const [, xShape, k, co, stride, pad] = c;
  const fShape: [number, number, number, number] = [k, k, xShape[3], co];
  return () => {
    const x = tf.tensor4d(seededValues(xShape, 1), xShape);
    const filter = tf.tensor4d(seededValues(fShape, 2), fShape);
    const bias = tf.tensor1d(seededValues([co], 3));
    const y = tf.conv2d(x, filter, stride, pad);
    const dy = tf.tensor4d(seededValues(y.shape, 4), y.shape);
    const attrs = { strides: stride, pad, dataFormat: 'NHWC' } as const;
    const fused = tf.fused.conv2d({ x, filter, bias, strides: stride, pad, activation: 'relu' });
    const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape: fShape }) as tf.Tensor;
    const dx = tf.engine().runKernel('Conv2DBackpropInput', { dy, filter }, { ...attrs, inputShape: xShape }) as tf.Tensor;
    return [y, fused, dw, dx];
  };
}

const modes: FastConvMode[] = ['gather', 'grid', 'flip', 'auto'];

describe('fast convolutions on wasm match cpu', () => {
  it.each([...modelCases, ...oddCases].map((c) => ({ name: c[0], c })))('$name: Conv2D, FusedConv2D, both backprops, in every mode', async ({ c }) => {
    const compute = kernels(c);
    const cpu = await on('cpu', compute);
    const names = ['Conv2D', 'FusedConv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput'];
    for (const mode of modes) {
      setFastConvMode(mode);
      const wasm = await on('wasm', compute);
      setFastConvMode('auto');
      cpu.forEach((expected, i) => {
        expect(wasm[i]!.shape, `${names[i]}, ${mode}`).toEqual(expected.shape);
        expect(relativeError(wasm[i]!.values, expected.values), `${names[i]}, ${mode}`).toBeLessThanOrEqual(TOLERANCE);
      });
    }
  });

  it('gradients through tf.grads of a U-Net-like block (3×3 s1, 4×4 s2 down, transposed up, 1-channel ends), in every mode', async () => {
    const shapes: Array<[number, number, number, number]> = [[3, 3, 1, 8], [3, 3, 8, 8], [4, 4, 8, 16], [4, 4, 8, 16], [3, 3, 8, 1]];
    const compute = () => {
      const x = tf.tensor4d(seededValues([2, 28, 28, 1], 5), [2, 28, 28, 1]);
      const ws = shapes.map((s, i) => tf.tensor4d(seededValues(s, 10 + i), s));
      const bias = tf.tensor1d(seededValues([8], 20));
      const f = (xi: tf.Tensor, a: tf.Tensor, b: tf.Tensor, d: tf.Tensor, u: tf.Tensor, o: tf.Tensor, bi: tf.Tensor) => {
        const h1 = tf.fused.conv2d({ x: xi as tf.Tensor4D, filter: a as tf.Tensor4D, bias: bi, strides: 1, pad: 'same', activation: 'relu' }); // [2, 28, 28, 8]
        const h2 = tf.relu(tf.conv2d(h1, b as tf.Tensor4D, 1, 'same')); // [2, 28, 28, 8]
        const down = tf.relu(tf.conv2d(h2, d as tf.Tensor4D, 2, 'same')); // [2, 14, 14, 16]
        const up = tf.conv2dTranspose(down, u as tf.Tensor4D, [2, 28, 28, 8], 2, 'same'); // [2, 28, 28, 8]
        const out = tf.conv2d(tf.add(up, h2) as tf.Tensor4D, o as tf.Tensor4D, 1, 'same'); // [2, 28, 28, 1]
        return tf.sum(tf.square(tf.sub(out, xi)));
      };
      return tf.grads(f)([x, ...ws, bias]);
    };
    const cpu = await on('cpu', compute);
    for (const mode of modes) {
      setFastConvMode(mode);
      const wasm = await on('wasm', compute);
      setFastConvMode('auto');
      cpu.forEach((expected, i) => expect(relativeError(wasm[i]!.values, expected.values), `gradient ${i}, ${mode}`).toBeLessThanOrEqual(TOLERANCE));
    }
  });

  it('DCGAN generator and discriminator gradients (full-size filters, batch 4), in every mode', { timeout: 600_000 }, async () => {
    const compute = () => {
      const rng = new Rng(7);
      const generator = createDcGenerator({ rng });
      const discriminator = createDcDiscriminator({ rng });
      const z = tf.tensor2d(seededValues([4, generator.latentDim], 30), [4, generator.latentDim]);
      const real = tf.tensor2d(seededValues([4, 784], 31), [4, 784]);
      const d = tf.variableGrads(() => {
        const fake = generator.apply(z, { training: true, updateStatistics: false });
        const logits = tf.concat([discriminator.apply(real, { training: true }), discriminator.apply(fake, { training: true })]);
        return tf.mean(tf.square(logits)) as tf.Scalar;
      }, [...discriminator.variables, ...generator.variables]);
      const grads = Object.values(d.grads);
      generator.dispose();
      discriminator.dispose();
      return grads;
    };
    const cpu = await on('cpu', compute);
    expect(cpu.length).toBe(15); // 7 discriminator and 8 generator variables
    for (const mode of modes) {
      setFastConvMode(mode);
      const wasm = await on('wasm', compute);
      setFastConvMode('auto');
      expect(wasm.length).toBe(cpu.length);
      cpu.forEach((expected, i) => expect(relativeError(wasm[i]!.values, expected.values), `gradient ${i}, ${mode}`).toBeLessThanOrEqual(TOLERANCE));
    }
  });
});

describe('fast convolutions: registration and policy', () => {
  it('register is idempotent and unregister restores the kernels it replaced', () => {
    const names = ['Conv2D', 'FusedConv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput'] as const;
    unregisterFastConvolutions();
    const before = names.map((n) => tf.getKernel(n, 'wasm'));
    expect(names.some((n) => fastConvolutionsRegistered(n))).toBe(false);
    registerFastConvolutions();
    const first = names.map((n) => tf.getKernel(n, 'wasm'));
    registerFastConvolutions();
    expect(names.map((n) => tf.getKernel(n, 'wasm'))).toEqual(first);
    expect(names.every((n) => fastConvolutionsRegistered(n))).toBe(true);
    first.forEach((config, i) => expect(config).not.toBe(before[i]));
    unregisterFastConvolutions();
    expect(names.map((n) => tf.getKernel(n, 'wasm'))).toEqual(before);
    registerFastConvolutions();
  });

  it('stays on top when registerWasmFixes (initBackend) runs after it, once registered again', () => {
    unregisterFastConvolutions();
    const subPixel = tf.getKernel('Conv2DBackpropInput', 'wasm');
    registerFastConvolutions();
    registerWasmFixes(); // what a second initBackend() does: wraps ours in the sub-pixel kernel
    expect(fastConvolutionsRegistered('Conv2DBackpropInput')).toBe(false);
    registerFastConvolutions();
    expect(fastConvolutionsRegistered('Conv2DBackpropInput')).toBe(true);
    unregisterFastConvolutions();
    expect(tf.getKernel('Conv2DBackpropInput', 'wasm')).toBe(subPixel);
    registerFastConvolutions();
  });

  it("'auto' picks the methods measured faster on our models' shapes", () => {
    const geometry = (x: [number, number, number, number], k: number, co: number, s: number, pad: 'same' | 'valid' = 'same') =>
      convGeometry(x, [k, k, x[3], co], s, pad)!;
    const d1 = geometry([64, 28, 28, 1], 4, 64, 2);
    const d2 = geometry([64, 14, 14, 64], 4, 128, 2);
    const unet28 = geometry([64, 28, 28, 32], 3, 32, 1);
    const unet14 = geometry([64, 14, 14, 64], 3, 64, 1);
    const down4 = geometry([64, 28, 28, 32], 4, 64, 2);
    const down3 = geometry([64, 28, 28, 32], 3, 64, 2);
    const methods = (g: NonNullable<ReturnType<typeof convGeometry>>) =>
      (['Conv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput'] as const).map((k) => convMethod(k, g));
    expect(methods(d1)).toEqual(['replaced', 'gather', 'im2col']);
    expect(methods(d2)).toEqual(['replaced', 'replaced', 'im2col']);
    expect(methods(unet28)).toEqual(['replaced', 'grid', 'flip']);
    expect(methods(unet14)).toEqual(['replaced', 'replaced', 'flip']);
    expect(methods(down4)).toEqual(['replaced', 'replaced', 'replaced']);
    expect(methods(down3)).toEqual(['replaced', 'grid', 'im2col']);
    expect(subPixelWaste(d2)).toBeCloseTo(64 / 49);
    expect(subPixelWaste(down3)).toBeCloseTo(16 / 9); // 'same' pads 0 above, 1 below: no grid waste
    setFastConvMode('off');
    expect(methods(d1)).toEqual(['replaced', 'replaced', 'replaced']);
    setFastConvMode('auto');
  });

  it('leaves no tensors or buffers behind', async () => {
    await tf.setBackend('wasm');
    for (const mode of modes) {
      setFastConvMode(mode);
      const step = () => tf.tidy(() => {
        for (const c of [modelCases[0]!, modelCases[4]!, oddCases[0]!]) kernels(c)().forEach((t) => t.dataSync());
      });
      step();
      const before = { tensors: tf.memory().numTensors, buffers: tf.memory().numDataBuffers, bytes: tf.memory().numBytes };
      step();
      expect({ tensors: tf.memory().numTensors, buffers: tf.memory().numDataBuffers, bytes: tf.memory().numBytes }).toEqual(before);
      expect((tf.backend() as unknown as { numDataIds(): number }).numDataIds()).toBe(tf.memory().numDataBuffers);
    }
    setFastConvMode('auto');
  });
});
