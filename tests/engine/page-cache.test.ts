/**
 * A build in which nothing changed weaves nothing (page-cache.ts) and a document whose text
 * did not change is not parsed again (the parse cache in document.ts): the same page, the
 * same messages at the same places; anything the page is made from changing weaves again.
 */
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { build, type BuildOptions } from '../../src/engine/build.ts';
import { check } from '../../src/engine/check.ts';
import { nodeEffects } from '../../src/engine/effects.ts';
import { fakeExecutor } from '../support/fake-executor.ts';

let dir: string;
const silent = { write: () => {}, isTTY: false };

// At the quick profile a false claim is a warning: the build succeeds and keeps the message.
const DOC = (prose = 'Some prose.') => `---
title: Page
profile: quick
seed: 7
---

${prose} The total is \`{ts} total\`, and \`{claim} total === 6\`.

\`\`\`ts run id=a bogus=1
export const a = 2;
\`\`\`

\`\`\`ts run id=b
export const total: number = 5;
\`\`\`
`;

const effects = () => nodeEffects({ stdout: silent });

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'page-cache-'));
  await writeFile(path.join(dir, 'doc.md'), DOC());
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const options = (): BuildOptions => ({
  docPath: path.join(dir, 'doc.md'),
  projectRoot: dir,
  executor: fakeExecutor({ a: () => ({ exports: { a: 2 } }), b: () => ({ exports: { total: 5 } }) }),
  outDir: path.join(dir, 'build'),
  pdf: false,
  cacheDir: path.join(dir, 'cache'),
});
const messages = (file: { messages: { line?: number | null; column?: number | null; ruleId?: string | null; reason: string }[] }) =>
  file.messages.map((m) => `${m.line}:${m.column} ${m.ruleId} ${m.reason}`);

describe('page cache', () => {
  it('a build in which nothing changed neither weaves nor writes, and gives the same page and messages', async () => {
    const first = await build(options(), effects());
    // bad-option (a is not run) is fatal: fix it so the build succeeds with only the warning.
    expect(messages(first.file).some((m) => m.includes('bad-option'))).toBe(true);
    await writeFile(path.join(dir, 'doc.md'), DOC().replace(' bogus=1', ''));
    const good = await build(options(), effects());
    expect(good.upToDate).toBeUndefined();
    expect(good.ran).toEqual(['a']);
    const page = path.join(dir, 'build', 'doc.html');
    const written = await readFile(page, 'utf8');

    const again = await build(options(), effects());
    expect(again.ran).toEqual([]);
    expect(again.upToDate).toBe(true);
    expect(again.html).toBe(written);
    expect(messages(again.file)).toEqual(messages((await build({ ...options(), keyCache: false }, effects())).file));
    expect(messages(again.file).some((m) => /claim-false/.test(m))).toBe(true);
  });

  it('weaves again when the prose, the page on disk, the page record or the cache flag changes', async () => {
    await writeFile(path.join(dir, 'doc.md'), DOC().replace(' bogus=1', ''));
    await build(options(), effects());
    const page = path.join(dir, 'build', 'doc.html');

    await writeFile(path.join(dir, 'doc.md'), DOC('Other prose.').replace(' bogus=1', ''));
    const prose = await build(options(), effects());
    expect(prose.upToDate).toBeUndefined();
    expect(prose.html).toContain('Other prose.');
    expect((await build(options(), effects())).upToDate).toBe(true);

    await writeFile(page, 'tampered');
    const tampered = await build(options(), effects());
    expect(tampered.upToDate).toBeUndefined();
    expect(await readFile(page, 'utf8')).toContain('Other prose.');

    for (const name of await readdir(path.join(dir, 'cache'))) if (name.startsWith('page-')) await writeFile(path.join(dir, 'cache', name), '{');
    expect((await build(options(), effects())).upToDate).toBeUndefined();
    expect((await build({ ...options(), keyCache: false }, effects())).upToDate).toBeUndefined();
  });

  it('weaves again when a stored result the page shows changes (a re-run stores new metadata)', async () => {
    await writeFile(path.join(dir, 'doc.md'), DOC().replace(' bogus=1', ''));
    await build(options(), effects());
    const rerun = await build({ ...options(), rerun: ['b'] }, effects());
    expect(rerun.ran).toEqual(['b']);
    expect(rerun.upToDate).toBeUndefined();
    // The re-run's page is remembered with the re-run result: the next build finds it up to date.
    expect((await build(options(), effects())).upToDate).toBe(true);
  });
});

describe('parse cache', () => {
  it('gives the same document and the same parse messages without parsing again, and parses a changed text', async () => {
    await mkdir(path.join(dir, 'cache'), { recursive: true });
    const checkOptions = { docPath: path.join(dir, 'doc.md'), projectRoot: dir, cacheDir: path.join(dir, 'cache'), typecheck: false };
    const first = await check(checkOptions, effects());
    expect(messages(first.file).some((m) => m.includes('bad-option'))).toBe(true);
    const parseFile = (await readdir(path.join(dir, 'cache'))).find((n) => n.startsWith('parse-'))!;
    const before = await readFile(path.join(dir, 'cache', parseFile), 'utf8');
    const second = await check(checkOptions, effects());
    expect(messages(second.file)).toEqual(messages(first.file));
    expect(await readFile(path.join(dir, 'cache', parseFile), 'utf8')).toBe(before);

    await writeFile(path.join(dir, 'doc.md'), DOC().replace(' bogus=1', ''));
    const fixed = await check(checkOptions, effects());
    expect(messages(fixed.file).some((m) => m.includes('bad-option'))).toBe(false);
    expect(await readFile(path.join(dir, 'cache', parseFile), 'utf8')).not.toBe(before);
  });
});
