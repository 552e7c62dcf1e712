/**
 * A seeded fuzzer of the document side: mutations of real documents (the fixtures, the
 * reproducers, windows of the report) run through parse → graph → weave (check mode, no
 * cell runs). It asserts what the engine promises for any input: no uncaught exception,
 * no document over {@link MAX_MS}, every message at a line and column.
 *
 * `fuzz({ count, seed })` is used by tests/fuzz/fuzz.test.ts (2 000 documents in `npm test`)
 * and by `npm run fuzz` (tests/fuzz/run.ts, 100 000 by default).
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { VFile } from 'vfile';
import { buildGraph } from '../../src/engine/graph.ts';
import { parseDocument } from '../../src/engine/parse.ts';
import { weave } from '../../src/engine/weave.ts';

/**
 * The most CPU time one document may take (a hang detector, not a benchmark). CPU time, not
 * wall time: on a machine shared with training runs, wall time says little.
 */
export const MAX_MS = 5000;

const root = path.resolve(import.meta.dirname, '..', '..');

/** Seed documents: every fixture, and 40-line windows of the report. */
export function seedDocuments(): string[] {
  const docs: string[] = [];
  const fixtures = path.join(root, 'tests', 'fixtures');
  for (const name of readdirSync(fixtures)) {
    const file = path.join(fixtures, name, 'input.md');
    if (existsSync(file)) docs.push(readFileSync(file, 'utf8'));
  }
  const report = path.join(root, 'report', 'report.md');
  if (existsSync(report)) {
    const lines = readFileSync(report, 'utf8').split('\n');
    for (let start = 0; start < lines.length; start += 40) docs.push(lines.slice(start, start + 40).join('\n'));
  }
  return docs;
}

/** mulberry32: a small seeded PRNG. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TOKENS = [
  '`', '```', '~~~', '$', '$$', '{', '}', '{ts} x', '`{ts} a.b`', '`{claim} x > 1`', '---', '***', '*', '_', '[', ']', '(', ')',
  '<', '>', '!', '#', '|', '\\', '@fig-x', '@tbl-', '@eq-a', '{#eq-a}', '[@key]', '```ts run id=z', '```ts run id=a timeout=x',
  "import { a } from 'cell:a';", '\u0000', '\uFFFD', 'é', '😀', '\u202E', '\t', '\r', '\\frac{', '$\\frac{1}{$', '<div>', '- [ ] ',
  '1. ', '> ', '    ', '|---|', 'seed: x', 'title: "', '`{ts} (((1)))`',
];

type Mutation = (lines: string[], rand: () => number) => void;
const pick = <T,>(xs: readonly T[], rand: () => number): T => xs[Math.floor(rand() * xs.length)]!;
const at = (lines: string[], rand: () => number): number => Math.floor(rand() * (lines.length + 1));

const MUTATIONS: Mutation[] = [
  (l, r) => void l.splice(at(l, r), 1), // delete a line
  (l, r) => {
    const i = Math.min(at(l, r), l.length - 1);
    if (i >= 0) l.splice(i, 0, l[i]!); // duplicate a line
  },
  (l, r) => {
    const i = Math.min(at(l, r), l.length - 1);
    if (i < 0) return;
    const line = l[i]!;
    const c = Math.floor(r() * (line.length + 1));
    l[i] = line.slice(0, c) + pick(TOKENS, r) + line.slice(c); // a stray token
  },
  (l, r) => void l.splice(at(l, r), 0, pick(TOKENS, r)), // a stray line
  (l, r) => {
    const token = pick(TOKENS, r);
    const bytes = r() < 0.3 ? 60_000 : 6_000;
    l.splice(at(l, r), 0, token.repeat(1 + Math.floor((r() * bytes) / token.length))); // a very long line (up to 60 KB)
  },
  (l, r) => {
    const depth = 1 + Math.floor(r() * 3000);
    const kind = pick(['> ', '- ', '* ', '1. ', '[', '(', '*', '_', '**', '![', '<a ', '`', '$', '{'], r);
    l.splice(at(l, r), 0, kind.repeat(depth) + 'x' + (r() < 0.5 ? pick([']', ')', '*', '_', '`', '$', '}'], r).repeat(depth) : ''));
  }, // deep nesting
  (l, r) => {
    const i = at(l, r);
    const j = at(l, r);
    if (i < l.length && j < l.length) [l[i], l[j]] = [l[j]!, l[i]!]; // swap two lines
  },
  (l, r) => void l.splice(Math.floor(r() * l.length)), // truncate
  (l, r) => void l.splice(0, 0, '---', pick(['title: [x', 'seed: 1.5', 'profile: Q!', 'a: b: c', 'number-sections: 2', '', 'verify: { measured: ["**.", "a[x]", 3, "t:table \\"x"] }', 'verify: [1]', 'verify: { measured: **.x }'], r), '---'), // front matter
  (l, r) => {
    const i = Math.min(at(l, r), l.length - 1);
    if (i >= 0) l[i] = [...l[i]!].reverse().join(''); // scramble a line
  },
];

/** One mutated document from a seed document. */
export function mutate(doc: string, rand: () => number): string {
  const lines = doc.split('\n');
  const n = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < n; i++) pick(MUTATIONS, rand)(lines, rand);
  return lines.join('\n');
}

export interface FuzzFailure {
  index: number;
  reason: string;
  doc: string;
}

/** The first message of `file` without a line and column, described; undefined when all have one. */
export function unpositionedMessage(file: VFile): string | undefined {
  const message = file.messages.find((m) => m.line == null || m.column == null);
  return message === undefined ? undefined : `message without line:col: ${message.ruleId} ${message.reason}`;
}

/** Parses, graphs and weaves (check mode) one document; returns why it broke a promise. */
export async function tryDocument(text: string): Promise<string | undefined> {
  const started = process.cpuUsage();
  try {
    const file = new VFile({ path: 'fuzz.md', value: text });
    const doc = parseDocument(file);
    buildGraph(doc);
    await weave(doc, new Map(), { mode: 'check', highlight: false });
    const unpositioned = unpositionedMessage(file);
    if (unpositioned !== undefined) return unpositioned;
  } catch (error) {
    return `uncaught ${(error as Error).stack ?? String(error)}`.slice(0, 2000);
  }
  const used = process.cpuUsage(started);
  const ms = (used.user + used.system) / 1000;
  if (ms > MAX_MS) return `took ${Math.round(ms)} ms of CPU (over ${MAX_MS})`;
  return undefined;
}

/** Runs `count` mutated documents from `seed`; returns the failures (at most `maxFailures`). */
export async function fuzz(options: { count: number; seed: number; maxFailures?: number; onProgress?: (done: number) => void }): Promise<FuzzFailure[]> {
  const seeds = seedDocuments();
  const rand = prng(options.seed);
  const failures: FuzzFailure[] = [];
  for (let index = 0; index < options.count; index++) {
    const doc = mutate(pick(seeds, rand), rand);
    const reason = await tryDocument(doc);
    if (reason !== undefined) {
      failures.push({ index, reason, doc });
      if (failures.length >= (options.maxFailures ?? 10)) break;
    }
    if (index % 1000 === 999) options.onProgress?.(index + 1);
  }
  return failures;
}
