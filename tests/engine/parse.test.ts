import { describe, expect, it } from 'vitest';
import { VFile } from 'vfile';
import { parseDocument } from '../../src/engine/parse.ts';

const parse = (value: string) => parseDocument(new VFile({ path: 'doc.md', value }));

describe('parseDocument', () => {
  it('extracts cells with options, code line and cell: imports (parsed by esbuild, not a regex)', () => {
    const doc = parse(
      [
        '---',
        'title: T',
        'seed: 3',
        '---',
        '',
        '```ts run id=b echo=false timeout=60 memory=512 seed=9',
        "import { a } from 'cell:a';",
        "// import { z } from 'cell:comment-is-not-an-import';",
        "export { a as alias } from 'cell:c';",
        "const s = \"import { q } from 'cell:string'\";",
        "export const [x, { y }] = [1, { y: 2 }];",
        'export function f() {}',
        "export * from 'cell:a';",
        '```',
        '',
        '```ts',
        'displayOnly();',
        '```',
      ].join('\n'),
    );
    expect(doc.frontMatter).toEqual({ title: 'T', seed: 3 });
    expect(doc.cells).toHaveLength(1);
    const cell = doc.cells[0];
    expect(cell?.id).toBe('b');
    // timeout= and memory= given are also the cell's resource requests (for --executor slurm).
    expect(cell?.options).toEqual({ echo: false, timeout: 60, memory: 512, seed: 9, resources: { timeSeconds: 60, memMiB: 512 } });
    expect(cell?.rawOptions).toBe('id=b echo=false timeout=60 memory=512 seed=9');
    expect(cell?.codeLine).toBe(7);
    expect(cell?.imports).toEqual(['a', 'c']);
    expect(doc.cellImports.get('b')?.map((i) => [i.id, i.place.line, i.place.column])).toEqual([
      ['a', 7, 19],
      ['c', 9, 28],
      ['a', 13, 15],
    ]);
    // Export names are not read here: they come from the cell's bundle (bundle.test.ts).
    expect(Object.keys(doc)).not.toContain('cellExports');
    expect(doc.file.messages).toEqual([]);
  });

  it('attaches the cell to its mdast code node', () => {
    const doc = parse('```ts run id=one\nexport const a = 1;\n```\n');
    const node = doc.tree.children[0];
    expect(node?.type === 'code' && node.data?.cell?.id).toBe('one');
  });

  it('reports bad front matter without throwing', () => {
    const invalid = parse('---\ntitle: [unclosed\n---\n\ntext\n');
    expect(invalid.file.messages.map((m) => m.ruleId)).toEqual(['bad-frontmatter']);
    const wrongTypes = parse('---\ntitle: 3\nseed: abc\nprofile: [a]\n---\n');
    expect(wrongTypes.file.messages.map((m) => [m.ruleId, m.line, m.reason])).toEqual([
      ['bad-frontmatter', 1, 'front matter "seed" must be an integer, got string "abc"'],
      ['bad-frontmatter', 1, 'front matter "profile" must be a string, got a list'],
    ]);
    expect(wrongTypes.frontMatter).toEqual({ title: '3' });
  });

  it('keeps the first of two cells with the same id and reports the second', () => {
    const doc = parse('```ts run id=a\n1;\n```\n\n```ts run id=a\n2;\n```\n');
    expect(doc.cells.map((c) => c.code)).toEqual(['1;']);
    expect(doc.file.messages.map((m) => [m.ruleId, m.line])).toEqual([['duplicate-id', 5]]);
  });
});

describe('cell imports', () => {
  it('ignores type-only imports (no result needed) and keeps unused value imports (they still order cells)', () => {
    const doc = parse(
      ['```ts run id=a', 'export const n = 1;', '```', '', '```ts run id=b', "import type { T } from 'cell:t';", "import { n } from 'cell:a';", 'export const m = 2;', '```'].join('\n'),
    );
    expect(doc.cells[1]?.imports).toEqual(['a']);
  });

  it('yields no imports for a cell that does not parse (the keyer reports cell-syntax)', () => {
    const doc = parse(['```ts run id=a', "import { n } from 'cell:b';", 'const x = ;', '```'].join('\n'));
    expect(doc.cells[0]?.imports).toEqual([]);
    expect(doc.file.messages).toEqual([]);
  });
});
