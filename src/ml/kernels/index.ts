/**
 * Our fixes for the tfjs 4.22 wasm backend, registered together by `registerWasmFixes`
 * (idempotent; `initBackend` calls it when wasm is chosen):
 *
 * - `Conv2DBackpropFilter`: missing on wasm; a dilated Conv2D on permuted x and dy.
 * - `BatchMatMul`, `_FusedMatMul`: transposed operands are transposed explicitly first
 *   (transposed matMul is ~10–30× slower on wasm); covers forward and every gradient.
 * - `Conv2DBackpropInput`: sub-pixel formulation (one Conv2D + pixel shuffle), exact and
 *   1.3–9× faster than wasm's direct loop on every shape we timed (strides 1 and 2).
 * - `UnsortedSegmentSum`: missing on wasm; the gradient of tf.gather. JS on the heap.
 * - Gradient configs for BatchMatMul/_FusedMatMul that transpose explicitly; global
 *   (tfjs keeps one gradient registry for all backends) and exact on every backend.
 *
 * Medians from bench/ml-kernels.ts on the shared 2-core machine (2026-11-21, noisy):
 * matMul 256×784×512 transposeA 172 → 7 ms, transposeB 92 → 11 ms (untransposed 7 ms);
 * DCGAN layer [64,14,14,64]→[64,7,7,128], 4×4, stride 2: Conv2DBackpropInput
 * 302 → 46–94 ms, Conv2DBackpropFilter 33–84 ms (forward conv2d 30 ms);
 * stride 1, 5×5 'valid', [64,12,12,32]←[64,8,8,64]: Conv2DBackpropInput 271 → 47 ms;
 * 784-1024-512-256-1 Dense MLP forward+backward, batch 64: 362 → 34 ms.
 */
import * as tf from '@tensorflow/tfjs';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter.ts';
import { registerSubPixelConv2dBackpropInput, unregisterSubPixelConv2dBackpropInput } from './conv2d-backprop-input.ts';
import { registerMatMulGradients, unregisterMatMulGradients } from './matmul-gradients.ts';
import { registerUntransposedMatMul, unregisterUntransposedMatMul } from './matmul-untransposed.ts';
import { unsortedSegmentSumConfig } from './unsorted-segment-sum.ts';

export { conv2dBackpropFilterConfig, conv2dBackpropFilterWasm } from './conv2d-backprop-filter.ts';
export { registerSubPixelConv2dBackpropInput, unregisterSubPixelConv2dBackpropInput } from './conv2d-backprop-input.ts';
export { batchMatMulGradConfig, fusedMatMulGradConfig, registerMatMulGradients, unregisterMatMulGradients } from './matmul-gradients.ts';
export { registerUntransposedMatMul, unregisterUntransposedMatMul } from './matmul-untransposed.ts';
export { unsortedSegmentSumConfig, unsortedSegmentSumWasm } from './unsorted-segment-sum.ts';

export type WasmFix =
  | 'Conv2DBackpropFilter' | 'UnsortedSegmentSum' | 'untransposedMatMul' | 'matMulGradients' | 'subPixelConv2DBackpropInput';
export const allWasmFixes: readonly WasmFix[] = [
  'Conv2DBackpropFilter', 'UnsortedSegmentSum', 'untransposedMatMul', 'matMulGradients', 'subPixelConv2DBackpropInput',
];

/** Kernels tfjs lacks on wasm, registered unless something already is. */
const missingKernels = { Conv2DBackpropFilter: conv2dBackpropFilterConfig, UnsortedSegmentSum: unsortedSegmentSumConfig } as const;

/** Registers the chosen fixes (all by default). Needs @tensorflow/tfjs-backend-wasm imported. */
export function registerWasmFixes(fixes: readonly WasmFix[] = allWasmFixes): void {
  for (const [name, config] of Object.entries(missingKernels)) {
    if (fixes.includes(name as WasmFix) && tf.getKernel(name, 'wasm') == null) tf.registerKernel(config);
  }
  if (fixes.includes('untransposedMatMul')) registerUntransposedMatMul();
  if (fixes.includes('matMulGradients')) registerMatMulGradients();
  if (fixes.includes('subPixelConv2DBackpropInput')) registerSubPixelConv2dBackpropInput();
}

/** Removes the chosen fixes, restoring tfjs's own kernels and gradients (benchmarks, tests). */
export function unregisterWasmFixes(fixes: readonly WasmFix[] = allWasmFixes): void {
  for (const [name, config] of Object.entries(missingKernels)) {
    if (fixes.includes(name as WasmFix) && tf.getKernel(name, 'wasm') === config) tf.unregisterKernel(name, 'wasm');
  }
  if (fixes.includes('untransposedMatMul')) unregisterUntransposedMatMul();
  if (fixes.includes('matMulGradients')) unregisterMatMulGradients();
  if (fixes.includes('subPixelConv2DBackpropInput')) unregisterSubPixelConv2dBackpropInput();
}
