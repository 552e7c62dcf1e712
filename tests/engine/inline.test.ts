import rehypeStringify from 'rehype-stringify';
import remarkParse from 'remark-parse';
import remarkRehype from 'remark-rehype';
import { unified } from 'unified';
import { describe, expect, it } from 'vitest';
import { VFile } from 'vfile';
import { evaluateInline, formatValue, readPaths, remarkInline, collectScope } from '../../src/engine/inline.ts';
import { parseDocument } from '../../src/engine/parse.ts';
import type { CellResult } from '../../src/engine/types.ts';

async function render(markdown: string, scope: Record<string, unknown>, owners: Record<string, string> = {}, missing = new Set<string>(), unnamed = new Set<string>()) {
  const file = new VFile({ path: 'doc.md', value: markdown });
  const html = String(
    await unified().use(remarkParse).use(remarkInline, { scope, owners, missing, unnamed }).use(remarkRehype).use(rehypeStringify).process(file),
  );
  return { html, messages: file.messages };
}

describe('formatValue', () => {
  it('prints integers as given, other numbers with up to 4 significant digits, strings as is', () => {
    expect(formatValue(60000)).toBe('60000');
    expect(formatValue(-98.123456)).toBe('-98.12');
    expect(formatValue(0.000123456)).toBe('0.0001235');
    expect(formatValue(2.5)).toBe('2.5');
    expect(formatValue('3.14159')).toBe('3.14159');
    expect(formatValue([1, 2.34567, 'a'])).toBe('[1,2.346,"a"]');
    expect(formatValue({ a: 1 })).toBe('{"a":1}');
    expect(formatValue(new Float32Array([0.5, 1]))).toBe('[0.5,1]');
    expect(formatValue(Array.from({ length: 100 }, (_, i) => i)).length).toBe(80);
  });
});

describe('evaluateInline', () => {
  it('evaluates TypeScript over the scope and never throws', () => {
    expect(evaluateInline('(x as number) * 2', { x: 21 })).toEqual({ ok: true, value: 42, text: '42' });
    expect(evaluateInline('x.toFixed(1)', { x: 1.25 })).toEqual({ ok: true, value: '1.3', text: '1.3' });
    const thrown = evaluateInline('y.z', {});
    expect(thrown.ok).toBe(false);
    expect(!thrown.ok && thrown.error).toContain('ReferenceError');
    const broken = evaluateInline('1 +', {});
    expect(!broken.ok && broken.error).toMatch(/^does not compile/);
  });

  it('evaluates an expression that starts or ends with a comment (esbuild keeps a leading comment on a line of its own)', () => {
    // Compiled, `/*c*/ x` becomes "/*c*/\nx": after a bare `return` the line break ended the
    // statement (automatic semicolon insertion) and every such value read as undefined.
    expect(evaluateInline('/*c*/ x', { x: 3 })).toEqual({ ok: true, value: 3, text: '3' });
    expect(evaluateInline('/** why */ x > 1', { x: 3 })).toMatchObject({ ok: true, value: true });
    expect(evaluateInline('x > 1 // because', { x: 3 })).toMatchObject({ ok: true, value: true });
    expect(evaluateInline('x /* tail */', { x: 3 })).toMatchObject({ ok: true, value: 3 });
  });

  it('reads the identifiers and member paths an expression uses', () => {
    expect(readPaths('rbm.pl > -120 && Math.abs(vae.kl.at(-1)) < limit')).toEqual({
      roots: ['rbm', 'Math', 'vae', 'limit'],
      paths: ['rbm.pl', 'Math', 'vae.kl', 'limit'],
    });
    expect(readPaths('xs.map((x) => x * k)').roots).toEqual(['xs', 'k']);
  });

  it('follows literal indices and non-null assertions, so a claim shows the value it compared', () => {
    expect(readPaths('rows[0]!.pl > rows[1]!.pl + 20').paths).toEqual(['rows[0].pl', 'rows[1].pl']);
    expect(readPaths("runs.at(-1)!.ll < best['ll']").paths).toEqual(['runs', 'best["ll"]']);
    expect(readPaths('xs[i]! > 0').paths).toEqual(['xs', 'i']);
  });
});

describe('remarkInline', () => {
  it('replaces {ts} spans by values and marks true claims discreetly', async () => {
    const { html, messages } = await render('Trained `{ts} rbm.epochs` epochs. It converged `{claim} rbm.pl > -120`.', {
      rbm: { epochs: 20, pl: -98.5 },
    });
    expect(html).toBe(
      '<p>Trained <span class="inline-value" title="rbm.epochs">20</span> epochs. It converged ' +
        '<span class="claim claim-true" title="claim checked: rbm.pl > -120">✓</span>.</p>',
    );
    expect(messages).toEqual([]);
  });

  it('reports a false claim with the sentence, the expression and the values it read', async () => {
    const { html, messages } = await render('First sentence. The RBM beats the baseline `{claim} rbm.pl > -120`.', {
      rbm: { pl: -131.2 },
    });
    expect(messages.map((m) => [m.ruleId, m.line, m.column])).toEqual([['claim-false', 1, 44]]);
    expect(messages[0]?.reason).toBe(
      'claim "The RBM beats the baseline" does not hold: rbm.pl > -120 is false: rbm.pl = -131.2; fix the sentence or the computation',
    );
    expect(html).toContain('<span class="claim claim-false"');
    expect(html).toContain('✗ rbm.pl > -120');
  });

  it('shows indexed values in a false claim', async () => {
    const { messages } = await render('Run two wins `{claim} runs[1]!.pl > runs[0]!.pl`.', {
      runs: [{ pl: -100 }, { pl: -150 }],
    });
    expect(messages[0]?.reason).toContain('is false: runs[1].pl = -150, runs[0].pl = -100;');
  });

  it('names the cell without results an expression needs', async () => {
    const { messages } = await render('Value `{ts} loss`.', {}, { loss: 'train' }, new Set(['train']));
    expect(messages.map((m) => m.ruleId)).toEqual(['inline-error']);
    expect(messages[0]?.reason).toContain('"loss" from cell "train", which has no result');
  });

  it('reports a throwing claim as claim-error', async () => {
    const { messages } = await render('Claim `{claim} a.b.c > 1`.', { a: {} });
    expect(messages.map((m) => m.ruleId)).toEqual(['claim-error']);
  });
});

describe('collectScope', () => {
  it('unions the exports and reports a name exported by two cells at the second cell', () => {
    const doc = parseDocument(
      new VFile({ path: 'd.md', value: '```ts run id=a\nexport const x = 1;\n```\n\n```ts run id=b\nexport const x = 2, y = 3;\n```\n' }),
    );
    const result = (id: string, exports: Record<string, unknown>): CellResult => ({
      kind: 'result',
      id,
      key: id,
      exports,
      outputs: [],
      meta: { runMs: 0, versions: {}, profile: 'full', seed: 0, createdAt: '' },
    });
    // The names are the bundles' (LoadedDocument.exports): b's are known before it has a result.
    const exports = new Map([['a', ['x']], ['b', ['x', 'y']]]);
    const { scope, owners, missing, unnamed } = collectScope(doc, new Map([['a', result('a', { x: 1 })]]), exports);
    expect(scope).toEqual({ x: 1 });
    expect(owners).toEqual({ x: 'a', y: 'b' });
    expect([...missing]).toEqual(['b']);
    expect([...unnamed]).toEqual([]);
    expect(doc.file.messages.map((m) => [m.ruleId, m.line])).toEqual([['duplicate-export', 5]]);
  });

  it('knows no names of a cell that could not be bundled, and an expression that may need them waits for it', async () => {
    const doc = parseDocument(
      new VFile({ path: 'd.md', value: '```ts run id=a\nexport const x = 1;\n```\n\n```ts run id=b\nexport const y = ;\n```\n\nValues `{ts} x` and `{ts} y`.\n' }),
    );
    const { scope, owners, missing, unnamed } = collectScope(doc, new Map(), new Map([['a', ['x']]]));
    expect(owners).toEqual({ x: 'a' });
    expect([...unnamed]).toEqual(['b']);
    const markdown = 'Values `{ts} x` and `{ts} y`.';
    const built = await render(markdown, scope, owners, missing, unnamed);
    expect(built.messages.map((m) => m.ruleId)).toEqual(['inline-error', 'inline-error']);
    expect(built.messages[0]?.reason).toContain('"x" from cell "a", which has no result');
    expect(built.messages[1]?.reason).toContain('needs "y", which no cell is known to export: cell "b" could not be bundled');
    // Without such a cell, a name nobody exports is a plain error.
    const plain = await render('Value `{ts} y`.', scope, owners, missing);
    expect(plain.messages[0]?.reason).toContain('(not exported by any cell: y)');
  });
});
