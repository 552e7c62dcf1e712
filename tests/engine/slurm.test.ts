/**
 * The Slurm executor against a fake Slurm on the PATH (tests/support/fake-slurm.mjs), which
 * really runs the batch scripts: submission with afterok dependencies, the same store as a
 * local build bit for bit, states and progress, timeout/out-of-memory mapping, failures and
 * skipped dependants, Ctrl-C, adoption of a killed build's jobs. The same scenarios against
 * a real one-node Slurm: tests/slurm/ (npm run test:slurm).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { build } from '../../src/engine/build.ts';
import { childProcessExecutor, STOPPED_MESSAGE, type CellJob } from '../../src/engine/child-launcher.ts';
import { nodeEffects } from '../../src/engine/effects.ts';
import { keyCells } from '../../src/engine/key.ts';
import { jobResources, sbatchArgs, slurmExecutor } from '../../src/engine/slurm.ts';
import { startPreview, type PreviewState } from '../../src/engine/preview.ts';
import { openEvents } from '../support/preview-client.ts';
import { isFailure, type ProgressEvent } from '../../src/engine/types.ts';
import { fakeSlurm, type FakeSlurm } from '../support/fake-slurm.ts';
import { makeCell } from '../fixtures/exec-helpers/cells.ts';

const root = path.resolve(import.meta.dirname, '..', '..');
let dir: string;
let fake: FakeSlurm;
let logs: string[];

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'report-slurm-'));
  fake = await fakeSlurm({ partitions: ['debug', 'gpu'] });
  logs = [];
});
afterEach(async () => {
  await fake.cleanup();
  await rm(dir, { recursive: true, force: true });
});

function executor() {
  return slurmExecutor({ env: fake.env, pollMs: 100, queueMs: 200, log: (line) => logs.push(line) });
}

/** Builds `doc.md` in `dir` with the Slurm executor (or the local one); returns the summary and what the display printed. */
async function buildWith(kind: 'slurm' | 'local', resultsDir = path.join(dir, kind)) {
  let printed = '';
  const summary = await build(
    { docPath: path.join(dir, 'doc.md'), projectRoot: dir, executor: kind === 'slurm' ? executor() : childProcessExecutor({}), resultsDir, outDir: path.join(dir, 'build'), pdf: false },
    nodeEffects({ stdout: { write: (s) => void (printed += s), isTTY: false } }),
  );
  const sorted = [...summary.file.messages].sort((x, y) => (x.line ?? 0) - (y.line ?? 0));
  return { summary, printed, messages: sorted.map((m) => `${m.line}:${m.column} ${m.ruleId} ${m.reason.split('\n')[0]}`) };
}

/** Every file of a results folder with its bytes (payloads only: metadata holds run times). */
async function payloads(folder: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of (await readdir(folder)).sort()) if (name.endsWith('.bin')) out.set(name, await readFile(path.join(folder, name)));
  return out;
}

const diamond = [
  '---',
  'title: Diamond',
  'seed: 7',
  'slurm:',
  '  partition: debug',
  '---',
  '',
  '```ts run id=a mem=256',
  "import { progress, random } from 'report:runtime';",
  'const r = random();',
  'export const xs = new Float64Array(2000).map(() => r());',
  "progress({ step: 1, total: 1, label: 'draw' });",
  "console.log('a drew', xs.length);",
  '```',
  '',
  '```ts run id=b mem=256',
  "import { xs } from 'cell:a';",
  'export const squares = Float32Array.from(xs, (x) => x * x);',
  '```',
  '',
  '```ts run id=c mem=256 cpus=2 partition=gpu',
  "import { xs } from 'cell:a';",
  "import { random } from 'report:runtime';",
  'const r = random();',
  'export const noisy = Float64Array.from(xs, (x) => x + r() * 1e-3);',
  '```',
  '',
  '```ts run id=d mem=256',
  "import { squares } from 'cell:b';",
  "import { noisy } from 'cell:c';",
  'export const total = squares.reduce((s, v) => s + v, 0) + noisy.reduce((s, v) => s + v, 0);',
  'export const parts = new Int32Array([squares.length, noisy.length]);',
  '```',
  '',
  'Total `{ts} total.toFixed(3)`.',
  '',
].join('\n');

describe('slurm executor (fake Slurm on the PATH)', () => {
  it('submits every cell ahead with afterok dependencies and stores what a local build stores, bit for bit', { timeout: 240_000 }, async () => {
    await writeFile(path.join(dir, 'doc.md'), diamond);
    // a starts only once all four jobs are queued, so the order below cannot depend on how
    // fast sbatch answers on a loaded machine.
    await fake.fates([{ name: '^report-a-', untilJobs: 4 }]);
    const slurm = await buildWith('slurm');
    await fake.fates([]);
    expect(slurm.messages).toEqual([]);
    expect(slurm.summary.ran.sort()).toEqual(['a', 'b', 'c', 'd']);
    const local = await buildWith('local');
    expect(local.messages).toEqual([]);

    // The same entries (same keys), the same payload bytes.
    const fromSlurm = await payloads(path.join(dir, 'slurm'));
    const fromLocal = await payloads(path.join(dir, 'local'));
    expect([...fromSlurm.keys()]).toEqual([...fromLocal.keys()]);
    expect(fromSlurm.size).toBe(4);
    for (const [name, bytes] of fromLocal) expect(fromSlurm.get(name)!.equals(bytes), name).toBe(true);

    // One job per cell, all submitted before the first one started; the DAG is Slurm's.
    const jobs = await fake.jobs();
    expect(jobs).toHaveLength(4);
    const byCell = new Map(jobs.map((j) => [j.name.split('-')[1]!, j]));
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((id) => byCell.get(id)!);
    // d was queued before the cells it imports had even run: Slurm, not the build, orders it.
    expect(d!.submitted).toBeLessThanOrEqual(a!.started!);
    expect(d!.submitted).toBeLessThan(Math.min(b!.ended!, c!.ended!));
    expect(a!.options['dependency']).toBeUndefined();
    expect(b!.options['dependency']).toBe(`afterok:${a!.id}`);
    expect(c!.options['dependency']).toBe(`afterok:${a!.id}`);
    expect(d!.options['dependency']).toBe(`afterok:${b!.id}:${c!.id}`);
    expect(d!.options['kill-on-invalid-dep']).toBe('yes');
    expect(b!.started!).toBeGreaterThanOrEqual(a!.ended!);
    expect(d!.started!).toBeGreaterThanOrEqual(Math.max(b!.ended!, c!.ended!));
    // Resources: the cell's options, else the front matter's, else the cell's limits.
    expect(a!.options).toMatchObject({ mem: '256', time: '30', partition: 'debug' });
    expect(c!.options).toMatchObject({ 'cpus-per-task': '2', partition: 'gpu' });

    // What the terminal showed: queued with why, running where.
    expect(slurm.printed).toMatch(/… d pending.* · job \d+/);
    expect(slurm.printed).toMatch(/▶ a running on \S+ · job \d+/);
    expect(slurm.printed).toContain('ran 4, fresh 0, failed 0, skipped 0');
    // Job folders and bundles are gone once the build is over.
    const slurmCache = path.join(dir, 'node_modules', '.cache', 'report', 'slurm');
    for (const doc of await readdir(slurmCache)) expect(await readdir(path.join(slurmCache, doc))).toEqual([]);
  });

  it('shows a pending reason, then live progress and printed text from the job', { timeout: 120_000 }, async () => {
    await fake.fates([{ name: '^report-slow-', pendingMs: 1200, reason: 'Resources' }]);
    await writeFile(path.join(dir, 'doc.md'), '# P\n');
    const cell = makeCell(
      'slow',
      [
        "import { progress } from 'report:runtime';",
        'for (let i = 1; i <= 3; i++) {',
        "  progress({ step: i, total: 3, label: 'epoch', metrics: { loss: 1 / i } });",
        "  console.log('epoch', i);",
        '  await new Promise((r) => setTimeout(r, 250));',
        '}',
        'export const n = 3;',
      ].join('\n'),
    );
    const keys = await keyCells([cell], ['slow'], { docPath: path.join(dir, 'doc.md'), projectRoot: dir, profile: 'quick', seed: 1, runtimePath: path.join(root, 'src/engine/runtime.ts') });
    const job: CellJob = { cell, key: keys.get('slow')!, deps: new Map(), profile: 'quick', seed: 1, docPath: path.join(dir, 'doc.md'), projectRoot: dir };
    const slurm = executor();
    const statuses: string[] = [];
    await slurm.prepare!({ cells: [{ job, pending: [], adopt: true }], ahead: true, frontMatter: {}, onStatus: (_, s) => statuses.push(`${s.state}: ${s.text}`) });
    const progress: ProgressEvent[] = [];
    let printed = '';
    const outcome = await slurm.run(job, { onProgress: (e) => progress.push(e), onOutput: (t) => (printed += t) });
    await slurm.close!();
    expect(isFailure(outcome)).toBe(false);
    expect(statuses.some((s) => /^pending: pending \(Resources\) · job \d+$/.test(s))).toBe(true);
    expect(statuses.at(-1)).toMatch(/^running: running on \S+ · job \d+$/);
    expect(progress.map((p) => p.step)).toEqual([1, 2, 3]);
    expect(progress[2]).toMatchObject({ id: 'slow', total: 3, label: 'epoch', metrics: { loss: 1 / 3 } });
    expect(printed).toBe('epoch 1\nepoch 2\nepoch 3\n');
    // Run time from the job's own clock, and the compute node's environment.
    expect(isFailure(outcome) ? 0 : outcome.meta.runMs).toBeGreaterThanOrEqual(500);
    expect(isFailure(outcome) ? undefined : outcome.meta.environment?.node).toBe(process.version);
  });

  it('maps the runner\'s timeout, Slurm\'s TIMEOUT, OUT_OF_MEMORY and a throw to their rule ids at the Markdown lines', { timeout: 180_000 }, async () => {
    await fake.fates([
      { name: '^report-slurm-timeout-', final: 'TIMEOUT' },
      { name: '^report-slurm-oom-', final: 'OUT_OF_MEMORY' },
      { name: '^report-lost-', final: 'NODE_FAIL' },
    ]);
    await writeFile(
      path.join(dir, 'doc.md'),
      [
        '# F', // 1
        '', // 2
        '```ts run id=spins time=0:01 mem=256', // 3
        'while (true) {}', // 4
        '```', // 5
        '', // 6
        '```ts run id=slurm-timeout', // 7
        'export const x = 1;', // 8
        '```', // 9
        '', // 10
        '```ts run id=slurm-oom mem=1G', // 11
        'export const y = 1;', // 12
        '```', // 13
        '', // 14
        '```ts run id=throws', // 15
        'const v = 41;', // 16
        "if (v < 42) throw new Error('too small: ' + v);", // 17
        'export const z = v;', // 18
        '```', // 19
        '', // 20
        '```ts run id=lost', // 21
        'export const w = 1;', // 22
        '```', // 23
        '',
      ].join('\n'),
    );
    const { summary, messages } = await buildWith('slurm');
    expect(summary.failed.sort()).toEqual(['lost', 'slurm-oom', 'slurm-timeout', 'spins', 'throws']);
    expect(messages).toEqual([
      expect.stringMatching(/^3:1 cell-timeout cell "spins" timed out: did not finish within its timeout of 1 s/),
      expect.stringMatching(/^7:1 cell-timeout cell "slurm-timeout" timed out: did not finish within its timeout of 1800 s \(Slurm ended job \d+ at its time limit, --time=30 min\)/),
      expect.stringMatching(/^11:1 cell-memory cell "slurm-oom" ran out of memory: Slurm ended job \d+ as OUT_OF_MEMORY; mem=1024 MiB/),
      expect.stringMatching(/^17:\d+ cell-error cell "throws" failed: too small: 41$/),
      expect.stringMatching(/^21:1 cell-error cell "lost" failed: Slurm ended job \d+ as NODE_FAIL/),
    ]);
  });

  it('skips the dependants of a failed cell and cancels their jobs before they run; independent cells still run', { timeout: 180_000 }, async () => {
    await writeFile(
      path.join(dir, 'doc.md'),
      [
        '```ts run id=x',
        "throw new Error('x breaks');",
        'export const x = 1;',
        '```',
        '',
        '```ts run id=y',
        "import { x } from 'cell:x';",
        'export const y = x + 1;',
        '```',
        '',
        '```ts run id=z',
        "import { y } from 'cell:y';",
        'export const z = y + 1;',
        '```',
        '',
        '```ts run id=w',
        'export const w = 4;',
        '```',
        '',
      ].join('\n'),
    );
    const { summary, printed } = await buildWith('slurm');
    expect(summary.failed).toEqual(['x']);
    expect(summary.skipped.sort()).toEqual(['y', 'z']);
    expect(summary.ran).toEqual(['w']);
    expect(printed).toMatch(/- y skipped: the cell it imports, "x", failed/);
    const jobs = await fake.jobs();
    for (const id of ['y', 'z']) {
      const job = jobs.find((j) => j.name.startsWith(`report-${id}-`))!;
      expect(job.state).toBe('CANCELLED');
      expect(job.started).toBeUndefined();
    }
    expect(jobs.filter((j) => !['COMPLETED', 'FAILED', 'CANCELLED'].includes(j.state))).toEqual([]);
  });

  it('reports a job Slurm refuses (a partition it does not have) at the cell, and skips its dependants', { timeout: 120_000 }, async () => {
    await writeFile(
      path.join(dir, 'doc.md'),
      ['```ts run id=p partition=nowhere', 'export const p = 1;', '```', '', '```ts run id=q', "import { p } from 'cell:p';", 'export const q = p;', '```', ''].join('\n'),
    );
    const { summary, messages } = await buildWith('slurm');
    expect(summary.failed).toEqual(['p']);
    expect(summary.skipped).toEqual(['q']);
    expect(messages).toEqual([expect.stringMatching(/^1:1 cell-error cell "p" failed: Slurm refused the job: invalid partition specified: nowhere$/)]);
    expect((await fake.jobs()).map((j) => j.name)).toEqual([]);
  });
});

describe('slurm executor with --jobs (fake Slurm)', () => {
  it('submits each cell when the cells it imports have results, without Slurm dependencies', { timeout: 120_000 }, async () => {
    await writeFile(path.join(dir, 'doc.md'), ['```ts run id=one', 'export const one = new Uint8Array([1, 2, 3]);', '```', '', '```ts run id=two', "import { one } from 'cell:one';", 'export const two = one.map((x) => x * 2);', '```', ''].join('\n'));
    const summary = await build(
      { docPath: path.join(dir, 'doc.md'), projectRoot: dir, executor: executor(), outDir: path.join(dir, 'build'), pdf: false, jobs: 1 },
      nodeEffects({ stdout: { write: () => {}, isTTY: false } }),
    );
    expect(summary.ran).toEqual(['one', 'two']);
    const [one, two] = await fake.jobs();
    expect(two!.options['dependency']).toBeUndefined();
    expect(two!.submitted).toBeGreaterThanOrEqual(one!.ended!);
  });
});

describe('slurm executor and the command line (fake Slurm)', () => {
  const cli = (doc: string, extra: string[] = []) =>
    spawn(process.execPath, ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href, path.join(root, 'src', 'cli.ts'), 'report', doc, '--no-pdf', '--out', path.join(dir, 'build'), '--executor', 'slurm', ...extra], {
      cwd: dir,
      env: { ...process.env, ...fake.env, REPORT_SLURM_POLL_MS: '100' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  const until = async (what: () => Promise<boolean>, ms = 150_000): Promise<void> => {
    for (const end = Date.now() + ms; Date.now() < end; ) {
      if (await what()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('timed out waiting');
  };
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const longDoc = [
    '```ts run id=long',
    'await new Promise((r) => setTimeout(r, 60_000));',
    'export const long = 1;',
    '```',
    '',
    '```ts run id=after',
    "import { long } from 'cell:long';",
    'export const after = long + 1;',
    '```',
    '',
  ].join('\n');

  it('refuses --executor slurm where sbatch is not on the PATH, and --slurm without it (report and preview)', { timeout: 120_000 }, async () => {
    await writeFile(path.join(dir, 'doc.md'), '# Nothing\n');
    const run = (args: string[], env: NodeJS.ProcessEnv, command: string[] = ['report', path.join(dir, 'doc.md'), '--no-pdf']) =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href, path.join(root, 'src', 'cli.ts'), ...command, ...args], { cwd: dir, env, stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (t) => (stderr += t));
        child.on('exit', (code) => resolve({ code, stderr }));
      });
    const noSlurm = await run(['--executor', 'slurm'], { ...process.env, PATH: dir });
    expect(noSlurm).toEqual({ code: 2, stderr: expect.stringContaining('--executor slurm: sbatch is not on the PATH') });
    const flagAlone = await run(['--slurm', 'partition=gpu'], process.env);
    expect(flagAlone).toEqual({ code: 2, stderr: expect.stringContaining('--slurm sets defaults for --executor slurm') });
    const badFlag = await run(['--executor', 'slurm', '--slurm', 'time=soon'], { ...process.env, ...fake.env });
    expect(badFlag).toEqual({ code: 2, stderr: expect.stringContaining('--slurm time=soon: expected a time limit') });
    // The preview takes the same flags, refused the same way before it serves anything.
    const preview = ['preview', path.join(dir, 'doc.md'), '--port', '0'];
    expect(await run(['--executor', 'slurm'], { ...process.env, PATH: dir }, preview)).toEqual({ code: 2, stderr: expect.stringContaining('--executor slurm: sbatch is not on the PATH') });
    expect(await run(['--slurm', 'partition=gpu'], process.env, preview)).toEqual({ code: 2, stderr: expect.stringContaining('--slurm sets defaults for --executor slurm') });
  });

  it('Ctrl-C cancels every job the build submitted and exits 130', { timeout: 180_000 }, async () => {
    await writeFile(path.join(dir, 'doc.md'), longDoc);
    const child = cli(path.join(dir, 'doc.md'));
    let stderr = '';
    child.stderr.on('data', (t) => (stderr += t));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await until(async () => (await fake.jobs()).some((j) => j.state === 'RUNNING' && j.pid !== undefined));
    const pid = (await fake.jobs()).find((j) => j.state === 'RUNNING')!.pid!;
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/cancelled 2 Slurm jobs of this build/);
    const jobs = await fake.jobs();
    expect(jobs.map((j) => j.state)).toEqual(['CANCELLED', 'CANCELLED']);
    await until(async () => !alive(pid), 10_000);
  });

  it('a re-run of a killed build adopts its queued jobs instead of submitting them again', { timeout: 240_000 }, async () => {
    await fake.fates([{ name: '^report-held-', pendingMs: 6000, reason: 'Priority' }]);
    await writeFile(
      path.join(dir, 'doc.md'),
      [
        '```ts run id=held',
        'export const held = 2;',
        '```',
        '',
        '```ts run id=next',
        "import { held } from 'cell:held';",
        'export const next = held * 21;',
        '```',
        '',
      ].join('\n'),
    );
    const first = cli(path.join(dir, 'doc.md'));
    const gone = new Promise<void>((resolve) => first.on('exit', () => resolve()));
    const slurmRoot = path.join(dir, 'node_modules', '.cache', 'report', 'slurm');
    // Both jobs submitted and recorded; then the build is killed (no exit handler runs).
    await until(async () => {
      if ((await fake.jobs()).length < 2) return false;
      const docs = await readdir(slurmRoot).catch(() => []);
      const folders = docs.length === 1 ? await readdir(path.join(slurmRoot, docs[0]!)) : [];
      const records = await Promise.all(folders.map((f) => readFile(path.join(slurmRoot, docs[0]!, f, 'slurm.json'), 'utf8').catch(() => '{}')));
      return records.length === 2 && records.every((r) => 'jobId' in JSON.parse(r));
    });
    first.kill('SIGKILL');
    await gone;
    const before = await fake.jobs();
    expect(before.map((j) => j.state)).toEqual(['PENDING', 'PENDING']);
    // The id of one job was never recorded (killed between sbatch and the record): found by its name.
    const docFolder = path.join(slurmRoot, (await readdir(slurmRoot))[0]!);
    const nextFolder = (await readdir(docFolder)).find((f) => f.startsWith('next.'))!;
    const record = JSON.parse(await readFile(path.join(docFolder, nextFolder, 'slurm.json'), 'utf8')) as Record<string, unknown>;
    delete record['jobId'];
    await writeFile(path.join(docFolder, nextFolder, 'slurm.json'), JSON.stringify(record));

    const { summary } = await buildWith('slurm', path.join(dir, 'results'));
    expect(summary.ran.sort()).toEqual(['held', 'next']);
    expect((await fake.calls()).filter((c) => c.command === 'sbatch')).toHaveLength(2);
    // Adopted while queued (or, on a slow machine, taken once finished): never submitted twice.
    expect(logs.filter((l) => /adopted Slurm job|of an earlier build finished/.test(l))).toHaveLength(2);
    expect((await fake.jobs()).map((j) => j.state)).toEqual(['COMPLETED', 'COMPLETED']);
  });

  it('a re-run takes the result of a job that finished while no build watched, and cancels jobs of cells whose key changed', { timeout: 240_000 }, async () => {
    await fake.fates([{ name: '^report-slowstart-', pendingMs: 2500 }]);
    const doc = (k: number) =>
      ['```ts run id=slowstart', 'export const s = 5;', '```', '', '```ts run id=stale', `await new Promise((r) => setTimeout(r, 60_000));`, `export const k = ${k};`, '```', ''].join('\n');
    await writeFile(path.join(dir, 'doc.md'), doc(1));
    const first = cli(path.join(dir, 'doc.md'));
    const gone = new Promise<void>((resolve) => first.on('exit', () => resolve()));
    await until(async () => (await fake.jobs()).length === 2);
    await new Promise((r) => setTimeout(r, 500));
    first.kill('SIGKILL');
    await gone;
    // slowstart runs to the end with no build watching; "stale" keeps running.
    await until(async () => (await fake.jobs()).find((j) => j.name.startsWith('report-slowstart-'))?.state === 'COMPLETED');
    // The second cell changes: its earlier job is of an old key and must not run on.
    await writeFile(path.join(dir, 'doc.md'), doc(2).replace('60_000', '10'));
    const { summary } = await buildWith('slurm', path.join(dir, 'results'));
    expect(summary.ran.sort()).toEqual(['slowstart', 'stale']);
    const sbatches = (await fake.calls()).filter((c) => c.command === 'sbatch');
    expect(sbatches).toHaveLength(3); // two by the killed build, one for the changed cell
    expect(logs.some((l) => /cell "slowstart": Slurm job \d+ of an earlier build finished; its result is taken/.test(l))).toBe(true);
    expect(logs.some((l) => /cancelled Slurm job \d+ of an earlier build/.test(l))).toBe(true);
    const states = (await fake.jobs()).map((j) => j.state);
    expect(states).toEqual(['COMPLETED', 'CANCELLED', 'COMPLETED']);
    expect(existsSync(path.join(dir, 'results'))).toBe(true);
  });
});

describe('what a job asks for', () => {
  it('takes each resource from the cell, else the flags, else the front matter, else the cell\'s limits', () => {
    const job = (rawOptions: string, options: Partial<CellJob['cell']['options']>) =>
      ({ cell: { ...makeCell('c', 'export const c = 1;', { rawOptions }), options: { echo: true, timeout: 1800, memory: 8192, ...options } } }) as CellJob;
    const bare = jobResources(job('id=c', {}), undefined, undefined);
    expect(bare).toEqual({ timeSeconds: 1800, memMiB: 8192, extra: [] });
    const fm = { partition: 'cpu', account: 'lab', timeSeconds: 7200, memMiB: 4096, extra: ['--mail-type=END'] };
    expect(jobResources(job('id=c', {}), fm, undefined)).toEqual({ timeSeconds: 7200, memMiB: 4096, partition: 'cpu', account: 'lab', extra: ['--mail-type=END'] });
    expect(jobResources(job('id=c', {}), fm, { partition: 'gpu', qos: 'short' })).toMatchObject({ partition: 'gpu', account: 'lab', qos: 'short' });
    const own = job('id=c', { timeout: 60, memory: 512, resources: { timeSeconds: 60, memMiB: 512, cpus: 4, gpus: 'a100:1', partition: 'big' } });
    expect(jobResources(own, fm, { partition: 'gpu', cpus: 2 })).toEqual({
      timeSeconds: 60,
      memMiB: 512,
      cpus: 4,
      gpus: 'a100:1',
      partition: 'big',
      account: 'lab',
      extra: ['--mail-type=END'],
    });
    expect(
      sbatchArgs({ name: 'report-c-0123', output: '/p/out.txt', chdir: '/p', resources: jobResources(own, fm, undefined), afterok: ['11', '12'], script: '/p/job.sh' }),
    ).toEqual([
      '--parsable',
      '--job-name=report-c-0123',
      '--output=/p/out.txt',
      '--chdir=/p',
      '--time=1',
      '--mem=512',
      '--cpus-per-task=4',
      '--gpus=a100:1',
      '--partition=big',
      '--account=lab',
      '--dependency=afterok:11:12',
      '--kill-on-invalid-dep=yes',
      '--mail-type=END',
      '/p/job.sh',
    ]);
  });
});

describe('the preview with the Slurm executor (fake Slurm)', () => {
  const slowDoc = [
    '```ts run id=slow mem=256',
    "import { progress } from 'report:runtime';",
    'for (let i = 1; i <= 600; i++) {',
    "  progress({ step: i, total: 600, label: 'epoch' });",
    '  await new Promise((r) => setTimeout(r, 100));',
    '}',
    'export const slow = 1;',
    '```',
    '',
    '```ts run id=after mem=256',
    "import { slow } from 'cell:slow';",
    'export const after = slow + 1;',
    '```',
    '',
  ].join('\n');

  it('shows each job queued with its reason, then running where with live progress; Stop cancels the job and its dependant\'s', { timeout: 180_000 }, async () => {
    await fake.fates([{ name: '^report-slow-', pendingMs: 1500, reason: 'Resources' }]);
    await writeFile(path.join(dir, 'doc.md'), slowDoc);
    const effects = nodeEffects({ stdout: { write: (s) => void logs.push(s), isTTY: false } });
    const preview = await startPreview(
      { docPath: path.join(dir, 'doc.md'), projectRoot: dir, outDir: path.join(dir, 'build'), port: 0, debounceMs: 5, stateIntervalMs: 10, executor: executor() },
      effects,
    );
    const reader = await openEvents(preview.url);
    try {
      const state = (match: (s: PreviewState) => boolean) =>
        reader.next((e) => e.event === 'state' && match(e.data as PreviewState), 120_000).then((e) => e.data as PreviewState);
      const cell = (s: PreviewState, id: string) => s.cells.find((c) => c.id === id);
      // Queued on the cluster, with Slurm's reason and the job id; the clock has not started.
      const queued = await state((s) => /^pending \(Resources\) · job \d+$/.test(cell(s, 'slow')?.where ?? ''));
      expect(cell(queued, 'slow')).toMatchObject({ phase: 'queued' });
      expect(cell(queued, 'slow')!.startedAt).toBeUndefined();
      expect(cell(queued, 'after')).toMatchObject({ phase: 'queued', where: expect.stringMatching(/^pending \(after slow\) · job \d+$/) });
      // Running on a node, with the job's progress.
      const running = await state((s) => cell(s, 'slow')?.phase === 'running' && (cell(s, 'slow')!.step ?? 0) >= 3);
      expect(cell(running, 'slow')!.where).toMatch(/^running on fake1 · job \d+$/);
      expect(cell(running, 'slow')!.startedAt).toBeGreaterThan(0);
      // Stop: the job is cancelled, and so is the job of the cell that imports it.
      const stop = await fetch(new URL('__preview/stop/slow', preview.url), { method: 'POST', headers: { Origin: preview.url.replace(/\/$/, '') } });
      expect(stop.status).toBe(200);
      const stopped = await state((s) => s.phase === 'idle' && cell(s, 'slow')?.phase === 'stopped');
      expect(stopped.problems.find((p) => p.cell === 'slow')!.message).toContain('stopped from the preview');
      const jobs = await fake.jobs();
      const slowJob = jobs.find((j) => j.name.startsWith('report-slow-'))!;
      const afterJob = jobs.find((j) => j.name.startsWith('report-after-'))!;
      expect(slowJob).toMatchObject({ state: 'CANCELLED' });
      expect(slowJob.ended! - slowJob.started!).toBeLessThan(55_000);
      expect(afterJob).toMatchObject({ state: 'CANCELLED' });
      expect(afterJob.started).toBeUndefined();
      expect(jobs.filter((j) => !['COMPLETED', 'FAILED', 'CANCELLED'].includes(j.state))).toEqual([]);
    } finally {
      reader.close();
      await preview.close();
    }
  });
});

describe('stopping a cell under the Slurm executor', () => {
  const slowCell = () =>
    makeCell('slow', ["import { progress } from 'report:runtime';", 'for (let i = 1; i <= 600; i++) {', "  progress({ step: i, total: 600 });", "  console.log('step', i);", '  await new Promise((r) => setTimeout(r, 100));', '}', 'export const n = 1;'].join('\n'));
  async function slowJob(): Promise<CellJob> {
    await writeFile(path.join(dir, 'doc.md'), '# S\n');
    const cell = slowCell();
    const keys = await keyCells([cell], ['slow'], { docPath: path.join(dir, 'doc.md'), projectRoot: dir, profile: 'quick', seed: 1, runtimePath: path.join(root, 'src/engine/runtime.ts') });
    return { cell, key: keys.get('slow')!, deps: new Map(), profile: 'quick', seed: 1, docPath: path.join(dir, 'doc.md'), projectRoot: dir };
  }

  it('the hooks\' signal cancels the running job and the cell ends as stopped, with what it printed', { timeout: 120_000 }, async () => {
    const job = await slowJob();
    const slurm = executor();
    await slurm.prepare!({ cells: [{ job, pending: [], adopt: true }], ahead: true, frontMatter: {}, onStatus: () => undefined });
    const controller = new AbortController();
    const outcome = slurm.run(job, {
      onProgress: (e) => {
        if ((e.step ?? 0) >= 3) controller.abort();
      },
      signal: controller.signal,
    });
    const ended = await outcome;
    await slurm.close!();
    expect(ended).toMatchObject({ id: 'slow', kind: 'error', message: STOPPED_MESSAGE });
    expect(isFailure(ended) ? ended.outputs?.[0] : undefined).toMatchObject({ kind: 'text', text: expect.stringMatching(/^step 1\nstep 2\n/) });
    const [only] = await fake.jobs();
    expect(only).toMatchObject({ state: 'CANCELLED' });
    expect(logs.some((l) => /^cancelled Slurm job \d+: stopped$/.test(l))).toBe(true);
  });

  it('cancel() removes a job still queued; run() then gives the stopped failure without submitting again', { timeout: 120_000 }, async () => {
    await fake.fates([{ name: '^report-slow-', pendingMs: 60_000 }]);
    const job = await slowJob();
    const slurm = executor();
    await slurm.prepare!({ cells: [{ job, pending: [], adopt: true }], ahead: true, frontMatter: {}, onStatus: () => undefined });
    await slurm.cancel!('slow');
    const outcome = await slurm.run(job, { onProgress: () => undefined });
    await slurm.close!();
    expect(outcome).toMatchObject({ kind: 'error', message: STOPPED_MESSAGE });
    const jobs = await fake.jobs();
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ state: 'CANCELLED' });
    expect(jobs[0]!.started).toBeUndefined();
  });

  it('a run whose signal is already aborted submits nothing', { timeout: 60_000 }, async () => {
    const job = await slowJob();
    const slurm = executor();
    const outcome = await slurm.run(job, { onProgress: () => undefined, signal: AbortSignal.abort() });
    await slurm.close!();
    expect(outcome).toMatchObject({ kind: 'error', message: STOPPED_MESSAGE });
    expect(await fake.jobs()).toEqual([]);
  });
});
