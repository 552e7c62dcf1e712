"""scikit-learn's BernoulliRBM on the same MNIST training images as bench/rbm-vs-sklearn.ts.

Usage: python3 bench/sklearn_rbm.py IDX_PATH N_COMPONENTS LEARNING_RATE N_ITER [DTYPE] [LIMIT]
Reads the raw IDX file (scaled /255, not binarised, like the course) and prints one JSON
line per iteration: {"iteration", "pseudoLikelihood", "seconds"} where seconds is the
training time of the iteration (pseudo-likelihood pass excluded), cpuSeconds its CPU time
(all BLAS threads).
"""
import json
import sys
import time

import numpy as np
from sklearn.neural_network import BernoulliRBM


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
    # One iteration per fit call would re-initialise; partial_fit handles one batch only.
    # So: fit with n_iter=1 once (initialises exactly as fit does), then continue with the
    # same private loop fit() runs, scoring after each iteration as verbose=1 does.
    rbm = BernoulliRBM(n_components=n_components, learning_rate=lr, batch_size=10, n_iter=1, random_state=0)
    from sklearn.utils import gen_even_slices, check_random_state

    t0, c0 = time.time(), time.process_time()
    rbm.fit(X)
    t1, c1 = time.time(), time.process_time()
    rng = rbm.random_state_ if hasattr(rbm, "random_state_") else None
    print(json.dumps({"iteration": 1, "pseudoLikelihood": float(rbm.score_samples(X).mean()), "seconds": t1 - t0, "cpuSeconds": c1 - c0}), flush=True)
    if n_iter > 1:
        # fit() keeps its RandomState local; continue with a fresh one (the sampling noise
        # differs from a single fit(n_iter) run, which is immaterial for the curve).
        rng = check_random_state(1)
        n_samples = X.shape[0]
        n_batches = int(np.ceil(float(n_samples) / rbm.batch_size))
        slices = list(gen_even_slices(n_batches * rbm.batch_size, n_batches, n_samples=n_samples))
        for iteration in range(2, n_iter + 1):
            t0, c0 = time.time(), time.process_time()
            for s in slices:
                rbm._fit(X[s], rng)
            t1, c1 = time.time(), time.process_time()
            print(json.dumps({"iteration": iteration, "pseudoLikelihood": float(rbm.score_samples(X).mean()), "seconds": t1 - t0, "cpuSeconds": c1 - c0}), flush=True)


if __name__ == "__main__":
    main()
