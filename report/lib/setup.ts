/**
 * What every model cell of the report does first: pick the TensorFlow.js backend (recorded
 * with the cell's result, not hashed) and derive the cell's seeded random source from the
 * document seed and the cell id. This is report glue: it knows both the runtime and the
 * models, so it lives beside the report, not in src/.
 */
import { cellId, meta, seed } from 'report:runtime';
import { initBackend, type BackendName } from '../../src/ml/backend.ts';
import { Rng } from '../../src/ml/random.ts';

export async function setup(): Promise<{ backend: BackendName; rng: Rng }> {
  const backend = await initBackend();
  meta({ backend });
  return { backend, rng: new Rng(seed).fork(cellId) };
}
