/**
 * The data and AIS schedule shared by the RBM sweep cells, so their runs are comparable.
 */
import { byProfile } from 'report:runtime';
import { loadMnist } from '../../src/ml/data/mnist.ts';
import { betaSchedule } from '../../src/ml/models/rbm-ais.ts';

export function rbmSweepData(): { train: Float32Array; test: Float32Array; testBinary: Float32Array } {
  return {
    train: loadMnist({ split: 'train', limit: byProfile({ full: 60000, quick: 3000 }) }).images,
    test: loadMnist({ split: 'test', limit: 1000 }).images,
    testBinary: loadMnist({ split: 'test', binarize: true, limit: byProfile({ full: 2000, quick: 200 }) }).images,
  };
}

rbmSweepData.betas = (): Float64Array =>
  betaSchedule(byProfile({ full: [[0.5, 1e-3], [0.9, 1e-4], [1, 1e-4]], quick: [[0.5, 1e-2], [1, 1e-3]] }));
