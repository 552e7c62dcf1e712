/**
 * Measured values: results that are wall-clock measurements (an epoch's seconds, the
 * milliseconds a sample takes), which no re-run reproduces. The front matter names them
 * with path patterns,
 *
 *     verify:
 *       measured:
 *         - '**.seconds'                      a field `seconds` at any depth, in any cell
 *         - rbmSecondsPerIteration            an export
 *         - 'dbm:dbmTraining[].seconds'       the same, in cell dbm only
 *         - 'fm-samplers:table "fm-samplers"[]["ms per image"]'   a table column
 *
 * and `report --verify` compares them for presence and type/shape only (compare.ts).
 * Nothing else reads them: they are no part of any key, of the store or of freshness.
 *
 * A path is what `--verify` prints: the export's name, then `.name` for a field (`["any
 * text"]` when the name is not an identifier) and `[i]` for an element; a table is
 * `table "<name>"`, its rows `[i]`, a row's cells by column name. A pattern is a path in
 * which `[]` is any element, `*` any one field name (or any export name, first), `**` any
 * number of steps, none included (`**.seconds` is also an export named `seconds`), and
 * `<cell-id>:` in front keeps it to one cell. A pattern names a value and everything in it;
 * a printed path is a pattern matching just that value. `*` and `**` never enter a table:
 * a table is named by `table "<name>"`.
 *
 * Problems: `bad-measured` (an error, at the pattern's line and column) for a `verify:`
 * section or a pattern that does not parse; `measured-unmatched` (a warning, `check`) for a
 * pattern that matches nothing in the stored results, so that a typo shows.
 */
import type { Point } from 'unist';
import type { VFile } from 'vfile';
import { isMap, isScalar, isSeq, parseDocument, type Node as YamlNode } from 'yaml';
import { OUTPUT_NAME } from './store.ts';

/** One step of a pattern. */
export type PatternToken =
  | { t: 'name'; name: string }
  | { t: 'table'; name: string }
  | { t: 'index'; index: number }
  /** `*`: any one field name (or export name). */
  | { t: 'any-name' }
  /** `[]`: any element. */
  | { t: 'any-index' }
  /** `**`: any number of steps, none included. */
  | { t: 'any-depth' };

export interface MeasuredPattern {
  /** As written in the front matter. */
  source: string;
  /** The cell it is kept to (`<cell-id>:`); every cell when absent. */
  cell?: string;
  tokens: PatternToken[];
  /** Where the pattern is written (for `measured-unmatched`). */
  place?: Point;
}

/** The front matter's `verify:` section, read. */
export interface VerifySettings {
  measured: MeasuredPattern[];
}

/** One step of a concrete path: an export's or a field's name, an element, a table. */
export type PathSegment = { k: 'name'; name: string } | { k: 'index'; index: number } | { k: 'table'; name: string };

const RULE_BAD = 'bad-measured';
const RULE_UNMATCHED = 'measured-unmatched';
const SOURCE = 'report';
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*/;
const CELL_PREFIX = /^([a-z0-9-]+):/;
const SYNTAX_HINT = 'a pattern is an export name, "*" or "**", or table "<name>", then steps .name, .*, .**, [], [<index>] or ["<name>"]; "<cell-id>:" first keeps it to one cell';

/** A pattern's text → its cell and steps, or what is wrong and at which character (0-based). */
export function parseMeasuredPattern(text: string): { cell?: string; tokens: PatternToken[] } | { error: string; at: number } {
  const tokens: PatternToken[] = [];
  let i = 0;
  let cell: string | undefined;
  const prefix = CELL_PREFIX.exec(text);
  if (prefix) {
    cell = prefix[1]!;
    i = prefix[0].length;
  }
  /** A `["…"]` step at `i` (JSON string syntax) → the name, or an error. */
  const quoted = (): string | { error: string; at: number } => {
    let j = i + 2;
    while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
    if (j >= text.length || text[j + 1] !== ']') return { error: 'a ["<name>"] step is not closed', at: i };
    let name: unknown;
    try {
      name = JSON.parse(text.slice(i + 1, j + 1));
    } catch {
      return { error: 'the name in ["<name>"] is not a valid JSON string', at: i + 1 };
    }
    i = j + 2;
    return name as string;
  };

  /** A `**` or `*` step at i, taken; false when there is none. */
  const wildcard = (): boolean => {
    if (text.startsWith('**', i)) {
      tokens.push({ t: 'any-depth' });
      i += 2;
    } else if (text[i] === '*') {
      tokens.push({ t: 'any-name' });
      i += 1;
    } else return false;
    return true;
  };

  // The first step: what the path starts from.
  if (wildcard()) {
    // `**` or `*`
  } else if (text.startsWith('table "', i)) {
    const end = text.indexOf('"', i + 7);
    const name = end < 0 ? '' : text.slice(i + 7, end);
    if (end < 0 || !OUTPUT_NAME.test(name)) return { error: 'expected table "<name>", the name as the cell gave it ([a-z0-9-]+)', at: i + 6 };
    tokens.push({ t: 'table', name });
    i = end + 1;
  } else if (text.startsWith('["', i)) {
    const name = quoted();
    if (typeof name !== 'string') return name;
    tokens.push({ t: 'name', name });
  } else {
    const name = IDENTIFIER.exec(text.slice(i))?.[0];
    if (name === undefined) {
      const what = i >= text.length ? 'the pattern is empty' : `unexpected "${text[i]}"`;
      return { error: `${what}: ${SYNTAX_HINT}`, at: i };
    }
    tokens.push({ t: 'name', name });
    i += name.length;
  }

  while (i < text.length) {
    if (text[i] === '.') {
      i += 1;
      if (!wildcard()) {
        const name = IDENTIFIER.exec(text.slice(i))?.[0];
        if (name === undefined) return { error: `expected a field name, "*" or "**" after "." (a name that is not an identifier is written ["<name>"])`, at: i };
        tokens.push({ t: 'name', name });
        i += name.length;
      }
    } else if (text[i] === '[') {
      const index = /^\[(0|[1-9][0-9]*)?\]/.exec(text.slice(i));
      if (index) {
        tokens.push(index[1] === undefined ? { t: 'any-index' } : { t: 'index', index: Number(index[1]) });
        i += index[0].length;
      } else if (text[i + 1] === '"') {
        const name = quoted();
        if (typeof name !== 'string') return name;
        tokens.push({ t: 'name', name });
      } else {
        return { error: 'expected [] (any element), [<index>] or ["<name>"]', at: i };
      }
    } else {
      const hint =
        text[i] === ':'
          ? ' (a cell id before ":" is [a-z0-9-]+, and comes first)'
          : tokens.at(-1)?.t === 'any-depth' || tokens.at(-1)?.t === 'any-name'
            ? ' (a step after "*" or "**" starts with "." or "[", e.g. **.seconds)'
            : '';
      return { error: `unexpected "${text[i]}"${hint}: ${SYNTAX_HINT}`, at: i };
    }
  }
  if (tokens.length > MAX_STEPS) return { error: `more than ${MAX_STEPS} steps`, at: 0 };
  return { ...(cell === undefined ? {} : { cell }), tokens };
}

/**
 * Reads the front matter's `verify:` section from the YAML text (for the places of its
 * patterns; `start` is the point of the front matter's opening `---`). Problems go to `file`
 * as `bad-measured`, each at its line and column; a malformed pattern is left out, the
 * others kept.
 */
export function readVerifySection(yamlText: string, start: Point | undefined, file: VFile): VerifySettings | undefined {
  const lineStarts = [0];
  for (let i = 0; i < yamlText.length; i++) if (yamlText[i] === '\n') lineStarts.push(i + 1);
  const pointAt = (offset: number): Point | undefined => {
    if (start === undefined) return undefined;
    let line = 0;
    while (line + 1 < lineStarts.length && lineStarts[line + 1]! <= offset) line++;
    return { line: start.line + 1 + line, column: offset - lineStarts[line]! + 1 };
  };
  const placeOf = (node: YamlNode | null | undefined): Point | undefined => (node?.range ? pointAt(node.range[0]) : start);
  const problem = (reason: string, place: Point | undefined): void => {
    file.message(reason, { place, ruleId: RULE_BAD, source: SOURCE });
  };

  // The front matter already parsed as YAML (parse.ts): this reading cannot fail.
  const section = parseDocument(yamlText, { logLevel: 'error' }).get('verify', true) as YamlNode | undefined;
  if (section === undefined || (isScalar(section) && section.value === null)) return { measured: [] };
  if (!isMap(section)) {
    problem('front matter "verify" must be a mapping, e.g. verify: { measured: [\'**.seconds\'] }', placeOf(section));
    return undefined;
  }
  const measured: MeasuredPattern[] = [];
  for (const pair of section.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    if (key !== 'measured') {
      problem(`front matter "verify" has no setting "${key}"; it takes measured: a list of path patterns`, placeOf(pair.key as YamlNode));
      continue;
    }
    const value = pair.value as YamlNode | null;
    const items = isSeq(value) ? value.items : isScalar(value) && typeof value.value === 'string' ? [value] : value === null || (isScalar(value) && value.value === null) ? [] : undefined;
    if (items === undefined) {
      problem('front matter "verify.measured" must be a list of path patterns, e.g. measured: [\'**.seconds\', rbmSecondsPerIteration]', placeOf(value));
      continue;
    }
    for (const item of items as YamlNode[]) {
      if (!isScalar(item) || typeof item.value !== 'string') {
        problem(`front matter "verify.measured": each pattern must be a string (quote it), got ${isScalar(item) ? String(item.value) : isSeq(item) ? 'a list' : isMap(item) ? 'a mapping' : 'an alias'}`, placeOf(item));
        continue;
      }
      const text = item.value;
      const parsed = parseMeasuredPattern(text);
      // The pattern's first character in the YAML text: after the quote of a quoted scalar
      // whose text is the pattern itself (no escapes); else the scalar's start.
      const written = item.range ? yamlText.slice(item.range[0], item.range[1]) : '';
      const first = item.range === undefined || item.range === null ? undefined : written === text ? item.range[0] : written.slice(1, -1) === text ? item.range[0] + 1 : undefined;
      if ('error' in parsed) {
        problem(`bad measured pattern "${text}": ${parsed.error}`, first === undefined ? placeOf(item) : pointAt(first + parsed.at));
        continue;
      }
      const place = first === undefined ? placeOf(item) : pointAt(first);
      measured.push({ source: text, ...parsed, ...(place === undefined ? {} : { place }) });
    }
  }
  return { measured };
}

/**
 * A pattern as an automaton: its states are the numbers of steps matched so far, a set of
 * them a bit mask (bit i: i steps matched; so at most {@link MAX_STEPS} steps). Each
 * transition is computed once per pattern and remembered: walking a result costs a lookup
 * per value and pattern.
 */
class Automaton {
  /** Every state reachable before the path's first step. */
  readonly start: number;
  /** The state "every step matched". */
  private readonly done: number;
  /** Indexes the pattern names as [<index>]: every other index steps alike. */
  private readonly indexes: ReadonlySet<number>;
  /** Remembered transitions: per states, per field name, index (-1 for any index not named) or table name. */
  private readonly memo = { name: new Map<number, Map<string, number>>(), index: new Map<number, Map<number, number>>(), table: new Map<number, Map<string, number>>() };

  constructor(private readonly tokens: readonly PatternToken[]) {
    this.start = this.closure(1);
    this.done = 2 ** tokens.length;
    this.indexes = new Set(tokens.flatMap((t) => (t.t === 'index' ? [t.index] : [])));
  }

  accepts(states: number): boolean {
    return (states & this.done) !== 0;
  }

  /** The states after one more step of the path, from `states` (0: none, the pattern can name nothing below). */
  step(states: number, segment: PathSegment): number {
    if (states === 0) return 0;
    const memo = this.memo[segment.k] as Map<number, Map<string | number, number>>;
    let byStep = memo.get(states);
    if (byStep === undefined) memo.set(states, (byStep = new Map()));
    const key = segment.k === 'index' ? (this.indexes.has(segment.index) ? segment.index : -1) : segment.name;
    let next = byStep.get(key);
    if (next === undefined) {
      next = 0;
      for (let s = 0; s < this.tokens.length; s++) {
        if ((states & (2 ** s)) === 0) continue;
        const token = this.tokens[s]!;
        if (token.t === 'any-depth') {
          if (segment.k !== 'table') next |= 2 ** s;
        } else if (stepMatches(token, segment)) {
          next |= 2 ** (s + 1);
        }
      }
      next = this.closure(next);
      byStep.set(key, next);
    }
    return next;
  }

  /** `states` and every state reached from them without a step: across `**`. */
  private closure(states: number): number {
    for (let s = 0; s < this.tokens.length; s++) if ((states & (2 ** s)) !== 0 && this.tokens[s]!.t === 'any-depth') states |= 2 ** (s + 1);
    return states;
  }
}

/** At most this many steps in a pattern (its states are the bits of a number). */
const MAX_STEPS = 30;

const automata = new WeakMap<readonly PatternToken[], Automaton>();

function automaton(pattern: MeasuredPattern): Automaton {
  let found = automata.get(pattern.tokens);
  if (found === undefined) automata.set(pattern.tokens, (found = new Automaton(pattern.tokens)));
  return found;
}

function stepMatches(token: PatternToken, segment: PathSegment): boolean {
  switch (token.t) {
    case 'name':
      return segment.k === 'name' && segment.name === token.name;
    case 'table':
      return segment.k === 'table' && segment.name === token.name;
    case 'index':
      return segment.k === 'index' && segment.index === token.index;
    case 'any-name':
      return segment.k === 'name';
    case 'any-index':
      return segment.k === 'index';
    case 'any-depth':
      return segment.k !== 'table';
  }
}

/**
 * Where a cell's patterns stand at one value of its result: `measured` when one of them
 * names this value or a value it is inside of; `live` when one may still name something
 * inside it. Start at an export or a table with {@link MeasuredCursor.root}, go in with
 * {@link MeasuredCursor.child}.
 */
export class MeasuredCursor {
  private constructor(
    private readonly automata: readonly Automaton[],
    private readonly states: readonly number[],
    readonly measured: boolean,
  ) {}

  /** At the export or table `root` of cell `cellId`'s result. */
  static root(patterns: readonly MeasuredPattern[], cellId: string, root: PathSegment): MeasuredCursor {
    const mine = patterns.filter((p) => p.cell === undefined || p.cell === cellId).map(automaton);
    return new MeasuredCursor(mine, mine.map((a) => a.start), false).child(root);
  }

  child(segment: PathSegment): MeasuredCursor {
    // Everything inside a measured value is measured.
    if (this.measured) return this;
    const states = this.automata.map((a, k) => a.step(this.states[k]!, segment));
    return new MeasuredCursor(this.automata, states, states.some((s, k) => this.automata[k]!.accepts(s)));
  }

  get live(): boolean {
    return this.measured || this.states.some((s) => s !== 0);
  }
}

/** A path as `--verify` prints it (`dbmTraining[0].seconds`, `table "t"[2]["ms per image"]`); `general`: every index as `[]`. */
export function formatPath(path: readonly PathSegment[], general = false): string {
  return path
    .map((segment, i) => {
      if (segment.k === 'table') return `table ${JSON.stringify(segment.name)}`;
      if (segment.k === 'index') return general ? '[]' : `[${segment.index}]`;
      const plain = IDENTIFIER.exec(segment.name)?.[0] === segment.name;
      return plain ? (i === 0 ? segment.name : `.${segment.name}`) : `[${JSON.stringify(segment.name)}]`;
    })
    .join('');
}

/** What a result holds that patterns can name: its exports and its tables. */
export interface ResultValues {
  exports: Record<string, unknown>;
  outputs: readonly { kind: string; name?: string; columns?: string[]; rows?: unknown[][] }[];
}

/**
 * `check`: a `measured-unmatched` warning at every pattern that names nothing in the stored
 * results (`results`, by cell id), so that a typo shows. A pattern that could name a value
 * of a cell without a stored result (`cellIds` not in `results`) is not judged: that cell
 * is reported stale or missing already.
 */
export function reportUnmatched(file: VFile, patterns: readonly MeasuredPattern[], results: ReadonlyMap<string, ResultValues>, cellIds: readonly string[]): void {
  const withoutResult = cellIds.filter((id) => !results.has(id));
  const unknownCell = (pattern: MeasuredPattern) => pattern.cell !== undefined && !cellIds.includes(pattern.cell);
  // The patterns to look for: kept to no unknown cell, and able to name only stored results.
  const pending = new Set(
    patterns.flatMap((pattern, k) => (unknownCell(pattern) || (pattern.cell === undefined ? withoutResult.length > 0 : withoutResult.includes(pattern.cell)) ? [] : [k])),
  );
  // One walk of each result for all the patterns still pending.
  for (const [id, result] of results) {
    if (pending.size === 0) break;
    crossOffNamed(patterns, id, result, pending);
  }
  patterns.forEach((pattern, k) => {
    const where = pattern.cell === undefined ? 'any stored result' : `the stored result of cell "${pattern.cell}"`;
    const reason = unknownCell(pattern)
      ? `measured pattern "${pattern.source}": no cell has the id "${pattern.cell}" (cells: ${cellIds.join(', ') || 'none'})`
      : pending.has(k)
        ? `measured pattern "${pattern.source}" names no value of ${where} (its exports and tables); fix the path or remove the pattern`
        : undefined;
    if (reason !== undefined) file.message(reason, { place: pattern.place, ruleId: RULE_UNMATCHED, source: SOURCE });
  });
}

/** Every field name in `value` (objects inside arrays and objects included; not Maps). */
function fieldNames(value: unknown, names = new Set<string>()): Set<string> {
  if (typeof value !== 'object' || value === null || ArrayBuffer.isView(value) || value instanceof Map || value instanceof Set || value instanceof Date) return names;
  if (Array.isArray(value)) {
    for (const element of value) if (typeof element === 'object' && element !== null) fieldNames(element, names);
    return names;
  }
  for (const [name, field] of Object.entries(value)) {
    names.add(name);
    if (typeof field === 'object' && field !== null) fieldNames(field, names);
  }
  return names;
}

/** Removes from `pending` (indexes into `patterns`) the patterns that name a value of cell `cellId`'s `result`. */
function crossOffNamed(patterns: readonly MeasuredPattern[], cellId: string, result: ResultValues, pending: Set<number>): void {
  // A pattern can name a value only if the result has every name it spells out: a cheap
  // look at the names first spares walking a large result for patterns of other cells.
  const tables = (result.outputs ?? []).flatMap((o) => (o.kind === 'table' && o.name !== undefined ? [o] : []));
  const names = fieldNames([result.exports, ...tables.map((t) => Object.fromEntries((t.columns ?? []).map((c) => [c, null])))]);
  const has = (token: PatternToken) => (token.t === 'name' ? names.has(token.name) : token.t === 'table' ? tables.some((t) => t.name === token.name) : true);
  const looked = [...pending].filter((k) => (patterns[k]!.cell === undefined || patterns[k]!.cell === cellId) && patterns[k]!.tokens.every(has));
  if (looked.length === 0) return;
  const machines = looked.map((k) => automaton(patterns[k]!));
  // Indexes some pattern names as [<index>]: every other index steps alike for all of them.
  const named = new Set(looked.flatMap((k) => patterns[k]!.tokens.flatMap((t) => (t.t === 'index' ? [t.index] : []))));
  let other = 0;
  while (named.has(other)) other++;
  const representatives = [other, ...named];
  /** Per pattern looked for (as `looked`), its states here; 0 once it is found or dead. */
  const next = (states: readonly number[], segment: PathSegment): number[] => states.map((s, j) => machines[j]!.step(s, segment));
  const visit = (value: unknown, states: number[]): void => {
    let alive = false;
    for (let j = 0; j < states.length; j++) {
      if (states[j] === 0) continue;
      if (!pending.has(looked[j]!)) states[j] = 0;
      else if (machines[j]!.accepts(states[j]!)) {
        pending.delete(looked[j]!);
        states[j] = 0;
      } else alive = true;
    }
    if (!alive || typeof value !== 'object' || value === null || value instanceof Map || value instanceof Set || value instanceof Date) return;
    if (ArrayBuffer.isView(value) || Array.isArray(value)) {
      const elements = value as unknown as ArrayLike<unknown>;
      // An element holding nothing further is named by its index alone: the representatives do.
      const enough = representatives.filter((i) => i < elements.length);
      if (ArrayBuffer.isView(value)) {
        for (const i of enough) visit(undefined, next(states, { k: 'index', index: i }));
        return;
      }
      for (let i = 0; i < elements.length; i++) {
        const element = elements[i];
        if ((typeof element === 'object' && element !== null) || enough.includes(i)) visit(element, next(states, { k: 'index', index: i }));
      }
      return;
    }
    for (const [name, field] of Object.entries(value)) visit(field, next(states, { k: 'name', name }));
  };
  const start = machines.map((m) => m.start);
  for (const [name, value] of Object.entries(result.exports)) visit(value, next(start, { k: 'name', name }));
  for (const output of result.outputs) {
    if (output.kind !== 'table' || output.name === undefined) continue;
    const columns = output.columns ?? [];
    const rows = (output.rows ?? []).map((row) => Object.fromEntries(columns.map((column, c) => [column, row[c]])));
    visit(rows, next(start, { k: 'table', name: output.name }));
  }
}
