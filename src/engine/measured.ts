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

  // The first step: what the path starts from.
  if (text.startsWith('**', i)) {
    tokens.push({ t: 'any-depth' });
    i += 2;
  } else if (text[i] === '*') {
    tokens.push({ t: 'any-name' });
    i += 1;
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
      if (text.startsWith('**', i)) {
        tokens.push({ t: 'any-depth' });
        i += 2;
      } else if (text[i] === '*') {
        tokens.push({ t: 'any-name' });
        i += 1;
      } else {
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
        problem(`front matter "verify.measured": each pattern must be a string (quote it), got ${isScalar(item) ? JSON.stringify(item.value) : 'a list or mapping'}`, placeOf(item));
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

/** The states of a pattern (steps matched so far) reached from `states` without a step: across `**`. */
function closure(tokens: readonly PatternToken[], states: number[]): number[] {
  const out = new Set<number>();
  for (let s of states) {
    out.add(s);
    while (tokens[s]?.t === 'any-depth') out.add(++s);
  }
  return [...out];
}

/** The states after one more step of the path. */
function step(tokens: readonly PatternToken[], states: readonly number[], segment: PathSegment): number[] {
  const next: number[] = [];
  for (const s of states) {
    const token = tokens[s];
    if (token === undefined) continue;
    if (token.t === 'any-depth') {
      if (segment.k !== 'table') next.push(s);
    } else if (stepMatches(token, segment)) {
      next.push(s + 1);
    }
  }
  return closure(tokens, next);
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
    private readonly patterns: readonly (readonly PatternToken[])[],
    private readonly states: readonly (readonly number[])[],
    readonly measured: boolean,
  ) {}

  /** At the export or table `root` of cell `cellId`'s result. */
  static root(patterns: readonly MeasuredPattern[], cellId: string, root: PathSegment): MeasuredCursor {
    const mine = patterns.filter((p) => p.cell === undefined || p.cell === cellId).map((p) => p.tokens);
    return new MeasuredCursor(mine, mine.map((tokens) => closure(tokens, [0])), false).child(root);
  }

  child(segment: PathSegment): MeasuredCursor {
    // Everything inside a measured value is measured.
    if (this.measured) return this;
    const states = this.patterns.map((tokens, k) => step(tokens, this.states[k]!, segment));
    return new MeasuredCursor(this.patterns, states, states.some((s, k) => s.includes(this.patterns[k]!.length)));
  }

  get live(): boolean {
    return this.measured || this.states.some((s) => s.length > 0);
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
  for (const pattern of patterns) {
    if (pattern.cell !== undefined && !cellIds.includes(pattern.cell)) {
      file.message(`measured pattern "${pattern.source}": no cell has the id "${pattern.cell}" (cells: ${cellIds.join(', ') || 'none'})`, {
        place: pattern.place,
        ruleId: RULE_UNMATCHED,
        source: SOURCE,
      });
      continue;
    }
    if (pattern.cell === undefined ? withoutResult.length > 0 : withoutResult.includes(pattern.cell)) continue;
    const cells = pattern.cell === undefined ? [...results.keys()] : [pattern.cell];
    if (cells.some((id) => namesSomething(pattern.tokens, results.get(id)!))) continue;
    const where = pattern.cell === undefined ? 'any stored result' : `the stored result of cell "${pattern.cell}"`;
    file.message(`measured pattern "${pattern.source}" names no value of ${where} (its exports and tables); fix the path or remove the pattern`, {
      place: pattern.place,
      ruleId: RULE_UNMATCHED,
      source: SOURCE,
    });
  }
}

/** True when `tokens` name at least one value of `result`. */
function namesSomething(tokens: readonly PatternToken[], result: ResultValues): boolean {
  const start = closure(tokens, [0]);
  const accepts = (states: readonly number[]) => states.includes(tokens.length);
  // Indexes named by [<index>]: every other index leads to the same states.
  const named = [...new Set(tokens.flatMap((t) => (t.t === 'index' ? [t.index] : [])))];
  const visit = (value: unknown, states: number[]): boolean => {
    if (states.length === 0) return false;
    if (accepts(states)) return true;
    if (typeof value !== 'object' || value === null || value instanceof Map || value instanceof Set || value instanceof Date) return false;
    if (ArrayBuffer.isView(value) || Array.isArray(value)) {
      const length = (value as unknown as ArrayLike<unknown>).length;
      const elements = value as unknown as ArrayLike<unknown>;
      // An element holding nothing further is named by its index alone: one of each kind is enough.
      let other = 0;
      while (named.includes(other)) other++;
      const enough = new Set([other, ...named].filter((i) => i < length));
      for (let i = 0; i < length; i++) {
        const element = elements[i];
        const nested = typeof element === 'object' && element !== null;
        if ((nested || enough.has(i)) && visit(element, step(tokens, states, { k: 'index', index: i }))) return true;
      }
      return false;
    }
    return Object.entries(value).some(([name, field]) => visit(field, step(tokens, states, { k: 'name', name })));
  };
  for (const [name, value] of Object.entries(result.exports)) if (visit(value, step(tokens, start, { k: 'name', name }))) return true;
  for (const output of result.outputs) {
    if (output.kind !== 'table' || output.name === undefined) continue;
    const columns = output.columns ?? [];
    const rows = (output.rows ?? []).map((row) => Object.fromEntries(columns.map((column, c) => [column, row[c]])));
    if (visit(rows, step(tokens, start, { k: 'table', name: output.name }))) return true;
  }
  return false;
}
