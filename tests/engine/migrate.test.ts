/**
 * Keys of the code that runs and of the packages it reads at run time (engine/3), and the
 * migration of a store written under the previous scheme (engine/2, which did not hash the
 * packages read at run time): a store not migrated is read as it is where the packages read
 * at run time are shown (from package-lock.json in the history, through a fake git) to be
 * the installed ones — nothing re-runs, `old-key-scheme` warns — and `--migrate-keys`
 * re-keys exactly those entries (payload, metadata, `.owners`), leaves the others with the
 * reason, is idempotent, finishes an interrupted run, and handles every profile's store.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { build, type BuildOptions } from '../../src/engine/build.ts';
import { check } from '../../src/engine/check.ts';
import { checkpointPath } from '../../src/engine/checkpoint.ts';
import { loadDocument } from '../../src/engine/document.ts';
import { nodeEffects, type Effects } from '../../src/engine/effects.ts';
import { formatMigration, migrateKeys } from '../../src/engine/migrate.ts';
import { entryName, formatJson, ResultStore, type EntryMetadata } from '../../src/engine/store.ts';
import type { ResultMeta } from '../../src/engine/types.ts';
import { fakeExecutor } from '../support/fake-executor.ts';

let dir: string;
const silent = { write: () => {}, isTTY: false };

const DOC = `---
title: Migration
seed: 7
---

A is \`{ts} a\` and the sum is \`{ts} total\` \`{claim} total === 7\`.

\`\`\`ts run id=a
import { helper } from './lib/a.ts';
export const a: number = helper(2);
\`\`\`

\`\`\`ts run id=b
import { a } from 'cell:a';
export const total: number = a + 3;
\`\`\`

\`\`\`ts run id=c
export const c: string = 'independent';
\`\`\`
`;
/** lib/a.ts finds the data package `tiny-data` at run time (what a dataset loader does). */
const LIB_A =
  "import { createRequire } from 'node:module';\nimport { twice } from './b.ts';\n" +
  "const dataFile = (): string => createRequire(import.meta.url).resolve('tiny-data/package.json');\n" +
  'export const helper = (x: number): number => (dataFile().length > 0 ? twice(x) : 0);\n';
const LIB_B = 'export const twice = (x: number): number => 2 * x;\n';

/** A commit of the fake history: its sha is its name repeated, its lock pins tiny-data at `data`. */
interface FakeCommit {
  sha: string;
  date: string;
  lock: string;
}
let history: FakeCommit[];
function commit(name: string, date: string, data: string): FakeCommit {
  const lock = { name: 'fixture', lockfileVersion: 3, packages: { '': { name: 'fixture' }, 'node_modules/tiny-data': { version: data } } };
  return { sha: name.repeat(20).slice(0, 40), date, lock: JSON.stringify(lock, null, 2) };
}

/** git as previous-scheme.ts runs it, answered from `history` (HEAD is its last commit). */
async function fakeGit(_cwd: string, args: string[]): Promise<string | undefined> {
  const index = (sha: string) => history.findIndex((c) => c.sha === sha);
  const [command, ...rest] = args;
  if (command === 'rev-parse' && rest[0] === '--show-prefix') return '\n';
  if (command === 'cat-file' && rest[0] === '-e') return index(rest[1]!.replace('^{commit}', '')) >= 0 ? '' : undefined;
  if (command === 'show') {
    const [sha, file] = rest[0]!.split(':');
    return file === 'package-lock.json' ? history[index(sha!)]?.lock : undefined;
  }
  if (command === 'rev-list' && rest[0] === '-1') {
    const before = Date.parse(rest[1]!.replace('--before=', ''));
    return `${history.filter((c) => Date.parse(c.date) <= before).at(-1)?.sha ?? ''}\n`;
  }
  if (command === 'rev-list' && rest[0]!.endsWith('..HEAD')) {
    const from = index(rest[0]!.slice(0, -'..HEAD'.length));
    if (from < 0) return undefined;
    // The commits after `from` that changed the lockfile, newest first.
    return history.flatMap((c, i) => (i > from && c.lock !== history[i - 1]!.lock ? [`${c.sha}\n`] : [])).reverse().join('');
  }
  throw new Error(`fake git: unexpected ${args.join(' ')}`);
}

function executor() {
  return fakeExecutor({
    a: () => ({ exports: { a: 4 } }),
    b: (deps) => ({ exports: { total: (deps.a!.a as number) + 3 } }),
    c: () => ({ exports: { c: 'independent' } }),
  });
}
const effects = (): Effects => ({ ...nodeEffects({ stdout: silent }), git: fakeGit });
const nodeEffectsWithout = (): Effects => {
  const { git: _git, ...rest } = nodeEffects({ stdout: silent });
  return rest;
};
const docPath = () => path.join(dir, 'doc.md');
const results = (...parts: string[]) => path.join(dir, 'results', ...parts);

async function runBuild(extra: Partial<BuildOptions> = {}, ex = executor()) {
  const summary = await build({ docPath: docPath(), projectRoot: dir, outDir: path.join(dir, 'build'), pdf: false, ...extra, executor: ex }, effects());
  return { summary, calls: ex.calls };
}
const runCheck = (profile?: string) =>
  check({ docPath: docPath(), projectRoot: dir, cacheDir: path.join(dir, '.tc'), ...(profile ? { profile } : {}) }, effects());
const migrate = (profile?: string) => migrateKeys({ docPath: docPath(), projectRoot: dir, ...(profile ? { profile } : {}) }, effects());

/**
 * Turns the store of `profile` into what engine/2 wrote: every entry under the cell's
 * engine/2 key, with the engine/2 fingerprint and versions (no package read at run time),
 * made at commit c2 of the history, and `.owners` naming those entries.
 */
async function downgradeStore(profile = 'full'): Promise<void> {
  const loaded = await loadDocument({ docPath: docPath(), projectRoot: dir, profile }, effects());
  const store = loaded.store.dir;
  const renames = new Map<string, string>();
  for (const [id, cellKey] of loaded.keys) {
    const previous = cellKey.previous!;
    const from = entryName(id, cellKey.key);
    const to = entryName(id, previous.key);
    const metadata = JSON.parse(await readFile(path.join(store, `${from}.json`), 'utf8')) as EntryMetadata;
    metadata.key = previous.key;
    metadata.payload.file = `${to}.bin`;
    metadata.meta.fingerprint = previous.fingerprint;
    metadata.meta.versions = previous.fingerprint.packages;
    metadata.meta.environment = { cpu: 'x', cores: 1, os: 'y', node: 'v20', git: { commit: 'c2'.repeat(20), dirty: false } };
    metadata.meta.createdAt = '2026-11-21T11:00:00.000Z';
    await writeFile(path.join(store, `${to}.bin`), await readFile(path.join(store, `${from}.bin`)));
    await writeFile(path.join(store, `${to}.json`), `${formatJson(metadata)}\n`);
    await rm(path.join(store, `${from}.json`));
    await rm(path.join(store, `${from}.bin`));
    renames.set(from, to);
  }
  const owners = path.join(store, '.owners', 'doc.md.json');
  const claims = JSON.parse(await readFile(owners, 'utf8')) as { doc: string; entries: string[] };
  claims.entries = claims.entries.map((e) => renames.get(e) ?? e).sort();
  await writeFile(owners, `${JSON.stringify(claims, null, 2)}\n`);
}

/** Changes the metadata of the previous-scheme entry of `id` (`undefined` removes a field). */
async function setMeta(id: string, changes: Partial<ResultMeta>): Promise<void> {
  const loaded = await loadDocument({ docPath: docPath(), projectRoot: dir }, effects());
  const file = results(`${entryName(id, loaded.keys.get(id)!.previous!.key)}.json`);
  const metadata = JSON.parse(await readFile(file, 'utf8')) as EntryMetadata;
  metadata.meta = { ...metadata.meta, ...changes };
  await writeFile(file, `${formatJson(metadata)}\n`);
}

/** Every file of a folder (recursively) → its bytes, for before/after comparisons. */
async function snapshot(folder: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(folder, { recursive: true })).sort()) {
    const file = path.join(folder, name);
    try {
      out[name] = (await readFile(file)).toString('base64');
    } catch {
      // a folder
    }
  }
  return out;
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'report-migrate-'));
  history = [commit('c1', '2026-11-20T10:00:00Z', '1.0.0')];
  await mkdir(path.join(dir, 'lib'), { recursive: true });
  await mkdir(path.join(dir, 'node_modules', 'tiny-data'), { recursive: true });
  await writeFile(path.join(dir, 'node_modules', 'tiny-data', 'package.json'), JSON.stringify({ name: 'tiny-data', version: '1.0.0' }));
  await writeFile(path.join(dir, 'lib', 'a.ts'), LIB_A);
  await writeFile(path.join(dir, 'lib', 'b.ts'), LIB_B);
  await writeFile(docPath(), DOC);
  await runBuild();
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('edits that do not change what runs', () => {
  it('a comment-only and a formatting edit in an imported file and in a cell re-run nothing; check stays fresh', async () => {
    await writeFile(path.join(dir, 'lib', 'b.ts'), `/** Doubles x. */\nexport const twice = (\n  x: number, // the value\n): number => 2 * x;\n`);
    await writeFile(docPath(), DOC.replace("export const c: string = 'independent';", "// a note\nexport const c = 'independent' ;"));
    const { calls, summary } = await runBuild();
    expect(calls).toEqual([]);
    expect(summary.file.messages.map(String)).toEqual([]);
    const checked = await runCheck();
    expect(checked.fresh.sort()).toEqual(['a', 'b', 'c']);
    expect(checked.file.messages.map(String)).toEqual([]);
  });

  it('check names a changed file only when what it runs changed', async () => {
    await writeFile(path.join(dir, 'lib', 'a.ts'), `// only a comment here\n${LIB_A}`);
    await writeFile(path.join(dir, 'lib', 'b.ts'), LIB_B.replace('2 * x', '3 * x'));
    const checked = await runCheck();
    const reasons = checked.file.messages.filter((m) => m.ruleId === 'stale-result').map((m) => m.reason);
    expect(reasons).toHaveLength(2);
    expect(reasons[0]).toMatch(/result of cell "a" is stale \(lib\/b\.ts changed\)/);
    expect(reasons[0]).not.toContain('lib/a.ts');
    expect(reasons[1]).toMatch(/result of cell "b" is stale \(the result of cell "a" it imports changed\)/);
  });
});

describe('a store written under the previous key scheme (engine/2)', () => {
  // engine/2 results made at commit c2 (tiny-data 1.0.0 locked since c1, nothing changed since).
  beforeEach(async () => {
    history = [commit('c1', '2026-11-20T10:00:00Z', '1.0.0'), commit('c2', '2026-11-21T10:00:00Z', '1.0.0')];
    await downgradeStore();
  });

  it('check: every result fresh, read through the verified previous-scheme entries, one old-key-scheme warning naming the command', async () => {
    const checked = await runCheck();
    expect(checked.fresh.sort()).toEqual(['a', 'b', 'c']);
    expect(checked.legacy.sort()).toEqual(['a', 'b', 'c']);
    expect(checked.stale).toEqual([]);
    const rules = checked.file.messages.map((m) => m.ruleId);
    expect(rules).toEqual(['old-key-scheme']);
    const [message] = checked.file.messages;
    expect(message!.fatal).not.toBe(true);
    expect(message!.line).toBeUndefined();
    expect(message!.reason).toContain('3 results are stored in');
    expect(message!.reason).toContain('previous key scheme (engine/2');
    expect(message!.reason).toContain('--migrate-keys');
  });

  it('build: runs nothing, warns, and its clean-up keeps the previous-scheme entries', async () => {
    const before = await snapshot(results());
    const { calls, summary } = await runBuild();
    expect(calls).toEqual([]);
    expect(summary.fresh.sort()).toEqual(['a', 'b', 'c']);
    expect(summary.file.messages.map((m) => m.ruleId)).toEqual(['old-key-scheme']);
    expect(await snapshot(results())).toEqual(before);
  });

  it('--migrate-keys re-keys every verified entry (payload bytes, metadata, .owners), says how, then check is clean; a second run does nothing', async () => {
    const loaded = await loadDocument({ docPath: docPath(), projectRoot: dir }, effects());
    const payloads = new Map<string, string>();
    for (const [id, k] of loaded.keys) payloads.set(id, (await readFile(results(`${entryName(id, k.previous!.key)}.bin`))).toString('base64'));

    const summary = await migrate();
    const [store] = summary.stores;
    expect(store!.migrated.sort()).toEqual(['a', 'b', 'c']);
    expect(store!.notAdopted).toEqual([]);
    const printed = formatMigration(summary);
    expect(printed).toContain('3 migrated to the current key scheme, 0 already current, 0 not adopted, 0 stale left');
    expect(printed).toContain('adopted: tiny-data 1.0.0 locked at commit c2c2c2c2c2c2, recorded with the result, and in every commit since: a');
    expect(printed).toContain('computed from the adopted results of the cells they import: b');
    expect(printed).toContain('the key gained nothing): c');

    const names = (await readdir(results())).filter((n) => !n.startsWith('.')).sort();
    expect(names).toEqual([...loaded.keys].flatMap(([id, k]) => [`${entryName(id, k.key)}.bin`, `${entryName(id, k.key)}.json`]).sort());
    for (const [id, k] of loaded.keys) {
      expect((await readFile(results(`${entryName(id, k.key)}.bin`))).toString('base64')).toBe(payloads.get(id));
      const metadata = JSON.parse(await readFile(results(`${entryName(id, k.key)}.json`), 'utf8')) as EntryMetadata;
      expect(metadata.key).toBe(k.key);
      expect(metadata.payload.file).toBe(`${entryName(id, k.key)}.bin`);
      expect(metadata.meta.fingerprint).toEqual(k.fingerprint);
      expect(metadata.meta.migratedFrom).toBe(k.previous!.key);
      expect(metadata.meta.previousKey).toBe(k.previous!.key);
      expect(metadata.meta.versions).toEqual(id === 'a' ? { 'tiny-data': '1.0.0' } : {});
    }
    const owners = JSON.parse(await readFile(results('.owners', 'doc.md.json'), 'utf8')) as { entries: string[] };
    expect(owners.entries).toEqual([...loaded.keys].map(([id, k]) => entryName(id, k.key)).sort());

    const checked = await runCheck();
    expect(checked.fresh.sort()).toEqual(['a', 'b', 'c']);
    expect(checked.legacy).toEqual([]);
    expect(checked.file.messages.map(String)).toEqual([]);
    expect((await runBuild()).calls).toEqual([]);

    const after = await snapshot(results());
    const again = await migrate();
    expect(again.stores[0]!.migrated).toEqual([]);
    expect(again.stores[0]!.current.sort()).toEqual(['a', 'b', 'c']);
    expect(await snapshot(results())).toEqual(after);
  });

  describe('a lock changed after the commit a result was made at', () => {
    beforeEach(() => {
      // c3 locked tiny-data 0.9.0 for a while, c4 went back to 1.0.0: nothing shows which
      // version a result of c2 would have had, had it been made after c3.
      history.push(commit('c3', '2026-11-22T10:00:00Z', '0.9.0'), commit('c4', '2026-11-23T10:00:00Z', '1.0.0'));
    });

    it('--migrate-keys leaves the entry (and the one computed from it) stale, printing why; the cell that reads nothing is migrated', async () => {
      const before = (await readdir(results())).filter((n) => /^[ab]\./.test(n)).sort();
      const summary = await migrate();
      const [store] = summary.stores;
      expect(store!.migrated).toEqual(['c']);
      expect(store!.notAdopted.map((n) => n.id)).toEqual(['a', 'b']);
      const printed = formatMigration(summary);
      expect(printed).toContain('1 migrated to the current key scheme, 0 already current, 2 not adopted');
      expect(printed).toMatch(/not adopted, left stale: a \(a\.[0-9a-f]{16}\): commit c3c3c3c3c3c3, after the result was made, locks tiny-data 0\.9\.0 \(1\.0\.0 at c2c2c2c2c2c2 and installed\)/);
      expect(printed).toMatch(/not adopted, left stale: b \(b\.[0-9a-f]{16}\): the result of cell "a" it was computed from is not adopted: commit c3c3c3c3c3c3/);
      expect((await readdir(results())).filter((n) => /^[ab]\./.test(n)).sort()).toEqual(before);
      // A second run says the same and changes nothing.
      const after = await snapshot(results());
      expect((await migrate()).stores[0]!.notAdopted.map((n) => n.id)).toEqual(['a', 'b']);
      expect(await snapshot(results())).toEqual(after);
    });

    it('check reports them stale with the reason; report runs them again and says why', async () => {
      const checked = await runCheck();
      expect(checked.fresh).toEqual(['c']);
      expect(checked.stale).toEqual(['a', 'b']);
      const reasons = checked.file.messages.filter((m) => m.ruleId === 'stale-result').map((m) => m.reason);
      expect(reasons[0]).toContain('the result of cell "a" is stored under the previous key scheme (engine/2) and fresh under it, but nothing shows');
      expect(reasons[0]).toContain('commit c3c3c3c3c3c3, after the result was made, locks tiny-data 0.9.0');
      const { calls, summary } = await runBuild();
      expect(calls).toEqual(['a', 'b']);
      const warnings = summary.file.messages.filter((m) => m.ruleId === 'old-key-scheme').map((m) => m.reason);
      expect(warnings).toHaveLength(3);
      expect(warnings[0]).toMatch(/^1 result is stored in .* \(c\)/);
      expect(warnings[1]).toMatch(/^the result of cell "a" .*commit c3c3c3c3c3c3.*; it runs again$/);
      expect(warnings[2]).toMatch(/^the result of cell "b" .*; it runs again$/);
    });
  });

  it('a result without a recorded environment is checked from the last commit at or before it was made', async () => {
    // tiny-data was 0.9.0 until c2, 1.0.0 from c2: a result made after c2 is adopted, one made before is not.
    history = [commit('c1', '2026-11-20T10:00:00Z', '0.9.0'), commit('c2', '2026-11-21T10:00:00Z', '1.0.0')];
    await setMeta('a', { environment: undefined, createdAt: '2026-11-21T12:00:00.000Z' });
    const summary = await migrate();
    expect(summary.stores[0]!.migrated.sort()).toEqual(['a', 'b', 'c']);
    expect(formatMigration(summary)).toContain('tiny-data 1.0.0 locked at commit c2c2c2c2c2c2, the last at or before the time the result was made (no commit recorded), and in every commit since: a');
  });

  it('a result without a recorded environment made before the lock had the installed version is not adopted', async () => {
    history = [commit('c1', '2026-11-20T10:00:00Z', '0.9.0'), commit('c2', '2026-11-21T10:00:00Z', '1.0.0')];
    await setMeta('a', { environment: undefined, createdAt: '2026-11-20T12:00:00.000Z' });
    const summary = await migrate();
    expect(summary.stores[0]!.migrated).toEqual(['c']);
    expect(summary.stores[0]!.notAdopted[0]!.reason).toBe('package-lock.json locks tiny-data 0.9.0 at commit c1c1c1c1c1c1, 1.0.0 is installed');
  });

  it('a result whose recorded commit is not in the repository (history rewritten) is checked from the time it was made', async () => {
    await setMeta('a', { environment: { cpu: 'x', cores: 1, os: 'y', node: 'v20', git: { commit: 'f'.repeat(40), dirty: false } }, createdAt: '2026-11-21T12:00:00.000Z' });
    const summary = await migrate();
    expect(summary.stores[0]!.migrated.sort()).toEqual(['a', 'b', 'c']);
    expect(formatMigration(summary)).toContain('locked at commit c2c2c2c2c2c2, the last at or before the time the result was made (its commit ffffffffffff is not in this repository)');
  });

  it('without git nothing is adopted that needs the history; what needs none is', async () => {
    const summary = await migrateKeys({ docPath: docPath(), projectRoot: dir }, nodeEffectsWithout());
    expect(summary.stores[0]!.migrated).toEqual(['c']);
    expect(summary.stores[0]!.notAdopted[0]!.reason).toContain('git is not available');
  });

  it('a cell whose imported cell was adopted by an earlier migration is adopted later (meta.migratedFrom)', async () => {
    // b edited: its previous-scheme entry is not fresh, a and c are migrated.
    await writeFile(docPath(), DOC.replace('a + 3', 'a + 4'));
    expect((await migrate()).stores[0]!.migrated.sort()).toEqual(['a', 'c']);
    // The edit undone: b's entry is fresh again, and a's result it was computed from was adopted.
    await writeFile(docPath(), DOC);
    expect((await migrate()).stores[0]!.migrated).toEqual(['b']);
    expect((await runCheck()).file.messages.map(String)).toEqual([]);
  });

  it('… but not when that cell was computed again under the current scheme', async () => {
    await writeFile(docPath(), DOC.replace('a + 3', 'a + 4'));
    await migrate();
    // "a" computed again; its dependent fails, so the build removes nothing (b's entry stays).
    const failing = fakeExecutor({ a: () => ({ exports: { a: 4 } }), b: () => { throw new Error('no'); } });
    expect((await runBuild({ rerun: ['a'] }, failing)).calls).toEqual(['a', 'b']);
    await writeFile(docPath(), DOC);
    const summary = await migrate();
    expect(summary.stores[0]!.notAdopted).toEqual([
      { id: 'b', entry: expect.stringMatching(/^b\./) as unknown as string, reason: 'the result of cell "a" it was computed from is not adopted: it was computed again under the current key scheme' },
    ]);
  });

  it('leaves entries of cells it does not know alone', async () => {
    const other = results('other.0123456789abcdef.json');
    await writeFile(other, JSON.stringify({ format: 'literate-report-result/1', id: 'other', key: '0123456789abcdef'.repeat(4), meta: {} }));
    const summary = await migrate();
    expect(summary.stores[0]!.untouched).toEqual(['other.0123456789abcdef']);
    expect(await readFile(other, 'utf8')).toContain('"other"');
  });

  it('finishes an interrupted migration (new entry written, old one not yet removed)', async () => {
    const loaded = await loadDocument({ docPath: docPath(), projectRoot: dir }, effects());
    const a = loaded.keys.get('a')!;
    // What a kill between the copy and the removal leaves: both entries of "a".
    await new ResultStore(results(), effects()).rekey('a', a.previous!.key, a.key, a.fingerprint!, a.previous!.readAtRunTime);
    const summary = await migrate();
    expect(summary.stores[0]!.finished).toEqual(['a']);
    expect(summary.stores[0]!.migrated.sort()).toEqual(['b', 'c']);
    expect(await readdir(results())).not.toContain(`${entryName('a', a.previous!.key)}.json`);
    expect((await runCheck()).file.messages.map(String)).toEqual([]);
  });

  it('carries a snapshot of a cell without a result over to its new key, only when its key gained nothing', async () => {
    const loaded = await loadDocument({ docPath: docPath(), projectRoot: dir }, effects());
    for (const id of ['a', 'c']) {
      const k = loaded.keys.get(id)!;
      await rm(results(`${entryName(id, k.previous!.key)}.json`));
      const from = checkpointPath(dir, id, k.previous!.key);
      await mkdir(path.dirname(from), { recursive: true });
      await writeFile(from, 'state');
    }
    const summary = await migrate();
    expect(summary.stores[0]!.checkpoints).toEqual(['c']);
    expect(await readFile(checkpointPath(dir, 'c', loaded.keys.get('c')!.key), 'utf8')).toBe('state');
    expect(await readFile(checkpointPath(dir, 'a', loaded.keys.get('a')!.previous!.key), 'utf8')).toBe('state');
  });

  it('report resumes a run killed under the previous scheme: the snapshot moves to the new key before the cell runs', async () => {
    const loaded = await loadDocument({ docPath: docPath(), projectRoot: dir }, effects());
    const c = loaded.keys.get('c')!;
    await rm(results(`${entryName('c', c.previous!.key)}.json`));
    const from = checkpointPath(dir, 'c', c.previous!.key);
    await mkdir(path.dirname(from), { recursive: true });
    await writeFile(from, 'epoch 3');
    const seen: string[] = [];
    const ex = executor();
    const run = ex.run.bind(ex);
    ex.run = async (job, hooks) => {
      seen.push(await readFile(job.checkpointPath!, 'utf8'));
      return run(job, hooks);
    };
    const { calls } = await runBuild({}, ex);
    expect(calls).toEqual(['c']);
    expect(seen).toEqual(['epoch 3']);
    expect(await readdir(path.dirname(from))).toEqual([]);
  });

  it('leaves a stale previous-scheme entry (and its dependents) as they are; check explains it against the previous scheme', async () => {
    await writeFile(path.join(dir, 'lib', 'b.ts'), LIB_B.replace('2 * x', '3 * x'));
    const staleBefore = (await readdir(results())).filter((n) => /^[ab]\./.test(n)).sort();
    const summary = await migrate();
    const [store] = summary.stores;
    expect(store!.migrated).toEqual(['c']);
    expect(store!.missing.sort()).toEqual(['a', 'b']);
    expect(store!.stale.sort()).toEqual(staleBefore.filter((n) => n.endsWith('.json')).map((n) => n.replace(/\.json$/, '')).sort());
    expect((await readdir(results())).filter((n) => /^[ab]\./.test(n)).sort()).toEqual(staleBefore);
    const reasons = (await runCheck()).file.messages.filter((m) => m.ruleId === 'stale-result').map((m) => m.reason);
    expect(reasons[0]).toMatch(/cell "a" is stale \(lib\/b\.ts changed since its result stored under the previous key scheme\)/);
  });
});

it('migrates the quick profile store too (every profile without --profile, only one with it)', async () => {
  history = [commit('c1', '2026-11-20T10:00:00Z', '1.0.0'), commit('c2', '2026-11-21T10:00:00Z', '1.0.0')];
  await runBuild({ profile: 'quick' });
  await downgradeStore();
  await downgradeStore('quick');
  const quickOnly = await migrate('quick');
  expect(quickOnly.stores.map((s) => [s.profile, s.migrated.length])).toEqual([['quick', 3]]);
  expect((await runCheck('quick')).legacy).toEqual([]);
  expect((await runCheck()).legacy.sort()).toEqual(['a', 'b', 'c']);

  const all = await migrate();
  expect(all.stores.map((s) => [s.profile, s.migrated.length, s.current.length])).toEqual([
    ['full', 3, 0],
    ['quick', 0, 3],
  ]);
  expect((await runCheck()).file.messages.map(String)).toEqual([]);
});
