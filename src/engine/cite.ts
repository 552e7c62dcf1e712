/**
 * Citations, in Pandoc's syntax, resolved against BibTeX files named in the front matter.
 *
 *     ---
 *     bibliography: references.bib      # or a list; paths relative to the document
 *     ---
 *     GANs [@goodfellow2014] …           → (Goodfellow et al., 2014)
 *     … [see @ho2020, p. 4; @lipman2023]  → (see Ho et al., 2020, p. 4; Lipman et al., 2023)
 *     @kingmaba2015 introduced Adam       → Kingma & Ba (2015) introduced Adam
 *     … in 2015 [-@kingmaba2015]          → (2015)
 *
 * `@fig-`, `@tbl-` and `@eq-` are cross-references (refs.ts), never citations. A key is
 * Pandoc's: it starts with a letter, digit or `_` and may hold `:.#$%&-+?<>~/` inside
 * (trailing punctuation ends it). An `@` after a letter or digit (an e-mail address) is
 * not a citation.
 *
 * Rendering is citation-js (BibTeX parser + citeproc-js) with an author–year CSL style
 * (APA by default). Every citation links to its entry in a "References" section appended
 * at the end of the document (or filling a last, empty "References" heading); entries
 * are those cited, sorted by the style. Problems: `unknown-citation` at the `@` of a key
 * the bibliography lacks, `bad-bibliography` at the front matter's `bibliography` line
 * when a file cannot be read or parsed.
 *
 * citation-js loads only when the document names a bibliography, and its CSL processor only
 * when citations are rendered (`check` resolves keys without it).
 */
import type { CSL, InputOptions } from '@citation-js/core';
import type { Element, ElementContent } from 'hast';
import { fromHtml } from 'hast-util-from-html';
import type { Heading, Parent, PhrasingContent, Root, RootContent, Text } from 'mdast';
import { toString } from 'mdast-util-to-string';
import path from 'node:path';
import type { Point } from 'unist';
import { visit } from 'unist-util-visit';
import type { VFile } from 'vfile';
import { sha256 } from './digest.ts';
import { escapeHtml } from './escape-html.ts';

const SOURCE = 'report';

/** A bibliography file named in the front matter, read (or not) from disk. */
export interface BibliographySource {
  /** As written in the front matter. */
  name: string;
  /** Absolute path. */
  path: string;
  text?: string;
  /** Why it could not be read. */
  error?: string;
  /** The front matter line that names it. */
  place?: Point;
}

/**
 * Reads the files the front matter's `bibliography` names (a string or a list of strings,
 * relative to the document). A wrong type is a `bad-frontmatter` message; an unreadable
 * file is returned with `error` (weave reports it as `bad-bibliography`). `read` is the
 * effects' readFile (tests pass a synchronous stand-in).
 */
export async function readBibliographies(
  file: VFile,
  tree: Root,
  frontMatter: Record<string, unknown>,
  docPath: string,
  read: (path: string) => Promise<Uint8Array> | Uint8Array,
): Promise<BibliographySource[] | undefined> {
  const value = frontMatter.bibliography;
  if (value === undefined || value === null) return undefined;
  const place = frontMatterLine(tree, 'bibliography');
  const names = typeof value === 'string' ? [value] : Array.isArray(value) && value.every((v) => typeof v === 'string') ? (value as string[]) : undefined;
  if (names === undefined || names.length === 0) {
    file.message('front matter "bibliography" must be a file name (e.g. references.bib) or a list of file names', {
      place,
      ruleId: 'bad-frontmatter',
      source: SOURCE,
    });
    return undefined;
  }
  const sources: BibliographySource[] = [];
  for (const name of names) {
    const full = path.resolve(path.dirname(docPath), name);
    try {
      sources.push({ name, path: full, text: new TextDecoder().decode(await read(full)), place });
    } catch (error) {
      const code = (error as { code?: string }).code;
      sources.push({ name, path: full, error: code === 'ENOENT' ? 'no such file' : (error as Error).message, place });
    }
  }
  return sources;
}

/** The Markdown point of the `<key>:` line of the YAML front matter (its `---` block when absent). */
function frontMatterLine(tree: Root, key: string): Point | undefined {
  const node = tree.children[0];
  if (!node || node.type !== 'yaml' || !node.position) return undefined;
  const index = node.value.split('\n').findIndex((line) => line.startsWith(`${key}:`));
  if (index < 0) return node.position.start;
  return { line: node.position.start.line + 1 + index, column: 1 };
}

/** One cited item: `[prefix -@key suffix]`. */
interface CiteItem {
  key: string;
  prefix: string;
  suffix: string;
  suppressAuthor: boolean;
}

/** One citation: a bracketed group or an in-text `@key`, in document order. */
interface Citation {
  items: CiteItem[];
  inText: boolean;
  /** The node whose hChildren receive the rendered citation. */
  node: PhrasingContent;
}

/** Parsed bibliography with citeproc, ready to render. */
export interface Library {
  /** False when a source could not be read or parsed (an unknown key may be in it: not reported). */
  complete: boolean;
  has(key: string): boolean;
  keys(): string[];
  /** Renders the citations in document order (HTML fragments) and the entries cited. */
  render(citations: { items: CiteItem[]; inText: boolean }[]): Promise<{ citations: string[]; entries: { key: string; html: string }[] }>;
}

/**
 * Parses the sources with citation-js. A source that cannot be read or parsed is a
 * `bad-bibliography` message; the library holds the entries of the others.
 */
export async function loadLibrary(sources: BibliographySource[], file: VFile, style = 'apa'): Promise<Library> {
  const { Cite, plugins } = await import('@citation-js/core');
  await import('@citation-js/plugin-bibtex');
  const data: CSL[] = [];
  const seen = new Set<string>();
  let complete = true;
  for (const source of sources) {
    const problem = (reason: string): void => {
      complete = false;
      file.message(`bibliography ${source.name}: ${reason}`, { place: source.place, ruleId: 'bad-bibliography', source: SOURCE });
    };
    if (source.text === undefined) {
      problem(`cannot be read (${source.error ?? 'unknown error'}); the path is relative to the document`);
      continue;
    }
    let entries: CSL[];
    try {
      // Parsed once per text (a long-lived process weaves on every save); each library gets its own copy.
      let parsed = parsedSources.get(source.text);
      if (parsed === undefined) {
        parsed = new Cite(source.text, { forceType: '@bibtex/text' } as Partial<InputOptions> as InputOptions).data as CSL[];
        if (parsedSources.size >= RENDERS_KEPT) parsedSources.clear();
        parsedSources.set(source.text, parsed);
      }
      entries = structuredClone(parsed);
    } catch (error) {
      problem(`is not valid BibTeX: ${firstLines((error as Error).message)}`);
      continue;
    }
    if (entries.length === 0 && source.text.trim() !== '') {
      problem('holds no BibTeX entry (expected entries like @article{key, author = {…}, title = {…}, year = {…}})');
      continue;
    }
    for (const entry of entries) {
      const id = String(entry.id);
      if (seen.has(id)) {
        file.message(`bibliography ${source.name}: key "${id}" is defined twice; keys must be unique, rename or remove one`, {
          place: source.place,
          ruleId: 'bad-bibliography',
          source: SOURCE,
        });
        continue;
      }
      seen.add(id);
      data.push(entry);
    }
  }
  const byKey = new Map(data.map((entry) => [String(entry.id), entry]));

  return {
    complete,
    has: (key) => byKey.has(key),
    keys: () => [...byKey.keys()],
    async render(citations) {
      const cited = [...new Set(citations.flatMap((c) => c.items.map((i) => i.key)))].filter((k) => byKey.has(k));
      if (cited.length === 0) return { citations: citations.map(() => ''), entries: [] };
      // The same citations of the same entries render the same: remembered (a long-lived
      // preview re-weaves on every save; citeproc took ≈ 0.7 s of each on the report).
      const lookup = sha256(JSON.stringify([style, cited.map((k) => byKey.get(k)), citations.map(({ items, inText }) => [items, inText])]));
      const remembered = renders.get(lookup);
      if (remembered !== undefined) return structuredClone(remembered);
      const result = await renderWithCiteproc(cited, citations);
      if (renders.size >= RENDERS_KEPT) renders.delete(renders.keys().next().value!);
      renders.set(lookup, structuredClone(result));
      return result;
    },
  };

  async function renderWithCiteproc(cited: string[], citations: { items: CiteItem[]; inText: boolean }[]): Promise<{ citations: string[]; entries: { key: string; html: string }[] }> {
    // citeproc (the CSL plugin) loads only to render: `check` resolves keys without it.
    await import('@citation-js/plugin-csl');
    const engine = plugins.config.get('@csl').engine(cited.map((k) => byKey.get(k)!), style, 'en-US', 'html');
    const cluster = (id: string, items: CiteItem[], mode?: string) => ({
      citationID: id,
      citationItems: items.map((item) => ({
        id: item.key,
        ...(item.prefix ? { prefix: item.prefix } : {}),
        ...(item.suffix ? { suffix: item.suffix } : {}),
        ...(item.suppressAuthor ? { 'suppress-author': true } : {}),
      })),
      properties: { noteIndex: 0, ...(mode ? { mode } : {}) },
    });
    // In-text `@key [p. 5]` is "Author (2002, p. 5)": the author alone, then the year
    // and suffix with the author suppressed (citeproc's composite mode repeats the suffix).
    const clusters = citations.flatMap((citation, index) =>
      citation.inText
        ? [cluster(`a${index}`, citation.items.map((i) => ({ ...i, suffix: '' })), 'author-only'), cluster(`c${index}`, citation.items.map((i) => ({ ...i, suppressAuthor: true })))]
        : [cluster(`c${index}`, citation.items)],
    );
    const rendered = engine.rebuildProcessorState(clusters, 'html', []) as [string, number, string][];
    const text = new Map(rendered.map(([id, , html]) => [id, html]));
    // The order citeproc sorted each cluster's items in (to link each item to its entry).
    const sorted = (index: number): string[] =>
      (engine.registry?.citationreg?.citationById?.[`c${index}`]?.sortedItems ?? []).map(
        (pair: [{ id: unknown }, unknown]) => String(pair[0].id),
      );
    // URLs and DOIs in entries become links.
    engine.opt.development_extensions.wrap_url_and_doi = true;
    const [meta, bodies] = engine.makeBibliography() as [{ entry_ids: string[][] }, string[]];
    return {
      citations: citations.map((citation, index) => {
        const html = citation.inText ? `${text.get(`a${index}`) ?? ''} ${text.get(`c${index}`) ?? ''}` : (text.get(`c${index}`) ?? '');
        return linkItems(html, sorted(index), citation);
      }),
      entries: bodies.map((html, index) => ({ key: String(meta.entry_ids[index]?.[0]), html: html.trim() })),
    };
  }
}

/** BibTeX texts → their entries as citation-js parsed them (a few documents' worth). */
const parsedSources = new Map<string, CSL[]>();

/** Rendered citations by what they were rendered from (see `render`); a few documents' worth. */
const renders = new Map<string, { citations: string[]; entries: { key: string; html: string }[] }>();
const RENDERS_KEPT = 8;

/** The parser's first line ("expected … at line 2 col 1:") without the excerpt that follows. */
function firstLines(message: string): string {
  const first = message.split('\n').find((l) => l.trim() !== '') ?? message;
  return first.trim().replace(/:$/, '');
}

/**
 * Links the items of a rendered citation to their entries. An in-text or single-item
 * citation is one link; a group whose `; `-separated parts match its sorted items one to
 * one links each part; a group citeproc collapsed (same authors: "Ho et al., 2020a,
 * 2020b") links the whole group to its first entry.
 */
function linkItems(html: string, sortedKeys: string[], citation: { items: CiteItem[]; inText: boolean }): string {
  const keys = sortedKeys.length === citation.items.length ? sortedKeys : citation.items.map((i) => i.key);
  const link = (inner: string, key: string): string => `<a href="#ref-${escapeHtml(key)}" class="cite">${inner}</a>`;
  if (citation.inText || keys.length === 1) return link(html, keys[0]!);
  const match = /^\((.*)\)$/s.exec(html);
  // `; ` separates items; `&#38; ` (an escaped ampersand) does not.
  const parts = match ? match[1]!.split(/(?<!&#?\w+); /) : [];
  if (match && parts.length === keys.length) return `(${parts.map((part, i) => link(part, keys[i]!)).join('; ')})`;
  return link(html, keys[0]!);
}


const KEY = String.raw`[\p{L}\p{N}_](?:[\p{L}\p{N}_]|[:.#$%&\-+?<>~/](?=[\p{L}\p{N}_]))*`;
/** `[…@key…]` with no nested brackets; parsed item by item below. */
const BRACKETED = /\[([^[\]]*?@[^[\]]*?)\]/gu;
const ITEM = new RegExp(String.raw`^(.*?)(-?)@(${KEY})(.*)$`, 'su');
/** A bare `@key` not after a letter, digit or `@`, optionally followed by ` [suffix]`. */
const IN_TEXT = new RegExp(String.raw`(?<![\p{L}\p{N}_@])@(${KEY})(?:\s\[([^[\]@]*)\])?`, 'gu');
const CROSS_REF = /^(fig|tbl|eq)-/;

interface Match {
  start: number;
  end: number;
  inText: boolean;
  items: (CiteItem & { offset: number })[];
}

/** Citations in a text, in order, not overlapping. */
function findCitations(value: string): Match[] {
  const found: Match[] = [];
  for (const m of value.matchAll(BRACKETED)) {
    const inner = m[1]!;
    const items: Match['items'] = [];
    let offset = (m.index ?? 0) + 1;
    let ok = true;
    for (const part of inner.split(';')) {
      const item = ITEM.exec(part);
      if (!item || CROSS_REF.test(item[3]!) || /[\p{L}\p{N}_]$/u.test(item[1]!)) {
        ok = false;
        break;
      }
      items.push({
        key: item[3]!,
        prefix: item[1]!.trim() === '' ? '' : `${item[1]!.trim()} `,
        suffix: item[4]!.trimEnd(),
        suppressAuthor: item[2] === '-',
        offset: offset + item[1]!.length + item[2]!.length,
      });
      offset += part.length + 1;
    }
    if (ok && items.length > 0) found.push({ start: m.index ?? 0, end: (m.index ?? 0) + m[0].length, inText: false, items });
  }
  for (const m of value.matchAll(IN_TEXT)) {
    const start = m.index ?? 0;
    if (CROSS_REF.test(m[1]!) || found.some((f) => start >= f.start && start < f.end)) continue;
    const suffix = m[2] === undefined ? '' : `, ${m[2].trim()}`;
    found.push({ start, end: start + m[0].length, inText: true, items: [{ key: m[1]!, prefix: '', suffix, suppressAuthor: false, offset: start }] });
  }
  return found.sort((a, b) => a.start - b.start);
}

declare module 'mdast' {
  interface HeadingData {
    /** Not numbered by remarkSections (still listed in the contents). */
    unnumbered?: boolean;
  }
}

/**
 * unified plugin: citations → linked author–year text; a References section at the end.
 * Without a library (no `bibliography` in the front matter, or none readable) every
 * citation is `unknown-citation`.
 */
export function remarkCitations(options: { library?: Library; bibliographyNamed: boolean; /** false: resolve keys only (check writes no HTML). */ render?: boolean }) {
  const { library } = options;
  return async (tree: Root, file: VFile): Promise<void> => {
    const citations: Citation[] = [];
    const source = String(file.value ?? '').split('\n');
    visit(tree, 'text', (node: Text, index, parent: Parent | undefined) => {
      if (!parent || index === undefined || parent.type === 'link' || parent.type === 'linkReference') return;
      // Text the engine wrote (an inline value's failure shows its expression, which may hold
      // an `@`) has no position: it is not the author's prose, so it holds no citation.
      if (node.position === undefined) return;
      const matches = findCitations(node.value);
      if (matches.length === 0) return;
      const pieces: PhrasingContent[] = [];
      let last = 0;
      for (const match of matches) {
        const unknown = match.items.filter((item) => !library?.has(item.key));
        for (const item of unknown) {
          const reason = library
            ? `unknown citation @${item.key}: no entry with this key in the bibliography${suggest(item.key, library.keys())}`
            : options.bibliographyNamed
              ? `unknown citation @${item.key}: the bibliography could not be loaded`
              : `unknown citation @${item.key}: the document names no bibliography; add \`bibliography: references.bib\` to the front matter`;
          // An unreadable bibliography was reported once; do not repeat it at every citation.
          if (library?.complete ?? !options.bibliographyNamed) {
            file.message(reason, { place: pointAt(node, item.offset, source), ruleId: 'unknown-citation', source: SOURCE });
          }
        }
        if (unknown.length > 0) continue;
        if (match.start > last) pieces.push(textPiece(node, last, match.start, source));
        const cite: PhrasingContent = {
          type: 'emphasis',
          children: [{ type: 'text', value: node.value.slice(match.start, match.end) }],
          data: { hName: 'span', hProperties: { className: ['citation'], dataCites: match.items.map((i) => i.key).join(' ') } },
        };
        citations.push({ items: match.items, inText: match.inText, node: cite });
        pieces.push(cite);
        last = match.end;
      }
      if (pieces.length === 0) return;
      if (last < node.value.length) pieces.push(textPiece(node, last, node.value.length, source));
      parent.children.splice(index, 1, ...(pieces as typeof parent.children));
      return index + pieces.length;
    });
    if (!library || citations.length === 0 || options.render === false) return;

    const rendered = await library.render(citations);
    citations.forEach((citation, i) => {
      citation.node.data = { ...citation.node.data, hChildren: fragment(rendered.citations[i]!) };
    });
    const entries: Element[] = rendered.entries.map(({ key, html }) => {
        const entry = fragment(html).find((n): n is Element => n.type === 'element') ?? {
          type: 'element',
          tagName: 'div',
          properties: {},
          children: fragment(html),
        };
        entry.properties = { ...entry.properties, id: `ref-${key}`, role: 'listitem' };
        return entry;
    });
    appendReferences(tree, entries);
  };
}

/** Appends `## References` and the list, or fills a last "References"/"Bibliography" heading with nothing after it. */
function appendReferences(tree: Root, entries: Element[]): void {
  const last = tree.children.at(-1);
  const body: RootContent = {
    type: 'paragraph',
    children: [],
    data: { hName: 'div', hProperties: { id: 'refs', className: ['references', 'csl-bib-body'], role: 'list' }, hChildren: entries },
  };
  if (last?.type === 'heading' && /^(references|bibliography)$/i.test(toString(last).trim())) {
    tree.children.push(body);
    return;
  }
  const heading: Heading = { type: 'heading', depth: 2, children: [{ type: 'text', value: 'References' }], data: { unnumbered: true } };
  tree.children.push(heading, body);
}

function fragment(html: string): ElementContent[] {
  return fromHtml(html, { fragment: true }).children as ElementContent[];
}

/** A slice of a text node that keeps its position (later plugins report at it). */
function textPiece(node: Text, start: number, end: number, source: string[]): Text {
  const piece: Text = { type: 'text', value: node.value.slice(start, end) };
  const from = pointAt(node, start, source);
  const to = pointAt(node, end, source);
  if (from && to) piece.position = { start: from, end: to };
  return piece;
}

/** The Markdown point of character `offset` inside a text node (soft breaks count as lines). */
function pointAt(node: Text, offset: number, source?: string[]): Point | undefined {
  const start = node.position?.start;
  if (!start) return undefined;
  const before = node.value.slice(0, offset);
  const lines = before.split('\n');
  if (lines.length === 1) return { line: start.line, column: start.column + offset };
  const line = start.line + lines.length - 1;
  const column = (lines.at(-1) as string).length + 1;
  // Continuation lines lose their indentation (or `> `) in the text value: find the line
  // in the source to count it.
  const whole = node.value.split('\n')[lines.length - 1] as string;
  const at = whole === '' ? -1 : (source?.[line - 1]?.indexOf(whole) ?? -1);
  return { line, column: at >= 0 ? at + column : column };
}

/** "; did you mean @x?" for the closest key (edit distance ≤ 2), else "". */
function suggest(key: string, keys: string[]): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of keys) {
    const d = distance(key, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best ? `; did you mean @${best}?` : '';
}

function distance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3;
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length]!;
}
