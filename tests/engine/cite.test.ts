/**
 * Citations: Pandoc syntax → author–year text linked to a References section, rendered by
 * citation-js from BibTeX; `unknown-citation` and `bad-bibliography` at their places. The
 * fixtures tests/fixtures/{citations,bad-bibliography,missing-bibliography} cover the
 * woven page; these tests cover the details and the `check` command end to end.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import rehypeStringify from 'rehype-stringify';
import remarkFrontmatter from 'remark-frontmatter';
import remarkParse from 'remark-parse';
import remarkRehype from 'remark-rehype';
import { unified } from 'unified';
import { afterEach, describe, expect, it } from 'vitest';
import { VFile } from 'vfile';
import { check } from '../../src/engine/check.ts';
import { loadLibrary, readBibliographies, remarkCitations } from '../../src/engine/cite.ts';
import { nodeEffects } from '../../src/engine/effects.ts';
import { remarkSections } from '../../src/engine/refs.ts';

const BIB = `
@article{ho2020,   author = {Ho, Jonathan and Jain, Ajay and Abbeel, Pieter}, title = {Denoising Diffusion Probabilistic Models}, journal = {NeurIPS}, year = {2020}}
@article{ho2020b,  author = {Ho, Jonathan and Jain, Ajay and Abbeel, Pieter}, title = {A Second Paper}, journal = {X}, year = {2020}}
@article{hinton2002, author = {Hinton, Geoffrey E.}, title = {Training Products of Experts by Minimizing Contrastive Divergence}, journal = {Neural Computation}, volume = {14}, number = {8}, pages = {1771--1800}, year = {2002}}
@book{bishop2006, author = {Bishop, Christopher M.}, title = {Pattern Recognition and Machine Learning}, publisher = {Springer}, year = {2006}}
@misc{with:colon, author = {Doe, Jane}, title = {Colon Key}, year = {2001}}
`;

async function render(markdown: string, bib: string | undefined = BIB, renderCitations = true) {
  const file = new VFile({ path: 'doc.md', value: markdown });
  const sources = bib === undefined ? undefined : [{ name: 'refs.bib', path: '/x/refs.bib', text: bib, place: { line: 2, column: 1 } }];
  const library = sources ? await loadLibrary(sources, file) : undefined;
  let toc: { text: string; number: string }[] = [];
  const html = String(
    await unified()
      .use(remarkParse)
      .use(remarkFrontmatter, ['yaml'])
      .use(remarkCitations, { library, bibliographyNamed: sources !== undefined, render: renderCitations })
      .use(remarkSections, { onToc: (entries) => (toc = entries) })
      .use(remarkRehype)
      .use(rehypeStringify)
      .process(file),
  );
  return { html, toc, messages: file.messages.map((m) => [m.ruleId, `${m.line}:${m.column}`, m.reason]) };
}

describe('citation syntax', () => {
  it('renders bracketed, multiple, suppressed-author and in-text citations, linked to their entries', async () => {
    const { html, messages } = await render('One [@hinton2002], two [@bishop2006; @hinton2002], year only [-@bishop2006], and @hinton2002 [p. 5] says.');
    expect(messages).toEqual([]);
    expect(html).toContain('<a href="#ref-hinton2002" class="cite">(Hinton, 2002)</a>');
    expect(html).toContain('(<a href="#ref-bishop2006" class="cite">Bishop, 2006</a>; <a href="#ref-hinton2002" class="cite">Hinton, 2002</a>)');
    expect(html).toContain('<a href="#ref-bishop2006" class="cite">(2006)</a>');
    expect(html).toContain('<a href="#ref-hinton2002" class="cite">Hinton (2002, p. 5)</a></span> says.');
  });

  it('keeps prefixes and suffixes, and disambiguates same-author same-year works (2020a, 2020b)', async () => {
    const { html } = await render('As shown [see @ho2020, p. 4]. Both [@ho2020; @ho2020b].');
    // APA orders same-author same-year works by title: "A Second Paper" (ho2020b) is 2020a.
    expect(html).toContain('(see Ho et al., 2020b, p. 4)');
    // citeproc collapses the group to "Ho et al., 2020b, 2020a": linked as a whole to its first entry.
    expect(html).toContain('<a href="#ref-ho2020" class="cite">(Ho et al., 2020b, 2020a)</a>');
    expect(html).toMatch(/id="ref-ho2020b"[^>]*>Ho, J., Jain, A., &#x26; Abbeel, P. \(2020a\)\. A Second Paper/);
  });

  it('takes internal punctuation into keys but not trailing punctuation; leaves e-mails and cross-references alone', async () => {
    const { html, messages } = await render('Keys: @with:colon. Mail x@hinton2002.org; see @fig-loss and [@tbl-x].');
    expect(messages).toEqual([]);
    expect(html).toContain('<a href="#ref-with:colon" class="cite">Doe (2001)</a></span>.');
    expect(html).toContain('@fig-loss and [@tbl-x]');
    expect(html).not.toContain('ref-hinton2002');
  });

  it('appends an unnumbered References section with the cited entries only, sorted by the style', async () => {
    const { html, toc } = await render('## Intro\n\nSee @hinton2002 and [@bishop2006].\n');
    expect(toc.map((e) => [e.number, e.text])).toEqual([
      ['1', 'Intro'],
      ['', 'References'],
    ]);
    expect(html).toContain('<h2 id="sec-references">References</h2>');
    const ids = [...html.matchAll(/<div class="csl-entry" id="ref-([^"]+)"/g)].map((m) => m[1]);
    expect(ids).toEqual(['bishop2006', 'hinton2002']);
    expect(html).toContain('<i>Neural Computation</i>, <i>14</i>(8), 1771–1800.');
  });

  it('fills a last, empty "References" heading instead of adding one', async () => {
    const { html } = await render('Text [@bishop2006].\n\n## References\n');
    expect(html.match(/References<\/h2>/g)).toHaveLength(1);
    expect(html).toMatch(/References<\/h2>\n<div id="refs"/);
  });

  it('without rendering (check) resolves keys only: problems reported, no References', async () => {
    const { html, messages } = await render('Known [@bishop2006], unknown [@nope].', BIB, false);
    expect(messages.map((m) => m[0])).toEqual(['unknown-citation']);
    expect(html).not.toContain('References');
    expect(html).not.toContain('Bishop, 2006');
  });

  it('writes no References section when nothing is cited', async () => {
    const { html } = await render('No citations here, only a@b.org.');
    expect(html).not.toContain('References');
  });
});

describe('citation problems', () => {
  it('unknown-citation at the line and column of each unknown key, with a suggestion', async () => {
    const { messages, html } = await render('First line\nthen [@bishop2006; @hintn2002] and\n  @nobody.');
    expect(messages).toEqual([
      ['unknown-citation', '2:20', 'unknown citation @hintn2002: no entry with this key in the bibliography; did you mean @hinton2002?'],
      ['unknown-citation', '3:3', 'unknown citation @nobody: no entry with this key in the bibliography'],
    ]);
    expect(html).toContain('[@bishop2006; @hintn2002]');
  });

  it('bad-bibliography for BibTeX that does not parse, a file without entries, and duplicate keys', async () => {
    const cases = ['@article{x, title = {unclosed', 'just some words', '@misc{a, title={A}, year={2000}}\n@misc{a, title={B}, year={2001}}'];
    const reasons: string[] = [];
    for (const bib of cases) {
      const file = new VFile({ path: 'doc.md', value: '' });
      await loadLibrary([{ name: 'refs.bib', path: '/x/refs.bib', text: bib, place: { line: 3, column: 1 } }], file);
      for (const m of file.messages) {
        expect([m.ruleId, m.line]).toEqual(['bad-bibliography', 3]);
        reasons.push(m.reason);
      }
    }
    expect(reasons).toEqual([
      'bibliography refs.bib: is not valid BibTeX: expected "text", got EOF at line 1 col 30',
      'bibliography refs.bib: holds no BibTeX entry (expected entries like @article{key, author = {…}, title = {…}, year = {…}})',
      'bibliography refs.bib: key "a" is defined twice; keys must be unique, rename or remove one',
    ]);
  });

  it('bad-frontmatter when `bibliography` is neither a file name nor a list of them', async () => {
    const file = new VFile({ path: 'doc.md', value: '' });
    const tree = unified().use(remarkParse).use(remarkFrontmatter, ['yaml']).parse('---\ntitle: x\nbibliography: 3\n---\n');
    const sources = await readBibliographies(file, tree, { bibliography: 3 }, '/x/doc.md', () => new Uint8Array());
    expect(sources).toBeUndefined();
    expect(file.messages.map((m) => [m.ruleId, m.line])).toEqual([['bad-frontmatter', 3]]);
  });
});

describe('check with a bibliography on disk', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('reads the .bib relative to the document and reports unknown keys without running anything', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'report-cite-'));
    await writeFile(path.join(dir, 'refs.bib'), BIB);
    await writeFile(path.join(dir, 'doc.md'), '---\nbibliography: refs.bib\n---\n\nKnown [@bishop2006], unknown [@nope].\n');
    // check takes no executor: it cannot run a cell.
    const summary = await check(
      { docPath: path.join(dir, 'doc.md'), projectRoot: dir, cacheDir: path.join(dir, '.tc') },
      nodeEffects({ stdout: { write: () => {}, isTTY: false } }),
    );
    expect(summary.file.messages.map((m) => [m.ruleId, m.line, m.column])).toEqual([['unknown-citation', 5, 31]]);
  });
});

describe('rendered citations are remembered by what they are rendered from', () => {
  it('the same citations render the same the second time (not shared mutably), and a changed suffix or entry renders afresh', async () => {
    const text = 'Intro.\n\nOne [@hinton2002, p. 3] and @bishop2006 [ch. 2].\n';
    const first = await render(text);
    const again = await render(`Other prose first.\n\n${text}`);
    // Same citations (positions differ): the same rendered fragments and bibliography.
    expect(again.html.replace('<p>Other prose first.</p>\n', '')).toBe(first.html);
    const suffix = await render(text.replace('p. 3', 'p. 4'));
    expect(suffix.html).toContain('p. 4');
    expect(suffix.html).not.toContain('p. 3');
    const entry = await render(text, BIB.replace('Pattern Recognition and Machine Learning', 'Pattern Recognition, Second Thoughts'));
    expect(entry.html).toContain('Second Thoughts');
  });
});
