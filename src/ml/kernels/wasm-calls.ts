/**
 * Backend-level calls used by our wasm kernels: they run another registered wasm kernel
 * directly on `TensorInfo`s (no engine, no tape), as tfjs's own composite kernels do,
 * and dispose intermediates with `backend.disposeData`.
 */
import * as tf from '@tensorflow/tfjs';
import type { KernelBackend, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';

/** Runs the wasm kernel `kernelName` and returns its single output. */
export function callWasmKernel(
  kernelName: string,
  inputs: NamedTensorInfoMap,
  attrs: NamedAttrMap,
  backend: KernelBackend,
): TensorInfo {
  const config = tf.getKernel(kernelName, 'wasm');
  if (config == null) throw new Error(`wasm fix needs kernel '${kernelName}' on 'wasm', which is not registered`);
  const out = config.kernelFunc({ inputs, attrs, backend });
  const first = Array.isArray(out) ? out[0] : out;
  if (first == null) throw new Error(`wasm kernel '${kernelName}' returned no output`);
  return first;
}

export function transposeInfo(x: TensorInfo, perm: number[], backend: KernelBackend): TensorInfo {
  return callWasmKernel('Transpose', { x }, { perm }, backend);
}

/** Swaps the last two axes: [..., r, c] → [..., c, r]. */
export function transposeLastTwo(x: TensorInfo, backend: KernelBackend): TensorInfo {
  const rank = x.shape.length;
  const perm = [...Array(rank).keys()];
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return transposeInfo(x, perm, backend);
}

export function disposeInfos(backend: KernelBackend, ...infos: TensorInfo[]): void {
  for (const info of infos) backend.disposeData(info.dataId);
}

/**
 * Registers `config`, replacing whatever is registered for its kernel and backend; the
 * replaced config is kept under `mark` so `restoreKernel` can put it back. Returns false
 * (and changes nothing) when the registered config already carries `mark`.
 */
export function replaceKernel(config: tf.KernelConfig, mark: symbol): boolean {
  const existing = tf.getKernel(config.kernelName, config.backendName);
  if (existing != null && marked(existing, mark) !== undefined) return false;
  if (existing != null) tf.unregisterKernel(config.kernelName, config.backendName);
  (config as unknown as Record<symbol, unknown>)[mark] = existing ?? null;
  tf.registerKernel(config);
  return true;
}

/** Undoes `replaceKernel`: re-registers the replaced config (or none). */
export function restoreKernel(kernelName: string, backendName: string, mark: symbol): boolean {
  const existing = tf.getKernel(kernelName, backendName);
  if (existing == null) return false;
  const original = marked(existing, mark);
  if (original === undefined) return false;
  tf.unregisterKernel(kernelName, backendName);
  if (original != null) tf.registerKernel(original);
  return true;
}

function marked(config: tf.KernelConfig, mark: symbol): tf.KernelConfig | null | undefined {
  return (config as unknown as Record<symbol, tf.KernelConfig | null | undefined>)[mark];
}

/** The parts of the wasm backend (BackendWasm) that give direct views on its heap. */
interface WasmHeapBackend {
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
  typedArrayFromHeap(info: TensorInfo): Float32Array | Int32Array | Uint8Array;
}

function asHeapBackend(backend: KernelBackend): WasmHeapBackend {
  const candidate = backend as unknown as Partial<WasmHeapBackend>;
  if (typeof candidate.makeOutput !== 'function' || typeof candidate.typedArrayFromHeap !== 'function') {
    throw new Error('wasm fix: expected the wasm backend (makeOutput, typedArrayFromHeap)');
  }
  return candidate as WasmHeapBackend;
}

/**
 * A new float32 tensor on the wasm heap of `shape`, filled by `fill(out)`; `sources` are
 * viewed after allocation (allocation may grow, and so move, the heap).
 */
export function makeHeapOutput(
  backend: KernelBackend,
  shape: number[],
  sources: TensorInfo[],
  fill: (out: Float32Array, ...sources: Float32Array[]) => void,
): TensorInfo {
  const heap = asHeapBackend(backend);
  const out = heap.makeOutput(shape, 'float32');
  const views = sources.map((s) => {
    if (s.dtype !== 'float32') throw new Error(`wasm fix: expected a float32 tensor, got ${s.dtype}`);
    return heap.typedArrayFromHeap(s) as Float32Array;
  });
  fill(heap.typedArrayFromHeap(out) as Float32Array, ...views);
  return out;
}

/**
 * Transpose done in JS on the wasm heap. wasm's Transpose kernel handles rank 2 well but
 * is slow on rank 4–6 permutations (a [64,14,14,64] tensor to [3,1,2,0]: ~30 ms there,
 * a few ms here); runs of the innermost axis are copied with `set` when it stays last.
 */
export function permuteOnHeap(x: TensorInfo, perm: number[], backend: KernelBackend): TensorInfo {
  if (x.dtype !== 'float32') return transposeInfo(x, perm, backend);
  const rank = x.shape.length;
  const inStrides = new Array<number>(rank);
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= x.shape[i]!;
  }
  const outShape = perm.map((p) => x.shape[p]!);
  const strides = perm.map((p) => inStrides[p]!); // source stride of each output axis
  return makeHeapOutput(backend, outShape, [x], (dst, src) => {
    if (rank === 0 || dst.length === 0) {
      dst.set(src);
      return;
    }
    const inner = outShape[rank - 1]!;
    const innerStride = strides[rank - 1]!;
    const outer = dst.length / inner;
    const index = new Array<number>(Math.max(rank - 1, 0)).fill(0);
    let base = 0;
    let o = 0;
    for (let n = 0; n < outer; n++) {
      if (innerStride === 1) {
        dst.set(src.subarray(base, base + inner), o);
        o += inner;
      } else {
        for (let i = 0, p = base; i < inner; i++, p += innerStride) dst[o++] = src[p]!;
      }
      for (let axis = rank - 2; axis >= 0; axis--) {
        index[axis]!++;
        base += strides[axis]!;
        if (index[axis]! < outShape[axis]!) break;
        base -= strides[axis]! * outShape[axis]!;
        index[axis] = 0;
      }
    }
  });
}

/** A view on the wasm heap of an int32 tensor (copy it before allocating anything). */
export function int32View(info: TensorInfo, backend: KernelBackend): Int32Array {
  if (info.dtype !== 'int32') throw new Error(`wasm fix: expected an int32 tensor, got ${info.dtype}`);
  return asHeapBackend(backend).typedArrayFromHeap(info) as Int32Array;
}
