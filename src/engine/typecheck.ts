/**
 * Type-checks the cells as TypeScript, errors mapped to Markdown lines (`type-error`).
 *
 * One ts.Program over virtual files: cell `<id>` is `<mdDir>/__cell__<id>.mts` (so its
 * relative imports resolve from the Markdown file's directory, and `.mts` makes it an ES
 * module whatever package.json says), `cell:<id>` resolves to that file (imports are typed
 * from the other cell's exports), `report:runtime` to `options.runtimePath`. Inline
 * `{ts}`/`{claim}` expressions are checked too, in a virtual `__inline__.mts` importing
 * every cell's exports (`<mdDir>/__cell____inline__.mts`) by the names its bundle gives
 * (`options.exports`, bundle.ts). While a cell could not be bundled its names are unknown:
 * an expression reading a name no bundled cell exports is then not checked (the cell's
 * error is what is reported).
 *
 * Speed: TypeScript's lib files are parsed once per process (nothing else is kept between
 * calls); the outcome is cached on disk (`cacheDir`) under a
 * hash of every cell source, inline expression, the runtime and the lockfile, and
 * revalidated against the content of the project files the cells imported.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomicSync } from './atomic.ts';
import path from 'node:path';
import type { InlineCode } from 'mdast';
import type ts from 'typescript';
import type { Point, Position } from 'unist';
import { visit } from 'unist-util-visit';
import type { VFileMessage } from 'vfile-message';
import type { ParsedDocument } from './parse.ts';
import { readPaths } from './inline.ts';
import { typescript, typescriptVersion } from './typescript.ts';
import { sha256 } from './digest.ts';

export interface TypecheckOptions {
  projectRoot: string;
  /**
   * Absolute path of the Markdown file (cells' relative imports resolve from its folder).
   * Default: `doc.file.path` resolved against the working directory, as the VFile was made.
   */
  docPath?: string;
  runtimePath: string;
  /** Directory of the on-disk cache (e.g. node_modules/.cache/report); none when absent. */
  cacheDir?: string;
  /**
   * The cells' export names, from their bundles (document.ts `LoadedDocument.exports`); a
   * cell without an entry could not be bundled. Default: none known.
   */
  exports?: ReadonlyMap<string, readonly string[]>;
}

const SOURCE = 'report';
/** Prefix of the virtual files, placed beside the Markdown file. */
const PREFIX = '__cell__';
const INLINE_FILE = `${PREFIX}__inline__.mts`;
const MARKER = /^\{(ts|claim)\}\s+([\s\S]+)$/;
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
/** Bumped when the cached shape or the checking changes. */
const CACHE_VERSION = 1;

const defaultCompilerOptions = (ts: typeof import('typescript')): ts.CompilerOptions => ({
  strict: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  lib: ['lib.es2023.d.ts'],
  types: ['node'],
  allowImportingTsExtensions: true,
  noEmit: true,
  skipLibCheck: true,
  esModuleInterop: true,
  resolveJsonModule: true,
  isolatedModules: true,
});

/** A type error before it becomes a message: what the cache stores. */
interface Problem {
  reason: string;
  start: Point;
  end?: Point;
}

interface CacheEntry {
  version: number;
  /** Project files the program read (outside node_modules), with their content hash. */
  files: [string, string][];
  problems: Problem[];
}

/** A virtual file and how its lines map back to the Markdown file. */
interface Virtual {
  text: string;
  /** 0-based line of the virtual file → Markdown place (start of the span it came from). */
  place: (line: number, character: number) => Point;
  label: string;
}

/** Checks every cell; pushes `type-error` messages onto `doc.file` and returns them. */
export function typecheckCells(doc: ParsedDocument, options: TypecheckOptions): VFileMessage[] {
  const projectRoot = path.resolve(options.projectRoot);
  const mdPath = path.resolve(options.docPath ?? path.resolve(doc.file.path || 'report.md'));
  const cellDir = path.dirname(mdPath);
  const virtuals = virtualFiles(doc, cellDir, options.exports ?? new Map());
  const runtimePath = path.resolve(options.runtimePath);

  const key = sha256(JSON.stringify([
    String(CACHE_VERSION),
    typescriptVersion(),
    runtimePath,
    cellDir,
    maybeRead(path.join(projectRoot, 'package-lock.json')) ?? '',
    ...[...virtuals].flatMap(([file, v]) => [file, v.text]),
  ]));
  const cacheFile = options.cacheDir ? path.join(options.cacheDir, `typecheck-${key.slice(0, 32)}.json`) : undefined;
  let problems = cacheFile ? maybeCached(cacheFile) : undefined;
  if (!problems) {
    let outcome: ReturnType<typeof check>;
    try {
      outcome = check(virtuals, runtimePath, projectRoot);
    } catch (error) {
      if (!(error instanceof RangeError)) throw error;
      // TypeScript recurses per level of nesting: code nested deeper than its stack allows.
      const first = doc.cells[0];
      const start = first ? { line: first.codeLine, column: 1 } : { line: 1, column: 1 };
      const reason = `the cells or inline expressions nest too deeply to type-check (${error.message})`;
      return [doc.file.message(reason, { place: start, ruleId: 'type-error', source: SOURCE })];
    }
    problems = outcome.problems;
    if (cacheFile) store(cacheFile, { version: CACHE_VERSION, files: outcome.files, problems });
  }

  return problems.map((p) =>
    doc.file.message(p.reason, {
      place: p.end ? { start: p.start, end: p.end } : p.start,
      ruleId: 'type-error',
      source: SOURCE,
    }),
  );
}

function virtualFiles(doc: ParsedDocument, cellDir: string, exports: ReadonlyMap<string, readonly string[]>): Map<string, Virtual> {
  const virtuals = new Map<string, Virtual>();
  for (const cell of doc.cells) {
    const indent = cell.position.start.column - 1;
    virtuals.set(path.join(cellDir, `${PREFIX}${cell.id}.mts`), {
      text: cell.code,
      place: (line, character) => ({ line: cell.codeLine + line, column: indent + character + 1 }),
      label: `cell "${cell.id}"`,
    });
  }

  // Inline expressions: one line each, over the union of the cells' exports.
  const imported = new Set<string>();
  const lines: string[] = [];
  for (const cell of doc.cells) {
    const names = (exports.get(cell.id) ?? []).filter((n) => n !== 'default' && IDENTIFIER.test(n) && !imported.has(n));
    names.forEach((n) => imported.add(n));
    if (names.length > 0) lines.push(`import { ${names.join(', ')} } from 'cell:${cell.id}';`);
  }
  const namesUnknown = doc.cells.some((cell) => !exports.has(cell.id));
  const header = lines.length;
  const places: Position[] = [];
  visit(doc.tree, 'inlineCode', (node: InlineCode) => {
    const match = MARKER.exec(node.value);
    if (!match || !node.position) return;
    const expr = (match[2] as string).replace(/\s*\n\s*/g, ' ').trim();
    // A name no bundled cell exports may be one of a cell that could not be bundled.
    if (namesUnknown && readPaths(expr).roots.some((r) => !imported.has(r) && !(r in globalThis))) return;
    lines.push(`void (${expr});`);
    places.push(node.position);
  });
  if (places.length > 0) {
    virtuals.set(path.join(cellDir, INLINE_FILE), {
      text: `${lines.join('\n')}\n`,
      place: (line) => places[line - header]?.start ?? { line: 1, column: 1 },
      label: 'inline expression',
    });
  }
  return virtuals;
}

/**
 * TypeScript's own lib files never change within a process: parsed once, keyed by path and
 * target. Nothing else is kept between calls (no previous program, no resolutions), so one
 * check cannot leak into the next (another document, another folder, a watch mode).
 */
const libFiles = new Map<string, ts.SourceFile>();

function check(
  virtuals: Map<string, Virtual>,
  runtimePath: string,
  projectRoot: string,
): { problems: Problem[]; files: [string, string][] } {
  const ts = typescript();
  // Type roots from the project, not from wherever the command runs.
  const options = { ...defaultCompilerOptions(ts), typeRoots: [path.join(projectRoot, 'node_modules', '@types')] };
  const host = ts.createCompilerHost(options, true);
  const cellDir = path.dirname([...virtuals.keys()][0] ?? '/');
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const getSourceFile = host.getSourceFile.bind(host);
  const projectTexts = new Map<string, string>();

  host.fileExists = (file) => virtuals.has(file) || fileExists(file);
  host.readFile = (file) => virtuals.get(file)?.text ?? readFile(file);
  host.getSourceFile = (file, languageVersion, onError, shouldCreate) => {
    const virtual = virtuals.get(file);
    if (virtual) {
      return ts.createSourceFile(file, virtual.text, languageVersion, true);
    }
    const lib = path.dirname(file) === path.dirname(host.getDefaultLibFileName(options));
    const libKey = `${String(languageVersion)}:${file}`;
    if (lib) {
      const cached = libFiles.get(libKey);
      if (cached) return cached;
    }
    const source = getSourceFile(file, languageVersion, onError, shouldCreate);
    if (source && lib) libFiles.set(libKey, source);
    if (source && !lib && !file.includes(`${path.sep}node_modules${path.sep}`)) projectTexts.set(file, source.text);
    return source;
  };

  const resolutionCache = ts.createModuleResolutionCache(host.getCurrentDirectory(), (f) => f, options);
  host.resolveModuleNameLiterals = (literals, containingFile, redirected, compilerOptions, containingSource) =>
    literals.map((literal) => {
      const name = literal.text;
      if (name.startsWith('cell:')) {
        const target = path.join(cellDir, `${PREFIX}${name.slice('cell:'.length)}.mts`);
        return virtuals.has(target)
          ? { resolvedModule: { resolvedFileName: target, extension: ts.Extension.Mts, isExternalLibraryImport: false } }
          : { resolvedModule: undefined };
      }
      if (name === 'report:runtime') {
        return { resolvedModule: { resolvedFileName: runtimePath, extension: extensionOf(runtimePath), isExternalLibraryImport: false } };
      }
      const mode = ts.getModeForUsageLocation(containingSource, literal, compilerOptions);
      return ts.resolveModuleName(name, containingFile, compilerOptions, host, resolutionCache, redirected, mode);
    });

  const program = ts.createProgram({ rootNames: [...virtuals.keys()], options, host });

  const problems: Problem[] = [];
  for (const [file, virtual] of virtuals) {
    const source = program.getSourceFile(file);
    if (!source) continue;
    const diagnostics = [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)];
    for (const d of diagnostics) {
      const text = ts.flattenDiagnosticMessageText(d.messageText, '\n');
      // `cell:` imports of unknown cells are reported by graph.ts as `unknown-cell`.
      if (d.code === 2307 && text.includes("'cell:")) continue;
      const startAt = source.getLineAndCharacterOfPosition(d.start ?? 0);
      const endAt = source.getLineAndCharacterOfPosition((d.start ?? 0) + (d.length ?? 0));
      const start = virtual.place(startAt.line, startAt.character);
      const end = startAt.line === endAt.line ? virtual.place(endAt.line, endAt.character) : undefined;
      const reason = `type error in ${virtual.label}: ${text} (TS${d.code})`;
      problems.push(virtual.label === 'inline expression' ? { reason, start } : { reason, start, ...(end ? { end } : {}) });
    }
  }
  problems.sort((a, b) => a.start.line - b.start.line || a.start.column - b.start.column);
  const files: [string, string][] = [...projectTexts].map(([file, text]) => [file, sha256(text)]);
  return { problems, files };
}

function extensionOf(file: string): ts.Extension {
  const ts = typescript();
  if (file.endsWith('.d.ts')) return ts.Extension.Dts;
  if (file.endsWith('.mts')) return ts.Extension.Mts;
  if (file.endsWith('.js')) return ts.Extension.Js;
  if (file.endsWith('.mjs')) return ts.Extension.Mjs;
  return ts.Extension.Ts;
}


function maybeRead(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** The cached problems when the entry exists and every project file it read is unchanged. */
function maybeCached(cacheFile: string): Problem[] | undefined {
  const text = maybeRead(cacheFile);
  if (text === undefined) return undefined;
  try {
    const entry = JSON.parse(text) as CacheEntry;
    if (entry.version !== CACHE_VERSION) return undefined;
    for (const [file, digest] of entry.files) {
      const content = maybeRead(file);
      if (content === undefined || sha256(content) !== digest) return undefined;
    }
    return entry.problems;
  } catch {
    return undefined;
  }
}

function store(cacheFile: string, entry: CacheEntry): void {
  try {
    writeFileAtomicSync(cacheFile, JSON.stringify(entry));
  } catch {
    // A cache that cannot be written only costs time.
  }
}
