/**
 * Figures by URL: the preview's page links each figure as `/__preview/figures/<sha256>.<ext>`
 * (served from memory by preview-server.ts) instead of inlining it as a base64 data URI.
 * On the report the inlined page is 19 MB, 17 MB of it figures: serialising, sending and
 * diffing that on every save was most of a prose edit's cost, and the figures do not change.
 *
 * The page a build writes (build/<doc>.html) stays self-contained: `inlineFigures` turns the
 * linked page into the very bytes `weave` gives without links (tested), and `linkFigures`
 * turns a remembered self-contained page (page-cache.ts) into the linked one.
 */
import { sha256 } from './digest.ts';
import type { FigureOutput } from './types.ts';

/** Where the preview serves figures; `<sha256>.<png|svg>` follows. */
export const FIGURE_ROUTE = '/__preview/figures/';
/** A figure file name as linked and served: the sha256 of its bytes and its extension. */
export const FIGURE_FILE = /^([0-9a-f]{64})\.(png|svg)$/;

/** The figures one page links: `url` names a figure and remembers it, `figures` are those named so far. */
export interface FigureLinks {
  url(figure: FigureOutput): string;
  /** The figures linked, by file name (`<sha256>.<ext>`). */
  readonly figures: ReadonlyMap<string, FigureOutput>;
}

/** The MIME type of a figure's image. */
export function figureMime(ext: string): string {
  return ext === 'svg' ? 'image/svg+xml' : 'image/png';
}

/** A figure as a data URI: what a self-contained page's `<img src>` holds. */
export function dataUri(figure: FigureOutput): string {
  return `data:${figureMime(figure.ext)};base64,${Buffer.from(figure.data.buffer, figure.data.byteOffset, figure.data.byteLength).toString('base64')}`;
}

/** sha256 of figure bytes, by the bytes' identity (the preview's results memo keeps them from one save to the next). */
const hashes = new WeakMap<Uint8Array, string>();
function figureHash(data: Uint8Array): string {
  let hash = hashes.get(data);
  if (hash === undefined) {
    hash = sha256(data);
    hashes.set(data, hash);
  }
  return hash;
}

/** The file name a figure is linked and served under. */
export function figureFile(figure: FigureOutput): string {
  return `${figureHash(figure.data)}.${figure.ext === 'svg' ? 'svg' : 'png'}`;
}

/** A new set of links for one page. */
export function figureLinks(): FigureLinks {
  const figures = new Map<string, FigureOutput>();
  return {
    url(figure) {
      const file = figureFile(figure);
      if (!figures.has(file)) figures.set(file, figure);
      return `${FIGURE_ROUTE}${file}`;
    },
    figures,
  };
}

/*
 * Only `weave`'s own figures can match these: an image element is never written from the
 * document's text (raw HTML is dropped, and text escapes `<`), and `src` is the first
 * attribute renderFigure gives it.
 */
const LINKED = /<img src="\/__preview\/figures\/([0-9a-f]{64}\.(?:png|svg))"/g;
const INLINED = /<img src="data:(image\/png|image\/svg\+xml);base64,([A-Za-z0-9+/=]*)"/g;

/** The linked page `html` with each figure of `figures` inlined as a data URI again: the page `weave` gives without links. */
export function inlineFigures(html: string, figures: ReadonlyMap<string, FigureOutput>): string {
  return html.replace(LINKED, (all, file: string) => {
    const figure = figures.get(file);
    return figure === undefined ? all : `<img src="${dataUri(figure)}"`;
  });
}

/** The self-contained page `html` with each of `figures` linked through `links` instead of inlined. */
export function linkFigures(html: string, figures: Iterable<FigureOutput>, links: FigureLinks): string {
  const byData = new Map<string, FigureOutput>();
  for (const figure of figures) byData.set(dataUri(figure), figure);
  return html.replace(INLINED, (all, mime: string, base64: string) => {
    const figure = byData.get(`data:${mime};base64,${base64}`);
    return figure === undefined ? all : `<img src="${links.url(figure)}"`;
  });
}
