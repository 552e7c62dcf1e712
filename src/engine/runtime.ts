/**
 * The module cells import as `'report:runtime'`.
 *
 * ```ts
 * import { byProfile, figure, progress, random, table } from 'report:runtime';
 * const epochs = byProfile({ full: 50, quick: 2 });
 * ```
 *
 * Inside a runner, the runner puts a context on `globalThis` (under
 * {@link RUNTIME_CONTEXT}) before importing the cell; this module reads it. Imported
 * anywhere else (a unit test, a script) it works on a default context: profile `full`
 * (or `$REPORT_PROFILE`), seed 0, cell id `none`; outputs are kept in memory and progress
 * goes nowhere.
 */
import type { Output } from './types.ts';

/** Key of the runtime context on `globalThis`. */
export const RUNTIME_CONTEXT: unique symbol = Symbol.for('literate-report.runtime');

/** What the runner shares with this module. */
export interface RuntimeContext {
  profile: string;
  seed: number;
  cellId: string;
  /** Figures, tables and printed text, in emission order. */
  outputs: Output[];
  /** Records from {@link meta}. */
  meta: Record<string, unknown>;
  /** The cell's snapshot file (checkpoint.ts); absent outside a runner. */
  checkpoint?: { save(state: unknown): void; load(): unknown };
  /** Sends a message to the parent process (progress). */
  send?: (message: { type: 'progress'; step: number; total?: number; label?: string; metrics?: Record<string, number> }) => void;
}

function context(): RuntimeContext {
  const g = globalThis as { [RUNTIME_CONTEXT]?: RuntimeContext };
  g[RUNTIME_CONTEXT] ??= {
    profile: process.env['REPORT_PROFILE'] ?? 'full',
    seed: 0,
    cellId: 'none',
    outputs: [],
    meta: {},
  };
  return g[RUNTIME_CONTEXT];
}

/** The active profile, e.g. `full` (the committed results) or `quick`. */
export const profile: string = context().profile;

/** The effective seed of this cell: its `seed=` option, else the document's seed. */
export const seed: number = context().seed;

/** The id of the running cell. */
export const cellId: string = context().cellId;

/**
 * The value for the active profile.
 *
 * @example const epochs = byProfile({ full: 50, quick: 2 });
 * @throws when `values` has no entry for the active profile.
 */
export function byProfile<T>(values: { full: T; quick: T } & Record<string, T>): T {
  if (!Object.hasOwn(values, profile)) {
    throw new Error(`byProfile: no value for profile "${profile}" (values given for: ${Object.keys(values).join(', ')}); add a "${profile}" entry`);
  }
  return values[profile] as T;
}

let streams = 0;

/**
 * A seeded stream of uniform numbers in [0, 1) (mulberry32). The n-th call in a cell
 * gives the n-th stream of (seed, cell id), so the same code, seed and cell id give the
 * same numbers, and two cells with the same seed get different streams.
 */
export function random(): () => number {
  let state = hashString(`${seed}\u0000${cellId}\u0000${streams++}`);
  return () => {
    let t = (state = (state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const usedNames = { figure: new Set<string>(), table: new Set<string>() };

function checkName(kind: 'figure' | 'table', name: string): void {
  if (!/^[a-z0-9-]+$/.test(name)) {
    throw new Error(`${kind} name "${name}" is not valid: use lowercase letters, digits and dashes (it becomes @${kind === 'figure' ? 'fig' : 'tbl'}-${name})`);
  }
  if (usedNames[kind].has(name)) throw new Error(`${kind} name "${name}" is used twice in cell "${cellId}"; names must be unique within a cell`);
  usedNames[kind].add(name);
}

/**
 * Adds a figure, referenced in prose as `@fig-<name>` and written to
 * `figures/<cell id>-<name>.png|svg`.
 *
 * @param name  [a-z0-9-]+, unique among the cell's figures.
 * @param data  PNG bytes, or SVG text.
 * @param options caption, alt text, width (CSS pixels).
 */
export function figure(name: string, data: Uint8Array | string, options: { caption?: string; alt?: string; width?: number } = {}): void {
  checkName('figure', name);
  let bytes: Uint8Array;
  let ext: 'png' | 'svg';
  if (typeof data === 'string') {
    if (!/<svg[\s>]/.test(data)) throw new Error(`figure "${name}": a string must be SVG text (no <svg> element found)`);
    bytes = new TextEncoder().encode(data);
    ext = 'svg';
  } else {
    const png = [0x89, 0x50, 0x4e, 0x47];
    if (!png.every((b, i) => data[i] === b)) throw new Error(`figure "${name}": bytes must be a PNG image (bad signature)`);
    bytes = new Uint8Array(data);
    ext = 'png';
  }
  context().outputs.push({ kind: 'figure', name, ext, data: bytes, ...defined(options) });
}

type TableCell = string | number | boolean | null;

/**
 * Adds a table, referenced in prose as `@tbl-<name>`.
 *
 * @param rows either records (columns are the keys in first-seen order; a missing key is
 *             null) or `{ columns, rows }`.
 */
export function table(
  name: string,
  rows: Record<string, TableCell>[] | { columns: string[]; rows: unknown[][] },
  options: { caption?: string } = {},
): void {
  checkName('table', name);
  let columns: string[];
  let body: unknown[][];
  if (Array.isArray(rows)) {
    const seen = new Set<string>();
    for (const row of rows) for (const k of Object.keys(row)) seen.add(k);
    columns = [...seen];
    body = rows.map((row) => columns.map((c) => row[c] ?? null));
  } else {
    columns = rows.columns;
    body = rows.rows;
  }
  const cells = body.map((row, r) => {
    if (row.length !== columns.length) throw new Error(`table "${name}": row ${r} has ${row.length} cells, expected ${columns.length}`);
    return row.map((value, c): TableCell => {
      if (value === undefined) return null;
      if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) return value as TableCell;
      throw new Error(`table "${name}": row ${r}, column "${columns[c]}" is a ${typeof value}; use a string, number, boolean or null`);
    });
  });
  context().outputs.push({ kind: 'table', name, columns, rows: cells, ...defined(options) });
}

let lastProgress = -Infinity;

/**
 * Reports progress to the build's display (throttled to 4 per second; the last step,
 * `step === total`, is always sent). No-op outside a runner.
 *
 * @example progress({ step: epoch + 1, total: epochs, label: 'epoch', metrics: { loss } })
 */
export function progress(event: { step: number; total?: number; label?: string; metrics?: Record<string, number> }): void {
  const send = context().send;
  if (send === undefined) return;
  const now = performance.now();
  if (now - lastProgress < 250 && event.step !== event.total) return;
  lastProgress = now;
  send({ type: 'progress', ...event });
}

/**
 * Records facts about the run in the result's metadata (not hashed), e.g.
 * `meta({ backend: tf.getBackend() })`. Later calls add to / overwrite earlier keys.
 */
export function meta(record: { backend?: string; [key: string]: unknown }): void {
  Object.assign(context().meta, record);
}

/**
 * Stores a snapshot of a long cell's state (plain data, typed arrays bit for bit, tensors
 * as `{ shape, dtype, data }`), replacing the previous one. When the cell is killed, times
 * out or is stopped, the next run under the same key gets it back from {@link resume}.
 * Snapshots live outside the results store (never committed) and are deleted once the
 * cell's result is stored. No-op outside a runner.
 *
 * @example checkpoint({ epoch, weights: w.dataSync(), adam: optimiser.state(), rng: rng.state() })
 */
export function checkpoint(state: unknown): void {
  context().checkpoint?.save(state);
}

/**
 * The latest snapshot this cell stored with {@link checkpoint} under its current key, or
 * undefined (first run, or the last run finished and stored its result).
 *
 * @example const start = resume<{ epoch: number; weights: Float32Array }>() ?? fresh();
 */
export function resume<T>(): T | undefined {
  return context().checkpoint?.load() as T | undefined;
}

function defined<T extends object>(options: T): T {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as T;
}

function hashString(s: string): number {
  // FNV-1a, then a murmur3 finaliser so nearby strings give unrelated states.
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
