/**
 * `npm run bench [-- --backend wasm|cpu] [--quick] [--no-torch] [--torch-one-thread] [--only gan,vae,...] [--kernel-groups fastconv,steps,...] [--rerender]`
 *
 * Times, in one run and on one tfjs backend (wasm by default, via initBackend): a
 * 256×784×512 matMul, one epoch of the course's MLP GAN (batch 128) and of the 784-400-20
 * VAE (batch 128), a DCGAN step (batch 64), the RBM (bench/rbm.ts) and the kernel
 * benchmark (bench/ml-kernels.ts); one step of each model of the report as it trains it
 * (bench/model-steps.ts: gan-512, vae-course, ae, flow — flow with
 * registerFastConvolutions(), as report/lib/flow-runs.ts); then, when /usr/bin/python3 has torch and sklearn, the
 * same workloads in bench/torch_bench.py with one thread (per-core comparison) and with
 * torch's default thread count. Epochs are extrapolated from N timed steps (the output
 * says how many). Data are synthetic, of MNIST's shape: timings do not depend on pixels.
 *
 * Each figure is the median over `repeats` of the mean time of `steps` steps, after
 * warm-up steps. The machine is shared, so: the PyTorch timings of a workload are taken
 * right after the tfjs ones (two `torch_bench.py --serve` processes wait for requests),
 * the output records the load average, and each workload's CPU share (CPU time / wall
 * time; 1.0 = a whole core for single-threaded wasm) and CPU-time ratio, which other
 * processes inflate much less than wall time.
 *
 * Writes bench/results.md (the table the README quotes) and bench/results.json; other
 * backends and partial runs write bench/results-<backend>[-partial].{md,json}.
 */
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import readline from 'node:readline';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as tf from '@tensorflow/tfjs';
import { initBackend, type BackendName } from '../src/ml/backend.ts';
import { Rng } from '../src/ml/random.ts';
import { COURSE_ADAM, createDiscriminator, createGenerator, ganStep, type GanModels } from '../src/ml/models/gan.ts';
import { COURSE_VAE_ADAM, PAPER_VAE, createVae, vaeStep } from '../src/ml/models/vae.ts';
import { createStepRunner } from '../src/ml/trainer.ts';
import { registerFastConvolutions, unregisterFastConvolutions } from '../src/ml/kernels/fast-conv.ts';
import { createModelStep, type ModelStepKey } from './model-steps.ts';

const EPOCH_IMAGES = 60_000;

/**
 * PyTorch / scikit-learn figures measured earlier on this machine while it was idle
 * (supplied with the benchmark's brief), in each workload's unit. Under load, PyTorch's
 * AVX kernels lose more to the busy sibling hyperthread than wasm's SIMD128 code does, so
 * the same-window ratios above flatter tfjs; the ratios against these anchors show the
 * other side.
 */
export const IDLE_ANCHORS: Readonly<Record<string, { value: number; label: string }>> = {
  matmul: { value: 98, label: 'PyTorch, one core' },
  gan: { value: 22, label: 'PyTorch' },
  vae: { value: 3.8, label: 'PyTorch' },
  // Architecture of this anchor unknown: bench/torch_bench.py's DCGAN took 164 ms/step
  // on the idle machine (2026-11-21 11:23), so compare DCGAN on the same-window ratio.
  dcgan: { value: 60, label: 'PyTorch, architecture unknown' },
  rbm: { value: 3.4, label: 'scikit-learn BernoulliRBM, float32' },
};
const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const PYTHON = '/usr/bin/python3';

export interface Timing {
  /** Median over repeats of the mean ms per step. */
  msPerStep: number;
  minMsPerStep: number;
  samples: number[];
  /** Median over repeats of the process CPU ms per step. */
  cpuMsPerStep: number;
  steps: number;
  /** Process CPU time / wall time while timing (1 = one full core). */
  cpuShare: number;
}

export interface BenchOptions {
  backend: BackendName;
  quick: boolean;
  torch: boolean;
  /** Only the one-thread PyTorch column (skips the all-threads server: half the PyTorch time). */
  torchOneThread?: boolean;
  only?: ReadonlySet<string>;
  /** Row groups of bench/ml-kernels.ts (matmul, conv, fastconv, steps, mlp, batch); default all. */
  kernelGroups?: ReadonlySet<string>;
  /** Only re-render the Markdown from the saved JSON. */
  rerender?: boolean;
}

/** Workload key from a row title (results.json written before rows carried `key`). */
function keyOf(workload: string): string | undefined {
  const table: Array<[RegExp, string]> = [[/^matMul/, 'matmul'], [/^MLP GAN \(course\), batch 128/, 'gan'], [/^VAE/, 'vae'], [/^DCGAN/, 'dcgan'], [/^RBM/, 'rbm']];
  return table.find(([re]) => re.test(workload))?.[1];
}

/** A comparison row: tfjs and PyTorch figures in the same unit. */
export interface ComparisonRow {
  /** Workload key: matmul, gan, vae, dcgan, rbm, gan-512, vae-course, ae, flow. */
  key?: string;
  workload: string;
  unit: 'GFLOP/s' | 's/epoch' | 'ms/step' | 's/iteration';
  tfjs?: number;
  torch1?: number;
  torchDefault?: number;
  /** tfjs slower than PyTorch (1 thread) by this factor; for GFLOP/s, the inverse ratio. */
  ratio1?: number;
  ratioDefault?: number;
  /** The same ratio on process CPU time (tfjs vs PyTorch 1 thread). */
  cpuRatio1?: number;
  target?: number;
  note: string;
  cpuShare?: { tfjs?: number; torch1?: number; torchDefault?: number };
}

export interface ExtraRow {
  section: 'rbm' | 'kernels' | 'engine' | 'preview';
  name: string;
  ms: number;
  gflops?: number;
  /** Median process CPU time (kernel rows). */
  cpuMs?: number;
  note?: string;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Times `step` (which must read its result back, so the work is done): see the file header. */
export function timeSteps(step: () => void, options: { warmup: number; steps: number; repeats: number }): Timing {
  for (let i = 0; i < options.warmup; i++) step();
  const samples: number[] = [];
  const cpuSamples: number[] = [];
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  for (let r = 0; r < options.repeats; r++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (let i = 0; i < options.steps; i++) step();
    samples.push((performance.now() - t0) / options.steps);
    const c = process.cpuUsage(c0);
    cpuSamples.push((c.user + c.system) / 1000 / options.steps);
  }
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - wall0;
  return {
    msPerStep: median(samples),
    minMsPerStep: Math.min(...samples),
    samples,
    cpuMsPerStep: median(cpuSamples),
    steps: options.steps * options.repeats,
    cpuShare: (cpu.user + cpu.system) / 1000 / wall,
  };
}

/** Steps and repeats per workload: the cpu backend is ~30× slower, so it gets fewer. */
function plan(backend: BackendName, quick: boolean, wasmSteps: number): { warmup: number; steps: number; repeats: number } {
  const steps = backend === 'cpu' ? 1 : wasmSteps;
  return quick ? { warmup: 1, steps: Math.max(1, steps >> 2), repeats: 3 } : { warmup: 2, steps, repeats: backend === 'cpu' ? 3 : 5 };
}

function benchMatMul(backend: BackendName, quick: boolean): Timing {
  const [a, b] = [tf.randomUniform([256, 784], 0, 1, 'float32', 1), tf.randomUniform([784, 512], 0, 1, 'float32', 2)];
  const timing = timeSteps(() => {
    const y = tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);
    y.dataSync();
    y.dispose();
  }, plan(backend, quick, 20));
  tf.dispose([a, b]);
  return timing;
}

function benchGanLike(models: GanModels, batch: number, timingPlan: ReturnType<typeof plan>): Timing {
  const rng = new Rng(1);
  const runner = createStepRunner({
    generator: { variables: models.generator.variables, optimizer: COURSE_ADAM },
    discriminator: { variables: models.discriminator.variables, optimizer: COURSE_ADAM },
  });
  const real = tf.randomUniform([batch, 784], -1, 1, 'float32', 3) as tf.Tensor2D;
  const step = () => runner.run({ epoch: 0, index: 0, globalStep: 0, x: real, rng }, (ctx) => ganStep(ctx, models));
  const timing = timeSteps(() => void step(), timingPlan);
  real.dispose();
  runner.dispose();
  models.generator.dispose();
  models.discriminator.dispose();
  return timing;
}

function benchGan(backend: BackendName, quick: boolean): Timing {
  const rng = new Rng(0);
  return benchGanLike({ generator: createGenerator({ latentDim: 10, rng }), discriminator: createDiscriminator({ rng }) }, 128, plan(backend, quick, 8));
}

/** Timed steps per repeat of each model step on wasm (≈ 0.5–1.5 s of steps per repeat on an idle core). */
const MODEL_STEPS: Readonly<Record<ModelStepKey, number>> = { 'gan-512': 4, dcgan: 4, 'vae-course': 6, ae: 8, flow: 2 };

/**
 * One step of a model of the report (bench/model-steps.ts), at the report's batch size; flow
 * with fast convolutions, as report/lib/flow-runs.ts trains it (the DCGAN cells do not
 * register them, so neither does the DCGAN here).
 */
function benchModelStep(key: ModelStepKey, backend: BackendName, quick: boolean): Timing & { params: number } {
  const fast = key === 'flow' && backend === 'wasm';
  if (fast) registerFastConvolutions();
  try {
    const model = createModelStep(key);
    try {
      return { ...timeSteps(model.step, plan(backend, quick, MODEL_STEPS[key])), params: model.params };
    } finally {
      model.dispose();
    }
  } finally {
    if (fast) unregisterFastConvolutions();
  }
}

function benchVae(backend: BackendName, quick: boolean): Timing {
  const rng = new Rng(0);
  const vae = createVae({ ...PAPER_VAE, rng });
  const runner = createStepRunner({ vae: { variables: vae.variables, optimizer: COURSE_VAE_ADAM } });
  const x = tf.randomUniform([128, 784], 0, 1, 'float32', 3) as tf.Tensor2D;
  const timing = timeSteps(() => void runner.run({ epoch: 0, index: 0, globalStep: 0, x, rng }, (ctx) => vaeStep(ctx, vae)), plan(backend, quick, 30));
  x.dispose();
  runner.dispose();
  vae.dispose();
  return timing;
}

export interface TorchResult {
  name: string;
  /** Trainable parameters of the model (model workloads). */
  params?: number;
  msPerStep: number;
  cpuMsPerStep?: number;
  msPerEpoch?: number;
  cpuMsPerEpoch?: number;
  gflops?: number;
  cpuGflops?: number;
  cpuShare?: number;
}
interface TorchHeader {
  threads: number;
  /** PyTorch's own default (the physical cores), whatever --threads asked. */
  defaultThreads: number;
  torch: string;
  sklearn: string;
}

async function maybeHasTorch(): Promise<boolean> {
  if (!existsSync(PYTHON)) return false;
  try {
    await promisify(execFile)(PYTHON, ['-c', 'import torch, sklearn']);
    return true;
  } catch {
    return false;
  }
}

/** A `torch_bench.py --serve` process: one workload name in, one JSON line out. */
class TorchServer {
  private readonly lines: AsyncIterator<string>;
  private constructor(private readonly child: ChildProcessWithoutNullStreams, readonly header: TorchHeader, lines: AsyncIterator<string>) {
    this.lines = lines;
  }

  static async start(threads: 'one' | 'all', quick: boolean): Promise<TorchServer> {
    const oneThread = threads === 'one' ? { OMP_NUM_THREADS: '1', OPENBLAS_NUM_THREADS: '1', MKL_NUM_THREADS: '1' } : {};
    const args = [path.join(BENCH_DIR, 'torch_bench.py'), '--serve', '--threads', threads === 'one' ? '1' : 'all'];
    if (quick) args.push('--steps', '5', '--repeats', '3', '--rbm-repeats', '1');
    const child = spawn(PYTHON, args, {
      // Debian's torch spins idle OpenMP threads unless told to wait passively.
      env: { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', ...oneThread },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stderr.resume(); // sklearn's verbose lines; not needed
    const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const first = await lines.next();
    if (first.done) throw new Error(`torch_bench.py (${threads} threads) exited before its header`);
    return new TorchServer(child, JSON.parse(first.value) as TorchHeader, lines);
  }

  async run(name: string): Promise<TorchResult> {
    this.child.stdin.write(name + '\n');
    const next = await this.lines.next();
    if (next.done) throw new Error(`torch_bench.py exited while running ${name}`);
    return JSON.parse(next.value) as TorchResult;
  }

  close(): void {
    this.child.stdin.end();
  }
}

/** The figure of a torch workload in the comparison's unit, on wall and on CPU time. */
function torchFigure(r: TorchResult | undefined, unit: ComparisonRow['unit']): { value?: number; cpu?: number; cpuShare?: number } {
  if (!r) return {};
  if (unit === 'GFLOP/s') return { value: r.gflops, cpu: r.cpuGflops, cpuShare: r.cpuShare };
  if (unit === 'ms/step') return { value: r.msPerStep, cpu: r.cpuMsPerStep, cpuShare: r.cpuShare };
  return { value: (r.msPerEpoch ?? NaN) / 1000, cpu: r.cpuMsPerEpoch === undefined ? undefined : r.cpuMsPerEpoch / 1000, cpuShare: r.cpuShare };
}

export type RowInput = Omit<ComparisonRow, 'torch1' | 'torchDefault' | 'ratio1' | 'ratioDefault' | 'cpuRatio1'> & { tfjsCpu?: number };

export function compare(row: RowInput, torch1?: TorchResult, torchDefault?: TorchResult): ComparisonRow {
  const one = torchFigure(torch1, row.unit);
  const all = torchFigure(torchDefault, row.unit);
  const ratio = (tfjs?: number, t?: number) => (tfjs === undefined || t === undefined ? undefined : row.unit === 'GFLOP/s' ? t / tfjs : tfjs / t);
  const { tfjsCpu, ...rest } = row;
  return {
    ...rest,
    torch1: one.value,
    torchDefault: all.value,
    ratio1: ratio(row.tfjs, one.value),
    ratioDefault: ratio(row.tfjs, all.value),
    cpuRatio1: ratio(tfjsCpu, one.cpu),
    cpuShare: { ...row.cpuShare, torch1: one.cpuShare, torchDefault: all.cpuShare },
  };
}

/** Dynamically imports an optional sibling benchmark; undefined when its file is absent. */
async function maybeImport<T>(file: string): Promise<T | undefined> {
  const full = path.join(BENCH_DIR, file);
  return existsSync(full) ? ((await import(full)) as T) : undefined;
}

function fmt(value: number | undefined, digits = 2): string {
  if (value === undefined || !Number.isFinite(value)) return '—';
  return value >= 100 ? value.toFixed(0) : value.toFixed(digits);
}

/** A ratio as `3.0×`, or `—` when there is none. */
function times(value: number | undefined): string {
  return value === undefined || !Number.isFinite(value) ? '—' : `${fmt(value, 1)}×`;
}

export function toMarkdown(report: BenchReport): string {
  const { backend } = report;
  const loaded = report.machine.loadStart > 1 || report.machine.loadEnd > 1;
  const lines = [
    `## Training speed: tfjs (${backend}) vs PyTorch ${report.versions.torch ?? '—'} / scikit-learn ${report.versions.sklearn ?? '—'}`,
    '',
    `Measured ${report.date.slice(0, 16).replace('T', ' ')} UTC on ${report.machine.cpus}× ${report.machine.cpuModel}; load average (1 min) ` +
      `${report.machine.loadStart.toFixed(1)} at start, ${report.machine.loadEnd.toFixed(1)} at end` +
      `${loaded ? ' — a shared, loaded machine: wall times are inflated and noisy (±30 %); the CPU-time ratio is the steadier comparison' : ''}. ` +
      'Medians of repeated timings; each PyTorch figure was taken right after the tfjs one. ' +
      'Ratio = how many times slower tfjs is than PyTorch (for GFLOP/s, PyTorch\'s throughput over tfjs\'s); targets apply to the one-thread ratio. ' +
      'CPU share = process CPU time / wall time (1.0 = one full core).' +
      (report.versions.torchDefaultThreads === undefined
        ? ''
        : ` PyTorch's default thread count here is ${report.versions.torchDefaultThreads} (its physical-core count), so the second PyTorch column uses every logical CPU.`),
    '',
    `| Workload | Unit | tfjs ${backend} | PyTorch 1 thread | ratio | PyTorch ${report.versions.torchThreads ?? 'all'} threads | ratio | ratio on CPU time (1 thread) | target | CPU share tfjs / torch 1 / torch all | Note |`,
    '|---|---|---:|---:|---:|---:|---:|---:|---|---|---|',
  ];
  for (const r of report.comparison) {
    const share = [r.cpuShare?.tfjs, r.cpuShare?.torch1, r.cpuShare?.torchDefault].map((x) => fmt(x)).join(' / ');
    const verdict = (ratio?: number) => (r.target === undefined || ratio === undefined ? '' : ratio <= r.target ? 'met' : 'missed');
    const target = r.target === undefined ? '' : `≤ ${r.target}×: ${verdict(r.ratio1) || '—'} (CPU time: ${verdict(r.cpuRatio1) || '—'})`;
    lines.push(
      `| ${r.workload} | ${r.unit} | ${fmt(r.tfjs)} | ${fmt(r.torch1)} | ${times(r.ratio1)} | ${fmt(r.torchDefault)} | ${times(r.ratioDefault)} | ` +
        `${times(r.cpuRatio1)} | ${target} | ${share} | ${r.note} |`,
    );
  }
  const anchored = report.comparison.filter((r) => r.key !== undefined && IDLE_ANCHORS[r.key] !== undefined && r.tfjs !== undefined);
  if (anchored.length > 0) {
    lines.push(
      '',
      '### Against the idle-machine anchors',
      '',
      'PyTorch / scikit-learn figures measured earlier on this machine with nothing else running. ' +
        'Under load PyTorch\'s kernels slow down more than wasm\'s, so these ratios are the less flattering view of the same tfjs figures.',
      '',
      `| Workload | Unit | tfjs ${backend} (this run) | idle anchor | ratio | target |`,
      '|---|---|---:|---:|---:|---|',
    );
    for (const r of anchored) {
      const anchor = IDLE_ANCHORS[r.key!]!;
      const ratio = r.unit === 'GFLOP/s' ? anchor.value / r.tfjs! : r.tfjs! / anchor.value;
      const target = r.target === undefined ? '' : `≤ ${r.target}×: ${ratio <= r.target ? 'met' : 'missed'}`;
      lines.push(`| ${r.workload} | ${r.unit} | ${fmt(r.tfjs)} | ${fmt(anchor.value)} (${anchor.label}) | ${fmt(ratio, 1)}× | ${target} |`);
    }
  }
  for (const section of ['rbm', 'kernels', 'engine', 'preview'] as const) {
    const rows = report.extra.filter((r) => r.section === section);
    if (rows.length === 0) continue;
    const title = { rbm: 'RBM (bench/rbm.ts)', kernels: 'Kernels (bench/ml-kernels.ts)', engine: 'Engine (bench/engine.ts)', preview: 'Preview (bench/preview.ts)' }[section];
    if (rows.some((r) => r.cpuMs !== undefined)) {
      // Process CPU time: what the kernel itself cost, less inflated by waiting for a core on a loaded machine.
      lines.push('', `### ${title}`, '', '| Benchmark | ms | GFLOP/s | CPU ms | GFLOP/s on CPU time | Note |', '|---|---:|---:|---:|---:|---|');
      for (const r of rows) {
        const cpuGflops = r.cpuMs !== undefined && r.gflops !== undefined ? (r.gflops * r.ms) / r.cpuMs : undefined;
        lines.push(`| ${r.name} | ${fmt(r.ms)} | ${fmt(r.gflops)} | ${fmt(r.cpuMs)} | ${fmt(cpuGflops)} | ${r.note ?? ''} |`);
      }
      continue;
    }
    lines.push('', `### ${title}`, '', '| Benchmark | ms | GFLOP/s | Note |', '|---|---:|---:|---|');
    for (const r of rows) lines.push(`| ${r.name} | ${fmt(r.ms)} | ${fmt(r.gflops)} | ${r.note ?? ''} |`);
  }
  if (report.failures.length > 0) lines.push('', '### Not measured', '', ...report.failures.map((f) => `- ${f}`));
  return lines.join('\n') + '\n';
}

export interface BenchReport {
  date: string;
  backend: BackendName;
  machine: { cpus: number; cpuModel: string; loadStart: number; loadEnd: number };
  versions: { tfjs: string; torch?: string; sklearn?: string; torchThreads?: number; torchDefaultThreads?: number };
  comparison: ComparisonRow[];
  extra: ExtraRow[];
  tfjsTimings: Record<string, Timing>;
  torch: { one: Record<string, TorchResult>; default: Record<string, TorchResult> };
  /** Trainable parameters of each model workload on each side (they must agree). */
  params?: Record<string, { tfjs?: number; torch?: number }>;
  failures: string[];
}

export async function runBench(options: BenchOptions, log: (line: string) => void): Promise<BenchReport> {
  const wants = (name: string) => !options.only || options.only.has(name);
  const loadStart = os.loadavg()[0]!;
  const backend = await initBackend({ backend: options.backend });
  log(`tfjs ${tf.version.tfjs} on ${backend}; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const timings: Record<string, Timing> = {};
  const failures: string[] = [];
  const extra: ExtraRow[] = [];
  const torch: BenchReport['torch'] = { one: {}, default: {} };
  const servers: { one?: TorchServer; default?: TorchServer } = {};
  if (options.torch) {
    if (await maybeHasTorch()) {
      servers.one = await TorchServer.start('one', options.quick);
      // PyTorch's default thread count is the number of physical cores (1 on a 2-vCPU SMT
      // machine), so the second column uses every logical CPU instead.
      if (!options.torchOneThread) servers.default = await TorchServer.start('all', options.quick);
    } else {
      failures.push(`PyTorch: ${PYTHON} cannot import torch and sklearn`);
    }
  }
  const runTorch = async (name: string) => {
    for (const threads of ['one', 'default'] as const) {
      const server = servers[threads];
      if (!server) continue;
      const r = await server.run(name);
      torch[threads][name] = r;
      const figure = name === 'rbm'
        ? `${((r.msPerEpoch ?? NaN) / 1000).toFixed(2)} s/iteration (scikit-learn)`
        : `${r.msPerStep.toFixed(2)} ms/step (CPU ${r.cpuMsPerStep?.toFixed(2) ?? '—'} ms)`;
      log(`    PyTorch ${server.header.threads} thread(s): ${figure}, CPU share ${r.cpuShare?.toFixed(2) ?? '—'}`);
    }
  };
  const params: Record<string, { tfjs?: number; torch?: number }> = {};
  const measure = async (name: string, run: () => Timing & { params?: number }) => {
    if (!wants(name)) return;
    const { params: count, ...t } = run();
    timings[name] = t;
    log(`  ${name}: ${t.msPerStep.toFixed(2)} ms/step (min ${t.minMsPerStep.toFixed(2)}, CPU ${t.cpuMsPerStep.toFixed(2)} ms, ${t.steps} steps, CPU share ${t.cpuShare.toFixed(2)})`);
    await runTorch(name);
    if (count !== undefined) {
      const torchCount = torch.one[name]?.params ?? torch.default[name]?.params;
      params[name] = { tfjs: count, torch: torchCount };
      log(`    parameters: tfjs ${count}, PyTorch ${torchCount ?? '—'}`);
      if (torchCount !== undefined && torchCount !== count) failures.push(`${name}: parameter counts differ (tfjs ${count}, PyTorch ${torchCount}): not the same model`);
    }
  };

  try {
    await measure('matmul', () => benchMatMul(backend, options.quick));
    await measure('vae', () => benchVae(backend, options.quick));
    await measure('gan', () => benchGan(backend, options.quick));
    await measure('dcgan', () => benchModelStep('dcgan', backend, options.quick));
    for (const key of ['gan-512', 'vae-course', 'ae', 'flow'] as const) await measure(key, () => benchModelStep(key, backend, options.quick));

    if (wants('rbm')) {
      const rbm = await maybeImport<{ benchRbm(): Promise<{ name: string; ms: number; note?: string }[]> }>('rbm.ts');
      if (!rbm) failures.push('RBM: bench/rbm.ts not found');
      else {
        try {
          log('  rbm: bench/rbm.ts (it runs on wasm whatever --backend says)');
          for (const r of await rbm.benchRbm()) extra.push({ section: 'rbm', ...r });
        } catch (error) {
          failures.push(`RBM: ${(error as Error).message.split('\n')[0]}`);
        }
        await initBackend({ backend }); // benchRbm may have switched backend
      }
      await runTorch('rbm');
    }
  } finally {
    servers.one?.close();
    servers.default?.close();
  }

  if (wants('kernels')) {
    const kernels = await maybeImport<{ benchKernels(o: { backends: Array<'wasm' | 'cpu'>; repeats?: number; groups?: ReadonlySet<string> }): Promise<{ name: string; ms: number; gflops?: number; cpuMs?: number; note?: string }[]> }>('ml-kernels.ts');
    if (!kernels) failures.push('Kernels: bench/ml-kernels.ts not found');
    else if (backend === 'tensorflow') failures.push('Kernels: bench/ml-kernels.ts times wasm and cpu only');
    else {
      log('  kernels: bench/ml-kernels.ts');
      for (const r of await kernels.benchKernels({ backends: [backend], repeats: options.quick ? 3 : 7, ...(options.kernelGroups ? { groups: options.kernelGroups } : {}) })) extra.push({ section: 'kernels', ...r });
      await initBackend({ backend });
    }
  }

  // ---- Engine benchmark hook ------------------------------------------------------------
  // bench/engine.ts (the lead's) exports benchEngine(): Promise<{ name; ms; note? }[]>; it
  // is imported only if the file exists and its rows are listed as they come.
  if (wants('engine')) {
    const engine = await maybeImport<{ benchEngine(): Promise<{ name: string; ms: number; note?: string }[]> }>('engine.ts');
    if (engine) {
      try {
        log('  engine: bench/engine.ts');
        for (const r of await engine.benchEngine()) extra.push({ section: 'engine', ...r });
      } catch (error) {
        failures.push(`Engine: ${(error as Error).message.split('\n')[0]}`);
      }
    }
  }
  // ---- end of engine hook ---------------------------------------------------------------

  // The preview's round trip (save → new page over server-sent events) and its memory over
  // 500 rebuilds: bench/preview.ts.
  if (wants('preview')) {
    const preview = await maybeImport<{ benchPreview(): Promise<{ name: string; ms: number; note?: string }[]> }>('preview.ts');
    if (preview) {
      try {
        log('  preview: bench/preview.ts');
        for (const r of await preview.benchPreview()) {
          extra.push({ section: 'preview', ...r });
          log(`    ${r.name}: ${r.ms.toFixed(0)} ms ${r.note ?? ''}`);
        }
      } catch (error) {
        failures.push(`Preview: ${(error as Error).message.split('\n')[0]}`);
      }
    }
    // The same round trip on a copy of the real report (68 cells, 73 MB of results):
    // bench/preview-report.ts, in a process of its own (as `npm run preview` is), so that the
    // heap the benches before left behind is not its garbage to collect.
    if (existsSync(path.join(BENCH_DIR, 'preview-report.ts'))) {
      try {
        log('  preview: bench/preview-report.ts (own process)');
        const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', path.join(BENCH_DIR, 'preview-report.ts'), '--json'], { maxBuffer: 1 << 24, timeout: 15 * 60_000 });
        for (const r of JSON.parse(stdout) as { name: string; ms: number; note?: string }[]) {
          extra.push({ section: 'preview', ...r });
          log(`    ${r.name}: ${r.ms.toFixed(0)} ms ${r.note ?? ''}`);
        }
      } catch (error) {
        failures.push(`Preview (real report): ${(error as Error).message.split('\n')[0]}`);
      }
    }
  }

  const msPerStepToSPerEpoch = (batch: number) => EPOCH_IMAGES / batch / 1000;
  const steps = (name: string) => timings[name]?.steps ?? 0;
  const comparison: ComparisonRow[] = [];
  const add = (name: string, row: RowInput) => {
    if (wants(name)) comparison.push({ key: name, ...compare(row, torch.one[name], torch.default[name]) });
  };
  const t = (name: string) => timings[name];
  const mmFlops = 2 * 256 * 784 * 512;
  add('matmul', {
    workload: 'matMul 256×784×512', unit: 'GFLOP/s', note: 'includes the read-back',
    tfjs: t('matmul') && mmFlops / (t('matmul')!.msPerStep * 1e6), tfjsCpu: t('matmul') && mmFlops / (t('matmul')!.cpuMsPerStep * 1e6),
    cpuShare: { tfjs: t('matmul')?.cpuShare },
  });
  for (const [name, workload, batch] of [['gan', 'MLP GAN (course), batch 128', 128], ['vae', 'VAE 784-400-20, batch 128', 128]] as const) {
    add(name, {
      workload, unit: 's/epoch', target: 3.5,
      note: `one epoch = ${Math.ceil(EPOCH_IMAGES / batch)} steps, extrapolated from ${steps(name)} timed steps`,
      tfjs: t(name) && t(name)!.msPerStep * msPerStepToSPerEpoch(batch), tfjsCpu: t(name) && t(name)!.cpuMsPerStep * msPerStepToSPerEpoch(batch),
      cpuShare: { tfjs: t(name)?.cpuShare },
    });
  }
  const paramNote = (name: string) => {
    const p = params[name];
    if (!p) return '';
    return p.torch === undefined ? `; ${p.tfjs} parameters` : p.torch === p.tfjs ? `; ${p.tfjs} parameters on both sides` : `; parameters differ: tfjs ${p.tfjs}, PyTorch ${p.torch}`;
  };
  add('dcgan', {
    workload: 'DCGAN, batch 64', unit: 'ms/step', target: 6, note: `ganStep via the trainer; ${steps('dcgan')} timed steps${paramNote('dcgan')}`,
    tfjs: t('dcgan')?.msPerStep, tfjsCpu: t('dcgan')?.cpuMsPerStep, cpuShare: { tfjs: t('dcgan')?.cpuShare },
  });
  const modelRows: Array<[string, string, string]> = [
    ['gan-512', 'course GAN (MLP), batch 512', 'ganStep via the trainer'],
    ['vae-course', 'course VAE 784-128-100, batch 3000', 'vaeStep via the trainer'],
    ['ae', 'stacked AE 784-128-100, fine-tuning, batch 3000', 'autoencoderStep(finetune) via the trainer, MSE'],
    ['flow', 'flow matching, U-Net [32, 64] (4.4), batch 128', `flowMatchingStep via the trainer, EMA${backend === 'wasm' ? ', registerFastConvolutions()' : ''}`],
  ];
  for (const [name, workload, how] of modelRows) {
    add(name, {
      workload, unit: 'ms/step', note: `${how}; ${steps(name)} timed steps${paramNote(name)}`,
      tfjs: t(name)?.msPerStep, tfjsCpu: t(name)?.cpuMsPerStep, cpuShare: { tfjs: t(name)?.cpuShare },
    });
  }
  const rbmRow = extra.find((r) => r.name.startsWith('rbm 784-100 iteration + pseudo-likelihood'));
  add('rbm', {
    workload: 'RBM 784-100, batch 10: one iteration (PCD-1) + pseudo-likelihood', unit: 's/iteration',
    tfjs: rbmRow && rbmRow.ms / 1000,
    note: `tfjs: bench/rbm.ts${rbmRow?.note ? ` (${rbmRow.note})` : ''}; PyTorch columns: scikit-learn BernoulliRBM, float32, n_iter=1, verbose`,
  });

  return {
    date: new Date().toISOString(),
    backend,
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown CPU', loadStart, loadEnd: os.loadavg()[0]! },
    versions: {
      tfjs: tf.version.tfjs,
      torch: servers.one?.header.torch,
      sklearn: servers.one?.header.sklearn,
      torchThreads: servers.default?.header.threads,
      torchDefaultThreads: servers.default?.header.defaultThreads,
    },
    comparison,
    extra,
    tfjsTimings: timings,
    torch,
    params,
    failures,
  };
}

function parseArgs(argv: readonly string[]): BenchOptions {
  const options: BenchOptions = { backend: 'wasm', quick: false, torch: true };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--backend') {
      const value = argv[++i];
      if (value !== 'wasm' && value !== 'cpu' && value !== 'tensorflow') throw new Error(`--backend: expected wasm, cpu or tensorflow, got ${value}`);
      options.backend = value;
    } else if (arg === '--quick') options.quick = true;
    else if (arg === '--no-torch') options.torch = false;
    else if (arg === '--torch-one-thread') options.torchOneThread = true;
    else if (arg === '--rerender') options.rerender = true;
    else if (arg === '--only') options.only = new Set((argv[++i] ?? '').split(',').filter(Boolean));
    else if (arg === '--kernel-groups') options.kernelGroups = new Set((argv[++i] ?? '').split(',').filter(Boolean));
    else throw new Error(`unknown argument ${arg} (use --backend wasm|cpu, --quick, --no-torch, --torch-one-thread, --only matmul,gan,vae,dcgan,rbm,gan-512,vae-course,ae,flow,kernels,engine,preview, --kernel-groups matmul,conv,fastconv,steps,mlp,batch)`);
  }
  return options;
}

/**
 * Only a full run on wasm writes bench/results.{md,json} (the table the README quotes);
 * other backends and partial runs (--quick, --only, --no-torch) write beside it.
 */
export function resultsBaseName(options: BenchOptions): string {
  const partial = options.quick || options.only !== undefined || !options.torch || options.torchOneThread === true;
  return `results${options.backend === 'wasm' ? '' : `-${options.backend}`}${partial ? '-partial' : ''}`;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (options.rerender) {
    // Re-renders bench/<base>.md from bench/<base>.json (after a change to the Markdown only).
    const base = resultsBaseName(options);
    const report = JSON.parse(await readFile(path.join(BENCH_DIR, `${base}.json`), 'utf8')) as BenchReport;
    report.comparison.forEach((r) => (r.key ??= keyOf(r.workload)));
    await writeFile(path.join(BENCH_DIR, `${base}.md`), toMarkdown(report));
    console.log(`re-rendered bench/${base}.md`);
    return;
  }
  const report = await runBench(options, (line) => console.log(line));
  const markdown = toMarkdown(report);
  const base = resultsBaseName(options);
  await writeFile(path.join(BENCH_DIR, `${base}.md`), markdown);
  await writeFile(path.join(BENCH_DIR, `${base}.json`), JSON.stringify(report, null, 2) + '\n');
  console.log('\n' + markdown);
  console.log(`wrote bench/${base}.md and bench/${base}.json`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
