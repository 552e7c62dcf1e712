/**
 * `report --verify [<id…>]`: Nix's `--check` for reports. Re-runs the named cells (all
 * when none are named) into a scratch store and compares what they produce with the
 * committed result, bit for bit:
 *
 *   - every export, as the bytes the store would write for it (serialize.ts: typed arrays
 *     and tensors bit for bit, numbers as float64, key order included);
 *   - every figure (its bytes, extension, caption) and every table (columns, rows, caption).
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
import { loadDocument, type LoadOptions } from './document.ts';
import type { Effects } from './effects.ts';
import { ReportError } from './errors.ts';
import { progressDisplay } from './progress.ts';
import { runCells } from './scheduler.ts';
import { encode } from './serialize.ts';
import { ResultStore } from './store.ts';
import { isFailure, type CellResult, type Output } from './types.ts';

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
   * same: every export, figure and table is bit for bit the committed one. differs: the
   * first difference is in `detail`. failed: the re-run failed or was skipped. uncommitted:
   * there is no committed result to compare with (the cell is stale or never ran).
   */
  status: 'same' | 'differs' | 'failed' | 'uncommitted';
  detail?: string;
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
    const difference = firstDifference(committed.get(id)!, outcome);
    verdicts.set(id, { id, status: difference ? 'differs' : 'same', ...(difference ? { detail: difference } : {}), ms: outcome.meta.runMs });
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
 * The first difference between a committed result and a re-run, as a sentence with both
 * values, or undefined when every export, figure and table is identical.
 */
export function firstDifference(committed: CellResult, rerun: CellResult): string | undefined {
  const names = [...new Set([...Object.keys(committed.exports), ...Object.keys(rerun.exports)])];
  for (const name of names) {
    const has = [name in committed.exports, name in rerun.exports];
    if (!has[0]) return `export "${name}" is new (re-run: ${show(rerun.exports[name])})`;
    if (!has[1]) return `export "${name}" is gone (committed: ${show(committed.exports[name])})`;
    const a = committed.exports[name];
    const b = rerun.exports[name];
    if (!sameBytes(encode(a), encode(b))) return `export "${name}": ${where(a, b)}`;
  }
  return outputDifference(committed.outputs, rerun.outputs);
}

function outputDifference(committed: Output[], rerun: Output[]): string | undefined {
  const named = (outputs: Output[]) => new Map(outputs.flatMap((o) => (o.kind === 'text' ? [] : [[`${o.kind} "${o.name}"`, o] as const])));
  const a = named(committed);
  const b = named(rerun);
  for (const [label, first] of a) {
    const second = b.get(label);
    if (!second) return `${label} is gone`;
    if (first.kind === 'figure' && second.kind === 'figure') {
      if (first.ext !== second.ext) return `${label}: committed .${first.ext}, re-run .${second.ext}`;
      if (!sameBytes(first.data, second.data)) return `${label}: ${bytesWhere(first.data, second.data)}`;
      if ((first.caption ?? '') !== (second.caption ?? '')) return `${label} caption: committed ${show(first.caption)}, re-run ${show(second.caption)}`;
    } else if (first.kind === 'table' && second.kind === 'table') {
      if (!sameBytes(encode(first.columns), encode(second.columns))) return `${label} columns: committed ${show(first.columns)}, re-run ${show(second.columns)}`;
      for (let r = 0; r < Math.max(first.rows.length, second.rows.length); r++) {
        if (!sameBytes(encode(first.rows[r] ?? null), encode(second.rows[r] ?? null))) {
          return `${label} row ${r + 1}: committed ${show(first.rows[r])}, re-run ${show(second.rows[r])}`;
        }
      }
      if ((first.caption ?? '') !== (second.caption ?? '')) return `${label} caption: committed ${show(first.caption)}, re-run ${show(second.caption)}`;
    }
  }
  for (const label of b.keys()) if (!a.has(label)) return `${label} is new`;
  return undefined;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function bytesWhere(a: Uint8Array, b: Uint8Array): string {
  let i = 0;
  while (i < Math.min(a.byteLength, b.byteLength) && a[i] === b[i]) i++;
  return `${a.byteLength} bytes committed, ${b.byteLength} re-run, first difference at byte ${i}`;
}

/** Where two values differ: the path to the first differing leaf and both leaves. */
function where(a: unknown, b: unknown, at = ''): string {
  const leaf = () => `${at ? `at ${at}: ` : ''}committed ${show(a)}, re-run ${show(b)}`;
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b) && !(a instanceof DataView) && !(b instanceof DataView)) {
    const x = a as unknown as ArrayLike<number | bigint>;
    const y = b as unknown as ArrayLike<number | bigint>;
    if (a.constructor !== b.constructor || x.length !== y.length) return leaf();
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i])) return where(x[i], y[i], `${at}[${i}]`);
    return leaf(); // same numbers, different bits (NaN payloads)
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (i >= a.length || i >= b.length) return `${at ? `at ${at}: ` : ''}length ${a.length} committed, ${b.length} re-run`;
      if (!sameBytes(encode(a[i]), encode(b[i]))) return where(a[i], b[i], `${at}[${i}]`);
    }
  }
  if (isRecord(a) && isRecord(b) && !Array.isArray(a) && !Array.isArray(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (!(key in a) || !(key in b) || !sameBytes(encode(a[key]), encode(b[key]))) return where(a[key], b[key], `${at}.${key}`);
    }
  }
  return leaf();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !ArrayBuffer.isView(value);
}

/** A short, exact rendering: numbers with all their digits (17 significant), long values cut. */
function show(value: unknown): string {
  const text =
    typeof value === 'number'
      ? Object.is(value, -0)
        ? '-0'
        : String(value)
      : typeof value === 'bigint'
        ? `${value}n`
        : value === undefined
          ? 'undefined'
          : ArrayBuffer.isView(value)
            ? `${value.constructor.name}(${(value as unknown as ArrayLike<unknown>).length})`
            : JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v));
  return text.length > 120 ? `${text.slice(0, 117)}…` : text;
}

/** One line per verdict (`<id>  same`, `<id>  differs  export "x": committed …, re-run …`) and a count. */
export function formatVerdicts(summary: Pick<VerifySummary, 'verdicts' | 'profile'>): string {
  const width = Math.max(0, ...summary.verdicts.map((v) => v.id.length));
  const lines = summary.verdicts.map((v) => `${v.id.padEnd(width)}  ${v.status}${v.detail ? `  ${v.detail}` : ''}`);
  const count = (status: CellVerdict['status']) => summary.verdicts.filter((v) => v.status === status).length;
  lines.push(
    `verify at profile ${summary.profile}: ${count('same')} same, ${count('differs')} differ, ${count('failed')} failed, ${count('uncommitted')} without a committed result`,
  );
  return `${lines.join('\n')}\n`;
}
