/**
 * Engine benchmark: a 20-cell document (a chain of imports plus independent cells, each
 * importing a project file), built once for real, then timed for
 *   - a rebuild with nothing changed,
 *   - a rebuild after a prose-only edit,
 *   - `check` (freshness + type-check + claims), cold and with the type-check cache warm,
 * and the time to print the PDF of the woven HTML. Cells are not re-run in the timed
 * builds (asserted), so the figures measure the engine, not the cells.
 */
import { execFileSync } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build } from '../src/engine/build.ts';
import { check } from '../src/engine/check.ts';
import { nodeEffects } from '../src/engine/effects.ts';
import { childProcessExecutor } from '../src/engine/child-launcher.ts';
import { findBrowser, printPdf } from '../src/engine/pdf.ts';

export interface BenchRow {
  name: string;
  ms: number;
  note?: string;
}

export const CELLS = 20;

export function documentText(proseVersion: number): string {
  const parts = ['---', 'title: Engine benchmark', 'seed: 1', '---', '', '# Engine benchmark', ''];
  for (let i = 0; i < CELLS; i++) {
    const imports = i > 0 && i % 2 === 0 ? `import { value${i - 1} } from 'cell:c${i - 1}';\n` : '';
    const base = i > 0 && i % 2 === 0 ? `value${i - 1}` : '0';
    parts.push(
      `## Part ${i + 1}`,
      '',
      `Paragraph ${i} (prose version ${proseVersion}) with $x_${i}^2$ and a value \`{ts} value${i}\`` +
        ` \`{claim} value${i} >= ${i}\`.`,
      '',
      `\`\`\`ts run id=c${i}`,
      `import { table } from 'report:runtime';`,
      `import { helper } from './lib/helper.ts';`,
      imports + `export const value${i}: number = helper(${base}) + ${i};`,
      `table('t${i}', [{ cell: ${i}, value: value${i} }], { caption: 'Cell ${i}.' });`,
      '```',
      '',
      `See @tbl-t${i}.`,
      '',
    );
  }
  return parts.join('\n');
}

async function time<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const start = performance.now();
  const value = await fn();
  return { ms: performance.now() - start, value };
}

export async function benchEngine(options: { projectRoot?: string; pdf?: boolean } = {}): Promise<BenchRow[]> {
  const projectRoot = path.resolve(options.projectRoot ?? process.cwd());
  const dir = path.join(projectRoot, '.cache', 'bench-engine');
  await rm(dir, { recursive: true, force: true });
  await mkdir(path.join(dir, 'lib'), { recursive: true });
  await writeFile(path.join(dir, 'lib', 'helper.ts'), 'export function helper(x: number): number {\n  return x * 1;\n}\n');
  const docPath = path.join(dir, 'doc.md');
  await writeFile(docPath, documentText(1));

  const quiet = { write: () => {}, isTTY: false };
  const effects = nodeEffects({ stdout: quiet });
  const buildOptions = { docPath, projectRoot, executor: childProcessExecutor({}), outDir: path.join(dir, 'build'), pdf: false };

  const first = await time(() => build(buildOptions, effects));
  if (first.value.ran.length !== CELLS) throw new Error(`first build ran ${first.value.ran.length} cells, expected ${CELLS}`);
  const rows: BenchRow[] = [{ name: `first build, ${CELLS} cells run (2 jobs)`, ms: first.ms, note: 'includes child processes' }];

  const repeat = async (name: string, fn: () => Promise<unknown>, n = 5): Promise<void> => {
    const times: number[] = [];
    for (let i = 0; i < n; i++) times.push((await time(fn)).ms);
    times.sort((a, b) => a - b);
    rows.push({ name, ms: times[Math.floor(n / 2)]!, note: `median of ${n}` });
  };

  await repeat('no-change rebuild', async () => {
    const summary = await build(buildOptions, effects);
    if (summary.ran.length !== 0) throw new Error(`no-change rebuild ran ${summary.ran.join(', ')}`);
  });
  let version = 1;
  await repeat('prose-only rebuild', async () => {
    await writeFile(docPath, documentText(++version));
    const summary = await build(buildOptions, effects);
    if (summary.ran.length !== 0) throw new Error(`prose-only rebuild ran ${summary.ran.join(', ')}`);
  });
  const cacheDir = path.join(dir, 'typecheck-cache');
  const cold = await time(() => check({ docPath, projectRoot, cacheDir }, effects));
  if (cold.value.file.messages.length > 0) throw new Error(`check found problems: ${cold.value.file.messages.join('; ')}`);
  rows.push({ name: 'check (type-check cache cold)', ms: cold.ms });
  await repeat('check (type-check cache warm)', () => check({ docPath, projectRoot, cacheDir }, effects));

  // The same three operations as whole commands, as a user runs them (Node start-up, module
  // loading and all): `node bin/report.mjs …` (what `npm run report`/`check` run: the CLI from
  // its cached bundle), and through the tsx loader for comparison.
  const launch = (...prefix: string[]) => (...args: string[]) => () =>
    Promise.resolve(execFileSync(process.execPath, [...prefix, ...args], { cwd: projectRoot, stdio: 'pipe' }));
  const cli = launch(path.join(projectRoot, 'bin', 'report.mjs'));
  const viaTsx = launch('--import', 'tsx', path.join(projectRoot, 'src', 'cli.ts'));
  const reportArgs = ['report', docPath, '--no-pdf', '--out', path.join(dir, 'build')];
  await repeat('CLI: no-change rebuild', cli(...reportArgs));
  await repeat('CLI: prose-only rebuild', async () => {
    await writeFile(docPath, documentText(++version));
    await cli(...reportArgs)();
  });
  await repeat('CLI: check (type-check cache warm)', cli('check', docPath));
  await repeat('CLI through tsx: check (type-check cache warm)', viaTsx('check', docPath));

  // The real report (68 cells, all fresh: nothing runs), as whole commands: `npm run check`
  // and a no-change `npm run report -- --no-pdf`, through npm as a user types them and
  // through node directly.
  const real = path.join(projectRoot, 'report', 'report.md');
  const npm = (...args: string[]) => () => Promise.resolve(execFileSync('npm', ['run', '--silent', ...args], { cwd: projectRoot, stdio: 'pipe' }));
  await repeat('report/report.md: npm run check', npm('check'));
  await repeat('report/report.md: npm run report -- --no-pdf (no change)', npm('report', '--', '--no-pdf'));
  await repeat('report/report.md: node bin/report.mjs check', cli('check', real));
  await repeat('report/report.md: node bin/report.mjs report --no-pdf (no change)', cli('report', real, '--no-pdf'));

  if (options.pdf !== false) {
    const browser = await findBrowser({ env: process.env });
    const html = path.join(dir, 'build', 'doc.html');
    const printed = await time(() => printPdf(html, path.join(dir, 'build', 'doc.pdf'), { browserPath: browser.path }));
    rows.push({ name: 'print PDF of the 20-cell document', ms: printed.ms, note: `${browser.source} browser` });
  }
  return rows;
}
