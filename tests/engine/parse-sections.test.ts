/**
 * The preview's parse by sections (parse.ts `SectionMemo`) gives the tree one parse of the
 * whole text gives — the same nodes, values and positions, the same cells and messages — on
 * every fixture, on the report, and on fuzzed documents with headings, fences, math and
 * HTML blocks placed to straddle section starts; and an edit parses again only its section.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { VFile } from 'vfile';
import { parseDocument, SectionMemo } from '../../src/engine/parse.ts';
import { mutate, prng, seedDocuments } from '../fuzz/fuzz.ts';

const root = path.resolve(import.meta.dirname, '../..');

function parsed(text: string, sections?: SectionMemo) {
  const file = new VFile({ path: 'doc.md', value: text });
  const doc = parseDocument(file, sections);
  return {
    tree: JSON.stringify(doc.tree),
    cells: JSON.stringify(doc.cells),
    frontMatter: doc.frontMatter,
    messages: file.messages.map((m) => `${m.line}:${m.column} ${m.ruleId} ${m.reason}`),
  };
}

function expectSame(text: string, memo = new SectionMemo()): void {
  const whole = parsed(text);
  const bySection = parsed(text, memo);
  expect(bySection.tree, text.slice(0, 300)).toBe(whole.tree);
  expect(bySection.cells).toBe(whole.cells);
  expect(bySection.frontMatter).toEqual(whole.frontMatter);
  expect(bySection.messages).toEqual(whole.messages);
}

/** Lines that open, close or interrupt blocks, to insert around headings. */
const TRICKY = [
  '```', '```ts', '~~~', '````', '$$', '$$x = 1$$', '$$ a', '<!--', '-->', '<pre>', '</pre>', '<?x', '?>', '<div>', '<![CDATA[', ']]>',
  '- item', '  ```', '> quote', '> ```', '1. one', '    indented', '[ref]: https://example.org', '[^note]: a footnote', 'See [ref] and [^note].',
  '| a | b |', '|---|---|', '---', '===', '', '', '# Heading', '## Heading two', '### Three', '#no heading', '#', '\t# tab',
];

describe('parsing by sections', () => {
  it('gives the tree of one parse on every fixture and on the report', () => {
    const fixtures = path.join(root, 'tests', 'fixtures');
    for (const name of readdirSync(fixtures)) {
      const file = path.join(fixtures, name, 'input.md');
      if (existsSync(file)) expectSame(readFileSync(file, 'utf8'));
    }
    const report = readFileSync(path.join(root, 'report', 'report.md'), 'utf8');
    const memo = new SectionMemo();
    expectSame(report, memo);
    expect(memo.size).toBeGreaterThan(20); // the report is parsed in sections, not as one
  });

  it('gives the tree of one parse on fuzzed documents with blocks straddling section starts', { timeout: 600_000 }, () => {
    const seeds = seedDocuments();
    const rand = prng(20261128);
    const memo = new SectionMemo();
    for (let n = 0; n < 300; n++) {
      // Not the fuzzer's very long or deeply nested lines: they test the parser's limits (tests/fuzz), not where sections start.
      const lines = mutate(seeds[Math.floor(rand() * seeds.length)]!, rand).split('\n').filter((line) => line.length < 400);
      for (let k = 0; k < 6; k++) {
        const at = Math.floor(rand() * (lines.length + 1));
        const tricky = TRICKY[Math.floor(rand() * TRICKY.length)]!;
        lines.splice(at, 0, ...(rand() < 0.5 ? ['', '# Section ' + k, ''] : [tricky]));
      }
      // The same memo throughout, as the preview keeps it: sections of earlier documents must not leak.
      expectSame(lines.join('\n'), rand() < 0.7 ? memo : new SectionMemo());
    }
  });

  it('parses again only the sections an edit changed', () => {
    const report = readFileSync(path.join(root, 'report', 'report.md'), 'utf8');
    const memo = new SectionMemo();
    const calls: number[] = [];
    const count = (text: string): (() => void) => {
      const file = new VFile({ path: 'doc.md', value: text });
      const before = calls.length;
      parseDocument(file, {
        parse: (t: string, parse: (t: string) => unknown) => memo.parse(t, (s) => (calls.push(s.length), parse(s) as never)),
      } as unknown as SectionMemo);
      return () => void calls.splice(before);
    };
    count(report);
    const all = calls.length;
    calls.length = 0;
    count(report.replace('All experiments use MNIST:', 'All experiments (edited) use MNIST:'));
    expect(calls).toHaveLength(1);
    expect(calls[0]!).toBeLessThan(report.length / 5);
    expect(all).toBeGreaterThan(20);
  });
});
