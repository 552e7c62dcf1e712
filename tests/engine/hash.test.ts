import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keyCells, type KeyContext } from '../../src/engine/hash.ts';
import type { Cell } from '../../src/engine/types.ts';
import { makeCell } from '../fixtures/exec-helpers/cells.ts';

const fixture = resolve(import.meta.dirname, '../fixtures/exec-hash');
const runtimePath = resolve(import.meta.dirname, '../../src/engine/runtime.ts');

let root: string;
let context: KeyContext;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'exec-hash-'));
  await cp(fixture, root, { recursive: true });
  await installTinyPkg('1.0.0');
  context = { docPath: join(root, 'report.md'), projectRoot: root, profile: 'full', seed: 0, runtimePath };
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function installTinyPkg(version: string): Promise<void> {
  const dir = join(root, 'node_modules', 'tiny-pkg');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'tiny-pkg', version, type: 'module', main: 'index.js' }));
  await writeFile(join(dir, 'index.js'), 'export const tiny = 1;\n');
}

function documentCells(overrides: Partial<Record<'data' | 'model' | 'alone', string>> = {}): Cell[] {
  return [
    makeCell('data', overrides.data ?? `import { twice } from './lib/a.ts';\nexport const xs = [twice(1), twice(2)];`),
    makeCell('model', overrides.model ?? `import { xs } from 'cell:data';\nimport { tiny } from 'tiny-pkg';\nexport const total = xs[0]! + xs[1]! + tiny;`, { codeLine: 30 }),
    makeCell('alone', overrides.alone ?? `import { profile } from 'report:runtime';\nexport const p = profile;`, { codeLine: 50 }),
  ];
}
const order = ['data', 'model', 'alone'];

async function keysOf(cells: Cell[], ctx: KeyContext = context): Promise<Record<string, string>> {
  const keys = await keyCells(cells, order, ctx);
  return Object.fromEntries([...keys].map(([id, k]) => [id, k.key]));
}

describe('keyCells', () => {
  it('records inputs, packages, exports and a bundle', async () => {
    const keys = await keyCells(documentCells(), order, context);
    const data = keys.get('data')!;
    expect(data.error).toBeUndefined();
    expect(data.inputs).toEqual(['lib/a.ts', 'lib/b.ts']);
    expect(data.exportsHint).toEqual(['xs']);
    expect(data.bundle).toContain('sourceMappingURL=data:');
    const model = keys.get('model')!;
    expect(model.packages).toEqual({ 'tiny-pkg': '1.0.0' });
    expect(model.bundle).toContain('__reportCells');
    expect(keys.get('alone')!.bundle).toContain(runtimePath);
    expect(data.key).toMatch(/^[0-9a-f]{64}$/);
  });

  it('gives the same keys for an unchanged rebuild', async () => {
    expect(await keysOf(documentCells())).toEqual(await keysOf(documentCells()));
  });

  it('gives the same keys after a prose-only edit that moves the cells', async () => {
    const before = await keysOf(documentCells());
    const moved = documentCells().map((cell) => ({ ...cell, codeLine: cell.codeLine + 7, position: { start: { line: 1, column: 1 }, end: { line: 2, column: 1 } } }));
    expect(await keysOf(moved)).toEqual(before);
  });

  it('re-keys an edited cell and its importers only', async () => {
    const before = await keysOf(documentCells());
    const after = await keysOf(documentCells({ data: `import { twice } from './lib/a.ts';\nexport const xs = [twice(1), twice(3)];` }));
    expect(after['data']).not.toBe(before['data']);
    expect(after['model']).not.toBe(before['model']);
    expect(after['alone']).toBe(before['alone']);

    const edited = await keysOf(documentCells({ model: `import { xs } from 'cell:data';\nexport const total = xs.length;` }));
    expect(edited['data']).toBe(before['data']);
    expect(edited['model']).not.toBe(before['model']);
  });

  it('re-keys when an indirectly imported project file changes', async () => {
    const before = await keysOf(documentCells());
    await writeFile(join(root, 'lib/b.ts'), 'export function scale(x: number, by: number): number {\n  return x * by + 0;\n}\n');
    const after = await keysOf(documentCells());
    expect(after['data']).not.toBe(before['data']);
    expect(after['model']).not.toBe(before['model']);
    expect(after['alone']).toBe(before['alone']);
  });

  it('re-keys on profile, seed and cell seed changes', async () => {
    const before = await keysOf(documentCells());
    const quick = await keysOf(documentCells(), { ...context, profile: 'quick' });
    expect(quick['alone']).not.toBe(before['alone']);
    const seeded = await keysOf(documentCells(), { ...context, seed: 7 });
    expect(seeded['data']).not.toBe(before['data']);
    const cells = documentCells();
    cells[2] = makeCell('alone', cells[2]!.code, { codeLine: 50, seed: 0 });
    expect((await keysOf(cells, { ...context, seed: 7 }))['alone']).toBe(before['alone']);
  });

  it('ignores unrelated package changes but not the installed version of an imported one', async () => {
    const before = await keysOf(documentCells());
    const pkgPath = join(root, 'package.json');
    const pkg = JSON.parse(await readFile(pkgPath, 'utf8')) as Record<string, unknown>;
    pkg['devDependencies'] = { 'some-linter': '^9.0.0' };
    await writeFile(pkgPath, JSON.stringify(pkg, null, 2));
    await mkdir(join(root, 'node_modules', 'some-linter'), { recursive: true });
    await writeFile(join(root, 'node_modules', 'some-linter', 'package.json'), '{"name":"some-linter","version":"9.1.0"}');
    expect(await keysOf(documentCells())).toEqual(before);

    await installTinyPkg('1.0.1');
    const after = await keysOf(documentCells());
    expect(after['model']).not.toBe(before['model']);
    expect(after['data']).toBe(before['data']);
  });

  it('reports a syntax error at its Markdown position without throwing', async () => {
    const keys = await keyCells(documentCells({ data: `const a = 1;\nconst b = ;\nexport { a, b };` }), order, context);
    const error = keys.get('data')!.error!;
    expect(error.line).toBe(10 + 1);
    expect(error.column).toBe(11);
    expect(error.ruleId).toBe('cell-syntax');
    expect(keys.get('model')!.error).toMatchObject({ ruleId: 'cell-dependency', line: 30 });
    expect(keys.get('alone')!.error).toBeUndefined();
  });

  it('reports unresolvable imports and missing packages at the import line', async () => {
    const keys = await keyCells(
      documentCells({
        data: `export const one = 1;\nimport { nope } from './lib/missing.ts';\nexport const n = nope;`,
        alone: `\nimport x from 'not-installed-pkg';\nexport const y = x;`,
      }),
      order,
      context,
    );
    expect(keys.get('data')!.error).toMatchObject({ ruleId: 'cell-import', line: 11, column: 22 });
    expect(keys.get('alone')!.error).toMatchObject({ ruleId: 'cell-package', line: 51, column: 15 });
    expect(keys.get('alone')!.error!.message).toContain('not-installed-pkg');
  });

  it('reports importing a name the dependency does not export', async () => {
    const keys = await keyCells(documentCells({ model: `import { missing } from 'cell:data';\nexport const m = missing;` }), order, context);
    expect(keys.get('model')!.error).toMatchObject({ ruleId: 'cell-import', line: 30 });
    expect(keys.get('model')!.error!.message).toContain('missing');
  });
});
