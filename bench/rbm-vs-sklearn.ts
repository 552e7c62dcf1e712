/**
 * Agreement with scikit-learn: trains our RBM and scikit-learn's BernoulliRBM (float32, via
 * bench/sklearn_rbm.py on the same IDX file) for `N_ITER` (default 2) iterations on the 60 000
 * MNIST training images, 100 hidden units, lr 0.01, batch 10, and prints both
 * pseudo-likelihood curves and per-iteration training times.
 *   npx tsx bench/rbm-vs-sklearn.ts [nComponents] [learningRate] [nIter] [seed]
 */
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Rng } from '../src/ml/random.ts';
import { createRbm, disposeRbm } from '../src/ml/models/rbm.ts';
import { fitRbm } from '../src/ml/models/rbm-train.ts';
import { loadImages, mnistIdxPath } from './mnist-idx.ts';

const nComponents = Number(process.argv[2] ?? 100);
const learningRate = Number(process.argv[3] ?? 0.01);
const nIter = Number(process.argv[4] ?? 2);
const seed = Number(process.argv[5] ?? 0);

await tf.setBackend('wasm');
await tf.ready();
const { images } = await loadImages('train');

const ours: Array<{ iteration: number; pseudoLikelihood: number; seconds: number; scoreSeconds: number }> = [];
const rng = new Rng(seed);
const rbm = createRbm({ nVisible: 784, nComponents, rng });
let cpu = process.cpuUsage();
fitRbm(rbm, images, {
  nIter,
  learningRate,
  rng,
  onIteration: (iteration, info) => {
    const used = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    ours.push({ iteration, ...info });
    console.log(`ours    iteration ${iteration}: pseudo-likelihood ${info.pseudoLikelihood.toFixed(2)}, train ${info.seconds.toFixed(2)} s, score ${info.scoreSeconds.toFixed(2)} s (CPU train + score ${((used.user + used.system) / 1e6).toFixed(2)} s)`);
  },
});
disposeRbm(rbm);

let sklearn: Array<{ iteration: number; pseudoLikelihood: number; seconds: number; cpuSeconds: number }> = [];
try {
  const out = execFileSync('/usr/bin/python3', [fileURLToPath(new URL('./sklearn_rbm.py', import.meta.url)), mnistIdxPath('train'), String(nComponents), String(learningRate), String(nIter), 'float32'], {
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  sklearn = out.trim().split('\n').map((line) => JSON.parse(line) as { iteration: number; pseudoLikelihood: number; seconds: number; cpuSeconds: number });
  for (const r of sklearn) console.log(`sklearn iteration ${r.iteration}: pseudo-likelihood ${r.pseudoLikelihood.toFixed(2)}, train ${r.seconds.toFixed(2)} s (CPU ${r.cpuSeconds.toFixed(2)} s)`);
} catch (error) {
  console.log(`scikit-learn not run: ${(error as Error).message.split('\n')[0]}`);
}
for (const o of ours) {
  const s = sklearn.find((r) => r.iteration === o.iteration);
  if (s) console.log(`iteration ${o.iteration}: ours − sklearn = ${(o.pseudoLikelihood - s.pseudoLikelihood).toFixed(2)} nats; time ratio ${(o.seconds / s.seconds).toFixed(2)}`);
}
