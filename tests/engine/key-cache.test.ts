/**
 * The key cache (key-cache.ts): a remembered key is used only when everything its bundle was
 * made from is unchanged, is the key a fresh bundle gives, and is never run under when wrong.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundleOf, keyCells, type CellKey, type KeyContext } from '../../src/engine/key.ts';
import { keyCacheFrom, type KeyCache } from '../../src/engine/key-cache.ts';
import { loadDocument } from '../../src/engine/document.ts';
import { nodeEffects } from '../../src/engine/effects.ts';
import type { Cell } from '../../src/engine/types.ts';
import { installTinyPkg, makeCell, useExecHashProject } from '../fixtures/exec-helpers/cells.ts';

const runtimePath = resolve(import.meta.dirname, '../../src/engine/runtime.ts');

const project = useExecHashProject('key-cache-');

const cells = (): Cell[] => [
  makeCell('data', `import { twice } from './lib/a.ts';\nexport const xs = [twice(1), twice(2)];`),
  makeCell('model', `import { xs } from 'cell:data';\nimport { tiny } from 'tiny-pkg';\nexport const total = xs[0]! + xs[1]! + tiny;`, { codeLine: 30 }),
];
const order = ['data', 'model'];

function context(cache?: KeyCache, onCacheWrong?: () => Promise<void>): KeyContext {
  return { docPath: join(project.root, 'report.md'), projectRoot: project.root, profile: 'full', seed: 0, runtimePath, ...(cache ? { cache } : {}), ...(onCacheWrong ? { onCacheWrong } : {}) };
}

/** What a key says, without how it was obtained (bundle, loadBundle). */
const essence = (k: CellKey) => ({ key: k.key, inputs: k.inputs, packages: k.packages, exports: k.exports, fingerprint: k.fingerprint, previous: k.previous });

/** Keys with a cache that went through its file (serialised and read back), as between two commands. */
async function twice(change?: () => Promise<void>): Promise<{ first: Map<string, CellKey>; second: Map<string, CellKey>; cache: KeyCache }> {
  const written = keyCacheFrom(undefined);
  const first = await keyCells(cells(), order, context(written));
  expect(written.changed).toBe(true);
  await change?.();
  const cache = keyCacheFrom(written.serialize());
  const second = await keyCells(cells(), order, context(cache));
  return { first, second, cache };
}

const cached = (keys: Map<string, CellKey>) => [...keys].filter(([, k]) => k.loadBundle !== undefined).map(([id]) => id);

describe('key cache', () => {
  it('gives the keys a fresh bundle gives, without bundling', async () => {
    const { first, second, cache } = await twice();
    expect(cached(first)).toEqual([]);
    expect(cached(second)).toEqual(['data', 'model']);
    for (const id of order) {
      expect(essence(second.get(id)!)).toEqual(essence(first.get(id)!));
      expect(second.get(id)!.bundle).toBe('');
    }
    expect(cache.changed).toBe(false);
    // Building the bundle again on demand gives the bundle a fresh key has.
    for (const id of order) expect(await bundleOf(second.get(id)!)).toBe(first.get(id)!.bundle);
  });

  it('bundles again when an imported file changes, even by a comment only', async () => {
    const { first, second } = await twice(() => writeFile(join(project.root, 'lib', 'b.ts'), `// a comment\n${'export function scale(x: number, by: number): number {\n  return x * by;\n}\n'}`));
    // data bundles lib/b.ts: keyed afresh. A comment does not change what runs, so its key
    // (and its key under the previous scheme) is the same, and model's lookup, which covers
    // both, finds model's remembered key.
    expect(cached(second)).toEqual(['model']);
    expect(second.get('data')!.key).toBe(first.get('data')!.key);
  });

  it('bundles again when a file appears beside a bundled one (it could change what an import resolves to)', async () => {
    const { second } = await twice(() => writeFile(join(project.root, 'lib', 'c.ts'), 'export const c = 1;\n'));
    // model bundles no file of lib/ (it imports data's key, which did not change).
    expect(cached(second)).toEqual(['model']);
    // Files that no import resolves to (notes, a results folder) change nothing.
    const quiet = await twice(() => mkdir(join(project.root, 'lib', 'results')).then(() => writeFile(join(project.root, 'lib', 'notes.txt'), 'x')));
    expect(cached(quiet.second)).toEqual(['data', 'model']);
  });

  it('bundles again when a package version, the tsconfig or package.json changes', async () => {
    expect(cached((await twice(() => installTinyPkg(project.root, '1.0.1'))).second)).toEqual(['data']);
    expect(cached((await twice(() => writeFile(join(project.root, 'tsconfig.json'), '{"compilerOptions":{"verbatimModuleSyntax":true}}'))).second)).toEqual([]);
    expect(cached((await twice(() => writeFile(join(project.root, 'package.json'), '{"type":"module","imports":{}}'))).second)).toEqual([]);
  });

  it('a cell whose code, options, seed or imported key changed is not looked up under the old one', async () => {
    const written = keyCacheFrom(undefined);
    await keyCells(cells(), order, context(written));
    const cache = keyCacheFrom(written.serialize());
    const edited = cells();
    edited[0] = makeCell('data', `import { twice } from './lib/a.ts';\nexport const xs = [twice(1), twice(3)];`);
    const keys = await keyCells(edited, order, { ...context(cache), seed: 0 });
    // data changed, so model (which imports its key) is keyed afresh too.
    expect(cached(keys)).toEqual([]);
  });

  it('never runs a cell under a remembered key that proves wrong: the bundle is refused and the cache dropped', async () => {
    const written = keyCacheFrom(undefined);
    await keyCells(cells(), order, context(written));
    // A cache that lies: the entry's checks pass, its key is not the cell's.
    const data = JSON.parse(written.serialize()) as { entries: Record<string, { key: { key: string } }> };
    for (const entry of Object.values(data.entries)) entry.key.key = 'f'.repeat(64);
    let dropped = 0;
    const keys = await keyCells(cells(), order, context(keyCacheFrom(JSON.stringify(data)), async () => void dropped++));
    expect(keys.get('data')!.key).toBe('f'.repeat(64));
    await expect(bundleOf(keys.get('data')!)).rejects.toThrow(/remembered key of cell "data" is out of date/);
    expect(dropped).toBe(1);
  });

  it('a damaged or foreign cache file is an empty cache', async () => {
    for (const text of ['{', '[]', '{"format":"something else","entries":{"x":{}}}', 'null']) {
      const cache = keyCacheFrom(text);
      const keys = await keyCells(cells(), order, context(cache));
      expect(cached(keys)).toEqual([]);
      expect(keys.get('data')!.error).toBeUndefined();
    }
  });
});

describe('loadDocument with the key cache', () => {
  const doc = [
    '---',
    'seed: 3',
    '---',
    '',
    'Twice two is `{ts} xs[1]` and $x^2$ renders.',
    '',
    '```ts run id=data',
    "import { twice } from './lib/a.ts';",
    'export const xs = [twice(1), twice(2)];',
    '```',
    '',
  ].join('\n');

  it('keys from the cache file on the second command, remembers scans, expressions and math, and --no-cache bundles', async () => {
    await writeFile(join(project.root, 'doc.md'), doc);
    const effects = nodeEffects();
    const options = { docPath: join(project.root, 'doc.md'), projectRoot: project.root, cacheDir: join(project.root, 'cache') };
    const first = await loadDocument(options, effects);
    expect(first.keys.get('data')!.loadBundle).toBeUndefined();
    const [file] = (await import('node:fs')).readdirSync(join(project.root, 'cache'));
    const saved = JSON.parse(await readFile(join(project.root, 'cache', file!), 'utf8')) as { memos: { scans: object; inline: Record<string, string>; math: Record<string, string> } };
    expect(Object.keys(saved.memos.scans)).toHaveLength(1);
    expect(saved.memos.inline['xs[1]']).toBe('xs[1]');
    expect(saved.memos.math['i:x^2']).toBe('');

    const second = await loadDocument(options, effects);
    expect(second.keys.get('data')!.loadBundle).toBeDefined();
    expect(second.keys.get('data')!.key).toBe(first.keys.get('data')!.key);
    // The export names come from the bundle, and from the cache with the key: the same.
    expect(first.exports.get('data')).toEqual(['xs']);
    expect(second.exports.get('data')).toEqual(['xs']);

    const uncached = await loadDocument({ ...options, keyCache: false }, effects);
    expect(uncached.keys.get('data')!.loadBundle).toBeUndefined();
    expect(uncached.keys.get('data')!.key).toBe(first.keys.get('data')!.key);
  });
});
