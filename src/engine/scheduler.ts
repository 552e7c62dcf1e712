/**
 * The scheduler: runs the cells of `plan.toRun` up to `jobs` at once, each as soon as the
 * cells it imports have results. A failure does not stop independent cells; its
 * dependents become `skipped` failures naming the failed dependency. Every successful
 * result is stored as soon as it finishes, so an interrupted build keeps finished work.
 */
import os from 'node:os';
import type { Executor } from './child-launcher.ts';
import type { CellKey } from './key.ts';
import type { ResultStore } from './store.ts';
import { isFailure, type Cell, type CellFailure, type CellOutcome, type CellResult, type CellState, type ProgressEvent } from './types.ts';

export interface RunPlan {
  cells: Cell[];
  /** Topological order (dependencies first). */
  order: string[];
  /** Ids of the cells a cell imports. */
  deps: (id: string) => string[];
  /** Cells to run; every other cell a run needs must be in `available`. */
  toRun: Set<string>;
  keys: Map<string, CellKey>;
  /** Fresh results (from the store). */
  available: Map<string, CellResult>;
}

export interface CellEvent {
  id: string;
  state: CellState;
  progress?: ProgressEvent;
  /** Run time, with `ran`. */
  ms?: number;
  /** With `failed` and `skipped`. */
  failure?: CellFailure;
  /** Printed text as it arrives, with `running`. */
  text?: string;
  /**
   * Where the cell is outside this process, from a batch executor (build.ts forwards it):
   * e.g. `pending (Priority) · job 1234` with state `stale`, `running on node17 · job 1234`
   * with state `running`.
   */
  status?: string;
  /** With a `running` status: when the cell started running, if the executor knows (ms since the epoch). */
  since?: number;
}

export interface RunContext {
  executor: Executor;
  /** Cells at once; default os.availableParallelism(). */
  jobs?: number;
  store: ResultStore;
  profile: string;
  /** Document seed; a cell's `seed=` option overrides it. */
  seed: number;
  docPath: string;
  projectRoot: string;
  onEvent(event: CellEvent): void;
}

/** Runs the planned cells; returns the outcome of every cell in `plan.toRun`. */
export async function runCells(plan: RunPlan, context: RunContext): Promise<Map<string, CellOutcome>> {
  const jobs = Math.max(1, context.jobs ?? os.availableParallelism());
  const cells = new Map(plan.cells.map((cell) => [cell.id, cell]));
  const outcomes = new Map<string, CellOutcome>();
  const results = new Map(plan.available);
  const waiting = plan.order.filter((id) => plan.toRun.has(id));
  for (const id of plan.toRun) if (!waiting.includes(id)) waiting.push(id);
  const running = new Map<string, Promise<void>>();

  const settle = (id: string, outcome: CellOutcome): void => {
    outcomes.set(id, outcome);
    if (!isFailure(outcome)) results.set(id, outcome);
  };

  /** Why `id` cannot run (a dependency failed or has no result), or undefined when it can. */
  const blocker = (id: string): { dep: string; why: string } | 'wait' | undefined => {
    for (const dep of plan.deps(id)) {
      if (results.has(dep)) continue;
      const outcome = outcomes.get(dep);
      if (outcome !== undefined && isFailure(outcome)) {
        return { dep, why: outcome.kind === 'skipped' ? `was skipped` : outcome.kind === 'timeout' ? 'timed out' : 'failed' };
      }
      if (plan.toRun.has(dep) && outcome === undefined) return 'wait';
      return { dep, why: 'has no result' };
    }
    return undefined;
  };

  const start = (id: string): void => {
    const cell = cells.get(id);
    const key = plan.keys.get(id);
    const task = (async (): Promise<void> => {
      if (cell === undefined || key === undefined || key.error !== undefined) {
        const failure: CellFailure = { id, kind: 'error', message: key?.error?.message ?? `cell "${id}" has no code or key` };
        settle(id, failure);
        context.onEvent({ id, state: 'failed', failure });
        return;
      }
      const deps = new Map(plan.deps(id).map((dep) => [dep, results.get(dep)!]));
      context.onEvent({ id, state: 'running' });
      const started = performance.now();
      let outcome: CellOutcome;
      try {
        outcome = await context.executor.run(
          { cell, key, deps, profile: context.profile, seed: cell.options.seed ?? context.seed, docPath: context.docPath, projectRoot: context.projectRoot },
          {
            onProgress: (progress) => context.onEvent({ id, state: 'running', progress }),
            onOutput: (text) => context.onEvent({ id, state: 'running', text }),
          },
        );
      } catch (error) {
        outcome = { id, kind: 'crash', message: `the executor failed: ${(error as Error).message}` };
      }
      if (!isFailure(outcome)) {
        try {
          await context.store.put(outcome);
        } catch (error) {
          outcome = { id, kind: 'error', message: `ran, but its result could not be stored: ${(error as Error).message}` };
        }
      }
      settle(id, outcome);
      if (isFailure(outcome)) context.onEvent({ id, state: 'failed', failure: outcome });
      else context.onEvent({ id, state: 'ran', ms: Math.round(performance.now() - started) });
    })();
    running.set(
      id,
      task.finally(() => running.delete(id)),
    );
  };

  while (waiting.length > 0 || running.size > 0) {
    let progressed = false;
    for (let i = 0; i < waiting.length && running.size < jobs; ) {
      const id = waiting[i]!;
      const blocked = blocker(id);
      if (blocked === 'wait') {
        i++;
        continue;
      }
      waiting.splice(i, 1);
      progressed = true;
      if (blocked === undefined) {
        start(id);
      } else {
        const failure: CellFailure = { id, kind: 'skipped', message: `skipped: the cell it imports, "${blocked.dep}", ${blocked.why}` };
        settle(id, failure);
        context.onEvent({ id, state: 'skipped', failure });
        i = 0;
      }
    }
    if (running.size > 0) await Promise.race(running.values());
    else if (!progressed) {
      // Only cells waiting on something that will never come (a cycle): skip them.
      for (const id of waiting.splice(0)) {
        const failure: CellFailure = { id, kind: 'skipped', message: 'skipped: its dependencies never became available (a cycle?)' };
        settle(id, failure);
        context.onEvent({ id, state: 'skipped', failure });
      }
    }
  }
  return outcomes;
}


