/**
 * `npm run preview` as a user runs it, with real child processes: it prints its address,
 * serves the page while a cell runs, the stop button kills that cell's process, and Ctrl-C
 * ends the preview with 130.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';
import { openEvents } from '../support/preview-client.ts';

const root = path.resolve(import.meta.dirname, '..', '..');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

it('prints its address, serves the page while a cell runs, stops the cell\'s process on Stop, exits 130 on Ctrl-C', { timeout: 180_000 }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'report-preview-cli-'));
  try {
    const pidFile = path.join(dir, 'cell.pid');
    await writeFile(
      path.join(dir, 'doc.md'),
      [
        '# Spinning',
        '',
        'Prose around a cell that never ends.',
        '',
        '```ts run id=spin',
        "import { writeFileSync } from 'node:fs';",
        "import { progress } from 'report:runtime';",
        `writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));`,
        'for (let step = 1; ; step++) { progress({ step, total: 1e9 }); await new Promise((r) => setTimeout(r, 50)); }',
        '```',
        '',
      ].join('\n'),
    );
    const cli = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'cli.ts'), 'preview', path.join(dir, 'doc.md'), '--port', '0', '--out', path.join(dir, 'build')], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => cli.on('exit', (code) => resolve(code)));
    let out = '';
    cli.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    cli.stderr.setEncoding('utf8').on('data', (s: string) => (out += s));
    let url = '';
    for (let i = 0; i < 600 && !url; i++) {
      await new Promise((r) => setTimeout(r, 100));
      url = /at (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1] ?? '';
    }
    expect(url, out).not.toBe('');

    const events = await openEvents(url);
    const running = await events.next((e) => e.event === 'state' && e.data.cells.some((c: { id: string; phase: string; step?: number }) => c.id === 'spin' && c.phase === 'running' && (c.step ?? 0) > 1), 90_000);
    expect(running.data.phase).toBe('running');
    expect(await (await fetch(url)).text()).toContain('Prose around a cell that never ends.');
    const pid = Number(await readFile(pidFile, 'utf8'));
    expect(alive(pid)).toBe(true);

    expect((await fetch(new URL('__preview/stop/spin', url), { method: 'POST' })).status).toBe(200);
    const stopped = await events.next((e) => e.event === 'state' && e.data.phase === 'idle' && e.data.cells.some((c: { id: string; phase: string }) => c.id === 'spin' && c.phase === 'stopped'), 30_000);
    expect(stopped.data.problems.map((p: { ruleId: string; cell?: string }) => [p.ruleId, p.cell])).toEqual([['cell-error', 'spin']]);
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    expect(alive(pid)).toBe(false);
    expect(out).toMatch(/doc\.md:5:1 {2}cell-error {2}cell "spin" failed: stopped from the preview/);
    events.close();

    cli.kill('SIGINT');
    expect(await exited).toBe(130);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
