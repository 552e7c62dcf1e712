/**
 * `UnsortedSegmentSum` for the wasm backend, which tfjs 4.22 does not ship; it is the
 * gradient of tf.gather (GatherV2), so without it gather cannot be differentiated on wasm.
 *
 *   out[s, …] = Σ_{i : segmentIds[i] = s} x[i, …],   out: [numSegments, ...x.shape[1:]]
 *
 * Same semantics as the cpu kernel: segmentIds is 1-D over x's first axis, ids outside
 * [0, numSegments) are dropped. A single pass in JS on the wasm heap (float32 x).
 */
import type { KernelBackend, KernelConfig, NamedAttrMap, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs';
import { int32View, makeHeapOutput } from './wasm-calls.ts';

export function unsortedSegmentSumWasm(args: {
  inputs: NamedTensorInfoMap;
  backend: KernelBackend;
  attrs?: NamedAttrMap;
}): TensorInfo {
  const { inputs, backend } = args;
  const { x, segmentIds } = inputs as { x?: TensorInfo; segmentIds?: TensorInfo };
  if (x == null || segmentIds == null) throw new Error('UnsortedSegmentSum (wasm fix): expected inputs x and segmentIds');
  const { numSegments } = args.attrs as unknown as { numSegments: number };
  if (segmentIds.shape.length !== 1 || segmentIds.shape[0] !== x.shape[0]) {
    throw new Error(`UnsortedSegmentSum (wasm fix): expected segmentIds of shape [${x.shape[0]}], got [${segmentIds.shape.join(', ')}]`);
  }
  const ids = Int32Array.from(int32View(segmentIds, backend)); // copied before the output may grow the heap
  const rows = x.shape[0] ?? 1;
  const rowSize = x.shape.slice(1).reduce((a, b) => a * b, 1);
  return makeHeapOutput(backend, [numSegments, ...x.shape.slice(1)], [x], (out, xv) => {
    out.fill(0);
    for (let i = 0; i < rows; i++) {
      const s = ids[i]!;
      if (s < 0 || s >= numSegments) continue;
      const from = i * rowSize;
      const to = s * rowSize;
      for (let j = 0; j < rowSize; j++) out[to + j]! += xv[from + j]!;
    }
  });
}

export const unsortedSegmentSumConfig: KernelConfig = {
  kernelName: 'UnsortedSegmentSum',
  backendName: 'wasm',
  kernelFunc: unsortedSegmentSumWasm as unknown as KernelConfig['kernelFunc'],
};
