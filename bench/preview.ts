/**
 * Preview benchmark (`npm run bench -- --only preview`): the whole round trip of a prose
 * edit in `npm run preview` — the file is saved, the watcher sees it, the document is rebuilt
 * (nothing re-runs), and the new page arrives at a browser over server-sent events — on
 * bench/engine.ts's 20-cell document. Then the memory of one preview process over 500
 * rebuilds of two documents (tests/support/preview-memory.ts, in a child process with
 * --expose-gc: the heap after a full GC).
 *
 * Timed from just before the save to the `page` event that carries the new text: what the
 * page shows ≤ 300 ms after a save is the target. Process CPU time per round trip is given
 * beside it, since wall times on a loaded machine mostly measure the wait for a core.
 */
import { execFile } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { childProcessExecutor } from '../src/engine/child-launcher.ts';
import { nodeEffects } from '../src/engine/effects.ts';
import { startPreview } from '../src/engine/preview.ts';
import { openEvents } from '../tests/support/preview-client.ts';
import { CELLS, documentText, type BenchRow } from './engine.ts';

const EDITS = 21;

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

export async function benchPreview(options: { projectRoot?: string; memory?: boolean; rebuilds?: number } = {}): Promise<BenchRow[]> {
  const projectRoot = path.resolve(options.projectRoot ?? process.cwd());
  const dir = path.join(projectRoot, '.cache', 'bench-preview');
  await rm(dir, { recursive: true, force: true });
  await mkdir(path.join(dir, 'lib'), { recursive: true });
  await writeFile(path.join(dir, 'lib', 'helper.ts'), 'export function helper(x: number): number {\n  return x * 1;\n}\n');
  const docPath = path.join(dir, 'doc.md');
  await writeFile(docPath, documentText(1));

  const quiet = { write: () => {}, isTTY: false };
  const effects = nodeEffects({ stdout: quiet });
  const preview = await startPreview({ docPath, projectRoot, executor: childProcessExecutor({}), outDir: path.join(dir, 'build'), port: 0 }, effects);
  const rows: BenchRow[] = [];
  try {
    await preview.idle();
    const first = preview.state().last;
    if (first?.ran !== CELLS) throw new Error(`the first build ran ${first?.ran} cells, expected ${CELLS}`);
    const events = await openEvents(preview.url);
    await events.next((e) => e.event === 'page');
    const wall: number[] = [];
    const cpu: number[] = [];
    for (let version = 2; version < 2 + EDITS; version++) {
      await new Promise((r) => setTimeout(r, 150)); // the watcher settles; edits come one at a time, as a writer's do
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      await writeFile(docPath, documentText(version));
      const page = await events.next((e) => e.event === 'page' && (e.data.body as string).includes(`(prose version ${version})`), 60_000);
      wall.push(performance.now() - t0);
      const c = process.cpuUsage(cpu0);
      cpu.push((c.user + c.system) / 1000);
      if (!(await (await fetch(preview.url)).text()).includes(`(prose version ${version})`)) throw new Error('the page served is not the new one');
      await preview.idle();
      if ((preview.state().last?.ran ?? 0) !== 0) throw new Error(`a prose edit re-ran ${preview.state().last?.ran} cells`);
      events.forget();
      void page;
    }
    wall.shift(); // the first edit warms what a long-lived process keeps warm
    cpu.shift();
    const sorted = [...wall].sort((a, b) => a - b);
    rows.push({
      name: `preview: prose edit, save → new page over SSE (${CELLS}-cell document)`,
      ms: median(wall),
      note: `median of ${wall.length} (min ${sorted[0]!.toFixed(0)}, max ${sorted.at(-1)!.toFixed(0)} ms); process CPU ${median(cpu).toFixed(0)} ms; target ≤ 300 ms`,
    });
    events.close();
  } finally {
    await preview.close();
  }

  if (options.memory !== false) {
    const rebuilds = options.rebuilds ?? 500;
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
    const script = path.join(projectRoot, 'tests', 'support', 'preview-memory.ts');
    const out = await new Promise<string>((resolvePromise, reject) => {
      execFile(process.execPath, ['--expose-gc', '--import', tsx, script, String(rebuilds)], { cwd: projectRoot, maxBuffer: 1 << 24 }, (error, stdout) =>
        error ? reject(error) : resolvePromise(stdout),
      );
    });
    const result = JSON.parse(out) as { samples: { rebuilds: number; heapUsed: number; rss: number }[]; ms: number };
    const at = (n: number) => result.samples.find((s) => s.rebuilds === n)!;
    const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
    const warm = at(50);
    const last = result.samples.at(-1)!;
    rows.push({
      name: `preview: heap after GC over ${rebuilds} rebuilds (two documents)`,
      ms: result.ms / rebuilds,
      note: `ms per rebuild; heap ${mib(warm.heapUsed)} at 50 → ${mib(last.heapUsed)} at ${last.rebuilds} (${((last.heapUsed - warm.heapUsed) / 2 ** 20).toFixed(1)} MiB); rss ${mib(warm.rss)} → ${mib(last.rss)}`,
    });
  }
  await rm(dir, { recursive: true, force: true });
  return rows;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  for (const row of await benchPreview({ memory: process.argv.includes('--memory') })) console.log(`${row.name}: ${row.ms.toFixed(0)} ms  ${row.note ?? ''}`);
}
