/**
 * Markdown → mdast + cells + front matter, and each cell's `cell:` imports.
 *
 * A cell is a fenced block whose info string is `ts run id=<id> [key=value …]`; its code is
 * an ES module. Everything wrong with the content becomes a positioned message on the
 * VFile (`duplicate-id`, `bad-option`, `bad-frontmatter`); `parseDocument` never throws on
 * content.
 *
 * The `cell:` imports come from a syntactic pre-pass over each cell's code ({@link scanCode}),
 * the only source of them: the dependency graph (graph.ts) must be known before any cell is
 * bundled, because a cell's bundle is made with the export names of the cells it imports
 * (bundle.ts). The pre-pass reads nothing else — a cell's export names come from its bundle
 * only (bundle.ts), which sees through re-exports of project files that a parse cannot.
 */
import * as esbuild from 'esbuild';
import type { Code, Root } from 'mdast';
import remarkFrontmatter from 'remark-frontmatter';
import remarkGfm from 'remark-gfm';
import remarkMath from 'remark-math';
import remarkParse from 'remark-parse';
import { unified } from 'unified';
import type { Node, Point } from 'unist';
import { visit } from 'unist-util-visit';
import type { VFile } from 'vfile';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { guardText, pruneDeepNodes } from './limits.ts';
import { readVerifySection } from './measured.ts';
import { keyedOptions, parseResourceOption, readSlurmSection, RESOURCE_OPTIONS, type CellResources } from './resources.ts';
import type { Cell, CellOptions, FrontMatter } from './types.ts';
import { sha256 } from './digest.ts';

declare module 'mdast' {
  interface CodeData {
    /** Set on the `code` node of every valid cell. */
    cell?: Cell;
  }
}

/** One `cell:<id>` module specifier inside a cell, with its place in the Markdown file. */
export interface CellImport {
  id: string;
  place: Point;
}

export interface ParsedDocument {
  file: VFile;
  tree: Root;
  frontMatter: FrontMatter;
  /** Valid cells in document order (a cell with a duplicate or missing id is left out). */
  cells: Cell[];
  /** Per cell id: each `cell:` specifier with its Markdown position (graph.ts reports at it). */
  cellImports: Map<string, CellImport[]>;
  /**
   * Cells that must not run, with the reason: their options were rejected (`bad-option`)
   * or their fence is never closed (`unclosed-fence`). They stay in `cells` (so imports of
   * them are not "unknown") and the graph blocks them and their dependents.
   */
  rejected: Map<string, string>;
}

/** A parsed document as JSON data, for the parse cache (document.ts): all but the file. */
export interface ParsedData {
  tree: Root;
  frontMatter: FrontMatter;
  cells: Cell[];
  cellImports: [string, CellImport[]][];
  rejected: [string, string][];
}

export function parsedToData(doc: ParsedDocument): ParsedData {
  return {
    tree: doc.tree,
    frontMatter: doc.frontMatter,
    cells: doc.cells,
    cellImports: [...doc.cellImports],
    rejected: [...doc.rejected],
  };
}

/** The document `parsedToData` gave (read back from JSON), for `file`; each cell node points at its cell again. */
export function parsedFromData(data: ParsedData, file: VFile): ParsedDocument {
  const byId = new Map(data.cells.map((cell) => [cell.id, cell]));
  visit(data.tree, 'code', (node) => {
    const cell = (node.data as { cell?: Cell } | undefined)?.cell;
    if (cell !== undefined) node.data = { ...node.data, cell: byId.get(cell.id) ?? cell };
  });
  return {
    file,
    tree: data.tree,
    frontMatter: data.frontMatter,
    cells: data.cells,
    cellImports: new Map(data.cellImports),
    rejected: new Map(data.rejected),
  };
}

export const CELL_ID = /^[a-z0-9-]+$/;
const SOURCE = 'report';

export const DEFAULT_OPTIONS: CellOptions = { echo: true, timeout: 1800, memory: 8192 };

/**
 * Parses a Markdown document; problems become messages on `file`. With `sections` (the
 * preview's, kept from one save to the next) the text is parsed section by section and
 * sections whose text did not change are not parsed again (see {@link SectionMemo}).
 */
export function parseDocument(file: VFile, sections?: SectionMemo): ParsedDocument {
  const processor = unified().use(remarkParse).use(remarkGfm).use(remarkMath).use(remarkFrontmatter, ['yaml']);
  // Hostile input (thousands of delimiters, deep nesting) is defused before and after the
  // parse (limits.ts), and a parser that still overflows is a positioned problem.
  const guarded = guardText(String(file.value));
  for (const problem of guarded.problems) {
    file.message(problem.reason, { place: { line: problem.line, column: problem.column }, ruleId: 'document-too-deep', source: SOURCE });
  }
  let tree: Root;
  try {
    tree = sections === undefined ? processor.parse(guarded.text) : sections.parse(guarded.text, (text) => processor.parse(text));
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    file.message(`the document cannot be parsed: ${error.message} (it nests too deeply)`, { place: { line: 1, column: 1 }, ruleId: 'document-too-deep', source: SOURCE });
    tree = { type: 'root', children: [] };
  }
  pruneDeepNodes(tree, file);
  const frontMatter = readFrontMatter(tree, file);
  const cells: Cell[] = [];
  const cellImports = new Map<string, CellImport[]>();
  const seen = new Map<string, Cell>();
  const rejected = new Map<string, string>();
  const source = String(file.value);

  visit(tree, 'code', (node) => {
    const unclosed = isUnclosedFence(node, source);
    if (unclosed) {
      file.message(
        'code fence opened here is never closed: everything after it is code; close it with a line of the same fence (```)',
        { place: node.position?.start, ruleId: 'unclosed-fence', source: SOURCE },
      );
    }
    const meta = runMeta(node);
    if (meta === undefined) return;
    const problemsBefore = file.messages.length;
    const cell = readCell(node, meta, file);
    if (!cell) return;
    const deep = deepestBracket(cell.code);
    if (deep !== undefined) {
      file.message(`cell "${cell.id}" nests brackets more than ${MAX_CODE_DEPTH} deep; it is not parsed, checked or run`, {
        place: { line: cell.codeLine + deep.line, column: deep.column + 1 },
        ruleId: 'document-too-deep',
        source: SOURCE,
      });
      cell.code = '';
    }
    const optionsRejected = file.messages.slice(problemsBefore).some((m) => m.ruleId === 'bad-option');
    const first = seen.get(cell.id);
    if (first) {
      file.message(
        `duplicate cell id "${cell.id}": already used by the cell at line ${first.position.start.line}; ids must be unique, rename one`,
        { place: node.position, ruleId: 'duplicate-id', source: SOURCE },
      );
      return;
    }
    seen.set(cell.id, cell);
    if (unclosed) rejected.set(cell.id, 'its code fence is never closed');
    else if (optionsRejected) rejected.set(cell.id, 'its options were rejected');
    const imports = importsOf(cell);
    cell.imports = [...new Set(imports.map((i) => i.id))];
    cellImports.set(cell.id, imports);
    node.data = { ...node.data, cell };
    cells.push(cell);
  });

  return { file, tree, frontMatter, cells, cellImports, rejected };
}

/**
 * The preview's parsed sections, by their text: a save parses again only the sections it
 * changed (on the report, one of 37; parsing all 290 KB took a third of a second).
 *
 * A section starts at an ATX heading (`#` at the start of a line) after a blank line,
 * outside fenced code and math: there every block before it is closed (a paragraph by the
 * blank line; a list item, block quote or footnote by a line that is neither indented nor
 * marked; a table by the blank line), so Markdown parses the text after it as it parses a
 * document of its own, and positions differ only by where the section starts. Three things
 * would carry across: a fenced code or math block or an HTML comment-like block left open
 * (then the section is parsed together with the next: checked on the section's own tree,
 * not guessed from the text), and link or footnote definitions, which references anywhere
 * resolve against (then the whole text is parsed as one). tests/engine/parse-sections.test.ts
 * compares the trees with those of one parse on the fixtures, the report and fuzzed text.
 */
export class SectionMemo {
  private trees = new Map<string, Root>();
  /** True before the first parse (a long-lived process may start from a parse cache instead). */
  get empty(): boolean {
    return this.trees.size === 0;
  }

  /** Parses `text` by sections with `parse`, reusing the sections parsed last time. */
  parse(text: string, parse: (text: string) => Root): Root {
    const used = new Map<string, Root>();
    const sectionTree = (section: string): Root => {
      let tree = used.get(section) ?? this.trees.get(section);
      if (tree === undefined) tree = parse(section);
      used.set(section, tree);
      return tree;
    };
    const starts = sectionStarts(text);
    const children: Root['children'] = [];
    let end: Point = { line: 1, column: 1, offset: 0 };
    for (let i = 0; i < starts.length; ) {
      let j = i + 1;
      let section: string;
      let tree: Root;
      for (;;) {
        section = text.slice(starts[i]!.offset, j < starts.length ? starts[j]!.offset : text.length);
        tree = sectionTree(section);
        if (j >= starts.length || closedAtEnd(tree, section)) break;
        j++;
      }
      if (hasDefinitions(tree)) {
        this.trees = new Map();
        return parse(text);
      }
      for (const child of tree.children) children.push(shifted(child, starts[i]!.line - 1, starts[i]!.offset));
      if (tree.position !== undefined) end = movePoint(tree.position.end, starts[i]!.line - 1, starts[i]!.offset);
      i = j;
    }
    // Only the sections of the text as it is now are kept: the memo does not grow over edits.
    this.trees = used;
    return { type: 'root', children, position: { start: { line: 1, column: 1, offset: 0 }, end } };
  }

  /** Sections kept now. */
  get size(): number {
    return this.trees.size;
  }
}

/**
 * Where sections may start: the start of the text and each ATX heading after a blank line
 * outside the front matter, fences and `$$` blocks (a guess, checked by `closedAtEnd`; the
 * front matter cannot be checked that way, so it is skipped generously).
 */
function sectionStarts(text: string): { offset: number; line: number }[] {
  const starts = [{ offset: 0, line: 1 }];
  let fence: string | undefined;
  let blank = false;
  // Lines as Markdown counts them: a CR, an LF or CR LF ends one.
  const lines = text.split(/\r\n|\r|\n/);
  const endings = text.match(/\r\n|\r|\n/g) ?? [];
  let offset = 0;
  let line = 1;
  // YAML front matter holds no sections: none starts before a line that is exactly `---`.
  let frontMatter = lines[0]?.trimEnd() === '---';
  for (const [index, raw] of lines.entries()) {
    const content = raw.replace(/^[ \t>]*/, '');
    if (frontMatter) {
      if (line > 1 && raw === '---') frontMatter = false;
    } else if (fence !== undefined) {
      const closing = content.trimEnd();
      if (closing.length >= fence.length && closing[0] === fence[0] && [...closing].every((c) => c === fence![0])) fence = undefined;
    } else {
      const opening = /^(`{3,}|~{3,}|\${2,})/.exec(content);
      if (opening !== null) fence = opening[1]!;
      else if (blank && /^#{1,6}(?:[ \t]|$)/.test(raw)) starts.push({ offset, line });
    }
    blank = raw.trim() === '';
    offset += raw.length + (endings[index]?.length ?? 0);
    line++;
  }
  return starts;
}

/**
 * False when a section's own parse ends inside a fenced code block, a math block or an HTML
 * block that only its end marker closes (comment, `<?`, `<!X`, CDATA, script, pre, style,
 * textarea): the text after it would belong to that block. Conservative: such a block
 * anywhere in the section that is not visibly closed counts.
 */
function closedAtEnd(tree: Root, text: string): boolean {
  return !someNode(tree, (node) => {
    const start = node.position?.start.offset;
    const end = node.position?.end.offset;
    if (start === undefined || end === undefined) return false;
    if (node.type === 'code' || node.type === 'math') {
      const raw = text.slice(start, end);
      const open = /^[ \t]*(`{3,}|~{3,}|\${2,})/.exec(raw);
      if (open === null) return false; // indented code: closed by any unindented line
      const lines = raw.split(/\r\n|\r|\n/);
      const last = lines.length < 2 ? '' : lines.at(-1)!.replace(/^[\s>]*/, '').trim();
      const fence = open[1]!;
      return !(last.length >= fence.length && [...last].every((c) => c === fence[0]));
    }
    return node.type === 'html' && /^[ \t]*<(?:!|\?|(?:script|pre|style|textarea)(?:[\s>]|$))/i.test(text.slice(start, end));
  });
}

/** True when the tree holds a link or footnote definition (references anywhere resolve against it). */
function hasDefinitions(tree: Root): boolean {
  return someNode(tree, (node) => node.type === 'definition' || node.type === 'footnoteDefinition');
}

/** True when some node satisfies `test` (iteratively: a section's tree is not yet cut to MAX_DEPTH). */
function someNode(tree: Root, test: (node: Node) => boolean): boolean {
  const stack: Node[] = [tree];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (test(node)) return true;
    const children = (node as { children?: Node[] }).children;
    if (Array.isArray(children)) for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
  return false;
}

/**
 * A deep copy of a parsed node whose positions are moved down `lines` lines and on `offset`
 * characters (iteratively: a section's tree is not yet cut to MAX_DEPTH).
 */
function shifted<T extends object>(value: T, lines: number, offset: number): T {
  const top = (Array.isArray(value) ? [] : {}) as Record<string, unknown>;
  const stack: [Record<string, unknown>, Record<string, unknown>][] = [[value as Record<string, unknown>, top]];
  while (stack.length > 0) {
    const [from, to] = stack.pop()!;
    for (const [key, v] of Object.entries(from)) {
      if (v === null || typeof v !== 'object') {
        to[key] = v;
      } else if (key === 'position' && !Array.isArray(from)) {
        const { start, end } = v as { start: Point; end: Point };
        to[key] = { start: movePoint(start, lines, offset), end: movePoint(end, lines, offset) };
      } else {
        const copy = (Array.isArray(v) ? [] : {}) as Record<string, unknown>;
        to[key] = copy;
        stack.push([v as Record<string, unknown>, copy]);
      }
    }
  }
  return top as T;
}

function movePoint(point: Point, lines: number, offset: number): Point {
  return { line: point.line + lines, column: point.column, ...(point.offset === undefined ? {} : { offset: point.offset + offset }) };
}

/**
 * True when a fenced code block runs to the end of the document without its closing fence
 * (CommonMark then makes the rest of the file code). Indented code is never "unclosed".
 */
function isUnclosedFence(node: Code, source: string): boolean {
  const start = node.position?.start.offset;
  const end = node.position?.end.offset;
  if (start === undefined || end === undefined) return false;
  // A fence a container (list item, block quote) ends is closed by it; only one that runs
  // to the end of the file swallows the rest.
  if (source.slice(end).trim() !== '') return false;
  const text = source.slice(start, end);
  const open = /^[ \t]*(`{3,}|~{3,})/.exec(text);
  if (!open) return false;
  const fence = open[1]!;
  const lines = text.split(/\r?\n/);
  if (lines.length < 2) return true;
  // Inside a block quote or list the closing line carries the container's markers.
  const last = lines.at(-1)!.replace(/^[\s>]*/, '').trim();
  return !(last.length >= fence.length && last[0] === fence[0] && new RegExp(`^\\${fence[0]}{${fence.length},}$`).test(last));
}

/** Bracket nesting a cell's code may have: TypeScript's parser recurses once per level. */
export const MAX_CODE_DEPTH = 200;

/**
 * Where bracket nesting (`(`, `[`, `{`, outside strings and comments, roughly) first goes
 * deeper than {@link MAX_CODE_DEPTH}: 0-based line and column; undefined when it never does.
 */
export function deepestBracket(code: string): { line: number; column: number } | undefined {
  let depth = 0;
  let line = 0;
  let column = 0;
  let quote: string | undefined;
  for (let i = 0; i < code.length; i++, column++) {
    const ch = code[i]!;
    if (ch === '\n') {
      line++;
      column = -1;
      if (quote === '//') quote = undefined;
      if (quote === "'" || quote === '"') quote = undefined;
      continue;
    }
    if (quote !== undefined) {
      if (quote === '//') continue;
      if (quote === '/*') {
        if (ch === '*' && code[i + 1] === '/') quote = undefined;
        continue;
      }
      if (ch === '\\') {
        i++;
        column++;
        continue;
      }
      if (ch === quote) quote = undefined;
      continue;
    }
    if (ch === '/' && (code[i + 1] === '/' || code[i + 1] === '*')) {
      quote = code[i + 1] === '/' ? '//' : '/*';
      continue;
    }
    if (ch === "'" || ch === '"' || ch === '`') quote = ch;
    else if (ch === '(' || ch === '[' || ch === '{') {
      if (++depth > MAX_CODE_DEPTH) return { line, column };
    } else if (ch === ')' || ch === ']' || ch === '}') depth = Math.max(0, depth - 1);
  }
  return undefined;
}

/** `ts run …` → the text after `run` ('' when none); anything else → undefined. */
function runMeta(node: Code): string | undefined {
  if (node.lang !== 'ts' && node.lang !== 'typescript') return undefined;
  const meta = (node.meta ?? '').trim();
  if (meta !== 'run' && !meta.startsWith('run ')) return undefined;
  return meta.slice(3).trim();
}

function readCell(node: Code, rawOptions: string, file: VFile): Cell | undefined {
  const place = node.position;
  const problem = (reason: string): void => {
    file.message(reason, { place, ruleId: 'bad-option', source: SOURCE });
  };
  const options: CellOptions = { ...DEFAULT_OPTIONS };
  const resources: CellResources = {};
  /** The options given as `timeout=`/`memory=` and as `time=`/`mem=`, to check that they agree. */
  const given: { timeout?: number; memory?: number; time?: { text: string; seconds: number }; mem?: { text: string; mib: number } } = {};
  let id: string | undefined;

  for (const token of rawOptions.split(/\s+/).filter(Boolean)) {
    const eq = token.indexOf('=');
    if (eq <= 0) {
      problem(`cell option "${token}" is not key=value; write e.g. id=my-cell echo=false`);
      continue;
    }
    const key = token.slice(0, eq);
    const value = token.slice(eq + 1);
    switch (key) {
      case 'id':
        if (CELL_ID.test(value)) id = value;
        else problem(`cell id "${value}" must match [a-z0-9-]+ (lowercase letters, digits, hyphens)`);
        break;
      case 'echo':
        if (value === 'true' || value === 'false') options.echo = value === 'true';
        else problem(`echo=${value}: expected echo=true or echo=false`);
        break;
      case 'timeout': {
        const n = Number(value);
        if (value !== '' && Number.isFinite(n) && n > 0) options.timeout = given.timeout = n;
        else problem(`timeout=${value}: expected a positive number of seconds`);
        break;
      }
      case 'memory': {
        const n = Number(value);
        if (value !== '' && Number.isInteger(n) && n > 0) options.memory = given.memory = n;
        else problem(`memory=${value}: expected a positive integer of MiB`);
        break;
      }
      case 'seed': {
        const n = Number(value);
        if (value !== '' && Number.isSafeInteger(n)) options.seed = n;
        else problem(`seed=${value}: expected an integer`);
        break;
      }
      case 'cpus':
      case 'mem':
      case 'gpus':
      case 'time':
      case 'partition': {
        const parsed = parseResourceOption(key, value);
        if ('problem' in parsed) {
          problem(`${key}=${value}: ${parsed.problem}`);
          break;
        }
        if (key === 'time') given.time = { text: value, seconds: parsed.value as number };
        else if (key === 'mem') given.mem = { text: value, mib: parsed.value as number };
        else if (key === 'cpus') resources.cpus = parsed.value as number;
        else if (key === 'gpus') resources.gpus = parsed.value as string;
        else resources.partition = parsed.value as string;
        break;
      }
      default:
        problem(`unknown cell option "${key}"; known options: id, echo, timeout, memory, seed, ${RESOURCE_OPTIONS.join(', ')}`);
    }
  }

  // time= and mem= are Slurm's words for timeout= and memory=: either sets both executors' limit.
  if (given.time !== undefined) {
    if (given.timeout !== undefined && given.timeout !== given.time.seconds) {
      problem(`time=${given.time.text} (${given.time.seconds} s) and timeout=${given.timeout} disagree; they are the same limit, give one of them`);
    }
    options.timeout = given.time.seconds;
  }
  if (given.mem !== undefined) {
    if (given.memory !== undefined && given.memory !== given.mem.mib) {
      problem(`mem=${given.mem.text} (${given.mem.mib} MiB) and memory=${given.memory} disagree; they are the same limit, give one of them`);
    }
    options.memory = given.mem.mib;
  }
  if (given.time !== undefined || given.timeout !== undefined) resources.timeSeconds = options.timeout;
  if (given.mem !== undefined || given.memory !== undefined) resources.memMiB = options.memory;
  if (Object.keys(resources).length > 0) options.resources = resources;

  if (id === undefined) {
    if (!/(^|\s)id=/.test(rawOptions)) problem('cell has no id; add id=<name> after `ts run`');
    return undefined;
  }
  if (!place) return undefined;
  return {
    id,
    code: node.value,
    options,
    rawOptions: keyedOptions(rawOptions),
    position: place,
    codeLine: place.start.line + 1,
    imports: [],
  };
}

/**
 * The `cell:` specifiers of a cell (import and export-from declarations, dynamic `import()`
 * with a literal) with their Markdown positions, from esbuild's parse of the module (the
 * same parser that bundles it; loading the TypeScript compiler here would cost every
 * command half a second). Type-only imports are not dependencies: they need no result.
 * A cell that does not parse yields nothing here; bundle.ts reports it (`cell-syntax`).
 */
function importsOf(cell: Cell): CellImport[] {
  const specifiers = scanCached(cell.code);
  const indent = cell.position.start.column - 1;
  const imports: CellImport[] = [];
  let from = 0;
  for (const path of specifiers) {
    const offset = findSpecifier(cell.code, path, from);
    if (offset >= 0) from = offset + 1;
    const before = cell.code.slice(0, Math.max(offset, 0));
    const line = before.split('\n').length - 1;
    const column = offset >= 0 ? offset - (before.lastIndexOf('\n') + 1) : 0;
    imports.push({ id: path.slice('cell:'.length), place: { line: cell.codeLine + line, column: indent + column + 1 } });
  }
  return imports;
}

/**
 * The pre-pass's result for a cell's code: its `cell:` specifiers, in order. Kept by code
 * for a long-lived process (the preview re-parses the document on every save; most cells
 * did not change): at most {@link SCANS_KEPT} codes, the oldest dropped first.
 */
type Scan = readonly string[];
const scans = new Map<string, Scan>();
const SCANS_KEPT = 500;
/** Scans remembered between commands (key-cache.ts), by sha256 of the code; new ones since. */
const remembered = new Map<string, Scan>();
let rememberedChanged = false;

/** Seeds the scans remembered by an earlier command (sha256 of the code → its `cell:` specifiers). */
export function rememberScans(entries: Record<string, Scan>): void {
  for (const [hash, scan] of Object.entries(entries)) if (Array.isArray(scan)) remembered.set(hash, scan);
  rememberedChanged = false;
}

/** The scans to remember for the next command, when any is new (else undefined). */
export function scansToRemember(): Record<string, Scan> | undefined {
  if (!rememberedChanged) return undefined;
  rememberedChanged = false;
  return Object.fromEntries(remembered);
}

function scanCached(code: string): Scan {
  const kept = scans.get(code);
  if (kept !== undefined) {
    scans.delete(code);
    scans.set(code, kept);
    return kept;
  }
  const hash = sha256(code);
  let scan = remembered.get(hash);
  if (scan === undefined) {
    scan = scanCode(code);
    if (remembered.size >= SCANS_KEPT) remembered.delete(remembered.keys().next().value!);
    remembered.set(hash, scan);
    rememberedChanged = true;
  }
  scans.set(code, scan);
  if (scans.size > SCANS_KEPT) scans.delete(scans.keys().next().value!);
  return scan;
}

/**
 * The syntactic pre-pass: esbuild parses the cell on its own, every import left external
 * (nothing is resolved or read), and its metafile lists the cell's import records; the
 * `cell:` ones are kept, in source order.
 */
function scanCode(code: string): Scan {
  let metafile: esbuild.Metafile;
  try {
    metafile = esbuild.buildSync({
      stdin: { contents: code, loader: 'ts', sourcefile: 'cell.ts' },
      bundle: true,
      write: false,
      metafile: true,
      format: 'esm',
      platform: 'node',
      external: ['*'],
      outfile: 'cell.js',
      logLevel: 'silent',
      // Keep imports whose bindings are unused: they still order the cells.
      tsconfigRaw: { compilerOptions: { verbatimModuleSyntax: true } },
    }).metafile;
  } catch {
    return [];
  }
  return (metafile.inputs['cell.ts']?.imports ?? []).map((record) => record.path).filter((path) => path.startsWith('cell:'));
}

/** Offset of the quoted specifier (`'cell:x'`, `"cell:x"` or a template) at or after `from`; −1 if absent. */
function findSpecifier(code: string, specifier: string, from: number): number {
  const hits = ["'", '"', '`'].map((q) => code.indexOf(q + specifier + q, from)).filter((i) => i >= 0);
  return hits.length > 0 ? Math.min(...hits) : -1;
}

const FRONT_MATTER_TYPES: Record<string, 'string' | 'integer' | 'boolean'> = {
  title: 'string',
  author: 'string',
  date: 'string',
  profile: 'string',
  seed: 'integer',
  'number-sections': 'boolean',
  provenance: 'boolean',
};

function readFrontMatter(tree: Root, file: VFile): FrontMatter {
  const node = tree.children[0];
  if (!node || node.type !== 'yaml') return {};
  const problem = (reason: string): void => {
    file.message(reason, { place: node.position, ruleId: 'bad-frontmatter', source: SOURCE });
  };
  let data: unknown;
  try {
    // logLevel 'error': the yaml package would print warnings (e.g. an unknown tag) to stderr,
    // unpositioned; what matters is reported here as bad-frontmatter.
    data = parseYaml(node.value, { logLevel: 'error' });
  } catch (error) {
    const detail = error instanceof YAMLParseError ? error.message.split('\n')[0] : String(error);
    // `- **.seconds` unquoted is a YAML alias: say so, at its line.
    const alias = /Unresolved alias[^:]*: (.*)$/.exec(detail ?? '')?.[1];
    const aliasLine = alias === undefined ? -1 : node.value.split('\n').findIndex((line) => line.includes(`*${alias}`));
    const hint = alias === undefined ? '' : ` (a value starting with "*" is an alias in YAML: quote it, e.g. '*${alias}')`;
    file.message(`front matter is not valid YAML: ${detail}${hint}`, {
      place:
        yamlErrorPlace(error, node.position?.start) ??
        (aliasLine >= 0 && node.position ? { line: node.position.start.line + 1 + aliasLine, column: node.value.split('\n')[aliasLine]!.indexOf(`*${alias}`) + 1 } : node.position),
      ruleId: 'bad-frontmatter',
      source: SOURCE,
    });
    return {};
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    problem('front matter must be a YAML mapping (key: value lines)');
    return {};
  }
  const frontMatter: FrontMatter = {};
  for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
    if (key === 'verify') {
      const settings = readVerifySection(node.value, node.position?.start, file);
      if (settings !== undefined) frontMatter.verify = settings;
      continue;
    }
    if (key === 'slurm') {
      const { defaults, problems } = readSlurmSection(value);
      for (const reason of problems) problem(reason);
      if (problems.length === 0) frontMatter.slurm = defaults;
      continue;
    }
    const expected = FRONT_MATTER_TYPES[key];
    if (expected === 'string' && typeof value !== 'string') {
      // A YAML date or number is accepted when it reads naturally as text.
      if (typeof value === 'number' || value instanceof Date) {
        frontMatter[key] = value instanceof Date ? value.toISOString().slice(0, 10) : String(value);
      } else {
        problem(`front matter "${key}" must be a string, got ${describe(value)}`);
      }
      continue;
    }
    if (expected === 'boolean' && typeof value !== 'boolean') {
      problem(`front matter "${key}" must be true or false, got ${describe(value)}`);
      continue;
    }
    if (expected === 'integer' && !(typeof value === 'number' && Number.isSafeInteger(value))) {
      problem(`front matter "${key}" must be an integer, got ${describe(value)}`);
      continue;
    }
    frontMatter[key] = value;
  }
  return frontMatter;
}

function yamlErrorPlace(error: unknown, start: Point | undefined): Point | undefined {
  if (!(error instanceof YAMLParseError) || !start || !error.linePos) return undefined;
  // +1: the opening `---` line precedes the YAML text.
  return { line: start.line + error.linePos[0].line, column: error.linePos[0].col };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'a mapping' : `${typeof value} ${JSON.stringify(value)}`;
}
