/**
 * The Slurm executor against a real Slurm (`npm run test:slurm`; .ci/slurm-up.sh starts a
 * one-node cluster on this machine). Skips, saying why, when `sbatch` is not on the PATH or
 * no cluster answers. Jobs are tiny (256 MiB, well under a second of work each).
 *
 * A diamond (a → b, a → c, b + c → d), a failing cell with a dependant and a timing-out cell,
 * built with `--executor slurm` and locally: the same store bit for bit, the DAG order, the
 * dependant skipped (its job cancelled, never run), the timeout at its fence. Then Ctrl-C
 * leaves nothing in squeue, and a re-run of a killed build adopts its queued jobs.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..', '..');
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** Why the test cannot run here, or undefined when a cluster answers. */
function noCluster(): string | undefined {
  if (spawnSync('sh', ['-c', 'command -v sbatch'], { encoding: 'utf8' }).status !== 0) return 'sbatch is not on the PATH';
  const ping = spawnSync('scontrol', ['ping'], { encoding: 'utf8', timeout: 15_000 });
  if (ping.status !== 0 || !/UP/.test(ping.stdout)) return `no Slurm controller answers (scontrol ping: ${(ping.stdout + ping.stderr).trim() || ping.status})`;
  const nodes = spawnSync('sinfo', ['-h', '-o', '%t'], { encoding: 'utf8', timeout: 15_000 });
  if (!/^(idle|mix|alloc)/m.test(nodes.stdout)) return `no node is up (sinfo: ${nodes.stdout.trim() || nodes.stderr.trim()})`;
  return undefined;
}

const why = noCluster();
if (why !== undefined) console.warn(`skipping the Slurm integration test: ${why} (start a one-node cluster with .ci/slurm-up.sh as root)`);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'report-slurm-it-'));
});
afterAll(async () => {
  // No job of this test may outlive it.
  const names = spawnSync('squeue', ['-h', '-o', '%i %j'], { encoding: 'utf8' }).stdout ?? '';
  const ours = names.split('\n').filter((l) => / report-(it|int|ad)-/.test(l)).map((l) => l.split(' ')[0]!);
  if (ours.length > 0) spawnSync('scancel', ours);
  await rm(dir, { recursive: true, force: true });
});

function cli(doc: string, args: string[]) {
  return spawn(process.execPath, ['--import', tsx, path.join(root, 'src', 'cli.ts'), 'report', doc, '--no-pdf', '--out', path.join(path.dirname(doc), 'build'), ...args], {
    cwd: path.dirname(doc),
    env: { ...process.env, REPORT_SLURM_POLL_MS: '300' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function runCli(doc: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = cli(doc, args);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (t) => (stdout += t));
  child.stderr.on('data', (t) => (stderr += t));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { code, stdout, stderr };
}

/** Every job Slurm still knows (running, queued, or ended within MinJobAge): id, name, state. */
function allJobs(): { id: number; name: string; state: string }[] {
  const out = execFileSync('squeue', ['-h', '-t', 'all', '-o', '%i|%j|%T'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [id, name, state] = l.split('|');
      return { id: Number(id), name: name!, state: state! };
    });
}

/**
 * The highest job id Slurm knows now. A cluster remembers ended jobs for MinJobAge (and a
 * restarted controller recovers its saved ones), and this test's job names are the same on
 * every run (cell id + key), so each test looks only at jobs submitted after it started.
 */
function lastJobId(): number {
  return Math.max(0, ...allJobs().map((j) => j.id).filter(Number.isFinite));
}

/** Jobs submitted after `since` whose name starts with `prefix`, in submission order. */
function jobs(since: number, prefix = 'report-'): { id: number; name: string; state: string }[] {
  return allJobs()
    .filter((j) => j.id > since && j.name.startsWith(prefix))
    .sort((a, b) => a.id - b.id);
}

async function until(what: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  for (const end = Date.now() + ms; Date.now() < end; ) {
    if (await what()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('timed out waiting');
}

/** A cell body that records when it started and ended, in a log of its own executor (not in its exports). */
const timed = (id: string, body: string[]) => [
  "import { appendFileSync } from 'node:fs';",
  `const log = (what: string) => appendFileSync(${JSON.stringify('LOGDIR')} + (process.env.SLURM_JOB_ID ? '/slurm.log' : '/local.log'), '${id} ' + what + ' ' + Date.now() + '\\n');`,
  "log('start');",
  ...body,
  "await new Promise((r) => setTimeout(r, 300));",
  "log('end');",
];

function diamondDoc(logDir: string): string {
  const cell = (id: string, options: string, body: string[]) => ['```ts run id=' + id + ' ' + options, ...timed(id, body), '```', ''];
  return [
    '---',
    'title: Diamond on Slurm',
    'seed: 11',
    'slurm:',
    '  mem: 256',
    '---',
    '',
    ...cell('it-a', '', ["import { random } from 'report:runtime';", 'const r = random();', 'export const xs = new Float64Array(4096).map(() => r());']),
    ...cell('it-b', '', ["import { xs } from 'cell:it-a';", 'export const squares = Float32Array.from(xs, (x) => x * x);']),
    ...cell('it-c', 'cpus=1', ["import { xs } from 'cell:it-a';", "import { random } from 'report:runtime';", 'const r = random();', 'export const jitter = Float64Array.from(xs, (x) => x + r() * 1e-6);']),
    ...cell('it-d', '', [
      "import { squares } from 'cell:it-b';",
      "import { jitter } from 'cell:it-c';",
      'export const sums = new Float64Array([squares.reduce((s, v) => s + v, 0), jitter.reduce((s, v) => s + v, 0)]);',
      'export const shape = { n: squares.length, ok: true };',
    ]),
    '```ts run id=it-broken mem=256',
    'const n = 3;',
    "if (n > 2) throw new Error('broken on purpose: ' + n);",
    'export const broken = n;',
    '```',
    '',
    '```ts run id=it-after-broken mem=256',
    "import { broken } from 'cell:it-broken';",
    'export const never = broken + 1;',
    '```',
    '',
    '```ts run id=it-sleepy timeout=3 mem=256',
    'while (true) {}',
    'export const sleepy = 1;',
    '```',
    '',
    'The sums are `{ts} sums[0].toFixed(2)` and `{ts} shape.n`.',
    '',
  ]
    .join('\n')
    .replaceAll('LOGDIR', logDir);
}

describe.skipIf(why !== undefined)('a real one-node Slurm', () => {
  it('builds a diamond, a failing cell and a timing-out cell: the local store bit for bit, the DAG order, skips, the timeout at its fence', async () => {
    const since = lastJobId();
    const project = path.join(dir, 'diamond');
    const logDir = path.join(project, 'logs');
    await mkdir(logDir, { recursive: true });
    await writeFile(path.join(project, 'doc.md'), diamondDoc(logDir));

    const started = Date.now();
    const onSlurm = await runCli(path.join(project, 'doc.md'), ['--executor', 'slurm', '--results', path.join(project, 'slurm-results')]);
    const slurmMs = Date.now() - started;
    const local = await runCli(path.join(project, 'doc.md'), ['--results', path.join(project, 'local-results'), '--jobs', '2']);
    console.log(`slurm build ${slurmMs} ms; stdout:\n${onSlurm.stdout}`);

    expect(onSlurm.code).toBe(1);
    expect(local.code).toBe(1);
    // Problems at their lines: the throw, the timeout at its fence; the same locally.
    const problems = (stderr: string) => stderr.split('\n').filter((l) => /^doc\.md:\d+:\d+\s/.test(l)).map((l) => l.split(/\s+/).slice(0, 2).join(' '));
    const lines = (await readFile(path.join(project, 'doc.md'), 'utf8')).split('\n');
    const fence = lines.findIndex((l) => l.startsWith('```ts run id=it-sleepy')) + 1;
    const thrown = lines.findIndex((l) => l.includes('broken on purpose')) + 1;
    const column = lines[thrown - 1]!.indexOf('new Error') + 1;
    expect(problems(onSlurm.stderr)).toEqual([`doc.md:${thrown}:${column} cell-error`, `doc.md:${fence}:1 cell-timeout`]);
    expect(problems(local.stderr)).toEqual(problems(onSlurm.stderr));
    expect(onSlurm.stderr).toMatch(/cell "it-sleepy" timed out: did not finish within its timeout of 3 s/);
    expect(onSlurm.stdout).toMatch(/- it-after-broken skipped: the cell it imports, "it-broken", failed/);
    expect(onSlurm.stdout).toMatch(/ran 4, fresh 0, failed 2, skipped 1/);

    // The same entries, the same payload bytes.
    const payloads = async (folder: string) => {
      const out = new Map<string, Buffer>();
      for (const name of (await readdir(folder)).sort()) if (name.endsWith('.bin')) out.set(name, await readFile(path.join(folder, name)));
      return out;
    };
    const fromSlurm = await payloads(path.join(project, 'slurm-results'));
    const fromLocal = await payloads(path.join(project, 'local-results'));
    expect(fromSlurm.size).toBe(4);
    expect([...fromSlurm.keys()]).toEqual([...fromLocal.keys()]);
    for (const [name, bytes] of fromLocal) expect(fromSlurm.get(name)!.equals(bytes), name).toBe(true);

    // The DAG order, from the cells' own clocks (one machine).
    const times = new Map<string, number>();
    for (const line of (await readFile(path.join(logDir, 'slurm.log'), 'utf8')).split('\n').filter(Boolean)) {
      const [id, what, t] = line.split(' ');
      times.set(`${id} ${what}`, Number(t));
    }
    expect(times.get('it-b start')!).toBeGreaterThanOrEqual(times.get('it-a end')!);
    expect(times.get('it-c start')!).toBeGreaterThanOrEqual(times.get('it-a end')!);
    expect(times.get('it-d start')!).toBeGreaterThanOrEqual(Math.max(times.get('it-b end')!, times.get('it-c end')!));

    // The failed cell's dependant: its job was cancelled and never ran; nothing is left queued.
    const after = jobs(since, 'report-it-after-broken-');
    expect(after.map((j) => j.state)).toEqual(['CANCELLED']);
    expect(times.has('it-after-broken start')).toBe(false);
    expect(jobs(since, 'report-it-').filter((j) => j.state === 'PENDING' || j.state === 'RUNNING')).toEqual([]);
  });

  it('Ctrl-C cancels every job of the build: nothing is left in squeue', async () => {
    const since = lastJobId();
    const project = path.join(dir, 'interrupt');
    await mkdir(project, { recursive: true });
    await writeFile(
      path.join(project, 'doc.md'),
      [
        '```ts run id=int-long mem=256',
        'await new Promise((r) => setTimeout(r, 120_000));',
        'export const long = 1;',
        '```',
        '',
        '```ts run id=int-after mem=256',
        "import { long } from 'cell:int-long';",
        'export const after = long;',
        '```',
        '',
      ].join('\n'),
    );
    const child = cli(path.join(project, 'doc.md'), ['--executor', 'slurm']);
    let stderr = '';
    child.stderr.on('data', (t) => (stderr += t));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await until(() => jobs(since, 'report-int-long-').some((j) => j.state === 'RUNNING'), 120_000);
    expect(jobs(since, 'report-int-after-').map((j) => j.state)).toEqual(['PENDING']);
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toMatch(/cancelled 2 Slurm jobs of this build/);
    await until(() => jobs(since, 'report-int-').every((j) => j.state === 'CANCELLED'), 30_000);
    const live = execFileSync('squeue', ['-h', '-o', '%j'], { encoding: 'utf8' }).split('\n').filter((n) => n.startsWith('report-int-'));
    expect(live).toEqual([]);
  });

  it('a re-run of a killed build adopts its queued jobs instead of submitting them again', async () => {
    const since = lastJobId();
    const project = path.join(dir, 'adopt');
    await mkdir(project, { recursive: true });
    // --begin holds the jobs pending for a while (reason BeginTime), long enough to kill the build.
    await writeFile(
      path.join(project, 'doc.md'),
      [
        '---',
        'slurm:',
        '  extra: ["--begin=now+25"]',
        '---',
        '',
        '```ts run id=ad-first mem=256',
        'export const first = 6;',
        '```',
        '',
        '```ts run id=ad-second mem=256',
        "import { first } from 'cell:ad-first';",
        'export const second = first * 7;',
        '```',
        '',
      ].join('\n'),
    );
    const child = cli(path.join(project, 'doc.md'), ['--executor', 'slurm']);
    const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    await until(() => jobs(since, 'report-ad-').length === 2, 120_000);
    await new Promise((r) => setTimeout(r, 1000)); // the job ids are recorded
    child.kill('SIGKILL');
    await exited;
    const before = jobs(since, 'report-ad-');
    expect(before.map((j) => j.state)).toEqual(['PENDING', 'PENDING']);

    const again = await runCli(path.join(project, 'doc.md'), ['--executor', 'slurm']);
    expect(again.code).toBe(0);
    expect(again.stderr.match(/adopted Slurm job \d+/g)).toHaveLength(2);
    const after = jobs(since, 'report-ad-');
    expect(after.map((j) => j.id).sort()).toEqual(before.map((j) => j.id).sort());
    expect(after.map((j) => j.state)).toEqual(['COMPLETED', 'COMPLETED']);
    expect(again.stdout).toMatch(/ran 2, fresh 0, failed 0, skipped 0/);
  });
});
