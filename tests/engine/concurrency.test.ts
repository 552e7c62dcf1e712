/**
 * The fault suite, part 2: two builds on one store at once, and what killed builds leave.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { build } from '../../src/engine/build.ts';
import { nodeEffects } from '../../src/engine/effects.ts';
import { lockStore, LOCK_FILE } from '../../src/engine/lock.ts';
import { ResultStore } from '../../src/engine/store.ts';
import { fakeExecutor } from '../support/fake-executor.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
const silent = { write: () => {}, isTTY: false };
let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'report-concurrent-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every entry of the store reads back intact (checksum, metadata agree with payload). */
async function verifyStore(results: string): Promise<string[]> {
  const store = new ResultStore(results, nodeEffects({ stdout: silent }));
  const problems: string[] = [];
  for (const name of await readdir(results)) {
    if (!name.endsWith('.json')) continue;
    const metadata = JSON.parse(await readFile(path.join(results, name), 'utf8')) as { id: string; key: string };
    const found = await store.get(metadata.id, metadata.key);
    if (found.result === undefined) problems.push(`${name}: ${found.problem} ${found.detail ?? ''}`);
  }
  return problems;
}

const DOC = '# Concurrent\n\n```ts run id=a\nexport const r = Math.random();\n```\n\n```ts run id=b\nimport { r } from \'cell:a\';\nexport const s = r + Math.random();\n```\n';

describe('two builds on one store at once', () => {
  it('20 times, cells whose output differs every run: the store verifies after each', async () => {
    await writeFile(path.join(dir, 'doc.md'), DOC);
    const random = () =>
      fakeExecutor(
        {
          a: () => ({ exports: { r: Math.random(), pad: new Float64Array(2000).map(Math.random) } }),
          b: (deps) => ({ exports: { s: (deps.a!.r as number) + Math.random() } }),
        },
        { delayMs: 5 },
      );
    const waits: string[] = [];
    for (let round = 0; round < 20; round++) {
      // The build that gets the store first holds it (in its plan step) until the other says
      // it is waiting, so the two overlap in every round however the machine schedules them.
      let otherWaits!: () => void;
      const waiting = new Promise<void>((resolve) => (otherWaits = resolve));
      let held = false;
      const one = () =>
        build(
          {
            docPath: path.join(dir, 'doc.md'),
            projectRoot: dir,
            executor: random(),
            outDir: path.join(dir, 'build'),
            pdf: false,
            rerunAll: true,
            onPlan: async () => {
              if (held) return;
              held = true;
              await Promise.race([waiting, new Promise((r) => setTimeout(r, 10_000))]);
            },
          },
          nodeEffects({
            stdout: {
              write: (s) => {
                waits.push(s);
                if (s.startsWith('waiting for another build')) otherWaits();
              },
              isTTY: false,
            },
          }),
        );
      const [first, second] = await Promise.all([one(), one()]);
      expect(first.failed).toEqual([]);
      expect(second.failed).toEqual([]);
      expect(await verifyStore(path.join(dir, 'results'))).toEqual([]);
      expect(await readdir(path.join(dir, 'results'))).not.toContain(LOCK_FILE);
    }
    // The second build of each round waited for the first and said so.
    expect(waits.filter((s) => s.startsWith('waiting for another build')).length).toBe(20);
  });

  it('two real report commands at once: both succeed, the store verifies', { timeout: 120_000 }, async () => {
    await writeFile(path.join(dir, 'doc.md'), DOC);
    const run = () =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'cli.ts'), 'report', path.join(dir, 'doc.md'), '--no-pdf', '--rerun-all', '--out', path.join(dir, 'build')], {
          cwd: root,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        child.on('exit', (code) => resolve({ code, out }));
      });
    const [first, second] = await Promise.all([run(), run()]);
    expect([first.code, second.code], first.out + second.out).toEqual([0, 0]);
    expect(await verifyStore(path.join(dir, 'results'))).toEqual([]);
  });

  it('a lock left by a dead process is taken over; a live one is waited for', async () => {
    const effects = nodeEffects({ stdout: silent });
    await mkdir(dir, { recursive: true });
    // A pid that does not run: a child that has exited.
    const dead = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, ['-e', '0']);
      child.on('exit', () => resolve(child.pid!));
    });
    await writeFile(path.join(dir, LOCK_FILE), JSON.stringify({ pid: dead, host: os.hostname(), doc: 'x.md', since: '' }));
    const release = await lockStore(dir, effects, { doc: 'doc.md' });
    const held = JSON.parse(await readFile(path.join(dir, LOCK_FILE), 'utf8'));
    expect(held.pid).toBe(process.pid);

    let waited = false;
    const second = lockStore(dir, effects, { doc: 'other.md', onWait: () => (waited = true), pollMs: 10 });
    await new Promise((r) => setTimeout(r, 50));
    expect(waited).toBe(true);
    await release();
    const releaseSecond = await second;
    expect(JSON.parse(await readFile(path.join(dir, LOCK_FILE), 'utf8')).doc).toBe('other.md');
    await releaseSecond();
    expect(await readdir(dir)).not.toContain(LOCK_FILE);
  });
});

describe('what killed builds left behind', () => {
  it('is removed at the next start when its pid is dead; a live process\'s files stay', async () => {
    const dead = await new Promise<number>((resolve) => {
      const child = spawn(process.execPath, ['-e', '0']);
      child.on('exit', () => resolve(child.pid!));
    });
    await writeFile(path.join(dir, 'doc.md'), '# T\n\n```ts run id=a\nexport const x = 1;\n```\n');
    const results = path.join(dir, 'results');
    await mkdir(results, { recursive: true });
    const bundles = path.join(dir, 'node_modules', '.cache', 'literate-report');
    await mkdir(bundles, { recursive: true });
    await mkdir(path.join(dir, 'node_modules', '.cache'), { recursive: true });
    const staleTmp = path.join(os.tmpdir(), `report-${dead}-a-XXXXXX`);
    const liveTmp = path.join(os.tmpdir(), `report-${process.pid}-a-YYYYYY`);
    await mkdir(staleTmp, { recursive: true });
    await mkdir(liveTmp, { recursive: true });
    const left = [
      path.join(results, `a.0123456789abcdef.json.${dead}.0badc0de.tmp`),
      path.join(bundles, `doc.md.a.0123456789abcdef.${dead}.mjs`),
      path.join(bundles, `doc.md.a.0123456789abcdef.${dead}.mjs.tmp`),
    ];
    const kept = path.join(bundles, `doc.md.a.0123456789abcdef.${process.pid}.mjs`);
    for (const file of [...left, kept]) await writeFile(file, 'x');
    try {
      await build(
        { docPath: path.join(dir, 'doc.md'), projectRoot: dir, executor: fakeExecutor({ a: () => ({ exports: { x: 1 } }) }), outDir: path.join(dir, 'build'), pdf: false },
        nodeEffects({ stdout: silent }),
      );
      const exists = async (p: string) => readFile(p).then(() => true, (e: NodeJS.ErrnoException) => e.code !== 'ENOENT');
      for (const file of [...left, staleTmp]) expect(await exists(file), file).toBe(false);
      expect(await exists(kept)).toBe(true);
      expect(await exists(liveTmp)).toBe(true);
    } finally {
      await rm(staleTmp, { recursive: true, force: true });
      await rm(liveTmp, { recursive: true, force: true });
    }
  });
});
