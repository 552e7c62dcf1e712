/**
 * The build's progress display.
 *
 * On a terminal: finished cells scroll up as one line each (`✓ train ran in 4m12s`), and
 * below them one live line per running cell, redrawn with log-update:
 * `⠿ train  epoch 12/50  loss 0.123  ETA 3m10s`.
 * Elsewhere (CI logs): plain lines only — a start line, at most one progress line per
 * cell every 10 s, a finish line.
 * Always: a final summary `ran 2, fresh 18, failed 0, skipped 0 in 4m20s`.
 *
 * A batch executor's cells (Slurm) also have a status — `pending (Priority) · job 1234`,
 * `running on node17 · job 1234` — shown on their live line (and, off a terminal, printed
 * once each time it changes). A cell's clock starts when it starts running.
 */
import { createLogUpdate } from 'log-update';
import type { CellEvent } from './scheduler.ts';
import type { ProgressEvent } from './types.ts';

export interface DisplayStream {
  write(s: string): void;
  isTTY: boolean;
  columns?: number;
  rows?: number;
}

export interface BuildCounts {
  ran: number;
  fresh: number;
  failed: number;
  skipped: number;
  ms: number;
}

export interface ProgressDisplay {
  onEvent(event: CellEvent): void;
  done(summary: BuildCounts): void;
}

/** Seconds between two plain progress lines of one cell (non-TTY). */
const PLAIN_INTERVAL_MS = 10_000;

interface Running {
  startedAt: number;
  /** From a batch executor: where the cell is (queued, or running where). */
  status?: string;
  /** The status says the cell runs (its clock started). */
  runs?: boolean;
  /** When the first status came (the job was queued). */
  queuedAt?: number;
  progress?: ProgressEvent;
  /** First progress seen: the step rate for the ETA is measured from it. */
  first?: { at: number; step: number };
  latest?: { at: number; step: number };
  lastPlainLine: number;
}

export function progressDisplay(stdout: DisplayStream, now: () => number): ProgressDisplay {
  const running = new Map<string, Running>();
  const tty = stdout.isTTY;
  const live = tty
    ? createLogUpdate(
        {
          write: (s: string) => stdout.write(s),
          isTTY: true,
          get columns() {
            return stdout.columns ?? 100;
          },
          get rows() {
            return stdout.rows ?? 24;
          },
        } as unknown as NodeJS.WritableStream,
        { showCursor: true },
      )
    : undefined;

  const line = (s: string): void => {
    if (live !== undefined) live.persist(s);
    else stdout.write(`${s}\n`);
  };
  const redraw = (): void => {
    if (live === undefined) return;
    const lines = [...running].map(([id, r]) => `⠿ ${id}  ${describe(r, now())}`);
    if (lines.length === 0) live.clear();
    else live(lines.join('\n'));
  };

  return {
    onEvent(event) {
      const t = now();
      const { id } = event;
      if (event.status !== undefined && (event.state === 'running' || event.state === 'stale')) {
        let r = running.get(id);
        if (r === undefined) {
          r = { startedAt: t, lastPlainLine: t };
          running.set(id, r);
        }
        r.queuedAt ??= t;
        if (event.state === 'running' && r.runs !== true) {
          r.runs = true;
          r.startedAt = t;
        }
        // The executor's own start time (a batch job may be seen running a poll after it started).
        if (event.state === 'running' && event.since !== undefined) r.startedAt = Math.min(t, event.since);
        if (r.status !== event.status) {
          r.status = event.status;
          if (live === undefined) line(`${event.state === 'running' ? '▶' : '…'} ${id} ${event.status}`);
        }
        redraw();
        return;
      }
      switch (event.state) {
        case 'running': {
          let r = running.get(id);
          if (r === undefined) {
            r = { startedAt: t, lastPlainLine: t };
            running.set(id, r);
            if (live === undefined) line(`▶ ${id} running`);
          }
          if (event.progress !== undefined) {
            r.progress = event.progress;
            r.first ??= { at: t, step: event.progress.step };
            r.latest = { at: t, step: event.progress.step };
            if (live === undefined && t - r.lastPlainLine >= PLAIN_INTERVAL_MS) {
              r.lastPlainLine = t;
              line(`  ${id}  ${describe(r, t)}`);
            }
          }
          break;
        }
        case 'ran': {
          const r = running.get(id);
          running.delete(id);
          // A batch job's time is counted from when it started running, not from when it was queued.
          const queued = r?.runs === true && r.queuedAt !== undefined ? r.startedAt - r.queuedAt : 0;
          const ms = r?.runs === true ? t - r.startedAt : (event.ms ?? 0);
          line(`✓ ${id} ran in ${formatDuration(ms)}${queued >= 1000 ? ` after ${formatDuration(queued)} queued` : ''}`);
          break;
        }
        case 'failed':
          running.delete(id);
          line(`✗ ${id} ${event.failure?.kind === 'timeout' ? 'timed out' : event.failure?.kind === 'memory' ? 'ran out of memory' : 'failed'}${event.failure ? `: ${firstLine(event.failure.message)}` : ''}`);
          break;
        case 'skipped':
          running.delete(id);
          line(`- ${id} ${event.failure ? firstLine(event.failure.message) : 'skipped'}`);
          break;
        default:
          line(`· ${id} ${event.state}`);
      }
      redraw();
    },
    done(summary) {
      running.clear();
      live?.clear();
      live?.done();
      stdout.write(
        `ran ${summary.ran}, fresh ${summary.fresh}, failed ${summary.failed}, skipped ${summary.skipped} in ${formatDuration(summary.ms)}\n`,
      );
    },
  };
}

/** `epoch 12/50  loss 0.123  ETA 3m10s` (or `running 12s` before any progress), then the batch status if any. */
function describe(r: Running, t: number): string {
  const p = r.progress;
  if (p === undefined) {
    if (r.status !== undefined) return `${r.status}  ${formatDuration(t - r.startedAt)}`;
    return `running ${formatDuration(t - r.startedAt)}`;
  }
  const parts = [`${p.label ?? 'step'} ${p.step}${p.total === undefined ? '' : `/${p.total}`}`];
  for (const [name, value] of Object.entries(p.metrics ?? {})) parts.push(`${name} ${formatNumber(value)}`);
  const eta = estimate(r);
  if (eta !== undefined) parts.push(`ETA ${formatDuration(eta)}`);
  if (r.status !== undefined) parts.push(`· ${r.status}`);
  return parts.join('  ');
}

/** Remaining milliseconds from the step rate since the first progress event. */
function estimate(r: Running): number | undefined {
  return etaMs(r.first, r.latest, r.progress?.total);
}

/**
 * Remaining milliseconds of a cell at the step rate between its `first` and `latest`
 * progress events (time and step of each); undefined without a total or a rate yet.
 */
export function etaMs(
  first: { at: number; step: number } | undefined,
  latest: { at: number; step: number } | undefined,
  total: number | undefined,
): number | undefined {
  if (total === undefined || first === undefined || latest === undefined) return undefined;
  const steps = latest.step - first.step;
  const elapsed = latest.at - first.at;
  if (steps <= 0 || elapsed <= 0) return undefined;
  return Math.max(0, ((total - latest.step) * elapsed) / steps);
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  if (Number.isInteger(x)) return String(x);
  const abs = Math.abs(x);
  if (abs >= 1000 || abs < 0.001) return x.toExponential(2);
  return x.toPrecision(3);
}

function firstLine(s: string): string {
  return s.split('\n', 1)[0] ?? '';
}
