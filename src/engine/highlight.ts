/**
 * Syntax highlighting at build time: every displayed code block and every cell's code is
 * tokenised by shiki (TextMate grammars, the JavaScript regex engine: no WASM, no client
 * JavaScript) with the `github-light` theme, whose colours are inline `style="color:…"` on
 * the token spans: they need no stylesheet and print as they show (dark enough on white).
 *
 * Highlighting a first block costs shiki's start-up (grammar regexes, ≈ 0.3–0.6 s), so the
 * tokens of each (language, code) are kept in a content-addressed cache: a rebuild whose
 * code blocks did not change loads no highlighter at all. `check` does not highlight (it
 * writes no HTML). A language shiki does not know is shown plain.
 */
import { createRequire } from 'node:module';
import type { Element, ElementContent } from 'hast';
import { toHtml } from 'hast-util-to-html';
import { sha256 } from './digest.ts';
import type { Effects } from './effects.ts';

export const THEME = 'github-light';

/** Tokens of one block: the children of its `<code>` element. */
export type Tokens = ElementContent[];

/** Where highlighted blocks are kept between builds (build.ts backs it with a file). */
export interface HighlightCache {
  get(key: string): Tokens | undefined;
  set(key: string, tokens: Tokens): void;
}

export function memoryHighlightCache(): HighlightCache & { entries: Map<string, Tokens> } {
  const entries = new Map<string, Tokens>();
  return { entries, get: (key) => entries.get(key), set: (key, tokens) => void entries.set(key, tokens) };
}

let shikiVersion: string | undefined;
function version(): string {
  shikiVersion ??= (createRequire(import.meta.url)('shiki/package.json') as { version: string }).version;
  return shikiVersion;
}

/** Cache key of a block: shiki's version, the theme, the language and the code. */
export function highlightKey(lang: string, code: string): string {
  return sha256(`shiki@${version()}\0${THEME}\0${lang}\0${code}`);
}

/**
 * Tokens for each block, by `highlightKey`; blocks in languages shiki does not know are
 * left out (shown plain). Misses are highlighted and stored in `cache`.
 */
export async function highlightBlocks(blocks: { lang: string; code: string }[], cache: HighlightCache): Promise<Map<string, Tokens>> {
  const out = new Map<string, Tokens>();
  const misses: { key: string; lang: string; code: string }[] = [];
  for (const { lang, code } of blocks) {
    const key = highlightKey(lang, code);
    if (out.has(key)) continue;
    const hit = cache.get(key);
    if (hit) out.set(key, hit);
    else misses.push({ key, lang, code });
  }
  if (misses.length === 0) return out;

  const [{ createHighlighterCore }, { createJavaScriptRegexEngine }, { bundledLanguages, bundledLanguagesAlias }, { bundledThemes }] =
    await Promise.all([import('shiki/core'), import('shiki/engine/javascript'), import('shiki/langs'), import('shiki/themes')]);
  const resolve = (lang: string): string | undefined => {
    const id = lang.toLowerCase();
    if (id in bundledLanguages) return id;
    const alias = (bundledLanguagesAlias as Record<string, unknown>)[id];
    return alias === undefined ? undefined : Object.keys(bundledLanguages).find((name) => (bundledLanguages as Record<string, unknown>)[name] === alias);
  };
  const wanted = new Map<string, string>();
  for (const miss of misses) {
    const id = resolve(miss.lang);
    if (id) wanted.set(miss.lang, id);
  }
  if (wanted.size === 0) return out;
  const ids = [...new Set(wanted.values())];
  const highlighter = await createHighlighterCore({
    themes: [bundledThemes[THEME]],
    langs: ids.map((id) => (bundledLanguages as Record<string, () => Promise<unknown>>)[id]!()) as never[],
    engine: createJavaScriptRegexEngine(),
  });
  try {
    for (const miss of misses) {
      const id = wanted.get(miss.lang);
      if (!id) continue;
      // No time limit: a line that takes long to tokenise (regexes compile on first use) must not come out as one plain span.
      const root = highlighter.codeToHast(miss.code, { lang: id, theme: THEME, tokenizeTimeLimit: 0 });
      const tokens = codeChildren(root.children as ElementContent[]);
      if (!tokens) continue;
      cache.set(miss.key, tokens);
      out.set(miss.key, tokens);
    }
  } finally {
    highlighter.dispose();
  }
  return out;
}

/**
 * The HTML of a block's tokens, printed once per tokens object: the page holds them as one
 * raw node instead of some 25 000 token elements that every later stage would walk and the
 * serialiser print (a long-lived process, the preview, gets the same objects from its cache
 * on every rebuild).
 */
export function tokensHtml(tokens: Tokens): string {
  let html = printed.get(tokens);
  if (html === undefined) {
    html = toHtml(tokens);
    printed.set(tokens, html);
  }
  return html;
}
const printed = new WeakMap<Tokens, string>();

/** shiki renders `pre.shiki > code > span.line…`: the children of that `code`, without shiki's classes. */
function codeChildren(nodes: ElementContent[]): Tokens | undefined {
  const pre = nodes.find((n): n is Element => n.type === 'element' && n.tagName === 'pre');
  const code = pre?.children.find((n): n is Element => n.type === 'element' && n.tagName === 'code');
  return code?.children;
}

/**
 * A cache kept in one JSON file (build.ts: `node_modules/.cache/report/highlight.json`).
 * `save()` writes it only when a block was highlighted, keeping the blocks used since the
 * cache was read (one build's, or a preview session's); an unreadable or foreign file is an
 * empty cache.
 */
export async function fileHighlightCache(
  file: string,
  effects: Pick<Effects, 'readFile' | 'writeFileAtomic'>,
): Promise<HighlightCache & { save(): Promise<void> }> {
  let stored: Record<string, Tokens> = {};
  try {
    const parsed = JSON.parse(new TextDecoder().decode(await effects.readFile(file))) as { format?: unknown; entries?: Record<string, Tokens> };
    if (parsed.format === CACHE_FORMAT && parsed.entries && typeof parsed.entries === 'object') stored = parsed.entries;
  } catch {
    // missing or unreadable: start empty
  }
  const used = new Map<string, Tokens>();
  let dirty = false;
  return {
    get(key) {
      const tokens = used.get(key) ?? (Object.hasOwn(stored, key) ? stored[key] : undefined);
      if (tokens) used.set(key, tokens);
      return tokens;
    },
    set(key, tokens) {
      used.set(key, tokens);
      dirty = true;
    },
    async save() {
      if (!dirty) return;
      await effects.writeFileAtomic(file, JSON.stringify({ format: CACHE_FORMAT, entries: Object.fromEntries(used) }));
      dirty = false;
    },
  };
}

const CACHE_FORMAT = 1;
