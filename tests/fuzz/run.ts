/**
 * `npm run fuzz [-- --count N] [--seed S]`: the fuzzer at scale (default 100 000 documents).
 * Failing documents are written to $TMPDIR/report-fuzz-<seed>/<index>.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fuzz } from './fuzz.ts';

const arg = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const count = arg('count', 100_000);
const seed = arg('seed', Date.now() % 2 ** 31);
const started = performance.now();
process.stdout.write(`fuzzing ${count} documents, seed ${seed}\n`);
const failures = await fuzz({
  count,
  seed,
  maxFailures: 50,
  onProgress: (done) => process.stdout.write(`${done} documents, ${Math.round((performance.now() - started) / 1000)} s\n`),
});
const dir = path.join(os.tmpdir(), `report-fuzz-${seed}`);
for (const failure of failures) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, `${failure.index}.md`), failure.doc);
  process.stdout.write(`#${failure.index}: ${failure.reason.split('\n').slice(0, 3).join(' | ')}\n`);
}
process.stdout.write(`${failures.length === 0 ? 'no failures' : `${failures.length} failures (documents in ${dir})`} in ${Math.round((performance.now() - started) / 1000)} s\n`);
process.exitCode = failures.length === 0 ? 0 : 1;
