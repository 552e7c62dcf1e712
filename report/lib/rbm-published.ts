/**
 * Published log-likelihoods of binary MNIST models, to place this report's numbers
 * (nats per test image, higher is better). Their test set is MNIST binarised
 * stochastically (each pixel on with probability equal to its intensity); ours is
 * thresholded at ½, which gives somewhat different numbers for the same model.
 * - Salakhutdinov & Murray (ICML 2008), Table 2: 500-unit RBMs trained with CD-k (k = 1,
 *   3, and 25 with k raised during training), log Z by AIS with 14 500 temperatures.
 * - Salakhutdinov & Hinton (AISTATS 2009), §4: a 784-500-1000 two-layer DBM (variational
 *   lower bound with AIS), and a mixture of 500 Bernoulli products.
 */
export const PUBLISHED_MNIST_LOG_LIKELIHOODS: { model: string; source: string; logLikelihood: number }[] = [
  { model: 'RBM, 500 hidden, CD-1', source: 'Salakhutdinov & Murray 2008', logLikelihood: -125.53 },
  { model: 'RBM, 500 hidden, CD-3', source: 'Salakhutdinov & Murray 2008', logLikelihood: -105.5 },
  { model: 'RBM, 500 hidden, CD-25', source: 'Salakhutdinov & Murray 2008', logLikelihood: -86.34 },
  { model: 'mixture of 500 Bernoulli products', source: 'Salakhutdinov & Hinton 2009', logLikelihood: -137.64 },
  { model: 'DBM 784-500-1000 (lower bound)', source: 'Salakhutdinov & Hinton 2009', logLikelihood: -84.62 },
];
