/**
 * `report --verify [<id…>]`: Nix's `--check` for reports. Re-runs the named cells (all
 * when none are named) into a scratch store and compares what they produce with the
 * committed result, bit for bit:
 *
 *   - every export, as the bytes the store would write for it (serialize.ts: typed arrays
 *     and tensors bit for bit, numbers as float64, key order included);
 *   - every figure (its bytes, extension, caption) and every table (columns, rows, caption);
 *   - except the values the front matter declares measured (`verify: measured:`, measured.ts:
 *     wall-clock times, which no re-run reproduces), compared for presence and type/shape
 *     only, and listed when they differ (compare.ts).
 *
 * Not compared: printed text and the metadata (run time, date, backend), which describe a
 * run rather than its result. Each cell re-runs on its dependencies' *committed* results,
 * so a difference is reported at the cell that produced it, not at every cell downstream.
 * The committed store is only read: results go to a scratch store that is removed
 * afterwards, figures are not written, no HTML is woven.
 */
import os from 'node:os';
import path from 'node:path';
import type { VFile } from 'vfile';
import type { Executor } from './child-launcher.ts';
import { withCheckpoints } from './checkpoint.ts';
import { compareResults, show, type MeasuredDifference } from './compare.ts';
import { loadDocument, type LoadOptions } from './document.ts';
import type { Effects } from './effects.ts';
import { ReportError } from './errors.ts';
import { progressDisplay } from './progress.ts';
import { runCells } from './scheduler.ts';
import { ResultStore } from './store.ts';
import { isFailure, type CellResult } from './types.ts';

export interface VerifyOptions extends LoadOptions {
  /**
   * What re-runs the cells (as BuildOptions.executor; the CLI passes the local
   * `childProcessExecutor`, since `--verify` refuses `--executor slurm`).
   */
  executor: Executor;
  /** Cells to verify; all usable cells when empty or absent. */
  ids?: string[];
  jobs?: number;
  /** Where the scratch store goes (removed afterwards); default a fresh folder in the OS temp dir. */
  scratchDir?: string;
}

export interface CellVerdict {
  id: string;
  /**
   * same: every export, figure and table is bit for bit the committed one, measured values
   * aside (present and of the same type/shape). differs: the first difference is in
   * `detail`. failed: the re-run failed or was skipped. uncommitted: there is no committed
   * result to compare with (the cell is stale or never ran).
   */
  status: 'same' | 'differs' | 'failed' | 'uncommitted';
  detail?: string;
  /** Measured values whose re-run differs from the committed one (not compared); absent when none. */
  measured?: MeasuredDifference[];
  /** Run time of the re-run, ms. */
  ms?: number;
}

export interface VerifySummary {
  file: VFile;
  profile: string;
  verdicts: CellVerdict[];
  /** True when every verified cell is `same`. */
  ok: boolean;
  ms: number;
}

export async function verify(options: VerifyOptions, effects: Effects): Promise<VerifySummary> {
  const started = effects.now();
  // A grader's proof keys every cell afresh: nothing remembered between commands is trusted.
  const { doc, graph, keys, store, profile, seed, usable, docPath, projectRoot } = await loadDocument({ ...options, keyCache: false }, effects);
  const cellIds = doc.cells.map((cell) => cell.id);
  for (const id of options.ids ?? []) {
    if (!cellIds.includes(id)) throw new ReportError(`--verify ${id}: no cell has this id (cells: ${cellIds.join(', ') || 'none'})`, 2);
  }
  const wanted = options.ids && options.ids.length > 0 ? new Set(options.ids) : new Set(usable);
  const targets = usable.filter((id) => wanted.has(id));
  const verdicts = new Map<string, CellVerdict>();
  for (const id of [...wanted].filter((id) => !usable.includes(id))) {
    verdicts.set(id, { id, status: 'failed', detail: 'the cell cannot run (see the problems above)' });
  }

  // The committed result of every target and of every cell a target imports.
  const committed = new Map<string, CellResult>();
  const needed = new Set(targets.flatMap((id) => [id, ...ancestors(id, (x) => graph.deps(x))]));
  for (const id of usable.filter((x) => needed.has(x))) {
    const stored = await store.get(id, keys.get(id)!.key, keys.get(id)!.fingerprint);
    if (stored.result) committed.set(id, stored.result);
  }
  const toRun = new Set<string>();
  for (const id of targets) {
    if (committed.has(id)) toRun.add(id);
    else verdicts.set(id, { id, status: 'uncommitted', detail: `no committed result for its current key at profile "${profile}" (run \`npm run check\`)` });
  }
  // A dependency without a committed result runs too (its result feeds the target) but is not judged.
  for (const id of [...toRun]) for (const dep of ancestors(id, (x) => graph.deps(x))) if (!committed.has(dep)) toRun.add(dep);

  const scratchDir = options.scratchDir ?? path.join(effects.tmpdir, `report-verify-${process.pid}-${effects.now().toString(36)}`);
  const scratch = new ResultStore(scratchDir, effects);
  const display = progressDisplay(effects.stdout, effects.now);
  let outcomes;
  try {
    outcomes = await runCells(
      {
        cells: doc.cells,
        order: usable,
        deps: (id) => graph.deps(id),
        toRun,
        keys,
        available: new Map([...committed].filter(([id]) => !toRun.has(id))),
      },
      {
        // Re-runs start from scratch: a scratch snapshot file, never the cell's real one.
        executor: withCheckpoints(onCommittedInputs(options.executor, committed), (job) => path.join(scratchDir, 'checkpoints', `${job.cell.id}.bin`)),
        jobs: Math.max(1, options.jobs ?? os.availableParallelism()),
        store: scratch,
        profile,
        seed,
        docPath,
        projectRoot,
        onEvent: (event) => display.onEvent(event),
      },
    );
  } finally {
    await effects.rm(scratchDir);
  }
  const ran = [...outcomes.values()];
  display.done({
    ran: ran.filter((o) => !isFailure(o)).length,
    fresh: 0,
    failed: ran.filter((o) => isFailure(o) && o.kind !== 'skipped').length,
    skipped: ran.filter((o) => isFailure(o) && o.kind === 'skipped').length,
    ms: effects.now() - started,
  });

  for (const id of targets) {
    if (verdicts.has(id)) continue;
    const outcome = outcomes.get(id);
    if (outcome === undefined || isFailure(outcome)) {
      verdicts.set(id, { id, status: 'failed', detail: outcome ? `${outcome.kind}: ${outcome.message.split('\n')[0]}` : 'did not run' });
      continue;
    }
    const { difference, measured } = compareResults(id, committed.get(id)!, outcome, doc.frontMatter.verify?.measured);
    verdicts.set(id, {
      id,
      status: difference ? 'differs' : 'same',
      ...(difference ? { detail: difference } : {}),
      ...(measured.length > 0 ? { measured } : {}),
      ms: outcome.meta.runMs,
    });
  }
  const ordered = [...usable, ...cellIds].filter((id, i, all) => verdicts.has(id) && all.indexOf(id) === i).map((id) => verdicts.get(id)!);
  return { file: doc.file, profile, verdicts: ordered, ok: ordered.every((v) => v.status === 'same'), ms: effects.now() - started };
}

/** Every cell `id` imports, directly or not. */
function ancestors(id: string, deps: (id: string) => string[]): string[] {
  const seen = new Set<string>();
  const stack = [...deps(id)];
  while (stack.length > 0) {
    const dep = stack.pop()!;
    if (seen.has(dep)) continue;
    seen.add(dep);
    stack.push(...deps(dep));
  }
  return [...seen];
}

/** An executor that gives each cell its dependencies' committed results where there are some. */
function onCommittedInputs(executor: Executor, committed: Map<string, CellResult>): Executor {
  return {
    run: (job, hooks) =>
      executor.run({ ...job, deps: new Map([...job.deps].map(([id, result]) => [id, committed.get(id) ?? result])) }, hooks),
  };
}

/**
 * One line per verdict (`<id>  same`, `<id>  differs  total: committed 5, re-run 6`, a note of
 * the measured values that differ after `same`) and a count.
 */
export function formatVerdicts(summary: Pick<VerifySummary, 'verdicts' | 'profile'>): string {
  const width = Math.max(0, ...summary.verdicts.map((v) => v.id.length));
  const lines = summary.verdicts.map((v) => {
    const note = v.status === 'same' && v.measured ? `  ${measuredNote(v.measured)}` : '';
    return `${v.id.padEnd(width)}  ${v.status}${v.detail ? `  ${v.detail}` : ''}${note}`;
  });
  const count = (status: CellVerdict['status']) => summary.verdicts.filter((v) => v.status === status).length;
  const measured = summary.verdicts.filter((v) => v.status === 'same' && v.measured).length;
  lines.push(
    `verify at profile ${summary.profile}: ${count('same')} same${measured > 0 ? ` (${measured} with measured values that differ)` : ''}, ` +
      `${count('differs')} differ, ${count('failed')} failed, ${count('uncommitted')} without a committed result`,
  );
  return `${lines.join('\n')}\n`;
}

/** At most this many paths are named in a measured note. */
const NOTE_PATHS = 3;

/**
 * `(3 measured values differ, not compared: rbmSecondsPerIteration committed 3.677, re-run
 * 3.512; dbmTraining[].seconds ×2, first committed 91.57, re-run 88.02)`: the values grouped
 * by path with every index as `[]`, the first {@link NOTE_PATHS} groups named, numbers to 4
 * significant digits.
 */
export function measuredNote(measured: readonly MeasuredDifference[]): string {
  const groups = new Map<string, MeasuredDifference[]>();
  for (const m of measured) groups.set(m.general, [...(groups.get(m.general) ?? []), m]);
  const named = [...groups.values()].slice(0, NOTE_PATHS).map((group) => {
    const [first] = group as [MeasuredDifference];
    const values = `committed ${brief(first.committed)}, re-run ${brief(first.rerun)}`;
    return group.length === 1 ? `${first.path} ${values}` : `${first.general} ×${group.length}, first ${values}`;
  });
  const more = groups.size - named.length;
  const n = measured.length;
  return `(${n} measured value${n === 1 ? ' differs' : 's differ'}, not compared: ${named.join('; ')}${more > 0 ? `; and ${more} more path${more === 1 ? '' : 's'}` : ''})`;
}

/** A value for a measured note: numbers to 4 significant digits, strings cut at 24 characters. */
function brief(value: unknown): string {
  if (typeof value === 'number' && Number.isFinite(value)) return String(Number(value.toPrecision(4)));
  if (typeof value === 'string') return JSON.stringify(value.length > 24 ? `${value.slice(0, 23)}…` : value);
  const text = show(value);
  return text.length > 24 ? `${text.slice(0, 23)}…` : text;
}
