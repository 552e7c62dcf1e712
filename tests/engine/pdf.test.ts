import { mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VFile } from 'vfile';
import { parseDocument } from '../../src/engine/parse.ts';
import { findBrowser, printPdf } from '../../src/engine/pdf.ts';
import { weave } from '../../src/engine/weave.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'pdf-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('findBrowser', () => {
  it('prefers the flag, then $REPORT_BROWSER, then $CHROME_PATH', async () => {
    // Three different executables given at once: each source must win over the later ones.
    const fakes = await Promise.all(
      ['flag-chrome', 'report-chrome', 'chrome-path'].map(async (name) => {
        const file = path.join(dir, name);
        await writeFile(file, '#!/bin/sh\n');
        await chmod(file, 0o755);
        return file;
      }),
    );
    const [flag, reportBrowser, chromePath] = fakes as [string, string, string];
    const env = { REPORT_BROWSER: reportBrowser, CHROME_PATH: chromePath };
    expect(await findBrowser({ flag, env })).toEqual({ path: flag, source: 'flag' });
    expect(await findBrowser({ env })).toEqual({ path: reportBrowser, source: 'env' });
    expect(await findBrowser({ env: { CHROME_PATH: chromePath } })).toEqual({ path: chromePath, source: 'env' });
  });

  it('finds a chromium on PATH', async () => {
    const bin = path.join(dir, 'bin');
    await import('node:fs/promises').then((fs) => fs.mkdir(bin, { recursive: true }));
    const chromium = path.join(bin, 'chromium');
    await writeFile(chromium, '#!/bin/sh\n');
    await chmod(chromium, 0o755);
    const found = await findBrowser({ env: { PATH: bin } });
    expect(found).toEqual({ path: chromium, source: 'system' });
  });

  it('rejects a flag that is not an executable, naming it', async () => {
    await expect(findBrowser({ flag: path.join(dir, 'nope'), env: {} })).rejects.toThrow(/nope: not an executable/);
  });
});

describe('printPdf', () => {
  it('prints a small HTML page with KaTeX-like text to an A4 PDF', async () => {
    const html = path.join(dir, 'page.html');
    const pdf = path.join(dir, 'page.pdf');
    await writeFile(html, '<!doctype html><html><body><h1>Report</h1><p>E = mc²</p></body></html>');
    const found = await findBrowser({ env: { PATH: '/nonexistent' } });
    const outcome = await printPdf(html, pdf, { browserPath: found.path });
    const bytes = await readFile(pdf);
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('%PDF');
    expect(bytes.length).toBeGreaterThan(500);
    expect(outcome.browser).toContain(found.path);
    expect(outcome.ms).toBeGreaterThan(0);
  }, 120_000);

  it('prints a woven report with KaTeX math, figures and tables', async () => {
    const input = path.resolve(import.meta.dirname, '../fixtures/full/input.md');
    const doc = parseDocument(new VFile({ path: input, value: await readFile(input, 'utf8') }));
    const html = path.join(dir, 'report.html');
    const pdf = path.join(dir, 'report.pdf');
    await writeFile(html, await weave(doc, new Map(), { mode: 'check' }));
    const found = await findBrowser({ env: { PATH: '/nonexistent' } });
    await printPdf(html, pdf, { browserPath: found.path });
    const bytes = await readFile(pdf);
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('%PDF');
    // KaTeX's fonts were loaded and embedded.
    expect(bytes.toString('latin1')).toMatch(/KaTeX/);
  }, 120_000);
});
