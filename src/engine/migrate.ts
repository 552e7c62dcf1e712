/**
 * `report --migrate-keys`: moves results stored under the previous key scheme (engine/1,
 * whose keys hashed source text) to the keys of the current one (engine/2, the code that
 * runs), without running anything.
 *
 * A result is re-keyed only when it is fresh under the previous scheme: its legacy key,
 * computed today from the current sources (key.ts `legacyKeyV1`), is the key it is stored
 * under. Then the sources are byte for byte those it was computed from, so the code they
 * run — what the current key hashes — is too, and the current key names the same result.
 * Stale entries, entries of other documents' cells and unreadable ones are left as they are.
 *
 * Per results folder (the full profile's, and each `profiles/<name>/` that exists, or the
 * one of `--profile`), under the store lock:
 *   1. each fresh old-scheme entry is copied to the cell's current key (`.bin`, then `.json`
 *      with the new key, payload name and fingerprint, and `previousKey`), each file
 *      atomically, and read back through the checksum and fingerprint checks;
 *   2. the documents' claims (`.owners/`) name the new entries;
 *   3. the old entries are removed (`.json` first).
 * A kill between the steps leaves both entries, each intact; the next run finishes the job
 * (the old entry is still fresh, the new one is found). A second run does nothing.
 * A snapshot (`checkpoint()`) of a cell without a result is carried over to the new key
 * too, so a training run killed before the migration resumes after it.
 */
import path from 'node:path';
import type { VFile } from 'vfile';
import { checkpointPath } from './checkpoint.ts';
import { loadDocument, resultsDirFor, type LoadOptions } from './document.ts';
import type { Effects } from './effects.ts';
import { lockStore } from './lock.ts';
import { entryName, ResultStore } from './store.ts';

export interface MigrateOptions extends LoadOptions {
  /** Called when another build holds a store's lock, before waiting for it. */
  onWait?(message: string): void;
}

export interface StoreMigration {
  profile: string;
  /** The results folder. */
  dir: string;
  /** False when the folder does not exist (nothing to do). */
  exists: boolean;
  /** Cells whose fresh old-scheme result was re-keyed now. */
  migrated: string[];
  /** Cells whose result was already under the current key, and whose old-scheme copy was removed now. */
  finished: string[];
  /** Cells whose result is under the current key and has no old-scheme copy: nothing to do. */
  current: string[];
  /** Old-scheme entries of this document's cells that are not fresh (left as they are). */
  stale: string[];
  /** Cells without a fresh result under either scheme. */
  missing: string[];
  /** Entries of the store this document does not use (other cells, documents): left as they are. */
  untouched: string[];
  /** Cells whose snapshot was moved to the current key. */
  checkpoints: string[];
}

export interface MigrateSummary {
  /** The document's problems (from the first profile loaded). */
  file: VFile;
  profile: string;
  stores: StoreMigration[];
}

export async function migrateKeys(options: MigrateOptions, effects: Effects): Promise<MigrateSummary> {
  const docPath = path.resolve(options.docPath);
  const profiles = options.profile !== undefined ? [options.profile] : await existingProfiles(docPath, options.resultsDir, effects);
  const stores: StoreMigration[] = [];
  let file: VFile | undefined;
  for (const profile of profiles) {
    const loaded = await loadDocument({ ...options, profile }, effects);
    file ??= loaded.doc.file;
    stores.push(await migrateStore(loaded, options, effects));
  }
  if (file === undefined) file = (await loadDocument({ ...options, profile: 'full' }, effects)).doc.file;
  return { file, profile: options.profile ?? 'full', stores };
}

/** `full` and every `profiles/<name>/` folder of the document's results. */
async function existingProfiles(docPath: string, resultsDir: string | undefined, effects: Effects): Promise<string[]> {
  const profilesDir = path.join(resultsDirFor(docPath, 'full', resultsDir), 'profiles');
  const names = (await effects.readdir(profilesDir)).filter((name) => /^[a-z0-9-]+$/.test(name) && name !== 'full').sort();
  return ['full', ...names];
}

async function migrateStore(loaded: Awaited<ReturnType<typeof loadDocument>>, options: MigrateOptions, effects: Effects): Promise<StoreMigration> {
  const { keys, usable, profile, projectRoot, docPath } = loaded;
  const dir = loaded.store.dir;
  const out: StoreMigration = { profile, dir, exists: false, migrated: [], finished: [], current: [], stale: [], missing: [], untouched: [], checkpoints: [] };
  if (!(await effects.exists(dir))) return out;
  out.exists = true;
  // Exact lookups only: this store does not read through legacy keys.
  const store = new ResultStore(dir, effects);
  const release = await lockStore(dir, effects, {
    doc: path.basename(docPath),
    onWait: (holder) => options.onWait?.(`waiting for another build (${holder.doc}, pid ${holder.pid}, since ${holder.since}), which holds ${path.relative(process.cwd(), dir) || dir}`),
  });
  try {
    const used = new Set<string>();
    const renames = new Map<string, string>();
    const oldEntries: { id: string; key: string }[] = [];
    for (const id of usable) {
      const cellKey = keys.get(id)!;
      const legacy = cellKey.legacyKeyV1;
      used.add(entryName(id, cellKey.key));
      const now = await store.exact(id, cellKey.key, cellKey.fingerprint);
      const old = legacy === undefined || legacy.key === cellKey.key ? undefined : await store.exact(id, legacy.key, legacy.fingerprint);
      if (legacy !== undefined && old?.result !== undefined && cellKey.fingerprint !== undefined) {
        used.add(entryName(id, legacy.key));
        if (now.result !== undefined) {
          out.finished.push(id);
        } else {
          const rekeyed = await store.rekey(id, legacy.key, cellKey.key, cellKey.fingerprint);
          if (rekeyed.result === undefined) {
            throw new Error(`the re-keyed entry of cell "${id}" does not read back (${rekeyed.detail ?? rekeyed.problem}); the old entry ${entryName(id, legacy.key)} is kept`);
          }
          out.migrated.push(id);
        }
        renames.set(entryName(id, legacy.key), entryName(id, cellKey.key));
        oldEntries.push({ id, key: legacy.key });
      } else if (now.result !== undefined) {
        out.current.push(id);
      } else {
        out.missing.push(id);
        if (legacy !== undefined && (await carryCheckpoint(projectRoot, id, legacy.key, cellKey.key, effects))) out.checkpoints.push(id);
      }
    }
    await store.renameClaims(renames);
    for (const { id, key } of oldEntries) await store.remove(id, key);

    const cellIds = new Set(loaded.doc.cells.map((cell) => cell.id));
    for (const entry of await store.list()) {
      if (used.has(entry.base)) continue;
      if (cellIds.has(entry.id) && entry.engine === undefined) out.stale.push(entry.base);
      else out.untouched.push(entry.base);
    }
  } finally {
    await release();
  }
  return out;
}

/**
 * Moves the snapshot of `id` from its legacy key to its key, unless one is there already
 * (also done by `report` before it runs a cell: a run killed under engine/1 resumes).
 */
export async function carryCheckpoint(projectRoot: string, id: string, from: string, to: string, effects: Effects): Promise<boolean> {
  const source = checkpointPath(projectRoot, id, from);
  const target = checkpointPath(projectRoot, id, to);
  if (source === target || !(await effects.exists(source)) || (await effects.exists(target))) return false;
  await effects.writeFileAtomic(target, await effects.readFile(source));
  await effects.rm(source);
  return true;
}

/** What `--migrate-keys` did, one line per results folder. */
export function formatMigration(summary: MigrateSummary): string {
  const lines: string[] = [];
  for (const s of summary.stores) {
    const where = `${path.relative(process.cwd(), s.dir) || s.dir} (profile ${s.profile})`;
    if (!s.exists) {
      lines.push(`${where}: no results folder, nothing to migrate`);
      continue;
    }
    const parts = [
      `${s.migrated.length} migrated to the current key scheme`,
      ...(s.finished.length > 0 ? [`${s.finished.length} already migrated, old copy removed`] : []),
      `${s.current.length} already current`,
      `${s.stale.length} stale left${s.stale.length > 0 ? ` (old scheme, not fresh: ${s.stale.join(', ')})` : ''}`,
      `${s.missing.length} without a result`,
      `${s.untouched.length} other entries untouched`,
      ...(s.checkpoints.length > 0 ? [`${s.checkpoints.length} snapshot(s) carried over (${s.checkpoints.join(', ')})`] : []),
    ];
    lines.push(`${where}: ${parts.join(', ')}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The command that migrates the store of `docPath` at `profile`. */
export function migrateCommand(docPath: string, profile: string): string {
  const rel = path.relative(process.cwd(), path.resolve(docPath));
  const doc = rel === path.join('report', 'report.md') ? '' : ` ${rel}`;
  return `npm run report --${doc} --migrate-keys${profile === 'full' ? '' : ` --profile ${profile}`}`;
}

/**
 * The `old-key-scheme` problem (a warning, for the whole document): these cells' results
 * are fresh but stored under the previous key scheme.
 */
export function oldSchemeMessage(file: VFile, ids: string[], storeDir: string, docPath: string, profile: string): void {
  if (ids.length === 0) return;
  const where = path.relative(process.cwd(), storeDir) || storeDir;
  const shown = ids.length > 6 ? `${ids.slice(0, 6).join(', ')}, …` : ids.join(', ');
  file.message(
    `${ids.length} result${ids.length === 1 ? ' is' : 's are'} stored in ${where} under the previous key scheme (engine/1, which hashed source text) ` +
      `and fresh under it (${shown}); they are used as they are and nothing re-runs. ` +
      `\`${migrateCommand(docPath, profile)}\` adopts them under the current keys (the code that runs)`,
    { ruleId: 'old-key-scheme', source: 'report' },
  );
}
