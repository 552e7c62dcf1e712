"""PyTorch / scikit-learn side of `npm run bench` (bench/run.ts starts this script).

Same workloads as the tfjs side, float32, synthetic data of MNIST's shape (timings do not
depend on pixel values): matmul 256x784x512, the course's MLP GAN at batch 128, the MLP VAE
784-400-20 at batch 128, the DCGAN at batch 64, and scikit-learn's BernoulliRBM (100 hidden,
batch 10, n_iter=1) on 60 000 float32 images.

Usage: python3 bench/torch_bench.py --threads N|default|all [--steps K] [--repeats R] [--only a,b]
Prints one JSON object on stdout: {"threads": ..., "results": [{"name", "msPerStep", ...}]}.
With --serve it reads workload names from stdin and answers one JSON line each, after a
header line: bench/run.ts interleaves these with its tfjs timings, so that each tfjs/PyTorch
pair is measured within seconds of each other on a shared machine.
Run it with OMP_WAIT_POLICY=PASSIVE: Debian's torch otherwise spins idle OpenMP threads.
"""

import argparse
import contextlib
import json
import os
import statistics
import sys
import time

import torch
from torch import nn

EPOCH_IMAGES = 60_000


CPU_SHARE = {}
CPU_MS = {}


def median_ms(fn, steps, repeats, warmup=3):
    """Median (over `repeats`) of the mean wall ms per call over `steps` calls, after
    `warmup`. Also records, per function, the median process CPU ms per call (robust to
    other processes taking the cores; equal to wall time for one idle thread) and the CPU
    share (CPU time / wall time: about the thread count when the machine is idle)."""
    for _ in range(warmup):
        fn()
    samples, cpu_samples = [], []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(steps):
            fn()
        samples.append((time.perf_counter() - t0) * 1000 / steps)
        cpu_samples.append((time.process_time() - c0) * 1000 / steps)
    CPU_SHARE[fn] = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    CPU_MS[fn] = statistics.median(cpu_samples)
    return statistics.median(samples), samples


# --- Models: the course's scripts (section 4.2, 4.3) -------------------------------------

def mlp_generator(latent_dim=10):
    return nn.Sequential(
        nn.Linear(latent_dim, 256), nn.LeakyReLU(0.2),
        nn.Linear(256, 512), nn.LeakyReLU(0.2),
        nn.Linear(512, 1024), nn.LeakyReLU(0.2),
        nn.Linear(1024, 784), nn.Tanh())


def mlp_discriminator():
    return nn.Sequential(
        nn.Linear(784, 1024), nn.LeakyReLU(0.2), nn.Dropout(0.3),
        nn.Linear(1024, 512), nn.LeakyReLU(0.2), nn.Dropout(0.3),
        nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.3),
        nn.Linear(256, 1), nn.Sigmoid())


class Reshape(nn.Module):
    def __init__(self, *shape):
        super().__init__()
        self.shape = shape

    def forward(self, x):
        return x.view(x.shape[0], *self.shape)


def dc_generator(latent_dim=10):
    # Mirrors src/ml/models/dcgan.ts: dense 7x7x128 -> BN -> LeakyReLU -> convT 64 -> BN ->
    # LeakyReLU -> convT 1 -> tanh. (PyTorch is NCHW; tfjs is NHWC.)
    return nn.Sequential(
        nn.Linear(latent_dim, 7 * 7 * 128, bias=False), nn.BatchNorm1d(7 * 7 * 128), nn.LeakyReLU(0.2),
        Reshape(128, 7, 7),
        nn.ConvTranspose2d(128, 64, 4, 2, 1, bias=False), nn.BatchNorm2d(64), nn.LeakyReLU(0.2),
        nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh())


def dc_discriminator():
    return nn.Sequential(
        Reshape(1, 28, 28),
        nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1, bias=False), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
        nn.Flatten(), nn.Linear(7 * 7 * 128, 1), nn.Sigmoid())


def gan_step_fn(gen, disc, batch, latent_dim=10):
    """One step of the course's training loop: D on real and on detached fakes, then G."""
    bce = nn.BCELoss()
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-3, betas=(0.5, 0.999))
    real = torch.rand(batch, 784) * 2 - 1
    ones = torch.ones(batch, 1)
    zeros = torch.zeros(batch, 1)

    def step():
        z = torch.randn(batch, latent_dim)
        fake = gen(z)
        opt_d.zero_grad()
        d_loss = 0.5 * (bce(disc(real), ones) + bce(disc(fake.detach()), zeros))
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        g_loss = bce(disc(fake), ones)
        g_loss.backward()
        opt_g.step()
        return d_loss.item(), g_loss.item()

    return step


class Vae(nn.Module):
    def __init__(self, input_dim=784, hidden_dim=400, latent_dim=20):
        super().__init__()
        self.enc = nn.Linear(input_dim, hidden_dim)
        self.mu = nn.Linear(hidden_dim, latent_dim)
        self.log_var = nn.Linear(hidden_dim, latent_dim)
        self.dec1 = nn.Linear(latent_dim, hidden_dim)
        self.dec2 = nn.Linear(hidden_dim, input_dim)

    def forward(self, x):
        h = torch.relu(self.enc(x))
        mu, log_var = self.mu(h), self.log_var(h)
        z = mu + torch.exp(0.5 * log_var) * torch.randn_like(mu)
        return torch.sigmoid(self.dec2(torch.relu(self.dec1(z)))), mu, log_var


def vae_step_fn(batch):
    vae = Vae()
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3, betas=(0.5, 0.999))
    x = torch.rand(batch, 784)

    def step():
        opt.zero_grad()
        x_hat, mu, log_var = vae(x)
        recon = nn.functional.binary_cross_entropy(x_hat, x, reduction="sum")
        kl = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp())
        loss = (recon + kl) / batch
        loss.backward()
        opt.step()
        return loss.item()

    return step


def timed(name, step, steps, repeats, batch=None, flops=None):
    ms, samples = median_ms(step, steps, repeats)
    row = {"name": name, "msPerStep": ms, "samples": samples, "cpuShare": CPU_SHARE[step],
           "cpuMsPerStep": CPU_MS[step], "steps": steps * repeats}
    if batch:
        row["msPerEpoch"] = ms * EPOCH_IMAGES / batch
        row["cpuMsPerEpoch"] = CPU_MS[step] * EPOCH_IMAGES / batch
    if flops:
        row["gflops"] = flops / (ms * 1e6)
        row["cpuGflops"] = flops / (CPU_MS[step] * 1e6)
    return row


def bench_workload(name, steps, repeats):
    torch.manual_seed(0)
    if name == "matmul":
        a, b = torch.rand(256, 784), torch.rand(784, 512)
        return timed(name, lambda: torch.mm(a, b), max(steps * 10, 50), repeats,
                     flops=2 * 256 * 784 * 512)
    if name == "gan":
        return timed(name, gan_step_fn(mlp_generator(), mlp_discriminator(), 128), steps, repeats,
                     batch=128)
    if name == "vae":
        return timed(name, vae_step_fn(128), steps, repeats, batch=128)
    if name == "dcgan":
        return timed(name, gan_step_fn(dc_generator(), dc_discriminator(), 64), steps, repeats,
                     batch=64)
    raise ValueError(f"unknown workload {name}")


def bench_sklearn_rbm(repeats):
    import numpy as np
    from sklearn.neural_network import BernoulliRBM

    x = np.random.default_rng(0).random((EPOCH_IMAGES, 784), dtype=np.float32)
    samples, cpu_samples = [], []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for r in range(repeats):
        # verbose=1 makes fit() compute the pseudo-likelihood it prints after each iteration,
        # as the course's script does (and as benchRbm() does); its text goes to stderr.
        rbm = BernoulliRBM(n_components=100, learning_rate=0.01, batch_size=10, n_iter=1,
                           random_state=r, verbose=1)
        t0, c0 = time.perf_counter(), time.process_time()
        with contextlib.redirect_stdout(sys.stderr):
            rbm.fit(x)
        samples.append((time.perf_counter() - t0) * 1000)
        cpu_samples.append((time.process_time() - c0) * 1000)
    ms = statistics.median(samples)
    return {"name": "rbm", "msPerEpoch": ms, "msPerStep": ms * 10 / EPOCH_IMAGES,
            "samples": samples, "cpuMsPerEpoch": statistics.median(cpu_samples),
            "cpuShare": (time.process_time() - cpu0) / (time.perf_counter() - wall0)}


def run(name, args):
    if name == "rbm":
        return bench_sklearn_rbm(args.rbm_repeats)
    return bench_workload(name, args.steps, args.repeats)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", default="default", help="N, default or all (os.cpu_count())")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rbm-repeats", type=int, default=3)
    parser.add_argument("--only", default="matmul,gan,vae,dcgan,rbm")
    parser.add_argument("--serve", action="store_true",
                        help="read workload names from stdin, answer one JSON line each "
                             "(bench/run.ts interleaves them with the tfjs timings)")
    args = parser.parse_args()
    default_threads = torch.get_num_threads()  # PyTorch's default: the physical cores
    if args.threads == "all":
        torch.set_num_threads(os.cpu_count() or 1)
    elif args.threads != "default":
        torch.set_num_threads(int(args.threads))
    import sklearn
    header = {"threads": torch.get_num_threads(), "defaultThreads": default_threads,
              "cpuCount": os.cpu_count(), "torch": torch.__version__, "sklearn": sklearn.__version__}
    if args.serve:
        print(json.dumps(header), flush=True)
        for line in sys.stdin:
            name = line.strip()
            if name:
                print(json.dumps(run(name, args)), flush=True)
        return
    results = [run(name, args) for name in args.only.split(",")]
    json.dump({**header, "results": results}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
