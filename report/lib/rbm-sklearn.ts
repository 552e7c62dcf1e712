/**
 * Agreement of our RBM with scikit-learn's BernoulliRBM, as measured by
 * `bench/rbm-vs-sklearn.ts` (100 hidden units, learning rate 0.01, batch 10, all 60 000
 * training images, seeds 0–2; README, "Benchmarks", 2026-11-21): the mean pseudo-likelihood
 * each prints after iterations 1 and 2. Transcribed from that run (it needs Python and
 * scikit-learn, which the report's cells do not).
 */
export const SKLEARN_AGREEMENT = {
  nComponents: 100,
  learningRate: 0.01,
  seeds: 3,
  iterations: [
    { iteration: 1, ours: [-113.1, -113.8, -113.0], sklearn: [-113.5, -112.0, -112.9] },
    { iteration: 2, ours: [-99.4, -99.9, -99.8], sklearn: [-98.5, -98.6, -99.5] },
  ],
};
