/**
 * The child-process side of one cell run: `node --enable-source-maps runner.mjs
 * <job.json>` (spawned by executor.ts with an IPC channel; runner.mjs is this file
 * compiled by the executor, or this file itself through `--import tsx`).
 *
 * 1. reads the job (see {@link RunnerJob}) and the dependencies' exports;
 * 2. sets up the runtime context (profile, seed, cell id, outputs) on `globalThis` and
 *    the `cell:` values under `globalThis.__reportCells`;
 * 3. captures stdout/stderr writes as text outputs while still forwarding them;
 * 4. imports the bundle and waits for its top-level code;
 * 5. writes `encode({ exports, outputs, meta })` to the result path, sends `done`, exits 0.
 *
 * A throw, an unhandled rejection, an uncaught exception or a call of `process.exit`
 * inside the cell sends `error` (message and source-mapped stack) and exits 1. When the
 * parent goes away (IPC disconnect), the runner exits.
 *
 * Run as a batch job (slurm.ts) there is no parent and no IPC channel: the job names an
 * events file, to which every message is appended as a JSON line with a time stamp (and a
 * first `start` line saying where the job runs); dependencies computed by other jobs of
 * the same build are read from their result files; the watchdog enforces the timeout.
 *
 * This file must not run anything at import time except when it is the entry point.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { arch, availableParallelism, cpus, hostname, release, type as osType } from 'node:os';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { RuntimeContext } from './runtime.ts';
import { fileSnapshots } from './checkpoint.ts';
import { decode, encodeResult } from './serialize.ts';
import type { Output } from './types.ts';

/** The job file the executor writes. */
export interface RunnerJob {
  cellId: string;
  profile: string;
  seed: number;
  /** Absolute path of the bundled cell (.mjs). */
  bundlePath: string;
  /** Where to write the encoded `{ exports, outputs, meta }`. */
  resultPath: string;
  /** Pid of the launching process: when it dies, the child exits (see `watchdog`). */
  parentPid?: number;
  /** Cap on the child's resident memory in MiB (the cell's `memory=`). */
  memoryMiB?: number;
  /** Encoded `Record<cell id, exports>` of the cell's dependencies, if any. */
  depsPath?: string;
  /** Where checkpoint() writes the cell's snapshot and resume() reads it (checkpoint.ts). */
  checkpointPath?: string;
  /** Batch jobs: append every message to this file as a JSON line ({@link JobEvent}). */
  eventsPath?: string;
  /** Batch jobs: dependencies computed by other jobs of the build, id → their result file. */
  depResults?: Record<string, string>;
  /** Batch jobs: the watchdog kills the cell after this many seconds (no launcher does it). */
  timeoutSeconds?: number;
}

/** Messages from the runner to the executor. */
export type RunnerMessage =
  | { type: 'progress'; step: number; total?: number; label?: string; metrics?: Record<string, number> }
  | { type: 'done' }
  | { type: 'error'; message: string; stack?: string };

/**
 * A line of a batch job's events file: a message, or where the job started, or why the
 * watchdog killed it; `t` is the job's clock (ms since the epoch).
 */
export type JobEvent = (
  | RunnerMessage
  | { type: 'start'; host: string; pid: number; cpu: string; cores: number; os: string; node: string }
  | { type: 'killed'; reason: 'timeout' | 'memory'; detail: string }
) & { t: number };

/** Same as bundle.ts's CELLS_GLOBAL (not imported: bundle.ts loads esbuild, too slow for a child). */
const CELLS_GLOBAL = '__reportCells';

export async function runJob(job: RunnerJob): Promise<void> {
  const events = job.eventsPath;
  const send = (message: RunnerMessage, then?: () => void): void => {
    if (events !== undefined) appendEvent(events, message);
    if (process.send !== undefined && process.connected) process.send(message, undefined, {}, () => then?.());
    else then?.();
  };
  if (events !== undefined) {
    const cpu = cpus()[0]?.model ?? 'unknown';
    appendEvent(events, {
      type: 'start',
      host: hostname(),
      pid: process.pid,
      cpu: cpu.replace(/\s+/g, ' ').trim(),
      cores: availableParallelism(),
      os: `${osType()} ${release()} ${arch()}`,
      node: process.version,
    });
  }
  const realExit = process.exit.bind(process);
  let finished = false;
  const fail = (error: unknown): void => {
    if (finished) return;
    finished = true;
    const err = error instanceof Error ? error : new Error(`a non-Error value was thrown: ${describe(error)}`);
    const exit = (): never => realExit(1);
    setTimeout(exit, 2000).unref();
    send({ type: 'error', message: err.message, ...(err.stack === undefined ? {} : { stack: err.stack }) }, exit);
  };

  process.on('disconnect', () => realExit(1));
  if (job.parentPid !== undefined || job.memoryMiB !== undefined || job.timeoutSeconds !== undefined) {
    watchdog(job.parentPid, job.memoryMiB, job.timeoutSeconds, events);
  }
  // The IPC channel must not keep the process alive: a cell whose top-level await never
  // settles then ends with Node's exit code 13 instead of hanging until its timeout.
  process.channel?.unref();
  process.on('unhandledRejection', (reason) => fail(reason));
  process.on('uncaughtException', (error) => fail(error));
  process.exit = ((code?: number | string | null) => {
    fail(new Error(`the cell called process.exit(${code ?? ''}); a cell must not exit the process — throw an Error instead`));
    return undefined as never;
  }) as typeof process.exit;

  const context: RuntimeContext = {
    profile: job.profile,
    seed: job.seed,
    cellId: job.cellId,
    outputs: [],
    meta: {},
    send: (message) => send(message),
    ...(job.checkpointPath === undefined ? {} : { checkpoint: fileSnapshots(job.checkpointPath) }),
  };
  (globalThis as Record<symbol, unknown>)[Symbol.for('literate-report.runtime')] = context;
  const deps = (job.depsPath === undefined ? {} : decode(readFileSync(job.depsPath))) as Record<string, unknown>;
  for (const [id, path] of Object.entries(job.depResults ?? {})) deps[id] = (decode(readFileSync(path)) as { exports: unknown }).exports;
  (globalThis as Record<string, unknown>)[CELLS_GLOBAL] = deps;
  captureWrites(process.stdout, context.outputs);
  captureWrites(process.stderr, context.outputs);

  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(pathToFileURL(job.bundlePath).href)) as Record<string, unknown>;
  } catch (error) {
    fail(error);
    return;
  }
  if (finished) return;
  try {
    const exports = { ...namespace };
    writeFileSync(job.resultPath, encodeResult({ exports, outputs: context.outputs, meta: context.meta }));
  } catch (error) {
    fail(error);
    return;
  }
  finished = true;
  send({ type: 'done' }, () => realExit(0));
}

/** The line the watchdog prints before it kills a cell over its memory cap (the launcher reads it). */
export const MEMORY_MARKER = '[literate-report] cell-memory:';
/** The line the watchdog prints before it kills a cell at its timeout (batch jobs only). */
export const TIMEOUT_MARKER = '[literate-report] cell-timeout:';

/** Appends one event line (synchronously: the process may be killed the next instant). */
function appendEvent(path: string, message: RunnerMessage | Omit<Extract<JobEvent, { type: 'start' }>, 't'>): void {
  try {
    appendFileSync(path, `${JSON.stringify({ ...message, t: Date.now() })}\n`);
  } catch (error) {
    process.stderr.write(`[literate-report] cannot append to ${path}: ${(error as Error).message}\n`);
  }
}

/**
 * A watchdog on its own thread, so it runs even while the cell spins in a loop:
 * - the parent died (SIGKILL of the CLI: this process was handed to another parent):
 *   exit at once, so no cell runs on orphaned;
 * - resident memory over `memoryMiB` (heap, typed arrays, wasm memory: all of it): print
 *   {@link MEMORY_MARKER} with the figure and kill this process;
 * - (batch jobs) the cell ran past `timeoutSeconds`: print {@link TIMEOUT_MARKER} and kill
 *   this process. Either kill is also appended to the events file, when there is one.
 */
function watchdog(parentPid: number | undefined, memoryMiB: number | undefined, timeoutSeconds: number | undefined, eventsPath: string | undefined): void {
  const code = `
    const { workerData } = require('node:worker_threads');
    const { appendFileSync, writeSync } = require('node:fs');
    const { parentPid, limit, marker, deadline, timeoutMarker, timeoutSeconds, eventsPath } = workerData;
    const kill = (reason, line, detail) => {
      writeSync(2, '\\n' + line + ' ' + detail + '\\n');
      if (eventsPath !== undefined) {
        try { appendFileSync(eventsPath, JSON.stringify({ type: 'killed', reason, detail, t: Date.now() }) + '\\n'); } catch {}
      }
      process.kill(process.pid, 'SIGKILL');
    };
    setInterval(() => {
      if (parentPid !== undefined && process.ppid !== parentPid) process.kill(process.pid, 'SIGKILL');
      if (limit !== undefined) {
        const rss = process.memoryUsage.rss();
        if (rss > limit) kill('memory', marker, 'resident memory ' + Math.round(rss / 1048576) + ' MiB is over memory=' + Math.round(limit / 1048576) + ' MiB');
      }
      if (deadline !== undefined && Date.now() > deadline) kill('timeout', timeoutMarker, 'still running after ' + timeoutSeconds + ' s');
    }, 50);
  `;
  const worker = new Worker(code, {
    eval: true,
    workerData: {
      parentPid,
      limit: memoryMiB === undefined ? undefined : memoryMiB * 1024 * 1024,
      marker: MEMORY_MARKER,
      deadline: timeoutSeconds === undefined ? undefined : Date.now() + timeoutSeconds * 1000,
      timeoutMarker: TIMEOUT_MARKER,
      timeoutSeconds,
      eventsPath,
    },
  });
  // A watchdog that cannot start must not fail the cell (it only adds protection).
  worker.on('error', (error) => process.stderr.write(`watchdog: ${error.message}\n`));
  worker.unref();
}

function captureWrites(stream: NodeJS.WriteStream, outputs: Output[]): void {
  const original = stream.write.bind(stream) as (...args: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    const text = typeof chunk === 'string' ? chunk : new TextDecoder().decode(chunk as Uint8Array);
    const last = outputs.at(-1);
    if (last?.kind === 'text') last.text += text;
    else outputs.push({ kind: 'text', text });
    return original(chunk, ...rest);
  }) as typeof stream.write;
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const jobPath = process.argv[2];
  if (jobPath === undefined) {
    process.stderr.write('usage: runner.ts <job.json>\n');
    process.exit(2);
  }
  await runJob(JSON.parse(readFileSync(jobPath, 'utf8')) as RunnerJob);
}
