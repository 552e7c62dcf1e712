/**
 * `preview`: one long-lived process that builds a document, serves its page, watches the
 * document and every project file its cells import, and on save rebuilds and pushes the new
 * page to the browser (server-sent events; the page morphs its body in place, so nothing
 * flickers and the scroll position stays).
 *
 * A rebuild is `build()` itself (so it re-runs exactly the stale cells, stores, writes
 * figures and build/<doc>.html as `report --no-pdf` does), with three hooks:
 *   - the plan: when cells must run, the page is woven at once from what is fresh (the
 *     newest stored result of a stale cell stands in for it, dimmed) and pushed, so prose
 *     edits show before the cells finish;
 *   - the display: each running cell's progress (step, metrics, ETA, last printed line) is
 *     pushed to the page, throttled, and shown in the terminal;
 *   - the executor: a stop button aborts a running cell (ExecutorHooks.signal); a stopped
 *     cell is not run again under the same key until its Run button is pressed or it changes.
 * A save while cells run does not wait for them: the page is re-woven from the new text and
 * the stored results at once ("refresh"); running cells whose key the edit changed are
 * stopped as superseded; a build of the new text follows when the running one ends.
 *
 * Every rebuild starts from the files (loadDocument): nothing of a build is kept but the
 * page's text, the problems and the cells' states, and two memos of what reading the files
 * gave, each checked against the files on every rebuild and cut to what the document uses
 * now: the stored results, decoded (result-memo.ts: by each entry's metadata text, which
 * holds its payload's sha256; every rebuild gets its own copy of the exports), and the
 * document's sections, parsed (parse.ts SectionMemo: by their text).
 *
 * The page served links its figures by URL (`/__preview/figures/<sha256>.<ext>`, served
 * from memory: figure-links.ts) instead of inlining them; build/<doc>.html is written
 * self-contained, as `report` writes it.
 */
import path from 'node:path';
import { VFile } from 'vfile';
import * as esbuild from 'esbuild';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { build, type BuildOptions, type BuildSummary } from './build.ts';
import type { Effects } from './effects.ts';
import { loadDocument, type LoadedDocument, type LoadOptions } from './document.ts';
import { ReportError } from './errors.ts';
import type { BatchPlan, Executor } from './child-launcher.ts';
import { fileHighlightCache, type HighlightCache } from './highlight.ts';
import { formatProblems, type ProblemFormat } from './problems.ts';
import { etaMs, progressDisplay, type ProgressDisplay } from './progress.ts';
import { markSeverity } from './severity.ts';
import { weave } from './weave.ts';
import { isFailure, type CellOutcome, type CellResult, type FigureOutput } from './types.ts';
import { figureLinks, figureMime } from './figure-links.ts';
import { ResultMemo } from './result-memo.ts';
import { SectionMemo } from './parse.ts';
import { startPreviewHttp, type PreviewHttp } from './preview-server.ts';
import { pageEvent } from './page-patch.ts';
import { folderWatcher, type WatchFactory, type Watcher } from './preview-watch.ts';
import { escapeHtml } from './escape-html.ts';

export interface PreviewOptions extends LoadOptions {
  /**
   * What runs the stale cells (as BuildOptions.executor); the preview wraps it so that its
   * stop buttons can abort a running cell.
   */
  executor: Executor;
  /** Parallel cells (as `report --jobs`). */
  jobs?: number;
  /** Where build/<doc>.html goes (as `report --out`). */
  outDir?: string;
  /** Highlight cache folder (as BuildOptions.cacheDir). */
  cacheDir?: string;
  /** Interface to listen on; default 127.0.0.1 (given explicitly, other interfaces are served). */
  host?: string;
  /** Port; default 0 (a free one). */
  port?: number;
  /** How long to wait for more file events before rebuilding (editors write in bursts). Default 10 ms. */
  debounceMs?: number;
  /** Least time between two `state` events while cells report progress. Default 100 ms. */
  stateIntervalMs?: number;
  /** How problems are printed in the terminal. Default `lines`. */
  format?: ProblemFormat;
  /** File watching (default: fs.watch on the files' folders); tests may drive it by hand. */
  watch?: WatchFactory;
}

export interface Preview {
  url: string;
  port: number;
  host: string;
  /** The version of the page served now (0 until the first build is woven). */
  readonly version: number;
  /** Absolute paths watched now: the document, its cells' project files, its bibliographies. */
  watched(): string[];
  /** Rebuilds as if a watched file had changed. */
  rebuild(): void;
  /** Resolves when no rebuild is pending or running. */
  idle(): Promise<void>;
  /** The cells' states and problems, as the page receives them. */
  state(): PreviewState;
  close(): Promise<void>;
}

export type CellPhase = 'queued' | 'running' | 'stopping' | 'stopped';

/** One cell's live state on the page. */
export interface CellView {
  id: string;
  phase: CellPhase;
  /** Epoch ms when it started running. */
  startedAt?: number;
  step?: number;
  total?: number;
  label?: string;
  metrics?: Record<string, number>;
  /** Remaining time from the step rate. */
  etaMs?: number;
  /** The last line it printed. */
  lastLine?: string;
  /** Where a batch executor's job is: `pending (Priority) · job 1234`, `running on node17 · job 1234`. */
  where?: string;
}

/** A problem as the page shows it: at its line, or inside its cell. */
export interface ProblemView {
  line?: number;
  column?: number;
  ruleId: string;
  message: string;
  fatal: boolean;
  /** The cell whose fence holds the line, when one does. */
  cell?: string;
  /** `file:line:col  rule-id  message`, as the terminal prints it. */
  text: string;
}

export interface PreviewState {
  /** The page version the state belongs to. */
  version: number;
  phase: 'building' | 'running' | 'idle';
  cells: CellView[];
  problems: ProblemView[];
  /** The last finished build. */
  last?: { ms: number; ran: number; fresh: number; failed: number; skipped: number; at: number };
  /** A problem that kept the document from building at all (unreadable file, bad profile…). */
  error?: string;
}

/** A woven page as the preview serves it: its figures linked by URL, and those figures. */
interface WovenPage {
  html: string;
  figures: ReadonlyMap<string, FigureOutput>;
}

interface Page {
  version: number;
  title: string;
  body: string;
  /** The whole page as served (with the preview's head). */
  html: string;
}

/** How far a published page has come: a page of a later edit, or a finished build of the same edit, wins. */
interface Stamp {
  generation: number;
  final: boolean;
}

export async function startPreview(options: PreviewOptions, effects: Effects): Promise<Preview> {
  const session = new PreviewSession(options, effects);
  await session.start();
  return session;
}

const clientEntry = fileURLToPath(new URL('./html/preview-client.js', import.meta.url));
const previewCss = readFileSync(new URL('./html/preview.css', import.meta.url), 'utf8');
let clientBundle: Promise<string> | undefined;

/** The page's script: preview-client.js with morphdom, bundled once per process. */
function clientScript(): Promise<string> {
  clientBundle ??= esbuild
    .build({ entryPoints: [clientEntry], bundle: true, format: 'esm', platform: 'browser', target: 'es2020', write: false, logLevel: 'silent' })
    .then((result) => result.outputFiles[0]!.text);
  clientBundle.catch(() => (clientBundle = undefined));
  return clientBundle;
}

class PreviewSession implements Preview {
  url = '';
  port = 0;
  host = '';
  version = 0;
  private http?: PreviewHttp;
  private watcher?: Watcher;
  private readonly docPath: string;
  private readonly projectRoot: string;
  private readonly executor: StoppableExecutor;
  /** The stored results read so far, decoded (result-memo.ts): a save reads only what changed. */
  private readonly memo = new ResultMemo();
  private highlightCache: Promise<HighlightCache & { save(): Promise<void> }> | undefined;
  /** The document's sections as last parsed (parse.ts): a save parses only the sections it changed. */
  private readonly sections = new SectionMemo();
  private page: Page;
  /** The figures the page links (`/__preview/figures/<sha256>.<ext>`), and those of the page before. */
  private figures: ReadonlyMap<string, FigureOutput> = new Map();
  private previousFigures: ReadonlyMap<string, FigureOutput> = new Map();
  private stamp: Stamp = { generation: -1, final: false };
  private problems: ProblemView[] = [];
  private cells = new Map<string, CellView & { first?: { at: number; step: number } }>();
  private phase: PreviewState['phase'] = 'building';
  private last: PreviewState['last'];
  private error: string | undefined;
  /** Bumped by every batch of file changes (and Run); a build or refresh publishes only if no later one exists. */
  private generation = 0;
  private building: Promise<void> | undefined;
  /** The build whose cells are running now: what its page is woven from. */
  private live:
    | { loaded: LoadedDocument; generation: number; outcomes: Map<string, CellOutcome>; pending: Set<string>; weaving: Promise<void> | undefined; again: boolean }
    | undefined;
  private refreshing: Promise<void> | undefined;
  private refreshAgain = false;
  private debounce: NodeJS.Timeout | undefined;
  private stateTimer: NodeJS.Timeout | undefined;
  private lastPrinted = '';
  private watchedPaths: string[] = [];
  private closed = false;

  constructor(
    private readonly options: PreviewOptions,
    private readonly effects: Effects,
  ) {
    this.projectRoot = path.resolve(options.projectRoot ?? process.cwd());
    this.docPath = path.resolve(options.docPath);
    this.executor = stoppable(options.executor);
    this.page = this.makePage(0, path.basename(this.docPath), `<main><p class="preview-building">Building ${escapeHtml(path.basename(this.docPath))}…</p></main>`);
  }

  async start(): Promise<void> {
    const base = path.basename(this.docPath).replace(/\.md$/i, '');
    this.http = await startPreviewHttp(
      { host: this.options.host, port: this.options.port ?? 0, pageNames: [`/${base}.html`] },
      {
        page: () => this.page.html,
        clientScript,
        figure: (file) => {
          const figure = this.figures.get(file) ?? this.previousFigures.get(file);
          return figure === undefined ? undefined : { data: figure.data, type: figureMime(figure.ext) };
        },
        onConnect: (send, since) => {
          if (since !== this.page.version) send('page', this.pageEvent());
          send('state', this.state());
        },
        stop: (id) => this.stop(id),
        run: (id) => this.runAgain(id),
      },
    );
    this.url = this.http.url;
    this.port = this.http.port;
    this.host = this.http.host;
    this.watcher = (this.options.watch ?? folderWatcher)((changed) => this.onFileChange(changed));
    this.setWatched([]);
    clientScript().catch(() => {}); // bundled ahead of the first page request; a failure is retried there
    this.generation++;
    this.startBuild();
  }

  watched(): string[] {
    return [...this.watchedPaths];
  }

  rebuild(): void {
    this.schedule();
  }

  async idle(): Promise<void> {
    while (this.debounce !== undefined || this.building !== undefined || this.refreshing !== undefined) {
      if (this.debounce !== undefined) await new Promise((r) => setTimeout(r, 2));
      else await (this.building ?? this.refreshing);
    }
  }

  state(): PreviewState {
    return {
      version: this.page.version,
      phase: this.phase,
      cells: [...this.cells.values()].map(({ first: _, ...view }) => view),
      problems: this.problems,
      ...(this.last === undefined ? {} : { last: this.last }),
      ...(this.error === undefined ? {} : { error: this.error }),
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.debounce);
    this.debounce = undefined;
    clearTimeout(this.stateTimer);
    for (const id of this.executor.running()) this.executor.abort(id, 'superseded');
    await this.watcher?.close();
    await this.http?.close();
    await this.building;
    await this.refreshing;
  }

  // ---- rebuilding ------------------------------------------------------------------------

  private onFileChange(_changed: string): void {
    this.schedule();
  }

  /** A change: rebuild after the debounce, or, while a build runs, re-weave at once and build after it. */
  private schedule(): void {
    if (this.closed) return;
    
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      this.generation++;
      if (this.building === undefined) this.startBuild();
      else this.refresh();
    }, this.options.debounceMs ?? 10);
  }

  private startBuild(): void {
    this.building = (async () => {
      let generation: number;
      do {
        generation = this.generation;
        await this.buildOnce(generation);
      } while (generation !== this.generation && !this.closed);
    })().finally(() => {
      this.building = undefined;
    });
  }

  private async buildOnce(generation: number): Promise<void> {
    const files = await fileStamps(this.watchedPaths);
    try {
      await this.buildAndPublish(generation);
    } finally {
      await this.rescheduleIfChanged(files, generation);
    }
  }

  /**
   * A save the watcher reported too early (in the middle of the write: truncated, then
   * written) or not at all (two events within a few ms are one) was perhaps read half
   * written: when a file read by a rebuild differs from what it was when the rebuild began,
   * rebuild again.
   */
  private async rescheduleIfChanged(before: Map<string, string>, generation: number): Promise<void> {
    // A change the watcher reported during the rebuild is rebuilt anyway.
    if (generation !== this.generation || this.debounce !== undefined) return;
    const after = await fileStamps([...before.keys()]);
    if ([...before].some(([file, stamp]) => after.get(file) !== stamp)) this.schedule();
  }

  private async buildAndPublish(generation: number): Promise<void> {
    this.phase = 'building';
    this.pushState();
    const current = (): boolean => generation === this.generation && !this.closed;
    let loaded: LoadedDocument | undefined;
    const display = this.display();
    const links = figureLinks();
    let published = false;
    // The caches between commands are written once the page is out (or the build ended without one).
    const deferred: (() => Promise<void>)[] = [];
    const writeDeferred = async (): Promise<void> => {
      for (const task of deferred.splice(0)) await task().catch(() => undefined);
    };
    const buildOptions: BuildOptions = {
      docPath: this.docPath,
      projectRoot: this.projectRoot,
      executor: this.executor,
      profile: this.options.profile,
      resultsDir: this.options.resultsDir,
      jobs: this.options.jobs,
      outDir: this.options.outDir,
      cacheDir: this.options.cacheDir,
      resultMemo: this.memo,
      sections: this.sections,
      pdf: false,
      sourceLines: true,
      figureLinks: links,
      highlight: await this.highlight(),
      deferWrite: (task) => void deferred.push(task),
      display,
      // The page is shown as soon as it is woven; the build writes it and its caches after.
      onPage: async ({ file, profile, page }) => {
        if (!current()) return;
        markSeverity(file, profile);
        this.problems = problemViews(file, loaded);
        this.printProblems(file);
        published = true;
        // The build writes the page and its caches once the browsers have it (a stuck one is not waited for).
        await flushedOrLate(this.publish({ html: page, figures: links.figures }, { generation, final: true }), 2000);
        await writeDeferred();
      },
      onPlan: async ({ loaded: plan, available, toRun }) => {
        loaded = plan;
        this.executor.expect(keysOf(plan));
        this.setWatched(watchList(plan));
        this.forgetStoppedCells(plan);
        for (const id of toRun) if (!this.cells.has(id)) this.cells.set(id, { id, phase: 'queued' });
        if (toRun.size === 0 || !current()) return;
        // Cells must run: show the page now, from what is fresh, and again each time a cell finishes.
        this.phase = 'running';
        this.live = { loaded: plan, generation, outcomes: new Map(available), pending: new Set(toRun), weaving: undefined, again: false };
        await this.weaveLive();
      },
    };
    let summary: BuildSummary;
    try {
      summary = await build(buildOptions, this.effects).finally(writeDeferred);
    } catch (error) {
      // A document that cannot be built (unreadable, a bad profile) or a fault of the build
      // itself: said in the page and the terminal; the preview goes on and builds on the next save.
      this.live = undefined;
      this.error = describeError(error);
      this.effects.stdout.write(`preview: ${error instanceof ReportError ? error.message : (error as Error).stack ?? this.error}\n`);
      this.setWatched([]);
      this.phase = 'idle';
      this.clearCells();
      if (current()) this.publish({ html: errorPage(path.basename(this.docPath), this.error), figures: new Map() }, { generation, final: true });
      return;
    }
    this.live = undefined;
    this.error = undefined;
    if (loaded !== undefined) this.retainResults(loaded);
    this.clearCells();
    this.phase = 'idle';
    this.last = {
      ms: Math.round(summary.ms),
      ran: summary.ran.length,
      fresh: summary.fresh.length,
      failed: summary.failed.length,
      skipped: summary.skipped.length,
      at: this.effects.now(),
    };
    if (!current()) return; // a later edit is being built: this page is already out of date
    if (published) return this.pushState(true);
    markSeverity(summary.file, summary.profile);
    this.problems = problemViews(summary.file, loaded);
    this.printProblems(summary.file);
    this.publish({ html: summary.page ?? summary.html, figures: links.figures }, { generation, final: true });
  }

  /**
   * The page while the build's cells run: from the fresh results and those of the cells that
   * have finished; a cell still to run shows its newest stored result (dimmed), if any. Woven
   * on a scratch file (the build weaves the real one at its end); one weave at a time, the
   * last request wins.
   */
  private weaveLive(): Promise<void> {
    const live = this.live;
    if (live === undefined) return Promise.resolve();
    if (live.weaving !== undefined) {
      live.again = true;
      return live.weaving;
    }
    live.weaving = (async () => {
      do {
        live.again = false;
        const { loaded, generation } = live;
        const scratch = new VFile({ path: loaded.doc.file.path, value: loaded.doc.file.value });
        scratch.messages.push(...loaded.doc.file.messages);
        const woven = await this.weaveFrom({ ...loaded, doc: { ...loaded.doc, file: scratch } }, live.outcomes, [...live.pending]);
        if (generation !== this.generation || this.live !== live) return;
        // Inline values and claims that read cells still running are reported once they ran.
        scratch.messages = scratch.messages.filter((m) => !(RESULT_RULES.has(m.ruleId ?? '') && live.pending.size > 0));
        markSeverity(scratch, loaded.profile);
        this.problems = problemViews(scratch, loaded);
        this.publish(woven, { generation, final: false });
      } while (live.again && this.live === live);
    })().finally(() => {
      live.weaving = undefined;
    });
    return live.weaving;
  }

  /** A cell of the running build finished: its result (or failure) goes into the page. */
  private async cellFinished(id: string, failure: CellOutcome | undefined): Promise<void> {
    const live = this.live;
    if (live === undefined || !live.pending.has(id)) return;
    // The page shows a later edit of the document (woven by refresh()): weave that again.
    if (live.generation !== this.generation) return this.refresh();
    let outcome = failure;
    if (outcome === undefined) {
      const key = live.loaded.keys.get(id);
      if (key !== undefined) outcome = (await live.loaded.store.get(id, key.key, key.fingerprint)).result;
    }
    live.pending.delete(id);
    if (outcome !== undefined) live.outcomes.set(id, outcome);
    await this.weaveLive();
  }

  /** While a build runs: the page of the text as it is now, from the stored results; stops cells the edit superseded. */
  private refresh(): void {
    if (this.refreshing !== undefined) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = (async () => {
      do {
        this.refreshAgain = false;
        const generation = this.generation;
        const files = await fileStamps(this.watchedPaths);
        try {
          const loaded = await loadDocument(this.loadOptions(), this.effects);
          const keys = keysOf(loaded);
          for (const id of this.executor.expect(keys)) {
            const view = this.cells.get(id);
            if (view) view.phase = 'stopping';
          }
          this.setWatched(watchList(loaded));
          this.forgetStoppedCells(loaded);
          const { available, stale } = await plan(loaded);
          for (const id of stale) if (!this.cells.has(id)) this.cells.set(id, { id, phase: 'queued' });
          const woven = await this.weaveFrom(loaded, available, stale);
          if (generation !== this.generation || this.closed) continue;
          // Inline values and claims that read cells still to run are reported once they ran.
          if (stale.length > 0) loaded.doc.file.messages = loaded.doc.file.messages.filter((m) => !RESULT_RULES.has(m.ruleId ?? ''));
          markSeverity(loaded.doc.file, loaded.profile);
          this.problems = problemViews(loaded.doc.file, loaded);
          this.publish(woven, { generation, final: false });
        } catch (error) {
          this.error = describeError(error);
          this.pushState();
        } finally {
          await this.rescheduleIfChanged(files, generation);
        }
      } while (this.refreshAgain && !this.closed);
    })().finally(() => {
      this.refreshing = undefined;
    });
  }

  private loadOptions(): LoadOptions {
    return { docPath: this.docPath, projectRoot: this.projectRoot, profile: this.options.profile, resultsDir: this.options.resultsDir, resultMemo: this.memo, sections: this.sections };
  }

  /** The memo keeps the results of the document as it is now (and their keys of the previous scheme). */
  /**
   * The highlight cache, read once and kept in memory for the session (a prose edit then
   * reads no cache file); written when a build highlighted a new block.
   */
  private highlight(): Promise<HighlightCache & { save(): Promise<void> }> {
    this.highlightCache ??= fileHighlightCache(
      path.join(this.options.cacheDir ?? path.join(this.projectRoot, 'node_modules', '.cache', 'report'), 'highlight.json'),
      this.effects,
    );
    return this.highlightCache;
  }

  private retainResults(loaded: LoadedDocument): void {
    this.memo.retain([...loaded.keys].flatMap(([id, key]) => [[id, key.key] as const, ...(key.previous === undefined ? [] : [[id, key.previous.key] as const])]));
  }

  /** The page of `loaded` with the `available` results; each of `pending` shows its newest stored result, if any. */
  private async weaveFrom(loaded: LoadedDocument, available: ReadonlyMap<string, CellOutcome>, pending: Iterable<string>): Promise<WovenPage> {
    const results = new Map<string, CellOutcome>(available);
    const docName = path.basename(this.docPath);
    for (const id of pending) {
      const previous = await loaded.store.latest(id, docName);
      if (previous !== undefined) results.set(id, previous);
    }
    const highlight = await this.highlight();
    const links = figureLinks();
    const html = await weave(loaded.doc, results, { mode: 'build', exports: loaded.exports, bibliography: loaded.bibliography, highlight, sourceLines: true, pending: true, figures: links });
    await highlight.save();
    return { html, figures: links.figures };
  }

  // ---- what the page and the terminal are told -------------------------------------------

  /** Shows a page; resolves once it has been sent to every page connected. */
  private publish({ html, figures }: WovenPage, stamp: Stamp): Promise<void> {
    const newer = stamp.generation > this.stamp.generation || (stamp.generation === this.stamp.generation && (stamp.final || !this.stamp.final));
    if (!newer || this.closed) return Promise.resolve();
    this.stamp = stamp;
    // The page before stays servable a little: a browser may still be loading its figures.
    this.previousFigures = this.figures;
    this.figures = figures;
    const body = bodyOf(html);
    const previous = this.page;
    this.page = this.makePage(this.page.version + 1, titleOf(html), body, html);
    this.version = this.page.version;
    // Every page connected has the page before (sent to it, or sent when it connected): an edit of it.
    const sent = this.http?.broadcast('page', pageEvent(this.pageEvent(), previous));
    this.pushState(true);
    return sent ?? Promise.resolve();
  }

  private makePage(version: number, title: string, body: string, html?: string): Page {
    const head = `<meta name="report-preview-version" content="${version}">\n<style>${previewCss}</style>\n<script type="module" src="/__preview/client.js"></script>\n`;
    const full =
      html === undefined
        ? `<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>${escapeHtml(title)}</title>\n${head}</head>\n<body>\n${body}\n</body>\n</html>\n`
        : html.replace('</head>', `${head}</head>`);
    return { version, title, body, html: full };
  }

  private pageEvent(): { version: number; title: string; body: string } {
    return { version: this.page.version, title: this.page.title, body: this.page.body };
  }

  /** Sends the state now (`now`), or within `stateIntervalMs` (progress events come fast). */
  private pushState(now = false): void {
    if (now) {
      clearTimeout(this.stateTimer);
      this.stateTimer = undefined;
      void this.http?.broadcast('state', this.state());
      return;
    }
    if (this.stateTimer !== undefined) return;
    this.stateTimer = setTimeout(() => {
      this.stateTimer = undefined;
      void this.http?.broadcast('state', this.state());
    }, this.options.stateIntervalMs ?? 100);
  }

  private printProblems(file: VFile): void {
    const text = formatProblems(file, this.options.format ?? 'lines');
    if (text !== this.lastPrinted) this.effects.stdout.write(text === '' ? 'no problems\n' : text);
    this.lastPrinted = text;
  }

  /** The build's display: the terminal's (without the one line per fresh cell) and the page's cell states. */
  private display(): ProgressDisplay {
    const terminal = progressDisplay(this.effects.stdout, this.effects.now);
    return {
      onEvent: (event) => {
        if (event.state === 'fresh') return;
        terminal.onEvent(event);
        const t = this.effects.now();
        if (event.status !== undefined && (event.state === 'running' || event.state === 'stale')) {
          // A batch executor's job (Slurm): queued on the cluster, with why, or running there since when.
          const view = this.cells.get(event.id) ?? { id: event.id, phase: 'queued' as CellPhase };
          view.where = event.status;
          if (event.state === 'running' && (view.phase === 'queued' || view.phase === 'running')) {
            view.phase = 'running';
            view.startedAt = Math.min(t, event.since ?? t, view.startedAt ?? t);
          }
          this.cells.set(event.id, view);
          this.pushState();
          return;
        }
        if (event.state === 'running') {
          const view = this.cells.get(event.id) ?? { id: event.id, phase: 'running' as CellPhase };
          // The scheduler waits for a batch job that is still queued on the cluster: it is queued, not running.
          const queuedOnCluster = view.where !== undefined && view.startedAt === undefined && event.progress === undefined && event.text === undefined;
          if (view.phase === 'queued' && !queuedOnCluster) view.phase = 'running';
          if (!queuedOnCluster) view.startedAt ??= t;
          if (event.progress !== undefined) {
            const { step, total, label, metrics } = event.progress;
            view.first ??= { at: t, step };
            Object.assign(view, { step, total, label, metrics, etaMs: etaMs(view.first, { at: t, step }, total) });
          }
          if (event.text !== undefined) {
            const line = event.text.split('\n').map((l) => l.trim()).filter(Boolean).at(-1);
            if (line !== undefined) view.lastLine = line.slice(0, 300);
          }
          this.cells.set(event.id, view);
        } else {
          if (event.state === 'failed' && this.executor.stopped(event.id)) this.cells.set(event.id, { id: event.id, phase: 'stopped' });
          else this.cells.delete(event.id);
          if (event.state === 'ran' || event.state === 'failed' || event.state === 'skipped') {
            this.cellFinished(event.id, event.failure).catch((error: unknown) => this.effects.stdout.write(`preview: ${describeError(error)}\n`));
          }
        }
        this.pushState();
      },
      done: (summary) => terminal.done(summary),
    };
  }

  private clearCells(): void {
    for (const [id, view] of this.cells) if (view.phase !== 'stopped') this.cells.delete(id);
  }

  /** Cells the user stopped are shown as stopped until they change (their key) or leave the document. */
  private forgetStoppedCells(loaded: LoadedDocument): void {
    this.executor.forgetOtherKeys(keysOf(loaded));
    for (const [id, view] of this.cells) if (view.phase === 'stopped' && !this.executor.stopped(id)) this.cells.delete(id);
  }

  private setWatched(paths: string[]): void {
    const all = [...new Set([this.docPath, ...paths])].sort();
    if (all.join('\n') === this.watchedPaths.join('\n')) return;
    this.watchedPaths = all;
    this.watcher?.set(all);
  }

  // ---- buttons ---------------------------------------------------------------------------

  private stop(id: string): boolean {
    const phase = this.cells.get(id)?.phase;
    if ((phase !== 'running' && phase !== 'queued') || !this.executor.abort(id, 'stop')) return false;
    const view = this.cells.get(id);
    if (view !== undefined) view.phase = view.phase === 'queued' ? 'stopped' : 'stopping';
    this.effects.stdout.write(`preview: stopping cell "${id}"\n`);
    this.pushState(true);
    return true;
  }

  private runAgain(id: string): boolean {
    if (!this.executor.release(id)) return false;
    this.cells.set(id, { id, phase: 'queued' });
    this.pushState(true);
    this.schedule();
    return true;
  }
}

// ---- the stoppable executor ---------------------------------------------------------------

interface StoppableExecutor extends Executor {
  /** Ids of the cells running now. */
  running(): string[];
  /**
   * Stops cell `id`: `stop` (the user's: it is not run again under this key until released)
   * or `superseded` (an edit changed it). A queued cell is marked so that it does not start.
   */
  abort(id: string, why: 'stop' | 'superseded'): boolean;
  /** True when the user stopped `id` (under the key it has now). */
  stopped(id: string): boolean;
  /** Lets a stopped cell run again. */
  release(id: string): boolean;
  /** The keys of the document as it is now; returns the running cells this supersedes (and stops them). */
  expect(keys: Map<string, string>): string[];
  /** Forgets stops of cells whose key is no longer `keys`' (they changed, so they run). */
  forgetOtherKeys(keys: Map<string, string>): void;
}

function stoppable(inner: Executor): StoppableExecutor {
  const running = new Map<string, { key: string; controller: AbortController; why?: 'stop' | 'superseded' }>();
  /** Cells the user stopped, by the key they were stopped under. */
  const held = new Map<string, string>();
  let expected: Map<string, string> | undefined;
  const stoppedFailure = (id: string) => ({
    id,
    kind: 'error' as const,
    message: 'stopped from the preview; press its Run button (or change it) to run it again',
  });
  return {
    // A batch executor (Slurm) is told the plan and closed as without the preview.
    ...(inner.prepare === undefined ? {} : { prepare: (plan: BatchPlan) => inner.prepare!(plan) }),
    ...(inner.close === undefined ? {} : { close: () => inner.close!() }),
    async run(job, hooks) {
      const { id } = job.cell;
      const key = job.key.key;
      const refused = held.get(id) === key
        ? stoppedFailure(id)
        : expected !== undefined && expected.has(id) && expected.get(id) !== key
          ? { id, kind: 'error' as const, message: 'superseded by an edit before it started' }
          : undefined;
      if (refused !== undefined) {
        // A batch executor may have submitted it ahead: that job goes too.
        await inner.cancel?.(id);
        return refused;
      }
      const controller = new AbortController();
      const entry: { key: string; controller: AbortController; why?: 'stop' | 'superseded' } = { key, controller };
      running.set(id, entry);
      const onOuterAbort = (): void => controller.abort();
      hooks.signal?.addEventListener('abort', onOuterAbort, { once: true });
      try {
        const outcome = await inner.run(job, { ...hooks, signal: controller.signal });
        if (!isFailure(outcome) || entry.why === undefined) return outcome;
        if (entry.why === 'stop') {
          held.set(id, key);
          return { ...stoppedFailure(id), outputs: outcome.outputs ?? [] };
        }
        return { id, kind: 'error', message: 'superseded by an edit while it ran', outputs: outcome.outputs ?? [] };
      } finally {
        hooks.signal?.removeEventListener('abort', onOuterAbort);
        if (running.get(id) === entry) running.delete(id);
      }
    },
    running: () => [...running.keys()],
    abort(id, why) {
      const entry = running.get(id);
      if (entry === undefined) {
        const key = expected?.get(id);
        if (why !== 'stop' || key === undefined) return false;
        held.set(id, key);
        // A batch executor submitted it ahead: its job goes now, not when the scheduler reaches it.
        void inner.cancel?.(id);
        return true;
      }
      entry.why ??= why;
      if (why === 'stop') held.set(id, entry.key);
      entry.controller.abort();
      return true;
    },
    stopped: (id) => held.has(id),
    release: (id) => held.delete(id),
    expect(keys) {
      const before = expected;
      expected = keys;
      // A batch executor's queued jobs of cells the edit changed are cancelled now.
      if (inner.cancel !== undefined && before !== undefined) {
        for (const [id, key] of before) if (!running.has(id) && keys.get(id) !== key) void inner.cancel(id);
      }
      const superseded: string[] = [];
      for (const [id, entry] of running) {
        if (keys.get(id) === entry.key || entry.why !== undefined) continue;
        entry.why = 'superseded';
        entry.controller.abort();
        superseded.push(id);
      }
      return superseded;
    },
    forgetOtherKeys(keys) {
      for (const [id, key] of held) if (keys.get(id) !== key) held.delete(id);
    },
  };
}

// ---- helpers ------------------------------------------------------------------------------

function describeError(error: unknown): string {
  return error instanceof ReportError ? error.message : `the preview could not build the document: ${(error as Error)?.message ?? String(error)}`;
}

/** Problems of values computed from results: not shown while the cells they read are running. */
const RESULT_RULES = new Set(['inline-error', 'claim-error', 'claim-false']);

/** Size, modification time and inode of each file (`-` when it does not exist). */
/** Resolves when `sent` does or after `ms`, whichever is first. */
function flushedOrLate(sent: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<void>((resolvePromise) => (timer = setTimeout(resolvePromise, ms)));
  return Promise.race([sent, late]).finally(() => clearTimeout(timer));
}

async function fileStamps(files: string[]): Promise<Map<string, string>> {
  const stamps = new Map<string, string>();
  for (const file of files) {
    try {
      const s = await stat(file, { bigint: true });
      stamps.set(file, `${s.size}:${s.mtimeNs}:${s.ino}`);
    } catch {
      stamps.set(file, '-');
    }
  }
  return stamps;
}

function keysOf(loaded: LoadedDocument): Map<string, string> {
  return new Map([...loaded.keys].map(([id, key]) => [id, key.key]));
}

/** What a change to should rebuild: the document's cells' project files and its bibliographies. */
function watchList(loaded: LoadedDocument): string[] {
  const files = new Set<string>();
  for (const key of loaded.keys.values()) for (const input of key.inputs) files.add(path.resolve(loaded.projectRoot, input));
  for (const source of loaded.bibliography ?? []) files.add(path.resolve(path.dirname(loaded.docPath), source.path));
  return [...files];
}

/** Which usable cells have a fresh stored result and which would run. */
async function plan(loaded: LoadedDocument): Promise<{ available: Map<string, CellResult>; stale: string[] }> {
  const available = new Map<string, CellResult>();
  const stale: string[] = [];
  for (const id of loaded.usable) {
    const key = loaded.keys.get(id)!;
    const stored = await loaded.store.get(id, key.key, key.fingerprint);
    if (stored.result) available.set(id, stored.result);
    else stale.push(id);
  }
  return { available, stale };
}

function problemViews(file: VFile, loaded: LoadedDocument | undefined): ProblemView[] {
  const cells = loaded?.doc.cells ?? [];
  const place = file.path || '<input>';
  return [...file.messages]
    .sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0))
    .map((m) => {
      const line = m.line ?? undefined;
      const cell = line === undefined ? undefined : cells.find((c) => c.position.start.line <= line && line <= (c.position.end?.line ?? c.position.start.line));
      const where = line === undefined ? place : `${place}:${line}:${m.column ?? 1}`;
      return {
        ...(line === undefined ? {} : { line, column: m.column ?? 1 }),
        ruleId: m.ruleId ?? 'problem',
        message: m.reason,
        fatal: m.fatal === true,
        ...(cell === undefined ? {} : { cell: cell.id }),
        text: `${where}  ${m.ruleId ?? 'problem'}  ${m.reason.replace(/\s*\n\s*/g, ' ⏎ ').trim()}${m.fatal ? '' : ' (warning)'}`,
      };
    });
}

/** The inside of the woven page's `<body>`. */
function bodyOf(html: string): string {
  const start = html.indexOf('<body>');
  const end = html.lastIndexOf('</body>');
  return start < 0 || end < start ? html : html.slice(start + '<body>'.length, end);
}

function titleOf(html: string): string {
  const match = /<title>([^<]*)<\/title>/.exec(html);
  return match === null ? '' : match[1]!.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
}

function errorPage(docName: string, message: string): string {
  return `<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>${escapeHtml(docName)}</title>\n</head>\n<body>\n<main><div class="cell-error" role="alert"><strong>${escapeHtml(docName)} cannot be built</strong><pre>${escapeHtml(message)}</pre></div></main>\n</body>\n</html>\n`;
}

