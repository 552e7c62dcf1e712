/**
 * The page's math (math-render.ts): KaTeX's own HTML as raw nodes, inline and display as
 * remark-math marks them, ```math blocks in display mode, errors in KaTeX's error markup,
 * each formula rendered once per process.
 */
import katex from 'katex';
import type { Root } from 'mdast';
import rehypeStringify from 'rehype-stringify';
import remarkMath from 'remark-math';
import remarkParse from 'remark-parse';
import remarkRehype from 'remark-rehype';
import { unified } from 'unified';
import { describe, expect, it } from 'vitest';
import { rehypeMath, renderMath } from '../../src/engine/math-render.ts';

const options = { errorColor: '#b3261e' };

async function page(markdown: string): Promise<string> {
  const processor = unified().use(remarkParse).use(remarkMath).use(remarkRehype).use(rehypeMath, options).use(rehypeStringify, { allowDangerousHtml: true });
  return String(await processor.process(markdown));
}

const katexHtml = (tex: string, displayMode: boolean) => katex.renderToString(tex, { displayMode, throwOnError: false, strict: 'ignore', errorColor: options.errorColor });

describe('math on the page', () => {
  it('prints KaTeX’s HTML for inline math, display math and ```math blocks, in their modes', async () => {
    const html = await page('Inline $a^2$ here.\n\n$$\nb_1\n$$\n\n```math\nc + d\n```\n');
    expect(html).toContain(`<p>Inline ${katexHtml('a^2', false)} here.</p>`);
    expect(html).toContain(katexHtml('b_1', true));
    expect(html).toContain(katexHtml('c + d\n', true)); // the block's text, its last newline included (as rehype-katex read it)
    expect(html).not.toContain('<pre>');
    expect(html).not.toContain('language-math');
    expect(html.match(/katex-display/g)).toHaveLength(2);
  });

  it('prints a formula KaTeX cannot parse in KaTeX’s error markup, in the error colour', async () => {
    const html = await page('Broken $\\frac{1}{$ here.');
    expect(html).toContain('class="katex-error"');
    expect(html).toContain('color:#b3261e');
    expect(html).toContain('\\frac{1}{');
  });

  it('renders each formula once: the same TeX and mode give the same string back', () => {
    const first = renderMath('x_{i+1} = x_i + \\eta', true, options);
    expect(renderMath('x_{i+1} = x_i + \\eta', true, options)).toBe(first);
    expect(renderMath('x_{i+1} = x_i + \\eta', false, options)).not.toBe(first);
    expect(first).toBe(katexHtml('x_{i+1} = x_i + \\eta', true));
  });

  it('leaves code and other elements alone', async () => {
    const tree: Root = { type: 'root', children: [{ type: 'code', lang: 'ts', value: 'const $x$ = 1;' }] };
    const html = unified().use(remarkRehype).use(rehypeMath, options).use(rehypeStringify, { allowDangerousHtml: true });
    expect(html.stringify(await html.run(tree))).toBe('<pre><code class="language-ts">const $x$ = 1;\n</code></pre>');
  });
});
