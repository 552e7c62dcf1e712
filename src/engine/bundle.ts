/**
 * Bundling a cell: the one esbuild build of each cell, and what its metafile says.
 *
 * A cell is bundled once (per command, or when the key cache cannot vouch for its key) into
 * ESM JavaScript for Node with an inline source map: project files are bundled in, npm
 * packages stay external, `report:runtime` resolves to the engine's runtime module and
 * `cell:<id>` to a virtual module that reads the dependency's results from a global the
 * runner fills ({@link cellModule}). From the build's metafile come:
 *
 *   - the project files bundled into the cell (the key hashes what they run: key.ts),
 *   - the npm packages it imports, with their installed versions ({@link packagesOf}), and
 *     the packages its code resolves at run time to read files from (run-time-packages.ts),
 *   - the cell's **export names** — the only place export names come from. key.ts carries
 *     them on the cell's key (and the key cache remembers them); the `cell:` module of a
 *     cell that imports this one is made from them; inline values, claims and the type
 *     check of inline expressions read them from the loaded document (document.ts).
 *
 * Why parse.ts still scans each cell before this: a cell's bundle needs the export names of
 * the cells it imports (its `cell:` modules are made from them), so the dependency graph —
 * which cells a cell imports — must be known before any cell is bundled. That pre-pass is
 * syntactic (esbuild parses the cell on its own, every import left external) and is the
 * only source of `cell:` imports; it reads nothing else. A cell that cannot be bundled has
 * no export names.
 *
 * Problems (a syntax error, an unresolvable import, a package that is not installed) come
 * back as a {@link BundleProblem} at a Markdown line and column, never as a throw.
 */
import { existsSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { basename, dirname, join, relative, resolve } from 'node:path';
import * as esbuild from 'esbuild';
import type { Cell } from './types.ts';
import { packagesResolvedAtRunTime, type RunTimeRead } from './run-time-packages.ts';

/** Name of the global the runner fills with dependency exports, by cell id (child-entry.ts repeats it). */
export const CELLS_GLOBAL = '__reportCells';

/** A problem found while bundling a cell, positioned in the Markdown file. */
export interface BundleProblem {
  message: string;
  /** 1-based Markdown line. */
  line: number;
  /** 1-based column. */
  column: number;
  ruleId: 'cell-syntax' | 'cell-import' | 'cell-package';
}

/** A bundled cell and what its metafile says. */
export interface CellBundle {
  /** The bundle: ESM JavaScript for Node, inline source map. */
  code: string;
  /** Project files bundled into the cell, relative to the project root, sorted. */
  inputs: string[];
  /** npm packages the cell (or its project files) imports → installed version. */
  packages: Record<string, string>;
  /**
   * npm packages the bundle resolves at run time to read files from (a dataset: see
   * run-time-packages.ts) and does not import → installed version.
   */
  readAtRunTime: Record<string, string>;
  /** The names the cell's module exports (`default` included when it has one). */
  exports: string[];
}

export type BundleOutcome =
  | { ok: true; bundle: CellBundle }
  /** `exports` when esbuild built the bundle but something after it failed (a package not installed). */
  | { ok: false; problem: BundleProblem; exports?: string[] };

export interface BundleContext {
  /** Folder of the Markdown file: relative imports of a cell resolve from it. */
  docDir: string;
  projectRoot: string;
  /** Where the bundle will be written ({@link bundleDirFor}); its source map and package imports are relative to it. */
  bundleDir: string;
  /** Name of the cell in stack traces and messages, e.g. `report.md#train.ts`. */
  sourcefile: string;
  /** Absolute path of runtime.ts: `report:runtime` resolves to it, external. */
  runtimePath: string;
  /** Export names of an imported cell (its bundle's); undefined when it has none to offer. */
  exportsOf: (id: string) => Promise<readonly string[] | undefined>;
  /** Installed version of an npm package, as the Markdown file's folder resolves it; undefined: not installed. */
  versionOf: (name: string) => Promise<string | undefined>;
}

/** Bundles one cell. Never throws for a problem of the cell. */
export async function bundleCell(cell: Cell, context: BundleContext): Promise<BundleOutcome> {
  let result: esbuild.BuildResult<{ metafile: true; write: false }>;
  try {
    result = await esbuild.build({
      stdin: { contents: cell.code, loader: 'ts', resolveDir: context.docDir, sourcefile: context.sourcefile },
      absWorkingDir: context.projectRoot,
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      metafile: true,
      write: false,
      sourcemap: 'inline',
      outfile: join(context.bundleDir, 'cell.mjs'),
      // What runs must follow from the code the key hashes, and the key's transform
      // drops comments, `@__PURE__` annotations included: the bundle ignores them too.
      ignoreAnnotations: true,
      logLevel: 'silent',
      plugins: [cellImportsPlugin(context.exportsOf, context.runtimePath)],
    });
  } catch (error) {
    return { ok: false, problem: problemFromBuildError(error, cell, context.sourcefile, context.projectRoot) };
  }
  const { inputs, externals, exports } = readMetafile(result.metafile);
  const packages = await packagesOf(externals, context.versionOf);
  if ('missing' in packages) {
    const { name, specifier } = packages.missing;
    return {
      ok: false,
      problem: {
        ...importPosition(cell, specifier),
        message: `package "${name}" is not installed (imported as "${specifier}"); add it to package.json and run npm install`,
        ruleId: 'cell-package',
      },
      exports,
    };
  }
  const code = result.outputFiles[0]?.text ?? '';
  const readAtRunTime = await runTimePackagesOf(code, packages.packages, context.versionOf);
  if (readAtRunTime.missing !== undefined) {
    const entry = Object.values(result.metafile.outputs)[0]?.entryPoint;
    return { ok: false, problem: missingRunTimePackage(cell, result.metafile, entry, readAtRunTime.missing), exports };
  }
  return { ok: true, bundle: { code, inputs, packages: packages.packages, readAtRunTime: readAtRunTime.found, exports } };
}

/**
 * The packages a bundle resolves at run time (run-time-packages.ts) that it does not import
 * (`imported`), by installed version; or the first one that is not installed.
 */
async function runTimePackagesOf(
  bundle: string,
  imported: Record<string, string>,
  versionOf: (name: string) => Promise<string | undefined>,
): Promise<{ found: Record<string, string>; missing?: { name: string } & RunTimeRead }> {
  const found: Record<string, string> = {};
  for (const read of packagesResolvedAtRunTime(bundle)) {
    const name = packageName(read.specifier);
    if (name === undefined || name in imported || name in found) continue;
    const version = await versionOf(name);
    if (version === undefined) return { found, missing: { name, ...read } };
    found[name] = version;
  }
  return { found };
}

/**
 * The `cell-package` problem of a package read at run time that is not installed, at the
 * line of the cell importing the project file through which the bundle reaches the file
 * that reads it, at the line that names it when the cell reads it itself, else at the
 * cell's first line.
 */
function missingRunTimePackage(cell: Cell, metafile: esbuild.Metafile, entry: string | undefined, { name, specifier, file }: { name: string } & RunTimeRead): BundleProblem {
  const by = file === undefined || file === entry ? 'by the cell' : `by ${file}`;
  return {
    ...runTimeReadPosition(cell, metafile, entry, file, specifier),
    message: `package "${name}" is not installed (read at run time as "${specifier}" ${by}); add it to package.json and run npm install`,
    ruleId: 'cell-package',
  };
}

function runTimeReadPosition(cell: Cell, metafile: esbuild.Metafile, entry: string | undefined, file: string | undefined, specifier: string): { line: number; column: number } {
  if (file === undefined || entry === undefined || file === entry) return importPosition(cell, specifier);
  const reaches = (from: string, seen = new Set<string>()): boolean => {
    if (from === file) return true;
    if (seen.has(from)) return false;
    seen.add(from);
    return (metafile.inputs[from]?.imports ?? []).some((imp) => imp.external !== true && reaches(imp.path, seen));
  };
  for (const imp of metafile.inputs[entry]?.imports ?? []) {
    if (imp.external !== true && reaches(imp.path)) return importPosition(cell, imp.original ?? imp.path);
  }
  return { line: cell.codeLine, column: 1 };
}

/**
 * What a cell's metafile says: the project files bundled (sorted, relative to the project
 * root; not the cell itself nor virtual modules), the external specifiers, and the export
 * names of the output.
 */
function readMetafile(metafile: esbuild.Metafile): { inputs: string[]; externals: Set<string>; exports: string[] } {
  const output = Object.values(metafile.outputs)[0];
  const inputs: string[] = [];
  const externals = new Set<string>();
  for (const [path, input] of Object.entries(metafile.inputs)) {
    for (const imp of input.imports) if (imp.external === true) externals.add(imp.original ?? imp.path);
    if (path === output?.entryPoint || /^[a-z-]+:/.test(path)) continue;
    inputs.push(path);
  }
  inputs.sort();
  return { inputs, externals, exports: output?.exports ?? [] };
}

/**
 * The npm packages among a bundle's external specifiers, each with its installed version
 * (by specifier order); the first one that is not installed instead, when any.
 */
export async function packagesOf(
  externals: Iterable<string>,
  versionOf: (name: string) => Promise<string | undefined>,
): Promise<{ packages: Record<string, string> } | { missing: { name: string; specifier: string } }> {
  const packages: Record<string, string> = {};
  for (const specifier of [...externals].sort()) {
    const name = packageName(specifier);
    if (name === undefined) continue;
    const version = await versionOf(name);
    if (version === undefined) return { missing: { name, specifier } };
    packages[name] = version;
  }
  return { packages };
}

/**
 * npm package name of a bare specifier; undefined for builtins, URLs, paths and esbuild's
 * own `<runtime>` (which a bundle using `require` imports its `__require` shim from).
 */
export function packageName(specifier: string): string | undefined {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('<') || /^[a-zA-Z][a-zA-Z+.-]*:/.test(specifier)) return undefined;
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  if (builtinModules.includes(name)) return undefined;
  return name;
}

/** The version in `node_modules/<name>/package.json` found from `fromDir` upwards; undefined: not installed. */
export async function readInstalledVersion(name: string, fromDir: string, read: (path: string) => Promise<Uint8Array>): Promise<string | undefined> {
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
export function bundleDirFor(docDir: string, projectRoot: string): string {
  for (let dir = docDir; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'node_modules'))) return join(dir, 'node_modules', '.cache', 'literate-report');
    if (dirname(dir) === dir) return join(projectRoot, '.cache', 'literate-report');
  }
}

/**
 * The esbuild plugin for `cell:<id>` (a virtual module reading the dependency's exports
 * from a global the runner fills) and `report:runtime` (external, the absolute runtime
 * path, so the runner and the cell share one runtime instance).
 */
function cellImportsPlugin(exportsOf: BundleContext['exportsOf'], runtimePath: string): esbuild.Plugin {
  return {
    name: 'report-cells',
    setup(build) {
      build.onResolve({ filter: /^report:runtime$/ }, () => ({ path: resolve(runtimePath), external: true }));
      build.onResolve({ filter: /^cell:/ }, (args) => ({ path: args.path.slice('cell:'.length), namespace: 'cell' }));
      build.onLoad({ filter: /.*/, namespace: 'cell' }, async (args) => {
        const names = await exportsOf(args.path);
        if (names === undefined) return { errors: [{ text: `cell "${args.path}" has no exports to import` }] };
        return { contents: cellModule(args.path, names), loader: 'js' };
      });
    },
  };
}

/** Source of the virtual module `cell:<id>`. */
export function cellModule(id: string, exportNames: readonly string[]): string {
  const lines = [
    `const v = globalThis[${JSON.stringify(CELLS_GLOBAL)}]?.[${JSON.stringify(id)}];`,
    `if (v === undefined) throw new Error(${JSON.stringify(`the result of cell "${id}" was not provided to this cell`)});`,
  ];
  exportNames.forEach((name, i) => {
    lines.push(`const _${i} = v[${JSON.stringify(name)}];`, `export { _${i} as ${JSON.stringify(name)} };`);
  });
  return lines.join('\n');
}

function problemFromBuildError(error: unknown, cell: Cell, sourcefile: string, projectRoot: string): BundleProblem {
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
export function importPosition(cell: Cell, specifier: string): { line: number; column: number } {
  const lines = cell.code.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const at = lines[i]!.search(new RegExp(`['"]${escapeRegExp(specifier)}['"]`));
    if (at >= 0) return { line: cell.codeLine + i, column: at + 1 };
  }
  return { line: cell.codeLine, column: 1 };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
