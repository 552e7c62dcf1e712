/**
 * Section 4.1, learning rate: do the persistent chains keep up? PCD (Tieleman 2008) takes the
 * negative phase from a few persistent Gibbs chains advanced one step per update; the
 * estimate is good only while the weights move slowly enough for the chains to stay near the
 * model's equilibrium. Here, after every iteration of training, the weights are frozen and the
 * chains' state is compared with where the same chains go when the model is left to mix:
 *
 *   - the persistent chains' mean hidden activation m_p = mean over the chains of σ(v W + c),
 *     v ~ P(v | h) from their hidden state (what the negative phase uses);
 *   - `copies` copies of each chain run `steps` more Gibbs steps under the frozen weights, and
 *     give m_eq, the same mean over all the copies;
 *   - lag = RMS over hidden units of m_p − m_eq;
 *   - the floor: the same RMS between the mean of `chains` chains drawn from the mixed copies
 *     (one copy per chain) and m_eq — what the lag would be if the chains had been mixed.
 *
 * A lag far above its floor means the negative statistics were stale. The mixed copies start
 * from the persistent states, so a model that mixes more slowly than `steps` makes the lag
 * look smaller than it is (a lower bound). Also recorded: how far the weights moved in the
 * iteration (relative Frobenius norm of the change).
 */
import * as tf from '@tensorflow/tfjs';
import { createRbm, disposeRbm, gibbs, hiddenProbabilities, visibleProbabilities, bernoulli, type Rbm } from '../../src/ml/models/rbm.ts';
import { fitRbm } from '../../src/ml/models/rbm-train.ts';
import type { Rng } from '../../src/ml/random.ts';

export interface MixingPoint {
  iteration: number;
  lag: number;
  floor: number;
  /** ‖W_t − W_{t−1}‖ / ‖W_{t−1}‖ over this iteration. */
  weightChange: number;
}

export interface MixingRun {
  learningRate: number;
  nComponents: number;
  points: MixingPoint[];
}

/** Mean over rows of σ(v W + c) for v ~ P(v | h) of each chain's hidden state, [nC]. */
function meanHidden(rbm: Rbm, visible: Float32Array): Float32Array {
  return tf.tidy(() => {
    const v = tf.tensor2d(visible, [visible.length / rbm.nVisible, rbm.nVisible]);
    return tf.mean(hiddenProbabilities(rbm, v), 0).dataSync() as Float32Array;
  });
}

function rms(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(s / a.length);
}

/** The chains' lag behind the model frozen at its current weights (see the file's header). */
export function chainLag(rbm: Rbm, rng: Rng, options: { steps: number; copies: number }): { lag: number; floor: number } {
  const chains = rbm.persistentHidden.shape[0];
  const nV = rbm.nVisible;
  // The chains' visible state, as the negative phase draws it from their hidden state.
  const visible = tf.tidy(() => bernoulli(visibleProbabilities(rbm, rbm.persistentHidden), rng.seed()).dataSync() as Float32Array);
  const persistentMean = meanHidden(rbm, visible);
  const copies = new Float32Array(chains * options.copies * nV);
  for (let c = 0; c < options.copies; c++) copies.set(visible, c * chains * nV);
  const mixed = gibbs(rbm, copies, options.steps, rng);
  const mixedMean = meanHidden(rbm, mixed);
  // The floor: `chains` mixed chains (copy c of every chain) against all of them, averaged over c.
  let floor = 0;
  for (let c = 0; c < options.copies; c++) floor += rms(meanHidden(rbm, mixed.subarray(c * chains * nV, (c + 1) * chains * nV)), mixedMean);
  return { lag: rms(persistentMean, mixedMean), floor: floor / options.copies };
}

/** One RBM trained as the sweep trains it (no scoring), its chains' lag measured after every iteration. */
export function mixingRun(
  config: { nComponents: number; learningRate: number; nIter: number },
  train: Float32Array,
  rng: Rng,
  options: { steps: number; copies: number },
): MixingRun {
  const rbm = createRbm({ nVisible: 784, nComponents: config.nComponents, rng: rng.fork('init') });
  const measure = rng.fork('lag');
  const points: MixingPoint[] = [];
  let before = rbm.weights.dataSync().slice() as Float32Array;
  try {
    fitRbm(rbm, train, {
      learningRate: config.learningRate,
      nIter: config.nIter,
      rng: rng.fork('fit'),
      score: false,
      onIteration: (iteration) => {
        const after = rbm.weights.dataSync() as Float32Array;
        let change = 0;
        let norm = 0;
        for (let i = 0; i < after.length; i++) {
          change += (after[i]! - before[i]!) ** 2;
          norm += before[i]! ** 2;
        }
        before = after.slice() as Float32Array;
        points.push({ iteration, ...chainLag(rbm, measure, options), weightChange: Math.sqrt(change / norm) });
      },
    });
  } finally {
    disposeRbm(rbm);
  }
  return { learningRate: config.learningRate, nComponents: config.nComponents, points };
}
