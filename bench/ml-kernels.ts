/**
 * Timings of the tfjs kernels our models lean on, and of our wasm fixes
 * (src/ml/kernels): matMul with and without transposes, conv2d's two backprop kernels on
 * a DCGAN-like layer, and one training step of a Dense MLP. Each figure is the median
 * wall time of `repeats` runs after one warm-up, including the read-back (dataSync);
 * on a shared machine expect ±20 %.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmFixes, unregisterWasmFixes, type WasmFix } from '../src/ml/kernels/index.ts';
import { Rng } from '../src/ml/random.ts';

export interface KernelBenchRow {
  name: string;
  ms: number;
  gflops?: number;
  note?: string;
}

export interface BenchKernelsOptions {
  repeats?: number;
  /** Which backends to time; default both. */
  backends?: Array<'wasm' | 'cpu'>;
}

function median(values: number[]): number {
  const sorted = [...values].sort((x, y) => x - y);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Median ms of `run` (which returns tensors to read back and dispose). */
function timeMedian(run: () => tf.Tensor | tf.Tensor[], repeats: number): number {
  const once = () => {
    const start = performance.now();
    const out = run();
    for (const t of Array.isArray(out) ? out : [out]) {
      t.dataSync();
      t.dispose();
    }
    return performance.now() - start;
  };
  once();
  return median(Array.from({ length: repeats }, once));
}

function row(name: string, ms: number, flops?: number, note?: string): KernelBenchRow {
  const r: KernelBenchRow = { name, ms: Math.round(ms * 100) / 100 };
  if (flops !== undefined) r.gflops = Math.round((flops / (ms * 1e6)) * 10) / 10;
  if (note !== undefined) r.note = note;
  return r;
}

function matMulRows(backend: string, repeats: number, rng: Rng, suffix = ''): KernelBenchRow[] {
  const [m, k, n] = [256, 784, 512];
  const flops = 2 * m * k * n;
  const a = tf.randomNormal([m, k], 0, 1, 'float32', rng.seed()); // [256, 784]
  const b = tf.randomNormal([k, n], 0, 1, 'float32', rng.seed()); // [784, 512]
  const aT = tf.randomNormal([k, m], 0, 1, 'float32', rng.seed()); // [784, 256]
  const bT = tf.randomNormal([n, k], 0, 1, 'float32', rng.seed()); // [512, 784]
  const rows = [
    row(`matMul 256x784x512 ${backend}${suffix}`, timeMedian(() => tf.matMul(a, b), repeats), flops),
    row(`matMul 256x784x512 transposeA ${backend}${suffix}`, timeMedian(() => tf.matMul(aT, b, true, false), repeats), flops),
    row(`matMul 256x784x512 transposeB ${backend}${suffix}`, timeMedian(() => tf.matMul(a, bT, false, true), repeats), flops),
  ];
  tf.dispose([a, b, aT, bT]);
  return rows;
}

/** DCGAN discriminator-like layer: [64, 14, 14, 64] → [64, 7, 7, 128], 4×4 kernels, stride 2, 'same'. */
function convRows(backend: string, repeats: number, rng: Rng, suffix = ''): KernelBenchRow[] {
  const xShape: [number, number, number, number] = [64, 14, 14, 64];
  const filterShape: [number, number, number, number] = [4, 4, 64, 128];
  const x = tf.randomNormal(xShape, 0, 1, 'float32', rng.seed());
  const w = tf.randomNormal(filterShape, 0, 0.1, 'float32', rng.seed());
  const dy = tf.randomNormal([64, 7, 7, 128], 0, 1, 'float32', rng.seed());
  const flops = 2 * 64 * 7 * 7 * 4 * 4 * 64 * 128;
  const attrs = { strides: [2, 2], pad: 'same', dataFormat: 'NHWC', dimRoundingMode: undefined };
  const rows = [
    row(`conv2d forward dcgan ${backend}${suffix}`, timeMedian(() => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same'), repeats), flops),
    row(`Conv2DBackpropFilter dcgan ${backend}${suffix}`, timeMedian(
      () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { ...attrs, filterShape } as unknown as tf.NamedAttrMap) as tf.Tensor,
      repeats), flops),
    row(`Conv2DBackpropInput dcgan ${backend}${suffix}`, timeMedian(
      () => tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, { ...attrs, inputShape: xShape } as unknown as tf.NamedAttrMap) as tf.Tensor,
      repeats), flops),
  ];
  tf.dispose([x, w, dy]);
  return rows;
}

/** One forward+backward step (gradients only, no optimizer) of a 784-1024-512-256-1 Dense MLP, batch 64. */
function mlpStepRow(backend: string, repeats: number, rng: Rng, suffix: string, note?: string): KernelBenchRow {
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
  const y = tf.randomUniform([64, 1], 0, 1, 'float32', rng.seed()).round(); // [64, 1]
  let mulAdds = 0;
  for (let i = 1; i < sizes.length; i++) mulAdds += sizes[i - 1]! * sizes[i]!;
  const flops = 3 * 2 * 64 * mulAdds; // forward + two backward matMuls per layer
  const ms = timeMedian(() => tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => {
      const logits = model.apply(x) as tf.Tensor2D; // [64, 1]
      return tf.losses.sigmoidCrossEntropy(y, logits) as tf.Scalar;
    });
    return [value, ...Object.values(grads)];
  }), repeats);
  model.dispose();
  tf.dispose([x, y]);
  return row(`mlp 784-1024-512-256-1 step b64 ${backend}${suffix}`, ms, flops, note);
}

export async function benchKernels(options: BenchKernelsOptions = {}): Promise<KernelBenchRow[]> {
  const repeats = options.repeats ?? 7;
  const backends = options.backends ?? ['wasm', 'cpu'];
  const previous = tf.getBackend() as string | undefined;
  const rows: KernelBenchRow[] = [];
  const matMulFixes: WasmFix[] = ['untransposedMatMul', 'matMulGradients'];
  try {
    if (backends.includes('wasm')) {
      await tf.setBackend('wasm');
      // tfjs's own kernels first (Conv2DBackpropFilter has none on wasm: keep ours).
      unregisterWasmFixes();
      registerWasmFixes(['Conv2DBackpropFilter']);
      rows.push(...matMulRows('wasm', repeats, new Rng(1), ' (tfjs)'));
      rows.push(...convRows('wasm', repeats, new Rng(2), ' (tfjs; BackpropFilter ours)'));
      rows.push(mlpStepRow('wasm', repeats, new Rng(3), ' no fix'));
      registerWasmFixes(['matMulGradients']);
      rows.push(mlpStepRow('wasm', repeats, new Rng(3), ' gradient configs only',
        'Dense with linear activation still transposes inside tf.fused.matMul'));
      unregisterWasmFixes(matMulFixes);
      registerWasmFixes(['untransposedMatMul']);
      rows.push(mlpStepRow('wasm', repeats, new Rng(3), ' untransposing kernels only'));
      registerWasmFixes();
      rows.push(...matMulRows('wasm', repeats, new Rng(1), ' (fixes)'));
      rows.push(...convRows('wasm', repeats, new Rng(2), ' (fixes)'));
      rows.push(mlpStepRow('wasm', repeats, new Rng(3), ' all fixes'));
    }
    if (backends.includes('cpu')) {
      await tf.setBackend('cpu');
      rows.push(...matMulRows('cpu', repeats, new Rng(1)));
      rows.push(...convRows('cpu', Math.max(3, repeats >> 1), new Rng(2)));
      rows.push(mlpStepRow('cpu', Math.max(3, repeats >> 1), new Rng(3), ''));
    }
  } finally {
    if (backends.includes('wasm')) registerWasmFixes();
    if (previous) await tf.setBackend(previous);
  }
  return rows;
}
