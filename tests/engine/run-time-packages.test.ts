/**
 * Packages a cell reads at run time (a dataset found with `createRequire(…).resolve` and
 * read with fs) are part of its key by version, and one that is not installed is a
 * positioned `cell-package` problem in `report` and `check` instead of Node's raw
 * "Cannot find module" when the cell runs.
 */
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { build } from '../../src/engine/build.ts';
import { check } from '../../src/engine/check.ts';
import { nodeEffects } from '../../src/engine/effects.ts';
import { keyCells, type KeyContext } from '../../src/engine/key.ts';
import { packagesResolvedAtRunTime } from '../../src/engine/run-time-packages.ts';
import { installTinyPkg, makeCell } from '../fixtures/exec-helpers/cells.ts';
import { fakeExecutor } from '../support/fake-executor.ts';

describe('packagesResolvedAtRunTime (the bundle as esbuild prints it)', () => {
  const specifiers = (code: string) => packagesResolvedAtRunTime(code).map((r) => r.specifier);

  it('finds require.resolve, createRequire(…).resolve, a name bound to createRequire(…) and import.meta.resolve', () => {
    expect(specifiers('const p = __require.resolve("data-a/package.json");')).toEqual(['data-a/package.json']);
    expect(specifiers('const p = require.resolve(\'data-b\');')).toEqual(['data-b']);
    expect(specifiers('const p = createRequire(import.meta.url).resolve("data-c/package.json");')).toEqual(['data-c/package.json']);
    expect(specifiers('var p = module.createRequire(fileURLToPath(new URL(".", import.meta.url))).resolve("data-d");')).toEqual(['data-d']);
    expect(specifiers('import { createRequire as createRequire2 } from "node:module";\nvar req = createRequire2(import.meta.url);\nreq.resolve("data-e/x.bin");')).toEqual(['data-e/x.bin']);
    expect(specifiers('import { createRequire as cr } from "node:module";\nlet r2; r2 = cr(import.meta.url);\nr2.resolve(`data-f`);')).toEqual(['data-f']);
    expect(specifiers('const u = import.meta.resolve("data-g/set");')).toEqual(['data-g/set']);
  });

  it('keeps scoped packages and sub-paths as written', () => {
    expect(specifiers('__require.resolve("@lab/mnist/data/train.idx");\ncreateRequire(import.meta.url).resolve("@lab/other/package.json");')).toEqual([
      '@lab/mnist/data/train.idx',
      '@lab/other/package.json',
    ]);
  });

  it('does not take path.resolve, Promise.resolve, another object\'s resolve or a specifier built at run time', () => {
    expect(specifiers('path.resolve("data-a"); path2.resolve("x"); posix.resolve("y"); Promise.resolve("z"); resolver.resolve("w"); x.require.resolve("v");')).toEqual([]);
    expect(specifiers('__require.resolve(name + "/package.json"); createRequire(import.meta.url).resolve(`${name}/x`);')).toEqual([]);
  });

  it('names the bundled module that does it, from esbuild\'s module comments', () => {
    const bundle = '// src/ml/data/loader.ts\nfunction f() {\n  return createRequire(import.meta.url).resolve("data-a/package.json");\n}\n// report/report.md#c.ts\n__require.resolve("data-b");\n//# sourceMappingURL=data:application/json;base64,eyJ9\n';
    expect(packagesResolvedAtRunTime(bundle)).toEqual([
      { specifier: 'data-a/package.json', file: 'src/ml/data/loader.ts' },
      { specifier: 'data-b', file: 'report/report.md#c.ts' },
    ]);
  });
});

const fixture = resolve(import.meta.dirname, '../fixtures/exec-hash');
const runtimePath = resolve(import.meta.dirname, '../../src/engine/runtime.ts');
let root: string;
let context: KeyContext;

/** A data package: a package.json and a data file, found at run time and read with fs. */
async function installData(name: string, version: string): Promise<void> {
  const dir = join(root, 'node_modules', ...name.split('/'));
  await mkdir(join(dir, 'data'), { recursive: true });
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name, version }));
  await writeFile(join(dir, 'data', 'values.txt'), '1 2 3\n');
}

/** lib/data.ts reads `tiny-data` at run time; lib/load.ts imports it (so the cell reaches it indirectly). */
const DATA_TS = `import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export function values(): number[] {
  const pkg = createRequire(import.meta.url).resolve('tiny-data/package.json');
  return readFileSync(path.join(path.dirname(pkg), 'data', 'values.txt'), 'utf8').trim().split(' ').map(Number);
}
`;
const LOAD_TS = "import { values } from './data.ts';\nexport const load = (): number[] => values();\n";

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'run-time-packages-'));
  await cp(fixture, root, { recursive: true });
  await installTinyPkg(root, '1.0.0');
  await installData('tiny-data', '1.0.0');
  await writeFile(join(root, 'lib', 'data.ts'), DATA_TS);
  await writeFile(join(root, 'lib', 'load.ts'), LOAD_TS);
  context = { docPath: join(root, 'report.md'), projectRoot: root, profile: 'full', seed: 0, runtimePath };
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const cells = () => [
  makeCell('data', `import { twice } from './lib/a.ts';\nimport { load } from './lib/load.ts';\nexport const xs = load().map(twice);`),
  makeCell('model', `import { xs } from 'cell:data';\nexport const total = xs.length;`, { codeLine: 30 }),
  makeCell('alone', `export const a = 1;`, { codeLine: 50 }),
];
const order = ['data', 'model', 'alone'];

describe('keys of cells that read a package at run time', () => {
  it('hash the installed version of the package (key and fingerprint); the previous-scheme key does not', async () => {
    const before = await keyCells(cells(), order, context);
    const data = before.get('data')!;
    expect(data.error).toBeUndefined();
    expect(data.packages).toEqual({ 'tiny-data': '1.0.0' });
    expect(data.fingerprint!.packages).toEqual({ 'tiny-data': '1.0.0' });
    expect(data.previous!.fingerprint.packages).toEqual({});
    expect(data.previous!.readAtRunTime).toEqual({ 'tiny-data': '1.0.0' });
    expect(before.get('model')!.previous!.depsReadAtRunTime).toEqual(['data']);
    expect(before.get('alone')!.previous!.readAtRunTime).toEqual({});

    await installData('tiny-data', '1.0.1');
    const after = await keyCells(cells(), order, context);
    expect(after.get('data')!.key).not.toBe(data.key);
    expect(after.get('data')!.fingerprint!.packages).toEqual({ 'tiny-data': '1.0.1' });
    expect(after.get('model')!.key).not.toBe(before.get('model')!.key);
    expect(after.get('alone')!.key).toBe(before.get('alone')!.key);
    // engine/2 did not see the data package: its key is the same for both versions.
    expect(after.get('data')!.previous!.key).toBe(data.previous!.key);
  });

  it('a package the cell both imports and reads is hashed once, as imported', async () => {
    const keys = await keyCells([makeCell('c', "import { tiny } from 'tiny-pkg';\nexport const p = require.resolve('tiny-pkg/package.json') + tiny;")], ['c'], context);
    expect(keys.get('c')!.packages).toEqual({ 'tiny-pkg': '1.0.0' });
    expect(keys.get('c')!.previous!.readAtRunTime).toEqual({});
  });

  it('a missing one is a cell-package problem at the cell line importing the file that reads it', async () => {
    await rm(join(root, 'node_modules', 'tiny-data'), { recursive: true });
    const keys = await keyCells(cells(), order, context);
    const error = keys.get('data')!.error!;
    expect(error).toMatchObject({ ruleId: 'cell-package', line: 11, column: 22 });
    expect(error.message).toBe('package "tiny-data" is not installed (read at run time as "tiny-data/package.json" by lib/data.ts); add it to package.json and run npm install');
    expect(keys.get('model')!.error).toMatchObject({ ruleId: 'cell-dependency' });
    expect(keys.get('alone')!.error).toBeUndefined();
  });

  it('a missing one read by the cell itself is reported at the line that names it (scoped, sub-path)', async () => {
    const keys = await keyCells([makeCell('c', "import { createRequire } from 'node:module';\nconst req = createRequire(import.meta.url);\nexport const p = req.resolve('@lab/set/data/x.bin');")], ['c'], context);
    expect(keys.get('c')!.error).toMatchObject({ ruleId: 'cell-package', line: 12, column: 30 });
    expect(keys.get('c')!.error!.message).toContain('package "@lab/set" is not installed (read at run time as "@lab/set/data/x.bin" by the cell)');
    await installData('@lab/set', '2.0.0');
    expect((await keyCells([makeCell('c', "import { createRequire } from 'node:module';\nconst req = createRequire(import.meta.url);\nexport const p = req.resolve('@lab/set/data/x.bin');")], ['c'], context)).get('c')!.packages).toEqual({ '@lab/set': '2.0.0' });
  });
});

describe('report and check with the data package missing', () => {
  const DOC = `---
title: Data
---

\`\`\`ts run id=data
import { load } from './lib/load.ts';
export const n: number = load().length;
\`\`\`

There are \`{ts} n\` values.
`;
  const silent = { write: () => {}, isTTY: false };
  const effects = () => nodeEffects({ stdout: silent });
  const executor = () => fakeExecutor({ data: () => ({ exports: { n: 3 } }) });

  it('report does not run the cell and says which package to install, where; check fails with the same problem', async () => {
    await writeFile(join(root, 'doc.md'), DOC);
    const built = await build({ docPath: join(root, 'doc.md'), projectRoot: root, outDir: join(root, 'build'), pdf: false, executor: executor() }, effects());
    expect(built.file.messages.map((m) => [m.ruleId, m.line])).toEqual([]);

    await rm(join(root, 'node_modules', 'tiny-data'), { recursive: true });
    const ex = executor();
    const failed = await build({ docPath: join(root, 'doc.md'), projectRoot: root, outDir: join(root, 'build'), pdf: false, executor: ex }, effects());
    expect(ex.calls).toEqual([]);
    const problem = failed.file.messages.find((m) => m.ruleId === 'cell-package')!;
    expect([problem.line, problem.column, problem.fatal]).toEqual([6, 22, true]);
    expect(problem.reason).toContain('package "tiny-data" is not installed (read at run time as "tiny-data/package.json" by lib/data.ts)');
    expect(failed.failedHtmlPath).toBeDefined();

    const checked = await check({ docPath: join(root, 'doc.md'), projectRoot: root, cacheDir: join(root, '.tc') }, effects());
    const found = checked.file.messages.filter((m) => m.ruleId === 'cell-package');
    expect(found.map((m) => [m.line, m.column, m.fatal])).toEqual([[6, 22, true]]);
  });
});
