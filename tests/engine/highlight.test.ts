/**
 * Build-time syntax highlighting: shiki tokens with inline colours that read (and print) on
 * white, a content-addressed cache so an unchanged rebuild loads no highlighter, `check`
 * highlighting nothing. The woven markup is in tests/fixtures/highlight.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ElementContent } from 'hast';
import { afterEach, describe, expect, it } from 'vitest';
import { build } from '../../src/engine/build.ts';
import { nodeEffects } from '../../src/engine/effects.ts';
import { fileHighlightCache, highlightBlocks, highlightKey, memoryHighlightCache, tokensHtml } from '../../src/engine/highlight.ts';
import { toHtml } from 'hast-util-to-html';
import { memoryEffects } from '../support/memory-effects.ts';
import { fakeExecutor } from '../support/fake-executor.ts';

/** [text, colour] of each token span. */
function spans(nodes: ElementContent[]): [string, string][] {
  const out: [string, string][] = [];
  const walk = (node: ElementContent): void => {
    if (node.type !== 'element') return;
    const style = String(node.properties?.style ?? '');
    const text = node.children.map((c) => (c.type === 'text' ? c.value : '')).join('');
    if (style && text) out.push([text.trim(), style.replace(/^color:/, '')]);
    node.children.forEach(walk);
  };
  nodes.forEach(walk);
  return out;
}

/** WCAG contrast ratio of a #rrggbb colour against white. */
function contrastOnWhite(hex: string): number {
  const channel = (i: number): number => {
    const c = parseInt(hex.slice(1 + 2 * i, 3 + 2 * i), 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  };
  const luminance = 0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2);
  return 1.05 / (luminance + 0.05);
}

describe('highlighting', () => {
  it('tokenises TypeScript with keyword, string and comment colours that read on white (and print)', async () => {
    const code = "import { x } from 'cell:a';\nconst n: number = 3; // a comment\n";
    const tokens = (await highlightBlocks([{ lang: 'ts', code }], memoryHighlightCache())).get(highlightKey('ts', code))!;
    const found = spans(tokens);
    const colour = (text: string) => found.find(([t]) => t === text)?.[1];
    expect(colour('const')).toBe(colour('import'));
    expect(colour("'cell:a'")).not.toBe(colour('const'));
    expect(colour('// a comment')).toBeDefined();
    expect(colour('// a comment')).not.toBe(colour('const'));
    for (const [, hex] of found) expect(contrastOnWhite(hex), hex).toBeGreaterThanOrEqual(4.5);
  });

  it('reads blocks from the cache without highlighting again, and skips languages shiki does not know', async () => {
    const cache = memoryHighlightCache();
    const blocks = [{ lang: 'sh', code: 'npm test' }, { lang: 'nosuchlang', code: 'x' }];
    const first = await highlightBlocks(blocks, cache);
    expect([...first.keys()]).toEqual([highlightKey('sh', 'npm test')]);
    expect([...cache.entries.keys()]).toEqual([highlightKey('sh', 'npm test')]);
    // A planted entry is returned as is: the cache, not shiki, answered.
    const planted: ElementContent[] = [{ type: 'text', value: 'from the cache' }];
    cache.set(highlightKey('sh', 'npm test'), planted);
    expect((await highlightBlocks(blocks, cache)).get(highlightKey('sh', 'npm test'))).toBe(planted);
  });

  it('prints a block’s tokens once (the page holds them as one raw node), as the serialiser would', async () => {
    const code = 'const n = 1;';
    const tokens = (await highlightBlocks([{ lang: 'ts', code }], memoryHighlightCache())).get(highlightKey('ts', code))!;
    const html = tokensHtml(tokens);
    expect(html).toBe(toHtml(tokens));
    expect(html).toMatch(/^<span class="line"><span style="color:#[0-9A-F]{6}">const<\/span>/);
    expect(tokensHtml(tokens)).toBe(html);
  });

  it('keys blocks by language and code', () => {
    expect(highlightKey('ts', 'a')).not.toBe(highlightKey('js', 'a'));
    expect(highlightKey('ts', 'a')).not.toBe(highlightKey('ts', 'a '));
    expect(highlightKey('ts', 'a')).toBe(highlightKey('ts', 'a'));
  });

  it('a file cache is written only when something was highlighted, and keeps only the blocks used', async () => {
    const effects = memoryEffects();
    const file = '/cache/highlight.json';
    const one = await fileHighlightCache(file, effects);
    one.set('a', [{ type: 'text', value: 'A' }]);
    one.set('b', [{ type: 'text', value: 'B' }]);
    await one.save();
    const two = await fileHighlightCache(file, effects);
    expect(two.get('a')).toEqual([{ type: 'text', value: 'A' }]);
    await two.save(); // nothing new: not rewritten, b survives
    expect(JSON.parse(new TextDecoder().decode(effects.files.get(file)!)).entries).toHaveProperty('b');
    two.set('c', [{ type: 'text', value: 'C' }]);
    await two.save();
    expect(Object.keys(JSON.parse(new TextDecoder().decode(effects.files.get(file)!)).entries).sort()).toEqual(['a', 'c']);
    // A cache kept for a session (the preview's) serves what it was given since it was read.
    two.set('d', [{ type: 'text', value: 'D' }]);
    expect(two.get('d')).toEqual([{ type: 'text', value: 'D' }]);
    effects.files.set(file, new TextEncoder().encode('not json'));
    expect((await fileHighlightCache(file, effects)).get('a')).toBeUndefined();
  });
});

describe('highlighting in a build', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('highlights displayed blocks and cells; an unchanged rebuild reuses the cache file untouched', async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'report-hl-'));
    await writeFile(path.join(dir, 'doc.md'), "```ts\nconst shown = 1;\n```\n\n```ts run id=a\nexport const a: number = 1;\n```\n");
    const run = () =>
      build(
        { docPath: path.join(dir!, 'doc.md'), projectRoot: dir!, executor: fakeExecutor({ a: () => ({ exports: { a: 1 } }) }), outDir: path.join(dir!, 'build'), pdf: false },
        nodeEffects({ stdout: { write: () => {}, isTTY: false } }),
      );
    await run();
    const html = await readFile(path.join(dir, 'build', 'doc.html'), 'utf8');
    expect(html).toMatch(/<pre class="highlight"><code class="language-ts"><span class="line"><span style="color:#[0-9A-F]{6}">const<\/span>/);
    expect(html).toMatch(/<summary>Code: a<\/summary><pre class="highlight">/);
    const cacheFile = path.join(dir, 'node_modules', '.cache', 'report', 'highlight.json');
    const before = await stat(cacheFile);
    expect(Object.keys(JSON.parse(await readFile(cacheFile, 'utf8')).entries)).toHaveLength(2);
    await run();
    expect((await stat(cacheFile)).mtimeMs).toBe(before.mtimeMs);
    expect(await readFile(path.join(dir, 'build', 'doc.html'), 'utf8')).toBe(html);
  });
});
