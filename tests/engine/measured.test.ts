/**
 * Measured values (measured.ts): the front matter's `verify: measured:` patterns — their
 * syntax, what they name, the problems they give (`bad-measured` at the pattern's line and
 * column, `measured-unmatched` in `check`) — and that they change no cell's key.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VFile } from 'vfile';
import { build } from '../../src/engine/build.ts';
import { check } from '../../src/engine/check.ts';
import { loadDocument } from '../../src/engine/document.ts';
import { nodeEffects } from '../../src/engine/effects.ts';
import { formatPath, MeasuredCursor, parseMeasuredPattern, reportUnmatched, type MeasuredPattern, type PathSegment } from '../../src/engine/measured.ts';
import { parseDocument } from '../../src/engine/parse.ts';
import { markSeverity } from '../../src/engine/severity.ts';
import { fakeExecutor } from '../support/fake-executor.ts';
import { docWithMeasured } from '../support/measured-doc.ts';

const parse = (value: string) => parseDocument(new VFile({ path: 'doc.md', value }));
const silent = { write: () => {}, isTTY: false };

/** A pattern from its text (the test fails on a parse error). */
function pattern(text: string): MeasuredPattern {
  const parsed = parseMeasuredPattern(text);
  if ('error' in parsed) throw new Error(`${text}: ${parsed.error}`);
  return { source: text, ...parsed };
}

/** A path from its parts: strings are names (the first an export's), numbers indexes, `{ table }` a table. */
function at(...parts: (string | number | { table: string })[]): PathSegment[] {
  return parts.map((p) => (typeof p === 'number' ? { k: 'index', index: p } : typeof p === 'string' ? { k: 'name', name: p } : { k: 'table', name: p.table }));
}

/** Whether `patterns` (in cell `cell`) make the value at `path` measured. */
function measured(patterns: string[], path: PathSegment[], cell = 'c'): boolean {
  let cursor = MeasuredCursor.root(patterns.map(pattern), cell, path[0]!);
  for (const segment of path.slice(1)) cursor = cursor.child(segment);
  return cursor.measured;
}

describe('measured patterns', () => {
  it('parse: names, *, **, [], [n], ["name"], table "name", and a cell in front', () => {
    expect(parseMeasuredPattern('dbmTraining[].seconds')).toEqual({
      tokens: [{ t: 'name', name: 'dbmTraining' }, { t: 'any-index' }, { t: 'name', name: 'seconds' }],
    });
    expect(parseMeasuredPattern('dbm:**.seconds')).toEqual({ cell: 'dbm', tokens: [{ t: 'any-depth' }, { t: 'name', name: 'seconds' }] });
    expect(parseMeasuredPattern('*.runs[2].*')).toEqual({
      tokens: [{ t: 'any-name' }, { t: 'name', name: 'runs' }, { t: 'index', index: 2 }, { t: 'any-name' }],
    });
    expect(parseMeasuredPattern('fm-samplers:table "fm-samplers"[]["ms per image"]')).toEqual({
      cell: 'fm-samplers',
      tokens: [{ t: 'table', name: 'fm-samplers' }, { t: 'any-index' }, { t: 'name', name: 'ms per image' }],
    });
    expect(parseMeasuredPattern('at["euler 2 \\"ema\\""].ms')).toEqual({
      tokens: [{ t: 'name', name: 'at' }, { t: 'name', name: 'euler 2 "ema"' }, { t: 'name', name: 'ms' }],
    });
  });

  it('parse: a malformed pattern says what is wrong and at which character', () => {
    const error = (text: string) => {
      const parsed = parseMeasuredPattern(text);
      return 'error' in parsed ? [parsed.at, parsed.error.replace(/: a pattern is .*$/, '')] : parsed;
    };
    expect(error('')).toEqual([0, 'the pattern is empty']);
    expect(error('a.')).toEqual([2, 'expected a field name, "*" or "**" after "." (a name that is not an identifier is written ["<name>"])']);
    expect(error('a[x]')).toEqual([1, 'expected [] (any element), [<index>] or ["<name>"]']);
    expect(error('**seconds')).toEqual([2, 'unexpected "s" (a step after "*" or "**" starts with "." or "[", e.g. **.seconds)']);
    expect(error('Dbm:x')).toEqual([3, 'unexpected ":" (a cell id before ":" is [a-z0-9-]+, and comes first)']);
    expect(error('a b')).toEqual([1, 'unexpected " "']);
    expect(error('a["b]')).toEqual([1, 'a ["<name>"] step is not closed']);
    expect(error('table "Bad"')).toEqual([6, 'expected table "<name>", the name as the cell gave it ([a-z0-9-]+)']);
  });

  it('match: a value and everything inside it; ** any depth (none included), * one name, [] any element', () => {
    expect(measured(['**.seconds'], at('seconds'))).toBe(true);
    expect(measured(['**.seconds'], at('flow', 'state', 'history', 3, 'seconds'))).toBe(true);
    expect(measured(['**.seconds'], at('flow', 'seconds', 'mean'))).toBe(true);
    expect(measured(['**.seconds'], at('flow', 'secondsPerEpoch'))).toBe(false);
    expect(measured(['rbmSecondsPerIteration'], at('rbmSecondsPerIteration'))).toBe(true);
    expect(measured(['rbmSecondsPerIteration'], at('other', 'rbmSecondsPerIteration'))).toBe(false);
    expect(measured(['dbmTraining[].seconds'], at('dbmTraining', 7, 'seconds'))).toBe(true);
    expect(measured(['dbmTraining[].seconds'], at('dbmTraining', 'seconds'))).toBe(false);
    expect(measured(['dbmTraining[1].seconds'], at('dbmTraining', 0, 'seconds'))).toBe(false);
    expect(measured(['*.samplingMs'], at('models', 'samplingMs'))).toBe(true);
    expect(measured(['models.*.samplingMs'], at('models', 3, 'samplingMs'))).toBe(false);
    expect(measured(['x.**'], at('x'))).toBe(true);
  });

  it('match: <cell>: keeps a pattern to one cell; only table "<name>" enters a table', () => {
    expect(measured(['dbm:**.seconds'], at('a', 'seconds'), 'dbm')).toBe(true);
    expect(measured(['dbm:**.seconds'], at('a', 'seconds'), 'dbm-fixed')).toBe(false);
    expect(measured(['**.seconds', '**'], at({ table: 't' }, 0, 'seconds'))).toBe(false);
    expect(measured(['table "t"[]["ms per image"]'], at({ table: 't' }, 4, 'ms per image'))).toBe(true);
    expect(measured(['table "t"'], at({ table: 't' }, 4, 'FD'))).toBe(true);
    expect(measured(['table "u"'], at({ table: 't' }, 4, 'FD'))).toBe(false);
  });

  it('a printed path is a pattern naming just that value', () => {
    const paths = [at('dbmTraining', 0, 'seconds'), at('samplerAt', 'euler 2 ema', 'msPerImage'), at({ table: 'fm-samplers' }, 3, 'ms per image')];
    expect(paths.map((p) => formatPath(p))).toEqual(['dbmTraining[0].seconds', 'samplerAt["euler 2 ema"].msPerImage', 'table "fm-samplers"[3]["ms per image"]']);
    expect(paths.map((p) => formatPath(p, true))).toEqual(['dbmTraining[].seconds', 'samplerAt["euler 2 ema"].msPerImage', 'table "fm-samplers"[]["ms per image"]']);
    for (const p of paths) {
      expect(measured([formatPath(p)], p)).toBe(true);
      expect(measured([formatPath(p, true)], p)).toBe(true);
    }
    expect(measured([formatPath(paths[0]!)], at('dbmTraining', 1, 'seconds'))).toBe(false);
  });
});

describe('reportUnmatched', () => {
  it('looks into arrays, typed arrays and tables by index, only as far as they go', () => {
    const sources = ['w[4]', 'w[5]', 'xs[2]', 'xs[3]', 'runs[1].seconds', 'runs[2].seconds', '**.seconds', 'c:**', 'table "t"[0].ms', 'table "t"[1].ms', 'table "t"[0].s'];
    const file = new VFile();
    const results = new Map([
      [
        'c',
        {
          exports: { w: new Float32Array(5), xs: [1, 2, 3], runs: [{ seconds: 1 }, { seconds: 2 }] },
          outputs: [{ kind: 'table', name: 't', columns: ['ms'], rows: [[3]] }],
        },
      ],
    ]);
    reportUnmatched(file, sources.map(pattern), results, ['c']);
    expect(file.messages.map((m) => /^measured pattern "(.*)" names no value of any stored result/.exec(m.reason)?.[1])).toEqual([
      'w[5]',
      'xs[3]',
      'runs[2].seconds',
      'table "t"[1].ms',
      'table "t"[0].s',
    ]);
  });
});

describe('the front matter\'s verify: section', () => {
  it('is read into patterns, each with the place it is written', () => {
    const doc = parse(['---', 'seed: 1', 'verify:', '  measured:', "    - '**.seconds'", '    - rbmSecondsPerIteration', '---', ''].join('\n'));
    expect(doc.file.messages).toEqual([]);
    expect(doc.frontMatter.verify?.measured.map((p) => [p.source, p.place])).toEqual([
      ['**.seconds', { line: 5, column: 8 }],
      ['rbmSecondsPerIteration', { line: 6, column: 7 }],
    ]);
    expect(doc.frontMatter.seed).toBe(1);
  });

  it('a malformed pattern is a bad-measured error at its line and column; the others are kept', () => {
    const doc = parse(['---', 'verify:', '  measured:', '    - "dbmTraining[].seconds"', "    - 'dbmTraining[x].seconds'", '    - fine.too', '---', ''].join('\n'));
    expect(doc.file.messages.map((m) => [m.ruleId, m.line, m.column, m.reason.split(': ')[0]])).toEqual([
      ['bad-measured', 5, 19, 'bad measured pattern "dbmTraining[x].seconds"'],
    ]);
    expect(doc.frontMatter.verify?.measured.map((p) => p.source)).toEqual(['dbmTraining[].seconds', 'fine.too']);
    markSeverity(doc.file, 'full');
    expect(doc.file.messages[0]!.fatal).toBe(true);
  });

  it('a verify: section of the wrong shape is bad-measured at its place', () => {
    const problems = (yaml: string[]) => parse(['---', ...yaml, '---', ''].join('\n')).file.messages.map((m) => [m.ruleId, m.line, m.column]);
    expect(problems(['verify: 3'])).toEqual([['bad-measured', 2, 9]]);
    expect(problems(['verify:', '  measure: [a]'])).toEqual([['bad-measured', 3, 3]]);
    expect(problems(['verify:', '  measured: { a: 1 }'])).toEqual([['bad-measured', 3, 13]]);
    expect(problems(['verify:', '  measured:', '    - a', '    - 3'])).toEqual([['bad-measured', 5, 7]]);
    expect(parse(['---', 'verify:', '  measured: [a, "b.c"]', '---', ''].join('\n')).frontMatter.verify?.measured.map((p) => p.source)).toEqual(['a', 'b.c']);
  });

  it('an unquoted pattern starting with * (a YAML alias) says to quote it, at its line', () => {
    const doc = parse(['---', 'seed: 1', 'verify:', '  measured:', '    - **.seconds', '---', ''].join('\n'));
    expect(doc.file.messages.map((m) => [m.ruleId, m.line, m.column])).toEqual([['bad-frontmatter', 5, 7]]);
    expect(doc.file.messages[0]!.reason).toContain("quote it, e.g. '**.seconds'");
  });
});

describe('measured patterns and the store', () => {
  let dir: string;
  const cells = [
    '```ts run id=train',
    'export const history = [{ loss: 0.5, seconds: 1.25 }];',
    '```',
    '',
    '```ts run id=speed',
    "import { table } from 'report:runtime';",
    "table('speed', [{ images: 10, 'ms per image': 3 }]);",
    '```',
    '',
  ];
  const withMeasured = (patterns: string[]) => docWithMeasured(patterns, cells);
  const docPath = () => path.join(dir, 'doc.md');

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'report-measured-'));
    await writeFile(docPath(), withMeasured([]));
    await build(
      {
        docPath: docPath(),
        projectRoot: dir,
        outDir: path.join(dir, 'build'),
        pdf: false,
        executor: fakeExecutor({
          train: () => ({ exports: { history: [{ loss: 0.5, seconds: 1.25 }] } }),
          speed: () => ({ exports: {}, outputs: [{ kind: 'table', name: 'speed', columns: ['images', 'ms per image'], rows: [[10, 3]] }] }),
        }),
      },
      nodeEffects({ stdout: silent }),
    );
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('adding them to the front matter changes no cell\'s key, and check finds every result fresh', async () => {
    const keys = async () => {
      const loaded = await loadDocument({ docPath: docPath(), projectRoot: dir, keyCache: false }, nodeEffects({ stdout: silent }));
      return [...loaded.keys].map(([id, key]) => [id, key.key]);
    };
    const without = await keys();
    await writeFile(docPath(), withMeasured(['**.seconds', 'speed:table "speed"[]["ms per image"]']));
    expect(await keys()).toEqual(without);
    const summary = await check({ docPath: docPath(), projectRoot: dir, typecheck: false }, nodeEffects({ stdout: silent }));
    expect(summary.fresh).toEqual(['train', 'speed']);
    expect(summary.file.messages).toEqual([]);
  });

  it('check: a pattern that names nothing stored is a measured-unmatched warning at its place', async () => {
    await writeFile(docPath(), withMeasured(['**.seconds', '**.secnods', 'train:table "speed"', 'nope:x', 'history[].loss']));
    const summary = await check({ docPath: docPath(), projectRoot: dir, typecheck: false }, nodeEffects({ stdout: silent }));
    expect(markSeverity(summary.file, summary.profile)).toBe(true);
    expect(summary.file.messages.map((m) => [m.ruleId, m.line, m.column, m.fatal, m.reason])).toEqual([
      ['measured-unmatched', 6, 8, false, 'measured pattern "**.secnods" names no value of any stored result (its exports and tables); fix the path or remove the pattern'],
      ['measured-unmatched', 7, 8, false, 'measured pattern "train:table "speed"" names no value of the stored result of cell "train" (its exports and tables); fix the path or remove the pattern'],
      ['measured-unmatched', 8, 8, false, 'measured pattern "nope:x": no cell has the id "nope" (cells: train, speed)'],
    ]);
    expect(summary.fresh).toEqual(['train', 'speed']);
  });
});
