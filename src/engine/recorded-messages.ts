/**
 * Messages as data, so that a cache (page-cache.ts, the parse cache in document.ts) can give
 * the messages of the work it saves again, at the same places.
 */
import type { VFile } from 'vfile';

/** A message as data. */
export interface RecordedMessage {
  reason: string;
  ruleId?: string;
  source?: string;
  fatal?: boolean | null;
  start?: { line: number; column: number };
  end?: { line: number; column: number };
}

/** The messages `file` got from index `from` on, as data. */
export function recordMessages(file: VFile, from: number): RecordedMessage[] {
  return file.messages.slice(from).map((m) => ({
    reason: m.reason,
    ...(m.ruleId ? { ruleId: m.ruleId } : {}),
    ...(m.source ? { source: m.source } : {}),
    fatal: m.fatal ?? null,
    ...(m.place && 'start' in m.place ? { start: m.place.start, end: m.place.end } : m.place ? { start: { line: m.place.line, column: m.place.column } } : {}),
  }));
}

/** Gives the recorded messages to `file` again. */
export function replayMessages(file: VFile, messages: RecordedMessage[]): void {
  for (const m of messages) {
    const place = m.start === undefined ? undefined : m.end === undefined ? m.start : { start: m.start, end: m.end };
    const message = file.message(m.reason, { ...(place ? { place } : {}), ...(m.ruleId ? { ruleId: m.ruleId } : {}), ...(m.source ? { source: m.source } : {}) });
    message.fatal = m.fatal ?? undefined;
  }
}

