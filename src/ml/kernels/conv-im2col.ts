/**
 * Convolutions on the wasm backend as one large untransposed matMul (XNNPACK's fully
 * connected path, our fastest kernel) over patches built in JS on the wasm heap:
 *
 * - forward:  y [M, co]  = patches [M, K] · w [K, co]              (im2col)
 * - filter:   dw [K, co] = patchesᵀ [K, M] · dy [M, co]             (transposed im2col)
 * - input:    cols [M, K] = dy [M, co] · wᵀ [co, K], then dx += cols (col2im, a scatter-add)
 *
 * with M = batch·outH·outW and K = kh·kw·ci; rows of `patches` are (b, oh, ow), columns
 * (kh, kw, ci), which is the memory order of an NHWC filter [kh, kw, ci, co] — so the filter
 * is a [K, co] matrix with no copy. Zero padding is written explicitly; any stride and
 * explicit/'same'/'valid' padding work; dilation must be 1 (callers fall back otherwise).
 *
 * Patches cost memory (K/ci times the input) but only copies: on NHWC data each (row, kh)
 * of `patches` is one contiguous run of kw·ci floats of x, moved with copyWithin on the heap.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelBackend, TensorInfo } from '@tensorflow/tfjs';
import { callWasmKernel, disposeInfos, makeHeapOutput, permuteOnHeap } from './wasm-calls.ts';

/** The geometry of one NHWC convolution with dilation 1. */
export interface ConvGeometry {
  batch: number;
  inH: number;
  inW: number;
  ci: number;
  outH: number;
  outW: number;
  co: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  padTop: number;
  padLeft: number;
}

export type ConvPad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

/** Geometry from tfjs's own shape rules (computeConv2DInfo); undefined when dilated. */
export function convGeometry(
  xShape: readonly number[],
  filterShape: readonly number[],
  strides: number | [number, number],
  pad: ConvPad,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
  dilations: number | [number, number] = 1,
): ConvGeometry | undefined {
  const [dh, dw] = typeof dilations === 'number' ? [dilations, dilations] : dilations;
  if (dh !== 1 || dw !== 1) return undefined;
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], filterShape as [number, number, number, number],
    strides, 1, pad, dimRoundingMode, false, 'channelsLast',
  );
  return {
    batch: info.batchSize, inH: info.inHeight, inW: info.inWidth, ci: info.inChannels,
    outH: info.outHeight, outW: info.outWidth, co: info.outChannels,
    kh: info.filterHeight, kw: info.filterWidth, sh: info.strideHeight, sw: info.strideWidth,
    padTop: info.padInfo.top, padLeft: info.padInfo.left,
  };
}

/** Multiply-adds × 2 of the convolution (the same for its two gradients). */
export function convFlops(g: ConvGeometry): number {
  return 2 * g.batch * g.outH * g.outW * g.co * g.kh * g.kw * g.ci;
}

/** Copies below this many floats use a plain loop; longer ones copyWithin (a memmove). */
const MEMMOVE_MIN = 24;

/** patches [M, K] of x [batch, inH, inW, ci]: rows (b, oh, ow), columns (kh, kw, c). */
export function im2col(x: TensorInfo, g: ConvGeometry, backend: KernelBackend): TensorInfo {
  const { batch, inH, inW, ci, outH, outW, kh, kw, sh, sw, padTop, padLeft } = g;
  const rowLen = kw * ci;
  const K = kh * rowLen;
  return makeHeapOutput(backend, [batch * outH * outW, K], [x], (out, xv) => {
    const heap = new Float32Array(out.buffer);
    const x0 = xv.byteOffset >> 2;
    let d = out.byteOffset >> 2;
    for (let b = 0; b < batch; b++) {
      for (let oh = 0; oh < outH; oh++) {
        const ih0 = oh * sh - padTop;
        for (let ow = 0; ow < outW; ow++) {
          const iw0 = ow * sw - padLeft;
          const lo = iw0 < 0 ? Math.min(-iw0, kw) : 0;
          const hi = Math.max(lo, Math.min(kw, inW - iw0));
          const len = (hi - lo) * ci;
          for (let i = 0; i < kh; i++, d += rowLen) {
            const ih = ih0 + i;
            if (ih < 0 || ih >= inH || len === 0) {
              heap.fill(0, d, d + rowLen);
              continue;
            }
            if (lo > 0) heap.fill(0, d, d + lo * ci);
            const src = x0 + ((b * inH + ih) * inW + iw0 + lo) * ci;
            const dst = d + lo * ci;
            if (len >= MEMMOVE_MIN) heap.copyWithin(dst, src, src + len);
            else for (let j = 0; j < len; j++) heap[dst + j] = heap[src + j]!;
            if (hi < kw) heap.fill(0, d + hi * ci, d + rowLen);
          }
        }
      }
    }
  });
}

/**
 * patchesᵀ [K, M] of x: rows (kh, kw, c), columns (b, oh, ow), gathered element by element
 * from x permuted to [ci, batch, inH, inW]. Cheap when K·M is small (few input channels);
 * `transposedPatchesOnGrid` moves whole runs instead, at the price of wasted columns.
 */
export function im2colTransposed(x: TensorInfo, g: ConvGeometry, backend: KernelBackend): TensorInfo {
  const { batch, inH, inW, ci, outH, outW, kh, kw, sh, sw, padTop, padLeft } = g;
  const xT = ci === 1 ? x : permuteOnHeap(x, [3, 0, 1, 2], backend); // [ci, batch, inH, inW]
  const M = batch * outH * outW;
  const out = makeHeapOutput(backend, [kh * kw * ci, M], [xT], (pt, xv) => {
    let d = 0;
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        // Output columns whose input column ow·sw − padLeft + j lies inside the image.
        const owLo = Math.min(outW, Math.max(0, Math.ceil((padLeft - j) / sw)));
        const owHi = Math.max(owLo, Math.min(outW, Math.ceil((inW + padLeft - j) / sw)));
        const shift = owLo * sw - padLeft + j;
        for (let c = 0; c < ci; c++) {
          for (let b = 0; b < batch; b++) {
            const image = (c * batch + b) * inH;
            for (let oh = 0; oh < outH; oh++) {
              const ih = oh * sh - padTop + i;
              if (ih < 0 || ih >= inH) {
                pt.fill(0, d, d + outW);
                d += outW;
                continue;
              }
              let s = (image + ih) * inW + shift;
              for (let ow = 0; ow < owLo; ow++) pt[d++] = 0;
              for (let ow = owLo; ow < owHi; ow++, s += sw) pt[d++] = xv[s]!;
              for (let ow = owHi; ow < outW; ow++) pt[d++] = 0;
            }
          }
        }
      }
    }
  });
  if (xT !== x) disposeInfos(backend, xT);
  return out;
}

/**
 * The transposed patches of a strided convolution without an element-by-element gather.
 *
 * Split the zero-padded x into s×s phases (space-to-depth) and lay each phase out channel
 * by channel on a grid of Hq × Wq positions per image, Hq = outH + ⌈kh/s⌉ − 1 (likewise
 * Wq): planes [s·s·ci, batch·Hq·Wq]. Tap (i, j) of the filter reads, for output pixel
 * (b, oh, ow), grid position (b, oh + ⌊i/s⌋, ow + ⌊j/s⌋) of phase (i mod s, j mod s), so on
 * the flattened grid every row (i, j, c) of patchesᵀ is ONE contiguous run of its plane,
 * shifted by ⌊i/s⌋·Wq + ⌊j/s⌋: a memmove. The columns are grid positions rather than
 * output pixels — F = (batch−1)·Hq·Wq + (outH−1)·Wq + outW of them, some past the image
 * (wasted work, 15–31 % on our shapes); `dy` is laid out on the same grid with zeros
 * there (`gridDy`), so they add nothing.
 */
export function transposedPatchesOnGrid(x: TensorInfo, g: ConvGeometry, backend: KernelBackend): TensorInfo {
  const { batch, inH, inW, ci, outH, outW, kh, kw, sh, sw, padTop, padLeft } = g;
  const { hq, wq, f } = gridOf(g);
  const plane = batch * hq * wq;
  const planes = makeHeapOutput(backend, [sh * sw * ci, plane], [x], (pl, xv) => {
    pl.fill(0);
    // Rows R = ih + padTop of the padded image that some tap reads: R < hq·sh.
    let src = 0;
    for (let b = 0; b < batch; b++) {
      for (let ih = 0; ih < inH; ih++, src += inW * ci) {
        const R = ih + padTop;
        const q = Math.floor(R / sh);
        if (q >= hq) continue;
        const rowBase = (b * hq + q) * wq;
        const phaseRow = (R - q * sh) * sw;
        for (let iw = 0; iw < inW; iw++) {
          const C = iw + padLeft;
          const p = Math.floor(C / sw);
          if (p >= wq) continue;
          let d = (phaseRow + C - p * sw) * ci * plane + rowBase + p;
          const s0 = src + iw * ci;
          for (let c = 0; c < ci; c++, d += plane) pl[d] = xv[s0 + c]!;
        }
      }
    }
  });
  const out = makeHeapOutput(backend, [kh * kw * ci, f], [planes], (pt, pv) => {
    const heap = new Float32Array(pt.buffer);
    const p0 = pv.byteOffset >> 2;
    let d = pt.byteOffset >> 2;
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const phase = (i % sh) * sw + (j % sw);
        const shift = Math.floor(i / sh) * wq + Math.floor(j / sw);
        for (let c = 0; c < ci; c++, d += f) {
          const s = p0 + (phase * ci + c) * plane + shift;
          heap.copyWithin(d, s, s + f);
        }
      }
    }
  });
  disposeInfos(backend, planes);
  return out;
}

/** The grid of `transposedPatchesOnGrid`: Hq, Wq and the number F of columns. */
export function gridOf(g: ConvGeometry): { hq: number; wq: number; f: number } {
  const hq = g.outH + Math.ceil(g.kh / g.sh) - 1;
  const wq = g.outW + Math.ceil(g.kw / g.sw) - 1;
  return { hq, wq, f: (g.batch - 1) * hq * wq + (g.outH - 1) * wq + g.outW };
}

/** dy [batch, outH, outW, co] on the grid of `gridOf`: [F, co], zero off the image. */
export function gridDy(dy: TensorInfo, g: ConvGeometry, backend: KernelBackend): TensorInfo {
  const { batch, outH, outW, co } = g;
  const { hq, wq, f } = gridOf(g);
  return makeHeapOutput(backend, [f, co], [dy], (out, dv) => {
    const heap = new Float32Array(out.buffer);
    const o0 = out.byteOffset >> 2;
    const d0 = dv.byteOffset >> 2;
    const run = outW * co;
    if (wq === outW && hq === outH) {
      heap.copyWithin(o0, d0, d0 + f * co);
      return;
    }
    out.fill(0);
    for (let b = 0; b < batch; b++) {
      for (let oh = 0; oh < outH; oh++) {
        const s = d0 + (b * outH + oh) * run;
        heap.copyWithin(o0 + ((b * hq + oh) * wq) * co, s, s + run);
      }
    }
  });
}

/** wᵀ [co, K] of an NHWC filter [kh, kw, ci, co] seen as [K, co]. */
function filterTransposed(w: TensorInfo, backend: KernelBackend): TensorInfo {
  const co = w.shape[3]!;
  const K = w.shape[0]! * w.shape[1]! * w.shape[2]!;
  return makeHeapOutput(backend, [co, K], [w], (out, wv) => {
    for (let k = 0; k < K; k++) for (let o = 0; o < co; o++) out[o * K + k] = wv[k * co + o]!;
  });
}

function matMul(a: TensorInfo, b: TensorInfo, backend: KernelBackend): TensorInfo {
  return callWasmKernel('BatchMatMul', { a, b }, { transposeA: false, transposeB: false }, backend);
}

function reshape(x: TensorInfo, shape: number[], backend: KernelBackend): TensorInfo {
  return callWasmKernel('Reshape', { x }, { shape }, backend);
}

/** y = conv2d(x, w): im2col, then patches [M, K] · w [K, co]. Optional bias/activation via _FusedMatMul. */
export function conv2dIm2col(
  x: TensorInfo, w: TensorInfo, g: ConvGeometry, backend: KernelBackend,
  fused?: { bias?: TensorInfo; preluActivationWeights?: TensorInfo; activation?: string; leakyreluAlpha?: number },
): TensorInfo {
  const K = g.kh * g.kw * g.ci;
  const patches = im2col(x, g, backend);
  const w2 = reshape(w, [K, g.co], backend);
  let y2: TensorInfo;
  if (fused === undefined) {
    y2 = matMul(patches, w2, backend);
  } else {
    // wasm's _FusedMatMul reads rank-3 operands (tfjs's op reshapes before calling it).
    const a3 = reshape(patches, [1, patches.shape[0]!, K], backend);
    const b3 = reshape(w2, [1, K, g.co], backend);
    const inputs: Record<string, TensorInfo> = { a: a3, b: b3 };
    if (fused.bias) inputs.bias = fused.bias;
    if (fused.preluActivationWeights) inputs.preluActivationWeights = fused.preluActivationWeights;
    y2 = callWasmKernel('_FusedMatMul', inputs, {
      transposeA: false, transposeB: false, activation: fused.activation ?? 'linear', leakyreluAlpha: fused.leakyreluAlpha ?? 0.2,
    }, backend);
    disposeInfos(backend, a3, b3);
  }
  const y = reshape(y2, [g.batch, g.outH, g.outW, g.co], backend);
  disposeInfos(backend, patches, w2, y2);
  return y;
}

/** The layouts of the filter gradient's patches: see `conv2dBackpropFilterIm2col`. */
export type FilterGradientLayout = 'gather' | 'grid';

/**
 * dw [kh, kw, ci, co] = patchesᵀ · dy, in one of two layouts:
 * - 'gather': patchesᵀ [K, M] gathered element by element, times dy [M, co];
 * - 'grid': patchesᵀ [K, F] by memmoves on the padded grid (`transposedPatchesOnGrid`), times dy on that grid.
 * (A third, dwᵀ = dyᵀ · im2col(x), measured 1.5–2× slower than both on our shapes.)
 */
export function conv2dBackpropFilterIm2col(
  x: TensorInfo, dy: TensorInfo, g: ConvGeometry, backend: KernelBackend, layout: FilterGradientLayout = 'gather',
): TensorInfo {
  const M = g.batch * g.outH * g.outW;
  const patchesT = layout === 'grid' ? transposedPatchesOnGrid(x, g, backend) : im2colTransposed(x, g, backend);
  const dy2 = layout === 'grid' ? gridDy(dy, g, backend) : reshape(dy, [M, g.co], backend);
  const dw2 = matMul(patchesT, dy2, backend);
  const dw = reshape(dw2, [g.kh, g.kw, g.ci, g.co], backend);
  disposeInfos(backend, patchesT, dy2, dw2);
  return dw;
}

/** dx = col2im(dy [M, co] · wᵀ [co, K]): each column block (kh, kw) is added into its input pixel. */
export function conv2dBackpropInputIm2col(dy: TensorInfo, w: TensorInfo, g: ConvGeometry, backend: KernelBackend): TensorInfo {
  const { batch, inH, inW, ci, outH, outW, co, kh, kw, sh, sw, padTop, padLeft } = g;
  const M = batch * outH * outW;
  const K = kh * kw * ci;
  const wT = filterTransposed(w, backend);
  const dy2 = reshape(dy, [M, co], backend);
  const cols = matMul(dy2, wT, backend); // [M, K]
  const rowLen = kw * ci;
  const dx = makeHeapOutput(backend, [batch, inH, inW, ci], [cols], (out, cv) => {
    out.fill(0);
    let r = 0;
    for (let b = 0; b < batch; b++) {
      for (let oh = 0; oh < outH; oh++) {
        const ih0 = oh * sh - padTop;
        for (let ow = 0; ow < outW; ow++, r += K) {
          const iw0 = ow * sw - padLeft;
          const lo = iw0 < 0 ? Math.min(-iw0, kw) : 0;
          const hi = Math.max(lo, Math.min(kw, inW - iw0));
          const len = (hi - lo) * ci;
          if (len === 0) continue;
          for (let i = 0; i < kh; i++) {
            const ih = ih0 + i;
            if (ih < 0 || ih >= inH) continue;
            const dst = ((b * inH + ih) * inW + iw0 + lo) * ci;
            const src = r + i * rowLen + lo * ci;
            for (let j = 0; j < len; j++) out[dst + j] = out[dst + j]! + cv[src + j]!;
          }
        }
      }
    }
  });
  disposeInfos(backend, wT, dy2, cols);
  return dx;
}

/**
 * dx for stride 1 as ONE ordinary convolution (XNNPACK's, no im2col): dy padded by
 * kh − 1 − padTop above and kh − 1 − padBottom below (likewise for columns), correlated with
 * the filter flipped in space and with ci and co swapped, is exactly [batch, inH, inW, ci]
 * — no output to crop, unlike the sub-pixel kernel's stride-1 case (a larger conv plus a
 * rank-4 Slice). Returns undefined when a padding would be negative (explicit pads beyond the kernel).
 */
export function conv2dBackpropInputFlipped(
  dy: TensorInfo, w: TensorInfo, g: ConvGeometry, backend: KernelBackend,
  conv2d: (x: TensorInfo, filter: TensorInfo, pad: number[][]) => TensorInfo,
): TensorInfo | undefined {
  const { inH, inW, ci, outH, outW, co, kh, kw, sh, sw, padTop, padLeft } = g;
  if (sh !== 1 || sw !== 1) return undefined;
  const padBottom = outH - 1 + kh - inH - padTop; // the forward pass's bottom padding
  const padRight = outW - 1 + kw - inW - padLeft;
  const pads = [kh - 1 - padTop, kh - 1 - padBottom, kw - 1 - padLeft, kw - 1 - padRight];
  if (pads.some((p) => p < 0)) return undefined;
  const flipped = makeHeapOutput(backend, [kh, kw, co, ci], [w], (f, wv) => {
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const src = ((kh - 1 - i) * kw + (kw - 1 - j)) * ci * co;
        const dst = (i * kw + j) * co * ci;
        for (let c = 0; c < ci; c++) for (let o = 0; o < co; o++) f[dst + o * ci + c] = wv[src + c * co + o]!;
      }
    }
  });
  const dx = conv2d(dy, flipped, [[0, 0], [pads[0]!, pads[1]!], [pads[2]!, pads[3]!], [0, 0]]);
  disposeInfos(backend, flipped);
  return dx;
}
