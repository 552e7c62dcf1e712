/**
 * No state leaks between rebuilds of the long-lived preview: two documents, each served by
 * its own preview in one process, 500 rebuilds in turn (prose edits, and every 25th a cell's
 * code, which re-runs the cell and highlights the new code), each waited for until its page
 * arrives over server-sent events. The heap after a full GC must stay flat: a page, a parsed
 * document or a VFile kept per rebuild would add megabytes (a page is ~0.3 MB with the KaTeX
 * fonts inlined). Runs tests/support/preview-memory.ts in a child `node --expose-gc`.
 */
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { MemorySample } from '../support/preview-memory.ts';

const MiB = 2 ** 20;
const REBUILDS = 500;

describe('preview memory', () => {
  it(`stays flat over ${REBUILDS} rebuilds of two documents (heap after GC)`, async () => {
    const root = path.resolve(import.meta.dirname, '../..');
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const stdout = await new Promise<string>((resolvePromise, reject) => {
      execFile(
        process.execPath,
        ['--expose-gc', '--import', tsx, path.join(root, 'tests', 'support', 'preview-memory.ts'), String(REBUILDS)],
        { cwd: root, maxBuffer: 1 << 24 },
        (error, out, err) => (error ? reject(new Error(`${error.message}\n${err}`)) : resolvePromise(out)),
      );
    });
    const { samples } = JSON.parse(stdout) as { samples: MemorySample[] };
    expect(samples.map((s) => s.rebuilds)).toEqual(Array.from({ length: REBUILDS / 50 }, (_, i) => (i + 1) * 50));
    // After 50 rebuilds everything a long-lived process keeps warm is loaded (parsers,
    // KaTeX, shiki once a cell's code changed): from there on, the heap must not grow.
    const warm = samples[0]!.heapUsed;
    const growth = Math.max(...samples.slice(1).map((s) => s.heapUsed)) - warm;
    const report = samples.map((s) => `${s.rebuilds}: ${(s.heapUsed / MiB).toFixed(1)} MiB`).join(', ');
    expect(growth, `heap after GC: ${report}`).toBeLessThan(8 * MiB);
    // Nor anything off the heap (buffers of pages or payloads).
    const external = samples.at(-1)!.external - samples[0]!.external;
    expect(external, `external memory grew by ${(external / MiB).toFixed(1)} MiB`).toBeLessThan(8 * MiB);
  }, 1_800_000);
});
