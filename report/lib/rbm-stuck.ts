/**
 * Section 4.1, small RBMs: the hidden units' history. A small RBM is trained as the sweep
 * trains it (the script's pseudo-likelihood after every iteration) and, after every
 * iteration, what its units do on the sweep's 1 000 test digits is recorded (`unitStats`:
 * units that respond, stuck on, distinct codes), so that a jump of the printed
 * pseudo-likelihood can be set against units breaking away from the stuck group.
 */
import { createRbm, disposeRbm, rbmToData } from '../../src/ml/models/rbm.ts';
import { fitRbm } from '../../src/ml/models/rbm-train.ts';
import type { Rng } from '../../src/ml/random.ts';
import { unitStats } from './rbm-analysis.ts';

export interface UnitHistoryPoint {
  iteration: number;
  pseudoLikelihood: number;
  activeUnits: number;
  stuckOn: number;
  distinctCodes: number;
}

export function unitHistory(
  config: { nComponents: number; learningRate: number; nIter: number },
  train: Float32Array,
  test: Float32Array,
  rng: Rng,
): UnitHistoryPoint[] {
  const rbm = createRbm({ nVisible: 784, nComponents: config.nComponents, rng: rng.fork('init') });
  const points: UnitHistoryPoint[] = [];
  try {
    fitRbm(rbm, train, {
      learningRate: config.learningRate,
      nIter: config.nIter,
      rng: rng.fork('fit'),
      onIteration: (iteration, info) => {
        const units = unitStats(rbmToData(rbm), test);
        points.push({ iteration, pseudoLikelihood: info.pseudoLikelihood, activeUnits: units.activeUnits, stuckOn: units.stuckOn, distinctCodes: units.distinctCodes });
      },
    });
  } finally {
    disposeRbm(rbm);
  }
  return points;
}
