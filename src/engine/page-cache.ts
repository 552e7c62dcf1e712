/**
 * The page a build wove, remembered with a digest of everything it was woven from, so that
 * a build in which nothing changed weaves nothing (on the report the weave takes about a
 * second, most of it rendering citations): the document's text, every cell's key, stored
 * payload checksum and metadata, the bibliography files, the weave options, the engine's
 * own files (src/engine, stylesheets and page script included) and the installed packages
 * (`node_modules/.package-lock.json`, which npm rewrites on every install). The messages the
 * weave gave are remembered with it and given again, and the page on disk must still be the
 * page remembered (its sha256), else it is woven again.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256 } from './digest.ts';
import type { Effects } from './effects.ts';
import type { RecordedMessage } from './recorded-messages.ts';

/** Bumped when what a digest covers or the record's format changes. */
const PAGE_FORMAT = 'literate-report-page/1';

export interface PageRecord {
  format: string;
  digest: string;
  /** sha256 of the page written. */
  html: string;
  /** sha256 of the PDF printed from it, when one was. */
  pdf?: string;
  messages: RecordedMessage[];
}

const engineDir = path.dirname(fileURLToPath(import.meta.url));

const stamps = new WeakMap<Effects, Promise<string>>();

/**
 * sha256 over the engine's own files (this folder and its html/ folder), by name: the code
 * this process runs, so it is read once per process (and per effects).
 */
function engineStamp(effects: Effects): Promise<string> {
  let stamp = stamps.get(effects);
  if (stamp === undefined) {
    stamp = (async () => {
      const parts: [string, string][] = [];
      for (const dir of [engineDir, path.join(engineDir, 'html')]) {
        for (const name of (await effects.readdir(dir)).sort()) {
          if (!/\.(?:ts|js|css|html)$/.test(name)) continue;
          parts.push([path.relative(engineDir, path.join(dir, name)), sha256(await effects.readFile(path.join(dir, name)))]);
        }
      }
      return sha256(JSON.stringify(parts));
    })();
    stamps.set(effects, stamp);
  }
  return stamp;
}

/**
 * sha256 of what parses and weaves a document besides its inputs: the engine's own files and
 * the installed packages (`node_modules/.package-lock.json`, rewritten by every npm install).
 * The parse cache (document.ts) and the page digest both hash it.
 */
export async function toolStamp(effects: Effects, projectRoot: string): Promise<string> {
  return sha256(JSON.stringify([await engineStamp(effects), (await fileSha(effects, path.join(projectRoot, 'node_modules', '.package-lock.json'))) ?? null]));
}

/** The digest of a page's inputs (each part as JSON). */
export function pageDigest(parts: Record<string, unknown>): string {
  return sha256(JSON.stringify([PAGE_FORMAT, parts]));
}

/** sha256 of a file's bytes, or undefined when it cannot be read. */
export async function fileSha(effects: Effects, file: string): Promise<string | undefined> {
  return effects.readFile(file).then(sha256, () => undefined);
}

/**
 * The page remembered in `recordFile` for `digest`, when the page at `htmlPath` is still
 * that page (its sha256): its text and the record (messages, PDF). Undefined otherwise.
 */
export async function rememberedPage(effects: Effects, recordFile: string, digest: string, htmlPath: string): Promise<{ html: string; record: PageRecord } | undefined> {
  let record: PageRecord;
  try {
    record = JSON.parse(new TextDecoder().decode(await effects.readFile(recordFile))) as PageRecord;
  } catch {
    return undefined;
  }
  if (record.format !== PAGE_FORMAT || record.digest !== digest || !Array.isArray(record.messages)) return undefined;
  const bytes = await effects.readFile(htmlPath).catch(() => undefined);
  if (bytes === undefined || sha256(bytes) !== record.html) return undefined;
  return { html: new TextDecoder().decode(bytes), record };
}

/** Remembers a written page (a cache that cannot be written is only slower next time). */
export async function rememberPage(effects: Effects, recordFile: string, page: { digest: string; html: string; messages: RecordedMessage[]; pdf?: string }): Promise<void> {
  const record: PageRecord = { format: PAGE_FORMAT, digest: page.digest, html: sha256(page.html), messages: page.messages, ...(page.pdf === undefined ? {} : { pdf: page.pdf }) };
  await effects.writeFileAtomic(recordFile, JSON.stringify(record)).catch(() => undefined);
}
