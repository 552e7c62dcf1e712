/**
 * How problems are printed. The default is one line per problem,
 *
 *     report/report.md:25:1  stale-result  result of cell "data" is stale (…); run …
 *
 * which editors and terminals turn into links (the `file:line:col` form of compilers),
 * sorted by place, a multi-line message (a stack) folded onto its line; a problem that
 * does not fail the command ends with `(warning)`. `--format pretty` prints vfile-reporter's
 * grouped, coloured form instead.
 */
import type { VFile } from 'vfile';
import type { VFileMessage } from 'vfile-message';
import { reporter } from 'vfile-reporter';

export type ProblemFormat = 'lines' | 'pretty';
export const PROBLEM_FORMATS: readonly ProblemFormat[] = ['lines', 'pretty'];

/** The problems of `file` as text ('' when there are none); severities must be marked (severity.ts). */
export function formatProblems(file: VFile, format: ProblemFormat = 'lines'): string {
  if (file.messages.length === 0) return '';
  if (format === 'pretty') return `${reporter([file], { verbose: false })}\n`;
  const messages = [...file.messages].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
  const lines = messages.map((message) => problemLine(file.path || '<input>', message));
  const errors = messages.filter((m) => m.fatal).length;
  const warnings = messages.length - errors;
  const count = [errors > 0 ? plural(errors, 'error') : '', warnings > 0 ? plural(warnings, 'warning') : ''].filter(Boolean).join(', ');
  return `${lines.join('\n')}\n${count}\n`;
}

/** `file:line:col  rule-id  message` (the place is left out when the message has none). */
export function problemLine(path: string, message: VFileMessage): string {
  const place = message.line === undefined ? path : `${path}:${message.line}:${message.column ?? 1}`;
  const reason = message.reason.replace(/\s*\n\s*/g, ' ⏎ ').trim();
  return `${place}  ${message.ruleId ?? 'problem'}  ${reason}${message.fatal ? '' : ' (warning)'}`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
