/**
 * Inline values and claims in prose:
 *
 *   `{ts} rbm.pl.toFixed(1)`   → replaced by the value of the expression
 *   `{claim} rbm.pl > -120`    → asserts the preceding sentence: a discreet ✓ when true,
 *                                a visible red ✗ box and a `claim-false` message when not
 *
 * Expressions are TypeScript, transpiled with esbuild and evaluated over the union of the
 * cells' exports (see `collectScope`).
 */
import { transform, transformSync } from 'esbuild';
import type { Emphasis, InlineCode, Parent, PhrasingContent, Root } from 'mdast';
import { toString } from 'mdast-util-to-string';
import type ts from 'typescript';
import { typescript } from './typescript.ts';
import { visit } from 'unist-util-visit';
import type { VFile } from 'vfile';
import type { ParsedDocument } from './parse.ts';
import { isResult, type CellOutcome } from './types.ts';

export interface InlineOptions {
  /** Union of every cell's exports. */
  scope: Record<string, unknown>;
  /** Export name → id of the cell that defines it. */
  owners: Record<string, string>;
  /** Cells without results. */
  missing: Set<string>;
  /**
   * Cells whose export names are unknown (they could not be bundled and have no result):
   * a name no other cell exports may be theirs, so it is reported as waiting for them.
   */
  unnamed?: Set<string>;
  /**
   * `check` mode: an expression that needs a cell without results renders a placeholder
   * and emits no message (the lead reports staleness instead). Default false.
   */
  quietMissing?: boolean;
}

export type InlineOutcome =
  | { ok: true; value: unknown; text: string }
  | { ok: false; error: string };

const SOURCE = 'report';
const MARKER = /^\{(ts|claim)\}\s+([\s\S]+)$/;
const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

/**
 * The scope of inline expressions: every export of every cell with a result, each name
 * owned by the cell that defines it. A cell's names are its bundle's (`exports`: the
 * loaded document's, from bundle.ts, their one source), so a name of a cell without
 * results is still known; a result's values are in scope under the names it holds. A cell
 * with neither (it could not be bundled) is `unnamed`: what it would export is unknown. A
 * name defined by two cells is a `duplicate-export` message at the second cell's fence;
 * the first definition wins.
 */
export function collectScope(
  doc: ParsedDocument,
  results: Map<string, CellOutcome>,
  exports: ReadonlyMap<string, readonly string[]> = new Map(),
): { scope: Record<string, unknown>; owners: Record<string, string>; missing: Set<string>; unnamed: Set<string> } {
  const scope: Record<string, unknown> = {};
  const owners: Record<string, string> = {};
  const missing = new Set<string>();
  const unnamed = new Set<string>();
  for (const cell of doc.cells) {
    const result = results.get(cell.id);
    const has = isResult(result);
    if (!has) missing.add(cell.id);
    const bundled = exports.get(cell.id);
    if (bundled === undefined && !has) unnamed.add(cell.id);
    const names = new Set([...(bundled ?? []), ...(has ? Object.keys(result.exports) : [])]);
    for (const name of names) {
      if (name === 'default') continue;
      const owner = owners[name];
      if (owner !== undefined && owner !== cell.id) {
        doc.file.message(
          `export "${name}" of cell "${cell.id}" is already exported by cell "${owner}"; ` +
            'inline expressions see one scope, so rename one of them',
          { place: cell.position, ruleId: 'duplicate-export', source: SOURCE },
        );
        continue;
      }
      owners[name] = cell.id;
      // Read when an expression names it (the preview's stored results decode on first read: result-memo.ts).
      if (has && Object.hasOwn(result.exports, name)) {
        const exports = result.exports;
        Object.defineProperty(scope, name, { get: () => exports[name], enumerable: true, configurable: true });
      }
    }
  }
  return { scope, owners, missing, unnamed };
}

const compiled = new Map<string, string>();
/** Most expressions are transpiled once per process; a long-lived preview sees many edits. */
const MAX_COMPILED = 20_000;

const TRANSPILE = { loader: 'ts', minifyWhitespace: false } as const;
const wrap = (expr: string): string => `(${expr}\n)`;
const unwrap = (code: string): string => code.trim().replace(/;$/, '');

let compiledChanged = false;

function remember(expr: string, js: string): void {
  if (compiled.size >= MAX_COMPILED) compiled.clear();
  compiled.set(expr, js);
  compiledChanged = true;
}

/** Seeds the transpiled expressions remembered by an earlier command (key-cache.ts). */
export function rememberCompiled(entries: Record<string, string>): void {
  for (const [expr, js] of Object.entries(entries)) if (!compiled.has(expr)) compiled.set(expr, js);
  compiledChanged = false;
}

/** The transpiled expressions to remember for the next command, when any is new (else undefined). */
export function compiledToRemember(): Record<string, string> | undefined {
  if (!compiledChanged) return undefined;
  compiledChanged = false;
  return Object.fromEntries(compiled);
}

/** Transpiles a TypeScript expression to JavaScript (cached); throws on a syntax error. */
function compile(expr: string): string {
  let js = compiled.get(expr);
  if (js === undefined) {
    js = unwrap(transformSync(wrap(expr), TRANSPILE).code);
    remember(expr, js);
  }
  return js;
}

/**
 * Transpiles every `{ts}`/`{claim}` expression of a tree at once, through esbuild's
 * asynchronous service (hundreds of expressions: one synchronous call each costs about
 * 1.5 ms, together they take a fraction of that). Expressions that do not compile are left
 * for {@link compile} to report when they are evaluated.
 */
export async function precompileInline(tree: Root): Promise<void> {
  const exprs = new Set<string>();
  visit(tree, 'inlineCode', (node: InlineCode) => {
    const match = MARKER.exec(node.value);
    if (match) exprs.add((match[2] as string).trim());
  });
  await Promise.all(
    [...exprs]
      .filter((expr) => !compiled.has(expr))
      .map((expr) =>
        transform(wrap(expr), TRANSPILE).then(
          ({ code }) => remember(expr, unwrap(code)),
          () => undefined,
        ),
      ),
  );
}

/** Identifier-like words of compiled expressions (a superset of the names they read), by expression. */
const words = new Map<string, string[] | undefined>();

/**
 * The names of the scope an expression is given: those it mentions (a name it does not
 * mention cannot change its value, and is then not read), or all when it could reach a
 * name without writing it (`eval`, `arguments`, an escape in an identifier).
 */
function namesOf(js: string, scope: Record<string, unknown>): string[] {
  if (!words.has(js)) {
    if (words.size >= MAX_COMPILED) words.clear();
    words.set(js, /\\|\beval\b|\barguments\b/.test(js) ? undefined : [...new Set(js.match(/[A-Za-z_$][\w$]*/g) ?? [])]);
  }
  const mentioned = words.get(js);
  return (mentioned ?? Object.keys(scope)).filter((n) => IDENTIFIER.test(n) && Object.hasOwn(scope, n));
}

/** Evaluates one inline expression over `scope`. Pure: never throws. */
export function evaluateInline(expr: string, scope: Record<string, unknown>): InlineOutcome {
  let js: string;
  try {
    js = compile(expr);
  } catch (error) {
    const text = (error as { errors?: { text: string }[] }).errors?.[0]?.text ?? String(error);
    return { ok: false, error: `does not compile: ${text}` };
  }
  const names = namesOf(js, scope);
  try {
    // In parentheses: esbuild prints a leading comment on a line of its own, and a line break
    // right after `return` would end the statement (automatic semicolon insertion).
    const run = new Function(...names, `"use strict";\nreturn (\n${js}\n);`) as (...args: unknown[]) => unknown;
    const value = run(...names.map((n) => scope[n]));
    return { ok: true, value, text: formatValue(value) };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  }
}

/**
 * Integers print as given; other numbers with up to 4 significant digits; strings as
 * they are (an expression that formats itself wins); arrays and objects as short JSON.
 */
export function formatValue(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return formatNumber(value);
  if (typeof value === 'bigint') return value.toString();
  if (value === undefined) return 'undefined';
  if (typeof value === 'function') return `[function ${value.name || 'anonymous'}]`;
  if (value instanceof Date) return value.toISOString();
  if (typeof value !== 'object' || value === null) return String(value);
  let json: string;
  try {
    json =
      JSON.stringify(ArrayBuffer.isView(value) ? Array.from(value as unknown as ArrayLike<number>) : value, (_key, v: unknown) =>
        typeof v === 'number' && !Number.isInteger(v) ? Number(formatNumber(v)) : typeof v === 'bigint' ? v.toString() : v,
      ) ?? String(value);
  } catch {
    json = String(value);
  }
  return json.length > 80 ? `${json.slice(0, 79)}…` : json;
}

function formatNumber(n: number): string {
  if (Number.isInteger(n) || !Number.isFinite(n)) return String(n);
  return String(Number(n.toPrecision(4)));
}

/** Identifiers and member-access paths (`rbm.pl`) an expression reads, in source order. */
export function readPaths(expr: string): { roots: string[]; paths: string[] } {
  try {
    return readPathsOf(expr);
  } catch (error) {
    // An expression nested too deeply for TypeScript's recursive parser names nothing.
    if (error instanceof RangeError) return { roots: [], paths: [] };
    throw error;
  }
}

function readPathsOf(expr: string): { roots: string[]; paths: string[] } {
  const ts = typescript();
  const source = ts.createSourceFile('inline.ts', `(${expr}\n)`, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const roots: string[] = [];
  const paths: string[] = [];
  const bound = new Set<string>();
  // A readable path: identifiers, `.name`, literal indices `[0]` / `["k"]`; `!` is skipped.
  const pathOf = (node: ts.Expression): string | undefined => {
    if (ts.isIdentifier(node)) return node.text;
    if (ts.isNonNullExpression(node) || ts.isParenthesizedExpression(node)) return pathOf(node.expression);
    if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.name)) {
      const base = pathOf(node.expression);
      return base === undefined ? undefined : `${base}.${node.name.text}`;
    }
    if (ts.isElementAccessExpression(node) && (ts.isNumericLiteral(node.argumentExpression) || ts.isStringLiteral(node.argumentExpression))) {
      const base = pathOf(node.expression);
      const index = ts.isNumericLiteral(node.argumentExpression) ? node.argumentExpression.text : JSON.stringify(node.argumentExpression.text);
      return base === undefined ? undefined : `${base}[${index}]`;
    }
    return undefined;
  };
  /** True when `node` is the object of a longer path (`node.x`, `node[0]`, `node!`). */
  const isInnerOf = (node: ts.Node, parent: ts.Node | undefined): boolean =>
    parent !== undefined &&
    ((ts.isPropertyAccessExpression(parent) && parent.expression === node) ||
      (ts.isElementAccessExpression(parent) && parent.expression === node && pathOf(parent) !== undefined) ||
      (ts.isNonNullExpression(parent) && parent.expression === node));
  const isPathNode = (node: ts.Node): node is ts.Expression =>
    ts.isPropertyAccessExpression(node) || ts.isIdentifier(node) || ts.isElementAccessExpression(node) || ts.isNonNullExpression(node);
  const walk = (node: ts.Node): void => {
    if (ts.isParameter(node) && ts.isIdentifier(node.name)) bound.add(node.name.text);
    if (isPathNode(node)) {
      const parent = node.parent;
      const isInner = isInnerOf(node, parent);
      const isName =
        parent &&
        ((ts.isPropertyAccessExpression(parent) && parent.name === node) ||
          (ts.isPropertyAssignment(parent) && parent.name === node) ||
          ts.isParameter(parent) ||
          ts.isTypeReferenceNode(parent));
      if (!isInner && !isName) {
        // A method call reads its receiver: `xs.at(-1)` shows `xs`.
        let target: ts.Expression = node;
        if (parent && ts.isCallExpression(parent) && parent.expression === node && ts.isPropertyAccessExpression(node)) {
          target = node.expression;
        }
        const path = pathOf(target);
        if (path !== undefined) {
          const root = path.split(/[.[]/)[0] as string;
          if (!roots.includes(root)) roots.push(root);
          if (!paths.includes(path)) paths.push(path);
        }
      }
      if (ts.isPropertyAccessExpression(node) || ts.isNonNullExpression(node)) {
        walk(node.expression);
        return;
      }
      if (ts.isElementAccessExpression(node)) {
        walk(node.expression);
        walk(node.argumentExpression);
        return;
      }
    }
    ts.forEachChild(node, walk);
  };
  walk(source);
  return { roots: roots.filter((r) => !bound.has(r)), paths: paths.filter((p) => !bound.has(p.split(/[.[]/)[0] as string)) };
}

/** The sentence a claim stands after: the text since the previous sentence end. */
function sentenceBefore(parent: Parent, index: number): string {
  const before = parent.children.slice(0, index).map((n) => toString(n as PhrasingContent)).join('');
  const text = before.replace(/\s+/g, ' ').trim();
  const pieces = text.split(/(?<=[.!?])\s+(?=\S)/);
  return (pieces.at(-1) ?? '').trim();
}

function span(className: string[], title: string, text: string): Emphasis {
  return {
    type: 'emphasis',
    data: { hName: 'span', hProperties: { className, title } },
    children: [{ type: 'text', value: text }],
  };
}

/** unified plugin: evaluates `{ts}` and `{claim}` inline code spans. */
export function remarkInline(options: InlineOptions) {
  const { scope, owners, missing, unnamed = new Set<string>(), quietMissing = false } = options;
  return (tree: Root, file: VFile): void => {
    visit(tree, 'inlineCode', (node: InlineCode, index, parent) => {
      const match = MARKER.exec(node.value);
      if (!match || index === undefined || !parent) return;
      const kind = match[1] as 'ts' | 'claim';
      const expr = (match[2] as string).trim();
      const place = node.position;
      // Evaluate first; the TypeScript parse that explains a failure (which names, which
      // cells) is only paid for when something failed.
      const outcome = evaluateInline(expr, scope);
      if (!outcome.ok) {
        const { roots } = readPaths(expr);
        // Waiting for a cell (no result yet, or not bundled): pending in check and in the
        // preview while cells run, an error in a build.
        const waiting = (reason: string): void => {
          if (quietMissing) {
            parent.children[index] = span(['inline-pending'], reason, '…');
          } else {
            file.message(reason, { place, ruleId: 'inline-error', source: SOURCE });
            parent.children[index] = span(['inline-error'], reason, `⚠ ${expr}`);
          }
        };
        const absent = roots.filter((r) => !Object.hasOwn(scope, r) && owners[r] !== undefined && missing.has(owners[r] as string));
        if (absent.length > 0) {
          const cells = [...new Set(absent.map((r) => owners[r] as string))];
          waiting(
            `\`{${kind}} ${expr}\` needs ${absent.map((r) => `"${r}"`).join(', ')} from cell ${cells
              .map((c) => `"${c}"`)
              .join(', ')}, which has no result; run the cell or fix its error`,
          );
          return;
        }
        const unknown = roots.filter((r) => r !== '' && !Object.hasOwn(scope, r) && !(r in globalThis));
        if (unknown.length > 0 && unnamed.size > 0) {
          waiting(
            `\`{${kind}} ${expr}\` needs ${unknown.map((r) => `"${r}"`).join(', ')}, which no cell is known to export: cell ${[...unnamed]
              .map((c) => `"${c}"`)
              .join(', ')} could not be bundled, so its exports are unknown; fix its error`,
          );
          return;
        }
        const hint = unknown.length > 0 ? ` (not exported by any cell: ${unknown.join(', ')})` : '';
        const reason = `\`{${kind}} ${expr}\` failed: ${outcome.error}${hint}`;
        file.message(reason, { place, ruleId: kind === 'claim' ? 'claim-error' : 'inline-error', source: SOURCE });
        parent.children[index] = span(['inline-error'], reason, `⚠ ${expr}`);
        return;
      }

      if (kind === 'ts') {
        parent.children[index] = span(['inline-value'], expr, outcome.text);
        return;
      }

      if (outcome.value) {
        parent.children[index] = span(['claim', 'claim-true'], `claim checked: ${expr}`, '✓');
        return;
      }
      const { paths } = readPaths(expr);
      const values = paths
        .filter((p) => Object.hasOwn(scope, p.split(/[.[]/)[0] as string))
        .map((p) => {
          const v = evaluateInline(p, scope);
          return `${p} = ${v.ok ? formatValue(v.value) : v.error}`;
        });
      const sentence = sentenceBefore(parent, index);
      const reason =
        `claim "${sentence}" does not hold: ${expr} is ${outcome.text}` +
        (values.length > 0 ? `: ${values.join(', ')}` : '') +
        '; fix the sentence or the computation';
      file.message(reason, { place, ruleId: 'claim-false', source: SOURCE });
      parent.children[index] = span(['claim', 'claim-false'], reason, `✗ ${expr}`);
    });
  };
}
