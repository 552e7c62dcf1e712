/**
 * Keys of the code that runs (engine/2) and the migration of a store written under the
 * previous scheme (engine/1, keys of source text): a store not migrated is read as it is
 * (nothing re-runs, `old-key-scheme` warns), `--migrate-keys` re-keys exactly the fresh
 * old-scheme entries (payload, metadata, `.owners`), leaves stale and unrelated ones, is
 * idempotent, finishes an interrupted run, and handles every profile's store.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { build, type BuildOptions } from '../../src/engine/build.ts';
import { check } from '../../src/engine/check.ts';
import { checkpointPath } from '../../src/engine/checkpoint.ts';
import { loadDocument } from '../../src/engine/document.ts';
import { nodeEffects } from '../../src/engine/effects.ts';
import { formatMigration, migrateKeys } from '../../src/engine/migrate.ts';
import { entryName, formatJson, type EntryMetadata } from '../../src/engine/store.ts';
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
const LIB_A = "import { twice } from './b.ts';\nexport const helper = (x: number): number => twice(x);\n";
const LIB_B = 'export const twice = (x: number): number => 2 * x;\n';

function executor() {
  return fakeExecutor({
    a: () => ({ exports: { a: 4 } }),
    b: (deps) => ({ exports: { total: (deps.a!.a as number) + 3 } }),
    c: () => ({ exports: { c: 'independent' } }),
  });
}
const effects = () => nodeEffects({ stdout: silent });
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
 * Turns the store of `profile` into what engine/1 wrote: every entry under the cell's
 * engine/1 key, with the engine/1 fingerprint, and `.owners` naming those entries.
 */
async function downgradeStore(profile = 'full'): Promise<void> {
  const loaded = await loadDocument({ docPath: docPath(), projectRoot: dir, profile }, effects());
  const store = loaded.store.dir;
  const renames = new Map<string, string>();
  for (const [id, cellKey] of loaded.keys) {
    const legacy = cellKey.legacyKeyV1!;
    const from = entryName(id, cellKey.key);
    const to = entryName(id, legacy.key);
    const metadata = JSON.parse(await readFile(path.join(store, `${from}.json`), 'utf8')) as EntryMetadata;
    metadata.key = legacy.key;
    metadata.payload.file = `${to}.bin`;
    metadata.meta.fingerprint = legacy.fingerprint;
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
  await mkdir(path.join(dir, 'lib'), { recursive: true });
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

describe('a store written under the previous key scheme', () => {
  beforeEach(async () => {
    await downgradeStore();
  });

  it('check: every result fresh, one old-key-scheme warning naming the command, no stale-result, claims evaluated', async () => {
    const checked = await runCheck();
    expect(checked.fresh.sort()).toEqual(['a', 'b', 'c']);
    expect(checked.legacy.sort()).toEqual(['a', 'b', 'c']);
    expect(checked.stale).toEqual([]);
    expect(checked.missing).toEqual([]);
    const rules = checked.file.messages.map((m) => m.ruleId);
    expect(rules).toEqual(['old-key-scheme']);
    const [message] = checked.file.messages;
    expect(message!.fatal).not.toBe(true);
    expect(message!.line).toBeUndefined();
    expect(message!.reason).toContain('3 results are stored in');
    expect(message!.reason).toContain('previous key scheme');
    expect(message!.reason).toContain('--migrate-keys');
  });

  it('build: runs nothing, warns, and its clean-up keeps the old-scheme entries', async () => {
    const before = await snapshot(results());
    const { calls, summary } = await runBuild();
    expect(calls).toEqual([]);
    expect(summary.fresh.sort()).toEqual(['a', 'b', 'c']);
    expect(summary.file.messages.map((m) => m.ruleId)).toEqual(['old-key-scheme']);
    expect(summary.failedHtmlPath).toBeUndefined();
    expect(await snapshot(results())).toEqual(before);
  });

  it('--migrate-keys re-keys every fresh entry (payload bytes, metadata, .owners), then check is clean; a second run does nothing', async () => {
    const loaded = await loadDocument({ docPath: docPath(), projectRoot: dir }, effects());
    const payloads = new Map<string, string>();
    for (const [id, k] of loaded.keys) payloads.set(id, (await readFile(results(`${entryName(id, k.legacyKeyV1!.key)}.bin`))).toString('base64'));

    const summary = await migrate();
    expect(summary.stores).toHaveLength(1);
    const [store] = summary.stores;
    expect(store!.migrated.sort()).toEqual(['a', 'b', 'c']);
    expect(store!.stale).toEqual([]);
    expect(store!.untouched).toEqual([]);
    expect(formatMigration(summary)).toContain('3 migrated to the current key scheme, 0 already current, 0 stale left');

    const names = (await readdir(results())).filter((n) => !n.startsWith('.')).sort();
    const expected = [...loaded.keys].flatMap(([id, k]) => [`${entryName(id, k.key)}.bin`, `${entryName(id, k.key)}.json`]).sort();
    expect(names).toEqual(expected);
    for (const [id, k] of loaded.keys) {
      expect((await readFile(results(`${entryName(id, k.key)}.bin`))).toString('base64')).toBe(payloads.get(id));
      const metadata = JSON.parse(await readFile(results(`${entryName(id, k.key)}.json`), 'utf8')) as EntryMetadata;
      expect(metadata.key).toBe(k.key);
      expect(metadata.payload.file).toBe(`${entryName(id, k.key)}.bin`);
      expect(metadata.meta.fingerprint).toEqual(k.fingerprint);
      expect(metadata.meta.previousKey).toBe(k.legacyKeyV1!.key);
    }
    const owners = JSON.parse(await readFile(results('.owners', 'doc.md.json'), 'utf8')) as { entries: string[] };
    expect(owners.entries).toEqual([...loaded.keys].map(([id, k]) => entryName(id, k.key)).sort());

    const checked = await runCheck();
    expect(checked.fresh.sort()).toEqual(['a', 'b', 'c']);
    expect(checked.legacy).toEqual([]);
    expect(checked.file.messages.map(String)).toEqual([]);
    const { calls } = await runBuild();
    expect(calls).toEqual([]);

    const after = await snapshot(results());
    const again = await migrate();
    expect(again.stores[0]!.migrated).toEqual([]);
    expect(again.stores[0]!.current.sort()).toEqual(['a', 'b', 'c']);
    expect(await snapshot(results())).toEqual(after);
  });

  it('leaves a stale old-scheme entry (and its dependents) as they are; check explains it against the old scheme', async () => {
    // A comment in lib/b.ts: engine/1's key of "a" no longer matches, so nothing proves that
    // the stored "a" ran today's code — it stays stale (and so does "b", which imports it).
    await writeFile(path.join(dir, 'lib', 'b.ts'), `// edited after the results were stored\n${LIB_B}`);
    const staleBefore = (await readdir(results())).filter((n) => /^[ab]\./.test(n)).sort();
    const summary = await migrate();
    const [store] = summary.stores;
    expect(store!.migrated).toEqual(['c']);
    expect(store!.missing.sort()).toEqual(['a', 'b']);
    expect(store!.stale.sort()).toEqual(staleBefore.filter((n) => n.endsWith('.json')).map((n) => n.replace(/\.json$/, '')).sort());
    expect((await readdir(results())).filter((n) => /^[ab]\./.test(n)).sort()).toEqual(staleBefore);

    const checked = await runCheck();
    expect(checked.fresh).toEqual(['c']);
    const reasons = checked.file.messages.filter((m) => m.ruleId === 'stale-result').map((m) => m.reason);
    expect(reasons[0]).toMatch(/cell "a" is stale \(lib\/b\.ts changed since its result stored under the previous key scheme, which hashed source text\)/);
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
    const { ResultStore } = await import('../../src/engine/store.ts');
    await new ResultStore(results(), effects()).rekey('a', a.legacyKeyV1!.key, a.key, a.fingerprint!);
    const summary = await migrate();
    expect(summary.stores[0]!.finished).toEqual(['a']);
    expect(summary.stores[0]!.migrated.sort()).toEqual(['b', 'c']);
    expect(await readdir(results())).not.toContain(`${entryName('a', a.legacyKeyV1!.key)}.json`);
    expect((await runCheck()).file.messages.map(String)).toEqual([]);
  });

  it('carries a snapshot of a cell without a result over to its new key', async () => {
    const loaded = await loadDocument({ docPath: docPath(), projectRoot: dir }, effects());
    const a = loaded.keys.get('a')!;
    await rm(results(`${entryName('a', a.legacyKeyV1!.key)}.json`));
    const from = checkpointPath(dir, 'a', a.legacyKeyV1!.key);
    await mkdir(path.dirname(from), { recursive: true });
    await writeFile(from, 'state');
    const summary = await migrate();
    expect(summary.stores[0]!.checkpoints).toEqual(['a']);
    expect(await readFile(checkpointPath(dir, 'a', a.key), 'utf8')).toBe('state');
  });

  it('report resumes a run killed under the previous scheme: the snapshot moves to the new key before the cell runs', async () => {
    const loaded = await loadDocument({ docPath: docPath(), projectRoot: dir }, effects());
    const c = loaded.keys.get('c')!;
    await rm(results(`${entryName('c', c.legacyKeyV1!.key)}.json`));
    const from = checkpointPath(dir, 'c', c.legacyKeyV1!.key);
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
});

it('migrates the quick profile store too (every profile without --profile, only one with it)', async () => {
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
