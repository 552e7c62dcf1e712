"""PyTorch / scikit-learn side of `npm run bench` (bench/run.ts starts this script).

Same workloads as the tfjs side, float32, synthetic data of MNIST's shape (timings do not
depend on pixel values): matmul 256x784x512, the course's MLP GAN at batch 128, the MLP VAE
784-400-20 at batch 128, the DCGAN at batch 64, and scikit-learn's BernoulliRBM (100 hidden,
batch 10, n_iter=1) on 60 000 float32 images. The models of the report as it trains them
(README's benchmark table): the course GAN at batch 512 (gan-512), the course VAE 784-128-100
at batch 3000 (vae-course), the stacked auto-encoder's end-to-end fine-tuning step at batch
3000 (ae), and section 4.4's flow-matching step with its space-to-depth U-Net at batch 128
(flow). Model workloads report their parameter count ("params"), compared with the tfjs one.

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

    step.params = count_params(gen, disc)
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


def vae_step_fn(batch, hidden_dim=400, latent_dim=20):
    vae = Vae(hidden_dim=hidden_dim, latent_dim=latent_dim)
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

    step.params = count_params(vae)
    return step


def count_params(*modules):
    return sum(p.numel() for m in modules for p in m.parameters())


# --- The stacked auto-encoder of section 4.3 (src/ml/models/autoencoder.ts) ---------------

def stacked_autoencoder(hidden_dim=128, code_dim=100):
    """784 -> 128 ReLU -> 100 (linear) -> 128 ReLU -> 784 sigmoid, untied weights."""
    return nn.Sequential(
        nn.Linear(784, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, code_dim),
        nn.Linear(code_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 784), nn.Sigmoid())


def autoencoder_step_fn(batch):
    """The fine-tuning stage (40 of its 50 epochs): the whole stack end to end, per-element MSE,
    the course's Adam(1e-3, beta 0.5, 0.999), as report/lib/vae-runs.ts trainAutoencoderRun."""
    ae = stacked_autoencoder()
    opt = torch.optim.Adam(ae.parameters(), lr=1e-3, betas=(0.5, 0.999))
    mse = nn.MSELoss()
    x = torch.rand(batch, 784)

    def step():
        opt.zero_grad()
        loss = mse(ae(x), x)
        loss.backward()
        opt.step()
        return loss.item()

    step.params = count_params(ae)
    return step


# --- Section 4.4: flow matching with a space-to-depth U-Net (src/ml/models/unet.ts) -------

CLASSES = 10
NULL_CLASS = CLASSES


def zero_(module):
    nn.init.zeros_(module.weight)
    nn.init.zeros_(module.bias)
    return module


class ResBlock(nn.Module):
    """h = conv3x3(SiLU(x)) + Dense(emb); h = conv3x3(SiLU(h)) (zero-initialised);
    out = h + (x, or conv1x1(x) when the channel count changes)."""

    def __init__(self, cin, cout, embed_dim):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.embed = nn.Linear(embed_dim, cout)
        self.conv2 = zero_(nn.Conv2d(cout, cout, 3, padding=1))
        self.shortcut = None if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x, emb):
        h = self.conv1(nn.functional.silu(x)) + self.embed(emb)[:, :, None, None]
        h = self.conv2(nn.functional.silu(h))
        return (x if self.shortcut is None else self.shortcut(x)) + h


class UNet(nn.Module):
    """unet.ts layer for layer (NCHW here, NHWC there):
    x [b, 784] -> [b, 1, 28, 28] -> pixel_unshuffle -> [b, 4, 14, 14] -> conv3x3 c1 -> res(c1) = skip
    -> conv3x3 stride 2 (tfjs 'same': pad 0 before, 1 after) -> [b, c2, 7, 7] -> res(c2) -> res(c2)
    -> conv-transpose 4x4 stride 2 (pad 1) -> [b, c1, 14, 14], concat skip -> res(2 c1 -> c1)
    -> SiLU -> conv3x3 4 (zero-initialised) -> pixel_shuffle -> [b, 784].
    emb = SiLU(Dense(SiLU(Dense(sinusoid(1000 t)))) + classTable[y]), 11 classes (10 = no label).
    For one input channel pixel_unshuffle/pixel_shuffle order the 2x2 block row-major, as
    unet.ts's spaceToDepth/depthToSpace do."""

    def __init__(self, channels=(32, 64), embed_dim=64, frequencies=16):
        super().__init__()
        c1, c2 = channels
        k = torch.arange(frequencies, dtype=torch.float32)
        self.register_buffer("scales", 1000 * torch.exp(-torch.log(torch.tensor(10000.0)) * k / frequencies))
        self.time1 = nn.Linear(2 * frequencies, embed_dim)
        self.time2 = nn.Linear(embed_dim, embed_dim)
        self.classes = nn.Embedding(CLASSES + 1, embed_dim)
        self.input = nn.Conv2d(4, c1, 3, padding=1)
        self.down1 = ResBlock(c1, c1, embed_dim)
        self.downsample = nn.Conv2d(c1, c2, 3, stride=2)
        self.mid1 = ResBlock(c2, c2, embed_dim)
        self.mid2 = ResBlock(c2, c2, embed_dim)
        self.upsample = nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1)
        self.up1 = ResBlock(2 * c1, c1, embed_dim)
        self.output = zero_(nn.Conv2d(c1, 4, 3, padding=1))

    def forward(self, x, t, y):
        b = x.shape[0]
        angles = t[:, None] * self.scales[None, :]
        features = torch.cat([torch.sin(angles), torch.cos(angles)], 1)
        time = self.time2(nn.functional.silu(self.time1(features)))
        emb = nn.functional.silu(time + self.classes(y))
        h0 = self.input(nn.functional.pixel_unshuffle(x.view(b, 1, 28, 28), 2))  # [b, c1, 14, 14]
        skip = self.down1(h0, emb)
        h = self.downsample(nn.functional.pad(skip, (0, 1, 0, 1)))  # [b, c2, 7, 7]
        h = self.mid2(self.mid1(h, emb), emb)
        h = self.upsample(h)  # [b, c1, 14, 14]
        h = self.up1(torch.cat([h, skip], 1), emb)
        out = self.output(nn.functional.silu(h))  # [b, 4, 14, 14]
        return nn.functional.pixel_shuffle(out, 2).reshape(b, 784)


def unet_from_tfjs(weights, channels=(32, 64), embed_dim=64, frequencies=16):
    """A UNet holding unet.ts's weights, given as arrays in its `variables` order: dense kernels
    [in, out] -> Linear [out, in]; conv filters [h, w, in, out] -> Conv2d [out, in, h, w];
    the transposed conv's [h, w, out, in] -> ConvTranspose2d [in, out, h, w] (the same
    permutation); the class table as it is."""
    net = UNet(channels, embed_dim, frequencies)
    dense = lambda m: [(m.weight, lambda a: a.t()), (m.bias, None)]
    conv = lambda m: [(m.weight, lambda a: a.permute(3, 2, 0, 1)), (m.bias, None)]

    def res(block):
        return conv(block.conv1) + conv(block.conv2) + (conv(block.shortcut) if block.shortcut is not None else []) + dense(block.embed)

    order = (dense(net.time1) + dense(net.time2) + [(net.classes.weight, None)] + conv(net.input) + res(net.down1)
             + conv(net.downsample) + res(net.mid1) + res(net.mid2) + conv(net.upsample) + res(net.up1) + conv(net.output))
    if len(order) != len(weights):
        raise ValueError(f"unet_from_tfjs: {len(weights)} arrays for {len(order)} parameters")
    with torch.no_grad():
        for (param, transform), (shape, values) in zip(order, weights):
            a = torch.tensor(values, dtype=torch.float32).reshape(shape)
            param.copy_(transform(a) if transform else a)
    return net


def unet_parity(path):
    """Reads {weights: [[shape, values]...], x, t, y, out} written by tests/bench/model-steps.test.ts
    (unet.ts's output for x, t, y) and returns the largest difference of our UNet's output."""
    with open(path) as f:
        case = json.load(f)
    net = unet_from_tfjs(case["weights"])
    b = len(case["t"])
    with torch.no_grad():
        out = net(torch.tensor(case["x"]).reshape(b, 784), torch.tensor(case["t"]),
                  torch.tensor(case["y"], dtype=torch.long))
    expected = torch.tensor(case["out"]).reshape(b, 784)
    return {"maxAbsDiff": (out - expected).abs().max().item(), "maxAbs": expected.abs().max().item(),
            "params": count_params(net)}


def flow_step_fn(batch, label_dropout=0.1, ema_decay=0.999):
    """One step of flow-matching.ts's flowMatchingStep: labels dropped to "no label" with
    probability 0.1, x0 ~ N(0, I), t ~ U(0, 1), x1 = 2x - 1, x_t = (1 - t) x0 + t x1, loss =
    mean((v(x_t, t, y) - (x1 - x0))^2); Adam(1e-3, beta 0.9, 0.999) as report/lib/flow-runs.ts;
    then the EMA of the weights (decay min(0.999, (1 + n)/(10 + n)))."""
    net = UNet()
    params = list(net.parameters())
    ema = [p.detach().clone() for p in params]
    opt = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999))
    x = torch.rand(batch, 784)
    labels = torch.randint(0, CLASSES, (batch,))
    count = [0]

    def step():
        y = torch.where(torch.rand(batch) < label_dropout, torch.full_like(labels, NULL_CLASS), labels)
        x0 = torch.randn(batch, 784)
        t = torch.rand(batch)
        x1 = x * 2 - 1
        tt = t[:, None]
        xt = (1 - tt) * x0 + tt * x1
        opt.zero_grad()
        loss = torch.mean((net(xt, t, y) - (x1 - x0)) ** 2)
        loss.backward()
        opt.step()
        d = min(ema_decay, (1 + count[0]) / (10 + count[0]))
        count[0] += 1
        with torch.no_grad():
            torch._foreach_mul_(ema, d)
            torch._foreach_add_(ema, params, alpha=1 - d)
        return loss.item()

    step.params = count_params(net)
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
    if hasattr(step, "params"):
        row["params"] = step.params
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
    if name == "gan-512":
        return timed(name, gan_step_fn(mlp_generator(), mlp_discriminator(), 512), steps, repeats,
                     batch=512)
    if name == "vae-course":
        return timed(name, vae_step_fn(3000, hidden_dim=128, latent_dim=100), steps, repeats,
                     batch=3000)
    if name == "ae":
        return timed(name, autoencoder_step_fn(3000), steps, repeats, batch=3000)
    if name == "flow":
        return timed(name, flow_step_fn(128), steps, repeats, batch=128)
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
    parser.add_argument("--only", default="matmul,gan,vae,dcgan,rbm,gan-512,vae-course,ae,flow")
    parser.add_argument("--serve", action="store_true",
                        help="read workload names from stdin, answer one JSON line each "
                             "(bench/run.ts interleaves them with the tfjs timings)")
    parser.add_argument("--unet-parity", metavar="JSON",
                        help="print how far our UNet is from unet.ts's output stored in JSON, and exit")
    args = parser.parse_args()
    if args.unet_parity:
        print(json.dumps(unet_parity(args.unet_parity)))
        return
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
