/**
 * Keys remembered between commands, so that a command with nothing to run (`check`, a
 * no-change `report`) does not bundle every cell again (68 esbuild bundles of the report:
 * about 2 s; with the cache: the files they read, hashed).
 *
 * A remembered key is used only when everything the bundle was made from is unchanged:
 *
 *   - the lookup itself: engine format, esbuild version, document path, project root,
 *     runtime path, the cell's id, code and options, profile, seed, and the keys and export
 *     names of the cells it imports;
 *   - the bytes of every project file the bundle read (sha256), and the project's
 *     package.json (its `imports` map can change what a specifier resolves to);
 *   - the tsconfig.json esbuild applied to the document's folder and to each file's folder;
 *   - the code and JSON file names in the document's folder and in each bundled file's
 *     folder (a new file beside an import, e.g. `lib/a.tsx` next to `lib/a.ts`, can change
 *     what resolves);
 *   - the installed version of every package the bundle imports or resolves at run time.
 *
 * Anything else that could change resolution (a file created in a folder no bundled file
 * sits in, a package's own files changed without a version change) is not seen; `--no-cache`
 * keys every cell afresh. And when a cell must run, its bundle is built again and its key
 * compared with the remembered one: a cell never runs under a key the cache got wrong.
 *
 * The cache is one JSON file per document under `node_modules/.cache/report/`, written
 * atomically; a missing, unreadable or foreign file is an empty cache, never an error.
 */
import { sha256 } from './digest.ts';
import type { KeyFingerprint, PreviousSchemeKey } from './types.ts';

/**
 * Bumped when the entry format or what a lookup covers changes. /2: an entry's export
 * names are `exports` (the bundle's, bundle.ts), and a scan memo is the cell's `cell:`
 * specifiers only (parse.ts reads no export names). /3: an entry carries the cell's
 * previous-scheme key (`previous`, engine/2) instead of the engine/1 legacy key.
 */
const CACHE_FORMAT = 'literate-report-key-cache/3';
/** Entries kept per document (the current cells and a few edits' worth of old ones). */
const MAX_ENTRIES = 2_000;

/** What a cached key was made from, checked before it is used. */
export interface KeyCacheEntry {
  /** Absolute path → sha256 of its bytes (project files bundled; package.json). */
  files: Record<string, string>;
  /** Absolute folder → sha256 of its sorted file names. */
  folders: Record<string, string>;
  /** Absolute folder → sha256 of the tsconfig text esbuild applies there ('' for none). */
  tsconfigs: Record<string, string>;
  /** The key itself, without its bundle. */
  key: {
    key: string;
    inputs: string[];
    packages: Record<string, string>;
    /** The cell's export names, from its bundle. */
    exports: string[];
    fingerprint?: KeyFingerprint;
    previous?: PreviousSchemeKey;
  };
}

export interface KeyCache {
  /**
   * Results of pure functions of text remembered with the keys (exact: their input is the
   * lookup): parse.ts's scans of cell code (its `cell:` specifiers), inline.ts's transpiled
   * expressions, refs.ts's KaTeX verdicts.
   */
  memos: { scans: Record<string, readonly string[]>; inline: Record<string, string>; math: Record<string, string> };
  /** Replaces a memo section (marks the cache changed). */
  setMemo<K extends keyof KeyCache['memos']>(name: K, value: KeyCache['memos'][K]): void;
  get(lookup: string): KeyCacheEntry | undefined;
  set(lookup: string, entry: KeyCacheEntry): void;
  delete(lookup: string): void;
  /** True when set or delete was called since the cache was read. */
  readonly changed: boolean;
  /** The file's contents to write back. */
  serialize(): string;
}

/** A cache from the text of its file (undefined or unreadable: empty). */
export function keyCacheFrom(text: string | undefined): KeyCache {
  const entries = new Map<string, KeyCacheEntry>();
  const memos: KeyCache['memos'] = { scans: {}, inline: {}, math: {} };
  if (text !== undefined) {
    try {
      const data = JSON.parse(text) as { format?: unknown; entries?: unknown; memos?: Partial<KeyCache['memos']> };
      if (data.format === CACHE_FORMAT && typeof data.entries === 'object' && data.entries !== null) {
        for (const [lookup, entry] of Object.entries(data.entries as Record<string, KeyCacheEntry>)) entries.set(lookup, entry);
        if (typeof data.memos?.scans === 'object' && data.memos.scans !== null) memos.scans = data.memos.scans;
        if (typeof data.memos?.inline === 'object' && data.memos.inline !== null) memos.inline = data.memos.inline;
        if (typeof data.memos?.math === 'object' && data.memos.math !== null) memos.math = data.memos.math;
      }
    } catch {
      // a damaged cache is an empty one
    }
  }
  let changed = false;
  return {
    memos,
    setMemo: (name, value) => {
      memos[name] = value;
      changed = true;
    },
    get: (lookup) => {
      const entry = entries.get(lookup);
      if (entry !== undefined) {
        // most recently used last, so the oldest are dropped first
        entries.delete(lookup);
        entries.set(lookup, entry);
      }
      return entry;
    },
    set: (lookup, entry) => {
      entries.delete(lookup);
      entries.set(lookup, entry);
      while (entries.size > MAX_ENTRIES) entries.delete(entries.keys().next().value!);
      changed = true;
    },
    delete: (lookup) => {
      changed = entries.delete(lookup) || changed;
    },
    get changed() {
      return changed;
    },
    serialize: () => JSON.stringify({ format: CACHE_FORMAT, entries: Object.fromEntries(entries), memos }),
  };
}

/** The cache file of a document. */
export function keyCacheFile(cacheDir: string, docPath: string): string {
  return `${cacheDir}/keys-${sha256(docPath).slice(0, 24)}.json`;
}

/** Names that can be what an import resolves to (code and JSON); other files and folders do not matter. */
const RESOLVABLE = /\.(?:[cm]?[jt]sx?|json)$/;

/** sha256 of the sorted names in a folder that an import could resolve to. */
export function listingHash(names: string[]): string {
  return sha256(JSON.stringify(names.filter((n) => RESOLVABLE.test(n)).sort()));
}
