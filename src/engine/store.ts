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
 * beyond its run time.
 *
 * A store written under the previous key scheme (engine/2, keys without the packages read
 * at run time) is read through the previous-scheme keys the store is given — only those of
 * cells whose result previous-scheme.ts adopts: `get` returns an entry stored under such a
 * key when there is none under the cell's key, flagged `previousSchemeKey`, and `gc` keeps
 * it. `rekey` (used by `report --migrate-keys`, migrate.ts) moves such an entry to the
 * cell's key. Writes are atomic (temporary file + rename) and the `.bin` goes first, so a
 * `.json` always describes a complete payload. A payload whose checksum does
 * not match is reported as `corrupt`, and the build recomputes it.
 */
import { dirname, join, relative, resolve } from 'node:path';
import { isNotFound, type Effects } from './effects.ts';
import { decode, encodeResult } from './serialize.ts';
import type { CellResult, KeyFingerprint, Output, PreviousSchemeKey, ResultMeta } from './types.ts';
import { sha256 } from './digest.ts';
import type { ResultMemo } from './result-memo.ts';

export const STORE_FORMAT = 'literate-report-result/1';

/** Folder of the store holding which entries each document uses (see `ResultStore.claim`). */
const OWNERS_DIR = '.owners';
/** What a figure or table name may be (the runtime enforces it when a cell emits one). */
export const OUTPUT_NAME = /^[a-z0-9-]+$/;
const FIGURE_NAME = OUTPUT_NAME;
const FIGURE_EXTS = new Set(['png', 'svg']);

/** What `ResultStore.get` found. */
export interface StoredLookup {
  result?: CellResult;
  /** Why there is no result: no entry, or an entry that fails its checksum or decoding. */
  problem?: 'missing' | 'corrupt';
  detail?: string;
  /**
   * Set when the result is stored under the cell's key of the previous key scheme (it is
   * fresh and adopted, the store is not migrated yet: `report --migrate-keys`): that key.
   */
  previousSchemeKey?: string;
  /** sha256 of the entry's payload (with `result`): what the page cache hashes for it. */
  checksum?: string;
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
    /**
     * Cell key → the same cell's key under the previous scheme, for the cells whose
     * previous-scheme result is adopted (previous-scheme.ts; see `get`).
     */
    private readonly previousKeys: ReadonlyMap<string, PreviousSchemeKey> = new Map(),
    /**
     * The preview's memo of verified, decoded payloads (result-memo.ts): a payload whose
     * metadata is unchanged is not read again. Without it (check, report) every lookup
     * reads and verifies the payload.
     */
    private readonly memo?: ResultMemo,
  ) {}

  /**
   * The stored result of `id` under `key`, or why there is none. A stored result is data:
   * an entry whose metadata disagrees with its payload (export names, byte length, figures),
   * whose outputs are not what a cell can emit (a figure named like a path, an unknown
   * extension), or whose recorded fingerprint is not `expected` (the ingredients of `key`
   * today) is `corrupt`. With no entry under `key`, the entry under the cell's previous-scheme
   * key (if the store was given one for `key`) is returned, flagged `previousSchemeKey`.
   */
  async get(id: string, key: string, expected?: KeyFingerprint): Promise<StoredLookup> {
    const found = await this.exact(id, key, expected);
    const previous = this.previousKeys.get(key);
    if (found.problem !== 'missing' || previous === undefined) return found;
    const old = await this.exact(id, previous.key, previous.fingerprint);
    if (old.result !== undefined) return { ...old, previousSchemeKey: previous.key };
    return old.problem === 'corrupt' ? old : found;
  }

  /** The metadata (`.json`) of the entry of `id` under exactly `key`; undefined when there is none or it is unreadable. */
  async metadata(id: string, key: string): Promise<EntryMetadata | undefined> {
    try {
      const metadata = JSON.parse(new TextDecoder().decode(await this.effects.readFile(join(this.dir, `${entryName(id, key)}.json`)))) as EntryMetadata;
      return metadata.id === id && metadata.key === key && metadata.format === STORE_FORMAT ? metadata : undefined;
    } catch {
      return undefined;
    }
  }

  /** The entry of `id` under exactly `key` (no previous-scheme key), or why there is none. */
  async exact(id: string, key: string, expected?: KeyFingerprint): Promise<StoredLookup> {
    const base = entryName(id, key);
    let metadata: EntryMetadata;
    let text: string;
    try {
      text = new TextDecoder().decode(await this.effects.readFile(join(this.dir, `${base}.json`)));
      metadata = JSON.parse(text) as EntryMetadata;
    } catch (error) {
      if (isNotFound(error)) return { problem: 'missing' };
      return { problem: 'corrupt', detail: `${base}.json is not valid JSON` };
    }
    if (metadata.key !== key || metadata.id !== id) return { problem: 'missing' };
    if (metadata.format !== STORE_FORMAT) return { problem: 'missing', detail: `entry format ${metadata.format}` };
    // The payload this very metadata was verified with, decoded (the preview only).
    const remembered = this.memo?.get(id, key, text);
    if (remembered !== undefined) {
      const mismatch = fingerprintDisagreement(metadata, expected);
      if (mismatch !== undefined) return { problem: 'corrupt', detail: `${base}: ${mismatch}` };
      return { result: { kind: 'result', id, key, exports: remembered.exports, outputs: remembered.outputs, meta: metadata.meta }, checksum: remembered.checksum };
    }
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
    let value: { exports: Record<string, unknown>; outputs: Output[] };
    try {
      value = decode(payload) as { exports: Record<string, unknown>; outputs: Output[] };
    } catch (error) {
      return { problem: 'corrupt', detail: `${base}.bin cannot be decoded: ${(error as Error).message}` };
    }
    const mismatch = disagreement(metadata, payload, value, expected);
    if (mismatch !== undefined) return { problem: 'corrupt', detail: `${base}: ${mismatch}` };
    this.memo?.set(id, key, text, payload, checksum, value.outputs);
    return { result: { kind: 'result', id, key, exports: value.exports, outputs: value.outputs, meta: metadata.meta }, checksum };
  }

  /** Stores a result (atomic; overwrites an entry with the same id and key). */
  async put(result: CellResult): Promise<void> {
    const base = entryName(result.id, result.key);
    this.memo?.forget(result.id, result.key);
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
    const keepList: { id: string; key: string }[] = [];
    const kept = new Set<string>();
    for (const { id, key } of keep) {
      kept.add(entryName(id, key));
      // A result still under its previous-scheme key (store not migrated) is kept and claimed as it is.
      const previous = this.previousKeys.get(key);
      if (previous !== undefined && !(await this.has(id, key)) && (await this.has(id, previous.key))) {
        kept.add(entryName(id, previous.key));
        keepList.push({ id, key: previous.key });
      } else {
        keepList.push({ id, key });
      }
    }
    // Entries another document of this store used in its last clean build are its too.
    const claimed = new Set<string>();
    for (const [doc, bases] of await this.claims()) if (doc !== docName) for (const base of bases) claimed.add(base);
    const removed: string[] = [];
    for (const { base, metadata } of await this.entries()) {
      if (metadata.doc !== docName || kept.has(base) || claimed.has(base)) continue;
      await this.effects.rm(join(this.dir, `${base}.json`));
      await this.effects.rm(join(this.dir, `${base}.bin`));
      removed.push(base);
    }
    await this.claim(docName, keepList);
    return removed;
  }

  /**
   * Records that document `docName` uses these entries (`<dir>/.owners/<docName>.json`),
   * so that the clean-up of another document of the same store never removes them. Called
   * after every clean build (by `gc`); entries keep their `doc` field (who created them).
   */
  async claim(docName: string, entries: { id: string; key: string }[]): Promise<void> {
    const bases = [...new Set(entries.map(({ id, key }) => entryName(id, key)))].sort();
    const path = join(this.dir, OWNERS_DIR, `${encodeURIComponent(docName)}.json`);
    const text = `${JSON.stringify({ doc: docName, entries: bases }, null, 2)}\n`;
    let current: string | undefined;
    try {
      current = new TextDecoder().decode(await this.effects.readFile(path));
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
    if (current !== text) await this.effects.writeFileAtomic(path, text);
  }

  /** Document name → the entries it claimed in its last clean build. */
  private async claims(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    const dir = join(this.dir, OWNERS_DIR);
    for (const name of await this.effects.readdir(dir)) {
      if (!name.endsWith('.json')) continue;
      try {
        const value = JSON.parse(new TextDecoder().decode(await this.effects.readFile(join(dir, name)))) as { doc?: unknown; entries?: unknown };
        if (typeof value.doc === 'string' && Array.isArray(value.entries)) out.set(value.doc, value.entries.filter((e): e is string => typeof e === 'string'));
      } catch {
        // An unreadable claim protects nothing more than its document's own entries.
      }
    }
    return out;
  }

  /**
   * The most recently created intact entry of `id`, whatever its key (for `check`: stale vs
   * missing). With `docName`, only that document's entries (those it created or claimed):
   * another document's cell of the same id explains nothing about this one.
   */
  async latest(id: string, docName?: string): Promise<CellResult | undefined> {
    const claimed = docName === undefined ? undefined : new Set((await this.claims()).get(docName) ?? []);
    const candidates = (await this.entries())
      .filter(({ base, metadata }) => metadata.id === id && (docName === undefined || metadata.doc === docName || claimed?.has(base) === true))
      .sort((a, b) => (b.metadata.meta?.createdAt ?? '').localeCompare(a.metadata.meta?.createdAt ?? ''));
    for (const { metadata } of candidates) {
      const { result } = await this.exact(id, metadata.key);
      if (result !== undefined) return result;
    }
    return undefined;
  }

  /** True when the store has an entry file (`.json`) of `id` under `key` (intact or not). */
  async has(id: string, key: string): Promise<boolean> {
    return this.effects.exists(join(this.dir, `${entryName(id, key)}.json`));
  }

  /**
   * Copies the entry of `id` under `from` to `to` — the same payload bytes, its metadata
   * with the new key, payload file name and `fingerprint`, `previousKey` (the first key it
   * was stored under: `from` unless it was re-keyed before), `migratedFrom: from`, and
   * `versions` joined with `addedVersions` (the packages the new key hashes and the result
   * was shown to be computed with) — and returns the new entry as `get` reads it. The caller
   * proves that `from` and `to` key the same computation (migrate.ts). The `.bin` is written
   * before the `.json` (each atomically), so a kill leaves the old entry intact and at most
   * an unreferenced `.bin`; the old entry is not removed (`remove`).
   */
  async rekey(id: string, from: string, to: string, fingerprint: KeyFingerprint, addedVersions: Record<string, string> = {}): Promise<StoredLookup> {
    const oldBase = entryName(id, from);
    const newBase = entryName(id, to);
    const metadata = JSON.parse(new TextDecoder().decode(await this.effects.readFile(join(this.dir, `${oldBase}.json`)))) as EntryMetadata;
    const payload = await this.effects.readFile(join(this.dir, `${oldBase}.bin`));
    const versions = Object.fromEntries(Object.entries({ ...metadata.meta.versions, ...addedVersions }).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const rekeyed: EntryMetadata = {
      ...metadata,
      key: to,
      meta: { ...metadata.meta, versions, fingerprint, previousKey: metadata.meta.previousKey ?? from, migratedFrom: from },
      payload: { ...metadata.payload, file: `${newBase}.bin` },
    };
    await this.effects.writeFileAtomic(join(this.dir, `${newBase}.bin`), payload);
    await this.effects.writeFileAtomic(join(this.dir, `${newBase}.json`), `${formatJson(rekeyed)}\n`);
    return this.exact(id, to, fingerprint);
  }

  /** Removes the entry of `id` under `key`: its `.json` first, so no `.json` is left without its `.bin`. */
  async remove(id: string, key: string): Promise<void> {
    const base = entryName(id, key);
    await this.effects.rm(join(this.dir, `${base}.json`));
    await this.effects.rm(join(this.dir, `${base}.bin`));
  }

  /**
   * Replaces entry names in every document's claims (`.owners/`): `renames` maps an old
   * `<id>.<key16>` to its new one. Claims that name none of them are not rewritten.
   */
  async renameClaims(renames: ReadonlyMap<string, string>): Promise<void> {
    for (const [doc, bases] of await this.claims()) {
      if (!bases.some((base) => renames.has(base))) continue;
      const path = join(this.dir, OWNERS_DIR, `${encodeURIComponent(doc)}.json`);
      const entries = [...new Set(bases.map((base) => renames.get(base) ?? base))].sort();
      await this.effects.writeFileAtomic(path, `${JSON.stringify({ doc, entries }, null, 2)}\n`);
    }
  }

  /** Every entry of the store: its name (`<id>.<key16>`), cell id and key. */
  async list(): Promise<{ base: string; id: string; key: string; engine?: string }[]> {
    return (await this.entries()).map(({ base, metadata }) => ({
      base,
      id: metadata.id,
      key: metadata.key,
      ...(typeof metadata.meta?.fingerprint?.engine === 'string' ? { engine: metadata.meta.fingerprint.engine } : {}),
    }));
  }

  /**
   * Writes the figures of a result to `<figuresDir>/<cell id>-<name>.<png|svg>` (atomic;
   * files with identical bytes are not touched). Returns the written paths, relative to
   * `projectRoot`.
   */
  async writeFigures(result: CellResult, figuresDir: string, projectRoot: string): Promise<string[]> {
    const written: string[] = [];
    const root = resolve(projectRoot, figuresDir);
    for (const output of result.outputs) {
      if (output.kind !== 'figure') continue;
      // Names were validated when the result was made or read; checked again because a
      // file outside the figures folder must never be written from a result.
      if (!FIGURE_NAME.test(`${result.id}-${output.name}`) || !FIGURE_EXTS.has(output.ext)) {
        throw new Error(`refusing to write figure "${output.name}.${output.ext}" of cell "${result.id}": not a valid figure name`);
      }
      const path = resolve(root, `${result.id}-${output.name}.${output.ext}`);
      if (dirname(path) !== root) throw new Error(`refusing to write ${path}: outside ${root}`);
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

/**
 * Why an entry's metadata and payload disagree, or its payload is not a cell's result;
 * undefined when they agree.
 */
function disagreement(
  metadata: EntryMetadata,
  payload: Uint8Array,
  value: { exports: unknown; outputs: unknown },
  expected: KeyFingerprint | undefined,
): string | undefined {
  if (metadata.payload?.bytes !== payload.byteLength) return `payload is ${payload.byteLength} bytes, metadata says ${String(metadata.payload?.bytes)}`;
  if (value === null || typeof value !== 'object' || value.exports === null || typeof value.exports !== 'object' || !Array.isArray(value.outputs)) {
    return 'payload is not { exports, outputs }';
  }
  const names = Object.keys(value.exports).sort();
  const listed = Array.isArray(metadata.exports) ? [...metadata.exports].sort() : [];
  if (JSON.stringify(names) !== JSON.stringify(listed)) return `payload exports ${names.join(', ') || 'nothing'}, metadata lists ${listed.join(', ') || 'nothing'}`;
  const figures: string[] = [];
  for (const output of value.outputs as Output[]) {
    if (output === null || typeof output !== 'object') return 'an output is not an object';
    if (output.kind === 'figure') {
      if (typeof output.name !== 'string' || !FIGURE_NAME.test(output.name)) return `figure name ${JSON.stringify(output.name)} is not [a-z0-9-]+`;
      if (!FIGURE_EXTS.has(output.ext)) return `figure "${output.name}" has extension ${JSON.stringify(output.ext)}, not png or svg`;
      if (!(output.data instanceof Uint8Array)) return `figure "${output.name}" has no bytes`;
      figures.push(`${output.name}.${output.ext}:${sha256(output.data)}`);
    } else if (output.kind === 'table') {
      if (typeof output.name !== 'string' || !OUTPUT_NAME.test(output.name)) return `table name ${JSON.stringify(output.name)} is not [a-z0-9-]+`;
      if (!Array.isArray(output.columns) || !Array.isArray(output.rows)) return `table "${output.name}" has no columns or rows`;
    } else if (output.kind === 'text') {
      if (typeof output.text !== 'string') return 'a text output is not text';
    } else {
      return `unknown output kind ${JSON.stringify((output as { kind?: unknown }).kind)}`;
    }
  }
  const summarized = (Array.isArray(metadata.outputs) ? metadata.outputs : [])
    .filter((o): o is Extract<OutputSummary, { kind: 'figure' }> => o?.kind === 'figure')
    .map((o) => `${o.name}.${o.ext}:${o.sha256}`);
  if (JSON.stringify(figures) !== JSON.stringify(summarized)) return 'the figures in the payload are not the ones the metadata lists';
  return fingerprintDisagreement(metadata, expected);
}

/** Why the fingerprint an entry records is not `expected` (the ingredients of its key today); undefined when it is. */
function fingerprintDisagreement(metadata: EntryMetadata, expected: KeyFingerprint | undefined): string | undefined {
  const recorded = metadata.meta?.fingerprint;
  if (expected !== undefined && recorded !== undefined && canonical(recorded) !== canonical(expected)) {
    return 'the fingerprint in the metadata is not the one of its key';
  }
  return undefined;
}

/** JSON with sorted object keys, to compare two values regardless of key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
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


/** Byte equality through Buffer's native compare (a JavaScript loop took ~0.1 s over the report's figures). */
function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}
