/**
 * Section 4.1 Q2 over three seeds: every configuration trained for the same number of
 * iterations (the script's n_iter = 10), each seed in a cell of its own so that no cell
 * runs longer than about ten minutes. A seed changes the initial weights, the persistent
 * chains' random draws and the pseudo-likelihood's flips; the data order is the script's
 * (no shuffling), as in scikit-learn.
 */
import { byProfile } from 'report:runtime';
import { sweepRuns, type RbmConfig, type SweepRow } from './rbm-runs.ts';
import { rbmSweepData } from './rbm-sweep.ts';
import { setup } from './setup.ts';

/** The configurations of one seed: capacity at the script's learning rate, then learning rate at 100 units. */
export function seedConfigs(): RbmConfig[] {
  const nIter = byProfile({ full: 10, quick: 2 });
  const sizes = byProfile({ full: [10, 20, 50, 100, 200], quick: [10, 40] });
  const base = byProfile({ full: 100, quick: 40 });
  return [
    ...sizes.map((nComponents) => ({ nComponents, learningRate: 0.01, nIter })),
    { nComponents: base, learningRate: 0.001, nIter },
    { nComponents: base, learningRate: 0.1, nIter },
    { nComponents: 10, learningRate: 0.001, nIter },
  ];
}

/** AIS for the sweep: 100 independent annealing runs over the 5 500 inverse temperatures of `rbmSweepData.betas`. */
export const SWEEP_AIS_RUNS = { full: 100, quick: 20 };

export async function seedSweep(): Promise<SweepRow[]> {
  const { rng } = await setup();
  return sweepRuns(seedConfigs(), rbmSweepData(), { runs: byProfile(SWEEP_AIS_RUNS), betas: rbmSweepData.betas() }, rng);
}
