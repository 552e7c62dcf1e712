/**
 * Faster convolutions on the wasm backend: `Conv2D`, `FusedConv2D`, `Conv2DBackpropFilter`
 * and `Conv2DBackpropInput` as im2col/col2im + one untransposed matMul (./conv-im2col.ts),
 * registered over whatever wasm kernel is there (tfjs's, or our fixes from ./index.ts) and
 * used only for the shapes where they measured faster (`convMethod`); every other call
 * goes to the kernel they replaced.
 *
 * `registerFastConvolutions()` is idempotent and safe after `initBackend()` (call it after
 * `registerWasmFixes`, which initBackend does); `unregisterFastConvolutions()` restores the
 * replaced kernels. Without the wasm backend loaded it does nothing and returns false.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelBackend, KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';
import {
  conv2dBackpropFilterIm2col, conv2dBackpropInputFlipped, conv2dBackpropInputIm2col, conv2dIm2col, convGeometry,
  type ConvGeometry, type ConvPad, type FilterGradientLayout,
} from './conv-im2col.ts';
import { conv2dBackpropFilterConfig } from './conv2d-backprop-filter.ts';
import { callWasmKernel, replaceKernel, restoreKernel } from './wasm-calls.ts';

export type FastConvKernel = 'Conv2D' | 'FusedConv2D' | 'Conv2DBackpropFilter' | 'Conv2DBackpropInput';
const kernelNames: readonly FastConvKernel[] = ['Conv2D', 'FusedConv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput'];

/**
 * 'auto': each kernel's measured-faster method (`convMethod`); 'gather' / 'grid': im2col
 * wherever the geometry allows, with that layout for the filter gradient (tests,
 * benchmarks); 'flip': the flipped-filter convolution for every stride-1 input gradient
 * (im2col for other strides), old kernels otherwise; 'off': always the replaced kernel.
 */
export type FastConvMode = 'auto' | 'gather' | 'grid' | 'flip' | 'off';
let mode: FastConvMode = 'auto';

/** Sets the mode for every registered fast convolution; returns the previous one. */
export function setFastConvMode(next: FastConvMode): FastConvMode {
  const previous = mode;
  mode = next;
  return previous;
}

/** How a call is computed: the replaced kernel, or im2col/col2im + matMul (with the filter-gradient layout). */
export type ConvMethod = 'replaced' | 'im2col' | 'flip' | FilterGradientLayout;

/**
 * How many multiply-adds the sub-pixel Conv2DBackpropInput (./conv2d-backprop-input.ts)
 * does per useful one: ⌈k/s⌉·s taps per axis instead of k, on a phase grid of
 * ⌈(padTop + inH)/s⌉ rows instead of outH (likewise for columns).
 */
export function subPixelWaste(g: ConvGeometry): number {
  const taps = (Math.ceil(g.kh / g.sh) * g.sh * Math.ceil(g.kw / g.sw) * g.sw) / (g.kh * g.kw);
  const grid = (Math.ceil((g.padTop + g.inH) / g.sh) * Math.ceil((g.padLeft + g.inW) / g.sw)) / (g.outH * g.outW);
  return taps * grid;
}

/**
 * The method for `kernel` on geometry `g` in the current mode. 'auto' follows
 * bench/ml-kernels.ts (process CPU time, old and new interleaved, shared 2-core machine):
 * - Conv2D / FusedConv2D: XNNPACK's convolution (the replaced kernel) runs at the matMul
 *   ceiling on the large shapes and beat im2col + matMul on every shape we timed: kept.
 * - Conv2DBackpropFilter: gathered patchesᵀ for ≤ 4 input channels (first layers: 2–7×);
 *   the grid layout for ≤ 32 channels at stride 1 on ≥ 20×20 outputs (U-Net 28×28×32:
 *   1.1–1.2×) or when the stride does not divide the kernel (3×3 stride 2: 1.4×); else
 *   our dilated-convolution kernel (./conv2d-backprop-filter.ts), faster on DCGAN's
 *   64→128 layer, 14×14×64 and 4×4 stride 2.
 * - Conv2DBackpropInput: matMul + col2im for ≤ 4 input channels (2–3×) and where the
 *   sub-pixel kernel would multiply ≥ 25 % zeros (`subPixelWaste`: DCGAN 64→128 1.3,
 *   3×3 stride 2 1.8); at stride 1 the flipped-filter convolution (1.2–1.7×); else sub-pixel.
 */
export function convMethod(kernel: FastConvKernel, g: ConvGeometry): ConvMethod {
  if (mode === 'off') return 'replaced';
  if (mode === 'gather' || mode === 'grid') return kernel === 'Conv2DBackpropFilter' ? mode : 'im2col';
  if (mode === 'flip') return kernel === 'Conv2DBackpropInput' ? 'flip' : 'replaced';
  const stride1 = g.sh === 1 && g.sw === 1;
  switch (kernel) {
    case 'Conv2DBackpropFilter':
      if (g.ci <= 4) return 'gather';
      if (g.ci <= 32 && (stride1 ? g.outH * g.outW >= 400 : g.kh % g.sh !== 0 || g.kw % g.sw !== 0)) return 'grid';
      return 'replaced';
    case 'Conv2DBackpropInput':
      if (g.ci <= 4) return 'im2col';
      if (stride1) return 'flip';
      return subPixelWaste(g) >= 1.25 ? 'im2col' : 'replaced';
    case 'Conv2D':
    case 'FusedConv2D':
      return 'replaced';
  }
}

interface ConvAttrs {
  strides: number | [number, number];
  pad: ConvPad;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  dilations?: number | [number, number];
  inputShape?: [number, number, number, number];
  filterShape?: [number, number, number, number];
  activation?: string;
  leakyreluAlpha?: number;
}

type KernelArgs = { inputs: NamedTensorInfoMap; backend: KernelBackend; attrs?: NamedAttrMap };

function isFloat(...infos: Array<TensorInfo | undefined>): boolean {
  return infos.every((t) => t === undefined || t.dtype === 'float32');
}

/** Our kernel for `kernel` given the config it replaces; undefined return = use the original. */
function fastPath(kernel: FastConvKernel, args: KernelArgs): TensorInfo | undefined {
  const attrs = args.attrs as unknown as ConvAttrs;
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') return undefined;
  const { backend } = args;
  switch (kernel) {
    case 'Conv2D':
    case 'FusedConv2D': {
      const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, TensorInfo | undefined>;
      if (x == null || filter == null || !isFloat(x, filter, bias, preluActivationWeights)) return undefined;
      const g = convGeometry(x.shape, filter.shape, attrs.strides, attrs.pad, attrs.dimRoundingMode, attrs.dilations);
      if (g === undefined || convMethod(kernel, g) === 'replaced') return undefined;
      if (kernel === 'Conv2D') return conv2dIm2col(x, filter, g, backend);
      const fused: Parameters<typeof conv2dIm2col>[4] = { activation: attrs.activation ?? 'linear' };
      if (attrs.leakyreluAlpha !== undefined) fused.leakyreluAlpha = attrs.leakyreluAlpha;
      if (bias) fused.bias = bias;
      if (preluActivationWeights) fused.preluActivationWeights = preluActivationWeights;
      return conv2dIm2col(x, filter, g, backend, fused);
    }
    case 'Conv2DBackpropFilter': {
      const { x, dy } = args.inputs as Record<string, TensorInfo | undefined>;
      if (x == null || dy == null || attrs.filterShape == null || !isFloat(x, dy)) return undefined;
      const g = convGeometry(x.shape, attrs.filterShape, attrs.strides, attrs.pad, attrs.dimRoundingMode);
      const method = g === undefined ? 'replaced' : convMethod(kernel, g);
      if (g === undefined || method === 'replaced') return undefined;
      return conv2dBackpropFilterIm2col(x, dy, g, backend, method === 'im2col' || method === 'flip' ? 'gather' : method);
    }
    case 'Conv2DBackpropInput': {
      const { dy, filter } = args.inputs as Record<string, TensorInfo | undefined>;
      if (dy == null || filter == null || attrs.inputShape == null || !isFloat(dy, filter)) return undefined;
      const g = convGeometry(attrs.inputShape, filter.shape, attrs.strides, attrs.pad, attrs.dimRoundingMode);
      const method = g === undefined ? 'replaced' : convMethod(kernel, g);
      if (g === undefined || method === 'replaced') return undefined;
      if (method === 'flip') {
        const conv2d = (x: TensorInfo, f: TensorInfo, pad: number[][]) =>
          callWasmKernel('Conv2D', { x, filter: f }, { strides: [1, 1], pad, dataFormat: 'NHWC', dilations: [1, 1] } as unknown as NamedAttrMap, backend);
        return conv2dBackpropInputFlipped(dy, filter, g, backend, conv2d) ?? conv2dBackpropInputIm2col(dy, filter, g, backend);
      }
      return conv2dBackpropInputIm2col(dy, filter, g, backend);
    }
  }
}

const marks: Record<FastConvKernel, symbol> = {
  Conv2D: Symbol.for('literate-report.ml.fastConv.Conv2D'),
  FusedConv2D: Symbol.for('literate-report.ml.fastConv.FusedConv2D'),
  Conv2DBackpropFilter: Symbol.for('literate-report.ml.fastConv.Conv2DBackpropFilter'),
  Conv2DBackpropInput: Symbol.for('literate-report.ml.fastConv.Conv2DBackpropInput'),
};

function fastConfig(kernel: FastConvKernel, original: KernelConfig): KernelConfig {
  const kernelFunc = (args: KernelArgs) => fastPath(kernel, args) ?? original.kernelFunc(args);
  const config: KernelConfig = {
    kernelName: kernel,
    backendName: 'wasm',
    kernelFunc: kernelFunc as unknown as KernelConfig['kernelFunc'],
  };
  if (original.setupFunc) config.setupFunc = original.setupFunc;
  if (original.disposeFunc) config.disposeFunc = original.disposeFunc;
  return config;
}

/**
 * Registers the im2col convolutions over the wasm backend's current kernels; idempotent.
 * Returns false when the wasm backend is not loaded (then nothing changes).
 */
export function registerFastConvolutions(): boolean {
  if (tf.getKernel('Conv2D', 'wasm') == null) return false;
  liftAboveSubPixel();
  for (const kernel of kernelNames) {
    let original = tf.getKernel(kernel, 'wasm');
    if (original == null && kernel === 'Conv2DBackpropFilter') original = conv2dBackpropFilterConfig;
    if (original == null) continue;
    replaceKernel(fastConfig(kernel, original), marks[kernel]);
  }
  return true;
}

/**
 * registerWasmFixes (which every initBackend() call runs) wraps whatever Conv2DBackpropInput
 * is registered in the sub-pixel kernel unless that kernel is already on top — so after
 * `registerFastConvolutions(); initBackend()` the sub-pixel kernel sits over ours and ours
 * never runs. Undo that here (the sub-pixel wrapper keeps the config it replaced under its
 * mark), so calling registerFastConvolutions() after initBackend() always leaves ours on top.
 */
function liftAboveSubPixel(): void {
  const subPixelMark = Symbol.for('literate-report.ml.subPixelConv2DBackpropInput');
  const top = tf.getKernel('Conv2DBackpropInput', 'wasm') as unknown as Record<symbol, unknown> | undefined;
  const below = top?.[subPixelMark] as Record<symbol, unknown> | null | undefined;
  if (below != null && below[marks.Conv2DBackpropInput] !== undefined) restoreKernel('Conv2DBackpropInput', 'wasm', subPixelMark);
}

/** Puts back the kernels `registerFastConvolutions` replaced (benchmarks, tests). */
export function unregisterFastConvolutions(): void {
  for (const kernel of kernelNames) restoreKernel(kernel, 'wasm', marks[kernel]);
}

/** True when our kernel is the registered one for `kernel`. */
export function fastConvolutionsRegistered(kernel: FastConvKernel = 'Conv2D'): boolean {
  const config = tf.getKernel(kernel, 'wasm') as unknown as Record<symbol, unknown> | undefined;
  return config != null && config[marks[kernel]] !== undefined;
}
