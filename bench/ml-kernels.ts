/**
 * Timings of the tfjs kernels our models lean on, and of our wasm fixes
 * (src/ml/kernels): matMul with and without transposes, conv2d's two backprop kernels on
 * a DCGAN-like layer, and one forward+backward pass of a Dense MLP. Each figure is the
 * median wall time of `repeats` runs after one warm-up, including the read-back
 * (dataSync); variants being compared run interleaved. On a shared machine expect ±20 %
 * and more; compare rows of one run.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmFixes, unregisterWasmFixes, type WasmFix } from '../src/ml/kernels/index.ts';
import { convGeometry, convFlops } from '../src/ml/kernels/conv-im2col.ts';
import { convMethod, registerFastConvolutions, unregisterFastConvolutions, type FastConvKernel } from '../src/ml/kernels/fast-conv.ts';
import { createDcDiscriminator, createDcGenerator } from '../src/ml/models/dcgan.ts';
import { COURSE_ADAM, ganStep } from '../src/ml/models/gan.ts';
import { createStepRunner } from '../src/ml/trainer.ts';
import { Rng } from '../src/ml/random.ts';

export interface KernelBenchRow {
  name: string;
  ms: number;
  gflops?: number;
  /** Median process CPU time: less inflated than wall time when other processes take the cores. */
  cpuMs?: number;
  note?: string;
}

export interface BenchKernelsOptions {
  repeats?: number;
  /** Which backends to time; default both. */
  backends?: Array<'wasm' | 'cpu'>;
  /** Only these groups of rows (default all): matmul, conv, fastconv, steps, mlp, batch. */
  groups?: ReadonlySet<string>;
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

interface Variant {
  /** Registers/unregisters fixes for this variant before each of its runs. */
  setup?: () => void;
  run: () => tf.Tensor | tf.Tensor[];
}

interface Sample {
  ms: number;
  cpuMs: number;
}

function timeOnce(variant: Variant): Sample {
  variant.setup?.();
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const out = variant.run();
  for (const t of Array.isArray(out) ? out : [out]) {
    t.dataSync();
    t.dispose();
  }
  const ms = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  return { ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/**
 * Median ms of each variant; runs are interleaved (A B C A B C …) after one warm-up
 * each, so that load from other processes drifts into every variant alike.
 */
function timeInterleaved(variants: Variant[], repeats: number): number[] {
  return timeInterleavedCpu(variants, repeats).map((s) => s.ms);
}

/** Like timeInterleaved, with the median process CPU time of each variant too. */
function timeInterleavedCpu(variants: Variant[], repeats: number): Sample[] {
  variants.forEach(timeOnce);
  const times = variants.map(() => [] as Sample[]);
  for (let r = 0; r < repeats; r++) variants.forEach((v, i) => times[i]!.push(timeOnce(v)));
  return times.map((samples) => ({ ms: median(samples.map((s) => s.ms)), cpuMs: median(samples.map((s) => s.cpuMs)) }));
}

function row(name: string, ms: number | Sample, flops?: number, note?: string): KernelBenchRow {
  const sample = typeof ms === 'number' ? { ms, cpuMs: undefined } : ms;
  ms = sample.ms;
  const r: KernelBenchRow = { name, ms: Math.round(ms * 100) / 100 };
  if (sample.cpuMs !== undefined) r.cpuMs = Math.round(sample.cpuMs * 100) / 100;
  if (flops !== undefined) r.gflops = Math.round((flops / (ms * 1e6)) * 10) / 10;
  if (note !== undefined) r.note = note;
  return r;
}

/** 256×784×512 matMul untransposed, transposeA, transposeB; on wasm also with our untransposing kernels. */
function matMulRows(backend: 'wasm' | 'cpu', repeats: number, rng: Rng): KernelBenchRow[] {
  const [m, k, n] = [256, 784, 512];
  const flops = 2 * m * k * n;
  const a = tf.randomNormal([m, k], 0, 1, 'float32', rng.seed()); // [256, 784]
  const b = tf.randomNormal([k, n], 0, 1, 'float32', rng.seed()); // [784, 512]
  const aT = tf.randomNormal([k, m], 0, 1, 'float32', rng.seed()); // [784, 256]
  const bT = tf.randomNormal([n, k], 0, 1, 'float32', rng.seed()); // [512, 784]
  const cases: Array<[string, () => tf.Tensor]> = [
    ['', () => tf.matMul(a, b)],
    [' transposeA', () => tf.matMul(aT, b, true, false)],
    [' transposeB', () => tf.matMul(a, bT, false, true)],
  ];
  const rows: KernelBenchRow[] = [];
  for (const [label, run] of cases) {
    if (backend === 'cpu') {
      rows.push(row(`matMul 256x784x512${label} cpu`, timeInterleaved([{ run }], repeats)[0]!, flops));
      continue;
    }
    const [tfjs, ours] = timeInterleaved([
      { setup: () => unregisterWasmFixes(['untransposedMatMul']), run },
      { setup: () => registerWasmFixes(['untransposedMatMul']), run },
    ], repeats);
    rows.push(row(`matMul 256x784x512${label} wasm (tfjs kernel)`, tfjs!, flops));
    if (label) rows.push(row(`matMul 256x784x512${label} wasm (untransposing fix)`, ours!, flops, 'explicit Transpose, then untransposed matMul'));
  }
  tf.dispose([a, b, aT, bT]);
  return rows;
}

/** DCGAN discriminator-like layer on wasm: [64, 14, 14, 64] → [64, 7, 7, 128], 4×4 kernels, stride 2, 'same'. */
function convRows(repeats: number, rng: Rng): KernelBenchRow[] {
  const xShape: [number, number, number, number] = [64, 14, 14, 64];
  const filterShape: [number, number, number, number] = [4, 4, 64, 128];
  const x = tf.randomNormal(xShape, 0, 1, 'float32', rng.seed());
  const w = tf.randomNormal(filterShape, 0, 0.1, 'float32', rng.seed());
  const dy = tf.randomNormal([64, 7, 7, 128], 0, 1, 'float32', rng.seed());
  const flops = 2 * 64 * 7 * 7 * 4 * 4 * 64 * 128; // the same for all three
  const attrs = { strides: [2, 2], pad: 'same', dataFormat: 'NHWC' };
  const backpropInput = () =>
    tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, { ...attrs, inputShape: xShape } as unknown as tf.NamedAttrMap) as tf.Tensor;
  const [forward, filter, inputTfjs, inputOurs] = timeInterleaved([
    { run: () => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same') },
    { run: () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape } as unknown as tf.NamedAttrMap) as tf.Tensor },
    { setup: () => unregisterWasmFixes(['subPixelConv2DBackpropInput']), run: backpropInput },
    { setup: () => registerWasmFixes(['subPixelConv2DBackpropInput']), run: backpropInput },
  ], repeats);
  tf.dispose([x, w, dy]);
  return [
    row('conv2d forward dcgan wasm', forward!, flops, 'reference: XNNPACK convolution'),
    row('Conv2DBackpropFilter dcgan wasm (our kernel)', filter!, flops, 'tfjs has none on wasm'),
    row('Conv2DBackpropInput dcgan wasm (tfjs kernel)', inputTfjs!, flops),
    row('Conv2DBackpropInput dcgan wasm (sub-pixel fix)', inputOurs!, flops, 'one Conv2D + pixel shuffle'),
  ];
}

type Pad = 'same' | 'valid';
/** [label, x shape, kernel, outChannels, stride, pad]: the convolutions of our models at batch 64. */
const modelConvShapes: Array<[string, [number, number, number, number], number, number, number, Pad]> = [
  ['DCGAN D1/G2 28x28x1->14x14x64 4x4 s2', [64, 28, 28, 1], 4, 64, 2, 'same'],
  ['DCGAN D2/G1 14x14x64->7x7x128 4x4 s2', [64, 14, 14, 64], 4, 128, 2, 'same'],
  ['U-Net 28x28x32 3x3 s1', [64, 28, 28, 32], 3, 32, 1, 'same'],
  ['U-Net 14x14x64 3x3 s1', [64, 14, 14, 64], 3, 64, 1, 'same'],
  ['U-Net in 28x28x1->32 3x3', [64, 28, 28, 1], 3, 32, 1, 'same'],
  ['U-Net out 28x28x32->1 3x3', [64, 28, 28, 32], 3, 1, 1, 'same'],
  ['U-Net down 28x28x32->14x14x64 4x4 s2', [64, 28, 28, 32], 4, 64, 2, 'same'],
  ['U-Net down 28x28x32->14x14x64 3x3 s2', [64, 28, 28, 32], 3, 64, 2, 'same'],
  ['classifier 28x28x1->24x24x16 5x5', [64, 28, 28, 1], 5, 16, 1, 'valid'],
  ['classifier 12x12x16->8x8x32 5x5', [64, 12, 12, 16], 5, 32, 1, 'valid'],
];

const useFastConv = { setup: () => registerFastConvolutions() };
const withoutFastConv = { setup: () => unregisterFastConvolutions() };

/**
 * Each kernel of each model convolution on wasm: today's kernels (tfjs's, with our
 * earlier fixes) against registerFastConvolutions() (src/ml/kernels/fast-conv.ts),
 * interleaved. The note names the method 'auto' picks; 'replaced' = the old kernel.
 */
function fastConvRows(repeats: number, rng: Rng): KernelBenchRow[] {
  const rows: KernelBenchRow[] = [];
  // The ceiling in this run: untransposed matMuls of the DCGAN D2 im2col shapes.
  for (const [m, k, n] of [[3136, 1024, 128], [1024, 3136, 128]] as const) {
    const a = tf.randomNormal([m, k], 0, 1, 'float32', rng.seed());
    const b = tf.randomNormal([k, n], 0, 1, 'float32', rng.seed());
    const [t] = timeInterleavedCpu([{ run: () => tf.matMul(a, b) }], repeats);
    rows.push(row(`matMul ${m}x${k}x${n} (reference)`, t!, 2 * m * k * n, 'the matMul ceiling in this run'));
    tf.dispose([a, b]);
  }
  for (const [label, xShape, k, co, stride, pad] of modelConvShapes) {
    const filterShape: [number, number, number, number] = [k, k, xShape[3], co];
    const g = convGeometry(xShape, filterShape, stride, pad)!;
    const x = tf.randomNormal(xShape, 0, 1, 'float32', rng.seed()) as tf.Tensor4D;
    const w = tf.randomNormal(filterShape, 0, 0.1, 'float32', rng.seed()) as tf.Tensor4D;
    const dy = tf.randomNormal([g.batch, g.outH, g.outW, co], 0, 1, 'float32', rng.seed());
    const attrs = { strides: stride, pad, dataFormat: 'NHWC' };
    const kernels: Array<[FastConvKernel, () => tf.Tensor]> = [
      ['Conv2D', () => tf.conv2d(x, w, stride, pad)],
      ['Conv2DBackpropFilter', () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape } as unknown as tf.NamedAttrMap) as tf.Tensor],
      ['Conv2DBackpropInput', () => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, { ...attrs, inputShape: xShape } as unknown as tf.NamedAttrMap) as tf.Tensor],
    ];
    for (const [kernel, run] of kernels) {
      const method = convMethod(kernel, g);
      if (method === 'replaced') {
        // 'auto' keeps the old kernel here: time it once, as both old and new.
        const [old] = timeInterleavedCpu([{ ...withoutFastConv, run }], repeats);
        rows.push(row(`${kernel} ${label} (old = new)`, old!, convFlops(g), 'fast-conv keeps the old kernel'));
        continue;
      }
      const [old, fast] = timeInterleavedCpu([{ ...withoutFastConv, run }, { ...useFastConv, run }], repeats);
      rows.push(row(`${kernel} ${label} (old)`, old!, convFlops(g)));
      rows.push(row(`${kernel} ${label} (fast-conv)`, fast!, convFlops(g), `${method}; ${(old!.ms / fast!.ms).toFixed(2)}x wall, ${(old!.cpuMs / fast!.cpuMs).toFixed(2)}x CPU`));
    }
    tf.dispose([x, w, dy]);
  }
  return rows;
}

/** A small 32/64-channel U-Net, forward + backward (gradients of every filter, no optimiser), batch 64. */
function unetRows(repeats: number, rng: Rng): KernelBenchRow[] {
  const shapes: Array<[number, number, number, number]> = [
    [3, 3, 1, 32], [3, 3, 32, 32], [4, 4, 32, 64], [3, 3, 64, 64], [4, 4, 32, 64], [3, 3, 32, 32], [3, 3, 32, 1],
  ];
  const ws = shapes.map((s) => tf.variable(tf.randomNormal(s, 0, Math.sqrt(2 / (s[0] * s[1] * s[2])), 'float32', rng.seed())));
  const x = tf.randomUniform([64, 28, 28, 1], 0, 1, 'float32', rng.seed()) as tf.Tensor4D;
  const [inW, c1, down, mid, up, c2, outW] = ws as tf.Variable<tf.Rank.R4>[];
  const run = () => tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      const h0 = tf.relu(tf.conv2d(x, inW!, 1, 'same')); // [64, 28, 28, 32]
      const h1 = tf.relu(tf.conv2d(h0, c1!, 1, 'same')); // [64, 28, 28, 32]
      const h2 = tf.relu(tf.conv2d(h1, down!, 2, 'same')); // [64, 14, 14, 64]
      const h3 = tf.relu(tf.conv2d(h2, mid!, 1, 'same')); // [64, 14, 14, 64]
      const u = tf.relu(tf.conv2dTranspose(h3, up!, [64, 28, 28, 32], 2, 'same')); // [64, 28, 28, 32]
      const h4 = tf.relu(tf.conv2d(tf.add(u, h1) as tf.Tensor4D, c2!, 1, 'same')); // [64, 28, 28, 32]
      const out = tf.conv2d(h4, outW!, 1, 'same'); // [64, 28, 28, 1]
      return tf.mean(tf.square(tf.sub(out, x))) as tf.Scalar;
    }, ws);
    return [value, ...Object.values(grads)];
  });
  // Conv flops: forward, filter gradient and input gradient of each layer (none for the input of the first).
  const perImage = [28 * 28 * 9 * 32, 28 * 28 * 9 * 32 * 32, 14 * 14 * 16 * 32 * 64, 14 * 14 * 9 * 64 * 64, 14 * 14 * 16 * 32 * 64, 28 * 28 * 9 * 32 * 32, 28 * 28 * 9 * 32];
  const flops = perImage.reduce((sum, macs, i) => sum + 2 * 64 * macs * (i === 0 ? 2 : 3), 0);
  const [old, fast] = timeInterleavedCpu([{ ...withoutFastConv, run }, { ...useFastConv, run }], repeats);
  tf.dispose([x, ...ws]);
  return [
    row('U-Net 28x28 32/64 ch fwd+bwd b64 (old)', old!, flops, 'convolution FLOPs only'),
    row('U-Net 28x28 32/64 ch fwd+bwd b64 (fast-conv)', fast!, flops, `${(old!.ms / fast!.ms).toFixed(2)}x wall, ${(old!.cpuMs / fast!.cpuMs).toFixed(2)}x CPU`),
  ];
}

/**
 * One DCGAN training step at batch 64 as the report trains it (ganStep through the
 * trainer's step runner: D on real and fake, then G; Adam), old kernels vs fast-conv.
 */
function dcganRows(repeats: number, rng: Rng): KernelBenchRow[] {
  const models = { generator: createDcGenerator({ latentDim: 10, rng }), discriminator: createDcDiscriminator({ rng }) };
  const runner = createStepRunner({
    generator: { variables: models.generator.variables, optimizer: COURSE_ADAM },
    discriminator: { variables: models.discriminator.variables, optimizer: COURSE_ADAM },
  });
  const real = tf.randomUniform([64, 784], -1, 1, 'float32', rng.seed()) as tf.Tensor2D;
  const stepRng = new Rng(5);
  // The runner reads its metrics back itself; return a dummy so timeOnce has something to dispose.
  const run = () => {
    runner.run({ epoch: 0, index: 0, globalStep: 0, x: real, rng: stepRng }, (ctx) => ganStep(ctx, models));
    return tf.scalar(0);
  };
  const [old, fast] = timeInterleavedCpu([{ ...withoutFastConv, run }, { ...useFastConv, run }], repeats);
  runner.dispose();
  models.generator.dispose();
  models.discriminator.dispose();
  real.dispose();
  return [
    row('DCGAN step b64 (old)', old!),
    row('DCGAN step b64 (fast-conv)', fast!, undefined, `${(old!.ms / fast!.ms).toFixed(2)}x wall, ${(old!.cpuMs / fast!.cpuMs).toFixed(2)}x CPU`),
  ];
}

/** A 64-row batch from a resident [10000, 784] tensor (tf.slice) vs a tensor from a Float32Array subarray. */
function batchRows(repeats: number): KernelBenchRow[] {
  const data = new Float32Array(10_000 * 784);
  for (let i = 0; i < data.length; i++) data[i] = (i % 255) / 255;
  const resident = tf.tensor2d(data, [10_000, 784]); // [10000, 784]
  const [slice, subarray] = timeInterleaved([
    { run: () => tf.slice(resident, [1000, 0], [64, 784]) },
    { run: () => tf.tensor2d(data.subarray(1000 * 784, 1064 * 784), [64, 784]) },
  ], repeats);
  resident.dispose();
  return [
    row('batch of 64 via tf.slice of resident [10000,784] wasm', slice!, undefined, 'copies the whole tensor; grows with its size'),
    row('batch of 64 via tensor2d(Float32Array subarray) wasm', subarray!, undefined, 'what src/ml/data/batches.ts does'),
  ];
}

/** One forward+backward step (gradients, no optimiser) of a 784-1024-512-256-1 tf.layers Dense MLP, batch 64, on wasm. */
function mlpRows(repeats: number, rng: Rng): KernelBenchRow[] {
  const sizes = [784, 1024, 512, 256, 1];
  const model = tf.sequential();
  sizes.slice(1).forEach((units, i) => {
    model.add(tf.layers.dense({
      units,
      activation: i === sizes.length - 2 ? 'linear' : 'relu',
      kernelInitializer: tf.initializers.glorotUniform({ seed: rng.seed() }),
      ...(i === 0 ? { inputShape: [784] } : {}),
    }));
  });
  const x = tf.randomUniform([64, 784], 0, 1, 'float32', rng.seed()); // [64, 784]
  const y = tf.tidy(() => tf.round(tf.randomUniform([64, 1], 0, 1, 'float32', rng.seed()))); // [64, 1]
  let mulAdds = 0;
  for (let i = 1; i < sizes.length; i++) mulAdds += sizes[i - 1]! * sizes[i]!;
  const flops = 3 * 2 * 64 * mulAdds; // forward + two backward matMuls per layer
  const run = () => tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      const logits = model.apply(x) as tf.Tensor2D; // [64, 1]
      return tf.losses.sigmoidCrossEntropy(y, logits) as tf.Scalar;
    });
    return [value, ...Object.values(grads)];
  });
  const matMulFixes: WasmFix[] = ['untransposedMatMul', 'matMulGradients'];
  const only = (fixes: WasmFix[]) => () => {
    unregisterWasmFixes(matMulFixes);
    registerWasmFixes(fixes);
  };
  const [none, gradients, kernels, both] = timeInterleaved([
    { setup: only([]), run },
    { setup: only(['matMulGradients']), run },
    { setup: only(['untransposedMatMul']), run },
    { setup: only(matMulFixes), run },
  ], repeats);
  model.dispose();
  tf.dispose([x, y]);
  const name = 'mlp 784-1024-512-256-1 fwd+bwd b64 wasm';
  return [
    row(`${name} (tfjs)`, none!, flops),
    row(`${name} (gradient configs)`, gradients!, flops, 'misses the linear output layer: tf.fused.matMul records its own gradient'),
    row(`${name} (untransposing kernels)`, kernels!, flops),
    row(`${name} (both)`, both!, flops),
  ];
}

/**
 * Times on wasm (our fixes against tfjs's own kernels) and matMul on cpu. Leaves every wasm
 * fix registered and restores the previous backend. cpu convolutions are left out: cpu's
 * Conv2DBackpropFilter takes ~2 minutes on the DCGAN shape.
 */
export async function benchKernels(options: BenchKernelsOptions = {}): Promise<KernelBenchRow[]> {
  const repeats = options.repeats ?? 7;
  const backends = options.backends ?? ['wasm', 'cpu'];
  const previous = tf.getBackend() as string | undefined;
  const rows: KernelBenchRow[] = [];
  try {
    if (backends.includes('wasm')) {
      await tf.setBackend('wasm');
      registerWasmFixes();
      const wants = (group: string) => options.groups === undefined || options.groups.has(group);
      if (wants('matmul')) rows.push(...matMulRows('wasm', repeats, new Rng(1)));
      if (wants('conv')) {
        unregisterFastConvolutions(); // these rows time our earlier fixes against tfjs's kernels
        rows.push(...convRows(repeats, new Rng(2)));
      }
      if (wants('fastconv')) rows.push(...fastConvRows(repeats, new Rng(6)));
      if (wants('steps')) {
        rows.push(...unetRows(repeats, new Rng(7)));
        rows.push(...dcganRows(repeats + 2, new Rng(8)));
      }
      unregisterFastConvolutions();
      if (wants('mlp')) rows.push(...mlpRows(repeats, new Rng(3)));
      if (wants('batch')) rows.push(...batchRows(repeats));
    }
    if (backends.includes('cpu') && (options.groups === undefined || options.groups.has('matmul'))) {
      await tf.setBackend('cpu');
      rows.push(...matMulRows('cpu', Math.min(repeats, 3), new Rng(1)));
    }
  } finally {
    if (backends.includes('wasm')) {
      unregisterFastConvolutions(); // not yet part of registerWasmFixes; registerFastConvolutions() opts in
      registerWasmFixes();
    }
    if (previous) await tf.setBackend(previous);
  }
  return rows;
}
