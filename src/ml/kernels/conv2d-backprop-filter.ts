/**
 * `Conv2DBackpropFilter` for the wasm backend, which tfjs 4.22 does not ship
 * ("Kernel 'Conv2DBackpropFilter' not registered for backend 'wasm'").
 *
 * The filter gradient of y = conv2d(x, w, stride s) is
 *   dw[kh, kw, ci, co] = Σ_{b, oh, ow} x[b, oh·s + kh − padTop, ow·s + kw − padLeft, ci] · dy[b, oh, ow, co],
 * which is itself a stride-1 convolution with dilation s if the batch axis plays the
 * role of input channels: x → [ci, H, W, b] is the "image", dy → [oh, ow, b, co] the
 * "filter", and the output [ci, kh, kw, co] is transposed back to [kh, kw, ci, co].
 * Only kernels wasm has are used (Slice, Conv2D with explicit padding), plus transposes
 * done in JS on the wasm heap (wasm's rank-4 Transpose is slow).
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelBackend, KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';
import { callWasmKernel, disposeInfos, permuteOnHeap } from './wasm-calls.ts';

type Conv2DBackpropFilterAttrs = {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
};

export function conv2dBackpropFilterWasm(args: {
  inputs: NamedTensorInfoMap;
  backend: KernelBackend;
  attrs?: NamedAttrMap;
}): TensorInfo {
  const { inputs, backend } = args;
  const { x, dy } = inputs as { x?: TensorInfo; dy?: TensorInfo };
  if (x == null || dy == null) throw new Error('Conv2DBackpropFilter (wasm fix): expected inputs x and dy');
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = args.attrs as unknown as Conv2DBackpropFilterAttrs;
  if (dataFormat !== 'NHWC') {
    throw new Error(`Conv2DBackpropFilter (wasm fix) supports dataFormat 'NHWC' only, got '${dataFormat}'`);
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast',
  );
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
  const { strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, padInfo } = info;

  // Rows of the (virtually) padded x that the convolution reads: (outHeight−1)·s + fh.
  const bottom = (outHeight - 1) * sh + fh - padInfo.top - inHeight;
  const right = (outWidth - 1) * sw + fw - padInfo.left - inWidth;
  const temps: TensorInfo[] = [];
  let xUsed = x;
  if (bottom < 0 || right < 0) {
    // 'valid' with leftover rows/columns that no output reads: crop them.
    xUsed = callWasmKernel('Slice', { x }, {
      begin: [0, 0, 0, 0],
      size: [batchSize, inHeight + Math.min(bottom, 0), inWidth + Math.min(right, 0), inChannels],
    }, backend);
    temps.push(xUsed);
  }
  const xT = permuteOnHeap(xUsed, [3, 1, 2, 0], backend); // [ci, H, W, batch]
  const dyT = permuteOnHeap(dy, [1, 2, 0, 3], backend); // [oh, ow, batch, co]
  temps.push(xT, dyT);
  const dwT = callWasmKernel('Conv2D', { x: xT, filter: dyT }, {
    strides: [1, 1],
    pad: [[0, 0], [padInfo.top, Math.max(bottom, 0)], [padInfo.left, Math.max(right, 0)], [0, 0]],
    dataFormat: 'NHWC',
    dilations: [sh, sw],
  }, backend); // [ci, fh, fw, co]
  temps.push(dwT);
  if (dwT.shape[1] !== fh || dwT.shape[2] !== fw) {
    disposeInfos(backend, ...temps);
    throw new Error(`Conv2DBackpropFilter (wasm fix): expected a ${fh}×${fw} result, got ${dwT.shape[1]}×${dwT.shape[2]}`);
  }
  const dw = permuteOnHeap(dwT, [1, 2, 0, 3], backend); // [fh, fw, ci, co]
  disposeInfos(backend, ...temps);
  return dw;
}

export const conv2dBackpropFilterConfig: KernelConfig = {
  kernelName: 'Conv2DBackpropFilter',
  backendName: 'wasm',
  kernelFunc: conv2dBackpropFilterWasm as unknown as KernelConfig['kernelFunc'],
};
