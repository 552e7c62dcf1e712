/**
 * The Slurm executor (`--executor slurm`): each stale cell is one `sbatch` job that runs the
 * same runner (child-entry.ts) on the same bundle as a local child process, so a cell's
 * exports are the same bytes wherever it runs (on the same tfjs backend). It sits behind
 * the engine's executor interface: the scheduler, keys, store, weave and `check` are the
 * ones of a local build.
 *
 * - **The DAG is Slurm's.** `prepare` (build.ts calls it before the scheduler starts)
 *   submits every cell at once, each with `--dependency=afterok:<ids>` on the jobs of the
 *   cells it imports and `--kill-on-invalid-dep=yes`. A job reads the exports of its
 *   dependencies from their jobs' result files, so it starts as soon as Slurm lets it.
 *   With `--jobs N` it submits each cell when the scheduler runs it instead.
 * - **One folder per job** on the shared file system, named by the cell and its key:
 *   `<project>/node_modules/.cache/report/slurm/<doc>.<profile>.<hash>/<id>.<key16>/`
 *   holding the job file, the batch script, the dependencies, the events file the runner
 *   appends to (start, progress, done/error, a watchdog kill), Slurm's output file, the
 *   result file and `slurm.json` (job id, name, submitter).
 * - **Results reach the store the usual way.** `run` returns the result; the scheduler
 *   stores it with the same atomic writes, under the build's store lock. Nothing on a
 *   compute node writes the store.
 * - **States.** Events files are read every `pollMs` (live progress, printed text, `start`
 *   says where the job runs); `squeue` is asked every `queueMs` for every job at once
 *   (pending and why), `scontrol show job` once for a job that ended without telling.
 *   `TIMEOUT` (Slurm's, or the runner's watchdog at `time=`/`timeout=`) is a `timeout`
 *   failure (cell-timeout), `OUT_OF_MEMORY` or the watchdog's memory kill a `memory`
 *   failure (cell-memory); a throw is mapped to its Markdown line as locally.
 * - **Failures.** The jobs of a failed cell's dependants are cancelled (the scheduler
 *   reports them skipped). Ctrl-C (the process exits) cancels every job of the build with
 *   one `scancel`; `close` cancels whatever is left when a build ends.
 * - **Adoption.** Job names are `report-<id>-<key16>`; a re-run of a killed build finds the
 *   earlier build's job in the cell's folder (or by name, if it was killed between sbatch and
 *   recording the id): a job still pending or running is adopted when the jobs it depends on
 *   are too; a job that finished with a result delivers it without running again; anything
 *   else is cancelled and submitted afresh. Folders of cells no longer planned are removed,
 *   their live jobs cancelled.
 */
import { accessSync, constants, existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname, userInfo } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { writeFileAtomic } from './atomic.ts';
import type { JobEvent, RunnerJob } from './child-entry.ts';
import { MEMORY_MARKER, TIMEOUT_MARKER } from './child-entry.ts';
import { mapError, resultMeta, runnerPreparer, STOPPED_MESSAGE, type BatchPlan, type CellJob, type Executor, type ExecutorHooks, type ExecutorStatus } from './child-launcher.ts';
import { sha256 } from './digest.ts';
import { slurmMinutes, type SlurmDefaults } from './resources.ts';
import { decode, encode } from './serialize.ts';
import { isTerminal, isUnknownJob, parseSbatch, parseScontrol, parseSqueue, SQUEUE_FORMAT, systemSlurmCommands, type JobInfo, type SlurmCommands } from './slurm-commands.ts';
import type { CellFailure, CellResult, Output, ProgressEvent } from './types.ts';

export interface SlurmExecutorOptions {
  /** `--slurm key=value` flags: over the front matter's `slurm:`, under a cell's own options. */
  defaults?: SlurmDefaults;
  /** Environment of the Slurm commands; sbatch exports it to the jobs (e.g. TFJS_BACKEND). */
  env?: NodeJS.ProcessEnv;
  /** Default: the commands on the PATH of `env`. */
  commands?: SlurmCommands;
  /** Milliseconds between two reads of the jobs' events and output files. Default 1000. */
  pollMs?: number;
  /** Milliseconds between two `squeue` calls. Default 10 000 (a cluster's controller is shared). */
  queueMs?: number;
  /** Run the runner through tsx instead of compiling it (as the local executor's option). */
  tsx?: boolean;
  /** Node on the compute nodes. Default: this process's (`process.execPath`), which must be there too. */
  nodePath?: string;
  /** Notes for the user (adopted and cancelled jobs). Default: stderr. */
  log?: (line: string) => void;
}

/** The resources a cell's job asks for: its options, else the flags, else the front matter, else the cell's limits. */
export interface JobResources {
  timeSeconds: number;
  memMiB: number;
  cpus?: number;
  gpus?: string;
  partition?: string;
  account?: string;
  qos?: string;
  constraint?: string;
  extra: string[];
}

export function jobResources(job: CellJob, frontMatter: SlurmDefaults | undefined, flags: SlurmDefaults | undefined): JobResources {
  const cell = job.cell.options.resources ?? {};
  const d: SlurmDefaults = { ...frontMatter, ...flags, extra: [...(frontMatter?.extra ?? []), ...(flags?.extra ?? [])] };
  const pick = <K extends keyof SlurmDefaults>(k: K): SlurmDefaults[K] => (cell as SlurmDefaults)[k] ?? d[k];
  const result: JobResources = {
    timeSeconds: cell.timeSeconds ?? d.timeSeconds ?? job.cell.options.timeout,
    memMiB: cell.memMiB ?? d.memMiB ?? job.cell.options.memory,
    extra: d.extra ?? [],
  };
  for (const k of ['cpus', 'gpus', 'partition', 'account', 'qos', 'constraint'] as const) {
    const v = pick(k);
    if (v !== undefined) (result as unknown as Record<string, unknown>)[k] = v;
  }
  return result;
}

/** The sbatch command line of one job (everything on it, nothing in `#SBATCH` lines). */
export function sbatchArgs(o: { name: string; output: string; chdir: string; resources: JobResources; afterok: string[]; script: string }): string[] {
  const r = o.resources;
  const args = ['--parsable', `--job-name=${o.name}`, `--output=${o.output}`, `--chdir=${o.chdir}`, `--time=${slurmMinutes(r.timeSeconds)}`, `--mem=${r.memMiB}`];
  if (r.cpus !== undefined) args.push(`--cpus-per-task=${r.cpus}`);
  if (r.gpus !== undefined) args.push(`--gpus=${r.gpus}`);
  if (r.partition !== undefined) args.push(`--partition=${r.partition}`);
  if (r.account !== undefined) args.push(`--account=${r.account}`);
  if (r.qos !== undefined) args.push(`--qos=${r.qos}`);
  if (r.constraint !== undefined) args.push(`--constraint=${r.constraint}`);
  if (o.afterok.length > 0) args.push(`--dependency=afterok:${o.afterok.join(':')}`, '--kill-on-invalid-dep=yes');
  args.push(...r.extra, o.script);
  return args;
}

/** `report-<id>-<key16>`: the job's name in squeue, and how a re-run finds a job whose id was never recorded. */
export function jobName(id: string, key: string): string {
  return `report-${id}-${key.slice(0, 16)}`;
}

/** What `slurm.json` in a job folder records. */
interface JobRecord {
  name: string;
  jobId?: string;
  bundle: string;
  by: { host: string; pid: number };
  submittedAt: string;
}

interface Tracked {
  id: string;
  key: string;
  job: CellJob;
  dir: string;
  bundlePath: string;
  name: string;
  /** Imported cells that run in this build. */
  pending: string[];
  resources: JobResources;
  jobId?: string;
  /** Slurm's last word, or `SUBMITTING`/`GONE` (purged, or never known). */
  info: JobInfo;
  /** Taken over from an earlier build. */
  adopted: boolean;
  /** The job ended with its result in the folder, before this build watched it (adopted). */
  finished: boolean;
  /** Cancelled by this build (a dependency failed, or the build ended). */
  cancelled: boolean;
  events: { start?: Extract<JobEvent, { type: 'start' }>; done?: JobEvent; error?: Extract<JobEvent, { type: 'error' }>; killed?: Extract<JobEvent, { type: 'killed' }> };
  eventsOffset: number;
  eventsRest: string;
  outputOffset: number;
  outputDecoder: StringDecoder;
  printed: string;
  lastProgress?: ProgressEvent;
  hooks?: ExecutorHooks;
  status?: string;
  /** When the job's process started, on this machine's clock (from the job's own clock: no skew). */
  startedAt?: number;
  /** Tries at reading a result file that was not (yet) complete. */
  resultTries: number;
  outcome?: CellResult | CellFailure;
  waiters: ((outcome: CellResult | CellFailure) => void)[];
}

/** Executors with jobs in flight, cancelled from the exit handler (Ctrl-C ends the process with process.exit). */
const live = new Set<SlurmExecutor>();
let exitHandler = false;
function watchExit(): void {
  if (exitHandler) return;
  exitHandler = true;
  process.once('exit', () => {
    for (const executor of live) executor.cancelAllSync();
  });
}

export function slurmExecutor(options: SlurmExecutorOptions = {}): Executor {
  return new SlurmExecutor(options);
}

export class SlurmExecutor implements Executor {
  private readonly commands: SlurmCommands;
  private readonly pollMs: number;
  private readonly queueMs: number;
  private readonly prepareRunner: ReturnType<typeof runnerPreparer>;
  private readonly log: (line: string) => void;
  private readonly tracked = new Map<string, Tracked>();
  /** From `prepare`: may a cell's earlier job be adopted, the front matter's defaults, the status listener. */
  private plan?: { adopt: Map<string, boolean>; frontMatter?: SlurmDefaults; onStatus?: BatchPlan['onStatus'] };
  /** Folders that adopted jobs still read (results of cells now fresh): removed by `close`. */
  private readonly keep = new Set<string>();
  private loop?: Promise<void>;
  private lastQueue = 0;
  private closed = false;

  constructor(private readonly options: SlurmExecutorOptions) {
    this.commands = options.commands ?? systemSlurmCommands({ ...process.env, ...options.env });
    this.pollMs = options.pollMs ?? 1000;
    this.queueMs = options.queueMs ?? 10_000;
    this.prepareRunner = runnerPreparer({ tsx: options.tsx });
    this.log = options.log ?? ((line) => process.stderr.write(`${line}\n`));
  }

  async prepare(plan: BatchPlan): Promise<void> {
    this.plan = { adopt: new Map(plan.cells.map((c) => [c.job.cell.id, c.adopt])), frontMatter: plan.frontMatter.slurm, onStatus: plan.onStatus };
    const first = plan.cells[0]?.job;
    if (first === undefined) return;
    await this.sweepFolders(first, new Set(plan.cells.map((c) => folderName(c.job))));
    if (!plan.ahead) return;
    // Earlier jobs of all planned cells, asked of Slurm at once.
    const records = new Map<string, JobRecord>();
    for (const { job } of plan.cells) {
      const record = await readRecord(this.jobDir(job));
      if (record !== undefined) records.set(job.cell.id, record);
    }
    const known = await this.query([...records.values()].flatMap((r) => (r.jobId === undefined ? [] : [r.jobId])));
    for (const { job, pending, adopt } of plan.cells) {
      await this.start(job, pending, adopt, records.get(job.cell.id), known);
    }
    this.ensureLoop();
  }

  async run(job: CellJob, hooks: ExecutorHooks): Promise<CellResult | CellFailure> {
    let t = this.tracked.get(job.cell.id);
    const submitted = t !== undefined && t.key === job.key.key;
    if (!submitted && hooks.signal?.aborted) return { id: job.cell.id, kind: 'error', message: STOPPED_MESSAGE };
    if (t === undefined || !submitted) {
      // Not submitted ahead (--jobs, or no prepare): submit now, with every dependency's result at hand.
      const record = await readRecord(this.jobDir(job));
      const known = await this.query(record?.jobId === undefined ? [] : [record.jobId]);
      t = await this.start(job, [], this.plan?.adopt.get(job.cell.id) ?? true, record, known);
      this.ensureLoop();
    }
    t.hooks = hooks;
    if (t.printed !== '') hooks.onOutput?.(t.printed);
    if (t.lastProgress !== undefined) hooks.onProgress(t.lastProgress);
    const tracked = t;
    // The preview's stop button (or an edit that changed the cell): its job is cancelled.
    const { signal } = hooks;
    if (signal?.aborted) await this.stop(tracked);
    else signal?.addEventListener('abort', () => void this.stop(tracked), { once: true });
    return tracked.outcome ?? new Promise((resolvePromise) => tracked.waiters.push(resolvePromise));
  }

  /**
   * Cancels the job of a cell the scheduler has not run yet (the preview stopped it while it
   * was queued): `run` then gives the stopped failure, and the cells that import it are skipped.
   */
  async cancel(id: string): Promise<void> {
    const t = this.tracked.get(id);
    if (t !== undefined) await this.stop(t);
  }

  /** Stops one cell: its job is cancelled (pending or running) and it ends as stopped; its dependants' jobs are cancelled. */
  private async stop(t: Tracked): Promise<void> {
    if (t.outcome !== undefined) return;
    await this.cancelJobs([t], 'stopped');
    // What the job printed before it was cancelled is kept with the failure.
    await this.readFiles(t).catch(() => undefined);
    this.settle(t, { id: t.id, kind: 'error', message: STOPPED_MESSAGE, ...printedOutputs(t) });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.loop;
    const left = [...this.tracked.values()].filter((t) => t.outcome === undefined && !t.cancelled);
    if (left.length > 0) await this.cancelJobs(left, 'the build ended');
    for (const t of this.tracked.values()) {
      await rm(t.dir, { recursive: true, force: true });
      await rm(t.bundlePath, { force: true });
    }
    for (const dir of this.keep) await removeFolder(dir);
    this.tracked.clear();
    this.keep.clear();
    this.plan = undefined;
    live.delete(this);
    this.closed = false;
  }

  /** Ctrl-C: one `scancel` for every job of this build that may still run (synchronous: called at exit). */
  cancelAllSync(): void {
    const ids: string[] = [];
    const names: string[] = [];
    for (const t of this.tracked.values()) {
      if (t.outcome !== undefined || t.cancelled) continue;
      if (t.jobId !== undefined) ids.push(t.jobId);
      else if (t.info.state === 'SUBMITTING') names.push(t.name);
      t.cancelled = true;
    }
    if (ids.length > 0) this.commands.runSync('scancel', ids);
    for (const name of names) {
      this.commands.runSync('scancel', [`--name=${name}`, `--user=${user()}`]);
      this.commands.later?.('scancel', [`--name=${name}`, `--user=${user()}`], 10);
    }
    if (ids.length + names.length > 0) this.log(`cancelled ${ids.length + names.length} Slurm job${ids.length + names.length === 1 ? '' : 's'} of this build${ids.length > 0 ? ` (${ids.join(', ')})` : ''}`);
  }

  // ---------------------------------------------------------------------------------------

  private jobRoot(job: CellJob): string {
    const tag = `${basename(job.docPath)}.${job.profile}.${sha256(`${job.docPath}\0${job.profile}`).slice(0, 8)}`;
    return join(job.projectRoot, 'node_modules', '.cache', 'report', 'slurm', tag);
  }

  private jobDir(job: CellJob): string {
    return join(this.jobRoot(job), folderName(job));
  }

  /** Adopts the cell's earlier job, or submits a new one. */
  private async start(job: CellJob, pending: string[], adopt: boolean, record: JobRecord | undefined, known: Map<string, JobInfo>): Promise<Tracked> {
    const dir = this.jobDir(job);
    const t: Tracked = {
      id: job.cell.id,
      key: job.key.key,
      job,
      dir,
      bundlePath: join(job.key.bundleDir, `${basename(job.docPath)}.${job.cell.id}.${job.key.key.slice(0, 16)}.slurm.mjs`),
      name: jobName(job.cell.id, job.key.key),
      pending,
      resources: jobResources(job, this.plan?.frontMatter, this.options.defaults),
      info: { state: 'SUBMITTING' },
      adopted: false,
      finished: false,
      cancelled: false,
      events: {},
      eventsOffset: 0,
      eventsRest: '',
      outputOffset: 0,
      outputDecoder: new StringDecoder('utf8'),
      printed: '',
      resultTries: 0,
      waiters: [],
    };
    this.tracked.set(t.id, t);
    live.add(this);
    watchExit();

    let earlier: Awaited<ReturnType<SlurmExecutor['earlier']>>;
    try {
      earlier = record === undefined ? undefined : await this.earlier(record, dir, known);
    } catch (error) {
      this.settle(t, { id: t.id, kind: 'crash', message: (error as Error).message });
      return t;
    }
    if (earlier !== undefined) {
      const depsAdopted = pending.every((dep) => this.tracked.get(dep)?.adopted === true);
      if (adopt && earlier.finished) {
        // It ran to the end while no build watched: its result is in the folder.
        Object.assign(t, { jobId: earlier.jobId, info: earlier.info ?? { state: 'COMPLETED' }, adopted: true, finished: true });
        this.log(`cell "${t.id}": Slurm job ${earlier.jobId} of an earlier build finished; its result is taken`);
        for (const path of Object.values(earlier.depResults)) this.keep.add(dirname(path));
        return t;
      }
      if (adopt && earlier.info !== undefined && !isOver(earlier.info.state) && depsAdopted) {
        Object.assign(t, { jobId: earlier.jobId, info: earlier.info, adopted: true });
        this.log(`cell "${t.id}": adopted Slurm job ${earlier.jobId} (${earlier.info.state.toLowerCase()}) of an earlier build`);
        for (const path of Object.values(earlier.depResults)) this.keep.add(dirname(path));
        this.status(t);
        return t;
      }
      if (earlier.info !== undefined && !isOver(earlier.info.state)) {
        await this.commands.run('scancel', [earlier.jobId]);
        this.log(`cell "${t.id}": cancelled Slurm job ${earlier.jobId} of an earlier build (${adopt ? 'a job it depends on runs again' : '--rerun'})`);
      }
    }
    await this.submit(t);
    return t;
  }

  /** What became of the job an earlier build recorded in `dir`. */
  private async earlier(
    record: JobRecord,
    dir: string,
    known: Map<string, JobInfo>,
  ): Promise<{ jobId: string; info?: JobInfo; finished: boolean; depResults: Record<string, string> } | undefined> {
    if (record.by.host === hostname() && record.by.pid !== process.pid && processAlive(record.by.pid)) {
      throw new Error(`Slurm job ${record.jobId ?? record.name} of this cell belongs to another build that is still running (pid ${record.by.pid})`);
    }
    let jobId = record.jobId;
    if (jobId === undefined) {
      // Killed between sbatch and writing the id: find the job by its name.
      const found = await this.commands.run('squeue', ['-h', `--name=${record.name}`, `--user=${user()}`, '-o', SQUEUE_FORMAT]);
      const [id, info] = [...parseSqueue(found.stdout)][0] ?? [];
      if (id === undefined) return undefined;
      jobId = id;
      known.set(id, info!);
    }
    const events = parseEvents(await readText(join(dir, 'events.jsonl')));
    const finished = events.some((e) => e.type === 'done') && existsSync(join(dir, 'result.bin'));
    const job = await readJson<RunnerJob>(join(dir, 'job.json'));
    return { jobId, info: known.get(jobId), finished, depResults: job?.depResults ?? {} };
  }

  private async submit(t: Tracked): Promise<void> {
    const { job, dir } = t;
    // Imported cells of this build: their result files, and the jobs not finished yet.
    const depResults: Record<string, string> = {};
    const afterok: string[] = [];
    for (const dep of t.pending) {
      const d = this.tracked.get(dep);
      if (d === undefined || (d.jobId === undefined && d.outcome === undefined) || (d.outcome !== undefined && d.outcome.kind !== 'result')) {
        this.settle(t, { id: t.id, kind: 'skipped', message: `skipped: the cell it imports, "${dep}", has no job` });
        return;
      }
      depResults[dep] = join(d.dir, 'result.bin');
      // A job that already ended well needs no dependency (Slurm may have forgotten it).
      if (d.outcome === undefined && !d.finished) afterok.push(d.jobId!);
    }
    try {
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      const { bundle, entry } = await this.prepareRunner(job.key);
      await writeFileAtomic(t.bundlePath, bundle);
      const runnerJob: RunnerJob = {
        cellId: t.id,
        profile: job.profile,
        seed: job.seed,
        bundlePath: t.bundlePath,
        resultPath: join(dir, 'result.bin'),
        memoryMiB: t.resources.memMiB,
        timeoutSeconds: t.resources.timeSeconds,
        eventsPath: join(dir, 'events.jsonl'),
        ...(job.checkpointPath === undefined ? {} : { checkpointPath: job.checkpointPath }),
        ...(Object.keys(depResults).length > 0 ? { depResults } : {}),
      };
      if (job.deps.size > 0) {
        runnerJob.depsPath = join(dir, 'deps.bin');
        await writeFile(runnerJob.depsPath, encode(Object.fromEntries([...job.deps].map(([id, r]) => [id, r.exports]))));
      }
      await writeFile(join(dir, 'job.json'), JSON.stringify(runnerJob));
      const node = this.options.nodePath ?? process.execPath;
      const script = [
        '#!/bin/bash',
        `# literate-report: cell "${t.id}" of ${basename(job.docPath)}, key ${t.key}`,
        `cd ${shellQuote(dirname(job.docPath))} || exit 97`,
        `exec ${[node, '--enable-source-maps', `--max-old-space-size=${t.resources.memMiB}`, ...entry, join(dir, 'job.json')].map(shellQuote).join(' ')}`,
        '',
      ].join('\n');
      await writeFile(join(dir, 'job.sh'), script, { mode: 0o755 });
      const record: JobRecord = { name: t.name, bundle: t.bundlePath, by: { host: hostname(), pid: process.pid }, submittedAt: new Date().toISOString() };
      await writeFileAtomic(join(dir, 'slurm.json'), JSON.stringify(record));
      const args = sbatchArgs({ name: t.name, output: join(dir, 'output.txt'), chdir: dirname(job.docPath), resources: t.resources, afterok, script: join(dir, 'job.sh') });
      const submitted = await this.commands.run('sbatch', args);
      const jobId = submitted.code === 0 ? parseSbatch(submitted.stdout) : undefined;
      if (jobId === undefined) {
        const why = submitted.stderr.trim() || submitted.stdout.trim() || `exit code ${submitted.code}`;
        const message = submitted.code === 127 ? 'cannot submit: sbatch is not on the PATH (run the build on a login node of the cluster)' : `Slurm refused the job: ${why.replace(/^sbatch: error: /gm, '')}`;
        this.settle(t, { id: t.id, kind: 'error', message });
        return;
      }
      t.jobId = jobId;
      t.info = { state: 'PENDING' };
      await writeFileAtomic(join(dir, 'slurm.json'), JSON.stringify({ ...record, jobId }));
      // Stopped (or its input failed) while sbatch was answering: the job goes at once.
      if (t.cancelled) {
        await this.commands.run('scancel', [jobId]);
        return;
      }
      this.status(t);
    } catch (error) {
      this.settle(t, { id: t.id, kind: 'crash', message: `could not submit the cell's job: ${(error as Error).message}` });
    }
  }

  private ensureLoop(): void {
    if (this.loop !== undefined) return;
    this.loop = (async () => {
      while (!this.closed && [...this.tracked.values()].some((t) => t.outcome === undefined && !t.cancelled && t.jobId !== undefined)) {
        try {
          await this.tick();
        } catch (error) {
          this.log(`slurm: ${(error as Error).message}`);
        }
        if ([...this.tracked.values()].some((t) => t.outcome === undefined && !t.cancelled && t.jobId !== undefined)) {
          await new Promise((resolvePromise) => setTimeout(resolvePromise, this.pollMs));
        }
      }
    })().finally(() => {
      this.loop = undefined;
    });
  }

  private async tick(): Promise<void> {
    const watched = [...this.tracked.values()].filter((t) => t.outcome === undefined && !t.cancelled && t.jobId !== undefined);
    for (const t of watched) {
      await this.readFiles(t);
      if (t.events.done !== undefined) await this.finishDone(t);
    }
    const open = watched.filter((t) => t.outcome === undefined && !t.cancelled);
    // Slurm is asked every queueMs, and at once when a job's process has ended (error, kill).
    const ending = open.some((t) => t.events.error !== undefined || t.events.killed !== undefined);
    if (open.length > 0 && (ending || Date.now() - this.lastQueue >= this.queueMs)) {
      this.lastQueue = Date.now();
      const states = await this.query(open.map((t) => t.jobId!));
      for (const t of open) {
        const info = states.get(t.jobId!);
        if (info === undefined) continue; // Slurm did not answer this time
        t.info = info;
        if (isOver(info.state)) {
          await this.readFiles(t);
          await this.finish(t);
        } else {
          this.status(t);
        }
      }
    }
  }

  /**
   * Job id → what Slurm says: one squeue for all, scontrol for any squeue does not list,
   * `GONE` for an id Slurm does not know (purged). An id Slurm did not answer for (a busy
   * controller) is left out: asked again next time.
   */
  private async query(ids: string[]): Promise<Map<string, JobInfo>> {
    const known = new Map<string, JobInfo>();
    if (ids.length === 0) return known;
    const listed = await this.commands.run('squeue', ['-h', '-t', 'all', '-j', ids.join(','), '-o', SQUEUE_FORMAT]);
    if (listed.code === 0) for (const [id, info] of parseSqueue(listed.stdout)) known.set(id, info);
    else if (!isUnknownJob(listed)) this.warn(`squeue failed: ${listed.stderr.trim() || `exit code ${listed.code}`}`);
    for (const id of ids) {
      if (known.has(id)) continue;
      const shown = await this.commands.run('scontrol', ['-o', 'show', 'job', id]);
      const info = shown.code === 0 ? parseScontrol(shown.stdout) : undefined;
      if (info !== undefined) known.set(id, info);
      else if (isUnknownJob(shown)) known.set(id, { state: 'GONE' });
      else this.warn(`scontrol show job ${id} failed: ${shown.stderr.trim() || `exit code ${shown.code}`}`);
    }
    return known;
  }

  private readonly warned = new Set<string>();
  /** A note about Slurm's commands, once per text (a poll repeats every few seconds). */
  private warn(text: string): void {
    if (this.warned.has(text)) return;
    this.warned.add(text);
    this.log(`slurm: ${text}`);
  }

  /** New lines of the events file and new text of the output file. */
  private async readFiles(t: Tracked): Promise<void> {
    const events = await readFrom(join(t.dir, 'events.jsonl'), t.eventsOffset);
    if (events.length > 0) {
      t.eventsOffset += events.length;
      const text = t.eventsRest + new TextDecoder().decode(events);
      const end = text.lastIndexOf('\n');
      t.eventsRest = text.slice(end + 1);
      const batch = parseEvents(text.slice(0, end + 1));
      for (const event of batch) this.onEvent(t, event);
      const start = t.events.start;
      if (start !== undefined && t.startedAt === undefined && batch.length > 0) {
        // How long ago it started, by the job's clock: read late (a poll later, or with its end), it is still timed right.
        t.startedAt = Date.now() - Math.max(0, batch.at(-1)!.t - start.t);
        this.status(t);
      }
    }
    const output = await readFrom(join(t.dir, 'output.txt'), t.outputOffset);
    if (output.length > 0) {
      t.outputOffset += output.length;
      const text = t.outputDecoder.write(Buffer.from(output));
      if (text !== '') {
        t.printed += text;
        t.hooks?.onOutput?.(text);
      }
    }
  }

  private onEvent(t: Tracked, event: JobEvent): void {
    switch (event.type) {
      case 'start':
        t.events.start = event;
        if (!isOver(t.info.state)) t.info = { ...t.info, state: 'RUNNING', nodes: event.host };
        break;
      case 'progress': {
        const { type: _, t: __, ...rest } = event;
        t.lastProgress = { id: t.id, ...rest };
        t.hooks?.onProgress(t.lastProgress);
        break;
      }
      case 'done':
        t.events.done = event;
        break;
      case 'error':
        t.events.error = event;
        break;
      case 'killed':
        t.events.killed = event;
        break;
    }
  }

  /** The runner said done: its result file is complete. */
  private async finishDone(t: Tracked): Promise<void> {
    let value: { exports: Record<string, unknown>; outputs: Output[]; meta: Record<string, unknown> };
    try {
      value = decode(new Uint8Array(await readFile(join(t.dir, 'result.bin')))) as typeof value;
    } catch (error) {
      // A shared file system may show the file a moment after the event: try a few times.
      if (++t.resultTries < 10) return;
      this.settle(t, { id: t.id, kind: 'crash', message: `Slurm job ${t.jobId} finished, but its result file cannot be read: ${(error as Error).message}`, ...printedOutputs(t) });
      return;
    }
    const start = t.events.start;
    const runMs = start !== undefined ? Math.max(0, t.events.done!.t - start.t) : 0;
    const meta = resultMeta(t.job, runMs, value.meta);
    if (start !== undefined) meta.environment = { cpu: start.cpu, cores: start.cores, os: start.os, node: start.node };
    this.settle(t, { kind: 'result', id: t.id, key: t.key, exports: value.exports, outputs: value.outputs, meta });
  }

  /** Slurm says the job ended (or forgot it): what happened to the cell. */
  private async finish(t: Tracked): Promise<void> {
    if (t.events.done !== undefined) return this.finishDone(t);
    const { cell } = t.job;
    const job = `Slurm job ${t.jobId}`;
    const outputs = printedOutputs(t);
    const state = t.info.state;
    const tail = t.printed.slice(-4000);
    if (t.events.error !== undefined) {
      return this.settle(t, { id: t.id, kind: 'error', ...mapError(t.events.error, cell, t.job.key.sourcefile, t.job.docPath), ...outputs });
    }
    const limit = `${t.resources.timeSeconds} s`;
    if (t.events.killed?.reason === 'timeout' || tail.includes(TIMEOUT_MARKER) || state === 'TIMEOUT' || (state === 'CANCELLED' && /DUE TO TIME LIMIT/.test(tail))) {
      const by = state === 'TIMEOUT' ? `Slurm ended job ${t.jobId} at its time limit, --time=${slurmMinutes(t.resources.timeSeconds)} min` : `${job} was stopped at it`;
      return this.settle(t, {
        id: t.id,
        kind: 'timeout',
        message: `did not finish within its timeout of ${limit} (${by}); raise it with time= or timeout= in the cell's options`,
        ...outputs,
      });
    }
    const marker = tail.lastIndexOf(MEMORY_MARKER);
    if (t.events.killed?.reason === 'memory' || marker >= 0 || state === 'OUT_OF_MEMORY' || /heap out of memory|Allocation failed/i.test(tail)) {
      const measured = t.events.killed?.reason === 'memory'
        ? t.events.killed.detail
        : marker >= 0
          ? tail.slice(marker + MEMORY_MARKER.length).split('\n')[0]!.trim()
          : state === 'OUT_OF_MEMORY'
            ? `Slurm ended job ${t.jobId} as OUT_OF_MEMORY`
            : 'the JavaScript heap is full';
      return this.settle(t, {
        id: t.id,
        kind: 'memory',
        message: `${measured}; mem=${t.resources.memMiB} MiB (--mem of the job) caps everything the cell's process holds. Raise mem=<size> in the cell's options or use less`,
        ...outputs,
      });
    }
    let why: string;
    if (state === 'GONE') why = `${job} is no longer known to Slurm and left no result`;
    else if (state === 'COMPLETED') why = `${job} completed without a result (the runner never said done)`;
    else if (state === 'CANCELLED') why = `${job} was cancelled outside this build${t.info.reason === undefined ? '' : ` (${t.info.reason})`}`;
    else if (state === 'FAILED') {
      if (t.info.exitCode === undefined) {
        const shown = await this.commands.run('scontrol', ['-o', 'show', 'job', t.jobId!]);
        const info = shown.code === 0 ? parseScontrol(shown.stdout) : undefined;
        if (info !== undefined) t.info = { ...t.info, ...info };
      }
      why = t.info.exitCode === 13
        ? 'its top-level await never settled (a promise that never resolves, e.g. a callback that is never called)'
        : `the cell's process in ${job} exited with code ${t.info.exitCode ?? '?'}${t.info.signal ? ` (signal ${t.info.signal})` : ''} before finishing`;
    } else why = `Slurm ended job ${t.jobId} as ${state}${t.info.reason === undefined ? '' : ` (${t.info.reason})`}${t.info.nodes === undefined ? '' : ` on ${t.info.nodes}`}`;
    const text = tail.trim();
    return this.settle(t, { id: t.id, kind: 'crash', message: text === '' ? why : `${why}\n${text}`, ...outputs });
  }

  private settle(t: Tracked, outcome: CellResult | CellFailure): void {
    if (t.outcome !== undefined) return;
    t.outcome = outcome;
    for (const resolvePromise of t.waiters.splice(0)) resolvePromise(outcome);
    if (outcome.kind !== 'result') void this.cancelDependants(t);
  }

  /** A cell failed: the jobs of the cells that import it, directly or not, will never run. */
  private async cancelDependants(failed: Tracked): Promise<void> {
    const doomed: Tracked[] = [];
    const reach = (id: string): void => {
      for (const t of this.tracked.values()) {
        if (t.pending.includes(id) && t.outcome === undefined && !doomed.includes(t)) {
          doomed.push(t);
          reach(t.id);
        }
      }
    };
    reach(failed.id);
    if (doomed.length === 0) return;
    await this.cancelJobs(doomed, `"${failed.id}" failed`);
    for (const t of doomed) this.settle(t, { id: t.id, kind: 'skipped', message: `skipped: the cell it imports, "${failed.id}", failed` });
  }

  private async cancelJobs(jobs: Tracked[], why: string): Promise<void> {
    const ids = jobs.flatMap((t) => (t.jobId === undefined || t.cancelled || isOver(t.info.state) ? [] : [t.jobId]));
    for (const t of jobs) t.cancelled = true;
    if (ids.length === 0) return;
    const result = await this.commands.run('scancel', ids);
    if (result.code !== 0) this.log(`scancel ${ids.join(' ')} failed: ${result.stderr.trim()}`);
    else this.log(`cancelled Slurm job${ids.length === 1 ? '' : 's'} ${ids.join(', ')}: ${why}`);
  }

  private status(t: Tracked): void {
    const onStatus = this.plan?.onStatus;
    if (onStatus === undefined || t.jobId === undefined || t.outcome !== undefined) return;
    const status = describeStatus(t, (id) => this.tracked.get(id));
    const said = `${status.text}\0${status.since ?? ''}`;
    if (said === t.status) return;
    t.status = said;
    onStatus(t.id, status);
  }

  /** Removes folders of this document's cells that are not planned (fresh now, or of an old key); cancels their live jobs. */
  private async sweepFolders(job: CellJob, planned: Set<string>): Promise<void> {
    const root = this.jobRoot(job);
    const stale: { dir: string; record?: JobRecord }[] = [];
    for (const name of await readdir(root).catch(() => [] as string[])) {
      if (planned.has(name)) continue;
      const dir = join(root, name);
      stale.push({ dir, record: await readRecord(dir) });
    }
    if (stale.length === 0) return;
    // Folders whose result a planned cell's earlier job still reads stay until `close`.
    for (const name of planned) {
      const runner = await readJson<RunnerJob>(join(root, name, 'job.json'));
      for (const path of Object.values(runner?.depResults ?? {})) this.keep.add(dirname(path));
    }
    const known = await this.query(stale.flatMap((s) => (s.record?.jobId === undefined ? [] : [s.record.jobId])));
    const cancel = stale.flatMap((s) => {
      const id = s.record?.jobId;
      if (id === undefined) return [];
      const info = known.get(id);
      return info !== undefined && !isOver(info.state) ? [id] : [];
    });
    if (cancel.length > 0) {
      await this.commands.run('scancel', cancel);
      this.log(`cancelled Slurm job${cancel.length === 1 ? '' : 's'} ${cancel.join(', ')} of an earlier build (cells whose key changed or that are fresh)`);
    }
    for (const s of stale) if (!this.keep.has(s.dir)) await removeFolder(s.dir, s.record);
  }
}

function describeStatus(t: Tracked, get: (id: string) => Tracked | undefined): ExecutorStatus {
  const job = `job ${t.jobId}`;
  const { state, reason, nodes } = t.info;
  if (state === 'PENDING') {
    if (reason === 'Dependency') {
      const waiting = t.pending.filter((dep) => get(dep)?.outcome === undefined);
      return { state: 'pending', text: `pending (${waiting.length > 0 ? `after ${waiting.join(', ')}` : 'Dependency'}) · ${job}` };
    }
    return { state: 'pending', text: `pending${reason === undefined ? '' : ` (${reason})`} · ${job}` };
  }
  if (state === 'RUNNING' || state === 'COMPLETING' || state === 'CONFIGURING') {
    return { state: 'running', text: `running${nodes === undefined ? '' : ` on ${nodes}`} · ${job}`, ...(t.startedAt === undefined ? {} : { since: t.startedAt }) };
  }
  return { state: 'pending', text: `${state.toLowerCase()}${reason === undefined ? '' : ` (${reason})`} · ${job}` };
}

/** Ended for good, or forgotten by Slurm. */
function isOver(state: string): boolean {
  return isTerminal(state) || state === 'GONE';
}

function folderName(job: CellJob): string {
  return `${job.cell.id}.${job.key.key.slice(0, 16)}`;
}

function printedOutputs(t: Tracked): { outputs: Output[] } {
  const text = t.printed + t.outputDecoder.end();
  t.printed = text;
  return { outputs: text === '' ? [] : [{ kind: 'text', text }] };
}

function parseEvents(text: string): JobEvent[] {
  const events: JobEvent[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      events.push(JSON.parse(line) as JobEvent);
    } catch {
      // a line cut short by a kill: nothing to learn from it
    }
  }
  return events;
}

async function readRecord(dir: string): Promise<JobRecord | undefined> {
  const record = await readJson<JobRecord>(join(dir, 'slurm.json'));
  return record !== undefined && typeof record.name === 'string' && typeof record.by?.pid === 'number' ? record : undefined;
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

async function readText(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '');
}

/** The bytes of `path` from `offset` on (none when it does not exist yet). */
async function readFrom(path: string, offset: number): Promise<Uint8Array> {
  try {
    const data = await readFile(path);
    return data.length > offset ? new Uint8Array(data.subarray(offset)) : new Uint8Array();
  } catch {
    return new Uint8Array();
  }
}

async function removeFolder(dir: string, record?: JobRecord): Promise<void> {
  const bundle = (record ?? (await readRecord(dir)))?.bundle;
  if (bundle !== undefined && bundle.endsWith('.slurm.mjs')) await rm(bundle, { force: true });
  await rm(dir, { recursive: true, force: true });
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: unknown }).code === 'EPERM';
  }
}

function user(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env['USER'] ?? String(process.getuid?.() ?? '');
  }
}

/** `'…'` for bash, with `'` written as `'\''`. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./=:,+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** True when `command` is an executable file in a folder of `env`'s PATH (the CLI checks for sbatch before a build). */
export function onPath(command: string, env: NodeJS.ProcessEnv = process.env): boolean {
  return (env['PATH'] ?? '').split(':').some((folder) => {
    if (folder === '') return false;
    try {
      accessSync(join(folder, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}
