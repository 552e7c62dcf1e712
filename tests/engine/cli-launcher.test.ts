/**
 * bin/report.mjs (what `npm run report`/`check`/`preview` run): the CLI from its cached
 * bundle behaves exactly as src/cli.ts through tsx — same output, same problems, same exit
 * code — and the bundle is reused while the sources are unchanged.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '..', '..');
const run = promisify(execFile);
const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cli-launcher-'));
  await writeFile(
    path.join(dir, 'doc.md'),
    ['# A note', '', 'See @fig-none and $x^{2$.', '', '```ts run id=one', 'export const one = 1;', '```', ''].join('\n'),
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function cli(how: 'bundle' | 'tsx', args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const argv = how === 'bundle' ? [path.join(root, 'bin', 'report.mjs'), ...args] : ['--import', tsx, path.join(root, 'src', 'cli.ts'), ...args];
  try {
    const { stdout, stderr } = await run(process.execPath, argv, { cwd: dir, env: { ...process.env, REPORT_CLI_TSX: '' } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Output without the timings, which differ run to run. */
const steady = (s: string) => s.replace(/\(\d+ ms\)/g, '(… ms)');

describe('bin/report.mjs', () => {
  it('prints what src/cli.ts prints and exits as it does: check of a document with problems, help', { timeout: 120_000 }, async () => {
    for (const args of [['check', 'doc.md'], ['--help'], ['check', 'missing.md']]) {
      const [bundled, direct] = await Promise.all([cli('bundle', args), cli('tsx', args)]);
      expect(bundled.code, args.join(' ')).toBe(direct.code);
      expect(steady(bundled.stdout)).toBe(steady(direct.stdout));
      expect(bundled.stderr).toBe(direct.stderr);
    }
    const checked = await cli('bundle', ['check', 'doc.md']);
    expect(checked.code).toBe(1);
    expect(checked.stderr).toMatch(/^doc\.md:3:5\s+unknown-ref\s/m);
    expect(checked.stderr).toMatch(/math-error/);
    expect(checked.stderr).toMatch(/stale-result|no stored result/);
  });

  it('keeps one bundle for the current sources and reuses it', { timeout: 120_000 }, async () => {
    await cli('bundle', ['--help']);
    const folder = path.join(root, 'node_modules', '.cache', 'report', 'cli');
    const before = (await readdir(folder)).filter((n) => n.startsWith('cli-'));
    expect(before).toHaveLength(1);
    await cli('bundle', ['--help']);
    expect((await readdir(folder)).filter((n) => n.startsWith('cli-'))).toEqual(before);
  });
});
