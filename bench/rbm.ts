/**
 * RBM benchmark on the backend in use (wasm unless told otherwise): one scikit-learn
 * iteration = 6000 PCD steps at 100 hidden units, batch 10, on the 60 000 MNIST training
 * images, plus its pseudo-likelihood pass over all of them. Steps are timed on
 * `BENCH_RBM_STEPS` (default 1500) and extrapolated to 6000 — the note says so.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Rng } from '../src/ml/random.ts';
import { createRbm, disposeRbm } from '../src/ml/models/rbm.ts';
import { fitRbm } from '../src/ml/models/rbm-train.ts';
import { pseudoLikelihood } from '../src/ml/models/rbm-likelihood.ts';
import { loadImages } from './mnist-idx.ts';

export interface BenchRow {
  name: string;
  ms: number;
  note?: string;
}

export async function benchRbm(): Promise<BenchRow[]> {
  if (tf.getBackend() !== 'wasm') await tf.setBackend('wasm');
  await tf.ready();
  const { images } = await loadImages('train');
  const steps = Number(process.env['BENCH_RBM_STEPS'] ?? 1500);
  const rng = new Rng(0);
  const rbm = createRbm({ nVisible: 784, nComponents: 100, rng });
  // Warm-up (kernel compilation, allocator).
  fitRbm(rbm, images.subarray(0, 784 * 200), { nIter: 1, rng, score: false });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  fitRbm(rbm, images, { nIter: 1, rng, score: false, maxStepsPerIteration: steps });
  const stepMs = (performance.now() - t0) / steps;
  const cpu = process.cpuUsage(cpu0);
  const stepCpuMs = (cpu.user + cpu.system) / 1000 / steps;
  const t1 = performance.now();
  pseudoLikelihood(rbm, images, rng);
  const scoreMs = performance.now() - t1;
  disposeRbm(rbm);
  const backend = tf.getBackend();
  return [
    { name: `rbm 784-100 PCD step, batch 10 (${backend})`, ms: stepMs, note: `CPU time ${stepCpuMs.toFixed(3)} ms` },
    {
      name: `rbm 784-100 one iteration, 6000 steps (${backend})`,
      ms: stepMs * 6000,
      note: `extrapolated from ${steps} steps; CPU time ${((stepCpuMs * 6000) / 1000).toFixed(2)} s`,
    },
    { name: `rbm 784-100 pseudo-likelihood over 60 000 (${backend})`, ms: scoreMs },
    { name: `rbm 784-100 iteration + pseudo-likelihood (${backend})`, ms: stepMs * 6000 + scoreMs, note: `steps extrapolated from ${steps}` },
  ];
}

// The entry point (a path with spaces or a symlink is compared as a URL, after realpath).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  for (const row of await benchRbm()) console.log(`${row.name}: ${(row.ms / 1000).toFixed(row.ms < 100 ? 5 : 2)} s${row.note ? ` (${row.note})` : ''}`);
}
