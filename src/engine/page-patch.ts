/**
 * The preview's `page` events as edits of the page before: a prose edit changes a few
 * hundred bytes of a body of megabytes (the report's is 1.5 MB without its figures), so a
 * new page is sent as the text between the common start and the common end of the two
 * bodies, with the version it applies to. A page that connects, or whose body is not the
 * one the edit applies to, gets the whole body (preview.ts; the page's script asks again).
 *
 * Used by the server (preview.ts), by the page's script (html/preview-client.js, bundled
 * with this file) and by the tests' browser (tests/support/preview-client.ts).
 */

/** A whole page, or the edit that makes it from the page of version `base`. */
export type PageEvent =
  | { version: number; title: string; body: string }
  | { version: number; title: string; base: number; keep: [number, number]; text: string };

/**
 * The event that takes a page showing `previous` (version `base`) to `next`: an edit when it
 * is smaller than the whole body, else the whole body.
 */
export function pageEvent(next: { version: number; title: string; body: string }, previous?: { version: number; body: string }): PageEvent {
  if (previous === undefined) return next;
  const a = previous.body;
  const b = next.body;
  const limit = Math.min(a.length, b.length);
  let start = 0;
  while (start < limit && a.charCodeAt(start) === b.charCodeAt(start)) start++;
  let end = 0;
  while (end < limit - start && a.charCodeAt(a.length - 1 - end) === b.charCodeAt(b.length - 1 - end)) end++;
  const text = b.slice(start, b.length - end);
  if (text.length >= b.length / 2) return next;
  return { version: next.version, title: next.title, base: previous.version, keep: [start, end], text };
}

/**
 * The body an event gives a page whose body is `body` at version `version`; undefined when
 * the event is an edit of another version (the page must ask for the whole body).
 */
export function applyPageEvent(event: PageEvent, current: { version: number; body: string } | undefined): string | undefined {
  if ('body' in event) return event.body;
  if (current === undefined || current.version !== event.base) return undefined;
  const [start, end] = event.keep;
  return current.body.slice(0, start) + event.text + current.body.slice(current.body.length - end);
}
