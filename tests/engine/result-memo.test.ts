/**
 * The preview's memo of stored results (src/engine/result-memo.ts) through the store: a
 * payload is read, verified and decoded once per metadata text; a result stored since (by
 * this process or another) is read afresh; each lookup gets its own exports; a store
 * without the memo (check, report) reads and verifies every payload as before.
 */
import { describe, expect, it } from 'vitest';
import type { Effects } from '../../src/engine/effects.ts';
import { ResultMemo } from '../../src/engine/result-memo.ts';
import { entryName, ResultStore } from '../../src/engine/store.ts';
import type { CellResult } from '../../src/engine/types.ts';
import { memoryEffects } from '../support/memory-effects.ts';

const DIR = '/store';
const key = (n: number): string => n.toString(16).padStart(2, '0').repeat(32);

function result(id: string, k: string, value: number, createdAt = '2026-11-21T10:00:00.000Z'): CellResult {
  return {
    kind: 'result',
    id,
    key: k,
    exports: { xs: [3, 1, 2], value, nested: { weights: new Float32Array([value, 2]) } },
    outputs: [
      { kind: 'figure', name: 'plot', ext: 'png', data: new Uint8Array([0x89, 0x50, value]) },
      { kind: 'table', name: 'rows', columns: ['a'], rows: [[value]] },
    ],
    meta: { runMs: 1, versions: {}, profile: 'full', seed: 0, createdAt, doc: 'doc.md' },
  };
}

/** Memory effects that count the payload (.bin) reads. */
function counting(): { effects: Effects; binReads: () => number } {
  const effects = memoryEffects();
  let reads = 0;
  const readFile = effects.readFile.bind(effects);
  effects.readFile = (path) => {
    if (path.endsWith('.bin')) reads++;
    return readFile(path);
  };
  return { effects, binReads: () => reads };
}

describe('the result memo', () => {
  it('reads, verifies and decodes a payload once while its metadata is unchanged', async () => {
    const { effects, binReads } = counting();
    const memo = new ResultMemo();
    await new ResultStore(DIR, effects).put(result('a', key(1), 5));
    const store = new ResultStore(DIR, effects, new Map(), memo);
    const first = await store.get('a', key(1));
    expect(first.result?.exports).toEqual(result('a', key(1), 5).exports);
    expect(binReads()).toBe(1);
    for (let i = 0; i < 3; i++) {
      const again = await new ResultStore(DIR, effects, new Map(), memo).get('a', key(1));
      expect(again.result?.exports).toEqual(result('a', key(1), 5).exports);
      expect(again.checksum).toBe(first.checksum);
      expect(again.result?.outputs).toEqual(first.result?.outputs);
    }
    expect(binReads()).toBe(1);
    // Without the memo (check, report), every lookup reads and verifies the payload.
    const plain = new ResultStore(DIR, effects);
    await plain.get('a', key(1));
    await plain.get('a', key(1));
    expect(binReads()).toBe(3);
  });

  it('gives a fresh entry once the store changed: a result this store put, or one another process wrote', async () => {
    const { effects, binReads } = counting();
    const memo = new ResultMemo();
    const store = new ResultStore(DIR, effects, new Map(), memo);
    await store.put(result('a', key(1), 5));
    expect((await store.get('a', key(1))).result?.exports['value']).toBe(5);
    // The same cell and key stored again (re-run) by this store…
    await store.put(result('a', key(1), 6, '2026-11-21T11:00:00.000Z'));
    expect((await store.get('a', key(1))).result?.exports['value']).toBe(6);
    expect((await store.get('a', key(1))).result?.outputs[1]).toMatchObject({ rows: [[6]] });
    // …and by another process (another store on the same folder, no memo).
    await new ResultStore(DIR, effects).put(result('a', key(1), 7, '2026-11-21T12:00:00.000Z'));
    const after = await store.get('a', key(1));
    expect(after.result?.exports['value']).toBe(7);
    expect((after.result?.exports['nested'] as { weights: Float32Array }).weights[0]).toBe(7);
    expect(after.result?.meta.createdAt).toBe('2026-11-21T12:00:00.000Z');
    const reads = binReads();
    await store.get('a', key(1));
    expect(binReads()).toBe(reads);
    // A removed entry is missing, memo or not.
    await store.remove('a', key(1));
    expect((await store.get('a', key(1))).problem).toBe('missing');
  });

  it('gives each lookup its own exports: what an inline expression changes, the next rebuild does not see', async () => {
    const memo = new ResultMemo();
    const effects = memoryEffects();
    const store = new ResultStore(DIR, effects, new Map(), memo);
    await store.put(result('a', key(1), 5));
    await store.get('a', key(1)); // remembered
    const first = (await store.get('a', key(1))).result!;
    (first.exports['xs'] as number[]).reverse();
    (first.exports['nested'] as { weights: Float32Array }).weights[0] = 100;
    first.exports['value'] = -1;
    const second = (await store.get('a', key(1))).result!;
    expect(second.exports).toEqual(result('a', key(1), 5).exports);
    // The outputs are shared and read-only.
    expect(second.outputs).toBe(first.outputs);
    expect(Object.isFrozen(second.outputs[1])).toBe(true);
    expect(() => {
      (second.outputs as unknown[]).push(1);
    }).toThrow(TypeError);
  });

  it('still checks the key\'s fingerprint and keeps only the entries it is told to', async () => {
    const memo = new ResultMemo();
    const effects = memoryEffects();
    const store = new ResultStore(DIR, effects, new Map(), memo);
    const withFingerprint = (id: string, k: string) => {
      const r = result(id, k, 1);
      r.meta.fingerprint = { engine: 'e', code: 'c', options: '', inputs: {}, deps: {}, profile: 'full', seed: 0, packages: {} };
      return r;
    };
    await store.put(withFingerprint('a', key(1)));
    await store.put(withFingerprint('b', key(2)));
    const fingerprint = withFingerprint('a', key(1)).meta.fingerprint!;
    expect((await store.get('a', key(1), fingerprint)).result).toBeDefined();
    expect((await store.get('b', key(2), fingerprint)).result).toBeDefined();
    expect(memo.size).toBe(2);
    // Remembered, but not under another fingerprint.
    expect((await store.get('a', key(1), { ...fingerprint, code: 'other' })).problem).toBe('corrupt');
    memo.retain([['a', key(1)]]);
    expect(memo.size).toBe(1);
    expect(effects.files.has(`${DIR}/${entryName('b', key(2))}.bin`)).toBe(true);
  });
});
