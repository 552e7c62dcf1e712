/**
 * Numbering and cross-references.
 *
 * - Figures and tables are numbered in document order of the cells' outputs
 *   (`figure(name, …)`, `table(name, …)` in the runtime); prose refers to them as
 *   `@fig-<name>` and `@tbl-<name>`, which become links "Figure 3" / "Table 2".
 * - Display equations are numbered when labelled. The label syntax (remark-math keeps
 *   both intact):
 *
 *       $$                          $$ {#eq-energy}
 *       E(v, h) = -a^T v - …        E(v, h) = -a^T v - …
 *       $$                          $$
 *       {#eq-energy}
 *
 *   i.e. a line `{#eq-<name>}` directly after the closing `$$` (no blank line), or the
 *   label on the opening `$$` line. `@eq-<name>` becomes "Equation (4)"; the number is
 *   shown at the right of the equation (KaTeX `\tag`).
 * - Sections h2… are numbered 1, 1.1, 1.1.1 (h1 is the title) and listed in a table of
 *   contents.
 * - Every math node is checked with KaTeX: a parse failure is a `math-error` message.
 */
import katex from 'katex';
import type { Heading, Link, Paragraph, Parent, PhrasingContent, Root, RootContent, Text } from 'mdast';
import { toString } from 'mdast-util-to-string';
import type ts from 'typescript';
import { typescript } from './typescript.ts';
import type { Point } from 'unist';
import { visit } from 'unist-util-visit';
import type { VFile } from 'vfile';
import type { ParsedDocument } from './parse.ts';
import { isResult, type CellOutcome, type Output } from './types.ts';

/** A display math block (`$$`); the type comes from remark-math's mdast extension. */
type MathNode = Extract<RootContent, { type: 'math' }>;

const SOURCE = 'report';

export interface Labels {
  /** name → number, e.g. 'loss' → 3 for `@fig-loss`. */
  figures: Map<string, number>;
  tables: Map<string, number>;
  equations: Map<string, number>;
}

export interface TocEntry {
  depth: number;
  number: string;
  text: string;
  id: string;
}

/** The outputs of a cell: its result's, a failure's partial ones, or none. */
export function outputsOf(result: CellOutcome | undefined): Output[] {
  if (!result) return [];
  return result.outputs ?? [];
}

/**
 * Numbers figures and tables in document order of the outputs. For a cell without
 * results (check mode, or a cell that failed), names come from literal `figure('name', …)` / `table('name', …)`
 * calls in its code, so references to them are not reported as unknown. A name used
 * twice is a `duplicate-label` message at the second cell.
 */
export function collectLabels(doc: ParsedDocument, results: Map<string, CellOutcome>): Labels {
  const labels: Labels = { figures: new Map(), tables: new Map(), equations: new Map() };
  const owner = new Map<string, string>();
  for (const cell of doc.cells) {
    const result = results.get(cell.id);
    const emitted = outputsOf(result).flatMap((o) => (o.kind === 'text' ? [] : [{ kind: o.kind, name: o.name }]));
    // A cell without a result (not run, failed, skipped) still owns the names its code
    // gives literally: a reference to them is not "unknown", the cell's failure is the problem.
    const named: { kind: 'figure' | 'table'; name: string }[] = isResult(result)
      ? emitted
      : [...emitted, ...staticOutputs(cell.code).filter((s) => !emitted.some((e) => e.kind === s.kind && e.name === s.name))];
    for (const { kind, name } of named) {
      const map = kind === 'figure' ? labels.figures : labels.tables;
      const key = `${kind}:${name}`;
      const first = owner.get(key);
      if (first !== undefined) {
        doc.file.message(
          `${kind} name "${name}" of cell "${cell.id}" is already used by cell "${first}"; ` +
            `names label @${kind === 'figure' ? 'fig' : 'tbl'}-<name> references and must be unique, rename one`,
          { place: cell.position, ruleId: 'duplicate-label', source: SOURCE },
        );
        continue;
      }
      owner.set(key, cell.id);
      map.set(name, map.size + 1);
    }
  }
  return labels;
}

function staticOutputs(code: string): { kind: 'figure' | 'table'; name: string }[] {
  const ts = typescript();
  const found: { kind: 'figure' | 'table'; name: string }[] = [];
  let source: ts.SourceFile;
  try {
    source = ts.createSourceFile('cell.ts', code, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  } catch (error) {
    if (error instanceof RangeError) return found;
    throw error;
  }
  const walk = (node: ts.Node): void => {
    if (ts.isCallExpression(node)) {
      const callee = node.expression;
      const name = ts.isIdentifier(callee)
        ? callee.text
        : ts.isPropertyAccessExpression(callee)
          ? callee.name.text
          : undefined;
      const first = node.arguments[0];
      if ((name === 'figure' || name === 'table') && first && ts.isStringLiteralLike(first)) {
        found.push({ kind: name, name: first.text });
      }
    }
    ts.forEachChild(node, walk);
  };
  try {
    walk(source);
  } catch (error) {
    // Code too deep for a recursive walk: parse.ts reports it (document-too-deep).
    if (!(error instanceof RangeError)) throw error;
  }
  return found;
}

const LABEL_LINE = /^\{#eq-([a-z0-9-]+)\}[ \t]*(?:\n|$)/;
const LABEL_META = /^\{#eq-([a-z0-9-]+)\}$/;

/** unified plugin: finds equation labels, numbers labelled equations, fills `labels.equations`. */
export function remarkEquations(options: { labels: Labels }) {
  const { labels } = options;
  return (tree: Root, file: VFile): void => {
    visit(tree, 'math', (node: MathNode, index, parent) => {
      let name: string | undefined;
      const meta = LABEL_META.exec((node.meta ?? '').trim());
      if (meta) name = meta[1];
      const next = index === undefined ? undefined : parent?.children[index + 1];
      if (name === undefined && next?.type === 'paragraph' && isDirectlyAfter(node, next)) {
        name = takeLabelLine(next);
        if (name !== undefined && next.children.length === 0 && parent && index !== undefined) {
          parent.children.splice(index + 1, 1);
        }
      }
      if (name === undefined) return;
      if (labels.equations.has(name)) {
        file.message(`equation label "eq-${name}" is used twice; labels must be unique`, {
          place: node.position,
          ruleId: 'duplicate-label',
          source: SOURCE,
        });
        return;
      }
      const number = labels.equations.size + 1;
      labels.equations.set(name, number);
      // mdast-util-math renders `pre > code.math-display`; wrap it so the label is an anchor.
      node.data = {
        ...node.data,
        hName: 'div',
        hProperties: { className: ['equation'], id: `eq-${name}` },
        hChildren: [
          {
            type: 'element',
            tagName: 'pre',
            properties: {},
            children: [
              {
                type: 'element',
                tagName: 'code',
                properties: { className: ['language-math', 'math-display'] },
                children: [{ type: 'text', value: `${node.value} \\tag{${number}}` }],
              },
            ],
          },
        ],
      };
    });
  };
}

function isDirectlyAfter(math: MathNode, next: Paragraph): boolean {
  const end = math.position?.end.line;
  const start = next.position?.start.line;
  return end !== undefined && start === end + 1;
}

/** Removes a leading `{#eq-name}` line from a paragraph and returns the name. */
function takeLabelLine(paragraph: Paragraph): string | undefined {
  const first = paragraph.children[0];
  if (first?.type !== 'text') return undefined;
  const match = LABEL_LINE.exec(first.value);
  if (!match) return undefined;
  first.value = first.value.slice(match[0].length);
  if (first.value === '') paragraph.children.shift();
  return match[1];
}

/** KaTeX's verdict on a math node (`d:` display / `i:` inline + TeX) → its error, '' when it renders. */
const mathVerdicts = new Map<string, string>();
let mathChanged = false;
const MATH_KEPT = 20_000;

/** Seeds the verdicts remembered by an earlier command (key-cache.ts). */
export function rememberMath(entries: Record<string, string>): void {
  for (const [tex, verdict] of Object.entries(entries)) mathVerdicts.set(tex, verdict);
  mathChanged = false;
}

/** The verdicts to remember for the next command, when any is new (else undefined). */
export function mathToRemember(): Record<string, string> | undefined {
  if (!mathChanged) return undefined;
  mathChanged = false;
  return Object.fromEntries(mathVerdicts);
}

function mathError(value: string, displayMode: boolean): string {
  const lookup = `${displayMode ? 'd' : 'i'}:${value}`;
  let verdict = mathVerdicts.get(lookup);
  if (verdict === undefined) {
    try {
      katex.renderToString(value, { displayMode, throwOnError: true, strict: 'ignore' });
      verdict = '';
    } catch (error) {
      // rawMessage: KaTeX's message without the underlined excerpt of the source.
      verdict = error instanceof katex.ParseError ? ((error as { rawMessage?: string }).rawMessage ?? error.message) : String(error);
      verdict ||= 'KaTeX failed';
    }
    if (mathVerdicts.size >= MATH_KEPT) mathVerdicts.clear();
    mathVerdicts.set(lookup, verdict);
    mathChanged = true;
  }
  return verdict;
}

/** Gives KaTeX's verdict on every math node of a tree ahead of the weave, so that it is remembered. */
export function precheckMath(tree: Root): void {
  visit(tree, (node) => {
    if (node.type === 'math' || node.type === 'inlineMath') mathError((node as MathNode).value, node.type === 'math');
  });
}

/** unified plugin: a KaTeX parse failure in any math node is a `math-error` message. */
export function remarkMathCheck() {
  return (tree: Root, file: VFile): void => {
    visit(tree, (node) => {
      if (node.type !== 'math' && node.type !== 'inlineMath') return;
      const reason = mathError((node as MathNode).value, node.type === 'math');
      if (reason !== '') file.message(`math does not render: ${reason}`, { place: node.position, ruleId: 'math-error', source: SOURCE });
    });
  };
}

/**
 * unified plugin: numbers h2… headings (unless `number: false`, for documents whose
 * headings carry their own numbers), gives them ids, reports the table of contents.
 */
export function remarkSections(options: { onToc: (entries: TocEntry[]) => void; number?: boolean }) {
  return (tree: Root): void => {
    const counters: number[] = [];
    const used = new Set<string>();
    const entries: TocEntry[] = [];
    visit(tree, 'heading', (node: Heading) => {
      if (node.depth < 2) return;
      if (node.data?.unnumbered) {
        const text = toString(node);
        let id = `sec-${slug(text) || 'unnumbered'}`;
        for (let n = 2; used.has(id); n += 1) id = `sec-${slug(text)}-${n}`;
        used.add(id);
        node.data = { ...node.data, hProperties: { ...node.data?.hProperties, id } };
        entries.push({ depth: node.depth, number: '', text, id });
        return;
      }
      const level = node.depth - 2;
      counters.length = level + 1;
      for (let i = 0; i < level; i += 1) counters[i] ??= 0;
      counters[level] = (counters[level] ?? 0) + 1;
      const number = counters.map((c) => c ?? 0).join('.');
      const text = toString(node);
      let id = `sec-${slug(text) || number.replaceAll('.', '-')}`;
      for (let n = 2; used.has(id); n += 1) id = `sec-${slug(text)}-${n}`;
      used.add(id);
      node.data = { ...node.data, hProperties: { ...node.data?.hProperties, id } };
      if (options.number !== false) {
        node.children.unshift(
          { type: 'emphasis', data: { hName: 'span', hProperties: { className: ['secno'] } }, children: [{ type: 'text', value: number }] },
          { type: 'text', value: ' ' },
        );
      }
      entries.push({ depth: node.depth, number: options.number === false ? '' : number, text, id });
    });
    options.onToc(entries);
  };
}

function slug(text: string): string {
  return text
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[^\w\s-]/g, '')
    .trim()
    .replace(/[\s_]+/g, '-')
    .replace(/-+/g, '-');
}

const REF = /(^|[^\w@])@(fig|tbl|eq)-([a-z0-9]+(?:-[a-z0-9]+)*)/g;
const REF_WORD = { fig: 'Figure', tbl: 'Table', eq: 'Equation' } as const;

/** A reference `@fig-x` / `@tbl-x` / `@eq-x` found in a text; `label` is undefined when nothing has that name. */
export interface FoundRef {
  kind: 'fig' | 'tbl' | 'eq';
  name: string;
  /** Offsets of `@…` in the text. */
  start: number;
  end: number;
  /** "Figure 3", "Table 2", "Equation (4)"; undefined for an unknown name. */
  label?: string;
}

/** Every reference in `value`, in order, with its label from `labels`. */
export function findRefs(value: string, labels: Labels): FoundRef[] {
  const found: FoundRef[] = [];
  for (const match of value.matchAll(REF)) {
    const kind = match[2] as 'fig' | 'tbl' | 'eq';
    const name = match[3] as string;
    const start = (match.index ?? 0) + (match[1] as string).length;
    const number = labelMap(labels, kind).get(name);
    const label = number === undefined ? undefined : kind === 'eq' ? `Equation (${number})` : `${REF_WORD[kind]} ${number}`;
    found.push({ kind, name, start, end: (match.index ?? 0) + match[0].length, ...(label === undefined ? {} : { label }) });
  }
  return found;
}

function labelMap(labels: Labels, kind: 'fig' | 'tbl' | 'eq'): Map<string, number> {
  return kind === 'fig' ? labels.figures : kind === 'tbl' ? labels.tables : labels.equations;
}

function unknownRefMessage(ref: FoundRef, labels: Labels, where = ''): string {
  const known = [...labelMap(labels, ref.kind).keys()].map((k) => `@${ref.kind}-${k}`).join(', ') || 'none';
  return `unknown reference @${ref.kind}-${ref.name}${where}; known ${REF_WORD[ref.kind].toLowerCase()} labels: ${known}`;
}

/**
 * unified plugin: `@fig-x`, `@tbl-x`, `@eq-x` in prose → links; unknown → `unknown-ref`.
 * With `results`, the captions of the cells' figures and tables are checked too (weave.ts
 * renders their references as links): an unknown one is reported at the cell's fence.
 */
export function remarkRefs(options: { labels: Labels; results?: Map<string, CellOutcome> }) {
  const { labels, results } = options;
  return (tree: Root, file: VFile): void => {
    visit(tree, 'text', (node: Text, index, parent: Parent | undefined) => {
      // Text without a position was made by the engine (e.g. an inline value's error box
      // quoting the expression), not written in the document: it holds no references.
      if (!parent || index === undefined || parent.type === 'link' || node.position === undefined) return;
      const value = node.value;
      const pieces: PhrasingContent[] = [];
      let last = 0;
      for (const ref of findRefs(value, labels)) {
        if (ref.label === undefined) {
          file.message(unknownRefMessage(ref, labels), { place: pointAt(node, ref.start), ruleId: 'unknown-ref', source: SOURCE });
          continue;
        }
        if (ref.start > last) pieces.push({ type: 'text', value: value.slice(last, ref.start) });
        const link: Link = {
          type: 'link',
          url: `#${ref.kind}-${ref.name}`,
          children: [{ type: 'text', value: ref.label }],
          data: { hProperties: { className: ['xref'] } },
        };
        pieces.push(link);
        last = ref.end;
      }
      if (pieces.length === 0) return;
      if (last < value.length) pieces.push({ type: 'text', value: value.slice(last) });
      parent.children.splice(index, 1, ...(pieces as typeof parent.children));
      return index + pieces.length;
    });
    if (results === undefined) return;
    visit(tree, 'code', (node) => {
      const cell = node.data?.cell;
      if (cell === undefined) return;
      for (const output of outputsOf(results.get(cell.id))) {
        if (output.kind === 'text' || output.caption === undefined) continue;
        for (const ref of findRefs(output.caption, labels)) {
          if (ref.label !== undefined) continue;
          const where = ` in the caption of ${output.kind === 'figure' ? 'figure' : 'table'} "${output.name}" of cell "${cell.id}"`;
          file.message(unknownRefMessage(ref, labels, where), { place: node.position?.start, ruleId: 'unknown-ref', source: SOURCE });
        }
      }
    });
  };
}

/** The Markdown point of character `offset` inside a text node (soft breaks count as lines). */
function pointAt(node: Text, offset: number): Point | undefined {
  const start = node.position?.start;
  if (!start) return undefined;
  const before = node.value.slice(0, offset);
  const lines = before.split('\n');
  if (lines.length === 1) return { line: start.line, column: start.column + offset };
  return { line: start.line + lines.length - 1, column: (lines.at(-1) as string).length + 1 };
}
