import rehypeStringify from 'rehype-stringify';
import remarkMath from 'remark-math';
import remarkParse from 'remark-parse';
import remarkRehype from 'remark-rehype';
import { unified } from 'unified';
import { describe, expect, it } from 'vitest';
import { VFile } from 'vfile';
import { remarkEquations, remarkMathCheck, remarkRefs, remarkSections, type Labels, type TocEntry } from '../../src/engine/refs.ts';

async function run(markdown: string, labels?: Partial<Labels>, numberSections = true) {
  const all: Labels = { figures: new Map(), tables: new Map(), equations: new Map(), ...labels };
  let toc: TocEntry[] = [];
  const file = new VFile({ path: 'doc.md', value: markdown });
  const html = String(
    await unified()
      .use(remarkParse)
      .use(remarkMath)
      .use(remarkEquations, { labels: all })
      .use(remarkMathCheck)
      .use(remarkRefs, { labels: all })
      .use(remarkSections, { onToc: (entries: TocEntry[]) => (toc = entries), number: numberSections })
      .use(remarkRehype)
      .use(rehypeStringify)
      .process(file),
  );
  return { html, toc, labels: all, messages: file.messages };
}

describe('equations', () => {
  it('numbers equations labelled after the closing $$ or on the opening $$, and links @eq- references', async () => {
    const { html, labels, messages } = await run('$$\na = b\n$$\n{#eq-first}\n\n$$ {#eq-second}\nc\n$$\n\nBy @eq-second and @eq-first.');
    expect([...labels.equations]).toEqual([
      ['first', 1],
      ['second', 2],
    ]);
    expect(html).toContain('<div class="equation" id="eq-first"><pre><code class="language-math math-display">a = b \\tag{1}</code></pre></div>');
    expect(html).toContain('<a href="#eq-second" class="xref">Equation (2)</a> and <a href="#eq-first" class="xref">Equation (1)</a>');
    expect(html).not.toContain('{#eq-first}');
    expect(messages).toEqual([]);
  });

  it('reports KaTeX parse failures as math-error at the math node', async () => {
    const { messages } = await run('Text\n\n$$\n\\frac{1}{\n$$\n\nand $\\nope$.');
    expect(messages.map((m) => [m.ruleId, m.line, m.column])).toEqual([
      ['math-error', 3, 1],
      ['math-error', 7, 5],
    ]);
    expect(messages[1]?.reason).toContain('Undefined control sequence: \\nope');
  });
});

describe('references and sections', () => {
  it('links figures and tables, and reports unknown labels where they are written', async () => {
    const { html, messages } = await run('See @fig-loss and\n@tbl-sizes, not @fig-nope; mail a@fig-x.org.', {
      figures: new Map([['loss', 3]]),
      tables: new Map([['sizes', 2]]),
    });
    expect(html).toBe(
      '<p>See <a href="#fig-loss" class="xref">Figure 3</a> and\n<a href="#tbl-sizes" class="xref">Table 2</a>, not @fig-nope; mail a@fig-x.org.</p>',
    );
    expect(messages.map((m) => [m.ruleId, m.line, m.column, m.reason])).toEqual([
      ['unknown-ref', 2, 17, 'unknown reference @fig-nope; known figure labels: @fig-loss'],
    ]);
  });

  it('numbers h2… sections and lists them', async () => {
    const { html, toc } = await run('# Title\n\n## Intro\n\n### Data\n\n### Model\n\n## Results\n');
    expect(toc.map((e) => `${e.number} ${e.text} #${e.id}`)).toEqual([
      '1 Intro #sec-intro',
      '1.1 Data #sec-data',
      '1.2 Model #sec-model',
      '2 Results #sec-results',
    ]);
    expect(html).toContain('<h3 id="sec-model"><span class="secno">1.2</span> Model</h3>');
    expect(html).toContain('<h1>Title</h1>');
  });

  it('leaves headings that carry their own numbers unnumbered with number-sections: false', async () => {
    const { html, toc } = await run('## Section 4.1 RBMs\n\n### Q1. Why?\n', undefined, false);
    expect(toc.map((e) => [e.number, e.text])).toEqual([
      ['', 'Section 4.1 RBMs'],
      ['', 'Q1. Why?'],
    ]);
    expect(html).toContain('<h3 id="sec-q1-why">Q1. Why?</h3>');
    expect(html).not.toContain('secno');
  });
});
