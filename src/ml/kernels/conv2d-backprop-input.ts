/**
 * `Conv2DBackpropInput` (the input gradient of conv2d, and tf.conv2dTranspose) for wasm
 * as one ordinary convolution plus a pixel shuffle — the "sub-pixel" view of a
 * transposed convolution (Shi et al. 2016, "Real-Time Single Image and Video
 * Super-Resolution Using an Efficient Sub-Pixel CNN", §2.2; Dumoulin & Visin 2016, §4).
 *
 * For stride s, write i + padTop = q·s + r (0 ≤ r < s). Then
 *   dx[b, i, c] = Σ_m Σ_co dy[b, q − m, co] · w[m·s + r, c, co]      (per axis),
 * a stride-1 convolution of dy for each phase r with a ⌈k/s⌉-tap sub-filter. All s² phases
 * share one convolution whose output channels are (rh, rw, c); a pixel shuffle interleaves
 * them into the s× larger image and a slice drops the padding. No zeros are multiplied
 * (unlike convolving a zero-dilated dy), and XNNPACK's convolution beats wasm's direct
 * Conv2DBackpropInput loop: DCGAN layer 302 → 46–94 ms, stride-1 5×5 layer 271 → 47 ms
 * (medians, loaded 2-core machine; bench/ml-kernels.ts).
 *
 * Falls back to tfjs's kernel for NCHW and for unequal strides.
 * Uses wasm's Conv2D, Reshape and Slice, plus permutations done in JS on the wasm heap.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelBackend, KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';
import { callWasmKernel, disposeInfos, makeHeapOutput, permuteOnHeap, replaceKernel, restoreKernel } from './wasm-calls.ts';

type Conv2DBackpropInputAttrs = {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape: [number, number, number, number];
};

/**
 * w [kh, kw, ci, co] → [⌈kh/s⌉, ⌈kw/s⌉, co, s·s·ci] with
 *   f[m'h, m'w, co, (rh·s + rw)·ci + c] = w[(M−1−m'h)·s + rh, (M−1−m'w)·s + rw, c, co]
 * (zero past the kernel's edge); built in JS on the heap (the filter is small, and wasm's
 * rank-6 Reverse/Transpose are slow).
 */
function subPixelFilter(w: TensorInfo, s: number, backend: KernelBackend): TensorInfo {
  const [kh, kw, ci, co] = w.shape as [number, number, number, number];
  const mh = Math.ceil(kh / s);
  const mw = Math.ceil(kw / s);
  return makeHeapOutput(backend, [mh, mw, co, s * s * ci], [w], (f, wv) => {
    let o = 0;
    for (let ph = 0; ph < mh; ph++) {
      for (let pw = 0; pw < mw; pw++) {
        for (let oc = 0; oc < co; oc++) {
          for (let rh = 0; rh < s; rh++) {
            const h = (mh - 1 - ph) * s + rh;
            for (let rw = 0; rw < s; rw++) {
              const x = (mw - 1 - pw) * s + rw;
              if (h >= kh || x >= kw) {
                f.fill(0, o, o + ci);
                o += ci;
                continue;
              }
              const base = (h * kw + x) * ci * co + oc;
              for (let c = 0; c < ci; c++) f[o++] = wv[base + c * co]!;
            }
          }
        }
      }
    }
  });
}

function subPixelBackpropInput(
  dy: TensorInfo, w: TensorInfo, attrs: Conv2DBackpropInputAttrs, backend: KernelBackend,
): TensorInfo {
  const info = tf.backend_util.computeConv2DInfo(
    attrs.inputShape, w.shape as [number, number, number, number], attrs.strides, 1, attrs.pad,
    attrs.dimRoundingMode, false, 'channelsLast',
  );
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, strideHeight: s, padInfo } = info;
  const mh = Math.ceil(info.filterHeight / s);
  const mw = Math.ceil(info.filterWidth / s);
  // Phase-image size: enough rows q that q·s covers padTop + inHeight.
  const qh = Math.ceil((padInfo.top + inHeight) / s);
  const qw = Math.ceil((padInfo.left + inWidth) / s);
  const temps: TensorInfo[] = [];
  let dyUsed = dy;
  if (qh < outHeight || qw < outWidth) {
    dyUsed = callWasmKernel('Slice', { x: dy }, {
      begin: [0, 0, 0, 0], size: [batchSize, Math.min(qh, outHeight), Math.min(qw, outWidth), outChannels],
    }, backend);
    temps.push(dyUsed);
  }
  const filter = subPixelFilter(w, s, backend);
  temps.push(filter);
  const phases = callWasmKernel('Conv2D', { x: dyUsed, filter }, {
    strides: [1, 1],
    pad: [[0, 0], [mh - 1, qh - dyUsed.shape[1]!], [mw - 1, qw - dyUsed.shape[2]!], [0, 0]],
    dataFormat: 'NHWC',
    dilations: [1, 1],
  }, backend); // [batch, qh, qw, s·s·ci]
  temps.push(phases);
  let image = phases;
  if (s > 1) {
    // Pixel shuffle as Reshape + a permutation on the heap (wasm's DepthToSpace and rank-6 Transpose are slow).
    const split = callWasmKernel('Reshape', { x: phases }, { shape: [batchSize * qh, qw, s, s * inChannels] }, backend);
    const interleaved = permuteOnHeap(split, [0, 2, 1, 3], backend); // [batch·qh, s, qw, s·ci]
    image = callWasmKernel('Reshape', { x: interleaved }, { shape: [batchSize, qh * s, qw * s, inChannels] }, backend);
    temps.push(split, interleaved, image); // image: [batch, qh·s, qw·s, ci]
  }
  if (padInfo.top === 0 && padInfo.left === 0 && image.shape[1] === inHeight && image.shape[2] === inWidth) {
    temps.pop();
    disposeInfos(backend, ...temps);
    return image;
  }
  const dx = callWasmKernel('Slice', { x: image }, {
    begin: [0, padInfo.top, padInfo.left, 0], size: [batchSize, inHeight, inWidth, inChannels],
  }, backend); // [batch, inHeight, inWidth, ci]
  disposeInfos(backend, ...temps);
  return dx;
}

const subPixelMark = Symbol.for('literate-report.ml.subPixelConv2DBackpropInput');

export function makeConv2dBackpropInputConfig(original: KernelConfig): KernelConfig {
  const kernelFunc = (args: { inputs: NamedTensorInfoMap; backend: KernelBackend; attrs?: NamedAttrMap }) => {
    const attrs = args.attrs as unknown as Conv2DBackpropInputAttrs;
    const { dy, filter } = args.inputs as { dy: TensorInfo; filter: TensorInfo };
    const [sh, sw] = typeof attrs.strides === 'number' ? [attrs.strides, attrs.strides] : attrs.strides;
    if (attrs.dataFormat !== 'NHWC' || sh !== sw) return original.kernelFunc(args);
    return subPixelBackpropInput(dy, filter, attrs, args.backend);
  };
  const config: KernelConfig = {
    kernelName: 'Conv2DBackpropInput',
    backendName: 'wasm',
    kernelFunc: kernelFunc as unknown as KernelConfig['kernelFunc'],
  };
  if (original.setupFunc) config.setupFunc = original.setupFunc;
  if (original.disposeFunc) config.disposeFunc = original.disposeFunc;
  return config;
}

/** Replaces wasm's Conv2DBackpropInput with the sub-pixel formulation; idempotent. */
export function registerSubPixelConv2dBackpropInput(): boolean {
  const original = tf.getKernel('Conv2DBackpropInput', 'wasm');
  if (original == null) throw new Error("registerSubPixelConv2dBackpropInput: wasm kernel 'Conv2DBackpropInput' is not registered");
  return replaceKernel(makeConv2dBackpropInputConfig(original), subPixelMark);
}

export function unregisterSubPixelConv2dBackpropInput(): void {
  restoreKernel('Conv2DBackpropInput', 'wasm', subPixelMark);
}
