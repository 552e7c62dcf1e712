import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { initBackend } from '../../src/ml/backend.ts';

/** A loader where tfjs-node fails as it does with install scripts skipped: a plain Error. */
const noNativeBinding = async (specifier: string): Promise<unknown> => {
  if (specifier === '@tensorflow/tfjs-node') {
    throw new Error('The specified module could not be found.\n\\?\\node_modules\\@tensorflow\\tfjs-node\\lib\\napi-v8\\tfjs_binding.node');
  }
  return import(specifier);
};

describe('initBackend', () => {
  it('uses the forced backend', async () => {
    expect(await initBackend({ backend: 'cpu', env: {} })).toBe('cpu');
    expect(tf.getBackend()).toBe('cpu');
  });

  it('reads TFJS_BACKEND and registers the wasm fixes with wasm', async () => {
    expect(await initBackend({ env: { TFJS_BACKEND: 'wasm' } })).toBe('wasm');
    expect(tf.getBackend()).toBe('wasm');
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined();
  });

  it('is idempotent', async () => {
    expect(await initBackend({ backend: 'wasm', env: {} })).toBe('wasm');
    expect(await initBackend({ backend: 'wasm', env: {} })).toBe('wasm');
    const x = tf.ones([1, 4, 4, 1]);
    const g = tf.grad((w: tf.Tensor) => tf.sum(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same')))(tf.ones([2, 2, 1, 1]));
    expect(Array.from(g.dataSync())).toEqual([16, 12, 12, 9]);
    // The untransposing matMul wrappers were registered before wasm started: their setup ran.
    const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [3, 2]);
    const p = tf.matMul(a, a, true, false); // aᵀa: [2, 2]
    expect(Array.from(p.dataSync())).toEqual([35, 44, 44, 56]);
    tf.dispose([x, g, a, p]);
  });

  it('falls back from tfjs-node to wasm on any load error, not only MODULE_NOT_FOUND', async () => {
    expect(await initBackend({ env: {}, importModule: noNativeBinding })).toBe('wasm');
  });

  it('with the real loader picks tensorflow when tfjs-node loads, else wasm', async () => {
    const chosen = await initBackend({ env: {} });
    expect(['tensorflow', 'wasm']).toContain(chosen);
  });

  it('rejects an unknown TFJS_BACKEND with the valid names', async () => {
    await expect(initBackend({ env: { TFJS_BACKEND: 'webgpu' } })).rejects.toThrow(/tensorflow, wasm, cpu/);
  });

  it('reports why a forced backend could not start', async () => {
    await expect(initBackend({ backend: 'tensorflow', env: {}, importModule: noNativeBinding })).rejects.toThrow(/tensorflow: The specified module could not be found/);
  });
});
