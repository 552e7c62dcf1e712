/**
 * `report`: run the cells whose results are missing or stale, then weave the HTML and
 * print the PDF. Stages: load (parse → graph → keys) → plan → execute → figures →
 * weave → pdf → gc. Content problems are messages on the document's VFile; the CLI
 * decides what fails.
 */
import os from 'node:os';
import path from 'node:path';
import type { VFile } from 'vfile';
import type { Effects } from './effects.ts';
import { runCells } from './scheduler.ts';
import { cacheDirOf, loadDocument, type LoadedDocument, type LoadOptions } from './document.ts';
import { lockStore } from './lock.ts';
import { sweepStale } from './sweep.ts';
import { progressDisplay, type ProgressDisplay } from './progress.ts';
import type { BatchPlan, Executor } from './child-launcher.ts';
import { isFailure, type CellFailure, type CellOutcome, type CellResult, type FigureOutput } from './types.ts';
import { fileHighlightCache, type HighlightCache } from './highlight.ts';
import { checkpointPath, withCheckpoints } from './checkpoint.ts';
import { recordEnvironment } from './provenance.ts';
import { weave } from './weave.ts';
import { ReportError } from './errors.ts';
import { isFatalRule } from './severity.ts';
import { carryCheckpoint, notAdoptedMessage, oldSchemeMessage } from './migrate.ts';
import { sameMeaning } from './key.ts';
import { sha256 } from './digest.ts';
import { fileSha, pageDigest, rememberedPage, rememberPage, toolStamp } from './page-cache.ts';
import { inlineFigures, linkFigures, type FigureLinks } from './figure-links.ts';
import { recordMessages, replayMessages, type RecordedMessage } from './recorded-messages.ts';

export interface BuildOptions extends LoadOptions {
  /**
   * What runs the stale cells: `childProcessExecutor` (child-launcher.ts) on this machine,
   * `slurmExecutor` (slurm.ts) on a cluster, a fake in tests. Required, so that every caller
   * says where cells run; closed (`close`) when the build ends.
   */
  executor: Executor;
  /** Parallel cells; default: the number of cores. */
  jobs?: number;
  /** Re-run these cells (and their dependents) even when fresh. */
  rerun?: string[];
  rerunAll?: boolean;
  /**
   * Run only these cells and the stale cells they import (transitively); every other stale
   * cell is left as it is, reported (`not-run`) and woven as not run, so the page is partial.
   */
  only?: string[];
  /** Output directory for report.html / report.pdf; default `build`. */
  outDir?: string;
  pdf?: boolean;
  browserPath?: string;
  /** Print the PDF with this function (injected so tests need no browser). */
  printPdf?: (htmlPath: string, pdfPath: string) => Promise<{ ms: number; browser: string }>;
  /** Where the cells' events go (default: the terminal display on `effects.stdout`); the preview passes its own. */
  display?: ProgressDisplay;
  /** Called once the plan is known, before any cell runs (the preview shows the page with what is fresh). */
  onPlan?: (plan: BuildPlan) => void | Promise<void>;
  /** Mark the page's top-level blocks with their Markdown lines (`data-line`; the preview places problems by them). */
  sourceLines?: boolean;
  /**
   * Also give the page with its figures linked through these (`BuildSummary.page`; the
   * preview serves them by URL: figure-links.ts). The page written stays self-contained.
   */
  figureLinks?: FigureLinks;
  /**
   * Called as soon as the page is woven (or found unchanged), before it is written, the
   * figures are inlined into it and the caches are saved: the preview shows it then, so a
   * save waits for none of the writing. Every message of the build is on `file` by then.
   */
  onPage?: (page: WovenBuildPage) => void | Promise<void>;
  /**
   * The highlight cache to use (a long-lived process keeps one in memory between builds);
   * default: the one kept in the cache folder's highlight.json, read for this build.
   */
  highlight?: HighlightCache & { save(): Promise<void> };
}

/** What `BuildOptions.onPage` is given. */
export interface WovenBuildPage {
  file: VFile;
  profile: string;
  /** The page as `BuildSummary.page` (figures linked) when `figureLinks` was given, else as `html`. */
  page: string;
}

/** What a build is about to do: the loaded document, its fresh results, the cells that will run. */
export interface BuildPlan {
  loaded: LoadedDocument;
  available: ReadonlyMap<string, CellResult>;
  toRun: ReadonlySet<string>;
}

export interface BuildSummary {
  file: VFile;
  /** The profile that applied (flag, else front matter, else full). */
  profile: string;
  /** The page, self-contained: what is written. */
  html: string;
  /** With `figureLinks`: the same page with its figures linked by URL instead of inlined. */
  page?: string;
  /** The good build's HTML: written when the build succeeded, else left as it was. */
  htmlPath: string;
  /** True when nothing the page is made from changed: it was neither woven nor written (page-cache.ts). */
  upToDate?: boolean;
  /** True when the PDF printed from this very page was still there and was not printed again. */
  pdfUpToDate?: boolean;
  pdfPath?: string;
  /** Set when the build failed: where its report went (`<doc>.failed.html`), beside the good one. */
  failedHtmlPath?: string;
  /** With `failedHtmlPath`: a previous good `<doc>.html` exists and was kept. */
  keptPrevious?: boolean;
  ran: string[];
  fresh: string[];
  failed: string[];
  skipped: string[];
  /** Stale cells left out by `only` (also in `skipped`). */
  notRun?: string[];
  removed: string[];
  ms: number;
}


/**
 * Where a document's figures go: the project's `figures/` for the project's own report
 * (`report/report.md`), else a `figures/` folder beside the document.
 */
export function figuresRoot(docPath: string, projectRoot: string): string {
  const own = path.resolve(projectRoot, 'report', 'report.md') === path.resolve(docPath);
  return own ? path.join(projectRoot, 'figures') : path.join(path.dirname(path.resolve(docPath)), 'figures');
}

export async function build(options: BuildOptions, effects: Effects): Promise<BuildSummary> {
  const started = effects.now();
  const loaded = await loadDocument(options, effects);
  const { doc, graph, keys, store, profile, seed, usable, docPath, projectRoot, bibliography, clean: loadedCleanly } = loaded;
  const file = doc.file;

  // One build at a time per results folder; then what killed builds left behind goes.
  const release = await lockStore(store.dir, effects, {
    doc: path.basename(docPath),
    onWait: (holder) =>
      effects.stdout.write(
        `waiting for another build (${holder.doc}, pid ${holder.pid}, since ${holder.since}), which holds ${path.relative(process.cwd(), store.dir) || store.dir}\n`,
      ),
  });
  try {
    await sweepStale(effects, { store: store.dir, bundles: [...keys.values()][0]?.bundleDir });
    return await buildLocked(options, effects, loaded, started);
  } finally {
    await release();
  }
}

async function buildLocked(options: BuildOptions, effects: Effects, loaded: LoadedDocument, started: number): Promise<BuildSummary> {
  const { doc, graph, keys, store, profile, seed, usable, docPath, projectRoot, bibliography, clean: loadedCleanly } = loaded;
  const file = doc.file;
  const cellIds = new Set(doc.cells.map((cell) => cell.id));
  for (const [flag, ids] of [['--rerun', options.rerun], ['--only', options.only]] as const) {
    for (const id of ids ?? []) {
      if (!cellIds.has(id)) {
        throw new ReportError(`${flag} ${id}: no cell has this id (cells: ${[...cellIds].join(', ') || 'none'})`, 2);
      }
    }
  }

  // Plan: which usable cells have a fresh stored result, which must run.
  const available = new Map<string, CellResult>();
  const legacy: string[] = [];
  const toRun = new Set<string>();
  const forced = new Set<string>();
  for (const id of options.rerun ?? []) {
    forced.add(id);
    for (const dependent of graph.dependents(id)) forced.add(dependent);
  }
  // The entries are read at once (the reads overlap), then looked at in document order.
  const lookups = new Map(
    usable.filter((id) => !(options.rerunAll || forced.has(id))).map((id) => [id, store.get(id, keys.get(id)!.key, keys.get(id)!.fingerprint)] as const),
  );
  const checksums = new Map<string, string>();
  for (const id of usable) {
    const cell = doc.cells.find((c) => c.id === id)!;
    const lookup = lookups.get(id);
    if (lookup === undefined) {
      toRun.add(id);
      continue;
    }
    const stored = await lookup;
    if (stored.result) {
      available.set(id, stored.result);
      if (stored.checksum !== undefined) checksums.set(id, stored.checksum);
      if (stored.previousSchemeKey !== undefined) legacy.push(id);
    } else {
      if (stored.problem === 'corrupt') {
        file.message(`stored result of cell "${id}" is corrupt (${stored.detail ?? 'checksum mismatch'}); it is recomputed`, {
          place: cell.position,
          ruleId: 'corrupt-result',
          source: 'report',
        });
      }
      toRun.add(id);
    }
  }

  oldSchemeMessage(file, legacy, store.dir, docPath, profile);
  for (const id of toRun) {
    // A result of the previous key scheme that is not adopted: say why the cell runs again.
    const verdict = loaded.previousScheme.get(id)?.verdict;
    if (verdict?.ok === false && !options.rerunAll && !forced.has(id)) {
      file.message(notAdoptedMessage(id, verdict.reason) + '; it runs again', { place: doc.cells.find((c) => c.id === id)!.position, ruleId: 'old-key-scheme', source: 'report' });
    }
    // A snapshot a killed run left under the cell's previous-scheme key resumes under its key,
    // when the two keys hash the same ingredients (a snapshot records no time or commit to
    // show which version of a package read at run time it was computed with).
    const previous = keys.get(id)!.previous;
    if (previous !== undefined && sameMeaning(previous) && !options.rerunAll && !forced.has(id)) await carryCheckpoint(projectRoot, id, previous.key, keys.get(id)!.key, effects);
  }

  // --only: the named cells and what they import; other stale cells wait for a full build.
  const notRun: string[] = [];
  if (options.only !== undefined) {
    const wanted = new Set<string>();
    const visit = (id: string): void => {
      if (wanted.has(id)) return;
      wanted.add(id);
      for (const dep of graph.deps(id)) visit(dep);
    };
    for (const id of options.only) visit(id);
    for (const id of [...toRun]) {
      if (wanted.has(id)) continue;
      toRun.delete(id);
      notRun.push(id);
      file.message(`cell "${id}" is stale and was not run (--only ${options.only.join(' ')}); the page shows it as not run. Run \`npm run report\` to run every stale cell`, {
        place: doc.cells.find((c) => c.id === id)!.position,
        ruleId: 'not-run',
        source: 'report',
      });
    }
  }

  await options.onPlan?.({ loaded, available, toRun });

  // Where and from what code the cells run, recorded in their results (provenance appendix).
  const environment = toRun.size > 0 ? await effects.environment?.(projectRoot) : undefined;
  const snapshotsDone: Promise<void>[] = [];
  const display = options.display ?? progressDisplay(effects.stdout, effects.now);
  for (const id of available.keys()) display.onEvent({ id, state: 'fresh' });
  // A batch executor (Slurm) is told the whole plan first: it submits every cell at once,
  // each depending on the jobs of the cells it imports, so the scheduler only waits.
  const { executor } = options;
  const ahead = executor.prepare !== undefined && options.jobs === undefined;
  if (executor.prepare !== undefined && toRun.size > 0) {
    await executor.prepare(batchPlan(loaded, toRun, available, options.rerunAll ? toRun : forced, ahead, display)).catch(async (error: unknown) => {
      await executor.close?.();
      throw error;
    });
  }
  const outcomes = await runCells(
    {
      cells: doc.cells,
      order: usable,
      deps: (id) => graph.deps(id),
      toRun,
      keys,
      available,
    },
    {
      executor: withCheckpoints(recordEnvironment(executor, environment), (job) => checkpointPath(projectRoot, job.cell.id, job.key.key)),
      jobs: ahead ? Math.max(1, toRun.size) : Math.max(1, options.jobs ?? os.availableParallelism()),
      store,
      profile,
      seed,
      docPath,
      projectRoot,
      onEvent: (event) => {
        // The result is stored: the cell's snapshot (if it took any) has served.
        if (event.state === 'ran') snapshotsDone.push(effects.rm(checkpointPath(projectRoot, event.id, keys.get(event.id)!.key)));
        display.onEvent(event);
      },
    },
  ).finally(() => executor.close?.());
  await Promise.all(snapshotsDone);

  const results = new Map<string, CellOutcome>(available);
  for (const [id, outcome] of outcomes) results.set(id, outcome);
  for (const id of notRun) {
    const failure: CellFailure = { id, kind: 'skipped', message: `not run: this build ran only ${options.only!.join(', ')} and the cells ${options.only!.length === 1 ? 'it imports' : 'they import'} (--only)` };
    results.set(id, failure);
    outcomes.set(id, failure);
    display.onEvent({ id, state: 'skipped', failure });
  }
  const ran: string[] = [];
  const failed: string[] = [];
  const skipped: string[] = [];
  for (const [id, outcome] of outcomes) {
    if (!isFailure(outcome)) {
      ran.push(id);
      continue;
    }
    const cell = doc.cells.find((c) => c.id === id)!;
    if (outcome.kind === 'skipped') {
      skipped.push(id);
      continue;
    }
    failed.push(id);
    const ruleId = outcome.kind === 'timeout' ? 'cell-timeout' : outcome.kind === 'memory' ? 'cell-memory' : 'cell-error';
    const place = outcome.line ? { line: outcome.line, column: outcome.column ?? 1 } : cell.position;
    const message = file.message(`cell "${id}" ${outcome.kind === 'timeout' ? 'timed out' : outcome.kind === 'memory' ? 'ran out of memory' : 'failed'}: ${outcome.message}`, {
      place,
      ruleId,
      source: 'report',
    });
    message.fatal = true;
    if (outcome.stack) message.stack = outcome.stack;
  }
  display.done({ ran: ran.length, fresh: available.size, failed: failed.length, skipped: skipped.length, ms: effects.now() - started });

  // figures/ holds the committed (full-profile) figures; other profiles write beside them,
  // in a folder git ignores, so a quick build never overwrites what is committed.
  const figuresDir = path.join(figuresRoot(docPath, projectRoot), ...(profile === 'full' ? [] : ['profiles', profile]));
  for (const result of results.values()) {
    if (!isFailure(result)) await store.writeFigures(result, figuresDir, projectRoot);
  }

  const outDir = path.resolve(options.outDir ?? path.join(projectRoot, 'build'));
  const base = path.basename(docPath).replace(/\.md$/i, '');
  const htmlPath = path.join(outDir, `${base}.html`);
  const failedHtmlPath = path.join(outDir, `${base}.failed.html`);
  const allRan = failed.length === 0 && skipped.length === 0 && usable.length === doc.cells.length;

  // A build in which nothing changed weaves nothing: the page on disk is the page (page-cache.ts).
  // The cells that ran this build were stored: their checksums are read back from the store.
  if (options.keyCache !== false && allRan) {
    for (const id of ran) {
      const stored = await store.get(id, keys.get(id)!.key, keys.get(id)!.fingerprint);
      if (stored.checksum !== undefined && stored.result !== undefined) {
        checksums.set(id, stored.checksum);
        results.set(id, stored.result);
      }
    }
  }
  const digest =
    options.keyCache !== false && allRan && checksums.size === usable.length
      ? pageDigest({
          doc: sha256(String(file.value)),
          docPath,
          cells: usable.map((id) => [id, keys.get(id)!.key, checksums.get(id), (results.get(id) as CellResult).meta]),
          bibliography: (bibliography ?? []).map((b) => [b.path, b.text ?? null, b.error ?? null]),
          options: { sourceLines: options.sourceLines === true, profile },
          tools: await toolStamp(effects, projectRoot),
        })
      : undefined;
  const pageFile = path.join(cacheDirOf(options, projectRoot), `page-${sha256(htmlPath).slice(0, 24)}.json`);
  const remembered = digest === undefined ? undefined : await rememberedPage(effects, pageFile, digest, htmlPath);
  let html: string;
  let page: string | undefined;
  let messages: RecordedMessage[];
  const links = options.figureLinks;
  if (remembered !== undefined) {
    html = remembered.html;
    if (links !== undefined) page = linkFigures(html, figuresOf(results.values()), links);
    messages = remembered.record.messages;
    replayMessages(file, messages);
    await options.onPage?.({ file, profile, page: page ?? html });
  } else {
    const highlight = options.highlight ?? (await fileHighlightCache(path.join(cacheDirOf(options, projectRoot), 'highlight.json'), effects));
    const before = file.messages.length;
    const woven = await weave(doc, results, { mode: 'build', exports: loaded.exports, bibliography, highlight, sourceLines: options.sourceLines, figures: links });
    messages = recordMessages(file, before);
    await options.onPage?.({ file, profile, page: woven });
    html = links === undefined ? woven : inlineFigures(woven, links.figures);
    if (links !== undefined) page = woven;
    await highlight.save();
  }
  const pageOf = page === undefined ? {} : { page };
  const good = allRan && !file.messages.some((m) => isFatalRule(m.ruleId, profile));

  let pdfPath: string | undefined;
  if (!good) {
    // A failed build never replaces the last good report: it goes beside it.
    await effects.writeFileAtomic(failedHtmlPath, new TextEncoder().encode(html));
    const keptPrevious = await effects.exists(htmlPath);
    return { file, profile, html, ...pageOf, htmlPath, failedHtmlPath, keptPrevious, ran, fresh: [...available.keys()], failed, skipped, ...(notRun.length > 0 ? { notRun } : {}), removed: [], ms: effects.now() - started };
  }
  if (remembered === undefined) await effects.writeFileAtomic(htmlPath, new TextEncoder().encode(html));
  await effects.rm(failedHtmlPath);
  // The PDF printed from this very page, still there, is not printed again.
  let pdf = remembered?.record.pdf;
  let pdfUpToDate = false;
  if (options.pdf !== false && options.printPdf) {
    pdfPath = path.join(outDir, `${base}.pdf`);
    pdfUpToDate = pdf !== undefined && (await fileSha(effects, pdfPath)) === pdf;
    if (!pdfUpToDate) {
      await options.printPdf(htmlPath, pdfPath);
      pdf = await fileSha(effects, pdfPath);
    }
  }
  // Remembered once the page (and its PDF) is written, when anything of it is new.
  if (digest !== undefined && (remembered === undefined || pdf !== remembered.record.pdf)) {
    await rememberPage(effects, pageFile, { digest, html, messages, ...(pdf === undefined ? {} : { pdf }) });
  }

  // Entries no cell uses any more go only after a build of a document that loaded without
  // any problem and in which every cell succeeded; only this document's entries go.
  let removed: string[] = [];
  if (loadedCleanly && allRan) {
    const keep = usable.map((id) => ({ id, key: keys.get(id)!.key }));
    removed = await store.gc(keep, path.basename(docPath));
  }

  return { file, profile, html, ...pageOf, htmlPath, ...(remembered === undefined ? {} : { upToDate: true }), pdfPath, ...(pdfUpToDate ? { pdfUpToDate: true } : {}), ran, fresh: [...available.keys()], failed, skipped, ...(notRun.length > 0 ? { notRun } : {}), removed, ms: effects.now() - started };
}

/** The figures of the results (failures' outputs too), as a page shows them. */
function* figuresOf(results: Iterable<CellOutcome>): Iterable<FigureOutput> {
  for (const result of results) for (const output of result.outputs ?? []) if (output.kind === 'figure') yield output;
}

/** What a batch executor is told before the scheduler starts: every cell to run, with the fresh results and the cells of this build it imports. */
function batchPlan(
  loaded: LoadedDocument,
  toRun: Set<string>,
  available: Map<string, CellResult>,
  forced: Set<string>,
  ahead: boolean,
  display: ProgressDisplay,
): BatchPlan {
  const { doc, graph, keys, usable, profile, seed, docPath, projectRoot } = loaded;
  return {
    cells: usable
      .filter((id) => toRun.has(id))
      .map((id) => {
        const cell = doc.cells.find((c) => c.id === id)!;
        const fresh = graph.deps(id).flatMap((dep) => (available.has(dep) ? [[dep, available.get(dep)!] as const] : []));
        return {
          job: { cell, key: keys.get(id)!, deps: new Map(fresh), profile, seed: cell.options.seed ?? seed, docPath, projectRoot, checkpointPath: checkpointPath(projectRoot, id, keys.get(id)!.key) },
          pending: graph.deps(id).filter((dep) => toRun.has(dep)),
          adopt: !forced.has(id),
        };
      }),
    ahead,
    frontMatter: doc.frontMatter,
    onStatus: (id, status) =>
      display.onEvent({ id, state: status.state === 'running' ? 'running' : 'stale', status: status.text, ...(status.since === undefined ? {} : { since: status.since }) }),
  };
}
