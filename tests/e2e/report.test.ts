/**
 * End to end: the real report, built from scratch at the quick profile with the real
 * CLI, child processes, TensorFlow.js and the PDF printer; then `check` at the same
 * profile must pass. Quick results go to report/results/profiles/quick (not committed),
 * so this proves the cells still run, not only that committed results exist.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..', '..');
const cli = ['--import', 'tsx', path.join(root, 'src', 'cli.ts')];

describe('report/report.md at the quick profile', () => {
  it('builds HTML and PDF from scratch, then checks clean', { timeout: 15 * 60_000 }, async () => {
    const out = await mkdtemp(path.join(os.tmpdir(), 'report-e2e-'));
    // A results folder of its own: built from scratch without deleting anything in the
    // working tree (report/results/profiles/quick stays as the user left it).
    const store = await mkdtemp(path.join(os.tmpdir(), 'report-e2e-store-'));
    try {
      const built = await run('node', [...cli, 'report', 'report/report.md', '--profile', 'quick', '--results', store, '--out', out], {
        cwd: root,
        maxBuffer: 64 * 1024 * 1024,
        env: { ...process.env, CI: '1' },
      });
      expect(built.stdout).toContain('wrote');
      const html = await readFile(path.join(out, 'report.html'), 'utf8');
      expect(html).toContain('<html');
      expect(html).not.toContain('class="cell-error"');
      expect(html).not.toContain('class="cell-skipped"');
      expect(html).not.toContain('class="cell-pending"');
      expect(html).toMatch(/Figure 1/);
      const pdf = await readFile(path.join(out, 'report.pdf'));
      expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
      expect((await stat(path.join(out, 'report.pdf'))).size).toBeGreaterThan(10_000);

      const checked = await run('node', [...cli, 'check', 'report/report.md', '--profile', 'quick', '--results', store], { cwd: root });
      // Exit 0 (execFile rejects otherwise): fresh, type-correct; claims bind only at full.
      expect(checked.stdout).toMatch(/\d+ fresh, 0 stale, 0 missing; clean at profile quick/);
    } finally {
      await rm(out, { recursive: true, force: true });
      await rm(store, { recursive: true, force: true });
    }
  });
});
