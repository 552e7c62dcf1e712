"""scikit-learn's BernoulliRBM on the same MNIST training images as bench/rbm-vs-sklearn.ts.

Usage: python3 bench/sklearn_rbm.py IDX_PATH N_COMPONENTS LEARNING_RATE N_ITER [DTYPE] [LIMIT]
Reads the raw IDX file (scaled /255, not binarised, like the course) and prints one JSON
line per iteration: {"iteration", "pseudoLikelihood", "seconds", "cpuSeconds"}: the
pseudo-likelihood scikit-learn's verbose fit prints (random_state=0, as the course), the
training time of the iteration (pseudo-likelihood pass excluded) and its CPU time (all BLAS
threads). Reproduces BernoulliRBM(random_state=0, verbose=1).fit(X) exactly.
"""
import json
import sys
import time

import numpy as np
from sklearn.neural_network import BernoulliRBM
from sklearn.utils import check_random_state, gen_even_slices


def load(path, limit):
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[4:8], "big")
    if limit:
        n = min(n, limit)
    return np.frombuffer(raw, dtype=np.uint8, count=n * 784, offset=16).reshape(n, 784)


def main():
    path, n_components, lr, n_iter = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    dtype = np.float32 if (sys.argv[5] if len(sys.argv) > 5 else "float32") == "float32" else np.float64
    limit = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    X = (load(path, limit) / 255.0).astype(dtype)
    # BernoulliRBM.fit's own loop, unrolled so that each iteration's training can be timed
    # apart from its scoring: same initialisation, same RandomState stream, same slices.
    rbm = BernoulliRBM(n_components=n_components, learning_rate=lr, batch_size=10, n_iter=n_iter, random_state=0)
    rng = check_random_state(rbm.random_state)
    n_samples, n_features = X.shape
    rbm.components_ = np.asarray(rng.normal(0, 0.01, (n_components, n_features)), order="F", dtype=X.dtype)
    rbm._n_features_out = n_components
    rbm.n_features_in_ = n_features
    rbm.intercept_hidden_ = np.zeros(n_components, dtype=X.dtype)
    rbm.intercept_visible_ = np.zeros(n_features, dtype=X.dtype)
    rbm.h_samples_ = np.zeros((rbm.batch_size, n_components), dtype=X.dtype)
    n_batches = int(np.ceil(float(n_samples) / rbm.batch_size))
    slices = list(gen_even_slices(n_batches * rbm.batch_size, n_batches, n_samples=n_samples))
    for iteration in range(1, n_iter + 1):
        t0, c0 = time.time(), time.process_time()
        for s in slices:
            rbm._fit(X[s], rng)
        t1, c1 = time.time(), time.process_time()
        pl = float(rbm.score_samples(X).mean())
        print(json.dumps({"iteration": iteration, "pseudoLikelihood": pl, "seconds": t1 - t0, "cpuSeconds": c1 - c0}), flush=True)


if __name__ == "__main__":
    main()
