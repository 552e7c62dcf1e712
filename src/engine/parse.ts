/**
 * Markdown → mdast + cells + front matter.
 *
 * A cell is a fenced block whose info string is `ts run id=<id> [key=value …]`; its code is
 * an ES module. Everything wrong with the content becomes a positioned message on the
 * VFile (`duplicate-id`, `bad-option`, `bad-frontmatter`); `parseDocument` never throws on
 * content.
 */
import type { Code, Root } from 'mdast';
import remarkFrontmatter from 'remark-frontmatter';
import remarkGfm from 'remark-gfm';
import remarkMath from 'remark-math';
import remarkParse from 'remark-parse';
import ts from 'typescript';
import { unified } from 'unified';
import type { Point } from 'unist';
import { visit } from 'unist-util-visit';
import type { VFile } from 'vfile';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { Cell, CellOptions, FrontMatter } from './types.ts';

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
  /** Per cell id: the names its module exports, read statically from the code. */
  cellExports: Map<string, string[]>;
}

export const CELL_ID = /^[a-z0-9-]+$/;
const SOURCE = 'report';

export const DEFAULT_OPTIONS: CellOptions = { echo: true, timeout: 1800, memory: 8192 };

/** Parses a Markdown document; problems become messages on `file`. */
export function parseDocument(file: VFile): ParsedDocument {
  const processor = unified().use(remarkParse).use(remarkGfm).use(remarkMath).use(remarkFrontmatter, ['yaml']);
  const tree = processor.parse(file);
  const frontMatter = readFrontMatter(tree, file);
  const cells: Cell[] = [];
  const cellImports = new Map<string, CellImport[]>();
  const cellExports = new Map<string, string[]>();
  const seen = new Map<string, Cell>();

  visit(tree, 'code', (node) => {
    const meta = runMeta(node);
    if (meta === undefined) return;
    const cell = readCell(node, meta, file);
    if (!cell) return;
    const first = seen.get(cell.id);
    if (first) {
      file.message(
        `duplicate cell id "${cell.id}": already used by the cell at line ${first.position.start.line}; ids must be unique, rename one`,
        { place: node.position, ruleId: 'duplicate-id', source: SOURCE },
      );
      return;
    }
    seen.set(cell.id, cell);
    const scanned = scanModule(cell);
    cell.imports = [...new Set(scanned.imports.map((i) => i.id))];
    cellImports.set(cell.id, scanned.imports);
    cellExports.set(cell.id, scanned.exports);
    node.data = { ...node.data, cell };
    cells.push(cell);
  });

  return { file, tree, frontMatter, cells, cellImports, cellExports };
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
        if (value !== '' && Number.isFinite(n) && n > 0) options.timeout = n;
        else problem(`timeout=${value}: expected a positive number of seconds`);
        break;
      }
      case 'memory': {
        const n = Number(value);
        if (value !== '' && Number.isInteger(n) && n > 0) options.memory = n;
        else problem(`memory=${value}: expected a positive integer of MiB`);
        break;
      }
      case 'seed': {
        const n = Number(value);
        if (value !== '' && Number.isSafeInteger(n)) options.seed = n;
        else problem(`seed=${value}: expected an integer`);
        break;
      }
      default:
        problem(`unknown cell option "${key}"; known options: id, echo, timeout, memory, seed`);
    }
  }

  if (id === undefined) {
    if (!/(^|\s)id=/.test(rawOptions)) problem('cell has no id; add id=<name> after `ts run`');
    return undefined;
  }
  if (!place) return undefined;
  return {
    id,
    code: node.value,
    options,
    rawOptions,
    position: place,
    codeLine: place.start.line + 1,
    imports: [],
  };
}

/**
 * Reads the `cell:` specifiers (import and export-from declarations, dynamic `import()`
 * with a literal) and the exported names of a cell with the TypeScript parser.
 */
function scanModule(cell: Cell): { imports: CellImport[]; exports: string[] } {
  const source = ts.createSourceFile(`${cell.id}.ts`, cell.code, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const imports: CellImport[] = [];
  const exports: string[] = [];
  const indent = cell.position.start.column - 1;

  const addSpecifier = (specifier: ts.Expression | undefined): void => {
    if (!specifier || !ts.isStringLiteralLike(specifier) || !specifier.text.startsWith('cell:')) return;
    const at = source.getLineAndCharacterOfPosition(specifier.getStart(source));
    imports.push({
      id: specifier.text.slice('cell:'.length),
      place: { line: cell.codeLine + at.line, column: indent + at.character + 1 },
    });
  };

  const walk = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) addSpecifier(node.moduleSpecifier);
    else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      addSpecifier(node.arguments[0]);
    }
    ts.forEachChild(node, walk);
  };
  walk(source);

  for (const statement of source.statements) {
    const modifiers = ts.canHaveModifiers(statement) ? ts.getModifiers(statement) : undefined;
    const exported = modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword) ?? false;
    if (exported && ts.isVariableStatement(statement)) {
      for (const declaration of statement.declarationList.declarations) collectBindingNames(declaration.name, exports);
    } else if (
      exported &&
      (ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement) || ts.isEnumDeclaration(statement)) &&
      statement.name
    ) {
      exports.push(statement.name.text);
    } else if (ts.isExportDeclaration(statement) && !statement.isTypeOnly && statement.exportClause) {
      if (ts.isNamedExports(statement.exportClause)) {
        for (const element of statement.exportClause.elements) if (!element.isTypeOnly) exports.push(element.name.text);
      } else {
        exports.push(statement.exportClause.name.text);
      }
    }
  }
  return { imports, exports: [...new Set(exports)] };
}

function collectBindingNames(name: ts.BindingName, into: string[]): void {
  if (ts.isIdentifier(name)) {
    into.push(name.text);
    return;
  }
  for (const element of name.elements) {
    if (!ts.isOmittedExpression(element)) collectBindingNames(element.name, into);
  }
}

const FRONT_MATTER_TYPES: Record<string, 'string' | 'integer' | 'boolean'> = {
  title: 'string',
  author: 'string',
  date: 'string',
  profile: 'string',
  seed: 'integer',
  'number-sections': 'boolean',
};

function readFrontMatter(tree: Root, file: VFile): FrontMatter {
  const node = tree.children[0];
  if (!node || node.type !== 'yaml') return {};
  const problem = (reason: string): void => {
    file.message(reason, { place: node.position, ruleId: 'bad-frontmatter', source: SOURCE });
  };
  let data: unknown;
  try {
    data = parseYaml(node.value);
  } catch (error) {
    const detail = error instanceof YAMLParseError ? error.message.split('\n')[0] : String(error);
    file.message(`front matter is not valid YAML: ${detail}`, {
      place: yamlErrorPlace(error, node.position?.start) ?? node.position,
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
