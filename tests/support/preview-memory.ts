/**
 * Memory of one long-lived preview process over many rebuilds: two documents, each served
 * by its own preview in this process, edited in turn (prose edits, and every 25th edit a
 * cell's code, which re-runs the cell and highlights its new code), each edit waited for
 * until the new page arrives over server-sent events. The heap is measured after a full
 * garbage collection every 50 rebuilds.
 *
 *   node --expose-gc --import tsx tests/support/preview-memory.ts [rebuilds=500]
 *
 * prints one JSON object: { rebuilds, samples: [{ rebuilds, heapUsed, external, arrayBuffers, rss }], ms }.
 * Run by tests/engine/preview-memory.test.ts and bench/preview.ts.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { nodeEffects } from '../../src/engine/effects.ts';
import { startPreview, type Preview } from '../../src/engine/preview.ts';
import { fakeExecutor } from './fake-executor.ts';
import { openEvents, type EventReader } from './preview-client.ts';

export interface MemorySample {
  rebuilds: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
  rss: number;
}

const gc = (globalThis as { gc?: () => void }).gc;

function document(name: string, version: number, cellVersion: number): string {
  return `---
title: Memory ${name}
seed: 3
---

## Part ${name}

Edit ${version} of ${name}: $\\sum_{i=1}^{n} i = \\frac{n(n+1)}{2}$, the mean is \`{ts} mean.toFixed(3)\`
\`{claim} mean > 0\`, see @tbl-${name}-rows.

$$
\\int_0^1 x^{${version % 7}}\\,dx
$$
{#eq-${name}-int}

\`\`\`ts run id=${name}-data
import { table } from 'report:runtime';
export const xs: number[] = Array.from({ length: 50 }, (_, i) => i + ${cellVersion});
table('${name}-rows', xs.slice(0, 5).map((x) => ({ x })), { caption: 'Rows.' });
\`\`\`

\`\`\`ts run id=${name}-stats
import { xs } from 'cell:${name}-data';
export const mean: number = xs.reduce((a, b) => a + b, 0) / xs.length;
\`\`\`

As @eq-${name}-int shows, ${'words '.repeat(40)}

\`\`\`sh
npm run preview -- ${name}.md
\`\`\`
`;
}

export async function measurePreviewMemory(rebuilds = 500, log: (line: string) => void = () => {}): Promise<{ rebuilds: number; samples: MemorySample[]; ms: number }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'report-preview-memory-'));
  const docs = ['alpha', 'beta'];
  const cells = Object.fromEntries(
    docs.flatMap((name) => [
      [`${name}-data`, () => ({ exports: { xs: Array.from({ length: 50 }, (_, i) => i + 1) }, outputs: [{ kind: 'table' as const, name: `${name}-rows`, columns: ['x'], rows: [[1], [2]] }] })],
      [`${name}-stats`, (deps: Record<string, Record<string, unknown>>) => ({ exports: { mean: (deps[`${name}-data`]!.xs as number[]).reduce((a, b) => a + b, 0) / 50 } })],
    ]),
  );
  const quiet = { write: () => {}, isTTY: false };
  const previews: Preview[] = [];
  const readers: EventReader[] = [];
  const samples: MemorySample[] = [];
  const started = performance.now();
  try {
    await mkdir(dir, { recursive: true });
    for (const name of docs) {
      await writeFile(path.join(dir, `${name}.md`), document(name, 0, 0));
      const preview = await startPreview(
        { docPath: path.join(dir, `${name}.md`), projectRoot: dir, executor: fakeExecutor(cells), outDir: path.join(dir, 'build'), port: 0, debounceMs: 5 },
        nodeEffects({ stdout: quiet }),
      );
      await preview.idle();
      previews.push(preview);
      readers.push(await openEvents(preview.url));
    }
    const sample = (n: number): void => {
      for (let i = 0; i < 4; i++) gc?.();
      const m = process.memoryUsage();
      samples.push({ rebuilds: n, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss });
      log(`${n} rebuilds: heap ${(m.heapUsed / 2 ** 20).toFixed(1)} MiB, external ${(m.external / 2 ** 20).toFixed(1)} MiB, rss ${(m.rss / 2 ** 20).toFixed(0)} MiB`);
    };
    const cellVersion = [0, 0];
    for (let n = 1; n <= rebuilds; n++) {
      const which = n % 2;
      const name = docs[which]!;
      if (n % 25 === 0) cellVersion[which]!++;
      const marker = `Edit ${n} of ${name}`;
      await writeFile(path.join(dir, `${name}.md`), document(name, n, cellVersion[which]!));
      await readers[which]!.next((e) => e.event === 'page' && (e.data.body as string).includes(marker), 60_000);
      // Drop what the readers have kept: the test's own memory must not grow.
      for (const reader of readers) reader.forget();
      await previews[which]!.idle();
      if (n % 50 === 0) sample(n);
    }
  } finally {
    for (const reader of readers) reader.close();
    for (const preview of previews) await preview.close();
    await rm(dir, { recursive: true, force: true });
  }
  return { rebuilds, samples, ms: performance.now() - started };
}

// The entry point (a path with spaces or a symlink is compared as a URL, after realpath).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  if (gc === undefined) throw new Error('run with node --expose-gc');
  const result = await measurePreviewMemory(Number(process.argv[2] ?? 500), (line) => process.stderr.write(`${line}\n`));
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
