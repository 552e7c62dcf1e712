/**
 * `report --verify`: re-run cells into a scratch store and compare with the committed
 * results bit for bit, never touching the committed store. With the fake executor (a cell
 * implementation per id) and, at the end, the real CLI with child processes.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { build } from '../../src/engine/build.ts';
import { nodeEffects } from '../../src/engine/effects.ts';
import type { Output } from '../../src/engine/types.ts';
import { formatVerdicts, measuredNote, verify, type VerifyOptions } from '../../src/engine/verify.ts';
import { fakeExecutor } from '../support/fake-executor.ts';
import { docWithMeasured } from '../support/measured-doc.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
const silent = { write: () => {}, isTTY: false };
let dir: string;

const DOC = `---
seed: 3
---

\`\`\`ts run id=a
export const a: number = 2;
\`\`\`

\`\`\`ts run id=b
import { a } from 'cell:a';
export const total: number = a + 3;
\`\`\`

\`\`\`ts run id=c
export const arr = new Float64Array([1, 2, 3]);
\`\`\`
`;

type Impl = Parameters<typeof fakeExecutor>[0];
const png = (last: number): Output => ({ kind: 'figure', name: 'plot', ext: 'png', data: new Uint8Array([137, 80, 78, 71, last]), caption: 'P' });
const deterministic: Impl = {
  a: () => ({ exports: { a: 2 }, outputs: [png(1)] }),
  b: (deps) => ({ exports: { total: (deps.a!.a as number) + 3 } }),
  c: () => ({ exports: { arr: new Float64Array([1, 2, 3]) }, outputs: [{ kind: 'table', name: 't', columns: ['x'], rows: [[1]] }] }),
};

async function commit(): Promise<void> {
  await build(
    { docPath: path.join(dir, 'doc.md'), projectRoot: dir, executor: fakeExecutor(deterministic), outDir: path.join(dir, 'build'), pdf: false },
    nodeEffects({ stdout: silent }),
  );
}

/** Every file under `folder` with its bytes (folders as empty). */
async function snapshot(folder: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const name of (await readdir(folder, { recursive: true })).sort()) {
    files.set(name, await readFile(path.join(folder, name)).catch(() => Buffer.alloc(0)));
  }
  expect(files.size).toBeGreaterThan(0);
  return files;
}

function run(impl: Impl, extra: Partial<VerifyOptions> = {}) {
  const executor = fakeExecutor(impl);
  const scratchDir = path.join(dir, 'scratch');
  const result = verify({ docPath: path.join(dir, 'doc.md'), projectRoot: dir, scratchDir, ...extra, executor }, nodeEffects({ stdout: silent }));
  return { executor, result, scratchDir };
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'report-verify-'));
  await writeFile(path.join(dir, 'doc.md'), DOC);
  await commit();
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('verify', () => {
  it('says same for deterministic cells, re-runs every cell, and leaves the committed store untouched', async () => {
    const before = await snapshot(path.join(dir, 'results'));
    const { executor, result, scratchDir } = run(deterministic);
    const summary = await result;
    expect(summary.verdicts.map((v) => [v.id, v.status])).toEqual([
      ['a', 'same'],
      ['b', 'same'],
      ['c', 'same'],
    ]);
    expect(summary.ok).toBe(true);
    expect(executor.calls.sort()).toEqual(['a', 'b', 'c']);
    expect(await snapshot(path.join(dir, 'results'))).toEqual(before);
    expect(existsSync(scratchDir)).toBe(false);
    expect(formatVerdicts(summary)).toBe('a  same\nb  same\nc  same\nverify at profile full: 3 same, 0 differ, 0 failed, 0 without a committed result\n');
  });

  it('reports the first differing export with both values, by its path down to the element of a typed array', async () => {
    let calls = 0;
    const changing: Impl = { ...deterministic, c: () => ({ exports: { arr: new Float64Array([1, 2, 3 + 1e-12 * ++calls]) } }) };
    const summary = await run(changing).result;
    expect(summary.ok).toBe(false);
    const c = summary.verdicts.find((v) => v.id === 'c')!;
    expect(c.status).toBe('differs');
    expect(c.detail).toBe('arr[2]: committed 3, re-run 3.000000000001');
    expect(summary.verdicts.filter((v) => v.status === 'same').map((v) => v.id)).toEqual(['a', 'b']);
  });

  it('compares figures and tables bit for bit too', async () => {
    const figure = await run({ ...deterministic, a: () => ({ exports: { a: 2 }, outputs: [png(2)] }) }).result;
    expect(figure.verdicts[0]).toMatchObject({ id: 'a', status: 'differs', detail: 'figure "plot": 5 bytes committed, 5 re-run, first difference at byte 4' });
    const table = await run({ ...deterministic, c: () => ({ exports: { arr: new Float64Array([1, 2, 3]) }, outputs: [{ kind: 'table', name: 't', columns: ['x'], rows: [[2]] }] }) }).result;
    expect(table.verdicts[2]).toMatchObject({ id: 'c', status: 'differs', detail: 'table "t"[0].x: committed 1, re-run 2' });
  });

  it('re-runs only the named cells, each on its dependencies\' committed results', async () => {
    // a would now give 100: b must still be fed the committed a = 2, and a is not re-run.
    const { executor, result } = run({ ...deterministic, a: () => ({ exports: { a: 100 } }) }, { ids: ['b'] });
    const summary = await result;
    expect(executor.calls).toEqual(['b']);
    expect(summary.verdicts).toMatchObject([{ id: 'b', status: 'same' }]);
  });

  it('a cell without a committed result for its key, or an unknown id, is not "same"', async () => {
    await writeFile(path.join(dir, 'doc.md'), DOC.replace('export const a: number = 2;', 'export const a: number = 2 + 0;'));
    const summary = await run(deterministic, { ids: ['a'] }).result;
    expect(summary.verdicts).toMatchObject([{ id: 'a', status: 'uncommitted' }]);
    expect(summary.ok).toBe(false);
    await expect(run(deterministic, { ids: ['nope'] }).result).rejects.toThrow(/--verify nope: no cell has this id/);
  });

  it('works at a profile: compares with that profile\'s store', async () => {
    await build(
      { docPath: path.join(dir, 'doc.md'), projectRoot: dir, executor: fakeExecutor(deterministic), outDir: path.join(dir, 'build'), pdf: false, profile: 'quick' },
      nodeEffects({ stdout: silent }),
    );
    const same = await run(deterministic, { profile: 'quick' }).result;
    expect(same.profile).toBe('quick');
    expect(same.verdicts.map((v) => v.status)).toEqual(['same', 'same', 'same']);
    const differs = await run({ ...deterministic, b: () => ({ exports: { total: 6 } }) }, { profile: 'quick' }).result;
    expect(differs.verdicts[1]).toMatchObject({ id: 'b', status: 'differs', detail: 'total: committed 5, re-run 6' });
  });
});

describe('measured values (front matter verify: measured:)', () => {
  // A training cell whose history holds wall-clock seconds, and a sampler with a timing
  // export and a table column of milliseconds.
  const TIMED = [
    '```ts run id=train',
    'export const history = [{ loss: 0.5, seconds: 1.25 }, { loss: 0.25, seconds: 1.5 }];',
    'export const perEpochSeconds = [1.25, 1.5];',
    'export const rbmSecondsPerIteration: number = 1.375;',
    '```',
    '',
    '```ts run id=sampler',
    "import { table } from 'report:runtime';",
    'export const seconds: number = 2;',
    "table('speed', [{ images: 10, 'ms per image': 3 }]);",
    '```',
    '',
  ];
  const timedDoc = (patterns: string[]) => docWithMeasured(patterns, TIMED);
  type Run = { loss?: number[]; seconds?: unknown[]; perEpoch?: unknown[]; perIteration?: unknown; samplerSeconds?: number; ms?: number | string };
  /** The two cells, with these values in place of the committed ones. */
  const timed = (run: Run = {}): Impl => ({
    train: () => {
      const seconds = run.seconds ?? [1.25, 1.5];
      return {
        exports: {
          history: (run.loss ?? [0.5, 0.25]).map((loss, i) => ({ loss, seconds: seconds[i] })),
          perEpochSeconds: run.perEpoch ?? [1.25, 1.5],
          rbmSecondsPerIteration: run.perIteration ?? 1.375,
        },
      };
    },
    sampler: () => ({
      exports: { seconds: run.samplerSeconds ?? 2 },
      outputs: [{ kind: 'table', name: 'speed', columns: ['images', 'ms per image'], rows: [[10, run.ms ?? 3]] }],
    }),
  });
  const PATTERNS = ['**.seconds', 'train:perEpochSeconds', 'rbmSecondsPerIteration', 'sampler:table "speed"[]["ms per image"]'];

  beforeEach(async () => {
    await writeFile(path.join(dir, 'doc.md'), timedDoc([]));
    await build(
      { docPath: path.join(dir, 'doc.md'), projectRoot: dir, executor: fakeExecutor(timed()), outDir: path.join(dir, 'build'), pdf: false },
      nodeEffects({ stdout: silent }),
    );
    // Declared after the results were committed: the declaration changes no key (else every cell would be uncommitted).
    await writeFile(path.join(dir, 'doc.md'), timedDoc(PATTERNS));
  });

  it('timings that differ: same, ok, with a note naming how many and where', async () => {
    const summary = await run(timed({ seconds: [1.3, 1.75], perEpoch: [1.3, 1.75], perIteration: 1.525, samplerSeconds: 2.5, ms: 3.25 })).result;
    expect(summary.ok).toBe(true);
    expect(summary.verdicts.map((v) => [v.id, v.status, v.detail])).toEqual([
      ['train', 'same', undefined],
      ['sampler', 'same', undefined],
    ]);
    expect(summary.verdicts[0]!.measured!.map((m) => m.path)).toEqual([
      'history[0].seconds',
      'history[1].seconds',
      'perEpochSeconds[0]',
      'perEpochSeconds[1]',
      'rbmSecondsPerIteration',
    ]);
    expect(formatVerdicts(summary)).toBe(
      'train    same  (5 measured values differ, not compared: history[].seconds ×2, first committed 1.25, re-run 1.3; ' +
        'perEpochSeconds[] ×2, first committed 1.25, re-run 1.3; rbmSecondsPerIteration committed 1.375, re-run 1.525)\n' +
        'sampler  same  (2 measured values differ, not compared: seconds committed 2, re-run 2.5; table "speed"[0]["ms per image"] committed 3, re-run 3.25)\n' +
        'verify at profile full: 2 same (2 with measured values that differ), 0 differ, 0 failed, 0 without a committed result\n',
    );
  });

  it('the note names at most 3 paths, numbers to 4 significant digits', () => {
    const m = (path: string, committed: unknown, rerun: unknown) => ({ path, general: path.replace(/\[\d+\]/g, '[]'), committed, rerun });
    expect(
      measuredNote([m('a[0].seconds', 41.2345678, 39.8), m('a[1].seconds', 1, 2), m('b', 0.000123456, 1e-4), m('c', 'slow', 'fast'), m('d', 1, 2), m('e', 1, 2)]),
    ).toBe('(6 measured values differ, not compared: a[].seconds ×2, first committed 41.23, re-run 39.8; b committed 0.0001235, re-run 0.0001; c committed "slow", re-run "fast"; and 2 more paths)');
  });

  it('a value that is not measured still differs, by its path, measured ones around it aside', async () => {
    const summary = await run(timed({ seconds: [1.3, 1.75], loss: [0.5, 0.3] })).result;
    expect(summary.ok).toBe(false);
    expect(summary.verdicts[0]).toMatchObject({ id: 'train', status: 'differs', detail: 'history[1].loss: committed 0.25, re-run 0.3' });
    const table = await run(timed({ ms: 4 })).result;
    expect(table.verdicts[1]).toMatchObject({ id: 'sampler', status: 'same' });
  });

  it('a measured value is still compared for presence and type/shape', async () => {
    const longer = await run(timed({ perEpoch: [1.25, 1.5, 1.75] })).result;
    expect(longer.ok).toBe(false);
    expect(longer.verdicts[0]).toMatchObject({ status: 'differs', detail: 'perEpochSeconds (measured): length 2 committed, 3 re-run' });
    const text = await run(timed({ perIteration: '1.375' })).result;
    expect(text.verdicts[0]).toMatchObject({ status: 'differs', detail: 'rbmSecondsPerIteration (measured): committed 1.375, re-run "1.375", a number then a string' });
    const gone = await run(timed({ seconds: [1.25] })).result;
    expect(gone.verdicts[0]).toMatchObject({ status: 'differs', detail: 'history[1].seconds (measured): committed 1.5, re-run undefined, a number then undefined' });
    const cell = await run(timed({ ms: '3 ms' })).result;
    expect(cell.verdicts[1]).toMatchObject({ status: 'differs', detail: 'table "speed"[0]["ms per image"] (measured): committed 3, re-run "3 ms", a number then a string' });
  });

  it('<cell>:<path> keeps a pattern to one cell', async () => {
    await writeFile(path.join(dir, 'doc.md'), timedDoc(['train:**.seconds', 'train:perEpochSeconds', 'rbmSecondsPerIteration']));
    const summary = await run(timed({ seconds: [1.3, 1.75], samplerSeconds: 2.5 })).result;
    expect(summary.verdicts.map((v) => [v.id, v.status, v.detail])).toEqual([
      ['train', 'same', undefined],
      ['sampler', 'differs', 'seconds: committed 2, re-run 2.5'],
    ]);
  });

  it('a malformed pattern is a positioned error and names nothing; the others still apply', async () => {
    await writeFile(path.join(dir, 'doc.md'), timedDoc(['**.seconds', 'perEpochSeconds[x]']));
    const summary = await run(timed({ seconds: [1.3, 1.75], perEpoch: [1.3, 1.75] })).result;
    expect(summary.file.messages.map((m) => [m.ruleId, m.line, m.column])).toEqual([['bad-measured', 6, 23]]);
    expect(summary.verdicts[0]).toMatchObject({ id: 'train', status: 'differs', detail: 'perEpochSeconds[0]: committed 1.25, re-run 1.3' });
  });
});

describe('the CLI', () => {
  it('npm run report -- --verify: real child processes, exit 0 when every cell is the same, 1 when one differs, 0 when only measured values differ', { timeout: 120_000 }, async () => {
    const doc = path.join(dir, 'real.md');
    await writeFile(
      doc,
      [
        '```ts run id=fixed',
        'export const values = new Float32Array([0.1, 0.2]);',
        '```',
        '',
        '```ts run id=noisy',
        'export const draw: number = Math.random();',
        '```',
        '',
      ].join('\n'),
    );
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src', 'cli.ts'), 'report', doc, '--no-pdf', '--out', path.join(dir, 'out'), ...args], {
        cwd: dir,
        encoding: 'utf8',
      });
    expect(cli().status).toBe(0);
    const before = await snapshot(path.join(dir, 'results'));
    const fixed = cli('--verify', 'fixed');
    expect(fixed.stdout).toMatch(/^fixed {2}same$/m);
    expect(fixed.status).toBe(0);
    const all = cli('--verify');
    expect(all.stdout).toMatch(/^noisy {2}differs {2}draw: committed 0\.\d+, re-run 0\.\d+$/m);
    expect(all.stdout).toContain('verify at profile full: 1 same, 1 differ');
    expect(all.status).toBe(1);
    // The draw declared measured: the same committed results (no key changed), exit 0.
    await writeFile(doc, ['---', 'verify:', '  measured:', "    - 'noisy:draw'", '---', '', await readFile(doc, 'utf8')].join('\n'));
    const measured = cli('--verify');
    expect(measured.stdout).toMatch(/^noisy {2}same {2}\(1 measured value differs, not compared: draw committed 0\.\d+, re-run 0\.\d+\)$/m);
    expect(measured.stdout).toContain('verify at profile full: 2 same (1 with measured values that differ), 0 differ');
    expect(measured.stderr).toBe('');
    expect(measured.status).toBe(0);
    expect(await snapshot(path.join(dir, 'results'))).toEqual(before);
  });
});
