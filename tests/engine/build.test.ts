/**
 * The whole pipeline (parse → graph → keys → store → execute → weave) on real files in a
 * temporary directory, with the fake executor: what re-runs after which edit, what
 * `check` reports, how failures and corrupt entries are handled.
 */
import { mkdtemp, readFile, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { build, type BuildOptions } from '../../src/engine/build.ts';
import { check } from '../../src/engine/check.ts';
import { nodeEffects, type Effects } from '../../src/engine/effects.ts';
import { childProcessExecutor, type Executor } from '../../src/engine/child-launcher.ts';
import { fakeExecutor } from '../support/fake-executor.ts';

let dir: string;
const silent = { write: () => {}, isTTY: false };

const DOC = (opts: { prose?: string; a?: string; claim?: string } = {}) => `---
title: Pipeline
seed: 7
---

## Intro

${opts.prose ?? 'Some prose.'} A is \`{ts} a\` and the sum is \`{ts} total\` \`{claim} ${opts.claim ?? 'total === 5'}\`.

\`\`\`ts run id=a
import { helper } from './lib/a.ts';
export const a: number = helper(${opts.a ?? '2'});
\`\`\`

\`\`\`ts run id=b
import { a } from 'cell:a';
export const total: number = a + 3;
\`\`\`

\`\`\`ts run id=c
export const c: string = 'independent';
\`\`\`
`;

function impl() {
  return fakeExecutor(
    {
      a: () => ({ exports: { a: 2 } }),
      b: (deps) => ({ exports: { total: (deps.a!.a as number) + 3 } }),
      c: () => ({ exports: { c: 'independent' } }),
    },
    { delayMs: 20 },
  );
}

async function setup(doc = DOC()): Promise<void> {
  await mkdir(path.join(dir, 'lib'), { recursive: true });
  await writeFile(path.join(dir, 'lib', 'a.ts'), "import { twice } from './b.ts';\nexport const helper = (x: number): number => twice(x) / 2;\n");
  await writeFile(path.join(dir, 'lib', 'b.ts'), 'export const twice = (x: number): number => 2 * x;\n');
  await writeFile(path.join(dir, 'doc.md'), doc);
}

function run<E extends Executor = ReturnType<typeof impl>>(executor: E = impl() as unknown as E, extra: Partial<BuildOptions> = {}) {
  const effects: Effects = nodeEffects({ stdout: silent });
  const options: BuildOptions = { docPath: path.join(dir, 'doc.md'), projectRoot: dir, outDir: path.join(dir, 'build'), pdf: false, ...extra, executor };
  return { executor, result: build(options, effects) };
}

function runCheck() {
  const effects = nodeEffects({ stdout: silent });
  return check({ docPath: path.join(dir, 'doc.md'), projectRoot: dir, cacheDir: path.join(dir, '.tc') }, effects);
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'report-build-'));
  await setup();
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('what a build re-runs', () => {
  it('runs everything first, then nothing when unchanged or when only prose changed', async () => {
    const first = run();
    const summary = await first.result;
    expect(summary.ran.sort()).toEqual(['a', 'b', 'c']);
    expect(summary.file.messages.map(String)).toEqual([]);
    expect(await readFile(path.join(dir, 'build', 'doc.html'), 'utf8')).toMatch(/A is <span[^>]*>2<\/span> and the sum is <span[^>]*>5<\/span>/);

    const again = run();
    expect((await again.result).ran).toEqual([]);
    expect(again.executor.calls).toEqual([]);

    await writeFile(path.join(dir, 'doc.md'), DOC({ prose: 'Rewritten prose, $x^2$.' }));
    const prose = run();
    const proseSummary = await prose.result;
    expect(prose.executor.calls).toEqual([]);
    expect(proseSummary.fresh.sort()).toEqual(['a', 'b', 'c']);
    expect(await readFile(path.join(dir, 'build', 'doc.html'), 'utf8')).toContain('Rewritten prose');
  });

  it('re-runs an edited cell and its dependents only (not for a comment: keys hash the code that runs)', async () => {
    await run().result;
    await writeFile(path.join(dir, 'doc.md'), DOC({ a: '2 /* edited */' }));
    const commented = run();
    await commented.result;
    expect(commented.executor.calls).toEqual([]);
    await writeFile(path.join(dir, 'doc.md'), DOC({ a: '2 + 0' }));
    const edited = run();
    await edited.result;
    expect(edited.executor.calls.sort()).toEqual(['a', 'b']);
  });

  it('re-runs a cell when a project file it imports indirectly changes', async () => {
    await run().result;
    await writeFile(path.join(dir, 'lib', 'b.ts'), 'export const twice = (x: number): number => x + x;\n');
    const edited = run();
    await edited.result;
    expect(edited.executor.calls.sort()).toEqual(['a', 'b']);
  });

  it('runs independent cells in parallel up to --jobs', async () => {
    const two = run(impl(), { jobs: 2 });
    await two.result;
    expect(two.executor.maxConcurrent).toBe(2);
    await rm(path.join(dir, 'results'), { recursive: true });
    const one = run(impl(), { jobs: 1 });
    await one.result;
    expect(one.executor.maxConcurrent).toBe(1);
  });

  it('--rerun re-runs the named cell and its dependents even when fresh', async () => {
    await run().result;
    const forced = run(impl(), { rerun: ['a'] });
    await forced.result;
    expect(forced.executor.calls.sort()).toEqual(['a', 'b']);
    await expect(run(impl(), { rerun: ['nope'] }).result).rejects.toThrow(/--rerun nope: no cell has this id/);
  });

  it('--only runs the named cells and the stale cells they import, and leaves the others stale, reported and out of the good page', async () => {
    const partial = run(impl(), { only: ['b'] });
    const summary = await partial.result;
    expect(partial.executor.calls.sort()).toEqual(['a', 'b']);
    expect(summary.notRun).toEqual(['c']);
    expect(summary.skipped).toEqual(['c']);
    const notRun = summary.file.messages.filter((m) => m.ruleId === 'not-run');
    expect(notRun.map((m) => [m.line, m.fatal])).toEqual([[DOC().split('\n').indexOf('```ts run id=c') + 1, false]]);
    expect(notRun[0]!.message).toMatch(/cell "c" is stale and was not run \(--only b\)/);
    // The partial page is not the good one: it goes beside it.
    expect(summary.failedHtmlPath).toBe(path.join(dir, 'build', 'doc.failed.html'));
    expect(await readFile(summary.failedHtmlPath!, 'utf8')).toMatch(/the sum is <span[^>]*>5<\/span>/);
    await expect(readFile(path.join(dir, 'build', 'doc.html'), 'utf8')).rejects.toThrow();

    // What ran is stored: the full build that follows runs only what --only left.
    const rest = run();
    const full = await rest.result;
    expect(rest.executor.calls).toEqual(['c']);
    expect(full.notRun).toBeUndefined();
    expect(full.failedHtmlPath).toBeUndefined();
    await expect(run(impl(), { only: ['nope'] }).result).rejects.toThrow(/--only nope: no cell has this id/);
  });
});

describe('the page before the writing (BuildOptions.onPage)', () => {
  it('is given the woven page before it is written, with every message; what is written is that page', async () => {
    await run().result;
    const htmlPath = path.join(dir, 'build', 'doc.html');
    const failedPath = path.join(dir, 'build', 'doc.failed.html');
    const exists = (file: string) => readFile(file).then(() => true, () => false);
    for (const [prose, written] of [['Edited prose.', htmlPath], ['Cites [@nobody].', failedPath]] as const) {
      await rm(written, { force: true });
      await writeFile(path.join(dir, 'doc.md'), DOC({ prose }));
      const seen: { page: string; existed: boolean; rules: string[] }[] = [];
      const summary = await run(impl(), {
        onPage: async ({ file, page }) => void seen.push({ page, existed: await exists(written), rules: file.messages.map((m) => m.ruleId ?? '') }),
      }).result;
      expect(seen).toHaveLength(1);
      expect(seen[0]!.existed).toBe(false);
      expect(seen[0]!.page).toContain(prose.split(' ')[0]);
      if (written === failedPath) expect(seen[0]!.rules.length).toBeGreaterThan(0);
      expect(seen[0]!.rules).toEqual(summary.file.messages.map((m) => m.ruleId ?? ''));
      expect(await readFile(written, 'utf8')).toBe(seen[0]!.page);
    }
    await writeFile(path.join(dir, 'doc.md'), DOC({ prose: 'Edited prose.' }));
    await run().result;
    // Nothing changed: the remembered page is given too, and nothing is written.
    const again: string[] = [];
    const same = await run(impl(), { onPage: ({ page }) => void again.push(page) }).result;
    expect(same.upToDate).toBe(true);
    expect(again).toEqual([await readFile(htmlPath, 'utf8')]);
  });
});

describe('caches between commands written later (LoadOptions.deferWrite)', () => {
  it('hands over the key and parse cache writes instead of doing them; done later, they are the caches', async () => {
    const cacheDir = path.join(dir, 'cache');
    const tasks: (() => Promise<void>)[] = [];
    await run(impl(), { cacheDir, deferWrite: (task) => void tasks.push(task) }).result;
    const cached = async () => (await readdir(cacheDir).catch(() => [] as string[])).filter((f) => /^(keys|parse)-/.test(f)).map((f) => f.split('-')[0]).sort();
    expect(tasks.length).toBeGreaterThanOrEqual(2);
    expect(await cached()).toEqual([]);
    for (const task of tasks) await task();
    expect(await cached()).toEqual(['keys', 'parse']);
    // Read back by the next command: nothing runs, and the page is the one remembered.
    const again = await run(impl(), { cacheDir }).result;
    expect(again.ran).toEqual([]);
  });
});

describe('the results store', () => {
  it('detects a corrupted entry, reports it, and recomputes it', async () => {
    await run().result;
    const names = await readdir(path.join(dir, 'results'));
    const payload = names.find((n) => n.startsWith('a.') && !n.endsWith('.json')) ?? names.find((n) => n.startsWith('a.'))!;
    const file = path.join(dir, 'results', payload);
    const bytes = await readFile(file);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0xff;
    await writeFile(file, bytes);

    const repaired = run();
    const summary = await repaired.result;
    expect(repaired.executor.calls).toEqual(['a']);
    expect(summary.file.messages.map((m) => m.ruleId)).toEqual(['corrupt-result']);
    expect((await run().result).ran).toEqual([]);
  });

  it('removes entries no cell uses after a clean build', async () => {
    await run().result;
    const before = (await readdir(path.join(dir, 'results'))).filter((n) => n.startsWith('a.'));
    await writeFile(path.join(dir, 'doc.md'), DOC({ a: '2 + 0' }));
    const summary = await run().result;
    const after = (await readdir(path.join(dir, 'results'))).filter((n) => n.startsWith('a.'));
    expect(summary.removed.length).toBeGreaterThan(0);
    expect(after.length).toBe(before.length);
    expect(after).not.toEqual(before);
  });

  it('writes figures from the store: full ones to figures/, other profiles beside them', async () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
    const withFigure = () =>
      fakeExecutor({
        a: () => ({ exports: { a: 2 }, outputs: [{ kind: 'figure', name: 'plot', ext: 'png', data: png, caption: 'A plot.' }] }),
        b: () => ({ exports: { total: 5 } }),
        c: () => ({ exports: { c: 'independent' } }),
      });
    await run(withFigure(), { profile: 'quick' }).result;
    expect(await readdir(path.join(dir, 'figures', 'profiles', 'quick'))).toEqual(['a-plot.png']);
    await run(withFigure()).result;
    expect(await readFile(path.join(dir, 'figures', 'a-plot.png'))).toEqual(Buffer.from(png));
    // A fresh clone: figures/ deleted, nothing runs, the figure comes back from the store.
    await rm(path.join(dir, 'figures'), { recursive: true });
    const clone = run(withFigure());
    await clone.result;
    expect(clone.executor.calls).toEqual([]);
    expect(await readFile(path.join(dir, 'figures', 'a-plot.png'))).toEqual(Buffer.from(png));
  });

  it('keeps quick-profile results apart from the committed full ones', async () => {
    await run(impl(), { profile: 'quick' }).result;
    expect(await readdir(path.join(dir, 'results'))).toEqual(['profiles']);
    expect((await readdir(path.join(dir, 'results', 'profiles', 'quick'))).some((n) => n.startsWith('a.'))).toBe(true);
  });
});

describe('failures', () => {
  it('a failing cell skips its dependents, not independent cells, and fails the build', async () => {
    const executor = fakeExecutor({
      a: () => {
        throw new Error('boom');
      },
      b: () => ({ exports: { total: 0 } }),
      c: () => ({ exports: { c: 'x' } }),
    });
    const summary = await run(executor).result;
    expect(summary.failed).toEqual(['a']);
    expect(summary.skipped).toEqual(['b']);
    expect(summary.ran).toEqual(['c']);
    const message = summary.file.messages.find((m) => m.ruleId === 'cell-error');
    expect(message?.reason).toMatch(/cell "a" failed: boom/);
    expect(message?.fatal).toBe(true);
    expect(summary.removed).toEqual([]);
  });

  it('reports a throwing cell at the Markdown line of the throw (real child process)', async () => {
    const doc = `# T\n\nText.\n\n\`\`\`ts run id=bad\nconst x = 1;\nconst y = x + 1;\nthrow new Error('broken on purpose ' + y);\n\`\`\`\n`;
    await writeFile(path.join(dir, 'doc.md'), doc);
    const summary = await run(childProcessExecutor({})).result;
    const message = summary.file.messages.find((m) => m.ruleId === 'cell-error');
    expect(message?.reason).toContain('broken on purpose 2');
    expect(message?.line).toBe(8);
    expect(summary.failedHtmlPath).toBe(path.join(dir, 'build', 'doc.failed.html'));
    expect(await readFile(path.join(dir, 'build', 'doc.failed.html'), 'utf8')).toContain('broken on purpose 2');
  }, 30_000);
});

describe('more rules', () => {
  it('cell-timeout: a cell running past its timeout is stopped and reported at its fence (real child process)', async () => {
    const doc = `# T\n\n\`\`\`ts run id=spin timeout=1\nexport const never = 1;\nwhile (true) {}\n\`\`\`\n`;
    await writeFile(path.join(dir, 'doc.md'), doc);
    const started = Date.now();
    const summary = await run(childProcessExecutor({})).result;
    const message = summary.file.messages.find((m) => m.ruleId === 'cell-timeout');
    expect(message?.reason).toMatch(/cell "spin" timed out/);
    expect(message?.line).toBe(3);
    expect(message?.fatal).toBe(true);
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 30_000);

  it('duplicate-label: two figures with one name are reported', async () => {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const figure = { kind: 'figure' as const, name: 'plot', ext: 'png' as const, data: png };
    const executor = fakeExecutor({
      a: () => ({ exports: { a: 2 }, outputs: [figure] }),
      b: () => ({ exports: { total: 5 } }),
      c: () => ({ exports: { c: 'independent' }, outputs: [figure] }),
    });
    const summary = await run(executor).result;
    const message = summary.file.messages.find((m) => m.ruleId === 'duplicate-label');
    expect(message?.reason).toMatch(/plot/);
  });
});

describe('check', () => {
  it('passes on fresh results and true claims, without running anything', async () => {
    await run().result;
    const summary = await runCheck();
    expect(summary.file.messages.map(String)).toEqual([]);
    expect(summary.fresh.sort()).toEqual(['a', 'b', 'c']);
  });

  it('reports stale results after an edit, and never runs a cell', async () => {
    await run().result;
    await writeFile(path.join(dir, 'lib', 'b.ts'), 'export const twice = (x: number): number => x * 2 + 0;\n');
    const summary = await runCheck();
    expect(summary.stale.sort()).toEqual(['a', 'b']);
    const stale = summary.file.messages.filter((m) => m.ruleId === 'stale-result');
    expect(stale.map((m) => m.line)).toEqual([10, 15]); // the fences of a and b
    // Each message says what changed: a's imported file, and through it b's dependency.
    expect(stale[0]!.reason).toContain('(lib/b.ts changed)');
    expect(stale[1]!.reason).toContain('(the result of cell "a" it imports changed)');
  });

  it('reports missing results in a fresh store', async () => {
    const summary = await runCheck();
    expect(summary.missing.sort()).toEqual(['a', 'b', 'c']);
  });

  it('fails on a false claim, naming the sentence, expression and values', async () => {
    await writeFile(path.join(dir, 'doc.md'), DOC({ claim: 'total > 6' }));
    await run().result;
    const summary = await runCheck();
    const claim = summary.file.messages.find((m) => m.ruleId === 'claim-false');
    expect(claim?.line).toBe(8);
    expect(claim?.reason).toContain('total > 6');
    expect(claim?.reason).toContain('total = 5');
  });

  it('reports a type error at the Markdown line of the cell', async () => {
    await writeFile(path.join(dir, 'doc.md'), DOC().replace("export const c: string = 'independent';", 'export const c: string = 42;'));
    await run().result;
    const summary = await runCheck();
    const error = summary.file.messages.find((m) => m.ruleId === 'type-error');
    expect(error?.line).toBe(21); // `export const c: string = 42;`
  });
});
