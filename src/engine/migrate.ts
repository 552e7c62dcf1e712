/**
 * `report --migrate-keys`: moves results stored under the previous key scheme (engine/2,
 * whose keys did not hash the packages a cell reads at run time) to the keys of the current
 * one (engine/3, which hash their installed versions too), without running anything.
 *
 * A result is re-keyed only when
 *   (a) it is fresh under the previous scheme: its previous-scheme key, computed today from
 *       the current sources (key.ts `CellKey.previous`: exactly engine/2's formula), is the
 *       key it is stored under — so its code, options, project files, imported packages,
 *       profile, seed and the keys of the cells it imports are today's; and
 *   (b) each package the current key adds — read at run time by the cell, or by a cell it
 *       imports — is shown from the project's history to have had, when the result was made,
 *       the version installed now (previous-scheme.ts: package-lock.json at the commit the
 *       result was made at, unchanged since, and the imported cells' results adopted too).
 * Then the current key names the same computation. A cell whose key gained nothing needs
 * only (a). A result fresh under the previous scheme that cannot be shown so is left as it
 * is, with the reason printed; so are stale entries, entries of other documents' cells and
 * unreadable ones.
 *
 * Per results folder (the full profile's, and each `profiles/<name>/` that exists, or the
 * one of `--profile`), under the store lock:
 *   1. each adopted previous-scheme entry is copied to the cell's current key (`.bin`, then
 *      `.json` with the new key, payload name and fingerprint, `migratedFrom`, and the
 *      versions of the packages shown), each file atomically, and read back through the
 *      checksum and fingerprint checks;
 *   2. the documents' claims (`.owners/`) name the new entries;
 *   3. the old entries are removed (`.json` first).
 * A kill between the steps leaves both entries, each intact; the next run finishes the job
 * (the old entry is still fresh, the new one is found). A second run does nothing.
 * A snapshot (`checkpoint()`) of a cell without a result is carried over to the new key
 * too, when the two keys hash the same ingredients, so a training run killed before the
 * migration resumes after it.
 *
 * A store still on engine/1 (keys of source text) is migrated by the tool as of commit
 * 3a5e674 first (the last that reads engine/1), then by this one.
 */
import path from 'node:path';
import type { VFile } from 'vfile';
import { checkpointPath } from './checkpoint.ts';
import { loadDocument, resultsDirFor, type LoadOptions } from './document.ts';
import type { Effects } from './effects.ts';
import { ENGINE_FORMAT_VERSION, PREVIOUS_ENGINE_FORMAT_VERSION, sameMeaning } from './key.ts';
import { lockStore } from './lock.ts';
import { previousSchemeStates } from './previous-scheme.ts';
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
  /**
   * What showed that a package a migrated cell reads at run time had the installed version
   * when the result was made (previous-scheme.ts) → the cells it showed it for.
   */
  evidence: Map<string, string[]>;
  /** Migrated cells whose key gained packages only through the cells they import (their results adopted). */
  throughImports: string[];
  /** Migrated cells whose key gained nothing (no package read at run time by them or the cells they import). */
  unchanged: string[];
  /** Fresh old-scheme entries of this document's cells that are not adopted (left as they are), and why. */
  notAdopted: { id: string; entry: string; reason: string }[];
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
  const out: StoreMigration = { profile, dir, exists: false, migrated: [], evidence: new Map(), throughImports: [], unchanged: [], notAdopted: [], finished: [], current: [], stale: [], missing: [], untouched: [], checkpoints: [] };
  if (!(await effects.exists(dir))) return out;
  out.exists = true;
  // Exact lookups only: this store does not read through previous-scheme keys.
  const store = new ResultStore(dir, effects);
  const release = await lockStore(dir, effects, {
    doc: path.basename(docPath),
    onWait: (holder) => options.onWait?.(`waiting for another build (${holder.doc}, pid ${holder.pid}, since ${holder.since}), which holds ${path.relative(process.cwd(), dir) || dir}`),
  });
  try {
    // What the store holds and what is adopted, looked at under the lock.
    const states = await previousSchemeStates({ order: usable, keys, store, docDir: path.dirname(docPath), effects });
    const used = new Set<string>();
    const renames = new Map<string, string>();
    const oldEntries: { id: string; key: string }[] = [];
    for (const id of usable) {
      const cellKey = keys.get(id)!;
      const previous = cellKey.previous;
      used.add(entryName(id, cellKey.key));
      const now = await store.exact(id, cellKey.key, cellKey.fingerprint);
      const old = previous === undefined || previous.key === cellKey.key ? undefined : await store.exact(id, previous.key, previous.fingerprint);
      if (previous !== undefined && old?.result !== undefined && cellKey.fingerprint !== undefined) {
        used.add(entryName(id, previous.key));
        if (now.result !== undefined) {
          out.finished.push(id);
        } else {
          const verdict = states.get(id)?.verdict ?? { ok: false as const, reason: 'its entry changed while the migration looked at the store' };
          if (!verdict.ok) {
            out.notAdopted.push({ id, entry: entryName(id, previous.key), reason: verdict.reason });
            out.missing.push(id);
            continue;
          }
          const rekeyed = await store.rekey(id, previous.key, cellKey.key, cellKey.fingerprint, previous.readAtRunTime);
          if (rekeyed.result === undefined) {
            throw new Error(`the re-keyed entry of cell "${id}" does not read back (${rekeyed.detail ?? rekeyed.problem}); the old entry ${entryName(id, previous.key)} is kept`);
          }
          out.migrated.push(id);
          for (const line of verdict.evidence) out.evidence.set(line, [...(out.evidence.get(line) ?? []), id]);
          if (verdict.evidence.length === 0) (sameMeaning(previous) ? out.unchanged : out.throughImports).push(id);
        }
        renames.set(entryName(id, previous.key), entryName(id, cellKey.key));
        oldEntries.push({ id, key: previous.key });
      } else if (now.result !== undefined) {
        out.current.push(id);
      } else {
        out.missing.push(id);
        if (previous !== undefined && sameMeaning(previous) && (await carryCheckpoint(projectRoot, id, previous.key, cellKey.key, effects))) out.checkpoints.push(id);
      }
    }
    await store.renameClaims(renames);
    for (const { id, key } of oldEntries) await store.remove(id, key);

    const cellIds = new Set(loaded.doc.cells.map((cell) => cell.id));
    for (const entry of await store.list()) {
      if (used.has(entry.base)) continue;
      if (cellIds.has(entry.id) && entry.engine !== ENGINE_FORMAT_VERSION) out.stale.push(entry.base);
      else out.untouched.push(entry.base);
    }
  } finally {
    await release();
  }
  return out;
}

/**
 * Moves the snapshot of `id` from its previous-scheme key to its key, unless one is there
 * already (also done by `report` before it runs a cell: a run killed under engine/2 resumes).
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
      `${s.notAdopted.length} not adopted`,
      `${s.stale.length} stale left${s.stale.length > 0 ? ` (old scheme, not fresh: ${s.stale.join(', ')})` : ''}`,
      `${s.missing.length} without a result`,
      `${s.untouched.length} other entries untouched`,
      ...(s.checkpoints.length > 0 ? [`${s.checkpoints.length} snapshot(s) carried over (${s.checkpoints.join(', ')})`] : []),
    ];
    lines.push(`${where}: ${parts.join(', ')}`);
    for (const [line, ids] of s.evidence) lines.push(`  adopted: ${line}: ${ids.join(', ')}`);
    if (s.throughImports.length > 0) lines.push(`  adopted: computed from the adopted results of the cells they import: ${s.throughImports.join(', ')}`);
    if (s.unchanged.length > 0) lines.push(`  adopted: no package read at run time, by them or the cells they import (the key gained nothing): ${s.unchanged.join(', ')}`);
    for (const { id, entry, reason } of s.notAdopted) lines.push(`  not adopted, left stale: ${id} (${entry}): ${reason}`);
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
    `${ids.length} result${ids.length === 1 ? ' is' : 's are'} stored in ${where} under the previous key scheme (${schemeName(PREVIOUS_ENGINE_FORMAT_VERSION)}, which did not hash the packages cells read at run time) ` +
      `and fresh under it, with the packages they read shown to be the installed ones (${shown}); they are used as they are and nothing re-runs. ` +
      `\`${migrateCommand(docPath, profile)}\` adopts them under the current keys`,
    { ruleId: 'old-key-scheme', source: 'report' },
  );
}

/** Why a cell's result stored under the previous key scheme is not used (check's `stale-result`, build's `old-key-scheme`). */
export function notAdoptedMessage(id: string, reason: string): string {
  return (
    `the result of cell "${id}" is stored under the previous key scheme (${schemeName(PREVIOUS_ENGINE_FORMAT_VERSION)}) and fresh under it, ` +
    `but nothing shows that the packages it reads at run time were the installed ones when it was made: ${reason}`
  );
}

/** `literate-report-engine/2` → `engine/2`. */
function schemeName(version: string): string {
  return version.replace(/^literate-report-/, '');
}
