import { describe, expect, it } from 'vitest';
import { memoryEffects } from '../support/memory-effects.ts';
import { runCells, type CellEvent, type RunPlan } from '../../src/engine/scheduler.ts';
import { fakeExecutor } from '../support/fake-executor.ts';
import type { CellKey } from '../../src/engine/key.ts';
import { ResultStore } from '../../src/engine/store.ts';
import type { Cell, CellFailure, CellResult } from '../../src/engine/types.ts';
import { makeCell } from '../fixtures/exec-helpers/cells.ts';

/** a → b → d, c independent. */
const cells: Cell[] = [
  makeCell('a', 'export const x = 1;'),
  makeCell('b', `import { x } from 'cell:a';\nexport const y = x + 1;`),
  makeCell('c', 'export const z = 10;'),
  makeCell('d', `import { y } from 'cell:b';\nexport const w = y * 2;`),
];
const order = ['a', 'b', 'c', 'd'];
const depsOf: Record<string, string[]> = { a: [], b: ['a'], c: [], d: ['b'] };

function keysFor(version = 1): Map<string, CellKey> {
  return new Map(
    cells.map((cell) => [cell.id, { key: `${cell.id}${version}`.padEnd(64, '0'), inputs: [], packages: {}, bundle: '', bundleDir: '/tmp', sourcefile: `r.md#${cell.id}.ts` }]),
  );
}

const impl = {
  a: () => ({ exports: { x: 1 } }),
  b: (deps: Record<string, Record<string, unknown>>) => ({ exports: { y: (deps['a']!['x'] as number) + 1 } }),
  c: () => ({ exports: { z: 10 } }),
  d: (deps: Record<string, Record<string, unknown>>) => ({ exports: { w: (deps['b']!['y'] as number) * 2 } }),
};

function setup(executor: ReturnType<typeof fakeExecutor>) {
  const effects = memoryEffects();
  const store = new ResultStore('/p/report/results', effects);
  const events: CellEvent[] = [];
  const context = { executor, jobs: 2, store, profile: 'full', seed: 0, docPath: '/p/report/report.md', projectRoot: '/p', onEvent: (e: CellEvent) => events.push(e) };
  return { store, events, context };
}

/** What build.ts does: fresh results from the store, the rest to run. */
async function plan(store: ResultStore, keys: Map<string, CellKey>): Promise<RunPlan> {
  const available = new Map<string, CellResult>();
  const toRun = new Set<string>();
  for (const id of order) {
    const stored = await store.get(id, keys.get(id)!.key);
    if (stored.result) available.set(id, stored.result);
    else toRun.add(id);
  }
  return { cells, order, deps: (id) => depsOf[id] ?? [], toRun, keys, available };
}

describe('runCells', () => {
  it('runs everything once, then nothing on an unchanged rebuild', async () => {
    const executor = fakeExecutor(impl);
    const { store, context } = setup(executor);
    const first = await runCells(await plan(store, keysFor()), context);
    expect([...first.keys()].sort()).toEqual(order);
    expect(first.get('d')).toMatchObject({ exports: { w: 4 } });
    expect(executor.calls.sort()).toEqual(order);

    const again = await plan(store, keysFor());
    expect(again.toRun.size).toBe(0);
    expect((await runCells(again, context)).size).toBe(0);
    expect(executor.calls).toHaveLength(4);
  });

  it('re-runs only a re-keyed cell and its dependents, with stored dependency values', async () => {
    const executor = fakeExecutor(impl);
    const { store, context } = setup(executor);
    await runCells(await plan(store, keysFor()), context);
    const keys = keysFor();
    keys.set('b', { ...keys.get('b')!, key: 'b2'.padEnd(64, '0') });
    keys.set('d', { ...keys.get('d')!, key: 'd2'.padEnd(64, '0') });
    const second = await plan(store, keys);
    expect([...second.toRun]).toEqual(['b', 'd']);
    const outcomes = await runCells(second, context);
    expect(outcomes.get('d')).toMatchObject({ exports: { w: 4 } });
    expect(executor.calls.slice(4)).toEqual(['b', 'd']);
  });

  it('recomputes a corrupt stored result on the next build', async () => {
    const executor = fakeExecutor(impl);
    const { store, context } = setup(executor);
    await runCells(await plan(store, keysFor()), context);
    const effects = (store as unknown as { effects: ReturnType<typeof memoryEffects> }).effects;
    const bin = [...effects.files.keys()].find((path) => path.includes('/c.') && path.endsWith('.bin'))!;
    const bytes = effects.files.get(bin)!;
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 1;
    expect((await store.get('c', keysFor().get('c')!.key)).problem).toBe('corrupt');
    const next = await plan(store, keysFor());
    expect([...next.toRun]).toEqual(['c']);
    await runCells(next, context);
    expect((await store.get('c', keysFor().get('c')!.key)).result?.exports).toEqual({ z: 10 });
  });

  it('runs independent cells in parallel up to jobs', async () => {
    const executor = fakeExecutor(impl, { delayMs: 50 });
    const { store, context } = setup(executor);
    await runCells(await plan(store, keysFor()), context);
    expect(executor.maxConcurrent).toBe(2);

    const one = fakeExecutor(impl, { delayMs: 20 });
    const serial = setup(one);
    await runCells(await plan(serial.store, keysFor()), { ...serial.context, jobs: 1 });
    expect(one.maxConcurrent).toBe(1);
    expect(one.calls).toEqual(['a', 'b', 'c', 'd']);
  });

  it('skips the dependents of a failing cell but not independent cells', async () => {
    const executor = fakeExecutor({
      ...impl,
      a: () => {
        throw new Error('no data');
      },
    });
    const { store, events, context } = setup(executor);
    const outcomes = await runCells(await plan(store, keysFor()), context);
    expect(outcomes.get('a')).toMatchObject({ kind: 'error', message: 'no data' });
    expect(outcomes.get('b')).toMatchObject({ kind: 'skipped', message: 'skipped: the cell it imports, "a", failed' });
    expect(outcomes.get('d')).toMatchObject({ kind: 'skipped', message: 'skipped: the cell it imports, "b", was skipped' });
    expect(outcomes.get('c')).toMatchObject({ exports: { z: 10 } });
    expect(executor.calls.sort()).toEqual(['a', 'c']);
    expect((await store.get('c', keysFor().get('c')!.key)).result).toBeDefined();
    expect(events.filter((e) => e.state === 'skipped').map((e) => e.id)).toEqual(['b', 'd']);
    expect(events.find((e) => e.id === 'a' && e.state === 'failed')?.failure).toMatchObject({ kind: 'error' });
  });

  it('stores each result as soon as it finishes', async () => {
    let storedBeforeD = false;
    const executor = fakeExecutor({
      ...impl,
      d: async (deps) => {
        storedBeforeD = (await store.get('b', keysFor().get('b')!.key)).result !== undefined;
        throw new Error('interrupted');
      },
    });
    const { store, context } = setup(executor);
    const outcomes = await runCells(await plan(store, keysFor()), context);
    expect(storedBeforeD).toBe(true);
    expect((outcomes.get('d') as CellFailure).kind).toBe('error');
    const next = await plan(store, keysFor());
    expect([...next.toRun]).toEqual(['d']);
  });

  it('reports a non-serializable export as a failure naming the export', async () => {
    const executor = fakeExecutor({ ...impl, c: () => ({ exports: { model: { layers: [() => 1] } } }) });
    const { store, context } = setup(executor);
    const outcomes = await runCells(await plan(store, keysFor()), context);
    expect((outcomes.get('c') as CellFailure).message).toContain('export "model.layers[0]" is a function');
  });
});
