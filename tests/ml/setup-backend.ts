/** Test backend: the project's `initBackend()` when it exists, else wasm. */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { existsSync } from 'node:fs';

export async function useTestBackend(): Promise<string> {
  const module = new URL('../../src/ml/backend.ts', import.meta.url);
  if (existsSync(module)) {
    const { initBackend } = (await import(module.href)) as { initBackend: () => Promise<string> };
    return initBackend();
  }
  await tf.setBackend('wasm');
  await tf.ready();
  return tf.getBackend();
}
