/**
 * What keeps the Markdown parser and every stage after it from hanging or overflowing the
 * stack on hostile input (fuzzed, generated or broken documents). micromark is quadratic in
 * the number of unmatched delimiters of one block (thousands of `[`, `*`, `<`, backticks
 * take seconds to minutes), and the stages after it (unist-util-visit, mdast-util-to-hast,
 * hast-util-to-html, structuredClone) recurse once per level of nesting.
 *
 * 1. Before parsing, `guardText` finds blocks (runs of lines between blank lines) holding
 *    more delimiters of one kind than any real document does, and nesting markers (block
 *    quotes, list markers) deeper than {@link MAX_MARKERS}. Those characters are replaced by
 *    look-alikes of the same UTF-16 length (so every position stays right) and reported.
 * 2. After parsing, `pruneDeepNodes` cuts the tree at {@link MAX_DEPTH} levels (iteratively).
 *
 * Both report `document-too-deep` at the first offending line and column; the document is
 * then not run (see DOCUMENT_RULES in document.ts).
 */
import type { Node, Parent } from 'unist';
import type { VFile } from 'vfile';

/** Delimiters of one kind allowed in one block (paragraph, list, …) before it is defused. */
export const MAX_DELIMITERS = 600;
/** Block-quote or list markers allowed at the start of one line. */
export const MAX_MARKERS = 32;
/** Levels of nesting the tree may have. */
export const MAX_DEPTH = 200;

/** Each delimiter class and its look-alike replacements (same length in UTF-16). */
const CLASSES: { name: string; chars: string; lookalike: Record<string, string> }[] = [
  { name: 'brackets', chars: '[]', lookalike: { '[': '［', ']': '］' } },
  { name: 'asterisks or underscores', chars: '*_', lookalike: { '*': '∗', _: '＿' } },
  { name: 'angle brackets', chars: '<', lookalike: { '<': '‹' } },
  { name: 'backticks', chars: '`', lookalike: { '`': 'ˋ' } },
  { name: 'tildes', chars: '~', lookalike: { '~': '～' } },
  { name: 'dollar signs', chars: '$', lookalike: { $: '＄' } },
  { name: 'exclamation marks', chars: '!', lookalike: { '!': 'ǃ' } },
];

export interface Defused {
  text: string;
  problems: { line: number; column: number; reason: string }[];
}

/** Defuses what would make the parser hang or nest without bound; see the module comment. */
export function guardText(text: string): Defused {
  const problems: Defused['problems'] = [];
  const lines = text.split('\n');
  const out = lines.slice();
  let blockStart = 0;
  const flush = (end: number): void => {
    if (end <= blockStart) return;
    // A block of at most MAX_DELIMITERS characters cannot hold more delimiters than that (most do not).
    let length = 0;
    for (let i = blockStart; i < end && length <= MAX_DELIMITERS; i++) length += out[i]!.length;
    if (length <= MAX_DELIMITERS) {
      blockStart = end + 1;
      return;
    }
    for (const cls of CLASSES) {
      let count = 0;
      for (let i = blockStart; i < end && count <= MAX_DELIMITERS; i++) {
        const line = out[i]!;
        for (let c = 0; c < line.length; c++) if (cls.chars.includes(line[c]!)) count++;
      }
      if (count <= MAX_DELIMITERS) continue;
      let first: { line: number; column: number } | undefined;
      for (let i = blockStart; i < end; i++) {
        const line = out[i]!;
        let replaced = '';
        for (let c = 0; c < line.length; c++) {
          const ch = line[c]!;
          const swap = cls.lookalike[ch];
          if (swap !== undefined) {
            first ??= { line: i + 1, column: c + 1 };
            replaced += swap;
          } else {
            replaced += ch;
          }
        }
        out[i] = replaced;
      }
      const total = countIn(lines.slice(blockStart, end), cls.chars);
      problems.push({
        ...first!,
        reason: `this block has ${total} ${cls.name}, more than the ${MAX_DELIMITERS} the parser is allowed to match; they are shown as text. Split the block or escape them`,
      });
    }
    blockStart = end + 1;
  };
  let fence: string | undefined;
  // The YAML front matter (`---` on the first line to the next `---`) is not Markdown: a
  // fence-like line in it opens no code block, so it must not hide what follows from the count.
  const frontMatterEnd = lines[0]?.trimEnd() === '---' ? lines.findIndex((line, i) => i > 0 && line.trimEnd() === '---') : -1;
  if (frontMatterEnd > 0) blockStart = frontMatterEnd + 1;
  for (let i = frontMatterEnd > 0 ? frontMatterEnd + 1 : 0; i < lines.length; i++) {
    // Code fences hold code, not Markdown: nothing there is counted or defused (a cell's
    // code nested too deeply is parse.ts's concern).
    const fenceMatch = /^[ \t>]*(`{3,}|~{3,})/.exec(out[i]!);
    if (fence === undefined && fenceMatch !== null) {
      flush(i);
      fence = fenceMatch[1]!;
      continue;
    }
    if (fence !== undefined) {
      const closing = out[i]!.replace(/^[ \t>]*/, '').trimEnd();
      if (closing.length >= fence.length && closing[0] === fence[0] && [...closing].every((c) => c === fence![0])) fence = undefined;
      blockStart = i + 1;
      continue;
    }
    const markers = /^(?:[ \t]*(?:>|[-+*](?=[ \t])|\d{1,9}[.)](?=[ \t])))+/.exec(out[i]!);
    if (markers !== null) {
      const prefix = markers[0];
      const count = (prefix.match(/>|[-+*](?=[ \t])|\d{1,9}[.)](?=[ \t])/g) ?? []).length;
      if (count > MAX_MARKERS) {
        // Keep the first MAX_MARKERS markers; the rest become look-alike text.
        let seen = 0;
        let replaced = '';
        for (let c = 0; c < prefix.length; c++) {
          const ch = prefix[c]!;
          const isMarker = ch === '>' || ('-+*'.includes(ch) && /[ \t]/.test(prefix[c + 1] ?? '')) || ('.)'.includes(ch) && /\d/.test(prefix[c - 1] ?? ''));
          if (isMarker) seen++;
          replaced += isMarker && seen > MAX_MARKERS ? ({ '>': '›', '-': '‐', '+': '＋', '*': '∗', '.': '․', ')': '）' } as Record<string, string>)[ch]! : ch;
        }
        const column = nthMarkerColumn(prefix, MAX_MARKERS + 1);
        out[i] = replaced + out[i]!.slice(prefix.length);
        problems.push({ line: i + 1, column, reason: `${count} levels of block quotes or lists on one line, more than ${MAX_MARKERS}; the deeper markers are shown as text` });
      }
    }
    if (out[i]!.trim() === '') flush(i);
  }
  flush(lines.length);
  problems.sort((a, b) => a.line - b.line || a.column - b.column);
  return { text: out.join('\n'), problems };
}

function countIn(lines: string[], chars: string): number {
  let n = 0;
  for (const line of lines) for (let c = 0; c < line.length; c++) if (chars.includes(line[c]!)) n++;
  return n;
}

function nthMarkerColumn(prefix: string, n: number): number {
  const re = />|[-+*](?=[ \t])|\d{1,9}[.)](?=[ \t])/g;
  let match: RegExpExecArray | null;
  let seen = 0;
  while ((match = re.exec(prefix)) !== null) {
    seen++;
    if (seen === n) return match.index + 1;
  }
  return 1;
}

/**
 * Cuts every node deeper than `MAX_DEPTH` (its children are dropped), without recursion;
 * reports the first cut as `document-too-deep`. Returns true when something was cut.
 */
export function pruneDeepNodes(tree: Node, file: VFile): boolean {
  const stack: { node: Node; depth: number }[] = [{ node: tree, depth: 0 }];
  let reported = false;
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    const children = (node as Parent).children;
    if (!Array.isArray(children)) continue;
    if (depth >= MAX_DEPTH) {
      if (!reported) {
        reported = true;
        file.message(`the document nests more than ${MAX_DEPTH} levels deep here (lists, quotes, emphasis or links inside each other); the deeper content is left out`, {
          place: node.position?.start ?? { line: 1, column: 1 },
          ruleId: 'document-too-deep',
          source: 'report',
        });
      }
      (node as Parent).children = [];
      continue;
    }
    for (const child of children) stack.push({ node: child, depth: depth + 1 });
  }
  return reported;
}
