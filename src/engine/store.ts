/**
 * The results store: one entry per (cell id, content key), in a directory per profile.
 *
 * Layout (the lead's `resultsDirFor` picks the directory):
 *
 *   <docDir>/results/                     full profile, committed
 *   <docDir>/results/profiles/<profile>/  other profiles, with a `.gitignore` of `*`
 *
 * An entry is two files named `<id>.<first 16 hex of key>`:
 *
 *   .json  metadata, pretty-printed for review: format, doc, id, full key, meta (run time,
 *          backend, versions, profile, seed, createdAt), export names, a summary of the
 *          outputs (tables and printed text in full, figures by name and checksum), and
 *          the payload's byte length and sha256
 *   .bin   the payload: `serialize.encode({ exports, outputs })`
 *
 * The same values give the same bytes, so re-running an unchanged cell gives no git diff
 * beyond its run time. Writes are atomic (temporary file + rename) and the `.bin` goes
 * first, so a `.json` always describes a complete payload. A payload whose checksum does
 * not match is reported as `corrupt`, and the build recomputes it.
 */
import { join, relative, resolve } from 'node:path';
import { isNotFound, type Effects } from './effects.ts';
import { decode, encodeResult } from './serialize.ts';
import type { CellResult, Output, ResultMeta } from './types.ts';
import { sha256 } from './digest.ts';

export const STORE_FORMAT = 'literate-report-result/1';

/** What `ResultStore.get` found. */
export interface StoredLookup {
  result?: CellResult;
  /** Why there is no result: no entry, or an entry that fails its checksum or decoding. */
  problem?: 'missing' | 'corrupt';
  detail?: string;
}

/** The `.json` half of an entry. */
export interface EntryMetadata {
  format: string;
  doc?: string;
  id: string;
  key: string;
  meta: ResultMeta;
  exports: string[];
  outputs: OutputSummary[];
  payload: { file: string; bytes: number; sha256: string };
}

export type OutputSummary =
  | { kind: 'figure'; name: string; ext: string; bytes: number; sha256: string; caption?: string }
  | { kind: 'table'; name: string; columns: string[]; rows: unknown[][]; caption?: string }
  | { kind: 'text'; text: string };

export class ResultStore {
  constructor(
    /** The directory of this profile's entries. */
    readonly dir: string,
    private readonly effects: Effects,
  ) {}

  /** The stored result of `id` under `key`, or why there is none. */
  async get(id: string, key: string): Promise<StoredLookup> {
    const base = entryName(id, key);
    let metadata: EntryMetadata;
    try {
      metadata = JSON.parse(new TextDecoder().decode(await this.effects.readFile(join(this.dir, `${base}.json`)))) as EntryMetadata;
    } catch (error) {
      if (isNotFound(error)) return { problem: 'missing' };
      return { problem: 'corrupt', detail: `${base}.json is not valid JSON` };
    }
    if (metadata.key !== key || metadata.id !== id) return { problem: 'missing' };
    if (metadata.format !== STORE_FORMAT) return { problem: 'missing', detail: `entry format ${metadata.format}` };
    let payload: Uint8Array;
    try {
      payload = await this.effects.readFile(join(this.dir, `${base}.bin`));
    } catch (error) {
      if (isNotFound(error)) return { problem: 'corrupt', detail: `${base}.bin is missing` };
      throw error;
    }
    const checksum = sha256(payload);
    if (checksum !== metadata.payload?.sha256) {
      return { problem: 'corrupt', detail: `${base}.bin checksum mismatch (sha256 ${checksum.slice(0, 12)}…, expected ${String(metadata.payload?.sha256).slice(0, 12)}…)` };
    }
    try {
      const { exports, outputs } = decode(payload) as { exports: Record<string, unknown>; outputs: Output[] };
      return { result: { kind: 'result', id, key, exports, outputs, meta: metadata.meta } };
    } catch (error) {
      return { problem: 'corrupt', detail: `${base}.bin cannot be decoded: ${(error as Error).message}` };
    }
  }

  /** Stores a result (atomic; overwrites an entry with the same id and key). */
  async put(result: CellResult): Promise<void> {
    const base = entryName(result.id, result.key);
    const payload = encodeResult({ exports: result.exports, outputs: result.outputs });
    const metadata: EntryMetadata = {
      format: STORE_FORMAT,
      ...(result.meta.doc === undefined ? {} : { doc: result.meta.doc }),
      id: result.id,
      key: result.key,
      meta: result.meta,
      exports: Object.keys(result.exports),
      outputs: result.outputs.map(summarize),
      payload: { file: `${base}.bin`, bytes: payload.byteLength, sha256: sha256(payload) },
    };
    if (result.meta.profile !== 'full') {
      const ignore = join(this.dir, '.gitignore');
      if (!(await this.effects.exists(ignore))) await this.effects.writeFileAtomic(ignore, '*\n');
    }
    await this.effects.writeFileAtomic(join(this.dir, `${base}.bin`), payload);
    await this.effects.writeFileAtomic(join(this.dir, `${base}.json`), `${formatJson(metadata)}\n`);
  }

  /**
   * Removes the entries of document `docName` (e.g. `report.md`) that are not in `keep`.
   * Entries of other documents and unreadable entries are left alone. Returns the removed
   * entries' names (`<id>.<key16>`).
   */
  async gc(keep: Iterable<{ id: string; key: string }>, docName: string): Promise<string[]> {
    const kept = new Set([...keep].map(({ id, key }) => `${id}\n${key}`));
    const removed: string[] = [];
    for (const { base, metadata } of await this.entries()) {
      if (metadata.doc !== docName || kept.has(`${metadata.id}\n${metadata.key}`)) continue;
      await this.effects.rm(join(this.dir, `${base}.bin`));
      await this.effects.rm(join(this.dir, `${base}.json`));
      removed.push(base);
    }
    return removed;
  }

  /** The most recently created intact entry of `id`, whatever its key (for `check`: stale vs missing). */
  async latest(id: string): Promise<CellResult | undefined> {
    const candidates = (await this.entries())
      .filter(({ metadata }) => metadata.id === id)
      .sort((a, b) => (b.metadata.meta?.createdAt ?? '').localeCompare(a.metadata.meta?.createdAt ?? ''));
    for (const { metadata } of candidates) {
      const { result } = await this.get(id, metadata.key);
      if (result !== undefined) return result;
    }
    return undefined;
  }

  /**
   * Writes the figures of a result to `<figuresDir>/<cell id>-<name>.<png|svg>` (atomic;
   * files with identical bytes are not touched). Returns the written paths, relative to
   * `projectRoot`.
   */
  async writeFigures(result: CellResult, figuresDir: string, projectRoot: string): Promise<string[]> {
    const written: string[] = [];
    for (const output of result.outputs) {
      if (output.kind !== 'figure') continue;
      const path = resolve(projectRoot, figuresDir, `${result.id}-${output.name}.${output.ext}`);
      let current: Uint8Array | undefined;
      try {
        current = await this.effects.readFile(path);
      } catch (error) {
        if (!isNotFound(error)) throw error;
      }
      if (current !== undefined && equalBytes(current, output.data)) continue;
      await this.effects.writeFileAtomic(path, output.data);
      written.push(relative(projectRoot, path));
    }
    return written;
  }

  private async entries(): Promise<{ base: string; metadata: EntryMetadata }[]> {
    const out: { base: string; metadata: EntryMetadata }[] = [];
    for (const name of (await this.effects.readdir(this.dir)).sort()) {
      const match = /^(.+\.[0-9a-f]{16})\.json$/.exec(name);
      if (match === null) continue;
      try {
        const metadata = JSON.parse(new TextDecoder().decode(await this.effects.readFile(join(this.dir, name)))) as EntryMetadata;
        if (typeof metadata.id === 'string' && typeof metadata.key === 'string') out.push({ base: match[1]!, metadata });
      } catch {
        // an unreadable entry: get() reports it as corrupt when a cell asks for it
      }
    }
    return out;
  }
}

/** File name (without extension) of the entry of `id` under `key`. */
export function entryName(id: string, key: string): string {
  return `${id}.${key.slice(0, 16)}`;
}

function summarize(output: Output): OutputSummary {
  switch (output.kind) {
    case 'figure':
      return {
        kind: 'figure',
        name: output.name,
        ext: output.ext,
        bytes: output.data.byteLength,
        sha256: sha256(output.data),
        ...(output.caption === undefined ? {} : { caption: output.caption }),
      };
    case 'table':
      return { kind: 'table', name: output.name, columns: output.columns, rows: output.rows, ...(output.caption === undefined ? {} : { caption: output.caption }) };
    case 'text':
      return { kind: 'text', text: output.text };
  }
}

/** JSON with two-space indentation, except that arrays of primitives (table rows) stay on one line. */
export function formatJson(value: unknown, indent = ''): string {
  if (Array.isArray(value)) {
    if (value.every((v) => v === null || typeof v !== 'object')) return JSON.stringify(value);
    const inner = indent + '  ';
    return `[\n${value.map((v) => inner + formatJson(v, inner)).join(',\n')}\n${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    const inner = indent + '  ';
    return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${formatJson(v, inner)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value) ?? 'null';
}


function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
