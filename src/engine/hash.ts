/**
 * Content keys of cells. Each cell is bundled with esbuild; the key is a sha256 over
 * everything the result can depend on:
 *
 *   - the engine format version ({@link ENGINE_FORMAT_VERSION}) and the cell id
 *     (runtime.random() is seeded from it),
 *   - the cell code and its raw option string,
 *   - every project file esbuild bundled into the cell (transitively, from the metafile),
 *     by path relative to the project root and content,
 *   - the keys of the cells it imports with `cell:<id>`,
 *   - the profile and the effective seed (cell option, else document seed),
 *   - the installed version of every npm package it imports (read from
 *     `node_modules/<pkg>/package.json` resolving from the Markdown file's directory, so
 *     an unrelated dependency change invalidates nothing).
 *
 * Not hashed: the tfjs backend, the machine, the esbuild version, files a cell reads at
 * run time with `fs` (import them, or bump the cell's code when they change).
 *
 * Problems in a cell (syntax error, unresolvable import, missing package) come back as
 * `CellKey.error` with a Markdown line and column, never as a throw.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { basename, dirname, join, relative, resolve } from 'node:path';
import * as esbuild from 'esbuild';
import type { Cell, KeyFingerprint } from './types.ts';
import { sha256 } from './digest.ts';

/** Bumped whenever the stored format or the bundling changes what a result means. */
export const ENGINE_FORMAT_VERSION = 'literate-report-engine/1';

/** Name of the global the runner fills with dependency exports, by cell id. */
export const CELLS_GLOBAL = '__reportCells';

/** A problem found while keying a cell, positioned in the Markdown file. */
export interface KeyProblem {
  message: string;
  /** 1-based Markdown line. */
  line: number;
  /** 1-based column. */
  column: number;
  ruleId: 'cell-syntax' | 'cell-import' | 'cell-package' | 'cell-dependency';
}

export interface CellKey {
  /** sha256 hex of everything the cell's result depends on. */
  key: string;
  /** Project files bundled into the cell, relative to projectRoot, sorted. */
  inputs: string[];
  /** npm packages the cell (or its project files) imports → installed version. */
  packages: Record<string, string>;
  /** The bundled cell: ESM JavaScript for Node, inline source map. Empty when `error`. */
  bundle: string;
  /**
   * Directory the bundle must be written to (its source map and bare package imports are
   * relative to it): `<nearest node_modules>/.cache/literate-report`.
   */
  bundleDir: string;
  /** Sourcefile name of the cell in stack traces, e.g. `report.md#train.ts`. */
  sourcefile: string;
  /** Export names of the cell, from the bundle. */
  exportsHint?: string[];
  /** Set when the cell cannot be bundled; `key` is then a key of the failing content. */
  error?: KeyProblem;
  /** The key's ingredients, stored with the result so a stale one can be explained. */
  fingerprint?: KeyFingerprint;
}

export interface KeyContext {
  /** Absolute path of the Markdown file. */
  docPath: string;
  projectRoot: string;
  profile: string;
  /** Document seed; a cell's `seed=` option overrides it. */
  seed: number;
  /** Absolute path of runtime.ts; `report:runtime` imports resolve to it (external). */
  runtimePath: string;
  /** Reads a file (the injected effects'); default: the file system. */
  readFile?: (path: string) => Promise<Uint8Array>;
}

/** Keys every cell in `order` (dependencies first). Cells not in `order` are not keyed. */
export async function keyCells(cells: Cell[], order: string[], context: KeyContext): Promise<Map<string, CellKey>> {
  const byId = new Map(cells.map((cell) => [cell.id, cell]));
  const docDir = dirname(resolve(context.docPath));
  const projectRoot = resolve(context.projectRoot);
  const bundleDir = findBundleDir(docDir, projectRoot);
  const read = context.readFile ?? ((path: string) => readFile(path).then((data) => new Uint8Array(data)));
  const fileHashes = new Map<string, Promise<string>>();
  const versions = new Map<string, Promise<string | undefined>>();
  const pending = new Map<string, Promise<CellKey>>();

  const hashFile = (path: string): Promise<string> => {
    let p = fileHashes.get(path);
    if (p === undefined) {
      p = read(path).then((data) => sha256(data));
      fileHashes.set(path, p);
    }
    return p;
  };
  const versionOf = (name: string): Promise<string | undefined> => {
    let p = versions.get(name);
    if (p === undefined) {
      p = readInstalledVersion(name, docDir, read);
      versions.set(name, p);
    }
    return p;
  };

  const keyOne = async (cell: Cell): Promise<CellKey> => {
    const sourcefile = `${basename(context.docPath)}#${cell.id}.ts`;
    const seed = cell.options.seed ?? context.seed;
    const base = { bundleDir, sourcefile, inputs: [] as string[], packages: {}, bundle: '' };
    const fail = (error: KeyProblem): CellKey => ({
      ...base,
      key: sha256(JSON.stringify([ENGINE_FORMAT_VERSION, 'error', cell.id, cell.code, cell.rawOptions])),
      error,
    });

    const depKeys: [string, string][] = [];
    for (const dep of cell.imports) {
      const depKey = await pending.get(dep);
      if (depKey === undefined || depKey.error !== undefined) {
        const why = depKey === undefined ? 'is not a cell of this document (or is part of a cycle)' : 'has errors';
        return fail({ ...importPosition(cell, `cell:${dep}`), message: `imports cell "${dep}", which ${why}`, ruleId: 'cell-dependency' });
      }
      depKeys.push([dep, depKey.key]);
    }

    let result: esbuild.BuildResult<{ metafile: true; write: false }>;
    try {
      result = await esbuild.build({
        stdin: { contents: cell.code, loader: 'ts', resolveDir: docDir, sourcefile },
        absWorkingDir: projectRoot,
        bundle: true,
        format: 'esm',
        platform: 'node',
        target: 'node20',
        packages: 'external',
        metafile: true,
        write: false,
        sourcemap: 'inline',
        outfile: join(bundleDir, 'cell.mjs'),
        logLevel: 'silent',
        plugins: [cellImportsPlugin(pending, context.runtimePath)],
      });
    } catch (error) {
      return fail(problemFromBuildError(error, cell, sourcefile, projectRoot));
    }

    const metafile = result.metafile;
    const output = Object.values(metafile.outputs)[0];
    const inputs: string[] = [];
    const externals = new Set<string>();
    for (const [path, input] of Object.entries(metafile.inputs)) {
      for (const imp of input.imports) if (imp.external === true) externals.add(imp.original ?? imp.path);
      if (path === output?.entryPoint || /^[a-z-]+:/.test(path)) continue;
      inputs.push(path);
    }
    inputs.sort();

    const packages: Record<string, string> = {};
    for (const specifier of [...externals].sort()) {
      const name = packageName(specifier);
      if (name === undefined) continue;
      const version = await versionOf(name);
      if (version === undefined) {
        return fail({
          ...importPosition(cell, specifier),
          message: `package "${name}" is not installed (imported as "${specifier}"); add it to package.json and run npm install`,
          ruleId: 'cell-package',
        });
      }
      packages[name] = version;
    }

    const inputHashes: [string, string][] = [];
    for (const path of inputs) inputHashes.push([path, await hashFile(resolve(projectRoot, path))]);

    const key = sha256(
      JSON.stringify({
        engine: ENGINE_FORMAT_VERSION,
        id: cell.id,
        code: cell.code,
        options: cell.rawOptions,
        inputs: inputHashes,
        deps: depKeys,
        profile: context.profile,
        seed,
        packages: Object.entries(packages),
      }),
    );
    const bundle = result.outputFiles[0]?.text ?? '';
    const fingerprint: KeyFingerprint = {
      code: sha256(cell.code),
      options: cell.rawOptions,
      inputs: Object.fromEntries(inputHashes),
      deps: Object.fromEntries(depKeys),
      profile: context.profile,
      seed,
      packages,
    };
    return { ...base, key, inputs, packages, bundle, exportsHint: output?.exports ?? [], fingerprint };
  };

  for (const id of order) {
    const cell = byId.get(id);
    if (cell === undefined) continue;
    pending.set(
      id,
      keyOne(cell).catch((error: unknown) => ({
        key: sha256(JSON.stringify([ENGINE_FORMAT_VERSION, 'error', cell.id, cell.code])),
        inputs: [],
        packages: {},
        bundle: '',
        bundleDir,
        sourcefile: `${basename(context.docPath)}#${cell.id}.ts`,
        error: { message: `cannot key cell "${cell.id}": ${(error as Error).message}`, line: cell.codeLine, column: 1, ruleId: 'cell-import' as const },
      })),
    );
  }
  const keys = new Map<string, CellKey>();
  for (const id of order) {
    const p = pending.get(id);
    if (p !== undefined) keys.set(id, await p);
  }
  return keys;
}

/**
 * The esbuild plugin for `cell:<id>` (a virtual module reading the dependency's exports
 * from a global the runner fills) and `report:runtime` (external, the absolute runtime
 * path, so the runner and the cell share one runtime instance).
 */
function cellImportsPlugin(pending: Map<string, Promise<CellKey>>, runtimePath: string): esbuild.Plugin {
  return {
    name: 'report-cells',
    setup(build) {
      build.onResolve({ filter: /^report:runtime$/ }, () => ({ path: resolve(runtimePath), external: true }));
      build.onResolve({ filter: /^cell:/ }, (args) => ({ path: args.path.slice('cell:'.length), namespace: 'cell' }));
      build.onLoad({ filter: /.*/, namespace: 'cell' }, async (args) => {
        const dep = await pending.get(args.path);
        if (dep?.exportsHint === undefined) return { errors: [{ text: `cell "${args.path}" has no exports to import` }] };
        return { contents: cellModule(args.path, dep.exportsHint), loader: 'js' };
      });
    },
  };
}

/** Source of the virtual module `cell:<id>`. */
export function cellModule(id: string, exportNames: string[]): string {
  const lines = [
    `const v = globalThis[${JSON.stringify(CELLS_GLOBAL)}]?.[${JSON.stringify(id)}];`,
    `if (v === undefined) throw new Error(${JSON.stringify(`the result of cell "${id}" was not provided to this cell`)});`,
  ];
  exportNames.forEach((name, i) => {
    lines.push(`const _${i} = v[${JSON.stringify(name)}];`, `export { _${i} as ${JSON.stringify(name)} };`);
  });
  return lines.join('\n');
}

function problemFromBuildError(error: unknown, cell: Cell, sourcefile: string, projectRoot: string): KeyProblem {
  const errors = (error as { errors?: esbuild.Message[] }).errors;
  const first = errors?.[0];
  if (first === undefined) {
    return { message: String((error as Error).message ?? error), line: cell.codeLine, column: 1, ruleId: 'cell-syntax' };
  }
  const ruleId = /Could not resolve|No matching export|has no exports/.test(first.text) ? 'cell-import' : 'cell-syntax';
  const loc = first.location;
  if (loc !== null && basename(loc.file) === sourcefile) {
    return { message: first.text, line: cell.codeLine + loc.line - 1, column: loc.column + 1, ruleId };
  }
  const where = loc === null ? '' : `${relative(projectRoot, resolve(projectRoot, loc.file))}:${loc.line}:${loc.column + 1}: `;
  return { message: `${where}${first.text}`, line: cell.codeLine, column: 1, ruleId };
}

/** Markdown position of the line of the cell that mentions `specifier`, else the first line. */
function importPosition(cell: Cell, specifier: string): { line: number; column: number } {
  const lines = cell.code.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const at = lines[i]!.search(new RegExp(`['"]${escapeRegExp(specifier)}['"]`));
    if (at >= 0) return { line: cell.codeLine + i, column: at + 1 };
  }
  return { line: cell.codeLine, column: 1 };
}

/** npm package name of a bare specifier; undefined for builtins, URLs and paths. */
export function packageName(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/') || /^[a-zA-Z][a-zA-Z+.-]*:/.test(specifier)) return undefined;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  if (builtinModules.includes(name)) return undefined;
  return name;
}

async function readInstalledVersion(name: string, fromDir: string, read: (path: string) => Promise<Uint8Array>): Promise<string | undefined> {
  for (let dir = fromDir; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(new TextDecoder().decode(await read(join(dir, 'node_modules', name, 'package.json')))) as { version?: unknown };
      return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
    } catch {
      // not installed here: try the parent directory
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * Where bundles are written: `<nearest node_modules>/.cache/literate-report` so bare
 * package imports in a bundle resolve exactly as from the Markdown file's directory;
 * `<projectRoot>/.cache/literate-report` when there is no node_modules.
 */
function findBundleDir(docDir: string, projectRoot: string): string {
  for (let dir = docDir; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'node_modules'))) return join(dir, 'node_modules', '.cache', 'literate-report');
    if (dirname(dir) === dir) return join(projectRoot, '.cache', 'literate-report');
  }
}


function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
