/**
 * Bundling a cell (bundle.ts): one esbuild build, and what its metafile says — the project
 * files, the packages with their versions, and the export names (their only source).
 */
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundleCell, packagesOf, type BundleContext } from '../../src/engine/bundle.ts';
import { keyCells } from '../../src/engine/key.ts';
import { makeCell, useExecHashProject } from '../fixtures/exec-helpers/cells.ts';

const runtimePath = resolve(import.meta.dirname, '../../src/engine/runtime.ts');

const project = useExecHashProject('bundle-');

function context(exports: Record<string, string[]> = {}): BundleContext {
  return {
    docDir: project.root,
    projectRoot: project.root,
    bundleDir: join(project.root, 'node_modules', '.cache', 'literate-report'),
    sourcefile: 'report.md#c.ts',
    runtimePath,
    exportsOf: async (id) => exports[id],
    versionOf: async (name) => (name === 'tiny-pkg' ? '1.0.0' : undefined),
  };
}

describe('bundleCell', () => {
  it("gives the cell's export names: declarations, destructuring, re-exports, default; not types", async () => {
    const cell = makeCell(
      'c',
      [
        "export { xs as alias } from 'cell:data';",
        'export const [x, { y }] = [1, { y: 2 }];',
        'export function f() {}',
        'export type T = number;',
        'export interface I { a: number }',
        'export default 3;',
      ].join('\n'),
    );
    const outcome = await bundleCell(cell, context({ data: ['xs'] }));
    expect(outcome.ok && [...outcome.bundle.exports].sort()).toEqual(['alias', 'default', 'f', 'x', 'y']);
  });

  it('sees through `export *` of a project file and of another cell, which a parse of the cell alone cannot', async () => {
    const outcome = await bundleCell(makeCell('c', "export * from './lib/a.ts';\nexport * from 'cell:data';"), context({ data: ['xs', 'n'] }));
    expect(outcome.ok && [...outcome.bundle.exports].sort()).toEqual(['n', 'twice', 'xs']);
  });

  it("makes each cell: module from the imported cell's export names, and refuses a cell that offers none", async () => {
    const outcome = await bundleCell(makeCell('c', "import { xs } from 'cell:data';\nexport const n = xs.length;"), context({ data: ['xs'] }));
    expect(outcome.ok && outcome.bundle.code).toContain('globalThis["__reportCells"]?.["data"]');
    const refused = await bundleCell(makeCell('c', "import { xs } from 'cell:data';\nexport const n = xs.length;"), context());
    expect(!refused.ok && refused.problem).toMatchObject({ ruleId: 'cell-import', line: 10 });
    expect(!refused.ok && refused.problem.message).toContain('cell "data" has no exports to import');
  });

  it('records the project files and packages it read; a package not installed is a problem at its import, with the export names', async () => {
    const outcome = await bundleCell(makeCell('c', "import { twice } from './lib/a.ts';\nimport { tiny } from 'tiny-pkg';\nimport { join } from 'node:path';\nexport const v = twice(tiny) + join('a').length;"), context());
    expect(outcome.ok && outcome.bundle.inputs).toEqual(['lib/a.ts', 'lib/b.ts']);
    expect(outcome.ok && outcome.bundle.packages).toEqual({ 'tiny-pkg': '1.0.0' });
    const missing = await bundleCell(makeCell('c', "export const one = 1;\nimport x from 'not-installed-pkg/sub';\nexport const y = x;"), context());
    expect(!missing.ok && missing.problem).toMatchObject({ ruleId: 'cell-package', line: 11, column: 15 });
    expect(!missing.ok && missing.exports).toEqual(['one', 'y']);
  });
});

describe('packagesOf', () => {
  it('maps external specifiers to installed versions by package, in specifier order, skipping builtins and paths', async () => {
    const versions: Record<string, string> = { a: '1.0.0', '@s/b': '2.0.0' };
    const versionOf = async (name: string) => versions[name];
    expect(await packagesOf(['node:fs', 'fs', '@s/b/deep', 'a', './x.js', 'a/sub'], versionOf)).toEqual({ packages: { '@s/b': '2.0.0', a: '1.0.0' } });
    expect(await packagesOf(['a', 'z/sub', 'y'], versionOf)).toEqual({ missing: { name: 'y', specifier: 'y' } });
  });
});

describe('export names flow from the bundle to the key and to the importing cells', () => {
  it("a key carries its bundle's export names, and a cell imports a name its dependency re-exports from a project file", async () => {
    await writeFile(join(project.root, 'report.md'), '');
    const cells = [makeCell('data', "export * from './lib/a.ts';\nexport const xs = [1];"), makeCell('use', "import { twice, xs } from 'cell:data';\nexport const v = twice(xs[0]!);", { codeLine: 30 })];
    const keys = await keyCells(cells, ['data', 'use'], { docPath: join(project.root, 'report.md'), projectRoot: project.root, profile: 'full', seed: 0, runtimePath });
    expect(keys.get('data')!.exports).toEqual(['twice', 'xs']);
    expect(keys.get('use')!.error).toBeUndefined();
    expect(keys.get('use')!.exports).toEqual(['v']);
  });
});
