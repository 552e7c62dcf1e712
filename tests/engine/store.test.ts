import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodeEffects } from '../../src/engine/effects.ts';
import { memoryEffects } from '../support/memory-effects.ts';
import { entryName, ResultStore } from '../../src/engine/store.ts';
import type { CellResult } from '../../src/engine/types.ts';

let dir: string;
const effects = nodeEffects();

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'exec-store-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const key = (n: number): string => n.toString(16).padStart(2, '0').repeat(32);

function result(id: string, k: string, overrides: Partial<CellResult['meta']> = {}): CellResult {
  return {
    kind: 'result',
    id,
    key: k,
    exports: { weights: new Float32Array([0.5, -0, NaN]), history: new Map([['loss', [1, 0.5]]]), when: new Date(0) },
    outputs: [
      { kind: 'text', text: 'epoch 1\n' },
      { kind: 'figure', name: 'loss', ext: 'png', data: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2]), caption: 'Loss.' },
      { kind: 'table', name: 'scores', columns: ['a'], rows: [[1]] },
    ],
    meta: { runMs: 1234, backend: 'cpu', versions: { '@tensorflow/tfjs': '4.22.0' }, profile: 'full', seed: 0, createdAt: '2026-11-21T10:00:00.000Z', doc: 'report.md', ...overrides },
  };
}

describe('ResultStore', () => {
  it('round-trips a result and reports a missing one', async () => {
    const store = new ResultStore(dir, effects);
    const r = result('train', key(1));
    await store.put(r);
    const back = await store.get('train', key(1));
    expect(back.problem).toBeUndefined();
    expect(back.result).toEqual(r);
    expect(await store.get('train', key(2))).toEqual({ problem: 'missing' });
    expect(await store.get('other', key(1))).toEqual({ problem: 'missing' });
    const files = (await readdir(dir)).sort();
    expect(files).toEqual([`${entryName('train', key(1))}.bin`, `${entryName('train', key(1))}.json`]);
    const metadata = JSON.parse(await readFile(join(dir, files[1]!), 'utf8')) as Record<string, unknown>;
    expect(metadata).toMatchObject({ doc: 'report.md', id: 'train', key: key(1), exports: ['weights', 'history', 'when'] });
    const text = await readFile(join(dir, files[1]!), 'utf8');
    expect(text).toContain('"columns": ["a"]');
    expect(text).toContain('"rows": [\n');
  });

  it('writes deterministic bytes and leaves no temporary files', async () => {
    const store = new ResultStore(dir, effects);
    await store.put(result('a', key(1)));
    const first = await readFile(join(dir, `${entryName('a', key(1))}.bin`));
    const firstJson = await readFile(join(dir, `${entryName('a', key(1))}.json`));
    await Promise.all([store.put(result('a', key(1))), store.put(result('a', key(1)))]);
    expect(await readFile(join(dir, `${entryName('a', key(1))}.bin`))).toEqual(first);
    expect(await readFile(join(dir, `${entryName('a', key(1))}.json`))).toEqual(firstJson);
    expect((await readdir(dir)).filter((f) => f.includes('.tmp'))).toEqual([]);
  });

  it('reports a corrupted payload byte as corrupt', async () => {
    const store = new ResultStore(dir, effects);
    await store.put(result('train', key(1)));
    const bin = join(dir, `${entryName('train', key(1))}.bin`);
    const bytes = await readFile(bin);
    bytes[bytes.length - 3] = bytes[bytes.length - 3]! ^ 0xff;
    await writeFile(bin, bytes);
    const back = await store.get('train', key(1));
    expect(back.problem).toBe('corrupt');
    expect(back.detail).toContain('checksum mismatch');
    expect(back.result).toBeUndefined();
    // A recomputed result replaces it.
    await store.put(result('train', key(1)));
    expect((await store.get('train', key(1))).result).toBeDefined();

    await writeFile(join(dir, `${entryName('train', key(1))}.json`), '{ not json');
    expect((await store.get('train', key(1))).problem).toBe('corrupt');
  });

  it('gc removes only unused entries of that document', async () => {
    const store = new ResultStore(dir, effects);
    await store.put(result('a', key(1)));
    await store.put(result('a', key(2)));
    await store.put(result('b', key(3)));
    await store.put(result('a', key(4), { doc: 'other.md' }));
    const removed = await store.gc([{ id: 'a', key: key(2) }, { id: 'b', key: key(3) }], 'report.md');
    expect(removed).toEqual([entryName('a', key(1))]);
    expect((await store.get('a', key(1))).problem).toBe('missing');
    expect((await store.get('a', key(2))).result).toBeDefined();
    expect((await store.get('b', key(3))).result).toBeDefined();
    expect((await store.get('a', key(4))).result).toBeDefined();
    expect((await readdir(dir)).filter((name) => !name.startsWith('.'))).toHaveLength(6);
  });

  it('latest finds the newest intact entry of a cell whatever its key', async () => {
    const store = new ResultStore(dir, effects);
    expect(await store.latest('a')).toBeUndefined();
    await store.put(result('a', key(1), { createdAt: '2026-11-20T00:00:00.000Z' }));
    await store.put(result('a', key(2), { createdAt: '2026-11-21T00:00:00.000Z' }));
    expect((await store.latest('a'))?.key).toBe(key(2));
    expect(await store.latest('b')).toBeUndefined();
  });

  it('puts other profiles in an ignored directory', async () => {
    const store = new ResultStore(join(dir, 'profiles', 'quick'), effects);
    await store.put(result('a', key(1), { profile: 'quick' }));
    expect(await readFile(join(dir, 'profiles', 'quick', '.gitignore'), 'utf8')).toBe('*\n');
  });

  it('writes figures once, skipping identical bytes', async () => {
    const mem = memoryEffects();
    const store = new ResultStore('/project/report/results', mem);
    const r = result('train', key(1));
    expect(await store.writeFigures(r, 'figures', '/project')).toEqual(['figures/train-loss.png']);
    expect(mem.files.get('/project/figures/train-loss.png')).toEqual(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2]));
    expect(await store.writeFigures(r, 'figures', '/project')).toEqual([]);
  });
});
