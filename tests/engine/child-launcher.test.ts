import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { childProcessExecutor, STOPPED_MESSAGE } from '../../src/engine/child-launcher.ts';
import { keyCells } from '../../src/engine/key.ts';
import { isFailure, type Cell, type CellFailure, type CellResult, type ProgressEvent } from '../../src/engine/types.ts';
import { makeCell } from '../fixtures/exec-helpers/cells.ts';

const projectRoot = resolve(import.meta.dirname, '../..');
const docPath = resolve(import.meta.dirname, '../fixtures/exec-run/report.md');
const runtimePath = resolve(projectRoot, 'src/engine/runtime.ts');
const executor = childProcessExecutor({});

async function run(
  cell: Cell,
  deps: Map<string, CellResult> = new Map(),
  extraCells: Cell[] = [],
  using = executor,
): Promise<{ outcome: CellResult | CellFailure; progress: ProgressEvent[]; printed: string }> {
  const cells = [...extraCells, cell];
  const keys = await keyCells(cells, cells.map((c) => c.id), { docPath, projectRoot, profile: 'quick', seed: 3, runtimePath });
  const key = keys.get(cell.id)!;
  expect(key.error).toBeUndefined();
  const progress: ProgressEvent[] = [];
  let printed = '';
  const outcome = await using.run(
    { cell, key, deps, profile: 'quick', seed: 3, docPath, projectRoot },
    { onProgress: (e) => progress.push(e), onOutput: (t) => (printed += t) },
  );
  return { outcome, progress, printed };
}

function asResult(outcome: CellResult | CellFailure): CellResult {
  if (isFailure(outcome)) throw new Error(`cell failed (${outcome.kind}): ${outcome.message}\n${outcome.stack ?? ''}`);
  return outcome;
}

describe('childProcessExecutor', () => {
  it('returns exports, outputs, printed text and runtime metadata', async () => {
    const cell = makeCell(
      'basic',
      [
        `import { byProfile, cellId, figure, meta, profile, random, seed, table } from 'report:runtime';`,
        `const r = random();`,
        `console.log('hello from', cellId);`,
        `table('scores', [{ a: 1, b: 'x' }, { a: 2, b: null }], { caption: 'Scores.' });`,
        `figure('plot', '<svg xmlns="http://www.w3.org/2000/svg"></svg>');`,
        `meta({ backend: 'cpu', note: 'tiny' });`,
        `export const values = new Float32Array([1, 2, NaN]);`,
        `export const info = { profile, seed, epochs: byProfile({ full: 50, quick: 2 }), u: r() };`,
      ].join('\n'),
    );
    const { outcome, printed } = await run(cell);
    const result = asResult(outcome);
    expect(result.exports['values']).toBeInstanceOf(Float32Array);
    expect(result.exports['info']).toMatchObject({ profile: 'quick', seed: 3, epochs: 2 });
    expect(printed).toContain('hello from basic');
    expect(result.outputs.map((o) => o.kind)).toEqual(['text', 'table', 'figure']);
    expect(result.outputs[0]).toEqual({ kind: 'text', text: 'hello from basic\n' });
    expect(result.outputs[1]).toMatchObject({ name: 'scores', columns: ['a', 'b'], rows: [[1, 'x'], [2, null]], caption: 'Scores.' });
    expect(result.outputs[2]).toMatchObject({ kind: 'figure', name: 'plot', ext: 'svg' });
    expect(result.meta).toMatchObject({ backend: 'cpu', profile: 'quick', seed: 3, doc: 'report.md', extra: { note: 'tiny' } });
  });

  it('reports a throw at its Markdown line', async () => {
    const cell = makeCell('throws', `const a = 1;\nconst b = a + 1;\nif (b > 1) throw new Error('bad value ' + b);\nexport const c = b;`, { codeLine: 20 });
    const { outcome } = await run(cell);
    expect(outcome).toMatchObject({ kind: 'error', message: 'bad value 2', line: 22, column: 18 });
    expect((outcome as CellFailure).stack).toContain(`${docPath}:22:18`);
  });

  it('runs the same way through tsx', async () => {
    const cell = makeCell('viatsx', `import { cellId, byProfile } from 'report:runtime';\nconsole.log(cellId);\nexport const n = byProfile({ full: 1, quick: 2 });\nif (n === 2) throw new Error('two');`, { codeLine: 7 });
    const { outcome, printed } = await run(cell, new Map(), [], childProcessExecutor({ tsx: true }));
    expect(printed).toBe('viatsx\n');
    expect(outcome).toMatchObject({ kind: 'error', message: 'two', line: 10, column: 20 });
  });

  it('maps a throw inside an imported project file to the calling line of the cell', async () => {
    const cell = makeCell('deep', `import { explode } from './lib/fail.ts';\n\nexplode('now');`, { codeLine: 40 });
    const { outcome } = await run(cell);
    expect(outcome).toMatchObject({ kind: 'error', message: 'explode: now', line: 42 });
    expect((outcome as CellFailure).stack).toContain('lib/fail.ts:2');
  });

  it('treats unhandled rejections and process.exit as failures', async () => {
    const rejection = await run(makeCell('reject', `Promise.reject(new Error('async boom'));\nawait new Promise((r) => setTimeout(r, 200));\nexport const x = 1;`));
    expect(rejection.outcome).toMatchObject({ kind: 'error', message: 'async boom' });
    const exit = await run(makeCell('exits', `process.exit(0);\nexport const x = 1;`, { codeLine: 5 }));
    expect(exit.outcome).toMatchObject({ kind: 'error', line: 5 });
    expect((exit.outcome as CellFailure).message).toContain('process.exit(0)');
  });

  it('kills a cell that exceeds its timeout', async () => {
    const started = Date.now();
    const { outcome } = await run(makeCell('spin', `console.log('spinning');\nwhile (true) {}\nexport const never = 1;`, { timeout: 1 }));
    expect(outcome).toMatchObject({ kind: 'timeout' });
  });

  it('stops a cell when the hooks\' signal is aborted (the preview\'s stop button): the process group is killed at once', async () => {
    const cell = makeCell('stoppable', `import { progress } from 'report:runtime';\nprogress({ step: 1, total: 10 });\nwhile (true) {}\nexport const never = 1;`);
    const keys = await keyCells([cell], [cell.id], { docPath, projectRoot, profile: 'quick', seed: 3, runtimePath });
    const controller = new AbortController();
    const started = Date.now();
    const outcome = await executor.run(
      { cell, key: keys.get(cell.id)!, deps: new Map(), profile: 'quick', seed: 3, docPath, projectRoot },
      { onProgress: () => controller.abort(), signal: controller.signal },
    );
    expect(outcome).toMatchObject({ kind: 'error', message: STOPPED_MESSAGE });
    expect(Date.now() - started).toBeLessThan(cell.options.timeout * 1000);
    // Already aborted: nothing is started.
    const before = await executor.run(
      { cell, key: keys.get(cell.id)!, deps: new Map(), profile: 'quick', seed: 3, docPath, projectRoot },
      { onProgress: () => {}, signal: AbortSignal.abort() },
    );
    expect(before).toMatchObject({ kind: 'error', message: STOPPED_MESSAGE });
  });

  it('memory= caps the whole process: the heap, and typed arrays off the heap', async () => {
    const heap = await run(makeCell('hog', `const xs: number[][] = [];\nwhile (true) xs.push(new Array(100_000).fill(Math.random()));\nexport const n = xs.length;`, { memory: 160 }));
    expect(heap.outcome).toMatchObject({ kind: 'memory' });
    expect((heap.outcome as CellFailure).message).toContain('memory=160 MiB');
    const offHeap = await run(
      makeCell('offheap', `const hoard: Float64Array[] = [];\nfor (let i = 0; i < 16; i++) hoard.push(new Float64Array(16_000_000).fill(i));\nexport const total = hoard.length;`, { memory: 256 }),
    );
    expect(offHeap.outcome).toMatchObject({ kind: 'memory' });
    expect((offHeap.outcome as CellFailure).message).toMatch(/resident memory \d+ MiB is over memory=256 MiB/);
  });

  it('reports a cell that never settles or is killed as a crash', async () => {
    const hangs = await run(makeCell('hangs', `await new Promise(() => {});\nexport const n = 1;`));
    expect((hangs.outcome as CellFailure).message).toContain('top-level await never settled');
    const killed = await run(makeCell('killed', `process.kill(process.pid, 'SIGKILL');\nexport const n = 1;`));
    expect(killed.outcome).toMatchObject({ kind: 'crash', message: "the cell's process was killed by SIGKILL" });
  });

  it('sends progress events and passes dependency values through cell: imports', async () => {
    const dep = makeCell('data', `export const xs = new Float64Array([1, 2, 3]);\nexport const label = 'three';`);
    const depResult: CellResult = {
      kind: 'result',
      id: 'data',
      key: 'k',
      exports: { xs: new Float64Array([1, 2, 3]), label: 'three' },
      outputs: [],
      meta: { runMs: 1, versions: {}, profile: 'quick', seed: 3, createdAt: '2026-11-21T00:00:00.000Z' },
    };
    const cell = makeCell(
      'sum',
      [
        `import { xs, label } from 'cell:data';`,
        `import { progress } from 'report:runtime';`,
        `for (let i = 1; i <= 3; i++) { progress({ step: i, total: 3, label: 'epoch', metrics: { loss: 1 / i } }); await new Promise((r) => setTimeout(r, 300)); }`,
        `export const total = xs.reduce((a, b) => a + b, 0);`,
        `export const name = label;`,
      ].join('\n'),
    );
    const { outcome, progress } = await run(cell, new Map([['data', depResult]]), [dep]);
    expect(asResult(outcome).exports).toEqual({ total: 6, name: 'three' });
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.at(-1)).toEqual({ id: 'sum', step: 3, total: 3, label: 'epoch', metrics: { loss: 1 / 3 } });
  });
});
