/**
 * Preview on the real report (`npm run bench -- --only preview`, or `npx tsx
 * bench/preview-report.ts [--edits N] [--cpu-prof <file.cpuprofile>]`): the round trip of a
 * one-word prose edit in `npm run preview` on report/report.md — 69 cells, 290 KB of
 * Markdown, 73 MB of stored results — from the save to the `page` event that carries the new
 * text, as bench/preview.ts times it on the 20-cell document.
 *
 * The real report is never written: the bench works on a copy. A cell's key hashes its
 * code, its options and the project files it bundles by their paths relative to the project
 * root, not the document's path, so the copy must sit one folder below the project root,
 * beside `src/`, with the report's `lib/` reached through a symbolic link (esbuild follows
 * it to `report/lib/…`, the same paths): `<root>/.bench-report/report.md`, its
 * `references.bib` and `lib -> ../report/lib`. Its results are a copy of report/results in
 * the OS temp folder (the preview claims and cleans its store), its page goes to that
 * folder too. Every cell must be fresh (asserted): nothing runs.
 */
import { cp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import inspector from 'node:inspector/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { childProcessExecutor } from '../src/engine/child-launcher.ts';
import { nodeEffects } from '../src/engine/effects.ts';
import { startPreview } from '../src/engine/preview.ts';
import { openEvents } from '../tests/support/preview-client.ts';
import type { BenchRow } from './engine.ts';

/** The sentence the edits change one word of (in the report's "Data" section). */
const ANCHOR = 'All experiments use MNIST:';

/**
 * A browser's stand-in on its own thread (a browser is another process): it reads the
 * preview's events and tells when a page holding a marker arrived, as a wall-clock time
 * (ms since the epoch), read on arrival. A reader on the preview's own thread would see
 * the page only when the preview's event loop is free, after the writing a build does once
 * the page is out.
 */
function browserThread(baseUrl: string): { arrival(marker: string): Promise<number>; close(): Promise<number> } {
  const worker = new Worker(
    `const { workerData, parentPort } = require('node:worker_threads');
    const http = require('node:http');
    let wanted = [];
    parentPort.on('message', (marker) => wanted.push(marker));
    http.get(new URL('__preview/events', workerData), (res) => {
      res.setEncoding('utf8');
      let buffer = '';
      let current = { version: -1, body: '' };
      res.on('data', (chunk) => {
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\\n\\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (!frame.startsWith('event: page\\n')) continue;
          const page = JSON.parse(frame.slice(frame.indexOf('data: ') + 6));
          // A page sent as an edit of the one before (src/engine/page-patch.ts), made whole as the page's script does.
          if (page.body === undefined && page.base === current.version) page.body = current.body.slice(0, page.keep[0]) + page.text + current.body.slice(current.body.length - page.keep[1]);
          if (page.body === undefined) throw new Error('an edit of a page this reader does not hold');
          current = { version: page.version, body: page.body };
          const body = page.body;
          const at = performance.timeOrigin + performance.now();
          for (const marker of wanted.filter((m) => body.includes(m))) parentPort.postMessage({ marker, at });
          wanted = wanted.filter((m) => !body.includes(m));
        }
      });
    });`,
    { eval: true, workerData: baseUrl },
  );
  const waiting = new Map<string, (at: number) => void>();
  worker.on('message', ({ marker, at }: { marker: string; at: number }) => waiting.get(marker)?.(at));
  return {
    arrival(marker) {
      worker.postMessage(marker);
      return new Promise((resolvePromise) => waiting.set(marker, resolvePromise));
    },
    close: () => worker.terminate(),
  };
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export async function benchPreviewReport(
  options: { projectRoot?: string; edits?: number; log?: (line: string) => void; cpuProfile?: string } = {},
): Promise<BenchRow[]> {
  const projectRoot = path.resolve(options.projectRoot ?? process.cwd());
  const log = options.log ?? (() => {});
  const real = path.join(projectRoot, 'report');
  const dir = path.join(projectRoot, '.bench-report');
  const scratch = path.join(os.tmpdir(), `report-bench-preview-${process.pid}`);
  await rm(dir, { recursive: true, force: true });
  await rm(scratch, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await mkdir(scratch, { recursive: true });
  const text = await readFile(path.join(real, 'report.md'), 'utf8');
  if (!text.includes(ANCHOR)) throw new Error(`report/report.md no longer says "${ANCHOR}": choose another sentence for the bench's edits`);
  const docPath = path.join(dir, 'report.md');
  await writeFile(docPath, text);
  await cp(path.join(real, 'references.bib'), path.join(dir, 'references.bib'));
  await symlink(path.join('..', 'report', 'lib'), path.join(dir, 'lib'), 'dir');
  const resultsDir = path.join(scratch, 'results');
  await cp(path.join(real, 'results'), resultsDir, { recursive: true });

  const quiet = { write: () => {}, isTTY: false };
  const effects = nodeEffects({ stdout: quiet });
  const edits = options.edits ?? 21;
  const rows: BenchRow[] = [];
  const load = () => os.loadavg().map((l) => l.toFixed(2)).join(', ');
  const loadBefore = load();
  const preview = await startPreview(
    { docPath, projectRoot, resultsDir, executor: childProcessExecutor({}), outDir: path.join(scratch, 'build'), cacheDir: path.join(scratch, 'cache'), port: 0 },
    effects,
  );
  try {
    const t0 = performance.now();
    await preview.idle();
    const first = preview.state().last;
    // Every cell of the report (a fenced `ts run` block) must be fresh: the bench times prose edits only.
    const cells = (text.match(/^```+ *ts +run\b/gm) ?? []).length;
    if (first === undefined || first.ran !== 0 || first.fresh !== cells) throw new Error(`the copy's first build: ${JSON.stringify(first ?? preview.state().error)}; expected ${cells} fresh cells, none run`);
    log(`  preview (real report): first build ${(performance.now() - t0).toFixed(0)} ms`);
    const events = await openEvents(preview.url);
    await events.next((e) => e.event === 'page');
    events.forget();
    const browser = browserThread(preview.url);
    const wall: number[] = [];
    const cpu: number[] = [];
    const heap: number[] = [];
    // --cpu-prof <file>: a CPU profile of the edits only (not of the first build).
    const session = options.cpuProfile === undefined ? undefined : new inspector.Session();
    session?.connect();
    await session?.post('Profiler.enable');
    await session?.post('Profiler.start');
    for (let edit = 1; edit <= edits; edit++) {
      await new Promise((r) => setTimeout(r, 300)); // edits come one at a time, as a writer's do
      const marker = `All experiments (edit ${edit}) use MNIST:`;
      const cpu0 = process.cpuUsage();
      const start = performance.now();
      const arrived = browser.arrival(marker);
      await writeFile(docPath, text.replace(ANCHOR, marker));
      await events.next((e) => e.event === 'page' && (e.data.body as string).includes(marker), 120_000);
      wall.push((await arrived) - (performance.timeOrigin + start));
      const c = process.cpuUsage(cpu0);
      cpu.push((c.user + c.system) / 1000);
      if (!(await (await fetch(preview.url)).text()).includes(marker)) throw new Error('the page served is not the new one');
      await preview.idle();
      if ((preview.state().last?.ran ?? 0) !== 0) throw new Error(`a prose edit re-ran ${preview.state().last?.ran} cells`);
      events.forget();
      // With --expose-gc (`node --expose-gc --import tsx bench/preview-report.ts`), after a full GC.
      (globalThis as { gc?: () => void }).gc?.();
      heap.push(process.memoryUsage().heapUsed + process.memoryUsage().external);
      log(`  preview (real report): edit ${edit}: ${wall.at(-1)!.toFixed(0)} ms (CPU ${cpu.at(-1)!.toFixed(0)} ms), heap + external ${(heap.at(-1)! / 2 ** 20).toFixed(0)} MiB`);
    }
    if (session !== undefined) {
      const { profile } = await session.post('Profiler.stop');
      await writeFile(options.cpuProfile!, JSON.stringify(profile));
      session.disconnect();
    }
    wall.shift(); // the first edit warms what a long-lived process keeps warm
    cpu.shift();
    const sorted = [...wall].sort((a, b) => a - b);
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
    rows.push({
      name: `preview: prose edit, save → new page over SSE (real report, ${cells} cells)`,
      ms: median(wall),
      note:
        `median of ${wall.length} (min ${sorted[0]!.toFixed(0)}, max ${sorted.at(-1)!.toFixed(0)} ms); process CPU ${median(cpu).toFixed(0)} ms; ` +
        `heap + external after edit 1 / ${edits}${(globalThis as { gc?: unknown }).gc === undefined ? '' : ' (after GC)'}: ${mib(heap[0]!)} / ${mib(heap.at(-1)!)}; load average ${loadBefore} → ${load()}; target ≤ 300 ms`,
    });
    events.close();
    await browser.close();
  } finally {
    await preview.close();
    await rm(dir, { recursive: true, force: true });
    await rm(scratch, { recursive: true, force: true });
  }
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name: string): string | undefined => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
  const edits = arg('--edits');
  const json = process.argv.includes('--json');
  const rows = await benchPreviewReport({ edits: edits === undefined ? undefined : Number(edits), cpuProfile: arg('--cpu-prof'), log: (line) => (json ? console.error(line) : console.log(line)) });
  // --json: the rows on stdout for bench/run.ts, which runs this bench in a process of its own.
  if (json) console.log(JSON.stringify(rows));
  else for (const row of rows) console.log(`${row.name}: ${row.ms.toFixed(0)} ms  ${row.note ?? ''}`);
}
