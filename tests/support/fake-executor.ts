/** Test double of the child launcher: runs cell implementations in-process (no child processes, no TF). */
import { resultMeta, stackOf, STOPPED_MESSAGE, type CellJob, type Executor, type ExecutorHooks } from '../../src/engine/child-launcher.ts';
import { decode, encodeResult } from '../../src/engine/serialize.ts';
import type { CellFailure, CellResult, Output, ProgressEvent } from '../../src/engine/types.ts';

/** What a fake cell can do besides returning its exports: report progress, print, see a stop. */
export interface FakeCellContext {
  /** Aborted when the cell is stopped (ExecutorHooks.signal); never aborted without one. */
  signal: AbortSignal;
  progress(event: Omit<ProgressEvent, 'id'>): void;
  print(text: string): void;
}

type FakeImpl = (
  deps: Record<string, Record<string, unknown>>,
  context: FakeCellContext,
) => Promise<{ exports: Record<string, unknown>; outputs?: Output[] }> | { exports: Record<string, unknown>; outputs?: Output[] };

/**
 * An in-process executor for tests: `impl[cellId](deps)` gives the cell's exports. A
 * throwing implementation is an `error` failure; exports go through encode/decode, as
 * with the real runner. Records the order of calls and the highest concurrency seen.
 */
export function fakeExecutor(
  impl: Record<string, FakeImpl>,
  options: { delayMs?: number } = {},
): Executor & { calls: string[]; maxConcurrent: number } {
  let running = 0;
  const executor = {
    calls: [] as string[],
    maxConcurrent: 0,
    async run(job: CellJob, hooks: ExecutorHooks): Promise<CellResult | CellFailure> {
      const id = job.cell.id;
      executor.calls.push(id);
      running++;
      executor.maxConcurrent = Math.max(executor.maxConcurrent, running);
      const started = performance.now();
      try {
        const fn = impl[id];
        if (fn === undefined) throw new Error(`fakeExecutor: no implementation for cell "${id}"`);
        const deps = Object.fromEntries([...job.deps].map(([dep, r]) => [dep, r.exports]));
        if (options.delayMs !== undefined) await new Promise((r) => setTimeout(r, options.delayMs));
        const signal = hooks.signal ?? new AbortController().signal;
        const context: FakeCellContext = {
          signal,
          progress: (event) => hooks.onProgress({ id, ...event }),
          print: (text) => hooks.onOutput?.(text),
        };
        let value: Awaited<ReturnType<FakeImpl>>;
        try {
          value = await fn(deps, context);
        } catch (error) {
          if (signal.aborted) return { id, kind: 'error', message: STOPPED_MESSAGE };
          throw error;
        }
        if (signal.aborted) return { id, kind: 'error', message: STOPPED_MESSAGE };
        hooks.onProgress({ id, step: 1, total: 1 });
        const { exports, outputs } = decode(encodeResult({ exports: value.exports, outputs: value.outputs ?? [] })) as { exports: Record<string, unknown>; outputs: Output[] };
        return { kind: 'result', id, key: job.key.key, exports, outputs, meta: resultMeta(job, Math.round(performance.now() - started), {}) };
      } catch (error) {
        return { id, kind: 'error', message: (error as Error).message, ...stackOf(error) };
      } finally {
        running--;
      }
    },
  };
  return executor;
}

