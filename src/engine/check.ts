/**
 * `check`: proves without executing anything that every cell has a fresh stored
 * result, every cell type-checks, every inline value resolves and every claim holds.
 * Stages: load (parse → graph → keys) → freshness → type-check → weave in check mode
 * (which evaluates inline values and claims against the stored results) → the front
 * matter's measured patterns against the stored results (measured.ts, a warning for one
 * that names nothing).
 */
import path from 'node:path';
import type { VFile } from 'vfile';
import type { Effects } from './effects.ts';
import { cacheDirOf, loadDocument, runtimePath, type LoadOptions } from './document.ts';
import { explainStale } from './freshness.ts';
import { PREVIOUS_ENGINE_FORMAT_VERSION } from './key.ts';
import { notAdoptedMessage, oldSchemeMessage } from './migrate.ts';
import { typecheckCells } from './typecheck.ts';
import { reportUnmatched } from './measured.ts';
import { isFailure, type CellOutcome } from './types.ts';
import { weave } from './weave.ts';

export interface CheckOptions extends LoadOptions {
  /** Skip the TypeScript pass (used by benchmarks to time the stages separately). */
  typecheck?: boolean;
}

export interface CheckSummary {
  file: VFile;
  /** The profile that applied (flag, else front matter, else full). */
  profile: string;
  fresh: string[];
  /** Fresh cells whose result is still stored under the previous key scheme, adopted (`report --migrate-keys`). */
  legacy: string[];
  stale: string[];
  missing: string[];
  ms: number;
}

export async function check(options: CheckOptions, effects: Effects): Promise<CheckSummary> {
  const started = effects.now();
  const loaded = await loadDocument(options, effects);
  const { doc, keys, store, usable, projectRoot, profile, bibliography } = loaded;
  const file = doc.file;
  const results = new Map<string, CellOutcome>();
  const fresh: string[] = [];
  const legacy: string[] = [];
  const stale: string[] = [];
  const missing: string[] = [];

  // Every entry is read at once (the reads overlap), then looked at in document order.
  const lookups = new Map(usable.map((id) => [id, store.get(id, keys.get(id)!.key, keys.get(id)!.fingerprint)] as const));
  for (const id of usable) {
    const cell = doc.cells.find((c) => c.id === id)!;
    const stored = await lookups.get(id)!;
    if (stored.result) {
      results.set(id, stored.result);
      fresh.push(id);
      if (stored.previousSchemeKey !== undefined) legacy.push(id);
      continue;
    }
    const previous = await store.latest(id, path.basename(options.docPath));
    const how = profile === 'full'
      ? `run \`npm run report\` and commit ${path.relative(process.cwd(), store.dir) || store.dir}`
      : `run \`npm run report -- --profile ${profile}\``;
    let reason: string;
    const verdict = loaded.previousScheme.get(id)?.verdict;
    if (stored.problem === 'corrupt') {
      reason = `stored result of cell "${id}" is corrupt (${stored.detail ?? 'checksum mismatch'}); ${how}`;
      stale.push(id);
    } else if (verdict?.ok === false) {
      reason = `${notAdoptedMessage(id, verdict.reason)}; ${how}`;
      stale.push(id);
    } else if (previous) {
      // A result of the previous key scheme is compared with the cell's previous-scheme
      // fingerprint: that is what its key was made of.
      const stored = previous.meta.fingerprint;
      const old = stored !== undefined && stored.engine === PREVIOUS_ENGINE_FORMAT_VERSION && keys.get(id)!.previous !== undefined;
      const what = explainStale(stored, old ? keys.get(id)!.previous!.fingerprint : keys.get(id)!.fingerprint);
      const because =
        (what.length > 0 ? what.join('; ') : 'its code, options, an imported file, a dependency or a package version changed') +
        (old ? ' since its result stored under the previous key scheme' : '');
      reason = `result of cell "${id}" is stale (${because}); ${how}`;
      stale.push(id);
    } else {
      reason = `cell "${id}" has no stored result for profile "${profile}"; ${how}`;
      missing.push(id);
    }
    file.message(reason, { place: cell.position, ruleId: 'stale-result', source: 'report' });
  }

  oldSchemeMessage(file, legacy, store.dir, loaded.docPath, profile);

  if (options.typecheck !== false) {
    typecheckCells(doc, {
      projectRoot,
      docPath: loaded.docPath,
      runtimePath,
      cacheDir: cacheDirOf(options, projectRoot),
      exports: loaded.exports,
    });
  }

  await weave(doc, results, { mode: 'check', exports: loaded.exports, bibliography, html: false });
  // A measured pattern that names nothing stored is most likely a typo: `--verify` would compare the value it meant.
  const stored = new Map([...results].flatMap(([id, outcome]) => (isFailure(outcome) ? [] : [[id, outcome] as const])));
  reportUnmatched(file, doc.frontMatter.verify?.measured ?? [], stored, doc.cells.map((cell) => cell.id));
  return { file, profile, fresh, legacy, stale, missing, ms: effects.now() - started };
}
