#!/usr/bin/env node
/**
 * The command line, started fast: runs src/cli.ts from one ESM bundle of it (esbuild, npm
 * packages left external) instead of through the tsx loader, which transpiles ~50 modules
 * on every start. The bundle lives in node_modules/.cache/report/cli/ under a stamp of every
 * source file it is built from (path, size, modification time) and of the esbuild and Node
 * versions, so an edit of any engine file rebuilds it (≈ 0.1 s) on the next command; there is
 * nothing to build by hand and nothing to forget. `REPORT_CLI_TSX=1` runs src/cli.ts through
 * tsx instead (as the tests do).
 *
 * Each module keeps its own `import.meta.url` (the plugin below writes the source file's URL
 * in its place), so files found beside the sources (runtime.ts, child-entry.ts, the page's
 * stylesheets) are found exactly as when the sources run directly.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');
const entry = path.join(src, 'cli.ts');

if (process.env.REPORT_CLI_TSX === '1') {
  const { register } = await import('tsx/esm/api');
  register();
  const { main } = await import(pathToFileURL(entry).href);
  await main();
} else {
  const { main } = await import(pathToFileURL(await bundle()).href);
  await main();
}

/** Path of an up-to-date bundle of src/cli.ts, built when the sources changed. */
async function bundle() {
  const require = createRequire(import.meta.url);
  const esbuildVersion = JSON.parse(readFileSync(require.resolve('esbuild/package.json'), 'utf8')).version;
  const stamp = createHash('sha256').update(JSON.stringify([process.version, esbuildVersion, sources(src)])).digest('hex').slice(0, 16);
  const dir = path.join(root, 'node_modules', '.cache', 'report', 'cli');
  const out = path.join(dir, `cli-${stamp}.mjs`);
  try {
    statSync(out);
    return out;
  } catch {
    // not built for these sources yet
  }
  const esbuild = await import('esbuild');
  await mkdir(dir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  const result = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    sourcemap: 'inline',
    write: false,
    outfile: out,
    logLevel: 'silent',
    plugins: [ownImportMetaUrl()],
  });
  await writeFile(tmp, result.outputFiles[0].contents);
  await rename(tmp, out);
  // Bundles of earlier sources are of no use any more.
  for (const name of await readdir(dir)) if (name !== path.basename(out) && name.startsWith('cli-')) await rm(path.join(dir, name), { force: true });
  return out;
}

/** [relative path, size, mtime] of every file under `dir`, sorted (what the bundle is made from). */
function sources(dir) {
  const out = [];
  const walk = (d) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile()) {
        const s = statSync(full);
        out.push([path.relative(dir, full), s.size, s.mtimeMs]);
      }
    }
  };
  walk(dir);
  return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

/** esbuild plugin: `import.meta.url` in a source module becomes that module's own file URL. */
function ownImportMetaUrl() {
  return {
    name: 'own-import-meta-url',
    setup(build) {
      build.onLoad({ filter: /\.ts$/ }, (args) => {
        const text = readFileSync(args.path, 'utf8');
        return { contents: text.replaceAll('import.meta.url', JSON.stringify(pathToFileURL(args.path).href)), loader: 'ts' };
      });
    },
  };
}
