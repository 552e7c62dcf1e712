/**
 * The parsed document + cell results → one self-contained HTML file.
 *
 * The unified pipeline is assembled here and only here:
 *   (parsed mdast) → equations → math check → inline values/claims → references →
 *   sections → remark-rehype (cells rendered by the `code` handler) → math (math-render.ts:
 *   KaTeX's HTML as raw nodes, remembered per formula) → rehype-stringify
 * The KaTeX stylesheet is inlined with its woff2 fonts as data URIs, with our stylesheet
 * (src/engine/html/style.css, which holds the print rules) beside it.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Element, ElementContent, Root as HastRoot } from 'hast';
import { h } from 'hastscript';
import type { Code, Heading, Root } from 'mdast';
import { toString } from 'mdast-util-to-string';
import rehypeStringify from 'rehype-stringify';
import remarkRehype from 'remark-rehype';
import { unified } from 'unified';
import { visit } from 'unist-util-visit';
import { loadLibrary, remarkCitations, type BibliographySource } from './cite.ts';
import { dataUri, type FigureLinks } from './figure-links.ts';
import { rehypeMath } from './math-render.ts';
import { highlightBlocks, highlightKey, memoryHighlightCache, tokensHtml, type HighlightCache, type Tokens } from './highlight.ts';
import { collectScope, formatValue, precompileInline, remarkInline } from './inline.ts';
import { remarkProvenance } from './provenance.ts';
import { rehypeSourceLines } from './source-lines.ts';
import type { ParsedDocument } from './parse.ts';
import {
  collectLabels,
  remarkEquations,
  remarkMathCheck,
  remarkRefs,
  remarkSections,
  type Labels,
  type TocEntry,
  findRefs,
} from './refs.ts';
import { isFailure, type Cell, type CellFailure, type CellOutcome, type FigureOutput, type Output, type TableOutput } from './types.ts';
import { escapeHtml } from './escape-html.ts';

export interface WeaveOptions {
  mode: 'build' | 'check';
  /** Overrides the front matter's title. */
  title?: string;
  /**
   * The cells' export names, from their bundles (document.ts `LoadedDocument.exports`):
   * inline values and claims know a cell's names before it has a result. Without it only
   * the results' names are known.
   */
  exports?: ReadonlyMap<string, readonly string[]>;
  /** The BibTeX files the front matter names, read by the caller (cite.ts readBibliographies). */
  bibliography?: BibliographySource[];
  /**
   * Syntax highlighting of code blocks and cells (build mode only): the cache of highlighted
   * blocks (build.ts keeps one on disk; default: in memory), or false for plain code.
   */
  highlight?: HighlightCache | false;
  /** Render the page (default true); false runs only the stages that find problems and returns ''. */
  html?: boolean;
  /** Mark top-level blocks with `data-line="<start>-<end>"` (Markdown lines), for the preview. Default false. */
  sourceLines?: boolean;
  /**
   * Cells without a result are still to run (the preview's page while cells run): an inline
   * value that needs one shows as pending (…), as in check mode, not as an error. Default false.
   */
  pending?: boolean;
  /**
   * Link figures by URL through these links (the preview's page: figure-links.ts) instead of
   * inlining them as data URIs. Default: inlined, the page is self-contained.
   */
  figures?: FigureLinks;
}

type Results = Map<string, CellOutcome>;

export async function weave(doc: ParsedDocument, results: Results, options: WeaveOptions): Promise<string> {
  const tree = structuredClone(doc.tree);
  const { frontMatter } = doc;
  const title = options.title ?? frontMatter.title ?? takeTitleHeading(tree) ?? path.parse(doc.file.path || 'report').name;
  if (frontMatter.title !== undefined || options.title !== undefined) dropMatchingTitle(tree, title);
  tree.children = tree.children.filter((node) => node.type !== 'yaml');

  const labels: Labels = collectLabels(doc, results);
  const { scope, owners, missing, unnamed } = collectScope(doc, results, options.exports);
  let toc: TocEntry[] = [];
  const cells = new Map(doc.cells.map((c) => [c.id, c]));
  const library = options.bibliography ? await loadLibrary(options.bibliography, doc.file) : undefined;
  const tokens =
    options.mode === 'build' && options.highlight !== false
      ? await highlightBlocks(codeBlocks(tree), options.highlight ?? memoryHighlightCache())
      : new Map<string, Tokens>();

  await precompileInline(tree);

  const remark = unified()
    .use(remarkEquations, { labels })
    .use(remarkMathCheck)
    .use(remarkInline, { scope, owners, missing, unnamed, quietMissing: options.mode === 'check' || options.pending === true })
    .use(remarkCitations, { library, bibliographyNamed: options.bibliography !== undefined, render: options.mode === 'build' })
    .use(frontMatter.provenance === true ? [[remarkProvenance, { cells: doc.cells.map((c) => c.id), results, seed: frontMatter.seed ?? 0, measured: (frontMatter.verify?.measured.length ?? 0) > 0 }]] : [])
    .use(remarkRefs, { labels, results })
    .use(remarkSections, { onToc: (entries: TocEntry[]) => (toc = entries), number: frontMatter['number-sections'] !== false });
  // Every message of the document comes from the remark stage (the rehype stage only
  // renders): a check that needs no page stops there.
  if (options.html === false) {
    await remark.run(tree as Root, doc.file);
    return '';
  }
  const processor = remark
    .use(remarkRehype, {
      handlers: {
        code: (_state: unknown, node: Code) => renderCode(node, { results, labels, mode: options.mode, cells, tokens, figures: options.figures }),
      },
    })
    .use(options.sourceLines === true ? [rehypeSourceLines] : [])
    .use(rehypeMath, { errorColor: '#b3261e' })
    // Raw nodes are only the math's: remark-rehype dropped the document's own HTML.
    .use(rehypeStringify, { allowDangerousHtml: true });

  const hast = (await processor.run(tree as Root, doc.file)) as HastRoot;
  const body = processor.stringify(hast, doc.file);
  return page({
    title,
    author: frontMatter.author,
    date: frontMatter.date,
    toc: tocHtml(toc, processor),
    body,
  });
}

/** First h1 of the document (before any other content), removed from the body. */
function takeTitleHeading(tree: Root): string | undefined {
  const index = tree.children.findIndex((n) => n.type !== 'yaml');
  const node = tree.children[index];
  if (node?.type !== 'heading' || node.depth !== 1) return undefined;
  tree.children.splice(index, 1);
  return toString(node);
}

function dropMatchingTitle(tree: Root, title: string): void {
  const index = tree.children.findIndex((n) => n.type !== 'yaml');
  const node = tree.children[index];
  if (node?.type === 'heading' && (node as Heading).depth === 1 && toString(node).trim() === title.trim()) {
    tree.children.splice(index, 1);
  }
}

interface RenderContext {
  results: Results;
  labels: Labels;
  mode: 'build' | 'check';
  cells: Map<string, Cell>;
  /** Highlighted tokens by highlightKey(lang, code). */
  tokens: Map<string, Tokens>;
  /** Figures by URL (the preview), else inlined. */
  figures?: FigureLinks;
}

/** The code blocks and cells of a document, with the language each is highlighted in. */
function codeBlocks(tree: Root): { lang: string; code: string }[] {
  const blocks: { lang: string; code: string }[] = [];
  visit(tree, 'code', (node: Code) => {
    const lang = node.data?.cell ? 'ts' : node.lang;
    if (lang) blocks.push({ lang, code: node.value });
  });
  return blocks;
}

/** `<pre><code>` with the highlighted tokens when there are any, else the plain text. */
function codeElement(lang: string | null | undefined, code: string, context: RenderContext): Element {
  const tokens = lang ? context.tokens.get(highlightKey(lang, code)) : undefined;
  const className = lang ? [`language-${lang}`] : undefined;
  // The tokens' HTML as one raw node (highlight.ts tokensHtml): printed as is by the serialiser.
  const children = tokens ? [{ type: 'raw', value: tokensHtml(tokens) } as unknown as ElementContent] : code;
  return h('pre', { className: tokens ? ['highlight'] : undefined }, h('code', { className }, children));
}

function renderCode(node: Code, context: RenderContext): Element {
  const cell = node.data?.cell;
  if (!cell) return codeElement(node.lang, node.value, context);

  const children: ElementContent[] = [];
  if (cell.options.echo) {
    children.push(
      h('details', { className: ['cell-code'] }, [
        h('summary', `Code: ${cell.id}`),
        codeElement('ts', node.value, context),
      ]),
    );
  }
  const result = context.results.get(cell.id);
  if (result === undefined) {
    children.push(
      context.mode === 'check'
        ? h('div', { className: ['cell-pending'] }, `Cell ${cell.id}: no result yet.`)
        : h('div', { className: ['cell-skipped'] }, `Cell ${cell.id} did not run.`),
    );
  } else if (!isFailure(result)) {
    children.push(...result.outputs.map((o) => renderOutput(o, context)));
  } else {
    children.push(renderFailure(cell, result, context));
    children.push(...(result.outputs ?? []).map((o) => renderOutput(o, context)));
  }
  return h('section', { className: ['cell'], id: `cell-${cell.id}`, dataCell: cell.id }, children);
}

function renderFailure(cell: Cell, failure: CellFailure, context: RenderContext): Element {
  if (failure.kind === 'skipped') {
    const failed = failedDependencies(cell, context);
    const because =
      failed.length > 0
        ? `because ${failed.length === 1 ? 'dependency' : 'dependencies'} ${failed.map((id) => `"${id}"`).join(', ')} failed`
        : failure.message;
    return h('div', { className: ['cell-skipped'], role: 'status' }, [
      h('strong', `Cell ${cell.id} was skipped`),
      ` ${because}.`,
    ]);
  }
  const what = { error: 'failed', timeout: 'timed out', memory: 'ran out of memory', crash: 'crashed' }[failure.kind];
  const where = failure.line !== undefined ? ` at line ${failure.line}${failure.column !== undefined ? `:${failure.column}` : ''}` : '';
  return h('div', { className: ['cell-error'], role: 'alert' }, [
    h('strong', `Cell ${cell.id} ${what}${where}`),
    h('pre', failure.message),
  ]);
}

/** The nearest dependencies (transitively) whose failure is not itself a skip. */
function failedDependencies(cell: Cell, context: RenderContext): string[] {
  const found = new Set<string>();
  const seen = new Set<string>();
  const visitDeps = (id: string): void => {
    for (const dep of context.cells.get(id)?.imports ?? []) {
      if (seen.has(dep)) continue;
      seen.add(dep);
      const result = context.results.get(dep);
      if (isFailure(result)) {
        if (result.kind === 'skipped') visitDeps(dep);
        else found.add(dep);
      }
    }
  };
  visitDeps(cell.id);
  return [...found];
}

function renderOutput(output: Output, context: RenderContext): Element {
  switch (output.kind) {
    case 'text':
      return h('pre', { className: ['cell-output'] }, output.text);
    case 'figure':
      return renderFigure(output, context.labels, context.figures);
    case 'table':
      return renderTable(output, context.labels);
  }
}

function caption(word: string, number: number | undefined, text: string | undefined, labels: Labels): ElementContent[] {
  const label = h('span', { className: ['caption-label'] }, `${word} ${number ?? '?'}${text ? ':' : ''}`);
  if (!text) return [label];
  // References in a caption become links as in prose (remarkRefs reports unknown ones).
  const pieces: ElementContent[] = [label];
  let last = 0;
  const body = ` ${text}`;
  for (const ref of findRefs(body, labels)) {
    if (ref.label === undefined) continue;
    if (ref.start > last) pieces.push({ type: 'text', value: body.slice(last, ref.start) });
    pieces.push(h('a', { href: `#${ref.kind}-${ref.name}`, className: ['xref'] }, ref.label));
    last = ref.end;
  }
  if (last < body.length) pieces.push({ type: 'text', value: body.slice(last) });
  return pieces;
}

/** A caption as plain text (an image's alt): references replaced by their labels. */
function plainCaption(text: string, labels: Labels): string {
  let out = '';
  let last = 0;
  for (const ref of findRefs(text, labels)) {
    if (ref.label === undefined) continue;
    out += text.slice(last, ref.start) + ref.label;
    last = ref.end;
  }
  return out + text.slice(last);
}

function renderFigure(figure: FigureOutput, labels: Labels, links: FigureLinks | undefined): Element {
  // `src` stays the image's first attribute: figure-links.ts finds figures by it.
  const src = links === undefined ? dataUri(figure) : links.url(figure);
  const style = figure.width !== undefined ? `width: ${figure.width}px` : undefined;
  return h('figure', { className: ['cell-figure'], id: `fig-${figure.name}` }, [
    h('img', { src, alt: figure.alt ?? (figure.caption === undefined ? figure.name : plainCaption(figure.caption, labels)), style }),
    h('figcaption', caption('Figure', labels.figures.get(figure.name), figure.caption, labels)),
  ]);
}

function renderTable(table: TableOutput, labels: Labels): Element {
  return h('table', { className: ['cell-table'], id: `tbl-${table.name}` }, [
    h('caption', caption('Table', labels.tables.get(table.name), table.caption, labels)),
    h('thead', h('tr', table.columns.map((c) => h('th', c)))),
    h(
      'tbody',
      table.rows.map((row) =>
        h(
          'tr',
          row.map((value) => h('td', { className: typeof value === 'number' ? ['num'] : undefined }, value === null ? '' : formatValue(value))),
        ),
      ),
    ),
  ]);
}

/** KaTeX fonts as data URIs replace the woff2/woff/ttf url() list (woff2 only). */
let katexCss: string | undefined;
function inlineKatexCss(): string {
  if (katexCss !== undefined) return katexCss;
  const cssPath = createRequire(import.meta.url).resolve('katex/dist/katex.min.css');
  const dir = path.dirname(cssPath);
  katexCss = readFileSync(cssPath, 'utf8').replace(/src:url\((fonts\/[^)]+\.woff2)\)[^;}]*/g, (_all, font: string) => {
    const data = readFileSync(path.join(dir, font)).toString('base64');
    return `src:url(data:font/woff2;base64,${data}) format("woff2")`;
  });
  return katexCss;
}

let ownCss: string | undefined;
function reportCss(): string {
  ownCss ??= readFileSync(new URL('./html/style.css', import.meta.url), 'utf8');
  return ownCss;
}


function tocHtml(entries: TocEntry[], processor: { stringify(tree: HastRoot): string }): string {
  if (entries.length === 0) return '';
  const items = entries.map((e) =>
    h('li', { className: [`toc-d${e.depth}`] }, h('a', { href: `#${e.id}` }, [h('span', { className: ['secno'] }, e.number), ` ${e.text}`])),
  );
  const nav = h('nav', { className: ['toc'], ariaLabel: 'Contents' }, [h('h2', 'Contents'), h('ol', items)]);
  return processor.stringify({ type: 'root', children: [nav] });
}

function page(parts: { title: string; author?: string; date?: string; toc: string; body: string }): string {
  const meta = [
    parts.author ? `<p class="author">${escapeHtml(parts.author)}</p>` : '',
    parts.date ? `<p class="date">${escapeHtml(parts.date)}</p>` : '',
  ].join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(parts.title)}</title>
<style>${inlineKatexCss()}</style>
<style>
${reportCss()}</style>
</head>
<body>
<header class="report-header"><h1 class="title">${escapeHtml(parts.title)}</h1>${meta}</header>
${parts.toc}
<main>
${parts.body}
</main>
</body>
</html>
`;
}
