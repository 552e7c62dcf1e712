/**
 * Runs one cell. `childProcessExecutor` runs it in its own Node process (child-entry.ts) with
 * a heap cap, a wall-clock limit and errors mapped back to Markdown lines;
 * (the in-process test double `fakeExecutor` lives in tests/support/).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';
import { bundleOf, type CellKey } from './key.ts';
import { MEMORY_MARKER, type RunnerJob, type RunnerMessage } from './child-entry.ts';
import { writeFileAtomic } from './atomic.ts';
import { decode, encode, encodeResult } from './serialize.ts';
import type { Cell, CellFailure, CellResult, FrontMatter, Output, ProgressEvent, ResultMeta } from './types.ts';
import { sha256 } from './digest.ts';

export interface CellJob {
  cell: Cell;
  key: CellKey;
  /** Results of the cells this cell imports, by id. */
  deps: Map<string, CellResult>;
  profile: string;
  /** Effective seed (the cell's `seed=` option, else the document's). */
  seed: number;
  docPath: string;
  projectRoot: string;
  /** Where `checkpoint(state)` snapshots go (checkpoint.ts); none: checkpoint() is a no-op. */
  checkpointPath?: string;
}

export interface ExecutorHooks {
  onProgress(event: ProgressEvent): void;
  /** Text the cell prints (stdout and stderr), as it arrives. */
  onOutput?(text: string): void;
  /**
   * Aborting it stops the cell (the preview's stop button): its process group is killed and
   * the run ends as an `error` failure saying it was stopped. Its last checkpoint is kept.
   */
  signal?: AbortSignal;
}

export interface Executor {
  /** Runs a cell; never rejects for a problem of the cell (that is a CellFailure). */
  run(job: CellJob, hooks: ExecutorHooks): Promise<CellResult | CellFailure>;
  /**
   * Batch executors only (slurm.ts): told every cell of the build before the scheduler
   * calls `run`, so that they can all be submitted at once, each depending on the jobs of
   * the cells it imports. `run` then waits for the cell's job.
   */
  prepare?(plan: BatchPlan): Promise<void>;
  /**
   * Batch executors only: the cell will not run (the preview stopped it, or an edit changed
   * it, before the scheduler ran it): its job, submitted ahead, is cancelled; `run`, if still
   * called, gives the stopped failure.
   */
  cancel?(id: string): Promise<void>;
  /** Called once when the build ends, however it ends: stop and forget what is still held. */
  close?(): Promise<void>;
}

/** A build's cells as a batch executor sees them (see `Executor.prepare`). */
export interface BatchPlan {
  /**
   * The cells to run, dependencies first. `job.deps` holds the stored results of the cells
   * it imports that are fresh; `pending` names the imported cells that run in this build.
   * `adopt`: a job an earlier (killed) build submitted for the same cell and key may be
   * taken over (false for cells `--rerun` forces).
   */
  cells: { job: CellJob; pending: string[]; adopt: boolean }[];
  /** Submit every cell now (true), or each when `run` is called (`--jobs` given). */
  ahead: boolean;
  /** The document's front matter (an executor reads its own section, e.g. `slurm:`). */
  frontMatter: FrontMatter;
  /** Where a cell is outside this process, for the display: queued (with why) or running (where). */
  onStatus(id: string, status: ExecutorStatus): void;
}

export interface ExecutorStatus {
  state: 'pending' | 'running';
  /** e.g. `pending (Priority) · job 1234`, `running on node17 · job 1234`. */
  text: string;
  /** With `running`, once known: when the cell started, on this machine's clock (ms since the epoch). */
  since?: number;
}

export interface ChildProcessExecutorOptions {
  /**
   * Run child-entry.ts and runtime.ts through tsx (`--import tsx`). Default false: the
   * executor compiles them once to plain JS with esbuild (into the bundle cache, named by
   * content hash) and points the cell's `report:runtime` import at the compiled runtime,
   * which saves tsx's start-up (~0.4 s) per cell. tsx is used anyway when a bundle still
   * imports a `.ts` file (a `runtimePath` other than this directory's runtime.ts).
   */
  tsx?: boolean;
  /** Extra Node flags for the child. */
  nodeArgs?: string[];
  /** Extra environment variables for the child (merged over process.env). */
  env?: NodeJS.ProcessEnv;
}

const STDERR_TAIL = 4000;

/** The failure message of a cell stopped through `ExecutorHooks.signal`. */
export const STOPPED_MESSAGE = 'stopped before it finished (its last checkpoint, if it took one, is kept)';
const entryTs = fileURLToPath(new URL('./child-entry.ts', import.meta.url));
const runtimeTs = fileURLToPath(new URL('./runtime.ts', import.meta.url));

/**
 * Spawns `node --enable-source-maps --max-old-space-size=<memory> runner.mjs <job.json>`
 * (or `--import tsx child-entry.ts`) per cell, in its own process group, with the Markdown
 * file's directory as working directory. Progress arrives over IPC; on timeout the whole
 * process group is killed (SIGKILL).
 */
export function childProcessExecutor(options: ChildProcessExecutorOptions = {}): Executor {
  const prepare = runnerPreparer(options);
  return {
    async run(job, hooks) {
      const { cell, key } = job;
      const started = performance.now();
      const tmp = await mkdtemp(join(tmpdir(), `report-${process.pid}-${cell.id}-`));
      const bundlePath = join(key.bundleDir, `${basename(job.docPath)}.${cell.id}.${key.key.slice(0, 16)}.${process.pid}.mjs`);
      try {
        const { bundle, entry } = await prepare(key);
        await mkdir(key.bundleDir, { recursive: true });
        await writeFileAtomic(bundlePath, bundle);
        const runnerJob: RunnerJob = {
          cellId: cell.id,
          profile: job.profile,
          seed: job.seed,
          bundlePath,
          resultPath: join(tmp, 'result.bin'),
          parentPid: process.pid,
          memoryMiB: cell.options.memory,
          ...(job.checkpointPath === undefined ? {} : { checkpointPath: job.checkpointPath }),
        };
        if (job.deps.size > 0) {
          runnerJob.depsPath = join(tmp, 'deps.bin');
          await writeFile(runnerJob.depsPath, encode(Object.fromEntries([...job.deps].map(([id, r]) => [id, r.exports]))));
        }
        const jobPath = join(tmp, 'job.json');
        await writeFile(jobPath, JSON.stringify(runnerJob));
        const args = ['--enable-source-maps', `--max-old-space-size=${cell.options.memory}`, ...(options.nodeArgs ?? []), ...entry, jobPath];
        const outcome = await spawnRunner(args, dirname(job.docPath), { ...process.env, ...options.env }, cell.options.timeout, (message) => {
          if (message.type === 'progress') {
            const { type: _, ...rest } = message;
            hooks.onProgress({ id: cell.id, ...rest });
          }
        }, hooks.onOutput, hooks.signal);
        const runMs = Math.round(performance.now() - started);
        const printed: Output[] = outcome.printed === '' ? [] : [{ kind: 'text', text: outcome.printed }];
        if (outcome.stopped) return { id: cell.id, kind: 'error', message: STOPPED_MESSAGE, outputs: printed };
        if (outcome.timedOut) {
          return {
            id: cell.id,
            kind: 'timeout',
            message: `did not finish within its timeout of ${cell.options.timeout} s; raise it with timeout=<seconds> in the cell's options`,
            outputs: printed,
          };
        }
        if (outcome.error !== undefined) {
          return { id: cell.id, kind: 'error', ...mapError(outcome.error, cell, key.sourcefile, job.docPath), outputs: printed };
        }
        const overMemory = outcome.stderrTail.lastIndexOf(MEMORY_MARKER);
        if (overMemory >= 0 || /heap out of memory|Allocation failed/i.test(outcome.stderrTail)) {
          const measured = overMemory >= 0 ? outcome.stderrTail.slice(overMemory + MEMORY_MARKER.length).split('\n')[0]!.trim() : 'the JavaScript heap is full';
          return {
            id: cell.id,
            kind: 'memory',
            message: `ran out of memory: ${measured}; memory=${cell.options.memory} MiB caps everything the cell's process holds (heap, typed arrays, wasm). Raise memory=<MiB> in the cell's options or use less`,
            outputs: printed,
          };
        }
        if (!outcome.done || outcome.code !== 0) {
          const why = outcome.signal !== null
              ? `the cell's process was killed by ${outcome.signal}`
              : outcome.code === 13
                ? 'its top-level await never settled (a promise that never resolves, e.g. a callback that is never called)'
                : `the cell's process exited with code ${outcome.code} before finishing`;
          const tail = outcome.stderrTail.trim();
          return { id: cell.id, kind: 'crash', message: tail === '' ? why : `${why}\n${tail}`, outputs: printed };
        }
        const value = decode(await readFile(runnerJob.resultPath)) as { exports: Record<string, unknown>; outputs: Output[]; meta: Record<string, unknown> };
        return { kind: 'result', id: cell.id, key: key.key, exports: value.exports, outputs: value.outputs, meta: resultMeta(job, runMs, value.meta) };
      } catch (error) {
        return { id: cell.id, kind: 'crash', message: `could not run the cell: ${(error as Error).message}`, ...stackOf(error) };
      } finally {
        await rm(tmp, { recursive: true, force: true });
        await rm(bundlePath, { force: true });
      }
    },
  };
}

/**
 * What runs a cell's bundle, for any executor: the bundle text to write (its `report:runtime`
 * import pointed at the compiled runtime) and the Node arguments before the job file — the
 * compiled runner, or child-entry.ts through tsx (`tsx: true`, or a bundle that still
 * imports a `.ts` file). The runner is compiled once per bundle folder.
 */
export function runnerPreparer(options: { tsx?: boolean }): (key: CellKey) => Promise<{ bundle: string; entry: string[] }> {
  const tsxArgs = ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href];
  const compiled = new Map<string, Promise<{ runner: string; runtime: string }>>();
  return async (key) => {
    const text = await bundleOf(key);
    if (options.tsx === true) return { bundle: text, entry: [...tsxArgs, entryTs] };
    let p = compiled.get(key.bundleDir);
    if (p === undefined) {
      p = compileRunner(key.bundleDir);
      compiled.set(key.bundleDir, p);
      p.catch(() => compiled.delete(key.bundleDir));
    }
    const { runner, runtime } = await p;
    const bundle = text.split(JSON.stringify(runtimeTs)).join(JSON.stringify(runtime));
    const entry = /["'][^"'\n]+\.m?ts["']/.test(stripSourceMap(bundle)) ? [...tsxArgs, entryTs] : [runner];
    return { bundle, entry };
  };
}

/**
 * Compiles child-entry.ts and runtime.ts to plain ESM in `dir` (once per content: the file
 * names carry a hash of the output), so a child needs no TypeScript loader.
 */
async function compileRunner(dir: string): Promise<{ runner: string; runtime: string }> {
  const out: Record<'runner' | 'runtime', string> = { runner: '', runtime: '' };
  for (const [name, entry] of [['runner', entryTs], ['runtime', runtimeTs]] as const) {
    const result = await esbuild.build({
      entryPoints: [entry],
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      packages: 'external',
      sourcemap: 'inline',
      write: false,
      outfile: join(dir, `${name}.mjs`),
      logLevel: 'silent',
    });
    const text = result.outputFiles[0]!.text;
    const path = join(dir, `${name}.${sha256(text).slice(0, 16)}.mjs`);
    if (!existsSync(path)) await writeFileAtomic(path, text);
    out[name] = path;
  }
  return out;
}

function stripSourceMap(bundle: string): string {
  const at = bundle.lastIndexOf('//# sourceMappingURL=');
  return at < 0 ? bundle : bundle.slice(0, at);
}

interface SpawnOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Killed because the hooks' signal was aborted. */
  stopped: boolean;
  done: boolean;
  error?: { message: string; stack?: string };
  stderrTail: string;
  printed: string;
}

function spawnRunner(
  args: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutSeconds: number,
  onMessage: (message: RunnerMessage) => void,
  onOutput: ((text: string) => void) | undefined,
  abort?: AbortSignal,
): Promise<SpawnOutcome> {
  return new Promise((resolvePromise, reject) => {
    const outcome: SpawnOutcome = { code: null, signal: null, timedOut: false, stopped: false, done: false, stderrTail: '', printed: '' };
    if (abort?.aborted) {
      resolvePromise({ ...outcome, stopped: true });
      return;
    }
    const child = spawn(process.execPath, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], detached: true });
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    };
    watchExit();
    activeGroups.add(killGroup);
    const timer = setTimeout(() => {
      outcome.timedOut = true;
      killGroup();
    }, timeoutSeconds * 1000);
    const stop = (): void => {
      outcome.stopped = true;
      killGroup();
    };
    abort?.addEventListener('abort', stop, { once: true });
    const stdout = child.stdout!;
    const stderr = child.stderr!;
    stdout.setEncoding('utf8');
    stderr.setEncoding('utf8');
    stdout.on('data', (text: string) => {
      outcome.printed += text;
      onOutput?.(text);
    });
    stderr.on('data', (text: string) => {
      outcome.printed += text;
      outcome.stderrTail = (outcome.stderrTail + text).slice(-STDERR_TAIL);
      onOutput?.(text);
    });
    child.on('message', (message: RunnerMessage) => {
      if (message.type === 'done') outcome.done = true;
      else if (message.type === 'error') outcome.error = message;
      else onMessage(message);
    });
    child.on('error', (error) => {
      clearTimeout(timer);
      abort?.removeEventListener('abort', stop);
      activeGroups.delete(killGroup);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      abort?.removeEventListener('abort', stop);
      activeGroups.delete(killGroup);
      outcome.code = code;
      outcome.signal = signal;
      resolvePromise(outcome);
    });
  });
}

/** Kill functions of the running children, so an exiting parent leaves no cell running. */
const activeGroups = new Set<() => void>();
let watchingExit = false;
/** Registers, once and only when a child is first spawned (not at import), the exit handler. */
function watchExit(): void {
  if (watchingExit) return;
  watchingExit = true;
  process.once('exit', () => {
    for (const kill of activeGroups) kill();
  });
}

/**
 * Maps the first stack frame inside the cell's sourcefile (`report.md#<id>.ts:L:C` after
 * source maps) to the Markdown line `codeLine + L − 1`, and rewrites such frames to
 * `<docPath>:<line>:<col>`.
 */
export function mapError(
  error: { message: string; stack?: string },
  cell: Cell,
  sourcefile: string,
  docPath: string,
): { message: string; line?: number; column?: number; stack?: string } {
  const frame = new RegExp(`[^\\s(]*${escapeRegExp(sourcefile)}:(\\d+):(\\d+)`, 'g');
  let line: number | undefined;
  let column: number | undefined;
  const stack = error.stack?.replace(frame, (_, l: string, c: string) => {
    const mdLine = cell.codeLine + Number(l) - 1;
    if (line === undefined) {
      line = mdLine;
      column = Number(c);
    }
    return `${docPath}:${mdLine}:${c}`;
  });
  return { message: error.message, ...(line === undefined ? {} : { line, column }), ...(stack === undefined ? {} : { stack }) };
}

export function resultMeta(job: CellJob, runMs: number, recorded: Record<string, unknown>): ResultMeta {
  const { backend, ...extra } = recorded;
  return {
    runMs,
    ...(typeof backend === 'string' ? { backend } : {}),
    versions: job.key.packages,
    profile: job.profile,
    seed: job.seed,
    createdAt: new Date().toISOString(),
    doc: basename(job.docPath),
    ...(Object.keys(extra).length > 0 ? { extra } : {}),
    ...(job.key.fingerprint ? { fingerprint: job.key.fingerprint } : {}),
  };
}

export function stackOf(error: unknown): { stack?: string } {
  const stack = (error as Error | null)?.stack;
  return typeof stack === 'string' ? { stack } : {};
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
