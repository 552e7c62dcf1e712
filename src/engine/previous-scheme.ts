/**
 * Which results stored under the previous key scheme (engine/2) may be used under the
 * current one (engine/3), by `report` and `check` before the store is migrated and by
 * `report --migrate-keys` (migrate.ts) to re-key them.
 *
 * engine/3 hashes what engine/2 hashed plus the installed version of every package a cell
 * resolves at run time (bundle.ts, run-time-packages.ts). A result stored under a cell's
 * engine/2 key computed today is fresh under engine/2: same code, options, project files,
 * imported packages, profile and seed. It is adopted only when, besides, each package the
 * engine/3 key adds is shown to have had, when the result was made, the version installed
 * now — read from the project's history with git (`effects.git`):
 *
 *   - the commit the result was made at: `meta.environment.git.commit`; for a result
 *     without a recorded environment, or whose commit is not in this repository (history
 *     rewritten since), the last commit of HEAD at or before its `createdAt`;
 *   - `package-lock.json` at that commit locks the package (`packages["node_modules/<name>"]`)
 *     at the installed version, and no later commit up to HEAD locks another version of it
 *     (a lock change left uncommitted when the result was made is caught too once it was
 *     committed; a change made and undone without a commit, or an `npm install --no-save`,
 *     is not in the history, and nothing can show it);
 *   - and every imported cell whose key gained such a package is adopted too (its result,
 *     which this one was computed from, passes the same test), or was adopted by an earlier
 *     migration (`meta.migratedFrom`).
 *
 * A result that cannot be shown so — no git, not a repository, the lock changed, an
 * imported cell's result recomputed — is not adopted: `report` runs the cell again, `check`
 * reports it stale with the reason, and `--migrate-keys` leaves it as it is, saying why.
 * A cell whose key gained nothing (no package read at run time, in it or in the cells it
 * imports) needs no history: its engine/2 freshness is engine/3 freshness.
 *
 * Why verify when reading through instead of never reading through: a store not migrated
 * would otherwise make the first `report` after an upgrade re-run every cell that reads a
 * dataset (hours of training) before anyone reads `check`'s warning; the git reads happen
 * only for cells whose result is still stored under the previous scheme, and once per
 * command (memoised).
 */
import path from 'node:path';
import type { Effects } from './effects.ts';
import { sameMeaning, type CellKey } from './key.ts';
import type { ResultStore } from './store.ts';
import type { ResultMeta } from './types.ts';

/**
 * Whether a result may be used under a newer key: what shows it (one line per package read
 * at run time by the cell itself; none when only cells it imports read one, or its key
 * gained nothing), or why it cannot be.
 */
export type Verdict = { ok: true; evidence: string[] } | { ok: false; reason: string };

/** What the store holds for a cell, between the two schemes. */
export interface PreviousSchemeState {
  /** An entry (`.json`) is stored under the cell's current key. */
  current: boolean;
  /** An entry (`.json`) is stored under the cell's previous-scheme key. */
  previous: boolean;
  /**
   * With `previous`: whether that entry's result may be used under the current key (it is
   * still read through the checksum and fingerprint checks).
   */
  verdict?: Verdict;
}

export interface PreviousSchemeOptions {
  /** Cells to look at (usable: keyed without error, their imported cells too). */
  order: string[];
  keys: ReadonlyMap<string, CellKey>;
  /** The results folder, read with exact keys. */
  store: ResultStore;
  /** Folder of the document: where packages resolve from. */
  docDir: string;
  effects: Effects;
}

/** The state of every cell of `order` that has a previous-scheme key. */
export async function previousSchemeStates(options: PreviousSchemeOptions): Promise<Map<string, PreviousSchemeState>> {
  const { keys, store } = options;
  const history = packageHistory(options.effects, options.docDir);
  const metas = new Map<string, Promise<{ current: ResultMeta | undefined; previous: ResultMeta | undefined }>>();
  const metaOf = (id: string) => {
    let p = metas.get(id);
    if (p === undefined) {
      const key = keys.get(id)!;
      p = Promise.all([store.metadata(id, key.key), key.previous === undefined ? undefined : store.metadata(id, key.previous.key)]).then(([now, old]) => ({
        current: now?.meta,
        previous: old?.meta,
      }));
      metas.set(id, p);
    }
    return p;
  };
  const verdicts = new Map<string, Promise<Verdict>>();
  /** Whether the result stored under the previous key of `id` may be used under its key. */
  const verdictOf = (id: string): Promise<Verdict> => {
    let p = verdicts.get(id);
    if (p === undefined) {
      p = (async (): Promise<Verdict> => {
        const previous = keys.get(id)!.previous!;
        if (sameMeaning(previous)) return { ok: true, evidence: [] };
        const { previous: meta } = await metaOf(id);
        if (meta === undefined) return { ok: false, reason: 'no result is stored under its previous-scheme key' };
        const own = await history.verify(meta, previous.readAtRunTime);
        if (!own.ok) return own;
        for (const dep of previous.depsReadAtRunTime) {
          const lineage = await lineageOf(dep);
          if (!lineage.ok) return { ok: false, reason: `the result of cell "${dep}" it was computed from is not adopted: ${lineage.reason}` };
        }
        return own;
      })();
      verdicts.set(id, p);
    }
    return p;
  };
  /** Whether the previous-scheme result of an imported cell, which a dependent was computed from, is (or was) adopted. */
  const lineageOf = async (id: string): Promise<Verdict> => {
    const key = keys.get(id);
    if (key?.previous === undefined) return { ok: false, reason: 'it has no previous-scheme key' };
    const { current, previous } = await metaOf(id);
    if (previous !== undefined) return verdictOf(id);
    if (current?.migratedFrom === key.previous.key) return { ok: true, evidence: [] };
    return { ok: false, reason: current === undefined ? 'it has no stored result' : 'it was computed again under the current key scheme' };
  };

  const out = new Map<string, PreviousSchemeState>();
  await Promise.all(
    options.order.map(async (id) => {
      const key = keys.get(id);
      if (key?.previous === undefined || key.error !== undefined) return;
      // Two file checks per cell when nothing is left to adopt (the common case).
      const [current, previous] = await Promise.all([store.has(id, key.key), store.has(id, key.previous.key)]);
      const state: PreviousSchemeState = { current, previous };
      if (previous) state.verdict = await verdictOf(id);
      out.set(id, state);
    }),
  );
  return out;
}

/**
 * Shows from the project's history that packages had given versions when a result was
 * made (see the header). Git reads and lockfiles are memoised for the command.
 */
export function packageHistory(effects: Effects, docDir: string): { verify(meta: ResultMeta, packages: Record<string, string>): Promise<Verdict> } {
  const calls = new Map<string, Promise<string | undefined>>();
  const git = (cwd: string, args: string[]): Promise<string | undefined> => {
    const id = JSON.stringify([cwd, args]);
    let p = calls.get(id);
    if (p === undefined) {
      p = effects.git === undefined ? Promise.resolve(undefined) : effects.git(cwd, args);
      calls.set(id, p);
    }
    return p;
  };
  const locks = new Map<string, Promise<unknown>>();
  /** The lockfile at `commit`, parsed; undefined when git cannot show it or it is not JSON. */
  const lockAt = (cwd: string, lockPath: string, commit: string): Promise<unknown> => {
    const id = `${cwd}\0${commit}`;
    let p = locks.get(id);
    if (p === undefined) {
      p = git(cwd, ['show', `${commit}:${lockPath}`]).then((text) => {
        try {
          return text === undefined ? undefined : (JSON.parse(text) as unknown);
        } catch {
          return undefined;
        }
      });
      locks.set(id, p);
    }
    return p;
  };
  /** The folder whose node_modules holds `name` (as bundle.ts resolves it) and its lockfile. */
  const installedAt = async (name: string): Promise<string | undefined> => {
    for (let dir = docDir; ; dir = path.dirname(dir)) {
      if (await effects.exists(path.join(dir, 'node_modules', name, 'package.json'))) return dir;
      if (path.dirname(dir) === dir) return undefined;
    }
  };

  const verifyOne = async (meta: ResultMeta, name: string, version: string): Promise<Verdict> => {
    if (effects.git === undefined) return { ok: false, reason: `git is not available to read which version of ${name} package-lock.json locked when the result was made` };
    const cwd = await installedAt(name);
    if (cwd === undefined) return { ok: false, reason: `${name} is not installed` };
    const prefix = await git(cwd, ['rev-parse', '--show-prefix']);
    if (prefix === undefined) return { ok: false, reason: `${path.relative(process.cwd(), cwd) || '.'} is not in a git repository (or git cannot run): nothing shows which version of ${name} was locked when the result was made` };
    const lockPath = `${prefix.trim()}package-lock.json`;

    const recorded = meta.environment?.git;
    let commit: string | undefined;
    let at: string;
    if (recorded !== undefined && (await git(cwd, ['cat-file', '-e', `${recorded.commit}^{commit}`])) !== undefined) {
      commit = recorded.commit;
      at = `at commit ${short(commit)}, recorded with the result${recorded.dirty ? ' (with uncommitted changes)' : ''},`;
    } else {
      const why = recorded === undefined ? 'no commit recorded' : `its commit ${short(recorded.commit)} is not in this repository`;
      if (typeof meta.createdAt !== 'string' || Number.isNaN(Date.parse(meta.createdAt))) return { ok: false, reason: `${why}, and no time it was made is recorded` };
      commit = (await git(cwd, ['rev-list', '-1', `--before=${new Date(meta.createdAt).toISOString()}`, 'HEAD']))?.trim() || undefined;
      if (commit === undefined) return { ok: false, reason: `${why}, and HEAD has no commit at or before ${meta.createdAt}, when it was made` };
      at = `at commit ${short(commit)}, the last at or before the time the result was made (${why}),`;
    }

    const locked = lockedVersion(await lockAt(cwd, lockPath, commit), name);
    if (locked === undefined) return { ok: false, reason: `package-lock.json does not lock ${name} at commit ${short(commit)}` };
    if (locked !== version) return { ok: false, reason: `package-lock.json locks ${name} ${locked} at commit ${short(commit)}, ${version} is installed` };
    const later = await git(cwd, ['rev-list', `${commit}..HEAD`, '--', lockPath]);
    if (later === undefined) return { ok: false, reason: `git cannot list the commits after ${short(commit)}` };
    for (const after of later.split('\n').filter((line) => /^[0-9a-f]{40}$/.test(line))) {
      const then = lockedVersion(await lockAt(cwd, lockPath, after), name);
      if (then !== version) return { ok: false, reason: `commit ${short(after)}, after the result was made, locks ${name} ${then ?? 'not at all'} (${version} at ${short(commit)} and installed)` };
    }
    return { ok: true, evidence: [`${name} ${version} locked ${at} and in every commit since`] };
  };

  return {
    async verify(meta, packages) {
      const evidence: string[] = [];
      for (const [name, version] of Object.entries(packages).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
        const verdict = await verifyOne(meta, name, version);
        if (!verdict.ok) return verdict;
        evidence.push(...verdict.evidence);
      }
      return { ok: true, evidence };
    },
  };
}

/** The version a package-lock.json (lockfile v2/v3 `packages`, v1 `dependencies`) locks `name` at. */
export function lockedVersion(lock: unknown, name: string): string | undefined {
  const l = lock as { packages?: Record<string, { version?: unknown }>; dependencies?: Record<string, { version?: unknown }> } | undefined;
  const version = l?.packages?.[`node_modules/${name}`]?.version ?? l?.dependencies?.[name]?.version;
  return typeof version === 'string' ? version : undefined;
}

function short(commit: string): string {
  return commit.slice(0, 12);
}
