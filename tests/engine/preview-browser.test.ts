/**
 * The preview's page script in a real browser (playwright-core with the Chromium that
 * prints the PDF: a system one, or @sparticuz/chromium's): a save morphs the page in place
 * (no reload, the scroll position kept), problems appear after the block at their line,
 * a running cell shows its progress in place with a stop button that stops it.
 * Skipped when no browser can be found or launched.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeEffects } from '../../src/engine/effects.ts';
import { findBrowser, launchArgs } from '../../src/engine/pdf.ts';
import { startPreview, type Preview } from '../../src/engine/preview.ts';
import { fakeExecutor, type FakeCellContext } from '../support/fake-executor.ts';

let browser: Browser | undefined;
let skip = '';

beforeAll(async () => {
  try {
    const found = await findBrowser({ env: process.env });
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: found.path, args: await launchArgs(found), timeout: 60_000 });
  } catch (error) {
    skip = `no browser: ${(error as Error).message.split('\n')[0]}`;
  }
});
afterAll(async () => {
  await browser?.close();
});

const filler = Array.from({ length: 60 }, (_, i) => `Filler paragraph ${i + 1}, long enough to make the page scroll a good way down.`).join('\n\n');

const DOC = (top: string, extra = '') => `---
title: Browser
seed: 1
---

## Top

${top}

\`\`\`ts run id=pic
export const picValue: number = 2;
\`\`\`

${filler}

## Bottom

The last paragraph mentions @fig-missing.

\`\`\`ts run id=slow
export const slowValue: number = 1;
\`\`\`
${extra}`;

const pic = () => ({
  exports: { picValue: 2 },
  outputs: [{ kind: 'figure' as const, name: 'pic', ext: 'svg' as const, data: new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="40" height="20" fill="teal"/></svg>') }],
});

function slowCell() {
  let runs = 0;
  return {
    runs: () => runs,
    impl: async (_deps: unknown, context: FakeCellContext) => {
      runs++;
      for (let step = 1; !context.signal.aborted; step++) {
        context.progress({ step, total: 500, label: 'epoch', metrics: { loss: 1 / step } });
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error('stopped');
    },
  };
}

describe('the preview in a browser', () => {
  it('morphs the page on save without reloading or scrolling, places problems, shows progress and stops a cell', async (context) => {
    if (browser === undefined) return context.skip(skip);
    const dir = await mkdtemp(path.join(os.tmpdir(), 'report-preview-browser-'));
    let preview: Preview | undefined;
    let page: Page | undefined;
    try {
      await writeFile(path.join(dir, 'doc.md'), DOC('The first version.'));
      const slow = slowCell();
      preview = await startPreview(
        { docPath: path.join(dir, 'doc.md'), projectRoot: dir, executor: fakeExecutor({ slow: slow.impl, pic }), outDir: path.join(dir, 'build'), port: 0, debounceMs: 5 },
        nodeEffects({ stdout: { write: () => {}, isTTY: false } }),
      );
      page = await browser.newPage({ viewport: { width: 900, height: 600 } });
      await page.goto(preview.url);

      // The figure is linked by URL and loads from the preview.
      const image = page.locator('#cell-pic img');
      await expect.poll(() => image.evaluate((img) => (img as unknown as { complete: boolean; naturalWidth: number }).complete && (img as unknown as { naturalWidth: number }).naturalWidth), { timeout: 30_000 }).toBe(40);
      expect(await image.getAttribute('src')).toMatch(/^\/__preview\/figures\/[0-9a-f]{64}\.svg$/);
      await page.evaluate("window.figureElement = document.querySelector('#cell-pic img')");

      // The running cell: progress in its section, with a stop button.
      const status = page.locator('#cell-slow [data-cell-status="slow"]');
      await expect.poll(() => status.textContent(), { timeout: 30_000 }).toMatch(/running.*epoch \d+\/500.*loss/);
      expect(await status.locator('progress').count()).toBe(1);

      // The problem is shown right after the paragraph at its line.
      const problem = page.locator('[data-preview="problem"]', { hasText: 'unknown-ref' });
      await expect.poll(() => problem.count(), { timeout: 20_000 }).toBe(1);
      expect(await problem.textContent()).toContain('unknown-ref');
      expect(await problem.evaluate((box) => box.previousElementSibling?.textContent ?? '')).toContain('The last paragraph mentions');

      // Stop it: the button stops the cell, which then offers Run.
      await status.locator('button.preview-stop').click();
      await expect.poll(() => page!.locator('#cell-slow [data-cell-status="slow"]').textContent(), { timeout: 20_000 }).toMatch(/stopped/);
      expect(await page.locator('#cell-slow button.preview-run').count()).toBe(1);
      expect(slow.runs()).toBe(1);

      // Scroll down, save an edit at the top: the text changes in place.
      // (Expressions as strings: they run in the page, whose globals the Node types do not know.)
      await page.evaluate("window.marker = 'same page'; window.scrollTo(0, 1500)");
      const scrollY = (): Promise<number> => page!.evaluate('window.scrollY');
      const scrolled = await scrollY();
      expect(scrolled).toBeGreaterThan(1000);
      await writeFile(path.join(dir, 'doc.md'), DOC('The second version.'));
      await expect.poll(() => page!.locator('main').textContent(), { timeout: 20_000 }).toContain('The second version.');
      expect(await page.evaluate('window.marker')).toBe('same page'); // no reload
      expect(await scrollY()).toBe(scrolled);
      // The preview's additions survive the morph.
      expect(await page.locator('[data-preview="problem"]', { hasText: 'unknown-ref' }).count()).toBe(1);
      // (The stopped cell's problem is shown in its cell.)
      expect(await page.locator('#cell-slow [data-preview="problem"]').textContent()).toContain('stopped from the preview');
      expect(await page.locator('.preview-pill').count()).toBe(1);
      expect(await page.locator('main').textContent()).not.toContain('The first version.');
      // The figure's element was kept by the morph, not replaced (nor its image fetched again).
      expect(await page.evaluate("window.figureElement === document.querySelector('#cell-pic img') && window.figureElement.naturalWidth")).toBe(40);
    } finally {
      await page?.close();
      await preview?.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
