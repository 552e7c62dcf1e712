/**
 * DBM time budget on the backend in use (wasm unless told otherwise), 60 000 MNIST images,
 * batch 100: per-epoch time of RBM1 pre-training (784-512), RBM2 pre-training (512-1024) and
 * joint training (784-512-1024, 100 particles, 1 Gibbs sweep) at several mean-field step
 * counts. Each is timed on `BENCH_DBM_BATCHES` batches (default 20) and extrapolated to the
 * 600 batches of an epoch — the notes say so.
 *   npx tsx bench/dbm.ts [nHidden1] [nHidden2]
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { Rng } from '../src/ml/random.ts';
import { createDbm, disposeDbm } from '../src/ml/models/dbm.ts';
import { pretrainDbm } from '../src/ml/models/dbm-pretrain.ts';
import { fitDbm } from '../src/ml/models/dbm-train.ts';
import { loadImages } from './mnist-idx.ts';

export interface BenchRow {
  name: string;
  ms: number;
  note?: string;
}

export async function benchDbm(nHidden1 = 512, nHidden2 = 1024): Promise<BenchRow[]> {
  if (tf.getBackend() !== 'wasm') await tf.setBackend('wasm');
  await tf.ready();
  const { images } = await loadImages('train');
  const batches = Number(process.env['BENCH_DBM_BATCHES'] ?? 20);
  const epochBatches = Math.ceil(60000 / 100);
  const rng = new Rng(0);
  const dbm = createDbm({ nHidden1, nHidden2, rng, particles: 100 });
  const rows: BenchRow[] = [];
  const size = `784-${nHidden1}-${nHidden2}`;
  const note = `extrapolated from ${batches} batches of 100 to ${epochBatches}`;
  const per = (ms: number): number => (ms / batches) * epochBatches;
  // Wall time is inflated when other processes share the cores; CPU time of this process is
  // the better estimate of a dedicated core's wall time (wasm is single-threaded).
  let cpu = process.cpuUsage();
  const cpuNote = (): string => {
    const d = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    return `${note}; CPU time ${(per((d.user + d.system) / 1000) / 1000).toFixed(1)} s`;
  };
  pretrainDbm(dbm, images, { epochs1: 1, epochs2: 1, rng, maxBatchesPerEpoch: 2 }); // warm-up
  let t = performance.now();
  cpu = process.cpuUsage();
  pretrainDbm(dbm, images, { epochs1: 1, epochs2: 0, rng, maxBatchesPerEpoch: batches });
  rows.push({ name: `dbm ${size} pre-training RBM1 epoch (${tf.getBackend()})`, ms: per(performance.now() - t), note: cpuNote() });
  t = performance.now();
  pretrainDbm(dbm, images, { epochs1: 0, epochs2: 1, rng, maxBatchesPerEpoch: batches });
  rows.push({ name: `dbm ${size} pre-training RBM2 epoch (${tf.getBackend()})`, ms: per(performance.now() - t), note: cpuNote() });
  for (const meanFieldSteps of [5, 10, 30]) {
    fitDbm(dbm, images, { epochs: 1, rng, meanFieldSteps, meanFieldTolerance: 0, maxBatchesPerEpoch: 1 }); // warm-up
    t = performance.now();
    cpu = process.cpuUsage();
    fitDbm(dbm, images, { epochs: 1, rng, meanFieldSteps, meanFieldTolerance: 0, maxBatchesPerEpoch: batches });
    rows.push({ name: `dbm ${size} joint epoch, ${meanFieldSteps} mean-field updates, 100 particles (${tf.getBackend()})`, ms: per(performance.now() - t), note: cpuNote() });
  }
  disposeDbm(dbm);
  return rows;
}

// The entry point (a path with spaces or a symlink is compared as a URL, after realpath).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  const h1 = Number(process.argv[2] ?? 512);
  const h2 = Number(process.argv[3] ?? 1024);
  for (const row of await benchDbm(h1, h2)) console.log(`${row.name}: ${(row.ms / 1000).toFixed(1)} s${row.note ? ` (${row.note})` : ''}`);
}
