/**
 * The preview's page events as edits (page-patch.ts): the body between the common start and
 * end, applied only to the version it was made from; the whole body when an edit would not
 * be smaller.
 */
import { describe, expect, it } from 'vitest';
import { applyPageEvent, pageEvent } from '../../src/engine/page-patch.ts';

describe('page events as edits', () => {
  const before = { version: 3, title: 'T', body: `<h1>Title</h1>\n${'<p>unchanged paragraph</p>\n'.repeat(50)}<p>The word is old.</p>\n${'<p>tail</p>\n'.repeat(50)}` };

  it('sends a prose edit as the changed text, and the page that holds the version before makes the new body from it', () => {
    const next = { version: 4, title: 'T', body: before.body.replace('old', 'brand new') };
    const event = pageEvent(next, before);
    expect(event).not.toHaveProperty('body');
    expect(JSON.stringify(event).length).toBeLessThan(200);
    expect(applyPageEvent(event, before)).toBe(next.body);
  });

  it('makes any body back exactly: insertions, deletions, changes at either end, repeated text, surrogate pairs', () => {
    const bodies = [
      before.body,
      before.body + '<p>appended</p>',
      '<p>prepended</p>' + before.body,
      before.body.replace('<p>The word is old.</p>\n', ''),
      before.body.replaceAll('unchanged', 'changed'),
      before.body.replace('old', '😀 𝔘'),
      before.body.replace('old', '😁 𝔘'),
      'aaaa' + before.body + 'aaaa',
      '',
    ];
    for (const a of bodies) {
      for (const b of bodies) {
        const event = pageEvent({ version: 2, title: 't', body: b }, { version: 1, body: a });
        expect(applyPageEvent(JSON.parse(JSON.stringify(event)), { version: 1, body: a })).toBe(b);
      }
    }
  });

  it('sends the whole body when there is no page before or the edit would not be smaller; an edit of another version is refused', () => {
    expect(pageEvent(before)).toEqual(before);
    const rewritten = { version: 4, title: 'T', body: 'x'.repeat(before.body.length) };
    expect(pageEvent(rewritten, before)).toEqual(rewritten);
    const event = pageEvent({ ...before, version: 4, body: before.body.replace('old', 'new') }, before);
    expect(applyPageEvent(event, { version: 2, body: before.body })).toBeUndefined();
    expect(applyPageEvent(event, undefined)).toBeUndefined();
  });
});
