#!/usr/bin/env node
/**
 * A fake Slurm for the tests: `fake-slurm.mjs <sbatch|squeue|scontrol|scancel> args…`,
 * called through one-line wrappers on the PATH (tests/support/fake-slurm.ts makes them).
 * It speaks the subset of the real commands' arguments and output the Slurm executor uses,
 * and really runs the batch scripts (with bash), one detached "slurmd" process per job that
 * waits for the job's afterok dependencies, so cells run and store real results.
 *
 * State lives in $FAKE_SLURM_DIR: jobs/<id>.json (one per job), log.jsonl (every command
 * with its arguments), fates.json (what the test wants to happen to jobs whose name matches:
 * `[{ "name": "regex", "pendingMs": 500, "reason": "Priority", "final": "TIMEOUT", "runMs": 100 }]`),
 * config.json (`{ "partitions": ["debug", "gpu"] }`).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = process.env.FAKE_SLURM_DIR;
if (!dir) {
  process.stderr.write('fake-slurm: FAKE_SLURM_DIR is not set\n');
  process.exit(2);
}
const jobsDir = path.join(dir, 'jobs');
fs.mkdirSync(jobsDir, { recursive: true });
const [command, ...args] = process.argv.slice(2);
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'TIMEOUT', 'CANCELLED', 'OUT_OF_MEMORY', 'NODE_FAIL']);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function readJson(file, fallback) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return fallback;
  }
}
const jobFile = (id) => path.join(jobsDir, `${id}.json`);
const readJob = (id) => readJson(jobFile(id), undefined);
function writeJob(job) {
  const tmp = `${jobFile(job.id)}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(job));
  fs.renameSync(tmp, jobFile(job.id));
}
/** Read-modify-write of a job under a lock folder, so scancel and the job's daemon never undo each other. */
function update(id, change) {
  const lock = `${jobFile(id)}.lock`;
  for (let i = 0; ; i++) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch {
      if (i > 2000) fs.rmSync(lock, { recursive: true, force: true });
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
    }
  }
  try {
    const job = readJob(id);
    if (job === undefined) return undefined;
    change(job);
    writeJob(job);
    return job;
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}
function allJobs() {
  return fs
    .readdirSync(jobsDir)
    .filter((n) => /^\d+\.json$/.test(n))
    .map((n) => readJob(n.slice(0, -5)))
    .filter(Boolean)
    .sort((a, b) => Number(a.id) - Number(b.id));
}
function fateOf(name) {
  for (const fate of readJson(path.join(dir, 'fates.json'), [])) if (new RegExp(fate.name).test(name)) return fate;
  return {};
}
const unknownJob = () => {
  process.stderr.write('slurm_load_jobs error: Invalid job id specified\n');
  process.exit(1);
};

fs.appendFileSync(path.join(dir, 'log.jsonl'), `${JSON.stringify({ command, args, t: Date.now() })}\n`);

if (command === 'sbatch') {
  const options = {};
  let script;
  for (const arg of args) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (m) options[m[1]] = m[2] ?? true;
    else script = arg;
  }
  const config = readJson(path.join(dir, 'config.json'), {});
  const partitions = config.partitions ?? ['debug'];
  if (options.partition !== undefined && !String(options.partition).split(',').every((p) => partitions.includes(p))) {
    process.stderr.write('sbatch: error: invalid partition specified: ' + options.partition + '\nsbatch: error: Batch job submission failed: Invalid partition name specified\n');
    process.exit(1);
  }
  const deps = options.dependency ? String(options.dependency).replace(/^afterok:/, '').split(':') : [];
  if (deps.some((d) => readJob(d) === undefined)) {
    process.stderr.write('sbatch: error: Batch job submission failed: Job dependency problem\n');
    process.exit(1);
  }
  const ids = path.join(dir, 'ids');
  fs.mkdirSync(ids, { recursive: true });
  let id = fs.readdirSync(ids).length + 1;
  for (;; id++) {
    try {
      fs.closeSync(fs.openSync(path.join(ids, String(id)), 'wx'));
      break;
    } catch {}
  }
  writeJob({
    id: String(id),
    name: options['job-name'] ?? path.basename(script),
    state: 'PENDING',
    reason: deps.length > 0 ? 'Dependency' : 'None',
    deps,
    kill: options['kill-on-invalid-dep'] === 'yes',
    script,
    output: options.output ?? path.join(options.chdir ?? process.cwd(), `slurm-${id}.out`),
    chdir: options.chdir ?? process.cwd(),
    options,
    submitted: Date.now(),
  });
  const daemon = spawn(process.execPath, [fileURLToPath(import.meta.url), '_run', String(id)], { detached: true, stdio: 'ignore', env: process.env });
  daemon.unref();
  process.stdout.write(options.parsable ? `${id}\n` : `Submitted batch job ${id}\n`);
} else if (command === '_run') {
  const id = args[0];
  const name = readJob(id).name;
  const fate = fateOf(name);
  let eligibleAt;
  for (;;) {
    const job = readJob(id);
    if (job === undefined || TERMINAL.has(job.state)) process.exit(0);
    const deps = job.deps.map(readJob);
    if (deps.some((d) => d && TERMINAL.has(d.state) && d.state !== 'COMPLETED')) {
      update(id, (j) => {
        if (TERMINAL.has(j.state)) return;
        if (j.kill) Object.assign(j, { state: 'CANCELLED', reason: 'DependencyNeverSatisfied', ended: Date.now() });
        else j.reason = 'DependencyNeverSatisfied';
      });
      if (job.kill) process.exit(0);
      await sleep(50);
      continue;
    }
    if (deps.some((d) => !d || d.state !== 'COMPLETED')) {
      await sleep(50);
      continue;
    }
    // Held until the build has submitted this many jobs (a start that cannot race the submissions).
    if (fate.untilJobs !== undefined && fs.readdirSync(path.join(dir, 'ids')).length < fate.untilJobs) {
      if (job.reason !== (fate.reason ?? 'Priority')) update(id, (j) => void (j.state === 'PENDING' && (j.reason = fate.reason ?? 'Priority')));
      await sleep(50);
      continue;
    }
    eligibleAt ??= Date.now();
    if (fate.pendingMs !== undefined && Date.now() - eligibleAt < fate.pendingMs) {
      if (job.reason !== (fate.reason ?? 'Priority')) update(id, (j) => void (j.state === 'PENDING' && (j.reason = fate.reason ?? 'Priority')));
      await sleep(50);
      continue;
    }
    break;
  }
  const started = update(id, (j) => {
    if (j.state === 'PENDING') Object.assign(j, { state: 'RUNNING', reason: 'None', nodes: 'fake1', started: Date.now() });
  });
  if (started?.state !== 'RUNNING') process.exit(0);
  if (fate.final !== undefined) {
    await sleep(fate.runMs ?? 100);
    if (fate.final === 'TIMEOUT') fs.appendFileSync(started.output, `slurmstepd: error: *** JOB ${id} ON fake1 CANCELLED AT now DUE TO TIME LIMIT ***\n`);
    update(id, (j) => {
      if (j.state === 'RUNNING') Object.assign(j, { state: fate.final, reason: fate.final === 'TIMEOUT' ? 'TimeLimit' : 'None', exitCode: fate.exitCode ?? 0, ended: Date.now() });
    });
    process.exit(0);
  }
  const out = fs.openSync(started.output, 'a');
  const child = spawn('bash', [started.script], { cwd: started.chdir, detached: true, stdio: ['ignore', out, out], env: process.env });
  update(id, (j) => void (j.pid = child.pid));
  child.on('exit', (code, signal) => {
    update(id, (j) => {
      if (j.state !== 'RUNNING') return;
      Object.assign(j, { state: code === 0 ? 'COMPLETED' : 'FAILED', reason: code === 0 ? 'None' : 'NonZeroExitCode', exitCode: code ?? 0, signal: signal ? 9 : 0, ended: Date.now() });
    });
    process.exit(0);
  });
} else if (command === 'squeue') {
  let ids;
  let format = '%i %T';
  let name;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-j') ids = args[++i].split(',');
    else if (a.startsWith('--jobs=')) ids = a.slice(7).split(',');
    else if (a === '-o') format = args[++i];
    else if (a.startsWith('--name=')) name = a.slice(7);
    else if (a === '-t' || a === '-u') i++;
  }
  let jobs = allJobs();
  if (ids !== undefined) {
    jobs = jobs.filter((j) => ids.includes(j.id));
    if (jobs.length === 0) unknownJob();
  } else jobs = jobs.filter((j) => !TERMINAL.has(j.state));
  if (name !== undefined) jobs = jobs.filter((j) => j.name === name);
  for (const j of jobs) {
    const fields = { i: j.id, T: j.state, N: j.nodes ?? '', r: j.reason ?? 'None', j: j.name };
    process.stdout.write(`${format.replace(/%([iTNrj])/g, (_, f) => fields[f])}\n`);
  }
} else if (command === 'scontrol') {
  const id = args[args.indexOf('job') + 1];
  const j = readJob(id);
  if (j === undefined) unknownJob();
  process.stdout.write(
    `JobId=${j.id} JobName=${j.name} JobState=${j.state} Reason=${j.reason ?? 'None'} Dependency=${j.deps.length ? `afterok:${j.deps.join(':')}` : '(null)'} ExitCode=${j.exitCode ?? 0}:${j.signal ?? 0} NodeList=${j.nodes ?? ''} Command=${j.script}\n`,
  );
} else if (command === 'scancel') {
  const names = args.filter((a) => a.startsWith('--name=')).map((a) => a.slice(7));
  const ids = new Set(args.filter((a) => /^\d+$/.test(a)));
  for (const j of allJobs()) {
    if (!ids.has(j.id) && !names.includes(j.name)) continue;
    const cancelled = update(j.id, (job) => {
      if (!TERMINAL.has(job.state)) Object.assign(job, { state: 'CANCELLED', reason: 'None', ended: Date.now(), cancelledBy: 'scancel' });
    });
    if (cancelled?.pid !== undefined) {
      try {
        process.kill(-cancelled.pid, 'SIGKILL');
      } catch {}
    }
  }
} else {
  process.stderr.write(`fake-slurm: unknown command ${command}\n`);
  process.exit(2);
}
