/**
 * Mini-batches from a dataset kept as one Float32Array [n, rowSize] in JS memory.
 *
 * Why not a resident tensor and tf.slice: on the wasm backend slicing a batch out of a big
 * tensor copies the whole tensor each time. Here an in-order batch is a tensor made from a
 * `subarray` view (no copy in JS); a shuffled batch is gathered into a fresh array of one
 * batch. Not a reused buffer: the cpu backend keeps the typed array it is given, so a
 * reused buffer would rewrite earlier batches (wasm and tfjs-node copy on write). For the
 * same reason do not mutate `data` while its batches are alive.
 * Each yielded tensor belongs to the caller: dispose it (or create it inside tf.tidy).
 */
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../random.ts';

export interface BatchOptions {
  /** Shuffle the row order (a fresh permutation from `rng` per call). */
  rng?: Rng;
  /** Skip the last, short batch. Default false. */
  dropLast?: boolean;
}

export interface Batch {
  /** [size, rowSize] */
  x: tf.Tensor2D;
  /** Row indices into `data` of the batch's rows, in order. */
  indices: Uint32Array;
  /** Position of this batch in the epoch. */
  index: number;
}

/** Number of batches `batches` yields. */
export function batchCount(rows: number, batchSize: number, dropLast = false): number {
  return dropLast ? Math.floor(rows / batchSize) : Math.ceil(rows / batchSize);
}

export function* batches(
  data: Float32Array,
  rowSize: number,
  batchSize: number,
  options: BatchOptions = {},
): Generator<Batch, void, undefined> {
  if (!Number.isInteger(rowSize) || rowSize <= 0) throw new Error(`batches: rowSize must be a positive integer, got ${rowSize}`);
  if (!Number.isInteger(batchSize) || batchSize <= 0) throw new Error(`batches: batchSize must be a positive integer, got ${batchSize}`);
  if (data.length % rowSize !== 0) {
    throw new Error(`batches: data length ${data.length} is not a multiple of rowSize ${rowSize}`);
  }
  const rows = data.length / rowSize;
  const order = options.rng ? options.rng.permutation(rows) : undefined;
  const count = batchCount(rows, batchSize, options.dropLast);
  for (let b = 0; b < count; b++) {
    const start = b * batchSize;
    const size = Math.min(batchSize, rows - start);
    const indices = new Uint32Array(size);
    let x: tf.Tensor2D;
    if (order) {
      const buffer = new Float32Array(size * rowSize);
      for (let i = 0; i < size; i++) {
        const row = order[start + i]!;
        indices[i] = row;
        buffer.set(data.subarray(row * rowSize, (row + 1) * rowSize), i * rowSize);
      }
      x = tf.tensor2d(buffer, [size, rowSize]); // [size, rowSize]
    } else {
      for (let i = 0; i < size; i++) indices[i] = start + i;
      x = tf.tensor2d(data.subarray(start * rowSize, (start + size) * rowSize), [size, rowSize]); // [size, rowSize]
    }
    yield { x, indices, index: b };
  }
}
