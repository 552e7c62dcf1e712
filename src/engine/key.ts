/**
 * Content keys of cells, made from what bundling each cell (bundle.ts) found: a sha256 over
 * everything the result can depend on — the code that runs, not the text it is written in:
 *
 *   - the engine format version ({@link ENGINE_FORMAT_VERSION}) and the cell id
 *     (runtime.random() is seeded from it),
 *   - the code the cell runs ({@link whatRuns}: esbuild's transform of its TypeScript —
 *     types erased, comments and whitespace removed) and its raw option string,
 *   - every project file esbuild bundled into the cell (transitively, from the metafile),
 *     by path relative to the project root and the code it runs (the same transform), in
 *     path order,
 *   - the keys of the cells it imports with `cell:<id>`,
 *   - the profile and the effective seed (cell option, else document seed),
 *   - the installed version of every npm package it imports (read from
 *     `node_modules/<pkg>/package.json` resolving from the Markdown file's directory, so
 *     an unrelated dependency change invalidates nothing), and of every package its code
 *     resolves at run time to read files from (run-time-packages.ts: `require.resolve`,
 *     `createRequire(…).resolve`, `import.meta.resolve` of a string literal — a data
 *     package such as a dataset), in name order.
 *
 * So a comment-only, JSDoc-only, formatting-only or type-only edit of a cell or of a file
 * it imports changes no key; a changed literal, string, template literal, statement or
 * name does. (The bundle itself is built with `ignoreAnnotations`, so the `@__PURE__`
 * comments the transform drops do not change what runs either.)
 *
 * Not hashed: the tfjs backend, the machine, the esbuild version (an upgrade that prints
 * some code differently re-keys the cells whose code it prints differently), files a cell
 * reads at run time with `fs` from a path that is not a package's (import them, or change
 * the cell's code — not just a comment — when they change; `--rerun <id>` re-runs a cell
 * regardless).
 *
 * Each key also comes with the key the cell has under the previous scheme, engine/2, which
 * did not hash the packages read at run time ({@link PreviousSchemeKey}), and what this key
 * adds to it: results stored under it are adopted by `report --migrate-keys` (and read by
 * `report`/`check` before that) only when those packages are shown to be the ones they were
 * computed with (previous-scheme.ts).
 *
 * Keys are remembered between commands (key-cache.ts): a cell whose remembered key is still
 * good is not bundled at all until it must run ({@link bundleOf}). The key carries the
 * cell's export names from its bundle (or the cache), for the cells that import it.
 *
 * Problems in a cell (syntax error, unresolvable import, missing package, a dependency with
 * errors) come back as `CellKey.error` with a Markdown line and column, never as a throw.
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import * as esbuild from 'esbuild';
import { bundleCell, bundleDirFor, importPosition, readInstalledVersion, type BundleProblem } from './bundle.ts';
import type { Cell, KeyFingerprint, PreviousSchemeKey } from './types.ts';
import { sha256 } from './digest.ts';
import { listingHash, type KeyCache, type KeyCacheEntry } from './key-cache.ts';

/**
 * Bumped whenever the stored format, the bundling or the key scheme changes what a key
 * means. engine/2: keys hash the code that runs (esbuild's transform) instead of source
 * text. engine/3: keys also hash the packages the code resolves at run time.
 */
export const ENGINE_FORMAT_VERSION = 'literate-report-engine/3';

/**
 * The previous key scheme, kept only so that results stored under it can be read and
 * migrated (`report --migrate-keys`); remove it with {@link PreviousSchemeKey} and the
 * previous-scheme code of migrate.ts, previous-scheme.ts and store.ts once no store holds
 * engine/2 entries. (A store still on engine/1 is migrated by the tool as of commit
 * 3a5e674, the last that reads engine/1 keys.)
 */
export const PREVIOUS_ENGINE_FORMAT_VERSION = 'literate-report-engine/2';

/** A problem found while keying a cell, positioned in the Markdown file: its bundle's, or a dependency with errors. */
export interface KeyProblem extends Omit<BundleProblem, 'ruleId'> {
  ruleId: BundleProblem['ruleId'] | 'cell-dependency';
}

export interface CellKey {
  /** sha256 hex of everything the cell's result depends on. */
  key: string;
  /** Project files bundled into the cell, relative to projectRoot, sorted. */
  inputs: string[];
  /**
   * npm packages the cell (or its project files) imports, and those its code resolves at
   * run time (see {@link PreviousSchemeKey.readAtRunTime}) → installed version.
   */
  packages: Record<string, string>;
  /**
   * The bundled cell: ESM JavaScript for Node, inline source map. Empty when `error`, and
   * when the key came from the key cache (then {@link bundleOf} builds it, with `loadBundle`).
   */
  bundle: string;
  /**
   * Set on a key from the key cache: bundles the cell again and checks that the key is the
   * remembered one (rejects when it is not: the cache was out of date, and is dropped).
   */
  loadBundle?: () => Promise<string>;
  /**
   * Directory the bundle must be written to (its source map and bare package imports are
   * relative to it): `<nearest node_modules>/.cache/literate-report`.
   */
  bundleDir: string;
  /** Sourcefile name of the cell in stack traces, e.g. `report.md#train.ts`. */
  sourcefile: string;
  /**
   * The names the cell exports, from its bundle (bundle.ts, the one source of export names;
   * remembered by the key cache with the key). Absent when the cell was not bundled (a
   * dependency has errors) or esbuild could not bundle it (a syntax error, an unresolvable
   * import); present on a cell-package error (the bundle was built).
   */
  exports?: string[];
  /** Set when the cell cannot be bundled; `key` is then a key of the failing content. */
  error?: KeyProblem;
  /** The key's ingredients, stored with the result so a stale one can be explained. */
  fingerprint?: KeyFingerprint;
  /**
   * The cell's key under the previous scheme (engine/2, without the packages read at run
   * time), computed from the same sources, and what the key adds to it.
   */
  previous?: PreviousSchemeKey;
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
  /** Names in a folder, `[]` when it does not exist (the injected effects'); default: the file system. */
  readdir?: (path: string) => Promise<string[]>;
  /** Keys remembered between commands (key-cache.ts); without it every cell is bundled. */
  cache?: KeyCache;
  /** Called when a remembered key proved wrong (see `loadBundle`): the caller drops its cache file. */
  onCacheWrong?: () => Promise<void>;
}

/** The bundle of a key: its own, or built again for a key that came from the key cache. */
export async function bundleOf(key: CellKey): Promise<string> {
  if (key.bundle !== '' || key.loadBundle === undefined) return key.bundle;
  return key.loadBundle();
}

/** The export names the keys carry (their bundles'), by cell; a cell without them (not bundled) has no entry. */
export function exportNames(keys: ReadonlyMap<string, CellKey>): Map<string, string[]> {
  return new Map([...keys].flatMap(([id, key]) => (key.exports === undefined ? [] : [[id, key.exports] as const])));
}

/** Keys every cell in `order` (dependencies first). Cells not in `order` are not keyed. */
export async function keyCells(cells: Cell[], order: string[], context: KeyContext): Promise<Map<string, CellKey>> {
  const byId = new Map(cells.map((cell) => [cell.id, cell]));
  const docDir = dirname(resolve(context.docPath));
  const projectRoot = resolve(context.projectRoot);
  const bundleDir = bundleDirFor(docDir, projectRoot);
  const read = context.readFile ?? ((path: string) => readFile(path).then((data) => new Uint8Array(data)));
  const list = context.readdir ?? ((path: string) => readdir(path).catch(() => [] as string[]));
  const fileHashes = new Map<string, Promise<string>>();
  const runHashes = new Map<string, Promise<string>>();
  const tsconfigs = new Map<string, Promise<string | undefined>>();
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
  /** The tsconfig.json esbuild applies to a file in `dir` (the nearest one up), as text. */
  const tsconfigIn = (dir: string): Promise<string | undefined> => {
    let p = tsconfigs.get(dir);
    if (p === undefined) {
      p = read(join(dir, 'tsconfig.json')).then(
        (data) => new TextDecoder().decode(data),
        () => (dirname(dir) === dir ? undefined : tsconfigIn(dirname(dir))),
      );
      tsconfigs.set(dir, p);
    }
    return p;
  };
  /** sha256 of the code a project file runs ({@link whatRuns}). */
  const hashRuns = (path: string): Promise<string> => {
    let p = runHashes.get(path);
    if (p === undefined) {
      p = Promise.all([read(path), tsconfigIn(dirname(path))]).then(([data, tsconfig]) => whatRuns(data, path, tsconfig)).then((code) => sha256(code));
      runHashes.set(path, p);
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

  /** Bundles a cell (bundle.ts) and makes its key from what the bundle read. */
  const bundleAndKey = async (cell: Cell): Promise<CellKey> => {
    const sourcefile = `${basename(context.docPath)}#${cell.id}.ts`;
    const seed = cell.options.seed ?? context.seed;
    const base = { bundleDir, sourcefile, inputs: [] as string[], packages: {}, bundle: '' };
    const fail = (error: KeyProblem, exports?: string[]): CellKey => ({
      ...base,
      key: sha256(JSON.stringify([ENGINE_FORMAT_VERSION, 'error', cell.id, cell.code, cell.rawOptions])),
      error,
      ...(exports === undefined ? {} : { exports }),
    });

    const depKeys: [string, string][] = [];
    const previousDepKeys: [string, string][] = [];
    const depsReadAtRunTime: string[] = [];
    for (const dep of cell.imports) {
      const depKey = await pending.get(dep);
      if (depKey === undefined || depKey.error !== undefined) {
        const why = depKey === undefined ? 'is not a cell of this document (or is part of a cycle)' : 'has errors';
        return fail({ ...importPosition(cell, `cell:${dep}`), message: `imports cell "${dep}", which ${why}`, ruleId: 'cell-dependency' });
      }
      depKeys.push([dep, depKey.key]);
      if (depKey.previous !== undefined) previousDepKeys.push([dep, depKey.previous.key]);
      if (depKey.previous !== undefined && !sameMeaning(depKey.previous)) depsReadAtRunTime.push(dep);
    }

    const outcome = await bundleCell(cell, {
      docDir,
      projectRoot,
      bundleDir,
      sourcefile,
      runtimePath: context.runtimePath,
      exportsOf: async (id) => {
        const dep = await pending.get(id);
        return dep?.error === undefined ? dep?.exports : undefined;
      },
      versionOf,
    });
    if (!outcome.ok) return fail(outcome.problem, outcome.exports);
    const { code: bundle, inputs, packages, readAtRunTime, exports } = outcome.bundle;
    const allPackages = Object.fromEntries(Object.entries({ ...packages, ...readAtRunTime }).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

    const inputHashes: [string, string][] = [];
    for (const path of inputs) inputHashes.push([path, await hashRuns(resolve(projectRoot, path))]);
    const code = sha256(await whatRuns(new TextEncoder().encode(cell.code), sourcefile, await tsconfigIn(docDir)));

    // engine/2 and engine/3 hash the same ingredients but the packages read at run time.
    const keyOf = (engine: string, deps: [string, string][], pkgs: Record<string, string>): string =>
      sha256(JSON.stringify({ engine, id: cell.id, code, options: cell.rawOptions, inputs: inputHashes, deps, profile: context.profile, seed, packages: Object.entries(pkgs) }));
    const fingerprintOf = (engine: string, deps: [string, string][], pkgs: Record<string, string>): KeyFingerprint =>
      ({ engine, code, options: cell.rawOptions, inputs: Object.fromEntries(inputHashes), deps: Object.fromEntries(deps), profile: context.profile, seed, packages: pkgs });
    const key = keyOf(ENGINE_FORMAT_VERSION, depKeys, allPackages);
    const fingerprint = fingerprintOf(ENGINE_FORMAT_VERSION, depKeys, allPackages);
    const previous: PreviousSchemeKey | undefined =
      previousDepKeys.length === depKeys.length
        ? { key: keyOf(PREVIOUS_ENGINE_FORMAT_VERSION, previousDepKeys, packages), fingerprint: fingerprintOf(PREVIOUS_ENGINE_FORMAT_VERSION, previousDepKeys, packages), readAtRunTime, depsReadAtRunTime }
        : undefined;
    return { ...base, key, inputs, packages: allPackages, bundle, exports, fingerprint, ...(previous === undefined ? {} : { previous }) };
  };

  // ---- the key cache (key-cache.ts): what a remembered key was made from, checked before use
  const hashOrAbsent = (path: string): Promise<string> => hashFile(path).catch(() => 'absent');
  const packageJson = join(projectRoot, 'package.json');
  const foldersOf = (key: { inputs: string[] }): string[] => [...new Set([docDir, ...key.inputs.map((p) => dirname(resolve(projectRoot, p)))])].sort();
  const listings = new Map<string, Promise<string>>();
  const listingOf = (dir: string): Promise<string> => {
    let p = listings.get(dir);
    if (p === undefined) {
      p = list(dir).then(listingHash);
      listings.set(dir, p);
    }
    return p;
  };
  const tsconfigHash = (dir: string): Promise<string> => tsconfigIn(dir).then((text) => (text === undefined ? '' : sha256(text)));

  /** The cache lookup of a cell: undefined when a cell it imports has no usable key. */
  const lookupOf = async (cell: Cell): Promise<string | undefined> => {
    // Everything of an imported cell's key that keying this cell reads: its key, its export
    // names (the `cell:` module), its key under the previous scheme and whether they differ
    // by packages read at run time.
    const deps: [string, string, string[], string | null, boolean][] = [];
    for (const dep of cell.imports) {
      const depKey = await pending.get(dep);
      if (depKey === undefined || depKey.error !== undefined) return undefined;
      deps.push([dep, depKey.key, depKey.exports ?? [], depKey.previous?.key ?? null, depKey.previous !== undefined && sameMeaning(depKey.previous)]);
    }
    return sha256(
      JSON.stringify([ENGINE_FORMAT_VERSION, esbuild.version, resolve(context.docPath), projectRoot, resolve(context.runtimePath), cell.id, cell.code, cell.rawOptions, context.profile, cell.options.seed ?? context.seed, deps]),
    );
  };

  const entryOf = async (key: CellKey): Promise<KeyCacheEntry> => {
    const files: Record<string, string> = {};
    for (const path of [...key.inputs.map((p) => resolve(projectRoot, p)), packageJson]) files[path] = await hashOrAbsent(path);
    const folders: Record<string, string> = {};
    const configs: Record<string, string> = {};
    for (const dir of foldersOf(key)) {
      folders[dir] = await listingOf(dir);
      configs[dir] = await tsconfigHash(dir);
    }
    return {
      files,
      folders,
      tsconfigs: configs,
      key: {
        key: key.key,
        inputs: key.inputs,
        packages: key.packages,
        exports: key.exports ?? [],
        ...(key.fingerprint === undefined ? {} : { fingerprint: key.fingerprint }),
        ...(key.previous === undefined ? {} : { previous: key.previous }),
      },
    };
  };

  const stillValid = async (entry: KeyCacheEntry): Promise<boolean> => {
    for (const [path, hash] of Object.entries(entry.files)) if ((await hashOrAbsent(path)) !== hash) return false;
    for (const [dir, hash] of Object.entries(entry.folders)) if ((await listingOf(dir)) !== hash) return false;
    for (const [dir, hash] of Object.entries(entry.tsconfigs)) if ((await tsconfigHash(dir)) !== hash) return false;
    for (const [name, version] of Object.entries(entry.key.packages)) if ((await versionOf(name)) !== version) return false;
    return true;
  };

  const keyOne = async (cell: Cell): Promise<CellKey> => {
    const cache = context.cache;
    if (cache === undefined) return bundleAndKey(cell);
    const lookup = await lookupOf(cell);
    const entry = lookup === undefined ? undefined : cache.get(lookup);
    if (entry !== undefined && (await stillValid(entry))) {
      return {
        ...entry.key,
        bundle: '',
        bundleDir,
        sourcefile: `${basename(context.docPath)}#${cell.id}.ts`,
        loadBundle: async () => {
          const fresh = await bundleAndKey(cell);
          if (fresh.error === undefined && fresh.key === entry.key.key) return fresh.bundle;
          await context.onCacheWrong?.();
          throw new Error(
            `the remembered key of cell "${cell.id}" is out of date (something it was bundled from changed in a way the key cache does not see); ` +
              'the key cache was dropped: run the command again',
          );
        },
      };
    }
    const key = await bundleAndKey(cell);
    if (lookup !== undefined) {
      if (key.error === undefined) cache.set(lookup, await entryOf(key));
      else cache.delete(lookup);
    }
    return key;
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

/** esbuild's loader for a project file, by extension; undefined for files that are not code. */
const LOADERS: Record<string, esbuild.Loader> = { ts: 'ts', mts: 'ts', cts: 'ts', tsx: 'tsx', js: 'js', mjs: 'js', cjs: 'js', jsx: 'jsx', json: 'json' };

/**
 * The code a module runs, as the key hashes it: esbuild's transform of the file with the
 * tsconfig esbuild applies to it when bundling (so `verbatimModuleSyntax` keeps the same
 * imports), whitespace minified — which erases types, comments (JSDoc, `// @ts-…`, legal
 * comments) and formatting, and keeps every name, literal, string and template literal.
 * Names are not minified: renaming a local variable re-keys. A file that is not code (or
 * that esbuild cannot transform on its own) is hashed as its bytes.
 */
export async function whatRuns(source: Uint8Array, path: string, tsconfigRaw?: string): Promise<Uint8Array> {
  const loader = LOADERS[/\.([a-z]+)$/.exec(path)?.[1] ?? ''];
  if (loader === undefined) return source;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(source);
  } catch {
    return source;
  }
  try {
    const { code } = await esbuild.transform(text, {
      loader,
      target: 'node20',
      minifyWhitespace: true,
      legalComments: 'none',
      logLevel: 'silent',
      ...(tsconfigRaw === undefined ? {} : { tsconfigRaw }),
    });
    return new TextEncoder().encode(`${loader}\n${code}`);
  } catch {
    // Not transformable on its own (the bundle built, so esbuild read it some other way):
    // hashed as written, which re-keys on any edit — never less safe than engine/1.
    return new TextEncoder().encode(`raw\n${text}`);
  }
}

/**
 * True when a cell's key and its previous-scheme key hash the same ingredients: neither it
 * nor a cell it imports (directly or not) reads a package at run time.
 */
export function sameMeaning(previous: PreviousSchemeKey): boolean {
  return Object.keys(previous.readAtRunTime).length === 0 && previous.depsReadAtRunTime.length === 0;
}
