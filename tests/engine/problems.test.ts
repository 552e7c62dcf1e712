/**
 * Problems print one per line as `file:line:col  rule-id  message` (clickable in editors and
 * terminals); `--format pretty` gives vfile-reporter's grouped form. Unit tests of the
 * formatter, then the real CLI.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { VFile } from 'vfile';
import { formatProblems } from '../../src/engine/problems.ts';
import { markSeverity } from '../../src/engine/severity.ts';

const root = path.resolve(import.meta.dirname, '..', '..');

function file(): VFile {
  const f = new VFile({ path: 'docs/doc.md', value: '' });
  f.message('second', { place: { line: 9, column: 3 }, ruleId: 'unknown-ref', source: 'report' });
  f.message('first\n    at stack line 1\n    at stack line 2', { place: { line: 2, column: 14 }, ruleId: 'cell-error', source: 'report' });
  f.message('repaired', { place: { start: { line: 5, column: 1 }, end: { line: 7, column: 4 } }, ruleId: 'corrupt-result', source: 'report' });
  markSeverity(f, 'full');
  return f;
}

describe('problem lines', () => {
  it('prints file:line:col  rule-id  message, one per line, sorted by place, warnings marked, with a count', () => {
    expect(formatProblems(file())).toBe(
      [
        'docs/doc.md:2:14  cell-error  first ⏎ at stack line 1 ⏎ at stack line 2',
        'docs/doc.md:5:1  corrupt-result  repaired (warning)',
        'docs/doc.md:9:3  unknown-ref  second',
        '2 errors, 1 warning',
        '',
      ].join('\n'),
    );
  });

  it('prints nothing for a clean file, and the grouped form with pretty', () => {
    expect(formatProblems(new VFile({ path: 'a.md' }))).toBe('');
    const pretty = formatProblems(file(), 'pretty');
    expect(pretty).toMatch(/^docs\/doc\.md\n/);
    expect(pretty).toContain('9:3');
    expect(pretty).not.toContain('docs/doc.md:9:3');
  });
});

describe('the CLI', () => {
  it('check prints problem lines by default and the grouped form with --format pretty', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'report-format-'));
    try {
      await writeFile(path.join(dir, 'doc.md'), '# T\n\nSee @fig-nope and\n@tbl-gone.\n');
      const run = (...extra: string[]) =>
        spawnSync(process.execPath, ['--import', import.meta.resolve('tsx'), path.join(root, 'src', 'cli.ts'), 'check', path.join(dir, 'doc.md'), '--no-typecheck', ...extra], {
          cwd: dir,
          encoding: 'utf8',
        });
      const lines = run();
      expect(lines.status).toBe(1);
      expect(lines.stderr.split('\n').filter(Boolean)).toEqual([
        'doc.md:3:5  unknown-ref  unknown reference @fig-nope; known figure labels: none',
        'doc.md:4:1  unknown-ref  unknown reference @tbl-gone; known table labels: none',
        '2 errors',
      ]);
      const pretty = run('--format', 'pretty');
      expect(pretty.status).toBe(1);
      expect(pretty.stderr).toMatch(/^doc\.md\n\s*3:5\s+error\s+unknown reference @fig-nope/);
      expect(run('--format', 'xml').stderr).toContain("argument 'xml' is invalid");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
