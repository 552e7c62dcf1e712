/**
 * The live preview (src/engine/preview*.ts) over real HTTP on an ephemeral port, real files
 * in a temporary folder (watched by fs.watch on their folders), and the fake executor: what it serves and
 * refuses, what a save rebuilds and re-runs, the events the page receives (page, cells'
 * progress, problems), and the stop and run buttons.
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodeEffects } from '../../src/engine/effects.ts';
import { sha256 } from '../../src/engine/digest.ts';
import { ResultStore } from '../../src/engine/store.ts';
import { startPreview, type Preview, type PreviewOptions, type PreviewState } from '../../src/engine/preview.ts';
import { fakeExecutor, type FakeCellContext } from '../support/fake-executor.ts';
import { openEvents, rawRequest, type EventReader } from '../support/preview-client.ts';

let dir: string;
let preview: Preview | undefined;
let reader: EventReader | undefined;
let written: string[];

const DOC = (opts: { prose?: string; b?: string; extra?: string } = {}) => `---
title: Preview
seed: 7
---

## Intro

${opts.prose ?? 'Prose v1.'} A is \`{ts} a\` and the total is \`{ts} total\` \`{claim} total === 5\`.

\`\`\`ts run id=a
import { helper } from './lib/a.ts';
export const a: number = helper(2);
\`\`\`

\`\`\`ts run id=b
import { a } from 'cell:a';
export const total: number = a + ${opts.b ?? '3'};
\`\`\`

\`\`\`ts run id=c
export const c: string = 'independent';
\`\`\`
${opts.extra ?? ''}`;

const cells = {
  a: () => ({ exports: { a: 2 } }),
  b: (deps: Record<string, Record<string, unknown>>) => ({ exports: { total: (deps.a!.a as number) + 3 } }),
  c: () => ({ exports: { c: 'independent' } }),
};

async function start(executor = fakeExecutor(cells), extra: Partial<PreviewOptions> = {}) {
  written = [];
  const effects = nodeEffects({ stdout: { write: (s) => void written.push(s), isTTY: false } });
  preview = await startPreview(
    { docPath: path.join(dir, 'doc.md'), projectRoot: dir, outDir: path.join(dir, 'build'), port: 0, debounceMs: 5, stateIntervalMs: 10, ...extra, executor },
    effects,
  );
  return { preview, executor };
}

/** Waits for the state event that satisfies `match`. */
async function stateWhere(events: EventReader, match: (state: PreviewState) => boolean, timeoutMs?: number): Promise<PreviewState> {
  return (await events.next((e) => e.event === 'state' && match(e.data as PreviewState), timeoutMs)).data as PreviewState;
}

function pageWith(events: EventReader, text: string, timeoutMs?: number) {
  return events.next((e) => e.event === 'page' && (e.data.body as string).includes(text), timeoutMs);
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'report-preview-'));
  await mkdir(path.join(dir, 'lib'), { recursive: true });
  await writeFile(path.join(dir, 'lib', 'a.ts'), "import { twice } from './b.ts';\nexport const helper = (x: number): number => twice(x) / 2;\n");
  await writeFile(path.join(dir, 'lib', 'b.ts'), 'export const twice = (x: number): number => 2 * x;\n');
  await writeFile(path.join(dir, 'lib', 'unrelated.ts'), 'export const u = 1;\n');
  await writeFile(path.join(dir, 'secret.txt'), 'top secret\n');
  await writeFile(path.join(dir, 'doc.md'), DOC());
});

afterEach(async () => {
  reader?.close();
  reader = undefined;
  await preview?.close();
  preview = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('serving', () => {
  it('builds once and serves the page, with the preview script, on 127.0.0.1', async () => {
    const { preview } = await start();
    expect(preview.host).toBe('127.0.0.1');
    expect(preview.url).toBe(`http://127.0.0.1:${preview.port}/`);
    await preview.idle();
    const page = await fetch(preview.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).toContain('Prose v1.');
    expect(html).toContain('<script type="module" src="/__preview/client.js"></script>');
    expect(html).toMatch(/<meta name="report-preview-version" content="\d+">/);
    expect(html).toMatch(/<p data-line="8-8">Prose v1\./);
    expect(await (await fetch(new URL('doc.html', preview.url))).text()).toBe(html);
    expect(await (await fetch(new URL('index.html', preview.url))).text()).toBe(html);
    const script = await fetch(new URL('__preview/client.js', preview.url));
    expect(script.headers.get('content-type')).toContain('text/javascript');
    const code = await script.text();
    expect(code).toContain('EventSource');
    expect(code).toContain('morphdom'); // bundled in, not fetched from elsewhere
    expect(code).not.toMatch(/^import .* from ["']morphdom["']/m);
    // As `report --no-pdf` would: the HTML is written too.
    expect(await readFile(path.join(dir, 'build', 'doc.html'), 'utf8')).toContain('Prose v1.');
  });

  it('serves nothing but the page: no path leads to another file', async () => {
    const { preview } = await start();
    await preview.idle();
    const port = preview.port;
    const attempts = [
      '/../package.json',
      '/../../etc/passwd',
      '/%2e%2e/package.json',
      '/%2e%2e%2fpackage.json',
      '/..%2f..%2fetc%2fpasswd',
      '/%252e%252e/package.json',
      '/..\\..\\package.json',
      '/build/../secret.txt',
      '/secret.txt',
      '/doc.md',
      '/lib/a.ts',
      '/build/doc.html',
      '/doc.html/../secret.txt',
      '/__preview/../secret.txt',
      '/__preview/client.js/../../secret.txt',
      '//etc/passwd',
      `/${dir}/secret.txt`,
      '/etc/passwd',
      '/%00/etc/passwd',
      `http://127.0.0.1:${port}/../secret.txt`,
      `file://${dir}/secret.txt`,
      '*',
      '../secret.txt',
    ];
    for (const target of attempts) {
      const { status, body } = await rawRequest(port, target);
      expect([400, 404], `${target} → ${status}`).toContain(status);
      expect(body).not.toContain('top secret');
      expect(body).not.toContain('"name"');
      expect(body).not.toContain('root:');
    }
    // Other methods are not served either.
    expect((await rawRequest(port, '/', { method: 'PUT' })).status).toBe(405);
    expect((await rawRequest(port, '/__preview/stop/../../secret.txt', { method: 'POST' })).status).toBe(404);
  });

  it('listens on 127.0.0.1 only and refuses requests addressed to another host name', async () => {
    const { preview } = await start();
    await preview.idle();
    expect((await rawRequest(preview.port, '/', { host: `localhost:${preview.port}` })).status).toBe(200);
    expect((await rawRequest(preview.port, '/', { host: `[::1]:${preview.port}` })).status).toBe(200);
    // DNS rebinding: a page of evil.example resolving to 127.0.0.1 must not read the report.
    const rebound = await rawRequest(preview.port, '/', { host: `evil.example:${preview.port}` });
    expect(rebound.status).toBe(403);
    expect(rebound.body).not.toContain('Prose v1.');
    expect((await rawRequest(preview.port, '/__preview/events', { host: 'evil.example' })).status).toBe(403);
    // A form on another site posting to the stop button.
    expect((await rawRequest(preview.port, '/__preview/stop/a', { method: 'POST', headers: { Origin: 'http://evil.example' } })).status).toBe(403);
    // Other interfaces of this machine are not listened on.
    const external = Object.values(networkInterfaces()).flat().find((i) => i?.family === 'IPv4' && !i.internal)?.address;
    if (external !== undefined) {
      await expect(rawRequest(preview.port, '/', { address: external, host: `${external}:${preview.port}` })).rejects.toThrow(/ECONNREFUSED/);
    }
  });

  it('links the figures of its page by URL and serves them from memory by content hash; build/<doc>.html still inlines them', async () => {
    const png = Uint8Array.from({ length: 4000 }, (_, i) => (i * 13) % 256);
    const svg = new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>');
    const withFigures = {
      ...cells,
      c: () => ({
        exports: { c: 'independent' },
        outputs: [
          { kind: 'figure' as const, name: 'dots', ext: 'png' as const, data: png, caption: 'Dots.' },
          { kind: 'figure' as const, name: 'lines', ext: 'svg' as const, data: svg },
        ],
      }),
    };
    const { preview } = await start(fakeExecutor(withFigures));
    await preview.idle();
    const html = await (await fetch(preview.url)).text();
    expect(html).not.toContain('data:image/');
    const pngUrl = `/__preview/figures/${sha256(png)}.png`;
    const svgUrl = `/__preview/figures/${sha256(svg)}.svg`;
    expect(html).toContain(`<img src="${pngUrl}" alt="Dots."`);
    expect(html).toContain(`<img src="${svgUrl}"`);
    reader = await openEvents(preview.url);
    const page = await reader.next((e) => e.event === 'page');
    expect(page.data.body).toContain(pngUrl);
    expect(page.data.body).not.toContain('data:image/');

    const served = await fetch(new URL(pngUrl, preview.url));
    expect(served.status).toBe(200);
    expect(served.headers.get('content-type')).toBe('image/png');
    expect(new Uint8Array(await served.arrayBuffer())).toEqual(png);
    const image = await fetch(new URL(svgUrl, preview.url));
    expect(image.headers.get('content-type')).toBe('image/svg+xml');
    // An SVG opened on its own runs no script in the preview's origin.
    expect(image.headers.get('content-security-policy')).toMatch(/default-src 'none'.*sandbox/);
    expect(await image.text()).toContain('<svg');

    // The file written is the self-contained page, figures inlined, as `report` writes it.
    const written = await readFile(path.join(dir, 'build', 'doc.html'), 'utf8');
    expect(written).toContain(`<img src="data:image/png;base64,${Buffer.from(png).toString('base64')}" alt="Dots."`);
    expect(written).not.toContain('/__preview/figures/');

    // Only figures of the page, by their exact name; nothing else under the route, no file.
    const port = preview.port;
    for (const target of [
      `/__preview/figures/${sha256(png)}.svg`,
      `/__preview/figures/${sha256(new Uint8Array([1, 2, 3]))}.png`,
      `/__preview/figures/${sha256(png).toUpperCase()}.png`,
      `${pngUrl}/../../../secret.txt`,
      '/__preview/figures/../../secret.txt',
      '/__preview/figures/%2e%2e/secret.txt',
      '/__preview/figures/..%2f..%2fsecret.txt',
      `/__preview/figures/${dir}/secret.txt`,
      '/__preview/figures/secret.txt',
      '/__preview/figures/',
      '/__preview/figures',
    ]) {
      const { status, body } = await rawRequest(port, target);
      expect([400, 404], `${target} → ${status}`).toContain(status);
      expect(body).not.toContain('top secret');
    }
    expect((await rawRequest(port, pngUrl)).status).toBe(200);
    // Another host name is refused here too (DNS rebinding).
    expect((await rawRequest(port, pngUrl, { host: `evil.example:${port}` })).status).toBe(403);

    // A later preview whose first build finds the page remembered (page-cache.ts: nothing
    // changed, nothing woven or written) links the figures of the remembered page all the same.
    const before = (await stat(path.join(dir, 'build', 'doc.html'))).mtimeMs;
    reader.close();
    reader = undefined;
    await preview.close();
    const again = (await start(fakeExecutor(withFigures))).preview;
    await again.idle();
    expect(again.state().last?.ran).toBe(0);
    expect((await stat(path.join(dir, 'build', 'doc.html'))).mtimeMs).toBe(before);
    const remembered = await (await fetch(again.url)).text();
    expect(remembered).not.toContain('data:image/');
    expect(remembered.replace(/content="\d+"/, '')).toBe(html.replace(/content="\d+"/, ''));
    expect(new Uint8Array(await (await fetch(new URL(pngUrl, again.url))).arrayBuffer())).toEqual(png);
  });

  it('serves another interface only when --host names it', async () => {
    const { preview } = await start(undefined, { host: '0.0.0.0' });
    await preview.idle();
    expect(preview.host).toBe('0.0.0.0');
    const external = Object.values(networkInterfaces()).flat().find((i) => i?.family === 'IPv4' && !i.internal)?.address;
    const address = external ?? '127.0.0.1';
    const { status, body } = await rawRequest(preview.port, '/', { address, host: `${address}:${preview.port}` });
    expect(status).toBe(200);
    expect(body).toContain('Prose v1.');
  });
});

describe('rebuilding on save', () => {
  it('pushes the new page over server-sent events after a prose edit, re-running nothing', async () => {
    const { preview, executor } = await start();
    await preview.idle();
    expect([...executor.calls].sort()).toEqual(['a', 'b', 'c']);
    reader = await openEvents(preview.url);
    const first = await reader.next((e) => e.event === 'page');
    expect(first.data.body).toContain('Prose v1.');
    expect(first.data.title).toBe('Preview');
    expect(first.data.body).not.toContain('<head>');

    await writeFile(path.join(dir, 'doc.md'), DOC({ prose: 'Prose v2, edited.' }));
    const next = await pageWith(reader, 'Prose v2, edited.');
    expect(next.data.version).toBeGreaterThan(first.data.version);
    expect(executor.calls).toHaveLength(3); // nothing re-ran
    expect(await (await fetch(preview.url)).text()).toContain('Prose v2, edited.');
    const state = await stateWhere(reader, (s) => s.version === next.data.version && s.phase === 'idle');
    expect(state.last).toMatchObject({ ran: 0, fresh: 3, failed: 0 });
  });

  it('decodes stored results once, yet shows a result stored since by another command, and never a value an inline expression changed', async () => {
    const withLetters = { ...cells, c: () => ({ exports: { c: 'independent', letters: ['x', 'y', 'z'] } }) };
    const extra = (n: number) => `\nEdit ${n}: C is \`{ts} c\`, backwards \`{ts} letters.reverse().join('')\`.\n`;
    const { preview } = await start(fakeExecutor(withLetters));
    await writeFile(path.join(dir, 'doc.md'), DOC({ extra: extra(0) }));
    await preview.idle();
    reader = await openEvents(preview.url);
    // Each rebuild reverses its own copy of the stored letters, never the one before's.
    for (let n = 1; n <= 3; n++) {
      await writeFile(path.join(dir, 'doc.md'), DOC({ extra: extra(n) }));
      const page = await pageWith(reader, `Edit ${n}:`);
      expect(page.data.body).toContain('>zyx<');
      expect(page.data.body).toContain('>independent<');
    }
    await preview.idle();
    expect(preview.state().last?.ran).toBe(0);
    // Another command (`report --rerun c`) stores a new result of c under the same key.
    const results = path.join(dir, 'results');
    const entry = (await readdir(results)).find((name) => /^c\.[0-9a-f]{16}\.json$/.test(name))!;
    const { key } = JSON.parse(await readFile(path.join(results, entry), 'utf8')) as { key: string };
    const store = new ResultStore(results, nodeEffects());
    const stored = (await store.get('c', key)).result!;
    await store.put({ ...stored, exports: { c: 'rewritten', letters: ['p', 'q'] }, meta: { ...stored.meta, createdAt: new Date(Date.now() + 1000).toISOString() } });
    await writeFile(path.join(dir, 'doc.md'), DOC({ extra: extra(4) }));
    const page = await pageWith(reader, 'Edit 4:');
    expect(page.data.body).toContain('>rewritten<');
    expect(page.data.body).toContain('>qp<');
  });

  it('rebuilds every save, however close together (a second save right after the first page is not lost)', async () => {
    const { preview } = await start();
    await preview.idle();
    reader = await openEvents(preview.url);
    for (let i = 1; i <= 5; i++) {
      await writeFile(path.join(dir, 'doc.md'), DOC({ prose: `Quick save ${i}.` }));
      await pageWith(reader, `Quick save ${i}.`);
    }
    // Saves that come faster than the rebuilds: the last one is shown.
    for (let i = 6; i <= 10; i++) await writeFile(path.join(dir, 'doc.md'), DOC({ prose: `Quick save ${i}.` }));
    await pageWith(reader, 'Quick save 10.');
  });

  it('re-runs only the stale cells: a cell edit re-runs it and its dependents, a project file edit the cells importing it', async () => {
    const { preview, executor } = await start();
    await preview.idle();
    reader = await openEvents(preview.url);
    await reader.next((e) => e.event === 'page');
    executor.calls.length = 0;

    await writeFile(path.join(dir, 'doc.md'), DOC({ b: '3 + 0' }));
    await stateWhere(reader, (s) => s.phase === 'idle' && s.last?.ran === 1);
    expect(executor.calls).toEqual(['b']);

    executor.calls.length = 0;
    // lib/b.ts reaches cell a through lib/a.ts: a re-runs, and b, which imports a's result.
    await writeFile(path.join(dir, 'lib', 'b.ts'), 'export const twice = (x: number): number => x + x;\n');
    await stateWhere(reader, (s) => s.phase === 'idle' && s.last?.ran === 2);
    expect(executor.calls).toEqual(['a', 'b']);

    // A file no cell imports is not watched.
    expect(preview.watched()).toEqual([path.join(dir, 'doc.md'), path.join(dir, 'lib', 'a.ts'), path.join(dir, 'lib', 'b.ts')].sort());
    const version = preview.version;
    await writeFile(path.join(dir, 'lib', 'unrelated.ts'), 'export const u = 2;\n');
    await new Promise((r) => setTimeout(r, 300));
    await preview.idle();
    expect(preview.version).toBe(version);
  });

  it('follows a file replaced by rename (how many editors save) and the files a new import brings in', async () => {
    const { preview, executor } = await start();
    await preview.idle();
    reader = await openEvents(preview.url);
    await reader.next((e) => e.event === 'page');
    const tmp = path.join(dir, '.doc.md.swp');
    await writeFile(tmp, DOC({ prose: 'Saved by rename.', extra: "\n```ts run id=d\nimport { u } from './lib/unrelated.ts';\nexport const d: number = u;\n```\n" }));
    await rename(tmp, path.join(dir, 'doc.md'));
    await pageWith(reader, 'Saved by rename.');
    await preview.idle();
    expect(preview.watched()).toContain(path.join(dir, 'lib', 'unrelated.ts'));
    // d has no fake implementation: it fails, and its problem is shown; its file is watched all the same.
    executor.calls.length = 0;
    await writeFile(path.join(dir, 'lib', 'unrelated.ts'), 'export const u = 3;\n');
    await stateWhere(reader, (s) => s.phase === 'idle' && s.last?.failed === 1 && executor.calls.includes('d'));
    expect(executor.calls).toEqual(['d']);
  });

  it('rebuilds again when a file it read changed during the rebuild without an event (a save caught mid-write)', async () => {
    let changed: ((file: string) => void) | undefined;
    const docPath = path.join(dir, 'doc.md');
    const executor = fakeExecutor({
      ...cells,
      b: (deps) => {
        // The rest of the save lands while the rebuild runs, and the watcher reports nothing.
        writeFileSync(docPath, DOC({ prose: 'Fully written.', b: '3 + 0' }));
        return { exports: { total: (deps.a!.a as number) + 3 } };
      },
    });
    const { preview } = await start(executor, { watch: (onChange) => ((changed = onChange), { set: () => {}, close: async () => {} }) });
    await preview.idle();
    reader = await openEvents(preview.url);
    await writeFile(docPath, DOC({ prose: 'Half written.', b: '3 + 0' }));
    changed!(docPath);
    await pageWith(reader, 'Fully written.');
  });

  it('shows problems at their place in the page and prints them in the terminal; a fix clears them', async () => {
    const { preview } = await start();
    await preview.idle();
    reader = await openEvents(preview.url);
    await writeFile(path.join(dir, 'doc.md'), DOC({ prose: 'See @fig-nowhere.' }).replace('total === 5', 'total === 6'));
    const state = await stateWhere(reader, (s) => s.phase === 'idle' && s.problems.length === 2);
    expect(state.problems.map((p) => [p.ruleId, p.line, p.fatal])).toEqual([
      ['unknown-ref', 8, true],
      ['claim-false', 8, true],
    ]);
    expect(state.problems[0]!.text).toMatch(/doc\.md:8:\d+ {2}unknown-ref {2}unknown reference @fig-nowhere/);
    expect(written.join('')).toMatch(/doc\.md:8:\d+ {2}claim-false {2}/);
    // The page marks its blocks with their lines, so the page can put the problem after line 8's paragraph.
    expect((await (await fetch(preview.url)).text())).toMatch(/<p data-line="8-8">See /);

    // A problem in a cell is placed in the cell.
    await writeFile(path.join(dir, 'doc.md'), DOC().replace("'independent';", "'independent';\nexport const c: string = 'twice';"));
    const inCell = await stateWhere(reader, (s) => s.phase === 'idle' && s.problems.some((p) => p.cell === 'c'));
    expect(inCell.problems.find((p) => p.cell === 'c')).toMatchObject({ ruleId: 'cell-syntax' });

    written.length = 0;
    await writeFile(path.join(dir, 'doc.md'), DOC());
    await stateWhere(reader, (s) => s.phase === 'idle' && s.problems.length === 0);
    expect(written.join('')).toContain('no problems');
  });

  it('keeps serving and says why when the document cannot be read, and builds again when it is back', async () => {
    const { preview } = await start();
    await preview.idle();
    reader = await openEvents(preview.url);
    await reader.next((e) => e.event === 'page');
    await rm(path.join(dir, 'doc.md'));

    const failing = await stateWhere(reader, (s) => s.error !== undefined);
    expect(failing.error).toMatch(/cannot read/);
    expect(await (await fetch(preview.url)).text()).toContain('cannot be built');
    await writeFile(path.join(dir, 'doc.md'), DOC({ prose: 'Back again.' }));
    await pageWith(reader, 'Back again.');
    expect((await stateWhere(reader, (s) => s.phase === 'idle')).error).toBeUndefined();
  });
});

/** A cell that reports progress every 10 ms until released or stopped. */
function gatedCell() {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let runs = 0;
  const impl = async (_deps: unknown, context: FakeCellContext) => {
    runs++;
    let step = 0;
    let open = false;
    void gate.then(() => (open = true));
    while (!open) {
      if (context.signal.aborted) throw new Error('aborted');
      step++;
      context.progress({ step, total: 1000, label: 'epoch', metrics: { loss: 1 / step } });
      if (step === 3) context.print('epoch 3 done\n');
      await new Promise((r) => setTimeout(r, 10));
    }
    return { exports: { slowValue: 42 } };
  };
  return { impl, release: () => release(), runs: () => runs };
}

const SLOW_CELL = "\n```ts run id=slow\nexport const slowValue: number = 42;\n```\n";

describe('running cells', () => {
  it('shows each running cell\'s progress (step, metrics, ETA, last line); the stop button stops it, Run runs it again', async () => {
    await writeFile(path.join(dir, 'doc.md'), DOC({ extra: SLOW_CELL }));
    const slow = gatedCell();
    const { preview, executor } = await start(fakeExecutor({ ...cells, slow: slow.impl }));
    reader = await openEvents(preview.url);
    // The page comes before the slow cell finishes, with the results of the cells done so far.
    const partial = await reader.next((e) => e.event === 'page' && /the total is <span[^>]*inline-value[^>]*>5</.test(e.data.body));
    expect(partial.data.body).toContain('id="cell-slow"');
    expect(preview.state().cells.find((c) => c.id === 'slow')?.phase).toBe('running');
    const running = await stateWhere(reader, (s) => s.cells.some((c) => c.id === 'slow' && c.phase === 'running' && (c.step ?? 0) >= 5));
    const view = running.cells.find((c) => c.id === 'slow')!;
    expect(view).toMatchObject({ label: 'epoch', total: 1000 });
    expect(view.metrics?.loss).toBeGreaterThan(0);
    expect(view.etaMs).toBeGreaterThan(0);
    expect(view.startedAt).toBeGreaterThan(0);
    expect(view.lastLine).toBe('epoch 3 done');
    expect(running.phase).toBe('running');


    // Stop: only by POST from this origin, only a running cell.
    expect((await fetch(new URL('__preview/stop/c', preview.url), { method: 'POST' })).status).toBe(409);
    expect((await fetch(new URL('__preview/stop/slow', preview.url), { method: 'GET' })).status).toBe(404);
    const stop = await fetch(new URL('__preview/stop/slow', preview.url), { method: 'POST', headers: { Origin: preview.url.replace(/\/$/, '') } });
    expect(stop.status).toBe(200);
    const stopped = await stateWhere(reader, (s) => s.phase === 'idle' && s.cells.some((c) => c.id === 'slow' && c.phase === 'stopped'));
    expect(stopped.problems.find((p) => p.cell === 'slow')).toMatchObject({ ruleId: 'cell-error' });
    expect(stopped.problems.find((p) => p.cell === 'slow')!.message).toContain('stopped from the preview');
    expect(written.join('')).toMatch(/✗ slow failed: stopped from the preview/);
    expect(slow.runs()).toBe(1);

    // A prose save does not start it again …
    await writeFile(path.join(dir, 'doc.md'), DOC({ prose: 'Prose v2.', extra: SLOW_CELL }));
    await pageWith(reader, 'Prose v2.');
    await stateWhere(reader, (s) => s.phase === 'idle');
    expect(slow.runs()).toBe(1);
    // … its Run button does.
    expect((await fetch(new URL('__preview/run/c', preview.url), { method: 'POST' })).status).toBe(409);
    expect((await fetch(new URL('__preview/run/slow', preview.url), { method: 'POST' })).status).toBe(200);
    await stateWhere(reader, (s) => s.cells.some((c) => c.id === 'slow' && c.phase === 'running'));
    expect(slow.runs()).toBe(2);
    slow.release();
    const done = await stateWhere(reader, (s) => s.phase === 'idle' && s.cells.length === 0);
    expect(done.last).toMatchObject({ ran: 1, failed: 0 });
    expect(executor.calls.filter((id) => id === 'slow')).toHaveLength(2);
  });

  it('a save while a cell runs updates the page at once; a running cell the save changed is superseded and re-run', async () => {
    await writeFile(path.join(dir, 'doc.md'), DOC({ extra: SLOW_CELL }));
    const slow = gatedCell();
    const { preview, executor } = await start(fakeExecutor({ ...cells, slow: slow.impl }));
    reader = await openEvents(preview.url);
    await stateWhere(reader, (s) => s.cells.some((c) => c.id === 'slow' && c.phase === 'running'));

    // Prose only: the page changes while the cell keeps running.
    await writeFile(path.join(dir, 'doc.md'), DOC({ prose: 'Edited while running.', extra: SLOW_CELL }));
    const page = await pageWith(reader, 'Edited while running.');
    expect(page.data.body).toContain('id="cell-slow"');
    expect(preview.state().cells.find((c) => c.id === 'slow')?.phase).toBe('running');
    expect(slow.runs()).toBe(1);

    // The running cell's code: it is stopped and runs again with the new code.
    await writeFile(path.join(dir, 'doc.md'), DOC({ prose: 'Edited while running.', extra: SLOW_CELL.replace('= 42', '= 43') }));
    await stateWhere(reader, () => slow.runs() === 2, 30_000);
    slow.release();
    await stateWhere(reader, (s) => s.phase === 'idle' && s.cells.length === 0 && s.last?.failed === 0);
    await preview.idle();
    expect(preview.state().problems).toEqual([]);
    expect(slow.runs()).toBe(2);
    expect(executor.calls.filter((id) => id === 'slow')).toEqual(['slow', 'slow']);
  });
});
