/**
 * wasm's BatchMatMul and _FusedMatMul are ~10–30× slower when asked to transpose an
 * operand than on untransposed operands (256×784×512: ~14 ms untransposed, ~90 ms with
 * transposeB, ~175 ms with transposeA). Transposing explicitly first (wasm Transpose is
 * memory-bound, < 1 ms there) and multiplying untransposed gives the same products.
 *
 * These wrappers replace the wasm kernels, so every caller benefits: forward passes,
 * the BatchMatMul gradient, and the custom gradient inside `tf.fused.matMul` (what
 * tf.layers Dense runs), which a registered gradient config cannot reach — that op
 * records its own closure on the tape.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelBackend, KernelConfig, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';
import { disposeInfos, replaceKernel, restoreKernel, transposeLastTwo } from './wasm-calls.ts';

const untransposedMark = Symbol.for('literate-report.ml.untransposedMatMul');

function untransposing(original: KernelConfig): KernelConfig {
  const kernelFunc: KernelConfig['kernelFunc'] = (args) => {
    const { inputs, attrs } = args;
    const backend = args.backend as KernelBackend;
    const { transposeA, transposeB } = (attrs ?? {}) as { transposeA?: boolean; transposeB?: boolean };
    if (!transposeA && !transposeB) return original.kernelFunc(args);
    const { a, b } = inputs as { a: TensorInfo; b: TensorInfo };
    const temps: TensorInfo[] = [];
    const a2 = transposeA ? transposeLastTwo(a, backend) : a;
    const b2 = transposeB ? transposeLastTwo(b, backend) : b;
    if (transposeA) temps.push(a2);
    if (transposeB) temps.push(b2);
    const newInputs: NamedTensorInfoMap = { ...inputs, a: a2, b: b2 };
    try {
      return original.kernelFunc({ inputs: newInputs, backend, attrs: { ...attrs, transposeA: false, transposeB: false } });
    } finally {
      disposeInfos(backend, ...temps);
    }
  };
  const config: KernelConfig = { kernelName: original.kernelName, backendName: original.backendName, kernelFunc };
  if (original.setupFunc) config.setupFunc = original.setupFunc;
  if (original.disposeFunc) config.disposeFunc = original.disposeFunc;
  return config;
}

/** Wraps wasm's BatchMatMul and _FusedMatMul; idempotent. Returns the kernels it wrapped. */
export function registerUntransposedMatMul(): string[] {
  const wrapped: string[] = [];
  for (const name of ['BatchMatMul', '_FusedMatMul']) {
    const original = tf.getKernel(name, 'wasm');
    if (original == null) throw new Error(`registerUntransposedMatMul: wasm kernel '${name}' is not registered`);
    if (replaceKernel(untransposing(original), untransposedMark)) wrapped.push(name);
  }
  return wrapped;
}

/** Puts tfjs's own wasm BatchMatMul and _FusedMatMul back (for benchmarks and tests). */
export function unregisterUntransposedMatMul(): void {
  for (const name of ['BatchMatMul', '_FusedMatMul']) restoreKernel(name, 'wasm', untransposedMark);
}
