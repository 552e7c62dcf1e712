/**
 * Loading a document and the context every command shares: where the project root,
 * the results store and the runtime module are, which profile and seed apply, and the
 * cells' content keys. `build.ts` and `check.ts` both start here.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VFile } from 'vfile';
import type { Effects } from './effects.ts';
import { buildGraph, type CellGraph } from './graph.ts';
import { exportNames, keyCells, type CellKey } from './key.ts';
import { keyCacheFile, keyCacheFrom } from './key-cache.ts';
import { parseDocument, parsedFromData, parsedToData, rememberScans, scansToRemember, type ParsedData, type ParsedDocument, type SectionMemo } from './parse.ts';
import { sha256 } from './digest.ts';
import { toolStamp } from './page-cache.ts';
import { recordMessages, replayMessages, type RecordedMessage } from './recorded-messages.ts';
import { compiledToRemember, precompileInline, rememberCompiled } from './inline.ts';
import { mathToRemember, precheckMath, rememberMath } from './refs.ts';
import { previousSchemeStates, type PreviousSchemeState } from './previous-scheme.ts';
import { ResultStore } from './store.ts';
import type { ResultMemo } from './result-memo.ts';
import { ReportError } from './errors.ts';
import { readBibliographies, type BibliographySource } from './cite.ts';

export const runtimePath = fileURLToPath(new URL('./runtime.ts', import.meta.url));

export interface LoadOptions {
  docPath: string;
  /** Project root (where node_modules and figures/ live). Default: cwd. */
  projectRoot?: string;
  /** Overrides the front matter's profile; default 'full'. */
  profile?: string;
  /** Results directory for the full profile; default `<docDir>/results`. */
  resultsDir?: string;
  /** Where caches live (keys, type checks, highlighting); default `<projectRoot>/node_modules/.cache/report`. */
  cacheDir?: string;
  /** Remember cells' keys between commands (key-cache.ts); default true. `--no-cache` turns it off. */
  keyCache?: boolean;
  /**
   * The preview's memo of decoded stored results (result-memo.ts), kept from one rebuild
   * to the next. Commands leave it out: they read and verify every payload.
   */
  resultMemo?: ResultMemo;
  /** The preview's parsed sections (parse.ts `SectionMemo`): a save parses again only the sections it changed. */
  sections?: SectionMemo;
  /**
   * Where the writes of the caches between commands (keys, parse) go instead of being done
   * at once: a long-lived process (the preview) does them once its page is out. Default: at once.
   */
  deferWrite?: (write: () => Promise<void>) => void;
}

/** The folder of the engine's caches. */
export function cacheDirOf(options: { cacheDir?: string }, projectRoot: string): string {
  return options.cacheDir ?? path.join(projectRoot, 'node_modules', '.cache', 'report');
}

export interface LoadedDocument {
  doc: ParsedDocument;
  graph: CellGraph;
  keys: Map<string, CellKey>;
  /**
   * Each cell's export names, from its bundle (bundle.ts, their one source, carried by its
   * key): what inline values, claims and the type check know a cell exports before it has
   * a result. A cell that could not be bundled (or was not keyed) has no entry.
   */
  exports: Map<string, string[]>;
  store: ResultStore;
  profile: string;
  seed: number;
  docPath: string;
  projectRoot: string;
  /** Cells that can run or be checked: in the graph order and keyed without error. */
  usable: string[];
  /** The BibTeX files the front matter names (undefined when it names none). */
  bibliography?: BibliographySource[];
  /** True when loading reported no problem at all (the clean-up of unused results needs it). */
  clean: boolean;
  /**
   * Usable cells with a previous-scheme key → what the store holds for them under either
   * scheme, and whether a result stored under the previous one is adopted (previous-scheme.ts).
   */
  previousScheme: Map<string, PreviousSchemeState>;
}

/** The results directory of a profile: full results are committed, others are not. */
export function resultsDirFor(docPath: string, profile: string, resultsDir?: string): string {
  const base = resultsDir ?? path.join(path.dirname(docPath), 'results');
  return profile === 'full' ? base : path.join(base, 'profiles', profile);
}

/**
 * Reads, parses, graphs and keys a document. Content problems become messages on
 * `doc.file`; only an unreadable file throws (a ReportError the CLI prints).
 */
export async function loadDocument(options: LoadOptions, effects: Effects): Promise<LoadedDocument> {
  const projectRoot = path.resolve(options.projectRoot ?? process.cwd());
  const docPath = path.resolve(options.docPath);
  let bytes: Uint8Array;
  try {
    bytes = await effects.readFile(docPath);
  } catch (error) {
    throw new ReportError(
      `cannot read ${path.relative(process.cwd(), docPath) || docPath}: ${(error as Error).message}. ` +
        'Give the path of a Markdown document, e.g. `npm run report -- report/report.md`.',
      2,
    );
  }
  const { text, bad } = decodeUtf8(bytes);
  const file = new VFile({ path: path.relative(process.cwd(), docPath) || docPath, value: text });
  if (bad !== undefined) {
    file.message(
      `the file is not UTF-8: byte 0x${bad.byte.toString(16).padStart(2, '0')} at line ${bad.line}, column ${bad.column} is not valid UTF-8; ` +
        're-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)',
      { place: { line: bad.line, column: bad.column }, ruleId: 'not-utf8', source: 'report' },
    );
  }
  const cacheFile = options.keyCache === false ? undefined : keyCacheFile(cacheDirOf(options, projectRoot), docPath);
  const cache = cacheFile === undefined ? undefined : keyCacheFrom(await effects.readFile(cacheFile).then((b) => new TextDecoder().decode(b), () => undefined));
  if (cache !== undefined) {
    rememberScans(cache.memos.scans);
    rememberCompiled(cache.memos.inline);
    rememberMath(cache.memos.math);
  }
  // A cache that cannot be written is only slower next time.
  const write = async (task: () => Promise<void>): Promise<void> => (options.deferWrite ? options.deferWrite(task) : task().catch(() => undefined));
  const doc = await parseThroughCache(file, text, cacheFile === undefined ? undefined : parseCacheFile(cacheDirOf(options, projectRoot), docPath), projectRoot, effects, options.sections, write);
  const graph = buildGraph(doc);
  // A problem of the whole document (encoding, front matter) changes what every cell would
  // run with (its seed, its profile, its text): no cell is run, checked or cleaned up.
  const documentProblem = file.messages.find((m) => DOCUMENT_RULES.has(m.ruleId ?? ''));
  const profile = options.profile ?? doc.frontMatter.profile ?? 'full';
  if (!/^[a-z0-9-]+$/.test(profile)) {
    throw new ReportError(`bad profile "${profile}": use letters, digits and dashes (e.g. full, quick)`, 2);
  }
  const seed = doc.frontMatter.seed ?? 0;
  const keys = await keyCells(doc.cells, graph.order, {
    docPath,
    projectRoot,
    profile,
    seed,
    runtimePath,
    readFile: (p) => effects.readFile(p),
    readdir: (p) => effects.readdir(p),
    ...(cache === undefined ? {} : { cache, onCacheWrong: () => effects.rm(cacheFile!) }),
  });
  if (cache !== undefined) {
    await precompileInline(doc.tree);
    const scans = scansToRemember();
    if (scans !== undefined) cache.setMemo('scans', scans);
    const compiled = compiledToRemember();
    if (compiled !== undefined) cache.setMemo('inline', compiled);
    precheckMath(doc.tree);
    const math = mathToRemember();
    if (math !== undefined) cache.setMemo('math', math);
  }
  if (cache?.changed === true) await write(() => effects.writeFileAtomic(cacheFile!, cache.serialize()));
  const cellsById = new Map(doc.cells.map((cell) => [cell.id, cell]));
  const usable: string[] = [];
  for (const id of documentProblem === undefined ? graph.order : []) {
    const key = keys.get(id);
    const cell = cellsById.get(id);
    if (!cell) continue;
    if (!key || key.error) {
      const problem = key?.error;
      const message = file.message(problem?.message ?? `cell "${id}" could not be bundled`, {
        place: problem?.line ? { line: problem.line, column: problem.column ?? 1 } : cell.position,
        ruleId: problem?.ruleId ?? 'cell-syntax',
        source: 'report',
      });
      message.fatal = true;
      continue;
    }
    if (graph.deps(id).some((dep) => !usable.includes(dep))) continue;
    usable.push(id);
  }
  // A store not yet migrated to the current key scheme is read through the previous-scheme
  // keys of the cells whose stored result is adopted.
  const storeDir = resultsDirFor(docPath, profile, options.resultsDir);
  const previousScheme = await previousSchemeStates({ order: usable, keys, store: new ResultStore(storeDir, effects), docDir: path.dirname(docPath), effects });
  const adopted = [...previousScheme].flatMap(([id, state]) => (state.verdict?.ok === true ? [[keys.get(id)!.key, keys.get(id)!.previous!] as const] : []));
  const store = new ResultStore(storeDir, effects, new Map(adopted), options.resultMemo);
  const bibliography = await readBibliographies(file, doc.tree, doc.frontMatter, docPath, (p) => effects.readFile(p));
  return { doc, graph, keys, exports: exportNames(keys), store, profile, seed, docPath, projectRoot, usable, bibliography, clean: file.messages.length === 0, previousScheme };
}

/** The parse cache of a document (beside its key cache). */
function parseCacheFile(cacheDir: string, docPath: string): string {
  return path.join(cacheDir, `parse-${sha256(docPath).slice(0, 24)}.json`);
}

/**
 * Parses a document, or gives back the parse of the same text by the same engine and
 * packages (a fresh process pays about a second to parse the report: micromark compiles
 * lazily), with the messages that parse gave. `cacheFile` undefined: no cache.
 */
async function parseThroughCache(
  file: VFile,
  text: string,
  cacheFile: string | undefined,
  projectRoot: string,
  effects: Effects,
  sections: SectionMemo | undefined,
  write: (task: () => Promise<void>) => Promise<void>,
): Promise<ParsedDocument> {
  if (cacheFile === undefined) return parseDocument(file, sections);
  // A long-lived process's sections are its cache once it has parsed once: the file is only written for the next command.
  if (sections !== undefined && !sections.empty) {
    const before = file.messages.length;
    const doc = parseDocument(file, sections);
    const messages = recordMessages(file, before);
    await write(async () => {
      const lookup = sha256(JSON.stringify([text, await toolStamp(effects, projectRoot)]));
      await effects.writeFileAtomic(cacheFile, JSON.stringify({ lookup, data: parsedToData(doc), messages }));
    });
    return doc;
  }
  const lookup = sha256(
    JSON.stringify([text, await toolStamp(effects, projectRoot)]),
  );
  try {
    const saved = JSON.parse(new TextDecoder().decode(await effects.readFile(cacheFile))) as { lookup?: string; data?: ParsedData; messages?: RecordedMessage[] };
    if (saved.lookup === lookup && saved.data !== undefined && Array.isArray(saved.messages)) {
      const before = file.messages.length;
      replayMessages(file, saved.messages);
      try {
        return parsedFromData(saved.data, file);
      } catch {
        file.messages.splice(before);
      }
    }
  } catch {
    // no cache yet, or a damaged one: parsed below
  }
  const before = file.messages.length;
  const doc = parseDocument(file, sections);
  const saved = { lookup, data: parsedToData(doc), messages: recordMessages(file, before) };
  await write(() => effects.writeFileAtomic(cacheFile, JSON.stringify(saved)));
  return doc;
}

/** Rules that make the whole document unusable for running cells (see `loadDocument`). */
export const DOCUMENT_RULES = new Set(['not-utf8', 'bad-frontmatter', 'document-too-deep']);

/**
 * Decodes UTF-8; on the first invalid byte, returns where it is (1-based line and column,
 * the column counting characters of the valid text before it) and a lenient decoding.
 */
export function decodeUtf8(bytes: Uint8Array): { text: string; bad?: { byte: number; line: number; column: number } } {
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) };
  } catch {
    const text = new TextDecoder().decode(bytes);
    // The longest valid prefix: decode up to each candidate offset until one fails.
    let offset = 0;
    while (offset < bytes.length) {
      const length = utf8SequenceLength(bytes, offset);
      if (length === 0) break;
      offset += length;
    }
    const before = new TextDecoder().decode(bytes.subarray(0, offset));
    const lines = before.split('\n');
    return { text, bad: { byte: bytes[offset] ?? 0, line: lines.length, column: [...lines.at(-1)!].length + 1 } };
  }
}

/** Length of the valid UTF-8 sequence at `i`, or 0 when the bytes there are not valid UTF-8. */
function utf8SequenceLength(b: Uint8Array, i: number): number {
  const c = b[i]!;
  if (c < 0x80) return 1;
  const cont = (k: number): boolean => i + k < b.length && (b[i + k]! & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const c1 = b[i + 1]!;
    if ((c === 0xe0 && c1 < 0xa0) || (c === 0xed && c1 > 0x9f)) return 0;
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const c1 = b[i + 1]!;
    if ((c === 0xf0 && c1 < 0x90) || (c === 0xf4 && c1 > 0x8f)) return 0;
    return 4;
  }
  return 0;
}
