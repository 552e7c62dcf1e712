import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VFile } from 'vfile';
import { parseDocument } from '../../src/engine/parse.ts';
import { typecheckCells } from '../../src/engine/typecheck.ts';

const projectRoot = path.resolve(import.meta.dirname, '../..');
const fixtures = path.join(projectRoot, 'tests/fixtures');
const runtimePath = path.join(fixtures, 'runtime-standin.ts');

async function load(file: string, value?: string) {
  return parseDocument(new VFile({ path: file, value: value ?? (await readFile(file, 'utf8')) }));
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
    const doc = await load(path.join(fixtures, 'type-error/input.md'));
    const messages = typecheckCells(doc, { projectRoot, runtimePath });
    const inline = messages.filter((m) => m.reason.includes('inline expression'));
    expect(inline).toHaveLength(1);
    expect(inline[0]?.line).toBe(15);
    expect(inline[0]?.reason).toContain("Property 'nope' does not exist on type 'number'");
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
    const first = typecheckCells(await load(path.join(dir, 'doc.md'), md), { projectRoot, runtimePath, cacheDir });
    expect(first).toHaveLength(1);
    const cached = typecheckCells(await load(path.join(dir, 'doc.md'), md), { projectRoot, runtimePath, cacheDir });
    expect(cached.map(String)).toEqual(first.map(String));
    // Changing the imported file invalidates the entry: the error goes away.
    await writeFile(helper, "export const k: string = 'one';\n");
    expect(typecheckCells(await load(path.join(dir, 'doc.md'), md), { projectRoot, runtimePath, cacheDir })).toEqual([]);
    await rm(dir, { recursive: true, force: true });
  });

  it('checks a 20-cell document quickly once warm', async () => {
    const cells = Array.from({ length: 20 }, (_, i) => {
      const imports = i > 0 ? `import { v${i - 1} } from 'cell:c${i - 1}';\n` : '';
      const value = i > 0 ? `v${i - 1} + ${i}` : '0';
      return `\`\`\`ts run id=c${i}\n${imports}export const v${i}: number = ${value};\n\`\`\`\n`;
    });
    const md = cells.join('\n');
    const file = path.join(fixtures, 'type-error/twenty.md');
    const t0 = performance.now();
    expect(typecheckCells(await load(file, md), { projectRoot, runtimePath, cacheDir })).toEqual([]);
    const t1 = performance.now();
    expect(typecheckCells(await load(file, md), { projectRoot, runtimePath, cacheDir })).toEqual([]);
    const t2 = performance.now();
    const edited = md.replace('export const v19: number = v18 + 19;', 'export const v19: string = v18 + 19;');
    const messages = typecheckCells(await load(file, edited), { projectRoot, runtimePath, cacheDir });
    const t3 = performance.now();
    expect(messages).toHaveLength(1);
    console.info(
      `typecheck 20 cells: first ${Math.round(t1 - t0)} ms, disk-cache hit ${Math.round(t2 - t1)} ms, one cell edited ${Math.round(t3 - t2)} ms`,
    );
    expect(t2 - t1).toBeLessThan(1000);
    expect(t3 - t2).toBeLessThan(1000);
  });
});
