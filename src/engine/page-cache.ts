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
export function engineStamp(effects: Effects): Promise<string> {
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

/** The digest of a page's inputs (each part as JSON). */
export function pageDigest(parts: Record<string, unknown>): string {
  return sha256(JSON.stringify([PAGE_FORMAT, parts]));
}

/** sha256 of a file's bytes, or undefined when it cannot be read. */
export async function fileSha(effects: Effects, file: string): Promise<string | undefined> {
  return effects.readFile(file).then(sha256, () => undefined);
}

export async function readPageRecord(effects: Effects, file: string): Promise<PageRecord | undefined> {
  try {
    const record = JSON.parse(new TextDecoder().decode(await effects.readFile(file))) as PageRecord;
    return record.format === PAGE_FORMAT && typeof record.digest === 'string' && Array.isArray(record.messages) ? record : undefined;
  } catch {
    return undefined;
  }
}

export function pageRecord(digest: string, html: string, messages: RecordedMessage[]): PageRecord {
  return { format: PAGE_FORMAT, digest, html: sha256(html), messages };
}
