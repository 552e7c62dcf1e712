/**
 * How `report --verify` (verify.ts) compares a committed result with a re-run:
 *
 *   - every export as the bytes the store would write for it (serialize.ts: typed arrays
 *     and tensors bit for bit, numbers as float64, key order included);
 *   - every figure (its bytes, extension, caption) and every table (columns, each row's
 *     cells, caption);
 *   - except that a value the front matter declares measured (measured.ts) is compared for
 *     presence and type/shape only: the same kind of value (a number stays a number), the
 *     same length of an array, the same fields of an object, all the way down. Measured
 *     values that differ are listed, not counted as a difference.
 *
 * A difference is a sentence naming the first one by its path, with both values:
 * `total: committed 5, re-run 6`, `dbmTraining[0].seconds: length 3 committed, 4 re-run`,
 * `table "t"[0].x: committed 1, re-run 2` — the path syntax of measured patterns.
 */
import { formatPath, MeasuredCursor, type MeasuredPattern, type PathSegment } from './measured.ts';
import { encode } from './serialize.ts';
import type { CellResult, Output } from './types.ts';

/** A measured value that differs between the committed result and the re-run. */
export interface MeasuredDifference {
  /** Its path, e.g. `dbmTraining[0].seconds`. */
  path: string;
  /** The same with every index as `[]`, e.g. `dbmTraining[].seconds`. */
  general: string;
  committed: unknown;
  rerun: unknown;
}

export interface Comparison {
  /** The first difference that is not a measured value's, as a sentence; undefined when there is none. */
  difference?: string;
  /** The measured values that differ (up to the first difference, when there is one). */
  measured: MeasuredDifference[];
}

/** Compares cell `cellId`'s committed result with its re-run, `patterns` naming the measured values. */
export function compareResults(cellId: string, committed: CellResult, rerun: CellResult, patterns: readonly MeasuredPattern[] = []): Comparison {
  const measured: MeasuredDifference[] = [];
  const names = [...new Set([...Object.keys(committed.exports), ...Object.keys(rerun.exports)])];
  for (const name of names) {
    const path: PathSegment[] = [{ k: 'name', name }];
    if (!(name in committed.exports)) return { difference: `${formatPath(path)} is new (re-run: ${show(rerun.exports[name])})`, measured };
    if (!(name in rerun.exports)) return { difference: `${formatPath(path)} is gone (committed: ${show(committed.exports[name])})`, measured };
    const difference = compareValues(committed.exports[name], rerun.exports[name], path, MeasuredCursor.root(patterns, cellId, path[0]!), measured);
    if (difference !== undefined) return { difference, measured };
  }
  const difference = outputDifference(cellId, committed.outputs, rerun.outputs, patterns, measured);
  return difference === undefined ? { measured } : { difference, measured };
}

/** The first difference of two values at `path` that is not a measured value's; measured ones go to `out`. */
function compareValues(a: unknown, b: unknown, path: PathSegment[], at: MeasuredCursor, out: MeasuredDifference[]): string | undefined {
  if (at.measured) return compareShape(a, b, path, out);
  if (isPrimitive(a) && isPrimitive(b)) return samePrimitive(a, b) ? undefined : leaf(path, a, b);
  if (sameBytes(encode(a), encode(b))) return undefined;
  const p = formatPath(path);
  if (isTypedArray(a) && isTypedArray(b)) {
    const x = a as unknown as ArrayLike<number | bigint>;
    const y = b as unknown as ArrayLike<number | bigint>;
    if (a.constructor !== b.constructor || x.length !== y.length) return leaf(path, a, b);
    for (let i = 0; i < x.length; i++) {
      if (sameElement(a, b, i)) continue;
      const child = [...path, { k: 'index', index: i } as const];
      const cursor = at.live ? at.child(child.at(-1)!) : at;
      if (!cursor.measured) return leaf(child, x[i], y[i]);
      out.push(measuredDifference(child, x[i], y[i]));
    }
    return undefined;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      if (i >= a.length || i >= b.length) return `${p}: length ${a.length} committed, ${b.length} re-run`;
      const segment = { k: 'index', index: i } as const;
      const difference = compareValues(a[i], b[i], [...path, segment], at.child(segment), out);
      if (difference !== undefined) return difference;
    }
    return undefined;
  }
  if (isPlainObject(a) && isPlainObject(b)) return compareFields(a, b, path, '', (x, y, child) => compareValues(x, y, child, at.child(child.at(-1)!), out));
  return leaf(path, a, b);
}

/**
 * A measured value: a difference only when its kind or shape changed (a number that became a
 * string, an array of another length, a field gone); different values go to `out`.
 */
function compareShape(a: unknown, b: unknown, path: PathSegment[], out: MeasuredDifference[]): string | undefined {
  const p = formatPath(path);
  if (kindOf(a) !== kindOf(b)) return `${p} (measured): committed ${show(a)}, re-run ${show(b)}, ${article(kindOf(a))} then ${article(kindOf(b))}`;
  if (isPrimitive(a) && isPrimitive(b)) {
    if (!samePrimitive(a, b)) out.push(measuredDifference(path, a, b));
    return undefined;
  }
  if (isTypedArray(a) && isTypedArray(b)) {
    const x = a as unknown as ArrayLike<number | bigint>;
    const y = b as unknown as ArrayLike<number | bigint>;
    if (x.length !== y.length) return `${p} (measured): length ${x.length} committed, ${y.length} re-run`;
    for (let i = 0; i < x.length; i++) if (!sameElement(a, b, i)) out.push(measuredDifference([...path, { k: 'index', index: i }], x[i], y[i]));
    return undefined;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${p} (measured): length ${a.length} committed, ${b.length} re-run`;
    for (let i = 0; i < a.length; i++) {
      const difference = compareShape(a[i], b[i], [...path, { k: 'index', index: i }], out);
      if (difference !== undefined) return difference;
    }
    return undefined;
  }
  if (isPlainObject(a) && isPlainObject(b)) return compareFields(a, b, path, ' (measured)', (x, y, child) => compareShape(x, y, child, out));
  // A Map, Set or Date: the same size, its contents taken as one measured value.
  const size = (v: unknown) => (v instanceof Map || v instanceof Set ? v.size : 0);
  if (size(a) !== size(b)) return `${p} (measured): size ${size(a)} committed, ${size(b)} re-run`;
  if (!sameBytes(encode(a), encode(b))) out.push(measuredDifference(path, a, b));
  return undefined;
}

/**
 * Two objects field by field: a field new or gone, the first difference `compare` finds in
 * a field both have, or the same fields in another order (the store keeps the order);
 * `tag` marks the sentences of a measured value.
 */
function compareFields(
  a: Record<string, unknown>,
  b: Record<string, unknown>,
  path: PathSegment[],
  tag: string,
  compare: (a: unknown, b: unknown, child: PathSegment[]) => string | undefined,
): string | undefined {
  const keys = [Object.keys(a), Object.keys(b)] as const;
  for (const name of new Set([...keys[0], ...keys[1]])) {
    const child = [...path, { k: 'name', name } as const];
    if (!(name in a)) return `${formatPath(child)}${tag} is new (re-run: ${show(b[name])})`;
    if (!(name in b)) return `${formatPath(child)}${tag} is gone (committed: ${show(a[name])})`;
    const difference = compare(a[name], b[name], child);
    if (difference !== undefined) return difference;
  }
  if (keys[0].join('\0') !== keys[1].join('\0')) return `${formatPath(path)}${tag}: fields in another order (committed ${show(keys[0])}, re-run ${show(keys[1])})`;
  return undefined;
}

function outputDifference(cellId: string, committed: Output[], rerun: Output[], patterns: readonly MeasuredPattern[], out: MeasuredDifference[]): string | undefined {
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
      if (first.rows.length !== second.rows.length) return `${label}: ${first.rows.length} rows committed, ${second.rows.length} re-run`;
      const widths = (t: typeof first) => t.rows.map((row) => row.length);
      if (!sameBytes(encode(widths(first)), encode(widths(second)))) return `${label}: rows of other lengths (committed ${show(widths(first))}, re-run ${show(widths(second))})`;
      // Each row as a record of its cells by column name (`table "t"[0].x`); by index when
      // two columns share a name.
      const table: PathSegment = { k: 'table', name: first.name };
      const byName = new Set(first.columns).size === first.columns.length;
      const rows = (t: typeof first) => (byName ? t.rows.map((row) => Object.fromEntries(first.columns.map((column, c) => [column, row[c]]))) : t.rows);
      const difference = compareValues(rows(first), rows(second), [table], MeasuredCursor.root(patterns, cellId, table), out);
      if (difference !== undefined) return difference;
      if ((first.caption ?? '') !== (second.caption ?? '')) return `${label} caption: committed ${show(first.caption)}, re-run ${show(second.caption)}`;
    }
  }
  for (const label of b.keys()) if (!a.has(label)) return `${label} is new`;
  return undefined;
}

function measuredDifference(path: PathSegment[], committed: unknown, rerun: unknown): MeasuredDifference {
  return { path: formatPath(path), general: formatPath(path, true), committed, rerun };
}

function leaf(path: PathSegment[], a: unknown, b: unknown): string {
  return `${formatPath(path)}: committed ${show(a)}, re-run ${show(b)}`;
}

type Primitive = number | string | boolean | bigint | null | undefined;

function isPrimitive(value: unknown): value is Primitive {
  return value === null || (typeof value !== 'object' && typeof value !== 'function');
}

/** As the store tells them apart: -0 is not 0, NaN is NaN. */
function samePrimitive(a: Primitive, b: Primitive): boolean {
  return Object.is(a, b);
}

function isTypedArray(value: unknown): value is ArrayBufferView {
  return ArrayBuffer.isView(value) && !(value instanceof DataView);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value) && !(value instanceof Map) && !(value instanceof Set) && !(value instanceof Date);
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (ArrayBuffer.isView(value)) return value.constructor.name;
  if (value instanceof Map) return 'Map';
  if (value instanceof Set) return 'Set';
  if (value instanceof Date) return 'Date';
  return typeof value;
}

/** `a number`, `an array`, `undefined`. */
function article(kind: string): string {
  return kind === 'undefined' || kind === 'null' ? kind : `${/^[aeiouAEIOU]/.test(kind) ? 'an' : 'a'} ${kind}`;
}

/** Element `i` of two typed arrays of one kind, bit for bit (NaN payloads included). */
function sameElement(a: ArrayBufferView, b: ArrayBufferView, i: number): boolean {
  const size = (a as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  const x = new Uint8Array(a.buffer, a.byteOffset + i * size, size);
  const y = new Uint8Array(b.buffer, b.byteOffset + i * size, size);
  return sameBytes(x, y);
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

/** A short, exact rendering: numbers with all their digits (17 significant), long values cut. */
export function show(value: unknown): string {
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
