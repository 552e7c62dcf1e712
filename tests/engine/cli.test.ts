/**
 * The command line as a user runs it: Ctrl-C while a cell runs must stop that cell's
 * process (not orphan it) and exit 130.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..', '..');

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

it('SIGINT stops the running cells and exits 130', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'report-cli-'));
  try {
    const pidFile = path.join(dir, 'cell.pid');
    await writeFile(
      path.join(dir, 'doc.md'),
      ['# T', '', '```ts run id=spin', "import { writeFileSync } from 'node:fs';", `writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));`, 'while (true) {}', '```', ''].join('\n'),
    );
    const cli = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'cli.ts'), 'report', path.join(dir, 'doc.md'), '--no-pdf', '--out', path.join(dir, 'build')], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const exited = new Promise<number | null>((resolve) => cli.on('exit', (code) => resolve(code)));
    let pid = 0;
    for (let i = 0; i < 200 && !pid; i++) {
      await new Promise((r) => setTimeout(r, 100));
      pid = Number(await readFile(pidFile, 'utf8').catch(() => '0'));
    }
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(true);
    cli.kill('SIGINT');
    expect(await exited).toBe(130);
    for (let i = 0; i < 50 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    expect(alive(pid)).toBe(false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it('SIGKILL of the command: the running cell notices and exits (no orphan spinning)', { timeout: 60_000 }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'report-cli-'));
  try {
    const pidFile = path.join(dir, 'cell.pid');
    // No timeout option: the default (1800 s) applies, far beyond this test.
    await writeFile(
      path.join(dir, 'doc.md'),
      ['# T', '', '```ts run id=spin', "import { writeFileSync } from 'node:fs';", `writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));`, 'while (true) {}', '```', ''].join('\n'),
    );
    const cli = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src', 'cli.ts'), 'report', path.join(dir, 'doc.md'), '--no-pdf', '--out', path.join(dir, 'build')], {
      cwd: root,
      stdio: 'ignore',
    });
    const exited = new Promise<void>((resolve) => cli.on('exit', () => resolve()));
    let pid = 0;
    for (let i = 0; i < 300 && !pid; i++) {
      await new Promise((r) => setTimeout(r, 100));
      pid = Number(await readFile(pidFile, 'utf8').catch(() => '0'));
    }
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(true);
    cli.kill('SIGKILL');
    await exited;
    for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
    expect(alive(pid)).toBe(false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
