import { describe, expect, it } from 'vitest';
import { VFile } from 'vfile';
import { buildGraph } from '../../src/engine/graph.ts';
import { parseDocument } from '../../src/engine/parse.ts';

function doc(cells: [string, string[]][]) {
  const md = cells
    .map(([id, imports]) => `\`\`\`ts run id=${id}\n${imports.map((i) => `import '${'cell:' + i}';`).join('\n')}\nexport const v_${id.replaceAll('-', '_')} = 1;\n\`\`\`\n`)
    .join('\n');
  return parseDocument(new VFile({ path: 'g.md', value: md }));
}

describe('buildGraph', () => {
  it('orders dependencies first, keeping document order between independent cells', () => {
    const d = doc([
      ['report', ['train', 'data']],
      ['data', []],
      ['train', ['data']],
      ['aside', []],
    ]);
    const graph = buildGraph(d);
    expect(graph.order).toEqual(['data', 'train', 'report', 'aside']);
    expect(graph.deps('report')).toEqual(['train', 'data']);
    expect(graph.dependents('data')).toEqual(['report', 'train']);
    expect(d.file.messages).toEqual([]);
  });

  it('leaves cycles and their dependents out of the order, naming the cycle', () => {
    const d = doc([
      ['a', ['c']],
      ['b', ['a']],
      ['c', ['b']],
      ['d', ['a']],
      ['e', []],
      ['self', ['self']],
    ]);
    const graph = buildGraph(d);
    expect(graph.order).toEqual(['e']);
    const reasons = d.file.messages.map((m) => [m.ruleId, m.line, m.reason.split(';')[0]]);
    expect(reasons).toEqual([
      ['cycle', 1, 'cycle between cells: a → c → b → a'],
      ['cycle', 26, 'cycle between cells: self → self'],
    ]);
    expect(graph.blocked.get('d')).toBe('depends on cell "a", which is in the cycle a → c → b → a');
  });

  it('reports an unknown cell at the import and blocks the importer and its dependents', () => {
    const d = doc([
      ['a', []],
      ['b', ['a', 'nope']],
      ['c', ['b']],
    ]);
    const graph = buildGraph(d);
    expect(graph.order).toEqual(['a']);
    const message = d.file.messages[0];
    expect([message?.ruleId, message?.line, message?.column]).toEqual(['unknown-cell', 8, 8]);
    expect(message?.reason).toContain('"nope"');
  });
});
