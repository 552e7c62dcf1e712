/**
 * Renders the page's math with KaTeX (the weave's rehype stage, in place of rehype-katex).
 *
 * rehype-katex renders each formula to an HTML string, parses that string back into a hast
 * tree (parse5) and leaves it to the serialiser to print again — three passes over markup
 * that is larger than the rest of the page's text. On the report (about 1 900 formulas) that
 * was a quarter of every preview rebuild. Here each formula becomes a `raw` node holding
 * KaTeX's own HTML, printed as is, and that HTML is remembered per formula (KaTeX is a pure
 * function of the TeX, the display mode and the options fixed below), so a rebuild renders
 * only the formulas it has not seen.
 *
 * The elements rendered are those remark-math and remark-rehype make (`math-inline`,
 * `math-display`, and ```math blocks' `language-math`), as rehype-katex finds them. A
 * formula KaTeX cannot parse is rendered with KaTeX's own error markup (`throwOnError:
 * false`); the weave's math check (refs.ts remarkMathCheck) is what reports it, as
 * `math-error`. Nothing else of the tree is raw: remark-rehype drops the document's own
 * HTML, so `allowDangerousHtml` in the serialiser prints only these nodes.
 */
import type { Element, Root } from 'hast';
import { toText } from 'hast-util-to-text';
import katex from 'katex';
import { escapeHtml } from './escape-html.ts';

export interface MathRenderOptions {
  /** Colour of a formula KaTeX cannot parse. */
  errorColor: string;
}

/** KaTeX's HTML by options, display mode and TeX; bounded (a long session edits many formulas). */
const rendered = new Map<string, string>();
const KEPT = 20_000;

/** KaTeX's HTML for one formula (remembered). */
export function renderMath(tex: string, displayMode: boolean, options: MathRenderOptions): string {
  const lookup = `${options.errorColor}\u0000${displayMode ? 'd' : 'i'}\u0000${tex}`;
  let html = rendered.get(lookup);
  if (html === undefined) {
    try {
      html = katex.renderToString(tex, { displayMode, throwOnError: false, strict: 'ignore', errorColor: options.errorColor });
    } catch (error) {
      // KaTeX turns parse errors into markup itself; anything else becomes the same kind of span.
      html = `<span class="katex-error" style="color:${escapeHtml(options.errorColor)}" title="${escapeHtml(String(error))}">${escapeHtml(tex)}</span>`;
    }
    if (rendered.size >= KEPT) rendered.clear();
    rendered.set(lookup, html);
  }
  return html;
}

/** rehype plugin: every math element → a `raw` node with KaTeX's HTML (see the file's header). */
export function rehypeMath(options: MathRenderOptions) {
  const walk = (parent: Root | Element): void => {
    const children = parent.children;
    for (let i = 0; i < children.length; i++) {
      const node = children[i]!;
      if (node.type !== 'element') continue;
      // A ```math block: its <pre> is replaced, in display mode.
      const code = node.tagName === 'pre' ? node.children.find((c): c is Element => c.type === 'element' && c.tagName === 'code') : undefined;
      const scope = code !== undefined && hasClass(code, 'language-math') ? node : undefined;
      // remark-math's inline math is `code.language-math.math-inline`, its display math `.math-display`.
      const display = scope !== undefined || hasClass(node, 'math-display');
      if (scope === undefined && !display && !hasClass(node, 'math-inline') && !hasClass(node, 'language-math')) {
        walk(node);
        continue;
      }
      children[i] = { type: 'raw', value: renderMath(toText(node, { whitespace: 'pre' }), display, options) } as unknown as Element;
    }
  };
  return (tree: Root): void => walk(tree);
}

function hasClass(node: Element, name: string): boolean {
  const classes = node.properties.className;
  return Array.isArray(classes) && classes.includes(name);
}
