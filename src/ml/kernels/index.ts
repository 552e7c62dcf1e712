/**
 * Our fixes for the tfjs 4.22 wasm backend, registered together by `registerWasmFixes`
 * (idempotent; `initBackend` calls it when wasm is chosen):
 *
 * - `Conv2DBackpropFilter`: missing on wasm; built from Transpose + dilated Conv2D.
 * - `BatchMatMul`, `_FusedMatMul`: transposed operands are transposed explicitly first
 *   (transposed matMul is ~10–30× slower on wasm); covers forward and every gradient.
 * - `Conv2DBackpropInput`: sub-pixel formulation (one Conv2D + DepthToSpace), faster
 *   than wasm's direct loop.
 * - Gradient configs for BatchMatMul/_FusedMatMul that transpose explicitly; global
 *   (tfjs keeps one gradient registry for all backends) and exact on every backend.
 */
import * as tf from '@tensorflow/tfjs';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter.ts';
import { registerSubPixelConv2dBackpropInput, unregisterSubPixelConv2dBackpropInput } from './conv2d-backprop-input.ts';
import { registerMatMulGradients, unregisterMatMulGradients } from './matmul-gradients.ts';
import { registerUntransposedMatMul, unregisterUntransposedMatMul } from './matmul-untransposed.ts';

export { conv2dBackpropFilterConfig, conv2dBackpropFilterWasm } from './conv2d-backprop-filter.ts';
export { registerSubPixelConv2dBackpropInput, unregisterSubPixelConv2dBackpropInput } from './conv2d-backprop-input.ts';
export { batchMatMulGradConfig, fusedMatMulGradConfig, registerMatMulGradients, unregisterMatMulGradients } from './matmul-gradients.ts';
export { registerUntransposedMatMul, unregisterUntransposedMatMul } from './matmul-untransposed.ts';

export type WasmFix = 'Conv2DBackpropFilter' | 'untransposedMatMul' | 'matMulGradients' | 'subPixelConv2DBackpropInput';
export const allWasmFixes: readonly WasmFix[] = [
  'Conv2DBackpropFilter', 'untransposedMatMul', 'matMulGradients', 'subPixelConv2DBackpropInput',
];

/** Registers the chosen fixes (all by default). Needs @tensorflow/tfjs-backend-wasm imported. */
export function registerWasmFixes(fixes: readonly WasmFix[] = allWasmFixes): void {
  if (fixes.includes('Conv2DBackpropFilter') && tf.getKernel('Conv2DBackpropFilter', 'wasm') == null) {
    tf.registerKernel(conv2dBackpropFilterConfig);
  }
  if (fixes.includes('untransposedMatMul')) registerUntransposedMatMul();
  if (fixes.includes('matMulGradients')) registerMatMulGradients();
  if (fixes.includes('subPixelConv2DBackpropInput')) registerSubPixelConv2dBackpropInput();
}

/** Removes the chosen fixes, restoring tfjs's own kernels and gradients (benchmarks, tests). */
export function unregisterWasmFixes(fixes: readonly WasmFix[] = allWasmFixes): void {
  if (fixes.includes('Conv2DBackpropFilter') && tf.getKernel('Conv2DBackpropFilter', 'wasm') === conv2dBackpropFilterConfig) {
    tf.unregisterKernel('Conv2DBackpropFilter', 'wasm');
  }
  if (fixes.includes('untransposedMatMul')) unregisterUntransposedMatMul();
  if (fixes.includes('matMulGradients')) unregisterMatMulGradients();
  if (fixes.includes('subPixelConv2DBackpropInput')) unregisterSubPixelConv2dBackpropInput();
}
