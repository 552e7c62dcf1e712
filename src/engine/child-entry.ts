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
 * This file must not run anything at import time except when it is the entry point.
 */
import { readFileSync, writeFileSync } from 'node:fs';
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
}

/** Messages from the runner to the executor. */
export type RunnerMessage =
  | { type: 'progress'; step: number; total?: number; label?: string; metrics?: Record<string, number> }
  | { type: 'done' }
  | { type: 'error'; message: string; stack?: string };

/** Same as hash.ts's CELLS_GLOBAL (not imported: hash.ts loads esbuild, too slow for a child). */
const CELLS_GLOBAL = '__reportCells';

export async function runJob(job: RunnerJob): Promise<void> {
  const send = (message: RunnerMessage, then?: () => void): void => {
    if (process.send !== undefined && process.connected) process.send(message, undefined, {}, () => then?.());
    else then?.();
  };
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
  if (job.parentPid !== undefined || job.memoryMiB !== undefined) watchdog(job.parentPid, job.memoryMiB);
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
  (globalThis as Record<string, unknown>)[CELLS_GLOBAL] = job.depsPath === undefined ? {} : decode(readFileSync(job.depsPath));
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

/**
 * A watchdog on its own thread, so it runs even while the cell spins in a loop:
 * - the parent died (SIGKILL of the CLI: this process was handed to another parent):
 *   exit at once, so no cell runs on orphaned;
 * - resident memory over `memoryMiB` (heap, typed arrays, wasm memory: all of it): print
 *   {@link MEMORY_MARKER} with the figure and kill this process.
 */
function watchdog(parentPid: number | undefined, memoryMiB: number | undefined): void {
  const code = `
    const { workerData } = require('node:worker_threads');
    const { writeSync } = require('node:fs');
    const { parentPid, limit, marker } = workerData;
    setInterval(() => {
      if (parentPid !== undefined && process.ppid !== parentPid) process.kill(process.pid, 'SIGKILL');
      if (limit !== undefined) {
        const rss = process.memoryUsage.rss();
        if (rss > limit) {
          writeSync(2, '\\n' + marker + ' resident memory ' + Math.round(rss / 1048576) + ' MiB is over memory=' + Math.round(limit / 1048576) + ' MiB\\n');
          process.kill(process.pid, 'SIGKILL');
        }
      }
    }, 50);
  `;
  const worker = new Worker(code, {
    eval: true,
    workerData: { parentPid, limit: memoryMiB === undefined ? undefined : memoryMiB * 1024 * 1024, marker: MEMORY_MARKER },
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
