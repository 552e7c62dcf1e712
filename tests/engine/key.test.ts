import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { keyCells, type KeyContext } from '../../src/engine/key.ts';
import { explainStale } from '../../src/engine/freshness.ts';
import type { Cell } from '../../src/engine/types.ts';
import { installTinyPkg, makeCell, useExecHashProject } from '../fixtures/exec-helpers/cells.ts';

const runtimePath = resolve(import.meta.dirname, '../../src/engine/runtime.ts');

const project = useExecHashProject('exec-hash-');
let context: KeyContext;

beforeEach(() => {
  context = { docPath: join(project.root, 'report.md'), projectRoot: project.root, profile: 'full', seed: 0, runtimePath };
});

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
    expect(data.exports).toEqual(['xs']);
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
    await writeFile(join(project.root, 'lib/b.ts'), 'export function scale(x: number, by: number): number {\n  return x * by + 0;\n}\n');
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
    const pkgPath = join(project.root, 'package.json');
    const pkg = JSON.parse(await readFile(pkgPath, 'utf8')) as Record<string, unknown>;
    pkg['devDependencies'] = { 'some-linter': '^9.0.0' };
    await writeFile(pkgPath, JSON.stringify(pkg, null, 2));
    await mkdir(join(project.root, 'node_modules', 'some-linter'), { recursive: true });
    await writeFile(join(project.root, 'node_modules', 'some-linter', 'package.json'), '{"name":"some-linter","version":"9.1.0"}');
    expect(await keysOf(documentCells())).toEqual(before);

    await installTinyPkg(project.root, '1.0.1');
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

describe('keys hash the code that runs, not the text it is written in', () => {
  const CELL = `import { twice } from './lib/a.ts';\nexport const xs = [twice(1), twice(2)];`;
  const A = "import { scale } from './b.ts';\n\nexport function twice(x: number): number {\n  return scale(x, 2);\n}\n";
  const B = 'export function scale(x: number, by: number): number {\n  return x * by;\n}\n';

  async function dataKey(cell = CELL): Promise<string> {
    return (await keysOf(documentCells({ data: cell })))['data']!;
  }
  async function withFile(file: 'a' | 'b', text: string): Promise<string> {
    await writeFile(join(project.root, 'lib', `${file}.ts`), text);
    return dataKey();
  }

  it('a comment-only edit in the cell keeps its key (line, block and JSDoc comments)', async () => {
    const before = await dataKey();
    expect(await dataKey(`// the data\nimport { twice } from './lib/a.ts'; // helper\n/** The doubled values. */\nexport const xs = [twice(1), /* first */ twice(2)];`)).toBe(before);
  });

  it('a whitespace or formatting edit in the cell keeps its key', async () => {
    const before = await dataKey();
    expect(await dataKey(`import {twice} from "./lib/a.ts"\n\n\nexport const xs = [\n  twice(1),\n  twice(2),\n];\n`)).toBe(before);
  });

  it('a type-only edit (annotations, a type alias, `as`, @ts- comments) keeps the key: types are erased', async () => {
    const before = await dataKey();
    expect(await dataKey(`import { twice } from './lib/a.ts';\n// @ts-expect-error\nexport const xs: readonly number[] = [twice(1), twice(2)] as number[];`)).toBe(before);
    expect(await withFile('b', 'type N = number;\nexport function scale(x: N, by: N): N {\n  return x * by;\n}\n')).toBe(before);
  });

  it('a comment-only, JSDoc or formatting edit in an imported file keeps the key', async () => {
    const before = await dataKey();
    expect(await withFile('a', `// helpers\n${A}`)).toBe(before);
    expect(await withFile('a', A.replace('export function twice', '/**\n * Twice x.\n * @param x a number\n */\nexport function twice'))).toBe(before);
    expect(await withFile('b', 'export function scale(x: number, by: number): number { return x * by; /* product */ }')).toBe(before);
    expect(await withFile('b', 'export function scale(\n  x: number,\n  by: number,\n): number {\n\n  return (x * by);\n}\n')).toBe(before);
  });

  it('a changed number literal re-keys, in the cell and in an imported file', async () => {
    const before = await dataKey();
    expect(await dataKey(CELL.replace('twice(2)', 'twice(3)'))).not.toBe(before);
    expect(await withFile('a', A.replace('scale(x, 2)', 'scale(x, 2.5)'))).not.toBe(before);
  });

  it('an edit inside a string or a template literal re-keys, even one that only adds spaces or comment-like text', async () => {
    const before = await dataKey(`import { twice } from './lib/a.ts';\nexport const label = 'a b';\nexport const xs = [twice(1), twice(2)];\nexport const t = \`x \${xs[0]}\`;`);
    expect(await dataKey(`import { twice } from './lib/a.ts';\nexport const label = 'a  b';\nexport const xs = [twice(1), twice(2)];\nexport const t = \`x \${xs[0]}\`;`)).not.toBe(before);
    expect(await dataKey(`import { twice } from './lib/a.ts';\nexport const label = 'a b';\nexport const xs = [twice(1), twice(2)];\nexport const t = \`x  \${xs[0]}\`;`)).not.toBe(before);
    expect(await dataKey(`import { twice } from './lib/a.ts';\nexport const label = 'a b // c';\nexport const xs = [twice(1), twice(2)];\nexport const t = \`x \${xs[0]}\`;`)).not.toBe(before);
    const plain = await dataKey();
    expect(await withFile('b', B.replace('x * by', '`${x * by}`.length'))).not.toBe(plain);
  });

  it('a renamed local variable may re-key (names are not minified)', async () => {
    const before = await withFile('b', B);
    expect(await withFile('b', B.replaceAll('by', 'factor'))).not.toBe(before);
  });

  it('the fingerprint names only the file whose code changed', async () => {
    const cells = documentCells();
    const before = (await keyCells(cells, order, context)).get('data')!.fingerprint!;
    await writeFile(join(project.root, 'lib', 'a.ts'), `// a comment\n${A}`);
    await writeFile(join(project.root, 'lib', 'b.ts'), B.replace('x * by', 'x * by + 1'));
    const after = (await keyCells(cells, order, context)).get('data')!.fingerprint!;
    expect(explainStale(before, after)).toEqual(['lib/b.ts changed']);
  });

  it('keeps the engine/2 key of the same sources (without packages read at run time), for the migration', async () => {
    const keys = await keyCells(documentCells(), order, context);
    const data = keys.get('data')!;
    const model = keys.get('model')!;
    expect(data.previous!.key).not.toBe(data.key);
    expect(data.fingerprint!.engine).toBe('literate-report-engine/3');
    expect(data.previous!.fingerprint).toEqual({ ...data.fingerprint, engine: 'literate-report-engine/2' });
    expect(data.previous!.readAtRunTime).toEqual({});
    // engine/2's key, as the engine computed it before: the same ingredients, engine/2's name,
    // the keys of imported cells under engine/2.
    const { createHash } = await import('node:crypto');
    const sha = (x: string) => createHash('sha256').update(x).digest('hex');
    const engine2 = (fp: NonNullable<typeof data.fingerprint>, id: string) =>
      sha(JSON.stringify({ engine: 'literate-report-engine/2', id, code: fp.code, options: fp.options, inputs: Object.entries(fp.inputs), deps: Object.entries(fp.deps), profile: fp.profile, seed: fp.seed, packages: Object.entries(fp.packages) }));
    expect(data.previous!.key).toBe(engine2(data.fingerprint!, 'data'));
    expect(model.previous!.fingerprint.deps).toEqual({ data: data.previous!.key });
    expect(model.previous!.key).toBe(engine2({ ...model.fingerprint!, deps: { data: data.previous!.key } }, 'model'));
    // Without packages read at run time, the two keys differ by the scheme's name only: a
    // comment edit changes neither.
    await writeFile(join(project.root, 'lib', 'a.ts'), `// a comment\n${A}`);
    const edited = (await keyCells(documentCells(), order, context)).get('data')!;
    expect(edited.key).toBe(data.key);
    expect(edited.previous!.key).toBe(data.previous!.key);
  });
});
