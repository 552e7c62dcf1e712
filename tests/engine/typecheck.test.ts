import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VFile } from 'vfile';
import { buildGraph } from '../../src/engine/graph.ts';
import { exportNames, keyCells } from '../../src/engine/key.ts';
import { parseDocument, type ParsedDocument } from '../../src/engine/parse.ts';
import { typecheckCells } from '../../src/engine/typecheck.ts';

const projectRoot = path.resolve(import.meta.dirname, '../..');
const fixtures = path.join(projectRoot, 'tests/fixtures');
const runtimePath = path.join(fixtures, 'runtime-standin.ts');

async function load(file: string, value?: string) {
  return parseDocument(new VFile({ path: file, value: value ?? (await readFile(file, 'utf8')) }));
}

/** The cells' export names as a command has them: from their bundles (bundle.ts, through the keys). */
async function bundledExports(doc: ParsedDocument, docPath: string): Promise<Map<string, string[]>> {
  return exportNames(await keyCells(doc.cells, buildGraph(doc).order, { docPath, projectRoot, profile: 'full', seed: 0, runtimePath }));
}

let cacheDir: string;
beforeAll(async () => {
  cacheDir = await mkdtemp(path.join(tmpdir(), 'typecheck-cache-'));
});
afterAll(async () => {
  await rm(cacheDir, { recursive: true, force: true });
});

describe('typecheckCells', () => {
  it('reports a type error at the Markdown line of the code line (cell code from line 10, 3rd line → 12)', async () => {
    const doc = await load(path.join(fixtures, 'type-error/input.md'));
    expect(doc.cells[0]?.codeLine).toBe(10);
    const messages = typecheckCells(doc, { projectRoot, runtimePath });
    const cellError = messages.find((m) => m.reason.includes('cell "bad"'));
    expect(cellError?.ruleId).toBe('type-error');
    expect(cellError?.line).toBe(12);
    expect(cellError?.column).toBe(7);
    expect(cellError?.reason).toContain("Type 'string' is not assignable to type 'number'");
    expect(doc.file.messages).toContain(cellError);
  });

  it('checks inline expressions against the cells\' export types', async () => {
    const file = path.join(fixtures, 'type-error/input.md');
    const doc = await load(file);
    const messages = typecheckCells(doc, { projectRoot, runtimePath, exports: await bundledExports(doc, file) });
    const inline = messages.filter((m) => m.reason.includes('inline expression'));
    expect(inline).toHaveLength(1);
    expect(inline[0]?.line).toBe(15);
    expect(inline[0]?.reason).toContain("Property 'nope' does not exist on type 'number'");
  });

  it('does not check an expression that may read a cell that could not be bundled (its names are unknown)', async () => {
    const md = [
      '```ts run id=a',
      'export const a1 = 1;',
      '```',
      '',
      '```ts run id=b',
      "import { nothing } from './no-such-file.ts';",
      'export const b1 = nothing;',
      '```',
      '',
      'Values `{ts} a1.nope` and `{ts} b1.nope`.',
    ].join('\n');
    const file = path.join(fixtures, 'type-error/unbundled.md');
    const doc = await load(file, md);
    const exports = await bundledExports(doc, file);
    expect([...exports.keys()]).toEqual(['a']);
    const inline = typecheckCells(doc, { projectRoot, runtimePath, exports }).filter((m) => m.reason.includes('inline expression'));
    expect(inline.map((m) => m.reason.replace(/ \(TS\d+\)$/, ''))).toEqual([`type error in inline expression: Property 'nope' does not exist on type '1'.`]);
  });

  it('types a cell: import from the other cell, and resolves project files from the Markdown directory', async () => {
    const doc = await load(path.join(fixtures, 'type-error-import/input.md'));
    const messages = typecheckCells(doc, { projectRoot, runtimePath });
    expect(messages.map((m) => [m.line, m.reason.replace(/ \(TS\d+\)$/, '')])).toEqual([
      [11, `type error in cell "use": Argument of type 'string' is not assignable to parameter of type 'number'.`],
    ]);
  });

  it('reports nothing for correct cells and leaves unknown cell: imports to graph.ts', async () => {
    const md = [
      '```ts run id=a',
      "import { figure } from 'report:runtime';",
      'export const n: number = 3;',
      "figure('f', '<svg/>', { caption: 'c' });",
      '```',
      '',
      '```ts run id=b',
      "import { n } from 'cell:a';",
      "import { z } from 'cell:zz';",
      'export const m = n * 2;',
      '```',
      '',
      'Value `{ts} m + n`.',
    ].join('\n');
    const doc = await load(path.join(fixtures, 'type-error/ok.md'), md);
    expect(typecheckCells(doc, { projectRoot, runtimePath })).toEqual([]);
  });

  it('caches the outcome on disk and revalidates it against imported project files', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'typecheck-doc-'));
    const helper = path.join(dir, 'helper.ts');
    await writeFile(helper, 'export const k: number = 1;\n');
    const md = "```ts run id=a\nimport { k } from './helper.ts';\nexport const s: string = k;\n```\n";
    const before = new Set(await readdir(cacheDir));
    const first = typecheckCells(await load(path.join(dir, 'doc.md'), md), { projectRoot, runtimePath, cacheDir });
    expect(first).toHaveLength(1);
    // The entry was written: mark it, and the next check must return the marked problem.
    const written = (await readdir(cacheDir)).filter((name) => !before.has(name));
    expect(written).toHaveLength(1);
    const entryPath = path.join(cacheDir, written[0]!);
    const entry = JSON.parse(await readFile(entryPath, 'utf8'));
    entry.problems[0].reason = 'read from the cache';
    await writeFile(entryPath, JSON.stringify(entry));
    const cached = typecheckCells(await load(path.join(dir, 'doc.md'), md), { projectRoot, runtimePath, cacheDir });
    expect(cached.map((m) => m.reason)).toEqual(['read from the cache']);
    // Changing the imported file invalidates the entry: the error goes away.
    await writeFile(helper, "export const k: string = 'one';\n");
    expect(typecheckCells(await load(path.join(dir, 'doc.md'), md), { projectRoot, runtimePath, cacheDir })).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });

  it('checks a 20-cell document, from the cache, and again after an edit (times: npm run bench)', async () => {
    const cells = Array.from({ length: 20 }, (_, i) => {
      const imports = i > 0 ? `import { v${i - 1} } from 'cell:c${i - 1}';\n` : '';
      const value = i > 0 ? `v${i - 1} + ${i}` : '0';
      return `\`\`\`ts run id=c${i}\n${imports}export const v${i}: number = ${value};\n\`\`\`\n`;
    });
    const md = cells.join('\n');
    const file = path.join(fixtures, 'type-error/twenty.md');
    expect(typecheckCells(await load(file, md), { projectRoot, runtimePath, cacheDir })).toEqual([]);
    expect(typecheckCells(await load(file, md), { projectRoot, runtimePath, cacheDir })).toEqual([]);
    const edited = md.replace('export const v19: number = v18 + 19;', 'export const v19: string = v18 + 19;');
    const messages = typecheckCells(await load(file, edited), { projectRoot, runtimePath, cacheDir });
    expect(messages.map((m) => m.line)).toEqual([97]); // the last cell's only code line
  });

  it('carries nothing from one check to the next: two documents in two folders, one process', async () => {
    const make = async (type: string) => {
      const dir = await mkdtemp(path.join(tmpdir(), 'typecheck two-'));
      await mkdir(path.join(dir, 'lib'));
      await writeFile(path.join(dir, 'lib', 'a.ts'), `export const value: ${type} = ${type === 'number' ? '1' : "'one'"};\n`);
      return dir;
    };
    const numbers = await make('number');
    const strings = await make('string');
    const md = "# Doc\n\n```ts run id=a\nimport { value } from './lib/a.ts';\nexport const n: number = value;\n```\n";
    try {
      const check = async (dir: string) =>
        typecheckCells(await load(path.join(dir, 'doc.md'), md), { projectRoot, runtimePath, docPath: path.join(dir, 'doc.md') }).map((m) => [m.line, m.ruleId]);
      expect(await check(numbers)).toEqual([]);
      expect(await check(strings)).toEqual([[5, 'type-error']]);
      expect(await check(numbers)).toEqual([]);
    } finally {
      await rm(numbers, { recursive: true, force: true });
      await rm(strings, { recursive: true, force: true });
    }
  });
});
