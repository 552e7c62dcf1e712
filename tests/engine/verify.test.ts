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
import { formatVerdicts, verify, type VerifyOptions } from '../../src/engine/verify.ts';
import { fakeExecutor } from '../support/fake-executor.ts';

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

  it('reports the first differing export with both values, down to the element of a typed array', async () => {
    let calls = 0;
    const changing: Impl = { ...deterministic, c: () => ({ exports: { arr: new Float64Array([1, 2, 3 + 1e-12 * ++calls]) } }) };
    const summary = await run(changing).result;
    expect(summary.ok).toBe(false);
    const c = summary.verdicts.find((v) => v.id === 'c')!;
    expect(c.status).toBe('differs');
    expect(c.detail).toBe('export "arr": at [2]: committed 3, re-run 3.000000000001');
    expect(summary.verdicts.filter((v) => v.status === 'same').map((v) => v.id)).toEqual(['a', 'b']);
  });

  it('compares figures and tables bit for bit too', async () => {
    const figure = await run({ ...deterministic, a: () => ({ exports: { a: 2 }, outputs: [png(2)] }) }).result;
    expect(figure.verdicts[0]).toMatchObject({ id: 'a', status: 'differs', detail: 'figure "plot": 5 bytes committed, 5 re-run, first difference at byte 4' });
    const table = await run({ ...deterministic, c: () => ({ exports: { arr: new Float64Array([1, 2, 3]) }, outputs: [{ kind: 'table', name: 't', columns: ['x'], rows: [[2]] }] }) }).result;
    expect(table.verdicts[2]).toMatchObject({ id: 'c', status: 'differs', detail: 'table "t" row 1: committed [1], re-run [2]' });
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
    expect(differs.verdicts[1]).toMatchObject({ id: 'b', status: 'differs', detail: 'export "total": committed 5, re-run 6' });
  });
});

describe('the CLI', () => {
  it('npm run report -- --verify: real child processes, exit 0 when every cell is the same, 1 when one differs', { timeout: 120_000 }, async () => {
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
    expect(all.stdout).toMatch(/^noisy {2}differs {2}export "draw": committed 0\.\d+, re-run 0\.\d+$/m);
    expect(all.stdout).toContain('verify at profile full: 1 same, 1 differ');
    expect(all.status).toBe(1);
    expect(await snapshot(path.join(dir, 'results'))).toEqual(before);
  });
});
