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
import { keyCells, type CellKey } from './hash.ts';
import { parseDocument, type ParsedDocument } from './parse.ts';
import { ResultStore } from './store.ts';
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
}

export interface LoadedDocument {
  doc: ParsedDocument;
  graph: CellGraph;
  keys: Map<string, CellKey>;
  store: ResultStore;
  profile: string;
  seed: number;
  docPath: string;
  projectRoot: string;
  /** Cells that can run or be checked: in the graph order and keyed without error. */
  usable: string[];
  /** The BibTeX files the front matter names (undefined when it names none). */
  bibliography?: BibliographySource[];
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
  let text: string;
  try {
    text = new TextDecoder().decode(await effects.readFile(docPath));
  } catch (error) {
    throw new ReportError(
      `cannot read ${path.relative(process.cwd(), docPath) || docPath}: ${(error as Error).message}. ` +
        'Give the path of a Markdown document, e.g. `npm run report -- report/report.md`.',
      2,
    );
  }
  const file = new VFile({ path: path.relative(process.cwd(), docPath) || docPath, value: text });
  const doc = parseDocument(file);
  const graph = buildGraph(doc);
  const profile = options.profile ?? doc.frontMatter.profile ?? 'full';
  if (!/^[a-z0-9-]+$/.test(profile)) {
    throw new ReportError(`bad profile "${profile}": use letters, digits and dashes (e.g. full, quick)`, 2);
  }
  const seed = doc.frontMatter.seed ?? 0;
  const keys = await keyCells(doc.cells, graph.order, { docPath, projectRoot, profile, seed, runtimePath });
  const cellsById = new Map(doc.cells.map((cell) => [cell.id, cell]));
  const usable: string[] = [];
  for (const id of graph.order) {
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
  const store = new ResultStore(resultsDirFor(docPath, profile, options.resultsDir), effects);
  const bibliography = await readBibliographies(file, doc.tree, doc.frontMatter, docPath, (p) => effects.readFile(p));
  return { doc, graph, keys, store, profile, seed, docPath, projectRoot, usable, bibliography };
}
