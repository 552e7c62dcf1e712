/**
 * The fixture runner: every tests/fixtures/<case>/ with an input.md and an expected.html
 * or messages.json is parsed, graphed, its cells bundled for their export names (as a
 * command does: bundle.ts through key.ts) and woven (with results.json as the cells' results
 * and options.json as weave options when present; highlighting only with `"highlight": true`); the HTML (stylesheets elided) and the
 * messages are compared with the expectations. `UPDATE=1` rewrites them; CI never writes.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { VFile } from 'vfile';
import { readBibliographies } from '../../src/engine/cite.ts';
import { buildGraph } from '../../src/engine/graph.ts';
import { exportNames, keyCells } from '../../src/engine/key.ts';
import { parseDocument } from '../../src/engine/parse.ts';
import type { CellFailure, CellResult, FigureOutput, Output } from '../../src/engine/types.ts';
import { weave, type WeaveOptions } from '../../src/engine/weave.ts';
import { figureLinks, inlineFigures, linkFigures, type FigureLinks } from '../../src/engine/figure-links.ts';
import { sha256 } from '../../src/engine/digest.ts';

const fixtures = path.resolve(import.meta.dirname, '../fixtures');
const projectRoot = path.resolve(import.meta.dirname, '../..');
const runtimePath = path.join(projectRoot, 'src/engine/runtime.ts');
const update = process.env.UPDATE === '1' && !process.env.CI;

interface RawOutput {
  kind: Output['kind'];
  data?: string;
  [key: string]: unknown;
}
type RawResult =
  | { exports: Record<string, unknown>; outputs: RawOutput[] }
  | { failure: Omit<CellFailure, 'id' | 'outputs'> & { outputs?: RawOutput[] } };

function toOutput(raw: RawOutput): Output {
  if (raw.kind === 'figure') return { ...raw, data: new TextEncoder().encode(raw.data ?? '') } as Output;
  return raw as unknown as Output;
}

export function readResults(dir: string): Map<string, CellResult | CellFailure> {
  const file = path.join(dir, 'results.json');
  const results = new Map<string, CellResult | CellFailure>();
  if (!existsSync(file)) return results;
  const raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, RawResult>;
  for (const [id, entry] of Object.entries(raw)) {
    if ('failure' in entry) {
      results.set(id, { id, ...entry.failure, outputs: entry.failure.outputs?.map(toOutput) });
    } else {
      results.set(id, {
        kind: 'result',
        id,
        key: `key-${id}`,
        exports: entry.exports,
        outputs: entry.outputs.map(toOutput),
        meta: { runMs: 1, versions: {}, profile: 'full', seed: 0, createdAt: '2026-11-21T00:00:00.000Z' },
      });
    }
  }
  return results;
}

/** Stylesheets are large and tested apart: the fixtures keep the markup only. */
function elideStyles(html: string): string {
  return html.replace(/<style>[\s\S]*?<\/style>/g, '<style>…</style>').replace(/(data:image\/[a-z+]+;base64,)[^"]+/g, '$1…');
}

async function runFixture(dir: string): Promise<{ html: string; messages: unknown[] }> {
  const input = path.join(dir, 'input.md');
  const file = new VFile({ path: path.relative(fixtures, input), value: readFileSync(input, 'utf8') });
  const doc = parseDocument(file);
  const graph = buildGraph(doc);
  const exports = exportNames(await keyCells(doc.cells, graph.order, { docPath: input, projectRoot, profile: 'full', seed: 0, runtimePath }));
  const optionsFile = path.join(dir, 'options.json');
  const options: WeaveOptions = existsSync(optionsFile)
    ? (JSON.parse(readFileSync(optionsFile, 'utf8')) as WeaveOptions)
    : { mode: 'build' };
  const bibliography = await readBibliographies(file, doc.tree, doc.frontMatter, input, (p) => readFileSync(p));
  // Fixtures keep the markup, not shiki's tokens: highlighting is on only where options.json says `"highlight": true`.
  const highlight = (options as { highlight?: unknown }).highlight === true ? undefined : false;
  const html = await weave(doc, readResults(dir), { ...options, exports, bibliography, highlight });
  const messages = file.messages.map((m) => ({
    rule: m.ruleId,
    place: `${m.line ?? '?'}:${m.column ?? '?'}`,
    reason: m.reason,
  }));
  return { html: elideStyles(html), messages };
}

const cases = readdirSync(fixtures).filter(
  (name) =>
    existsSync(path.join(fixtures, name, 'input.md')) &&
    (existsSync(path.join(fixtures, name, 'expected.html')) || existsSync(path.join(fixtures, name, 'messages.json')) || update),
);

describe('fixtures', () => {
  it('finds the fixture folders', () => {
    expect(cases.length).toBeGreaterThanOrEqual(9);
  });

  for (const name of cases) {
    const dir = path.join(fixtures, name);
    if (name.startsWith('type-error')) continue; // type-checked in typecheck.test.ts
    it(name, async () => {
      const { html, messages } = await runFixture(dir);
      const htmlFile = path.join(dir, 'expected.html');
      const messagesFile = path.join(dir, 'messages.json');
      if (update) {
        writeFileSync(htmlFile, html);
        writeFileSync(messagesFile, `${JSON.stringify(messages, null, 2)}\n`);
        return;
      }
      expect(html).toBe(readFileSync(htmlFile, 'utf8'));
      expect(messages).toEqual(JSON.parse(readFileSync(messagesFile, 'utf8')));
    });
  }
});

describe('weave', () => {
  it('writes one self-contained file: KaTeX fonts as woff2 data URIs, print rules, no external URLs', async () => {
    const dir = path.join(fixtures, 'full');
    const doc = parseDocument(new VFile({ path: 'full/input.md', value: readFileSync(path.join(dir, 'input.md'), 'utf8') }));
    const html = await weave(doc, readResults(dir), { mode: 'build' });
    expect(html).toMatch(/font-family:KaTeX_Main;[^}]*src:url\(data:font\/woff2;base64,[A-Za-z0-9+/]+=*\) format\("woff2"\)\}/);
    expect(html).not.toMatch(/url\((?!data:)/);
    expect(html).not.toMatch(/<(script|link)\b/);
    expect(html).toContain('@media print');
    expect(html).toContain('size: A4');
  });

  it('does not change the parsed tree, so a document can be woven twice', async () => {
    const dir = path.join(fixtures, 'full');
    const doc = parseDocument(new VFile({ path: 'full/input.md', value: readFileSync(path.join(dir, 'input.md'), 'utf8') }));
    const before = JSON.stringify(doc.tree);
    const first = await weave(doc, readResults(dir), { mode: 'build' });
    expect(JSON.stringify(doc.tree)).toBe(before);
    expect(await weave(doc, readResults(dir), { mode: 'build' })).toBe(first);
  });

  it('links figures by URL when given links, and inlining them again gives the self-contained page byte for byte', async () => {
    const dir = path.join(fixtures, 'full');
    const text = readFileSync(path.join(dir, 'input.md'), 'utf8');
    const results = readResults(dir);
    // A PNG and an SVG of real bytes (every byte value), beside the fixture's own figures.
    const bytes = Uint8Array.from({ length: 3000 }, (_, i) => (i * 37) % 256);
    const first = [...results.values()].find((r) => r.outputs?.some((o) => o.kind === 'figure'))!;
    first.outputs!.push({ kind: 'figure', name: 'extra-png', ext: 'png', data: bytes }, { kind: 'figure', name: 'extra-svg', ext: 'svg', data: new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>') });
    const figures = [...results.values()].flatMap((r) => (r.outputs ?? []).filter((o): o is FigureOutput => o.kind === 'figure'));
    expect(figures.length).toBeGreaterThanOrEqual(3);
    const woven = (links?: FigureLinks) => weave(parseDocument(new VFile({ path: 'full/input.md', value: text })), results, { mode: 'build', sourceLines: true, figures: links });
    const inlined = await woven();
    const links = figureLinks();
    const linked = await woven(links);
    // The linked page holds no image data, only URLs of the figures by content hash.
    expect(linked).not.toContain('data:image/');
    for (const figure of figures) expect(linked).toContain(`<img src="/__preview/figures/${sha256(figure.data)}.${figure.ext}"`);
    expect([...links.figures.keys()].sort()).toEqual([...new Set(figures.map((f) => `${sha256(f.data)}.${f.ext}`))].sort());
    expect(linked.length).toBeLessThan(inlined.length);
    // Both ways are exact.
    expect(inlineFigures(linked, links.figures)).toBe(inlined);
    expect(linkFigures(inlined, figures, figureLinks())).toBe(linked);
  });
});
